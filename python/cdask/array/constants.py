"""The NumPy names dask.array re-exports as they are: the scalar types
(``cdask.float64``, ``cdask.int8``, ``cdask.bool``...) and the constants
(``pi``, ``e``, ``inf``, ``nan``, ``newaxis``, ``euler_gamma``).

They are NumPy's own objects, so ``x.astype(cdask.float32)`` and
``x[:, cdask.newaxis]`` mean what they mean to NumPy.  Only the dtypes dask
exports are here; cdask's supported dtypes are ``dtypes.SUPPORTED_DTYPES``.
"""

import numpy as np

__all__ = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float32", "float64", "complex64", "complex128",
           "e", "pi", "inf", "nan", "newaxis", "euler_gamma"]

bool = np.bool
int8, int16, int32, int64 = np.int8, np.int16, np.int32, np.int64
uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
float32, float64 = np.float32, np.float64
complex64, complex128 = np.complex64, np.complex128

e = np.e
pi = np.pi
inf = np.inf
nan = np.nan
newaxis = np.newaxis
euler_gamma = np.euler_gamma
