"""Rechunk.

Direct rechunk: every output block is assembled from the input blocks that
overlap it (one task per output block; an output block lying inside one input
block is a slice of it, one equal to an input block is an alias; a slice of a
getter block is one getter task reading only that slice).

Bounded rechunk (``plan_rechunk``): a direct rechunk can need many input
blocks at once for one output block (rows to columns: a column block needs
every row block).  When the largest task of the direct rechunk would hold
more than ``block_size_limit`` bytes (inputs + output), the rechunk goes
through an intermediate chunking:

* start from the common refinement of the old and new chunks (per axis, the
  union of both sets of block boundaries): each intermediate block lies
  inside one old block and inside one new block, so stage 1 tasks slice one
  old block and stage 2 tasks assemble exactly one new block's worth of
  pieces -- no task holds more than about twice the largest old or new block;
* then coarsen it (fewer, larger pieces, so fewer tasks), axis by axis,
  doubling the target piece size while the largest task of both stages stays
  within the limit, never across an old block boundary: every stage 1 task
  stays a slice of one old block, which for memory-mapped and other getter
  sources is a getter task reading just that piece (and for in-memory
  ``from_array`` blocks a view), so no old block is held while the new
  blocks are assembled and the peak memory stays at a few blocks.

Task sizes are estimated per axis (the sum of the old blocks an output block
overlaps, times the other axes'), which bounds every task of the stage.
"""

import bisect
import itertools
import math

import numpy as np

from .._core import drop_pages
from ..utils import parse_bytes
from .chunk_types import new_block
from .chunks import normalize_chunks, chunk_offsets, default_chunk_bytes
from .core import Array
from .slicing import compose_getter, is_getter_task, resolve_alias
from .tokenize import tokenize
from .utils import isnan, with_layer


__all__ = ["rechunk", "plan_rechunk", "stage_task_bytes"]


def _assemble(shape, dtype, blocks, in_slices, out_slices):
    if any(n is None for n in shape):
        # an axis of unknown size, left as it was: every piece spans the
        # same one input block along it
        first = np.shape(blocks[0][in_slices[0]])
        shape = tuple(first[d] if n is None else n for d, n in enumerate(shape))
    out = new_block(shape, dtype, blocks)
    for b, isl, osl in zip(blocks, in_slices, out_slices):
        piece = b[isl]
        out[osl] = piece
        # a piece read from a memory-mapped file (or a spilled block) gives
        # its pages back now, not when the task's inputs are released: the
        # task's resident memory stays its output plus one piece
        drop_pages(piece)
    return out


def _slice_block(block, slices):
    return block[slices]


def _axis_plan(old, new):
    """For each new block along one axis: list of (old block index, slice
    inside the old block, slice inside the new block)."""
    oo = chunk_offsets(old)
    no = chunk_offsets(new)
    plan = []
    for j in range(len(new)):
        lo, hi = no[j], no[j + 1]
        parts = []
        if hi == lo:
            # empty block: take an empty slice of the nearest old block
            i = min(max(bisect.bisect_right(oo, lo) - 1, 0), len(old) - 1)
            s = min(max(lo - oo[i], 0), old[i])
            parts.append((i, slice(s, s), slice(0, 0)))
        else:
            i = bisect.bisect_right(oo, lo) - 1
            while i < len(old) and oo[i] < hi:
                a = max(lo, oo[i])
                b = min(hi, oo[i + 1])
                if b > a:
                    parts.append((i, slice(a - oo[i], b - oo[i]), slice(a - lo, b - lo)))
                i += 1
        plan.append(parts)
    return plan


def rechunk(x, chunks="auto", threshold=None, block_size_limit=None, balance=False,
            method=None):
    """Return ``x`` with new chunks (any spec ``normalize_chunks`` accepts; a
    dict changes only the axes it names, -1/None means the whole axis).

    ``block_size_limit`` (bytes or a string such as ``"64MiB"``; default:
    config ``array.chunk-size``): the most a rechunk task should hold, inputs
    plus output; when the direct rechunk would exceed it, the rechunk goes
    through an intermediate chunking (``plan_rechunk``).  ``threshold``,
    ``balance`` and ``method`` are accepted for dask compatibility; the plan
    is decided by the memory bound alone."""
    if isinstance(chunks, dict):
        nd = x.ndim
        d = {}
        for k, v in chunks.items():
            if not -nd <= k < nd:
                raise ValueError("rechunk: axis %r is out of range for an array with %d "
                                 "dimensions" % (k, nd))
            d[k % nd] = v
        chunks = tuple(d.get(i, x.chunks[i]) for i in range(nd))
    elif isinstance(chunks, (tuple, list)):
        chunks = tuple(chunks)
        if len(chunks) == x.ndim:
            chunks = tuple(x.chunks[i] if c is None and any(
                isinstance(v, float) and math.isnan(v) for v in x.chunks[i]) else c
                for i, c in enumerate(chunks))
    unknown = [i for i, c in enumerate(x.chunks) if any(isinstance(v, float) and
                                                         math.isnan(v) for v in c)]
    if unknown:
        if isinstance(chunks, tuple) and len(chunks) == x.ndim and all(
                chunks[i] == x.chunks[i] for i in unknown):
            pass
        else:
            raise ValueError("rechunk: axis %d has unknown chunk sizes; call "
                             "x.compute_chunk_sizes() first" % unknown[0])
    new = normalize_chunks(chunks, x.shape, limit=block_size_limit, dtype=x.dtype,
                           previous_chunks=x.chunks)
    # axes of unknown sizes keep x's own chunks, nan objects and all: arrays
    # made from x then line up with x along them (a tuple holding another
    # nan object would compare unequal to x's)
    new = tuple(x.chunks[i] if i in unknown else c for i, c in enumerate(new))
    if new == x.chunks:
        return x
    if any(isnan(v) for c in x.chunks for v in c):
        return _direct(x, new)
    if block_size_limit is None:
        limit = default_chunk_bytes()
    else:
        limit = parse_bytes(block_size_limit)
    src = x
    for stage in plan_rechunk(x.chunks, new, x.dtype.itemsize, limit):
        x = _direct(x, stage)
    first = getattr(src, "_rechunk_of", None)
    x._rechunk_of = src if first is None else first   # (compute.skip_rechunks)
    return x


def _direct(x, new):
    """One rechunk step: each output block from the input blocks it overlaps."""
    name = "rechunk-" + tokenize(x.name, new)
    # an axis of unknown sizes is left as it is (rechunk checks): block j
    # of the output is all of block j of the input
    plans = [[[(j, slice(None), slice(None))] for j in range(len(n))]
             if any(isnan(v) for v in n) else _axis_plan(o, n)
             for o, n in zip(x.chunks, new)]
    layer, read_layer = {}, {}
    reads = name + "-read"
    dtype = x.dtype
    for idx in itertools.product(*[range(len(c)) for c in new]):
        per_axis = [plans[d][j] for d, j in enumerate(idx)]
        okey = (name,) + idx
        if all(len(p) == 1 for p in per_axis):
            parts = [p[0] for p in per_axis]
            ikey = (x.name,) + tuple(p[0] for p in parts)
            full = all(p[1] == slice(None) or (p[1].start == 0 and
                                               p[1].stop == x.chunks[d][p[0]])
                       for d, p in enumerate(parts))
            src = resolve_alias(x._layers, ikey) if x.name in x._layers else None
            if full:
                layer[okey] = src if is_getter_task(src) else ikey
            else:
                sl = tuple(p[1] for p in parts)
                task = compose_getter(src, sl)
                if task is None and type(src) is np.ndarray:
                    task = src[sl]          # a view of an in-memory block
                if task is None and is_getter_task(src):
                    # a stored block cut into pieces: read for this rechunk
                    # alone, so that other readers of the block need not
                    # hold it until these pieces are wanted (a second read
                    # of a file rather than a block held: an anomaly
                    # against a climatology of the same data)
                    rkey = (reads,) + ikey[1:]
                    read_layer[rkey] = src
                    ikey = rkey
                layer[okey] = task if task is not None else (_slice_block, ikey, sl)
            continue
        shape = tuple(None if isnan(new[d][j]) else new[d][j] for d, j in enumerate(idx))
        keys, isl, osl = [], [], []
        for combo in itertools.product(*per_axis):
            keys.append((x.name,) + tuple(c[0] for c in combo))
            isl.append(tuple(c[1] for c in combo))
            osl.append(tuple(c[2] for c in combo))
        layer[okey] = (_assemble, shape, dtype, keys, isl, osl)
    layers = with_layer(x._layers, reads, read_layer) if read_layer else x._layers
    return Array(with_layer(layers, name, layer), name, new, dtype)


# ---------------------------------------------------------------------------
# planning

def _axis_inputs(old, new):
    """Per new block along one axis: the total size of the old blocks it
    overlaps (a rechunk task receives whole old blocks)."""
    oo = chunk_offsets(old)
    no = chunk_offsets(new)
    res = []
    for j in range(len(new)):
        lo, hi = no[j], no[j + 1]
        if hi == lo:
            res.append(0)
            continue
        i = bisect.bisect_right(oo, lo) - 1
        tot = 0
        while i < len(old) and oo[i] < hi:
            tot += old[i]
            i += 1
        res.append(tot)
    return res


def stage_task_bytes(old, new, itemsize):
    """An upper bound of the bytes any task of the direct rechunk old -> new
    holds (its input blocks plus its output block); 0 when nothing moves."""
    if tuple(map(tuple, old)) == tuple(map(tuple, new)):
        return 0
    ins = 1
    outs = 1
    for o, n in zip(old, new):
        ins *= max(_axis_inputs(o, n), default=0)
        outs *= max(n, default=0)
    return (ins + outs) * itemsize


def _refine(old, new):
    """The common refinement of two chunkings of one axis."""
    cuts = sorted(set(chunk_offsets(old)) | set(chunk_offsets(new)))
    out = tuple(b - a for a, b in zip(cuts, cuts[1:]))
    return out or (0,)


def _pack(pieces, target, fences):
    """Consecutive pieces merged into blocks of at most ``target`` (a piece
    larger than the target stays whole), never across an offset in
    ``fences`` (the old block boundaries)."""
    out = []
    cur = 0
    pos = 0
    for p in pieces:
        if cur and (cur + p > target or pos in fences):
            out.append(cur)
            cur = 0
        cur += p
        pos += p
    if cur or not out:
        out.append(cur)
    return tuple(out)


def plan_rechunk(old, new, itemsize, limit):
    """The chunkings a rechunk from ``old`` to ``new`` goes through (the last
    is ``new``): ``[new]`` when the direct rechunk keeps every task within
    ``limit`` bytes, else ``[intermediate, new]`` (see the module doc)."""
    old = tuple(tuple(c) for c in old)
    new = tuple(tuple(c) for c in new)
    if old == new:
        return []
    direct = stage_task_bytes(old, new, itemsize)
    if direct <= limit:
        return [new]
    refined = [_refine(o, n) for o, n in zip(old, new)]

    def cost(mid):
        return max(stage_task_bytes(old, mid, itemsize), stage_task_bytes(mid, new, itemsize))

    mid = tuple(refined)
    best = cost(mid)
    fences = [set(chunk_offsets(o)) for o in old]
    if best <= limit:
        targets = [max(r, default=0) for r in refined]
        grow = True
        while grow:
            grow = False
            for d in range(len(refined)):
                total = sum(refined[d])
                if targets[d] >= total:
                    continue
                t = min(max(2 * targets[d], 1), total)
                cand = mid[:d] + (_pack(refined[d], t, fences[d]),) + mid[d + 1:]
                c = cost(cand)
                if c <= limit:
                    targets[d] = t
                    if cand != mid:
                        mid, best = cand, c
                    grow = True
    if mid == old or mid == new or best >= direct:
        return [new]
    return [mid, new]
