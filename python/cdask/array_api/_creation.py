"""Creation functions of the array API standard, on cdask's creation routines.

Each takes the standard's keywords (``dtype``, ``device``, ``copy``) and its
default dtypes (float64 for floats, int64 for integers, complex128 for
complex values); the result is a lazy cdask Array.
"""

import builtins
import operator

import numpy as np

from .. import array as da
from ..array.core import Array
from ._dtypes import as_dtype, check_device, float64, complex128, int64, bool as bool_

__all__ = ["arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full",
           "full_like", "linspace", "meshgrid", "ones", "ones_like", "tril", "triu", "zeros",
           "zeros_like"]


def _opt_dtype(dtype):
    return None if dtype is None else as_dtype(dtype)


def shape_tuple(shape):
    """``shape`` (an int or a sequence of ints) as a tuple of Python ints."""
    if isinstance(shape, (builtins.bool, np.bool_)):
        raise TypeError("a shape must be an int or a tuple of ints, got %r" % (shape,))
    try:
        return (operator.index(shape),)
    except TypeError:
        pass
    try:
        return tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError("a shape must be an int or a tuple of ints, got %r" % (shape,)) from None


def _scalar_dtype(value):
    """The default dtype of an array filled with the Python scalar ``value``."""
    if isinstance(value, (builtins.bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return float64
    if isinstance(value, (complex, np.complexfloating)):
        return complex128
    raise TypeError("fill_value must be a Python scalar, got %r" % (value,))


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    """An Array from an Array, a NumPy array, a buffer, a (nested) sequence or
    a Python scalar.  ``copy=True`` always makes a new Array; ``copy=False``
    raises ValueError where a copy would be needed (a change of dtype, a
    sequence); the default copies only when it must."""
    check_device(device)
    dtype = _opt_dtype(dtype)
    if isinstance(obj, Array):
        if dtype is not None and dtype != obj.dtype:
            if copy is False:
                raise ValueError("asarray(copy=False) cannot change the dtype without a copy")
            return obj.astype(dtype)
        return obj.copy() if copy else obj
    if copy is False and not hasattr(obj, "__array__") and not hasattr(obj, "__buffer__"):
        raise ValueError("asarray(copy=False): a %s cannot be used without a copy"
                         % type(obj).__name__)
    if isinstance(obj, (list, tuple)):
        obj = _computed(obj)
    if isinstance(obj, int) and not isinstance(obj, builtins.bool) and dtype is None:
        dtype = int64
    try:
        a = np.array(obj, dtype=dtype, copy=copy)
    except OverflowError:
        raise
    if a.dtype == object or a.dtype.kind in "USV":
        raise TypeError("asarray cannot make an array API array from %r" % (type(obj),))
    as_dtype(a.dtype)
    return da.asarray(a)


def _computed(seq):
    """A nested sequence with its cdask Arrays computed, all in one run
    (NumPy would compute them one by one)."""
    found = []

    def collect(o):
        if isinstance(o, Array):
            found.append(o)
        elif isinstance(o, (list, tuple)):
            for i in o:
                collect(i)

    collect(seq)
    if not found:
        return seq
    values = iter(da.compute(*found))

    def rebuild(o):
        if isinstance(o, Array):
            return next(values)
        if isinstance(o, (list, tuple)):
            return [rebuild(i) for i in o]
        return o

    return rebuild(seq)


def _full(shape, value, dtype, chunks="auto"):
    return da.full(shape_tuple(shape), value, dtype=dtype, chunks=chunks)


# chunks= (beyond the standard, as dask.array's): xarray passes it to any namespace

def empty(shape, *, dtype=None, device=None, chunks="auto"):
    """An Array of ``shape`` (its values zeros: cdask has no uninitialised blocks)."""
    check_device(device)
    return _full(shape, 0, _opt_dtype(dtype) or float64, chunks)


def zeros(shape, *, dtype=None, device=None, chunks="auto"):
    check_device(device)
    return _full(shape, 0, _opt_dtype(dtype) or float64, chunks)


def ones(shape, *, dtype=None, device=None, chunks="auto"):
    check_device(device)
    return _full(shape, 1, _opt_dtype(dtype) or float64, chunks)


def full(shape, fill_value, *, dtype=None, device=None, chunks="auto"):
    """An Array of ``shape`` filled with ``fill_value``; its dtype by default
    that of the Python scalar (bool, int64, float64, complex128)."""
    check_device(device)
    dtype = _opt_dtype(dtype) or _scalar_dtype(fill_value)
    return _full(shape, fill_value, dtype, chunks)


def _like(x, value, dtype, device, chunks):
    check_device(device)
    dtype = _opt_dtype(dtype) or x.dtype
    if chunks is None:
        chunks = x.chunks if isinstance(x, da.Array) else "auto"
    return _full(x.shape, value, dtype, chunks)


def empty_like(x, /, *, dtype=None, device=None, chunks=None):
    return _like(x, 0, dtype, device, chunks)


def zeros_like(x, /, *, dtype=None, device=None, chunks=None):
    return _like(x, 0, dtype, device, chunks)


def ones_like(x, /, *, dtype=None, device=None, chunks=None):
    return _like(x, 1, dtype, device, chunks)


def full_like(x, /, fill_value, *, dtype=None, device=None, chunks=None):
    if not isinstance(fill_value, (builtins.bool, int, float, complex, np.generic)):
        raise TypeError("fill_value must be a Python scalar, got %r" % (fill_value,))
    return _like(x, fill_value, dtype, device, chunks)


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    """Evenly spaced values in [start, stop); int64 for integer arguments,
    float64 otherwise."""
    check_device(device)
    if stop is None:
        start, stop = 0, start
    for v in (start, stop, step):
        if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, builtins.bool):
            raise TypeError("arange takes real numbers, got %r" % (v,))
    if step == 0:
        raise ValueError("arange: step must not be 0")
    dtype = _opt_dtype(dtype)
    if dtype is None:
        ints = builtins.all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = int64 if ints else float64
    if builtins.all(isinstance(v, (int, np.integer)) for v in (start, stop, step)):
        n = builtins.max(-((int(start) - int(stop)) // int(step)), 0)   # exact ceil
    else:
        n = builtins.max(int(np.ceil((stop - start) / step)), 0)
    if n == 0:
        return _full((0,), 0, dtype)
    if dtype.kind in "iu":
        return da.arange(start, start + n * step, step, dtype=dtype)
    # float steps: the values NumPy's arange would give for this length
    return (da.arange(0, n, 1, dtype=float64) * step + start).astype(dtype)


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    """Ones on the ``k``-th diagonal of an ``n_rows x n_cols`` matrix."""
    check_device(device)
    dtype = _opt_dtype(dtype) or float64
    n_cols = n_rows if n_cols is None else n_cols
    if n_rows == 0 or n_cols == 0:
        return _full((n_rows, n_cols), 0, dtype)
    return da.eye(n_rows, M=n_cols, k=k, dtype=dtype)


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True):
    """``num`` evenly spaced values from ``start`` to ``stop``; float64, or
    complex128 for complex bounds."""
    check_device(device)
    cplx = isinstance(start, complex) or isinstance(stop, complex)
    dtype = _opt_dtype(dtype) or (complex128 if cplx else float64)
    if cplx and dtype.kind != "c":
        raise TypeError("linspace with complex bounds needs a complex dtype, got %s" % dtype)
    if num == 0:
        return _full((0,), 0, dtype)
    return da.asarray(np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype))


def from_dlpack(x, /, *, device=None, copy=None):
    """An Array of the data of any DLPack exporter (a cdask Array computes)."""
    check_device(device)
    if isinstance(x, Array):
        return x.copy() if copy else x
    return da.asarray(np.from_dlpack(x, copy=copy))


def meshgrid(*arrays, indexing="xy"):
    """Coordinate matrices from 1-d Arrays (``indexing`` 'xy' or 'ij')."""
    if indexing not in ("xy", "ij"):
        raise ValueError("indexing must be 'xy' or 'ij', got %r" % (indexing,))
    if not arrays:
        return []
    return list(da.meshgrid(*arrays, indexing=indexing))


def _tri_mask(x, k, lower):
    m, n = x.shape[-2:]
    mask = np.tri(m, n, k=k if lower else k - 1, dtype=bool)
    return mask if lower else ~mask


def tril(x, /, *, k=0):
    """The lower triangle (at and below the ``k``-th diagonal) of each matrix."""
    if x.ndim < 2:
        raise ValueError("tril needs an array of 2 or more dimensions, got %d" % x.ndim)
    return da.where(da.asarray(_tri_mask(x, k, True)), x, da.zeros((), dtype=x.dtype))


def triu(x, /, *, k=0):
    """The upper triangle (at and above the ``k``-th diagonal) of each matrix."""
    if x.ndim < 2:
        raise ValueError("triu needs an array of 2 or more dimensions, got %d" % x.ndim)
    return da.where(da.asarray(_tri_mask(x, k, False)), x, da.zeros((), dtype=x.dtype))
