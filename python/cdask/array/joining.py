"""Joining arrays: ``concatenate``, ``stack``, ``hstack``, ``vstack``,
``dstack``, ``block``, ``atleast_1d/2d/3d``, ``diff``, ``ediff1d``, ``roll``.

``concatenate`` makes no new data tasks: the output's blocks along the
joined axis are the input blocks one after another (aliases, or a cast when
the result dtype differs); the other axes are first brought to a common
chunking.  ``roll`` slices and concatenates.
"""

import operator

import numpy as np

from .core import Array
from .creation import asarray
from .reshape import broadcast_to, expand_dims, ravel, reshape
from .tokenize import tokenize
from .utils import (common_chunks, isnan, merge_layers, normalize_axis_index,
                    unknown_chunks_error, with_layer)

__all__ = ["concatenate", "stack", "hstack", "vstack", "dstack", "block", "atleast_1d",
           "atleast_2d", "atleast_3d", "diff", "ediff1d", "roll"]


def _is_unknown(c):
    return any(isnan(v) for v in c)


def _cast_block(b, dtype):
    return b.astype(dtype, copy=False)


def _unify_other_axes(arrays, axis):
    """Rechunk so that every axis but ``axis`` has the same chunks everywhere."""
    nd = arrays[0].ndim
    want = []
    for d in range(nd):
        if d == axis:
            want.append(None)
            continue
        lists = [a.chunks[d] for a in arrays]
        if any(_is_unknown(c) for c in lists) and any(c != lists[0] for c in lists):
            raise ValueError("concatenate: axis %d has unknown (nan) chunk sizes that are not "
                             "identical in every array; call compute_chunk_sizes() first" % d)
        want.append(common_chunks(lists, None))
    out = []
    for a in arrays:
        w = {d: want[d] for d in range(nd) if d != axis and a.chunks[d] != want[d]}
        out.append(a.rechunk(w) if w else a)
    return out, want


def concatenate(seq, axis=0, allow_unknown_chunksizes=False):
    """``np.concatenate``: join arrays along an existing axis (``axis=None``:
    the flattened arrays).  Unknown (nan) chunk sizes are fine along the
    joined axis, and across it where they are identical in every array
    (``allow_unknown_chunksizes`` is accepted for dask's signature)."""

    if isinstance(seq, Array) or isinstance(seq, np.ndarray):
        seq = [seq[i] for i in range(len(seq))]
    seq = [asarray(a) for a in seq]
    if not seq:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        seq = [ravel(a) for a in seq]
        axis = 0
    nd = seq[0].ndim
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    for k, a in enumerate(seq):
        if a.ndim != nd:
            raise ValueError("all the input arrays must have same number of dimensions, but "
                             "the array at index 0 has %d dimension(s) and the array at index "
                             "%d has %d dimension(s)" % (nd, k, a.ndim))
    axis = normalize_axis_index(axis, nd)
    for k, a in enumerate(seq[1:], 1):
        for d in range(nd):
            if d == axis:
                continue
            s0, s1 = seq[0].shape[d], a.shape[d]
            if isnan(s0) or isnan(s1):
                continue
            if s0 != s1:
                raise ValueError("all the input array dimensions except for the concatenation "
                                 "axis must match exactly, but along dimension %d, the array "
                                 "at index 0 has size %d and the array at index %d has size %d"
                                 % (d, s0, k, s1))
    dtype = np.result_type(*[a.dtype for a in seq])
    if len(seq) == 1:
        return seq[0].astype(dtype)
    seq, other = _unify_other_axes(seq, axis)
    name = "concatenate-" + tokenize([a.name for a in seq], axis, dtype)
    layer = {}
    j0 = 0
    for a in seq:
        cast = a.dtype != dtype
        for k in a._keys_flat():
            idx = list(k[1:])
            idx[axis] += j0
            layer[(name,) + tuple(idx)] = (_cast_block, k, dtype) if cast else k
        j0 += a.numblocks[axis]
    chunks = list(other)
    chunks[axis] = tuple(c for a in seq for c in a.chunks[axis])
    return Array(with_layer(merge_layers(*seq), name, layer), name, tuple(chunks), dtype)


def stack(seq, axis=0, allow_unknown_chunksizes=False):
    """``np.stack``: join arrays of the same shape along a new axis."""

    if isinstance(seq, Array) or isinstance(seq, np.ndarray):
        seq = [seq[i] for i in range(len(seq))]
    seq = [asarray(a) for a in seq]
    if not seq:
        raise ValueError("need at least one array to stack")
    shape = seq[0].shape
    for a in seq[1:]:
        if a.shape != shape and not any(isnan(s) for s in a.shape + shape):
            raise ValueError("all input arrays must have the same shape")
        if a.ndim != len(shape):
            raise ValueError("all input arrays must have the same shape")
    axis = normalize_axis_index(axis, len(shape) + 1)
    return concatenate([expand_dims(a, axis) for a in seq], axis=axis)


def _atleast(a, nd):
    a = asarray(a)
    if a.ndim >= nd:
        return a
    if nd == 3:
        if a.ndim == 0:
            return a[None, None, None]
        if a.ndim == 1:
            return a[None, :, None]
        return a[:, :, None]
    return a[(None,) * (nd - a.ndim)]


def atleast_1d(*arys):
    """``np.atleast_1d``."""
    r = [_atleast(a, 1) for a in arys]
    return r[0] if len(r) == 1 else r


def atleast_2d(*arys):
    """``np.atleast_2d``."""
    r = [_atleast(a, 2) for a in arys]
    return r[0] if len(r) == 1 else r


def atleast_3d(*arys):
    """``np.atleast_3d``."""
    r = [_atleast(a, 3) for a in arys]
    return r[0] if len(r) == 1 else r


def _as_list(tup):
    if isinstance(tup, (Array, np.ndarray)):
        return [tup[i] for i in range(len(tup))]
    return list(tup)


def hstack(tup, allow_unknown_chunksizes=False):
    """``np.hstack``: along axis 1 (axis 0 for 1-d arrays)."""
    arrs = [_atleast(a, 1) for a in _as_list(tup)]
    if arrs and arrs[0].ndim == 1:
        return concatenate(arrs, axis=0)
    return concatenate(arrs, axis=1)


def vstack(tup, allow_unknown_chunksizes=False):
    """``np.vstack``: along axis 0 after ``atleast_2d``."""
    return concatenate([_atleast(a, 2) for a in _as_list(tup)], axis=0)


def dstack(tup, allow_unknown_chunksizes=False):
    """``np.dstack``: along axis 2 after ``atleast_3d``."""
    return concatenate([_atleast(a, 3) for a in _as_list(tup)], axis=2)


def _block_depth(arrays, index=()):
    """(list depth, max ndim of the leaves); NumPy's errors for bad nesting."""
    if type(arrays) is tuple:
        raise TypeError("%s is a tuple. Only lists can be used to arrange blocks, and "
                        "np.block does not allow implicit conversion from tuple to ndarray."
                        % ("arrays" + "".join("[%d]" % i for i in index)))
    if type(arrays) is list:
        if not arrays:
            raise ValueError("List at %s cannot be empty"
                             % ("arrays" + "".join("[%d]" % i for i in index)))
        results = [_block_depth(a, index + (k,)) for k, a in enumerate(arrays)]
        depths = {r[0] for r in results}
        if len(depths) > 1:
            raise ValueError("List depths are mismatched. First element was at depth %d, "
                             "but there is an element at depth %d"
                             % (results[0][0] + 1, [r[0] for r in results
                                                    if r[0] != results[0][0]][0] + 1))
        return results[0][0] + 1, max(r[1] for r in results)
    return 0, np.ndim(arrays) if not isinstance(arrays, Array) else arrays.ndim


def block(arrays, allow_unknown_chunksizes=False):
    """``np.block``: assemble an array from nested lists of blocks (the
    innermost lists join along the last axis, the next level out along the
    one before, ...)."""
    depth, maxnd = _block_depth(arrays)
    nd = max(depth, maxnd)

    def rec(node, level):
        if type(node) is list:
            return concatenate([rec(b, level + 1) for b in node], axis=level - depth)
        a = asarray(node)
        if a.ndim < nd:
            a = a[(None,) * (nd - a.ndim)]
        return a

    if depth == 0:
        return asarray(arrays)
    return rec(arrays, 0)


# ---------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------
def _edge(v, a, axis):
    """``prepend``/``append`` value as an Array fitting ``a`` along ``axis``."""

    v = asarray(v)
    if v.ndim == 0:
        shape = list(a.shape)
        shape[axis] = 1
        v = broadcast_to(v, tuple(shape))
    return v


def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    """``np.diff``: the n-th discrete difference along ``axis`` (``not_equal``
    for booleans, as NumPy)."""
    a = asarray(a)
    n = operator.index(n)
    if n < 0:
        raise ValueError("order must be non-negative but got %d" % n)
    if n == 0:
        return a
    if a.ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = normalize_axis_index(axis, a.ndim)
    parts = []
    if prepend is not np._NoValue and prepend is not None:
        parts.append(_edge(prepend, a, axis))
    parts.append(a)
    if append is not np._NoValue and append is not None:
        parts.append(_edge(append, a, axis))
    if len(parts) > 1:
        a = concatenate(parts, axis=axis)
    if isnan(a.shape[axis]):
        raise ValueError("diff needs known chunk sizes along axis %d; call "
                         "compute_chunk_sizes() first" % axis)
    op = np.not_equal if a.dtype == np.bool_ else np.subtract
    hi = [slice(None)] * a.ndim
    lo = [slice(None)] * a.ndim
    hi[axis] = slice(1, None)
    lo[axis] = slice(None, -1)
    hi, lo = tuple(hi), tuple(lo)
    for _ in range(n):
        a = op(a[hi], a[lo])
    return a


def _ediff1d_edge(v, dtype, which):
    v = asarray(v)
    if not np.can_cast(v.dtype, dtype, casting="same_kind"):
        raise TypeError("dtype of `%s` must be compatible with input `ary` under the "
                        "`same_kind` rule." % which)
    v = ravel(v)
    return v if v.dtype == dtype else v.astype(dtype)


def ediff1d(ary, to_end=None, to_begin=None):
    """``np.ediff1d``: differences of consecutive elements of the flattened
    array, with ``to_begin`` and ``to_end`` (flattened, cast to ``ary``'s
    dtype) before and after them."""
    a = ravel(asarray(ary))
    if isnan(a.shape[0]):
        raise unknown_chunks_error("ediff1d")
    dtype = a.dtype
    parts = [a[1:] - a[:-1]]    # np.subtract: booleans raise TypeError, as NumPy
    if to_begin is not None:
        parts.insert(0, _ediff1d_edge(to_begin, dtype, "to_begin"))
    if to_end is not None:
        parts.append(_ediff1d_edge(to_end, dtype, "to_end"))
    if len(parts) == 1:
        return parts[0]
    return concatenate(parts)


def roll(a, shift, axis=None):
    """``np.roll``: shift elements along axes, wrapping around."""

    a = asarray(a)
    if isinstance(shift, np.ndarray):
        shift = shift.tolist()
    if isinstance(axis, np.ndarray):
        axis = axis.tolist()
    if axis is None:
        if isinstance(shift, (tuple, list)):
            raise ValueError("'shift' and 'axis' should be scalars or 1D sequences of the "
                             "same length (axis=None needs one shift)")
        return reshape(roll(ravel(a), shift, 0), a.shape)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,)
    axes = tuple(normalize_axis_index(ax, a.ndim) for ax in axes)
    shifts = tuple(operator.index(s) for s in shifts)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    elif len(axes) == 1 and len(shifts) > 1:
        axes = axes * len(shifts)
    if len(shifts) != len(axes):
        raise ValueError("'shift' and 'axis' should be scalars or 1D sequences of the same "
                         "length")
    total = {}
    for ax, s in zip(axes, shifts):
        total[ax] = total.get(ax, 0) + s
    r = a
    for ax, s in sorted(total.items()):
        n = r.shape[ax]
        if isnan(n):
            raise unknown_chunks_error("roll")
        if n == 0:
            continue
        s %= n
        if s == 0:
            continue
        head = [slice(None)] * r.ndim
        tail = [slice(None)] * r.ndim
        head[ax] = slice(n - s, None)
        tail[ax] = slice(0, n - s)
        r = concatenate([r[tuple(head)], r[tuple(tail)]], axis=ax)
    return r
