"""overlap / trim_internal / map_overlap against NumPy windows: every
overlapped block must be exactly the window of ``np.pad`` (reflect ->
'symmetric', periodic -> 'wrap', nearest -> 'edge', constant) around the
block, or the unpadded window for boundary 'none' (issue 5)."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import cdask as da

from blockcheck import DTYPES, check, chunkings, sample

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

_PAD = {"reflect": "symmetric", "periodic": "wrap", "nearest": "edge"}


def _offsets(c):
    return np.concatenate([[0], np.cumsum(c)]).astype(int)


def _pair(d):
    """A depth as (before, after)."""
    return tuple(d) if isinstance(d, (tuple, list)) else (d, d)


def _padded(a, depths, bounds):
    """``a`` padded per axis as the boundary says ('none': not padded)."""
    for ax, (d, b) in enumerate(zip(depths, bounds)):
        if _pair(d) == (0, 0) or b == "none":
            continue
        w = [(0, 0)] * a.ndim
        w[ax] = _pair(d)
        if isinstance(b, str):
            a = np.pad(a, w, mode=_PAD[b])
        else:
            a = np.pad(a, w, mode="constant", constant_values=b)
    return a


def _windows(a, chunks, depths, bounds):
    """Per block index: the expected overlapped block."""
    p = _padded(a, depths, bounds)
    out = {}
    for idx in itertools.product(*[range(len(c)) for c in chunks]):
        sl = []
        for ax, i in enumerate(idx):
            off = _offsets(chunks[ax])
            dl, dr = _pair(depths[ax])
            shift = dl if bounds[ax] != "none" else 0
            lo = off[i] + shift - dl
            hi = off[i + 1] + shift + dr
            lo = max(lo, 0)
            hi = min(hi, p.shape[ax])
            sl.append(slice(lo, hi))
        out[idx] = p[tuple(sl)]
    return out


@st.composite
def cases(draw):
    nd = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    dtype = draw(st.sampled_from(DTYPES))
    a = sample(shape, dtype, draw(st.integers(0, 999)))
    chunks = chunkings(draw, st, shape)
    depths = [draw(st.integers(0, s)) for s in shape]
    # some axes asymmetric: a (before, after) pair
    depths = [(d, draw(st.integers(0, s))) if draw(st.booleans()) else d
              for d, s in zip(depths, shape)]
    b = st.sampled_from(["reflect", "periodic", "nearest", "none", "const"])
    bounds = [draw(b) for _ in shape]
    bounds = [(a.dtype.type(draw(st.integers(0, 1))) if x == "const" else x) for x in bounds]
    return a, chunks, depths, bounds


@SETTINGS
@given(case=cases())
def test_overlap_blocks_are_padded_windows(case):
    a, chunks, depths, bounds = case
    x = da.from_array(a, chunks=chunks)
    y = da.overlap.overlap(x, depth=tuple(depths), boundary=tuple(bounds))
    # which blocks were used: trim gives them back
    t = da.overlap.trim_internal(y, tuple(depths), tuple(bounds))
    inner = t.chunks
    assert all(min(c) >= max(_pair(d)) or len(c) == 1 for c, d in zip(inner, depths))
    want = _windows(a, inner, depths, bounds)
    got = dict(zip([k[1:] for k in y._keys_flat()],
                   da.get(y.__dask_graph__(), y._keys_flat())))
    assert set(got) == set(want)
    for idx, w in want.items():
        np.testing.assert_array_equal(got[idx], w, strict=True)
        assert got[idx].shape == tuple(y.chunks[d][i] for d, i in enumerate(idx))
    check(t, a)


def _stencil(b):
    # a 3-point sum along every axis (roll wraps inside the block; the
    # wrapped edges are what trimming removes)
    r = b.astype(np.float64)
    for ax in range(b.ndim):
        r = r + np.roll(b, 1, axis=ax) + np.roll(b, -1, axis=ax)
    return r


@SETTINGS
@given(case=cases())
def test_map_overlap_matches_numpy(case):
    a, chunks, depths, bounds = case
    if a.dtype.kind == "c":
        return
    # depths of at most 2; symmetric ones at least 1 (the stencil check below)
    depths = [tuple(min(v, 2) for v in d) if isinstance(d, tuple) else max(min(d, 1), 1)
              for d in depths]
    x = da.from_array(a, chunks=chunks)
    r = da.map_overlap(_stencil, x, depth=tuple(depths), boundary=tuple(bounds),
                       dtype=np.float64)
    # NumPy: the same function on each padded window, trimmed
    inner = r.chunks
    win = _windows(a, inner, depths, bounds)
    out = np.empty(a.shape)
    for idx, w in win.items():
        v = _stencil(w)
        sl_out, sl_v = [], []
        for ax, i in enumerate(idx):
            off = _offsets(inner[ax])
            d = _pair(depths[ax])[0]
            lo = d if (i > 0 or bounds[ax] != "none") else 0
            sl_v.append(slice(lo, lo + inner[ax][i]))
            sl_out.append(slice(off[i], off[i + 1]))
        out[tuple(sl_out)] = v[tuple(sl_v)]
    check(r, out)
    # with depth 1 on every axis and a padding boundary, that is the stencil
    # on the padded array
    if all(b != "none" for b in bounds) and all(_pair(d) == (1, 1) for d in depths):
        p = _padded(a, depths, bounds)
        full = _stencil(p)[tuple(slice(1, -1) for _ in a.shape)]
        check(r, full)


def test_map_overlap_examples():
    a = np.arange(8)
    x = da.from_array(a, chunks=4)
    # dask's documented results
    check(da.overlap.overlap(x, 2, "reflect"),
          np.array([1, 0, 0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7, 7, 6]))
    check(da.overlap.overlap(x, 2, "periodic"),
          np.array([6, 7, 0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7, 0, 1]))
    check(da.overlap.overlap(x, 2, "nearest"),
          np.array([0, 0, 0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7, 7, 7]))
    check(da.overlap.overlap(x, 2, "none"), np.array([0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7]))
    check(da.overlap.overlap(x, 2, -1),
          np.array([-1, -1, 0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7, -1, -1]))
    # default boundary is 'none'; trim=False keeps the overlapped blocks
    r = da.map_overlap(lambda b: np.full(b.shape, len(b)), x, depth=1, trim=False)
    check(r, np.full(10, 5))
    r = x.map_overlap(lambda b: np.full(b.shape, len(b)), 1, boundary="periodic")
    check(r, np.full(8, 6))
    # short blocks are merged first
    y = da.from_array(np.arange(5), chunks=(1, 2, 2))
    assert da.overlap.overlap(y, 2, "reflect").chunks == ((7, 6),)
    # dict depth/boundary, several arrays with different chunks, block_id
    z = da.from_array(np.ones((6, 6)), chunks=3)
    w = da.from_array(np.arange(36.0).reshape(6, 6), chunks=2)
    r = da.map_overlap(lambda u, v, block_id=None: u + v, z, w, depth={1: 1},
                       boundary={1: 0})
    check(r, np.ones((6, 6)) + np.arange(36.0).reshape(6, 6))


@SETTINGS
@given(case=cases(), data=st.data())
def test_map_overlap_drop_and_new_axis(case, data):
    """drop_axis / new_axis go to map_blocks; the trim skips those axes (as
    dask): a sum over a dropped axis (no depth there) and a new axis."""
    a, chunks, depths, bounds = case
    if a.dtype.kind == "c":
        return
    a = a.astype(np.int64)
    x = da.from_array(a, chunks=chunks)
    k = data.draw(st.integers(0, a.ndim - 1))
    depths = list(depths)
    depths[k] = 0
    r = da.map_overlap(lambda b: b.sum(axis=k), x, depth=tuple(depths),
                       boundary=tuple(bounds), drop_axis=k, dtype=np.int64)
    check(r, a.sum(axis=k))
    n = data.draw(st.integers(0, a.ndim))
    r = da.map_overlap(lambda b: np.expand_dims(b, n), x, depth=tuple(depths),
                       boundary=tuple(bounds), new_axis=n, dtype=np.int64)
    check(r, np.expand_dims(a, n))


def test_asymmetric_depths():
    """As dask: ``depth={axis: (before, after)}`` or a tuple of pairs; trim
    cuts the same amounts; dask's results for boundary 'none'."""
    a = np.arange(10)
    x = da.from_array(a, chunks=4)
    y = da.overlap.overlap(x, {0: (1, 2)}, "none")
    assert y.chunks == ((6, 7, 3),)
    check(y, np.array([0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9]))
    check(da.overlap.trim_internal(y, {0: (1, 2)}, "none"), a)
    # a one-sided stencil: b[i] - b[i - 1] needs one element before only
    r = x.map_overlap(lambda b: np.diff(b, prepend=b[:1]), depth={0: (1, 0)}, boundary="none")
    check(r, np.diff(a, prepend=a[:1]))
    # a forward window of 3 needs two elements after
    f = np.array([a[i:i + 3].sum() for i in range(10)])
    r = da.map_overlap(lambda b: np.array([b[i:i + 3].sum() for i in range(len(b))]), x,
                       depth=((0, 2),), boundary="none")
    check(r, f)
    # 2-d, a tuple of pairs and ints, several arrays
    A = np.arange(42.0).reshape(6, 7)
    z = da.from_array(A, chunks=(4, 3))
    r = da.map_overlap(lambda u, v: u + v, z, z.rechunk(5), depth=((2, 0), 1))
    check(r, A + A)
    # cdask pads asymmetric edges like np.pad (dask supports 'none' only)
    p = da.overlap.overlap(da.from_array(a, chunks=10), {0: (3, 1)}, "reflect")
    check(p, np.pad(a, (3, 1), mode="symmetric"))


def test_overlap_bad_input():
    x = da.ones((4, 4), chunks=2)
    with pytest.raises(ValueError, match="larger than your array"):
        da.map_overlap(lambda b: b, da.ones(3, chunks=3), depth=4, boundary="reflect")
    with pytest.raises(ValueError, match="boundary must be"):
        da.overlap.overlap(x, 1, "mirror")
    with pytest.raises(TypeError, match="boundary must be"):
        da.overlap.overlap(x, 1, object())
    with pytest.raises(ValueError, match="non-negative"):
        da.overlap.overlap(x, -1, "none")
    with pytest.raises(ValueError, match="entries"):
        da.overlap.overlap(x, (1, 1, 1), "none")
    check(da.map_overlap(lambda b: b, x, depth=1, boundary=np.nan), np.ones((4, 4)))
    with pytest.raises(ValueError):   # NaN does not fit an integer array (NumPy's error)
        da.overlap.overlap(x.astype(int), 1, np.nan)
    with pytest.raises(ValueError, match="pair"):
        da.map_overlap(lambda b: b, x, depth=((1, 2, 3), (1, 1)))
    with pytest.raises(ValueError, match="non-negative"):
        da.map_overlap(lambda b: b, x, depth={0: (1, -1)})
    with pytest.raises(ValueError, match="larger than your array"):
        da.overlap.overlap(x, {1: (0, 5)}, "reflect")
    with pytest.raises(TypeError, match="function first"):
        da.map_overlap(x, lambda b: b, depth=1)
    with pytest.raises(ValueError, match="same shape"):
        da.map_overlap(np.add, x, da.ones((4, 3), chunks=2), depth=1)
    with pytest.raises(ValueError, match="allow_rechunk"):
        da.overlap.overlap(da.ones(6, chunks=(1, 5)), 2, "none", allow_rechunk=False)
    m = x[x > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.map_overlap(lambda b: b, m, depth=1)
    assert "map_overlap" in da.__all__ and da.map_overlap is da.array.map_overlap
