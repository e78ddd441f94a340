"""The ``fft`` extension of the array API standard (``xp.fft``), on
``cdask.fft`` (NumPy's transforms per block, transformed axes in one block).

The standard's keywords: ``n``/``axis`` or ``s``/``axes``, and ``norm``
('backward', 'ortho', 'forward'); single precision stays single (NumPy 2's
pocketfft keeps float32/complex64).
"""

import numpy as np

from .. import array as da
from ..array import fft as _fft
from ._dtypes import as_dtype, check_device, float64
from ._elementwise import operand

__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft",
           "ihfft", "fftfreq", "rfftfreq", "fftshift", "ifftshift"]

_NORMS = ("backward", "ortho", "forward")


def _check(x, norm, kinds, what):
    x = operand(x)
    if norm not in _NORMS:
        raise ValueError("norm must be one of %s, got %r" % (_NORMS, norm))
    if x.dtype.kind not in kinds:
        raise TypeError("%s needs a %s array, got %s"
                        % (what, "complex" if kinds == "c" else "floating-point", x.dtype))
    return x


def _one(name, kinds):
    func = getattr(_fft, name)

    def f(x, /, *, n=None, axis=-1, norm="backward"):
        x = _check(x, norm, kinds, name)
        return func(x, n=n, axis=axis, norm=norm)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = "NumPy's ``fft.%s`` along ``axis`` (``n`` points)." % name
    return f


def _many(name, kinds):
    func = getattr(_fft, name)

    def f(x, /, *, s=None, axes=None, norm="backward"):
        x = _check(x, norm, kinds, name)
        return func(x, s=s, axes=axes, norm=norm)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = "NumPy's ``fft.%s`` over ``axes`` (``s`` points each)." % name
    return f


fft = _one("fft", "c")
ifft = _one("ifft", "c")
rfft = _one("rfft", "f")
irfft = _one("irfft", "c")
hfft = _one("hfft", "c")
ihfft = _one("ihfft", "f")
fftn = _many("fftn", "c")
ifftn = _many("ifftn", "c")
rfftn = _many("rfftn", "f")
irfftn = _many("irfftn", "c")


def _freq(values, dtype):
    dtype = float64 if dtype is None else as_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError("the sample frequencies need a real floating dtype, got %s" % dtype)
    return da.asarray(values.astype(dtype))


def fftfreq(n, /, *, d=1.0, dtype=None, device=None):
    """The sample frequencies of an ``n``-point transform (float64 by default)."""
    check_device(device)
    return _freq(np.fft.fftfreq(n, d), dtype)


def rfftfreq(n, /, *, d=1.0, dtype=None, device=None):
    check_device(device)
    return _freq(np.fft.rfftfreq(n, d), dtype)


def fftshift(x, /, *, axes=None):
    return _fft.fftshift(operand(x), axes=axes)


def ifftshift(x, /, *, axes=None):
    return _fft.ifftshift(operand(x), axes=axes)
