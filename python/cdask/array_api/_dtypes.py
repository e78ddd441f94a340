"""Data types of the array API namespace: the dtype objects, ``isdtype``,
``result_type``, ``can_cast``, ``finfo``/``iinfo`` and the inspection object.

The dtype objects are NumPy's ``np.dtype`` instances (an Array's ``.dtype`` is
one), so ``x.dtype == xp.float32`` holds and every cdask function accepts them.
Promotion is the standard's table: NumPy 2's rules agree with it for every
pair the table defines (no value-based casting), and Python scalars are weak
(NEP 50), as 2024.12 requires.
"""

import builtins

import numpy as np

DEVICE = "cpu"

bool = np.dtype("bool")
int8, int16, int32, int64 = (np.dtype(n) for n in ("int8", "int16", "int32", "int64"))
uint8, uint16, uint32, uint64 = (np.dtype(n) for n in ("uint8", "uint16", "uint32", "uint64"))
float32, float64 = np.dtype("float32"), np.dtype("float64")
complex64, complex128 = np.dtype("complex64"), np.dtype("complex128")

SIGNED = (int8, int16, int32, int64)
UNSIGNED = (uint8, uint16, uint32, uint64)
REAL_FLOAT = (float32, float64)
COMPLEX = (complex64, complex128)
ALL = (bool,) + SIGNED + UNSIGNED + REAL_FLOAT + COMPLEX

_KINDS = {
    "bool": (bool,),
    "signed integer": SIGNED,
    "unsigned integer": UNSIGNED,
    "integral": SIGNED + UNSIGNED,
    "real floating": REAL_FLOAT,
    "complex floating": COMPLEX,
    "numeric": SIGNED + UNSIGNED + REAL_FLOAT + COMPLEX,
}


def check_device(device):
    """Accept ``None`` or the one device, ``"cpu"``; anything else is a ValueError."""
    if device is not None and device != DEVICE:
        raise ValueError("cdask arrays live on the 'cpu' device only, got %r" % (device,))


def as_dtype(dtype):
    """``dtype`` as one of the standard's dtypes (TypeError for anything else)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError("%r is not an array API data type" % (dtype,)) from None
    if dt not in ALL:
        raise TypeError("%s is not an array API data type" % dt)
    return dt


def isdtype(dtype, kind):
    """Whether ``dtype`` is of ``kind``: a dtype, one of the standard's kind
    names ('bool', 'signed integer', 'unsigned integer', 'integral',
    'real floating', 'complex floating', 'numeric') or a tuple of those."""
    if not isinstance(dtype, np.dtype):
        raise TypeError("isdtype expects a dtype, got %r" % (dtype,))
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _KINDS:
            raise ValueError("unknown data type kind %r; expected one of %s"
                             % (kind, ", ".join(map(repr, _KINDS))))
        return dtype in _KINDS[kind]
    if isinstance(kind, np.dtype):
        return dtype == kind
    raise TypeError("isdtype's kind must be a dtype, a kind name or a tuple of them, "
                    "got %r" % (kind,))


def _dtype_of(x):
    return x if isinstance(x, np.dtype) else x.dtype


def result_type(*arrays_and_dtypes):
    """The dtype the standard's promotion gives: arrays and dtypes by the table,
    Python scalars (bool, int, float, complex) weakly, as in 2024.12."""
    dts, scalars = [], []
    for a in arrays_and_dtypes:
        if isinstance(a, (builtins.bool, int, float, complex)):
            scalars.append(a)
        elif isinstance(a, np.dtype) or hasattr(a, "dtype"):
            dts.append(np.dtype(_dtype_of(a)))
        else:
            try:
                dts.append(np.dtype(a))
            except TypeError:
                raise TypeError("result_type takes arrays, dtypes and Python scalars, got %r"
                                % (a,)) from None
    if not dts:
        if scalars:
            # beyond the standard (which wants an array or a dtype): NumPy's
            # default dtypes, as xarray expects of any namespace
            return np.result_type(*scalars)
        raise ValueError("result_type needs at least one array or dtype")
    if not all(d in ALL for d in dts):
        # dtypes beyond the standard's (datetime64, strings): NumPy's promotion
        return np.result_type(*dts, *scalars)
    rt = np.result_type(*dts)
    for s in scalars:
        rt = scalar_result(rt, s)
    return rt


def scalar_result(dt, s):
    """The dtype of an array of dtype ``dt`` combined with the Python scalar ``s``."""
    if isinstance(s, builtins.bool):
        return dt
    if isinstance(s, int):
        return dt if dt != bool else np.dtype("int64")
    if isinstance(s, float):
        return dt if dt.kind in "fc" else np.dtype("float64")
    if isinstance(s, complex):
        return dt if dt.kind == "c" else (complex64 if dt == float32 else complex128)
    raise TypeError("expected a Python scalar, got %r" % (s,))


def can_cast(from_, to, /):
    """Whether ``from_`` (a dtype or an array) casts to ``to`` without loss:
    NumPy's safe casting, which allows every cast the promotion table makes."""
    return builtins.bool(np.can_cast(as_dtype(_dtype_of(from_)), as_dtype(to), "safe"))


class finfo_object:
    """Limits of a floating dtype as the standard has them: Python floats
    (NumPy's ``finfo`` gives float32 scalars for float32)."""

    def __init__(self, dt):
        f = np.finfo(dt)
        self.bits = int(f.bits)
        self.eps = float(f.eps)
        self.max = float(f.max)
        self.min = float(f.min)
        self.smallest_normal = float(f.smallest_normal)
        self.dtype = np.dtype(f.dtype)

    def __repr__(self):
        return "finfo(bits=%d, eps=%r, max=%r, min=%r, smallest_normal=%r, dtype=%s)" % (
            self.bits, self.eps, self.max, self.min, self.smallest_normal, self.dtype)


class iinfo_object:
    """Limits of an integer dtype: ``bits``, ``max``, ``min`` (Python ints), ``dtype``."""

    def __init__(self, dt):
        i = np.iinfo(dt)
        self.bits, self.max, self.min, self.dtype = int(i.bits), int(i.max), int(i.min), dt

    def __repr__(self):
        return "iinfo(bits=%d, max=%d, min=%d, dtype=%s)" % (self.bits, self.max, self.min,
                                                             self.dtype)


def finfo(type, /):
    """Machine limits of a floating dtype (or an array's); for complex dtypes,
    those of their real parts (``dtype`` is the real one, as the standard says)."""
    dt = as_dtype(_dtype_of(type))
    if dt.kind not in "fc":
        raise ValueError("finfo expects a floating-point dtype, got %s" % dt)
    return finfo_object(dt)


def iinfo(type, /):
    """Machine limits of an integer dtype (or an array's)."""
    dt = as_dtype(_dtype_of(type))
    if dt.kind not in "iu":
        raise ValueError("iinfo expects an integer dtype, got %s" % dt)
    return iinfo_object(dt)


class Info:
    """What ``__array_namespace_info__()`` returns: capabilities, devices, dtypes."""

    __module__ = "cdask.array_api"

    def capabilities(self):
        """Boolean masks are supported; so are data-dependent output shapes
        (unique, nonzero, masks: their sizes unknown until computed)."""
        return {"boolean indexing": True, "data-dependent shapes": True,
                "max dimensions": 64}

    def default_device(self):
        return DEVICE

    def devices(self):
        return [DEVICE]

    def default_dtypes(self, *, device=None):
        check_device(device)
        return {"real floating": float64, "complex floating": complex128,
                "integral": int64, "indexing": int64}

    def dtypes(self, *, device=None, kind=None):
        """The supported dtypes by name, all of them or those of ``kind``."""
        check_device(device)
        if kind is None:
            chosen = ALL
        else:
            chosen = tuple(d for d in ALL if isdtype(d, kind))
        return {d.name: d for d in chosen}


def __array_namespace_info__():
    """The inspection object of the namespace."""
    return Info()
