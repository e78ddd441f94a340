"""``cdask.Array``: a lazy, chunked NumPy array backed by a task graph.

An Array is ``(layers, name, chunks, dtype)`` (see docs/array-design.md):

* ``layers`` - dict ``{layer_name: {key: task}}`` of every layer the array
  needs; shared by reference between arrays, never copied per task.
* ``name`` - the array's own layer; its blocks are keys ``(name, i, j, ...)``
  (``(name,)`` for a 0-d array).
* ``chunks`` - tuple of tuples of block sizes (``math.nan`` where unknown).
* ``dtype`` - a supported NumPy dtype.

Elementwise operations go through :func:`elemwise`.  The per-block task
callable comes from ``cdask.array.ufuncs.ufunc_task(ufunc, in_dtypes)`` when
that module provides one (``in_dtypes``: a tuple with, per operand, its
``np.dtype``, or for a Python scalar operand its type ``int``/``float``/
``complex``/``bool``; the task is then called as ``task(*operands)`` with
blocks for arrays and the scalars themselves).  ``ufunc_task`` may return
None or raise for cases it does not cover; then a plain Python function
calling the NumPy ufunc is used.  The output dtype comes from
``ufuncs.result_dtype(ufunc, *args)`` when available, else from
``ufunc.resolve_dtypes`` (NEP 50 rules).  ``x ** e`` with a scalar ``e``
asks ``ufuncs.pow_rewrite(dtype, e)`` for the one-argument ufunc NumPy
itself would apply (``square``, ``sqrt``, ``reciprocal``; None -> power).
"""

import itertools
import mmap
import os
import math
import numbers
from collections.abc import Mapping

import numpy as np

from .._core import get as _get
from .._core import _note_fpe
from .._core import drop_pages as _drop_pages
from .._core import pwrite_region as _pwrite_region
from ..graph import Graph
from .chunks import normalize_chunks, chunk_offsets
from .tokenize import tokenize

__all__ = ["Array", "Blocks", "compute", "persist", "elemwise", "blockwise_simple",
           "map_blocks", "asarray", "asanyarray", "is_cdask_collection", "SUPPORTED_DTYPES",
           "check_dtype", "store_block", "transpose"]

SUPPORTED_DTYPES = tuple(np.dtype(d) for d in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "complex64", "complex128"))
_SUPPORTED_SET = frozenset(SUPPORTED_DTYPES)
_SUPPORTED_TEXT = ("bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, "
                   "float32, float64, complex64, complex128")


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


def _key_split(name):
    """``'add-3f2a...'`` -> ``'add'`` (the op part of a layer name)."""
    parts = name.split("-")
    while len(parts) > 1 and len(parts[-1]) >= 8 and all(c in "0123456789abcdef"
                                                         for c in parts[-1]):
        parts.pop()
    return "-".join(parts)


def _isnan(x):
    return isinstance(x, float) and math.isnan(x)


def _shape_str(shape):
    return "(" + ", ".join("nan" if _isnan(s) else str(s) for s in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _slices_from_chunks(chunks):
    """Per block (in C order of the grid), the tuple of slices it covers."""
    per_axis = []
    for c in chunks:
        offs = chunk_offsets(c)
        per_axis.append([slice(offs[i], offs[i + 1]) for i in range(len(c))])
    return per_axis


# --------------------------------------------------------------------------
# task functions (module level so graphs pickle)

def store_block(out, block, slices):
    """Write one computed block into the preallocated result."""
    if len(getattr(out, "shape", ())) == 0:
        out[()] = block
    elif isinstance(out, np.memmap):
        _store_mapped(out, out[slices], block)
    else:
        out[slices] = block
    if isinstance(block, np.ndarray):
        _drop_pages(block)          # a block read from a memmap: its pages go too
    return None


_STORE_SPAN = 8 << 20


def _thin(v):
    """Is the ndarray view v a thin slab across a file's rows - a column
    block of a C-ordered matrix, say: over 256 KiB, in contiguous rows,
    spanning more than 4 times its bytes?"""
    if v.ndim < 2 or v.nbytes < (256 << 10) or v.strides[-1] != v.itemsize:
        return False
    if any(s < 0 for s in v.strides):
        return False
    span = sum((n - 1) * s for n, s in zip(v.shape, v.strides)) + v.itemsize
    return span > 4 * v.nbytes


def _file_offset(x, v):
    """The byte offset in the file of np.memmap x of the first element of v,
    a view of x; None unless x is a shared mapping ('r', 'r+', 'w+': the
    file and the mapping hold the same bytes, which the changes of a
    copy-on-write 'c' memmap would not) with a known file.

    Thin slabs (_thin) of memory-mapped files are read and written with
    pread/pwrite, a row at a time, rather than through the mapping: every
    row touched through a mapping maps a page into the process - on Linux
    6.x the whole large folio of the page cache around it: writing a
    column block of a 512 MB file mapped 400 MB - and dropping the pages
    afterwards (to keep resident memory bounded) costs a fault per row
    the next time.  Measured, a 16000 x 16000 row-to-column rechunk stored
    to .npy: 12.8 s through mappings, 3.9 s with pread/pwrite (page-cached)."""
    m = getattr(x, "_mmap", None)
    if m is None or getattr(x, "filename", None) is None or \
            getattr(x, "mode", None) not in ("r", "r+", "w+"):
        return None
    try:
        base = np.frombuffer(m, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError, BufferError):
        return None
    start = x.offset - x.offset % mmap.ALLOCATIONGRANULARITY
    return v.ctypes.data - base + start


def _store_mapped(out, region, block):
    """Write ``block`` into ``region``, a view of the memory-mapped target
    ``out``, and drop the written pages from the process (they stay in the
    page cache until written back, so nothing is lost): resident memory
    stays bounded however large the target.  A thin region (_thin) is
    written with pwrite (_file_offset says why); other regions spanning
    more than 8 MB are written a band of rows at a time, each band's pages
    dropped before the next is touched."""
    if region.ndim == 0 or region.size == 0:
        region[...] = block
        return
    if _thin(region):
        off = _file_offset(out, region)
        if off is not None:
            src = np.ascontiguousarray(np.broadcast_to(np.asarray(block), region.shape)
                                       .astype(region.dtype, copy=False))
            _pwrite_region(out.filename, off, region.strides, src)
            return
    span = sum((n - 1) * abs(st) for n, st in zip(region.shape, region.strides))
    span += region.itemsize
    step = abs(region.strides[0]) or 1
    if span <= max(2 * region.nbytes, _STORE_SPAN) or region.shape[0] == 1:
        region[...] = block
        _drop_pages(region)
        return
    src = np.broadcast_to(np.asarray(block), region.shape)
    rows = max(1, _STORE_SPAN // step)
    for r0 in range(0, region.shape[0], rows):
        band = region[r0:r0 + rows]
        band[...] = src[r0:r0 + rows]
        _drop_pages(band)


def _astype_block(block, dtype, casting):
    return np.asarray(block).astype(dtype, casting=casting, copy=False)


def _transpose_block(block, axes):
    return np.transpose(block, axes)


def _getitem_block(block, index):
    return block[index]


def _identity(x):
    return x


# --------------------------------------------------------------------------

def _is_layers(layers):
    if isinstance(layers, Graph):
        return False
    if not isinstance(layers, Mapping):
        return False
    for v in layers.values():
        return isinstance(v, Mapping)
    return True


# Largest block of each layer, by layer name (names are deterministic tokens
# of what a layer computes, so an entry never goes stale): the plan check of
# compute() adds up each task's inputs and output with it.  Bounded.
_BLOCK_BYTES = {}
_BLOCK_BYTES_MAX = 1 << 18


def _note_block_bytes(name, chunks, dtype):
    if len(_BLOCK_BYTES) >= _BLOCK_BYTES_MAX:
        _BLOCK_BYTES.clear()
    n = dtype.itemsize
    for c in chunks:
        if not c:
            n = 0
            break
        m = max(c)
        if _isnan(m):
            return
        n *= int(m)
    _BLOCK_BYTES[name] = n


def _plan_check(g, budget, layer_names):
    """Raise MemoryError, before anything runs, if one task of g needs more
    than the budget at once: its output block plus its input blocks (by the
    largest block of each layer).  Task by task for graphs of up to 20,000
    tasks, and for bigger ones whose biggest block is over 1/64 of the budget
    (smaller blocks could only exceed it in a task reading more than 64 of
    them); graphs over 200,000 tasks are checked only against 2 blocks."""
    biggest = max([_BLOCK_BYTES.get(n, 0) for n in layer_names] or [0])
    if 2 * biggest > budget:
        pass
    elif len(g) > 200_000 or (len(g) > 20_000 and biggest * 64 <= budget):
        return biggest
    sizes = {}
    for key in g:
        name = key[0] if type(key) is tuple and key else key
        b = _BLOCK_BYTES.get(name)
        if b is not None:
            sizes[key] = b
    deps = g.dependencies()
    worst, wkey, wout, win = 0, None, 0, 0
    for key, ds in deps.items():
        out = sizes.get(key, 0)
        tot = out + sum(sizes.get(d, 0) for d in ds)
        if tot > worst:
            worst, wkey, wout, win = tot, key, out, tot - out
    if worst > budget:
        name = wkey[0] if type(wkey) is tuple and wkey else wkey
        raise MemoryError(
            "cdask: the task %r (operation %r) needs %s at once (inputs %s, output %s), more "
            "than the memory budget of %s (cdask.config memory_limit); use smaller chunks "
            "(x.rechunk(...) or chunks= when the array is made) or a larger memory_limit"
            % (wkey, _key_split(str(name)), _nbytes_str(worst), _nbytes_str(win),
               _nbytes_str(wout), _nbytes_str(budget)))
    return biggest


def _spill_limit(budget, biggest, workers):
    """Held intermediates past this go to disk.  The budget bounds resident
    memory, and besides what the scheduler holds each running task has its
    output block resident: that much is kept out of the limit, which never
    goes below half the budget (the plan check has made sure that one task
    fits in the budget)."""
    return max(budget // 2, budget - max(workers, 1) * biggest)


class Array:
    """A lazy chunked N-d array; see the module docstring."""

    __array_priority__ = 11

    def __init__(self, layers, name, chunks, dtype, meta=None, shape=None):
        if not _is_layers(layers):
            layers = {name: layers}
        self._layers = layers
        self.name = str(name)
        if chunks is None or not all(isinstance(c, tuple) for c in chunks) or \
                not isinstance(chunks, tuple):
            chunks = normalize_chunks(chunks, shape, dtype=dtype)
        self._chunks = chunks
        self._dtype = check_dtype(dtype)
        self._graph = None
        self._shape = None
        _note_block_bytes(self.name, chunks, self._dtype)

    # ---- metadata -------------------------------------------------------
    @property
    def chunks(self):
        return self._chunks

    @property
    def dtype(self):
        return self._dtype

    @property
    def shape(self):
        s = self._shape
        if s is None:
            s = tuple(math.nan if any(_isnan(x) for x in c) else int(sum(c))
                      for c in self._chunks)
            self._shape = s
        return s

    @property
    def ndim(self):
        return len(self._chunks)

    @property
    def size(self):
        s = 1
        for n in self.shape:
            s = s * n
        return s

    @property
    def itemsize(self):
        return self._dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self._dtype.itemsize

    @property
    def numblocks(self):
        return tuple(len(c) for c in self._chunks)

    @property
    def npartitions(self):
        n = 1
        for c in self._chunks:
            n *= len(c)
        return n

    @property
    def chunksize(self):
        return tuple(max((x for x in c), default=0) if not any(_isnan(x) for x in c)
                     else math.nan for c in self._chunks)

    @property
    def dask(self):
        return self.__dask_graph__()

    @property
    def layers(self):
        return self._layers

    @property
    def blocks(self):
        return Blocks(self)

    @property
    def partitions(self):
        return Blocks(self)

    @property
    def _meta(self):
        return np.empty((0,) * self.ndim, dtype=self._dtype)

    @property
    def T(self):
        return self.transpose()

    @property
    def real(self):
        return elemwise(np.real, self) if self._dtype.kind == "c" else self

    @property
    def imag(self):
        if self._dtype.kind == "c":
            return elemwise(np.imag, self)
        return elemwise(np.zeros_like, self)

    def __len__(self):
        if not self._chunks:
            raise TypeError("len() of unsized object")
        n = self.shape[0]
        if _isnan(n):
            raise ValueError("cannot take len() of an array with unknown chunk sizes; "
                             "call x.compute_chunk_sizes() first")
        return n

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return "cdask.Array<%s, shape=%s, dtype=%s, chunksize=%s, chunktype=numpy.ndarray>" % (
            _key_split(self.name), _shape_str(self.shape), self._dtype,
            _shape_str(self.chunksize))

    def _repr_html_(self):
        rows = [
            ("Shape", _shape_str(self.shape), _shape_str(self.chunksize)),
            ("Bytes", _nbytes_str(self.nbytes), _nbytes_str(
                _prod(self.chunksize) * self.itemsize)),
            ("Count", "%d graph layers" % len(self._layers), "%d chunks" % self.npartitions),
            ("Type", "%s" % self._dtype, "numpy.ndarray"),
        ]
        body = "".join("<tr><th>%s</th><td>%s</td><td>%s</td></tr>" % r for r in rows)
        return ("<table><thead><tr><td></td><th>Array</th><th>Chunk</th></tr></thead>"
                "<tbody>%s</tbody></table>" % body)

    def __reduce__(self):
        return (Array, (self._layers, self.name, self._chunks, self._dtype))

    # ---- dask collection protocol ----------------------------------------
    def __dask_graph__(self):
        g = self._graph
        if g is None:
            layers = list(self._layers.values())
            if len(layers) == 1 and isinstance(layers[0], Graph):
                g = layers[0]
            else:
                g = Graph()
                for layer in layers:
                    g.update(layer)
            self._graph = g
        return g

    def __dask_layers__(self):
        return (self.name,)

    def __dask_keys__(self):
        name = self.name
        if not self._chunks:
            return [(name,)]
        nb = self.numblocks

        def rec(prefix, axis):
            if axis == len(nb) - 1:
                return [(name,) + prefix + (i,) for i in range(nb[axis])]
            return [rec(prefix + (i,), axis + 1) for i in range(nb[axis])]

        return rec((), 0)

    def __dask_tokenize__(self):
        return self.name

    # cdask.get takes dask's graph expressions and ignores keywords it does not know
    __dask_scheduler__ = staticmethod(_get)

    @staticmethod
    def __dask_optimize__(dsk, keys, **kwargs):
        return dsk

    def __dask_postcompute__(self):
        return _finalize, (self.ndim, self._dtype, self.shape)

    def __dask_postpersist__(self):
        return self._rebuild, ()

    def _rebuild(self, dsk, *args, rename=None):
        name = self.name
        if rename:
            name = rename.get(name, name)
        return Array({name: dict(dsk)}, name, self._chunks, self._dtype)

    def _keys_flat(self):
        if not self._chunks:
            return [(self.name,)]
        return [(self.name,) + idx for idx in itertools.product(*map(range, self.numblocks))]

    # ---- computing --------------------------------------------------------
    def compute(self, **kwargs):
        """Run the graph and return a NumPy array (a NumPy scalar for 0-d)."""
        (r,) = compute(self, **kwargs)
        return r

    def persist(self, **kwargs):
        """Compute every block and return an Array whose graph holds them."""
        (r,) = persist(self, **kwargs)
        return r

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("cdask.Array cannot be converted to a NumPy array without "
                             "computing it (copy=False was requested)")
        x = np.asarray(self.compute())
        if dtype is not None and x.dtype != np.dtype(dtype):
            x = x.astype(dtype)
        return x

    def __bool__(self):
        if self.size != 1:
            raise ValueError("The truth value of an array with more than one element is "
                             "ambiguous. Use a.any() or a.all()")
        return bool(self.compute())

    def _scalar(self, kind):
        if self.size != 1:
            raise TypeError("only length-1 arrays can be converted to Python scalars")
        return kind(np.asarray(self.compute()).reshape(()))

    def __int__(self):
        return self._scalar(int)

    def __float__(self):
        return self._scalar(float)

    def __complex__(self):
        return self._scalar(complex)

    def __index__(self):
        if self._dtype.kind not in "iub":
            raise TypeError("only integer arrays can be used as an index")
        return self._scalar(int)

    # ---- conversions -------------------------------------------------------
    def astype(self, dtype, casting="unsafe", copy=True, **kwargs):
        """Blockwise cast with NumPy's casting rules."""
        dtype = np.dtype(dtype)
        if dtype == self._dtype:
            return self
        if not np.can_cast(self._dtype, dtype, casting=casting):
            raise TypeError("Cannot cast array data from %r to %r according to the rule %r"
                            % (self._dtype, dtype, casting))
        check_dtype(dtype)
        name = "astype-" + tokenize(self.name, dtype, casting)
        layer = {}
        for key in self._keys_flat():
            layer[(name,) + key[1:]] = (_astype_block, key, dtype, casting)
        return Array(_with(self._layers, name, layer), name, self._chunks, dtype)

    def copy(self):
        """Arrays are immutable: a copy shares the graph."""
        return Array(self._layers, self.name, self._chunks, self._dtype)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def rechunk(self, chunks="auto", threshold=None, block_size_limit=None, balance=False,
                method=None):
        from .rechunk import rechunk

        return rechunk(self, chunks, threshold=threshold, block_size_limit=block_size_limit,
                       balance=balance, method=method)

    def __getitem__(self, index):
        from .slicing import getitem

        return getitem(self, index)

    def __setitem__(self, index, value):
        from .indexing import setitem

        self._become(setitem(self, index, value))

    @property
    def vindex(self):
        from .indexing import VIndex

        return VIndex(self)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return transpose(self, axes or None)

    def to_npy(self, path, **kwargs):
        """Compute into a ``.npy`` file, block by block (see cdask.array.store)."""
        from .store import to_npy

        return to_npy(self, path, **kwargs)

    def store(self, target, **kwargs):
        from .store import store

        return store(self, target, **kwargs)

    def map_blocks(self, func, *args, **kwargs):
        return map_blocks(func, self, *args, **kwargs)

    def conj(self):
        return elemwise(np.conjugate, self)

    conjugate = conj

    def round(self, decimals=0):
        return elemwise(np.round, self, decimals=decimals)

    def to_dask_array(self):  # pragma: no cover - convenience
        import dask.array as dda

        return dda.Array(dict(self.__dask_graph__()), self.name, self._chunks, self._dtype)

    # ---- numpy protocols ---------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            return NotImplemented
        if ufunc is np.matmul:   # a gufunc: contraction, not elementwise
            from .linalg import matmul

            return matmul(*inputs, **kwargs)
        out = kwargs.pop("out", None)
        if isinstance(out, tuple):
            if len(out) == 1:
                out = out[0]
            elif all(o is None for o in out):
                out = None
        for x in inputs + ((out,) if out is not None else ()):
            if not _is_operand(x):
                return NotImplemented
        if out is not None and not isinstance(out, (Array, tuple)):
            return NotImplemented
        if ufunc.nout == 1:
            return elemwise(ufunc, *inputs, out=out, **kwargs)
        outs = out if isinstance(out, tuple) else (None,) * ufunc.nout
        return tuple(elemwise(ufunc, *inputs, out=o, _output_index=i, **kwargs)
                     for i, o in enumerate(outs))

    def __array_function__(self, func, types, args, kwargs):
        handler = None
        try:
            from . import routines

            handler = getattr(routines, "array_function", None)
        except ImportError:
            handler = None
        if handler is not None:
            r = handler(func, types, args, kwargs)
            if r is not NotImplemented:
                return r
        # Not implemented lazily: compute the cdask arguments and call NumPy.
        args, kwargs = _materialize((args, kwargs))
        return func(*args, **kwargs)


def _materialize(obj):
    if isinstance(obj, Array):
        return np.asarray(obj)
    if isinstance(obj, tuple):
        return tuple(_materialize(o) for o in obj)
    if isinstance(obj, list):
        return [_materialize(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _materialize(v) for k, v in obj.items()}
    return obj


def _prod(t):
    p = 1
    for x in t:
        p *= x
    return p


def _nbytes_str(n):
    if _isnan(n):
        return "unknown"
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("kiB", 2**10)):
        if n >= div:
            return "%.2f %s" % (n / div, unit)
    return "%d B" % n


def _with(layers, name, layer):
    d = dict(layers)
    d[name] = layer
    return d


def _merge_layers(*arrays):
    d = {}
    for a in arrays:
        d.update(a._layers)
    return d


# --------------------------------------------------------------------------
# .blocks

class Blocks:
    """``x.blocks[i, j]``: the array made of the selected blocks."""

    def __init__(self, array):
        self._array = array

    @property
    def shape(self):
        return self._array.numblocks

    @property
    def size(self):
        return self._array.npartitions

    @property
    def ndim(self):
        return self._array.ndim

    def __len__(self):
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def ravel(self):
        return [self[idx] for idx in itertools.product(*map(range, self.shape))]

    def __getitem__(self, index):
        x = self._array
        if not isinstance(index, tuple):
            index = (index,)
        nb = x.numblocks
        if sum(1 for i in index if i is not Ellipsis) > len(nb):
            raise IndexError("too many indices for the block grid of shape %s" % (nb,))
        if any(i is Ellipsis for i in index):
            k = index.index(Ellipsis)
            fill = len(nb) - (len(index) - 1)
            index = index[:k] + (slice(None),) * fill + index[k + 1:]
        index = index + (slice(None),) * (len(nb) - len(index))
        sel = []
        keep = []
        for ax, (i, n) in enumerate(zip(index, nb)):
            if isinstance(i, slice):
                sel.append(list(range(n))[i])
                keep.append(True)
            elif isinstance(i, (list, np.ndarray)):
                lst = [int(j) for j in np.asarray(i).ravel()]
                for j in lst:
                    if not -n <= j < n:
                        raise IndexError("block index %d out of range for axis %d with %d "
                                         "blocks" % (j, ax, n))
                sel.append([j % n for j in lst])
                keep.append(True)
            elif isinstance(i, (numbers.Integral, np.integer)):
                # like dask, an int keeps the axis (one block along it)
                j = int(i)
                if not -n <= j < n:
                    raise IndexError("block index %d out of range for axis %d with %d blocks"
                                     % (j, ax, n))
                sel.append([j % n])
                keep.append(True)
            else:
                raise IndexError("blocks[...] accepts ints, slices and lists, got %r" % (i,))
        name = "blocks-" + tokenize(x.name, [tuple(s) for s in sel], keep)
        chunks = tuple(tuple(x.chunks[ax][j] for j in s)
                       for ax, s in enumerate(sel) if keep[ax])
        layer = {}
        for combo in itertools.product(*[list(enumerate(s)) for s in sel]):
            out_idx = tuple(o for (o, _), k in zip(combo, keep) if k)
            in_idx = tuple(j for _, j in combo)
            layer[(name,) + out_idx] = (x.name,) + in_idx
        return Array(_with(x._layers, name, layer), name, chunks, x.dtype)


# --------------------------------------------------------------------------
# compute / persist

def is_cdask_collection(x):
    return isinstance(x, Array)


def _finalize(results, ndim, dtype, shape=None):
    """Assemble nested lists of blocks (``__dask_keys__`` nesting) into one
    preallocated array."""
    if ndim == 0:
        r = results
        while isinstance(r, list):
            r = r[0]
        return _scalar_result(r)
    # block shapes along each axis from the nesting
    sizes = []
    r = results
    for ax in range(ndim):
        sz = []
        for i in range(len(r)):
            b = r[i]
            for _ in range(ndim - ax - 1):
                b = b[0]
            sz.append(np.shape(b)[ax])
        sizes.append(sz)
        r = r[0]
    out = np.empty(tuple(sum(s) for s in sizes), dtype=dtype)
    offs = [chunk_offsets(s) for s in sizes]

    def rec(node, prefix):
        ax = len(prefix)
        if ax == ndim:
            sl = tuple(slice(offs[a][i], offs[a][i + 1]) for a, i in enumerate(prefix))
            out[sl] = node
            return
        for i, sub in enumerate(node):
            rec(sub, prefix + (i,))

    rec(results, ())
    return out


def _scalar_result(r):
    if isinstance(r, np.ndarray) and r.ndim == 0:
        return r[()]
    return r


def _known(a):
    return not any(_isnan(c) for cc in a.chunks for c in cc)


def _get_kwargs(kwargs):
    kw = dict(kwargs)
    for k in ("scheduler", "optimize_graph", "traverse", "get", "pool"):
        kw.pop(k, None)
    return kw


def _fuse_enabled(kwargs):
    # On by default; compute(fuse=False) or cdask.config.set({"array.fuse":
    # False}) turn it off (to compare, or to debug a kernel).
    if "fuse" in kwargs:
        return bool(kwargs.pop("fuse"))
    from .. import config

    return bool(config.get("array.fuse", True))


def _worth_fusing(g, layer_names):
    """Fusion rewrites the graph in Python, some 10-40 us per task: worth it
    when blocks are big enough for the passes over memory it saves to pay
    for that.  Graphs of many tiny blocks (over 20,000 tasks, none of 256
    KiB) run unfused."""
    if len(g) <= 20_000:
        return True
    return max([_BLOCK_BYTES.get(n, 0) for n in layer_names] or [0]) >= 256 << 10


def _workers(kwargs):
    n = kwargs.get("num_workers")
    if n is None:
        from .. import config

        n = config.get("num_workers", 1)
    try:
        return max(1, int(n))
    except (TypeError, ValueError):
        return 1


def _spill_dir():
    import tempfile

    from .. import config

    d = config.get("temporary_directory", None)
    return os.fspath(d) if d else tempfile.gettempdir()


def _memory_limit(kwargs):
    v = kwargs.pop("memory_limit", None)
    from .. import config

    if v is None:
        return int(config.get("memory_limit"))
    from .chunks import parse_bytes

    return parse_bytes(v)


def _with_extra(keys, stores, extra):
    """keys with the store keys split into spans: the extra span keys are
    appended at the end (their results are never read)."""
    have = set(stores)
    return list(keys) + [k for k in extra if k not in have]


def _flatten_keys(keys):
    out = []
    stack = [keys]
    while stack:
        k = stack.pop()
        if isinstance(k, list):
            stack.extend(k)
        else:
            out.append(k)
    return out


def compute(*args, traverse=True, **kwargs):
    """Compute several collections at once: shared parts of their graphs run
    once (one ``cdask.get`` over the union graph).  Returns a tuple; arguments
    that are not cdask Arrays pass through unchanged (other dask collections
    are computed with their own machinery)."""
    arrays = []
    seen = {}
    for a in args:
        if isinstance(a, Array) and id(a) not in seen:
            seen[id(a)] = len(arrays)
            arrays.append(a)
    if not arrays:
        out = []
        for a in args:
            if hasattr(a, "__dask_graph__") and not isinstance(a, Array):
                import dask

                out.append(dask.compute(a)[0])
            else:
                out.append(a)
        return tuple(out)
    results, plans = _run(arrays, [None] * len(arrays), kwargs)
    finals = []
    for a, (kind, v) in zip(arrays, plans):
        if kind == "store":
            finals.append(v)
        elif kind == "scalar":
            finals.append(_scalar_result(results[v]))
        else:
            finals.append(_finalize(results[v], a.ndim, a.dtype))
    out = []
    for a in args:
        if isinstance(a, Array):
            out.append(finals[seen[id(a)]])
        elif hasattr(a, "__dask_graph__"):
            import dask

            out.append(dask.compute(a)[0])
        else:
            out.append(a)
    return tuple(out)


def _run(arrays, outs, kwargs):
    """Run the graphs of ``arrays`` at once; the blocks of each array of known
    shape are written into ``outs[i]`` (a new array when None: anything with
    NumPy's ``__setitem__`` does, C-contiguous ndarrays and memmaps are
    written straight by fused tasks).  Returns (results, plans): per array
    ("store", out), ("scalar", slot) or ("blocks", slot) into results."""
    layers = {}
    for a in arrays:
        layers.update(a._layers)
    if len(arrays) == 1:
        g = arrays[0].__dask_graph__().copy()
    else:
        g = Graph()
        for layer in layers.values():
            g.update(layer)
    budget = _memory_limit(kwargs)
    held = sum(a.nbytes for a, o in zip(arrays, outs) if o is None and a.ndim and _known(a))
    if held > budget:
        big = max((a for a, o in zip(arrays, outs) if o is None and a.ndim and _known(a)),
                  key=lambda a: a.nbytes)
        raise MemoryError(
            "cdask: the result%s of this compute would take %s, more than the memory budget "
            "of %s (cdask.config memory_limit); write it to disk block by block instead: "
            "x.to_npy(path) or cdask.store(x, target) (the largest, %s, is %s)"
            % ("s" if len(arrays) > 1 else "", _nbytes_str(held), _nbytes_str(budget),
               big.name, _nbytes_str(big.nbytes)))
    biggest = _plan_check(g, budget, layers)
    store = "store-" + tokenize(*[a.name for a in arrays], id(g))
    keys = []
    plans = []  # per array: ("store", out) or ("blocks", slot)
    for ai, a in enumerate(arrays):
        if a.ndim == 0 and outs[ai] is None:
            plans.append(("scalar", len(keys)))
            keys.append((a.name,))
        elif _known(a):
            out = outs[ai] if outs[ai] is not None else np.empty(a.shape, dtype=a.dtype)
            per_axis = _slices_from_chunks(a.chunks)
            for idx in itertools.product(*map(range, a.numblocks)):
                sl = tuple(per_axis[d][i] for d, i in enumerate(idx))
                sk = (store, ai) + idx
                g[sk] = (store_block, out, (a.name,) + idx, sl)
                keys.append(sk)
            plans.append(("store", out))
        else:
            plans.append(("blocks", len(keys)))
            keys.append(a.__dask_keys__())
    if _fuse_enabled(kwargs) and _worth_fusing(g, layers):
        from .fuse import fuse_elementwise, fuse_reductions, sink_stores

        flat = _flatten_keys(keys)
        fuse_elementwise(g, keep=flat)
        fuse_reductions(g, keep=flat)
        stores = [k for k in flat if type(k) is tuple and k and k[0] == store]
        extra = sink_stores(g, stores, store_block, workers=_workers(kwargs))
        if len(extra) != len(stores):
            keys = _with_extra(keys, stores, extra)
    from ..diagnostics import get_with_progress
    from .linalg import blas_limits

    kw = _get_kwargs(kwargs)
    # intermediates past the budget are spilled to unnamed files in the
    # temporary directory (config "temporary_directory"), removed with them
    kw.setdefault("spill_limit", _spill_limit(budget, biggest, _workers(kwargs)))
    kw.setdefault("spill_dir", _spill_dir())
    with blas_limits(layers):
        results = get_with_progress(_get, g, keys, **kw)
    return results, plans


def optimize(*args, **kwargs):
    """The arrays with their graphs as compute() would run them: culled to
    what they need, elementwise chains fused, and reductions fused with the
    chains and masks they consume (``repr`` of a fused task's kernel shows
    the operations it holds).  Other arguments pass through.  Like
    ``dask.optimize``, returns a tuple."""
    from .fuse import fuse_elementwise, fuse_reductions

    out = []
    for a in args:
        if not isinstance(a, Array):
            out.append(a)
            continue
        keys = a._keys_flat()
        g = a.__dask_graph__().cull(keys)
        fuse_elementwise(g, keep=keys)
        fuse_reductions(g, keep=keys)
        out.append(Array({a.name: g.cull(keys)}, a.name, a.chunks, a.dtype))
    return tuple(out)


def persist(*args, **kwargs):
    """Compute the blocks of each Array; return Arrays whose graphs hold the
    results (chunk sizes become known).  Non-arrays pass through."""
    arrays = [a for a in args if isinstance(a, Array)]
    if not arrays:
        return tuple(args)
    g = Graph()
    layers = {}
    for a in arrays:
        layers.update(a._layers)
    for layer in layers.values():
        g.update(layer)
    keys = [a._keys_flat() for a in arrays]
    from .linalg import blas_limits

    with blas_limits(layers):
        results = _get(g, keys, **_get_kwargs(kwargs))
    done = {}
    for a, ks, vals in zip(arrays, keys, results):
        layer = dict(zip(ks, vals))
        chunks = a.chunks
        if not _known(a):
            nb = a.numblocks
            shapes = {k[1:]: np.shape(v) for k, v in layer.items()}
            chunks = tuple(
                tuple(shapes[tuple(i if d == ax else 0 for d in range(a.ndim))][ax]
                      for i in range(nb[ax]))
                for ax in range(a.ndim))
        done[id(a)] = Array({a.name: layer}, a.name, chunks, a.dtype)
    return tuple(done[id(a)] if isinstance(a, Array) else a for a in args)


# --------------------------------------------------------------------------
# conversion helpers

def _is_scalar(x):
    return isinstance(x, (numbers.Number, np.generic)) or (
        isinstance(x, np.ndarray) and x.ndim == 0)


def _is_operand(x):
    if isinstance(x, (Array, np.ndarray, numbers.Number, np.generic, list, tuple)):
        return True
    if x is None:
        return False
    if hasattr(x, "__dask_graph__"):
        return False
    return hasattr(x, "__array__") and getattr(x, "__array_ufunc__", 1) is not None


def asarray(x, dtype=None, chunks=None, **kwargs):
    """A cdask Array from ``x`` (Array returned as is, cast when dtype given)."""
    if isinstance(x, Array):
        return x if dtype is None else x.astype(dtype)
    from .creation import from_array

    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = np.asarray(x, dtype=dtype)
    elif dtype is not None:
        x = np.asarray(x, dtype=dtype)
    return from_array(x, chunks="auto" if chunks is None else chunks)


asanyarray = asarray


# --------------------------------------------------------------------------
# elementwise

class _UfuncBlock:
    """Fallback per-block callable: calls the NumPy ufunc (or any function)
    on the blocks and casts to the expected dtype."""

    __slots__ = ("op", "dtype", "kwargs", "index", "nin", "has_where", "has_out")

    def __init__(self, op, dtype, kwargs=(), index=None, nin=None, has_where=False,
                 has_out=False):
        self.op = op
        self.dtype = dtype
        self.kwargs = tuple(kwargs)
        self.index = index
        self.nin = nin
        self.has_where = has_where
        self.has_out = has_out

    @property
    def __name__(self):
        return getattr(self.op, "__name__", "elemwise")

    def __reduce__(self):
        return (_UfuncBlock, (self.op, self.dtype, self.kwargs, self.index, self.nin,
                              self.has_where, self.has_out))

    def __call__(self, *args):
        # np.errstate is per thread (a context variable): the caller's does
        # not reach the worker that runs this block.  Collect the flags NumPy
        # reports here and hand them to the scheduler, which applies the
        # caller's errstate when the run is over, as for C kernels.  Outside
        # a cdask run (dask's own schedulers), act on them in this thread.
        raised = []
        with np.errstate(all="call", call=lambda kind, flag: raised.append(flag)):
            r = self._call(*args)
        if raised:
            bits = 0
            for f in raised:
                bits |= int(f)
            if not _note_fpe(bits):
                from .._errstate import report

                report(bits, (self.__name__,) * 4)
        return r

    def _call(self, *args):
        kw = dict(self.kwargs)
        if self.has_where or self.has_out:
            ins = args[:self.nin]
            rest = list(args[self.nin:])
            where = rest.pop(0) if self.has_where else True
            if self.has_out:
                o = np.array(rest.pop(0), dtype=self.dtype, copy=True)
            else:
                shp = np.broadcast_shapes(*[np.shape(a) for a in ins], np.shape(where))
                o = np.empty(shp, dtype=self.dtype)
            if not isinstance(self.op, np.ufunc):
                r = np.asarray(self.op(*ins, **kw))
                np.copyto(o, r, where=where, casting="unsafe")
                return o
            if self.index is not None:
                outs = [None] * self.op.nout
                outs[self.index] = o
                self.op(*ins, out=tuple(outs), where=where, casting="unsafe", **kw)
            else:
                self.op(*ins, out=o, where=where, casting="unsafe", **kw)
            return o
        r = self.op(*args, **kw)
        if self.index is not None:
            r = r[self.index]
        if type(r) is not np.ndarray:
            r = np.asarray(r)
        if r.dtype != self.dtype:
            r = r.astype(self.dtype)
        return r


def _ufuncs_module():
    try:
        from . import ufuncs
    except ImportError:
        return None
    return ufuncs


def _operand_dtype(a):
    if isinstance(a, (Array, np.ndarray, np.generic)):
        return a.dtype
    if isinstance(a, bool):
        return np.dtype(bool)
    if isinstance(a, int):
        return int
    if isinstance(a, float):
        return float
    if isinstance(a, complex):
        return complex
    return np.asarray(a).dtype


_COMPARISONS = frozenset(["equal", "not_equal", "less", "less_equal", "greater",
                          "greater_equal"])


def _resolve_dtype(op, args, index, dtype):
    """The output dtype of ``op(*args)`` and the loop input dtypes."""
    in_types = tuple(_operand_dtype(a) for a in args)
    if isinstance(op, np.ufunc):
        if dtype is None and index is None:
            uf = _ufuncs_module()
            rd = getattr(uf, "result_dtype", None) if uf is not None else None
            if rd is not None:
                try:
                    r = rd(op, *args)
                    if r is not None:
                        return np.dtype(r), None
                except (NotImplementedError, AttributeError, ImportError):
                    pass
        try:
            sig = (dtype,) if dtype is not None else None
            if dtype is not None and op.nout == 1:
                res = op.resolve_dtypes(in_types + (None,), signature=(None,) * op.nin +
                                        (np.dtype(dtype),))
            else:
                res = op.resolve_dtypes(in_types + (None,) * op.nout)
            del sig
            outs = res[op.nin:]
            return np.dtype(outs[index or 0]), res[:op.nin]
        except TypeError:
            # resolve_dtypes does not cover every loop (e.g. legacy ones):
            # fall back to a sample computation, which also raises NumPy's own
            # error when the types are not supported
            pass
    samples = []
    for a in args:
        if isinstance(a, (Array, np.ndarray)):
            samples.append(np.ones((1,) * max(a.ndim, 0), dtype=a.dtype))
        else:
            samples.append(a)
    kw = {"dtype": dtype} if (dtype is not None and isinstance(op, np.ufunc)) else {}
    with np.errstate(all="ignore"):
        r = op(*samples, **kw)
    if index is not None:
        r = r[index]
    return np.asarray(r).dtype, None


def _broadcast_shapes(shapes):
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for ax in range(nd):
        sizes = []
        for s in shapes:
            k = ax - (nd - len(s))
            if k >= 0:
                sizes.append(s[k])
        known = {x for x in sizes if not _isnan(x) and x != 1}
        has_nan = any(_isnan(x) for x in sizes)
        if len(known) > 1 or (has_nan and known):
            if has_nan and len(known) <= 1:
                raise ValueError("operands could not be broadcast together with shapes %s: "
                                 "an axis has unknown chunk sizes; call compute_chunk_sizes() "
                                 "first" % " ".join(_shape_str(s) for s in shapes))
            raise ValueError("operands could not be broadcast together with shapes %s "
                             % " ".join(_shape_str(s) for s in shapes))
        if has_nan:
            out.append(math.nan)
        elif known:
            out.append(known.pop())
        else:
            out.append(1 if sizes else 1)
    return tuple(out)


def _common_chunks(chunk_lists, size):
    """One chunking for an axis from the chunkings of the operands that span
    it: the same if they agree, else the common refinement."""
    first = chunk_lists[0]
    if all(c == first for c in chunk_lists[1:]):
        return first
    if any(_isnan(x) for c in chunk_lists for x in c):
        raise ValueError("arrays with unknown chunk sizes along an axis can only be combined "
                         "when their chunks are identical (got %s); call compute_chunk_sizes() "
                         "first" % (", ".join(map(str, chunk_lists)),))
    bounds = set()
    for c in chunk_lists:
        bounds.update(chunk_offsets(c))
    b = sorted(bounds)
    return tuple(b[i + 1] - b[i] for i in range(len(b) - 1)) or (0,)


def unify_chunks_broadcast(arrays, out_shape):
    """Rechunk Arrays (aligned from the right, NumPy broadcasting) to common
    block grids.  Returns (arrays, out_chunks)."""
    nd = len(out_shape)
    out_chunks = []
    for ax in range(nd):
        lists = []
        for a in arrays:
            k = ax - (nd - a.ndim)
            if k >= 0 and not (a.shape[k] == 1 and out_shape[ax] != 1):
                lists.append(a.chunks[k])
        if lists:
            out_chunks.append(_common_chunks(lists, out_shape[ax]))
        else:
            out_chunks.append((1,))
    out_chunks = tuple(out_chunks)
    res = []
    for a in arrays:
        want = []
        for k in range(a.ndim):
            ax = k + nd - a.ndim
            if a.shape[k] == 1 and out_shape[ax] != 1:
                want.append(a.chunks[k])  # (1,)
            else:
                want.append(out_chunks[ax])
        want = tuple(want)
        if want != a.chunks:
            from .rechunk import rechunk

            a = rechunk(a, want)
        res.append(a)
    return res, out_chunks


def _exact_int_scalars(op, args):
    # NumPy compares an integer array with a Python int by value, so
    # `int8_array < 300` is all True; a Python int that fits the loop's
    # integer dtype compares exactly as that dtype's scalar does, and then
    # the C kernel applies.  Out-of-range ints stay as they are (NumPy's
    # own call handles them).
    if not any(type(a) is int for a in args):
        return args
    try:
        from .ufuncs import resolve

        loop = resolve(op, tuple(int if type(a) is int else
                                 (a.dtype if hasattr(a, "dtype") else type(a)) for a in args))
    except Exception:
        return args
    out = list(args)
    for k, a in enumerate(args):
        lt = np.dtype(loop[k])
        if type(a) is int and lt.kind in "iu":
            info = np.iinfo(lt)
            if info.min <= a <= info.max:
                out[k] = lt.type(a)
    return out


def _where_kernel(args, in_dtypes):
    """np.where(cond, x, y) as a C kernel (a one-step fused program) taking
    the array operands only, scalars built in; None if it cannot run in C."""
    from .._core import fused_kernel

    refs, dts = [], []
    for a, dt in zip(args, in_dtypes):
        if _is_scalar(a):
            refs.append(("const", a))
        else:
            refs.append(("in", len(dts)))
            dts.append(dt)
    if not dts or refs[0][0] == "const":
        return None
    try:
        return fused_kernel(dts, [(np.where, refs)])
    except (NotImplementedError, TypeError, ValueError, OverflowError):
        return None


def elemwise(op, *args, dtype=None, out=None, where=True, name=None, _output_index=None,
             **kwargs):
    """Apply a NumPy ufunc (or elementwise function) blockwise with NumPy
    broadcasting over cdask Arrays, NumPy arrays and scalars."""
    index = _output_index
    conv = []
    for a in args:
        if isinstance(a, Array) or _is_scalar(a):
            conv.append(a)
        elif isinstance(a, np.ndarray):
            conv.append(a)
        elif hasattr(a, "__dask_graph__"):
            raise TypeError("cannot mix cdask arrays with %s" % type(a).__name__)
        else:
            conv.append(np.asarray(a))
    args = conv
    if isinstance(out, tuple):
        out = out[0] if len(out) == 1 else out
    if out is not None and not isinstance(out, Array):
        raise TypeError("out= must be a cdask Array, got %s" % type(out).__name__)
    has_where = not (isinstance(where, bool) and where)
    if has_where and not isinstance(where, Array):
        where = np.asarray(where)
    if isinstance(op, np.ufunc) and op.__name__ in _COMPARISONS:
        args = _exact_int_scalars(op, args)
    op_args = list(args)

    # dtype: for NEP 50 the resolution sees Python scalars as weak
    if dtype is not None:
        dtype = np.dtype(dtype)
    out_dtype, loop_types = _resolve_dtype(op, args, index, dtype)
    if isinstance(op, np.ufunc) and op.__name__ not in _COMPARISONS and \
            any(type(a) is int for a in args):
        if loop_types is None:
            try:
                loop_types = op.resolve_dtypes(tuple(_operand_dtype(a) for a in args) +
                                               (None,) * op.nout)[:op.nin]
            except TypeError:
                loop_types = None
        for a, lt in zip(args, loop_types or ()):
            if type(a) is int and np.dtype(lt).kind in "iu":
                np.asarray(a, dtype=lt)  # OverflowError like NumPy's
    if out is not None:
        if not np.can_cast(out_dtype, out.dtype, casting=kwargs.get("casting", "same_kind")):
            raise TypeError("Cannot cast ufunc %r output from %r to %r with casting rule "
                            "'same_kind'" % (getattr(op, "__name__", op), out_dtype, out.dtype))
    check_dtype(out_dtype)

    arrays_all = [a for a in op_args if not _is_scalar(a)]
    extra = []
    if has_where:
        extra.append(where)
    if out is not None and has_where:
        extra.append(out)
    shapes = [np.shape(a) if not isinstance(a, Array) else a.shape
              for a in arrays_all + extra]
    out_shape = _broadcast_shapes(shapes) if shapes else ()
    if out is not None and tuple(out.shape) != tuple(out_shape):
        raise ValueError("non-broadcastable output operand with shape %s doesn't match the "
                         "broadcast shape %s" % (_shape_str(out.shape), _shape_str(out_shape)))

    # NumPy arrays become Arrays chunked like the rest
    cd = [a for a in arrays_all + extra if isinstance(a, Array)]
    from .creation import from_array

    if cd:
        cd, out_chunks = unify_chunks_broadcast(cd, out_shape)
    else:
        out_chunks = tuple(normalize_chunks("auto", tuple(out_shape), dtype=out_dtype))
    nd = len(out_shape)

    def to_array(a):
        if isinstance(a, Array):
            return a
        ch = []
        for k in range(a.ndim):
            ax = k + nd - a.ndim
            ch.append((1,) if (a.shape[k] == 1 and out_shape[ax] != 1) else out_chunks[ax])
        return from_array(a, chunks=tuple(ch))

    it = iter(cd)
    operands = []
    for a in op_args + extra:
        if _is_scalar(a):
            operands.append(a)
        elif isinstance(a, Array):
            operands.append(next(it))
        else:
            operands.append(to_array(a))
    n_in = len(op_args)

    # the task callable
    fn = None
    in_dtypes = tuple(_operand_dtype(a) for a in op_args)
    if isinstance(op, np.ufunc) and not has_where and index is None and not kwargs and \
            dtype is None:
        uf = _ufuncs_module()
        ut = getattr(uf, "ufunc_task", None) if uf is not None else None
        if ut is not None:
            try:
                fn = ut(op, in_dtypes)
            except Exception:
                fn = None
    drop_scalars = False
    if fn is None and op is np.where and not has_where and index is None and not kwargs \
            and dtype is None:
        fn = _where_kernel(op_args, in_dtypes)
        drop_scalars = fn is not None
    if fn is None:
        kw = dict(kwargs)
        if dtype is not None and isinstance(op, np.ufunc):
            kw["dtype"] = dtype
        fn = _UfuncBlock(op, out_dtype, sorted(kw.items()), index, n_in, has_where,
                         out is not None and has_where)

    opname = getattr(op, "__name__", "elemwise")
    if name is None:
        name = "%s-%s" % (opname, tokenize(op, [a.name if isinstance(a, Array) else a
                                                for a in operands],
                                           out_dtype, dtype, index, sorted(kwargs.items()),
                                           getattr(op, "__module__", None)))
    layer = {}
    arr_ops = [a for a in operands if isinstance(a, Array)]
    if nd == 0:
        idxs = [()]
    else:
        idxs = itertools.product(*[range(len(c)) for c in out_chunks])
    simple = all(not isinstance(a, Array) or
                 (a.ndim == nd and all(a.shape[k] == out_shape[k] or out_shape[k] == 1
                                       for k in range(nd)))
                 for a in operands)
    if simple and (len(operands) == 1 and isinstance(operands[0], Array) or
                   len(operands) == 2 and (isinstance(operands[0], Array) or
                                           isinstance(operands[1], Array))):
        # no broadcasting between blocks: each operand's key is the output
        # index (the common case, built without a per-operand loop)
        a0 = operands[0]
        if len(operands) == 1:
            n0 = a0.name
            layer = {(name,) + idx: (fn, (n0,) + idx) for idx in idxs}
        else:
            a1 = operands[1]
            if isinstance(a0, Array) and isinstance(a1, Array):
                n0, n1 = a0.name, a1.name
                layer = {(name,) + idx: (fn, (n0,) + idx, (n1,) + idx) for idx in idxs}
            elif isinstance(a0, Array):
                n0 = a0.name
                layer = {(name,) + idx: (fn, (n0,) + idx, a1) for idx in idxs}
            else:
                n1 = a1.name
                layer = {(name,) + idx: (fn, a0, (n1,) + idx) for idx in idxs}
        idxs = ()
    for idx in idxs:
        targs = []
        for a in operands:
            if isinstance(a, Array):
                off = nd - a.ndim
                ki = tuple(0 if (a.shape[k] == 1 and out_shape[k + off] != 1) else idx[k + off]
                           for k in range(a.ndim))
                targs.append((a.name,) + ki)
            elif not drop_scalars:
                targs.append(a)
        layer[(name,) + idx] = (fn,) + tuple(targs)
    res = Array(_with(_merge_layers(*arr_ops), name, layer), name, out_chunks, out_dtype)
    if out is not None:
        if res.dtype != out.dtype:
            res = res.astype(out.dtype)
        out._become(res)
        return out
    return res


def _become(self, other):
    self._layers = other._layers
    self.name = other.name
    self._chunks = other._chunks
    self._dtype = other._dtype
    self._graph = None
    self._shape = None


Array._become = _become


# --------------------------------------------------------------------------
# operators

def _binary(ufunc):
    def fwd(self, other):
        if not _is_operand(other):
            return NotImplemented
        return elemwise(ufunc, self, other)

    def rev(self, other):
        if not _is_operand(other):
            return NotImplemented
        return elemwise(ufunc, other, self)

    fwd.__name__ = rev.__name__ = ufunc.__name__
    return fwd, rev


for _op, _uf in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                 ("truediv", np.true_divide), ("floordiv", np.floor_divide),
                 ("mod", np.remainder), ("and", np.bitwise_and), ("or", np.bitwise_or),
                 ("xor", np.bitwise_xor), ("lshift", np.left_shift),
                 ("rshift", np.right_shift)]:
    _f, _r = _binary(_uf)
    setattr(Array, "__%s__" % _op, _f)
    setattr(Array, "__r%s__" % _op, _r)

for _op, _uf in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less),
                 ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal)]:
    setattr(Array, "__%s__" % _op, _binary(_uf)[0])

Array.__hash__ = object.__hash__


def _pow(self, other, mod=None):
    if mod is not None:
        return NotImplemented
    if not _is_operand(other):
        return NotImplemented
    if _is_scalar(other) and not isinstance(other, np.ndarray):
        uf = _ufuncs_module()
        pr = getattr(uf, "pow_rewrite", None) if uf is not None else None
        if pr is not None:
            try:
                fn = pr(self.dtype, other)
            except Exception:
                fn = None
            if isinstance(fn, np.ufunc):
                # NumPy's own rewrite (x ** 2 -> square(x), ...)
                return elemwise(fn, self)
            if fn is not None:
                dt, _ = _resolve_dtype(np.power, (self, other), None, None)
                name = "power-" + tokenize("pow", self.name, other, dt)
                layer = {(name,) + k[1:]: (fn, k) for k in self._keys_flat()}
                return Array(_with(self._layers, name, layer), name, self.chunks, dt)
    return elemwise(np.power, self, other)


def _rpow(self, other):
    if not _is_operand(other):
        return NotImplemented
    return elemwise(np.power, other, self)


def _divmod(self, other):
    if not _is_operand(other):
        return NotImplemented
    return elemwise(np.floor_divide, self, other), elemwise(np.remainder, self, other)


def _rdivmod(self, other):
    if not _is_operand(other):
        return NotImplemented
    return elemwise(np.floor_divide, other, self), elemwise(np.remainder, other, self)


Array.__pow__ = _pow
Array.__rpow__ = _rpow
Array.__divmod__ = _divmod
Array.__rdivmod__ = _rdivmod
Array.__neg__ = lambda self: elemwise(np.negative, self)
Array.__pos__ = lambda self: elemwise(np.positive, self)
Array.__abs__ = lambda self: elemwise(np.absolute, self)
Array.__invert__ = lambda self: elemwise(np.invert, self)


def _matmul(self, other):
    from .linalg import matmul

    if not _is_operand(other):
        return NotImplemented
    return matmul(self, other)   # a scalar raises ValueError, as NumPy


def _rmatmul(self, other):
    from .linalg import matmul

    if not _is_operand(other):
        return NotImplemented
    return matmul(other, self)


Array.__matmul__ = _matmul
Array.__rmatmul__ = _rmatmul


def _delegate(modname, fname):
    def method(self, *args, **kwargs):
        import importlib

        mod = importlib.import_module("cdask.array." + modname)
        return getattr(mod, fname)(self, *args, **kwargs)

    method.__name__ = fname
    method.__doc__ = "See ``cdask.array.%s.%s``." % (modname, fname)
    return method


for _name in ("sum", "prod", "mean", "std", "var", "min", "max", "any", "all", "argmin",
              "argmax", "nansum", "nanmean", "nanmin", "nanmax"):
    if not hasattr(Array, _name):
        setattr(Array, _name, _delegate("reductions", _name))
Array.dot = _delegate("linalg", "dot")
for _name in ("clip", "compute_chunk_sizes", "nonzero", "squeeze", "swapaxes",
              "repeat", "view", "topk"):
    if not hasattr(Array, _name):
        setattr(Array, _name, _delegate("routines", _name))
setattr(Array, "to_zarr", _delegate("store", "to_zarr"))
# cumsum/cumprod: joining.py's take axis=None (flattened) as NumPy does
for _name in ("cumsum", "cumprod"):
    setattr(Array, _name, _delegate("joining", _name))
for _name in ("ravel", "flatten"):
    setattr(Array, _name, _delegate("reshape", _name))


def _reshape_method(self, *shape, merge_chunks=True, limit=None, order="C"):
    """``x.reshape(shape)`` or ``x.reshape(*shape)``; see ``cdask.array.reshape.reshape``."""
    from .reshape import reshape

    if len(shape) == 1 and not isinstance(shape[0], (numbers.Integral, np.integer)):
        shape = shape[0]
    return reshape(self, shape, merge_chunks=merge_chunks, limit=limit, order=order)


Array.reshape = _reshape_method


# --------------------------------------------------------------------------
# blockwise helpers

def blockwise_simple(func, prefix, *arrays, dtype=None, chunks=None, args=(), token=None,
                     key_args=None):
    """Apply ``func(block_a, block_b, ..., *args)`` to each set of aligned
    blocks of Arrays with the same block grid (no broadcasting).  ``chunks``
    defaults to the first array's chunks; ``dtype`` to its dtype."""
    if not arrays:
        raise ValueError("blockwise_simple needs at least one Array")
    first = arrays[0]
    nb = first.numblocks
    for a in arrays[1:]:
        if a.numblocks != nb:
            raise ValueError("blockwise_simple: block grids differ: %s and %s"
                             % (nb, a.numblocks))
    if dtype is None:
        dtype = first.dtype
    if chunks is None:
        chunks = first.chunks
    name = "%s-%s" % (prefix, tokenize(prefix, func, [a.name for a in arrays], args,
                                       dtype, chunks, token))
    layer = {}
    for k in first._keys_flat():
        idx = k[1:]
        layer[(name,) + idx] = (func,) + tuple((a.name,) + idx for a in arrays) + tuple(args)
    return Array(_with(_merge_layers(*arrays), name, layer), name, chunks, dtype)


def map_blocks(func, *args, **kwargs):
    """Apply ``func`` to each block (dask's ``map_blocks``: ``dtype``, ``chunks``,
    ``drop_axis``, ``new_axis``, ``block_id=``/``block_info=``); see
    ``cdask.array.mapping``."""
    from .mapping import map_blocks as _map_blocks

    return _map_blocks(func, *args, **kwargs)


def transpose(x, axes=None):
    """Permute the axes (blockwise)."""
    nd = x.ndim
    if axes is None:
        axes = tuple(range(nd))[::-1]
    axes = tuple(int(a) for a in axes)
    for a in axes:
        if not -nd <= a < nd:
            raise np.exceptions.AxisError(a, nd)
    axes = tuple(a % nd for a in axes)
    if len(axes) == nd and len(set(axes)) != nd:
        raise ValueError("repeated axis in transpose")
    if sorted(axes) != list(range(nd)):
        raise ValueError("axes don't match array: %r for %d dimensions" % (axes, nd))
    if axes == tuple(range(nd)):
        return x
    name = "transpose-" + tokenize(x.name, axes)
    layer = {}
    for k in x._keys_flat():
        idx = k[1:]
        layer[(name,) + tuple(idx[a] for a in axes)] = (_transpose_block, k, axes)
    chunks = tuple(x.chunks[a] for a in axes)
    return Array(_with(x._layers, name, layer), name, chunks, x.dtype)
