"""Advanced indexing: integer arrays along any axis, boolean arrays along
axes, several integer arrays (NumPy's broadcasting rules and result order),
``Array.vindex`` (point-wise selection) and lazy ``__setitem__``.

Plan of ``x[index]`` when the index holds arrays:

* the index is parsed into one entry per axis (plus ``None``): slices, ints,
  and integer arrays (NumPy boolean arrays become their ``nonzero()``
  integer arrays; 0-d integer arrays are ints);
* the basic part (slices, ints, ``None``) is applied first, by
  ``slicing.basic_getitem`` (only touched blocks, getter tasks composed);
* one integer array: a take along its axis (``_take_nd``): each output block
  takes, from each input block its indices fall in, all of them at once and
  puts them in place, so only the touched blocks are read; an n-d index array
  gives n axes;
* several integer arrays (or one with ints on non-adjacent axes): the
  point-wise gather of ``vindex`` (broadcast dims first), then the broadcast
  dims are moved where NumPy puts them (in place of the advanced indices when
  these are adjacent in the index, else first);
* a 1-d boolean cdask Array on one axis: ``np.compress`` per block, unknown
  (nan) chunk sizes along that axis;
* one integer cdask Array (any ndim) among basic indices: a lazy take
  (``_take_dask``): per (index block, x block) a part task takes the
  elements whose indices fall in that x block, and one task per output
  block scatters its parts into place (the output has the index's chunks;
  out-of-range values raise IndexError when computed).

Assignment (``setitem``): basic indices map each touched block to the piece
of the value it gets (a cdask value is broadcast and rechunked to the
selection's blocks); boolean masks of the array's shape assign per block (a
NumPy mask takes a scalar or NumPy's 1-d value of the mask's count, a cdask
mask scalars only, as dask); integer/boolean array indices find the selected
coordinates with NumPy itself and assign point by point per touched block
(a cdask value is gathered point-wise in block order and rechunked so that
each touched block's task gets one block of its own values); ``x.vindex[i]
= v`` assigns the points ``x.vindex[i]`` reads, the same way.  Untouched
blocks stay the old ones.
"""

import itertools
import math
import numbers

import numpy as np

from .chunk_types import new_block
from .chunks import chunk_offsets
from .core import Array
from .creation import from_array
from .layers import Blockwise
from .rechunk import rechunk
from .reshape import broadcast_to, moveaxis
from .slicing import basic_blocks, basic_getitem, mask_band, mask_block, normalize_index
from .tokenize import tokenize
from .utils import is_scalar, isnan, merge_layers, with_layer

__all__ = ["getitem_advanced", "vindex", "setitem", "has_advanced"]


def _is_int(i):
    return isinstance(i, (numbers.Integral, np.integer)) and not isinstance(i, (bool, np.bool_))


def _is_array_like(i):
    return isinstance(i, (Array, list, np.ndarray)) or (
        isinstance(i, np.generic) and i.dtype == bool) or isinstance(i, (bool, np.bool_))


def has_advanced(index):
    if not isinstance(index, tuple):
        index = (index,)
    return any(_is_array_like(i) for i in index)


def _oob(i, axis, n):
    return IndexError("index %d is out of bounds for axis %d with size %d" % (i, axis, n))


def _known_axis(x, axis):
    if any(isnan(c) for c in x.chunks[axis]):
        raise ValueError("cannot index axis %d, whose chunk sizes are unknown (nan), with an "
                         "array; call x.compute_chunk_sizes() first" % axis)


def _parse(index, x, allow_none=True, allow_dask_mask=True):
    """One entry per input axis (plus Nones): ("none",), ("slice", s),
    ("int", i) with i made non-negative, ("arr", intp array, non-negative),
    ("mask", cdask bool Array of one axis)."""
    if not isinstance(index, tuple):
        index = (index,)
    items = []
    for i in index:
        if i is None or i is Ellipsis or isinstance(i, slice):
            items.append(i)
        elif isinstance(i, Array):
            if i.dtype != bool and i.dtype.kind not in "iu":
                raise IndexError("arrays used as indices must be of integer (or boolean) "
                                 "type, got a cdask Array of dtype %s" % i.dtype)
            if not allow_dask_mask:
                raise NotImplementedError("cdask Arrays are not supported as indices here "
                                          "(vindex); compute the index first")
            items.append(i)
        elif _is_int(i):
            items.append(int(i))
        else:
            try:
                a = np.asarray(i)
            except Exception:
                a = None
            if a is None or a.dtype == object and not isinstance(i, (list, np.ndarray)):
                raise IndexError("only integers, slices (`:`), ellipsis (`...`), "
                                 "numpy.newaxis (`None`) and integer or boolean arrays are "
                                 "valid indices")
            if a.dtype == bool:
                items.append(a)
            elif isinstance(i, list) and a.size == 0:
                items.append(a.astype(np.intp))
            elif np.issubdtype(a.dtype, np.integer):
                items.append(int(a) if a.ndim == 0 else a)
            else:
                raise IndexError("arrays used as indices must be of integer (or boolean) type")
    n_ell = sum(1 for i in items if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")

    def consumed(i):
        if i is None or i is Ellipsis:
            return 0
        if isinstance(i, np.ndarray) and i.dtype == bool:
            return i.ndim
        if isinstance(i, Array):
            return i.ndim if i.dtype == bool else 1
        return 1

    n_real = sum(consumed(i) for i in items)
    if n_real > x.ndim:
        raise IndexError("too many indices for array: array is %d-dimensional, but %d were "
                         "indexed" % (x.ndim, n_real))
    out = []
    ax = 0
    for i in items:
        if i is Ellipsis:
            for _ in range(x.ndim - n_real):
                out.append(("slice", slice(None)))
                ax += 1
        elif i is None:
            if not allow_none:
                raise IndexError("vindex does not support indexing with None (np.newaxis)")
            out.append(("none",))
        elif isinstance(i, slice):
            out.append(("slice", i))
            ax += 1
        elif isinstance(i, Array) and i.dtype != bool:
            _known_axis(x, ax)
            out.append(("darr", i))
            ax += 1
        elif isinstance(i, Array):
            if i.ndim != 1:
                raise NotImplementedError("a boolean cdask Array index must cover all axes of "
                                          "the array or be 1-d; got %d-d" % i.ndim)
            n, m = x.shape[ax], i.shape[0]
            if not (isnan(n) or isnan(m)) and n != m:
                raise IndexError("boolean index did not match indexed array along axis %d; "
                                 "size of axis is %d but size of corresponding boolean axis "
                                 "is %d" % (ax, n, m))
            out.append(("mask", i))
            ax += 1
        elif isinstance(i, np.ndarray) and i.dtype == bool:
            if i.ndim == 0:
                raise NotImplementedError("0-d boolean indices are not supported")
            for k in range(i.ndim):
                _known_axis(x, ax + k)
                if i.shape[k] != x.shape[ax + k]:
                    raise IndexError("boolean index did not match indexed array along axis "
                                     "%d; size of axis is %d but size of corresponding "
                                     "boolean axis is %d" % (ax + k, x.shape[ax + k],
                                                             i.shape[k]))
            for k, nz in enumerate(np.nonzero(i)):
                out.append(("arr", nz.astype(np.intp), ax))
                ax += 1
        elif isinstance(i, int):
            n = x.shape[ax]
            if isnan(n):
                raise ValueError("cannot index axis %d, whose chunk sizes are unknown (nan), "
                                 "with an integer; call x.compute_chunk_sizes() first" % ax)
            if not -n <= i < n:
                raise _oob(i, ax, n)
            out.append(("int", i % n))
            ax += 1
        else:
            _known_axis(x, ax)
            out.append(("arr", i.astype(np.intp, copy=False), ax))
            ax += 1
    while ax < x.ndim:
        out.append(("slice", slice(None)))
        ax += 1
    # bounds are checked on the broadcast points, as NumPy does: an empty
    # broadcast selects nothing, whatever the values
    arrs = [e[1] for e in out if e[0] == "arr"]
    if not arrs:
        return out
    empty = 0 in _broadcast(arrs)
    res = []
    for e in out:
        if e[0] == "arr" and len(e) == 3:
            a, d = e[1], e[2]
            n = x.shape[d]
            if empty:
                a = np.zeros(a.shape, dtype=np.intp)
            elif a.size:
                bad = (a >= n) | (a < -n)
                if bad.any():
                    raise _oob(int(a[bad].flat[0]), d, n)
                a = np.where(a < 0, a + n, a)
            e = ("arr", a)
        res.append(e)
    return res


def _broadcast(arrays):
    try:
        return np.broadcast_shapes(*[a.shape for a in arrays])
    except ValueError:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together "
                         "with shapes " + " ".join(str(a.shape) for a in arrays)) from None


def _basic_of(x, entries):
    """Apply the basic part of parsed entries (arrays and masks replaced by
    full slices).  Returns the array and, per entry, its output axis (None
    for ints)."""

    idx = []
    axes = []
    pos = 0
    for e in entries:
        if e[0] == "none":
            idx.append(None)
            axes.append(pos)
            pos += 1
        elif e[0] == "int":
            idx.append(e[1])
            axes.append(None)
        elif e[0] == "slice":
            idx.append(e[1])
            axes.append(pos)
            pos += 1
        else:
            idx.append(slice(None))
            axes.append(pos)
            pos += 1
    return basic_getitem(x, tuple(idx)), axes


def getitem_advanced(x, index):
    """``x[index]`` for an index holding integer or boolean arrays."""
    entries = _parse(index, x)
    kinds = [e[0] for e in entries]
    if "mask" in kinds:
        if kinds.count("mask") > 1 or "arr" in kinds or "darr" in kinds:
            raise NotImplementedError("cdask supports one boolean cdask Array among other "
                                      "basic indices; compute the mask to combine it with "
                                      "integer arrays")
    adv = [k for k, e in enumerate(entries) if e[0] in ("arr", "mask", "int", "darr")]
    n_arr = sum(1 for e in entries if e[0] in ("arr", "mask", "darr"))
    if n_arr == 0:
        return basic_getitem(x, tuple(None if e[0] == "none" else e[1] for e in entries))
    contiguous = adv == list(range(adv[0], adv[-1] + 1))
    y, axes = _basic_of(x, entries)
    arr_pos = [k for k, e in enumerate(entries) if e[0] in ("arr", "mask", "darr")]
    first_out = sum(1 for e in entries[:adv[0]] if e[0] in ("none", "slice"))
    if n_arr == 1:
        k = arr_pos[0]
        e = entries[k]
        if e[0] == "mask":
            res = _compress_axis(y, e[1], axes[k])
            nb = 1
        elif e[0] == "darr":
            res = _take_dask(y, e[1], axes[k],
                             sum(1 for f in entries[:k] if f[0] != "none"))
            nb = e[1].ndim
        else:
            res = _take_nd(y, e[1], axes[k])
            nb = e[1].ndim
        if not contiguous and axes[k] != 0 and nb:
            src = list(range(axes[k], axes[k] + nb))
            res = moveaxis(res, src, list(range(nb)))
        return res
    arrays = [entries[k][1] for k in arr_pos]
    shape = _broadcast(arrays)
    if any(isinstance(a, Array) for a in arrays):
        res = _points_lazy(y, [axes[k] for k in arr_pos], arrays, shape)
    else:
        res = _points(y, [axes[k] for k in arr_pos], arrays, shape)
    nb = len(shape)
    if contiguous and first_out and nb:
        res = moveaxis(res, list(range(nb)), list(range(first_out, first_out + nb)))
    return res


# ---------------------------------------------------------------------------
# one integer array along one axis

def _take_block(b, ind, axis):
    """``np.take(b, ind, axis)``; a masked block by indexing, which keeps
    its fill value (np.take's result has the default one)."""
    if isinstance(b, np.ma.MaskedArray):
        return b[(slice(None),) * axis + (ind,)]
    return np.take(b, ind, axis=axis)


def _take_groups(blocks, locs, positions, axis, shape):
    """Gather along ``axis``: ``locs[k]`` are indices into ``blocks[k]``,
    ``positions[k]`` where they go in the output (None: all of it, in
    order); the axis is then reshaped to ``shape``."""
    if len(blocks) == 1 and positions[0] is None:
        out = _take_block(blocks[0], locs[0], axis)
    else:
        b0 = blocks[0]
        n = sum(len(l) for l in locs)
        out = new_block(b0.shape[:axis] + (n,) + b0.shape[axis + 1:], b0.dtype, blocks)
        lead = (slice(None),) * axis
        for b, l, pos in zip(blocks, locs, positions):
            out[lead + (pos,)] = np.take(b, l, axis=axis)
    return out.reshape(out.shape[:axis] + tuple(shape) + out.shape[axis + 1:])


def _row_groups(shape, target):
    """Split the first axis of an index shape into groups whose size
    (rows x inner) is about ``target`` points; returns the row counts."""
    if not shape:
        return [None]
    rows = shape[0]
    inner = 1
    for s in shape[1:]:
        inner *= s
    per = max(1, target // max(inner, 1))
    if rows == 0:
        return [0]
    return [min(per, rows - s) for s in range(0, rows, per)]


def _block_runs(ind, offs, target):
    """Output blocks of a sorted 1-d index that follow x's blocks: one per run
    of indices falling in one block of x, when the runs are long (a quarter
    of a block or more on average: a groupby's days of one month); else None.
    Each output block then reads one block of x, so the consumers of a block
    that several selections share (the days of two months) run as soon as it
    is read, instead of holding it until the other selection's turn."""
    if ind.ndim != 1 or ind.size < 2 or np.any(ind[1:] < ind[:-1]):
        return None
    blk = np.searchsorted(offs, ind, side="right") - 1
    cuts = np.flatnonzero(blk[1:] != blk[:-1]) + 1
    if ind.size < (len(cuts) + 1) * max(target // 4, 1):
        return None
    return np.diff(np.concatenate([[0], cuts, [ind.size]])).tolist()


def _take_nd(x, ind, axis):
    """``x`` indexed by an integer array (non-negative, in range) along one
    axis: the axis is replaced by ``ind.shape``; only blocks holding selected
    elements are read."""
    ch = x.chunks[axis]
    offs = np.array(chunk_offsets(ch))
    target = max(max(ch) if ch else 1, 1)
    groups = _block_runs(ind, offs, target) or _row_groups(ind.shape, target)
    flat = ind.ravel()
    inner = int(np.prod(ind.shape[1:], dtype=np.int64)) if ind.ndim else 1
    name = "take-" + tokenize(x.name, ind, axis)
    layer = {}
    other = [range(len(c)) for i, c in enumerate(x.chunks) if i != axis]
    # a non-empty block to take empty selections from
    nonempty = [i for i, c in enumerate(ch) if c > 0]
    empty_src = nonempty[0] if nonempty else 0
    start = 0
    for j, rows in enumerate(groups):
        piece = flat[start * inner:(start + rows) * inner]
        start += rows
        pshape = (rows,) + ind.shape[1:]
        if piece.size:
            blk = np.searchsorted(offs, piece, side="right") - 1
            order = np.argsort(blk, kind="stable")
            ids, starts = np.unique(blk[order], return_index=True)
            bounds = list(starts) + [len(order)]
            runs = []
            for b, s0, s1 in zip(ids, bounds, bounds[1:]):
                pos = order[s0:s1]
                runs.append((int(b), piece[pos] - offs[b], None if len(ids) == 1 else pos))
        else:
            runs = [(empty_src, np.zeros(0, dtype=np.intp), None)]
        for oidx in itertools.product(*other):
            oidx = list(oidx)
            keys = [(x.name,) + tuple(oidx[:axis] + [r[0]] + oidx[axis:]) for r in runs]
            okey = (name,) + tuple(oidx[:axis] + [j] + [0] * (ind.ndim - 1) + oidx[axis:])
            layer[okey] = (_take_groups, keys, [r[1] for r in runs], [r[2] for r in runs],
                           axis, pshape)
    ind_chunks = [tuple(groups)] + [(s,) for s in ind.shape[1:]]
    chunks = tuple(x.chunks[:axis]) + tuple(ind_chunks) + tuple(x.chunks[axis + 1:])
    return Array(with_layer(x._layers, name, layer), name, chunks, x.dtype)


# ---------------------------------------------------------------------------
# one integer cdask Array along one axis
#
# Its values are not known when the graph is built, so every block of the
# index may draw from every block of x along the axis.  The plan (as dask's):
# one "part" task per (index block, x block along the axis, block of x's
# other axes) takes from that one x block the elements whose indices fall in
# it (in index order; a 1-d piece as long as the number of such indices);
# then one task per output block scatters the parts of its index block into
# place.  No task holds more than one x block plus one output block (and its
# parts, which together are one output block); out-of-range indices are
# ignored by the parts and raise IndexError in the scatter.

def _take_norm(ind, n):
    ind = np.asarray(ind)
    if ind.dtype.kind not in "iu":
        raise IndexError("arrays used as indices must be of integer (or boolean) type")
    return np.where(ind < 0, ind + n, ind).astype(np.intp, copy=False).ravel()


def _take_part(block, ind, lo, n, axis):
    sel = _take_norm(ind, n)
    hit = (sel >= lo) & (sel < lo + block.shape[axis])
    return _take_block(block, sel[hit] - lo, axis)


def _take_scatter(ind, parts, los, his, n, axis, err_axis):
    ind = np.asarray(ind)
    if ind.size:
        bad = (ind < -n) | (ind >= n)
        if bad.any():
            raise _oob(int(ind[bad].flat[0]), err_axis, n)
    sel = _take_norm(ind, n)
    p0 = parts[0]
    out = new_block(p0.shape[:axis] + (sel.size,) + p0.shape[axis + 1:], p0.dtype, parts)
    lead = (slice(None),) * axis
    for p, lo, hi in zip(parts, los, his):
        if p.shape[axis]:
            out[lead + (np.flatnonzero((sel >= lo) & (sel < hi)),)] = p
    return out.reshape(out.shape[:axis] + ind.shape + out.shape[axis + 1:])


def _take_dask(x, ind, axis, err_axis=None):
    """``x`` indexed along ``axis`` by an integer cdask Array ``ind`` (any
    ndim; negative values count from the end): the axis is replaced by
    ``ind``'s axes, with ``ind``'s chunks.  ``err_axis``: the axis named in
    the IndexError of an out-of-range index."""
    ch = x.chunks[axis]
    n = x.shape[axis]
    offs = chunk_offsets(ch)
    token = tokenize(x.name, ind.name, axis)
    pname = "take-part-" + token
    name = "take-" + token
    part_layer, layer = {}, {}
    other = [range(len(c)) for d, c in enumerate(x.chunks) if d != axis]
    xb = range(len(ch)) if ch else [0]
    for iidx in itertools.product(*map(range, ind.numblocks)):
        ikey = (ind.name,) + iidx
        for oidx in itertools.product(*other):
            oidx = list(oidx)
            pkeys = []
            for b in xb:
                xkey = (x.name,) + tuple(oidx[:axis] + [b] + oidx[axis:])
                pkey = (pname,) + iidx + tuple(oidx[:axis] + [b] + oidx[axis:])
                part_layer[pkey] = (_take_part, xkey, ikey, offs[b], n, axis)
                pkeys.append(pkey)
            okey = (name,) + tuple(oidx[:axis]) + iidx + tuple(oidx[axis:])
            layer[okey] = (_take_scatter, ikey, pkeys, [offs[b] for b in xb],
                           [offs[b + 1] for b in xb], n, axis,
                           axis if err_axis is None else err_axis)
    chunks = tuple(x.chunks[:axis]) + tuple(ind.chunks) + tuple(x.chunks[axis + 1:])
    layers = with_layer(merge_layers(x, ind), pname, part_layer)
    return Array(with_layer(layers, name, layer), name, chunks, x.dtype)


def _compress_block(block, mblock, axis):
    return np.compress(np.asarray(mblock, dtype=bool), block, axis=axis)


def _compress_axis(x, mask, axis):
    """``x`` with a 1-d boolean cdask Array selecting along ``axis``: unknown
    (nan) chunk sizes along that axis."""

    _known_axis(x, axis)
    if any(isnan(c) for c in mask.chunks[0]):
        raise ValueError("a boolean index of unknown chunk sizes cannot select along an "
                         "axis; call compute_chunk_sizes() on it first")
    if mask.chunks[0] != x.chunks[axis]:
        mask = rechunk(mask, (x.chunks[axis],))
    name = "getitem-compress-" + tokenize(x.name, mask.name, axis)
    layer = {}
    for idx in itertools.product(*map(range, x.numblocks)):
        layer[(name,) + idx] = (_compress_block, (x.name,) + idx, (mask.name, idx[axis]),
                                axis)
    chunks = tuple((np.nan,) * len(c) if d == axis else c for d, c in enumerate(x.chunks))
    chunks = tuple(tuple(float(v) if isnan(v) else v for v in c) for c in chunks)
    return Array(with_layer(merge_layers(x, mask), name, layer), name, chunks, x.dtype)


# ---------------------------------------------------------------------------
# point-wise selection (vindex)

def _points_block(out_shape, npts, dtype, blocks, locs, positions):
    """One output block of a point-wise gather (``npts``: number of points,
    number of leading point axes of ``out_shape``): ``blocks`` have their
    indexed axes first; ``locs[i]`` is a tuple of coordinate arrays into
    ``blocks[i]`` and ``positions[i]`` where its points go (flat order)."""
    rest = tuple(out_shape[npts[1]:])
    flat = new_block((npts[0],) + rest, dtype, blocks)
    for b, loc, pos in zip(blocks, locs, positions):
        flat[pos] = b[loc]
    return flat.reshape(out_shape)


def _moved_block(block, axes):
    return np.moveaxis(block, axes, list(range(len(axes))))


def _points_lazy(x, axes, arrays, shape):
    """``_points`` where some index arrays are cdask Arrays: the indexed axes
    moved first and merged into one, read at one flat integer Array (the
    broadcast indices combined as ``np.ravel_multi_index`` does); an index
    out of bounds makes its flat index out of bounds, so the take raises
    IndexError when computed."""
    from .reshape import reshape

    for ax in axes:
        _known_axis(x, ax)
    sizes = [int(x.shape[a]) for a in axes]
    rest = tuple(x.shape[d] for d in range(x.ndim) if d not in axes)
    total = int(np.prod(sizes, dtype=np.int64))
    y = reshape(moveaxis(x, axes, list(range(len(axes)))), (total,) + rest)
    flat, bad, stride = 0, False, total
    for a, n in zip(arrays, sizes):
        stride //= max(n, 1)
        a = a if isinstance(a, Array) else from_array(np.asarray(a))
        a = a.astype(np.int64) + (a < 0) * n
        bad = bad | (a < 0) | (a >= n)
        flat = flat + a * stride
    flat = broadcast_to(flat * (1 - bad) + bad * total, shape)
    return getitem_advanced(y, (flat,) + (slice(None),) * len(rest))


def _points(x, axes, arrays, shape):
    """Gather the points ``x[..., a0[p], ..., a1[p], ...]`` (arrays at
    ``axes``, non-negative, broadcast to ``shape``); result axes: ``shape``
    then x's other axes in order."""
    for ax in axes:
        _known_axis(x, ax)
    arrays = [np.broadcast_to(a, shape).ravel() for a in arrays]
    k = len(axes)
    rest_axes = [d for d in range(x.ndim) if d not in axes]
    offs = [np.array(chunk_offsets(x.chunks[a])) for a in axes]
    npts = arrays[0].size
    if npts:
        blk = [np.searchsorted(o, a, side="right") - 1 for o, a in zip(offs, arrays)]
        loc = [a - o[b] for a, o, b in zip(arrays, offs, blk)]
        # one id per touched block combination
        nbs = [len(x.chunks[a]) for a in axes]
        bid = np.ravel_multi_index(blk, nbs)
    target = 1
    for a in axes:
        target *= max(max(x.chunks[a]) if x.chunks[a] else 1, 1)
    groups = _row_groups(shape, target)
    inner = int(np.prod(shape[1:], dtype=np.int64)) if shape else 1
    name = "vindex-" + tokenize(x.name, axes, arrays, shape)
    moved = "vindex-moved-" + tokenize(x.name, axes)
    layers = x._layers
    moved_layer = {}
    layer = {}
    rest_ranges = [range(len(x.chunks[d])) for d in rest_axes]
    leading = list(axes) == list(range(k))     # no axes to move in the blocks
    start = 0
    for j, rows in enumerate(groups):
        n = 1 if rows is None else rows * inner
        lo, hi = start, start + n
        start = hi
        bshape = () if rows is None else (rows,) + tuple(shape[1:])
        entries = []
        if hi > lo:
            sel = bid[lo:hi]
            order = np.argsort(sel, kind="stable")
            ids, starts = np.unique(sel[order], return_index=True)
            bounds = list(starts) + [len(order)]
            for b, s0, s1 in zip(ids, bounds, bounds[1:]):
                pos = order[s0:s1]
                coords = np.unravel_index(int(b), nbs)
                entries.append((tuple(int(c) for c in coords),
                                tuple(l[lo:hi][pos] for l in loc), pos))
        oprefix = (j,) + (0,) * (len(shape) - 1) if shape else ()
        for ridx in itertools.product(*rest_ranges):
            rshape = tuple(x.chunks[d][r] for d, r in zip(rest_axes, ridx))
            keys, locs, poss = [], [], []
            for coords, lc, pos in entries:
                full = [0] * x.ndim
                for a, c in zip(axes, coords):
                    full[a] = c
                for d, r in zip(rest_axes, ridx):
                    full[d] = r
                ikey = (x.name,) + tuple(full)
                if leading:
                    mkey = ikey
                else:
                    mkey = (moved,) + tuple(full)
                    if mkey not in moved_layer:
                        moved_layer[mkey] = (_moved_block, ikey, list(axes))
                keys.append(mkey)
                locs.append(lc)
                poss.append(pos)
            layer[(name,) + oprefix + ridx] = (_points_block, bshape + rshape,
                                               (n, len(bshape)), x.dtype, keys, locs, poss)
    out_chunks = []
    if shape:
        out_chunks.append(tuple(groups))
        out_chunks.extend((s,) for s in shape[1:])
    out_chunks.extend(x.chunks[d] for d in rest_axes)
    if moved_layer:
        layers = with_layer(layers, moved, moved_layer)
    layers = with_layer(layers, name, layer)
    return Array(layers, name, tuple(out_chunks), x.dtype)


def vindex(x, index):
    """``x.vindex[index]``: integer arrays (and ints) are broadcast together
    and select points; the result's axes are the broadcast shape followed by
    the axes indexed with slices, in order."""
    if not isinstance(index, tuple):
        index = (index,)
    if any(isinstance(i, Array) for i in index):
        return _vindex_lazy(x, index)
    entries = _parse(index, x, allow_none=False, allow_dask_mask=False)
    arr_k = [k for k, e in enumerate(entries) if e[0] in ("arr", "int")]
    if not any(e[0] == "arr" for e in entries):
        return basic_getitem(x, tuple(e[1] for e in entries))
    arrays = [np.asarray(entries[k][1], dtype=np.intp) for k in arr_k]
    shape = _broadcast(arrays)
    y, _ = _basic_of(x, [e if e[0] == "slice" else ("arr",) for e in entries])
    return _points(y, arr_k, arrays, shape)


def _vindex_lazy(x, index):
    """``x.vindex[index]`` with one integer cdask Array among slices and ints
    (xarray's ``idxmin``/``idxmax`` pick coordinates by a lazy ``argmin``):
    the lazy take of ``x[index]``, with the index's axes moved first (vindex's
    order).  Other mixes need the indices computed first."""
    lazy = [k for k, i in enumerate(index) if isinstance(i, Array)]
    plain = all(isinstance(i, (Array, slice)) or _is_int(i) for i in index)
    if len(lazy) > 1 or not plain or index[lazy[0]].dtype.kind not in "iu":
        raise NotImplementedError("vindex with a cdask Array index: only one integer cdask "
                                  "Array among slices and ints is supported; compute the "
                                  "indices first")
    k = lazy[0]
    ind = index[k]
    # the slices and ints first (with the ints, NumPy's x[index] would move
    # the index's axes), then the lazy take, whose axes come where it stood
    y = getitem(x, tuple(slice(None) if j == k else i for j, i in enumerate(index)))
    at = k - sum(1 for i in index[:k] if _is_int(i))
    r = getitem(y, (slice(None),) * at + (ind,))
    return moveaxis(r, list(range(at, at + ind.ndim)), list(range(ind.ndim)))


class VIndex:
    def __init__(self, array):
        self._array = array

    def __getitem__(self, index):
        return vindex(self._array, index)

    def __setitem__(self, index, value):
        self._array._become(vindex_setitem(self._array, index, value))


def vindex_setitem(x, index, value):
    """``x.vindex[index] = value``: the points ``x.vindex[index]`` selects
    (same parsing and errors) get ``value``, broadcast to that selection's
    shape (the broadcast index shape, then the sliced axes)."""
    if not isinstance(index, tuple):
        index = (index,)
    if isinstance(value, Array) is False and not is_scalar(value):
        value = np.asarray(value)
        if value.dtype == object:
            raise TypeError("cannot assign an object array to a cdask Array")
    entries = _parse(index, x, allow_none=False, allow_dask_mask=False)
    if not any(e[0] == "arr" for e in entries):
        return setitem(x, tuple(e[1] for e in entries), value)
    if any(isnan(c) for ch in x.chunks for c in ch):
        raise ValueError("assignment to an array of unknown chunk sizes; call "
                         "x.compute_chunk_sizes() first")
    arr_k = [k for k, e in enumerate(entries) if e[0] in ("arr", "int")]
    rest = [k for k in range(x.ndim) if k not in arr_k]
    arrays = [np.asarray(entries[k][1], dtype=np.intp) for k in arr_k]
    _broadcast(arrays)
    sel = tuple(arrays) + tuple(entries[k][1] for k in rest)
    coords = []
    for d in range(x.ndim):
        ar = np.arange(x.shape[d], dtype=np.intp).reshape(
            tuple(-1 if i == d else 1 for i in range(x.ndim)))
        grid = np.transpose(np.broadcast_to(ar, x.shape), arr_k + rest)
        coords.append(grid[sel])         # the indexed axes are first: points, then slices
    return _setitem_coords(x, coords, coords[0].shape,
                           _drop_leading_ones(value, coords[0].ndim))


# ---------------------------------------------------------------------------
# __setitem__

def _copy_block(block):
    """A writable copy of a block (a masked one stays masked, its mask copied)."""
    if isinstance(block, np.ma.MaskedArray):
        return block.copy()
    return np.array(block, copy=True)


def _set_block(block, index, value):
    out = _copy_block(block)
    out[index] = value
    return out


def _set_mask_block(block, mblock, value):
    out = _copy_block(block)
    out[np.asarray(mblock, dtype=bool)] = value
    return out


def _shape(v):
    return tuple(v.shape) if isinstance(v, Array) else np.shape(v)


def _size(v):
    n = 1
    for s in _shape(v):
        n *= s
    return n


def _check_scalar(value, dtype):
    tmp = np.empty((), dtype=dtype)
    tmp[()] = value


def setitem(x, index, value):
    """``x[index] = value``, lazily: ``x`` gets a new graph (name, layers)
    whose blocks touched by the index are copies with the assignment made;
    untouched blocks are the old ones."""

    if type(index) is tuple and len(index) == 1 and (isinstance(index[0], Array) or (
            isinstance(index[0], np.ndarray) and index[0].dtype == bool)):
        index = index[0]
    if isinstance(value, Array) is False and not is_scalar(value):
        value = np.asarray(value)
        if value.dtype == object:
            raise TypeError("cannot assign an object array to a cdask Array")
    is_mask = isinstance(index, Array) or (
        isinstance(index, np.ndarray) and index.dtype == bool and index.ndim == x.ndim)
    if is_mask:
        if not isinstance(index, Array) and len(_shape(value)) > 1:
            raise TypeError("NumPy boolean array indexing assignment requires a 0 or "
                            "1-dimensional input, input has %d dimensions" % len(_shape(value)))
        if isinstance(value, Array) and value.ndim and not isinstance(index, Array):
            # a NumPy mask's count is known: a cdask value is assigned point-wise
            return _setitem_points(x, index, value)
        return _setitem_mask(x, index, value)
    if has_advanced(index):
        return _setitem_points(x, index, value)
    idx = normalize_index(index, x.shape)
    for i in idx:
        if isinstance(i, slice):
            for v in (i.start, i.stop, i.step):
                if v is not None and not _is_int(v):
                    raise TypeError("slice indices must be integers or None or have an "
                                    "__index__ method")
            if i.step == 0:
                raise ValueError("slice step cannot be zero")
    if any(isnan(c) for ch in x.chunks for c in ch):
        raise ValueError("assignment to an array of unknown chunk sizes; call "
                         "x.compute_chunk_sizes() first")
    out_chunks, blocks = basic_blocks(x, idx)
    rshape = tuple(sum(c) for c in out_chunks)
    if not _is_element_index(index, x.ndim):
        value = _drop_leading_ones(value, len(rshape))
    name = "setitem-" + tokenize(x.name, idx, value if isinstance(value, Array) else
                                 np.asarray(value))
    layer = {}
    deps = x
    if isinstance(value, Array):
        _check_assignable(value.shape, rshape)
        v = rechunk(broadcast_to(value, rshape), out_chunks)
        deps = Array(merge_layers(x, v), x.name, x.chunks, x.dtype)
        vval = None
    else:
        v = None
        if np.ndim(value) == 0:
            _check_scalar(value, x.dtype)
            vval = value
        else:
            _check_assignable(value.shape, rshape)
            if value.dtype.kind == "c" and x.dtype.kind != "c":
                # NumPy warns (ComplexWarning) and drops the imaginary part
                _check_scalar(value.ravel()[:1].real, x.dtype)
            vval = np.broadcast_to(value, rshape)
    offs = [chunk_offsets(c) for c in out_chunks]
    touched = {}
    for oidx, iidx, local, trivial in blocks:
        if any(out_chunks[d][j] == 0 for d, j in enumerate(oidx)):
            continue
        if v is not None:
            val = (v.name,) + oidx
        elif np.ndim(vval) == 0:
            val = vval
        else:
            val = np.ascontiguousarray(vval[tuple(slice(offs[d][j], offs[d][j + 1])
                                                  for d, j in enumerate(oidx))])
        touched[iidx] = (_set_block, (x.name,) + iidx, local, val)
    for iidx in itertools.product(*map(range, x.numblocks)):
        layer[(name,) + iidx] = touched.get(iidx, (x.name,) + iidx)
    return Array(with_layer(deps._layers, name, layer), name, x.chunks, x.dtype)


def _set_points_block(block, locs, vals):
    out = _copy_block(block)
    out[locs] = vals
    return out


def _is_element_index(index, ndim):
    """An index of ``ndim`` integers (or 0-d integer arrays), no Ellipsis:
    NumPy assigns a single element, and takes no value of ndim > 0."""
    if not isinstance(index, tuple):
        index = (index,)
    return len(index) == ndim and all(
        _is_int(i) or (isinstance(i, np.ndarray) and i.ndim == 0 and i.dtype.kind in "iu")
        for i in index)


def _drop_leading_ones(value, ndim):
    """NumPy's assignment drops leading length-1 axes of a value with more
    dimensions than the selection (not for a single element's index)."""
    shp = _shape(value)
    extra = len(shp) - ndim
    if extra > 0 and all(s == 1 for s in shp[:extra]):
        if isinstance(value, Array):
            return value[(0,) * extra]
        return np.asarray(value).reshape(shp[extra:])
    return value


def _check_assignable(vshape, rshape):
    """NumPy's ValueError unless a value of vshape broadcasts to rshape."""
    try:
        shp = np.broadcast_shapes(vshape, rshape)
    except ValueError:
        shp = None
    if shp != rshape:
        raise ValueError("could not broadcast input array from shape %s into shape %s"
                         % (vshape, rshape))


def _setitem_points(x, index, value):
    """``x[index] = value`` for an index holding NumPy integer or boolean
    arrays (any combination NumPy takes): the selected elements' coordinates
    are found by indexing coordinate grids with the index itself (so the
    selection, its order and its errors are NumPy's), then each touched block
    gets its points assigned in that order (a repeated index: the last value
    wins, as in NumPy)."""
    if isinstance(index, Array) or (isinstance(index, tuple) and
                                    any(isinstance(i, Array) for i in index)):
        raise NotImplementedError("assignment with a cdask Array among other indices: only a "
                                  "boolean cdask Array of the array's shape is supported")
    if any(isnan(c) for ch in x.chunks for c in ch):
        raise ValueError("assignment to an array of unknown chunk sizes; call "
                         "x.compute_chunk_sizes() first")
    shape = x.shape
    coords = []
    for d in range(x.ndim):
        ar = np.arange(shape[d], dtype=np.intp).reshape(
            tuple(-1 if i == d else 1 for i in range(x.ndim)))
        coords.append(np.broadcast_to(ar, shape)[index])     # NumPy's selection and errors
    rshape = coords[0].shape if coords else np.empty(())[index].shape
    if not _is_element_index(index, x.ndim):
        value = _drop_leading_ones(value, len(rshape))
    return _setitem_coords(x, coords, rshape, value)


def _setitem_coords(x, coords, rshape, value):
    """Assign ``value`` (broadcast to ``rshape``) to the points of ``x`` at
    ``coords`` (one non-negative coordinate array of shape ``rshape`` per
    axis), point by point per touched block.  The coordinates are held in
    the graph (a few words per selected element); a NumPy value is split
    into the tasks, a cdask value is gathered point-wise (``vindex``) in
    block order and rechunked so that each touched block's task gets one
    block holding its values (no task holds more than a block's worth)."""
    lazy = isinstance(value, Array)
    if lazy:
        if value.ndim == 0:
            vflat = None
        else:
            try:
                shp = np.broadcast_shapes(value.shape, rshape)
            except ValueError:
                shp = None
            if shp != tuple(rshape):
                raise ValueError("shape mismatch: value array of shape %s could not be "
                                 "broadcast to indexing result of shape %s"
                                 % (value.shape, tuple(rshape)))
            vflat = value
    elif np.ndim(value) == 0:
        _check_scalar(value, x.dtype)
        vflat = None
    else:
        try:
            vflat = np.broadcast_to(value, rshape).ravel()
        except ValueError:
            raise ValueError("shape mismatch: value array of shape %s could not be broadcast "
                             "to indexing result of shape %s" % (np.shape(value), rshape)) \
                from None
    coords = [np.asarray(c).ravel() for c in coords]
    name = "setitem-points-" + tokenize(x.name, coords, value.name if lazy else
                                        (value if vflat is None else vflat))
    layers = x._layers
    layer = {}
    touched = {}
    if coords and coords[0].size:
        offs = [np.array(chunk_offsets(c)) for c in x.chunks]
        blk = [np.searchsorted(o, c, side="right") - 1 for o, c in zip(offs, coords)]
        bid = np.ravel_multi_index(blk, x.numblocks)
        order = np.argsort(bid, kind="stable")
        ids, starts = np.unique(bid[order], return_index=True)
        bounds = list(starts) + [len(order)]
        vsorted = None
        if lazy:
            layers = merge_layers(x, value)
            if vflat is not None:
                vb = broadcast_to(value, tuple(rshape))
                pts = np.unravel_index(order, rshape)
                vsorted = vindex(vb, pts) if len(rshape) else vb.reshape((1,))
                vsorted = rechunk(vsorted, (tuple(int(b - a) for a, b in
                                                  zip(bounds, bounds[1:])),))
                layers = merge_layers(x, vsorted)
        for t, (b, s0, s1) in enumerate(zip(ids, bounds, bounds[1:])):
            pos = order[s0:s1]
            bidx = tuple(int(i) for i in np.unravel_index(int(b), x.numblocks))
            locs = tuple(c[pos] - o[i] for c, o, i in zip(coords, offs, bidx))
            if vsorted is not None:
                vals = (vsorted.name, t)
            elif lazy:
                vals = (value.name,)
            else:
                vals = value if vflat is None else vflat[pos]
            touched[bidx] = (_set_points_block, (x.name,) + bidx, locs, vals)
    for iidx in itertools.product(*map(range, x.numblocks)):
        layer[(name,) + iidx] = touched.get(iidx, (x.name,) + iidx)
    return Array(with_layer(layers, name, layer), name, x.chunks, x.dtype)


def _setitem_mask(x, mask, value):
    if any(isnan(c) for ch in x.chunks for c in ch):
        raise ValueError("assignment to an array of unknown chunk sizes; call "
                         "x.compute_chunk_sizes() first")
    np_mask = None
    if not isinstance(mask, Array):
        np_mask = np.asarray(mask)
        if np_mask.shape != x.shape:
            for ax, (a, b) in enumerate(zip(x.shape, np_mask.shape)):
                if a != b:
                    raise IndexError("boolean index did not match indexed array along axis "
                                     "%d; size of axis is %d but size of corresponding "
                                     "boolean axis is %d" % (ax, a, b))
        mask = from_array(np_mask, chunks=x.chunks)
    if mask.dtype != bool:
        raise IndexError("arrays used as indices must be of integer (or boolean) type")
    if mask.shape != x.shape:
        raise IndexError("boolean index of shape %s does not match the array's shape %s"
                         % (mask.shape, x.shape))
    if mask.chunks != x.chunks:
        mask = rechunk(mask, x.chunks)
    name = "setitem-mask-" + tokenize(x.name, mask.name, value if isinstance(value, Array)
                                      else np.asarray(value))
    layers = merge_layers(x, mask)
    layer = {}
    grid = list(itertools.product(*map(range, x.numblocks)))
    count = None if np_mask is None else int(np_mask.sum())
    scalar = not isinstance(value, Array) and (len(_shape(value)) == 0 or _shape(value) == (1,))
    numpy_1d = (not scalar and count is not None and not isinstance(value, Array) and
                len(_shape(value)) == 1 and _shape(value)[0] == count)
    if isinstance(value, Array) and value.ndim == 0:
        # a lazy scalar (e.g. x.mean()): one more input of every task
        layers.update(value._layers)
        for idx in grid:
            layer[(name,) + idx] = (_set_mask_block, (x.name,) + idx, (mask.name,) + idx,
                                    (value.name,))
        return Array(with_layer(layers, name, layer), name, x.chunks, x.dtype)
    if not scalar and not numpy_1d:
        if np_mask is not None:
            raise ValueError("NumPy boolean array indexing assignment cannot assign %d input "
                             "values to the %d output values where the mask is true"
                             % (_size(value), count))
        # as dask: the number of selected elements is not known before computing
        raise ValueError("assignment through a boolean cdask Array takes a scalar value (the "
                         "number of selected elements is unknown); got a value of shape %s"
                         % (_shape(value),))
    if scalar:
        value = np.asarray(value)
        if value.ndim:
            value = value.reshape(())
        _check_scalar(value, x.dtype)
        for idx in grid:
            layer[(name,) + idx] = (_set_mask_block, (x.name,) + idx, (mask.name,) + idx,
                                    value[()])
    else:
        # NumPy semantics: a 1-d value of the mask's count, taken in C order
        value = np.asarray(value)
        rank = (np.cumsum(np_mask.ravel()) - 1).reshape(np_mask.shape)
        offs = [chunk_offsets(c) for c in x.chunks]
        for idx in grid:
            sl = tuple(slice(offs[d][i], offs[d][i + 1]) for d, i in enumerate(idx))
            piece = value[rank[sl][np_mask[sl]]]
            layer[(name,) + idx] = (_set_mask_block, (x.name,) + idx, (mask.name,) + idx,
                                    piece)
    return Array(with_layer(layers, name, layer), name, x.chunks, x.dtype)


def getitem(x, index):
    """``x[index]`` for a cdask Array (arrays in the index: indexing.py)."""

    if isinstance(index, tuple) and len(index) == 2 and index[1] is Ellipsis:
        if isinstance(index[0], Array) and index[0].dtype == bool:
            index = index[0]   # x[mask, ...] is x[mask]
    if isinstance(index, (Array, np.ndarray)) and index.dtype == bool:
        if index.ndim == x.ndim:
            return _getitem_mask(x, index)
        if isinstance(index, Array) and index.ndim < x.ndim and index.ndim != 1:
            return _leading_mask(x, index)
    if isinstance(index, tuple) and any(isinstance(i, Array) or (
            isinstance(i, np.ndarray) and i.dtype == bool) for i in index):
        pos = [k for k, i in enumerate(index) if _is_array_index(i)]
        if len(pos) == 1:
            pos = pos[0]
            a = index[pos]
            rest = index[:pos] + index[pos + 1:]
            if getattr(a, "ndim", None) == x.ndim and x.ndim > 0 and a.dtype == bool and \
                    all(isinstance(i, slice) and i == slice(None) for i in rest) and \
                    all(i is Ellipsis for i in index[:pos]):
                return _getitem_mask(x, a)
    if has_advanced(index):
        return getitem_advanced(x, index)
    idx = normalize_index(index, x.shape)
    return basic_getitem(x, idx)


def _leading_mask(x, mask):
    """``x[mask]`` for a boolean Array over the leading ``mask.ndim`` axes
    (NumPy's and the array API's rule): those axes flattened into one, then
    a 1-d mask; a 0-d mask adds an axis of length 1 (True) or 0 (False)."""
    from .reshape import reshape

    k = mask.ndim
    if k == 0:
        return getitem_advanced(x[None], (reshape(mask, (1,)),))
    for d in range(k):
        _known_axis(x, d)
        if not isnan(mask.shape[d]) and mask.shape[d] != x.shape[d]:
            raise IndexError("boolean index did not match indexed array along axis %d; size "
                             "of axis is %d but size of corresponding boolean axis is %d"
                             % (d, x.shape[d], mask.shape[d]))
    lead = int(np.prod(x.shape[:k], dtype=np.int64))
    return getitem_advanced(reshape(x, (lead,) + x.shape[k:]), (reshape(mask, (lead,)),))


def _is_array_index(i):
    return isinstance(i, (Array, list, np.ndarray))


_UNKNOWN = {}


def _unknown_size(mask_name):
    """The nan that stands for the unknown sizes of the blocks a mask
    selects: one float object per mask, so that selections by the same mask
    (``a[m]`` and ``b[m]``) line up block by block - tuples compare their
    items by identity first - while selections by different masks, whose
    block sizes differ, do not: joining or combining those asks for
    compute_chunk_sizes() instead of pairing blocks of different sizes."""
    nan = _UNKNOWN.get(mask_name)
    if nan is None:
        if len(_UNKNOWN) > 100_000:
            _UNKNOWN.clear()
        nan = _UNKNOWN[mask_name] = float("nan")
    return nan


def _getitem_mask(x, mask):
    if not isinstance(mask, Array):
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise IndexError("arrays used as indices must be of integer or boolean type")
        if mask.shape != x.shape:
            raise IndexError("boolean index shape %s does not match the array shape %s"
                             % (mask.shape, x.shape))

        mask = from_array(mask, chunks=x.chunks)
    if mask.dtype != bool:
        raise IndexError("only boolean cdask arrays can be used as masks, got dtype %s"
                         % mask.dtype)
    if mask.ndim != x.ndim:
        raise NotImplementedError("a boolean mask must have the array's number of dimensions "
                                  "(%d), got %d" % (x.ndim, mask.ndim))
    for ax, (a, b) in enumerate(zip(x.shape, mask.shape)):
        if not (isnan(a) or isnan(b)) and a != b:
            raise IndexError("boolean index did not match indexed array along axis %d; size "
                             "of axis is %d but size of corresponding boolean axis is %d"
                             % (ax, a, b))
    if mask.chunks != x.chunks:
        # rechunk can move blocks only along axes of known sizes
        for ax, (a, b) in enumerate(zip(x.chunks, mask.chunks)):
            m_unknown = any(isnan(c) for c in b)
            x_unknown = any(isnan(c) for c in a)
            if a != b and (m_unknown or x_unknown):
                both = m_unknown and x_unknown
                who = "each" if both else "the mask" if m_unknown else "the array"
                raise ValueError(
                    "boolean index: the mask's blocks cannot be lined up with the array's: "
                    "they are chunked differently along axis %d and %s has unknown (nan) chunk "
                    "sizes there; call compute_chunk_sizes() on %s first"
                    % (ax, who, "both" if both else who))
        mask = rechunk(mask, x.chunks)
    nan = _unknown_size(mask.name)
    if x.ndim == 0:
        name = "getitem-mask-" + tokenize(x.name, mask.name)
        layer = {(name, 0): (mask_block, (x.name,), (mask.name,))}
        return Array(with_layer(merge_layers(x, mask), name, layer), name, ((nan,),),
                     x.dtype)
    name = "getitem-mask-" + tokenize(x.name, mask.name)
    nb = x.numblocks
    if x.ndim == 1:
        layer = Blockwise(name, nb, mask_block, [("block", x.name, (0,)),
                                                 ("block", mask.name, (0,))])
        return Array(with_layer(merge_layers(x, mask), name, layer), name,
                     ((nan,) * nb[0],), x.dtype)
    layer = {}
    if all(b == 1 for b in nb[1:]):
        for j, idx in enumerate(itertools.product(*map(range, nb))):
            layer[(name, j)] = (mask_block, (x.name,) + idx, (mask.name,) + idx)
        n = nb[0]
    else:
        # blocks side by side along a trailing axis: NumPy's order takes a
        # row's elements from each in turn, so a task selects from a band
        trailing = list(itertools.product(*map(range, nb[1:])))
        for i in range(nb[0]):
            layer[(name, i)] = (mask_band, tuple(nb[1:]),
                                [(x.name, i) + t for t in trailing],
                                [(mask.name, i) + t for t in trailing])
        r = Array(with_layer(merge_layers(x, mask), name, layer), name, ((nan,) * nb[0],),
                  x.dtype)
        # the same elements in block order, one task per block, which the
        # reductions that do not depend on the order (sum, mean, min, ...)
        # read instead: those fuse with the mask into one pass (plan.py)
        uname = "getitem-mask-blocks-" + tokenize(x.name, mask.name)
        ulayer = {}
        for j, idx in enumerate(itertools.product(*map(range, nb))):
            ulayer[(uname, j)] = (mask_block, (x.name,) + idx, (mask.name,) + idx)
        r._unordered = Array(with_layer(merge_layers(x, mask), uname, ulayer), uname,
                             ((nan,) * len(ulayer),), x.dtype)
        return r
    return Array(with_layer(merge_layers(x, mask), name, layer), name, ((nan,) * n,),
                 x.dtype)
