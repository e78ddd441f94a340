"""Elementwise functions of the array API standard: cdask's ufuncs under the
standard's names and signatures (positional-only operands).

Binary functions take a Python scalar for one operand (2024.12); the scalar
is weak (NEP 50), so ``add(int8_array, 1)`` stays int8.  ``clip`` keeps the
dtype of ``x``.
"""

import builtins

import numpy as np

from .. import array as da
from ..array.core import Array

SCALARS = (builtins.bool, int, float, complex)


def operand(x, what="x"):
    """``x`` as an Array (NumPy arrays and scalars are wrapped: xarray passes
    ``np.datetime64("NaT")`` fill values); anything else is a TypeError."""
    if isinstance(x, Array):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        return da.asarray(x)
    raise TypeError("%s must be an array, got %s" % (what, type(x).__name__))


def binary_operands(x1, x2):
    s1, s2 = isinstance(x1, SCALARS), isinstance(x2, SCALARS)
    if s1 and s2:
        raise TypeError("at least one of x1 and x2 must be an array")
    if not s1:
        x1 = operand(x1, "x1")
    if not s2:
        x2 = operand(x2, "x2")
    return x1, x2


def _unary(name, ufunc):
    def f(x, /):
        return da.elemwise(ufunc, operand(x))
    f.__name__ = f.__qualname__ = name
    f.__doc__ = "``%s`` of each element (NumPy's ``%s``)." % (name, ufunc.__name__)
    return f


def _binary(name, ufunc):
    def f(x1, x2, /):
        x1, x2 = binary_operands(x1, x2)
        return da.elemwise(ufunc, x1, x2)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = "``%s`` of each pair of broadcast elements (NumPy's ``%s``)." % (
        name, ufunc.__name__)
    return f


UNARY = {
    "abs": np.absolute, "acos": np.arccos, "acosh": np.arccosh, "asin": np.arcsin,
    "asinh": np.arcsinh, "atan": np.arctan, "atanh": np.arctanh,
    "bitwise_invert": np.invert, "ceil": np.ceil, "conj": np.conjugate, "cos": np.cos,
    "cosh": np.cosh, "exp": np.exp, "expm1": np.expm1, "floor": np.floor,
    "isfinite": np.isfinite, "isinf": np.isinf, "isnan": np.isnan, "log": np.log,
    "log1p": np.log1p, "log2": np.log2, "log10": np.log10, "logical_not": np.logical_not,
    "negative": np.negative, "positive": np.positive, "sign": np.sign,
    "signbit": np.signbit, "sin": np.sin, "sinh": np.sinh, "square": np.square,
    "sqrt": np.sqrt, "tan": np.tan, "trunc": np.trunc,
}

BINARY = {
    "add": np.add, "atan2": np.arctan2, "bitwise_and": np.bitwise_and,
    "bitwise_left_shift": np.left_shift, "bitwise_or": np.bitwise_or,
    "bitwise_right_shift": np.right_shift, "bitwise_xor": np.bitwise_xor,
    "copysign": np.copysign, "divide": np.true_divide, "equal": np.equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal, "hypot": np.hypot, "less": np.less,
    "less_equal": np.less_equal, "logaddexp": np.logaddexp, "logical_and": np.logical_and,
    "logical_or": np.logical_or, "logical_xor": np.logical_xor, "maximum": np.maximum,
    "minimum": np.minimum, "multiply": np.multiply, "nextafter": np.nextafter,
    "not_equal": np.not_equal, "pow": np.power, "remainder": np.remainder,
    "subtract": np.subtract,
}

__all__ = sorted(UNARY) + sorted(BINARY) + ["clip", "expm1", "floor_divide", "imag", "real",
                                            "reciprocal", "round", "tanh"]

for _n, _u in UNARY.items():
    globals()[_n] = _unary(_n, _u)
for _n, _u in BINARY.items():
    globals()[_n] = _binary(_n, _u)
del _n, _u


def expm1(x, /):
    """``exp(x) - 1`` of each element, accurate near zero (NumPy's ``expm1``);
    complex infinities and NaNs take the standard's special values, which
    are ``exp(x) - 1``'s."""
    x = operand(x)
    out = da.elemwise(np.expm1, x)
    if x.dtype.kind != "c":
        return out
    out = da.where(x == 0, x - x, out)   # a complex zero (either sign of its real part): +0
    return da.where(da.isfinite(x), out, da.exp(x) - 1)


def _limit_block(re, im, dtype):
    """``copysign(1, re) + copysign(0, im) j`` built from its parts (complex
    arithmetic would lose the signs of the zeros)."""
    out = np.empty(np.broadcast_shapes(re.shape, im.shape), dtype)
    out.real = np.copysign(1, re)
    out.imag = np.copysign(0, im)
    return out


def tanh(x, /):
    """The hyperbolic tangent of each element (NumPy's ``tanh``); for complex
    ``x`` with an infinite real part and a finite imaginary part, the
    standard's ``+-1 +- 0j`` (NumPy's zero takes the sign of ``sin(2 imag)``)."""
    x = operand(x)
    out = da.elemwise(np.tanh, x)
    if x.dtype.kind != "c":
        return out
    re, im = x.real, x.imag
    limit = da.map_blocks(_limit_block, re, im, x.dtype, dtype=x.dtype)
    return da.where(da.isinf(re) & da.isfinite(im), limit, out)


def floor_divide(x1, x2, /):
    """``floor(x1 / x2)`` of each pair (NumPy's ``floor_divide``); for floats
    an infinite operand against a finite one gives ``x1 / x2`` (a signed
    infinity or zero), as the standard's special cases say, where NumPy
    gives NaN or -1."""
    x1, x2 = binary_operands(x1, x2)
    out = da.elemwise(np.floor_divide, x1, x2)
    if out.dtype.kind != "f":
        return out
    inf1 = da.isinf(x1) if isinstance(x1, Array) else np.isinf(x1)
    inf2 = da.isinf(x2) if isinstance(x2, Array) else np.isinf(x2)
    return da.where(inf1 != inf2, da.elemwise(np.true_divide, x1, x2), out)


def real(x, /):
    """The real part of each element (real inputs are returned as they are)."""
    return operand(x).real


def imag(x, /):
    """The imaginary part of each element (zeros of the same dtype for real inputs)."""
    return operand(x).imag


def reciprocal(x, /):
    """``1 / x`` of each element, in the dtype of ``x`` (a floating one)."""
    x = operand(x)
    return da.elemwise(np.reciprocal, x)


def round(x, /):
    """Each element rounded to the nearest integer, halves to even; integer
    arrays are returned as they are."""
    x = operand(x)
    if x.dtype.kind in "iub":
        return x
    return da.elemwise(np.rint, x)


def clip(x, /, min=None, max=None):
    """``x`` with its elements limited to ``[min, max]`` (scalars or arrays
    broadcast against ``x``), in the dtype and shape of ``x``."""
    x = operand(x)
    if x.dtype.kind == "c":
        raise TypeError("clip is not defined for complex arrays")
    out = x
    for bound, uf, what in ((min, np.maximum, "min"), (max, np.minimum, "max")):
        if bound is None:
            continue
        if not isinstance(bound, SCALARS):
            bound = operand(bound, what)
            if np.broadcast_shapes(bound.shape, x.shape) != x.shape:
                raise ValueError("clip: %s of shape %s does not broadcast to x's %s"
                                 % (what, bound.shape, x.shape))
        elif isinstance(bound, complex):
            raise TypeError("clip: %s must be real, got %r" % (what, bound))
        elif x.dtype.kind in "iu" and isinstance(bound, float):
            raise TypeError("clip: a float %s for an integer array" % what)
        elif x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            bound = builtins.min(builtins.max(bound, int(info.min)), int(info.max))
        # NaN bounds leave NaN: maximum/minimum propagate it, as the standard says
        out = da.elemwise(uf, out, bound)
    if out.dtype != x.dtype:
        out = out.astype(x.dtype)
    return out
