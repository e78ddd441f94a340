"""Matrix decompositions and solvers as graphs of block tasks (``cdask.linalg``).

Functions (dask.array.linalg's API): ``tsqr``, ``sfqr``, ``qr``, ``svd``,
``compression_level``, ``compression_matrix``, ``svd_compressed``, ``lu``,
``cholesky``, ``solve_triangular``, ``solve``, ``inv``, ``lstsq``, ``norm``.

Nothing is computed when these are called (except ``svd_compressed(...,
compute=True)``, which persists its intermediate products as dask does): each
returns Arrays whose graphs hold one Python task per block operation.  The
block kernels use NumPy only (``np.linalg.qr/svd/cholesky/solve`` and
``matmul``, which release the GIL in LAPACK/BLAS); SciPy is not needed.  The
two kernels NumPy lacks are written here: a partial-pivoting LU of a tall
panel (recursive, so its work is matrix products) and a triangular solve
(``np.linalg.solve`` on the triangle of the block, with an explicit check for
a zero diagonal).

Algorithms and memory per task (``b`` = chunk size, ``N`` = matrix order):

* ``tsqr`` (one column block, ``n`` columns): a QR per row block; the R
  factors are stacked in groups whose height stays below ``max(tallest row
  block, 2n)`` (or ``_max_vchunk_size``) and re-factored, level by level, up
  to one R.  Each merge returns its Q split by child, so Q is rebuilt going
  down the tree: a node's block of the final Q is its local Q times the
  (small) piece handed down by its parent; a leaf's is its row block's Q times
  its piece.  With ``compute_svd`` the final R's SVD ``Ur S Vt`` is taken and
  ``Ur`` is handed down from the root instead of the identity.  Tasks hold one
  row block or one group of R factors.
* ``sfqr`` (one row block): the QR of the first column block, then
  ``Q^H A_j`` for the other column blocks.
* ``lu``: right-looking block LU with partial pivoting over the whole column
  (so ``P L U`` is LAPACK's ``getrf`` result, and a matrix whose diagonal
  blocks are singular is still factored).  Step k: one task factors the block
  column k below the diagonal (``N x b``); one task per later block column
  applies the row permutation and forms the row of U (``N x b``); one task per
  block updates the trailing matrix (3 blocks).  L's columns get the later
  permutations at the end (one ``N x b`` task per block column); P comes from
  the composed permutation (a length-N index vector).
* ``cholesky``: right-looking block Cholesky over the lower triangle (tasks
  hold at most 3 blocks).
* ``solve_triangular``: right-looking block substitution (3 blocks per task).
* ``solve``: LU (or Cholesky with ``assume_a="pos"``), the row permutation of
  ``b`` (one task per column block of ``b``: ``N x b``), two triangular
  solves.  ``inv`` = ``solve(a, I)``.  A singular ``a`` (an exactly zero
  pivot, as NumPy's ``solve``/``inv``) raises ``LinAlgError`` at compute.
* ``lstsq``: through the SVD (tsqr), so rank-deficient systems get NumPy's
  minimum-norm solution; residuals are always returned (as dask).
* ``norm``: cdask reductions; the 2-norm, -2 and nuclear norms of matrices
  through ``svd`` (the shorter axis is rechunked into one block when both
  are chunked).
"""

import functools
import math
import numbers
import operator
import warnings

import numpy as np

from . import random as _random
from .contraction import GEMM_LAYERS
from .core import Array
from .creation import asarray, eye
from .mapping import map_blocks
from .reshape import squeeze
from .tokenize import tokenize
from .utils import isnan

__all__ = ["tsqr", "sfqr", "qr", "svd", "compression_level", "compression_matrix",
           "svd_compressed", "lu", "cholesky", "solve_triangular", "solve", "inv", "lstsq",
           "norm"]

LinAlgError = np.linalg.LinAlgError
_getitem = operator.getitem


# ---------------------------------------------------------------------------
# helpers

def _blas_policy(func):
    """Register the layers a public function adds with the contraction layers
    (``linalg.GEMM_LAYERS``): ``compute``/``persist`` then hold every BLAS
    library of the process at one thread while they run, so that the LAPACK
    calls of Python tasks on several workers do not oversubscribe the cores
    (measured: a 200000 x 50 tsqr on 2 cores, 3.5 s -> 0.4 s)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        out = func(*args, **kwargs)

        before = set()
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, Array):
                before.update(a._layers)
        for r in (out if isinstance(out, tuple) else (out,)):
            if isinstance(r, Array):
                GEMM_LAYERS.update(n for n in r._layers if n not in before)
        return out

    return wrapper


def _lapack_dtype(dt):
    """The dtype NumPy's LAPACK wrappers return for input of dtype ``dt``."""
    dt = np.dtype(dt)
    if dt in (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.complex64),
              np.dtype(np.complex128)):
        return dt
    return np.dtype(np.float64)


def _real_dtype(dt):
    return np.empty(0, dt).real.dtype


def _cast(block, dtype):
    return np.asarray(block).astype(dtype, copy=False)


def _known(chunks):
    return not any(isnan(c) for cc in chunks for c in cc)


def _offsets(chunks):
    out = [0]
    for c in chunks:
        out.append(out[-1] + c)
    return out


def _check_known(x, what):
    if not _known(x.chunks):
        raise ValueError("%s: the array has unknown (nan) chunk sizes %r; call "
                         "x.compute_chunk_sizes() first" % (what, x.chunks))


def _ct(x):
    """Conjugate transpose of a block (a view for real dtypes)."""
    return x.T.conj() if np.iscomplexobj(x) else x.T


# ---------------------------------------------------------------------------
# block kernels (module level, so graphs pickle)

def _qr_block(a, dtype):
    a = _cast(a, dtype)
    q, r = np.linalg.qr(a)
    return q, r


def _qr_merge(rs):
    """QR of stacked R factors: (Q split by child, R)."""
    rs = list(rs)
    q, r = np.linalg.qr(np.concatenate(rs, axis=0))
    pieces, o = [], 0
    for x in rs:
        pieces.append(q[o:o + x.shape[0]])
        o += x.shape[0]
    return pieces, r


def _push_down(node, e):
    """Pieces of the final Q factor for a merge node's children."""
    pieces = node[0]
    if e is None:
        return pieces
    return [p @ e for p in pieces]


def _leaf_q(leaf, e):
    q = leaf[0]
    return q if e is None else q @ e


def _svd_small(r):
    return np.linalg.svd(r, full_matrices=False)


def _svd_full(a, dtype):
    return np.linalg.svd(_cast(a, dtype), full_matrices=False)


def _sfqr_rest(first, a, dtype):
    return _ct(first[0]) @ _cast(a, dtype)


def _tri(a, lower):
    return np.tril(a) if lower else np.triu(a)


def _check_diag(t, offset=0):
    d = np.diagonal(t)
    z = np.flatnonzero(d == 0)
    if z.size:
        raise LinAlgError("singular matrix: resolution failed at diagonal %d"
                          % (offset + int(z[0])))


def _trsolve(t, b, lower, offset=0, unit=False):
    """Solve T x = b with T the lower/upper triangle of ``t``."""
    t = _tri(t, lower)
    if unit:
        t = t.copy()
        np.fill_diagonal(t, 1)
    else:
        _check_diag(t, offset)
    if t.shape[0] == 0:
        return np.array(b, dtype=np.result_type(t, b), copy=True)
    return np.linalg.solve(t, b)


def _lu_inplace(a):
    """Partial-pivoting LU of the tall matrix ``a`` (m >= n), in place: on
    return ``a`` holds L (unit, below the diagonal) and U, and the returned
    index vector p satisfies ``a_before[p] == L @ U``.  Recursive on columns,
    so the work is in matrix products."""
    m, n = a.shape
    if n == 1:
        p = np.arange(m)
        if m == 0:
            return p
        piv = int(np.argmax(np.abs(a[:, 0])))
        if piv:
            a[[0, piv]] = a[[piv, 0]]
            p[0], p[piv] = piv, 0
        if a[0, 0] != 0 and m > 1:
            a[1:, 0] /= a[0, 0]
        return p
    n1 = n // 2
    p1 = _lu_inplace(a[:, :n1])
    a[:, n1:] = a[p1, n1:]
    a12 = _trsolve(a[:n1, :n1], a[:n1, n1:], True, unit=True)
    a[:n1, n1:] = a12
    a[n1:, n1:] -= a[n1:, :n1] @ a12
    p2 = _lu_inplace(a[n1:, n1:])
    a[n1:, :n1] = a[n1:, :n1][p2]
    p = p1.copy()
    p[n1:] = p1[n1:][p2]
    return p


def _lu_panel(blocks, dtype, check, offset):
    """Factor a block column: (row order p, L (unit lower, M x b), U_kk)."""
    a = np.array(np.concatenate([_cast(b, dtype) for b in blocks], axis=0), dtype=dtype,
                 copy=True)
    n = a.shape[1]
    if n == 0:
        p = np.arange(a.shape[0])
    else:
        p = _lu_inplace(a)
    u = np.triu(a[:n])
    if check:
        z = np.flatnonzero(np.diagonal(u) == 0)
        if z.size:
            raise LinAlgError("Singular matrix (zero pivot at row %d)" % (offset + int(z[0])))
    lower = np.tril(a, -1)
    lower[np.arange(n), np.arange(n)] = 1
    return p, lower, u


def _lu_column(panel, blocks, dtype):
    """Permute a later block column by the panel's pivots; (U_kj, rows below)."""
    p, lower, _ = panel
    col = np.concatenate([_cast(b, dtype) for b in blocks], axis=0)[p]
    n = lower.shape[1]
    u = _trsolve(lower[:n], col[:n], True, unit=True)
    return u, col[n:]


def _lu_update(col, panel, r0, r1):
    n = panel[1].shape[1]
    return col[1][r0:r1] - panel[1][n + r0:n + r1] @ col[0]


def _lu_lcolumn(panel, later, shifts):
    """L's block column with the later steps' row permutations applied."""
    lower = panel[1]
    r = np.arange(lower.shape[0])
    for pl, s in zip(later, shifts):
        r[s:] = r[s:][pl[0]]
    return lower[r]


def _compose(sigma, panel, off, n):
    s = np.arange(n) if sigma is None else sigma.copy()
    s[off:] = s[off:][panel[0]]
    return s


def _perm_block(sigma, r0, r1, c0, c1, dtype):
    out = np.zeros((r1 - r0, c1 - c0), dtype=dtype)
    cols = np.arange(c0, c1)
    rows = sigma[c0:c1]
    sel = (rows >= r0) & (rows < r1)
    out[rows[sel] - r0, cols[sel] - c0] = 1
    return out


def _zeros(shape, dtype):
    return np.zeros(shape, dtype=dtype)


def _slice_rows(x, r0, r1):
    return x[r0:r1]


def _take_rows(sigma, blocks, dtype):
    return np.concatenate([_cast(b, dtype) for b in blocks], axis=0)[sigma]


def _ct_block(x):
    return _ct(x)


def _chol_diag(a, dtype):
    return np.linalg.cholesky(_cast(a, dtype))


def _chol_offdiag(lkk, a, dtype):
    # L_ik = A_ik L_kk^{-H}:  L_kk L_ik^H = A_ik^H
    return _ct(np.linalg.solve(lkk, _ct(_cast(a, dtype))))


def _schur_sym(a, lik, ljk, dtype):
    return _cast(a, dtype) - lik @ _ct(ljk)


def _subtract_prod(b, a, x, dtype):
    return _cast(b, dtype) - _cast(a, dtype) @ x


def _trsolve_block(t, b, lower, offset, dtype, vector):
    t = _cast(t, dtype)
    b = _cast(b, dtype)
    x = _trsolve(t, b[:, None] if vector else b, lower, offset)
    return x[:, 0] if vector else x


def _lstsq_sinv(s, rcond, m, n):
    s = np.asarray(s)
    if rcond is None:
        rcond = np.finfo(s.dtype).eps * max(m, n)
    cut = rcond * (s[0] if s.size else 0)
    keep = s > cut
    sinv = np.zeros_like(s)
    sinv[keep] = 1 / s[keep]
    return sinv, np.int64(np.count_nonzero(keep))


# ---------------------------------------------------------------------------
# QR and SVD

def _tsqr_error(data):
    return ValueError(
        "tsqr needs a 2-d array with a single column of blocks (a tall-and-skinny "
        "chunking such as chunks=(rows, -1)); got shape %s with chunks %s (numblocks %s). "
        "Rechunk with x.rechunk({1: -1}), or use qr(), which also handles one row of blocks"
        % (getattr(data, "shape", None), getattr(data, "chunks", None),
           getattr(data, "numblocks", None)))


def _groups(heights, limit):
    """Consecutive groups of children whose stacked height stays <= limit."""
    groups, cur, h = [], [], 0
    for i, x in enumerate(heights):
        if cur and h + x > limit:
            groups.append(cur)
            cur, h = [], 0
        cur.append(i)
        h += x
    if cur:
        groups.append(cur)
    return groups


@_blas_policy
def tsqr(data, compute_svd=False, _max_vchunk_size=None):
    """QR (or, with ``compute_svd``, SVD) of a tall-and-skinny array: one
    column of blocks.  Returns ``q, r`` (``q``: ``(m, k)``, ``r``: ``(k, n)``,
    ``k = min(m, n)``) or ``u, s, vh`` (``(m, k)``, ``(k,)``, ``(k, n)``).

    A reduction tree of local QRs (Benson, Gleich and Demmel, "Direct QR
    factorizations for tall-and-skinny matrices in MapReduce architectures",
    2013): every stacked group of R factors is at most ``max(tallest row
    block, 2 n)`` rows (``_max_vchunk_size`` instead of the tallest block when
    given), so no task works on more than that.  Unknown (nan) row chunk sizes
    are allowed; all R factors are then merged at once and ``m >= n`` is
    assumed for the metadata."""
    data = asarray(data)
    if data.ndim != 2 or data.numblocks[1] != 1:
        raise _tsqr_error(data)
    n = data.shape[1]
    if isnan(n):
        raise ValueError("tsqr: the number of columns is unknown (nan); call "
                         "x.compute_chunk_sizes() first")
    dtype = _lapack_dtype(data.dtype)
    rows = data.chunks[0]
    known = not any(isnan(c) for c in rows)
    token = tokenize(data.name, data.chunks, bool(compute_svd), _max_vchunk_size, "tsqr")
    layers = dict(data._layers)

    leaf = "tsqr-leaf-" + token
    layers[leaf] = {(leaf, i): (_qr_block, (data.name, i, 0), dtype) for i in range(len(rows))}
    # level 0 nodes: the leaves; heights = rows of their R factors
    nodes = [(leaf, i) for i in range(len(rows))]
    heights = [min(c, n) if known else n for c in rows]
    if known:
        tallest = max(rows) if rows else 0
        limit = max(_max_vchunk_size if _max_vchunk_size is not None else tallest, 2 * n, 1)
    else:
        limit = math.inf
    tree = []      # per level: (layer name, groups of child indices)
    level = 0
    while len(nodes) > 1:
        groups = _groups(heights, limit)
        name = "tsqr-merge%d-%s" % (level, token)
        layer = {}
        for g, members in enumerate(groups):
            layer[(name, g)] = (_qr_merge, [(_getitem, nodes[i], 1) for i in members])
        layers[name] = layer
        tree.append((name, groups))
        nodes = [(name, g) for g in range(len(groups))]
        heights = [min(sum(heights[i] for i in members), n) for members in groups]
        level += 1
    top = nodes[0] if nodes else None
    k = min(data.shape[0], n) if known else n

    rname = "tsqr-r-" + token
    e_top = None
    if compute_svd:
        sname = "tsqr-svd-" + token
        layers[sname] = {(sname,): (_svd_small, (_getitem, top, 1))}
        e_top = (_getitem, (sname,), 0)
    # hand the pieces of the final Q factor down the tree
    e_of = {top: e_top}
    for lv in range(len(tree) - 1, -1, -1):
        name, groups = tree[lv]
        dname = "tsqr-down%d-%s" % (lv, token)
        dlayer = {}
        children = [(leaf, i) for i in range(len(rows))] if lv == 0 else \
            [(tree[lv - 1][0], g) for g in range(len(tree[lv - 1][1]))]
        for g, members in enumerate(groups):
            dlayer[(dname, g)] = (_push_down, (name, g), e_of[(name, g)])
            for j, i in enumerate(members):
                e_of[children[i]] = (_getitem, (dname, g), j)
        layers[dname] = dlayer
    qname = ("tsqr-u-" if compute_svd else "tsqr-q-") + token
    layers[qname] = {(qname, i, 0): (_leaf_q, (leaf, i), e_of[(leaf, i)])
                     for i in range(len(rows))}
    q = Array(layers, qname, (rows, (k,)), dtype)
    if not compute_svd:
        layers[rname] = {(rname, 0, 0): (_getitem, top, 1)}
        return q, Array(layers, rname, ((k,), (n,)), dtype)
    real = _real_dtype(dtype)
    s_name, v_name = "tsqr-s-" + token, "tsqr-vh-" + token
    layers[s_name] = {(s_name, 0): (_getitem, (sname,), 1)}
    layers[v_name] = {(v_name, 0, 0): (_getitem, (sname,), 2)}
    return q, Array(layers, s_name, ((k,),), real), Array(layers, v_name, ((k,), (n,)), dtype)


@_blas_policy
def sfqr(data, name=None):
    """QR of a short-and-fat array: one row of blocks, the first column block
    at least as wide as the array is tall (or a single column block).
    ``Q R_1 = A_1``, then ``R_j = Q^H A_j``."""
    data = asarray(data)
    ok = data.ndim == 2 and data.numblocks[0] == 1
    if ok:
        m = data.chunks[0][0]
        ok = data.numblocks[1] == 1 or m <= data.chunks[1][0]
    if not ok:
        raise ValueError(
            "sfqr needs a 2-d array with a single row of blocks whose first column block is "
            "at least as wide as the array is tall (or a single column block); got shape %s "
            "with chunks %s. Rechunk, e.g. x.rechunk({0: -1, 1: %s})"
            % (getattr(data, "shape", None), getattr(data, "chunks", None),
               data.shape[0] if getattr(data, "ndim", 0) == 2 else "..."))
    _check_known(data, "sfqr")
    dtype = _lapack_dtype(data.dtype)
    m, n = data.shape
    token = tokenize(data.name, data.chunks, "sfqr")
    prefix = name or "sfqr"
    layers = dict(data._layers)
    first = "%s-first-%s" % (prefix, token)
    layers[first] = {(first,): (_qr_block, (data.name, 0, 0), dtype)}
    k = min(m, data.chunks[1][0])
    qname, rname = "%s-q-%s" % (prefix, token), "%s-r-%s" % (prefix, token)
    layers[qname] = {(qname, 0, 0): (_getitem, (first,), 0)}
    rl = {(rname, 0, 0): (_getitem, (first,), 1)}
    for j in range(1, data.numblocks[1]):
        rl[(rname, 0, j)] = (_sfqr_rest, (first,), (data.name, 0, j), dtype)
    layers[rname] = rl
    return (Array(layers, qname, ((m,), (k,)), dtype),
            Array(layers, rname, ((k,), data.chunks[1]), dtype))


@_blas_policy
def qr(a):
    """QR factorization (reduced): ``tsqr`` for one column of blocks, ``sfqr``
    for one row of blocks; other chunkings raise NotImplementedError."""
    a = asarray(a)
    if a.ndim != 2:
        raise ValueError("qr: the array must be 2-d; got shape %s" % (a.shape,))
    if a.numblocks[1] == 1 and a.numblocks[0] > 1:
        return tsqr(a)
    if a.numblocks[0] == 1:
        return sfqr(a)
    raise NotImplementedError(
        "qr supports tall-and-skinny arrays (one column of blocks, see tsqr) and "
        "short-and-fat arrays (one row of blocks, see sfqr); got chunks %s. Rechunk, e.g. "
        "x.rechunk({1: -1}) or x.rechunk({0: -1})" % (a.chunks,))


def _svd_flip(u, v):
    """Signs making each right singular vector's sum non-negative (dask's
    ``svd_flip``, v-based); lazy."""

    tot = v.sum(axis=1)
    if v.dtype.kind == "c":
        tot = tot.real
    signs = map_blocks(_sign_of, tot, v.dtype, dtype=v.dtype)
    return u * signs[None, :], v * signs[:, None]


def _sign_of(t, dtype):
    return np.where(t >= 0, 1, -1).astype(dtype)


@_blas_policy
def svd(a, coerce_signs=True, full_matrices=False):
    """Reduced SVD ``u, s, vh`` of an array with one chunked dimension
    (through ``tsqr``); ``coerce_signs`` makes the signs deterministic as
    dask's ``svd_flip`` does.  Both dimensions chunked: NotImplementedError
    (see ``svd_compressed``)."""
    if full_matrices:
        raise NotImplementedError("svd: full_matrices=True is not implemented; use "
                                  "full_matrices=False (the reduced SVD)")
    a = asarray(a)
    if a.ndim != 2:
        raise ValueError("svd: the array must be 2-d; got shape %s (ndim %d)"
                         % (a.shape, a.ndim))
    nb = a.numblocks
    if nb[0] > 1 and nb[1] > 1:
        raise NotImplementedError(
            "svd needs an array chunked in one dimension only (tall-and-skinny or "
            "short-and-fat); got shape %s with numblocks %s. Rechunk, or use "
            "svd_compressed for fully chunked arrays" % (a.shape, nb))
    if nb == (1, 1):
        _check_known(a, "svd")
        dtype = _lapack_dtype(a.dtype)
        m, n = a.shape
        k = min(m, n)
        token = tokenize(a.name, "svd1")
        t = "svd-" + token
        layers = dict(a._layers)
        layers[t] = {(t,): (_svd_full, (a.name, 0, 0), dtype)}
        names = ["svd-u-" + token, "svd-s-" + token, "svd-vh-" + token]
        layers[names[0]] = {(names[0], 0, 0): (_getitem, (t,), 0)}
        layers[names[1]] = {(names[1], 0): (_getitem, (t,), 1)}
        layers[names[2]] = {(names[2], 0, 0): (_getitem, (t,), 2)}
        u = Array(layers, names[0], ((m,), (k,)), dtype)
        s = Array(layers, names[1], ((k,),), _real_dtype(dtype))
        v = Array(layers, names[2], ((k,), (n,)), dtype)
    elif nb[0] > 1:
        u, s, v = tsqr(a, compute_svd=True)
    else:
        vt, s, ut = tsqr(a.T, compute_svd=True)
        u, v = ut.T, vt.T
    if coerce_signs:
        u, v = _svd_flip(u, v)
    return u, s, v


def compression_level(n, q, n_oversamples=10, min_subspace_size=20):
    """Size of the sampled subspace: ``min(max(min_subspace_size, q +
    n_oversamples), n)``."""
    return min(max(min_subspace_size, q + n_oversamples), n)


def _rng(seed):
    if isinstance(seed, _random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        seed = int(seed.randint(0, 2 ** 31 - 1))
    return _random.default_rng(seed)


@_blas_policy
def compression_matrix(data, q, iterator="power", n_power_iter=0, n_oversamples=10, seed=None,
                       compute=False):
    """An orthonormal basis (as rows, ``(l, m)``) of the range of ``data``
    sampled with a Gaussian test matrix (Halko, Martinsson and Tropp 2011),
    with ``n_power_iter`` power (or QR) iterations."""
    if iterator not in ("power", "QR"):
        raise ValueError("compression_matrix: iterator %r is not valid; use 'power' or 'QR'"
                         % (iterator,))
    data = asarray(data)
    if data.ndim != 2:
        raise ValueError("compression_matrix: the array must be 2-d; got shape %s"
                         % (data.shape,))
    _check_known(data, "compression_matrix")
    m, n = data.shape
    level = compression_level(min(m, n), q, n_oversamples=n_oversamples)
    work = np.float32 if data.dtype in (np.dtype(np.float32), np.dtype(np.complex64)) \
        else np.float64
    omega = _rng(seed).standard_normal(size=(n, level), chunks=(data.chunks[1], (level,)))
    if omega.dtype != work:
        omega = omega.astype(work)
    dh = data.conj().T if data.dtype.kind == "c" else data.T

    def keep(x):
        return x.persist() if compute else x

    h = data.dot(omega)
    if iterator == "power":
        for _ in range(n_power_iter):
            h = keep(h)
            h = data.dot(keep(dh.dot(h)))
        basis, _ = tsqr(h)
    else:
        basis, _ = tsqr(h)
        for _ in range(n_power_iter):
            basis, _ = tsqr(dh.dot(keep(basis)))
            basis, _ = tsqr(data.dot(keep(basis)))
    return basis.conj().T if basis.dtype.kind == "c" else basis.T


@_blas_policy
def svd_compressed(a, k, iterator="power", n_power_iter=0, n_oversamples=10, seed=None,
                   compute=False, coerce_signs=True):
    """Randomized rank-``k`` SVD ``u (m, k), s (k,), vh (k, n)`` of an array
    chunked any way (Halko, Martinsson and Tropp 2011).  ``compute=True``
    persists the intermediate products (the data is read once per pass)."""
    a = asarray(a)
    comp = compression_matrix(a, k, iterator=iterator, n_power_iter=n_power_iter,
                              n_oversamples=n_oversamples, seed=seed, compute=compute)
    if compute:
        comp = comp.persist()
    small = comp.dot(a)                       # (l, n) = Q^H a
    # small^T = u2 s vh2, so small = vh2^T s u2^T
    u2, s, vh2 = tsqr(small.T, compute_svd=True)
    u = (comp.conj().T if comp.dtype.kind == "c" else comp.T).dot(vh2.T)
    v = u2.T
    u, s, v = u[:, :k], s[:k], v[:k, :]
    if coerce_signs:
        u, v = _svd_flip(u, v)
    return u, s, v


# ---------------------------------------------------------------------------
# LU, Cholesky, triangular solves

def _square_check(a, what):
    if a.ndim != 2:
        raise ValueError("%s: the array must be 2-d; got shape %s" % (what, a.shape))
    _check_known(a, what)     # before the sizes are compared: nan != nan
    if a.shape[0] != a.shape[1]:
        raise ValueError("%s: the matrix must be square; got shape %s" % (what, a.shape))
    if a.chunks[0] != a.chunks[1]:
        raise ValueError(
            "%s: the chunks of both axes must be equal so that the diagonal blocks are "
            "square; got chunks %s. Use x.rechunk(%d) (or another square chunking)"
            % (what, a.chunks, max(a.chunks[0]) if a.chunks[0] else 1))


def _lu_graph(a, check):
    """(layers, keys of L, keys of U, key of sigma, dtype): see the module doc."""
    dtype = _lapack_dtype(a.dtype)
    c = a.chunks[0]
    nb = len(c)
    off = _offsets(c)
    N = off[-1]
    token = tokenize(a.name, a.chunks, bool(check), "lu")
    layers = dict(a._layers)
    cur = {(i, j): (a.name, i, j) for i in range(nb) for j in range(nb)}
    U = {}
    panels = []
    sigma = None
    pn, cn, un, sn = ("lu-panel-" + token, "lu-col-" + token, "lu-update-" + token,
                      "lu-perm-" + token)
    lp, lc, lu_, ls = {}, {}, {}, {}
    for k in range(nb):
        pk = (pn, k)
        lp[pk] = (_lu_panel, [cur[(i, k)] for i in range(k, nb)], dtype, check, off[k])
        panels.append(pk)
        U[(k, k)] = (_getitem, pk, 2)
        ls[(sn, k)] = (_compose, sigma, pk, off[k], N)
        sigma = (sn, k)
        for j in range(k + 1, nb):
            ck = (cn, k, j)
            lc[ck] = (_lu_column, pk, [cur[(i, j)] for i in range(k, nb)], dtype)
            U[(k, j)] = (_getitem, ck, 0)
            for i in range(k + 1, nb):
                r0 = off[i] - off[k + 1]
                key = (un, k, i, j)
                lu_[key] = (_lu_update, ck, pk, r0, r0 + c[i])
                cur[(i, j)] = key
    layers[pn], layers[cn], layers[un], layers[sn] = lp, lc, lu_, ls
    # L's block columns, with the later permutations applied
    lcn = "lu-lcol-" + token
    layers[lcn] = {(lcn, k): (_lu_lcolumn, panels[k], panels[k + 1:],
                              [off[j] - off[k] for j in range(k + 1, nb)])
                   for k in range(nb)}
    L = {}
    for k in range(nb):
        for i in range(k, nb):
            L[(i, k)] = (_slice_rows, (lcn, k), off[i] - off[k], off[i + 1] - off[k])
    return layers, L, U, sigma, dtype, token


def _block_array(layers, name, blocks, chunks, dtype, lower):
    """An Array from a dict of block tasks; missing blocks (the other triangle)
    are zeros."""
    nb0, nb1 = len(chunks[0]), len(chunks[1])
    layer = {}
    for i in range(nb0):
        for j in range(nb1):
            t = blocks.get((i, j))
            if t is None:
                t = (_zeros, (chunks[0][i], chunks[1][j]), dtype)
            layer[(name, i, j)] = t
    layers = dict(layers)
    layers[name] = layer
    return Array(layers, name, chunks, dtype)


@_blas_policy
def lu(a):
    """``p, l, u`` with ``a = p @ l @ u`` (as ``scipy.linalg.lu``): block LU
    with partial pivoting over whole columns, for a square matrix whose two
    axes have the same chunks."""
    a = asarray(a)
    _square_check(a, "lu")
    layers, L, U, sigma, dtype, token = _lu_graph(a, check=False)
    c = a.chunks[0]
    off = _offsets(c)
    nb = len(c)
    pname = "lu-p-" + token
    P = {(i, j): (_perm_block, sigma, off[i], off[i + 1], off[j], off[j + 1], dtype)
         for i in range(nb) for j in range(nb)}
    if nb == 0:
        P = {}
    p = _block_array(layers, pname, P, a.chunks, dtype, None)
    l_ = _block_array(layers, "lu-l-" + token, L, a.chunks, dtype, True)
    u = _block_array(layers, "lu-u-" + token, U, a.chunks, dtype, False)
    return p, l_, u


def _cholesky_graph(a):
    dtype = _lapack_dtype(a.dtype)
    nb = len(a.chunks[0])
    token = tokenize(a.name, a.chunks, "cholesky")
    layers = dict(a._layers)
    dn, on, sn = "chol-diag-" + token, "chol-off-" + token, "chol-update-" + token
    ld, lo, lsu = {}, {}, {}
    cur = {(i, j): (a.name, i, j) for i in range(nb) for j in range(i + 1)}
    L = {}
    for k in range(nb):
        ld[(dn, k)] = (_chol_diag, cur[(k, k)], dtype)
        L[(k, k)] = (dn, k)
        for i in range(k + 1, nb):
            lo[(on, i, k)] = (_chol_offdiag, (dn, k), cur[(i, k)], dtype)
            L[(i, k)] = (on, i, k)
        for j in range(k + 1, nb):
            for i in range(j, nb):
                key = (sn, k, i, j)
                lsu[key] = (_schur_sym, cur[(i, j)], (on, i, k), (on, j, k), dtype)
                cur[(i, j)] = key
    layers[dn], layers[on], layers[sn] = ld, lo, lsu
    return layers, L, dtype, token


def _cholesky_both(a):
    a = asarray(a)
    _square_check(a, "cholesky")
    layers, L, dtype, token = _cholesky_graph(a)
    lower = _block_array(layers, "cholesky-l-" + token, L, a.chunks, dtype, True)
    U = {(j, i): (_ct_block, t) for (i, j), t in L.items()}
    upper = _block_array(layers, "cholesky-u-" + token, U, a.chunks, dtype, False)
    return lower, upper


@_blas_policy
def cholesky(a, lower=False):
    """Cholesky factor of a Hermitian positive-definite matrix (its lower
    triangle is read, as NumPy): ``L`` with ``a = L L^H`` if ``lower``, else
    ``U`` with ``a = U^H U``.  Block algorithm over square chunks; a matrix
    that is not positive definite raises LinAlgError at compute."""
    lo, up = _cholesky_both(a)
    return lo if lower else up


def _solve_tri_blocks(layers, T, b, lower, dtype, token, unit=False):
    """Block substitution: T given as a dict of block tasks (only its triangle
    is read) over chunks ``c`` = b.chunks[0]; returns the Array x."""
    c = b.chunks[0]
    nb = len(c)
    off = _offsets(c)
    vector = b.ndim == 1
    ncb = 1 if vector else len(b.chunks[1])
    xn, un = "solve-triangular-" + token, "solve-triangular-upd-" + token
    lx, lu_ = {}, {}
    bkey = (lambda i, q: (b.name, i)) if vector else (lambda i, q: (b.name, i, q))
    xkey = (lambda i, q: (xn, i)) if vector else (lambda i, q: (xn, i, q))
    order = range(nb) if lower else range(nb - 1, -1, -1)
    for q in range(ncb):
        cur = {i: bkey(i, q) for i in range(nb)}
        for j in order:
            if unit:
                lx[xkey(j, q)] = (_unit_solve_block, T[(j, j)], cur[j], lower, dtype, vector)
            else:
                lx[xkey(j, q)] = (_trsolve_block, T[(j, j)], cur[j], lower, off[j], dtype,
                                  vector)
            rest = range(j + 1, nb) if lower else range(j)
            for i in rest:
                key = (un, i, j, q)
                lu_[key] = (_subtract_prod, cur[i], T[(i, j)], xkey(j, q), dtype)
                cur[i] = key
    layers = dict(layers)
    layers.update(b._layers)
    layers[un] = lu_
    layers[xn] = lx
    return Array(layers, xn, b.chunks, dtype)


def _unit_solve_block(t, b, lower, dtype, vector):
    t = _cast(t, dtype)
    b = _cast(b, dtype)
    x = _trsolve(t, b[:, None] if vector else b, lower, unit=True)
    return x[:, 0] if vector else x


def _rhs(a, b, what):
    b = asarray(b)
    if b.ndim not in (1, 2):
        raise ValueError("%s: b must be 1-d or 2-d; got shape %s" % (what, b.shape))
    _check_known(b, what)
    if b.shape[0] != a.shape[1]:
        raise ValueError("%s: shapes %s (a) and %s (b) do not match: a.shape[1] must equal "
                         "b.shape[0]" % (what, a.shape, b.shape))
    want = (a.chunks[1],) + b.chunks[1:]
    if b.chunks != want:
        b = b.rechunk(want)
    return b


@_blas_policy
def solve_triangular(a, b, lower=False):
    """Solve ``a x = b`` for triangular ``a`` (only its lower or upper triangle
    is read), ``b`` 1-d or 2-d.  Block substitution; ``a`` is rechunked to
    square diagonal blocks and ``b``'s rows to match.  An exactly zero
    diagonal raises LinAlgError at compute (as SciPy)."""
    a = asarray(a)
    if a.ndim != 2:
        raise ValueError("solve_triangular: a must be 2-d; got shape %s" % (a.shape,))
    if a.shape[0] != a.shape[1]:
        raise ValueError("solve_triangular: a must be square; got shape %s" % (a.shape,))
    _check_known(a, "solve_triangular")
    if a.chunks[0] != a.chunks[1]:
        a = a.rechunk((a.chunks[1], a.chunks[1]))
    b = _rhs(a, b, "solve_triangular")
    dtype = _lapack_dtype(np.result_type(a.dtype, b.dtype))
    nb = len(a.chunks[0])
    T = {(i, j): (a.name, i, j) for i in range(nb) for j in range(nb)}
    token = tokenize(a.name, b.name, bool(lower), "solve_triangular")
    return _solve_tri_blocks(a._layers, T, b, lower, dtype, token)


def _permute_rows(layers, sigma, b, dtype, token):
    """b's rows reordered by the index vector task ``sigma`` (b[sigma])."""
    c = b.chunks[0]
    off = _offsets(c)
    vector = b.ndim == 1
    ncb = 1 if vector else len(b.chunks[1])
    gn, pn = "solve-gather-" + token, "solve-pb-" + token
    lg, lpb = {}, {}
    for q in range(ncb):
        blocks = [(b.name, i) if vector else (b.name, i, q) for i in range(len(c))]
        lg[(gn, q)] = (_take_rows, sigma, blocks, dtype)
        for i in range(len(c)):
            key = (pn, i) if vector else (pn, i, q)
            lpb[key] = (_slice_rows, (gn, q), off[i], off[i + 1])
    layers = dict(layers)
    layers.update(b._layers)
    layers[gn], layers[pn] = lg, lpb
    return Array(layers, pn, b.chunks, dtype)


def _solve(a, b, assume_a, token_extra):
    if assume_a not in ("gen", "pos"):
        raise ValueError("solve: assume_a=%r is not supported; use 'gen' or 'pos'"
                         % (assume_a,))
    dtype = _lapack_dtype(np.result_type(a.dtype, b.dtype))
    token = tokenize(a.name, b.name, assume_a, token_extra, "solve")
    if assume_a == "pos":
        layers, L, _, _t = _cholesky_graph(a)
        y = _solve_tri_blocks(layers, L, b, True, dtype, token + "-l")
        nb = len(a.chunks[0])
        LH = {}
        lname = "solve-lh-" + token
        lh = {}
        for (i, j), t in L.items():
            lh[(lname, j, i)] = (_ct_block, t)
        for i in range(nb):
            for j in range(nb):
                LH[(i, j)] = (lname, i, j)
        layers2 = dict(y._layers)
        layers2[lname] = lh
        return _solve_tri_blocks(layers2, LH, y, False, dtype, token + "-u")
    layers, L, U, sigma, _, _t = _lu_graph(a, check=True)
    pb = _permute_rows(layers, sigma, b, dtype, token)
    y = _solve_tri_blocks(pb._layers, L, pb, True, dtype, token + "-l", unit=True)
    return _solve_tri_blocks(y._layers, U, y, False, dtype, token + "-u")


@_blas_policy
def solve(a, b, sym_pos=None, assume_a="gen"):
    """Solve ``a x = b`` (``a`` square with equal chunks on both axes, ``b``
    1-d or 2-d): block LU with partial pivoting, or Cholesky with
    ``assume_a="pos"``.  A singular ``a`` raises LinAlgError at compute."""
    if sym_pos is not None:
        warnings.warn("solve: sym_pos is deprecated; use assume_a='pos'", FutureWarning,
                      stacklevel=2)
        if sym_pos:
            assume_a = "pos"
    a = asarray(a)
    _square_check(a, "solve")
    b = _rhs(a, b, "solve")
    return _solve(a, b, assume_a, None)


@_blas_policy
def inv(a):
    """Inverse of a square matrix (``solve(a, I)``); a singular matrix raises
    LinAlgError at compute."""
    a = asarray(a)
    _square_check(a, "inv")

    dtype = _lapack_dtype(a.dtype)
    ident = eye(a.shape[0], chunks=a.chunks, dtype=dtype)
    return _solve(a, ident, "gen", "inv")


@_blas_policy
def lstsq(a, b, rcond=None):
    """Least-squares solution of ``a x = b``: ``x, residuals, rank, s`` (as
    dask: residuals are the squared 2-norms of the columns of ``b - a x``,
    shape (1,) for 1-d ``b``, always returned).  Through the SVD of ``a``
    (one chunked dimension, as ``svd``), so rank-deficient systems get the
    minimum-norm solution, singular values below ``rcond * s.max()`` (default
    ``eps * max(m, n)``, NumPy's) counted as zero."""
    a = asarray(a)
    b = asarray(b)
    if a.ndim != 2:
        raise ValueError("lstsq: a must be 2-d; got shape %s" % (a.shape,))
    if b.ndim not in (1, 2):
        raise ValueError("lstsq: b must be 1-d or 2-d; got shape %s" % (b.shape,))
    if b.shape[0] != a.shape[0]:
        raise ValueError("lstsq: incompatible dimensions: a has shape %s and b has shape %s"
                         % (a.shape, b.shape))
    u, s, v = svd(a, coerce_signs=False)
    m, n = a.shape
    token = tokenize(s.name, rcond, m, n, "lstsq")
    t = "lstsq-sinv-" + token
    layers = dict(s._layers)
    layers[t] = {(t,): (_lstsq_sinv, (s.name, 0), rcond, m, n)}
    sn, rn = "lstsq-sinvarr-" + token, "lstsq-rank-" + token
    layers[sn] = {(sn, 0): (_getitem, (t,), 0)}
    layers[rn] = {(rn,): (_getitem, (t,), 1)}
    sinv = Array(layers, sn, s.chunks, s.dtype)
    rank = Array(layers, rn, (), np.int64)
    uh = u.conj().T if u.dtype.kind == "c" else u.T
    vh = v.conj().T if v.dtype.kind == "c" else v.T
    ub = uh.dot(b)
    ub = ub * (sinv[:, None] if b.ndim == 2 else sinv)
    x = vh.dot(ub)
    res = b - a.dot(x)
    res = abs(res * res.conj() if res.dtype.kind == "c" else res ** 2)
    residuals = res.sum(axis=0, keepdims=b.ndim == 1)
    if residuals.dtype.kind == "c":
        residuals = residuals.real
    return x, residuals, rank, s


# ---------------------------------------------------------------------------
# norm

def _svals(x):
    if x.numblocks[0] > 1 and x.numblocks[1] > 1:
        x = x.rechunk({1: -1} if x.shape[1] <= x.shape[0] else {0: -1})
    return svd(x, coerce_signs=False)[1]


@_blas_policy
def _stacked_norm_block(b, ord):
    return np.linalg.norm(b, ord=ord, axis=(-2, -1))


def _stacked_svd_norm(x, ord, row, col, keepdims):
    """The 2, -2 or nuclear norm of each matrix of a stack (``row``, ``col``
    the matrix axes of the N-d ``x``): the two axes are moved last and put
    in one block each, so that every block holds whole matrices, and NumPy
    takes the norms block by block."""
    if any(isnan(c) for d in (row, col) for c in x.chunks[d]):
        raise ValueError("norm: the matrix axes %d and %d have unknown chunk sizes; call "
                         "x.compute_chunk_sizes() first" % (row, col))
    rest = [d for d in range(x.ndim) if d not in (row, col)]
    y = x.transpose(rest + [row, col]).rechunk({x.ndim - 2: -1, x.ndim - 1: -1})
    dtype = np.linalg.norm(np.ones((1, 1), dtype=x.dtype), ord=ord).dtype
    r = map_blocks(_stacked_norm_block, y, ord, dtype=dtype,
                   drop_axis=[x.ndim - 2, x.ndim - 1])
    if keepdims:
        for d in sorted((row, col)):
            r = r.reshape(r.shape[:d] + (1,) + r.shape[d:])
    return r


def norm(x, ord=None, axis=None, keepdims=False):
    """``np.linalg.norm`` from cdask reductions (matrix 2, -2 and nuclear
    norms through ``svd`` for a 2-d array, and for stacks of matrices -
    an N-d array with two axes named - through NumPy block by block, with
    those two axes in one block)."""
    x = asarray(x)
    if x.dtype.kind in "biumM":    # as NumPy: numbers (and datetimes) as float64
        x = x.astype(np.float64)
    if axis is None:
        if ord is None:
            r = abs(x)
            return (r * r).sum(keepdims=keepdims) ** 0.5
        axis = tuple(range(x.ndim))
    elif isinstance(axis, (numbers.Integral, np.integer)):
        axis = (int(axis),)
    else:
        axis = tuple(int(i) for i in axis)
    if len(axis) > 2:
        raise ValueError("Improper number of dimensions to norm.")
    axis = tuple(i % x.ndim if -x.ndim <= i < x.ndim else i for i in axis)
    for i in axis:
        if not 0 <= i < x.ndim:
            raise np.exceptions.AxisError(i, x.ndim)
    if len(axis) == 2 and axis[0] == axis[1]:
        raise ValueError("Duplicate axes given.")
    vec = len(axis) == 1
    if ord == "fro":
        if vec:
            raise ValueError("Invalid norm order 'fro' for vectors")
        ord = None
    if isinstance(ord, str) and ord != "nuc":
        raise ValueError("Invalid norm order %r for %s" % (ord, "vectors" if vec
                                                              else "matrices"))
    r = abs(x)
    if ord is None:
        return (r * r).sum(axis=axis, keepdims=keepdims) ** 0.5
    if vec:
        if ord == "nuc":
            raise ValueError("Invalid norm order 'nuc' for vectors")
        if ord == np.inf:
            return r.max(axis=axis, keepdims=keepdims)
        if ord == -np.inf:
            return r.min(axis=axis, keepdims=keepdims)
        if ord == 0:
            return (r != 0).astype(r.dtype).sum(axis=axis, keepdims=keepdims)
        if ord == 1:
            return r.sum(axis=axis, keepdims=keepdims)
        return (r ** ord).sum(axis=axis, keepdims=keepdims) ** (1.0 / ord)
    row, col = axis
    if ord in (2, -2, "nuc"):
        if x.ndim != 2:
            return _stacked_svd_norm(x, ord, row, col, keepdims)
        s = _svals(x if axis == (0, 1) else x.T)
        r = s.max() if ord == 2 else s.min() if ord == -2 else s.sum()
        if keepdims:
            r = r.reshape((1, 1))
        return r
    if ord in (1, -1):
        t = r.sum(axis=row, keepdims=True)
        t = t.max(axis=col, keepdims=True) if ord == 1 else t.min(axis=col, keepdims=True)
    elif ord in (np.inf, -np.inf):
        t = r.sum(axis=col, keepdims=True)
        t = t.max(axis=row, keepdims=True) if ord == np.inf else t.min(axis=row,
                                                                       keepdims=True)
    else:
        raise ValueError("Invalid norm order %r for matrices" % (ord,))
    if not keepdims:
        t = squeeze(t, axis=axis)
    return t
