"""Overlapping blocks: ``overlap``, ``trim_internal``, ``map_overlap``.

``overlap(x, depth, boundary)`` gives every block ``depth`` extra elements on
each side along each axis with a positive depth, axis after axis (so corners
come along): the last ``depth`` elements of the block before it and the first
``depth`` of the block after it, sliced out of the neighbours and
concatenated.  A depth may be given per axis (tuple or dict), and per axis as
an asymmetric ``(before, after)`` pair (as dask, e.g. ``{0: (1, 2)}``): then
``before`` elements come from the block before and ``after`` from the block
after, and trimming cuts the same numbers off again.  (dask takes asymmetric
depths with boundary ``'none'`` only; cdask pads the edges as ``np.pad`` with
widths ``(before, after)`` does.)  At the outer edges of the array the
``boundary`` decides:

* ``'reflect'``: the edge elements mirrored, the edge element included
  (``np.pad``'s ``'symmetric'``);
* ``'periodic'``: the elements from the other end (``np.pad``'s ``'wrap'``);
* ``'nearest'``: the edge element repeated (``np.pad``'s ``'edge'``);
* ``'none'`` (the default, as ``None``): nothing is added at the edges;
* any other value: that constant (``np.pad``'s ``'constant'``).

Blocks shorter than the depth are first merged with their neighbours (one
rechunk), so each neighbour slice comes from a single block.

``map_overlap(func, *arrays, depth=..., boundary=..., trim=True, **kw)``
overlaps the arrays, runs :func:`cdask.map_blocks` on the overlapped blocks
and, with ``trim=True``, cuts the added elements off again (``drop_axis`` /
``new_axis`` go to ``map_blocks``; as dask, the trim then skips the dropped
axes and the new ones).
"""

import numbers

import numpy as np

from .chunk_types import concatenate_blocks
from .core import Array
from .creation import asarray
from .elemwise import unify_chunks_broadcast
from .mapping import map_blocks, normalize_new_axes
from .tokenize import tokenize
from .utils import isnan, with_layer

__all__ = ["map_overlap"]

_MODES = ("reflect", "periodic", "nearest", "none")


# ---------------------------------------------------------------------------
# task functions
# ---------------------------------------------------------------------------
def _index(ndim, axis, sl):
    return (slice(None),) * axis + (sl,)


def _slab(b, axis, start, stop):
    return b[_index(b.ndim, axis, slice(start, stop))]


def _flip_slab(b, axis, start, stop):
    return np.flip(b[_index(b.ndim, axis, slice(start, stop))], axis)


def _edge_slab(b, axis, which, depth):
    e = b[_index(b.ndim, axis, slice(0, 1) if which == 0 else slice(-1, None))]
    return np.repeat(e, depth, axis=axis)


def _const_slab(b, axis, depth, value):
    shape = list(b.shape)
    shape[axis] = depth
    return np.full(tuple(shape), value, dtype=b.dtype)


def _join(axis, parts):
    return concatenate_blocks(parts, axis=axis)


# ---------------------------------------------------------------------------
# argument normalisation
# ---------------------------------------------------------------------------
def _per_axis(value, ndim, what, default):
    if isinstance(value, dict):
        out = [default] * ndim
        for k, v in value.items():
            if not isinstance(k, (numbers.Integral, np.integer)) or not -ndim <= k < ndim:
                raise ValueError("%s: axis %r is out of range for an array with %d dimensions"
                                 % (what, k, ndim))
            out[int(k) % ndim] = v
        return out
    if isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError("%s has %d entries but the array has %d dimensions"
                             % (what, len(value), ndim))
        return list(value)
    return [value] * ndim


def _depth_int(d):
    if isinstance(d, bool) or not isinstance(d, (numbers.Integral, np.integer)):
        raise TypeError("depth must be an integer or a (before, after) pair of integers (or "
                        "a tuple/dict of them), got %r" % (d,))
    if d < 0:
        raise ValueError("depth must be non-negative, got %d" % d)
    return int(d)


def coerce_depth(ndim, depth):
    """depth (int, per-axis tuple, or dict; per axis an int or an asymmetric
    ``(before, after)`` pair) -> list of ``(before, after)`` pairs, one per
    axis."""
    out = []
    for d in _per_axis(0 if depth is None else depth, ndim, "depth", 0):
        if isinstance(d, (tuple, list)):
            if len(d) != 2:
                raise ValueError("an asymmetric depth is a (before, after) pair, got %r"
                                 % (d,))
            out.append((_depth_int(d[0]), _depth_int(d[1])))
        else:
            d = _depth_int(d)
            out.append((d, d))
    return out


def coerce_boundary(ndim, boundary):
    """boundary (mode or constant, per-axis tuple, or dict) -> list per axis."""
    out = []
    for b in _per_axis("none" if boundary is None else boundary, ndim, "boundary", "none"):
        if b is None:
            b = "none"
        if isinstance(b, str):
            if b not in _MODES:
                raise ValueError("boundary must be 'reflect', 'periodic', 'nearest', 'none' "
                                 "or a constant value, got %r" % (b,))
        elif not isinstance(b, (numbers.Number, np.generic)):
            raise TypeError("boundary must be 'reflect', 'periodic', 'nearest', 'none' or a "
                            "constant value, got %r" % (b,))
        out.append(b)
    return out


def _merge_small(chunks, depth):
    """Merge neighbouring blocks until each is at least ``depth`` long."""
    out = []
    acc = 0
    for c in chunks:
        acc += c
        if acc >= depth:
            out.append(acc)
            acc = 0
    if acc:
        if out:
            out[-1] += acc
        else:
            out.append(acc)
    return tuple(out)


def _prepare(x, depths, allow_rechunk=True):
    want = {}
    for ax, d in enumerate(depths):
        d = max(d)
        if d == 0:
            continue
        c = x.chunks[ax]
        if any(isnan(v) for v in c):
            raise ValueError("overlap along axis %d needs known chunk sizes; call "
                             "x.compute_chunk_sizes() first" % ax)
        n = sum(c)
        if d > n:
            raise ValueError("The overlapping depth %d is larger than your array %d "
                             "(axis %d)." % (d, n, ax))
        if len(c) > 1 and min(c) < d:
            if not allow_rechunk:
                raise ValueError("overlap: blocks along axis %d are shorter than the depth "
                                 "%d; rechunk or pass allow_rechunk=True" % (ax, d))
            want[ax] = _merge_small(c, d)
    return x.rechunk(want) if want else x


# ---------------------------------------------------------------------------
# overlap / trim
# ---------------------------------------------------------------------------
def overlap(x, depth, boundary=None, allow_rechunk=True):
    """Blocks of ``x`` extended by ``depth`` neighbouring elements on each side
    (see the module docstring for ``boundary``)."""
    x = asarray(x)
    depths = coerce_depth(x.ndim, depth)
    bounds = coerce_boundary(x.ndim, boundary)
    for ax, b in enumerate(bounds):
        if not isinstance(b, str):
            # the constant as np.pad stores it (NumPy's error for e.g. NaN into ints)
            cell = np.empty(1, dtype=x.dtype)
            cell[0] = b
            bounds[ax] = cell[0]
    x = _prepare(x, depths, allow_rechunk)
    for ax, d in enumerate(depths):
        if any(d):
            x = _overlap_axis(x, ax, d, bounds[ax])
    return x


def _overlap_axis(x, axis, depth, boundary):
    dl, dr = depth
    name = "overlap-" + tokenize(x.name, axis, depth, boundary)
    nb = x.numblocks[axis]
    chunks = list(x.chunks)
    new = []
    for i, c in enumerate(x.chunks[axis]):
        left = i > 0 or boundary != "none"
        right = i < nb - 1 or boundary != "none"
        new.append(c + dl * left + dr * right)
    chunks[axis] = tuple(new)
    layer = {}
    for k in x._keys_flat():
        idx = k[1:]
        i = idx[axis]

        def key(j):
            return (x.name,) + idx[:axis] + (j,) + idx[axis + 1:]

        parts = []
        if not dl:
            pass
        elif i > 0:
            parts.append((_slab, key(i - 1), axis, -dl, None))
        elif boundary == "reflect":
            parts.append((_flip_slab, key(0), axis, 0, dl))
        elif boundary == "periodic":
            parts.append((_slab, key(nb - 1), axis, -dl, None))
        elif boundary == "nearest":
            parts.append((_edge_slab, key(0), axis, 0, dl))
        elif boundary != "none":
            parts.append((_const_slab, k, axis, dl, boundary))
        parts.append(k)
        if not dr:
            pass
        elif i < nb - 1:
            parts.append((_slab, key(i + 1), axis, 0, dr))
        elif boundary == "reflect":
            parts.append((_flip_slab, key(nb - 1), axis, -dr, None))
        elif boundary == "periodic":
            parts.append((_slab, key(0), axis, 0, dr))
        elif boundary == "nearest":
            parts.append((_edge_slab, key(nb - 1), axis, 1, dr))
        elif boundary != "none":
            parts.append((_const_slab, k, axis, dr, boundary))
        layer[(name,) + idx] = (_join, axis, parts) if len(parts) > 1 else k
    return Array(with_layer(x._layers, name, layer), name, tuple(chunks), x.dtype)


def _trim_block(b, index):
    return b[index]


def trim_internal(x, axes, boundary=None):
    """Cut the overlap off each block: ``axes`` maps axis -> depth (or one
    depth for every axis); with boundary ``'none'`` the outer edges of the
    array had nothing added, so nothing is cut there."""
    x = asarray(x)
    depths = coerce_depth(x.ndim, axes)
    bounds = coerce_boundary(x.ndim, boundary)
    if not any(any(d) for d in depths):
        return x
    chunks = []
    cuts = []
    for ax, (c, (dl, dr)) in enumerate(zip(x.chunks, depths)):
        nb = len(c)
        per = []
        for i, n in enumerate(c):
            lo = dl if (i > 0 or bounds[ax] != "none") else 0
            hi = dr if (i < nb - 1 or bounds[ax] != "none") else 0
            if not isnan(n) and n < lo + hi:
                raise ValueError("trim: block %d along axis %d has %d elements, fewer than "
                                 "the %d to cut" % (i, ax, n, lo + hi))
            per.append((lo, hi))
        cuts.append(per)
        chunks.append(tuple(n - lo - hi for n, (lo, hi) in zip(c, per)))
    name = "trim-" + tokenize(x.name, depths, bounds)
    layer = {}
    for k in x._keys_flat():
        idx = k[1:]
        index = []
        for ax, i in enumerate(idx):
            lo, hi = cuts[ax][i]
            index.append(slice(lo, -hi if hi else None))
        layer[(name,) + idx] = (_trim_block, k, tuple(index))
    return Array(with_layer(x._layers, name, layer), name, tuple(chunks), x.dtype)


def trim_overlap(x, depth, boundary=None):
    """Alias of :func:`trim_internal` (dask's name)."""
    return trim_internal(x, depth, boundary)


def map_overlap(func, *args, depth=None, boundary=None, trim=True, align_arrays=True,
                allow_rechunk=True, **kwargs):
    """``func`` on blocks extended by ``depth`` neighbouring elements (``boundary``
    at the edges of the array), the extension trimmed off the results when
    ``trim`` (see the module docstring).  Keywords other than these go to
    :func:`cdask.map_blocks` (``dtype``, ``chunks``, ...) and to ``func``."""

    if isinstance(func, Array) and callable(args[0] if args else None):
        raise TypeError("map_overlap takes the function first: map_overlap(func, *arrays, "
                        "depth=..., boundary=...)")
    if not callable(func):
        raise TypeError("map_overlap: func must be callable, got %r" % (func,))
    positions = [k for k, a in enumerate(args) if isinstance(a, Array)]
    if not positions:
        raise ValueError("map_overlap needs at least one cdask Array argument")
    arrays = [args[k] for k in positions]
    nd = arrays[0].ndim
    for a in arrays[1:]:
        if a.ndim != nd:
            raise ValueError("map_overlap: all arrays must have the same number of "
                             "dimensions, got %d and %d" % (nd, a.ndim))
        if a.shape != arrays[0].shape:
            raise ValueError("map_overlap: arrays must have the same shape, got %s and %s"
                             % (arrays[0].shape, a.shape))
    depths = coerce_depth(nd, depth)
    bounds = coerce_boundary(nd, boundary)
    # common chunks first, then the same overlap on every array
    if len(arrays) > 1:
        if not align_arrays and any(a.chunks != arrays[0].chunks for a in arrays):
            raise ValueError("map_overlap: arrays have different chunks and "
                             "align_arrays=False")

        arrays, _ = unify_chunks_broadcast(arrays, arrays[0].shape)
    arrays = [_prepare(a, depths, allow_rechunk) for a in arrays]
    if len(arrays) > 1:
        arrays, _ = unify_chunks_broadcast(arrays, arrays[0].shape)
    over = [overlap(a, depths, bounds, allow_rechunk=False) for a in arrays]
    args = list(args)
    for k, a in zip(positions, over):
        args[k] = a
    r = map_blocks(func, *args, **kwargs)
    if trim:
        # as dask: dropped axes lose their depth, new axes have none

        drop = normalize_new_axes(kwargs.get("drop_axis"), nd, "drop_axis")
        depths = [d for ax, d in enumerate(depths) if ax not in drop]
        bounds = [b for ax, b in enumerate(bounds) if ax not in drop]
        for ax in normalize_new_axes(kwargs.get("new_axis"), r.ndim, "new_axis"):
            depths.insert(ax, (0, 0))
            bounds.insert(ax, "none")
        r = trim_internal(r, depths, bounds)
    return r


