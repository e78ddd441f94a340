"""``assert_eq``: dask's test helper, for cdask Arrays, dask arrays, NumPy
arrays and scalars.

Each side is computed (a cdask Array by cdask, a dask array by its own
``compute``), its declared shape and dtype are checked against what came
out, and the values are compared: exactly for integers, booleans and
strings, with ``np.allclose`` (``rtol``/``atol`` keywords, NaN equal to NaN
unless ``equal_nan=False``) for floating and complex values.  A failure
raises AssertionError saying what differs and where.
"""

import numpy as np

from .._core import get
from .core import Array
from .utils import chunks_known, shape_str

__all__ = ["assert_eq"]


def _check_blocks(x, check_dtype):
    # every block has the shape its chunks promise (and the dtype)
    keys = x._keys_flat()
    blocks = get(x.__dask_graph__(), keys)
    for k, b in zip(keys, blocks):
        want = tuple(x.chunks[d][k[1 + d]] for d in range(x.ndim))
        got = np.shape(b)
        if got != want:
            raise AssertionError("block %s of %r has shape %s, but its chunks say %s"
                                 % (k[1:], x.name, shape_str(got), shape_str(want)))
        if check_dtype and np.asarray(b).dtype != x.dtype:
            raise AssertionError("block %s of %r has dtype %s, but the array's dtype is %s"
                                 % (k[1:], x.name, np.asarray(b).dtype, x.dtype))


def _computed(x, which, check_shape, check_dtype, check_chunks, check_graph, check_type,
              scheduler):
    """(NumPy value, declared dtype or None) of one side."""
    if isinstance(x, Array):
        if check_graph:
            g = x.__dask_graph__()
            missing = [k for k in x._keys_flat() if k not in g]
            if missing:
                raise AssertionError("%s: the graph of %r lacks the keys %s"
                                     % (which, x.name, missing[:5]))
        if check_chunks and chunks_known(x):
            _check_blocks(x, check_dtype)
        r = x.compute()
        if check_type and not isinstance(r, (np.ndarray, np.generic)):
            raise AssertionError("%s: computing gave a %s, not a NumPy array or scalar"
                                 % (which, type(r).__name__))
        declared_shape, declared_dtype = x.shape, x.dtype
    elif hasattr(x, "__dask_graph__") and hasattr(x, "compute"):
        r = x.compute(scheduler=scheduler)
        declared_shape = getattr(x, "shape", None)
        declared_dtype = getattr(x, "dtype", None)
    else:
        return np.asarray(x), None
    r = np.asarray(r)
    if check_shape and declared_shape is not None and _shape_known(declared_shape) and \
            tuple(r.shape) != tuple(declared_shape):
        raise AssertionError("%s: the array says its shape is %s, but computing it gave %s"
                             % (which, shape_str(declared_shape), shape_str(r.shape)))
    if check_dtype and declared_dtype is not None and r.dtype != declared_dtype:
        raise AssertionError("%s: the array says its dtype is %s, but computing it gave %s"
                             % (which, declared_dtype, r.dtype))
    return r, declared_dtype


def _shape_known(shape):
    return not any(isinstance(s, float) and s != s for s in shape)


def assert_eq(a, b, check_shape=True, check_graph=True, check_meta=True, check_chunks=True,
              check_ndim=True, check_type=True, check_dtype=True, equal_nan=True,
              scheduler="sync", **kwargs):
    """Raise AssertionError unless ``a`` and ``b`` hold the same values (after
    computing either that is lazy).  ``check_shape``/``check_ndim``: same
    shapes; ``check_dtype``: same dtypes (and each lazy array's declared dtype
    is what it computes to); ``check_chunks``: every block of a cdask Array has
    the shape of its chunks; ``check_graph``: its graph holds its keys;
    ``check_type``: it computes to a NumPy array or scalar.  ``rtol`` and
    ``atol`` (keywords) are those of ``np.allclose`` for inexact values.
    ``check_meta`` is accepted for dask's signature (cdask's blocks are NumPy
    arrays).  Returns True."""
    rtol = kwargs.pop("rtol", 1e-5)
    atol = kwargs.pop("atol", 1e-8)
    if kwargs:
        raise TypeError("assert_eq got unexpected keyword arguments %s" % sorted(kwargs))
    flags = (check_shape, check_dtype, check_chunks, check_graph, check_type, scheduler)
    x, _ = _computed(a, "a", *flags)
    y, _ = _computed(b, "b", *flags)
    if check_ndim and x.ndim != y.ndim:
        raise AssertionError("a has %d dimensions, b has %d (shapes %s and %s)"
                             % (x.ndim, y.ndim, shape_str(x.shape), shape_str(y.shape)))
    if check_shape and x.shape != y.shape:
        raise AssertionError("shapes differ: a %s, b %s" % (shape_str(x.shape),
                                                             shape_str(y.shape)))
    if check_dtype and x.dtype != y.dtype:
        raise AssertionError("dtypes differ: a %s, b %s" % (x.dtype, y.dtype))
    try:
        xb, yb = np.broadcast_arrays(x, y)
    except ValueError:
        raise AssertionError("shapes %s and %s do not broadcast together"
                             % (shape_str(x.shape), shape_str(y.shape))) from None
    inexact = any(v.dtype.kind in "fc" for v in (x, y))
    if inexact:
        with np.errstate(all="ignore"):
            close = np.isclose(xb, yb, rtol=rtol, atol=atol, equal_nan=equal_nan)
    else:
        close = np.asarray(xb == yb)
        if close.shape != xb.shape:
            close = np.broadcast_to(close, xb.shape)
    if not close.all():
        bad = np.argwhere(~close) if close.ndim else np.zeros((1, 0), int)
        n = int((~close).sum())
        where = tuple(int(i) for i in bad[0])
        raise AssertionError(
            "values differ at %d of %d positions%s; first at index %s: a=%r, b=%r"
            % (n, close.size, " (rtol=%g, atol=%g)" % (rtol, atol) if inexact else "",
               where, xb[where], yb[where]))
    return True
