"""``pad`` against ``np.pad``: every mode and its keywords, over hypothesis
shapes, chunkings (ragged, size-1, empty axes), dtypes and pad widths
(wider than the axis too, where NumPy repeats the pattern).  Values are bit
for bit NumPy's, but for ``mean`` (within float tolerance, the mean being a
reduction); ``empty`` is checked on the copied part only.  Bad arguments
raise NumPy's exception types.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da
from blockcheck import check, chunkings, sample

EX = settings(max_examples=40, deadline=None)
DTYPES = (np.float64, np.float32, np.int64, np.int16, np.uint8, np.bool_, np.complex128)


@st.composite
def cases(draw, min_side=0, max_dims=3, dtypes=DTYPES):
    shape = tuple(draw(st.lists(st.integers(min_side, 6), min_size=1, max_size=max_dims)))
    chunks = chunkings(draw, st, shape)
    dtype = draw(st.sampled_from(dtypes))
    a = sample(shape, dtype, draw(st.integers(0, 2 ** 16)))
    form = draw(st.sampled_from(["int", "pair", "per_axis"]))
    w = st.integers(0, 9)
    if form == "int":
        width = draw(w)
    elif form == "pair":
        width = (draw(w), draw(w))
    else:
        width = tuple((draw(w), draw(w)) for _ in shape)
    return a, chunks, width


def _compare(a, chunks, width, mode, **kw):
    x = da.from_array(a, chunks=chunks)
    try:
        want = np.pad(a, width, mode, **kw)
    except ValueError as e:
        with pytest.raises(ValueError):
            da.pad(x, width, mode, **kw)
        return str(e)
    got = da.pad(x, width, mode, **kw)
    if mode == "mean" and a.dtype.kind in "fc":
        check(got, want, exact=False, rtol=1e-5, atol=1e-6)
    elif mode == "empty":
        assert got.shape == want.shape and got.dtype == want.dtype
        inner = tuple(slice(b, b + n) for (b, _), n in
                      zip(np.broadcast_to(np.asarray(width).reshape(-1, 2)
                                          if np.ndim(width) else [[width, width]],
                                          (a.ndim, 2)), a.shape))
        np.testing.assert_array_equal(got.compute()[inner], a)
    else:
        check(got, want)
    return None


@EX
@given(cases(), st.sampled_from(["constant", "edge", "wrap", "reflect", "symmetric", "empty"]))
def test_pad_simple_modes(case, mode):
    a, chunks, width = case
    _compare(a, chunks, width, mode)


@EX
@given(cases(dtypes=(np.float64, np.int32, np.uint8, np.complex64)), st.data())
def test_pad_constant_values(case, data):
    a, chunks, width = case
    v = st.sampled_from([0, 1, -2, 2.5, 300, np.float32(1.5)])
    form = data.draw(st.sampled_from(["one", "pair", "per_axis"]))
    if form == "one":
        cv = data.draw(v)
    elif form == "pair":
        cv = (data.draw(v), data.draw(v))
    else:
        cv = tuple((data.draw(v), data.draw(v)) for _ in a.shape)
    try:
        want = np.pad(a, width, "constant", constant_values=cv)
    except (OverflowError, ValueError) as e:
        with pytest.raises(type(e)):
            da.pad(da.from_array(a, chunks=chunks), width, "constant", constant_values=cv)
        return
    check(da.pad(da.from_array(a, chunks=chunks), width, "constant", constant_values=cv), want)


@EX
@given(cases(dtypes=(np.float64, np.float32, np.int16, np.uint8, np.complex128)), st.data())
def test_pad_linear_ramp(case, data):
    a, chunks, width = case
    ev = st.sampled_from([0, 3, -1.5, 7, np.float32(2.25), np.int8(-4)])
    form = data.draw(st.sampled_from(["default", "one", "pair", "per_axis"]))
    if form == "default":
        kw = {}
    elif form == "one":
        kw = {"end_values": data.draw(ev)}
    elif form == "pair":
        kw = {"end_values": (data.draw(ev), data.draw(ev))}
    else:
        kw = {"end_values": tuple((data.draw(ev), data.draw(ev)) for _ in a.shape)}
    _compare(a, chunks, width, "linear_ramp", **kw)


@EX
@given(cases(dtypes=(np.float64, np.float32, np.int64, np.int16, np.uint8)),
       st.sampled_from(["maximum", "minimum", "mean", "median"]), st.data())
def test_pad_statistics(case, mode, data):
    a, chunks, width = case
    form = data.draw(st.sampled_from(["none", "one", "per_axis"]))
    if form == "none":
        kw = {}
    elif form == "one":
        kw = {"stat_length": data.draw(st.integers(1, 8))}
    else:
        kw = {"stat_length": tuple((data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8)))
                                   for _ in a.shape)}
    with warnings.catch_warnings():
        # NumPy warns on the mean of an empty slab (as cdask may)
        warnings.simplefilter("ignore", RuntimeWarning)
        _compare(a, chunks, width, mode, **kw)


@EX
@given(cases(min_side=1), st.sampled_from(["reflect", "symmetric"]))
def test_pad_odd_reflection(case, mode):
    a, chunks, width = case
    x = da.from_array(a, chunks=chunks)
    widths = np.broadcast_to(np.asarray(width).reshape(-1, 2) if np.ndim(width)
                             else [[width, width]], (a.ndim, 2))
    reach = [n - 1 if mode == "reflect" else n for n in a.shape]
    want = np.pad(a, width, mode, reflect_type="odd")
    if any(n > 1 and max(w) > r for w, n, r in zip(widths, a.shape, reach)):
        with pytest.raises(NotImplementedError, match="odd"):
            da.pad(x, width, mode, reflect_type="odd")
        return
    check(da.pad(x, width, mode, reflect_type="odd"), want)


def _udf(vector, pad_width, iaxis, kwargs):
    v = kwargs.get("padder", 10)
    vector[:pad_width[0]] = v
    if pad_width[1]:
        vector[-pad_width[1]:] = v * iaxis - 1


@EX
@given(cases(dtypes=(np.float64, np.int32)))
def test_pad_callable(case):
    a, chunks, width = case
    x = da.from_array(a, chunks=chunks)
    check(da.pad(x, width, _udf), np.pad(a, width, _udf))
    check(da.pad(x, width, _udf, padder=3), np.pad(a, width, _udf, padder=3))


def test_pad_wide_reflections_read_only_edge_blocks():
    a = np.arange(40.0)
    x = da.from_array(a, chunks=10)
    y = da.pad(x, (3, 25), "reflect")
    check(y, np.pad(a, (3, 25), "reflect"))
    check(da.pad(x, (95, 3), "wrap"), np.pad(a, (95, 3), "wrap"))
    check(da.pad(x, 100, "symmetric"), np.pad(a, 100, "symmetric"))
    # the middle blocks are the input's own
    assert sum(1 for k in y.__dask_graph__() if k[0] == x.name) == 4


def test_pad_numpy_array_input_and_pad_width_forms():
    a = np.arange(12).reshape(3, 4)
    check(da.pad(a, 1), np.pad(a, 1))
    check(da.pad(a, ((1, 2),)), np.pad(a, ((1, 2),)))
    check(da.pad(a, [[0, 1], [2, 0]], "edge"), np.pad(a, [[0, 1], [2, 0]], "edge"))
    check(da.pad(a, np.array([[1], [2]]), "wrap"), np.pad(a, np.array([[1], [2]]), "wrap"))


def test_pad_errors():
    x = da.from_array(np.arange(6.0).reshape(2, 3), chunks=1)
    with pytest.raises(TypeError, match="integral"):
        da.pad(x, 1.5)
    with pytest.raises(ValueError, match="negative"):
        da.pad(x, -1)
    with pytest.raises(ValueError, match="not supported"):
        da.pad(x, 1, "nope")
    with pytest.raises(ValueError, match="unsupported keyword"):
        da.pad(x, 1, "edge", constant_values=3)
    with pytest.raises(ValueError, match="stat_length of 0"):
        da.pad(x, 1, "maximum", stat_length=0)
    with pytest.raises(ValueError, match="empty axis"):
        da.pad(da.zeros((0, 3), chunks=1), 1, "edge")
    with pytest.raises(ValueError, match="reflect_type"):
        da.pad(x, 1, "reflect", reflect_type="sideways")
    with pytest.raises(ValueError):
        da.pad(x, ((1, 2), (3, 4), (5, 6)))
    y = x[da.from_array(np.ones(2, bool), chunks=1)]
    with pytest.raises(ValueError, match="unknown"):
        da.pad(y, 1)
    # no padding at all is fine on unknown chunk sizes
    np.testing.assert_array_equal(da.pad(y, 0).compute(), np.arange(6.0).reshape(2, 3))
