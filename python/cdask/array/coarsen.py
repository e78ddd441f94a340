"""Fewer tasks than blocks: an Array's rules rebuilt over merged blocks.

Graphs of millions of tiny blocks spend their time in the scheduler, not in
the kernels: a block of 10 float64 is 80 bytes of work for a task that costs
far more to schedule.  When such blocks only feed a reduction - their
partials never leave the computation - nothing needs them one by one, so
:func:`coarsen` rebuilds the Array that the reduction reads over a grid whose
blocks are runs of neighbouring blocks along the reduced axes, one task per
run, sized to the cache-sized pieces the fused loop walks anyway.

It works on :class:`~cdask.array.layers.Blockwise` rules only - elementwise
maps, masks, partials and sources (``ones``, ``arange``, getters of
memory-mapped files): each is the same rule over the merged grid, under a new
name.  The tiny-block layers stay in the graph unread, so their tasks are
never made.  Elementwise results are the same bits whatever the grid; sums
and means add the same elements in another grouping, within NumPy's own
rounding.  The blocks a user asks for keep their keys: only the axes that
the reduction removes are merged.
"""

import math

from .core import BLOCK_BYTES
from .layers import Blockwise
from .tokenize import tokenize
from .utils import isnan

__all__ = ["coarsen", "TARGET_BYTES", "SMALL_BYTES"]

# A merged block is about this big: a few thousand of the fused loop's
# 4096-element pieces would be too many for the cache, one is too few to pay
# for a task.
TARGET_BYTES = 1 << 20
# Blocks at least this big are left as they are.
SMALL_BYTES = 64 << 10
# Merged blocks are never so few that a worker would idle: at least this
# many per reduction (when there are that many blocks to start with).
MIN_TASKS = 16


def _merge(chunks, groups):
    """chunks with runs of ``groups[d]`` neighbouring blocks merged along axis d."""
    out = []
    for c, g in zip(chunks, groups):
        if g <= 1:
            out.append(tuple(c))
        else:
            out.append(tuple(sum(c[i:i + g]) for i in range(0, len(c), g)))
    return tuple(out)


def _block_bytes(layers, name, seen=0):
    """The known size of a block of layer ``name``, or of the first layer
    below it through the first block operands (masks have unknown sizes)."""
    while seen < 64:
        b = BLOCK_BYTES.get(name)
        if b is not None:
            return b
        lay = layers.get(name)
        if type(lay) is not Blockwise:
            return None
        blocks = lay.block_args()
        if not blocks:
            return None
        name = blocks[0][1]
        seen += 1
    return None


def _rebuild(layers, name, groups, new_layers, memo):
    """The name of layer ``name`` rebuilt over its grid merged by ``groups``
    (per axis of that layer), adding the rebuilt layers to ``new_layers``;
    None when a layer on the way is not a rule."""
    key = (name, groups)
    if key in memo:
        return memo[key]
    if not any(g > 1 for g in groups):
        memo[key] = name
        return name
    lay = layers.get(name)
    if type(lay) is not Blockwise or len(groups) != len(lay.numblocks):
        memo[key] = None
        return None
    nb = tuple(-(-n // g) if g > 1 else n for n, g in zip(lay.numblocks, groups))
    args = []
    for a in lay.args:
        kind = a[0]
        if kind == "block":
            src, imap = a[1], a[2]
            sub = tuple(1 if m is None else groups[m] for m in imap)
            new = _rebuild(layers, src, sub, new_layers, memo)
            if new is None:
                memo[key] = None
                return None
            args.append(("block", new, imap))
        elif kind == "const":
            args.append(a)
        elif kind in ("shape", "slices"):
            args.append((kind, _merge(a[1], groups)))
        elif kind in ("lo", "hi"):
            args.append((kind, a[1], _merge(a[2], groups)))
        else:
            memo[key] = None
            return None
    new_name = "%s-merged-%s" % (name.split("-")[0], tokenize(name, groups))
    new_layers[new_name] = Blockwise(new_name, nb, lay.func, args, lay.program)
    b = BLOCK_BYTES.get(name)
    if b is not None:
        BLOCK_BYTES[new_name] = b * math.prod(groups)
    memo[key] = new_name
    return new_name


def _reachable(layers, name):
    """The layers that ``name`` reads, directly or not, when they are all
    rules (the unmerged layers are then left out, so nothing ever builds
    their tasks); ``layers`` as given when a plain layer is among them (its
    reads are not known without reading its tasks)."""
    out = {}
    stack = [name]
    while stack:
        n = stack.pop()
        if n in out:
            continue
        lay = layers.get(n)
        if lay is None:
            continue
        if type(lay) is not Blockwise:
            return layers
        out[n] = lay
        stack.extend(lay.reads())
    return out


def coarsen(x, axes, target=TARGET_BYTES, small=SMALL_BYTES):
    """``(layers, name, chunks)`` of an Array equal to ``x`` whose blocks are
    runs of neighbouring blocks of ``x`` along ``axes``, or None when ``x``'s
    blocks are not small, there is nothing to merge, or a layer it needs is
    not a rule."""
    axes = sorted(set(axes))
    if not axes or type(x._layers.get(x.name)) is not Blockwise:
        return None
    nb = x.numblocks
    if any(nb[a] == 0 for a in axes) or all(nb[a] == 1 for a in axes):
        return None
    b = _block_bytes(x._layers, x.name)
    if b is None or b >= small:
        return None
    # how many blocks to merge: up to the target size, keeping MIN_TASKS
    total = math.prod(nb[a] for a in axes)
    others = math.prod(n for d, n in enumerate(nb) if d not in axes)
    want = max(1, target // max(b, 1))
    want = min(want, max(1, (total * others) // MIN_TASKS))
    if want <= 1:
        return None
    groups = [1] * len(nb)
    # spread the factor over the reduced axes, the last (contiguous) first
    left = want
    for a in reversed(axes):
        share = max(1, round(left ** (1.0 / (axes.index(a) + 1))))
        g = min(nb[a], share)
        groups[a] = g
        left = max(1, left // g)
    groups = tuple(groups)
    if not any(g > 1 for g in groups):
        return None
    new_layers = {}
    name = _rebuild(x._layers, x.name, groups, new_layers, {})
    if name is None:
        return None
    layers = dict(x._layers)
    layers.update(new_layers)
    layers = _reachable(layers, name)
    chunks = []
    for c, g in zip(x.chunks, groups):
        if g <= 1:
            chunks.append(c)
        elif any(isnan(v) for v in c):
            chunks.append((math.nan,) * -(-len(c) // g))
        else:
            chunks.append(_merge((c,), (g,))[0])
    return layers, name, tuple(chunks)
