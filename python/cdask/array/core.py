"""``cdask.Array``: a lazy, chunked NumPy array backed by a task graph.

An Array is ``(layers, name, chunks, dtype)`` (see docs/array-design.md):

* ``layers`` - dict ``{layer_name: {key: task}}`` of every layer the array
  needs; shared by reference between arrays, never copied per task.
* ``name`` - the array's own layer; its blocks are keys ``(name, i, j, ...)``
  (``(name,)`` for a 0-d array).
* ``chunks`` - tuple of tuples of block sizes (``math.nan`` where unknown).
* ``dtype`` - a supported NumPy dtype (``cdask.array.dtypes``).

This module holds the class with what needs nothing but the graph: metadata,
the reprs (text, HTML and ``to_svg``, drawn by ``svg.py``), the dask
collection protocol, casts, transposes and ``.blocks``.  Everything
that builds on other modules - operators, ``__getitem__``, reductions,
``compute`` - is set on the class by ``cdask.array.methods``, the one module
that imports every layer (the layers are listed in ``cdask/array/__init__.py``).
"""

import importlib
import itertools
import math
import numbers
import weakref
from collections.abc import Mapping
from html import escape

import numpy as np

from .. import config
from .._core import get
from ..graph import Graph
from .blockio import tokenize_maps_for_dask
from .chunk_types import keep_block, maybe_masked, new_block, note_masked
from .chunks import normalize_chunks, chunk_offsets
from .dtypes import check_dtype
from .layers import layer_tasks
from .schedulers import future_layer
from .svg import svg
from .tokenize import tokenize
from .utils import format_bytes, isnan, key_split, merge_layers, prod, with_layer

__all__ = ["Array", "Blocks", "is_cdask_collection", "blockwise_simple", "transpose",
           "finalize", "scalar_result", "BLOCK_BYTES", "HANDED_LAYERS", "PerformanceWarning"]


class PerformanceWarning(Warning):
    """An operation that works but is slow or takes much memory (dask's
    ``dask.array.core.PerformanceWarning``; cdask's own class, so that
    cdask imports without dask)."""


def _astype_block(block, dtype, casting):
    b = keep_block(block)
    if dtype == np.uint32 and b.dtype.kind in "fc" and b.dtype != np.float16 and b.size and \
            type(b) is np.ndarray:
        # NumPy's casts to uint32 of out-of-range values (NaN, below -2^31,
        # 2^32 and up) give one value in their vector loop and another in its
        # scalar tail; cdask's C casts give the vector loop's everywhere, and
        # so does this (the block, padded, falls in the vector loop)
        pad = np.concatenate([b.reshape(-1), np.zeros(32, b.dtype)])
        return pad.astype(dtype, casting=casting)[:b.size].reshape(b.shape)
    return b.astype(dtype, casting=casting, copy=False)


def transpose_block(block, axes):
    return np.transpose(block, axes)


def _largest(c):
    """The largest block size in ``c`` (one axis), nan if a size is unknown.
    Regular chunks - all equal but the last - are told by ``tuple.count``, so
    an axis of millions of blocks costs one pass at C speed."""
    if not c:
        return 0
    first, last = c[0], c[-1]
    if isnan(first) or isnan(last):
        return math.nan
    if c.count(first) == len(c) - (first != last):
        return max(first, last)
    if isnan(sum(c)):
        return math.nan
    return max(c)


def _sizes_text(sizes):
    """A shape as NumPy prints it, "unknown" for an unknown (nan) size."""
    return "(" + ", ".join("unknown" if isnan(n) else str(n) for n in sizes) + \
        ("," if len(sizes) == 1 else "") + ")"


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


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
BLOCK_BYTES = {}
# and each layer's chunks and item size, for the size of any one of its
# blocks (explain()'s replay of a plan); cleared with BLOCK_BYTES
LAYER_CHUNKS = {}


_BLOCK_BYTES_MAX = 1 << 18


def note_block_bytes(name, chunks, dtype):
    if len(BLOCK_BYTES) >= _BLOCK_BYTES_MAX:
        BLOCK_BYTES.clear()
        LAYER_CHUNKS.clear()
    LAYER_CHUNKS[name] = (chunks, dtype.itemsize)
    n = dtype.itemsize
    for c in chunks:
        if not c:
            n = 0
            break
        m = max(c)
        if isnan(m):
            return
        n *= int(m)
    BLOCK_BYTES[name] = n


# The Arrays whose graphs were handed out (__dask_graph__), by name, so that
# Array.__dask_optimize__ - given only dask's merged dict - can plan fusion
# on their layers as compute() does.  Weak: an entry lives only as long as
# its Array (whose layers may hold large in-memory sources), and a name is a
# token of what the array computes, so an entry is never stale.
HANDED_LAYERS = weakref.WeakValueDictionary()


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
        note_block_bytes(self.name, chunks, self._dtype)

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
            # a sum with a nan in it is nan: one C-speed pass per axis
            s = tuple(math.nan if isnan(t) else int(t)
                      for t in (sum(c) for c in self._chunks))
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
        """The largest block along each axis (nan where sizes are unknown)."""
        return tuple(_largest(c) for c in self._chunks)

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
        m = np.empty((0,) * self.ndim, dtype=self._dtype)
        return np.ma.MaskedArray(m) if self._maybe_masked() else m

    def _maybe_masked(self):
        """May its blocks be masked arrays (``chunk_types.maybe_masked``)?"""
        return maybe_masked(self._layers)

    def _chunktype(self):
        return "numpy.ma.MaskedArray" if self._maybe_masked() else "numpy.ndarray"

    @property
    def T(self):
        return self.transpose()

    # ---- the array API standard (the namespace is cdask.array_api) -------

    def __array_namespace__(self, api_version=None):
        """The array API namespace of cdask Arrays, ``cdask.array_api``
        (``api_version``: None or one it supports, else ValueError)."""
        # cdask.array_api is built on this package (a layer above it): found
        # by name at call time, not imported by this module
        return importlib.import_module("cdask.array_api").namespace_for(api_version)

    @property
    def mT(self):
        """The last two axes swapped (a stack of matrices transposed)."""
        if self.ndim < 2:
            raise ValueError("mT needs an array of 2 or more dimensions")
        axes = tuple(range(self.ndim - 2)) + (self.ndim - 1, self.ndim - 2)
        return transpose(self, axes)

    @property
    def device(self):
        """Where the blocks live: ``"cpu"``, cdask's one device."""
        return "cpu"

    def to_device(self, device, /, *, stream=None):
        """This Array, on ``device`` (only ``"cpu"``; ValueError otherwise)."""
        if device != "cpu":
            raise ValueError("cdask arrays live on the 'cpu' device only, got %r" % (device,))
        if stream is not None:
            raise ValueError("cdask arrays have no streams (stream=%r)" % (stream,))
        return self

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Compute, then export the NumPy result through DLPack."""
        if stream is not None:
            raise BufferError("cdask arrays live on the CPU: stream must be None")
        if dl_device is not None and tuple(dl_device) != (1, 0):
            raise BufferError("cdask arrays can be exported to the CPU only (%r)"
                              % (dl_device,))
        x = np.ascontiguousarray(self.compute())
        kwargs = {} if max_version is None else {"max_version": max_version}
        if copy is not None:
            kwargs["copy"] = copy
        return x.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return (1, 0)   # kDLCPU, device 0

    def __len__(self):
        if not self._chunks:
            raise TypeError("len() of unsized object")
        n = self.shape[0]
        if isnan(n):
            raise ValueError("cannot take len() of an array with unknown chunk sizes; "
                             "call x.compute_chunk_sizes() first")
        return n

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        # one line, as dask's: unknown sizes written "unknown" (.chunks keeps nan)
        return "cdask.Array<%s, shape=%s, dtype=%s, chunksize=%s, chunktype=%s>" % (
            key_split(self.name), _sizes_text(self.shape), self._dtype,
            _sizes_text(self.chunksize), self._chunktype())

    def _repr_html_(self):
        """A table of the array and its largest block (bytes, shape), its
        numbers of chunks, tasks and graph layers and its dtype, beside a
        drawing of the chunk grid (``to_svg``, ``array.svg.size`` pixels,
        default 120).  Reads only the chunks and the layers' lengths: no task
        of a Blockwise layer is made, however many blocks there are."""
        chunk = self.chunksize
        nb = self.numblocks
        ntasks = sum(len(layer) for layer in self._layers.values())
        nchunks = _plural(self.npartitions, "chunk")
        if len(nb) > 1:
            nchunks += " (%s)" % " \u00d7 ".join(map(str, nb))
        rows = [
            ("Bytes", format_bytes(self.nbytes), format_bytes(prod(chunk) * self.itemsize)),
            ("Shape", _sizes_text(self.shape), _sizes_text(chunk)),
            ("Chunks", nchunks, None),
            ("Graph", "%s in %s" % (_plural(ntasks, "task"),
                                    _plural(len(self._layers), "graph layer")), None),
            ("Type", str(self._dtype), self._chunktype()),
        ]
        body = []
        for head, a, c in rows:
            if c is None:
                body.append("<tr><th>%s</th><td colspan=\"2\">%s</td></tr>" % (head, escape(a)))
            else:
                body.append("<tr><th>%s</th><td>%s</td><td>%s</td></tr>"
                            % (head, escape(a), escape(c)))
        unknown = [str(i) for i, n in enumerate(self.shape) if isnan(n)]
        if unknown:
            body.append("<tr><td colspan=\"3\">Chunk sizes unknown along %s %s; "
                        "<code>x.compute_chunk_sizes()</code> computes them.</td></tr>"
                        % ("axis" if len(unknown) == 1 else "axes", ", ".join(unknown)))
        table = ("<table style=\"border-collapse: collapse;\"><thead><tr><td></td>"
                 "<th>Array</th><th>Chunk</th></tr></thead><tbody>%s</tbody></table>"
                 % "".join(body))
        try:
            grid = self.to_svg(size=config.get("array.svg.size", 120))
        except NotImplementedError:      # a 0-d array: no grid to draw
            return table
        return "<table><tr><td>%s</td><td>%s</td></tr></table>" % (table, grid)

    def to_svg(self, size=500):
        """The chunk grid drawn as an SVG document (a string), about ``size``
        pixels on its longest side; see ``cdask.array.svg``.  A 0-d array
        raises NotImplementedError, as in dask."""
        return svg(self._chunks, size=size)

    def __reduce__(self):
        return (Array, (self._layers, self.name, self._chunks, self._dtype))

    # ---- dask collection protocol ----------------------------------------
    def __dask_graph__(self):
        HANDED_LAYERS[self.name] = self
        tokenize_maps_for_dask()
        g = self._graph
        if g is None:
            layers = list(self._layers.values())
            if len(layers) == 1 and isinstance(layers[0], Graph):
                g = layers[0]
            else:
                g = Graph()
                for layer in layers:
                    g.update(layer_tasks(layer))
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
    __dask_scheduler__ = staticmethod(get)

    def __dask_postcompute__(self):
        return finalize, (self.ndim, self._dtype, self.shape)

    def __dask_postpersist__(self):
        return self._rebuild, ()

    def _rebuild(self, dsk, *args, rename=None):
        name = self.name
        if rename:
            name = rename.get(name, name)
        if self._maybe_masked():
            note_masked(name)
        return Array({name: future_layer(dsk)}, name, self._chunks, self._dtype)

    def _keys_flat(self):
        if not self._chunks:
            return [(self.name,)]
        return [(self.name,) + idx for idx in itertools.product(*map(range, self.numblocks))]

    # ---- computing --------------------------------------------------------

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
        return Array(with_layer(self._layers, name, layer), name, self._chunks, dtype)

    def copy(self):
        """Arrays are immutable: a copy shares the graph."""
        return Array(self._layers, self.name, self._chunks, self._dtype)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return transpose(self, axes or None)

    def _become(self, other):
        """Make this Array stand for ``other`` (``x[i] = v``, ``out=``): its
        graph, name, chunks and dtype."""
        self._layers = other._layers
        self.name = other.name
        self._chunks = other._chunks
        self._dtype = other._dtype
        self._graph = None
        self._shape = None


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
        return Array(with_layer(x._layers, name, layer), name, chunks, x.dtype)


def is_cdask_collection(x):
    return isinstance(x, Array)


def finalize(results, ndim, dtype, shape=None):
    """Assemble nested lists of blocks (``__dask_keys__`` nesting) into one
    preallocated array."""
    if ndim == 0:
        r = results
        while isinstance(r, list):
            r = r[0]
        return scalar_result(r)
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
    flat = []

    def leaves(node, depth):
        if depth == ndim:
            flat.append(node)
        else:
            for sub in node:
                leaves(sub, depth + 1)

    leaves(results, 0)
    out = new_block(tuple(sum(s) for s in sizes), dtype, flat)
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


def scalar_result(r):
    if isinstance(r, np.ndarray) and r.ndim == 0:
        return r[()]
    return r


def blockwise_simple(func, prefix, *arrays, dtype=None, chunks=None, args=(), token=None):
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
    return Array(with_layer(merge_layers(*arrays), name, layer), name, chunks, dtype)


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
        layer[(name,) + tuple(idx[a] for a in axes)] = (transpose_block, k, axes)
    chunks = tuple(x.chunks[a] for a in axes)
    return Array(with_layer(x._layers, name, layer), name, chunks, x.dtype)
