"""``cdask.ma``: masked arrays, as ``dask.array.ma``.

An Array's blocks may be ``np.ma.MaskedArray``s.  The functions here make
such arrays (``masked_where``, ``masked_greater``..., ``masked_array``) and
read them (``filled``, ``getdata``, ``getmaskarray``, ``count``...), block by
block with np.ma's own functions.

Every layer they make is noted in ``chunk_types.MASKED_LAYERS``, and so every
array built on one is *maybe masked* (``chunk_types.maybe_masked``): its
operations - elementwise ones, reductions, slicing, ``x[mask]``, rechunking,
concatenation, compute - take Python tasks that look at the type of each
block as they run (np.ma's function for a masked block, NumPy's otherwise),
never the C kernels, which read raw buffers and would drop the masks.  The
result of ``compute()`` is then a masked array when a block was masked (its
mask and the first masked block's fill value), else an ndarray, which is
what np.ma gives for the whole array.
"""

import numpy as np

from .chunk_types import note_masked
from .core import Array, blockwise_simple
from .creation import asarray
from .elemwise import elemwise
from .reductions import mean, reduction, sum as _sum
from .reshape import broadcast_to, reshape
from .routines import nonzero as _nonzero
from .tokenize import tokenize
from .utils import normalize_axis

__all__ = ["average", "count", "empty_like", "filled", "fix_invalid", "getdata", "getmaskarray",
           "masked_array", "masked_equal", "masked_greater", "masked_greater_equal",
           "masked_inside", "masked_invalid", "masked_less", "masked_less_equal",
           "masked_not_equal", "masked_outside", "masked_values", "masked_where", "nonzero",
           "normalize_masked_array", "ones_like", "set_fill_value", "where", "zeros_like"]


def _masked(x):
    """``x`` with its layer noted as one of masked blocks."""
    note_masked(x.name)
    return x


def _no_array(value, fname):
    if getattr(value, "shape", ()):
        raise ValueError("cdask.ma.%s doesn't support array `value`s" % fname)


# ---- making masked arrays ------------------------------------------------------
def _compare_mask(fname):
    npf = getattr(np.ma, fname)

    def masked_cmp(x, value):
        x = asarray(x)
        return _masked(elemwise(npf, x, value if np.isscalar(value) else asarray(value),
                                dtype=x.dtype))

    masked_cmp.__name__ = masked_cmp.__qualname__ = fname
    masked_cmp.__doc__ = ("``np.ma.%s(x, value)`` block by block: ``x`` with the elements "
                          "where the comparison holds masked (``value`` broadcasts)." % fname)
    return masked_cmp


masked_greater = _compare_mask("masked_greater")
masked_greater_equal = _compare_mask("masked_greater_equal")
masked_less = _compare_mask("masked_less")
masked_less_equal = _compare_mask("masked_less_equal")
masked_not_equal = _compare_mask("masked_not_equal")


def masked_equal(x, value):
    """``np.ma.masked_equal``: ``x`` with the elements equal to the scalar
    ``value`` masked (and ``value`` as the fill value)."""
    x = asarray(x)
    _no_array(value, "masked_equal")
    return _masked(elemwise(np.ma.masked_equal, x, value, dtype=x.dtype))


def masked_invalid(a):
    """``np.ma.masked_invalid``: NaN and infinities masked."""
    a = asarray(a)
    return _masked(elemwise(np.ma.masked_invalid, a, dtype=a.dtype))


def masked_inside(x, v1, v2):
    """``np.ma.masked_inside``: the elements in ``[v1, v2]`` masked."""
    x = asarray(x)
    _no_array(v1, "masked_inside")
    _no_array(v2, "masked_inside")
    return _masked(elemwise(np.ma.masked_inside, x, v1, v2, dtype=x.dtype))


def masked_outside(x, v1, v2):
    """``np.ma.masked_outside``: the elements outside ``[v1, v2]`` masked."""
    x = asarray(x)
    _no_array(v1, "masked_outside")
    _no_array(v2, "masked_outside")
    return _masked(elemwise(np.ma.masked_outside, x, v1, v2, dtype=x.dtype))


def masked_where(condition, a):
    """``np.ma.masked_where``: ``a`` masked where ``condition`` is true
    (``condition`` of ``a``'s shape, or a scalar)."""
    a = asarray(a)
    cshape = getattr(condition, "shape", ())
    if cshape and tuple(cshape) != tuple(a.shape):
        raise IndexError("Inconsistent shape between the condition and the input (got %s and "
                         "%s)" % (tuple(cshape), tuple(a.shape)))
    if not np.isscalar(condition):
        condition = asarray(condition)
    return _masked(elemwise(np.ma.masked_where, condition, a, dtype=a.dtype))


def masked_values(x, value, rtol=1e-05, atol=1e-08, shrink=True):
    """``np.ma.masked_values``: the elements close to the scalar ``value``
    masked (equal to it for integers), ``value`` the fill value."""
    x = asarray(x)
    _no_array(value, "masked_values")
    return _masked(elemwise(np.ma.masked_values, x, value, rtol=rtol, atol=atol, shrink=shrink,
                            dtype=x.dtype))


def fix_invalid(a, fill_value=None):
    """``np.ma.fix_invalid``: NaN and infinities masked, their data replaced
    by ``fill_value`` (default: the array's fill value)."""
    a = asarray(a)
    return _masked(elemwise(np.ma.fix_invalid, a, fill_value=fill_value, dtype=a.dtype))


def _make_masked(data, mask=np.ma.nomask, **kwargs):
    return np.ma.masked_array(data, mask=mask, **kwargs)


def masked_array(data, mask=np.ma.nomask, fill_value=None, **kwargs):
    """``np.ma.masked_array(data, mask, fill_value, ...)`` block by block.
    ``mask`` has ``data``'s shape or one element; ``fill_value`` is a scalar.
    ``dtype=`` casts the data."""
    data = asarray(data)
    if getattr(fill_value, "shape", ()):
        raise ValueError("non-scalar fill_value not supported")
    kwargs.pop("chunks", None)
    dtype = kwargs.pop("dtype", None)
    if dtype is not None:
        data = data.astype(dtype)
    args = [data]
    if mask is not np.ma.nomask:
        mask = asarray(mask)
        if mask.size == 1:
            mask = reshape(mask, (1,) * data.ndim)
        elif tuple(mask.shape) != tuple(data.shape):
            raise np.ma.MaskError("Mask and data not compatible: data shape is %r, and mask "
                                  "shape is %r." % (tuple(data.shape), tuple(mask.shape)))
        args.append(mask)
    return _masked(elemwise(_make_masked, *args, fill_value=fill_value, **kwargs))


def _fill_value_of(b, fill_value):
    if isinstance(b, np.ma.MaskedArray):
        b = b.copy()
        b.fill_value = fill_value
    return b


def set_fill_value(a, fill_value):
    """``np.ma.set_fill_value``: ``a`` (a cdask Array, changed in place, as
    in dask) takes ``fill_value`` as the fill value of its masked blocks."""
    if not isinstance(a, Array):
        raise TypeError("cdask.ma.set_fill_value changes a cdask Array in place; got %s"
                        % type(a).__name__)
    if getattr(fill_value, "shape", ()):
        raise ValueError("cdask.ma.set_fill_value doesn't support array `value`s")
    # np.ma's own check (TypeError for a value the dtype cannot hold)
    fill_value = np.ma.masked_array(np.empty(0, dtype=a.dtype), fill_value=fill_value).fill_value
    a._become(_masked(blockwise_simple(_fill_value_of, "set-fill-value", a,
                                       args=(fill_value,), token=str(fill_value))))


def _like(b, func, kwargs):
    return func(b, **dict(kwargs))


def _like_fn(func, fname):
    def like(a, **kwargs):
        a = asarray(a)
        dtype = np.dtype(kwargs["dtype"]) if kwargs.get("dtype") is not None else a.dtype
        if "shape" in kwargs:
            raise NotImplementedError("cdask.ma.%s: shape= is not supported" % fname)
        return _masked(blockwise_simple(_like, "ma-" + fname, a, dtype=dtype,
                                        args=(func, tuple(sorted(kwargs.items())))))

    like.__name__ = like.__qualname__ = fname
    like.__doc__ = ("``np.ma.%s`` block by block: masked blocks keep their masks." % fname)
    return like


ones_like = _like_fn(np.ma.ones_like, "ones_like")
zeros_like = _like_fn(np.ma.zeros_like, "zeros_like")
empty_like = _like_fn(np.ma.empty_like, "empty_like")


# ---- reading masked arrays ---------------------------------------------------------
def filled(a, fill_value=None):
    """``np.ma.filled``: the data with masked elements set to ``fill_value``
    (default: each block's fill value); plain ndarray blocks."""
    a = asarray(a)
    return elemwise(np.ma.filled, a, fill_value=fill_value, dtype=a.dtype)


def getdata(a):
    """``np.ma.getdata``: the data under the mask (plain ndarray blocks)."""
    a = asarray(a)
    return elemwise(np.ma.getdata, a, dtype=a.dtype)


def getmaskarray(a):
    """``np.ma.getmaskarray``: the mask as a full boolean array."""
    a = asarray(a)
    return elemwise(np.ma.getmaskarray, a, dtype=bool)


def _count_chunk(b, axis=None, keepdims=True):
    return np.asarray(np.ma.count(b, axis=axis, keepdims=keepdims), dtype=np.intp)


def _count_agg(parts, axis=None, keepdims=False):
    return np.sum(parts, axis=axis, keepdims=keepdims, dtype=np.intp)


def count(a, axis=None, keepdims=False, split_every=None):
    """``np.ma.count``: the number of unmasked elements along ``axis``."""
    a = asarray(a)
    normalize_axis(axis, a.ndim)          # NumPy's AxisError, early
    return reduction(a, _count_chunk, _count_agg, axis=axis, keepdims=keepdims,
                     dtype=np.intp, split_every=split_every, name="count")


def nonzero(a):
    """``np.ma.nonzero``: the indices of the unmasked elements that are not zero."""
    a = asarray(a)
    return _nonzero(elemwise(np.logical_and, getdata(a), elemwise(np.logical_not,
                                                                  getmaskarray(a))))


def where(condition, x=None, y=None):
    """``np.ma.where``: ``x`` where ``condition``, else ``y`` (masks follow
    np.ma's rules); with ``condition`` only, ``nonzero(condition)``."""
    if (x is None) != (y is None):
        raise ValueError("either both or neither of x and y should be given")
    if x is None:
        return nonzero(condition)
    ops = [c if np.isscalar(c) else asarray(c) for c in (condition, x, y)]
    return _masked(elemwise(np.ma.where, *ops))


def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """``np.ma.average``: the weighted average of the unmasked elements
    (weights of masked elements left out); masked where none is left."""
    a = asarray(a)
    if weights is None:
        avg = mean(a, axis=axis, keepdims=keepdims)
        scl = count(a, axis=axis, keepdims=keepdims)
        if returned:
            scl = elemwise(np.multiply, scl, avg.dtype.type(1), dtype=avg.dtype)
            return avg, scl
        return avg
    w = asarray(weights)
    if a.dtype.kind in "iub":
        rdt = np.result_type(a.dtype, w.dtype, "f8")
    else:
        rdt = np.result_type(a.dtype, w.dtype)
    if tuple(a.shape) != tuple(w.shape):
        if axis is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
        axes = tuple(normalize_axis((ax,), a.ndim)[0] for ax in axes)
        if len(set(axes)) != len(axes):
            raise ValueError("repeated axis")
        if tuple(w.shape) != tuple(a.shape[ax] for ax in axes):
            raise ValueError("Shape of weights must be consistent with shape of a along "
                             "specified axis.")
        w = w.transpose(tuple(int(i) for i in np.argsort(axes)))
        w = reshape(w, tuple(s if ax in axes else 1 for ax, s in enumerate(a.shape)))
        w = broadcast_to(w, a.shape, chunks=a.chunks)
    # the weights of masked elements are left out (masked), as np.ma does
    w = masked_where(getmaskarray(a), elemwise(np.multiply, w, elemwise(
        np.logical_not, getmaskarray(a)), dtype=w.dtype))
    scl = _sum(w, axis=axis, dtype=rdt, keepdims=keepdims)
    avg = elemwise(np.true_divide, _sum(elemwise(np.multiply, a, w, dtype=rdt), axis=axis,
                                        keepdims=keepdims), scl)
    if returned:
        if tuple(scl.shape) != tuple(avg.shape):
            scl = broadcast_to(scl, avg.shape, chunks=avg.chunks)
        return avg, scl
    return avg


def normalize_masked_array(x):
    """What a masked array's token is made of (dask's normalizer of the same
    name): the tokens of its data, its mask and its fill value."""
    return (tokenize(np.ma.getdata(x)), tokenize(np.ma.getmaskarray(x)),
            tokenize(np.asarray(x.fill_value)))
