"""Tensor contraction: ``tensordot``, ``dot``, ``matmul`` (``@``), ``vdot``, ``outer``, ``einsum``.

Design.  Every contraction of two operands becomes one task per output block
(``_contract``): the task gets the list of A blocks and the list of B blocks
along the contracted axes and, for float32/float64/complex64/complex128
results, runs the C kernel ``gemm`` (src/gemm.c) on a worker without the GIL:
BLAS ?gemm with beta = 0 for the first pair and beta = 1 for the others,
accumulating into the one output chunk - no block product is materialised
and no tree of sums is built.  Integer and boolean results (NumPy does not
use BLAS for them either) run the same plan in a Python task with
``np.matmul``, accumulating in the result dtype (wrapping like NumPy; ``|``
for booleans).

* Operand layout.  A chunk is C-contiguous, so each operand block is seen by
  gemm as a matrix [free | contracted] (NoTrans) or [contracted | free]
  (Trans), after optional leading batch axes.  A transposed operand such as
  ``A.T`` is looked through (``_peel``): the task reads the untransposed
  blocks of ``A`` and gemm's trans flag does the rest.  Layouts that fit
  neither form are transposed lazily (the kernel's input conversion then
  makes the contiguous copy).  Blocks of an in-memory NumPy array that do not
  span whole rows are not contiguous either, so 2-d in-memory operands are
  read as full-width row panels (``_panels``): ``A.T.dot(B)`` and ``A @ B``
  of in-memory arrays copy nothing.
* Chunks along paired contracted axes (and batch axes) are unified to the
  union of both operands' block boundaries (as dask's ``unify_chunks``),
  rechunking the underlying array.  Unknown (nan) chunk sizes raise
  ValueError pointing to ``compute_chunk_sizes()``.
* Load balance.  When a 2-d product has few output blocks for the workers
  (9 blocks on 2 workers), output blocks are split into row or column
  ranges: the tasks read sub-matrices of the same input blocks through
  gemm's leading dimensions (again no copies).
* BLAS threads (policy).  The scheduler's workers (one per core) are the
  parallelism, so BLAS must not add threads of its own: the gemm kernel
  keeps cdask's OpenBLAS at one thread while any gemm kernel runs (C, any
  entry point: compute, cdask.get, a direct Kernel call) and restores the
  previous setting after; and ``compute``/``persist`` of a graph holding
  contractions cap every other BLAS library in the process (NumPy's bundled
  OpenBLAS, via threadpoolctl) at one thread for the duration of the run, so
  that Python tasks calling NumPy beside the C workers do not oversubscribe
  the cores either, restoring them afterwards (``blas_limits``).
* einsum.  One or two operands without repeated labels go through sums and
  ``_contract`` (batch = labels shared and kept, contracted = shared and
  dropped); anything else (three operands, diagonals) runs ``np.einsum`` in
  one Python task per output block, accumulating over the contracted blocks.
"""

import contextlib
import itertools
import math
import numbers
import os
import struct
import threading

import numpy as np

from .. import _core
from .. import _openblas
from .. import config
from .chunk_types import maybe_masked
from .core import Array, transpose, transpose_block
from .creation import asarray
from .elemwise import elemwise
from .reductions import sum as _sum
from .reshape import ravel
from .tokenize import tokenize
from .utils import isnan, merge_layers, with_layer

__all__ = ["tensordot", "dot", "matmul", "vdot", "outer", "einsum"]

_GEMM_MAGIC = 0x6D6D6731
_FLOAT_KINDS = "fc"
_MIN_SPLIT_FLOPS = 2 ** 26     # products smaller than this are not split for balance

# Layers holding contraction tasks: compute() caps BLAS threads while they run.
GEMM_LAYERS = set()


# ---------------------------------------------------------------------------
# BLAS thread policy for compute()/persist()

_blas_lock = threading.Lock()
_blas_depth = 0
_blas_limiter = None
_blas_controller = None


def _controller():
    """threadpoolctl's controller of every BLAS in the process except cdask's own
    OpenBLAS (the gemm kernel manages that one itself); False if none/unavailable."""
    global _blas_controller
    if _blas_controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _blas_controller = False
        else:
            own = os.path.realpath(_openblas.library_path())
            ctl = ThreadpoolController()
            others = [lc.filepath for lc in ctl.lib_controllers
                      if lc.user_api == "blas" and os.path.realpath(lc.filepath) != own]
            _blas_controller = ctl.select(filepath=others) if others else False
    return _blas_controller


@contextlib.contextmanager
def blas_limits(layer_names=None):
    """Cap every BLAS library of the process at one thread while the block runs,
    if ``layer_names`` (default: always) holds a contraction layer.  Nested and
    concurrent uses share one limit; the last to leave restores the settings."""
    global _blas_depth, _blas_limiter
    if layer_names is not None and GEMM_LAYERS.isdisjoint(layer_names):
        yield
        return
    with _blas_lock:
        if _blas_depth == 0:
            ctl = _controller()
            _blas_limiter = ctl.limit(limits=1) if ctl else None
        _blas_depth += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


# ---------------------------------------------------------------------------
# helpers

def _shape_str(s):
    return "(" + ", ".join(str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def _check_known(x, what):
    if maybe_masked(x._layers):
        # the gemm kernels read raw buffers: a mask would be dropped
        raise NotImplementedError("%s: arrays with masked blocks (cdask.ma) are not supported; "
                                  "fill the masked values first: cdask.ma.filled(x, 0)" % what)
    for cc in x.chunks:
        if any(isnan(c) for c in cc):
            raise ValueError(
                "%s: an operand has unknown (nan) chunk sizes %r; call x.compute_chunk_sizes() "
                "first (for example after boolean indexing)" % (what, x.chunks))


def _bounds(chunks):
    out, o = set(), 0
    for c in chunks:
        o += c
        out.add(o)
    return out


def _union_chunks(*chunk_lists):
    """Chunks whose boundaries are the union of all given ones (same total)."""
    b = set()
    for cl in chunk_lists:
        b |= _bounds(cl)
    b = sorted(b)
    out, prev = [], 0
    for x in b:
        if x > prev:
            out.append(x - prev)
        prev = x
    return tuple(out) if out else chunk_lists[0]


def _workers():
    try:
        return max(1, int(config.get("num_workers", 1)))
    except (TypeError, ValueError):
        return 1


def _result_dtype(*dts):
    rt = np.result_type(*dts)
    return rt


def _peel(x):
    """(source Array, perm): x's logical axis i is the source's axis perm[i].
    Looks through chains of transpose layers (their blocks are views)."""
    perm = tuple(range(x.ndim))
    layers = x._layers
    name, chunks = x.name, x.chunks
    while name.startswith("transpose-") and name in layers:
        layer = layers[name]
        task = next(iter(layer.values()), None) if len(layer) else None
        if not (isinstance(task, tuple) and len(task) == 3 and task[0] is transpose_block
                and isinstance(task[1], tuple)):
            break
        axes = tuple(task[2])
        src = task[1][0]
        if src not in layers:
            break
        src_chunks = [None] * len(axes)
        for i, a in enumerate(axes):
            src_chunks[a] = chunks[i]
        perm = tuple(axes[p] for p in perm)
        name, chunks = src, tuple(src_chunks)
    if name == x.name:
        return x, perm
    return Array(layers, name, chunks, x.dtype), perm


class _Op:
    """An operand as gemm sees it: a source array whose memory order is
    [batch][group 1][group 2], logical axis i = source axis perm[i]."""

    def __init__(self, src, perm, trans, nbatch, split, con_order):
        self.src, self.perm, self.trans = src, perm, trans
        self.nbatch, self.split, self.con_order = nbatch, split, con_order


def _fit(perm, batch, free, con, is_a, con_order=None):
    """(trans, split, con_order) if the memory order of an operand with this
    perm is [batch][free|con] or [con|free] (con in con_order if given), else None.
    ``con`` and con_order are lists of logical axes."""
    order = sorted(range(len(perm)), key=lambda i: perm[i])   # logical axes in memory order
    nb = len(batch)
    if list(order[:nb]) != list(batch):
        return None
    rest = order[nb:]
    nf, nc = len(free), len(con)
    options = []
    # A: NoTrans = [free][con]; B: NoTrans = [con][free]
    first_free = [(0, True), (1, False)] if is_a else [(1, True), (0, False)]
    for trans, ff in first_free:
        if ff:
            f, c = rest[:nf], rest[nf:]
            split = nf
        else:
            c, f = rest[:nc], rest[nc:]
            split = nc
        if list(f) != list(free) or sorted(c) != sorted(con):
            continue
        if con_order is not None and list(c) != list(con_order):
            continue
        options.append((trans, split, list(c)))
    if not options:
        return None
    # prefer NoTrans when both fit (1-d vectors)
    return sorted(options)[0]


def _layout(x, batch, free, con, is_a, con_order=None, force_trans=False):
    """Choose the operand's layout: its transpose source if that fits, else
    itself, else a lazy transpose into the canonical order."""
    def fit(p):
        if force_trans:
            return _fit_forced(p, batch, free, con, con_order)
        return _fit(p, batch, free, con, is_a, con_order)

    src, perm = _peel(x)
    cands = [(src, perm)] if src is not x else []
    cands.append((x, tuple(range(x.ndim))))
    for s, p in cands:
        f = fit(p)
        if f is not None:
            return _Op(s, p, f[0], len(batch), f[1], f[2])
    # canonical: A [batch][free][con], B (and a conjugated A) [batch][con][free]

    co = list(con_order) if con_order is not None else list(con)
    if is_a and not force_trans:
        axes = list(batch) + list(free) + co
    else:
        axes = list(batch) + co + list(free)
    t = transpose(x, tuple(axes))
    inv = [0] * len(axes)
    for j, a in enumerate(axes):
        inv[a] = j
    f = fit(tuple(inv))
    return _Op(t, tuple(inv), f[0], len(batch), f[1], f[2])


def _fit_forced(perm, batch, free, con, con_order):
    """The Trans layout only (A's memory [con][free]), for conjugation."""
    order = sorted(range(len(perm)), key=lambda i: perm[i])
    nb = len(batch)
    if list(order[:nb]) != list(batch):
        return None
    rest = order[nb:]
    c, f = rest[:len(con)], rest[len(con):]
    if list(f) != list(free) or sorted(c) != sorted(con):
        return None
    if con_order is not None and list(c) != list(con_order):
        return None
    return (1, len(con), list(c))


def _prepare(op, logical_chunks, dtype):
    """Rechunk the operand's source to the unified logical chunks, cast it."""
    src = op.src
    want = [None] * src.ndim
    for i, c in enumerate(logical_chunks):
        want[op.perm[i]] = tuple(c)
    want = tuple(want)
    if want != src.chunks:
        src = src.rechunk(want)
    if src.dtype != dtype:
        src = src.astype(dtype)
    op.src = src
    return op


def _pieces(src_chunks, want_chunks, s):
    """Output pieces along a free axis: per source block, a list of
    ((lo, hi) range within the block or None for all of it, output block index, length).
    want_chunks refine src_chunks; each is further split in s."""
    out, wi, idx = [], 0, 0
    for c in src_chunks:
        blk = []
        lo = 0
        while lo < c or (c == 0 and not blk):
            w = want_chunks[wi] if wi < len(want_chunks) else c - lo
            wi += 1
            for r0, r1 in (_split_ranges(w, s) if s > 1 and w >= s else [(0, w)]):
                blk.append((lo + r0, lo + r1))
            lo += w
            if c == 0:
                break
        whole = len(blk) == 1 and blk[0] == (0, c)
        out.append([(None if whole else r, idx + j, r[1] - r[0]) for j, r in enumerate(blk)])
        idx += len(blk)
    return out


def _panel_base(op, dtype):
    """The C-contiguous NumPy array op's source views (an in-memory from_array of
    the target dtype, 2-d), or None."""
    src = op.src
    if src.ndim != 2 or src.dtype != dtype:
        return None
    layer = src._layers.get(src.name)
    v = layer.get((src.name, 0, 0)) if isinstance(layer, dict) else None
    if not isinstance(v, np.ndarray):
        return None
    base = v if v.shape == src.shape else v.base
    if not (isinstance(base, np.ndarray) and base.shape == src.shape and
            base.dtype == src.dtype and base.flags.c_contiguous and base.flags.aligned and
            base.dtype.isnative and
            v.__array_interface__["data"][0] == base.__array_interface__["data"][0]):
        return None
    return base


def _set_panels(op, base, logical_chunks, row_ax, col_ax, rows):
    """Read op's source as full-width row panels of ``base`` (contiguous views,
    no copy): rows split by ``rows`` along memory axis 0 (logical axis row_ax),
    memory axis 1 (logical col_ax) whole."""
    name = "panels-" + tokenize(op.src.name, rows)
    pl, o = {}, 0
    for i, c in enumerate(rows):
        pl[(name, i, 0)] = base[o:o + c]
        o += c
    ncol = base.shape[1]
    op.src = Array({name: pl}, name, (tuple(rows), (ncol,)), base.dtype)
    logical_chunks[row_ax] = tuple(rows)
    logical_chunks[col_ax] = (ncol,)


def _panels(a, opa, opb, ach, bch, a_con, a_free, b_con, b_free, dtype):
    """Row panels for in-memory 2-d operands.  One stored [contracted][free]
    (A of A.T.dot(B), B of A @ B) splits along the contracted axis.  One stored
    [free][contracted] (A of A @ B) splits along its free axis and keeps the
    contracted axis whole, which the other operand must then do too: done when
    both are in memory (the other is then one panel: the whole array)."""
    base_a, base_b = _panel_base(opa, dtype), _panel_base(opb, dtype)
    a_rowfree, b_rowfree = not opa.trans, bool(opb.trans)
    if base_a is not None and base_b is not None and (a_rowfree or b_rowfree):
        k = a.shape[a_con]
        full = (k,) if k else (0,)
        ach[a_con] = bch[b_con] = full
        for op, base, ch, con, free, rowfree in ((opa, base_a, ach, a_con, a_free, a_rowfree),
                                                 (opb, base_b, bch, b_con, b_free, b_rowfree)):
            if rowfree:
                _set_panels(op, base, ch, free, con, tuple(ch[free]))
            else:
                _set_panels(op, base, ch, con, free, full)
        return
    if base_a is not None and not a_rowfree:
        _set_panels(opa, base_a, ach, a_con, a_free, tuple(ach[a_con]))
    if base_b is not None and not b_rowfree:
        _set_panels(opb, base_b, bch, b_con, b_free, tuple(bch[b_con]))


def _split_ranges(n, s):
    base, extra = divmod(n, s)
    out, o = [], 0
    for i in range(s):
        ln = base + (1 if i < extra else 0)
        out.append((o, o + ln))
        o += ln
    return out


def _balance(m_chunks, n_chunks, k_total, workers):
    """Split factors (sm, sn) of output blocks so the tasks spread over the workers."""
    nb = len(m_chunks) * len(n_chunks)
    if workers <= 1 or nb == 0:
        return 1, 1
    if nb % workers == 0 and nb >= workers:
        return 1, 1
    flops = sum(m_chunks) * sum(n_chunks) * max(k_total, 1)
    if flops < _MIN_SPLIT_FLOPS * workers:
        return 1, 1
    use_m = max(m_chunks) >= max(n_chunks)
    big = max(m_chunks) if use_m else max(n_chunks)
    for s in range(2, 9):
        if big < 64 * s:
            break
        if (nb * s) % workers == 0 or nb * s >= 8 * workers:
            return (s, 1) if use_m else (1, s)
    return 1, 1


def _py_gemm(spec, A, B):
    """The gemm kernel's computation for integer and boolean dtypes (NumPy, no BLAS)."""
    (nbatch, anb, bnb, asplit, bsplit, ta, tb, dtype) = spec
    dtype = np.dtype(dtype)
    acc = None
    afree = bfree = None
    for a, b in zip(A, B):
        a = np.asarray(a)
        b = np.asarray(b)
        ab, ar = a.shape[:anb], a.shape[anb:]
        bb, br = b.shape[:bnb], b.shape[bnb:]
        g1, g2 = ar[:asplit], ar[asplit:]
        a2 = a.reshape(ab + (math.prod(g1), math.prod(g2)))
        if ta:
            a2 = np.swapaxes(a2, -1, -2)
            if ta == 2:
                a2 = np.conjugate(a2)
            afree = g2
        else:
            afree = g1
        h1, h2 = br[:bsplit], br[bsplit:]
        b2 = b.reshape(bb + (math.prod(h1), math.prod(h2)))
        if tb:
            b2 = np.swapaxes(b2, -1, -2)
            bfree = h1
        else:
            bfree = h2
        p = np.matmul(a2, b2, dtype=dtype)
        if acc is None:
            acc = p
        elif dtype.kind == "b":
            acc |= p
        else:
            acc += p
    return acc.reshape(acc.shape[:-2] + tuple(afree) + tuple(bfree))


_kernel_cache = {}


def _gemm_kernel(nbatch, anb, bnb, asplit, bsplit, ta, tb, m=(0, -1), n=(0, -1)):
    params = struct.pack("=I7i4q", _GEMM_MAGIC, nbatch, anb, bnb, asplit, bsplit, ta, tb,
                         m[0], m[1], n[0], n[1])
    k = _kernel_cache.get(params)
    if k is None:
        if len(_kernel_cache) > 4096:
            _kernel_cache.clear()
        k = _kernel_cache[params] = _core.Kernel("gemm", params)
    return k


def _contract(a, b, a_batch, a_free, a_con, b_batch, b_free, b_con, *, dtype=None,
              conj_a=False, what="tensordot", prefix="tensordot"):
    """The contraction of a and b: shape [batch][a's free][b's free].

    a_batch / b_batch: batch axes (right-aligned against each other, broadcast
    where length 1); a_con[i] pairs with b_con[i]; free axes keep their order.
    Shapes must already be validated by the caller.
    """
    _check_known(a, what)
    _check_known(b, what)
    if dtype is None:
        dtype = _result_dtype(a.dtype, b.dtype)
    dtype = np.dtype(dtype)
    use_c = dtype.kind in _FLOAT_KINDS
    nbatch = max(len(a_batch), len(b_batch))
    # --- unified chunks (logical) ---------------------------------------
    ach = list(a.chunks)
    bch = list(b.chunks)
    for ia, ib in zip(a_con, b_con):
        u = _union_chunks(a.chunks[ia], b.chunks[ib])
        ach[ia] = bch[ib] = u
    out_batch_chunks = []
    for d in range(nbatch):
        da = d - (nbatch - len(a_batch))
        db = d - (nbatch - len(b_batch))
        ax_a = a_batch[da] if da >= 0 else None
        ax_b = b_batch[db] if db >= 0 else None
        la = a.shape[ax_a] if ax_a is not None else 1
        lb = b.shape[ax_b] if ax_b is not None else 1
        if la != 1 and lb != 1:
            u = _union_chunks(a.chunks[ax_a], b.chunks[ax_b])
            ach[ax_a] = bch[ax_b] = u
        elif la != 1:
            u = a.chunks[ax_a]
        elif lb != 1:
            u = b.chunks[ax_b]
        else:
            u = (1,)
        out_batch_chunks.append(tuple(u))
    # --- layouts ---------------------------------------------------------
    pairs = dict(zip(a_con, b_con))
    opa = _layout(a, a_batch, a_free, a_con, True, force_trans=conj_a)
    b_order = [pairs[i] for i in opa.con_order]
    opb = _layout(b, b_batch, b_free, b_con, False, con_order=b_order)
    # in-memory 2-d operands are read as full-width row panels (contiguous
    # views: no copy); an output blocking finer than a panel along its free
    # axis becomes gemm sub-ranges of the panel (see _panels)
    want_m = tuple(ach[a_free[0]]) if len(a_free) == 1 else None
    want_n = tuple(bch[b_free[0]]) if len(b_free) == 1 else None
    plain = use_c and nbatch == 0 and len(a_free) == 1 and len(b_free) == 1
    if plain and len(a_con) == 1:
        _panels(a, opa, opb, ach, bch, a_con[0], a_free[0], b_con[0], b_free[0], dtype)
    _prepare(opa, ach, dtype)
    _prepare(opb, bch, dtype)
    ta = (2 if conj_a and dtype.kind == "c" else 1) if opa.trans else 0
    tb = opb.trans
    # --- output chunks and split ----------------------------------------
    k_total = 1
    for i in a_con:
        k_total *= a.shape[i]
    sm = sn = 1
    if plain:
        sm, sn = _balance(want_m, want_n, k_total, _workers())
    m_pieces = _pieces(ach[a_free[0]], want_m, sm) if len(a_free) == 1 else None
    n_pieces = _pieces(bch[b_free[0]], want_n, sn) if len(b_free) == 1 else None
    out_chunks = list(out_batch_chunks)
    if m_pieces is not None:
        out_chunks.append(tuple(ln for blk in m_pieces for _, _, ln in blk))
    else:
        out_chunks.extend(tuple(ach[i]) for i in a_free)
    if n_pieces is not None:
        out_chunks.append(tuple(ln for blk in n_pieces for _, _, ln in blk))
    else:
        out_chunks.extend(tuple(bch[i]) for i in b_free)
    out_chunks = tuple(out_chunks)
    # --- graph --------------------------------------------------------------
    name = "%s-%s" % (prefix, tokenize(prefix, opa.src.name, opa.perm, opa.trans,
                                       opb.src.name, opb.perm, opb.trans, a_batch, a_free,
                                       a_con, b_batch, b_free, b_con, dtype.str, conj_a,
                                       sm, sn))
    a_numblocks = [len(c) for c in ach]
    b_numblocks = [len(c) for c in bch]
    con_blocks = [range(a_numblocks[i]) for i in opa.con_order]

    def src_key(op, logical_idx):
        idx = [0] * len(logical_idx)
        for i, v in enumerate(logical_idx):
            idx[op.perm[i]] = v
        return (op.src.name,) + tuple(idx)

    def logical(x, batch, free, fidx, con, con_block, bidx):
        # an operand's block index, axis by axis: batch blocks (0 where it
        # broadcasts), its free blocks, and the contracted block of the step
        idx = [0] * x.ndim
        for d, ax in enumerate(batch):
            idx[ax] = bidx[d + (nbatch - len(batch))] if x.shape[ax] != 1 else 0
        for ax, v in zip(free, fidx):
            idx[ax] = v
        for ax in con:
            idx[ax] = con_block(ax)
        return idx

    a_pos = {ax: j for j, ax in enumerate(opa.con_order)}
    b_inv = {v: k for k, v in pairs.items()}
    spec = (nbatch, len(a_batch), len(b_batch), opa.split, opb.split, ta, tb, dtype.str)
    layer = {}
    free_a_ranges = [range(n) for n in (a_numblocks[i] for i in a_free)]
    free_b_ranges = [range(n) for n in (b_numblocks[i] for i in b_free)]
    batch_ranges = [range(len(c)) for c in out_batch_chunks]
    for bidx in itertools.product(*batch_ranges):
        for ai in itertools.product(*free_a_ranges):
            for bi in itertools.product(*free_b_ranges):
                akeys, bkeys = [], []
                for cidx in itertools.product(*con_blocks):
                    akeys.append(src_key(opa, logical(a, a_batch, a_free, ai, a_con,
                                                      lambda ax: cidx[a_pos[ax]], bidx)))
                    bkeys.append(src_key(opb, logical(b, b_batch, b_free, bi, b_con,
                                                      lambda ax: cidx[a_pos[b_inv[ax]]], bidx)))
                mps = m_pieces[ai[0]] if m_pieces is not None else [(None, None, 0)]
                nps = n_pieces[bi[0]] if n_pieces is not None else [(None, None, 0)]
                for mr, mo, _ in mps:
                    for nr, no, _ in nps:
                        oi = list(ai) if mo is None else [mo]
                        oj = list(bi) if no is None else [no]
                        key = (name,) + tuple(bidx) + tuple(oi) + tuple(oj)
                        if use_c:
                            k = _gemm_kernel(nbatch, len(a_batch), len(b_batch), opa.split,
                                             opb.split, ta, tb,
                                             mr if mr is not None else (0, -1),
                                             nr if nr is not None else (0, -1))
                            layer[key] = (k, list(akeys), list(bkeys))
                        else:
                            layer[key] = (_py_gemm, spec, list(akeys), list(bkeys))
    GEMM_LAYERS.add(name)
    layers = with_layer(merge_layers(opa.src, opb.src), name, layer)
    return Array(layers, name, out_chunks, dtype)


# ---------------------------------------------------------------------------
# public functions

def _norm_axis(ax, ndim, what):
    ax = int(ax)
    if not -ndim <= ax < ndim:
        raise np.exceptions.AxisError(ax, ndim)
    return ax % ndim


def _refuse_times(name, a, b):
    """datetime64/timedelta64 operands: NumPy's exception where NumPy refuses
    the product (tried on one element of each), else a TypeError naming it
    (the gemm contractions take numbers only)."""
    for x in (a, b):
        if x.dtype.kind in "mM":
            f = {"tensordot": lambda p, q: np.tensordot(p, q, 1)}.get(name, getattr(np, name))
            with np.errstate(all="ignore"):
                f(np.zeros((1, 1), a.dtype), np.zeros((1, 1), b.dtype))
            raise TypeError("cdask: %s of %s and %s is not supported" % (name, a.dtype, b.dtype))


def tensordot(a, b, axes=2):
    """``np.tensordot``: sum products over the given axes (an int N: the last N
    of ``a`` with the first N of ``b``; or a pair of axis sequences)."""
    a, b = asarray(a), asarray(b)
    _refuse_times("tensordot", a, b)
    _check_known(a, "tensordot")
    _check_known(b, "tensordot")
    if isinstance(axes, (numbers.Integral, np.integer)):
        n = int(axes)
        if n < 0:
            raise ValueError("tensordot: axes must be a non-negative integer, got %d" % n)
        if n > a.ndim or n > b.ndim:
            raise ValueError("shape-mismatch for sum: cannot contract %d axes of shapes %s "
                             "and %s" % (n, _shape_str(a.shape), _shape_str(b.shape)))
        a_axes = list(range(a.ndim - n, a.ndim))
        b_axes = list(range(n))
    else:
        try:
            a_axes, b_axes = axes
        except (TypeError, ValueError):
            raise ValueError("tensordot: axes must be an int or a pair of axis sequences")
        a_axes = [a_axes] if isinstance(a_axes, (numbers.Integral, np.integer)) else list(a_axes)
        b_axes = [b_axes] if isinstance(b_axes, (numbers.Integral, np.integer)) else list(b_axes)
        if len(a_axes) != len(b_axes):
            raise ValueError("shape-mismatch for sum: %d axes of %s paired with %d axes of %s"
                             % (len(a_axes), _shape_str(a.shape), len(b_axes),
                                _shape_str(b.shape)))
        a_axes = [_norm_axis(x, a.ndim, "tensordot") for x in a_axes]
        b_axes = [_norm_axis(x, b.ndim, "tensordot") for x in b_axes]
        if len(set(a_axes)) != len(a_axes) or len(set(b_axes)) != len(b_axes):
            raise ValueError("tensordot: repeated axis in %r" % (axes,))
    for ia, ib in zip(a_axes, b_axes):
        if a.shape[ia] != b.shape[ib]:
            raise ValueError("shape-mismatch for sum: shapes %s and %s, axis %d (length %d) "
                             "and axis %d (length %d)" % (_shape_str(a.shape),
                                                          _shape_str(b.shape), ia,
                                                          a.shape[ia], ib, b.shape[ib]))
    a_free = [i for i in range(a.ndim) if i not in a_axes]
    b_free = [i for i in range(b.ndim) if i not in b_axes]
    return _contract(a, b, [], a_free, a_axes, [], b_free, b_axes, what="tensordot",
                     prefix="tensordot")


def dot(a, b, out=None):
    """``np.dot``: inner product of vectors, matrix product, or a sum over the
    last axis of ``a`` and the second-to-last of ``b``."""
    if out is not None:
        raise NotImplementedError("cdask dot: out= is not supported")
    a, b = asarray(a), asarray(b)
    _refuse_times("dot", a, b)
    if a.ndim == 0 or b.ndim == 0:
        return elemwise(np.multiply, a, b)
    _check_known(a, "dot")
    _check_known(b, "dot")
    bax = 0 if b.ndim == 1 else b.ndim - 2
    if a.shape[-1] != b.shape[bax]:
        raise ValueError("shapes %s and %s not aligned: %d (dim %d) != %d (dim %d)"
                         % (_shape_str(a.shape), _shape_str(b.shape), a.shape[-1],
                            a.ndim - 1, b.shape[bax], bax))
    return _contract(a, b, [], list(range(a.ndim - 1)), [a.ndim - 1], [],
                     [i for i in range(b.ndim) if i != bax], [bax], what="dot", prefix="dot")


def matmul(a, b, out=None, dtype=None, **kwargs):
    """``np.matmul`` / ``@``: matrix products over broadcast batch axes; a 1-d
    operand is a row (left) or column (right) vector whose axis is then dropped."""
    if out is not None:
        raise NotImplementedError("cdask matmul: out= is not supported")
    if kwargs:
        raise NotImplementedError("cdask matmul: %s not supported" % ", ".join(kwargs))
    a, b = asarray(a), asarray(b)
    _refuse_times("matmul", a, b)
    for i, x in enumerate((a, b)):
        if x.ndim == 0:
            raise ValueError("matmul: Input operand %d does not have enough dimensions (has 0, "
                             "gufunc core with signature (n?,k),(k,m?)->(n?,m?) requires 1)" % i)
    _check_known(a, "matmul")
    _check_known(b, "matmul")
    a1, b1 = a.ndim == 1, b.ndim == 1
    a_batch = [] if a1 else list(range(a.ndim - 2))
    a_free = [] if a1 else [a.ndim - 2]
    a_con = [a.ndim - 1]
    b_batch = [] if b1 else list(range(b.ndim - 2))
    b_con = [0] if b1 else [b.ndim - 2]
    b_free = [] if b1 else [b.ndim - 1]
    if a.shape[a_con[0]] != b.shape[b_con[0]]:
        raise ValueError("matmul: Input operand 1 has a mismatch in its core dimension 0, with "
                         "gufunc signature (n?,k),(k,m?)->(n?,m?) (size %d is different from "
                         "%d): shapes %s and %s" % (b.shape[b_con[0]], a.shape[a_con[0]],
                                                    _shape_str(a.shape), _shape_str(b.shape)))
    sa = [a.shape[i] for i in a_batch]
    sb = [b.shape[i] for i in b_batch]
    try:
        np.broadcast_shapes(tuple(sa), tuple(sb))
    except ValueError:
        raise ValueError("matmul: operands could not be broadcast together: batch shapes %s "
                         "and %s (shapes %s and %s)" % (_shape_str(sa), _shape_str(sb),
                                                         _shape_str(a.shape),
                                                         _shape_str(b.shape))) from None
    if dtype is not None:
        dtype = np.dtype(dtype)
    return _contract(a, b, a_batch, a_free, a_con, b_batch, b_free, b_con, dtype=dtype,
                     what="matmul", prefix="matmul")


def vdot(a, b):
    """``np.vdot``: the dot product of the flattened arrays, ``a`` conjugated."""

    a, b = asarray(a), asarray(b)
    _refuse_times("vdot", a, b)
    _check_known(a, "vdot")
    _check_known(b, "vdot")
    if a.size != b.size:
        raise ValueError("vdot: vector lengths do not match: shapes %s and %s (sizes %d and %d)"
                         % (_shape_str(a.shape), _shape_str(b.shape), a.size, b.size))
    _check_known(a, "vdot")
    _check_known(b, "vdot")
    a, b = ravel(a), ravel(b)
    return _contract(a, b, [], [], [0], [], [], [0], conj_a=True, what="vdot", prefix="vdot")


def outer(a, b, out=None):
    """``np.outer``: ``ravel(a)[:, None] * ravel(b)[None, :]``."""

    if out is not None:
        raise NotImplementedError("cdask outer: out= is not supported")
    a, b = ravel(asarray(a)), ravel(asarray(b))
    return elemwise(np.multiply, a[:, None], b[None, :])


# ---------------------------------------------------------------------------
# einsum

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parse_einsum(subscripts, shapes):
    s = subscripts.replace(" ", "")
    if "->" in s:
        ins, out = s.split("->")
        explicit = True
    else:
        ins, out, explicit = s, None, False
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError("einsum: %d operands for %d subscript terms in %r"
                         % (len(shapes), len(terms), subscripts))
    used = set(c for c in s if c.isalpha())
    free_letters = [c for c in _LETTERS if c not in used]
    n_ell = 0
    for t, shp in zip(terms, shapes):
        if "..." in t:
            n_ell = max(n_ell, len(shp) - (len(t) - 3))
    ell = "".join(free_letters[:n_ell])
    out_terms = []
    for t, shp in zip(terms, shapes):
        if "..." in t:
            k = len(shp) - (len(t) - 3)
            if k < 0:
                raise ValueError("einsum: subscripts %r have more labels than dimensions of "
                                 "an operand of shape %s" % (t, _shape_str(shp)))
            t = t.replace("...", ell[n_ell - k:] if k else "")
        for c in t:
            if not c.isalpha():
                raise ValueError("einsum: invalid subscript %r in %r" % (c, subscripts))
        if len(t) != len(shp):
            raise ValueError("einsum: operand of shape %s has %d dimensions but subscripts "
                             "%r give %d" % (_shape_str(shp), len(shp), t, len(t)))
        out_terms.append(t)
    if explicit:
        if "..." in out:
            out = out.replace("...", ell)
        elif n_ell and out is not None:
            pass
        for c in out:
            if not c.isalpha() or c not in "".join(out_terms):
                raise ValueError("einsum: output subscript %r does not appear in the inputs"
                                 % c)
        if len(set(out)) != len(out):
            raise ValueError("einsum: output subscript repeated in %r" % subscripts)
    else:
        counts = {}
        for t in out_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return out_terms, out


def _einsum_block(subs, dtype, combos):
    dtype = np.dtype(dtype)
    acc = None
    for blocks in combos:
        r = np.einsum(subs, *blocks, dtype=dtype, casting="unsafe")
        if acc is None:
            acc = np.array(r, dtype=dtype, copy=True)
        elif dtype.kind == "b":
            acc |= r
        else:
            acc += r
    return acc


def einsum(subscripts, *operands, dtype=None, optimize=False, split_every=None,
           casting="safe", order="K", **kwargs):
    """``np.einsum`` (dask's signature).  Two-operand contractions and
    one-operand sums/transposes run through the gemm contraction; other forms
    call ``np.einsum`` per output block in Python tasks."""
    if kwargs.get("out") is not None:
        raise NotImplementedError("cdask einsum: out= is not supported")
    if not isinstance(subscripts, str):
        raise NotImplementedError("cdask einsum: only the subscripts-string form is supported")
    ops = [asarray(x) for x in operands]
    if not ops:
        raise ValueError("einsum: no operands")
    for o in ops:
        _check_known(o, "einsum")
    terms, out = _parse_einsum(subscripts, [o.shape for o in ops])
    sizes = {}
    for t, o in zip(terms, ops):
        for c, n in zip(t, o.shape):
            if c in sizes and sizes[c] != n and n != 1 and sizes[c] != 1:
                raise ValueError("einsum: operands could not be broadcast together: label %r "
                                 "has lengths %d and %d (shapes %s)"
                                 % (c, sizes[c], n, ", ".join(_shape_str(x.shape) for x in ops)))
            if c not in sizes or sizes[c] == 1:
                sizes[c] = n
    rt = np.result_type(*[o.dtype for o in ops])
    if dtype is not None:
        dtype = np.dtype(dtype)
        for o in ops:
            if not np.can_cast(o.dtype, dtype, casting=casting):
                raise TypeError("einsum: cannot cast %s to %s with casting=%r"
                                % (o.dtype, dtype, casting))
        rt = dtype
    for o in ops:
        _check_known(o, "einsum")
    no_repeats = all(len(set(t)) == len(t) for t in terms)
    no_bcast = all(sizes[c] == n for t, o in zip(terms, ops) for c, n in zip(t, o.shape))
    if no_repeats and no_bcast and len(ops) <= 2:
        return _einsum_contract(terms, out, ops, rt, split_every)
    return _einsum_python(terms, out, ops, rt, sizes)


def _sum_out(x, term, keep, rt, split_every):
    """Sum x over the labels of term not in keep; returns (array, term left)."""
    axes = tuple(i for i, c in enumerate(term) if c not in keep)
    if not axes:
        return (x if x.dtype == rt else x.astype(rt)), term

    y = _sum(x, axis=axes, dtype=rt, split_every=split_every)
    return y, "".join(c for c in term if c in keep)


def _einsum_contract(terms, out, ops, rt, split_every):
    if len(ops) == 1:
        y, t = _sum_out(ops[0], terms[0], set(out), rt, split_every)
        return transpose(y, tuple(t.index(c) for c in out)) if t != out else y
    (ta, tb), (a, b) = terms, ops
    a, ta2 = _sum_out(a, ta, set(out) | set(tb), rt, split_every)
    b, tb2 = _sum_out(b, tb, set(out) | set(ta2), rt, split_every)
    batch = [c for c in out if c in ta2 and c in tb2]
    con = [c for c in ta2 if c in tb2 and c not in out]
    afree = [c for c in ta2 if c not in tb2]
    bfree = [c for c in tb2 if c not in ta2]
    r = _contract(a, b, [ta2.index(c) for c in batch], [ta2.index(c) for c in afree],
                  [ta2.index(c) for c in con], [tb2.index(c) for c in batch],
                  [tb2.index(c) for c in bfree], [tb2.index(c) for c in con], dtype=rt,
                  what="einsum", prefix="einsum")
    have = "".join(batch + afree + bfree)
    if have != out:
        r = transpose(r, tuple(have.index(c) for c in out))
    return r


def _einsum_python(terms, out, ops, rt, sizes):
    # unify chunks per label over the operands where its length is not 1
    chunks = {}
    for c in sizes:
        cl = [o.chunks[j] for t, o in zip(terms, ops) for j, cc in enumerate(t)
              if cc == c and o.shape[j] == sizes[c]]
        chunks[c] = _union_chunks(*cl) if cl else (sizes[c],)
    new_ops = []
    for t, o in zip(terms, ops):
        want = tuple(chunks[c] if o.shape[i] == sizes[c] else o.chunks[i]
                     for i, c in enumerate(t))
        new_ops.append(o.rechunk(want) if want != o.chunks else o)
    ops = new_ops
    summed = sorted(set(c for t in terms for c in t) - set(out))
    subs = ",".join(terms) + "->" + out
    name = "einsum-" + tokenize(subs, [o.name for o in ops], rt.str)
    layer = {}
    out_ranges = [range(len(chunks[c])) for c in out]
    sum_ranges = [range(len(chunks[c])) for c in summed]
    for oidx in itertools.product(*out_ranges):
        pos = dict(zip(out, oidx))
        combos = []
        for sidx in itertools.product(*sum_ranges):
            pos.update(zip(summed, sidx))
            keys = []
            for t, o in zip(terms, ops):
                keys.append((o.name,) + tuple(pos[c] if o.shape[i] == sizes[c] else 0
                                              for i, c in enumerate(t)))
            combos.append(keys)
        layer[(name,) + oidx] = (_einsum_block, subs, rt.str, combos)
    GEMM_LAYERS.add(name)
    return Array(with_layer(merge_layers(*ops), name, layer), name,
                 tuple(chunks[c] for c in out), rt)
