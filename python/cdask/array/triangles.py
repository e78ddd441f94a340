"""Triangles and diagonals: ``tri``, ``tril``, ``triu``, ``diag``, ``diagonal``,
``trace`` and the ``tril_indices``/``triu_indices`` family.

Every function here works on the block grid alone: a block's part of a
triangle or of a diagonal follows from the offsets of its rows and columns,
so the graph is built from the chunks (ragged ones too) without computing
anything.  A block of ``tril``/``triu`` wholly inside the kept triangle is the
input block itself (an alias); one wholly outside is a block of zeros that
reads nothing.  ``diagonal`` walks the diagonal through the blocks it crosses,
one task per piece.  The index functions know their lengths in closed form,
so their results have known chunk sizes (dask's come from ``nonzero`` and
have unknown ones).  The axes these functions index must have known chunk
sizes; other axes may not.
"""

import bisect
import operator

import numpy as np

from .chunks import chunk_offsets, normalize_chunks
from .core import Array
from .creation import asarray
from .dtypes import check_dtype
from .reductions import sum as _sum
from .reshape import broadcast_to
from .tokenize import tokenize
from .utils import isnan, normalize_axis_index, with_layer

__all__ = ["tri", "tril", "triu", "diag", "diagonal", "trace", "tril_indices",
           "tril_indices_from", "triu_indices", "triu_indices_from"]


def _zeros_block(shape, dtype):
    return np.zeros(shape, dtype=dtype)


def _tri_block(rows, cols, k, dtype):
    return np.tri(rows, cols, k, dtype=dtype)


def _tril_block(b, k):
    return np.tril(b, k)


def _triu_block(b, k):
    return np.triu(b, k)


def _known_axes(a, axes, what):
    for ax in axes:
        if any(isnan(c) for c in a.chunks[ax]):
            raise ValueError("%s needs known chunk sizes along axis %d, but they are unknown "
                             "(nan); call x.compute_chunk_sizes() first" % (what, ax))


def tri(N, M=None, k=0, dtype=float, chunks="auto", *, like=None):
    """``np.tri``: an (N, M) array with ones at and below the k-th diagonal."""
    N = operator.index(N)
    M = N if M is None else operator.index(M)
    k = operator.index(k)
    if N < 0 or M < 0:
        raise ValueError("negative dimensions are not allowed")
    dtype = check_dtype(dtype)
    chunks = normalize_chunks(chunks, (N, M), dtype=dtype)
    name = "tri-" + tokenize(N, M, k, dtype, chunks)
    ro, co = chunk_offsets(chunks[0]), chunk_offsets(chunks[1])
    layer = {}
    for i, h in enumerate(chunks[0]):
        for j, w in enumerate(chunks[1]):
            layer[(name, i, j)] = (_tri_block, h, w, k + ro[i] - co[j], dtype)
    return Array({name: layer}, name, chunks, dtype)


def _triangle(m, k, lower):
    what = "tril" if lower else "triu"
    m = asarray(m)
    k = operator.index(k)
    if m.ndim == 0:
        raise TypeError("%s needs an array of at least 1 dimension; got a 0-d array" % what)
    if m.ndim == 1:
        # NumPy masks the rows of the (n, n) broadcast of a 1-d array
        _known_axes(m, [0], what)
        m = broadcast_to(m, (m.shape[0],) * 2, chunks=(m.chunks[0],) * 2)
    nd = m.ndim
    _known_axes(m, [nd - 2, nd - 1], what)
    ro, co = chunk_offsets(m.chunks[-2]), chunk_offsets(m.chunks[-1])
    name = "%s-%s" % (what, tokenize(what, m.name, k))
    fn = _tril_block if lower else _triu_block
    layer = {}
    for key in m._keys_flat():
        i, j = key[-2], key[-1]
        h, w = m.chunks[-2][i], m.chunks[-1][j]
        kk = k + ro[i] - co[j]            # the block's own diagonal offset
        # column minus row over the block ranges from -(h - 1) to w - 1
        if h and w and (w - 1 <= kk if lower else -(h - 1) >= kk):
            task = key                    # wholly kept
        elif h and w and (-(h - 1) > kk if lower else w - 1 < kk) and \
                not any(isnan(m.chunks[d][key[1 + d]]) for d in range(nd - 2)):
            shape = tuple(m.chunks[d][key[1 + d]] for d in range(nd))
            task = (_zeros_block, shape, m.dtype)   # reads nothing
        else:
            task = (fn, key, kk)
        layer[(name,) + key[1:]] = task
    return Array(with_layer(m._layers, name, layer), name, m.chunks, m.dtype)


def tril(m, k=0):
    """``np.tril``: zeros above the k-th diagonal of the last two axes."""
    return _triangle(m, k, True)


def triu(m, k=0):
    """``np.triu``: zeros below the k-th diagonal of the last two axes."""
    return _triangle(m, k, False)


def _diag_block(b):
    return np.diag(b)


def diag(v, k=0):
    """``np.diag``: of a 1-d array, the 2-d array with it on the k-th diagonal;
    of a 2-d array, its k-th diagonal."""
    v = asarray(v)
    k = operator.index(k)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError("Input must be 1- or 2-d.")
    _known_axes(v, [0], "diag")
    c = v.chunks[0]
    pad = (abs(k),) if k else ()
    rows = c + pad if k >= 0 else pad + c
    cols = pad + c if k >= 0 else c + pad
    di = 1 if k < 0 else 0               # block (i + di, i + dj) holds diag(v_i)
    dj = 1 if k > 0 else 0
    name = "diag-" + tokenize(v.name, k)
    layer = {}
    for i, h in enumerate(rows):
        for j, w in enumerate(cols):
            b = i - di
            if b == j - dj and 0 <= b < len(c):
                layer[(name, i, j)] = (_diag_block, (v.name, b))
            else:
                layer[(name, i, j)] = (_zeros_block, (h, w), v.dtype)
    return Array(with_layer(v._layers, name, layer), name, (rows, cols), v.dtype)


def _diagonal_block(b, offset, axis1, axis2, start, length):
    d = np.diagonal(b, offset, axis1, axis2)
    return d[..., start:start + length].copy()


def _block_of(offsets, pos):
    # the block holding index ``pos`` (empty blocks hold nothing)
    return bisect.bisect_right(offsets, pos) - 1


def diagonal(a, offset=0, axis1=0, axis2=1):
    """``np.diagonal``: the ``offset`` diagonal of the planes of ``axis1`` and
    ``axis2``, as a new last axis (the other axes keep their order and chunks)."""
    a = asarray(a)
    offset = operator.index(offset)
    if a.ndim < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    ax1 = normalize_axis_index(axis1, a.ndim)
    ax2 = normalize_axis_index(axis2, a.ndim)
    if ax1 == ax2:
        raise ValueError("axis1 and axis2 cannot be the same")
    _known_axes(a, [ax1, ax2], "diagonal")
    n1, n2 = a.shape[ax1], a.shape[ax2]
    r, c = max(0, -offset), max(0, offset)
    length = max(0, min(n1 - r, n2 - c))
    ro, co = chunk_offsets(a.chunks[ax1]), chunk_offsets(a.chunks[ax2])
    pieces = []                           # (row block, col block, local row, local col, n)
    while len(pieces) == 0 or length > 0:
        if length == 0:                   # an empty diagonal: one empty block
            pieces.append((0, 0, 0, 0, 0))
            break
        i, j = _block_of(ro, r), _block_of(co, c)
        n = min(ro[i + 1] - r, co[j + 1] - c, length)
        pieces.append((i, j, r - ro[i], c - co[j], n))
        r, c, length = r + n, c + n, length - n
    other = [d for d in range(a.ndim) if d not in (ax1, ax2)]
    name = "diagonal-" + tokenize(a.name, offset, ax1, ax2)
    layer = {}
    for s, (i, j, lr, lc, n) in enumerate(pieces):
        for key in _grid([a.numblocks[d] for d in other]):
            idx = [0] * a.ndim
            for d, x in zip(other, key):
                idx[d] = x
            idx[ax1], idx[ax2] = i, j
            layer[(name,) + key + (s,)] = (_diagonal_block, (a.name,) + tuple(idx),
                                           lc - lr, ax1, ax2, min(lr, lc), n)
    chunks = tuple(a.chunks[d] for d in other) + (tuple(p[4] for p in pieces),)
    return Array(with_layer(a._layers, name, layer), name, chunks, a.dtype)


def _grid(numblocks):
    out = [()]
    for n in numblocks:
        out = [k + (x,) for k in out for x in range(n)]
    return out


def trace(a, offset=0, axis1=0, axis2=1, dtype=None):
    """``np.trace``: the sums along the ``offset`` diagonals (the dtype of a
    ``sum``: small integers sum as the platform integer)."""
    return _sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


# ---------------------------------------------------------------------------
# tril_indices, triu_indices
# ---------------------------------------------------------------------------
def _row_counts(n, m, k, upper):
    r = np.arange(n, dtype=np.int64)
    if upper:
        return np.clip(m - np.maximum(r + k, 0), 0, m)
    return np.clip(r + k + 1, 0, m)


def _tri_indices_block(n, m, k, upper, p0, p1, which):
    counts = _row_counts(n, m, k, upper)
    ends = np.cumsum(counts)
    pos = np.arange(p0, p1, dtype=np.int64)
    rows = np.searchsorted(ends, pos, side="right")
    if which == 0:
        return rows.astype(np.intp)
    first = pos - (ends[rows] - counts[rows])        # place within the row
    if upper:
        first += np.maximum(rows + k, 0)
    return first.astype(np.intp)


def _tri_indices(n, k, m, chunks, upper):
    what = "triu_indices" if upper else "tril_indices"
    n = operator.index(n)
    k = operator.index(k)
    m = n if m is None else operator.index(m)
    if n < 0 or m < 0:
        raise ValueError("negative dimensions are not allowed")
    counts = _row_counts(n, m, k, upper)
    total = int(counts.sum())
    if isinstance(chunks, str) or chunks is None:
        out_chunks = normalize_chunks("auto" if chunks is None else chunks, (total,),
                                      dtype=np.intp)[0]
    else:
        # dask's meaning: the chunks of the (n, m) grid; one block per row band
        bands = normalize_chunks(chunks, (n, m), dtype=bool)[0]
        ends = chunk_offsets(bands)
        out_chunks = tuple(int(counts[ends[b]:ends[b + 1]].sum()) for b in range(len(bands)))
        out_chunks = tuple(x for x in out_chunks if x) or (0,)
    offs = chunk_offsets(out_chunks)
    token = tokenize(what, n, m, k, out_chunks)
    out = []
    for which in (0, 1):
        name = "%s-%d-%s" % (what, which, token)
        layer = {(name, b): (_tri_indices_block, n, m, k, upper, offs[b], offs[b + 1], which)
                 for b in range(len(out_chunks))}
        out.append(Array({name: layer}, name, (out_chunks,), np.intp))
    return tuple(out)


def tril_indices(n, k=0, m=None, chunks="auto"):
    """``np.tril_indices``: (rows, cols) of the lower triangle of an (n, m)
    array, row by row.  ``chunks``: "auto" for the index arrays themselves,
    or the chunks of the (n, m) grid as in dask (one block per band of rows);
    the chunk sizes are known."""
    return _tri_indices(n, k, m, chunks, False)


def triu_indices(n, k=0, m=None, chunks="auto"):
    """``np.triu_indices``: (rows, cols) of the upper triangle of an (n, m)
    array, row by row; ``chunks`` as for :func:`tril_indices`."""
    return _tri_indices(n, k, m, chunks, True)


def _from(arr, k, upper):
    what = "triu_indices_from" if upper else "tril_indices_from"
    arr = asarray(arr)
    if arr.ndim != 2:
        raise ValueError("input array must be 2-d")
    _known_axes(arr, [0, 1], what)
    return _tri_indices(arr.shape[-2], k, arr.shape[-1], arr.chunks, upper)


def tril_indices_from(arr, k=0):
    """``np.tril_indices_from``: :func:`tril_indices` of ``arr``'s shape, one
    block per band of ``arr``'s rows."""
    return _from(arr, k, False)


def triu_indices_from(arr, k=0):
    """``np.triu_indices_from``: :func:`triu_indices` of ``arr``'s shape, one
    block per band of ``arr``'s rows."""
    return _from(arr, k, True)
