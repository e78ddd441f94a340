"""cdask.array: dask.array-like chunked arrays (``import cdask as da``).

See docs/array-design.md for the design; the modules:

* core      - Array, compute, persist, elemwise, map_blocks, operators
* chunks    - normalize_chunks (ints, tuples, dicts, -1/None, "auto", "64MiB")
* tokenize  - deterministic names
* creation  - from_array, from_npy, ones/zeros/full/empty(+_like), arange,
              linspace, eye
* random    - default_rng(seed) -> Generator
* slicing   - __getitem__ (basic indexing, boolean masks)
* rechunk   - rechunk
* ufuncs, reductions, routines - elementwise functions, reductions, the rest
"""

from .core import (Array, Blocks, compute, persist, optimize, elemwise, map_blocks, blockwise_simple,
                   transpose, is_cdask_collection, SUPPORTED_DTYPES)
from .chunks import normalize_chunks, parse_bytes
from .tokenize import tokenize
from .creation import (from_array, from_npy, asarray, array, ones, zeros, full, empty,
                       ones_like, zeros_like, full_like, empty_like, arange, linspace, eye)
from .rechunk import rechunk
from . import random

asanyarray = asarray

__all__ = ["Array", "Blocks", "compute", "persist", "optimize", "elemwise", "map_blocks",
           "blockwise_simple", "transpose", "is_cdask_collection", "SUPPORTED_DTYPES",
           "normalize_chunks", "parse_bytes", "tokenize", "from_array", "from_npy", "asarray",
           "asanyarray", "ones", "zeros", "full", "empty", "ones_like", "zeros_like",
           "full_like", "empty_like", "arange", "linspace", "eye", "rechunk", "random"]


def _reexport(modname):
    # The elementwise, reduction and routine modules are optional pieces:
    # export their public names when present.
    import importlib

    try:
        mod = importlib.import_module("." + modname, __name__)
    except ModuleNotFoundError as e:
        if e.name == __name__ + "." + modname:
            return
        raise
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    g = globals()
    for n in names:
        if n in ("random",):
            continue
        g[n] = getattr(mod, n)
        if n not in __all__:
            __all__.append(n)


for _m in ("ufuncs", "ufunc_api", "reductions", "routines", "reshape", "joining", "overlap",
           "blockwise", "store", "linalg"):
    _reexport(_m)
del _m


# ``cdask.array`` is this package, yet dask users call ``da.array(x)``: the
# package module is made callable (same as ``cdask.array.array(x)``), so both
# ``cdask.array(x)`` and ``cdask.array.core`` work.
import sys as _sys  # noqa: E402
import types as _types  # noqa: E402


class _CallableModule(_types.ModuleType):
    def __call__(self, *args, **kwargs):
        return array(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
