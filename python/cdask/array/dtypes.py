"""The dtypes cdask arrays hold, and the check every Array makes of its dtype.

The list itself is the C core's table (``cdask._core.DTYPES``, one X-macro
table in ``src/``): the kernels, the chunk store and this check agree on it
by construction.
"""

import numpy as np

from .._core import DTYPES

__all__ = ["SUPPORTED_DTYPES", "check_dtype"]


SUPPORTED_DTYPES = tuple(np.dtype(name) for name in DTYPES)
_SUPPORTED_SET = frozenset(SUPPORTED_DTYPES)
_SUPPORTED_TEXT = ", ".join(DTYPES)


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
