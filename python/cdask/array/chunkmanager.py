"""cdask as an xarray chunk manager: ``chunked_array_type="cdask"``.

xarray finds chunked-array libraries through the ``xarray.chunkmanagers``
entry point (pyproject.toml names :class:`CdaskManager` there).  With it::

    ds = xr.open_dataset("t.nc", chunks={"time": 30}, chunked_array_type="cdask")
    ds = xr.open_zarr("t.zarr", chunked_array_type="cdask")
    ds = ds.chunk({"time": 30}, chunked_array_type="cdask")

hold cdask Arrays, and xarray's operations on them (arithmetic, reductions,
groupby, rolling, apply_ufunc, to_zarr/to_netcdf, compute/load) build cdask
graphs that cdask's scheduler runs within its memory budget.

Each method hands xarray's call to the cdask function of the same name,
with dask's signature.  What is not plain delegation:

* cdask Arrays follow the dask collection protocol (so dask's schedulers and
  ``dask.compute`` accept them), which makes xarray's own dask manager
  claim them too, and xarray refuses an array two managers recognise.
  Loading this module therefore makes ``DaskManager`` leave cdask Arrays to
  this manager (dask arrays stay dask's): see ``_leave_cdask_to_cdask``.
* ``xr.set_options(chunk_manager="cdask")`` makes cdask xarray's default
  (``.chunk()`` of NumPy data, ``interp``'s coordinates), as for any
  manager.
* Chunks cdask cannot honour (a block size that is not a positive int,
  sizes not adding up to the dimension, an unreadable byte size) raise
  ValueError naming the dimension, before any graph is built.
* xarray's lazy backend arrays are read a block at a time
  (``_BackendArray``): a compressed zarr chunk is decoded once, not once
  per piece a rechunk cuts from it.
* ``store`` holds xarray's lock around each block written (netCDF files),
  and refuses ``compute=False`` (cdask has no delayed objects).

Where xarray calls dask.array directly instead of the manager (a function
it looks up in ``array_api``), a name cdask lacks makes xarray raise
NotImplementedError naming it; see :class:`XarrayNamespace`.
"""

import contextlib
import importlib
import importlib.util
import numbers
import re
import sys

import numpy as np
from xarray.core.indexing import ImplicitToExplicitIndexingAdapter
from xarray.namedarray.parallelcompat import ChunkManagerEntrypoint

from .chunks import parse_bytes
from .core import Array

__all__ = ["CdaskManager"]


def _leave_cdask_to_cdask():
    """Make xarray's dask manager leave cdask Arrays to cdask (once).

    It declines them in ``is_chunked_array`` (else xarray finds two managers
    for one array and refuses it), and its ``from_array`` - where
    ``.chunk()`` without ``chunked_array_type`` sends data its default
    manager does not recognise - rechunks a cdask Array with cdask (to the
    chunks dask's would have) instead of wrapping it in a dask array."""
    try:
        from xarray.namedarray.daskmanager import DaskManager
    except ImportError:   # pragma: no cover - an xarray without dask's manager
        return
    if getattr(DaskManager, "_leaves_cdask", False):
        return
    is_chunked, from_array = DaskManager.is_chunked_array, DaskManager.from_array

    def is_chunked_array(self, data):
        return not isinstance(data, Array) and is_chunked(self, data)

    def from_array_or_rechunk(self, data, chunks, **kwargs):
        if isinstance(data, Array):
            return CdaskManager().rechunk(data, chunks)
        return from_array(self, data, chunks, **kwargs)

    is_chunked_array.__doc__ = is_chunked.__doc__
    from_array_or_rechunk.__doc__ = from_array.__doc__
    DaskManager.is_chunked_array = is_chunked_array
    DaskManager.from_array = from_array_or_rechunk
    DaskManager._leaves_cdask = True


def _check_chunks(chunks, shape):
    """ValueError for a per-axis chunk spec cdask cannot honour, before
    normalize_chunks sees it (its messages, like these, name the axis;
    :func:`_dimension_errors` adds the dimension's name)."""
    if not isinstance(chunks, (tuple, list)) or shape is None or len(chunks) != len(shape):
        return
    for i, c in enumerate(chunks):
        if isinstance(c, bool):
            raise ValueError("cdask cannot chunk axis %d by %r: a block size is a positive int, "
                             "a tuple of ints, -1, None or 'auto'" % (i, c))
        if isinstance(c, numbers.Integral) and c != -1 and c <= 0 and shape[i] != 0:
            raise ValueError("cdask cannot chunk axis %d into blocks of %d elements: block "
                             "sizes are positive" % (i, c))
        if isinstance(c, str) and c != "auto":
            try:
                parse_bytes(c)
            except ValueError as e:
                raise ValueError("cdask cannot chunk axis %d by %r: a string is 'auto' or a "
                                 "block size in bytes (%s)" % (i, c, e)) from None
        if isinstance(c, (tuple, list)) and all(isinstance(v, numbers.Integral) for v in c):
            if sum(c) != shape[i]:
                raise ValueError("cdask cannot chunk axis %d of length %d into blocks %r: they "
                                 "add up to %d" % (i, shape[i], tuple(c), sum(c)))


def _caller_dims(shape):
    """The dimension names of the xarray variable being chunked, or None.

    xarray hands a chunk manager axis numbers only; the names are in its
    calling frames (``Variable.chunk``'s ``self``, ``open_dataset``'s
    ``_get_chunk``'s ``dims``).  Read for error messages only."""
    f = sys._getframe(1)
    for _ in range(12):
        if f is None:
            break
        loc = f.f_locals
        for name in ("self", "var", "variable"):
            v = loc.get(name)
            dims = getattr(v, "dims", None)
            if isinstance(dims, tuple) and tuple(getattr(v, "shape", ())) == tuple(shape):
                return dims
        dims = loc.get("dims")
        if isinstance(dims, (tuple, list, type({}.keys()))) and len(dims) == len(shape) \
                and all(isinstance(d, str) for d in dims):
            return tuple(dims)
        f = f.f_back
    return None


@contextlib.contextmanager
def _dimension_errors(shape):
    """A ValueError about chunks says which dimension: "axis 0" becomes
    "dimension 'time' (axis 0)" when xarray's variable is found."""
    try:
        yield
    except ValueError as e:
        dims = _caller_dims(shape)
        if not dims:
            raise

        def name(m):
            i = int(m.group(1))
            return "dimension %r (axis %d)" % (dims[i], i) if i < len(dims) else m.group(0)

        msg = re.sub(r"\baxis (\d+)", name, str(e))
        if msg == str(e):
            raise
        raise ValueError(msg) from e


class _BackendArray:
    """xarray's lazily indexed backend array (a netCDF or zarr variable on
    disk) as a cdask source whose storage chunks are the blocks asked for:
    cdask then reads each block once and slices it in memory, instead of
    reading a piece of a block per task (a compressed zarr chunk is decoded
    whole for every piece)."""

    def __init__(self, array, chunks):
        self.array = array
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self.ndim = len(self.shape)
        self.chunks = tuple(c[0] if c else 1 for c in chunks)

    def __getitem__(self, index):
        return self.array[index]


class _LockedTarget:
    """A store target whose writes take ``lock`` (xarray's lock of a netCDF
    file: HDF5 writers are not safe from several threads at once)."""

    def __init__(self, target, lock):
        self.target = target
        self.lock = lock
        self.shape = tuple(target.shape)
        self.ndim = len(self.shape)
        self.dtype = target.dtype

    def __setitem__(self, index, value):
        with self.lock:
            self.target[index] = value


class XarrayNamespace:
    """What xarray reaches through ``array_api``: a name is looked up in
    ``cdask.array_api`` (the array API standard's namespace, when cdask has
    it), then ``cdask.array`` (dask.array's names, which xarray calls with
    dask's keywords: ``full(..., chunks=)``, ``isnan(x, dtype=int)``), then
    ``cdask.array.lib.stride_tricks`` and ``cdask.array.ma`` (xarray asks the
    namespace for ``sliding_window_view``, ``masked_invalid`` and
    ``getmaskarray``, which dask keeps in those modules).  A name in none of
    them is an AttributeError, which xarray turns into NotImplementedError
    naming it."""

    def __init__(self, modules):
        self._modules = tuple(modules)

    def __getattr__(self, name):
        for m in self._modules:
            try:
                return getattr(m, name)
            except AttributeError:
                pass
        raise AttributeError("cdask has no %r for xarray" % (name,))

    def __repr__(self):
        return "<cdask's namespace for xarray: %s>" % ", ".join(m.__name__ for m in self._modules)


def _namespace():
    names = ["cdask.array", "cdask.array.lib.stride_tricks", "cdask.array.ma"]
    if importlib.util.find_spec("cdask.array_api") is not None:
        names.insert(0, "cdask.array_api")
    return XarrayNamespace(importlib.import_module(n) for n in names)


class CdaskManager(ChunkManagerEntrypoint):
    """xarray's interface to cdask (``chunked_array_type="cdask"``)."""

    available = True

    def __init__(self):
        self.array_cls = Array
        _leave_cdask_to_cdask()

    def is_chunked_array(self, data):
        """True for cdask Arrays only (not dask arrays, not NumPy)."""
        return isinstance(data, Array)

    def chunks(self, data):
        return data.chunks

    def normalize_chunks(self, chunks, shape=None, limit=None, dtype=None,
                         previous_chunks=None):
        from .chunks import normalize_chunks

        with _dimension_errors(shape):
            _check_chunks(chunks, shape)
            return normalize_chunks(chunks, shape=shape, limit=limit, dtype=dtype,
                                    previous_chunks=previous_chunks)

    def from_array(self, data, chunks, **kwargs):
        """A cdask Array reading ``data`` (NumPy, or xarray's lazy backend
        arrays) block by block; dask-only keywords (``lock``,
        ``inline_array``, ``meta``) are accepted and ignored, cdask's reads
        need no lock."""
        from .chunks import normalize_chunks
        from .creation import from_array

        shape = tuple(data.shape)
        if isinstance(chunks, tuple) and "auto" in chunks and 0 in shape:
            chunks = shape          # "auto" of an empty axis: one empty block
        with _dimension_errors(shape):
            _check_chunks(chunks, shape)
            x = from_array(_BackendArray(data, normalize_chunks(chunks, shape, dtype=data.dtype))
                           if isinstance(data, ImplicitToExplicitIndexingAdapter) else data,
                           chunks, name=kwargs.get("name"))
            return x

    def rechunk(self, data, chunks, **kwargs):
        if isinstance(chunks, dict):
            chunks = tuple(chunks.get(i, c) for i, c in enumerate(data.chunks))
        if isinstance(chunks, tuple) and "auto" in chunks and 0 in data.shape:
            chunks = data.shape
        with _dimension_errors(data.shape):
            _check_chunks(chunks, data.shape)
            return data.rechunk(chunks, **kwargs)

    def compute(self, *data, **kwargs):
        from .compute import compute

        return compute(*data, **kwargs)

    def persist(self, *data, **kwargs):
        from .compute import persist

        return persist(*data, **kwargs)

    @property
    def array_api(self):
        """The namespace xarray calls functions of (``full``, ``arange``,
        ``from_array``, ``isnan``, ``sliding_window_view``...): see
        :class:`XarrayNamespace`."""
        return _namespace()

    def reduction(self, arr, func, combine_func=None, aggregate_func=None, axis=None,
                  dtype=None, keepdims=False):
        from .reductions import reduction

        return reduction(arr, chunk=func, combine=combine_func, aggregate=aggregate_func,
                         axis=axis, dtype=dtype, keepdims=keepdims)

    def scan(self, func, binop, ident, arr, axis=None, dtype=None, **kwargs):
        from .reductions import cumreduction

        return cumreduction(func, binop, ident, arr, axis=axis, dtype=dtype, **kwargs)

    def apply_gufunc(self, func, signature, *args, axes=None, axis=None, keepdims=False,
                     output_dtypes=None, output_sizes=None, vectorize=None,
                     allow_rechunk=False, meta=None, **kwargs):
        from .gufuncs import apply_gufunc

        return apply_gufunc(func, signature, *args, axes=axes, axis=axis, keepdims=keepdims,
                            output_dtypes=output_dtypes, output_sizes=output_sizes,
                            vectorize=vectorize, allow_rechunk=allow_rechunk, meta=meta,
                            **kwargs)

    def map_blocks(self, func, *args, dtype=None, chunks=None, drop_axis=None, new_axis=None,
                   **kwargs):
        from .mapping import map_blocks

        return map_blocks(func, *args, dtype=dtype, chunks=chunks, drop_axis=drop_axis,
                          new_axis=new_axis, **kwargs)

    def blockwise(self, func, out_ind, *args, name=None, token=None, dtype=None,
                  adjust_chunks=None, new_axes=None, align_arrays=True, concatenate=None,
                  meta=None, **kwargs):
        from .blockwise import blockwise

        return blockwise(func, out_ind, *args, name=name, token=token, dtype=dtype,
                         adjust_chunks=adjust_chunks, new_axes=new_axes,
                         align_arrays=align_arrays, concatenate=concatenate, meta=meta,
                         **kwargs)

    def unify_chunks(self, *args, **kwargs):
        from .applying import unify_chunks

        return unify_chunks(*args, **kwargs)

    def store(self, sources, targets, **kwargs):
        """Write ``sources`` into ``targets`` (xarray's backend arrays) block
        by block.  A lock xarray passes (netCDF/HDF5 writes) is held around
        each block's write; ``flush`` is not needed.  ``compute=False``
        (``to_zarr(..., compute=False)``) raises NotImplementedError: cdask
        has no delayed objects, it writes at once."""
        from .store import store

        kwargs.pop("flush", None)
        lock = kwargs.pop("lock", None)
        if hasattr(lock, "acquire"):
            if isinstance(sources, Array):
                targets = _LockedTarget(targets, lock)
            else:
                targets = [_LockedTarget(t, lock) for t in targets]
        return store(sources, targets, **kwargs)

    def shuffle(self, x, indexer, axis, chunks):
        from .rearranging import shuffle

        return shuffle(x, indexer, axis, chunks="auto" if chunks is None else chunks)

    def get_auto_chunk_size(self):
        """The block size ``chunks="auto"`` aims for, in bytes: config
        ``array.chunk-size`` within the memory budget."""
        from .chunks import default_chunk_bytes

        return default_chunk_bytes()
