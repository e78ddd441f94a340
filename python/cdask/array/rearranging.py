"""Rearranging elements: ``tile``, ``repeat``, ``rot90``, ``reshape_blockwise``
and ``shuffle``.

``tile`` joins copies of the array (its blocks, aliased, not copied);
``repeat`` maps every block to its repeated block (one task per block, the
chunks along the axis multiplied); ``rot90`` is flips and a transpose;
``reshape_blockwise`` reshapes every block on its own (dask's: the element
order differs from NumPy's reshape unless the blocks line up); ``shuffle``
regroups the positions along one axis into new blocks, each output block
gathering from only the input blocks its positions fall in.
"""

import itertools
import numbers
import operator

import numpy as np

from .. import config
from .core import Array, transpose
from .creation import asarray
from .joining import concatenate
from .reshape import flip, ravel
from .tokenize import tokenize
from .utils import isnan, normalize_axis_index, prod, unknown_chunks_error, with_layer

__all__ = ["tile", "repeat", "rot90", "reshape_blockwise", "shuffle"]


def _along(axis, ndim, index):
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


# ---------------------------------------------------------------------------
# tile
# ---------------------------------------------------------------------------
def tile(A, reps):
    """``np.tile``: ``A`` repeated ``reps`` times along each axis (leading
    axes added to whichever of the two has fewer)."""
    try:
        tup = tuple(reps)
    except TypeError:
        tup = (reps,)
    tup = tuple(operator.index(r) for r in tup)
    if any(r < 0 for r in tup):
        raise ValueError("negative dimensions are not allowed")
    c = asarray(A)
    if len(tup) > c.ndim:
        c = c[(None,) * (len(tup) - c.ndim)]
    tup = (1,) * (c.ndim - len(tup)) + tup
    for axis, r in enumerate(tup):
        if r == 0:
            c = c[_along(axis, c.ndim, slice(0, 0))]
        elif r > 1:
            c = concatenate([c] * r, axis=axis)
    return c


# ---------------------------------------------------------------------------
# repeat
# ---------------------------------------------------------------------------
def _repeat_block(b, repeats, axis):
    return np.repeat(b, repeats, axis=axis)


def repeat(a, repeats, axis=None):
    """``np.repeat``: each element repeated ``repeats`` times along ``axis``
    (None: of the flattened array).  ``repeats`` is an int or one count per
    element along the axis; every block becomes its repeated block."""
    a = asarray(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    axis = normalize_axis_index(axis, a.ndim)
    if isinstance(repeats, Array):
        raise NotImplementedError("repeat: repeats must be an int or a NumPy sequence, not a "
                                  "cdask Array (the output chunks depend on its values)")
    n = a.shape[axis]
    if isnan(n):
        raise unknown_chunks_error("repeat along an axis")
    n = int(n)
    # NumPy's own checks (casting, sign, broadcast) on an empty stand-in
    np.repeat(np.empty((n, 0)), repeats, axis=0)
    reps = np.asarray(repeats)
    if reps.ndim == 0 or reps.size == 1:
        r = int(reps.reshape(-1)[0]) if reps.size else 0
        if r == 1:
            return a
        per_block = [r] * len(a.chunks[axis])
        new_axis = tuple(c * r for c in a.chunks[axis])
    else:
        reps = reps.astype(np.intp)
        offs = np.concatenate([[0], np.cumsum(a.chunks[axis])]).astype(np.intp)
        per_block = [reps[offs[i]:offs[i + 1]] for i in range(len(a.chunks[axis]))]
        new_axis = tuple(int(p.sum()) for p in per_block)
    name = "repeat-" + tokenize(a.name, reps.tolist() if reps.ndim else int(reps), axis)
    layer = {}
    for key in a._keys_flat():
        layer[(name,) + key[1:]] = (_repeat_block, key, per_block[key[1 + axis]], axis)
    chunks = a.chunks[:axis] + (new_axis,) + a.chunks[axis + 1:]
    return Array(with_layer(a._layers, name, layer), name, chunks, a.dtype)


# ---------------------------------------------------------------------------
# rot90
# ---------------------------------------------------------------------------
def rot90(m, k=1, axes=(0, 1)):
    """``np.rot90``: rotate by 90 degrees ``k`` times in the plane of
    ``axes``, from the first axis towards the second."""
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    m = asarray(m)
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == m.ndim:
        raise ValueError("Axes must be different.")
    if not all(-m.ndim <= ax < m.ndim for ax in axes):
        raise ValueError("Axes=%s out of range for array of ndim=%d." % (axes, m.ndim))
    k = operator.index(k) % 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, axes[0]), axes[1])
    perm = list(range(m.ndim))
    a0, a1 = axes[0] % m.ndim, axes[1] % m.ndim
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return transpose(flip(m, axes[1]), perm)
    return flip(transpose(m, perm), axes[1])


# ---------------------------------------------------------------------------
# reshape_blockwise
# ---------------------------------------------------------------------------
def _reshape_block(b, shape):
    return np.reshape(b, shape)


def _target_shape(shape, size):
    if isinstance(shape, (numbers.Integral, np.integer)):
        shape = (shape,)
    shape = tuple(operator.index(s) for s in shape)
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise ValueError("can only specify one unknown dimension")
    if any(s < -1 for s in shape):
        raise ValueError("negative dimensions not allowed")
    if unknown:
        rest = prod(s for s in shape if s != -1)
        if rest == 0 or size % rest:
            raise ValueError("cannot reshape array of size %d into shape %s" % (size, shape))
        shape = tuple(size // rest if s == -1 else s for s in shape)
    if prod(shape) != size:
        raise ValueError("cannot reshape array of size %d into shape %s" % (size, shape))
    return shape


def _collapse_groups(ishape, oshape):
    """Input axes per output axis, where each output axis merges a run of
    consecutive input axes; None if the reshape is not such a collapse."""
    groups, i = [], 0
    for s in oshape:
        if i >= len(ishape):
            return None
        g, p = [i], ishape[i]
        i += 1
        while p < s and i < len(ishape):
            p *= ishape[i]
            g.append(i)
            i += 1
        if p != s:
            return None
        groups.append(g)
    if any(ishape[j] != 1 for j in range(i, len(ishape))):
        return None
    groups[-1].extend(range(i, len(ishape)))   # trailing axes of length 1
    return groups


def reshape_blockwise(x, shape, chunks=None):
    """dask's ``reshape_blockwise``: every block reshaped on its own.

    With fewer (or as many) output axes, each output axis merges a run of
    input axes and its blocks are those of the run's blocks in C order
    (``chunks`` must not be given); with more output axes, ``chunks`` must
    give the output chunks, block for block in C order with the input's."""
    x = asarray(x)
    if any(isnan(c) for cc in x.chunks for c in cc):
        raise unknown_chunks_error("reshape_blockwise")
    size = int(prod(x.shape))
    shape = _target_shape(shape, size)
    if shape == x.shape:
        return x
    name = "reshape-blockwise-" + tokenize(x.name, shape, chunks)
    in_idx = list(itertools.product(*map(range, x.numblocks)))
    in_shapes = list(itertools.product(*x.chunks))
    layer = {}
    if len(shape) > x.ndim:
        if chunks is None:
            raise TypeError("Need to specify chunks if expanding dimensions.")
        chunks = tuple(tuple(int(v) for v in c) for c in chunks)
        if len(chunks) != len(shape) or any(sum(c) != s for c, s in zip(chunks, shape)):
            raise ValueError("chunks %s do not add up to the shape %s" % (chunks, shape))
        out_idx = list(itertools.product(*map(range, map(len, chunks))))
        out_shapes = list(itertools.product(*chunks))
        if len(out_idx) != len(in_idx):
            raise ValueError("chunks give %d blocks, the input has %d"
                             % (len(out_idx), len(in_idx)))
        bad = [i for i, (a, b) in enumerate(zip(in_shapes, out_shapes)) if prod(a) != prod(b)]
        if bad:
            raise ValueError("Chunk sizes do not match for the following chunks: %s. The "
                             "corresponding chunksizes are: %s."
                             % (bad[:5], [(in_shapes[i], out_shapes[i]) for i in bad[:5]]))
        for ii, oi, os_ in zip(in_idx, out_idx, out_shapes):
            layer[(name,) + oi] = (_reshape_block, (x.name,) + ii, os_)
        return Array(with_layer(x._layers, name, layer), name, chunks, x.dtype)
    if chunks is not None:
        raise ValueError("Setting chunks is not allowed when reducing the number of "
                         "dimensions.")
    groups = _collapse_groups(x.shape, shape)
    if groups is None:
        raise NotImplementedError("reshape_blockwise only merges runs of consecutive axes "
                                  "(like (2, 3, 4) -> (6, 4)); %s -> %s is not one"
                                  % (x.shape, shape))
    out_chunks = []
    for g in groups:
        out_chunks.append(tuple(prod(p) for p in itertools.product(*[x.chunks[d] for d in g])))
    for ii in in_idx:
        oi, bshape = [], []
        for g in groups:
            flat = 0
            for d in g:
                flat = flat * x.numblocks[d] + ii[d]
            oi.append(flat)
            bshape.append(prod(x.chunks[d][ii[d]] for d in g))
        layer[(name,) + tuple(oi)] = (_reshape_block, (x.name,) + ii, tuple(bshape))
    return Array(with_layer(x._layers, name, layer), name, tuple(out_chunks), x.dtype)


# ---------------------------------------------------------------------------
# shuffle
# ---------------------------------------------------------------------------
def _gather_block(blocks, locs, inverse, axis):
    parts = [np.take(b, l, axis=axis) for b, l in zip(blocks, locs)]
    out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)
    return out if inverse is None else np.take(out, inverse, axis=axis)


def gather_axis(x, positions, axis, out_chunks, prefix="gather"):
    """``x`` with the positions ``positions`` (a 1-d intp array, in range)
    along ``axis``, cut into blocks of ``out_chunks``: each output block
    reads only the input blocks holding its positions."""
    offs = np.concatenate([[0], np.cumsum(x.chunks[axis])]).astype(np.intp)
    name = "%s-%s" % (prefix, tokenize(x.name, positions, axis, out_chunks))
    other = [range(n) for d, n in enumerate(x.numblocks) if d != axis]
    layer = {}
    start = 0
    for j, c in enumerate(out_chunks):
        piece = positions[start:start + c]
        start += c
        if piece.size == 0:
            src = [(0, piece)]
            inverse = None
        else:
            blk = np.searchsorted(offs, piece, side="right") - 1
            order = np.argsort(blk, kind="stable")
            ids, first = np.unique(blk[order], return_index=True)
            bounds = list(first) + [piece.size]
            src = [(int(b), piece[order[s:e]] - offs[b]) for b, s, e in
                   zip(ids, bounds, bounds[1:])]
            inverse = None if len(ids) == 1 else np.argsort(order, kind="stable")
        for oidx in itertools.product(*other):
            oidx = list(oidx)
            keys = [(x.name,) + tuple(oidx[:axis] + [b] + oidx[axis:]) for b, _ in src]
            layer[(name,) + tuple(oidx[:axis] + [j] + oidx[axis:])] = (
                _gather_block, keys, [l for _, l in src], inverse, axis)
    chunks = x.chunks[:axis] + (tuple(out_chunks),) + x.chunks[axis + 1:]
    return Array(with_layer(x._layers, name, layer), name, chunks, x.dtype)


def shuffle(x, indexer, axis, chunks="auto"):
    """dask's ``shuffle``: reorder ``axis`` by ``indexer``, a list of groups
    (lists) of positions; each group ends up within one output block, and
    neighbouring small groups share a block (up to the axis' mean block size
    times ``array.chunk-size-tolerance``, 1.25)."""
    x = asarray(x)
    if any(isnan(c) for cc in x.chunks for c in cc):
        raise ValueError("Shuffling only allowed with known chunk sizes; call "
                         "x.compute_chunk_sizes() first")
    if isinstance(axis, bool) or not isinstance(axis, (numbers.Integral, np.integer)):
        raise TypeError("axis must be an integer, got %r" % (axis,))
    axis = normalize_axis_index(axis, x.ndim)
    if chunks != "auto":
        raise NotImplementedError("shuffle: only chunks='auto' is supported")
    if not isinstance(indexer, list) or not all(isinstance(g, list) for g in indexer):
        raise ValueError("indexer must be a list of lists of positional indices")
    n = int(x.shape[axis])
    groups = []
    for g in indexer:
        g = np.asarray(g, dtype=np.intp) if g else np.zeros(0, np.intp)
        if g.size and (g.max() >= n or g.min() < -n):
            raise IndexError("Indexer contains out of bounds index. Dimension only has %d "
                             "elements." % n)
        groups.append(np.where(g < 0, g + n, g))
    ch = x.chunks[axis]
    flat = np.concatenate(groups) if groups else np.zeros(0, np.intp)
    if len(groups) == len(ch) and all(
            g.size == c and (g == np.arange(o, o + c)).all()
            for g, c, o in zip(groups, ch, np.cumsum((0,) + ch[:-1]))):
        return x
    tol = float(config.get("array.chunk-size-tolerance", 1.25))
    limit = int(n / max(len(ch), 1) * tol)
    sizes, cur = [], 0
    for g in groups:
        if cur and cur + g.size > limit:
            sizes.append(cur)
            cur = g.size
        else:
            cur += g.size
            if cur > limit / tol:
                sizes.append(cur)
                cur = 0
    if cur:
        sizes.append(cur)
    if not sizes:
        sizes = [0]
    return gather_axis(x, flat, axis, sizes, prefix="shuffle")

