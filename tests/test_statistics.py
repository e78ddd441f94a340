"""histogram, histogram2d, histogramdd, bincount, digitize, cov, corrcoef,
gradient (statistics.py) and the order statistics median, nanmedian,
quantile, nanquantile, percentile, nanpercentile, topk, argtopk
(percentiles.py) against NumPy.

Shapes, chunkings (ragged, size-1, empty axes) and dtypes (ints, floats with
NaN and infinities, bool) come from hypothesis; arrays with unknown (nan)
chunk sizes are made with a boolean mask.  Counts, bins, digitize, gradient
and the exact order statistics are compared bit for bit; weighted sums,
cov and corrcoef within rounding; dask's approximate percentile within a
bound on the data's spread.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da
from blockcheck import check, chunkings, same_bits, sample, unknown_rows

EX = settings(max_examples=30, deadline=None)

INTS = (np.int64, np.int32, np.int8, np.uint16)
FLOATS = (np.float64, np.float32)


@st.composite
def arrays(draw, min_dims=1, max_dims=3, max_side=8, dtypes=FLOATS + INTS, specials=True):
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=min_dims,
                                max_size=max_dims)))
    chunks = chunkings(draw, st, shape)
    dtype = draw(st.sampled_from(dtypes))
    a = sample(shape, dtype, draw(st.integers(0, 2 ** 16)))
    if specials and a.dtype.kind == "f" and a.size and draw(st.booleans()):
        flat = a.reshape(-1)
        for i, v in enumerate([np.nan, np.inf, -np.inf, -0.0][:draw(st.integers(1, 4))]):
            flat[(i * 5) % flat.size] = v
    return a, chunks




def blocks_ok(x):
    """Compute ``x``, checking that every block has the shape its chunks
    promise and the array's dtype."""
    keys = x._keys_flat()
    for k, b in zip(keys, da.get(x.__dask_graph__(), keys)):
        assert np.shape(b) == tuple(x.chunks[d][i] for d, i in enumerate(k[1:])), k
        assert np.asarray(b).dtype == x.dtype, k
    return x.compute()


# ---------------------------------------------------------------------------
# histogram
# ---------------------------------------------------------------------------
@EX
@given(arrays(), st.integers(1, 12), st.data())
def test_histogram_int_bins_with_range(ac, bins, data):
    a, chunks = ac
    lo = data.draw(st.floats(-3, 1))
    rng = (lo, lo + data.draw(st.sampled_from([0.0, 0.5, 4.0, 200.0])))
    x = da.from_array(a, chunks=chunks)
    h, e = da.histogram(x, bins=bins, range=rng)
    nh, ne = np.histogram(a, bins=bins, range=rng)
    assert isinstance(e, np.ndarray)
    np.testing.assert_array_equal(e, ne, strict=True)
    check(h, nh)
    hd, _ = da.histogram(x, bins=bins, range=rng, density=True)
    with np.errstate(all="ignore"):
        check(hd, np.histogram(a, bins=bins, range=rng, density=True)[0])


@EX
@given(arrays(specials=False), st.integers(1, 12), st.booleans())
def test_histogram_range_from_the_data(ac, bins, known):
    # NumPy's range=None: the data's min and max (dask requires a range)
    a, chunks = ac
    x = da.from_array(a, chunks=chunks) if known or a.ndim != 1 else unknown_rows(a, chunks)
    h, e = da.histogram(x, bins=bins)
    nh, ne = np.histogram(a, bins=bins)
    same_bits(e if isinstance(e, da.Array) else da.from_array(e), ne)
    check(h, nh)


@EX
@given(st.integers(1, 300), st.sampled_from([(0, 1), (0.1, 0.7), (-3.3, 1e-3), (-1e300, 1e300),
                                           (5.0, 5.0), (-2, 7)]), st.integers(0, 2 ** 16))
def test_histogram_kernel_bins_as_numpy(bins, rng, seed):
    # the C kernel (float64 data, equal-width bins) against NumPy, on values
    # at, just beside and between the edges, outside the range, and NaN/inf
    edges = np.histogram_bin_edges(np.empty(0), bins, range=rng)
    r = np.random.default_rng(seed)
    vals = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf),
                           r.uniform(edges[0], edges[-1], 500), [np.nan, np.inf, -np.inf],
                           r.standard_normal(50) * 10])
    r.shuffle(vals)
    want = np.histogram(vals, bins, range=rng)[0]
    k = da.kernels.histogram
    np.testing.assert_array_equal(k(vals, edges), want, strict=True)
    x = da.from_array(vals, chunks=97)
    h, e = da.histogram(x, bins=bins, range=rng)
    assert any(getattr(t[0], "name", None) == "histogram"
               for t in h.__dask_graph__().values() if isinstance(t, tuple) and t)
    check(h, want)
    finite_vals = vals[np.isfinite(vals)]
    h, e = da.histogram(da.from_array(finite_vals, chunks=61), bins=bins)
    check(h, np.histogram(finite_vals, bins)[0])


def test_histogram_kernel_errors():
    k = da.kernels.histogram
    with pytest.raises(TypeError, match="float64"):
        k(np.zeros(3, np.float32), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="increase"):
        k(np.zeros(3), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="at least 2"):
        k(np.zeros(3), np.array([1.0]))


def test_histogram_nan_without_range_raises_numpys_error():
    a = np.array([1.0, np.nan, 3.0])
    with pytest.raises(ValueError):
        np.histogram(a)
    h, e = da.histogram(da.from_array(a, chunks=2))
    with pytest.raises(ValueError, match="not finite"):
        h.compute()


@EX
@given(arrays(), st.data())
def test_histogram_edges_and_weights(ac, data):
    a, chunks = ac
    edges = np.sort(np.asarray(data.draw(st.lists(st.floats(-3, 3), min_size=1,
                                                  max_size=6))))
    x = da.from_array(a, chunks=chunks)
    h, e = da.histogram(x, bins=edges)
    check(h, np.histogram(a, bins=edges)[0])
    w = sample(a.shape, data.draw(st.sampled_from([np.float64, np.int64, np.float32])), 3)
    wx = da.from_array(w, chunks=data.draw(st.sampled_from([chunks, "auto"])))
    hw, _ = da.histogram(x, bins=edges, weights=wx)
    nw = np.histogram(a, bins=edges, weights=w)[0]
    assert hw.dtype == nw.dtype
    # float32 weights of both signs cancel: their rounding is relative to the
    # sum of their magnitudes, not to the bin's total
    f32 = w.dtype == np.float32
    np.testing.assert_allclose(hw.compute(), nw, rtol=1e-5 if f32 else 1e-12,
                               atol=1e-6 * float(np.abs(w).sum()) if f32 else 0)
    # the edges as a cdask Array
    h2, e2 = da.histogram(x, bins=da.from_array(edges, chunks=2))
    check(h2, np.histogram(a, bins=edges)[0])


def test_histogram_errors():
    x = da.from_array(np.arange(10.0), chunks=3)
    for bad, kw in [(ValueError, dict(bins=0)), (ValueError, dict(bins=-3)),
                    (ValueError, dict(bins=[3, 1, 2])), (ValueError, dict(bins=4, range=(3, 1))),
                    (ValueError, dict(bins=4, range=(0, np.inf))),
                    (ValueError, dict(bins=[[1, 2], [3, 4]]))]:
        with pytest.raises(bad):
            np.histogram(np.arange(10.0), **kw)
        with pytest.raises(bad):
            da.histogram(x, **kw)
    with pytest.raises(ValueError, match="same shape"):
        da.histogram(x, bins=3, range=(0, 1), weights=da.ones(4, chunks=2))
    with pytest.raises(ValueError, match="normed"):
        da.histogram(x, bins=3, range=(0, 1), normed=True)
    with pytest.raises(NotImplementedError, match="auto"):
        da.histogram(x, bins="auto")
    with pytest.raises(TypeError):
        np.histogram(np.arange(3.0), bins=2.5)
    with pytest.raises(TypeError):
        da.histogram(x, bins=2.5)


def test_histogram_of_bools_as_numpy():
    # NumPy bins booleans as uint8, with a RuntimeWarning
    b = np.array([True, False, True, True, False])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h, e = da.histogram(da.from_array(b, chunks=2), bins=3)
        nh, ne = np.histogram(b, bins=3)
        check(h, nh)
        same_bits(e, ne)


# ---------------------------------------------------------------------------
# histogramdd, histogram2d
# ---------------------------------------------------------------------------
@EX
@given(st.integers(0, 30), st.integers(1, 3), st.data())
def test_histogramdd(n, d, data):
    s = sample((n, d), data.draw(st.sampled_from([np.float64, np.float32, np.int16])),
               data.draw(st.integers(0, 999)))
    chunks = chunkings(data.draw, st, s.shape)
    x = da.from_array(s, chunks=chunks)
    bins = data.draw(st.sampled_from([3, [2, 3, 4][:d], "edges"]))
    if bins == "edges":
        bins = [np.array([-2.0, -0.5, 0.0, 1.5]), np.array([-1.0, 1.0]),
                np.linspace(-50, 50, 5)][:d]
    rng = data.draw(st.sampled_from([None, [(-1.0, 1.0)] * d]))
    density = data.draw(st.booleans()) and n > 0
    h, edges = da.histogramdd(x, bins=bins, range=rng, density=density)
    with np.errstate(all="ignore"):
        nh, nedges = np.histogramdd(s, bins=bins, range=rng, density=density)
    check(h, nh)
    assert len(edges) == d
    for e, ne in zip(edges, nedges):
        same_bits(e, ne)
    # weights, and the sample as a sequence of columns
    w = sample((n,), np.float64, 5)
    hw, _ = da.histogramdd([x[:, i] for i in range(d)], bins=bins, range=rng,
                           weights=da.from_array(w, chunks=max(1, n // 2)))
    np.testing.assert_allclose(hw.compute(), np.histogramdd(s, bins=bins, range=rng,
                                                            weights=w)[0], rtol=1e-12)


@EX
@given(st.integers(1, 40), st.data())
def test_histogram2d(n, data):
    a = sample((n,), np.float64, data.draw(st.integers(0, 99)))
    b = sample((n,), np.float64, data.draw(st.integers(100, 199)))
    c = data.draw(st.integers(1, n))
    bins = data.draw(st.sampled_from([4, (2, 5), [-1.0, 0.0, 0.5, 2.0]]))
    h, ex, ey = da.histogram2d(da.from_array(a, chunks=c), da.from_array(b, chunks=c),
                               bins=bins)
    nh, nx, ny = np.histogram2d(a, b, bins=bins)
    check(h, nh)
    same_bits(ex, nx)
    same_bits(ey, ny)


def test_histogramdd_errors():
    x = da.from_array(np.zeros((6, 2)), chunks=3)
    with pytest.raises(ValueError):
        da.histogramdd(x, bins=[2, 3, 4])
    with pytest.raises(ValueError):
        da.histogramdd(x, bins=[0, 2])
    with pytest.raises(ValueError):
        da.histogramdd(x, bins=2, range=[(1, 0), (0, 1)])
    with pytest.raises(ValueError):
        da.histogramdd(da.zeros((2, 2, 2)), bins=2)
    with pytest.raises(TypeError):
        da.histogramdd(x, bins=2, normed=True, density=True)


# ---------------------------------------------------------------------------
# bincount, digitize
# ---------------------------------------------------------------------------
@EX
@given(st.integers(0, 60), st.sampled_from([np.int64, np.int8, np.uint8, np.bool_]),
       st.integers(0, 30), st.booleans(), st.data())
def test_bincount(n, dtype, minlength, known, data):
    a = np.random.default_rng(data.draw(st.integers(0, 999))).integers(0, 25, n).astype(dtype)
    chunks = chunkings(data.draw, st, (n,))
    x = da.from_array(a, chunks=chunks) if known else unknown_rows(a, chunks)
    same_bits(da.bincount(x, minlength=minlength), np.bincount(a, minlength=minlength))
    w = sample((n,), np.float64, 1)
    r = da.bincount(x, weights=da.from_array(w, chunks=chunks) if known else unknown_rows(w, chunks),
                    minlength=minlength, split_every=2)
    nr = np.bincount(a, weights=w, minlength=minlength)
    got = r.compute()
    # NumPy's int64 for no data with weights: followed when the length is known
    assert got.shape == nr.shape and (got.dtype == nr.dtype or (n == 0 and not known))
    np.testing.assert_allclose(got, nr, rtol=1e-12, atol=1e-12)


def test_bincount_errors():
    with pytest.raises(ValueError, match="one dimensional"):
        da.bincount(da.zeros((2, 2), dtype=int))
    with pytest.raises(TypeError):
        np.bincount(np.zeros(3))
    with pytest.raises(TypeError):
        da.bincount(da.zeros(3))
    with pytest.raises(ValueError):
        da.bincount(da.zeros(3, dtype=int), minlength=-1)
    with pytest.raises(ValueError, match="length"):
        da.bincount(da.zeros(3, dtype=int), weights=da.ones(4))
    r = da.bincount(da.from_array(np.array([1, -1, 2]), chunks=2))
    with pytest.raises(ValueError):
        r.compute()


@EX
@given(arrays(dtypes=FLOATS + INTS), st.booleans(), st.data())
def test_digitize(ac, right, data):
    a, chunks = ac
    bins = np.sort(np.asarray(data.draw(st.lists(st.floats(-3, 3), max_size=6))))
    if data.draw(st.booleans()):
        bins = bins[::-1].copy()
    x = da.from_array(a, chunks=chunks)
    check(da.digitize(x, bins, right=right), np.digitize(a, bins, right=right))
    if bins.size:
        check(da.digitize(x, da.from_array(bins, chunks=2), right=right),
              np.digitize(a, bins, right=right))
    if a.ndim == 1:
        same_bits(da.digitize(unknown_rows(a, chunks), bins), np.digitize(a, bins))


def test_digitize_errors():
    x = da.arange(5, chunks=2)
    with pytest.raises(ValueError):
        da.digitize(x, [1, 3, 2])
    with pytest.raises(ValueError):
        da.digitize(x, [[1, 2]])
    with pytest.raises(TypeError):
        da.digitize(da.from_array(np.array([1j])), [1, 2])


# ---------------------------------------------------------------------------
# cov, corrcoef
# ---------------------------------------------------------------------------
@EX
@given(st.integers(1, 5), st.integers(2, 12), st.booleans(), st.data())
def test_cov_corrcoef(nvars, nobs, rowvar, data):
    m = sample((nvars, nobs) if rowvar else (nobs, nvars),
               data.draw(st.sampled_from([np.float64, np.float32, np.int32, np.complex128])),
               data.draw(st.integers(0, 999)))
    chunks = chunkings(data.draw, st, m.shape)
    x = da.from_array(m, chunks=chunks)
    kw = data.draw(st.sampled_from([{}, {"bias": True}, {"ddof": 0}, {"ddof": 2}]))
    tol = 1e-4 if m.dtype == np.float32 else 1e-10
    c = da.cov(x, rowvar=rowvar, **kw)
    nc = np.cov(m, rowvar=rowvar, **kw)
    assert c.shape == nc.shape and c.dtype == nc.dtype
    np.testing.assert_allclose(c.compute(), nc, rtol=tol, atol=tol)
    with np.errstate(all="ignore"):
        nr = np.corrcoef(m, rowvar=rowvar)
    with np.errstate(all="ignore"):
        got = da.corrcoef(x, rowvar=rowvar).compute()
    np.testing.assert_allclose(got, nr, rtol=tol, atol=tol)
    # weights and a second variable set
    n = nobs
    fw = np.arange(1, n + 1) % 3 + 1
    aw = np.linspace(0.5, 2.0, n)
    y = sample(m.shape, np.float64, 7)
    for kw2 in ({"fweights": fw}, {"aweights": aw}, {"fweights": fw, "aweights": aw}):
        np.testing.assert_allclose(
            da.cov(x, da.from_array(y, chunks=chunks), rowvar=rowvar, **kw2).compute(),
            np.cov(m, y, rowvar=rowvar, **kw2), rtol=tol, atol=tol)


def test_cov_one_variable_and_errors():
    v = np.array([1.0, 2.5, -3.0, 4.0])
    x = da.from_array(v, chunks=3)
    np.testing.assert_allclose(da.cov(x).compute(), np.cov(v))
    assert da.corrcoef(x).compute() == np.corrcoef(v)
    with pytest.raises(ValueError):
        da.cov(da.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        da.cov(x, ddof=1.5)
    with pytest.raises(RuntimeError):
        da.cov(x, fweights=np.ones(3))
    with pytest.warns(RuntimeWarning):
        da.cov(da.ones((2, 1)))


# ---------------------------------------------------------------------------
# gradient
# ---------------------------------------------------------------------------
@EX
@given(arrays(dtypes=FLOATS + (np.int64, np.int8), specials=False), st.data())
def test_gradient(ac, data):
    a, chunks = ac
    edge_order = data.draw(st.sampled_from([1, 2]))
    if any(s < edge_order + 1 for s in a.shape):
        with pytest.raises(ValueError):
            np.gradient(a, edge_order=edge_order)
        with pytest.raises(ValueError):
            da.gradient(da.from_array(a, chunks=chunks), edge_order=edge_order)
        return
    x = da.from_array(a, chunks=chunks)
    got = da.gradient(x, edge_order=edge_order)
    want = np.gradient(a, edge_order=edge_order)
    if a.ndim == 1:
        want = [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        check(g, w)
    ax = data.draw(st.integers(-a.ndim, a.ndim - 1))
    coords = np.cumsum(sample((a.shape[ax],), np.float64, 2) ** 2 + 0.1)
    check(da.gradient(x, coords, axis=ax, edge_order=edge_order),
          np.gradient(a, coords, axis=ax, edge_order=edge_order))
    check(da.gradient(x, 0.5, axis=ax), np.gradient(a, 0.5, axis=ax))


def test_gradient_errors():
    x = da.ones((4, 5), chunks=2)
    with pytest.raises(ValueError):
        da.gradient(x, edge_order=3)
    with pytest.raises(np.exceptions.AxisError):
        da.gradient(x, axis=2)
    with pytest.raises(TypeError):
        da.gradient(x, 1.0, 2.0, 3.0)
    with pytest.raises(ValueError):
        da.gradient(x, np.arange(3.0), axis=0)
    with pytest.raises(TypeError):
        np.gradient(np.ones(3, bool))
    with pytest.raises(TypeError):
        da.gradient(da.ones(3, dtype=bool))


# ---------------------------------------------------------------------------
# median, quantile, percentile (exact)
# ---------------------------------------------------------------------------
ORDER_FUNCS = [(da.median, np.median, None), (da.nanmedian, np.nanmedian, None),
               (da.quantile, np.quantile, "q"), (da.nanquantile, np.nanquantile, "q"),
               (da.nanpercentile, np.nanpercentile, "p")]


@EX
@given(arrays(dtypes=FLOATS + INTS + (np.bool_,)), st.sampled_from(ORDER_FUNCS), st.data())
def test_order_statistics_exact(ac, funcs, data):
    a, chunks = ac
    ours, theirs, kind = funcs
    if a.dtype == np.bool_ and kind is not None:
        a = a.astype(np.int8)
    axis = data.draw(st.sampled_from([None] + list(range(-a.ndim, a.ndim)) +
                                     ([(0, a.ndim - 1)] if a.ndim > 1 else [])))
    keepdims = data.draw(st.booleans())
    args = ()
    kw = {}
    if kind is not None:
        q = data.draw(st.sampled_from([0.5, [0.0, 0.3, 1.0], [[0.1], [0.9]]]))
        args = (np.multiply(q, 100) if kind == "p" else q,)
        kw["method"] = data.draw(st.sampled_from(["linear", "lower", "nearest", "midpoint",
                                                  "median_unbiased"]))
    x = da.from_array(a, chunks=chunks)
    if kind in ("q", "p") and ours in (da.nanquantile, da.nanpercentile) and \
            isinstance(axis, tuple) and np.ndim(args[0]) > 1 and a.size:
        # NumPy 2.4's nan-quantiles put a 2-d q's axes last for a tuple of
        # axes (np.quantile and its documentation: first): cdask puts them first
        qa = np.asarray(args[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.stack([theirs(a, v, axis=axis, keepdims=keepdims, **kw)
                             for v in qa.reshape(-1)])
        check(ours(x, *args, axis=axis, keepdims=keepdims, **kw),
              want.reshape(qa.shape + want.shape[1:]))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            want = theirs(a, *args, axis=axis, keepdims=keepdims, **kw)
        except (ValueError, IndexError) as e:
            with pytest.raises(type(e)):
                ours(x, *args, axis=axis, keepdims=keepdims, **kw).compute()
            return
        if kind is not None and ours in (da.nanquantile, da.nanpercentile) and \
                a.dtype.kind == "f" and np.isnan(a).any():
            # NumPy's nan-quantiles of all-NaN slices come in the input's
            # dtype, of other data in float64 for a float32 input and list q:
            # a dtype that depends on the data, which a lazy array cannot
            # know; cdask keeps the dtype of data without NaNs, and the values
            r = ours(x, *args, axis=axis, keepdims=keepdims, **kw)
            got = r.compute()
            assert got.dtype == r.dtype
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, equal_nan=True)
            return
        check(ours(x, *args, axis=axis, keepdims=keepdims, **kw), np.asarray(want))


@EX
@given(arrays(max_dims=2, dtypes=FLOATS + INTS), st.data())
def test_percentile(ac, data):
    a, chunks = ac
    q = data.draw(st.sampled_from([50, [0, 12.5, 99, 100], 7.0]))
    method = data.draw(st.sampled_from(["linear", "lower", "higher", "nearest", "midpoint"]))
    x = da.from_array(a, chunks=chunks)
    if a.size == 0:
        with pytest.raises(IndexError):
            np.percentile(a, q)
        with pytest.raises(IndexError):
            da.percentile(x, q, internal_method="exact").compute()
        return
    want = np.percentile(a, q, method=method)
    check(da.percentile(x, q, method=method, internal_method="exact"), np.asarray(want))
    if a.ndim > 1:
        check(da.percentile(x, q, axis=0), np.asarray(np.percentile(a, q, axis=0)))
        check(da.percentile(x, q), np.asarray(np.percentile(a, q)))
        return
    # dask's estimate: here every block gives all its values, so it is exact
    # but for rounding
    got = da.percentile(x, q, method=method).compute()
    assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype
    if a.dtype.kind == "f" and np.isnan(a).any():
        assert np.isnan(got).all()
    elif a.dtype.kind != "f" or np.isfinite(a).all():
        scale = float(np.max(np.abs(a.astype(np.float64))))
        tol = 1e-6 if a.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def test_percentile_approximate_is_close_on_large_data():
    a = np.random.default_rng(0).standard_normal(20000)
    x = da.from_array(a, chunks=1500)
    q = [1, 10, 25, 50, 75, 90, 99]
    np.testing.assert_allclose(da.percentile(x, q).compute(), np.percentile(a, q), atol=0.02)
    for m in ("lower", "higher", "nearest", "midpoint"):
        got = da.percentile(x, q, method=m).compute()
        np.testing.assert_allclose(got, np.percentile(a, q, method=m), atol=0.03)
    assert np.array_equal(da.percentile(x, q, internal_method="exact").compute(),
                          np.percentile(a, q))


def test_order_statistics_unknown_chunks_and_errors():
    a = np.random.default_rng(1).standard_normal((9, 4))
    x = unknown_rows(a, ((4, 5), (2, 2)))
    same_bits(da.median(x, axis=1), np.median(a, axis=1))
    with pytest.raises(ValueError, match="unknown"):
        da.median(x, axis=0)
    v = unknown_rows(a[:, 0].copy(), ((4, 5),))
    same_bits(da.median(v), np.median(a[:, 0]))
    same_bits(da.quantile(v, [0.2, 0.8]), np.quantile(a[:, 0], [0.2, 0.8]))
    y = da.from_array(a, chunks=2)
    with pytest.raises(ValueError):
        da.quantile(y, 1.5, axis=0)
    with pytest.raises(ValueError):
        da.percentile(y, -1, axis=0)
    with pytest.raises(ValueError):
        da.quantile(y, 0.5, axis=0, method="no-such-method")
    with pytest.raises(np.exceptions.AxisError):
        da.median(y, axis=2)
    with pytest.raises(TypeError):
        da.percentile(da.from_array(np.array([1j, 2j]), chunks=1), 50)
    with pytest.raises(ValueError, match="internal_method"):
        da.percentile(y[:, 0], 50, internal_method="nope")
    # out= and weights
    out = da.zeros(4)
    r = da.median(y, axis=0, out=out)
    assert r is out
    np.testing.assert_array_equal(out.compute(), np.median(a, axis=0))
    w = np.arange(1.0, 10.0)
    same_bits(da.quantile(y, 0.3, axis=0, method="inverted_cdf", weights=w),
         np.quantile(a, 0.3, axis=0, method="inverted_cdf", weights=w))
    with pytest.raises(ValueError):
        da.quantile(y, 0.3, axis=0, weights=w)
    w2 = np.random.default_rng(4).random(a.shape)
    for ww in (w2, da.from_array(w2, chunks=3)):
        same_bits(da.quantile(y, [0.3, 0.7], axis=0, method="inverted_cdf", weights=ww,
                         keepdims=True),
             np.quantile(a, [0.3, 0.7], axis=0, method="inverted_cdf", weights=w2,
                         keepdims=True))


@pytest.mark.parametrize("keepdims", [False, True])
def test_quantiles_of_a_2d_q_over_a_tuple_of_axes(keepdims):
    # q's axes first, as np.quantile (NumPy 2.4's nanquantile: last)
    a = np.random.default_rng(5).random((5, 4, 6))
    a[1, 2, 3] = np.nan
    x = da.from_array(a, chunks=(2, 3, 4))
    q = np.array([[0.1, 0.5], [0.75, 0.9]])
    want = np.stack([np.nanquantile(a, v, axis=(0, 2), keepdims=keepdims)
                     for v in q.reshape(-1)])
    check(da.nanquantile(x, q, axis=(0, 2), keepdims=keepdims),
          want.reshape(q.shape + want.shape[1:]))
    check(da.quantile(x, q, axis=(2, 0), keepdims=keepdims),
          np.quantile(a, q, axis=(2, 0), keepdims=keepdims))


def test_median_of_a_matrix_along_an_axis_rechunks_only_that_axis():
    a = np.random.default_rng(2).random((40, 30))
    x = da.from_array(a, chunks=(7, 10))
    m = da.median(x, axis=0)
    assert sum(m.chunks[0]) == 30
    same_bits(m, np.median(a, axis=0))
    same_bits(np.median(x, axis=1), np.median(a, axis=1))


# ---------------------------------------------------------------------------
# topk, argtopk
# ---------------------------------------------------------------------------
@EX
@given(arrays(dtypes=FLOATS + INTS + (np.bool_,)), st.data())
def test_topk_argtopk(ac, data):
    a, chunks = ac
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = a.shape[axis]
    if n == 0:
        with pytest.raises(ValueError):
            da.topk(da.from_array(a, chunks=chunks), 1, axis=axis)
        return
    k = data.draw(st.integers(1, n)) * data.draw(st.sampled_from([1, -1]))
    split_every = data.draw(st.sampled_from([None, 2, 3]))
    x = da.from_array(a, chunks=chunks)
    s = np.sort(a, axis=axis)
    want = np.take(s, range(n - 1, n - k - 1, -1) if k > 0 else range(-k), axis=axis)
    check(da.topk(x, k, axis=axis, split_every=split_every), want)
    check(x.topk(k, axis=axis), want)
    idx = da.argtopk(x, k, axis=axis, split_every=split_every)
    # block shapes and dtype checked; the values (ties may go either way) below
    got = blocks_ok(idx)
    assert got.shape == want.shape and got.dtype == np.intp
    picked = np.take_along_axis(a, got, axis=axis)
    np.testing.assert_array_equal(picked, want)
    # distinct indices along the axis
    srt = np.sort(got, axis=axis)
    assert not np.any(np.diff(srt, axis=axis) == 0)
    np.testing.assert_array_equal(x.argtopk(k, axis=axis).compute().shape, want.shape)


def test_topk_unknown_chunks_and_errors():
    a = np.array([5, 1, 3, 6, 9, 2, 8])
    x = unknown_rows(a, ((3, 4),))
    same_bits(da.topk(x, 2), np.array([9, 8]))
    same_bits(da.argtopk(x, 3), np.array([4, 6, 3]))
    same_bits(da.argtopk(x, -2), np.array([1, 5]))
    y = da.from_array(a, chunks=3)
    with pytest.raises(ValueError):
        da.topk(y, 0)
    with pytest.raises(ValueError):
        da.topk(y, 8)
    with pytest.raises(TypeError):
        da.topk(y, 1.5)
    with pytest.raises(np.exceptions.AxisError):
        da.topk(y, 1, axis=1)
    with pytest.raises(ValueError):
        da.topk(x, 9).compute()


def test_numpy_functions_dispatch():
    a = np.random.default_rng(3).integers(0, 9, (6, 5))
    x = da.from_array(a, chunks=2)
    for f, args, kw in [(np.median, (), {"axis": 0}), (np.quantile, (0.3,), {"axis": 1}),
                        (np.percentile, (40,), {"axis": 0}), (np.nanmedian, (), {"axis": 1}),
                        (np.digitize, ([2, 5],), {}), (np.gradient, (), {"axis": 0})]:
        r = f(x, *args, **kw)
        assert isinstance(r, da.Array), f
        np.testing.assert_array_equal(r.compute(), f(a, *args, **kw))
    # np.percentile is NumPy's exactly, also where cdask.percentile estimates
    v = da.from_array(a[:, 0].astype(float) + np.arange(6) / 7, chunks=2)
    for q in (37, [5, 50, 95]):
        got = np.percentile(v, q)
        assert isinstance(got, da.Array)
        same_bits(got, np.percentile(v.compute(), q))
    h, e = np.histogram(x, bins=4, range=(0, 8))
    assert isinstance(h, da.Array)
    np.testing.assert_array_equal(h.compute(), np.histogram(a, bins=4, range=(0, 8))[0])
    assert isinstance(np.cov(x), da.Array)
