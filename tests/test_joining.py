"""Joining and scans against NumPy: concatenate (axis=None too), stack,
hstack, vstack, dstack, block, atleast_*d, cumsum/cumprod (axis, dtype,
axis=None), diff (n, axis, prepend/append) (issue 5)."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import cdask as da
from cdask.array.routines import NotLazyWarning

from blockcheck import DTYPES, check, chunkings, sample

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _arr(data, shape, dtype=None):
    dtype = dtype or data.draw(st.sampled_from(DTYPES))
    a = sample(shape, dtype, data.draw(st.integers(0, 2**16)))
    return a, da.from_array(a, chunks=chunkings(data.draw, st, shape))


def _shape(data, min_ndim=1, max_ndim=3, max_side=5):
    nd = data.draw(st.integers(min_ndim, max_ndim))
    return tuple(data.draw(st.integers(0, max_side)) for _ in range(nd))


@SETTINGS
@given(data=st.data())
def test_concatenate(data):
    shape = _shape(data)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = data.draw(st.integers(1, 4))
    nps, cds = [], []
    for _ in range(n):
        s = list(shape)
        s[axis] = data.draw(st.integers(0, 4))
        a, x = _arr(data, tuple(s))
        nps.append(a)
        cds.append(x)
    check(da.concatenate(cds, axis=axis), np.concatenate(nps, axis=axis))
    check(np.concatenate(cds, axis=axis), np.concatenate(nps, axis=axis))
    # NumPy arrays mixed in
    mixed = [nps[0]] + cds[1:]
    check(da.concatenate(mixed, axis=axis), np.concatenate(nps, axis=axis))
    check(da.concatenate(cds, axis=None), np.concatenate(nps, axis=None))


@SETTINGS
@given(data=st.data())
def test_stack_family(data):
    shape = _shape(data, min_ndim=0)
    n = data.draw(st.integers(1, 3))
    dt = data.draw(st.sampled_from(DTYPES))
    pairs = [_arr(data, shape, dt if data.draw(st.booleans()) else None) for _ in range(n)]
    nps = [p[0] for p in pairs]
    cds = [p[1] for p in pairs]
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check(da.stack(cds, axis=axis), np.stack(nps, axis=axis))
    check(np.stack(cds, axis=axis), np.stack(nps, axis=axis))
    check(da.hstack(cds), np.hstack(nps))
    check(np.vstack(cds), np.vstack(nps))
    check(da.dstack(cds), np.dstack(nps))
    for f in ("atleast_1d", "atleast_2d", "atleast_3d"):
        check(getattr(da, f)(cds[0]), getattr(np, f)(nps[0]))
        check(getattr(np, f)(cds[0]), getattr(np, f)(nps[0]))


def test_stack_dtype_and_casting():
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    x = da.from_array(a, chunks=1)
    check(np.concatenate([x, x], dtype=np.float32, casting="unsafe"),
          np.concatenate([a, a], dtype=np.float32, casting="unsafe"))
    check(np.stack([x, x], dtype=np.float64), np.stack([a, a], dtype=np.float64))
    with pytest.raises(TypeError):
        np.concatenate([a, a], dtype=np.int8, casting="safe")
    with pytest.raises(TypeError):
        np.concatenate([x, x], dtype=np.int8, casting="safe")
    # mixed dtypes promote as NumPy does
    b = np.ones((2, 3), np.uint8)
    check(da.concatenate([x.astype(np.int8), da.from_array(b)]),
          np.concatenate([a.astype(np.int8), b]))
    check(da.concatenate([da.from_array(b > 0), x]), np.concatenate([b > 0, a]))


def test_joining_bad_input():
    x = da.ones((2, 3), chunks=1)
    y = da.ones((3, 3), chunks=2)
    with pytest.raises(ValueError, match="need at least one array"):
        da.concatenate([])
    with pytest.raises(ValueError, match="zero-dimensional"):
        da.concatenate([da.ones(()), da.ones(())])
    with pytest.raises(ValueError, match="same number of dimensions"):
        da.concatenate([x, da.ones(3)])
    with pytest.raises(ValueError, match="along dimension 0"):
        da.concatenate([x, y], axis=1)
    with pytest.raises(np.exceptions.AxisError):
        da.concatenate([x, x], axis=2)
    with pytest.raises(ValueError, match="same shape"):
        da.stack([x, y])
    with pytest.raises(ValueError):
        da.stack([])
    for bad, exc in (([], ValueError), ([[x], x], ValueError), ((x, x), TypeError),
                     ([[x], []], ValueError)):
        with pytest.raises(exc):
            np.block(_np_like(bad))
        with pytest.raises(exc):
            da.block(bad)
    # unknown chunk sizes: fine along the joined axis, not across it
    m = x[x > 0]
    np.testing.assert_array_equal(da.concatenate([m, m]).compute(), np.ones(12))
    mm = da.stack([m, m])     # (2, nan)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        m2 = da.ones(6, chunks=3)
        da.concatenate([mm, da.stack([m2[m2 > 0]] * 2)], axis=0)


def _np_like(obj):
    if isinstance(obj, list):
        return [_np_like(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_np_like(o) for o in obj)
    return np.asarray(obj)


@SETTINGS
@given(data=st.data())
def test_block(data):
    depth = data.draw(st.integers(1, 3))
    nd = data.draw(st.integers(depth, 3))
    # a grid of pieces: sizes per level axis, other axes shared
    grid = [data.draw(st.integers(1, 3)) for _ in range(depth)]
    sizes = [[data.draw(st.integers(0, 3)) for _ in range(g)] for g in grid]
    common = [data.draw(st.integers(0, 3)) for _ in range(nd - depth)]
    dt = data.draw(st.sampled_from(DTYPES))

    def build(level, idx):
        if level == depth:
            shape = tuple(common) + tuple(sizes[k][idx[k]] for k in range(depth))
            a, x = _arr(data, shape, dt)
            # sometimes a lower-dimensional piece (NumPy prepends 1s)
            if shape and shape[0] == 1 and data.draw(st.booleans()):
                return a[0], x[0]
            return a, x
        parts = [build(level + 1, idx + (j,)) for j in range(grid[level])]
        return [p[0] for p in parts], [p[1] for p in parts]

    n, c = build(0, ())
    check(da.block(c), np.block(n))
    check(np.block(c), np.block(n))


def test_block_scalars_and_mixed():
    a = np.arange(4.0).reshape(2, 2)
    x = da.from_array(a, chunks=1)
    check(da.block([[x, a], [np.zeros((1, 2)), np.ones((1, 2))]]),
          np.block([[a, a], [np.zeros((1, 2)), np.ones((1, 2))]]))
    check(da.block([1, 2, x[0]]), np.block([1, 2, a[0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(da.block(x), np.block(a))
        check(da.block(3.0), np.block(3.0))


# ---------------------------------------------------------------------------
# scans
# ---------------------------------------------------------------------------
@SETTINGS
@given(data=st.data())
def test_cumsum_cumprod(data):
    shape = _shape(data, min_ndim=0, max_side=6)
    a, x = _arr(data, shape)
    if a.dtype.kind == "f" or a.dtype.kind == "c":
        a = (a / 2 + 1).astype(a.dtype)   # products stay moderate
        x = da.from_array(a, chunks=x.chunks)
    axis = data.draw(st.one_of(st.none(), st.integers(-a.ndim, a.ndim - 1) if a.ndim
                               else st.none()))
    dtype = data.draw(st.sampled_from([None, np.float64, np.int64, np.complex128]))
    if dtype is not None and np.dtype(dtype).kind == "i" and a.dtype.kind in "fc":
        dtype = None
    for name in ("cumsum", "cumprod"):
        e = getattr(np, name)(a, axis=axis, dtype=dtype)
        exact = e.dtype.kind not in "fc"
        kw = dict(exact=exact, rtol=1e-5 if e.dtype in (np.float32, np.complex64) else 1e-12,
                  atol=1e-5)
        check(getattr(da, name)(x, axis=axis, dtype=dtype), e, **kw)
        check(getattr(x, name)(axis=axis, dtype=dtype), e, **kw)
        check(getattr(np, name)(x, axis=axis, dtype=dtype), e, **kw)
    if a.dtype.kind == "f":
        b = a.copy()
        b.flat[::3] = np.nan
        y = da.from_array(b, chunks=x.chunks)
        for name in ("nancumsum", "nancumprod"):
            check(getattr(np, name)(y, axis=axis), getattr(np, name)(b, axis=axis),
                  exact=False, rtol=1e-5, atol=1e-5)


def test_cumsum_int_overflow_wraps_like_numpy():
    a = np.full(10, 2**62, dtype=np.int64)
    x = da.from_array(a, chunks=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(da.cumsum(x), np.cumsum(a))
        check(da.cumprod(da.from_array(np.arange(1, 40), chunks=7)), np.cumprod(np.arange(1, 40)))


def test_scan_bad_input():
    x = da.ones((2, 3), chunks=1)
    with pytest.raises(np.exceptions.AxisError):
        da.cumsum(x, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        x.cumprod(axis=-3)


# ---------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------
@SETTINGS
@given(data=st.data())
def test_diff(data):
    shape = _shape(data, min_ndim=1, max_side=6)
    a, x = _arr(data, shape)
    n = data.draw(st.integers(0, 4))
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    check(da.diff(x, n, axis), np.diff(a, n, axis))
    check(np.diff(x, n=n, axis=axis), np.diff(a, n=n, axis=axis))
    edge = data.draw(st.sampled_from(["scalar", "array", "none"]))
    if edge == "scalar":
        pre, app = a.dtype.type(1), a.dtype.type(0)
    elif edge == "array":
        s = list(a.shape)
        s[axis] = data.draw(st.integers(0, 2))
        pre = sample(tuple(s), a.dtype, 1)
        app = sample(tuple(s), a.dtype, 2)
    else:
        pre = app = np._NoValue
    check(da.diff(x, n, axis, prepend=pre, append=app),
          np.diff(a, n, axis, prepend=pre, append=app))
    check(da.diff(x, n, axis, prepend=pre), np.diff(a, n, axis, prepend=pre))


def test_diff_bad_input():
    x = da.ones((2, 3), chunks=1)
    with pytest.raises(ValueError, match="non-negative"):
        da.diff(x, -1)
    with pytest.raises(ValueError, match="at least one dimensional"):
        da.diff(da.ones(()))
    with pytest.raises(np.exceptions.AxisError):
        da.diff(x, axis=2)


def test_exports_and_laziness():
    import cdask.array as dca

    for name in ("concatenate", "stack", "hstack", "vstack", "dstack", "block", "cumsum",
                 "cumprod", "diff", "atleast_1d", "atleast_2d", "atleast_3d"):
        assert getattr(dca, name) is getattr(da, name), name
        assert name in da.__all__
    x = da.ones((4, 3), chunks=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLazyWarning)
        for r in (np.concatenate([x, x]), np.stack([x, x]), np.hstack([x, x]),
                  np.vstack([x, x]), np.dstack([x, x]), np.block([[x, x]]), np.cumsum(x),
                  np.cumprod(x, axis=1), np.diff(x), np.concatenate([x, x], axis=None)):
            assert isinstance(r, da.Array)
    # concatenating makes no data tasks when dtypes agree: blocks are aliases
    c = da.concatenate([x, x])
    layer = c.layers[c.name]
    assert all(isinstance(v, tuple) and isinstance(v[0], str) for v in layer.values())
