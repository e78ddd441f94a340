"""Reductions of cdask arrays against NumPy (issue 3, item 4)."""

import math
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cdask
import cdask as da
from cdask.array import reductions as R

AxisError = np.exceptions.AxisError

DTYPES = [np.bool_, np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float32,
          np.float64, np.complex64, np.complex128]

REDUCTIONS = ["sum", "prod", "mean", "var", "std", "min", "max", "any", "all", "argmin",
              "argmax", "nansum", "nanprod", "nanmean", "nanvar", "nanstd", "nanmin", "nanmax",
              "nanargmin", "nanargmax", "count_nonzero"]
ARG = {"argmin", "argmax", "nanargmin", "nanargmax"}
WITH_DTYPE = {"sum", "prod", "mean", "var", "std", "nansum", "nanprod", "nanmean", "nanvar",
              "nanstd"}
WITH_DDOF = {"var", "std", "nanvar", "nanstd"}


# ---------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------
@st.composite
def chunked_arrays(draw, max_ndim=3, max_side=7, dtypes=DTYPES, with_nan=False):
    ndim = draw(st.integers(0, max_ndim))
    shape = tuple(draw(st.integers(0, max_side)) for _ in range(ndim))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype.kind == "b":
        a = rng.random(shape) < 0.5
    elif dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" else -3
        a = rng.integers(lo, 4, size=shape).astype(dtype)
    else:
        a = np.asarray(rng.random(shape) * 4 - 2).astype(dtype)
        if dtype.kind == "c":
            a = a + 1j * (rng.random(shape) * 4 - 2).astype(dtype)
        a = np.array(a, dtype=dtype)
        if with_nan and a.size:
            mask = rng.random(shape) < 0.3
            a[mask] = np.nan
    chunks = []
    for n in shape:
        if n == 0:
            chunks.append((0,))
            continue
        sizes = []
        left = n
        while left:
            s = draw(st.integers(1, left))
            sizes.append(s)
            left -= s
        chunks.append(tuple(sizes))
    return a, tuple(chunks)


def axis_for(draw, ndim, single=False):
    kind = draw(st.sampled_from(["none", "int", "tuple"] if not single else ["none", "int"]))
    if kind == "none" or ndim == 0:
        return None
    if kind == "int":
        ax = draw(st.integers(0, ndim - 1))
        return ax - ndim if draw(st.booleans()) else ax
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(axes)


def numpy_result(fname, a, **kw):
    """NumPy's result, or the exception type it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            try:
                return getattr(np, fname)(a, **kw), None
            except (ValueError, TypeError) as e:
                return None, type(e)


def cdask_result(fname, x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            try:
                r = getattr(da, fname)(x, **kw)
                return r, np.asarray(r.compute()), None
            except (ValueError, TypeError) as e:
                return None, None, type(e)


def tolerance(fname, a, dtype):
    dt = np.dtype(dtype)
    if dt.kind == "c":
        dt = np.dtype("f%d" % (dt.itemsize // 2))
    eps = np.finfo(dt).eps if dt.kind == "f" else np.finfo(np.float64).eps
    if a.dtype.kind in "fc":   # NumPy may round intermediates to the input precision
        eps = max(eps, np.finfo(a.dtype).eps)
    mag = float(np.abs(a).astype(np.float64).max()) if a.size and a.dtype.kind != "b" else 1.0
    if not np.isfinite(mag):
        mag = 1.0
    n = max(a.size, 1)
    if fname in ("prod", "nanprod"):
        return dict(rtol=100 * n * eps, atol=100 * n * eps * max(1.0, mag) ** n)
    return dict(rtol=50 * eps * math.log2(n + 1) + 20 * eps,
                atol=50 * eps * n * max(mag, 1.0) ** 2)


def check_against_numpy(fname, a, chunks, **kw):
    x = da.from_array(a, chunks=chunks)
    expected, np_err = numpy_result(fname, a, **kw)
    r, got, cd_err = cdask_result(fname, x, **kw)
    if np_err is not None:
        assert cd_err is not None, "NumPy raised %s, cdask returned %r" % (np_err, got)
        return
    assert cd_err is None, "cdask raised %s, NumPy returned %r" % (cd_err, expected)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert r.dtype == expected.dtype
    assert r.shape == expected.shape
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(got, expected, equal_nan=True,
                                   **tolerance(fname, a, expected.dtype))
    else:
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------
# property tests against NumPy
# ---------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), fname=st.sampled_from(REDUCTIONS))
def test_reduction_matches_numpy(data, fname):
    a, chunks = data.draw(chunked_arrays(with_nan=fname.startswith("nan")))
    kw = {}
    kw["axis"] = axis_for(data.draw, a.ndim, single=fname in ARG)
    if fname != "count_nonzero" or True:
        kw["keepdims"] = data.draw(st.booleans())
    if fname in WITH_DTYPE and data.draw(st.booleans()):
        kw["dtype"] = data.draw(st.sampled_from([np.float64, np.complex128] +
                                                ([np.int64] if a.dtype.kind in "biu" and fname in
                                                 ("sum", "prod", "nansum", "nanprod") else [])))
        if a.dtype.kind == "c" and np.dtype(kw["dtype"]).kind != "c" and fname in WITH_DDOF:
            del kw["dtype"]   # NumPy's var of complex data in a real dtype is not meaningful
        elif a.dtype.kind != "c" and np.dtype(kw["dtype"]).kind == "c" and fname in WITH_DDOF:
            del kw["dtype"]   # nor of real data in a complex dtype (inf+nanj edge cases)
    if fname in WITH_DDOF:
        kw["ddof"] = data.draw(st.integers(0, 2))
    check_against_numpy(fname, a, chunks, **kw)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), fname=st.sampled_from(["sum", "mean", "var", "min", "argmax", "nanmean",
                                               "any", "prod"]),
       split_every=st.one_of(st.integers(2, 5), st.just(None)))
def test_split_every(data, fname, split_every):
    a, chunks = data.draw(chunked_arrays(max_ndim=2, max_side=12,
                                         dtypes=[np.float64, np.int32, np.bool_]))
    axis = axis_for(data.draw, a.ndim, single=fname in ARG)
    x = da.from_array(a, chunks=chunks)
    expected, np_err = numpy_result(fname, a, axis=axis)
    if np_err is not None:
        with pytest.raises(np_err):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                getattr(da, fname)(x, axis=axis, split_every=split_every).compute()
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = getattr(da, fname)(x, axis=axis, split_every=split_every).compute()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_deep_tree_and_dict_split_every():
    a = np.arange(300.0).reshape(30, 10)
    x = da.from_array(a, chunks=(1, 1))
    for se in (2, 3, {0: 2, 1: 3}, {-1: 4}):
        np.testing.assert_allclose(x.sum(axis=0, split_every=se).compute(), a.sum(axis=0))
        np.testing.assert_allclose(x.mean(split_every=se).compute(), a.mean())
        np.testing.assert_array_equal(x.argmax(axis=0, split_every=se).compute(),
                                      a.argmax(axis=0))
    g = x.sum(axis=0, split_every=2).__dask_graph__()
    assert len(g) > 300 + 10  # leaves + several combine levels


# ---------------------------------------------------------------------------
# accuracy
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("chunks", [1000, 7777, 250_000])
def test_sum_accuracy_vs_fsum(seed, chunks):
    rng = np.random.default_rng(seed)
    n = 1_000_000
    a = rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6, n)
    exact = math.fsum(a)
    x = da.from_array(a, chunks=chunks)
    # NumPy's own error, summing the whole array or the same blocks (each
    # block summed by NumPy, the block sums added exactly): which of the two
    # is smaller depends on the data and on the SIMD width NumPy's add.reduce
    # dispatches to, so the yardstick is the larger.
    err_np = max(abs(float(a.sum()) - exact),
                 abs(math.fsum(a[i:i + chunks].sum() for i in range(0, n, chunks)) - exact))
    floor = 4 * math.ulp(exact)
    assert abs(float(x.sum().compute()) - exact) <= 4 * err_np + floor
    # the non-kernel path (keepdims) and the nan variant too
    assert abs(float(x.sum(keepdims=True).compute()[0]) - exact) <= 4 * err_np + floor
    assert abs(float(da.nansum(x).compute()) - exact) <= 4 * err_np + floor
    err_np_mean = max(abs(float(a.mean()) - exact / n), err_np / n)
    assert abs(float(x.mean().compute()) - exact / n) <= 4 * err_np_mean + 4 * math.ulp(exact / n)


def test_var_accuracy_large_offset():
    # Chan's formula keeps the variance right even with a big common offset
    rng = np.random.default_rng(0)
    a = 1e8 + rng.standard_normal(200_000)
    x = da.from_array(a, chunks=3_001)
    ref = np.var(a.astype(np.longdouble))
    assert abs(x.var().compute() - ref) <= 4 * abs(np.var(a) - ref) + 1e-7
    np.testing.assert_allclose(x.std(ddof=1).compute(), np.std(a, ddof=1), rtol=1e-9)


def test_axis_sum_accuracy_2d():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20_000, 5)) * 10.0 ** rng.uniform(-5, 5, (20_000, 5))
    x = da.from_array(a, chunks=(1_000, 2))
    got = x.sum(axis=0).compute()
    for j in range(5):
        exact = math.fsum(a[:, j])
        err_np = abs(a[:, j].sum() - exact)
        assert abs(got[j] - exact) <= 4 * err_np + 4 * math.ulp(exact)


# ---------------------------------------------------------------------------
# unknown chunk sizes (boolean masks)
# ---------------------------------------------------------------------------
@pytest.fixture
def masked():
    rng = np.random.default_rng(7)
    a = rng.standard_normal(10_000)
    a[2_000:4_000] = -1.0          # whole blocks with nothing selected
    x = da.from_array(a, chunks=1_000)
    return a, x, x[x > 0]


@pytest.mark.parametrize("fname", ["sum", "mean", "var", "std", "min", "max", "argmin",
                                   "argmax", "prod", "any", "all", "count_nonzero", "nanmean",
                                   "nanmax", "nansum"])
def test_masked_reductions(masked, fname):
    a, x, y = masked
    assert any(math.isnan(c) for c in y.chunks[0])
    r = getattr(da, fname)(y)
    assert any(math.isnan(c) for c in y.chunks[0])  # not computed by building
    np.testing.assert_allclose(r.compute(), getattr(np, fname)(a[a > 0]), rtol=1e-12)
    assert any(math.isnan(c) for c in y.chunks[0])  # nor by computing


def test_masked_mean_talk_example(tmp_path):
    rng = np.random.default_rng(11)
    a = rng.standard_normal(1_000_003)
    p = tmp_path / "x.npy"
    np.save(p, a)
    x = da.from_npy(str(p), chunks=100_000)
    got = (x[x > 0]).mean().compute()
    mm = np.load(p, mmap_mode="r")
    np.testing.assert_allclose(got, mm[mm > 0].mean(), rtol=1e-13)


def test_masked_2d_axis_reductions():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((12, 8))
    x = da.from_array(a, chunks=(4, 3))
    y = x[x > 0]
    np.testing.assert_allclose(y.sum().compute(), a[a > 0].sum())
    np.testing.assert_allclose(y.std(ddof=1).compute(), a[a > 0].std(ddof=1))
    assert y.max().compute() == a[a > 0].max()


def test_masked_empty_selection():
    a = -np.ones(1000)
    x = da.from_array(a, chunks=100)
    y = x[x > 0]
    assert y.sum().compute() == 0.0
    assert y.count_nonzero().compute() == 0 if hasattr(y, "count_nonzero") else True
    with pytest.warns(RuntimeWarning):
        assert math.isnan(y.mean().compute())
    with pytest.raises(ValueError):
        y.min().compute()
    with pytest.raises(ValueError):
        y.argmax().compute()


def test_argmin_ties_and_nan_first_occurrence():
    a = np.array([3.0, 1.0, 5.0, 1.0, 1.0, 7.0, 0.5, 0.5, 9.0])
    x = da.from_array(a, chunks=2)
    assert x.argmin().compute() == np.argmin(a)
    y = x[x > 0.7]
    assert y.argmin().compute() == np.argmin(a[a > 0.7])
    b = a.copy()
    b[[4, 7]] = np.nan
    xb = da.from_array(b, chunks=2)
    assert xb.argmin().compute() == np.argmin(b) == 4
    assert xb.argmax().compute() == np.argmax(b) == 4
    assert da.nanargmin(xb).compute() == np.nanargmin(b)
    assert da.nanargmax(xb).compute() == np.nanargmax(b)
    with pytest.raises(ValueError):
        da.nanargmin(da.from_array(np.full(5, np.nan), chunks=2)).compute()


# ---------------------------------------------------------------------------
# empty arrays, errors, dtypes
# ---------------------------------------------------------------------------
def test_empty_semantics():
    x = da.from_array(np.zeros((0, 3)), chunks=(5, 2))
    assert x.sum().compute() == 0
    np.testing.assert_array_equal(x.sum(axis=0).compute(), np.zeros(3))
    assert x.sum(axis=1).compute().shape == (0,)
    with pytest.warns(RuntimeWarning):
        assert math.isnan(x.mean().compute())
    with pytest.warns(RuntimeWarning):
        assert math.isnan(x.var().compute())
    with pytest.raises(ValueError):
        x.min().compute()
    with pytest.raises(ValueError):
        x.argmax().compute()
    assert x.max(axis=1).compute().shape == (0,)
    assert x.any().compute() == np.False_ and x.all().compute() == np.True_
    assert x.prod().compute() == 1.0


def test_axis_errors():
    x = da.ones((3, 4), chunks=2)
    with pytest.raises(AxisError):
        x.sum(axis=2)
    with pytest.raises(AxisError):
        x.mean(axis=-3)
    with pytest.raises(ValueError):
        x.sum(axis=(0, -2))
    with pytest.raises(TypeError):
        x.argmin(axis=(0, 1))


def test_dtype_argument():
    a = np.arange(10, dtype=np.int8) * 30
    x = da.from_array(a, chunks=3)
    assert x.sum(dtype=np.int8).compute() == a.sum(dtype=np.int8)
    assert x.sum().dtype == np.int64 and x.sum().compute() == a.sum()
    assert x.mean(dtype=np.float32).dtype == np.float32
    assert da.sum(da.ones(5, dtype=np.uint8, chunks=2)).dtype == np.uint64
    z = da.from_array(np.ones(7, np.complex64) * (1 + 2j), chunks=2)
    assert z.var().dtype == np.float32
    assert z.sum().compute() == np.complex64(7 + 14j)


def test_methods_and_keepdims():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = da.from_array(a, chunks=(1, 2, 3))
    np.testing.assert_allclose(x.sum(axis=(0, 2), keepdims=True).compute(),
                               a.sum(axis=(0, 2), keepdims=True))
    np.testing.assert_allclose(x.std(axis=1, ddof=1).compute(), a.std(axis=1, ddof=1))
    np.testing.assert_array_equal(x.argmax(axis=-1).compute(), a.argmax(axis=-1))
    np.testing.assert_array_equal(x.argmin(axis=None, keepdims=True).compute(),
                                  a.argmin(axis=None, keepdims=True))
    assert x.max().compute() == 23.0 and x.min(axis=0).compute().shape == (3, 4)
    assert x.prod(axis=0).chunks == ((2, 1), (3, 1))


def test_kernel_sum_graph_is_all_c():
    x = da.ones(1000, chunks=10)
    g = x.sum().__dask_graph__()
    own = [v for k, v in g.items() if isinstance(k, tuple) and k[0].startswith("sum")]
    assert own and all(isinstance(t[0], cdask.Kernel) for t in own)
    assert x.sum().compute() == 1000.0


def test_graph_pickles():
    x = da.from_array(np.arange(20.0), chunks=3)
    for r in (x.sum(keepdims=True), x.mean(), x.var(ddof=1), x.argmin(), x.max(), x[x > 3].sum()):
        d = dict(r.__dask_graph__())
        d2 = pickle.loads(pickle.dumps(d))
        assert cdask.get(d2, r.__dask_keys__()) is not None


def test_general_reduction():
    a = np.arange(40.0).reshape(8, 5)
    x = da.from_array(a, chunks=(3, 2))
    r = da.reduction(x, np.sum, np.sum, axis=0, dtype=a.dtype, split_every=2)
    np.testing.assert_allclose(r.compute(), a.sum(axis=0))
    r = da.reduction(x, np.max, np.max, axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(r.compute(), a.max(keepdims=True))

    # concatenate=False: nested lists of partials, one level per reduced axis
    def chunk(b, axis, keepdims):
        return {"n": np.full(np.sum(b, axis=axis, keepdims=True).shape, b.size / np.prod(
            [b.shape[i] for i in range(b.ndim) if i not in axis]) if b.size else 0.0),
            "s": np.sum(b, axis=axis, keepdims=True)}

    def flat(parts):
        while isinstance(parts, list):
            parts = [p for q in parts for p in (q if isinstance(q, list) else [q])]
            if all(isinstance(p, dict) for p in parts):
                return parts
        return [parts]

    def combine(parts, axis, keepdims):
        ps = flat(parts)
        return {"n": sum(p["n"] for p in ps), "s": sum(p["s"] for p in ps)}

    def agg(parts, axis, keepdims):
        c = combine(parts, axis, True)
        r = c["s"] / c["n"]
        return r if keepdims else np.squeeze(r, axis=axis)

    r = da.reduction(x, chunk, agg, combine=combine, axis=0, concatenate=False, dtype=float,
                     split_every=2)
    np.testing.assert_allclose(r.compute(), a.mean(axis=0))


def test_out_argument():
    x = da.from_array(np.arange(10.0), chunks=3)
    out = da.zeros((), chunks=())
    r = da.sum(x, out=out)
    assert r is out and out.compute() == 45.0


def test_moment():
    a = np.random.default_rng(5).standard_normal(1000)
    x = da.from_array(a, chunks=77)
    for k in (2, 3, 4):
        np.testing.assert_allclose(da.moment(x, k).compute(), np.mean((a - a.mean()) ** k),
                                   rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("fname", ["cumsum", "cumprod", "nancumsum", "nancumprod"])
def test_cumulative(fname):
    a = np.random.default_rng(9).standard_normal((9, 7))
    a[2, 3] = np.nan
    x = da.from_array(a, chunks=(2, 3))
    for axis in (0, 1, -1):
        np.testing.assert_allclose(getattr(da, fname)(x, axis=axis).compute(),
                                   getattr(np, fname)(a, axis=axis), equal_nan=True)
    v = da.from_array(a[:, 0], chunks=2)
    w = v[v > 0]
    np.testing.assert_allclose(getattr(da, fname)(w).compute(),
                               getattr(np, fname)(a[:, 0][a[:, 0] > 0]))


@pytest.mark.parametrize("values", [[np.nan], [np.inf], [1.0, np.nan, -np.inf], [2.0, 3.0]])
@pytest.mark.parametrize("f", ["var", "std", "nanvar", "nanstd"])
def test_moments_of_one_element_blocks_keep_nan(values, f):
    """Blocks one element long take a shortcut (no sums): NaN and infinite
    elements still give NumPy's NaN."""
    a = np.array(values)
    x = da.from_array(a, chunks=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(getattr(da, f)(x).compute(), getattr(np, f)(a))
