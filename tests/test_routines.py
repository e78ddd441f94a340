"""where, clip, isnan..., compute_chunk_sizes, nonzero and __array_function__ (issue 3, item 7)."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask
import cdask.array.routines as routines
import cdask as da
from cdask.array.routines import NotLazyWarning


@pytest.fixture
def arr():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((13, 9))
    return a, da.from_array(a, chunks=(4, 5))


# ---------------------------------------------------------------------------
# where / clip / isnan
# ---------------------------------------------------------------------------
def test_where_three_args(arr):
    a, x = arr
    r = da.where(x > 0, x, 0)
    assert isinstance(r, da.Array)
    np.testing.assert_array_equal(r.compute(), np.where(a > 0, a, 0))
    # broadcasting: a row of y against the 2-d condition
    y = np.arange(9.0)
    np.testing.assert_array_equal(da.where(x > 0, -x, y).compute(), np.where(a > 0, -a, y))
    yd = da.from_array(y, chunks=3)
    np.testing.assert_array_equal(da.where(x < 0, yd, x).compute(), np.where(a < 0, y, a))
    # NEP 50: a Python scalar does not upcast float32
    x32 = x.astype(np.float32)
    assert da.where(x32 > 0, x32, 0.5).dtype == np.where(a.astype(np.float32) > 0,
                                                         a.astype(np.float32), 0.5).dtype
    with pytest.raises(ValueError):
        da.where(x > 0, x)


def test_where_one_arg_is_nonzero(arr):
    a, x = arr
    got = da.where(x > 1)
    exp = np.where(a > 1)
    assert len(got) == 2
    for g, e in zip(got, exp):
        np.testing.assert_array_equal(g.compute(), e)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 30), c=st.integers(1, 8), lo=st.floats(-2, 2), width=st.floats(0, 3),
       dtype=st.sampled_from([np.float64, np.float32, np.int32, np.int64]))
def test_clip_matches_numpy(n, c, lo, width, dtype):
    a = (np.random.default_rng(n).standard_normal(n) * 3).astype(dtype)
    x = da.from_array(a, chunks=c)
    hi = lo + width
    r = da.clip(x, lo, hi)
    e = np.clip(a, lo, hi)
    assert r.dtype == e.dtype
    np.testing.assert_array_equal(r.compute(), e)
    np.testing.assert_array_equal(da.clip(x, None, hi).compute(), np.clip(a, None, hi))
    np.testing.assert_array_equal(da.clip(x, lo, None).compute(), np.clip(a, lo, None))


def test_clip_variants(arr):
    a, x = arr
    np.testing.assert_array_equal(x.clip(-0.5, 0.5).compute(), a.clip(-0.5, 0.5))
    np.testing.assert_array_equal(x.clip(0.1).compute(), a.clip(0.1))
    np.testing.assert_array_equal(x.clip(max=0.2).compute(), a.clip(max=0.2))
    np.testing.assert_array_equal(da.clip(x, min=-1, max=1).compute(), np.clip(a, -1, 1))
    lo = np.full(9, -0.3)
    np.testing.assert_array_equal(da.clip(x, lo, 0.3).compute(), np.clip(a, lo, 0.3))
    xi = da.from_array(np.arange(10), chunks=3)
    np.testing.assert_array_equal(da.clip(xi, 2, 7).compute(), np.clip(np.arange(10), 2, 7))
    assert da.clip(xi, 2, 7).dtype == np.clip(np.arange(10), 2, 7).dtype


def test_isnan_isfinite_isinf():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -2.0, np.nan])
    x = da.from_array(a, chunks=3)
    for f in ("isnan", "isfinite", "isinf", "isposinf", "isneginf"):
        r = getattr(da, f)(x)
        assert isinstance(r, da.Array) and r.dtype == bool
        np.testing.assert_array_equal(r.compute(), getattr(np, f)(a))
    assert da.isnan(x).sum().compute() == 2
    m = da.isfinite(x)
    assert bool(da.allclose(x[m], x[m] + 1e-12).compute())
    np.testing.assert_array_equal(da.isclose(x, a, equal_nan=True).compute(),
                                  np.isclose(a, a, equal_nan=True))


# ---------------------------------------------------------------------------
# compute_chunk_sizes
# ---------------------------------------------------------------------------
def test_compute_chunk_sizes_1d():
    a = np.random.default_rng(1).standard_normal(1000)
    x = da.from_array(a, chunks=128)
    y = x[x > 0]
    assert all(math.isnan(c) for c in y.chunks[0])
    r = y.compute_chunk_sizes()
    assert r is y
    assert sum(y.chunks[0]) == int((a > 0).sum())
    assert y.shape == ((a > 0).sum(),)
    assert all(isinstance(c, int) for c in y.chunks[0])
    np.testing.assert_array_equal(y.compute(), a[a > 0])
    # now shape-dependent operations work
    np.testing.assert_array_equal((y + da.ones(y.shape, chunks=y.chunks)).compute(),
                                  a[a > 0] + 1)


def test_compute_chunk_sizes_known_is_noop(arr):
    a, x = arr
    before = x.chunks
    assert x.compute_chunk_sizes() is x and x.chunks == before


def test_compute_chunk_sizes_only_brings_shapes(monkeypatch):
    a = np.arange(100.0)
    x = da.from_array(a, chunks=10)
    y = x[x % 3 == 0]
    seen = []
    real_get = cdask.get

    def spy(dsk, keys, **kw):
        out = real_get(dsk, keys, **kw)
        seen.append(out)
        return out

    monkeypatch.setattr(routines, "get", spy)
    da.compute_chunk_sizes(y)
    assert seen and all(isinstance(s, tuple) for s in seen[0])
    assert y.chunks[0] == tuple(int((a[i:i + 10] % 3 == 0).sum()) for i in range(0, 100, 10))


def test_compute_chunk_sizes_2d_unknown_axis():
    from cdask.array.core import Array
    a = np.arange(24.0).reshape(6, 4)
    x = da.from_array(a, chunks=(2, 2))
    y = Array(x._layers, x.name, ((math.nan,) * 3, (2, 2)), x.dtype)
    y.compute_chunk_sizes()
    assert y.chunks == ((2, 2, 2), (2, 2))


def test_nonzero_and_count_nonzero(arr):
    a, x = arr
    m = x > 0.5
    nz = da.nonzero(m)
    for g, e in zip(nz, np.nonzero(a > 0.5)):
        np.testing.assert_array_equal(g.compute(), e)
    assert da.count_nonzero(m).compute() == np.count_nonzero(a > 0.5)
    np.testing.assert_array_equal(da.count_nonzero(m, axis=0).compute(),
                                  np.count_nonzero(a > 0.5, axis=0))
    np.testing.assert_array_equal(da.argwhere(m).compute(), np.argwhere(a > 0.5))


def test_squeeze_swapaxes():
    a = np.arange(12.0).reshape(3, 1, 4)
    x = da.from_array(a, chunks=(2, 1, 3))
    np.testing.assert_array_equal(x.squeeze().compute(), a.squeeze())
    np.testing.assert_array_equal(da.squeeze(x, axis=1).compute(), a.squeeze(axis=1))
    with pytest.raises(ValueError):
        da.squeeze(x, axis=0)
    np.testing.assert_array_equal(da.swapaxes(x, 0, 2).compute(), a.swapaxes(0, 2))


# ---------------------------------------------------------------------------
# __array_function__
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("func, kw", [
    (np.mean, {}), (np.sum, {"axis": 0}), (np.std, {"ddof": 1}), (np.var, {"axis": 1}),
    (np.max, {}), (np.min, {"axis": -1, "keepdims": True}), (np.argmin, {"axis": 0}),
    (np.argmax, {}), (np.prod, {"axis": 1}), (np.any, {}), (np.all, {"axis": 0}),
    (np.nansum, {}), (np.nanmean, {"axis": 0}), (np.nanstd, {}), (np.nanvar, {}),
    (np.nanmin, {}), (np.nanmax, {"axis": 1}), (np.count_nonzero, {"axis": 0}),
    (np.amax, {}), (np.amin, {}),
])
def test_array_function_reductions_are_lazy(arr, func, kw):
    a, x = arr
    r = func(x, **kw)
    assert isinstance(r, da.Array), type(r)
    np.testing.assert_allclose(r.compute(), func(a, **kw), rtol=1e-12)


def test_array_function_positional_args_follow_numpy(arr):
    a, x = arr
    # np.sum(a, axis, dtype, out, keepdims)
    r = np.sum(x, 0, np.float32, None, True)
    assert isinstance(r, da.Array) and r.dtype == np.float32 and r.shape == (1, 9)
    np.testing.assert_allclose(r.compute(), np.sum(a, 0, np.float32, None, True), atol=1e-5)
    r = np.std(x, 1, None, None, 1)   # ddof positional
    np.testing.assert_allclose(r.compute(), np.std(a, 1, None, None, 1))


def test_array_function_where_clip(arr):
    a, x = arr
    r = np.where(x > 0, x, -1.0)
    assert isinstance(r, da.Array)
    np.testing.assert_array_equal(r.compute(), np.where(a > 0, a, -1.0))
    r = np.clip(x, -0.1, 0.1)
    assert isinstance(r, da.Array)
    np.testing.assert_array_equal(r.compute(), np.clip(a, -0.1, 0.1))
    assert isinstance(np.mean(x[x > 0]), da.Array)


def test_array_function_fallback_computes_with_warning(arr):
    a, x = arr
    with pytest.warns(NotLazyWarning, match="trapezoid"):
        r = np.trapezoid(x)
    assert not isinstance(r, da.Array)
    np.testing.assert_allclose(r, np.trapezoid(a))
    # a handled function with an unsupported argument also falls back
    with pytest.warns(NotLazyWarning):
        r = np.sum(x, where=a > 0)
    assert r == np.sum(a, where=a > 0)
    with pytest.warns(NotLazyWarning):
        np.testing.assert_array_equal(np.partition(x, 1, axis=0), np.partition(a, 1, axis=0))
