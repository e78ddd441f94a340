"""The dtypes cdask arrays hold, and the check every Array makes of its dtype.

Two groups:

* the C core's table (``cdask._core.DTYPES``, one X-macro table in ``src/``,
  float16 included): the kernels, the chunk store and this check agree on it
  by construction;
* datetime64/timedelta64 in every unit (and the generic unit), which no C
  kernel, fused program or C chunk ever sees: their blocks are NumPy arrays
  made and combined by NumPy inside Python tasks, so their results are
  NumPy's bit for bit.  ``is_c_dtype`` tells the two apart.
"""

import numpy as np

from .._core import DTYPES

__all__ = ["SUPPORTED_DTYPES", "check_dtype", "is_c_dtype", "C_DTYPES"]


#: the dtypes the C kernels and chunks hold
C_DTYPES = tuple(np.dtype(name) for name in DTYPES)
_C_SET = frozenset(C_DTYPES)

_TIME_UNITS = ("", "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as")
_TIME_DTYPES = tuple(np.dtype("%s8%s" % (k, "[%s]" % u if u else ""))
                     for k in "Mm" for u in _TIME_UNITS)

#: every dtype a cdask Array may have: the C ones, datetime64 and
#: timedelta64 (all units)
SUPPORTED_DTYPES = C_DTYPES + _TIME_DTYPES
_SUPPORTED_SET = frozenset(SUPPORTED_DTYPES)
_SUPPORTED_TEXT = ", ".join(DTYPES) + ", datetime64, timedelta64"


def is_c_dtype(dtype):
    """True if C kernels (ufunc, fused, reductions, chunks) take ``dtype``."""
    try:
        return np.dtype(dtype) in _C_SET
    except TypeError:
        return False


def check_dtype(dtype):
    """``np.dtype(dtype)`` if cdask supports it, else TypeError listing the
    supported dtypes."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError("cdask arrays do not support dtype %r; supported dtypes: %s"
                        % (dtype, _SUPPORTED_TEXT)) from e
    if dt not in _SUPPORTED_SET:
        # byte-swapped variants of supported types are accepted as native
        if dt.isnative is False and dt.newbyteorder("=") in _SUPPORTED_SET:
            return dt.newbyteorder("=")
        raise TypeError("cdask arrays do not support dtype %s; supported dtypes: %s"
                        % (dt, _SUPPORTED_TEXT))
    return dt
