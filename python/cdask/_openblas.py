"""Load the OpenBLAS library of scipy-openblas32 into the process.

cdask._core is linked against ``libscipy_openblas.so`` (its symbols carry a
``scipy_`` prefix, so it cannot clash with another BLAS in the process).  The
rpath recorded at build time may point to a directory that no longer exists
(pip builds in an isolated, temporary environment), so the library is loaded
here, by absolute path and with RTLD_GLOBAL, before ``_core`` is imported: the
dynamic loader then resolves _core's dependency on that soname to the copy
already in memory.
"""

import ctypes
import os

import scipy_openblas32

_handle = None


def library_path():
    """Absolute path of the OpenBLAS shared library cdask uses."""
    return os.path.join(scipy_openblas32.get_lib_dir(),
                        scipy_openblas32.get_library(fullname=True))


def load():
    """Load the library once (RTLD_GLOBAL) and return its ctypes handle."""
    global _handle
    if _handle is None:
        _handle = ctypes.CDLL(library_path(), mode=ctypes.RTLD_GLOBAL)
    return _handle


def config():
    """The build description OpenBLAS reports (version, target core, threads)."""
    fn = load().scipy_openblas_get_config
    fn.restype = ctypes.c_char_p
    return fn().decode("utf-8", "replace")
