"""np.sort / np.argsort on cdask Arrays (through __array_function__) and
cdask.sort / cdask.argsort (cdask extras: dask.array has neither): lazy, the
sorted axis in one block, NumPy's results for every axis, chunking and
dtype - float16 and datetime64 with NaN/NaT included - and argsort's
stability with kind="stable"."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask as da

SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _data(rng, shape, kind):
    if kind == "datetime64[s]":
        v = rng.integers(-5, 5, shape).astype("datetime64[s]")
        v[rng.random(shape) < 0.2] = np.datetime64("NaT")
        return v
    if kind == "timedelta64[ms]":
        return rng.integers(-3, 3, shape).astype("timedelta64[ms]")
    v = rng.integers(-3, 4, shape).astype(kind)     # many ties
    if np.dtype(kind).kind == "f":
        v[rng.random(shape) < 0.15] = np.nan
        v[rng.random(shape) < 0.1] = -0.0
    return v


@st.composite
def cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 8), min_size=1, max_size=3)))
    chunks = tuple(draw(st.integers(1, s)) for s in shape)
    axis = draw(st.sampled_from(list(range(-len(shape), len(shape))) + [None]))
    kind = draw(st.sampled_from(["float64", "float16", "float32", "int16", "uint8", "bool",
                                 "datetime64[s]", "timedelta64[ms]"]))
    a = _data(np.random.default_rng(draw(st.integers(0, 2 ** 16))), shape, kind)
    return a, chunks, axis


@SETTINGS
@given(cases(), st.sampled_from([None, "stable", "quicksort", "heapsort"]))
def test_sort_and_argsort_match_numpy(case, kind):
    a, chunks, axis = case
    x = da.from_array(a, chunks=chunks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # lazy: no NotLazyWarning
        s, i = np.sort(x, axis=axis, kind=kind), np.argsort(x, axis=axis, kind="stable")
        s2 = da.sort(x, axis=axis, kind=kind)
    assert isinstance(s, da.Array) and isinstance(i, da.Array) and isinstance(s2, da.Array)
    want = np.sort(a, axis=axis, kind=kind)
    for got in (s.compute(), s2.compute()):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.view(np.uint8) if a.dtype.kind == "f" else got,
                                      want.view(np.uint8) if a.dtype.kind == "f" else want)
    wi = np.argsort(a, axis=axis, kind="stable")
    gi = i.compute()
    assert gi.dtype == wi.dtype
    np.testing.assert_array_equal(gi, wi)      # stable: ties in their order


def test_stable_argsort_of_ties_across_blocks():
    a = np.array([2, 1, 2, 1, 2, 1, 0, 2] * 50)
    x = da.from_array(a, chunks=7)
    np.testing.assert_array_equal(da.argsort(x, kind="stable").compute(),
                                  np.argsort(a, kind="stable"))
    np.testing.assert_array_equal(np.argsort(x, stable=True).compute(),
                                  np.argsort(a, stable=True))


def test_unknown_chunks_and_errors():
    a = np.array([5.0, -1.0, np.nan, 3.0, 2.0, 0.0])
    x = da.from_array(a, chunks=2)
    sel = x[x > 0]
    np.testing.assert_array_equal(np.sort(sel).compute(), np.sort(a[a > 0]))
    m = da.from_array(np.arange(12.0).reshape(3, 4), chunks=2)
    with pytest.raises(ValueError, match="unknown"):
        da.sort(da.stack([sel, sel]), axis=1)
    np.testing.assert_array_equal(da.sort(da.from_array(np.float64(3.0)), axis=None).compute(),
                                  np.sort(np.float64(3.0), axis=None))
    with pytest.raises(np.exceptions.AxisError):
        da.sort(m, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        da.sort(da.from_array(np.float64(3.0)))
    with pytest.raises(NotImplementedError, match="order"):
        da.argsort(m, order="f")
