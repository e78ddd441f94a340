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
import math
import numbers
import operator

import numpy as np

from .chunks import chunk_offsets
from .core import Array, _with, _merge_layers, _isnan
from .tokenize import tokenize

__all__ = ["getitem", "normalize_index", "mask_block"]


def _getitem_block(block, index):
    return block[index]


def mask_block(xblock, mblock):
    """The elements of one block selected by its mask block (1-d)."""
    return np.asarray(xblock)[np.asarray(mblock, dtype=bool)]


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
            if not _isnan(n) and not -n <= i < n:
                raise IndexError("index %d is out of bounds for axis %d with size %d"
                                 % (i, ax, n))
            if _isnan(n):
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
    if any(_isnan(c) for c in chunks):
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


def getitem(x, index):
    """``x[index]`` for a cdask Array (arrays in the index: indexing.py)."""
    from .indexing import has_advanced, getitem_advanced

    if isinstance(index, (Array, np.ndarray)) and index.dtype == bool:
        if index.ndim == x.ndim:
            return _getitem_mask(x, index)
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
    return _basic(x, idx)


def _is_array_index(i):
    return isinstance(i, (Array, list, np.ndarray))


def _basic_blocks(x, idx):
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
            if any(_isnan(c) for c in ch):
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
    from .creation import getter

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
    return (getter, src, tuple(res))


def _is_getter_task(t):
    from .creation import getter

    return type(t) is tuple and len(t) == 3 and t[0] is getter


def _resolve(layers, task):
    """Follow aliases (a task that is a key of another layer) to the task."""
    for _ in range(64):
        if type(task) is tuple and task and type(task[0]) is str and task[0] in layers:
            task = layers[task[0]].get(task)
        else:
            return task
    return task


def _basic(x, idx):
    if all(isinstance(i, slice) and i == slice(None) for i in idx) and len(idx) == x.ndim:
        return x
    out_chunks, blocks = _basic_blocks(x, idx)
    name = "getitem-" + tokenize(x.name, idx)
    layer = {}
    src_layer = x._layers.get(x.name)
    for oidx, iidx, local, trivial in blocks:
        ikey = (x.name,) + iidx
        okey = (name,) + oidx
        if trivial:
            # a whole getter block is kept as the getter task itself (fused
            # kernels read those in place), any other block as an alias
            t = _resolve(x._layers, ikey) if src_layer is not None else None
            layer[okey] = t if _is_getter_task(t) else ikey
            continue
        task = None
        if src_layer is not None and None not in local:
            task = compose_getter(_resolve(x._layers, src_layer.get(ikey)), local)
        layer[okey] = task if task is not None else (_getitem_block, ikey, local)
    return Array(_with(x._layers, name, layer), name, out_chunks, x.dtype)


def _getitem_mask(x, mask):
    if not isinstance(mask, Array):
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise IndexError("arrays used as indices must be of integer or boolean type")
        if mask.shape != x.shape:
            raise IndexError("boolean index shape %s does not match the array shape %s"
                             % (mask.shape, x.shape))
        from .creation import from_array

        mask = from_array(mask, chunks=x.chunks)
    if mask.dtype != bool:
        raise IndexError("only boolean cdask arrays can be used as masks, got dtype %s"
                         % mask.dtype)
    if mask.ndim != x.ndim:
        raise NotImplementedError("a boolean mask must have the array's number of dimensions "
                                  "(%d), got %d" % (x.ndim, mask.ndim))
    for ax, (a, b) in enumerate(zip(x.shape, mask.shape)):
        if not (_isnan(a) or _isnan(b)) and a != b:
            raise IndexError("boolean index did not match indexed array along axis %d; size "
                             "of axis is %d but size of corresponding boolean axis is %d"
                             % (ax, a, b))
    if mask.chunks != x.chunks:
        from .rechunk import rechunk

        mask = rechunk(mask, x.chunks)
    if x.ndim == 0:
        name = "getitem-mask-" + tokenize(x.name, mask.name)
        layer = {(name, 0): (mask_block, (x.name,), (mask.name,))}
        return Array(_with(_merge_layers(x, mask), name, layer), name, ((math.nan,),),
                     x.dtype)
    name = "getitem-mask-" + tokenize(x.name, mask.name)
    layer = {}
    nb = x.numblocks
    for j, idx in enumerate(itertools.product(*map(range, nb))):
        layer[(name, j)] = (mask_block, (x.name,) + idx, (mask.name,) + idx)
    n = 1
    for b in nb:
        n *= b
    return Array(_with(_merge_layers(x, mask), name, layer), name, ((math.nan,) * n,),
                 x.dtype)
