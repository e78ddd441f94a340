"""Counting and statistics: ``histogram``, ``histogram2d``, ``histogramdd``,
``bincount``, ``digitize``, ``cov``, ``corrcoef``, ``gradient``.

Counts are made block by block and added up in a tree (``merge_tree``):
each block's task calls the NumPy function on the block with the same bin
edges NumPy would use for the whole array, so the counts are NumPy's
exactly (a value falls in the same bin whichever block it is in).  Where
NumPy takes the bin range from the data (``range=None``), a first tree
finds each column's minimum and maximum (one pass over the data, the
partials merged with ``np.minimum``/``np.maximum`` so NaN propagates as in
NumPy), and the block tasks read that result: the edges are then lazy, a
cdask Array, while edges known when the graph is built are returned as
NumPy arrays (as dask returns them).  Partial counts of different lengths
(``bincount``) are padded with zeros when added.

``digitize`` is NumPy's per block; ``cov`` and ``corrcoef`` follow NumPy's
formula with cdask's reductions and ``dot``; ``gradient`` runs
``np.gradient`` on blocks overlapping their neighbours by one element along
the axis (``overlap.map_overlap``), which gives NumPy's central differences
inside and its one-sided ones at the ends of the array.

Every task callable is a module-level function (graphs pickle).
"""

import math
import numbers
import operator
import warnings

import numpy as np

from .. import kernels as _kernels
from .contraction import dot
from .core import Array
from .creation import asarray
from .elemwise import elemwise
from .joining import concatenate, stack
from .mapping import map_blocks
from .overlap import map_overlap
from .reductions import average, sum as _sum
from .reshape import ravel
from .tokenize import tokenize
from .triangles import diag
from .utils import isnan, merge_layers, normalize_axis, unknown_chunks_error

__all__ = ["histogram", "histogram2d", "histogramdd", "bincount", "digitize", "cov",
           "corrcoef", "gradient"]

DEFAULT_SPLIT_EVERY = 8


# ---------------------------------------------------------------------------
# graph helpers (also used by sets.py and percentiles.py)
# ---------------------------------------------------------------------------
def merge_tree(layers, prefix, token, keys, combine, final, out_key, split_every=None,
               combine_args=(), final_args=()):
    """Add to ``layers`` (a dict, changed in place) the tasks merging the
    values of ``keys`` (a list, in order) ``split_every`` at a time: levels of
    ``(combine, [keys], *combine_args)`` while more than one group is left,
    then ``(final, [keys], *final_args)`` at ``out_key``.  Groups are runs of
    neighbouring keys, so an order-dependent merge sees the partials in order."""
    g = DEFAULT_SPLIT_EVERY if split_every is None else split_every
    if isinstance(g, dict):
        g = max(g.values()) if g else DEFAULT_SPLIT_EVERY
    g = operator.index(g)
    if g < 2:
        raise ValueError("split_every must be at least 2, got %d" % g)
    keys = list(keys)
    level = 0
    while len(keys) > g:
        name = "%s-combine%d-%s" % (prefix, level, token)
        m = (len(keys) + g - 1) // g
        layers[name] = {(name, j): (combine, keys[j * g:(j + 1) * g]) + tuple(combine_args)
                        for j in range(m)}
        keys = [(name, j) for j in range(m)]
        level += 1
    layers[out_key[0]] = {out_key: (final, keys) + tuple(final_args)}
    return layers


def one_block(x, what):
    """``x`` as an Array of one block (rechunked; for unknown chunk sizes,
    1-d only, its blocks concatenated by one task)."""
    if x.npartitions == 1:
        return x
    if not any(isnan(c) for cc in x.chunks for c in cc):
        return x.rechunk(tuple(-1 for _ in range(x.ndim)))
    if x.ndim != 1:
        raise unknown_chunks_error(what)
    name = "one-block-" + tokenize(x.name)
    layers = dict(x._layers)
    layers[name] = {(name, 0): (_concat, x._keys_flat())}
    return Array(layers, name, ((math.nan,),), x.dtype)


def _concat(parts):
    return np.concatenate([np.asarray(p).reshape(-1) for p in parts])


def _add(parts):
    out = np.array(parts[0], copy=True)
    for p in parts[1:]:
        out += p
    return out


def _add_padded(parts, dtype):
    """Sum of 1-d partial counts of different lengths (zeros past the end)."""
    n = max(len(p) for p in parts)
    out = np.zeros(n, dtype=dtype)
    for p in parts:
        out[:len(p)] += p
    return out


def _same_chunks(w, x, what):
    """``w`` with ``x``'s chunks (same shape required, NumPy's message)."""
    w = asarray(w)
    if w.shape != x.shape and not any(isnan(s) for s in w.shape + x.shape):
        raise ValueError("weights should have the same shape as %s." % what)
    if w.chunks != x.chunks:
        if any(isnan(c) for cc in w.chunks + x.chunks for c in cc):
            raise ValueError("weights and %s must have the same chunks when chunk sizes "
                             "are unknown (got %s and %s)" % (what, w.chunks, x.chunks))
        w = w.rechunk(x.chunks)
    return w


# ---------------------------------------------------------------------------
# minimum and maximum of columns, in one pass
# ---------------------------------------------------------------------------
def _minmax_block(b):
    """Per column (the last axis of a 2-d block) or of a 1-d block: (min, max),
    or None for an empty block."""
    b = np.asarray(b)
    if b.shape[0] == 0:
        return None
    return np.min(b, axis=0), np.max(b, axis=0)


def _minmax_merge(parts):
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    lo, hi = parts[0]
    for a, b in parts[1:]:
        lo = np.minimum(lo, a)
        hi = np.maximum(hi, b)
    return lo, hi


def _minmax_final(parts, ncols):
    """A list of ``ncols`` (min, max) pairs as NumPy scalars of the data's
    dtype; ``(0, 1)`` for no data (NumPy's range of an empty array)."""
    r = _minmax_merge(parts)
    if r is None:
        return [(0, 1)] * ncols
    lo, hi = np.atleast_1d(r[0]), np.atleast_1d(r[1])
    return [(lo[i], hi[i]) for i in range(ncols)]


def _data_ranges(x, layers, token, split_every=None):
    """Key of a task giving the (min, max) per column of ``x`` (1-d: one pair)."""
    ncols = 1 if x.ndim == 1 else x.shape[1]
    layers.update(x._layers)
    name = "minmax-" + token
    layers[name] = {(name, i): (_minmax_block, k) for i, k in enumerate(x._keys_flat())}
    out = ("minmax-final-" + token,)
    merge_tree(layers, "minmax", token, [(name, i) for i in range(x.npartitions)],
               _minmax_merge, _minmax_final, out, split_every, final_args=(ncols,))
    return out


# ---------------------------------------------------------------------------
# histogram
# ---------------------------------------------------------------------------
def _hist_block(b, bins, range, w=None):
    return np.histogram(b, bins, range=range, weights=w)[0]


def _hist_block_ranged(b, bins, ranges, w=None):
    return np.histogram(b, bins, range=ranges[0], weights=w)[0]


def _hist_edges(ranges, bins, dtype):
    lo, hi = ranges[0]
    if isinstance(lo, int) and not isinstance(lo, np.generic):   # no data: NumPy's (0, 1)
        return np.histogram_bin_edges(np.empty(0, dtype), bins)
    return np.histogram_bin_edges(np.array([lo, hi], dtype=dtype), bins)


def _hist_finish(parts):
    return _add(parts)


def _plain_range(r):
    """Is the range NumPy would take in double precision (Python or float64
    numbers, ints exact in a double)?  Then the C kernel bins as NumPy does."""
    for v in r:
        if isinstance(v, (bool, np.bool_)) or not isinstance(
                v, (int, float, np.float64, np.integer)):
            return False
        if isinstance(v, (int, np.integer)) and abs(int(v)) >= 2 ** 53:
            return False
    return True


def _is_int_bins(bins):
    return isinstance(bins, (numbers.Integral, np.integer)) and not isinstance(bins, bool)


def histogram(a, bins=None, range=None, normed=False, weights=None, density=None):
    """``np.histogram`` of the flattened array: ``(hist, bin_edges)``.

    The counts are NumPy's exactly (each block is binned with the edges NumPy
    would use for the whole array, the counts added up; float64 data with
    equal-width bins and no weights in one C pass per block, the
    ``histogram`` kernel doing NumPy's arithmetic); weighted sums are
    NumPy's within rounding.  ``bins``: an int (default 10) or a sequence of
    edges (or a 1-d cdask Array of them).  With an int and no ``range``, the
    range is the data's minimum and maximum, as in NumPy (dask requires a
    range): one more pass over the data, and the edges come back as a lazy
    cdask Array; otherwise they are a NumPy array, as dask returns them.
    (Blocks that other operations compute are then held from the first pass
    to the second: give a range to stream such data in one pass.)
    Bins given by name (``"auto"``...) need the whole data set and are not
    supported.
    """
    a = asarray(a)
    if normed is not False and normed is not None:
        raise ValueError("The normed= keyword argument has been deprecated. Please use "
                         "density instead. See the numpy.histogram docstring for more "
                         "information.")
    if bins is None:
        bins = 10
    if isinstance(bins, str):
        raise NotImplementedError("cdask histogram: bins=%r needs the whole data set at once; "
                                  "pass a number of bins or the edges" % (bins,))
    if isinstance(bins, Array) and bins.ndim == 0:
        raise NotImplementedError("cdask histogram: bins as a 0-d cdask Array; pass an int")
    if a.dtype == np.bool_:
        # as NumPy: booleans are binned as uint8 (its warning, once, here)
        warnings.warn("Converting input from bool to <class 'numpy.uint8'> for compatibility.",
                      RuntimeWarning, stacklevel=2)
        a = a.astype(np.uint8)
    w = None if weights is None else _same_chunks(weights, a, "a")
    wdtype = None if w is None else w.dtype
    sample = np.zeros(1, dtype=a.dtype)
    wsample = None if w is None else np.ones(1, dtype=wdtype)
    token = tokenize("histogram", a.name, None if w is None else w.name,
                     bins if not isinstance(bins, Array) else bins.name, range, density)
    layers = merge_layers(a) if w is None else merge_layers(a, w)
    akeys = a._keys_flat()
    wkeys = [None] * len(akeys) if w is None else w._keys_flat()
    pname = "histogram-chunk-" + token
    lazy_edges = None
    if isinstance(bins, Array):
        if bins.ndim != 1:
            raise ValueError("`bins` must be 1d, when an array")
        eb = one_block(bins, "histogram")
        layers.update(eb._layers)
        ekey = eb._keys_flat()[0]
        dtype = np.histogram(sample, np.array([0, 1], dtype=eb.dtype), weights=wsample)[0].dtype
        layers[pname] = {(pname, i): (_hist_block, k, ekey, None, wk)
                         for i, (k, wk) in enumerate(zip(akeys, wkeys))}
        edges = eb
        nbins = bins.shape[0] - 1 if not isnan(bins.shape[0]) else math.nan
    elif _is_int_bins(bins) or np.ndim(bins) == 0:
        n = operator.index(bins)
        if n < 1:
            raise ValueError("`bins` must be positive, when an integer")
        nbins = n
        kernel = a.dtype == np.float64 and w is None and hasattr(_kernels, "histogram")
        if range is None and not (a.size == 0):
            rkey = _data_ranges(ravel(a) if a.ndim != 1 else a, layers, token)
            ename = "histogram-edges-" + token
            layers[ename] = {(ename, 0): (_hist_edges, rkey, n, a.dtype)}
            if kernel:
                layers[pname] = {(pname, i): (_kernels.histogram, k, (ename, 0))
                                 for i, k in enumerate(akeys)}
            else:
                layers[pname] = {(pname, i): (_hist_block_ranged, k, n, rkey, wk)
                                 for i, (k, wk) in enumerate(zip(akeys, wkeys))}
            bin_dtype = np.histogram_bin_edges(sample, n).dtype
            lazy_edges = Array(dict(layers), ename, ((n + 1,),), bin_dtype)
            dtype = np.histogram(sample, n, weights=wsample)[0].dtype
        else:
            if range is None:
                range = (0, 1)   # NumPy's range for no data
            edges = np.histogram_bin_edges(np.empty(0, a.dtype), n, range=range)
            dtype = np.histogram(sample, n, range=range, weights=wsample)[0].dtype
            if kernel and edges.dtype == np.float64 and _plain_range(range):
                layers[pname] = {(pname, i): (_kernels.histogram, k, edges)
                                 for i, k in enumerate(akeys)}
            else:
                layers[pname] = {(pname, i): (_hist_block, k, n, tuple(range), wk)
                                 for i, (k, wk) in enumerate(zip(akeys, wkeys))}
    else:
        edges = np.histogram(np.empty(0, a.dtype), bins)[1]   # NumPy's checks
        nbins = edges.shape[0] - 1
        dtype = np.histogram(sample, edges, weights=wsample)[0].dtype
        layers[pname] = {(pname, i): (_hist_block, k, edges, None, wk)
                         for i, (k, wk) in enumerate(zip(akeys, wkeys))}
    oname = "histogram-" + token
    merge_tree(layers, "histogram", token, [(pname, i) for i in builtins_range(len(akeys))],
               _add, _hist_finish, (oname, 0))
    hist = Array(layers, oname, ((nbins,),), dtype)
    if lazy_edges is not None:
        edges = lazy_edges
    if density:
        if isinstance(edges, Array):
            db = elemwise(np.subtract, edges[1:], edges[:-1]).astype(float)
        else:
            db = np.diff(edges).astype(float)
        hist = elemwise(np.true_divide, elemwise(np.true_divide, hist, db), _sum(hist))
    return hist, edges


builtins_range = range


# ---------------------------------------------------------------------------
# histogramdd, histogram2d
# ---------------------------------------------------------------------------
def _histdd_block(b, bins, ranges, w=None):
    # ranges: a list per dimension (None where the bins are edges), or the
    # result of the min/max pass with None where the bins are edges
    return np.histogramdd(np.asarray(b).reshape(-1, len(bins)), bins=bins, range=ranges,
                          weights=w)[0]


def _histdd_block_ranged(b, bins, fixed, found, w=None):
    ranges = [f if f is not None or isinstance(bi, np.ndarray) else found[i]
              for i, (bi, f) in enumerate(zip(bins, fixed))]
    ranges = [None if isinstance(bi, np.ndarray) else r for bi, r in zip(bins, ranges)]
    return _histdd_block(b, bins, ranges, w)


def _histdd_edges(bins, fixed, found, dtype, i):
    r = fixed[i] if fixed[i] is not None else found[i]
    d = len(bins)
    ranges = [None] * d
    ranges[i] = r
    spec = [np.array([0.0, 1.0]) if j != i else bins[i] for j in range(d)]
    return np.histogramdd(np.empty((0, d), dtype), bins=spec, range=ranges)[1][i]


def _histdd_density(h, edges):
    # NumPy's normalisation: divided by each axis's widths, then by the total
    s = h.sum()
    for i, e in enumerate(edges):
        shape = [1] * h.ndim
        shape[i] = h.shape[i]
        h = h / np.diff(e).reshape(shape)
    return h / s


def _as_sample(sample):
    """(N, D) cdask Array of a histogramdd sample, one block along axis 1."""
    if isinstance(sample, (list, tuple)):
        cols = [asarray(s) for s in sample]
        for c in cols:
            if c.ndim != 1:
                raise ValueError("Incompatible sample: a sequence of 1-d arrays is needed, "
                                 "got one of shape %s" % (c.shape,))
        x = stack(cols, axis=1)
    else:
        x = asarray(sample)
        if x.ndim == 1:
            x = x.reshape((x.shape[0], 1)) if not isnan(x.shape[0]) else \
                stack([x], axis=1)
        elif x.ndim != 2:
            raise ValueError("Single array input to histogramdd should be columnar (N, D), "
                             "got shape %s" % (x.shape,))
    if x.numblocks[1] != 1:
        x = x.rechunk({1: -1})
    return x


def histogramdd(sample, bins=10, range=None, normed=None, weights=None, density=None):
    """``np.histogramdd``: ``(hist, [edges per dimension])``.

    ``sample``: an (N, D) Array (chunked along axis 0; blocks along axis 1 are
    joined) or a sequence of D 1-d arrays.  Counts are NumPy's exactly; a
    dimension given by a number of bins and no range takes its range from the
    data, as NumPy does (dask requires the range), in one pass over the data
    for every such dimension.  The edges come back as cdask Arrays (lazy
    where they depend on the data), as dask's do."""
    if normed is not None:
        if density is not None:
            raise TypeError("Cannot specify both 'normed' and 'density'")
        density = normed
    x = _as_sample(sample)
    d = x.shape[1]
    try:
        nb = len(bins)
    except TypeError:
        bins = [bins] * d
    else:
        if nb != d:
            raise ValueError("The dimension of bins must be equal to the dimension of the "
                             "sample x.")
        if isinstance(bins, Array):
            bins = [bins[i] for i in builtins_range(d)]
    if range is None:
        range = [None] * d
    elif len(range) != d:
        raise ValueError("range argument must have one entry per dimension")
    specs, fixed, nbins, concrete = [], [], [], []
    for i, (bi, ri) in enumerate(zip(bins, range)):
        if isinstance(bi, Array):
            raise NotImplementedError("cdask histogramdd: bins as cdask Arrays; pass NumPy "
                                      "arrays or numbers")
        if np.ndim(bi) == 0:
            try:
                n = operator.index(bi)
            except TypeError:
                raise TypeError("`bins[%d]` must be an integer, when a scalar" % i) from None
            if n < 1:
                raise ValueError("`bins[%d]` must be positive, when an integer" % i)
            specs.append(n)
            nbins.append(n)
            if ri is not None:
                ri = tuple(ri)
                # NumPy's checks of the range (ordered, finite)
                np.histogramdd(np.empty((0, 1), x.dtype), bins=[n], range=[ri])
            fixed.append(ri)
            concrete.append(ri is not None or x.shape[0] == 0)
        else:
            e = np.asarray(bi)
            if e.ndim != 1:
                raise ValueError("`bins[%d]` must be a scalar or 1d array" % i)
            np.histogramdd(np.empty((0, 1), x.dtype), bins=[e])   # monotonic check
            specs.append(e)
            nbins.append(e.shape[0] - 1)
            fixed.append(None)
            concrete.append(True)
    w = None
    if weights is not None:
        w = asarray(weights)
        if w.ndim != 1 or (w.shape[0] != x.shape[0] and not isnan(w.shape[0] + x.shape[0])):
            raise ValueError("weights should have one entry per sample: shape %s for %s "
                             "samples" % (w.shape, x.shape[0]))
        if w.chunks[0] != x.chunks[0]:
            if any(isnan(c) for c in w.chunks[0] + x.chunks[0]):
                raise ValueError("weights and the sample must have the same chunks when "
                                 "chunk sizes are unknown")
            w = w.rechunk((x.chunks[0],))
    token = tokenize("histogramdd", x.name, None if w is None else w.name, specs, fixed,
                     density)
    layers = merge_layers(x) if w is None else merge_layers(x, w)
    xkeys = x._keys_flat()
    wkeys = [None] * len(xkeys) if w is None else w._keys_flat()
    pname = "histogramdd-chunk-" + token
    if x.shape[0] == 0:
        fixed = [f if f is not None or isinstance(s, np.ndarray) else (0, 1)
                 for s, f in zip(specs, fixed)]
    need = any(f is None and not isinstance(s, np.ndarray) for s, f in zip(specs, fixed))
    if need:
        rkey = _data_ranges(x, layers, token)
        layers[pname] = {(pname, i): (_histdd_block_ranged, k, specs, fixed, rkey, wk)
                         for i, (k, wk) in enumerate(zip(xkeys, wkeys))}
    else:
        layers[pname] = {(pname, i): (_histdd_block, k, specs, fixed, wk)
                         for i, (k, wk) in enumerate(zip(xkeys, wkeys))}
    oname = "histogramdd-" + token
    okey = (oname,) + (0,) * d
    merge_tree(layers, "histogramdd", token, [(pname, i) for i in builtins_range(len(xkeys))],
               _add, _hist_finish, okey)
    wdt = None if w is None else np.ones(1, w.dtype)
    dtype = np.histogramdd(np.zeros((1, 1), x.dtype), bins=[1], range=[(0, 1)],
                           weights=wdt)[0].dtype
    hist = Array(layers, oname, tuple((n,) for n in nbins), dtype)
    edges = []
    for i, s in enumerate(specs):
        if isinstance(s, np.ndarray):
            edges.append(asarray(s))
        elif fixed[i] is not None:
            edges.append(asarray(np.histogramdd(np.empty((0, 1), x.dtype), bins=[s],
                                                range=[fixed[i]])[1][0]))
        else:
            ename = "histogramdd-edges-%d-%s" % (i, token)
            el = dict(layers)
            el[ename] = {(ename, 0): (_histdd_edges, specs, fixed, rkey, x.dtype, i)}
            edt = np.histogramdd(np.zeros((1, 1), x.dtype), bins=[s])[1][0].dtype
            edges.append(Array(el, ename, ((s + 1,),), edt))
    if density:
        dname = "histogramdd-density-" + token
        dl = merge_layers(hist, *edges)
        dl[dname] = {(dname,) + (0,) * d: (_histdd_density, okey,
                                            [e._keys_flat()[0] if e.npartitions == 1 else
                                             one_block(e, "histogramdd")._keys_flat()[0]
                                             for e in edges])}
        for e in edges:
            if e.npartitions != 1:
                dl.update(one_block(e, "histogramdd")._layers)
        hist = Array(dl, dname, hist.chunks, np.float64)
    return hist, edges


def histogram2d(x, y, bins=10, range=None, normed=None, weights=None, density=None):
    """``np.histogram2d``: ``(hist, xedges, yedges)`` of the points ``(x[i], y[i])``
    (see :func:`histogramdd`)."""
    try:
        n = len(bins)
    except TypeError:
        n = 1
    if n != 1 and n != 2:
        e = np.asarray(bins)
        bins = [e, e]
    hist, edges = histogramdd([x, y], bins, range, normed, weights, density)
    return hist, edges[0], edges[1]


# ---------------------------------------------------------------------------
# bincount, digitize
# ---------------------------------------------------------------------------
def _bincount_block(b, minlength, w=None):
    return np.bincount(b, weights=w, minlength=minlength)


def bincount(x, weights=None, minlength=0, split_every=None):
    """``np.bincount`` of a 1-d array of non-negative ints: the count (or the
    sum of ``weights``) of each value.  The length, ``max(x) + 1`` or
    ``minlength``, depends on the data: the result's chunk size is unknown
    (dask states ``minlength``, which is wrong when a value reaches it).
    NumPy gives int64 zeros for no data even with float weights: so does
    this when the length of ``x`` is known to be 0 (float64 when unknown)."""
    x = asarray(x)
    if x.ndim != 1:
        raise ValueError("Input array must be one dimensional. Try using x.ravel()")
    if not np.can_cast(x.dtype, np.intp, "safe"):
        raise TypeError("Cannot cast array data from dtype(%r) to dtype('int64') according "
                        "to the rule 'safe'" % str(x.dtype))
    minlength = operator.index(minlength)
    if minlength < 0:
        raise ValueError("'minlength' must not be negative")
    w = None
    if weights is not None:
        w = asarray(weights)
        if w.shape != x.shape and not isnan(w.shape[0] + x.shape[0]):
            raise ValueError("The weights and list don't have the same length.")
        w = _same_chunks(w, x, "x")
        dtype = np.bincount(np.zeros(1, np.intp), weights=np.ones(1, w.dtype)).dtype
        if x.shape[0] == 0:
            dtype = np.dtype(np.intp)   # NumPy ignores the weights of no data
    else:
        dtype = np.bincount(np.zeros(1, np.intp)).dtype
    token = tokenize("bincount", x.name, None if w is None else w.name, minlength)
    layers = merge_layers(x) if w is None else merge_layers(x, w)
    pname = "bincount-chunk-" + token
    xkeys = x._keys_flat()
    wkeys = [None] * len(xkeys) if w is None else w._keys_flat()
    layers[pname] = {(pname, i): (_bincount_block, k, minlength, wk)
                     for i, (k, wk) in enumerate(zip(xkeys, wkeys))}
    oname = "bincount-" + token
    merge_tree(layers, "bincount", token, [(pname, i) for i in builtins_range(len(xkeys))],
               _add_padded, _add_padded, (oname, 0), split_every, combine_args=(dtype,),
               final_args=(dtype,))
    return Array(layers, oname, ((math.nan,),), dtype)


def _digitize_block(b, bins, right):
    return np.digitize(b, bins, right=right)


def digitize(a, bins, right=False):
    """``np.digitize``: the index of the bin of each element (NumPy's per block)."""
    a = asarray(a)
    if isinstance(bins, Array):
        bins = one_block(bins, "digitize")
        if bins.ndim != 1:
            raise ValueError("object too deep for desired array")
        bkey = bins._keys_flat()[0]
        dtype = np.digitize(np.zeros(1, a.dtype), np.zeros(1, bins.dtype)).dtype
        name = "digitize-" + tokenize(a.name, bins.name, right)
        layers = merge_layers(a, bins)
        layers[name] = {(name,) + k[1:]: (_digitize_block, k, bkey, bool(right))
                        for k in a._keys_flat()}
        return Array(layers, name, a.chunks, dtype)
    bins = np.asarray(bins)
    dtype = np.digitize(np.zeros(0, a.dtype), bins, right=right).dtype   # NumPy's checks
    return map_blocks(_digitize_block, a, bins, bool(right), dtype=dtype)


# ---------------------------------------------------------------------------
# cov, corrcoef
# ---------------------------------------------------------------------------
def _atleast_2d(m):
    return m.reshape((1,) + m.shape) if m.ndim < 2 else m


def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *,
        dtype=None):
    """``np.cov``: the covariance matrix of the variables (rows of ``m``, or
    columns when ``rowvar`` is False), NumPy's formula (weighted means, the
    centred data times its conjugate transpose) with cdask's reductions and
    ``dot``.  NumPy checks that fweights are integers and weights
    non-negative by looking at them; here they are not looked at."""
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    m = asarray(m)
    if m.ndim > 2:
        raise ValueError("m has more than 2 dimensions")
    if y is not None:
        y = asarray(y)
        if y.ndim > 2:
            raise ValueError("y has more than 2 dimensions")
    if dtype is None:
        dtype = np.result_type(m.dtype, np.float64) if y is None else \
            np.result_type(m.dtype, y.dtype, np.float64)
    X = _atleast_2d(m).astype(dtype)
    if not rowvar and m.ndim != 1:
        X = X.T
    if X.shape[0] == 0:
        return asarray(np.array([], dtype=dtype).reshape(0, 0))
    if y is not None:
        Y = _atleast_2d(y).astype(dtype)
        if not rowvar and Y.shape[0] != 1:
            Y = Y.T
        X = concatenate([X, Y], axis=0)
    if ddof is None:
        ddof = 1 if bias == 0 else 0
    n = X.shape[1]
    w = None
    for name, wt in (("fweights", fweights), ("aweights", aweights)):
        if wt is None:
            continue
        wt = asarray(wt, dtype=float)
        if wt.ndim > 1:
            raise RuntimeError("cannot handle multidimensional %s" % name)
        if wt.shape[0] != n:
            raise RuntimeError("incompatible numbers of samples and %s" % name)
        w = wt if w is None else w * wt
    avg, w_sum = average(X, axis=1, weights=w, returned=True)
    w_sum = w_sum[0]
    if w is None:
        fact = n - ddof
        if fact <= 0:
            warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=2)
            fact = 0.0
    else:
        if ddof == 0:
            fact = w_sum
        elif aweights is None:
            fact = w_sum - ddof
        else:
            aw = asarray(aweights, dtype=float)
            fact = w_sum - ddof * _sum(w * aw) / w_sum
        fact = elemwise(np.where, elemwise(np.less_equal, fact, 0), 0.0, fact)
    X = X - avg[:, None]
    X_T = X.T if w is None else (X * w).T
    c = dot(X, X_T.conj())
    with np.errstate(divide="ignore"):
        c = c * elemwise(np.true_divide, 1, fact)
    return c.squeeze()


def _clip_unit(c):
    c = np.array(c, copy=True)
    np.clip(c.real, -1, 1, out=c.real)
    if np.iscomplexobj(c):
        np.clip(c.imag, -1, 1, out=c.imag)
    return c


def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    """``np.corrcoef``: the correlation coefficients, ``cov`` divided by the
    outer product of the standard deviations, clipped to [-1, 1] as NumPy does."""
    c = cov(x, y, rowvar, dtype=dtype)
    if c.ndim == 0:
        return elemwise(np.true_divide, c, c)
    d = diag(c)
    sd = elemwise(np.sqrt, elemwise(np.real, d) if d.dtype.kind == "c" else d)
    c = elemwise(np.true_divide, c, sd[:, None])
    c = elemwise(np.true_divide, c, sd[None, :])
    return map_blocks(_clip_unit, c, dtype=c.dtype)


# ---------------------------------------------------------------------------
# gradient
# ---------------------------------------------------------------------------
def _gradient_block(b, spacing, axis, edge_order, offsets, block_id=None):
    if isinstance(spacing, np.ndarray):
        # the coordinates of this block and of the neighbours it overlaps
        i = block_id[axis]
        start = offsets[i] - (1 if i > 0 else 0)
        spacing = spacing[start:start + b.shape[axis]]
    return np.gradient(b, spacing, axis=axis, edge_order=edge_order)


def gradient(f, *varargs, axis=None, edge_order=1):
    """``np.gradient``: central differences inside, one-sided ones at the ends
    (``edge_order`` 1 or 2), per axis; a list of Arrays, or one Array for one
    axis.  Blocks overlap their neighbours by one element along each axis
    differentiated (blocks too small for that are merged first)."""
    f = asarray(f)
    edge_order = operator.index(edge_order) if not isinstance(edge_order, float) else \
        math.ceil(edge_order)
    if edge_order > 2:
        raise ValueError("'edge_order' greater than 2 not supported")
    single = axis is not None and not isinstance(axis, (tuple, list))
    axes = tuple(range(f.ndim)) if axis is None else (
        (operator.index(axis) % f.ndim,) if single else None)
    if axes is None:
        axes = tuple(operator.index(a) for a in axis)
        for a in axes:
            normalize_axis(a, f.ndim)
        axes = tuple(a % f.ndim for a in axes)
        if len(set(axes)) != len(axes):
            raise ValueError("duplicate value in 'axis'")
    elif single:
        normalize_axis(axis, f.ndim)
    if len(varargs) == 0:
        varargs = (1,) * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        varargs = varargs * len(axes)
    if len(varargs) != len(axes):
        raise TypeError("invalid number of arguments")
    if f.dtype.kind == "b":
        raise TypeError("numpy boolean subtract, the `-` operator, is not supported, use the "
                        "bitwise_xor, the `^` operator, or the logical_xor function instead.")
    if f.dtype.kind in "iu":
        f = f.astype(np.float64)   # as NumPy: integers are differentiated as float64
    results = []
    for ax, sp in zip(axes, varargs):
        n = f.shape[ax]
        if isnan(n) or any(isnan(c) for c in f.chunks[ax]):
            raise unknown_chunks_error("gradient")
        if n < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, "
                             "at least (edge_order + 1) elements are required.")
        if isinstance(sp, Array):
            sp = np.asarray(sp)
        if np.ndim(sp) != 0:
            sp = np.asarray(sp)
            if sp.ndim != 1:
                raise ValueError("distances must be either scalars or 1d")
            if len(sp) != n:
                raise ValueError("when 1d, distances must match the length of the "
                                 "corresponding dimension")
            if sp.dtype.kind in "iu":
                sp = sp.astype(np.float64)
        g = f
        if min(g.chunks[ax]) < edge_order + 1:
            # every block needs edge_order + 1 values of its own (a short
            # last block joins the one before it)
            c = max(edge_order + 1, max(g.chunks[ax]))
            sizes = [c] * (n // c)
            if n % c:
                if n % c >= edge_order + 1:
                    sizes.append(n % c)
                else:
                    sizes[-1] += n % c
            g = g.rechunk({ax: tuple(sizes)})
        m = min(n, 3)
        dt = np.gradient(np.zeros((m,), g.dtype), sp if np.ndim(sp) == 0 else sp[:m],
                         edge_order=1).dtype
        offsets = tuple(int(o) for o in np.cumsum((0,) + g.chunks[ax]))
        results.append(map_overlap(_gradient_block, g, depth={ax: 1}, boundary="none",
                                   dtype=dt, spacing=sp, axis=ax, edge_order=edge_order,
                                   offsets=offsets))
    return results[0] if single else results
