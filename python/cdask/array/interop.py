"""Arrays to and from other libraries: dask's delayed objects and DataFrames,
HDF5 and TileDB files; ``view``, ``to_backend`` and ``array_expr_enabled``.

* ``from_delayed(value, shape, dtype)``: a one-block Array computing a
  ``dask.delayed`` object; its graph becomes a layer of the Array's graph
  (dask's task-spec objects run as Python tasks), and the block is checked
  to have the declared shape when it is made.
* ``Array.to_dask()`` (also ``to_dask_array``) / ``from_dask(d)``: to and
  from ``dask.array.Array`` with the same name, chunks and dtype, nothing
  computed: dask's Array holds the graph compute() would run (fused C
  kernels), and a dask Array's graph becomes the cdask Array's source layer
  (dask's task-spec objects run as Python tasks, persisted blocks are data).
* ``Array.to_dask_dataframe(columns, index, meta)``: the Array as a
  ``dask.dataframe`` (``dask.dataframe.from_dask_array`` on a dask Array
  holding the graph compute() would run, fused).
* ``to_hdf5(filename, datapath, x)`` / ``to_hdf5(filename, {path: x})``:
  h5py datasets made (or reused) and filled block by block (``store``).
* ``from_tiledb(uri)`` / ``to_tiledb(x, uri)``: a dense TileDB array read by
  tasks in its tiles, or written in x's (regular) chunks.
* ``Array.view(dtype, order)``: NumPy's ``view`` of each block; a change of
  itemsize rescales the last axis (``order="C"``) or the first (``"F"``).
"""

import numbers

import numpy as np

from .. import config
from . import backends
from .compute import dask_optimize
from .chunk_types import maybe_masked, note_masked
from .core import Array, blockwise_simple
from .schedulers import future_layer
from .creation import from_array
from .dtypes import check_dtype
from .store import store
from .tokenize import tokenize
from .utils import chunks_known, isnan

# the functions of the cdask namespace; to_dask_dataframe, view and
# to_backend are Array methods (methods.py)
__all__ = ["from_delayed", "from_dask", "to_hdf5", "from_tiledb", "to_tiledb", "array_expr_enabled"]


def array_expr_enabled():
    """dask's switch for its expression-based arrays: cdask has none (False)."""
    return False


# ---------------------------------------------------------------- dask.delayed

def _delayed_block(value, shape, dtype):
    b = np.asarray(value)
    if b.shape != shape:
        raise ValueError("from_delayed: the delayed value has shape %s, not the declared %s"
                         % (b.shape, shape))
    return b if b.dtype == dtype else b.astype(dtype)


def from_delayed(value, shape, dtype=None, meta=None, name=None):
    """A one-block Array of ``shape`` and ``dtype`` (default: ``meta``'s,
    else float64) computing the ``dask.delayed`` object ``value``."""
    if not (hasattr(value, "__dask_graph__") and hasattr(value, "key")):
        raise TypeError("from_delayed: value must be a dask.delayed object, got %s"
                        % type(value).__name__)
    if isinstance(shape, (numbers.Integral, np.integer)):
        shape = (shape,)
    shape = tuple(shape)
    if any(isinstance(s, float) and isnan(s) for s in shape):
        raise ValueError("from_delayed: cdask needs the shape, got %s" % (shape,))
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError("from_delayed: negative dimension in shape %s" % (shape,))
    if dtype is None:
        dtype = getattr(meta, "dtype", np.float64)
    dtype = check_dtype(np.dtype(dtype))
    name = name or "from-value-" + tokenize(value.key, shape, dtype)
    # the delayed graph goes in the Array's own layer: its keys are not
    # named by layers (the planner finds a plain layer's inputs by the
    # names of the tuple keys its tasks mention)
    layer = dict(value.__dask_graph__())
    layer[(name,) + (0,) * len(shape)] = (_delayed_block, value.key, shape, dtype)
    return Array({name: layer}, name, tuple((s,) for s in shape), dtype)


# ---------------------------------------------------------------- dask.dataframe

def as_dask_array(x):
    """A ``dask.array.Array`` holding ``x``'s graph as compute() would run it
    (``Array.to_dask``): same name, chunks and dtype; its blocks are NumPy
    arrays (masked ones where x's may be)."""
    try:
        import dask.array
    except ImportError as e:     # pragma: no cover - dask is in the test extra
        raise ImportError("Array.to_dask makes a dask.array.Array and needs dask "
                          "(pip install 'cdask[distributed]')") from e
    keys = x._keys_flat()
    g = dask_optimize(x.__dask_graph__(), keys)
    empty = np.ma.empty if maybe_masked(x._layers) else np.empty
    return dask.array.Array(dict(g), x.name, x.chunks, meta=empty((0,) * x.ndim, x.dtype))


def from_dask(d):
    """The ``dask.array.Array`` ``d`` as a cdask Array of the same name,
    chunks and dtype; nothing is computed.  d's graph (as dask would run it,
    culled and optimized) is the new Array's source layer: cdask's scheduler
    runs its tasks, and blocks d holds already (persisted, Futures on a
    cluster) are not computed again.  Its blocks must be NumPy arrays."""
    if isinstance(d, Array):
        return d
    if not (hasattr(d, "__dask_graph__") and hasattr(d, "chunks") and hasattr(d, "dtype")):
        raise TypeError("from_dask: expected a dask.array.Array, got %s" % type(d).__name__)
    meta = getattr(d, "_meta", None)
    if meta is not None and not isinstance(meta, np.ndarray):
        raise TypeError("from_dask: cdask's blocks are NumPy arrays; the blocks of this dask "
                        "array are %s.%s" % (type(meta).__module__, type(meta).__name__))
    dtype = check_dtype(np.dtype(d.dtype))
    g = d.__dask_graph__()
    optimize = getattr(d, "__dask_optimize__", None)
    if optimize is not None:
        g = optimize(g, d.__dask_keys__())
    if isinstance(meta, np.ma.MaskedArray):
        note_masked(d.name)
    return Array({d.name: future_layer(dict(g))}, d.name, d.chunks, dtype)


def to_dask_dataframe(x, columns=None, index=None, meta=None):
    """The 1-d or 2-d Array ``x`` as a dask DataFrame (a Series for 1-d
    without a list of columns), one partition per block row; see
    ``dask.dataframe.from_dask_array``.  Needs ``cdask[dataframe]``."""
    try:
        from dask.dataframe import from_dask_array
    except ImportError as e:
        raise ImportError("Array.to_dask_dataframe needs dask's dataframe "
                          "(pip install 'cdask[dataframe]')") from e
    if not isinstance(x, Array):
        raise TypeError("to_dask_dataframe: x must be a cdask Array, got %s" % type(x).__name__)
    if x.ndim not in (1, 2):
        raise ValueError("to_dask_dataframe: the array must be 1- or 2-dimensional, not %d"
                         % x.ndim)
    return from_dask_array(as_dask_array(x), columns=columns, index=index, meta=meta)


# ---------------------------------------------------------------- HDF5

def to_hdf5(filename, *args, chunks=True, **kwargs):
    """Write Arrays to datasets of the HDF5 file ``filename`` (opened to
    append): ``to_hdf5(filename, "/x", x)`` or ``to_hdf5(filename, {"/x": x,
    "/y": y})``.  ``chunks=True``: the datasets are chunked as the Arrays
    (their first block's shape); or a chunk shape, or None.  Other keywords
    go to ``h5py.File.require_dataset`` (``compression=``...)."""
    if len(args) == 1 and isinstance(args[0], dict):
        data = args[0]
    elif len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], Array):
        data = {args[0]: args[1]}
    else:
        raise ValueError("to_hdf5: give a datapath and an Array, or a {'/data/path': array} "
                         "dictionary")
    for p, x in data.items():
        if not isinstance(x, Array):
            raise TypeError("to_hdf5: %r maps to a %s, not a cdask Array" % (p, type(x).__name__))
        if not chunks_known(x):
            raise ValueError("to_hdf5: %r has unknown chunk sizes; call x.compute_chunk_sizes() "
                             "first" % p)
    try:
        import h5py
    except ImportError:
        raise ImportError("to_hdf5 needs h5py (pip install 'cdask[hdf5]')") from None

    def dataset_chunks(x):
        if chunks is not True:
            return chunks
        if x.ndim == 0 or x.size == 0:
            return None
        return tuple(max(int(c[0]), 1) for c in x.chunks)

    with h5py.File(filename, mode="a") as f:
        dsets = [f.require_dataset(p, shape=x.shape, dtype=x.dtype, chunks=dataset_chunks(x),
                                   **kwargs) for p, x in data.items()]
        store(list(data.values()), dsets)


# ---------------------------------------------------------------- TileDB

def _tiledb():
    try:
        import tiledb
    except ImportError:
        raise ImportError("cdask: TileDB needs tiledb (pip install 'cdask[tiledb]')") from None
    return tiledb


def from_tiledb(uri, attribute=None, chunks=None, storage_options=None, **kwargs):
    """A dense TileDB array (an open one, or its URI) as a cdask Array read
    by tasks, in its tiles unless ``chunks`` is given; ``attribute`` picks
    one attribute of a multi-attribute array."""
    tiledb = _tiledb()
    opts = dict(storage_options or {})
    key = opts.pop("key", None)
    if isinstance(uri, tiledb.Array):
        tdb = uri
    else:
        tdb = tiledb.open(uri, attr=attribute, config=opts, key=key)
    schema = tdb.schema
    if schema.sparse:
        raise ValueError("from_tiledb: sparse TileDB arrays are not supported")
    if not attribute and schema.nattr > 1:
        raise TypeError("from_tiledb: give attribute= to read a multi-attribute TileDB array")
    if tdb.iswritable:
        raise ValueError("from_tiledb: the TileDB array must be open for reading")
    if chunks is None:
        chunks = tuple(int(schema.domain.dim(i).tile) for i in range(schema.ndim))
    return from_array(tdb, chunks, name="tiledb-" + tokenize(str(tdb.uri), attribute, chunks,
                                                             tdb.timestamp_range))


def _regular(chunks):
    return all(len(set(c[:-1])) <= 1 and (len(c) < 2 or c[-1] <= c[0]) for c in chunks)


def to_tiledb(darray, uri, compute=True, return_stored=False, storage_options=None, key=None,
              **kwargs):
    """Write the Array to a new dense TileDB array at ``uri`` (tiles = its
    chunks, which must be regular), or into an open writable TileDB array of
    its dtype and dimensions.  Returns None (the Array with
    ``return_stored=True``)."""
    tiledb = _tiledb()
    if not isinstance(darray, Array):
        raise TypeError("to_tiledb: darray must be a cdask Array, got %s"
                        % type(darray).__name__)
    if not chunks_known(darray) or not _regular(darray.chunks):
        raise ValueError("to_tiledb: the array's chunks are irregular (or unknown); call "
                         "x.rechunk(...) first")
    opts = dict(storage_options or {})
    key = key or opts.pop("key", None)
    if isinstance(uri, str):
        tiles = [max(int(c[0]), 1) for c in darray.chunks]
        tdb = tiledb.empty_like(uri, darray, tile=tiles, config=opts, key=key, **kwargs)
    elif isinstance(uri, tiledb.Array):
        tdb = uri
        if darray.dtype != tdb.dtype or darray.ndim != tdb.ndim:
            raise ValueError("to_tiledb: the TileDB array (%s, %d dimensions) does not fit the "
                             "source (%s, %d)" % (tdb.dtype, tdb.ndim, darray.dtype,
                                                  darray.ndim))
    else:
        raise ValueError("to_tiledb: uri must be a TileDB URI or an open, writable TileDB array")
    if not (tdb.isopen and tdb.iswritable):
        raise ValueError("to_tiledb: the TileDB array is not open for writing")
    return store(darray, tdb, lock=False, compute=compute, return_stored=return_stored)


# ---------------------------------------------------------------- view, backends

def _view_block(b, dtype, order):
    if order == "C":
        return np.ascontiguousarray(b).view(dtype)
    return np.asfortranarray(b).T.view(dtype).T


def view(x, dtype=None, order="C"):
    """NumPy's ``view`` of the bytes as ``dtype``: same itemsize, elementwise;
    else the last axis (``order="C"``) or the first (``"F"``) scales by the
    ratio of itemsizes, block by block (each block's extent along it must
    hold whole items of the new dtype)."""
    dtype = x.dtype if dtype is None else np.dtype(dtype)
    check_dtype(dtype)
    if order not in ("C", "F"):
        raise ValueError("Order must be one of 'C' or 'F'")
    if dtype == x.dtype:
        return x
    old, new = x.dtype.itemsize, dtype.itemsize
    chunks = x.chunks
    if old != new:
        if x.ndim == 0:
            raise ValueError("Changing the dtype of a 0d array is only supported if the "
                             "itemsize is unchanged")
        axis = x.ndim - 1 if order == "C" else 0
        c = chunks[axis]
        if any(isnan(n) for n in c):
            raise ValueError("view: the chunk sizes along axis %d are unknown; call "
                             "x.compute_chunk_sizes() first" % axis)
        if any(n * old % new for n in c):
            raise ValueError("view: to change to a dtype of a different size, each chunk along "
                             "axis %d (%s, of %d-byte items) must hold whole %d-byte items; "
                             "rechunk first" % (axis, c, old, new))
        c = tuple(n * old // new for n in c)
        chunks = chunks[:axis] + (c,) + chunks[axis + 1:]
    return blockwise_simple(_view_block, "view", x, dtype=dtype, chunks=chunks,
                            args=(dtype, order))


def to_backend(x, backend=None, **kwargs):
    """The Array on ``backend`` (default: config "array.backend", "numpy");
    cdask has only NumPy's, on which this is the Array itself."""
    backend = backend or config.get("array.backend", "numpy")
    return backends.get_backend(backend).to_backend(x, **kwargs)
