"""cdask.Array.__getitem__ against NumPy: basic indexing (ints, slices with
any step, Ellipsis, None), boolean masks, integer lists along one axis."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import cdask as da
from cdask.array.core import Array
from blockcheck import basic_entry, chunk_specs

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def arrays(draw, max_ndim=3, max_side=8):
    nd = draw(st.integers(0, max_ndim))
    shape = tuple(draw(st.integers(0, max_side)) for _ in range(nd))
    chunks = chunk_specs(draw, st, shape)
    return shape, tuple(chunks)


@st.composite
def index_for(draw, shape):
    idx = []
    for s in shape:
        kind = draw(st.sampled_from(["slice", "slice", "int", "full", "none"]))
        basic_entry(draw, st, kind, s, idx, reach=3, max_step=4)
    # maybe replace a run of full slices with Ellipsis, drop trailing ones
    if idx and draw(st.booleans()):
        k = draw(st.integers(0, len(idx)))
        idx = idx[:k]
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(idx)))
        real = sum(1 for i in idx if i is not None)
        if real <= len(shape):
            idx = idx[:pos] + [Ellipsis] + idx[pos:]
            # Ellipsis takes the missing axes; keep the total count valid
    if draw(st.booleans()):
        idx.append(None)
    return tuple(idx)


@SETTINGS
@given(arrays(), st.data())
def test_basic_indexing_vs_numpy(sc, data):
    shape, chunks = sc
    a = np.arange(int(np.prod(shape)), dtype="i8").reshape(shape)
    x = da.from_array(a, chunks=chunks)
    idx = data.draw(index_for(shape))
    try:
        expect = a[idx]
    except IndexError:
        with pytest.raises(IndexError):
            x[idx]
        return
    r = x[idx]
    assert isinstance(r, Array)
    assert r.shape == np.shape(expect), (idx, r.shape, np.shape(expect))
    for c, s in zip(r.chunks, r.shape):
        assert sum(c) == s
    got = r.compute()
    np.testing.assert_array_equal(got, expect)
    assert np.asarray(got).dtype == a.dtype


def test_int_indexing():
    a = np.arange(30).reshape(5, 6)
    x = da.from_array(a, chunks=(2, 4))
    assert x[3, 4].compute() == a[3, 4]
    assert x[-1, -1].compute() == a[-1, -1]
    np.testing.assert_array_equal(x[-2].compute(), a[-2])
    np.testing.assert_array_equal(x[:, 5].compute(), a[:, 5])
    for bad in [(5,), (-6,), (0, 6), (0, -7)]:
        with pytest.raises(IndexError):
            x[bad]
    with pytest.raises(IndexError):
        x[0, 0, 0]
    with pytest.raises(IndexError):
        x[..., ...]
    with pytest.raises(IndexError):
        x["a"]
    assert x[np.int64(2), np.int32(1)].compute() == a[2, 1]


def test_slices_and_steps():
    a = np.arange(100)
    x = da.from_array(a, chunks=7)
    for sl in [slice(None, None, -1), slice(3, 90, 5), slice(95, 2, -3), slice(-5, None),
               slice(None, -95, -1), slice(50, 50), slice(80, 10), slice(None, None, 13),
               slice(-200, 200, 2), slice(6, 7), slice(7, 8)]:
        np.testing.assert_array_equal(x[sl].compute(), a[sl])


def test_only_touched_blocks_in_graph():
    x = da.ones((100, 100), chunks=10)
    y = x[5:15, 95]
    g = y.__dask_graph__()
    own = [k for k in g if k[0] == y.name]
    src = [k for k in g if k[0] == x.name]
    assert len(own) == 2
    assert len(src) == 100  # the source layer is shared, not copied
    # every output task slices exactly one input block
    for k in own:
        task = g[k]
        assert sum(1 for a in task[1:] if isinstance(a, tuple) and a and a[0] == x.name) == 1
    assert y.chunks == ((5, 5),)
    z = x[::-1, ::-1]
    assert z.numblocks == (10, 10)


def test_newaxis_and_ellipsis():
    a = np.arange(24).reshape(2, 3, 4)
    x = da.from_array(a, chunks=(1, 2, 3))
    for idx in [(None,), (..., None), (0, ..., 1), (..., 2), (None, 1, None, ..., None),
                (Ellipsis,), (), (slice(None), None, slice(1, 3))]:
        np.testing.assert_array_equal(x[idx].compute(), a[idx])
        assert x[idx].shape == a[idx].shape
    s = da.from_array(np.float64(3.5))
    assert s[()].compute() == 3.5
    assert s[None].shape == (1,)
    np.testing.assert_array_equal(s[None].compute(), np.array([3.5]))


def test_boolean_mask():
    a = np.arange(-10, 14).reshape(4, 6)
    x = da.from_array(a, chunks=(3, 4))
    m = x > 0
    y = x[m]
    assert y.ndim == 1
    assert all(math.isnan(c) for c in y.chunks[0])
    assert len(y.chunks[0]) == x.numblocks[0]      # one block per band of block rows
    assert math.isnan(y.shape[0])
    # NumPy's order (and dask's, which ravels first), not the blocks' order
    np.testing.assert_array_equal(y.compute(), a[a > 0])
    assert sorted(y.compute().tolist()) == sorted(a[a > 0].tolist())
    # 1-d masks give NumPy's order
    b = np.arange(20.0)
    xb = da.from_array(b, chunks=6)
    np.testing.assert_array_equal(xb[xb % 3 == 0].compute(), b[b % 3 == 0])
    np.testing.assert_array_equal(xb[b > 4].compute(), b[b > 4])
    # elementwise on the masked result works (unknown chunks kept)
    z = xb[xb > 4] * 2
    np.testing.assert_array_equal(z.compute(), b[b > 4] * 2)
    assert math.isnan(z.shape[0])
    p = z.persist()
    assert p.shape == ((b > 4).sum(),)


def test_boolean_mask_rechunks_mask():
    a = np.arange(20.0)
    x = da.from_array(a, chunks=6)
    m = da.from_array(a > 7, chunks=4)
    np.testing.assert_array_equal(x[m].compute(), a[a > 7])


def test_boolean_mask_errors():
    x = da.ones(5, chunks=2)
    with pytest.raises(IndexError):
        x[np.array([True, False])]
    with pytest.raises(IndexError):
        x[da.ones(5)]  # float mask
    y = x[x > 0]
    with pytest.raises(ValueError):
        y[1:3]
    np.testing.assert_array_equal(y[:].compute(), np.ones(5))


@SETTINGS
@given(arrays(max_ndim=2), st.data())
def test_boolean_mask_hypothesis(sc, data):
    shape, chunks = sc
    a = np.arange(int(np.prod(shape)), dtype="f8").reshape(shape)
    rng = np.random.default_rng(data.draw(st.integers(0, 100)))
    mask = rng.integers(0, 2, shape).astype(bool)
    x = da.from_array(a, chunks=chunks)
    r = x[da.from_array(mask, chunks=chunks)].compute()
    assert sorted(r.tolist()) == sorted(a[mask].tolist())
    if len(shape) == 1:
        np.testing.assert_array_equal(r, a[mask])


def test_integer_list_indexing():
    a = np.arange(40).reshape(8, 5)
    x = da.from_array(a, chunks=(3, 2))
    for ind in [[0, 7, 3, 3], [-1], [], np.array([5, 1, 2])]:
        np.testing.assert_array_equal(x[ind].compute(), a[ind])
    for ind in [[4, 0, 0, -2], [1], []]:
        np.testing.assert_array_equal(x[:, ind].compute(), a[:, ind])
        np.testing.assert_array_equal(x[1:, ind].compute(), a[1:, ind])
    with pytest.raises(IndexError):
        x[[8]]
