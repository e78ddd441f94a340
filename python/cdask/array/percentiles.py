"""Order statistics: ``median``, ``nanmedian``, ``quantile``, ``nanquantile``,
``percentile``, ``nanpercentile``, ``topk``, ``argtopk``, and ``sort``,
``argsort`` (cdask extras: dask.array has neither; ``np.sort``/``np.argsort``
on cdask Arrays come here).

Exact ones: the reduced axes are rechunked to one block (the other axes to
about the configured block size, as dask does) and NumPy's function runs on
each block, so every result is NumPy's bit for bit.  With ``axis=None`` the
whole array becomes one block (dask raises NotImplementedError there):
exact, but it needs the whole array in memory, as NumPy does.

``percentile`` of a 1-d array of several blocks is, as in dask, approximate
by default: each block gives its sorted values (up to about a thousand) or
its percentiles at 1001 evenly spaced points and at the ``q`` asked for,
each with how many of the block's elements lie at or below it; these counts
(linear between the points) are added over the blocks, and the value whose
count is NumPy's position ``q / 100 * (n - 1)`` (plus one) is read off, by
``method``.  Where every block gave all its values the counts are exact,
and so is the result (to rounding).  ``internal_method="exact"`` (or any keyword such
as ``axis``) takes the exact route above instead.

``sort``/``argsort`` are exact the same way: the sorted axis rechunked to
one block (the others to about the configured block size), NumPy's
sort/argsort per block, lazily; ``axis=None`` sorts the flattened array.

``topk``/``argtopk`` are a tree along the axis: each block keeps its ``k``
largest (``np.partition``), groups of partials are joined and cut to ``k``
again, the last one sorted.  ``argtopk``'s partials carry the length of
what they cover, so indices are shifted when neighbouring groups merge and
unknown chunk sizes are fine.
"""

import numbers
import warnings
from itertools import product

import numpy as np

from .core import Array
from .creation import asarray
from .sets import dense_unique
from .statistics import merge_tree, one_block
from .tokenize import tokenize
from .utils import isnan, merge_layers, normalize_axis, normalize_axis_index

__all__ = ["median", "nanmedian", "quantile", "nanquantile", "percentile", "nanpercentile",
           "topk", "argtopk", "sort", "argsort"]


# ---------------------------------------------------------------------------
# exact: one block along the reduced axes
# ---------------------------------------------------------------------------
def _order_block(b, func, q, axes, keepdims, kwargs, w=None):
    b = np.asarray(b)
    nd = b.ndim
    last = tuple(range(nd - len(axes), nd)) if axes is not None else ()
    moved = axes is not None and tuple(axes) != last
    if moved:
        # the reduced axes made the last ones, in a copy of our own: NumPy's
        # selection then walks contiguous lines (several times faster than
        # strided ones) and may work in place; the values picked, so the
        # result, are the same
        b = np.ascontiguousarray(np.moveaxis(b, axes, last))
        if w is not None and np.ndim(w) == nd:
            w = np.ascontiguousarray(np.moveaxis(w, axes, last))
        kwargs = dict(kwargs, overwrite_input=True)
        axis = last
    else:
        axis = axes
    if w is not None:
        kwargs = dict(kwargs, weights=w)
    if q is None:
        r = np.asarray(func(b, axis=axis, keepdims=keepdims, **kwargs))
    elif np.ndim(q) > 1:
        # q flattened, its axes put back first (NumPy's nan-quantiles would
        # put a 2-d q's axes last for a tuple of axes)
        qa = np.asarray(q)
        r = np.asarray(func(b, qa.reshape(-1), axis=axis, keepdims=keepdims, **kwargs))
        r = r.reshape(qa.shape + r.shape[1:])
    else:
        r = np.asarray(func(b, q, axis=axis, keepdims=keepdims, **kwargs))
    if moved and keepdims:
        lead = r.ndim - nd    # q's axes
        r = np.moveaxis(r, [lead + a for a in last], [lead + a for a in axes])
    return r


def _handle_out(out, r):
    if out is None:
        return r
    if isinstance(out, tuple) and len(out) == 1:
        out = out[0]
    if not isinstance(out, Array):
        raise NotImplementedError("out= must be a cdask Array, got %s" % type(out).__name__)
    out._become(r)
    return out


def _along(func, what, a, q, axis, keepdims, out, kwargs, weights=None):
    """``func(block, [q,] axis=axes, keepdims=..., **kwargs)`` with the reduced
    axes in one block; the result's leading axes are ``q``'s."""
    a = asarray(a)
    axes = normalize_axis(axis, a.ndim)
    if isinstance(q, Array):
        q = np.asarray(q)
    axes_arg = axes if a.ndim else None
    # NumPy's checks (q's range, the method, weights...) and dtype on a sample
    sample = np.zeros((1,) * a.ndim, dtype=a.dtype)
    wsample = None
    if weights is not None:
        wsample = np.ones((1,) * (a.ndim if np.ndim(weights) != 1 else 1))
    sk = dict(kwargs, weights=wsample) if weights is not None else kwargs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        probe = np.asarray(func(sample, axis=axes_arg, keepdims=keepdims, **sk) if q is None
                           else func(sample, q, axis=axes_arg, keepdims=keepdims, **sk))
    dtype = probe.dtype
    qshape = () if q is None else np.shape(q)
    if a.size == 0:
        # no data (a known size): NumPy's own answer, its quirks and errors too
        # (the nan-functions give a NaN without q's axes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            e = np.empty(a.shape, a.dtype)
            r = func(e, axis=axes_arg, keepdims=keepdims, **kwargs) if q is None else \
                func(e, q, axis=axes_arg, keepdims=keepdims, **kwargs)
        return _handle_out(out, asarray(np.asarray(r)))
    if a.ndim and any(a.numblocks[d] > 1 for d in axes):
        if any(isnan(c) for d in axes for c in a.chunks[d]):
            if a.ndim == 1:
                a = one_block(a, what)
            else:
                raise ValueError("%s along an axis of unknown (nan) chunk sizes; call "
                                 "x.compute_chunk_sizes() first" % what)
        else:
            spec = {d: -1 if d in axes else "auto" for d in range(a.ndim)}
            try:
                a = a.rechunk(spec)
            except (ValueError, NotImplementedError):
                a = a.rechunk({d: -1 for d in axes})
    w = None
    if weights is not None:
        if np.ndim(weights) == a.ndim and a.ndim > 1:
            # weights of a's shape: cut like a's blocks
            w = asarray(weights)
            if w.chunks != a.chunks:
                w = w.rechunk(a.chunks)
        else:
            weights = np.asarray(weights)   # 1-d, along the one reduced axis
    token = tokenize(what, a.name, None if q is None else np.asarray(q), axes, keepdims,
                     sorted(kwargs.items()), None if weights is None else
                     (w.name if w is not None else tokenize(weights)))
    name = "%s-%s" % (what, token)
    layers = merge_layers(a) if w is None else merge_layers(a, w)
    layer = {}
    for k in a._keys_flat():
        idx = k[1:]
        oidx = (0,) * len(qshape) + tuple(0 if d in axes else idx[d] for d in range(a.ndim)
                                          if keepdims or d not in axes)
        wb = None
        if w is not None:
            wb = (w.name,) + idx
        elif weights is not None:
            wb = weights
        layer[(name,) + oidx] = (_order_block, k, func, q, axes_arg, bool(keepdims),
                                 kwargs, wb)
    layers[name] = layer
    chunks = tuple((s,) for s in qshape) + tuple(
        (1,) if d in axes else a.chunks[d] for d in range(a.ndim) if keepdims or d not in axes)
    return _handle_out(out, Array(layers, name, chunks, dtype))


def _method(method, interpolation, what):
    if interpolation is not None:
        warnings.warn("the `interpolation=` argument to %s was renamed to `method=`" % what,
                      FutureWarning, stacklevel=3)
        if method != "linear":
            raise TypeError("Cannot pass interpolation and method keywords!")
        method = interpolation
    return method


def median(a, axis=None, keepdims=False, out=None, overwrite_input=False):
    """``np.median``, exact: the reduced axes in one block, NumPy's median per
    block.  ``axis=None`` (dask: NotImplementedError) takes the whole array in
    one task.  ``overwrite_input`` is accepted; the input is never changed."""
    return _along(np.median, "median", a, None, axis, keepdims, out, {})


def nanmedian(a, axis=None, keepdims=False, out=None, overwrite_input=False):
    """``np.nanmedian``, exact (see :func:`median`)."""
    return _along(np.nanmedian, "nanmedian", a, None, axis, keepdims, out, {})


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
             keepdims=False, *, weights=None, interpolation=None):
    """``np.quantile``, exact (see :func:`median`); ``weights`` as NumPy's
    (``method="inverted_cdf"``)."""
    method = _method(method, interpolation, "quantile")
    return _along(np.quantile, "quantile", a, q, axis, keepdims, out, {"method": method},
                  weights)


def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                keepdims=False, *, weights=None, interpolation=None):
    """``np.nanquantile``, exact (see :func:`median`).  A q of several
    dimensions gives the result's first axes, as ``np.quantile`` (NumPy 2.4's
    nanquantile puts them last for a tuple of axes)."""
    method = _method(method, interpolation, "nanquantile")
    return _along(np.nanquantile, "nanquantile", a, q, axis, keepdims, out,
                  {"method": method}, weights)


def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                  keepdims=False, *, weights=None, interpolation=None):
    """``np.nanpercentile``, exact (see :func:`median`)."""
    method = _method(method, interpolation, "nanpercentile")
    return _along(np.nanpercentile, "nanpercentile", a, q, axis, keepdims, out,
                  {"method": method}, weights)


# ---------------------------------------------------------------------------
# percentile: approximate merge of per-block percentiles (1-d, as dask)
# ---------------------------------------------------------------------------
_GRID = np.linspace(0.0, 100.0, 1001)
_APPROX_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _pct_block(b, grid):
    """(n, values, ranks, exact): increasing values of the block with the
    number of its elements at or below each.  Exact (every distinct value
    with its count) for a block of up to ``len(grid)`` elements or integers
    of a narrow range; else its percentiles at ``grid`` with NumPy's linear
    positions (+ 1) as ranks."""
    b = np.asarray(b).reshape(-1)
    n = b.size
    if n == 0:
        return None
    dense = dense_unique(b) if n > len(grid) else None
    if n <= len(grid) or (dense is not None and len(dense[0]) <= 4 * len(grid)):
        v, c = dense if dense is not None else np.unique(b, return_counts=True)
        return n, v.astype(np.float64), np.cumsum(c).astype(np.float64), True
    v = np.percentile(b, grid).astype(np.float64)
    r = grid / 100.0 * (n - 1) + 1
    last = np.append(v[1:] != v[:-1], True)      # a repeated value: its last rank
    return n, v[last], r[last], False


def _block_rank(x, v, r, n, exact):
    """How many of a block's elements are at or below each of ``x``."""
    if exact:   # a step at each value
        i = np.searchsorted(v, x, side="right")
        return np.where(i > 0, r[np.maximum(i - 1, 0)], 0.0)
    return np.interp(x, v, r, left=0.0, right=float(n))


def _pct_merge(parts, qs, method, dtype):
    parts = [p for p in parts if p is not None]
    if not parts:
        raise IndexError("cannot do a non-empty take from an empty axes.")
    if any(np.isnan(p[1]).any() for p in parts):
        return np.full(np.shape(qs), np.nan, dtype=dtype)
    total = sum(p[0] for p in parts)
    xs = np.unique(np.concatenate([p[1] for p in parts]))
    rank = np.zeros(xs.shape)       # elements at or below each of xs, over the blocks
    for n, v, r, exact in parts:
        rank += _block_rank(xs, v, r, n, exact)
    pos = np.asarray(qs, dtype=np.float64) / 100.0 * (total - 1)   # NumPy's position

    def at(k):   # the (k+1)-th smallest element
        i = np.searchsorted(rank, np.asarray(k, dtype=np.float64) + 1 - 1e-9, side="left")
        return xs[np.minimum(i, len(xs) - 1)]

    if method == "linear":
        lo, hi = at(np.floor(pos)), at(np.ceil(pos))
        if all(p[3] for p in parts):
            # exact counts: NumPy's interpolation between the two neighbours
            # (its formula, from the nearer end)
            t = pos - np.floor(pos)
            d = hi - lo
            est = np.where(t >= 0.5, hi - d * (1 - t), lo + d * t)
        else:
            est = np.interp(pos + 1, rank, xs)
    elif method == "lower":
        est = at(np.floor(pos))
    elif method == "higher":
        est = at(np.ceil(pos))
    elif method == "nearest":
        est = at(np.around(pos))
    else:
        est = (at(np.floor(pos)) + at(np.ceil(pos))) / 2
    return np.asarray(est).astype(dtype)


def percentile(a, q, method="linear", internal_method="default", **kwargs):
    """``np.percentile``.

    For a 1-d array of several blocks, as in dask, the result is approximate
    (see the module docstring; exact, to rounding, when no block holds more
    than about a thousand elements); ``internal_method="exact"`` gives NumPy's
    result exactly (the array in one block).  Other arrays, one block, a
    method other than dask's five (linear, lower, higher, midpoint, nearest)
    or keywords such as ``axis``/``keepdims``/``out``: exact, as
    :func:`quantile`.  ``internal_method="tdigest"`` is taken as
    ``"default"``.
    """
    a = asarray(a)
    if "interpolation" in kwargs:
        method = _method(method, kwargs.pop("interpolation"), "percentile")
    if internal_method not in ("default", "dask", "tdigest", "exact"):
        raise ValueError("`internal_method=` must be one of 'default', 'dask', 'tdigest' "
                         "or 'exact'")
    unknown = set(kwargs) - {"axis", "out", "overwrite_input", "keepdims", "weights"}
    if unknown:
        raise TypeError("percentile() got an unexpected keyword argument %r"
                        % sorted(unknown)[0])
    if a.ndim != 1 or a.numblocks[0] == 1 or internal_method == "exact" or kwargs or \
            method not in _APPROX_METHODS or a.dtype.kind in "mM":
        # (datetimes: NumPy's interpolation, exactly)
        return _along(np.percentile, "percentile", a, q, kwargs.get("axis"),
                      kwargs.get("keepdims", False), kwargs.get("out"), {"method": method},
                      kwargs.get("weights"))
    qa = np.asarray(q)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dtype = np.asarray(np.percentile(np.zeros(1, a.dtype), q, method=method)).dtype
    if a.dtype.kind == "c":
        raise TypeError("a must be an array of real numbers")
    grid = np.unique(np.concatenate([_GRID, qa.reshape(-1).astype(np.float64)]))
    token = tokenize("percentile", a.name, qa, method)
    layers = merge_layers(a)
    pname = "percentile-chunk-" + token
    layers[pname] = {(pname, i): (_pct_block, k, grid) for i, k in enumerate(a._keys_flat())}
    oname = "percentile-" + token
    okey = (oname,) + (0,) * qa.ndim
    layers[oname] = {okey: (_pct_merge, [(pname, i) for i in range(a.npartitions)], qa,
                            method, dtype)}
    return Array(layers, oname, tuple((s,) for s in qa.shape), dtype)


def percentile_exact(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                     keepdims=False, *, weights=None, interpolation=None):
    """``np.percentile`` exactly (what ``np.percentile(cdask_array, ...)`` runs:
    NumPy's function promises NumPy's result, dask's approximation is for
    ``cdask.percentile``)."""
    method = _method(method, interpolation, "percentile")
    return _along(np.percentile, "percentile", a, q, axis, keepdims, out, {"method": method},
                  weights)


# ---------------------------------------------------------------------------
# topk, argtopk
# ---------------------------------------------------------------------------
def _cut(b, k, axis):
    if abs(k) >= b.shape[axis]:
        return b
    part = np.partition(b, -k if k > 0 else -k - 1, axis=axis)
    sl = slice(-k, None) if k > 0 else slice(None, -k)
    return part[(slice(None),) * axis + (sl,)]


def _topk_combine(parts, k, axis):
    return _cut(np.concatenate(parts, axis=axis), k, axis)


def _ordered(s, k, axis):
    return s if k < 0 else np.flip(s, axis=axis)


def _topk_final(parts, k, axis):
    r = np.sort(_topk_combine(parts, k, axis), axis=axis)
    if r.shape[axis] < abs(k):
        raise ValueError("topk: k=%d but the axis has only %d elements" % (k, r.shape[axis]))
    return _ordered(r, k, axis)


def _argcut(vals, idx, k, axis):
    if abs(k) >= vals.shape[axis]:
        return vals, idx
    p = np.argpartition(vals, -k if k > 0 else -k - 1, axis=axis)
    sl = slice(-k, None) if k > 0 else slice(None, -k)
    p = p[(slice(None),) * axis + (sl,)]
    return np.take_along_axis(vals, p, axis), np.take_along_axis(idx, p, axis)


def _argtopk_chunk(b, k, axis):
    b = np.asarray(b)
    shape = [1] * b.ndim
    shape[axis] = b.shape[axis]
    idx = np.broadcast_to(np.arange(b.shape[axis], dtype=np.intp).reshape(shape), b.shape)
    v, i = _argcut(b, idx, k, axis)
    return v, np.ascontiguousarray(i), b.shape[axis]


def _argtopk_combine(parts, k, axis):
    vals, idx, off = [], [], 0
    for v, i, n in parts:
        vals.append(v)
        idx.append(i + off)
        off += n
    v, i = _argcut(np.concatenate(vals, axis=axis), np.concatenate(idx, axis=axis), k, axis)
    return v, i, off


def _argtopk_final(parts, k, axis):
    v, i, _ = _argtopk_combine(parts, k, axis)
    if v.shape[axis] < abs(k):
        raise ValueError("argtopk: k=%d but the axis has only %d elements"
                         % (k, v.shape[axis]))
    order = np.argsort(v, axis=axis, kind="stable")
    return _ordered(np.take_along_axis(i, order, axis), k, axis)


def _check_k(k, a, axis, what):
    if isinstance(k, bool) or not isinstance(k, (numbers.Integral, np.integer)):
        raise TypeError("%s: k must be an integer, got %r" % (what, k))
    k = int(k)
    if k == 0:
        raise ValueError("%s: k must not be 0" % what)
    n = a.shape[axis]
    if not isnan(n) and abs(k) > n:
        raise ValueError("%s: |k| = %d is larger than the axis (%d elements)"
                         % (what, abs(k), n))
    return k


def _topk_tree(what, a, k, axis, split_every, chunk, combine, final, dtype):
    a = asarray(a)
    if a.ndim == 0:
        raise np.exceptions.AxisError(axis, 0)
    axis = normalize_axis_index(axis, a.ndim)
    k = _check_k(k, a, axis, what)
    token = tokenize(what, a.name, k, axis, split_every)
    layers = merge_layers(a)
    pname = "%s-chunk-%s" % (what, token)
    layers[pname] = {(pname,) + kk[1:]: (chunk, kk, k, axis) for kk in a._keys_flat()}
    oname = "%s-%s" % (what, token)
    nb = a.numblocks
    others = [range(n) if d != axis else (0,) for d, n in enumerate(nb)]
    for o in product(*others):
        keys = [(pname,) + o[:axis] + (i,) + o[axis + 1:] for i in range(nb[axis])]
        sub = {}
        merge_tree(sub, "%s-%s" % (what, "-".join(map(str, o))), token, keys, combine, final,
                   (oname,) + o, split_every, combine_args=(k, axis), final_args=(k, axis))
        for n, layer in sub.items():
            layers.setdefault(n, {}).update(layer)
    chunks = tuple((abs(k),) if d == axis else c for d, c in enumerate(a.chunks))
    return Array(layers, oname, chunks, dtype)


def topk(a, k, axis=-1, split_every=None):
    """The ``k`` largest elements along ``axis``, largest first (``k < 0``: the
    ``-k`` smallest, smallest first), in one block along the axis (dask's)."""
    a = asarray(a)
    return _topk_tree("topk", a, k, axis, split_every, _cut, _topk_combine, _topk_final,
                      a.dtype)


def argtopk(a, k, axis=-1, split_every=None):
    """The indices along ``axis`` of the ``k`` largest elements, largest first
    (``k < 0``: of the ``-k`` smallest, smallest first), dask's ``argtopk``."""
    return _topk_tree("argtopk", a, k, axis, split_every, _argtopk_chunk, _argtopk_combine,
                      _argtopk_final, np.intp)


# ---------------------------------------------------------------------------
# sort, argsort: one block along the axis
# ---------------------------------------------------------------------------
def _sort_block(b, func, axis, kind, stable):
    return func(np.asarray(b), axis=axis, kind=kind, stable=stable)


def _sorted(func, what, a, axis, kind, order, stable):
    if order is not None:
        raise NotImplementedError("cdask %s: order= (fields of structured dtypes)" % what)
    a = asarray(a)
    if axis is None:
        a = a.reshape(-1) if a.ndim != 1 else a
        axis = 0
    if a.ndim == 0:
        raise np.exceptions.AxisError("axis %d is out of bounds for array of dimension 0"
                                      % axis)
    axis = normalize_axis_index(axis, a.ndim)
    dtype = func(np.empty((1,) * a.ndim, a.dtype), axis=axis, kind=kind, stable=stable).dtype
    if a.numblocks[axis] > 1:
        if any(isnan(c) for c in a.chunks[axis]):
            if a.ndim != 1:
                raise ValueError("%s along an axis of unknown (nan) chunk sizes; call "
                                 "x.compute_chunk_sizes() first" % what)
            a = one_block(a, what)
        else:
            try:
                a = a.rechunk({d: -1 if d == axis else "auto" for d in range(a.ndim)})
            except (ValueError, NotImplementedError):
                a = a.rechunk({axis: -1})
    name = "%s-%s" % (what, tokenize(what, a.name, axis, kind, stable))
    layers = merge_layers(a)
    layers[name] = {(name,) + k[1:]: (_sort_block, k, func, axis, kind, stable)
                    for k in a._keys_flat()}
    return Array(layers, name, a.chunks, dtype)


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """``np.sort``, lazily (a cdask extra: dask.array has no sort): the axis
    in one block, NumPy's sort per block; ``axis=None`` sorts the flattened
    array (in one block)."""
    return _sorted(np.sort, "sort", a, axis, kind, order, stable)


def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """``np.argsort``, lazily (a cdask extra), as :func:`sort`: NumPy's
    argsort per block, so ``kind="stable"`` keeps equal elements in order."""
    return _sorted(np.argsort, "argsort", a, axis, kind, order, stable)
