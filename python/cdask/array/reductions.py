"""Reductions of cdask arrays: a per-chunk step, a tree of combine steps, an aggregate.

``reduction(x, chunk, aggregate, ...)`` is the general tool (dask's signature);
the named reductions (``sum``, ``mean``, ``argmin``...) are built on the same
tree but with their own partial results:

* chunk step: one task per block computes a *partial* over the reduced axes
  (kept as length-1 axes, ``keepdims``);
* combine steps: partials are grouped ``split_every`` at a time (per reduced
  axis, or over the flattened block list when every axis is reduced and the
  order of the partials does not matter) and merged, level after level;
* aggregate: the last group is merged and turned into the output block
  (dtype cast, reduced axes dropped unless ``keepdims``).

Partials never need the size of a block to be known when the graph is built,
so every reduction works on arrays with unknown (nan) chunk sizes such as
``x[x > 0]``: counts travel inside the partials.

Partials:

* sum, prod, nansum, nanprod, any, all, count_nonzero: an ndarray.  Floating
  sums are merged with a compensated (exactly rounded for scalars) sum, so the
  error of a tree of partials stays close to that of one pairwise sum.
* min, max, nanmin, nanmax: an ndarray, or ``None`` for a block that is empty
  along a reduced axis (NumPy has no identity for them).
* mean, var, std (and nan versions): ``(count, sum, M2)`` merged with Chan's
  parallel formula (``M2`` only for var/std).
* argmin, argmax (and nan versions): ``(value, index, length)``; indices are
  local to the group and shifted by the lengths of the partials before them
  when groups merge (in order along the axis).

Every task callable is a module-level function (graphs pickle).  ``sum`` of a
whole array in its default dtype runs as ``cdask.kernels.sum`` C tasks.
"""

import builtins
import inspect
import math
import warnings
from itertools import product
from numbers import Integral

import numpy as np

from .. import config
from .. import kernels as _kernels
from .chunk_types import maybe_masked
from .coarsen import coarsen
from .core import Array, blockwise_simple
from .creation import asarray, ones, zeros
from .elemwise import elemwise
from .layers import Blockwise
from .reshape import broadcast_to, ravel, reshape
from .tokenize import tokenize
from .utils import normalize_axis

__all__ = [
    "reduction",
    "sum", "prod", "mean", "std", "var", "min", "max", "any", "all",
    "argmin", "argmax", "nansum", "nanprod", "nanmean", "nanstd", "nanvar",
    "nanmin", "nanmax", "nanargmin", "nanargmax", "count_nonzero", "moment", "ptp", "average",
]

DEFAULT_SPLIT_EVERY = 8

_AxisError = np.exceptions.AxisError


def _new_array(x, new_layers, name, chunks, dtype):
    """An Array holding x's layers plus ``new_layers`` (dict layer name -> tasks)."""
    layers = dict(x._layers)
    layers.update(new_layers)
    return Array(layers, name, chunks, np.dtype(dtype))


def _handle_out(out, result):
    """dask's ``out=``: make the Array ``out`` refer to ``result``'s graph."""
    if out is None:
        return result
    if isinstance(out, tuple) and len(out) == 1:
        out = out[0]
    if not isinstance(out, Array):
        raise NotImplementedError("out= must be a cdask Array, got %s" % type(out).__name__)
    if out.shape != result.shape and not (_unknown(out.shape) or _unknown(result.shape)):
        raise ValueError("Mismatched shapes between result and out parameter: %s and %s"
                         % (result.shape, out.shape))
    # the target takes the result's graph, name, chunks and dtype
    out._become(result)
    return out


def _unknown(shape):
    return builtins.any(isinstance(s, float) and math.isnan(s) for s in shape)


def _normalize_split_every(split_every, axes):
    """-> dict axis -> group size (>= 2) for each reduced axis."""
    if split_every is None:
        split_every = config.get("split_every", None)
        if split_every is None:
            split_every = DEFAULT_SPLIT_EVERY
    if isinstance(split_every, dict):
        out = {}
        for a in axes:
            v = None
            for k, val in split_every.items():
                if k == a or (isinstance(k, Integral) and k < 0 and k % (builtins.max(axes) + 1 if axes else 1) == a):
                    v = val
            out[a] = builtins.max(int(v if v is not None else 2), 2)
        return out
    if not isinstance(split_every, Integral) or split_every < 1:
        raise ValueError("split_every must be an int >= 2 or a dict, got %r" % (split_every,))
    n = builtins.max(int(split_every ** (1.0 / (len(axes) or 1)) + 1e-9), 2)
    return dict.fromkeys(axes, n)


def _flat_group(split_every, split):
    if isinstance(split_every, Integral) and not isinstance(split_every, bool):
        return builtins.max(int(split_every), 2)
    return builtins.max(math.prod(split.values()) if split else 2, 2)


# ---------------------------------------------------------------------------
# the tree
# ---------------------------------------------------------------------------
def _tree(x, prefix, token, axes, keepdims, dtype, split_every, *,
          chunk, chunk_args=(), combine, combine_args=(), aggregate, aggregate_args=(),
          order_free=True, pass_group_shape=False, block_args=None):
    """Build the reduction graph of ``x`` over ``axes``; return the output Array.

    Tasks: ``(chunk, block_key, *block_args(idx), *chunk_args)`` per block,
    ``(combine, [partial keys], [group_shape], *combine_args)`` per group and
    ``(aggregate, [partial keys], [group_shape], *aggregate_args)`` per output
    block.  With ``order_free`` and every axis reduced, groups are taken over
    the flattened block list; otherwise over the block grid, ``split_every``
    blocks per reduced axis (then the list of a group is in C order over the
    group's sub-grid, so along one axis it is in axis order).
    """
    if block_args is None and order_free and not pass_group_shape and \
            config.get("array.coarsen", True):
        # tiny blocks whose partials stay inside the reduction: merged (for
        # cdask's own order-free partials; a user's chunk function or an
        # arg-reduction may see what a block is)
        merged = coarsen(x, axes)
        if merged is not None:
            x = Array(merged[0], merged[1], merged[2], x.dtype)
    ndim = x.ndim
    chunks = x.chunks
    nb = tuple(len(c) for c in chunks)
    split = _normalize_split_every(split_every, axes)
    xname = x.name
    pname = "%s-chunk-%s" % (prefix, token)
    oname = "%s-%s" % (prefix, token)
    new_layers = {}

    # ---- chunk step ----------------------------------------------------
    if block_args is None:
        # one partial per block: kept as its rule (layers.py) until read
        ptasks = Blockwise(pname, nb, chunk, [("block", xname, tuple(range(ndim)))] +
                           [("const", c) for c in chunk_args])
    else:
        ptasks = {}
        for idx in product(*map(range, nb)):
            extra = tuple(block_args(idx)) if block_args is not None else ()
            ptasks[(pname,) + idx] = (chunk, (xname,) + idx) + extra + tuple(chunk_args)
    if builtins.any(nb[a] == 0 for a in axes):
        # no block at all along a reduced axis: one empty block stands in
        shape = tuple(0 if a in axes else 1 for a in range(ndim))
        empty = np.empty(shape, dtype=x.dtype)
        nb = tuple(1 if a in axes else nb[a] for a in range(ndim))
        ptasks = {}
        for idx in product(*map(range, nb)):
            blk = np.empty(tuple(0 if a in axes else chunks[a][idx[a]] for a in range(ndim)),
                           dtype=x.dtype) if builtins.all(
                               not (isinstance(chunks[a][idx[a]], float)) for a in range(ndim)
                               if a not in axes) else empty
            extra = tuple(block_args(idx)) if block_args is not None else ()
            ptasks[(pname,) + idx] = (chunk, blk) + extra + tuple(chunk_args)
    new_layers[pname] = ptasks

    out_chunks = tuple((1,) if a in axes else chunks[a] for a in range(ndim)
                       if keepdims or a not in axes)
    all_axes = len(axes) == ndim

    if all_axes and order_free and not pass_group_shape:
        # ---- flat tree over the list of blocks ---------------------------
        g = _flat_group(split_every if split_every is not None else DEFAULT_SPLIT_EVERY, split)
        if ndim == 1:
            keys = [(pname, i) for i in range(nb[0])]
        else:
            keys = [(pname,) + idx for idx in product(*map(range, nb))]
        level = 0
        cargs = tuple(combine_args)
        while len(keys) > g:
            cname = "%s-combine%d-%s" % (prefix, level, token)
            n = len(keys)
            m = (n + g - 1) // g
            new_layers[cname] = {(cname, j): (combine, keys[j * g:(j + 1) * g]) + cargs
                                 for j in range(m)}
            keys = [(cname, j) for j in range(m)]
            level += 1
        okey = (oname,) + ((0,) * ndim if keepdims else ())
        new_layers[oname] = {okey: (aggregate, keys) + tuple(aggregate_args)}
        return _new_array(x, new_layers, oname, out_chunks, dtype)

    # ---- tree over the block grid ---------------------------------------
    grid = nb
    cur = pname
    level = 0

    def group_tasks(func, args, src, grid, new_grid, name, final):
        tasks = {}
        for o in product(*map(range, new_grid)):
            ranges = []
            gshape = []
            for a in range(ndim):
                if a in split:
                    lo = o[a] * split[a] if not final else 0
                    hi = builtins.min(lo + split[a], grid[a]) if not final else grid[a]
                    ranges.append(range(lo, hi))
                    gshape.append(hi - lo)
                else:
                    ranges.append((o[a],))
            keys = [(src,) + i for i in product(*ranges)]
            if final:
                okey = (name,) + tuple(0 if a in axes else o[a] for a in range(ndim)
                                       if keepdims or a not in axes)
            else:
                okey = (name,) + o
            if pass_group_shape:
                tasks[okey] = (func, keys, tuple(gshape)) + tuple(args)
            else:
                tasks[okey] = (func, keys) + tuple(args)
        return tasks

    while builtins.any(grid[a] > split[a] for a in axes):
        new_grid = tuple((grid[a] + split[a] - 1) // split[a] if a in split else grid[a]
                         for a in range(ndim))
        cname = "%s-combine%d-%s" % (prefix, level, token)
        new_layers[cname] = group_tasks(combine, combine_args, cur, grid, new_grid, cname, False)
        cur, grid = cname, new_grid
        level += 1
    final_grid = tuple(1 if a in split else grid[a] for a in range(ndim))
    new_layers[oname] = group_tasks(aggregate, aggregate_args, cur, grid, final_grid, oname, True)
    return _new_array(x, new_layers, oname, out_chunks, dtype)


def _finish(r, axes, keepdims, dtype):
    """Partial (keepdims) -> output block: drop reduced axes, cast, always an ndarray."""
    r = np.asarray(r)
    if not keepdims and axes:
        r = r.reshape(tuple(s for a, s in enumerate(r.shape) if a not in axes))
    if dtype is not None and r.dtype != dtype:
        r = r.astype(dtype)
    return r


# ---------------------------------------------------------------------------
# ndarray partials: sum, prod, any, all, count_nonzero, min, max
# ---------------------------------------------------------------------------
def _psum(b, axes, dtype=None):
    """``np.sum(b, axis=axes, keepdims=True)``, more accurate than NumPy along
    reduced axes that are not the innermost ones: NumPy sums those row by row
    (its error grows with the number of rows), here in slabs of ``_SLAB``
    rows, whose sums are then added (the error grows with the slab size plus
    the number of slabs).  Each slab is NumPy's own reduction, as fast as one
    over the whole block (no copy: the block is read where it lies).  Along
    innermost reduced axes NumPy's sum is pairwise already."""
    b = np.asarray(b)
    if dtype is not None and np.dtype(dtype).kind == "m":
        dtype = None    # a timedelta's sum is in its own dtype (NumPy takes no unit here)
    kind = np.dtype(dtype).kind if dtype is not None else b.dtype.kind
    nd = b.ndim
    if kind not in "fc" or not axes or b.size == 0 or _inner_reduced(b, axes):
        return np.sum(b, axis=axes, dtype=dtype, keepdims=True)
    first = builtins.min(axes)
    n = b.shape[first]
    if n <= _SLAB:
        return np.sum(b, axis=axes, dtype=dtype, keepdims=True)
    lead = (slice(None),) * first
    parts = [np.sum(b[lead + (slice(i, i + _SLAB),)], axis=axes, dtype=dtype, keepdims=True)
             for i in range(0, n, _SLAB)]
    return np.sum(np.concatenate(parts, axis=first), axis=first, keepdims=True)


_SLAB = 64


def _inner_reduced(b, axes):
    """Are the reduced axes the trailing ones, the last of them the one of
    smallest stride (NumPy's pairwise inner loop runs along it)?"""
    nd = b.ndim
    if tuple(sorted(axes)) != tuple(range(nd - len(axes), nd)):
        return False
    s = [abs(x) for x, n in zip(b.strides, b.shape) if n > 1]
    return not s or b.shape[-1] == 1 or abs(b.strides[-1]) == builtins.min(s)


def _chunk_sum(b, axes, dtype):
    return _psum(b, axes, dtype)


def _chunk_nansum(b, axes, dtype):
    b = np.asarray(b)
    if b.dtype.kind in "fc":
        b = np.where(np.isnan(b), 0, b)
    return _psum(b, axes, dtype)


def _chunk_prod(b, axes, dtype):
    return np.prod(b, axis=axes, dtype=dtype, keepdims=True)


def _chunk_nanprod(b, axes, dtype):
    return np.nanprod(b, axis=axes, dtype=dtype, keepdims=True)


def _chunk_any(b, axes):
    return np.any(b, axis=axes, keepdims=True)


def _chunk_all(b, axes):
    return np.all(b, axis=axes, keepdims=True)


def _chunk_count_nonzero(b, axes):
    return np.asarray(np.count_nonzero(b, axis=axes, keepdims=True), dtype=np.intp)


def _chunk_min(b, axes):
    if builtins.any(b.shape[a] == 0 for a in axes):
        return None
    return np.min(b, axis=axes, keepdims=True)


def _chunk_max(b, axes):
    if builtins.any(b.shape[a] == 0 for a in axes):
        return None
    return np.max(b, axis=axes, keepdims=True)


def _chunk_nanmin(b, axes):
    if builtins.any(b.shape[a] == 0 for a in axes):
        return None
    if b.dtype.kind in "fcmM":      # (NaT skipped too, as np.nanmin does)
        return np.fmin.reduce(b, axis=axes, keepdims=True)
    return np.min(b, axis=axes, keepdims=True)


def _chunk_nanmax(b, axes):
    if builtins.any(b.shape[a] == 0 for a in axes):
        return None
    if b.dtype.kind in "fcmM":
        return np.fmax.reduce(b, axis=axes, keepdims=True)
    return np.max(b, axis=axes, keepdims=True)


def _neumaier(parts):
    """Compensated elementwise sum of same-shape float arrays (inf/nan as plain sum)."""
    s = np.array(parts[0], dtype=np.float64, copy=True)
    c = np.zeros_like(s)
    with np.errstate(invalid="ignore", over="ignore"):
        for p in parts[1:]:
            p = np.asarray(p, dtype=np.float64)
            t = s + p
            big = np.abs(s) >= np.abs(p)
            c += np.where(big, (s - t) + p, (p - t) + s)
            s = t
        r = s + c
    return np.where(np.isfinite(s), r, s)


def _fsum_real(parts):
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=np.float64)
    first = np.asarray(parts[0])
    if first.size == 1:
        vals = [float(np.asarray(p).reshape(())) for p in parts]
        try:
            return np.full(first.shape, math.fsum(vals))
        except (OverflowError, ValueError):
            with np.errstate(invalid="ignore", over="ignore"):
                return np.full(first.shape, builtins.sum(vals))
    return _neumaier(parts)


def _accurate_sum(parts, dtype):
    """Sum of same-shape partials: compensated for floats, wrapping for ints."""
    dt = np.dtype(dtype)
    if dt.kind == "f" and dt.itemsize <= 8:
        return _fsum_real(parts).astype(dt, copy=False)
    if dt.kind == "c" and dt.itemsize <= 16:
        re = _fsum_real([np.real(p) for p in parts])
        im = _fsum_real([np.imag(p) for p in parts])
        out = np.empty(re.shape, dtype=dt)
        out.real = re
        out.imag = im
        return out
    out = np.array(parts[0], dtype=dt, copy=True)
    for p in parts[1:]:
        np.add(out, p, out=out, casting="unsafe")
    return out


def _combine_sum(parts, dtype):
    return _accurate_sum(parts, dtype)


def _agg_sum(parts, dtype, axes, keepdims, final=None):
    # final: the result's dtype where the partials are wider (float16 sums)
    dtype = final if final is not None else dtype
    return _finish(_accurate_sum(parts, dtype), axes, keepdims, dtype)


def _partial_dtype(rdt):
    """The dtype of a sum's or a product's partials: float16 ones accumulate
    in float32 and round once at the end (as NumPy's float16 add.reduce and
    multiply.reduce do within a pass)."""
    return np.dtype(np.float32) if rdt == np.float16 else rdt


def _fold(ufunc, parts):
    out = np.array(parts[0], copy=True)
    for p in parts[1:]:
        ufunc(out, p, out=out)
    return out


def _combine_prod(parts, dtype):
    return _fold(np.multiply, parts).astype(dtype, copy=False)


def _agg_prod(parts, dtype, axes, keepdims, final=None):
    # final: the result's dtype where the partials are wider (float16 products)
    dtype = final if final is not None else dtype
    return _finish(_combine_prod(parts, dtype), axes, keepdims, dtype)


def _combine_or(parts):
    return _fold(np.logical_or, parts)


def _combine_and(parts):
    return _fold(np.logical_and, parts)


def _agg_or(parts, axes, keepdims):
    return _finish(_combine_or(parts), axes, keepdims, np.dtype(bool))


def _agg_and(parts, axes, keepdims):
    return _finish(_combine_and(parts), axes, keepdims, np.dtype(bool))


def _combine_count(parts):
    return _fold(np.add, parts)


def _agg_count(parts, axes, keepdims):
    return _finish(_combine_count(parts), axes, keepdims, np.dtype(np.intp))


_MINMAX_UFUNC = {"min": np.minimum, "max": np.maximum, "nanmin": np.fmin, "nanmax": np.fmax}
_MINMAX_NAME = {"min": "minimum", "max": "maximum", "nanmin": "fmin", "nanmax": "fmax"}


def _fused_minmax_part(p, ndim=1):
    # a partial of a full min/max: a fused kernel's (array.fuse) has shape
    # (0,) for a block with nothing selected, else (1,); _chunk_*_all's are
    # keepdims arrays or None
    if p is None or np.ndim(p) != 1:
        return p
    return None if np.size(p) == 0 else np.reshape(p, (1,) * ndim)


def _combine_minmax(parts, kind):
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return _fold(_MINMAX_UFUNC[kind], parts)


def chunk_min_all(b, axes):
    """_chunk_min over every axis (a full reduction: fusable, see fuse.py)."""
    return _chunk_min(b, axes)


def chunk_max_all(b, axes):
    """_chunk_max over every axis (a full reduction: fusable, see fuse.py)."""
    return _chunk_max(b, axes)


def _combine_minmax_all(parts, kind):
    """_combine_minmax of the partials of a min/max over every axis."""
    return _combine_minmax([_fused_minmax_part(p) for p in parts], kind)


def _agg_minmax_all(parts, kind, axes, keepdims):
    """_agg_minmax of the partials of a min/max over every axis."""
    return _agg_minmax([_fused_minmax_part(p, len(axes)) for p in parts], kind, axes,
                       keepdims)


def _agg_minmax(parts, kind, axes, keepdims):
    r = _combine_minmax(parts, kind)
    if r is None:
        raise ValueError("zero-size array to reduction operation %s which has no identity"
                         % _MINMAX_NAME[kind])
    if kind.startswith("nan") and r.dtype.kind in "fc" and np.isnan(r).any():
        warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=2)
    return _finish(r, axes, keepdims, None)


# kernel-backed whole-array sum (C tasks end to end)
def _agg_kernel_sum_keepdims(parts, ndim, dtype):
    r = np.asarray(_kernels.sum(*parts))
    return r.reshape((1,) * ndim).astype(dtype, copy=False)


_KERNEL_SUM_KINDS = "biufc"


def _can_kernel_sum(x, dtype, axes):
    if len(axes) != x.ndim or x.ndim == 0:
        return False
    if x.dtype.kind not in _KERNEL_SUM_KINDS or x.dtype.itemsize > 16:
        return False
    if x.dtype.kind == "f" and x.dtype.itemsize not in (4, 8):
        return False
    if x.dtype.kind == "c" and x.dtype.itemsize not in (8, 16):
        return False
    default = np.sum(np.zeros(1, x.dtype)).dtype
    return dtype == default


# ---------------------------------------------------------------------------
# helpers shared by the named reductions
# ---------------------------------------------------------------------------
def _result_dtype(func, xdtype, dtype=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            if dtype is not None:
                kw["dtype"] = dtype
            return np.asarray(func(np.ones(1, dtype=xdtype), **kw)).dtype


def _token(prefix, x, *args):
    return tokenize(prefix, x.name, x.chunks, str(x.dtype), *args)


# the reductions datetime64/timedelta64 arrays take (where NumPy allows them:
# sums and cumulative sums of timedeltas, but not of datetimes); NumPy's own
# error for the others
_TIME_REDUCTIONS = frozenset(["sum", "nansum", "any", "all", "count_nonzero", "min", "max",
                              "nanmin", "nanmax", "argmin", "argmax", "nanargmin", "nanargmax",
                              "mean", "nanmean", "cumsum", "nancumsum"])


def _check_dtype_supported(x, name, **kw):
    """Refuse dtypes reduction ``name`` (a NumPy function's name) cannot take:
    object/string arrays; for datetime64/timedelta64 arrays, NumPy's own
    exception where NumPy refuses the reduction (the sum of datetimes...), a
    TypeError naming the reduction where cdask does not support it."""
    if x.dtype.hasobject or x.dtype.kind in "SUV":
        raise TypeError("cdask: %s of %s arrays is not supported; cdask reductions take "
                        "bool, integer, floating, complex, datetime64 and timedelta64 arrays"
                        % (name, x.dtype))
    if x.dtype.kind in "mM":
        if hasattr(np, name):
            probe = np.zeros(2, dtype=x.dtype)
            kw = {k: v for k, v in kw.items() if v is not None}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                getattr(np, name)(probe, **kw)  # NumPy's exception where NumPy refuses
        if name not in _TIME_REDUCTIONS:
            raise TypeError("cdask: %s of %s is not supported" % (name, x.dtype))


def unordered(a, axis):
    """The Array a reduction over every axis of ``a`` reads: ``a`` itself,
    or for ``x[mask]`` with an n-d mask (indexing.py) the same elements in
    block order, which fuses with the mask.  Only for reductions whose
    result does not depend on the order (up to rounding)."""
    u = getattr(a, "_unordered", None)
    if u is None or not (axis is None or axis in (0, -1, (0,), (-1,))):
        return a
    return u


def _simple(prefix, x, axis, keepdims, split_every, out, dtype, chunk, chunk_args,
            combine, combine_args, aggregate, aggregate_args_tail):
    axes = normalize_axis(axis, x.ndim)
    if prefix in _MASKED_KINDS and maybe_masked(x._layers):
        return _masked_simple(prefix, x, axes, keepdims, split_every, out, dtype)
    _masked_unsupported(prefix, x)
    token = _token(prefix, x, axes, keepdims, split_every, str(dtype))
    r = _tree(x, prefix, token, axes, keepdims, dtype, split_every,
              chunk=chunk, chunk_args=(axes,) + tuple(chunk_args),
              combine=combine, combine_args=tuple(combine_args),
              aggregate=aggregate,
              aggregate_args=tuple(combine_args) + (axes, keepdims) + tuple(aggregate_args_tail))
    return _handle_out(out, r)


# ---------------------------------------------------------------------------
# sum, prod, nansum, nanprod
# ---------------------------------------------------------------------------
def sum(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
    """Sum of array elements over the given axes (``numpy.sum``)."""
    a = unordered(a, axis)
    x = asarray(a)
    _check_dtype_supported(x, "sum", dtype=dtype)
    rdt = _result_dtype(np.sum, x.dtype, dtype)
    axes = normalize_axis(axis, x.ndim)
    if maybe_masked(x._layers):
        return _masked_simple("sum", x, axes, keepdims, split_every, out, rdt)
    if _can_kernel_sum(x, rdt, axes):
        token = _token("sum", x, axes, keepdims, split_every, str(rdt), "k")
        if keepdims:
            agg, agg_args = _agg_kernel_sum_keepdims, (x.ndim, rdt)
        else:
            agg, agg_args = _kernels.sum, ()
        r = _tree(x, "sum", token, axes, keepdims, rdt, split_every,
                  chunk=_kernels.sum, combine=_kernels.sum,
                  aggregate=_kernels.sum if not keepdims else agg, aggregate_args=agg_args)
        return _handle_out(out, r)
    pdt = _partial_dtype(rdt)
    return _simple("sum", x, axis, keepdims, split_every, out, rdt,
                   _chunk_sum, (pdt,), _combine_sum, (pdt,), _agg_sum,
                   (rdt,) if pdt != rdt else ())


def nansum(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
    """Sum treating NaN as zero (``numpy.nansum``)."""
    a = unordered(a, axis)
    x = asarray(a)
    _check_dtype_supported(x, "nansum", dtype=dtype)
    rdt = _result_dtype(np.nansum, x.dtype, dtype)
    pdt = _partial_dtype(rdt)
    return _simple("nansum", x, axis, keepdims, split_every, out, rdt,
                   _chunk_nansum, (pdt,), _combine_sum, (pdt,), _agg_sum,
                   (rdt,) if pdt != rdt else ())


def prod(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
    """Product of array elements over the given axes (``numpy.prod``)."""
    a = unordered(a, axis)
    x = asarray(a)
    _check_dtype_supported(x, "prod", dtype=dtype)
    rdt = _result_dtype(np.prod, x.dtype, dtype)
    # float16 products accumulate in float32, as NumPy's float16 loop does
    pdt = _partial_dtype(rdt)
    return _simple("prod", x, axis, keepdims, split_every, out, rdt,
                   _chunk_prod, (pdt,), _combine_prod, (pdt,), _agg_prod,
                   (rdt,) if pdt != rdt else ())


def nanprod(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
    """Product treating NaN as one (``numpy.nanprod``)."""
    a = unordered(a, axis)
    x = asarray(a)
    _check_dtype_supported(x, "nanprod", dtype=dtype)
    rdt = _result_dtype(np.nanprod, x.dtype, dtype)
    # float16 products accumulate in float32, as NumPy's float16 loop does
    pdt = _partial_dtype(rdt)
    return _simple("nanprod", x, axis, keepdims, split_every, out, rdt,
                   _chunk_nanprod, (pdt,), _combine_prod, (pdt,), _agg_prod,
                   (rdt,) if pdt != rdt else ())


# ---------------------------------------------------------------------------
# any, all, count_nonzero, min, max, nanmin, nanmax
# ---------------------------------------------------------------------------
def any(a, axis=None, keepdims=False, split_every=None, out=None):
    """Whether any element is true (``numpy.any``)."""
    a = unordered(a, axis)
    x = asarray(a)
    _check_dtype_supported(x, "any")
    return _simple("any", x, axis, keepdims, split_every, out, np.dtype(bool),
                   _chunk_any, (), _combine_or, (), _agg_or, ())


def all(a, axis=None, keepdims=False, split_every=None, out=None):
    """Whether all elements are true (``numpy.all``)."""
    a = unordered(a, axis)
    x = asarray(a)
    _check_dtype_supported(x, "all")
    return _simple("all", x, axis, keepdims, split_every, out, np.dtype(bool),
                   _chunk_all, (), _combine_and, (), _agg_and, ())


def count_nonzero(a, axis=None, keepdims=False, split_every=None):
    """Number of non-zero elements (``numpy.count_nonzero``), as an int array."""
    a = unordered(a, axis)
    x = asarray(a)
    _check_dtype_supported(x, "count_nonzero")
    if maybe_masked(x._layers) and (axis is not None or keepdims):
        # NumPy's count_nonzero of a masked array along axes is the masked
        # sum of its truth values (axis=None: of its data, masked or not)
        return sum(x.astype(bool), axis=axis, dtype=np.intp, keepdims=keepdims)
    return _simple("count_nonzero", x, axis, keepdims, split_every, None, np.dtype(np.intp),
                   _chunk_count_nonzero, (), _combine_count, (), _agg_count, ())


def _minmax(kind, chunk, a, axis, keepdims, split_every, out):
    x = asarray(a)
    _check_dtype_supported(x, kind)
    combine, agg = _combine_minmax, _agg_minmax
    if x.ndim and len(normalize_axis(axis, x.ndim)) == x.ndim and \
            chunk in (_chunk_min, _chunk_max):
        chunk = chunk_min_all if chunk is _chunk_min else chunk_max_all
        combine, agg = _combine_minmax_all, _agg_minmax_all
    return _simple(kind, x, axis, keepdims, split_every, out, x.dtype,
                   chunk, (), combine, (kind,), agg, ())


def min(a, axis=None, keepdims=False, split_every=None, out=None):
    """Minimum over the given axes (``numpy.min``; NaN propagates)."""
    a = unordered(a, axis)
    return _minmax("min", _chunk_min, a, axis, keepdims, split_every, out)


def max(a, axis=None, keepdims=False, split_every=None, out=None):
    """Maximum over the given axes (``numpy.max``; NaN propagates)."""
    a = unordered(a, axis)
    return _minmax("max", _chunk_max, a, axis, keepdims, split_every, out)


def ptp(a, axis=None, keepdims=False):
    """Range of values, maximum minus minimum (``numpy.ptp``; in the dtype of
    ``a``, wrapping around for integers as NumPy does)."""
    x = asarray(a)
    return elemwise(np.subtract, max(x, axis=axis, keepdims=keepdims),
                    min(x, axis=axis, keepdims=keepdims))


def nanmin(a, axis=None, keepdims=False, split_every=None, out=None):
    """Minimum ignoring NaN (``numpy.nanmin``)."""
    a = unordered(a, axis)
    return _minmax("nanmin", _chunk_nanmin, a, axis, keepdims, split_every, out)


def nanmax(a, axis=None, keepdims=False, split_every=None, out=None):
    """Maximum ignoring NaN (``numpy.nanmax``)."""
    a = unordered(a, axis)
    return _minmax("nanmax", _chunk_nanmax, a, axis, keepdims, split_every, out)


# ---------------------------------------------------------------------------
# mean, var, std: (count, sum, M2) partials, Chan's parallel formula
# ---------------------------------------------------------------------------
def _compute_dtype(xdtype):
    return np.dtype(np.complex128) if np.dtype(xdtype).kind == "c" else np.dtype(np.float64)


def _chunk_moments(b, axes, order, nan, cdt):
    b = np.asarray(b)
    if b.dtype != cdt:
        b = b.astype(cdt)
    keep_shape = tuple(1 if a in axes else s for a, s in enumerate(b.shape))
    if keep_shape == b.shape and order <= 2:
        return _single_moments(b, order, nan)
    if nan:
        mask = np.isnan(b)
        n = np.sum(~mask, axis=axes, keepdims=True, dtype=np.float64)
        s = _psum(np.where(mask, 0, b), axes)
    else:
        cnt = 1
        for a in axes:
            cnt *= b.shape[a]
        n = np.full(keep_shape, float(cnt))
        s = _psum(b, axes)
    if order < 2:
        return (n, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = s / n
    d = b - m
    if cdt.kind == "c":
        sq = d.real * d.real + d.imag * d.imag
    else:
        sq = d * d
    if nan:
        sq = np.where(mask, 0.0, sq)
    M2 = _psum(sq, axes)
    M2 = np.where(n > 0, M2, 0.0)
    return (n, s, M2)


def _single_moments(b, order, nan):
    """The moments partial of a block one element long on every reduced axis
    (xarray's groupby arithmetic makes blocks of one time step): each element
    is its own sum and its M2 is 0, so no sum need run."""
    if nan:
        mask = np.isnan(b)
        n, s = (~mask).astype(np.float64), np.where(mask, 0, b)
    else:
        n, s = np.ones(b.shape), b.copy()
    if order < 2:
        return (n, s)
    # M2 is 0, or NaN where the element is NaN or infinite (np.var of [nan]
    # or [inf] is nan); the nan* kinds have set NaNs aside already (s is 0)
    m2 = np.multiply(s, 0, dtype=np.result_type(s.dtype, np.float64))
    m2 = np.abs(m2) if m2.dtype.kind == "c" else m2        # NaN stays NaN
    return (n, s, m2)


def _fused_moments_part(p, ndim=1):
    # a fused kernel's mean partial (array.fuse): the array [count, sum]
    if isinstance(p, tuple):
        return p
    p = np.asarray(p)
    shape = (1,) * ndim
    return (np.full(shape, p[0].real), np.full(shape, p[1], dtype=p.dtype))


def chunk_mean_all(b, axes, cdt):
    """The (count, sum) partial of a mean over every axis (fusable, see fuse.py)."""
    return _chunk_moments(b, axes, 1, False, cdt)


def _combine_moments(parts, order, ndim=1):
    parts = [_fused_moments_part(p, ndim) for p in parts]
    if len(parts) == 1:
        return parts[0]
    n = parts[0][0]
    s = parts[0][1]
    if order >= 2:
        M2 = parts[0][2]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for p in parts[1:]:
                nb, sb, M2b = p
                nn = n + nb
                delta = sb / nb - s / n
                if np.iscomplexobj(delta):
                    d2 = delta.real * delta.real + delta.imag * delta.imag
                else:
                    d2 = delta * delta
                extra = d2 * (n * nb / nn)
                extra = np.where((n > 0) & (nb > 0), extra, 0.0)
                M2 = M2 + M2b + extra
                n = nn
                s = s + sb
    else:
        for p in parts[1:]:
            n = n + p[0]
    s = _accurate_sum([p[1] for p in parts], np.asarray(parts[0][1]).dtype)
    return (n, s, M2) if order >= 2 else (n, s)


def _agg_mean(parts, axes, keepdims, dtype):
    n, s = _combine_moments(parts, 1, len(axes) if axes else 1)[:2]
    if np.any(n == 0):
        warnings.warn("Mean of empty slice.", RuntimeWarning, stacklevel=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = s / n
    return _finish(r, axes, keepdims, dtype)


def _agg_var(parts, axes, keepdims, dtype, ddof, root, nan=False):
    n, s, M2 = _combine_moments(parts, 2)
    denom = np.maximum(n - ddof, 0)
    bad = denom <= 0
    if np.any(bad):
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        if dtype is not None and np.dtype(dtype).kind == "c":
            # NumPy divides in the complex result dtype: x / 0 is inf+nanj
            M2 = np.asarray(M2).astype(dtype)
        r = M2 / denom
        r = np.where((n == 0) | (bad if nan else False), np.nan, r)
        if root:
            r = np.sqrt(r)
    return _finish(r, axes, keepdims, dtype)


def _moments(prefix, a, axis, dtype, keepdims, split_every, out, order, nan, ddof=0, root=False):
    x = asarray(a)
    _check_dtype_supported(x, prefix, dtype=dtype)
    if x.dtype.kind == "m":
        return _handle_out(out, _mean_timedelta(x, axis, keepdims))
    if prefix in _MASKED_KINDS and maybe_masked(x._layers):
        return _masked_moments(prefix, x, axis, dtype, keepdims, split_every, out, ddof)
    _masked_unsupported(prefix, x)
    npfunc = {("mean", False): np.mean, ("mean", True): np.nanmean,
              ("var", False): np.var, ("var", True): np.nanvar}[("mean" if order < 2 else "var", nan)]
    rdt = _result_dtype(npfunc, x.dtype, dtype)
    if x.dtype.kind not in "fc":
        nan = False  # no NaN in bool/int data
    cdt = _compute_dtype(x.dtype if dtype is None or np.dtype(dtype).kind != "c" else dtype)
    axes = normalize_axis(axis, x.ndim)
    token = _token(prefix, x, axes, keepdims, split_every, str(rdt), ddof)
    if order < 2:
        agg, agg_args = _agg_mean, (axes, keepdims, rdt)
    else:
        agg, agg_args = _agg_var, (axes, keepdims, rdt, ddof, root, nan)
    if order < 2 and not nan and x.ndim and len(axes) == x.ndim:
        chunk, chunk_args = chunk_mean_all, (axes, cdt)
    else:
        chunk, chunk_args = _chunk_moments, (axes, order, nan, cdt)
    r = _tree(x, prefix, token, axes, keepdims, rdt, split_every,
              chunk=chunk, chunk_args=chunk_args,
              combine=_combine_moments, combine_args=(order,),
              aggregate=agg, aggregate_args=agg_args)
    return _handle_out(out, r)


def _mean_timedelta(x, axis, keepdims):
    """NumPy's mean of a timedelta64 array: its sum divided by the count (in
    timedelta64, NumPy's true_divide of a timedelta by an integer)."""
    axes = normalize_axis(axis, x.ndim)
    s = sum(x, axis=axes, keepdims=keepdims)
    sizes = [x.shape[a] for a in axes]
    if _unknown(sizes):
        n = count_nonzero(elemwise(np.logical_or, elemwise(np.isnat, x), True), axis=axes,
                          keepdims=keepdims)
    else:
        n = math.prod(int(v) for v in sizes)
    return elemwise(np.true_divide, s, n)


def mean(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
    """Arithmetic mean (``numpy.mean``)."""
    a = unordered(a, axis)
    return _moments("mean", a, axis, dtype, keepdims, split_every, out, 1, False)


def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """Weighted average (``numpy.average``): ``sum(a * w) / sum(w)`` over
    ``axis``; ``weights`` of ``a``'s shape, or of the shape of ``a`` along
    ``axis`` (an int or a tuple, in that order).  With
    ``returned=True``, also the sum of the weights (broadcast to the shape of
    the average).  Weights summing to zero give NaN or inf (with NumPy's
    warning) when computed: a lazy array cannot raise NumPy's ZeroDivisionError
    before it is computed."""
    x = asarray(a)
    _check_dtype_supported(x, "average")
    if weights is None:
        avg = mean(x, axis=axis, keepdims=keepdims)
        n = 1
        for ax in normalize_axis(axis, x.ndim):
            n *= x.shape[ax]
        scl = avg.dtype.type(n)
        if returned:
            return avg, elemwise(np.full_like, avg, scl)
        return avg
    w = asarray(weights)
    if x.dtype.kind in "iub":
        rdt = np.result_type(x.dtype, w.dtype, "f8")
    else:
        rdt = np.result_type(x.dtype, w.dtype)
    if x.shape != w.shape:
        if axis is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
        axes = tuple(normalize_axis((ax,), x.ndim)[0] for ax in axes)   # in the order given
        if len(set(axes)) != len(axes):
            raise ValueError("repeated axis")
        if w.shape != tuple(x.shape[ax] for ax in axes):
            raise ValueError("Shape of weights must be consistent with shape of a along "
                             "specified axis.")
        # the weights' axes in the order of a's, length 1 along the others
        w = w.transpose(tuple(int(i) for i in np.argsort(axes)))
        w = reshape(w, tuple(s if ax in axes else 1 for ax, s in enumerate(x.shape)))
    scl = sum(w, axis=axis, dtype=rdt, keepdims=keepdims)
    avg = elemwise(np.true_divide, sum(elemwise(np.multiply, x, w, dtype=rdt), axis=axis,
                                       keepdims=keepdims), scl)
    if returned:
        if scl.shape != avg.shape:
            scl = broadcast_to(scl, avg.shape, chunks=avg.chunks)
        return avg, scl
    return avg


def nanmean(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
    """Mean ignoring NaN (``numpy.nanmean``)."""
    a = unordered(a, axis)
    return _moments("nanmean", a, axis, dtype, keepdims, split_every, out, 1, True)


def var(a, axis=None, dtype=None, keepdims=False, ddof=0, split_every=None, out=None):
    """Variance (``numpy.var``), ``ddof`` delta degrees of freedom."""
    a = unordered(a, axis)
    return _moments("var", a, axis, dtype, keepdims, split_every, out, 2, False, ddof)


def nanvar(a, axis=None, dtype=None, keepdims=False, ddof=0, split_every=None, out=None):
    """Variance ignoring NaN (``numpy.nanvar``)."""
    a = unordered(a, axis)
    return _moments("nanvar", a, axis, dtype, keepdims, split_every, out, 2, True, ddof)


def std(a, axis=None, dtype=None, keepdims=False, ddof=0, split_every=None, out=None):
    """Standard deviation (``numpy.std``)."""
    a = unordered(a, axis)
    return _moments("std", a, axis, dtype, keepdims, split_every, out, 2, False, ddof, True)


def nanstd(a, axis=None, dtype=None, keepdims=False, ddof=0, split_every=None, out=None):
    """Standard deviation ignoring NaN (``numpy.nanstd``)."""
    a = unordered(a, axis)
    return _moments("nanstd", a, axis, dtype, keepdims, split_every, out, 2, True, ddof, True)


# ---------------------------------------------------------------------------
# moment (central moments of any order, for dask compatibility)
# ---------------------------------------------------------------------------
def _chunk_central_sums(b, axes, order, cdt):
    b = np.asarray(b).astype(cdt, copy=False)
    keep_shape = tuple(1 if a in axes else s for a, s in enumerate(b.shape))
    cnt = 1
    for a in axes:
        cnt *= b.shape[a]
    # raw power sums: sum x^k for k = 0..order (fine for the moderate orders used)
    return tuple([np.full(keep_shape, float(cnt))]
                 + [np.sum(b ** k, axis=axes, keepdims=True) for k in range(1, order + 1)])


def _combine_power_sums(parts, order):
    return tuple(_accurate_sum([p[k] for p in parts], np.asarray(parts[0][k]).dtype)
                 for k in range(order + 1))


def _agg_moment(parts, order, axes, keepdims, dtype, ddof):
    sums = _combine_power_sums(parts, order)
    n = sums[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = sums[1] / n
        acc = 0
        for k in range(order + 1):
            raw = sums[k] / n if k else 1.0
            acc = acc + math.comb(order, k) * raw * (-mu) ** (order - k)
        r = acc * n / (n - ddof)
    return _finish(r, axes, keepdims, dtype)


def moment(a, order, axis=None, dtype=None, keepdims=False, ddof=0, split_every=None, out=None):
    """The ``order``-th central moment (dask's ``moment``)."""
    if not isinstance(order, Integral) or order < 0:
        raise ValueError("Order must be an integer >= 0")
    if order < 2:
        x = asarray(a)
        rdt = _result_dtype(np.mean, x.dtype, dtype)
        shape = tuple(s for i, s in enumerate(x.shape)
                      if i not in normalize_axis(axis, x.ndim) or keepdims)
        return (ones if order == 0 else zeros)(shape, dtype=rdt) if not _unknown(shape) else \
            mean(a, axis, dtype, keepdims, split_every) * 0 + (1 if order == 0 else 0)
    if order == 2:
        return var(a, axis, dtype, keepdims, ddof, split_every, out)
    x = asarray(a)
    _check_dtype_supported(x, "moment")
    _masked_unsupported("moment", x)
    rdt = _result_dtype(np.mean, x.dtype, dtype)
    cdt = _compute_dtype(x.dtype)
    axes = normalize_axis(axis, x.ndim)
    token = _token("moment", x, axes, keepdims, split_every, str(rdt), order, ddof)
    r = _tree(x, "moment", token, axes, keepdims, rdt, split_every,
              chunk=_chunk_central_sums, chunk_args=(axes, order, cdt),
              combine=_combine_power_sums, combine_args=(order,),
              aggregate=_agg_moment, aggregate_args=(order, axes, keepdims, rdt, ddof))
    return _handle_out(out, r)


# ---------------------------------------------------------------------------
# argmin, argmax, nanargmin, nanargmax: (value, index, length) partials
# ---------------------------------------------------------------------------
def _chunk_arg(b, axis, kind, nan, flat_offsets=None, shape=None):
    """Partial of an arg reduction of block ``b``.

    ``axis`` int: along that axis, index local to the block.
    ``axis`` None: over the whole block; the index is the global flat index,
    computed from the block's offsets ``flat_offsets`` in an array of ``shape``.
    """
    b = np.asarray(b)
    if axis is None:
        if b.size == 0:
            return None
        flat = b.reshape(-1)
        v, i = _arg_1d(flat, 0, kind, nan)
        local = np.unravel_index(int(i[0]), b.shape)
        if flat_offsets is not None:
            g = tuple(o + l for o, l in zip(flat_offsets, local))
            i = np.ravel_multi_index(g, shape)
        return (np.asarray(v).reshape((1,) * b.ndim), np.full((1,) * b.ndim, int(np.asarray(i).reshape(-1)[0]), np.intp), 0)
    if b.shape[axis] == 0:
        return None
    v, i = _arg_1d(b, axis, kind, nan)
    return (v, i, b.shape[axis])


def _arg_1d(b, axis, kind, nan):
    if nan and b.dtype.kind in "fc":
        mask = np.isnan(b)
        fill = np.inf if kind == "min" else -np.inf
        filled = np.where(mask, fill, b)
        i = (np.argmin if kind == "min" else np.argmax)(filled, axis=axis, keepdims=True)
        v = np.take_along_axis(filled, i, axis=axis)
        allnan = np.all(mask, axis=axis, keepdims=True)
        if allnan.any():
            v = np.where(allnan, np.nan, v)
    else:
        i = (np.argmin if kind == "min" else np.argmax)(b, axis=axis, keepdims=True)
        v = np.take_along_axis(b, i, axis=axis)
    return v, i.astype(np.intp, copy=False)


def _isnan_or_nat(v):
    return np.isnat(v) if v.dtype.kind in "mM" else np.isnan(v)


def _combine_arg(parts, kind, nan):
    best = None
    off = 0
    for p in parts:
        if p is None:
            continue
        v, i, n = p
        if best is None:
            bv, bi = v, i + off if off else i
            best = True
        else:
            ii = i + off
            with np.errstate(invalid="ignore"):
                if kind == "min":
                    better = v < bv
                else:
                    better = v > bv
                # ties: the first occurrence (global indices may come out of order)
                better = better | ((v == bv) & (ii < bi))
                if v.dtype.kind in "fcmM":
                    vn, bn = _isnan_or_nat(v), _isnan_or_nat(bv)
                    if nan and v.dtype.kind in "fc":
                        better = better | (bn & ~vn)
                    else:
                        better = (better & ~bn) | (vn & ~bn)
                    better = better | (vn & bn & (ii < bi))
            bv = np.where(better, v, bv)
            bi = np.where(better, ii, bi)
        off += n
    if best is None:
        return None
    return (bv, bi, off)


def _agg_arg(parts, kind, nan, axes, keepdims):
    r = _combine_arg(parts, kind, nan)
    if r is None:
        raise ValueError("attempt to get arg%s of an empty sequence" % kind)
    v, i, _ = r
    if nan and v.dtype.kind in "fc" and np.isnan(v).any():
        raise ValueError("All-NaN slice encountered")
    return _finish(i, axes, keepdims, np.dtype(np.intp))


def _arg_reduction(kind, nan, a, axis, keepdims, split_every, out):
    x = asarray(a)
    _check_dtype_supported(x, ("nanarg" if nan else "arg") + kind)
    prefix = ("nanarg" if nan else "arg") + kind
    if nan:
        _masked_unsupported(prefix, x)    # (argmin, argmax: of filled blocks, plain ones)
    if axis is not None and not isinstance(axis, Integral):
        raise TypeError("axis must be None or an integer, got %r" % (axis,))
    ndim = x.ndim
    if ndim == 0:
        token = _token(prefix, x, axis, keepdims, split_every)
        r = _tree(x, prefix, token, (), keepdims, np.dtype(np.intp), split_every,
                  chunk=_chunk_arg, chunk_args=(None, kind, nan),
                  combine=_combine_arg, combine_args=(kind, nan),
                  aggregate=_agg_arg, aggregate_args=(kind, nan, (), keepdims))
        return _handle_out(out, r)
    if axis is None and ndim == 1:
        axis_n = 0
        mode_axes = (0,)
    elif axis is None:
        axis_n = None
        mode_axes = tuple(range(ndim))
    else:
        axis_n = normalize_axis(axis, ndim)[0]
        mode_axes = (axis_n,)
    out_axes = tuple(range(ndim)) if axis is None else mode_axes
    token = _token(prefix, x, axis, keepdims, split_every)
    if axis_n is None:
        if _unknown(x.shape):
            raise ValueError(
                "%s with axis=None on a %d-d array needs known chunk sizes; call "
                "x.compute_chunk_sizes() first (or ravel the array)" % (prefix, ndim))
        offsets = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int).tolist()
                   if len(c) else [] for c in x.chunks]
        shape = tuple(int(s) for s in x.shape)

        def block_args(idx):
            return (None, kind, nan, tuple(offsets[a][i] for a, i in enumerate(idx)), shape)

        r = _tree(x, prefix, token, mode_axes, keepdims, np.dtype(np.intp), split_every,
                  chunk=_chunk_arg, block_args=block_args,
                  combine=_combine_arg, combine_args=(kind, nan),
                  aggregate=_agg_arg, aggregate_args=(kind, nan, out_axes, keepdims),
                  order_free=True)
        return _handle_out(out, r)
    se = split_every if not isinstance(split_every, dict) else split_every
    r = _tree(x, prefix, token, mode_axes, keepdims, np.dtype(np.intp), se,
              chunk=_chunk_arg, chunk_args=(axis_n, kind, nan),
              combine=_combine_arg, combine_args=(kind, nan),
              aggregate=_agg_arg, aggregate_args=(kind, nan, out_axes, keepdims),
              order_free=False)
    return _handle_out(out, r)


def argmin(a, axis=None, keepdims=False, split_every=None, out=None):
    if isinstance(a, Array) and maybe_masked(a._layers):
        # np.ma's argmin: of the data with masked elements filled with the
        # dtype's largest value (a plain array, whose arg reduction follows)
        a = blockwise_simple(masked_filled, "ma-filled", a, args=("min",))
    """Indices of the minimum values (``numpy.argmin``)."""
    return _arg_reduction("min", False, a, axis, keepdims, split_every, out)


def argmax(a, axis=None, keepdims=False, split_every=None, out=None):
    if isinstance(a, Array) and maybe_masked(a._layers):
        a = blockwise_simple(masked_filled, "ma-filled", a, args=("max",))
    """Indices of the maximum values (``numpy.argmax``)."""
    return _arg_reduction("max", False, a, axis, keepdims, split_every, out)


def nanargmin(a, axis=None, keepdims=False, split_every=None, out=None):
    """Indices of the minimum values ignoring NaN (``numpy.nanargmin``)."""
    return _arg_reduction("min", True, a, axis, keepdims, split_every, out)


def nanargmax(a, axis=None, keepdims=False, split_every=None, out=None):
    """Indices of the maximum values ignoring NaN (``numpy.nanargmax``)."""
    return _arg_reduction("max", True, a, axis, keepdims, split_every, out)


# ---------------------------------------------------------------------------
# arrays whose blocks may be masked (np.ma.MaskedArray, cdask.ma): partials
# are what np.ma gives on each block (NumPy's on a plain block), combined by
# stacking them along a new first axis and reducing that axis as np.ma
# does; every step is a Python task (C kernels would not see the masks).
# ---------------------------------------------------------------------------
_MASKED_KINDS = frozenset(["sum", "prod", "min", "max", "any", "all", "mean", "var", "std",
                           "count_nonzero"])


def _masked_unsupported(prefix, x):
    if prefix not in _MASKED_KINDS and maybe_masked(x._layers):
        raise NotImplementedError(
            "cdask: %s of an array with masked blocks is not supported (np.ma has no "
            "such reduction, or cdask does not follow it yet); fill the masked values "
            "first: cdask.ma.filled(x, value)" % prefix)


def masked_filled(b, which):
    """Block ``b`` with masked elements set to the dtype's largest (``which``
    "min": what np.ma's argmin uses) or smallest ("max") value."""
    if not isinstance(b, np.ma.MaskedArray):
        return np.asarray(b)
    v = np.ma.minimum_fill_value(b) if which == "min" else np.ma.maximum_fill_value(b)
    return b.filled(v)


def _ma_or_np(parts, name):
    return getattr(np.ma if builtins.any(isinstance(p, np.ma.MaskedArray) for p in parts)
                   else np, name)


def _masked_chunk(b, axes, kind, dtype):
    if kind in ("min", "max") and builtins.any(b.shape[a] == 0 for a in axes):
        return None
    if isinstance(b, np.ma.MaskedArray) and b.mask is np.ma.nomask:
        # a block's mask may be nomask where the whole array's is not (np.ma
        # then masks the reductions over nothing): reduce it as a full mask
        b = np.ma.MaskedArray(b, mask=np.zeros(b.shape, dtype=bool), shrink=False)
    kw = {"dtype": dtype} if kind in ("sum", "prod") else {}
    return _ma_or_np([b], kind)(b, axis=axes, keepdims=True, **kw)


def _masked_fold(parts, kind, dtype):
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    kw = {"dtype": dtype} if kind in ("sum", "prod") else {}
    return _ma_or_np(parts, kind)(_ma_or_np(parts, "stack")(parts), axis=0, **kw)


def _masked_agg(parts, kind, dtype, axes, keepdims):
    r = _masked_fold(parts, kind, dtype)
    if r is None:
        raise ValueError("zero-size array to reduction operation %s which has no identity"
                         % ("minimum" if kind == "min" else "maximum"))
    if not keepdims and axes:
        r = r.reshape(tuple(s for a, s in enumerate(r.shape) if a not in axes))
    return r.astype(dtype) if r.dtype != dtype else r


def _masked_tree(prefix, x, axes, keepdims, split_every, dtype, chunk, chunk_args,
                 combine, combine_args, agg_args):
    token = _token("masked-" + prefix, x, axes, keepdims, split_every, str(dtype), chunk_args,
                   agg_args)
    # block_args: one task per block, never coarsened (merging would concatenate)
    return _tree(x, prefix, token, axes, keepdims, dtype, split_every,
                 chunk=chunk, chunk_args=chunk_args, combine=combine, combine_args=combine_args,
                 aggregate=combine, aggregate_args=combine_args + agg_args,
                 block_args=lambda idx: ())


def _masked_simple(kind, x, axes, keepdims, split_every, out, dtype):
    if kind == "count_nonzero":       # axis=None: NumPy counts the data, masked or not
        return _simple_unmasked(elemwise(np.ma.getdata, x, dtype=x.dtype), axes, keepdims,
                                split_every)
    r = _masked_tree(kind, x, axes, keepdims, split_every, dtype,
                     _masked_chunk, (axes, kind, dtype), _masked_fold_task, (kind, dtype),
                     (axes, keepdims))
    return _handle_out(out, r)


def _masked_fold_task(parts, kind, dtype, axes=None, keepdims=None):
    if axes is None:
        return _masked_fold(parts, kind, dtype)
    return _masked_agg(parts, kind, dtype, axes, keepdims)


def _simple_unmasked(x, axes, keepdims, split_every):
    token = _token("count_nonzero", x, axes, keepdims, split_every, "masked")
    return _tree(x, "count_nonzero", token, axes, keepdims, np.dtype(np.intp), split_every,
                 chunk=_chunk_count_nonzero, chunk_args=(axes,),
                 combine=_combine_count, aggregate=_agg_count, aggregate_args=(axes, keepdims),
                 block_args=lambda idx: ())


def _masked_moments_chunk(b, axes, cdt):
    """(any block masked, count, sum, M2) of the unmasked elements of ``b``."""
    masked = isinstance(b, np.ma.MaskedArray)
    d = np.ma.getdata(b)
    ok = ~np.ma.getmaskarray(b)
    n = np.sum(ok, axis=axes, keepdims=True, dtype=np.int64)
    with np.errstate(all="ignore"):
        t = np.sum(np.where(ok, d, 0), axis=axes, keepdims=True, dtype=cdt)
        mu = t / np.maximum(n, 1)
        dev = np.where(ok, d - mu, 0)
        m2 = np.sum((dev * dev.conj()).real if dev.dtype.kind == "c" else dev * dev,
                    axis=axes, keepdims=True)
    return masked, n, t, m2


def _masked_moments_fold(parts):
    masked = builtins.any(p[0] for p in parts)
    n = np.sum([p[1] for p in parts], axis=0)
    t = np.sum([p[2] for p in parts], axis=0)
    with np.errstate(all="ignore"):
        mu = t / np.maximum(n, 1)
        m2 = np.sum([p[3] for p in parts], axis=0)
        for p in parts:
            dm = np.where(p[1] > 0, p[2] / np.maximum(p[1], 1) - mu, 0)
            m2 = m2 + p[1] * ((dm * dm.conj()).real if dm.dtype.kind == "c" else dm * dm)
    return masked, n, t, m2


def _masked_moments_agg(parts, kind, ddof, dtype, axes, keepdims):
    masked, n, t, m2 = _masked_moments_fold(parts)
    with np.errstate(all="ignore"):
        if kind == "mean":
            r = t / n
            bad = n == 0
        else:
            r = m2 / np.maximum(n - ddof, 0)
            bad = n - ddof <= 0
            if kind == "std":
                r = np.sqrt(r)
    r = r.astype(dtype)
    if masked:
        r = np.ma.MaskedArray(r, mask=bad)
    if not keepdims and axes:
        r = r.reshape(tuple(s for a, s in enumerate(r.shape) if a not in axes))
    return r


def _masked_moments_task(parts, kind=None, ddof=None, dtype=None, axes=None, keepdims=None):
    if kind is None:
        return _masked_moments_fold(parts)
    return _masked_moments_agg(parts, kind, ddof, dtype, axes, keepdims)


def _masked_moments(kind, x, axis, dtype, keepdims, split_every, out, ddof):
    """np.ma's mean, var and std: the masked elements left out; masked where
    no element (mean) or not more than ``ddof`` of them (var, std) are left."""
    npf = {"mean": np.ma.mean, "var": np.ma.var, "std": np.ma.std}[kind]
    # np.ma's dtypes (float64 for float32 data, where NumPy's mean keeps float32)
    rdt = _result_dtype(lambda s, **kw: npf(np.ma.MaskedArray(s, mask=[False], shrink=False),
                                            **kw), x.dtype, dtype)
    cdt = _compute_dtype(x.dtype if dtype is None or np.dtype(dtype).kind != "c" else dtype)
    axes = normalize_axis(axis, x.ndim)
    token = _token("masked-" + kind, x, axes, keepdims, split_every, str(rdt), ddof)
    r = _tree(x, kind, token, axes, keepdims, rdt, split_every,
              chunk=_masked_moments_chunk, chunk_args=(axes, cdt),
              combine=_masked_moments_task, combine_args=(),
              aggregate=_masked_moments_task, aggregate_args=(kind, ddof, rdt, axes, keepdims),
              block_args=lambda idx: ())
    return _handle_out(out, r)


# ---------------------------------------------------------------------------
# the general reduction (dask's signature and calling conventions)
# ---------------------------------------------------------------------------
def _concat_group(parts, gshape, axes):
    """Flat list of partials (C order over a group of shape ``gshape`` along
    ``axes``) -> one array, concatenated along those axes."""
    grid = np.empty(len(parts), dtype=object)
    for i, p in enumerate(parts):
        grid[i] = p
    grid = grid.reshape(gshape)
    for k in reversed(range(len(gshape))):
        new_shape = grid.shape[:k]
        out = np.empty(new_shape, dtype=object)
        for idx in np.ndindex(*new_shape) if new_shape else [()]:
            seq = [np.asarray(grid[idx + (j,)]) for j in range(grid.shape[k])]
            out[idx] = seq[0] if len(seq) == 1 else np.concatenate(seq, axis=axes[k])
        grid = out
    return grid[()] if grid.shape == () else grid


def _nest_group(parts, gshape):
    if not gshape:
        return parts[0]
    if len(gshape) == 1:
        return list(parts)
    step = len(parts) // gshape[0]
    return [_nest_group(parts[i * step:(i + 1) * step], gshape[1:]) for i in range(gshape[0])]


def _user_chunk(b, func, axes, kwargs):
    return func(b, axis=axes, keepdims=True, **kwargs)


def _user_combine(parts, gshape, func, axes, concatenate, keepdims, finish, ndim, kwargs):
    if concatenate:
        arg = _concat_group(parts, gshape, axes)
    else:
        arg = _nest_group(parts, gshape)
    r = func(arg, axis=axes, keepdims=keepdims, **kwargs)
    if finish and not keepdims and isinstance(r, np.ndarray) and r.ndim == ndim and axes:
        r = _finish(r, axes, False, None)
    return r


def reduction(x, chunk, aggregate, axis=None, keepdims=False, dtype=None, split_every=None,
              combine=None, name=None, out=None, concatenate=True, output_size=1, meta=None,
              weights=None):
    """General tree reduction (dask's ``reduction``).

    ``chunk(block, axis=axes, keepdims=True)`` runs on every block;
    ``combine(parts, axis=axes, keepdims=True)`` (default: ``aggregate``) merges
    groups of ``split_every`` partials per reduced axis, level after level;
    ``aggregate(parts, axis=axes, keepdims=keepdims)`` makes each output block.
    With ``concatenate`` (the default) ``parts`` is the group's partials
    concatenated along the reduced axes; otherwise it is a nested list (one
    level per reduced axis).  ``dtype`` is the output dtype (inferred on a
    small sample when omitted).  ``output_size`` is the length of the reduced
    axes in the output when ``keepdims`` (normally 1).
    """
    x = asarray(x)
    if weights is not None:
        raise NotImplementedError("cdask reduction: weights= is not supported yet")
    axes = normalize_axis(axis, x.ndim)
    if dtype is None:
        try:
            sample = np.ones((1,) * x.ndim, dtype=x.dtype)
            part = chunk(sample, axis=axes, keepdims=True)
            arg = part if concatenate else _nest_group([part], (1,) * len(axes))
            dtype = np.asarray(aggregate(arg, axis=axes, keepdims=keepdims)).dtype
        except Exception:
            dtype = x.dtype
    dtype = np.dtype(dtype)
    combine = combine or aggregate
    prefix = name or getattr(aggregate, "__name__", "reduction")
    token = _token(prefix, x, axes, keepdims, split_every, str(dtype), chunk, combine,
                   aggregate, concatenate)
    r = _tree(x, prefix, token, axes, keepdims, dtype, split_every,
              chunk=_user_chunk, chunk_args=(chunk, axes, {}),
              combine=_user_combine, combine_args=(combine, axes, concatenate, True, False,
                                                   x.ndim, {}),
              aggregate=_user_combine, aggregate_args=(aggregate, axes, concatenate, keepdims,
                                                       True, x.ndim, {}),
              order_free=False, pass_group_shape=True)
    if keepdims and output_size != 1:
        r = Array(r._layers, r.name,
                         tuple((output_size,) if a in axes else c
                               for a, c in enumerate(r.chunks)), r.dtype)
    return _handle_out(out, r)


# ---------------------------------------------------------------------------
# cumulative reductions (sequential carry along the axis; unknown sizes fine)
# ---------------------------------------------------------------------------
def _cum_block(b, axis, kind, dtype):
    f = {"sum": np.cumsum, "prod": np.cumprod, "nansum": np.nancumsum,
         "nanprod": np.nancumprod}[kind]
    return f(b, axis=axis, dtype=None if dtype.kind == "m" else dtype)


def _cum_last(c, axis, kind, dtype):
    """The running total after block ``c`` (keepdims), identity if it is empty."""
    if c.shape[axis] == 0:
        shape = tuple(1 if a == axis else s for a, s in enumerate(c.shape))
        return np.full(shape, 0 if kind.endswith("sum") else 1, dtype=dtype)
    # of a masked block, its data: np.ma's running total skips masked elements
    # (the data there is the total so far), the carry must not be masked
    return np.take(np.ma.getdata(c), [c.shape[axis] - 1], axis=axis)


def _cum_carry(prev_carry, prev_block, axis, kind, dtype):
    last = _cum_last(prev_block, axis, kind, dtype)
    if prev_carry is None:
        return last
    return (prev_carry + last) if kind.endswith("sum") else (prev_carry * last)


def _cum_apply(block, carry, kind):
    return (block + carry) if kind.endswith("sum") else (block * carry)


def _cumreduction(kind, x, axis, dtype, out):
    x = asarray(x)
    _check_dtype_supported(x, "nancum" + kind[3:] if kind.startswith("nan") else "cum" + kind,
                           dtype=dtype)
    if kind.startswith("nan"):
        _masked_unsupported("cum" + kind, x)   # (cumsum, cumprod: np.ma's per block)
    npf = {"sum": np.cumsum, "prod": np.cumprod, "nansum": np.nancumsum,
           "nanprod": np.nancumprod}[kind]
    if axis is None:
        # NumPy's axis=None: along the flattened array
        x = ravel(x)
        axis = 0
    axis = normalize_axis(axis, x.ndim)[0]
    rdt = _result_dtype(npf, x.dtype, dtype)
    token = _token("cum" + kind, x, axis, str(rdt))
    bname = "cum%s-block-%s" % (kind, token)
    cname = "cum%s-carry-%s" % (kind, token)
    oname = "cum%s-%s" % (kind, token)
    nb = x.numblocks
    blocks, carries, outs = {}, {}, {}
    for idx in product(*map(range, nb)):
        blocks[(bname,) + idx] = (_cum_block, (x.name,) + idx, axis, kind, rdt)
        i = idx[axis]
        if i == 0:
            outs[(oname,) + idx] = (bname,) + idx
            continue
        prev = idx[:axis] + (i - 1,) + idx[axis + 1:]
        carries[(cname,) + idx] = (_cum_carry, (cname,) + prev if i > 1 else None,
                                   (bname,) + prev, axis, kind, rdt)
        outs[(oname,) + idx] = (_cum_apply, (bname,) + idx, (cname,) + idx, kind)
    r = _new_array(x, {bname: blocks, cname: carries, oname: outs}, oname, x.chunks, rdt)
    return _handle_out(out, r)


def cumsum(x, axis=None, dtype=None, out=None, method="sequential"):
    """Cumulative sum along an axis (``numpy.cumsum``)."""
    return _cumreduction("sum", x, axis, dtype, out)


def cumprod(x, axis=None, dtype=None, out=None, method="sequential"):
    """Cumulative product along an axis (``numpy.cumprod``)."""
    return _cumreduction("prod", x, axis, dtype, out)


def nancumsum(x, axis=None, dtype=None, out=None, method="sequential"):
    """Cumulative sum treating NaN as zero (``numpy.nancumsum``)."""
    return _cumreduction("nansum", x, axis, dtype, out)


def nancumprod(x, axis=None, dtype=None, out=None, method="sequential"):
    """Cumulative product treating NaN as one (``numpy.nancumprod``)."""
    return _cumreduction("nanprod", x, axis, dtype, out)


__all__ += ["cumsum", "cumprod", "nancumsum", "nancumprod"]


# ---------------------------------------------------------------------------
# the general cumulative reduction (dask's ``cumreduction``; xarray's ffill
# and bfill run through it)
# ---------------------------------------------------------------------------
def _takes_dtype(func):
    try:
        return "dtype" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        # NumPy's ufunc methods (np.add.accumulate) have no signature but take dtype
        return isinstance(getattr(func, "__self__", None), np.ufunc)


def _scan_block(b, func, axis, dtype):
    return func(b, axis=axis) if dtype is None else func(b, axis=axis, dtype=dtype)


def _scan_seed(block, axis, ident, dtype):
    """The carry before block 1: ``ident`` in the shape of one slice along ``axis``."""
    shape = tuple(1 if a == axis else s for a, s in enumerate(block.shape))
    return np.full(shape, ident, dtype=dtype)


def _scan_carry(binop, prev_carry, total):
    return total if prev_carry is None else binop(prev_carry, total)


def _scan_last(scanned, axis):
    return np.take(scanned, [scanned.shape[axis] - 1], axis=axis)


def _scan_preop(b, preop, axis):
    return preop(b, axis=axis, keepdims=True)


def cumreduction(func, binop, ident, x, axis=None, dtype=None, out=None, method="sequential",
                 preop=None):
    """A cumulative reduction along one axis (dask's ``cumreduction``).

    ``func(block, axis=axis[, dtype=dtype])`` scans each block on its own
    (``np.cumsum``); ``binop(carry, scanned)`` adds what the blocks before
    contribute (``np.add``), ``ident`` being its identity (0).  A block's
    contribution is the last slice of its scan, or with ``preop`` (needed by
    ``method="blelloch"``) ``preop(block, axis=axis, keepdims=True)`` of the
    raw block.  Both methods run as one chain of carries along the axis (the
    carries are one slice each; the block scans run in parallel), so the
    method changes only where the carry comes from.
    """
    if method not in ("sequential", "blelloch"):
        raise ValueError("Invalid method for cumreduction. Expected 'sequential' or "
                         "'blelloch'. Got: %r" % (method,))
    if method == "blelloch" and preop is None:
        raise TypeError("cumreduction with method='blelloch' needs preop=")
    x = asarray(x)
    if axis is None:
        x = ravel(x)
        axis = 0
    axis = normalize_axis(axis, x.ndim)[0]
    if dtype is None:
        dtype = getattr(func(np.ones((0,) * x.ndim, dtype=x.dtype), axis=axis), "dtype",
                        x.dtype)
    dtype = np.dtype(dtype)
    pass_dtype = dtype if (method == "blelloch" or _takes_dtype(func)) else None
    name = getattr(func, "__name__", "cumreduction")
    token = _token("cumreduction", x, func, binop, ident, axis, str(dtype), method, preop)
    bname, sname, tname, cname, oname = ("%s-%s-%s" % (name, part, token) for part in
                                         ("block", "seed", "total", "carry", "scan"))
    blocks, seeds, totals, carries, outs = {}, {}, {}, {}, {}
    for idx in product(*map(range, x.numblocks)):
        blocks[(bname,) + idx] = (_scan_block, (x.name,) + idx, func, axis, pass_dtype)
        i = idx[axis]
        if i == 0:
            outs[(oname,) + idx] = (bname,) + idx
            if preop is None:
                seeds[(sname,) + idx] = (_scan_seed, (bname,) + idx, axis, ident, dtype)
            continue
        prev = idx[:axis] + (i - 1,) + idx[axis + 1:]
        if preop is None:
            totals[(tname,) + prev] = (_scan_last, (bname,) + prev, axis)
            before = (cname,) + prev if i > 1 else (sname,) + prev
        else:
            totals[(tname,) + prev] = (_scan_preop, (x.name,) + prev, preop, axis)
            before = (cname,) + prev if i > 1 else None
        carries[(cname,) + idx] = (_scan_carry, binop, before, (tname,) + prev)
        outs[(oname,) + idx] = (binop, (cname,) + idx, (bname,) + idx)
    r = _new_array(x, {bname: blocks, sname: seeds, tname: totals, cname: carries,
                       oname: outs}, oname, x.chunks, dtype)
    return _handle_out(out, r)


# the tree machinery, for the reductions ufunc_methods.py builds (NumPy's
# ufunc.reduce and kin)
new_array = _new_array
reduction_tree = _tree
finish_reduction = _finish
