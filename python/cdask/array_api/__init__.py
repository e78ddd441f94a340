"""``cdask.array_api``: the Python array API standard (2024.12) for cdask Arrays.

``import cdask.array_api as xp`` or ``x.__array_namespace__()`` gives this
namespace: every function of the standard with its signature, keyword rules
and dtype rules, on cdask's own functions (thin wrappers: the results are
lazy cdask Arrays, computed only by ``bool()``, ``int()``, ``float()``,
``complex()``, ``__index__``, ``__dlpack__`` or ``compute()``).  The
``linalg`` and ``fft`` extensions are the submodules ``xp.linalg`` and
``xp.fft``.  Deviations from the standard are listed in docs/array-api.md.
"""

import math as _math

import numpy as _np

from ._dtypes import (bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64,  # noqa: F401
                      float32, float64, complex64, complex128, isdtype, result_type,
                      can_cast, finfo, iinfo, __array_namespace_info__)
from ._creation import *  # noqa: F401,F403
from ._elementwise import *  # noqa: F401,F403
from ._functions import *  # noqa: F401,F403
from . import fft, linalg  # noqa: F401

__array_api_version__ = "2024.12"

#: the versions ``__array_namespace__(api_version=...)`` accepts (one namespace serves all)
SUPPORTED_VERSIONS = ("2021.12", "2022.12", "2023.12", "2024.12")

e = _math.e
inf = _math.inf
nan = _math.nan
pi = _math.pi
newaxis = None


def namespace_for(api_version):
    """This module, for ``api_version`` None or one of SUPPORTED_VERSIONS."""
    if api_version is not None and api_version not in SUPPORTED_VERSIONS:
        raise ValueError("cdask.array_api supports the array API versions %s, not %r"
                         % (", ".join(SUPPORTED_VERSIONS), api_version))
    import sys
    return sys.modules[__name__]


del _np


def __getattr__(name):
    """Names beyond the standard come from ``cdask.array`` (dask.array's
    names): libraries that take any array-API array and then call NumPy's
    wider set through its namespace - xarray's ``pad``, ``einsum``,
    ``nanmean`` - find them here as they would in NumPy's namespace."""
    if name.startswith("__"):
        raise AttributeError(name)
    import cdask.array as _da
    try:
        return getattr(_da, name)
    except AttributeError:
        raise AttributeError("module 'cdask.array_api' has no attribute %r (neither in the "
                             "array API standard nor in cdask.array)" % name) from None
