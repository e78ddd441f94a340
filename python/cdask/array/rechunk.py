"""Direct rechunk: every output block is assembled from the input blocks that
overlap it (one task per output block; an output block lying inside one input
block is a slice of it, one equal to an input block is an alias)."""

import bisect
import itertools
import math

import numpy as np

from .chunks import normalize_chunks, chunk_offsets
from .core import Array, _with
from .tokenize import tokenize

__all__ = ["rechunk"]


def _assemble(shape, dtype, blocks, in_slices, out_slices):
    out = np.empty(shape, dtype=dtype)
    for b, isl, osl in zip(blocks, in_slices, out_slices):
        out[osl] = b[isl]
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
    dict changes only the axes it names, -1/None means the whole axis)."""
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
    if new == x.chunks:
        return x
    name = "rechunk-" + tokenize(x.name, new)
    plans = [_axis_plan(o, n) for o, n in zip(x.chunks, new)]
    layer = {}
    dtype = x.dtype
    for idx in itertools.product(*[range(len(c)) for c in new]):
        per_axis = [plans[d][j] for d, j in enumerate(idx)]
        okey = (name,) + idx
        if all(len(p) == 1 for p in per_axis):
            parts = [p[0] for p in per_axis]
            ikey = (x.name,) + tuple(p[0] for p in parts)
            full = all(p[1].start == 0 and p[1].stop == x.chunks[d][p[0]]
                       for d, p in enumerate(parts))
            if full:
                layer[okey] = ikey
            else:
                layer[okey] = (_slice_block, ikey, tuple(p[1] for p in parts))
            continue
        shape = tuple(new[d][j] for d, j in enumerate(idx))
        keys, isl, osl = [], [], []
        for combo in itertools.product(*per_axis):
            keys.append((x.name,) + tuple(c[0] for c in combo))
            isl.append(tuple(c[1] for c in combo))
            osl.append(tuple(c[2] for c in combo))
        layer[okey] = (_assemble, shape, dtype, keys, isl, osl)
    return Array(_with(x._layers, name, layer), name, new, dtype)
