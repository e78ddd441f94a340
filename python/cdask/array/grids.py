"""Coordinate grids: ``meshgrid``, ``indices``, ``fromfunction``.

``meshgrid`` lays its 1-d inputs along their own axes and broadcasts them
(no data is copied until a block is computed; each axis keeps the chunks of
the input laid along it).  ``indices`` and ``fromfunction`` make each block's
coordinates from the block's offsets, in the block's task: no coordinate
array exists outside the block that needs it.
"""

import itertools
import numbers
import operator

import numpy as np

from .chunks import chunk_offsets, normalize_chunks
from .core import Array
from .creation import asarray
from .dtypes import check_dtype
from .reshape import broadcast_to, expand_dims, ravel
from .tokenize import tokenize
from .utils import isnan

__all__ = ["meshgrid", "indices", "fromfunction"]


def meshgrid(*xi, sparse=False, indexing="xy", copy=True):
    """``np.meshgrid``: coordinate arrays from coordinate vectors (each input
    is flattened first).  ``indexing="xy"`` swaps the first two axes of the
    outputs (Cartesian), ``"ij"`` keeps them (matrix); ``sparse=True`` returns
    the length-1-broadcastable arrays.  ``copy`` is accepted for NumPy's
    signature: lazy results are never views of their inputs."""
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    xs = [ravel(asarray(x)) for x in xi]
    n = len(xs)
    if indexing == "xy" and n > 1:
        xs[0], xs[1] = xs[1], xs[0]
    out = []
    for i, x in enumerate(xs):
        axes = tuple(d for d in range(n) if d != i)
        out.append(expand_dims(x, axes) if axes else x)
    if not sparse:
        if any(isnan(c) for x in xs for c in x.chunks[0]):
            raise ValueError("meshgrid needs known chunk sizes to broadcast its inputs, but "
                             "one has unknown (nan) chunk sizes; call x.compute_chunk_sizes() "
                             "first, or pass sparse=True")
        shape = tuple(x.shape[0] for x in xs)
        chunks = tuple(x.chunks[0] for x in xs)
        out = [broadcast_to(o, shape, chunks=chunks) for o in out]
    if indexing == "xy" and n > 1:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def _dimensions(dimensions):
    if isinstance(dimensions, (numbers.Integral, np.integer)):
        dimensions = (dimensions,)
    dims = tuple(operator.index(d) for d in dimensions)
    if any(d < 0 for d in dims):
        raise ValueError("negative dimensions are not allowed")
    return dims


def _indices_block(axis, start, shape, dtype):
    n = len(shape)
    line = np.arange(start, start + shape[axis], dtype=dtype)
    line = line.reshape(tuple(shape[axis] if d == axis else 1 for d in range(n)))
    return np.broadcast_to(line, (1,) + tuple(shape)).copy()


def _arange_line(start, size, axis, ndim, dtype):
    line = np.arange(start, start + size, dtype=dtype)
    return line.reshape(tuple(size if d == axis else 1 for d in range(ndim)))


def indices(dimensions, dtype=int, chunks="auto", sparse=False):
    """``np.indices``: an array of shape ``(len(dimensions),) + dimensions``
    whose ``i``-th entry holds the index along axis ``i``.  ``chunks`` are
    the chunks of the grid (axis 0 has one block per dimension); with
    ``sparse=True``, a tuple of arrays of length 1 but along their own axis."""
    dims = _dimensions(dimensions)
    dtype = check_dtype(dtype)
    chunks = normalize_chunks(chunks, dims, dtype=dtype)
    if len(chunks) != len(dims):
        raise ValueError("Need same number of chunks as dimensions.")
    n = len(dims)
    if sparse:
        out = []
        for i in range(n):
            name = "indices-sparse-%d-%s" % (i, tokenize(dims, dtype, chunks, i))
            offs = chunk_offsets(chunks[i])
            ch = tuple(chunks[i] if d == i else (1,) for d in range(n))
            layer = {}
            for b, size in enumerate(chunks[i]):
                key = tuple(b if d == i else 0 for d in range(n))
                layer[(name,) + key] = (_arange_line, offs[b], size, i, n, dtype)
            out.append(Array({name: layer}, name, ch, dtype))
        return tuple(out)
    name = "indices-" + tokenize(dims, dtype, chunks)
    offs = [chunk_offsets(c) for c in chunks]
    layer = {}
    if n == 0:
        return Array({name: {(name, 0): (np.zeros, (0,), dtype)}}, name, ((0,),), dtype)
    for i in range(n):
        for idx in itertools.product(*[range(len(c)) for c in chunks]):
            shape = tuple(chunks[d][idx[d]] for d in range(n))
            layer[(name, i) + idx] = (_indices_block, i, offs[i][idx[i]], shape, dtype)
    return Array({name: layer}, name, ((1,) * n,) + chunks, dtype)


class _FromFunctionBlock:
    """The task callable of ``fromfunction``: ``func`` of the block's
    coordinates, broadcast to the block's shape and cast to the dtype found
    when the graph was built."""

    __slots__ = ("func", "kwargs", "coord_dtype", "dtype")

    def __init__(self, func, kwargs, coord_dtype, dtype):
        self.func = func
        self.kwargs = kwargs
        self.coord_dtype = coord_dtype
        self.dtype = dtype

    def __reduce__(self):
        return (_FromFunctionBlock, (self.func, self.kwargs, self.coord_dtype, self.dtype))

    @property
    def __name__(self):
        return getattr(self.func, "__name__", "fromfunction")

    def __call__(self, starts, shape):
        n = len(shape)
        coords = [np.broadcast_to(_arange_line(s, shape[d], d, n, self.coord_dtype),
                                  shape).copy() for d, s in enumerate(starts)]
        r = np.asarray(self.func(*coords, **self.kwargs))
        if r.shape != tuple(shape):
            r = np.broadcast_to(r, shape)
        return np.array(r, dtype=self.dtype, copy=True) if r.dtype != self.dtype or \
            not r.flags.writeable else r


def _result_dtype(func, n, coord_dtype, kwargs):
    # dask infers the dtype from empty coordinates; a function that cannot
    # take them gets one element per axis
    for size in (0, 1):
        try:
            with np.errstate(all="ignore"):
                coords = [np.zeros((size,) * n, dtype=coord_dtype) for _ in range(n)]
                return np.asarray(func(*coords, **kwargs)).dtype
        except Exception:
            if size == 1:
                raise
    raise AssertionError("unreachable")


def fromfunction(func, chunks="auto", shape=None, dtype=None, **kwargs):
    """``np.fromfunction``: ``func(*coordinates, **kwargs)`` over the grid of
    ``shape``, one call per block with that block's coordinates (of ``dtype``,
    float by default, as NumPy).  The result's dtype is what ``func`` returns
    for coordinates of that dtype."""
    if shape is None:
        raise TypeError("fromfunction() needs shape=, the shape of the grid")
    if not callable(func):
        raise TypeError("fromfunction: func must be callable, got %s" % type(func).__name__)
    dims = _dimensions(shape)
    coord_dtype = check_dtype(float if dtype is None else dtype)
    out_dtype = check_dtype(_result_dtype(func, len(dims), coord_dtype, kwargs))
    chunks = normalize_chunks(chunks, dims, dtype=coord_dtype)
    offs = [chunk_offsets(c) for c in chunks]
    block = _FromFunctionBlock(func, kwargs, coord_dtype, out_dtype)
    name = "fromfunction-%s" % tokenize(func, id(func), sorted(kwargs.items()), dims,
                                        coord_dtype, chunks)
    layer = {}
    for idx in itertools.product(*[range(len(c)) for c in chunks]):
        starts = tuple(offs[d][idx[d]] for d in range(len(dims)))
        bshape = tuple(chunks[d][idx[d]] for d in range(len(dims)))
        layer[(name,) + idx] = (block, starts, bshape)
    if not dims:
        layer = {(name,): (block, (), ())}
    return Array({name: layer}, name, chunks, out_dtype)
