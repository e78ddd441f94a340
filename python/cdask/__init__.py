"""cdask: dask-like chunked arrays for NumPy users.

Task graphs in dask's format run on a C pthread scheduler; tasks whose
callable is a :class:`cdask.Kernel` run as C code without the GIL.

What lives here, lowest first (a module imports only those before it):
``utils`` (byte sizes; nothing of cdask), ``_openblas``, ``_errstate``,
``_core`` (the C extension, built from ``src/``), ``_taskspec``, ``graph``,
``kernels``, ``config``, ``diagnostics``, then the ``array`` package (its own
layers are listed in ``array/__init__.py``).  This file loads OpenBLAS,
tunes malloc and re-exports; ``__main__`` is the main job.  See
docs/architecture.md.
"""

__version__ = "0.1.0"

# OpenBLAS (from the scipy-openblas32 wheel) must be in the process before the
# extension is loaded: _core links against it, and the rpath recorded at build
# time may be stale (pip builds in a temporary environment).  See _openblas.py.
from . import _openblas

_openblas.load()

from . import _core  # noqa: E402
from ._core import Kernel  # noqa: E402
from . import kernels  # noqa: E402

from ._core import get, Stats  # noqa: E402
from .graph import Graph, merge  # noqa: E402

from . import config  # noqa: E402


def _tune_malloc():
    # glibc keeps freed blocks of up to 32 MiB in its heap once it has seen
    # one freed, so resident memory stays at its high-water mark and a
    # memory budget means little (measured: a rechunk of a 512 MB file under
    # a 32 MB budget grew by 66-74 MB, 37 MB with this).  Blocks of 1 MiB and
    # more are mapped on their own and unmapped when freed instead.  glibc's
    # MALLOC_MMAP_THRESHOLD_, or CDASK_MALLOC_MMAP_THRESHOLD (bytes; 0 or
    # "off": leave malloc alone), override it.
    import os

    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    v = os.environ.get("CDASK_MALLOC_MMAP_THRESHOLD", "1048576").strip().lower()
    if v in ("", "0", "off", "no", "false", "none"):
        return
    try:
        _core.set_malloc_mmap_threshold(int(v))
    except ValueError:
        import warnings

        warnings.warn("cdask: ignoring CDASK_MALLOC_MMAP_THRESHOLD=%r (bytes, at most 32 MiB, "
                      "or 0 / off)" % v, RuntimeWarning, stacklevel=2)


_tune_malloc()
from . import diagnostics  # noqa: E402

__all__ = ["Graph", "Kernel", "Stats", "config", "get", "kernels", "merge", "__version__"]

# The array API (``import cdask as da`` works like ``import dask.array as da``).
from . import array  # noqa: E402
from .array import *  # noqa: E402,F401,F403
from .array import random  # noqa: E402
from .array import overlap  # noqa: E402  (da.overlap.overlap, as in dask)
from .array import linalg  # noqa: E402  (da.linalg.qr, da.linalg.solve, ... as in dask)


def _alias_submodules():
    # ``import cdask.linalg`` (and ``from cdask.random import default_rng``)
    # work as in dask: the namespaces are cdask.array's modules, registered
    # under these names too (one module object, not a copy).
    import sys

    for _name, _mod in (("linalg", linalg), ("random", random), ("overlap", overlap),
                        ("lib", array.lib), ("lib.stride_tricks", array.lib.stride_tricks),
                        ("backends", array.backends), ("fft", array.fft), ("ma", array.ma)):
        sys.modules.setdefault(__name__ + "." + _name, _mod)


_alias_submodules()

__all__ += [n for n in array.__all__ if n not in __all__]


def _shutdown_pool():
    # Stop and join the C worker threads before the interpreter goes away.
    try:
        _core.shutdown()
    except Exception:  # pragma: no cover - best effort at exit
        pass


import atexit  # noqa: E402

atexit.register(_shutdown_pool)
