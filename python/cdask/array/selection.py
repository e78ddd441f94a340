"""Selecting, inserting and deleting elements: ``take``, ``compress``,
``extract``, ``select``, ``piecewise``, ``insert``, ``delete``, ``append``,
``ravel_multi_index``, ``unravel_index``.

Each is built from operations cdask already streams: integer and boolean
indexing (``indexing.py``: only the blocks holding selected elements are
read), basic slices and ``concatenate`` (blocks kept as aliases), ``where``
chains (fused C kernels) and, where NumPy's function is needed per block,
``map_blocks``.  Results are NumPy's; the signatures are dask's, and where
dask requires an argument NumPy makes optional (``axis`` of ``insert`` and
``delete``), NumPy's default works too.
"""

import numbers

import numpy as np

from .core import Array
from .creation import asarray, from_array
from .joining import concatenate
from .mapping import map_blocks
from .reshape import broadcast_to, moveaxis, ravel
from .routines import where
from .utils import isnan, normalize_axis_index

__all__ = ["take", "compress", "extract", "select", "piecewise", "insert", "delete", "append",
           "ravel_multi_index", "unravel_index"]


def _along(axis, ndim, index):
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


def _known_axis(x, axis, what):
    if any(isnan(c) for c in x.chunks[axis]):
        raise ValueError("%s needs known chunk sizes along axis %d, but they are unknown "
                         "(nan); call x.compute_chunk_sizes() first" % (what, axis))


# ---------------------------------------------------------------------------
# take, compress, extract
# ---------------------------------------------------------------------------
def _np_take_indices(indices, n, mode):
    """NumPy ``indices`` as np.take reads them (casting, mode), as intp."""
    ind = np.asarray(indices)
    if ind.dtype == bool or ind.dtype.kind == "f":
        ind = ind.astype(np.intp)
    elif ind.dtype.kind not in "iu":
        raise TypeError("Cannot cast array data from %r to dtype('int64') according to the "
                        "rule 'safe'" % ind.dtype)
    if mode == "raise":
        return ind
    if ind.size and n == 0:
        raise IndexError("cannot do a non-empty take from an empty axes.")
    if mode == "wrap":
        return np.mod(ind, n) if n else ind
    return np.clip(ind, 0, max(n - 1, 0))


def take(a, indices, axis=0, mode="raise"):
    """``np.take`` along ``axis`` (dask's default 0; ``None``: the flattened
    array).  ``indices`` may be NumPy-like or an integer cdask Array; the
    output blocks read only the input blocks their indices fall in.
    ``mode`` is NumPy's ('raise', 'wrap', 'clip')."""
    if mode not in ("raise", "wrap", "clip"):
        raise ValueError("clipmode must be one of 'clip', 'raise', or 'wrap' (got %r)" % (mode,))
    a = asarray(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    axis = normalize_axis_index(axis, a.ndim)
    _known_axis(a, axis, "take")
    n = int(a.shape[axis])
    if isinstance(indices, Array):
        if indices.dtype.kind not in "iub":
            raise TypeError("take: indices must be integers, got a cdask Array of dtype %s"
                            % indices.dtype)
        ind = indices.astype(np.intp) if indices.dtype == bool else indices
        if mode == "wrap":
            ind = ind % n if n else ind
        elif mode == "clip":
            ind = ind.clip(0, max(n - 1, 0))
        return a[_along(axis, a.ndim, ind)]
    ind = _np_take_indices(indices, n, mode)
    if ind.ndim == 0:
        ind = int(ind)
    return a[_along(axis, a.ndim, ind)]


def compress(condition, a, axis=None):
    """``np.compress``: the slices of ``a`` along ``axis`` where ``condition``
    (1-d, NumPy or cdask) is true (``axis=None``: of the flattened array).  A
    cdask condition gives unknown (nan) chunk sizes along the axis."""
    if not isinstance(condition, Array):
        condition = np.asarray(condition)
    if condition.ndim != 1:
        raise ValueError("condition must be a 1-d array")
    condition = condition.astype(bool)
    a = asarray(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    axis = normalize_axis_index(axis, a.ndim)
    _known_axis(a, axis, "compress")
    n, m = a.shape[axis], condition.shape[0]
    if isnan(m):
        raise ValueError("compress: the condition has unknown (nan) chunk sizes; call "
                         "compute_chunk_sizes() on it first")
    if m > n:
        if isinstance(condition, np.ndarray):
            extra = np.flatnonzero(condition[n:])
            if extra.size:
                raise IndexError("index %d is out of bounds for axis %d with size %d"
                                 % (n + extra[0], axis, n))
        else:
            # NumPy accepts it only if the excess is all False: unknown before computing
            raise NotImplementedError("compress: a cdask condition longer than the axis "
                                      "(%d > %d); slice it to the axis length" % (m, n))
        condition = condition[:n]
    elif m < n:
        # a short condition is False beyond its end, as NumPy reads it
        a = a[_along(axis, a.ndim, slice(0, m))]
    if isinstance(condition, np.ndarray):
        return a[_along(axis, a.ndim, np.flatnonzero(condition))]
    return a[_along(axis, a.ndim, condition)]


def extract(condition, arr):
    """``np.extract``: the elements of ``arr`` (flattened) where ``condition``
    (flattened) is true."""
    if isinstance(condition, Array):
        condition = ravel(condition)
    else:
        condition = np.ravel(condition)
    return compress(condition, ravel(asarray(arr)))


# ---------------------------------------------------------------------------
# select, piecewise
# ---------------------------------------------------------------------------
def _weak_or_dtype(v):
    if type(v) in (int, float, complex):
        return v
    if isinstance(v, Array):
        return v.dtype
    return np.asarray(v).dtype


def _cast_operand(v, dtype):
    if isinstance(v, Array):
        return v.astype(dtype)
    out = np.empty((), dtype=dtype) if np.ndim(v) == 0 else None
    if out is not None:
        out[...] = v          # NumPy's assignment casting (OverflowError and all)
        return out
    return np.asarray(v).astype(dtype)


def select(condlist, choicelist, default=0):
    """``np.select``: where the first true condition of ``condlist`` picks its
    entry of ``choicelist``, else ``default``; NumPy's dtype (Python scalar
    choices are weak).  Built as a chain of ``where`` (fused C kernels)."""
    condlist, choicelist = list(condlist), list(choicelist)
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    try:
        dtype = np.result_type(*[_weak_or_dtype(c) for c in choicelist + [default]])
    except TypeError as e:
        raise TypeError("Choicelist and default value do not have a common dtype: %s" % e) \
            from None
    for c in choicelist:
        # NumPy copies each choice into the result with casting='same_kind',
        # the Python scalars as the arrays they become
        if type(c) in (int, float, complex):
            src = np.asarray(c).dtype
            if not np.can_cast(src, dtype, casting="same_kind"):
                raise TypeError("Cannot cast array data from %r to %r according to the rule "
                                "'same_kind'" % (src, dtype))
    conds = []
    for i, c in enumerate(condlist):
        c = c if isinstance(c, Array) else np.asarray(c)
        if c.dtype != bool:
            raise TypeError("invalid entry %d in condlist: should be boolean ndarray" % i)
        conds.append(asarray(c))
    choices = [_cast_operand(c, dtype) for c in choicelist]
    out = asarray(_cast_operand(default, dtype))
    for c, v in zip(reversed(conds), reversed(choices)):
        out = where(c, v, out)
    # the result has the broadcast shape of everything, in ``dtype``
    shape = np.broadcast_shapes(*[tuple(0 if isnan(s) else s for s in x.shape)
                                  for x in conds + [asarray(v) for v in choices] + [out]])
    if out.shape != shape and not any(isnan(s) for s in out.shape):
        out = broadcast_to(out, shape)
    return out.astype(dtype) if out.dtype != dtype else out


def _piecewise_block(x, *conds, funclist, args, kw):
    return np.piecewise(x, list(conds), funclist, *args, **kw)


def piecewise(x, condlist, funclist, *args, **kw):
    """``np.piecewise`` block by block: each function of ``funclist`` is
    applied to the elements of a block where its condition holds (the last
    one, if there is one more function than conditions, where none holds).
    The result keeps ``x``'s dtype, as NumPy's does."""
    x = asarray(x)
    if isinstance(condlist, (Array, np.ndarray)) and condlist.ndim == x.ndim and x.ndim:
        condlist = [condlist]
    elif np.isscalar(condlist):
        condlist = [condlist]
    condlist = list(condlist)
    n = len(condlist)
    funclist = list(funclist)
    if len(funclist) not in (n, n + 1):
        raise ValueError("with %d condition(s), either %d or %d functions are expected"
                         % (n, n, n + 1))
    conds = []
    for c in condlist:
        c = asarray(c if isinstance(c, Array) else np.asarray(c, dtype=bool))
        if c.dtype != bool:
            c = c.astype(bool)
        if c.shape != x.shape:
            c = broadcast_to(c, x.shape, chunks=x.chunks)
        conds.append(c)
    return map_blocks(_piecewise_block, x, *conds, dtype=x.dtype, token="piecewise",
                      funclist=funclist, args=args, kw=kw)


# ---------------------------------------------------------------------------
# insert, delete, append
# ---------------------------------------------------------------------------
def _flat_axis(arr, axis):
    arr = asarray(arr)
    if axis is None:
        return ravel(arr), 0
    return arr, normalize_axis_index(axis, arr.ndim)


def _runs(keep):
    """Sorted distinct kept positions -> list of (start, stop) runs."""
    if keep.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(keep) != 1)
    starts = np.concatenate([[keep[0]], keep[breaks + 1]])
    stops = np.concatenate([keep[breaks], [keep[-1]]]) + 1
    return list(zip(starts.tolist(), stops.tolist()))


def _keep_positions(x, axis, keep):
    """``x`` restricted to the sorted positions ``keep`` along ``axis``: as
    slices joined (blocks kept) when the kept runs are few, else a take."""
    n = int(x.shape[axis])
    if keep.size == n:
        return x
    runs = _runs(keep)
    if len(runs) <= 2 * len(x.chunks[axis]) + 8:
        if not runs:
            return x[_along(axis, x.ndim, slice(0, 0))]
        parts = [x[_along(axis, x.ndim, slice(s, e))] for s, e in runs]
        return parts[0] if len(parts) == 1 else concatenate(parts, axis=axis)
    return x[_along(axis, x.ndim, keep)]


def delete(arr, obj, axis=None):
    """``np.delete``: ``arr`` without the entries ``obj`` (an int, slice,
    integer sequence or boolean mask) along ``axis`` (None: flattened).
    Kept runs are slices of the input, joined."""
    x, axis = _flat_axis(arr, axis)
    _known_axis(x, axis, "delete")
    n = int(x.shape[axis])
    if isinstance(obj, Array):
        obj = np.asarray(obj)          # the positions shape the graph (dask computes too)
    keep = np.ones(n, dtype=bool)
    if isinstance(obj, slice):
        keep[obj] = False
    elif isinstance(obj, (numbers.Integral, np.integer)) and not isinstance(obj, bool):
        if not -n <= obj < n:
            raise IndexError("index %d is out of bounds for axis %d with size %d"
                             % (obj, axis, n))
        keep[obj] = False
    else:
        o = np.asarray(obj)
        if o.size == 0 and not isinstance(obj, np.ndarray):
            o = o.astype(np.intp)
        if o.dtype == bool:
            if o.shape != (n,):
                raise ValueError("boolean array argument obj to delete must be one "
                                 "dimensional and match the axis length of %d" % n)
            keep = ~o
        else:
            if o.dtype.kind not in "iu":
                raise IndexError("arrays used as indices must be of integer (or boolean) "
                                 "type")
            keep[o,] = False
    return _keep_positions(x, axis, np.flatnonzero(keep))


def _values_array(values, dtype):
    if isinstance(values, Array):
        return values.astype(dtype) if values.dtype != dtype else values
    return from_array(np.array(values, dtype=dtype))


def insert(arr, obj, values, axis=None):
    """``np.insert``: ``values`` inserted before the positions ``obj`` (an
    int, slice or integer sequence) along ``axis`` (None: flattened), with
    NumPy's broadcasting of ``values`` (cast to ``arr``'s dtype).  The result
    joins slices of ``arr`` and of the values."""
    x, axis = _flat_axis(arr, axis)
    if any(isnan(s) for s in x.shape):
        raise ValueError("insert needs known chunk sizes (the values are broadcast to the "
                         "array's shape), but they are unknown (nan); call "
                         "x.compute_chunk_sizes() first")
    n = int(x.shape[axis])
    nd = x.ndim
    if isinstance(obj, Array):
        obj = np.asarray(obj)
    if isinstance(obj, slice):
        idx = np.arange(*obj.indices(n), dtype=np.intp)
    else:
        idx = np.array(obj)
        if idx.dtype == bool:
            if idx.ndim != 1:
                raise ValueError("boolean array argument obj to insert must be one "
                                 "dimensional")
            idx = np.flatnonzero(idx)
        elif idx.ndim > 1:
            raise ValueError("index array argument obj to insert must be one dimensional "
                             "or scalar")
        elif idx.size == 0 and not isinstance(obj, np.ndarray):
            idx = idx.astype(np.intp)
        elif idx.size and idx.dtype.kind not in "iu":
            raise IndexError("arrays used as indices must be of integer (or boolean) type")
    v = _values_array(values, x.dtype)
    if v.ndim < nd:
        v = v[(None,) * (nd - v.ndim)]
    if idx.size == 1:
        index = int(idx.item())
        if not -n <= index <= n:
            raise IndexError("index %s is out of bounds for axis %d with size %d"
                             % (obj, axis, n))
        if index < 0:
            index += n
        if idx.ndim == 0:
            v = moveaxis(v, 0, axis)
        shape = list(x.shape)
        shape[axis] = v.shape[axis]
        v = broadcast_to(v, tuple(shape))
        order = None
        points = [index]
        counts = [shape[axis]]
    else:
        idx = idx.astype(np.intp)
        if idx.size:
            bad = (idx < -n) | (idx > n)
            if bad.any():
                raise IndexError("index %d is out of bounds for axis %d with size %d"
                                 % (idx[bad][0], axis, n))
        idx = np.where(idx < 0, idx + n, idx)
        shape = list(x.shape)
        shape[axis] = idx.size
        v = broadcast_to(v, tuple(shape))
        order = np.argsort(idx, kind="stable")
        points, counts = np.unique(idx[order], return_counts=True)
        points, counts = points.tolist(), counts.tolist()
        if idx.size == 0:
            return x
        if (order != np.arange(order.size)).any():
            v = v[_along(axis, nd, order)]
        if len(points) > 2 * len(x.chunks[axis]) + 8:
            # many insertion points: one gather from the array and the values
            # side by side, not a slice per point
            k = idx.size
            at = idx[order] + np.arange(k)          # where the sorted values land
            src = np.empty(n + k, dtype=np.intp)
            is_value = np.zeros(n + k, dtype=bool)
            is_value[at] = True
            src[at] = n + np.arange(k)
            src[~is_value] = np.arange(n)
            return concatenate([x, v], axis=axis)[_along(axis, nd, src)]
    parts, prev, used = [], 0, 0
    for p, c in zip(points, counts):
        if p > prev:
            parts.append(x[_along(axis, nd, slice(prev, p))])
        parts.append(v[_along(axis, nd, slice(used, used + c))])
        prev, used = p, used + c
    if prev < n:
        parts.append(x[_along(axis, nd, slice(prev, n))])
    return parts[0] if len(parts) == 1 else concatenate(parts, axis=axis)


def append(arr, values, axis=None):
    """``np.append``: ``values`` joined after ``arr`` along ``axis`` (None:
    both flattened)."""
    arr = asarray(arr)
    values = asarray(values)
    if axis is None:
        if arr.ndim != 1:
            arr = ravel(arr)
        values = ravel(values)
        axis = arr.ndim - 1
    return concatenate([arr, values], axis=axis)


# ---------------------------------------------------------------------------
# ravel_multi_index, unravel_index
# ---------------------------------------------------------------------------
def _ravel_block(*blocks, dims, mode, order):
    return np.ravel_multi_index(blocks, dims, mode=mode, order=order)


def _ravel_stack_block(b, dims, mode, order):
    return np.ravel_multi_index(tuple(b), dims, mode=mode, order=order)


def ravel_multi_index(multi_index, dims, mode="raise", order="C"):
    """``np.ravel_multi_index`` block by block: ``multi_index`` a sequence of
    integer arrays (broadcast together) or one array whose first axis holds
    the coordinates."""
    if np.isscalar(dims):
        dims = (dims,)
    if isinstance(dims, Array) or any(isinstance(d, Array) for d in dims):
        raise NotImplementedError("cdask Arrays are not supported in the dims argument; "
                                  "pass a tuple of ints")
    dims = tuple(int(d) for d in dims)
    if isinstance(multi_index, (Array, np.ndarray)):
        st = asarray(multi_index)
        if st.ndim == 0:
            raise ValueError("parameter multi_index must be a sequence of length %d"
                             % len(dims))
        if not isnan(st.shape[0]) and st.shape[0] != len(dims):
            raise ValueError("parameter multi_index must be a sequence of length %d"
                             % len(dims))
        if st.dtype.kind not in "iu":
            raise TypeError("only int indices permitted")
        return map_blocks(_ravel_stack_block, st, drop_axis=0, dtype=np.intp,
                          dims=dims, mode=mode, order=order)
    arrays = [asarray(a) for a in multi_index]
    if len(arrays) != len(dims):
        raise ValueError("parameter multi_index must be a sequence of length %d" % len(dims))
    for a in arrays:
        if a.dtype.kind not in "iu":
            raise TypeError("only int indices permitted")
    # map_blocks broadcasts the blocks, as np.ravel_multi_index does
    return map_blocks(_ravel_block, *arrays, dtype=np.intp, dims=dims, mode=mode,
                      order=order)


def _unravel_block(b, shape, order):
    return np.stack(np.unravel_index(b, shape, order=order)) if b.size or b.ndim else \
        np.zeros((len(shape),) + b.shape, dtype=np.intp)


def unravel_index(indices, shape, order="C"):
    """``np.unravel_index``: a tuple of arrays, the coordinates of each flat
    index of ``indices`` in an array of ``shape``."""
    if isinstance(shape, (numbers.Integral, np.integer)):
        shape = (shape,)
    shape = tuple(int(s) for s in shape)
    x = asarray(indices)
    if x.dtype.kind not in "iu":
        raise TypeError("only int indices permitted")
    if not shape:
        return ()
    st = map_blocks(_unravel_block, x, new_axis=0, dtype=np.intp,
                    chunks=((len(shape),),) + x.chunks, shape=shape, order=order)
    return tuple(st[i] for i in range(len(shape)))

