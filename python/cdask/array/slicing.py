"""``Array.__getitem__``: basic indexing and boolean masks.

Basic indexing (ints, slices with any step, Ellipsis, None): along each axis
every input block touched by the selection gives one output block, so each
output task slices exactly one input block, and only touched blocks enter the
graph.

Boolean masks (``x[mask]`` with ``mask`` a boolean Array or NumPy array of
the same shape): each block gives ``xblock[mblock]``, a 1-d piece of unknown
length; the result is 1-d with ``nan`` chunk sizes, its blocks in C order of
the block grid.
"""

import bisect
import itertools
import numbers
import operator

import numpy as np

from .blockio import getter
from .chunk_types import concatenate_blocks, keep_block
from .chunks import chunk_offsets
from .core import Array
from .tokenize import tokenize
from .utils import isnan, with_layer

__all__ = ["normalize_index", "mask_block", "basic_getitem", "basic_blocks", "compose_getter",
           "is_getter_task", "resolve_alias"]


def _getitem_block(block, index):
    return block[index]


def mask_block(xblock, mblock):
    """The elements of one block selected by its mask block (1-d)."""
    return keep_block(xblock)[np.asarray(mblock, dtype=bool)]


def _block(nested, depth):
    """``np.block(nested)`` (``depth`` levels of lists), keeping masks."""
    flat = nested
    for _ in range(depth - 1):
        flat = [b for sub in flat for b in sub]
    if not any(isinstance(b, np.ma.MaskedArray) for b in flat):
        return np.block(nested)

    def rec(node, level):
        if level == depth - 1:
            return concatenate_blocks(node, axis=level - depth)
        return concatenate_blocks([rec(n, level + 1) for n in node], axis=level - depth)

    return rec(nested, 0)


def mask_band(grid, xblocks, mblocks):
    """The elements of one band of blocks (all the blocks that share an
    index along axis 0, in C order; ``grid`` is their number along each
    trailing axis) selected by their mask blocks, in NumPy's order: the
    band is put together first, so that a row's elements from the blocks
    side by side come one after the other."""
    def nest(blocks):
        blocks = [keep_block(b) for b in blocks]
        for n in reversed(grid[1:]):
            blocks = [blocks[i:i + n] for i in range(0, len(blocks), n)]
        return blocks

    xb = _block(nest(xblocks), len(grid))
    mb = np.block(nest([np.asarray(m, dtype=bool) for m in mblocks]))
    return xb[mb]


def _is_int(i):
    return isinstance(i, (numbers.Integral, np.integer)) and not isinstance(i, (bool, np.bool_))


def normalize_index(index, shape):
    """Expand an index to one entry per axis plus Nones: ints are made
    non-negative (IndexError when out of range), Ellipsis expanded, missing
    trailing axes filled with ``slice(None)``."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    n_ell = sum(1 for i in index if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    if n_real > len(shape):
        raise IndexError("too many indices for array: array is %d-dimensional, but %d were "
                         "indexed" % (len(shape), n_real))
    ax = 0
    for i in index:
        if i is Ellipsis:
            k = len(shape) - n_real
            out.extend([slice(None)] * k)
            ax += k
        elif i is None:
            out.append(None)
        elif _is_int(i):
            n = shape[ax]
            i = int(i)
            if not isnan(n) and not -n <= i < n:
                raise IndexError("index %d is out of bounds for axis %d with size %d"
                                 % (i, ax, n))
            if isnan(n):
                if i < 0:
                    raise IndexError("negative index %d on axis %d of unknown length; call "
                                     "compute_chunk_sizes() first" % (i, ax))
            else:
                i = i % n
            out.append(i)
            ax += 1
        elif isinstance(i, slice):
            out.append(i)
            ax += 1
        else:
            try:
                i = operator.index(i)
            except TypeError:
                raise IndexError("only integers, slices (`:`), ellipsis (`...`), "
                                 "numpy.newaxis (`None`) and boolean arrays are valid "
                                 "indices; got %r" % (type(i).__name__,)) from None
            out.append(i)
            ax += 1
    while ax < len(shape):
        out.append(slice(None))
        ax += 1
    return tuple(out)


def _slice_axis(chunks, sl, axis):
    """Plan for a slice along one axis: list of (input block, local slice,
    output length)."""
    if any(isnan(c) for c in chunks):
        if sl == slice(None) or (sl.start in (None, 0) and sl.stop is None and
                                 sl.step in (None, 1)):
            return [(i, slice(None), c) for i, c in enumerate(chunks)]
        raise ValueError("cannot slice axis %d, whose chunk sizes are unknown (nan); call "
                         "x.compute_chunk_sizes() first" % axis)
    n = sum(chunks)
    start, stop, step = sl.indices(n)
    r = range(start, stop, step)
    offs = chunk_offsets(chunks)
    plan = []
    if len(r) == 0:
        # an empty selection: an empty slice of the first block
        return [(0, slice(0, 0), 0)]
    if step > 0:
        b = bisect.bisect_right(offs, r[0]) - 1
        last = r[-1]
        while b < len(chunks) and offs[b] <= last:
            lo, hi = offs[b], offs[b + 1]
            # first element of r at or after lo
            if r[0] >= lo:
                first = r[0]
            else:
                first = r[0] + ((lo - r[0] + step - 1) // step) * step
            if first < hi and first <= last:
                end = min(hi - 1, last)
                cnt = (end - first) // step + 1
                loc = first - lo
                plan.append((b, slice(loc, loc + (cnt - 1) * step + 1, step if step != 1
                                      else None), cnt))
            b += 1
    else:
        b = bisect.bisect_right(offs, r[0]) - 1
        b = min(b, len(chunks) - 1)
        last = r[-1]
        s = -step
        while b >= 0 and offs[b + 1] > last:
            lo, hi = offs[b], offs[b + 1]
            if r[0] <= hi - 1:
                first = r[0]
            else:
                first = r[0] - ((r[0] - (hi - 1) + s - 1) // s) * s
            if first >= lo and first >= last:
                end = max(lo, last)
                cnt = (first - end) // s + 1
                loc = first - lo
                stop_ = loc - (cnt - 1) * s - 1
                plan.append((b, slice(loc, stop_ if stop_ >= 0 else None, step), cnt))
            b -= 1
    return plan


def basic_blocks(x, idx):
    """The block plan of ``x[idx]`` (idx normalized): (output chunks, list of
    (output block index, input block index, local index, trivial)), one entry
    per output block; each output block is ``input block[local index]``."""
    # per output axis: list of (input block or None, local index, out size)
    in_axis = 0
    axis_plans = []   # one per entry of idx
    out_chunks = []
    for i in idx:
        if i is None:
            axis_plans.append(("new", None))
            out_chunks.append((1,))
        elif isinstance(i, slice):
            p = _slice_axis(x.chunks[in_axis], i, in_axis)
            axis_plans.append(("slice", p))
            out_chunks.append(tuple(c for _, _, c in p))
            in_axis += 1
        else:
            ch = x.chunks[in_axis]
            if any(isnan(c) for c in ch):
                raise ValueError("cannot index axis %d, whose chunk sizes are unknown (nan), "
                                 "with an integer; call x.compute_chunk_sizes() first"
                                 % in_axis)
            offs = chunk_offsets(ch)
            b = bisect.bisect_right(offs, i) - 1
            while ch[b] == 0:
                b += 1
            axis_plans.append(("int", (b, i - offs[b])))
            in_axis += 1
    choices = []
    for kind, p in axis_plans:
        if kind == "new":
            choices.append([("new", 0, None)])
        elif kind == "slice":
            choices.append([("slice", j, e) for j, e in enumerate(p)])
        else:
            choices.append([("int", None, p)])
    x_chunks = x.chunks
    out = []
    for combo in itertools.product(*choices):
        oidx = []
        iidx = []
        local = []
        trivial = True
        ax = 0
        for kind, j, e in combo:
            if kind == "new":
                oidx.append(0)
                local.append(None)
                trivial = False
            elif kind == "slice":
                b, loc, cnt = e
                oidx.append(j)
                iidx.append(b)
                if not (loc == slice(None) or (loc.start in (0, None) and loc.step in (None, 1)
                                               and loc.stop == x_chunks[ax][b])):
                    trivial = False
                local.append(loc)
                ax += 1
            else:
                b, loc = e
                iidx.append(b)
                local.append(loc)
                trivial = False
                ax += 1
        out.append((tuple(oidx), tuple(iidx), tuple(local), trivial))
    return tuple(out_chunks), out


def compose_getter(task, local):
    """A ``(getter, source, slices)`` task sliced by ``local`` (slices and
    non-negative ints, one per axis of the block), as one getter task on the
    source with the composed index, or None when it cannot be composed.  The
    composed task reads only the selected elements of the source (for a
    memory-mapped file, only their bytes)."""

    if type(task) is not tuple or len(task) != 3 or task[0] is not getter:
        return None
    src, outer = task[1], task[2]
    if type(outer) is not tuple or len(outer) != len(local) or \
            len(outer) != len(getattr(src, "shape", ())):
        return None
    # h5py/zarr-like sources take increasing slices only; NumPy arrays and
    # memmaps take any step
    any_step = isinstance(src, np.ndarray)
    res = []
    for o, loc, n in zip(outer, local, src.shape):
        if type(o) is not slice:
            return None
        r = range(*o.indices(n))
        if isinstance(loc, slice):
            c = r[loc]
            if len(c) == 0:
                res.append(slice(0, 0))
            elif c.step != 1 and not (any_step or c.step > 0):
                return None
            else:
                stop = c[-1] + (1 if c.step > 0 else -1)
                res.append(slice(c[0], stop if stop >= 0 else None,
                                 None if c.step == 1 else c.step))
        elif _is_int(loc) and 0 <= loc < len(r):
            res.append(r[loc])
        else:
            return None
    if not on_storage_chunks(src, res):
        return None
    return (getter, src, tuple(res))


def on_storage_chunks(src, index):
    """Whether ``src[index]`` reads about its own size.  A source declaring
    storage chunks (``.chunks`` a tuple of ints: zarr arrays, chunked HDF5
    datasets, xarray's backend arrays as the chunk manager wraps them)
    decodes whole chunks, so a getter composed into one chunk's interior
    would decode that chunk again for every block cut from it (a rechunk of
    30-day zarr chunks into days: 30 times): such a source is composed only
    along chunk boundaries, else its block is read once and sliced."""
    chunks = getattr(src, "chunks", None)
    if isinstance(src, np.ndarray) or type(chunks) is not tuple or \
            len(chunks) != len(index) or not all(_is_int(c) and c > 0 for c in chunks):
        return True
    for i, c, n in zip(index, chunks, src.shape):
        if c == 1:
            continue
        if type(i) is not slice:
            return False
        start, stop, step = i.indices(n)
        if step != 1 or start % c or (stop % c and stop != n):
            return False
    return True


def is_getter_task(t):
    return type(t) is tuple and len(t) == 3 and t[0] is getter


def resolve_alias(layers, task):
    """Follow aliases (a task that is a key of another layer) to the task."""
    for _ in range(64):
        if type(task) is tuple and task and type(task[0]) is str and task[0] in layers:
            task = layers[task[0]].get(task)
        else:
            return task
    return task


def basic_getitem(x, idx):
    if all(isinstance(i, slice) and i == slice(None) for i in idx) and len(idx) == x.ndim:
        return x
    out_chunks, blocks = basic_blocks(x, idx)
    name = "getitem-" + tokenize(x.name, idx)
    layer = {}
    src_layer = x._layers.get(x.name)
    for oidx, iidx, local, trivial in blocks:
        ikey = (x.name,) + iidx
        okey = (name,) + oidx
        if trivial:
            # a whole getter block is kept as the getter task itself (fused
            # kernels read those in place), any other block as an alias
            t = resolve_alias(x._layers, ikey) if src_layer is not None else None
            layer[okey] = t if is_getter_task(t) else ikey
            continue
        task = None
        if src_layer is not None and None not in local:
            task = compose_getter(resolve_alias(x._layers, src_layer.get(ikey)), local)
        layer[okey] = task if task is not None else (_getitem_block, ikey, local)
    return Array(with_layer(x._layers, name, layer), name, out_chunks, x.dtype)


