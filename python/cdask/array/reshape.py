"""Dimension shuffling: ``reshape``, ``ravel``, ``moveaxis``, ``rollaxis``,
``expand_dims``, ``broadcast_to``, ``flip``/``flipud``/``fliplr``, ``squeeze``,
``swapaxes``.

Reshape (C order) works group by group.  The axes of the input and output
shapes are cut into the smallest runs whose sizes multiply to the same number
(``(6, 5, 4) -> (30, 4)``: ``[6, 5] -> [30]`` and ``[4] -> [4]``).  Inside a
run, a block of the input maps to exactly one block of the output when, on
both sides, the block is a range along the first axis of the run that is not
of length 1 and covers every later axis of the run whole: then it is one
contiguous range of the run's flattened index.  So the input is rechunked
that way, with the boundaries of that range put at multiples of
``lcm(P, Q)`` (``P``, ``Q``: the products of the later axes of the run on
either side) nearest below the existing block boundaries, and every block is
reshaped on its own (one task per block).  Where merging makes blocks larger
than both the input's largest block and ``limit`` bytes (default: config
``array.chunk-size``), the runs are cut again at multiples of the same unit.
Any reshape NumPy accepts works,
including runs that split "unevenly" (``(6, 5, 4) -> (4, 5, 6)``); the
price there is larger blocks.

``merge_chunks=False`` (dask's option): where several input axes merge into
one output axis, the leading ones are rechunked to blocks of 1 and the last
one keeps its blocks, instead of being merged into larger blocks.
"""

import itertools
import math
import numbers
import operator

import numpy as np

from ..utils import parse_bytes
from .chunks import default_chunk_bytes, normalize_chunks
from .core import Array, transpose
from .creation import asarray
from .elemwise import unify_chunks_broadcast
from .tokenize import tokenize
from .utils import (broadcast_shapes, isnan, normalize_axis, normalize_axis_index,
                    unknown_chunks_error, with_layer)

__all__ = ["reshape", "ravel", "flatten", "moveaxis", "rollaxis", "expand_dims",
           "broadcast_to", "broadcast_arrays", "flip", "flipud", "fliplr", "squeeze", "swapaxes"]

_AxisError = np.exceptions.AxisError


def _norm_axes(axes, ndim, argname="axis"):
    if isinstance(axes, (tuple, list)):
        out = tuple(normalize_axis_index(a, ndim) for a in axes)
    else:
        out = (normalize_axis_index(axes, ndim),)
    if len(set(out)) != len(out):
        raise ValueError("repeated axis in `%s` argument" % argname)
    return out


def _has_unknown(x):
    return any(isnan(c) for cc in x.chunks for c in cc)


# ---------------------------------------------------------------------------
# reshape
# ---------------------------------------------------------------------------
def _reshape_block(b, shape):
    return np.reshape(b, shape)


def _normalize_shape(shape, size):
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError("shape must be a sequence of integers, got %r" % (shape,)) from None
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise ValueError("can only specify one unknown dimension")
    if any(s < -1 for s in shape):
        raise ValueError("negative dimensions not allowed")
    if unknown:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or size % known:
            raise ValueError("cannot reshape array of size %d into shape %s"
                             % (size, _fmt_shape(shape)))
        shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size:
        raise ValueError("cannot reshape array of size %d into shape %s"
                         % (size, _fmt_shape(shape)))
    return shape


def _fmt_shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _groups(ishape, oshape):
    """Minimal runs ``(in_axes, out_axes)`` with equal products (size > 0)."""
    groups = []
    i = o = 0
    ni, no = len(ishape), len(oshape)
    while i < ni and o < no:
        gi, go = [i], [o]
        pi, po = ishape[i], oshape[o]
        i += 1
        o += 1
        while pi != po:
            if pi < po:
                gi.append(i)
                pi *= ishape[i]
                i += 1
            else:
                go.append(o)
                po *= oshape[o]
                o += 1
        groups.append((gi, go))
    # whatever is left on either side are length-1 axes
    for k in range(i, ni):
        groups.append(([k], []))
    for k in range(o, no):
        groups.append(([], [k]))
    return groups


def _lead(axes, shape):
    """The first axis of a run whose length is not 1 (else the first)."""
    for a in axes:
        if shape[a] != 1:
            return a
    return axes[0]


def _round_bounds(offsets, unit, total):
    b = sorted({(v // unit) * unit for v in offsets} | {0, total})
    return [b[k + 1] - b[k] for k in range(len(b) - 1)]


def _assign(in_chunks, out_chunks, gi, go, a0, o0, P, Q, flat, ishape, shape):
    for a in gi:
        in_chunks[a] = tuple(f // P for f in flat) if a == a0 else (ishape[a],)
    for a in go:
        out_chunks[a] = tuple(f // Q for f in flat) if a == o0 else (shape[a],)


def _order(order, reshaping):
    """NumPy's ``order=`` -> 'C' or 'F' ('A' and, for ravel, 'K' read the
    array in C order: cdask arrays have no memory layout)."""
    if order is None:
        return "C"
    if not isinstance(order, str):
        raise TypeError("order must be str, not %s" % type(order).__name__)
    o = order.upper()
    if o not in ("C", "F", "A", "K"):
        raise ValueError("order must be one of 'C', 'F', 'A', or 'K' (got %r)" % (order,))
    if o == "K" and reshaping:
        raise ValueError("order 'K' is not permitted for reshaping")
    return "F" if o == "F" else "C"


def reshape(x, shape, merge_chunks=True, limit=None, order="C"):
    """``np.reshape`` (see the module docstring for the chunks).  ``order='F'``
    is NumPy's definition: the reversed-axes array reshaped in C order to the
    reversed shape, its axes reversed back (two blockwise transposes around
    a C-order reshape)."""
    x = asarray(x)
    if _order(order, True) == "F":
        if isinstance(x.size, float) and math.isnan(x.size):
            raise unknown_chunks_error("reshape")
        shape = _normalize_shape(shape, x.size)[::-1]     # NumPy's errors, for its shape
        return transpose(reshape(transpose(x), shape, merge_chunks=merge_chunks,
                                 limit=limit))
    if isinstance(x.size, float) and math.isnan(x.size):
        raise unknown_chunks_error("reshape")
    shape = _normalize_shape(shape, x.size)
    if shape == x.shape:
        return x
    if _has_unknown(x):
        raise unknown_chunks_error("reshape")
    name = "reshape-" + tokenize(x.name, shape, merge_chunks, limit)
    if x.size == 0 or x.ndim == 0 or len(shape) == 0:
        # one block in, one block out
        y = x.rechunk(tuple(-1 for _ in range(x.ndim))) if x.ndim else x
        layer = {(name,) + (0,) * len(shape):
                 (_reshape_block, (y.name,) + (0,) * y.ndim, shape)}
        return Array(with_layer(y._layers, name, layer), name, tuple((s,) for s in shape),
                     x.dtype)
    ishape = x.shape
    in_chunks = list(x.chunks)
    out_chunks = [None] * len(shape)
    # for each group: the input axis and output axis that carry its blocks
    carriers = []
    pending = []
    for gi, go in _groups(ishape, shape):
        if not go:
            in_chunks[gi[0]] = (1,)
            continue
        if not gi:
            out_chunks[go[0]] = (1,)
            continue
        if len(gi) == 1 and len(go) == 1:
            out_chunks[go[0]] = x.chunks[gi[0]]
            carriers.append((gi[0], go[0]))
            continue
        a0 = _lead(gi, ishape)
        o0 = _lead(go, shape)
        total = math.prod(ishape[a] for a in gi)
        if not merge_chunks and len(go) == 1:
            # several input axes into one: blocks of 1 on the leading ones,
            # the last non-1 axis keeps its blocks
            last = [a for a in gi if ishape[a] != 1]
            last = last[-1] if last else gi[-1]
            for a in gi:
                in_chunks[a] = (1,) * ishape[a] if a < last else (
                    x.chunks[a] if a == last else (ishape[a],))
            reps = math.prod(ishape[a] for a in gi if a < last)
            out_chunks[go[0]] = tuple(x.chunks[last]) * reps
            carriers.append((tuple(a for a in gi if a <= last and ishape[a] != 1)
                             or (last,), go[0]))
            continue
        P = math.prod(ishape[a] for a in gi if a > a0)
        Q = math.prod(shape[a] for a in go if a > o0)
        unit = P * Q // math.gcd(P, Q)
        offs = [0]
        for c in x.chunks[a0]:
            offs.append(offs[-1] + c * P)
        flat = _round_bounds(offs, unit, total)
        _assign(in_chunks, out_chunks, gi, go, a0, o0, P, Q, flat, ishape, shape)
        carriers.append((a0, o0))
        # the largest input block's extent within this run, in elements
        orig = max(x.chunks[a0]) * math.prod(max(x.chunks[a]) for a in gi if a > a0)
        pending.append((gi, go, a0, o0, P, Q, unit, flat, orig))
    if pending:
        # merged runs can make blocks much larger than the input's: cut them
        # (at multiples of the run's unit) down to the byte limit

        lim = max(1, (parse_bytes(limit) if limit is not None else default_chunk_bytes())
                  // max(x.dtype.itemsize, 1))
        for gi, go, a0, o0, P, Q, unit, flat, orig in pending:
            other = math.prod(max(in_chunks[a]) for a in range(x.ndim) if a not in gi)
            cap = max(unit, (lim // max(other, 1)) // unit * unit, orig // unit * unit)
            if max(flat) <= cap:
                continue
            new = []
            for f in flat:
                if f <= cap:
                    new.append(f)
                    continue
                units = f // unit
                n = -(-f // cap)
                q, r = divmod(units, n)
                new.extend(unit * (q + (k < r)) for k in range(n))
            _assign(in_chunks, out_chunks, gi, go, a0, o0, P, Q, new, ishape, shape)
    y = x.rechunk(tuple(in_chunks))
    out_chunks = tuple(out_chunks)
    # block index of the output -> block index of the input
    layer = {}
    ranges = []
    for ia, oa in carriers:
        if isinstance(ia, tuple):
            # merge_chunks=False: several input axes enumerate the output blocks
            ranges.append((ia, oa, list(itertools.product(*[range(len(y.chunks[a]))
                                                             for a in ia]))))
        else:
            ranges.append(((ia,), oa, [(j,) for j in range(len(y.chunks[ia]))]))
    for combo in itertools.product(*[list(enumerate(r[2])) for r in ranges]):
        iidx = [0] * y.ndim
        oidx = [0] * len(shape)
        for (ia, oa, _), (j, ins) in zip(ranges, combo):
            oidx[oa] = j
            for a, v in zip(ia, ins):
                iidx[a] = v
        bshape = tuple(out_chunks[d][oidx[d]] for d in range(len(shape)))
        layer[(name,) + tuple(oidx)] = (_reshape_block, (y.name,) + tuple(iidx), bshape)
    return Array(with_layer(y._layers, name, layer), name, out_chunks, x.dtype)


def ravel(x, order="C"):
    """``np.ravel``: a 1-d array, elements in C order or (``order='F'``) in
    Fortran order."""
    x = asarray(x)
    if _order(order, False) == "F":
        x = transpose(x)
    if x.ndim == 1:
        return x
    return reshape(x, (-1,))


def flatten(x, order="C"):
    """dask's ``Array.flatten``: the same as :func:`ravel`."""
    return ravel(x, order)


# ---------------------------------------------------------------------------
# axis permutations and new axes
# ---------------------------------------------------------------------------
def moveaxis(a, source, destination):
    """``np.moveaxis``: move axes to new positions (other axes keep their order)."""
    a = asarray(a)
    src = _norm_axes(source, a.ndim, "source")
    dst = _norm_axes(destination, a.ndim, "destination")
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number "
                         "of elements")
    order = [k for k in range(a.ndim) if k not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, tuple(order))


def rollaxis(a, axis, start=0):
    """``np.rollaxis``."""
    a = asarray(a)
    n = a.ndim
    axis = normalize_axis_index(axis, n)
    start = operator.index(start)
    if not -n <= start <= n:
        raise _AxisError("'start' arg requires %d <= start < %d, but %d was passed in"
                         % (-n, n + 1, start))
    if start < 0:
        start += n
    if axis < start:
        start -= 1
    if axis == start:
        return a
    order = [k for k in range(n) if k != axis]
    order.insert(start, axis)
    return transpose(a, tuple(order))


def _expand_block(b, axes):
    return np.expand_dims(b, axes)


def expand_dims(a, axis):
    """``np.expand_dims``: insert length-1 axes at the positions ``axis``."""
    a = asarray(a)
    nd = a.ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1)
    axes = tuple(sorted(_norm_axes(axis, nd)))
    name = "expand-dims-" + tokenize(a.name, axes)
    chunks = []
    it = iter(a.chunks)
    for d in range(nd):
        chunks.append((1,) if d in axes else next(it))
    layer = {}
    for k in a._keys_flat():
        it = iter(k[1:])
        idx = tuple(0 if d in axes else next(it) for d in range(nd))
        layer[(name,) + idx] = (_expand_block, k, axes)
    return Array(with_layer(a._layers, name, layer), name, tuple(chunks), a.dtype)


def _broadcast_block(b, shape):
    return np.broadcast_to(b, shape)


def broadcast_to(x, shape, chunks=None, meta=None):
    """``np.broadcast_to``.  New leading axes and stretched length-1 axes are
    one block unless ``chunks`` (for the whole output) says otherwise."""
    x = asarray(x)
    if isinstance(shape, (numbers.Integral, np.integer)):
        shape = (shape,)
    shape = tuple(operator.index(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError("all elements of broadcast shape must be non-negative")
    nd = len(shape)
    if nd < x.ndim:
        raise ValueError("input operand has more dimensions than allowed by the axis "
                         "remapping")
    off = nd - x.ndim
    for k, s in enumerate(x.shape):
        if isnan(s):
            raise unknown_chunks_error("broadcast_to")
        if s != 1 and s != shape[k + off]:
            raise ValueError("operands could not be broadcast together with remapped shapes "
                             "[original->remapped]: %s and requested shape %s"
                             % (_fmt_shape(x.shape), _fmt_shape(shape)))
    if shape == x.shape and chunks is None:
        return x
    if chunks is None:
        out_chunks = []
        for d in range(nd):
            k = d - off
            if k < 0 or (x.shape[k] == 1 and shape[d] != 1):
                out_chunks.append((shape[d],))
            else:
                out_chunks.append(x.chunks[k])
        out_chunks = tuple(out_chunks)
    else:
        out_chunks = normalize_chunks(chunks, shape, dtype=x.dtype)
        for d in range(off, nd):
            k = d - off
            if x.shape[k] == shape[d] and shape[d] != 1 and out_chunks[d] != x.chunks[k]:
                # the axis is not stretched: rechunk the input to match
                x = x.rechunk({k: out_chunks[d]})
    # the stretched length-1 axes of x must be one block (they are)
    name = "broadcast-to-" + tokenize(x.name, shape, out_chunks)
    layer = {}
    for oidx in itertools.product(*[range(len(c)) for c in out_chunks]):
        iidx = tuple(0 if x.shape[k] == 1 and shape[k + off] != 1 else oidx[k + off]
                     for k in range(x.ndim))
        bshape = tuple(out_chunks[d][oidx[d]] for d in range(nd))
        layer[(name,) + oidx] = (_broadcast_block, (x.name,) + iidx, bshape)
    return Array(with_layer(x._layers, name, layer), name, out_chunks, x.dtype)


def broadcast_arrays(*args, subok=False):
    """``np.broadcast_arrays``: the arguments broadcast to their common shape
    (a list, as NumPy 2 returns a tuple-like sequence)."""

    arrays = [asarray(a) for a in args]
    shape = broadcast_shapes([a.shape for a in arrays])
    if any(isnan(s) for s in shape):
        raise unknown_chunks_error("broadcast_arrays")
    arrays, chunks = unify_chunks_broadcast(arrays, shape)
    return [broadcast_to(a, shape, chunks=chunks) for a in arrays]


# ---------------------------------------------------------------------------
# flips and rolls
# ---------------------------------------------------------------------------
def flip(m, axis=None):
    """``np.flip``: reverse the order of elements along the given axes (all
    axes when None)."""
    m = asarray(m)
    axes = range(m.ndim) if axis is None else _norm_axes(axis, m.ndim)
    idx = [slice(None)] * m.ndim
    for a in axes:
        idx[a] = slice(None, None, -1)
    return m[tuple(idx)]


def flipud(m):
    """``np.flipud``: reverse axis 0."""
    m = asarray(m)
    if m.ndim < 1:
        raise ValueError("Input must be >= 1-d.")
    return flip(m, 0)


def fliplr(m):
    """``np.fliplr``: reverse axis 1."""
    m = asarray(m)
    if m.ndim < 2:
        raise ValueError("Input must be >= 2-d.")
    return flip(m, 1)


# ---------------------------------------------------------------------------
# small shape routines the Array methods delegate to
# ---------------------------------------------------------------------------
def _squeeze_block(b, axes):
    return np.squeeze(b, axis=axes)


def squeeze(a, axis=None):
    """``np.squeeze``: drop length-1 axes."""
    a = asarray(a)
    if axis is None:
        axes = tuple(i for i, s in enumerate(a.shape) if s == 1)
    else:
        axes = normalize_axis(axis, a.ndim)
        for i in axes:
            if a.shape[i] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not "
                                 "equal to one")
    if not axes:
        return a
    name = "squeeze-" + tokenize(a.name, axes)
    layer = {}
    for k in a._keys_flat():
        idx = tuple(i for d, i in enumerate(k[1:]) if d not in axes)
        layer[(name,) + idx] = (_squeeze_block, k, axes)
    layers = dict(a._layers)
    layers[name] = layer
    chunks = tuple(c for d, c in enumerate(a.chunks) if d not in axes)
    return Array(layers, name, chunks, a.dtype)


def swapaxes(a, axis1, axis2):
    """``np.swapaxes``."""
    a = asarray(a)
    ax = list(range(a.ndim))
    i, j = normalize_axis(axis1, a.ndim)[0], normalize_axis(axis2, a.ndim)[0]
    ax[i], ax[j] = ax[j], ax[i]
    return a.transpose(ax)
