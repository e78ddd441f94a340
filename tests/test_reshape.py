"""Dimension shuffling against NumPy: reshape (any compatible shape, -1,
merge_chunks), ravel/flatten, transpose/.T, swapaxes, squeeze, moveaxis,
rollaxis, expand_dims, broadcast_to, flip/flipud/fliplr, roll (issue 5)."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import cdask as da
from cdask.array.routines import NotLazyWarning

from blockcheck import DTYPES, check, chunkings, sample

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def arrays(draw, min_ndim=0, max_ndim=3, max_side=6):
    nd = draw(st.integers(min_ndim, max_ndim))
    shape = tuple(draw(st.integers(0, max_side)) for _ in range(nd))
    chunks = chunkings(draw, st, shape)
    dtype = draw(st.sampled_from(DTYPES))
    a = sample(shape, dtype, draw(st.integers(0, 2**16)))
    return a, da.from_array(a, chunks=chunks)


@st.composite
def new_shapes(draw, size):
    """A random shape with ``size`` elements (size 0: some 0 axis)."""
    nd = draw(st.integers(0 if size == 1 else 1, 4))
    if nd == 0:
        return ()
    if size == 0:
        shape = [draw(st.integers(0, 4)) for _ in range(nd)]
        shape[draw(st.integers(0, nd - 1))] = 0
        return tuple(shape)
    dims = [1] * nd
    n = size
    p = 2
    factors = []
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    for f in factors:
        dims[draw(st.integers(0, nd - 1))] *= f
    return tuple(dims)


@SETTINGS
@given(data=st.data())
def test_reshape_matches_numpy(data):
    a, x = data.draw(arrays(max_ndim=4, max_side=5))
    shape = data.draw(new_shapes(a.size))
    check(x.reshape(shape), a.reshape(shape))
    check(da.reshape(x, shape), a.reshape(shape))
    if shape and a.size:
        k = data.draw(st.integers(0, len(shape) - 1))
        s2 = shape[:k] + (-1,) + shape[k + 1:]
        check(x.reshape(*s2), a.reshape(*s2))
    check(da.reshape(x, shape, merge_chunks=False), a.reshape(shape))
    check(da.reshape(x, shape, limit=data.draw(st.integers(1, 200))), a.reshape(shape))
    # Fortran order
    check(x.reshape(shape, order="F"), a.reshape(shape, order="F"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLazyWarning)
        check(np.reshape(x, shape, order="F"), np.reshape(a, shape, order="F"))
    if shape and a.size:
        check(da.reshape(x, s2, order="F", merge_chunks=False), a.reshape(s2, order="F"))


@SETTINGS
@given(data=st.data())
def test_ravel_flatten(data):
    a, x = data.draw(arrays(max_ndim=4, max_side=5))
    check(x.ravel(), a.ravel())
    check(da.ravel(x), a.ravel())
    check(x.flatten(), a.ravel())
    check(x.ravel(order="F"), a.ravel(order="F"))
    check(x.flatten(order="F"), a.flatten(order="F"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLazyWarning)
        check(np.ravel(x), np.ravel(a))
        check(np.reshape(x, -1), np.reshape(a, -1))
        for order in ["F", "A", "K", None, "f"]:
            check(np.ravel(x, order=order), np.ravel(a, order=order))


def test_reshape_keeps_blocks_when_it_can():
    a = np.arange(6 * 5 * 4).reshape(6, 5, 4)
    x = da.from_array(a, chunks=(2, 5, 4))
    y = x.reshape(30, 4)
    assert y.chunks == ((10, 10, 10), (4,))
    # one task per block, no rechunk layer
    assert not any(n.startswith("rechunk") for n in y.layers)
    check(y, a.reshape(30, 4))
    # splitting an axis whose blocks fall on multiples of the split
    z = da.from_array(np.arange(64), chunks=16).reshape(4, 4, 4)
    assert z.chunks == ((1, 1, 1, 1), (4,), (4,))
    check(z, np.arange(64).reshape(4, 4, 4))
    # an uneven split (dask raises here) is still right
    check(x.reshape(4, 5, 6), a.reshape(4, 5, 6))
    # merge_chunks=False: the last merged axis keeps its blocks
    w = da.from_array(a, chunks=(2, 5, 2)).reshape((6, 20), merge_chunks=False)
    assert w.chunks == ((2, 2, 2), (2, 2) * 5)
    check(w, a.reshape(6, 20))


def test_reshape_bad_input():
    x = da.ones((4, 6), chunks=2)
    with pytest.raises(ValueError, match="cannot reshape array of size 24 into shape"):
        x.reshape(5, 5)
    with pytest.raises(ValueError, match="only specify one unknown"):
        x.reshape(-1, -1)
    with pytest.raises(ValueError, match="cannot reshape"):
        x.reshape(-1, 5)
    with pytest.raises(ValueError):
        x.reshape(-2, -12)
    with pytest.raises(TypeError):
        x.reshape(2.5, 4)
    # order='F' is lazy, NumPy's errors for bad orders and shapes
    a = np.arange(24).reshape(4, 6)
    z = da.from_array(a, chunks=(3, 4))
    r = np.reshape(z, (3, 8), order="F")
    assert isinstance(r, da.Array)
    check(r, a.reshape((3, 8), order="F"))
    check(z.reshape(2, 3, 4, order="F"), a.reshape(2, 3, 4, order="F"))
    for order, err in [("K", ValueError), ("X", ValueError), (3, TypeError)]:
        with pytest.raises(err):
            a.reshape(24, order=order)
        with pytest.raises(err):
            z.reshape(24, order=order)
    with pytest.raises(ValueError):
        np.ravel(a, order="X")
    with pytest.raises(ValueError):
        z.ravel(order="X")
    with pytest.raises(ValueError, match=r"cannot reshape array of size 24 into shape \(7, 5\)"):
        z.reshape(7, 5, order="F")
    y = x[x > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        y.reshape(4, 6)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.ravel(da.stack([y, y]))
    y.compute_chunk_sizes()
    check(y.reshape(4, 6), np.ones((4, 6)))


@SETTINGS
@given(data=st.data())
def test_transpose_swapaxes_squeeze_moveaxis(data):
    a, x = data.draw(arrays(max_ndim=4, max_side=4))
    nd = a.ndim
    check(x.T, a.T)
    perm = tuple(data.draw(st.permutations(range(nd))))
    check(x.transpose(perm), a.transpose(perm))
    check(np.transpose(x, perm), np.transpose(a, perm))
    check(da.transpose(x), np.transpose(a))
    if nd:
        i = data.draw(st.integers(-nd, nd - 1))
        j = data.draw(st.integers(-nd, nd - 1))
        check(x.swapaxes(i, j), a.swapaxes(i, j))
        check(da.swapaxes(x, i, j), np.swapaxes(a, i, j))
        check(np.moveaxis(x, i, j), np.moveaxis(a, i, j))
        k = data.draw(st.integers(1, nd))
        src = data.draw(st.permutations(range(nd)))[:k]
        dst = data.draw(st.permutations(range(-nd, 0)))[:k]
        if len({d % nd for d in dst}) == k:
            check(da.moveaxis(x, src, dst), np.moveaxis(a, src, dst))
        start = data.draw(st.integers(-nd, nd))
        check(da.rollaxis(x, i, start), np.rollaxis(a, i, start))
    check(x.squeeze(), a.squeeze())
    check(np.squeeze(x), np.squeeze(a))
    ones = tuple(d for d in range(nd) if a.shape[d] == 1)
    if ones:
        check(x.squeeze(axis=ones[-1]), a.squeeze(axis=ones[-1]))


def test_axis_errors():
    x = da.ones((2, 3), chunks=1)
    a = np.ones((2, 3))
    AxisError = np.exceptions.AxisError
    for f in (lambda m: np.moveaxis(m, 2, 0), lambda m: np.moveaxis(m, 0, -3),
              lambda m: np.swapaxes(m, 0, 2), lambda m: np.expand_dims(m, 3),
              lambda m: np.flip(m, 2), lambda m: np.roll(m, 1, 2),
              lambda m: np.rollaxis(m, 2), lambda m: np.squeeze(m, 0)):
        with pytest.raises((AxisError, ValueError)) as e_np:
            f(a)
        with pytest.raises(type(e_np.value)):
            f(x)
    with pytest.raises(ValueError, match="repeated axis"):
        da.moveaxis(x, [0, 0], [0, 1])
    with pytest.raises(ValueError, match="same number"):
        da.moveaxis(x, [0, 1], [0])
    with pytest.raises(ValueError, match="repeated axis"):
        da.expand_dims(x, (0, 0))
    with pytest.raises(ValueError):
        da.flipud(da.ones(()))
    with pytest.raises(ValueError):
        da.fliplr(da.ones(3))


@SETTINGS
@given(data=st.data())
def test_expand_dims(data):
    a, x = data.draw(arrays(max_ndim=3, max_side=4))
    k = data.draw(st.integers(1, 2))
    nd = a.ndim + k
    axes = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=k, max_size=k,
                              unique_by=lambda v: v % nd))
    check(da.expand_dims(x, tuple(axes)), np.expand_dims(a, tuple(axes)))
    one = data.draw(st.integers(-a.ndim - 1, a.ndim))
    check(np.expand_dims(x, one), np.expand_dims(a, one))


@SETTINGS
@given(data=st.data())
def test_broadcast_to(data):
    a, x = data.draw(arrays(max_ndim=3, max_side=4))
    lead = tuple(data.draw(st.lists(st.integers(0, 3), max_size=2)))
    shape = lead + tuple(data.draw(st.integers(0, 3)) if s == 1 else s for s in a.shape)
    r = da.broadcast_to(x, shape)
    check(r, np.broadcast_to(a, shape))
    check(np.broadcast_to(x, shape), np.broadcast_to(a, shape))
    # and the result is usable downstream (read-only views are fine)
    check(r + 1, np.broadcast_to(a, shape) + 1) if a.dtype != bool else None
    if all(s > 0 for s in shape):
        ch = tuple(data.draw(st.integers(1, s)) for s in shape)
        check(da.broadcast_to(x, shape, chunks=ch), np.broadcast_to(a, shape))


def test_broadcast_to_bad():
    x = da.ones((2, 3), chunks=1)
    with pytest.raises(ValueError):
        np.broadcast_to(np.ones((2, 3)), (3, 3))
    with pytest.raises(ValueError, match="could not be broadcast"):
        da.broadcast_to(x, (3, 3))
    with pytest.raises(ValueError):
        da.broadcast_to(x, (3,))
    with pytest.raises(ValueError):
        da.broadcast_to(x, (-1, 3))
    y = x[x > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.broadcast_to(y, (2, 6))


@SETTINGS
@given(data=st.data())
def test_flip(data):
    a, x = data.draw(arrays(max_ndim=3, max_side=5))
    check(da.flip(x), np.flip(a))
    check(np.flip(x), np.flip(a))
    if a.ndim:
        ax = data.draw(st.integers(-a.ndim, a.ndim - 1))
        check(np.flip(x, ax), np.flip(a, ax))
        check(np.flipud(x), np.flipud(a))
        check(da.flip(x, (0, ax) if ax % a.ndim else 0), np.flip(a, (0, ax) if ax % a.ndim
                                                               else 0))
    if a.ndim >= 2:
        check(da.fliplr(x), np.fliplr(a))


@SETTINGS
@given(data=st.data())
def test_roll(data):
    a, x = data.draw(arrays(max_ndim=3, max_side=5))
    s = data.draw(st.integers(-12, 12))
    check(da.roll(x, s), np.roll(a, s))
    check(np.roll(x, s), np.roll(a, s))
    if a.ndim:
        ax = data.draw(st.integers(-a.ndim, a.ndim - 1))
        check(np.roll(x, s, axis=ax), np.roll(a, s, axis=ax))
        axes = tuple(data.draw(st.lists(st.integers(0, a.ndim - 1), min_size=1, max_size=3)))
        shifts = tuple(data.draw(st.lists(st.integers(-7, 7), min_size=len(axes),
                                          max_size=len(axes))))
        check(da.roll(x, shifts, axes), np.roll(a, shifts, axes))
        check(da.roll(x, s, axes), np.roll(a, s, axes))


def test_roll_array_shifts_and_downstream_ufuncs():
    a = np.random.default_rng(0).standard_normal((7, 9))
    x = da.from_array(a, chunks=(3, 4))
    check(da.roll(x, np.array([1, -2]), np.array([0, 1])),
          np.roll(a, np.array([1, -2]), np.array([0, 1])))
    # results of these feed C kernels as views (negative or zero strides); NumPy's
    # own exp/sin differ by layout in the last bit, so compare with contiguous input
    c = np.ascontiguousarray
    check(np.exp(da.flip(x)) * 2, np.exp(c(np.flip(a))) * 2)
    check(np.sin(da.broadcast_to(x[:1], (4, 7, 9))), np.sin(c(np.broadcast_to(a[:1], (4, 7, 9)))))
    check(np.sin(da.moveaxis(x, 0, 1)), np.sin(c(a.T)))


def test_roll_bad():
    x = da.ones((4, 4), chunks=2)
    with pytest.raises(ValueError):
        np.roll(np.ones((4, 4)), (1, 2), (0, 1, 1))
    with pytest.raises(ValueError):
        da.roll(x, (1, 2), (0, 1, 1))
    with pytest.raises(TypeError):
        da.roll(x, 1.5, 0)


def test_methods_and_exports():
    import cdask.array as dca

    for name in ("reshape", "ravel", "moveaxis", "rollaxis", "expand_dims", "broadcast_to",
                 "flip", "flipud", "fliplr", "roll", "transpose", "swapaxes", "squeeze"):
        assert callable(getattr(da, name)), name
        assert getattr(dca, name) is getattr(da, name)
        assert name in da.__all__
    for name in ("reshape", "ravel", "flatten", "transpose", "swapaxes", "squeeze", "T"):
        assert hasattr(da.Array, name)
    # lazy through NumPy without a warning
    x = da.ones((2, 3, 4), chunks=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLazyWarning)
        for r in (np.reshape(x, (4, 6)), np.moveaxis(x, 0, -1), np.expand_dims(x, 0),
                  np.broadcast_to(x, (2, 2, 3, 4)), np.flip(x), np.flipud(x), np.fliplr(x),
                  np.roll(x, 1), np.rollaxis(x, 2), np.transpose(x)):
            assert isinstance(r, da.Array)
    assert math.prod(x.reshape(-1).shape) == 24


def test_transpose_bad_axes():
    x = da.ones((2, 3), chunks=1)
    a = np.ones((2, 3))
    for axes in ((0, 5), (0, -3), (0, 0), (1,), (0, 1, 2)):
        with pytest.raises((ValueError, np.exceptions.AxisError)) as e_np:
            a.transpose(axes)
        with pytest.raises(type(e_np.value)):
            x.transpose(axes)
        with pytest.raises(type(e_np.value)):
            np.transpose(x, axes)


def test_reshape_limit_bounds_merged_blocks():
    a = np.arange(40 * 50, dtype=np.float64).reshape(40, 50)
    x = da.from_array(a, chunks=(10, 10))        # blocks of 100 elements
    r = x.reshape(-1, limit=1600)                 # 200 elements at most
    assert max(r.chunks[0]) <= 200 and all(c % 50 == 0 for c in r.chunks[0])
    check(r, a.ravel())
    # without a limit the configured chunk size applies: one row band per input band
    check(x.reshape(-1), a.ravel())
    assert x.reshape(-1).chunks == ((500,) * 4,)
    # never cut below the input's own block size (100 elements here) nor one
    # unit of the run (a whole row)
    r = x.reshape(2000, limit=8)
    assert r.chunks == ((100,) * 20,)
    r = da.from_array(a, chunks=(1, 10)).reshape(2000, limit=8)
    assert r.chunks == ((50,) * 40,)
    check(r, a.ravel())
    r = x.reshape((20, 100), limit=800)
    check(r, a.reshape(20, 100))
    assert max(r.chunks[0]) * 100 <= 200


@SETTINGS
@given(data=st.data())
def test_broadcast_arrays(data):
    a, x = data.draw(arrays(max_ndim=3, max_side=4))
    shape = tuple(1 if data.draw(st.booleans()) else s for s in a.shape)
    b = sample(shape[data.draw(st.integers(0, len(shape))):], np.int32, 5)
    y = da.from_array(b, chunks=chunkings(data.draw, st, b.shape))
    got = da.broadcast_arrays(x, y)
    want = np.broadcast_arrays(a, b)
    assert len(got) == 2
    for g, w in zip(got, want):
        check(g, w)
    assert got[0].chunks == got[1].chunks
    for g, w in zip(np.broadcast_arrays(x, y), want):
        check(g, w)
    with pytest.raises(ValueError):
        da.broadcast_arrays(da.ones(3), da.ones(4))
