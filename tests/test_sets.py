"""unique, union1d, isin and searchsorted (sets.py) against NumPy, bit for bit.

Shapes, chunkings (ragged, size-1, empty) and dtypes (ints, floats with NaN
and signed zeros, bool, complex) come from hypothesis; arrays with unknown
(nan) chunk sizes are made with a boolean mask.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da
from blockcheck import check, chunkings, same_bits, unknown_rows

EX = settings(max_examples=40, deadline=None)

DTYPES = (np.int64, np.int8, np.uint16, np.float64, np.float32, np.bool_, np.complex128)


def few_values(draw, shape, dtype):
    """An array with many repeats (values drawn from a small set), NaNs and
    signed zeros for floats."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    a = rng.integers(-4, 5, shape)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return (a > 0)
    if dt.kind == "u":
        a = np.abs(a)
    a = a.astype(dt)
    if dt.kind in "fc" and a.size:
        flat = a.reshape(-1)
        for i, v in enumerate([np.nan, -0.0, np.nan, 0.5][:draw(st.integers(0, 4))]):
            flat[(i * 3) % flat.size] = v
        if dt.kind == "c":
            flat[-1] = complex(1, -2)
    return a


@st.composite
def arrays(draw, min_dims=1, max_dims=3, max_side=8, dtypes=DTYPES):
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=min_dims,
                                max_size=max_dims)))
    dtype = draw(st.sampled_from(dtypes))
    return few_values(draw, shape, dtype), chunkings(draw, st, shape)




# ---------------------------------------------------------------------------
# unique
# ---------------------------------------------------------------------------
@EX
@given(arrays(), st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.data())
def test_unique(ac, ri, rv, rc, known, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks) if known or a.ndim != 1 else unknown_rows(a, chunks)
    split_every = data.draw(st.sampled_from([None, 2, 3]))
    got = da.unique(x, return_index=ri, return_inverse=rv, return_counts=rc,
                    split_every=split_every)
    want = np.unique(a, return_index=ri, return_inverse=rv, return_counts=rc)
    if not isinstance(want, tuple):
        got, want = (got,), (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        same_bits(g, w)
    assert all(c != c for c in got[0].chunks[0])


def test_unique_of_many_blocks_and_large_values():
    a = np.random.default_rng(0).integers(-2 ** 62, 2 ** 62, 3000) // 2 ** 50
    x = da.from_array(a, chunks=97)
    vals, idx, inv, cnt = da.unique(x, return_index=True, return_inverse=True,
                                    return_counts=True)
    for g, w in zip((vals, idx, inv, cnt), np.unique(a, return_index=True, return_inverse=True,
                                                     return_counts=True)):
        same_bits(g, w)
    # the inverse has the input's chunks
    assert inv.chunks == x.chunks
    same_bits(np.unique(x), np.unique(a))


@EX
@given(arrays(dtypes=(np.float64, np.float32, np.complex128, np.int16)), st.booleans())
def test_unique_nans_kept_apart(ac, rc):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    got = da.unique(x, return_counts=rc, equal_nan=False)
    want = np.unique(a, return_counts=rc, equal_nan=False)
    for g, w in zip(got if rc else (got,), want if rc else (want,)):
        same_bits(g, w)


def test_unique_unsupported_arguments():
    x = da.ones((3, 3), chunks=2)
    with pytest.raises(NotImplementedError, match="axis"):
        da.unique(x, axis=0)
    with pytest.raises(NotImplementedError):
        da.unique(x, return_inverse=True, equal_nan=False)


@EX
@given(arrays(), arrays())
def test_union1d(ac, bc):
    (a, ca), (b, cb) = ac, bc
    want = np.union1d(a, b)
    same_bits(da.union1d(da.from_array(a, chunks=ca), da.from_array(b, chunks=cb)), want)
    same_bits(da.union1d(da.from_array(a, chunks=ca), b), want)


# ---------------------------------------------------------------------------
# isin
# ---------------------------------------------------------------------------
@EX
@given(arrays(), st.lists(st.integers(-5, 5), max_size=6), st.booleans(), st.booleans(),
       st.data())
def test_isin(ac, test, invert, lazy_test, data):
    a, chunks = ac
    t = np.asarray(test, dtype=np.int64)
    kind = data.draw(st.sampled_from([None, "sort"] +
                                     (["table"] if a.dtype.kind in "iub" else [])))
    assume_unique = data.draw(st.booleans())
    if assume_unique:
        t = np.unique(t)
    x = da.from_array(a, chunks=chunks)
    tt = da.from_array(t, chunks=2) if lazy_test else t
    want = np.isin(a, t, assume_unique=assume_unique, invert=invert, kind=kind)
    check(da.isin(x, tt, assume_unique=assume_unique, invert=invert, kind=kind), want)
    if a.ndim == 1:
        same_bits(da.isin(unknown_rows(a, chunks), tt, invert=invert), np.isin(a, t, invert=invert))


@pytest.mark.parametrize("dtype", [np.uint64, np.int64, np.int8, np.uint8, np.int32])
@pytest.mark.parametrize("where", ["low", "high", "middle"])
def test_isin_table_at_the_ends_of_the_dtype(dtype, where):
    # the lookup table (integers) and its sentinels, or np.isin where they
    # would not fit in the dtype
    info = np.iinfo(dtype)
    base = {"low": int(info.min), "high": int(info.max) - 40, "middle": 0}[where]
    a = (np.arange(41, dtype=object) + base).astype(dtype)
    for t in (a[::3], a[5:9], a[:1], a[-1:], np.array([a[0], a[-1]])):
        for invert in (False, True):
            check(da.isin(da.from_array(a, chunks=7), t, invert=invert),
                  np.isin(a, t, invert=invert))


def test_isin_test_values_of_any_shape_and_errors():
    a = np.arange(12).reshape(3, 4)
    x = da.from_array(a, chunks=2)
    t = np.array([[1, 5], [11, 40]])
    check(da.isin(x, t), np.isin(a, t))
    check(da.isin(x, da.from_array(t, chunks=1)), np.isin(a, t))
    with pytest.raises(ValueError):
        da.isin(x, t, kind="hash")
    with pytest.raises(ValueError):
        np.isin(a.astype(float), t, kind="table")
    with pytest.raises(ValueError):
        da.isin(x.astype(float), t, kind="table")


# ---------------------------------------------------------------------------
# searchsorted
# ---------------------------------------------------------------------------
@EX
@given(st.integers(0, 30), st.sampled_from([np.float64, np.int32, np.uint8, np.float32]),
       st.sampled_from(["left", "right"]), st.booleans(), st.data())
def test_searchsorted(n, dtype, side, known, data):
    a = np.sort(few_values(data.draw, (n,), dtype))
    ca = chunkings(data.draw, st, (n,))
    xa = da.from_array(a, chunks=ca) if known else unknown_rows(a, ca)
    v = few_values(data.draw, tuple(data.draw(st.lists(st.integers(0, 5), max_size=2))),
                   data.draw(st.sampled_from([np.float64, np.int64, np.int8])))
    cv = chunkings(data.draw, st, v.shape)
    r = da.searchsorted(xa, da.from_array(v, chunks=cv), side=side)
    check(r, np.searchsorted(a, v, side=side))
    assert r.chunks == da.from_array(v, chunks=cv).chunks
    s = da.searchsorted(xa, 2, side=side)
    assert s.shape == () and s.compute() == np.searchsorted(a, 2, side=side)


@EX
@given(st.integers(1, 25), st.data())
def test_searchsorted_sorter(n, data):
    a = few_values(data.draw, (n,), np.float64)
    sorter = np.argsort(a, kind="stable")
    ca = chunkings(data.draw, st, (n,))
    v = np.array([-3.0, 0.0, 0.5, 2.0, np.nan])
    for s in (sorter, da.from_array(sorter, chunks=ca)):
        check(da.searchsorted(da.from_array(a, chunks=ca), v, sorter=s),
              np.searchsorted(a, v, sorter=sorter))


def test_searchsorted_errors():
    a = da.arange(10, chunks=3)
    with pytest.raises(ValueError, match="one dimensional"):
        da.searchsorted(da.ones((2, 2)), 1)
    with pytest.raises(ValueError):
        da.searchsorted(a, 1, side="middle")
    with pytest.raises(TypeError):
        da.searchsorted(a, 1, sorter=np.array([0.5] * 10))
    with pytest.raises(ValueError):
        da.searchsorted(a, 1, sorter=np.arange(4))
    # through NumPy's protocol
    r = np.searchsorted(a, np.array([2.5, 7]))
    assert isinstance(r, da.Array)
    np.testing.assert_array_equal(r.compute(), [3, 7])
