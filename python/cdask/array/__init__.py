"""cdask.array: dask.array-like chunked arrays (``import cdask as da``).

This file only re-exports.  The modules, in layers: each imports only
modules of the layers above it in this list (``tests/test_layout.py`` checks
that no two modules import each other, directly or in a circle).

* foundations - ``tokenize`` (deterministic names), ``dtypes`` (the
  supported dtypes, from the C core's table), ``constants`` (NumPy's scalar
  types and constants, re-exported), ``chunk_types`` (register_chunk_type),
  ``chunks`` (normalize_chunks),
  ``utils`` (graph-building helpers shared by every module), ``blockio``
  (block read/write tasks, pread/pwrite of memory-mapped files)
* the class - ``core``: ``Array`` with its metadata and the dask protocol
* making arrays - ``creation`` (from_array, from_npy, ones, arange...),
  ``random``
* moving blocks - ``slicing`` (basic indexing), ``rechunk``
* elementwise - ``ufuncs`` (NumPy's loops as C kernels), ``elemwise``
* structure - ``reshape`` (reshape, ravel, moveaxis, squeeze...),
  ``mapping`` (map_blocks), ``blockwise``, ``reductions``, ``joining``
  (concatenate, stack, roll...), ``indexing`` (``x[...]``, advanced indexing,
  assignment), ``overlap``
* linear algebra - ``contraction`` (dot, tensordot, matmul, einsum),
  ``decompositions`` (qr, svd, lu, solve...), ``linalg`` (the namespace)
* the rest of NumPy's functions - ``routines`` (where, clip, nonzero, real,
  around, choose...), ``triangles`` (tril, triu, diag, diagonal, trace, the
  ``*_indices``), ``grids`` (meshgrid, indices, fromfunction), ``statistics``
  (histograms, bincount, cov, gradient...), ``sets`` (unique, isin,
  searchsorted...), ``percentiles`` (median, quantile, topk...),
  ``selection`` (take, compress, select, insert, delete...), ``rearranging``
  (tile, repeat, rot90, reshape_blockwise, shuffle), ``padding`` (pad),
  ``applying`` (apply_along_axis, coarsen, push, unify_chunks...), ``gufuncs``
  (apply_gufunc, gufunc, frompyfunc)
* running - ``fuse`` (graph fusion), ``compute`` (compute, persist,
  optimize, to_delayed), ``store`` (store, to_npy, zarr), ``testing``
  (assert_eq)
* the NumPy-facing surface - ``ufunc_api`` (``cdask.exp``...),
  ``numpy_api`` (``__array_function__``, ``__array_ufunc__``)
* ``methods`` - sets the operators and methods of ``Array`` that come from
  the layers above; imported last, by this file only.

See docs/array-design.md for the design.
"""

import sys as _sys
import types as _types

from . import (blockwise, chunks, compute, contraction, core, creation, joining, linalg,  # noqa: F401
               overlap, random, rechunk, reductions, reshape, routines, store, ufunc_api,
               ufuncs, constants, grids, testing, triangles)
from . import percentiles, sets, statistics  # noqa: F401
from . import applying, gufuncs, padding, rearranging, selection  # noqa: F401
from . import methods  # noqa: F401  (sets Array's methods and operators)
from .chunk_types import register_chunk_type
from .chunks import normalize_chunks, parse_bytes
from .compute import compute, optimize, persist  # noqa: F811
from .core import Array, Blocks, blockwise_simple, is_cdask_collection, transpose
from .creation import (from_array, from_npy, asarray, array, ones, zeros, full, empty,
                       ones_like, zeros_like, full_like, empty_like, arange, linspace, eye)
from .dtypes import SUPPORTED_DTYPES
from .elemwise import elemwise
from .mapping import map_blocks
from .rechunk import rechunk  # noqa: F811
from .tokenize import tokenize
from .drawing import visualize
from .report import explain

asanyarray = asarray

__all__ = ["Array", "Blocks", "compute", "persist", "optimize", "elemwise", "map_blocks",
           "blockwise_simple", "transpose", "is_cdask_collection", "SUPPORTED_DTYPES",
           "normalize_chunks", "parse_bytes", "tokenize", "from_array", "from_npy", "asarray",
           "asanyarray", "ones", "zeros", "full", "empty", "ones_like", "zeros_like",
           "full_like", "empty_like", "arange", "linspace", "eye", "rechunk", "random",
           "register_chunk_type", "linalg"]
__all__ += ["explain", "visualize"]   # the plan report and graph drawings

# the public names of the modules of functions
for _mod in (ufuncs, ufunc_api, reductions, routines, reshape, joining, overlap, blockwise,
             statistics, sets, percentiles,
             selection, rearranging, padding, applying, gufuncs,
             store, linalg, constants, triangles, grids, testing):
    for _n in _mod.__all__:
        if _n == "random":
            continue
        globals()[_n] = getattr(_mod, _n)
        if _n not in __all__:
            __all__.append(_n)
del _mod, _n

# I/O and interop: dask.delayed, npy stacks, HDF5, TileDB; the ``backends``
# and ``lib`` namespaces (``lib.stride_tricks.sliding_window_view``)
from . import backends, interop, lib, npy_stack  # noqa: E402
from .core import PerformanceWarning  # noqa: E402
for _mod in (interop, npy_stack):
    for _n in _mod.__all__:
        globals()[_n] = getattr(_mod, _n)
    __all__ += _mod.__all__
__all__ += ["backends", "lib", "PerformanceWarning"]
del _mod, _n

# the ``fft`` and ``ma`` namespaces (da.fft.fft2, da.ma.masked_where, as in dask)
from . import fft, ma  # noqa: E402
__all__ += ["fft", "ma"]


# ``cdask.array`` is this package, yet dask users call ``da.array(x)``: the
# package module is made callable (same as ``cdask.array.array(x)``), so both
# ``cdask.array(x)`` and ``cdask.array.core`` work.
class _CallableModule(_types.ModuleType):
    def __call__(self, *args, **kwargs):
        return array(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
