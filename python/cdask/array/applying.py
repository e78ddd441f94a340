"""Functions applied along axes and over groups of elements:
``apply_along_axis``, ``apply_over_axes``, ``coarsen``, ``push``, and the
blockwise helpers ``atop`` (dask's old name of ``blockwise``) and
``unify_chunks``.

``apply_along_axis`` and ``apply_over_axes`` give every task whole vectors
(the axis in one block) and run NumPy's ``apply_along_axis`` on them.
``coarsen`` (dask's, not the internal block merging of ``coarsen.py``)
reduces every run of ``factor`` neighbouring elements: blocks are first
aligned to multiples of the factors, then each block is reduced on its own.
``push`` is a forward fill: each block is filled from its own last valid
values, and a carry (the last valid value before the block, and how far back
it is) runs along the axis block by block, as ``cumsum``'s does.
"""

import itertools
import warnings

import numpy as np

from .blockwise import blockwise
from .chunks import chunk_offsets
from .core import Array
from .creation import asarray
from .mapping import func_token, map_blocks
from .tokenize import tokenize
from .utils import common_chunks, isnan, normalize_axis_index, unknown_chunks_error, with_layer

__all__ = ["apply_along_axis", "apply_over_axes", "coarsen", "push", "atop", "unify_chunks"]


def _along(axis, ndim, index):
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


# ---------------------------------------------------------------------------
# apply_along_axis, apply_over_axes
# ---------------------------------------------------------------------------
def _along_axis_block(b, func1d, axis, args, kwargs, core_shape, dtype):
    if any(s == 0 for d, s in enumerate(b.shape) if d != axis):
        # NumPy cannot iterate over an empty axis; the block is empty anyway
        return np.empty(b.shape[:axis] + core_shape + b.shape[axis + 1:], dtype=dtype)
    return np.apply_along_axis(func1d, axis, b, *args, **kwargs)


def apply_along_axis(func1d, axis, arr, *args, dtype=None, shape=None, **kwargs):
    """``np.apply_along_axis``: ``func1d`` on every 1-d slice along ``axis``;
    its result's axes replace ``axis``.  ``dtype`` and ``shape`` (of one
    result) are found by calling ``func1d`` on a vector of ones of the axis'
    length when not given."""
    arr = asarray(arr)
    axis = normalize_axis_index(axis, arr.ndim)
    n = arr.shape[axis]
    if isnan(n):
        raise unknown_chunks_error("apply_along_axis")
    if shape is None or dtype is None:
        with np.errstate(all="ignore"):
            test = np.asarray(func1d(np.ones(int(n), dtype=arr.dtype), *args, **kwargs))
        if shape is None:
            shape = test.shape
        if dtype is None:
            dtype = test.dtype
    shape = tuple(int(s) for s in shape)
    if len(arr.chunks[axis]) > 1:
        arr = arr.rechunk({axis: -1})
    new = list(range(axis, axis + len(shape)))
    chunks = arr.chunks[:axis] + tuple((s,) for s in shape) + arr.chunks[axis + 1:]
    token = getattr(func1d, "__name__", "func1d")
    if not isinstance(token, str) or not token.isidentifier():
        token = "apply"
    return map_blocks(_along_axis_block, arr, func1d, axis, args, kwargs, shape,
                      np.dtype(dtype), dtype=dtype, chunks=chunks, drop_axis=axis,
                      new_axis=new, token=token + "_along_axis",
                      name="%s_along_axis-%s" % (token, tokenize(
                          func_token(func1d), arr.name, axis, args, sorted(kwargs.items()),
                          shape, str(np.dtype(dtype)))))


def apply_over_axes(func, a, axes):
    """``np.apply_over_axes`` as dask does it: ``func(vector, 0)`` reduces (or
    maps) every vector along each axis of ``axes`` in turn; a reduced axis
    is kept with length 1."""
    a = asarray(a)
    try:
        axes = tuple(axes)
    except TypeError:
        axes = (axes,)
    result = a
    for ax in axes:
        ax = normalize_axis_index(ax, a.ndim)
        result = apply_along_axis(func, ax, result, 0)
        if result.ndim == a.ndim - 1:
            result = result[(slice(None),) * ax + (None,)]
        elif result.ndim != a.ndim:
            raise ValueError("func must either preserve dimensionality of the input or "
                             "reduce it by one.")
    return result


# ---------------------------------------------------------------------------
# coarsen
# ---------------------------------------------------------------------------
def _aligned(chunks, factor):
    """Block boundaries moved down to multiples of ``factor`` (the excess of
    the axis, if any, in a last block of its own)."""
    offs = chunk_offsets(chunks)
    total = offs[-1]
    bounds = sorted({o - o % factor for o in offs[:-1]} | {total - total % factor, total})
    out = tuple(b - a for a, b in zip(bounds, bounds[1:]) if b > a)
    return out or (0,)


def _coarsen_block(b, reduction, factors, trim_excess, kwargs):
    if trim_excess:
        b = b[tuple(slice(0, s - s % f) for s, f in zip(b.shape, factors))]
    shape = []
    for s, f in zip(b.shape, factors):
        shape += [s // f, f]
    return reduction(b.reshape(shape), axis=tuple(range(1, 2 * b.ndim, 2)), **kwargs)


def coarsen(reduction, x, axes, trim_excess=False, **kwargs):
    """dask's ``coarsen``: ``reduction`` (like ``np.sum``) over every run of
    ``axes[axis]`` neighbouring elements along each axis of the dict
    ``axes``; a length that is not a multiple of its factor raises
    ValueError unless ``trim_excess`` (then the excess at the end is dropped)."""
    x = asarray(x)
    if not isinstance(axes, dict):
        raise TypeError("coarsen: axes must be a dict {axis: factor}, got %r" % (axes,))
    factors = [1] * x.ndim
    for ax, f in axes.items():
        f = int(f)
        if f < 1:
            raise ValueError("coarsen: factors must be positive integers, got %r" % (axes,))
        factors[normalize_axis_index(ax, x.ndim)] = f
    for d, f in enumerate(factors):
        if f > 1 and any(isnan(c) for c in x.chunks[d]):
            raise unknown_chunks_error("coarsen")
    if not trim_excess and any(f > 1 and x.shape[d] % f for d, f in enumerate(factors)):
        raise ValueError("Coarsening factors %s do not align with array shape %s."
                         % (axes, x.shape))
    mod = getattr(reduction, "__module__", "") or ""
    if mod.split(".")[0] in ("dask", "cdask") and hasattr(np, reduction.__name__):
        reduction = getattr(np, reduction.__name__)
    new = {d: _aligned(x.chunks[d], f) for d, f in enumerate(factors) if f > 1}
    new = {d: c for d, c in new.items() if c != x.chunks[d]}
    if new:
        x = x.rechunk(new)
    meta = reduction(np.empty((1,) * x.ndim, dtype=x.dtype), **kwargs)
    dtype = np.asarray(meta).dtype
    keep = [list(range(len(cc))) if f == 1 else [i for i, c in enumerate(cc) if c // f > 0]
            or [0] for cc, f in zip(x.chunks, factors)]
    chunks = tuple(cc if f == 1 else tuple(cc[i] // f for i in k)
                   for cc, f, k in zip(x.chunks, factors, keep))
    name = "coarsen-" + tokenize(func_token(reduction), x.name, factors, trim_excess,
                                 sorted(kwargs.items()))
    layer = {}
    for oidx in itertools.product(*map(range, map(len, chunks))):
        iidx = tuple(k[i] for k, i in zip(keep, oidx))
        layer[(name,) + oidx] = (_coarsen_block, (x.name,) + iidx, reduction, tuple(factors),
                                 trim_excess, kwargs)
    return Array(with_layer(x._layers, name, layer), name, chunks, dtype)


# ---------------------------------------------------------------------------
# push (forward fill)
# ---------------------------------------------------------------------------
def _push_summary(b, axis):
    """(last valid value, elements after it, any valid) of a block, keepdims."""
    v = np.moveaxis(b, axis, -1)
    L = v.shape[-1]
    pos = np.where(~np.isnan(v), np.arange(L), -1).max(axis=-1, initial=-1, keepdims=True)
    has = pos >= 0
    val = np.take_along_axis(v, np.maximum(pos, 0), axis=-1) if L else \
        np.full(v.shape[:-1] + (1,), np.nan, dtype=b.dtype)
    val = np.where(has, val, np.nan).astype(b.dtype)
    return val, np.where(has, L - 1 - pos, L), has


def _push_carry(prev, block, axis):
    s_val, s_age, s_has = _push_summary(block, axis)
    if prev is None:
        return s_val, s_age, s_has
    c_val, c_age, c_has = prev
    return (np.where(s_has, s_val, c_val), np.where(s_has, s_age, c_age + s_age),
            s_has | c_has)


def _push_block(b, carry, n, axis):
    v = np.moveaxis(b, axis, -1)
    L = v.shape[-1]
    j = np.arange(L)
    last = np.maximum.accumulate(np.where(~np.isnan(v), j, -1), axis=-1) if L else \
        np.zeros(v.shape, dtype=np.intp)
    filled = np.take_along_axis(v, np.maximum(last, 0), axis=-1) if L else v.copy()
    age = j - last
    none = last < 0
    if carry is not None:
        c_val, c_age, c_has = carry
        filled = np.where(none & c_has, c_val, filled)
        age = np.where(none, c_age + j + 1, age)
        none = none & ~c_has
    filled = np.where(none, np.nan, filled)
    if n is not None:
        filled = np.where(age <= n, filled, np.nan)
    return np.moveaxis(filled.astype(b.dtype, copy=False), -1, axis)


def push(array, n, axis):
    """dask's ``push`` (bottleneck's ``push``): every NaN along ``axis``
    replaced by the last valid value before it, if that is at most ``n``
    positions back (``n=None``: however far).  Arrays without NaNs (integers,
    bools) come back unchanged.  Unknown chunk sizes are fine."""
    x = asarray(array)
    axis = normalize_axis_index(axis, x.ndim)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError("push: n must be None or a non-negative integer, got %r" % (n,))
        n = int(n)
    if x.dtype.kind not in "fc":
        return x
    token = tokenize(x.name, n, axis)
    cname, oname = "push-carry-" + token, "push-" + token
    carries, outs = {}, {}
    for idx in itertools.product(*map(range, x.numblocks)):
        i = idx[axis]
        prev = idx[:axis] + (i - 1,) + idx[axis + 1:]
        if i:
            carries[(cname,) + idx] = (_push_carry, (cname,) + prev if i > 1 else None,
                                       (x.name,) + prev, axis)
        outs[(oname,) + idx] = (_push_block, (x.name,) + idx,
                                (cname,) + idx if i else None, n, axis)
    layers = with_layer(with_layer(x._layers, cname, carries), oname, outs)
    return Array(layers, oname, x.chunks, x.dtype)


# ---------------------------------------------------------------------------
# atop, unify_chunks
# ---------------------------------------------------------------------------
def atop(*args, **kwargs):
    """dask's deprecated name of :func:`blockwise` (it warns, as dask's does)."""
    warnings.warn("The da.atop function has moved to da.blockwise", UserWarning, stacklevel=2)
    return blockwise(*args, **kwargs)


def unify_chunks(*args, **kwargs):
    """dask's ``unify_chunks(x, 'ij', y, 'jk', ...)``: the common chunks of
    each index letter (axes of length 1 broadcast), and the arrays rechunked
    to them.  Returns ``({letter: chunks}, [arrays])``; arguments whose index
    is None pass through."""
    if not args:
        return {}, []
    if len(args) % 2:
        raise ValueError("unify_chunks: arguments must come in (array, index) pairs")
    pairs = [(asarray(a) if ind is not None else a, ind) for a, ind in
             zip(args[::2], args[1::2])]
    if all(ind is None for _, ind in pairs):
        return {}, [a for a, _ in pairs]
    per = {}
    for a, ind in pairs:
        if ind is None:
            continue
        ind = tuple(ind)
        if len(ind) != a.ndim:
            raise ValueError("unify_chunks: index %r has %d letters for an array of %d "
                             "dimensions" % (ind, len(ind), a.ndim))
        for lab, c in zip(ind, a.chunks):
            per.setdefault(lab, []).append(c)
    chunkss = {}
    for lab, lists in per.items():
        real = [c for c in lists if c != (1,)] or lists
        sizes = {sum(c) for c in real if not any(isnan(v) for v in c)}
        if len(sizes) > 1:
            raise ValueError("Shapes do not align: index %r has lengths %s"
                             % (lab, sorted(sizes)))
        chunkss[lab] = common_chunks(real)
    arrays = []
    for a, ind in pairs:
        if ind is None:
            arrays.append(a)
            continue
        want = {d: chunkss[lab] for d, lab in enumerate(ind)
                if a.chunks[d] != (1,) and a.chunks[d] != chunkss[lab]}
        arrays.append(a.rechunk(want) if want else a)
    return chunkss, arrays
