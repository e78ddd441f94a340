"""Manipulation, searching, sorting, set, indexing, statistical and utility
functions of the array API standard, on cdask's routines.

Most are cdask's own functions under the standard's signatures.  What cdask
has no function for is built here from Arrays: sorting (each lane along the
axis in one block, NumPy's stable sort per block), ``take_along_axis`` (a
gufunc over the axis), the ``unique_*`` results (sizes unknown until
computed), ``cumulative_*`` with ``include_initial``, ``unstack``.
"""

import builtins
import math
import operator
from collections import namedtuple

import numpy as np

from .. import array as da
from ..array.core import Array
from ..array.tokenize import tokenize
from ..array.utils import with_layer
from ._dtypes import as_dtype, int64, uint64, result_type
from ._elementwise import operand, SCALARS

__all__ = ["broadcast_arrays", "broadcast_to", "concat", "expand_dims", "flip", "moveaxis",
           "permute_dims", "repeat", "reshape", "roll", "squeeze", "stack", "tile", "unstack",
           "argmax", "argmin", "count_nonzero", "nonzero", "searchsorted", "where", "argsort",
           "sort", "unique_all", "unique_counts", "unique_inverse", "unique_values", "take",
           "take_along_axis", "cumulative_sum", "cumulative_prod", "max", "mean", "min",
           "prod", "std", "sum", "var", "all", "any", "diff", "matmul", "matrix_transpose",
           "tensordot", "vecdot", "astype"]


# ---------------------------------------------------------------- helpers

def axis_index(axis, ndim, what="axis"):
    """``axis`` (an int in [-ndim, ndim)) as a non-negative int; IndexError if out of range."""
    if isinstance(axis, builtins.bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError("%s must be an int, got %r" % (what, axis))
    if not -ndim <= axis < ndim:
        raise IndexError("%s %d is out of bounds for an array of %d dimensions"
                         % (what, axis, ndim))
    return int(axis) % ndim


def axes_tuple(axis, ndim):
    """``axis`` (None, an int or a tuple of ints) as a sorted tuple of distinct axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, builtins.bool):
        return (axis_index(axis, ndim),)
    if not isinstance(axis, tuple):
        raise TypeError("axis must be None, an int or a tuple of ints, got %r" % (axis,))
    axes = tuple(axis_index(a, ndim) for a in axis)
    if len(set(axes)) != len(axes):
        raise ValueError("repeated axis in %r" % (axis,))
    return tuple(sorted(axes))


def _whole(x, axes):
    """``x`` rechunked so that the axes ``axes`` are each in one block."""
    if builtins.any(len(x.chunks[a]) > 1 for a in axes):
        return x.rechunk({a: -1 for a in axes})
    return x


# ---------------------------------------------------------------- manipulation

def broadcast_arrays(*arrays):
    """The arrays broadcast against each other (a list)."""
    return list(da.broadcast_arrays(*[operand(a) for a in arrays]))


def broadcast_to(x, /, shape):
    """``x`` broadcast to ``shape``; ValueError if the shapes do not broadcast."""
    x = operand(x)
    shape = tuple(operator.index(s) for s in shape)
    if np.broadcast_shapes(x.shape, shape) != shape:
        raise ValueError("cannot broadcast shape %s to %s" % (x.shape, shape))
    return da.broadcast_to(x, shape)


def concat(arrays, /, *, axis=0):
    """The arrays joined along ``axis`` (``None``: each flattened), in the
    promoted dtype."""
    arrays = [operand(a) for a in arrays]
    if not arrays:
        raise ValueError("concat needs at least one array")
    dt = result_type(*arrays)
    arrays = [a if a.dtype == dt else a.astype(dt) for a in arrays]
    if axis is None:
        return da.concatenate([da.reshape(a, (-1,)) for a in arrays], axis=0)
    nd = arrays[0].ndim
    if builtins.any(a.ndim != nd for a in arrays):
        raise ValueError("concat: all arrays must have the same number of dimensions")
    if nd == 0:
        raise ValueError("concat: zero-dimensional arrays cannot be concatenated")
    return da.concatenate(arrays, axis=axis_index(axis, nd))


def expand_dims(x, /, axis=0):
    """``x`` with a new axis of size one at ``axis`` (in [-ndim-1, ndim])."""
    x = operand(x)
    return da.expand_dims(x, axis_index(axis, x.ndim + 1))


def flip(x, /, *, axis=None):
    x = operand(x)
    axes = axes_tuple(axis, x.ndim)
    return x[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))]


def moveaxis(x, source, destination, /):
    x = operand(x)
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same length")
    src = tuple(axis_index(a, x.ndim, "source") for a in src)
    dst = tuple(axis_index(a, x.ndim, "destination") for a in dst)
    return da.moveaxis(x, src, dst)


def permute_dims(x, /, axes):
    """``x`` with its axes reordered: ``axes`` a permutation of ``range(ndim)``."""
    x = operand(x)
    axes = tuple(axis_index(a, x.ndim) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError("axes %r is not a permutation of the %d axes" % (axes, x.ndim))
    return da.transpose(x, axes)


def _repeat_block(a, r, axis):
    return np.repeat(a, r, axis=axis)


def repeat(x, repeats, /, *, axis=None):
    """Each element repeated ``repeats`` times (an int, or an integer Array of
    one count per element along ``axis``: then the size is known only once
    computed); ``axis=None`` repeats the flattened array."""
    x = operand(x)
    if axis is None:
        x = da.reshape(x, (-1,))
        axis = 0
    axis = axis_index(axis, x.ndim)
    if isinstance(repeats, (int, np.integer)) and not isinstance(repeats, builtins.bool):
        if repeats < 0:
            raise ValueError("repeat: repeats must be non-negative, got %d" % repeats)
        return da.repeat(x, int(repeats), axis=axis)
    repeats = operand(repeats, "repeats")
    if repeats.dtype.kind not in "iu":
        raise TypeError("repeat: repeats must be an integer array")
    if repeats.ndim > 1:
        raise ValueError("repeat: repeats must be 0-d or 1-d")
    if repeats.ndim == 0 or repeats.shape[0] == 1:
        repeats = da.broadcast_to(da.reshape(repeats, (1,)), (x.shape[axis],))
    xw = _whole(x, (axis,))
    rw = repeats.rechunk(-1)
    chunks = tuple((math.nan,) if i == axis else c for i, c in enumerate(xw.chunks))
    name = "repeat-api-" + tokenize(xw.name, rw.name, axis)
    layer = {}
    for key in xw._keys_flat():
        layer[(name,) + key[1:]] = (_repeat_block, key, (rw.name, 0), axis)
    layers = with_layer(dict(xw._layers, **rw._layers), name, layer)
    return Array(layers, name, chunks, x.dtype)


def reshape(x, /, shape, *, copy=None):
    """``x`` in ``shape`` (one entry may be -1).  cdask never shares memory
    between Arrays, so ``copy=False`` is refused (ValueError)."""
    x = operand(x)
    if copy is False:
        raise ValueError("reshape(copy=False): cdask arrays cannot be views of each other")
    shape = tuple(operator.index(s) for s in shape)
    return da.reshape(x, shape)


def roll(x, /, shift, *, axis=None):
    x = operand(x)
    if axis is None:
        return da.reshape(da.roll(da.reshape(x, (-1,)), shift), x.shape)
    if isinstance(axis, tuple):
        axis = tuple(axis_index(a, x.ndim) for a in axis)
        if isinstance(shift, int):
            shift = (shift,) * len(axis)
        if len(shift) != len(axis):
            raise ValueError("roll: shift and axis must have the same length")
    else:
        axis = axis_index(axis, x.ndim)
    return da.roll(x, shift, axis=axis)


def squeeze(x, /, axis):
    """``x`` without the axes ``axis``; ValueError if one has a size other than one."""
    x = operand(x)
    axes = axes_tuple(axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError("cannot squeeze axis %d of size %s" % (a, x.shape[a]))
    return da.squeeze(x, axis=axes) if axes else x


def stack(arrays, /, *, axis=0):
    arrays = [operand(a) for a in arrays]
    if not arrays:
        raise ValueError("stack needs at least one array")
    if builtins.any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("stack: all arrays must have the same shape")
    dt = result_type(*arrays)
    arrays = [a if a.dtype == dt else a.astype(dt) for a in arrays]
    return da.stack(arrays, axis=axis_index(axis, arrays[0].ndim + 1))


def tile(x, repetitions, /):
    x = operand(x)
    reps = tuple(operator.index(r) for r in repetitions)
    if builtins.any(r < 0 for r in reps):
        raise ValueError("tile: repetitions must be non-negative, got %r" % (reps,))
    return da.tile(x, reps)


def unstack(x, /, *, axis=0):
    """The slices of ``x`` along ``axis``, as a tuple of Arrays."""
    x = operand(x)
    if x.ndim == 0:
        raise ValueError("unstack needs an array of one or more dimensions")
    axis = axis_index(axis, x.ndim)
    pre = (slice(None),) * axis
    return tuple(x[pre + (i,)] for i in range(x.shape[axis]))


# ---------------------------------------------------------------- searching

def _nonempty(x, axes, what):
    if builtins.any(x.shape[a] == 0 for a in axes):
        raise ValueError("%s of an empty axis is not defined" % what)


def argmax(x, /, *, axis=None, keepdims=False):
    x = operand(x)
    return _arg(da.argmax, x, axis, keepdims, "argmax")


def argmin(x, /, *, axis=None, keepdims=False):
    x = operand(x)
    return _arg(da.argmin, x, axis, keepdims, "argmin")


def _arg(func, x, axis, keepdims, what):
    if axis is None:
        _nonempty(x, range(x.ndim), what)
        out = func(da.reshape(x, (-1,)), axis=0)
        return da.reshape(out, (1,) * x.ndim) if keepdims else out
    axis = axis_index(axis, x.ndim)
    _nonempty(x, (axis,), what)
    return func(x, axis=axis, keepdims=keepdims)


def count_nonzero(x, /, *, axis=None, keepdims=False):
    x = operand(x)
    axes = axes_tuple(axis, x.ndim)
    return da.sum(x != 0, axis=axes, keepdims=keepdims, dtype=int64)


def nonzero(x, /):
    """The indices of the non-zero elements, one int64 Array per axis (their
    length known only once computed)."""
    x = operand(x)
    if x.ndim == 0:
        raise ValueError("nonzero is not defined for zero-dimensional arrays")
    return tuple(da.nonzero(x))


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    """Where the elements of ``x2`` would go in the 1-d sorted ``x1``."""
    x1 = operand(x1, "x1")
    if side not in ("left", "right"):
        raise ValueError("side must be 'left' or 'right', got %r" % (side,))
    if x1.ndim != 1:
        raise ValueError("searchsorted: x1 must be one-dimensional")
    if isinstance(x2, SCALARS):
        x2 = da.asarray(np.asarray(x2, dtype=x1.dtype))
    x2 = operand(x2, "x2")
    if sorter is not None:
        x1 = take(x1, operand(sorter, "sorter"))
    return da.searchsorted(x1, x2, side=side).astype(int64)


def where(condition, x1, x2, /):
    """``x1`` where ``condition`` is True, ``x2`` elsewhere (either may be a Python scalar)."""
    condition = operand(condition, "condition")
    if condition.dtype.kind != "b":
        raise TypeError("where: condition must be a boolean array")
    s1, s2 = isinstance(x1, SCALARS), isinstance(x2, SCALARS)
    if s1 and s2:
        raise TypeError("where: at least one of x1 and x2 must be an array")
    x1 = x1 if s1 else operand(x1, "x1")
    x2 = x2 if s2 else operand(x2, "x2")
    return da.where(condition, x1, x2)


# ---------------------------------------------------------------- sorting

def _sort_block(a, axis, descending, stable, arg):
    if not descending:
        return np.argsort(a, axis=axis, kind="stable") if arg else np.sort(a, axis=axis)
    # descending and stable: sort the reversed lane, then reverse back
    r = np.flip(a, axis=axis)
    idx = np.flip(np.argsort(r, axis=axis, kind="stable"), axis=axis)
    if arg:
        return a.shape[axis] - 1 - idx
    return np.take_along_axis(r, idx, axis=axis)


def _sort(x, axis, descending, stable, arg):
    x = operand(x)
    if x.ndim == 0:
        raise ValueError("sorting needs an array of one or more dimensions")
    axis = axis_index(axis, x.ndim)
    xw = _whole(x, (axis,))
    return da.map_blocks(_sort_block, xw, dtype=int64 if arg else x.dtype, axis=axis,
                         descending=builtins.bool(descending), stable=stable, arg=arg)


def sort(x, /, *, axis=-1, descending=False, stable=True):
    """``x`` sorted along ``axis`` (each lane in one block; NumPy's sort, NaNs last)."""
    return _sort(x, axis, descending, stable, False)


def argsort(x, /, *, axis=-1, descending=False, stable=True):
    """The int64 indices that sort ``x`` along ``axis`` (stable: ties keep their order)."""
    return _sort(x, axis, descending, stable, True)


# ---------------------------------------------------------------- sets

UniqueAllResult = namedtuple("UniqueAllResult",
                             ["values", "indices", "inverse_indices", "counts"])
UniqueCountsResult = namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = namedtuple("UniqueInverseResult", ["values", "inverse_indices"])


def _unique_block(a, shape):
    """NumPy's unique with every NaN distinct, as the standard wants."""
    a = a.reshape(-1)
    values, index, inverse, counts = np.unique(a, return_index=True, return_inverse=True,
                                               return_counts=True, equal_nan=False)
    return values, index.astype(np.int64), inverse.reshape(shape).astype(np.int64), \
        counts.astype(np.int64)


def _unique(x, which):
    """The ``unique_all`` pieces named in ``which`` as Arrays: the flattened
    input in one block, one task; sizes unknown (nan) until computed, but
    the inverse indices take the shape of ``x``."""
    x = operand(x)
    flat = da.reshape(x, (-1,)).rechunk(-1) if x.ndim != 1 else x.rechunk(-1)
    token = tokenize(flat.name, x.shape)
    tname = "unique-api-" + token
    layers = with_layer(flat._layers, tname,
                        {(tname,): (_unique_block, (flat.name, 0), x.shape)})
    pos = {"values": 0, "indices": 1, "inverse_indices": 2, "counts": 3}
    out = []
    for w in which:
        name = "unique-%s-%s" % (w.replace("_", "-"), token)
        if w == "inverse_indices":
            key, chunks = (name,) + (0,) * x.ndim, tuple((s,) for s in x.shape)
        else:
            key, chunks = (name, 0), ((math.nan,),)
        dt = x.dtype if w == "values" else int64
        layers = with_layer(layers, name, {key: (operator.getitem, (tname,), pos[w])})
        out.append(Array(layers, name, chunks, dt))
    return out


def unique_values(x, /):
    """The distinct values of ``x`` (NaNs each distinct), sorted."""
    return _unique(x, ["values"])[0]


def unique_counts(x, /):
    return UniqueCountsResult(*_unique(x, ["values", "counts"]))


def unique_inverse(x, /):
    return UniqueInverseResult(*_unique(x, ["values", "inverse_indices"]))


def unique_all(x, /):
    return UniqueAllResult(*_unique(x, ["values", "indices", "inverse_indices", "counts"]))


# ---------------------------------------------------------------- indexing

def _index_array(indices):
    indices = operand(indices, "indices")
    if indices.dtype.kind not in "iu":
        raise TypeError("indices must be an integer array, got %s" % indices.dtype)
    return indices


def take(x, indices, /, *, axis=None):
    """The elements of ``x`` at ``indices`` (a 1-d integer Array) along ``axis``
    (optional for a 1-d ``x``)."""
    x = operand(x)
    indices = _index_array(indices)
    if axis is None:
        if x.ndim != 1:
            raise ValueError("take: axis is required for arrays of more than one dimension")
        axis = 0
    if indices.ndim != 1:
        raise ValueError("take: indices must be one-dimensional")
    return da.take(x, indices, axis=axis_index(axis, x.ndim))


def _take_along_block(a, i):
    return np.take_along_axis(a, i, axis=-1)


def take_along_axis(x, indices, /, *, axis=-1):
    """The elements of ``x`` at ``indices`` along ``axis`` (the other axes
    broadcast), per lane: NumPy's ``take_along_axis`` on each block."""
    x = operand(x)
    indices = _index_array(indices)
    if indices.ndim != x.ndim:
        raise ValueError("take_along_axis: x and indices must have the same number of "
                         "dimensions")
    axis = axis_index(axis, x.ndim)
    xm, im = da.moveaxis(x, axis, -1), da.moveaxis(indices, axis, -1)
    out = da.apply_gufunc(_take_along_block, "(n),(m)->(m)", xm, im, output_dtypes=x.dtype,
                          allow_rechunk=True)
    return da.moveaxis(out, -1, axis)


# ---------------------------------------------------------------- statistics

def sum_dtype(x, dtype):
    """The accumulator dtype of sum/prod: the given one, else the default
    integer for integer inputs (uint64 for unsigned), else x's own."""
    if dtype is not None:
        return as_dtype(dtype)
    if x.dtype.kind == "b" or x.dtype.kind == "i":
        return int64
    if x.dtype.kind == "u":
        return uint64
    return x.dtype


def sum(x, /, *, axis=None, dtype=None, keepdims=False):
    x = operand(x)
    return da.sum(x, axis=axes_tuple(axis, x.ndim), dtype=sum_dtype(x, dtype), keepdims=keepdims)


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    x = operand(x)
    return da.prod(x, axis=axes_tuple(axis, x.ndim), dtype=sum_dtype(x, dtype), keepdims=keepdims)


def mean(x, /, *, axis=None, keepdims=False):
    x = operand(x)
    if x.dtype.kind not in "fc":
        raise TypeError("mean needs a floating-point array, got %s" % x.dtype)
    return da.mean(x, axis=axes_tuple(axis, x.ndim), keepdims=keepdims).astype(x.dtype)


def _moment(func, x, axis, correction, keepdims):
    x = operand(x)
    if x.dtype.kind not in "fc":
        raise TypeError("std/var need a floating-point array, got %s" % x.dtype)
    out = func(x, axis=axes_tuple(axis, x.ndim), ddof=correction, keepdims=keepdims)
    real = np.empty(0, x.dtype).real.dtype
    return out.astype(real) if out.dtype != real else out


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    return _moment(da.std, x, axis, correction, keepdims)


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    return _moment(da.var, x, axis, correction, keepdims)


def max(x, /, *, axis=None, keepdims=False):
    x = operand(x)
    axes = axes_tuple(axis, x.ndim)
    _nonempty(x, axes, "max")
    return da.max(x, axis=axes, keepdims=keepdims)


def min(x, /, *, axis=None, keepdims=False):
    x = operand(x)
    axes = axes_tuple(axis, x.ndim)
    _nonempty(x, axes, "min")
    return da.min(x, axis=axes, keepdims=keepdims)


def _cumulative(func, x, axis, dtype, include_initial, initial):
    x = operand(x)
    if axis is None:
        if x.ndim > 1:
            raise ValueError("axis is required for arrays of more than one dimension")
        axis = 0
    if x.ndim == 0:
        raise ValueError("cumulative functions need an array of one or more dimensions")
    axis = axis_index(axis, x.ndim)
    dt = sum_dtype(x, dtype)
    out = func(x, axis=axis, dtype=dt)
    if include_initial:
        shape = x.shape[:axis] + (1,) + x.shape[axis + 1:]
        out = da.concatenate([da.full(shape, initial, dtype=dt), out], axis=axis)
    return out


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """Running sums along ``axis`` (``include_initial``: a leading zero)."""
    return _cumulative(da.cumsum, x, axis, dtype, include_initial, 0)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """Running products along ``axis`` (``include_initial``: a leading one)."""
    return _cumulative(da.cumprod, x, axis, dtype, include_initial, 1)


def all(x, /, *, axis=None, keepdims=False):
    x = operand(x)
    return da.all(x, axis=axes_tuple(axis, x.ndim), keepdims=keepdims)


def any(x, /, *, axis=None, keepdims=False):
    x = operand(x)
    return da.any(x, axis=axes_tuple(axis, x.ndim), keepdims=keepdims)


def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    """The ``n``-th differences along ``axis``, ``prepend``/``append`` joined first."""
    x = operand(x)
    axis = axis_index(axis, x.ndim)
    if n < 0:
        raise ValueError("diff: n must be non-negative, got %d" % n)
    if n == 0:
        return x   # as NumPy: nothing joined, nothing differenced
    parts = [x]
    if prepend is not None:
        parts.insert(0, operand(prepend, "prepend"))
    if append is not None:
        parts.append(operand(append, "append"))
    if len(parts) > 1:
        x = concat(parts, axis=axis)
    for _ in range(n):
        x = x[(slice(None),) * axis + (slice(1, None),)] - \
            x[(slice(None),) * axis + (slice(None, -1),)]
    return x


# ---------------------------------------------------------------- linear algebra

def matmul(x1, x2, /):
    x1, x2 = operand(x1, "x1"), operand(x2, "x2")
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("matmul: operands must have one or more dimensions")
    return da.matmul(x1, x2)


def matrix_transpose(x, /):
    """The last two axes of ``x`` swapped."""
    x = operand(x)
    if x.ndim < 2:
        raise ValueError("matrix_transpose needs an array of 2 or more dimensions")
    return da.swapaxes(x, -1, -2)


def tensordot(x1, x2, /, *, axes=2):
    x1, x2 = operand(x1, "x1"), operand(x2, "x2")
    dt = result_type(x1, x2)
    out = da.tensordot(x1, x2, axes=axes)
    return out if out.dtype == dt else out.astype(dt)


def vecdot(x1, x2, /, *, axis=-1):
    """``sum(conj(x1) * x2, axis)`` over broadcast operands, in the promoted dtype."""
    x1, x2 = operand(x1, "x1"), operand(x2, "x2")
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    ax = axis_index(axis, len(shape))
    if x1.shape[axis] != x2.shape[axis]:
        raise ValueError("vecdot: the axis %d sizes differ (%d, %d)"
                         % (axis, x1.shape[axis], x2.shape[axis]))
    dt = result_type(x1, x2)
    prod_ = (da.conj(x1) if x1.dtype.kind == "c" else x1) * x2
    return da.sum(prod_, axis=ax, dtype=dt)


def astype(x, dtype, /, *, copy=True, device=None):
    """``x`` cast to ``dtype`` (NumPy's unsafe casting); ``copy=False`` returns
    ``x`` itself when the dtype is already ``dtype``."""
    from ._dtypes import check_device
    check_device(device)
    x = operand(x)
    dtype = as_dtype(dtype)
    if dtype == x.dtype:
        return x.copy() if copy else x
    if x.dtype.kind == "c" and dtype.kind != "c":
        raise TypeError("astype: casting %s to %s would drop the imaginary part"
                        % (x.dtype, dtype))
    return x.astype(dtype)
