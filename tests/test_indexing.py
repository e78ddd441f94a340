"""Advanced indexing against NumPy: integer arrays (any axis, n-d, negative,
repeated, unsorted), boolean arrays along axes, several arrays with NumPy's
result order, ``vindex``, lazy ``__setitem__``, and slices of memory-mapped
inputs composed into the getter tasks."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from blockcheck import basic_entry, chunkings

import cdask as da
from cdask.array.creation import getter
from cdask.array.slicing import _getitem_block

SETTINGS = settings(max_examples=int(__import__("os").environ.get("CDASK_EXAMPLES", 60)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

DTYPES = ["i8", "f4", "bool", "c16", "u1"]


def _draw_chunks(draw, shape):
    return chunkings(draw, st, shape)


@st.composite
def chunked(draw, min_ndim=1, max_ndim=3, max_side=7):
    nd = draw(st.integers(min_ndim, max_ndim))
    shape = tuple(draw(st.integers(0, max_side)) for _ in range(nd))
    chunks = _draw_chunks(draw, shape)
    dtype = draw(st.sampled_from(DTYPES))
    a = np.asarray(np.arange(int(np.prod(shape)), dtype="i8").reshape(shape) * 7 % 11)
    a = a.astype(dtype)
    return a, chunks


def _int_array(draw, n, ndim=1, allow_oob=False):
    lo, hi = (-n - 2, n + 1) if allow_oob else (-n, n - 1)
    if n == 0 and not allow_oob:
        size = 0
    else:
        size = draw(st.integers(0, 5))
    shape = (size,) if ndim == 1 else (draw(st.integers(0, 3)), draw(st.integers(1, 3)))
    cnt = int(np.prod(shape))
    if n == 0 and not allow_oob:
        shape, cnt = (0,) * ndim, 0
    vals = [draw(st.integers(lo, hi)) for _ in range(cnt)]
    arr = np.array(vals, dtype=draw(st.sampled_from(["i8", "i4", "u2"])) if
                   all(v >= 0 for v in vals) else np.int64).reshape(shape)
    return arr.tolist() if ndim == 1 and draw(st.booleans()) else arr


@st.composite
def fancy_index(draw, shape, max_arrays=3, allow_oob=False):
    idx = []
    n_arr = 0
    for s in shape:
        kinds = ["slice", "full", "int", "none"]
        if n_arr < max_arrays:
            kinds += ["arr", "arr", "arr2d", "bool"]
        kind = draw(st.sampled_from(kinds))
        if kind == "int" and s > 0:
            idx.append(draw(st.integers(-s, s - 1)))
        elif kind == "arr" or (kind == "int" and s == 0):
            idx.append(_int_array(draw, s, 1, allow_oob))
            n_arr += 1
        elif kind == "arr2d":
            idx.append(_int_array(draw, s, 2, allow_oob))
            n_arr += 1
        elif kind == "bool":
            idx.append(np.array(draw(st.lists(st.booleans(), min_size=s, max_size=s)),
                                dtype=bool))
            n_arr += 1
        else:
            basic_entry(draw, st, kind, s, idx)
    if idx and draw(st.booleans()):
        # drop trailing entries, maybe through an Ellipsis
        k = draw(st.integers(0, len(idx)))
        idx = idx[:k] + ([Ellipsis] if draw(st.booleans()) else [])
    return tuple(idx)


def _numpy(a, idx):
    try:
        return a[idx], None
    except (IndexError, ValueError) as e:
        return None, type(e)


@SETTINGS
@given(chunked(), st.data())
def test_fancy_indexing_vs_numpy(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    idx = data.draw(fancy_index(a.shape))
    expect, err = _numpy(a, idx)
    if err is not None:
        with pytest.raises(err):
            x[idx]
        return
    y = x[idx]
    assert y.shape == expect.shape or any(np.isnan(s) for s in y.shape)
    got = y.compute()
    assert got.dtype == expect.dtype
    assert got.shape == expect.shape
    assert np.array_equal(got, expect)


@SETTINGS
@given(chunked(), st.data())
def test_out_of_range_integer_arrays(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    idx = data.draw(fancy_index(a.shape, allow_oob=True))
    expect, err = _numpy(a, idx)
    if err is not None:
        with pytest.raises(err):
            x[idx]
    else:
        assert np.array_equal(x[idx].compute(), expect)


def test_one_array_keeps_numpy_order():
    a = np.arange(6 * 7 * 5).reshape(6, 7, 5)
    x = da.from_array(a, chunks=(4, 3, 2))
    for idx in [(0, slice(None), [1, 2]), (slice(None), 0, [4, -1, 0]),
                ([0, 1], None, [1, 2]), ([[1, 2], [0, 0]], 2), (np.array(1), slice(None), [1]),
                (slice(1, None, 2), [6, 0, 6, 3], slice(None, None, -1)),
                (Ellipsis, [-5, 4, 4]), ([5, 0], slice(None), [[1], [3]])]:
        assert x[idx].shape == a[idx].shape, idx
        assert np.array_equal(x[idx].compute(), a[idx]), idx


def test_only_touched_blocks_are_read():
    a = np.arange(40 * 12).reshape(40, 12)
    seen = []

    class Recorder:
        shape, dtype, ndim = a.shape, a.dtype, 2

        def __getitem__(self, sl):
            seen.append(sl)
            return a[sl]

    x = da.from_array(Recorder(), chunks=(5, 4))
    y = x[[33, 2, 2, -1], 5:7]
    assert np.array_equal(y.compute(), a[[33, 2, 2, -1], 5:7])
    # only row blocks 0, 6, 7, and only columns 5:7 (the slice is composed
    # into the getter tasks)
    assert {(s[0].start, s[1].start, s[1].stop) for s in seen} == \
        {(0, 5, 7), (30, 5, 7), (35, 5, 7)}
    # array-likes other than NumPy's get increasing slices only (h5py takes no
    # negative steps): a reversed slice reads the block's range, then flips it
    seen.clear()
    r = x[12:3:-2, ::-1]
    assert np.array_equal(r.compute(), a[12:3:-2, ::-1])
    assert all(s_.step is None or s_.step > 0 for sl in seen for s_ in sl)
    seen.clear()
    v = x.vindex[[1, 39], [0, 11]]
    assert np.array_equal(v.compute(), a[[1, 39], [0, 11]])
    assert {(s[0].start, s[1].start) for s in seen} == {(0, 0), (35, 8)}


def test_boolean_cdask_array_along_an_axis():
    a = np.arange(4 * 9).reshape(4, 9)
    m = np.array([True, False, True, True, False, False, True, False, True])
    x = da.from_array(a, chunks=(3, 4))
    dm = da.from_array(m, chunks=5)
    y = x[:, dm]
    assert np.isnan(y.shape[1]) and y.shape[0] == 4
    assert np.array_equal(y.compute(), a[:, m])
    assert np.array_equal(x[1:3, dm].compute(), a[1:3, m])
    assert np.array_equal(x[2, dm].compute(), a[2, m])
    # NumPy bool arrays along one axis have known sizes
    assert x[:, m].shape == a[:, m].shape
    assert np.array_equal(x[::-1, m].compute(), a[::-1, m])
    with pytest.raises(IndexError):
        x[:, m[:5]]
    with pytest.raises(IndexError):
        x[:, da.from_array(m[:5], chunks=2)]


@st.composite
def vindex_case(draw):
    a, chunks = draw(chunked(min_ndim=1))
    shape = a.shape
    nd = len(shape)
    k = draw(st.integers(1, nd))
    axes = sorted(draw(st.permutations(range(nd)))[:k])
    bshape = draw(st.sampled_from([(), (0,), (3,), (2, 2), (1, 3)]))
    idx = []
    arrays = {}
    for d in range(nd):
        if d in axes and shape[d] > 0:
            shp = bshape if draw(st.booleans()) else bshape[len(bshape) // 2:]
            arr = np.array([draw(st.integers(-shape[d], shape[d] - 1))
                            for _ in range(int(np.prod(shp)))], dtype=np.int64).reshape(shp)
            if arr.ndim == 0 and draw(st.booleans()):
                arr = int(arr)
            idx.append(arr)
            arrays[d] = arr
        else:
            b = st.one_of(st.none(), st.integers(-shape[d] - 1, shape[d] + 1))
            step = draw(st.one_of(st.none(), st.integers(-2, 2).filter(lambda v: v != 0)))
            idx.append(slice(draw(b), draw(b), step))
    return a, chunks, tuple(idx), arrays


@SETTINGS
@given(vindex_case())
def test_vindex_vs_numpy(case):
    a, chunks, idx, arrays = case
    x = da.from_array(a, chunks=chunks)
    adv = sorted(arrays)
    rest = [d for d in range(a.ndim) if d not in arrays]
    # NumPy reference: advanced axes moved to the front are adjacent, so their
    # broadcast dims come first, the sliced axes after, in order
    t = np.transpose(a, adv + rest)
    ref_idx = tuple(arrays[d] for d in adv) + tuple(idx[d] for d in rest)
    if not arrays:
        expect = a[idx]
    else:
        expect = t[ref_idx]
    y = x.vindex[idx]
    assert y.shape == expect.shape
    got = y.compute()
    assert got.dtype == expect.dtype
    assert np.array_equal(got, expect)


def test_vindex_examples_and_errors():
    a = np.arange(5 * 6 * 7).reshape(5, 6, 7)
    x = da.from_array(a, chunks=(2, 4, 3))
    assert np.array_equal(x.vindex[[0, 4, 4], [5, 0, 5]].compute(), a[[0, 4, 4], [5, 0, 5]])
    # non-adjacent arrays: broadcast dims first, sliced axes after (as NumPy here)
    assert np.array_equal(x.vindex[[1, 2], :, [6, 0]].compute(), a[[1, 2], :, [6, 0]])
    # adjacent arrays after a slice: vindex still puts the points first
    r = x.vindex[:, [1, 2], [6, 0]]
    assert r.shape == (2, 5)
    assert np.array_equal(r.compute(), a[:, [1, 2], [6, 0]].T)
    assert np.array_equal(x.vindex[[[0], [3]], 2, [1, 2, 3]].compute(),
                          a[[[0], [3]], 2, [1, 2, 3]])
    assert np.array_equal(x.vindex[np.array([True, False, True, False, False])].compute(),
                          a[[0, 2]])
    with pytest.raises(IndexError):
        x.vindex[[0, 1], [1, 2, 3]]
    with pytest.raises(IndexError):
        x.vindex[[5]]
    with pytest.raises(IndexError):
        x.vindex[[0], None]
    with pytest.raises(IndexError):
        x.vindex[[0.5]]
    with pytest.raises(IndexError):
        x.vindex[[0], [0], [0], [0]]


def test_fancy_indexing_errors_match_numpy():
    a = np.arange(24).reshape(4, 6)
    x = da.from_array(a, chunks=3)
    for idx in [([4],), ([-5],), (slice(None), [6]), ([0.0],), (np.array([1.5]),),
                ([0, 1], [1, 2, 3]), ([True, False],), (slice(None), np.ones(5, bool)),
                ([0], [0], [0]), ("a",), ([[0, 1, 2]], [[0, 1]])]:
        with pytest.raises(IndexError):
            a[idx]
        with pytest.raises(IndexError):
            x[idx]
    with pytest.raises(IndexError):
        x[da.from_array(np.array([1.0, 2.0]))]
    # several integer cdask Arrays broadcast together, as NumPy (dask refuses them)
    i = da.from_array(np.array([1, 2]))
    np.testing.assert_array_equal(x[i, i].compute(), a[[1, 2], [1, 2]])
    np.testing.assert_array_equal(x[i, [0, 1]].compute(), a[[1, 2], [0, 1]])
    # vindex by one lazy index among slices and ints is a lazy take
    # (test_xarray.py: xarray's idxmax); by two, not yet
    np.testing.assert_array_equal(x.vindex[i].compute(), a[[1, 2]])
    with pytest.raises(NotImplementedError):
        x.vindex[i, i]


@SETTINGS
@given(chunked(), st.data())
def test_integer_cdask_array_index_vs_numpy(ac, data):
    """One integer cdask Array (0-d, 1-d or 2-d, any chunks, negative or out
    of range values) among basic indices: the same as NumPy's result, with
    the index's chunks along its axes; out-of-range values raise IndexError
    when computed."""
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    idx = list(data.draw(fancy_index(a.shape, max_arrays=1,
                                     allow_oob=data.draw(st.booleans()))))
    pos = [k for k, i in enumerate(idx) if isinstance(i, (list, np.ndarray))
           and np.asarray(i).dtype != bool]
    if sum(isinstance(i, (list, np.ndarray)) for i in idx) > len(pos[:1]):
        return      # (an int on an empty axis is drawn as a second array)
    if not pos:
        # an index of only basic entries: add a 0-d cdask index in front
        if not a.shape or len([i for i in idx if i is not None and i is not Ellipsis]) >= a.ndim:
            return
        idx.insert(0, np.array(data.draw(st.integers(-a.shape[0] - 1, a.shape[0]))))
        pos = [0]
    k = pos[0]
    ind = np.asarray(idx[k])
    ind = ind.astype(data.draw(st.sampled_from(["i8", "i4", "i2"]))) if ind.size else ind
    idx[k] = ind
    didx = list(idx)
    didx[k] = da.from_array(ind, chunks=_draw_chunks(data.draw, ind.shape))
    idx, didx = tuple(idx), tuple(didx)
    expect, err = _numpy(a, idx)
    if err is not None:
        with pytest.raises(err):
            x[didx].compute()
        return
    y = x[didx]
    assert y.shape == expect.shape
    got = y.compute()
    assert got.dtype == expect.dtype
    assert np.array_equal(got, expect)
    # the index's chunks are the result's along its axes
    ic = didx[k].chunks
    assert any(y.chunks[j:j + len(ic)] == ic for j in range(y.ndim - len(ic) + 1))


def test_integer_cdask_array_index_examples():
    a = np.arange(6 * 10).reshape(6, 10)
    x = da.from_array(a, chunks=(4, 3))
    i = np.array([3, -1, 0, 9, 9, 2, -10])
    di = da.from_array(i, chunks=4)
    y = x[:, di]
    assert y.chunks == ((4, 2), (4, 3))
    assert np.array_equal(y.compute(), a[:, i])
    assert np.array_equal(x[di % 6].compute(), a[i % 6])     # a lazy index
    i2 = np.array([[1, 2], [3, -4], [0, 0]])
    d2 = da.from_array(i2, chunks=2)
    assert x[:, d2].chunks == ((4, 2), (2, 1), (2,))
    assert np.array_equal(x[:, d2].compute(), a[:, i2])
    assert np.array_equal(x[2, d2].compute(), a[2, i2])
    assert np.array_equal(x[d2, ::-2].compute(), a[i2, ::-2])
    # 0-d: the axis is dropped
    assert np.array_equal(x[da.from_array(np.array(-2))].compute(), a[-2])
    # nothing is computed when indexing; an out-of-range value fails at compute
    bad = da.from_array(np.array([1, 10, 2]), chunks=2)
    y = x[:, bad]
    assert y.shape == (6, 3)
    with pytest.raises(IndexError, match="index 10 is out of bounds for axis 1 with size 10"):
        y.compute()
    with pytest.raises(IndexError, match="axis 1"):
        x[1, da.from_array(np.array([-11]))].compute()
    # an index with unknown (nan) chunk sizes gives unknown sizes along its axis
    m = da.from_array(np.array([5, -1, 7, 12, 3]), chunks=2)
    sel = m[m < 10]
    z = x[:, sel]
    assert np.isnan(z.shape[1])
    assert np.array_equal(z.compute(), a[:, [5, -1, 7, 3]])


def test_integer_cdask_array_index_reads_one_block_per_task():
    """Each task reads at most one block of x: the parts take from one block,
    the scatter only gathers parts."""
    a = np.arange(40 * 3).reshape(40, 3)
    x = da.from_array(a, chunks=(5, 3))
    di = da.from_array(np.array([39, 0, 17, 17, 22]), chunks=2)
    y = x[di]
    from cdask.array.indexing import _take_part, _take_scatter
    layer = y.layers[y.name]
    assert all(t[0] is _take_scatter for t in layer.values())
    parts = [lay for n, lay in y.layers.items() if n.startswith("take-part-")]
    assert len(parts) == 1
    for t in parts[0].values():
        assert t[0] is _take_part and t[1][0] == x.name
    assert np.array_equal(y.compute(), a[[39, 0, 17, 17, 22]])


# ---------------------------------------------------------------------------
# __setitem__

@st.composite
def basic_index(draw, shape):
    idx = []
    for s in shape:
        basic_entry(draw, st, draw(st.sampled_from(["slice", "int", "full", "none"])), s, idx)
    if draw(st.booleans()):
        idx = idx[:draw(st.integers(0, len(idx)))]
    return tuple(idx)


@SETTINGS
@given(chunked(min_ndim=0), st.data())
def test_setitem_basic_vs_numpy(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    x0 = x.name
    idx = data.draw(basic_index(a.shape))
    region = a[idx].shape
    kind = data.draw(st.sampled_from(["scalar", "numpy", "cdask", "bcast"]))
    if kind == "scalar":
        value = a.dtype.type(3)
    else:
        shp = region
        if kind == "bcast":
            shp = tuple(1 if data.draw(st.booleans()) else s for s in region)
            shp = shp[data.draw(st.integers(0, len(shp))):]
        value = (np.arange(int(np.prod(shp))).reshape(shp) + 100).astype(a.dtype)
        if kind == "cdask":
            value = da.from_array(value, chunks=max(1, max(shp, default=1) // 2 or 1))
    b = a.copy()
    b[idx] = value if not isinstance(value, da.Array) else value.compute()
    x[idx] = value
    assert x.name != x0
    got = x.compute()
    assert got.dtype == b.dtype
    assert np.array_equal(got, b)
    # the original data is untouched
    assert np.array_equal(da.from_array(a, chunks=chunks).compute(), a)


@SETTINGS
@given(chunked(), st.data())
def test_setitem_mask_vs_numpy(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=a.size, max_size=a.size)),
                    dtype=bool).reshape(a.shape)
    kind = data.draw(st.sampled_from(["np-scalar", "dask-scalar", "np-1d", "np-one"]))
    b = a.copy()
    if kind == "np-scalar":
        x[mask] = 5
        b[mask] = 5
    elif kind == "dask-scalar":
        m = da.from_array(mask, chunks=1 if a.ndim else ())
        x[m] = 5
        b[mask] = 5
    elif kind == "np-1d":
        v = (np.arange(mask.sum()) * 3).astype(a.dtype)
        x[mask] = v
        b[mask] = v
    else:
        v = np.array([9], dtype=a.dtype)
        x[mask] = v
        b[mask] = v
    assert np.array_equal(x.compute(), b)


def test_setitem_examples():
    a = np.arange(20.0).reshape(4, 5)
    x = da.from_array(a, chunks=(3, 2))
    x[x > 10] = 0
    x[0:2] = da.ones((2, 5), chunks=5)
    x[:, -1] = np.array([7, 8, 9, 10])
    b = a.copy()
    b[b > 10] = 0
    b[0:2] = 1
    b[:, -1] = [7, 8, 9, 10]
    assert np.array_equal(x.compute(), b)
    # a lazy scalar as the value
    x[x < 5] = x.max()
    b[b < 5] = b.max()
    assert np.array_equal(x.compute(), b)
    # untouched blocks are the old ones (aliases), touched ones are copies
    y = da.from_array(a, chunks=(2, 5))
    old = y.name
    y[0, 0] = -1
    layer = y.layers[y.name]
    assert layer[(y.name, 1, 0)] == (old, 1, 0)
    assert a[0, 0] == 0.0
    # integer arrays take float values as NumPy does (truncation)
    z = da.from_array(np.arange(6), chunks=4)
    z[1:3] = np.array([2.7, -1.2])
    zz = np.arange(6)
    zz[1:3] = np.array([2.7, -1.2])
    assert np.array_equal(z.compute(), zz)


def test_setitem_errors_match_numpy():
    a = np.arange(12).reshape(3, 4)
    x = da.from_array(a, chunks=2)
    for idx, value, err in [((3,), 1, IndexError), ((0, 4), 1, IndexError),
                            ((slice(None),), np.ones((2, 4)), ValueError),
                            ((0,), np.ones(3), ValueError),
                            ((0, 0, 0), 1, IndexError),
                            ((np.ones((3, 4), bool),), np.ones(3), ValueError),
                            ((np.ones((3, 3), bool),), 1, IndexError),
                            ((0,), "a", ValueError)]:
        with pytest.raises(err):
            a.copy()[idx] = value
        with pytest.raises(err):
            x[idx] = value
    assert np.array_equal(x.compute(), a)   # failed assignments change nothing
    # as dask: a cdask mask takes scalars only (its count is unknown)
    for v in [np.ones(3), np.ones((3, 4)), da.ones((3, 4))]:
        with pytest.raises(ValueError):
            x[da.from_array(np.ones((3, 4), bool), chunks=2)] = v
    with pytest.raises(IndexError):
        x[da.from_array(np.ones((3, 3), bool), chunks=2)] = 1


# ---------------------------------------------------------------------------
# memory-mapped inputs

def test_slices_of_a_memmap_are_getter_tasks(tmp_path):
    a = np.arange(30 * 20, dtype="f8").reshape(30, 20)
    p = tmp_path / "a.npy"
    np.save(p, a)
    x = da.from_npy(p, chunks=(7, 6))
    mm = x.layers[x.name][(x.name, 0, 0)][1]
    assert isinstance(mm, np.memmap)
    for idx in [(slice(3, 25), slice(2, 9)), (slice(None, None, -3), 4), (5, slice(18, 1, -2)),
                (slice(1, 30, 4), slice(None)), (Ellipsis, slice(0, 0))]:
        y = x[idx]
        tasks = list(y.layers[y.name].values())
        for t in tasks:
            assert t[0] is getter and t[1] is mm, t
            assert t[2] != ()
        # only the getter layer of y: no task of y reads the blocks of x
        assert all(not (isinstance(a_, tuple) and a_ and a_[0] == x.name) for t in tasks
                   for a_ in t[1:])
        assert np.array_equal(y.compute(), a[idx])
        assert np.array_equal(y.compute(fuse=False), a[idx])
    # step-1 slices stay step-1 slices (the fused kernels read these in place)
    y = x[3:25, 2:9]
    for t in y.layers[y.name].values():
        assert all(isinstance(s, slice) and s.step is None for s in t[2])
    # a slice of a slice composes too
    z = x[2:][::2, 1:-1][1:]
    for t in z.layers[z.name].values():
        assert t[0] is getter
    assert np.array_equal(z.compute(), a[2:][::2, 1:-1][1:])
    # newaxis falls back to slicing the block
    w = x[None, 2:4]
    assert any(t[0] is _getitem_block for t in w.layers[w.name].values())
    assert np.array_equal(w.compute(), a[None, 2:4])


def test_slices_of_memmap_from_array(tmp_path):
    a = np.arange(50, dtype="i4")
    mm = np.lib.format.open_memmap(tmp_path / "b.npy", mode="w+", dtype="i4", shape=(50,))
    mm[:] = a
    x = da.from_array(mm, chunks=8)
    y = x[45:3:-7]
    assert all(t[0] is getter for t in y.layers[y.name].values())
    assert np.array_equal(y.compute(), a[45:3:-7])


@SETTINGS
@given(chunked(), st.data())
def test_memmap_indexing_vs_numpy(ac, data):
    """Basic and fancy indices on a memory-mapped .npy (composed getter
    tasks, fused and unfused), chained twice."""
    import tempfile

    a, chunks = ac
    with tempfile.TemporaryDirectory() as d:
        p = d + "/a.npy"
        np.save(p, a)
        x = da.from_npy(p, chunks=chunks)
        idx = data.draw(fancy_index(a.shape, max_arrays=data.draw(st.integers(0, 2))))
        expect, err = _numpy(a, idx)
        if err is not None:
            with pytest.raises(err):
                x[idx]
            return
        y = x[idx]
        if not any(np.isnan(s) for s in y.shape):
            idx2 = data.draw(fancy_index(expect.shape, max_arrays=0))
            e2, err2 = _numpy(expect, idx2)
            if err2 is None:
                y, expect = y[idx2], e2
        for fuse in (True, False):
            got = y.compute(fuse=fuse)
            assert got.dtype == expect.dtype and got.shape == expect.shape
            assert np.array_equal(got, expect)
        del x, y


@SETTINGS
@given(chunked(), st.data())
def test_setitem_fancy_vs_numpy(ac, data):
    """Assignment through integer and boolean arrays (any combination NumPy
    takes; repeated indices: the last value wins as in NumPy)."""
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    idx = data.draw(fancy_index(a.shape, allow_oob=data.draw(st.booleans())))
    b = a.copy()
    try:
        region = a[idx].shape
    except IndexError:
        with pytest.raises(IndexError):
            x[idx] = 1
        return
    kind = data.draw(st.sampled_from(["scalar", "numpy", "cdask", "cdask0d"]))
    if kind == "scalar":
        value = a.dtype.type(1)
    elif kind == "cdask0d":
        value = np.array(4, dtype=a.dtype)
    else:
        shp = tuple(1 if data.draw(st.booleans()) else s for s in region)
        shp = shp[data.draw(st.integers(0, len(shp))):]
        full_mask = (isinstance(idx, tuple) and len(idx) == 1 and isinstance(idx[0], np.ndarray)
                     and idx[0].dtype == bool and idx[0].ndim == a.ndim)
        if region and not full_mask and data.draw(st.booleans()):
            shp = (1,) * data.draw(st.integers(1, 2)) + shp   # NumPy drops these
        value = (np.arange(int(np.prod(shp))).reshape(shp) + 20).astype(a.dtype)
    b[idx] = value
    if kind.startswith("cdask"):
        value = da.from_array(value, chunks=_draw_chunks(data.draw, value.shape))
    x[idx] = value
    got = x.compute()
    assert np.array_equal(got, b)


@SETTINGS
@given(vindex_case(), st.data())
def test_vindex_setitem_vs_numpy(case, data):
    """``x.vindex[idx] = value`` assigns the points ``x.vindex[idx]`` reads:
    the value is laid out as that selection (broadcast index dims first,
    then the sliced axes); NumPy or cdask values, broadcast."""
    a, chunks, idx, arrays = case
    x = da.from_array(a, chunks=chunks)
    region = x.vindex[idx].shape
    shp = tuple(1 if data.draw(st.booleans()) else s for s in region)
    shp = shp[data.draw(st.integers(0, len(shp))):]
    value = (np.arange(int(np.prod(shp))).reshape(shp) + 50).astype(a.dtype)
    # NumPy reference: the same transposed view the vindex read test uses
    b = a.copy()
    adv = sorted(arrays)
    rest = [d for d in range(a.ndim) if d not in arrays]
    t = np.transpose(b, adv + rest)
    if arrays:
        t[tuple(arrays[d] for d in adv) + tuple(idx[d] for d in rest)] = value
    else:
        b[idx] = value
    if data.draw(st.booleans()):
        value = da.from_array(value, chunks=_draw_chunks(data.draw, value.shape))
    x.vindex[idx] = value
    assert np.array_equal(x.compute(), b)


def test_setitem_fancy_examples_and_errors():
    a = np.arange(60).reshape(3, 4, 5)
    for idx, v in [(([0, 2, 0],), 7), ((slice(None), [3, -1, 3]), np.arange(3)[:, None] * 10),
                   ((0, slice(None), [1, 2]), np.array([[1], [2]])),
                   ((slice(None), a[0] % 2 == 0), -1), ((Ellipsis, [0, 1]), 9.7),
                   (([1, 1, 1], [0, 1, 0], [2, 2, 2]), np.array([5, 6, 7])), ([], 3)]:
        x = da.from_array(a, chunks=(2, 3, 2))
        b = a.copy()
        b[idx] = v
        x[idx] = v
        assert np.array_equal(x.compute(), b), idx
    x = da.from_array(a, chunks=2)
    for idx, v, err in [(([3],), 1, IndexError), (([0, 1], [0, 1, 2]), 1, IndexError),
                        (([0, 1],), np.ones(3), ValueError), (([0.5],), 1, IndexError),
                        (([0],), np.nan, ValueError)]:
        with pytest.raises(err):
            a.copy()[idx] = v
        with pytest.raises(err):
            x[idx] = v
    for idx, v, err in [(([0, 1],), da.ones((3, 4, 5)), ValueError),
                        (([0, 1], [0, 1, 2]), da.ones(3), IndexError),
                        ((slice(None), a[0] > 3), da.ones(4), ValueError)]:
        with pytest.raises(err):
            a.copy()[idx] = v.compute()
        with pytest.raises(err):
            x[idx] = v
    with pytest.raises(ValueError):
        x.vindex[[0, 1], 1] = np.ones(3)
    # NumPy drops leading length-1 axes of a value, except for a single element
    with pytest.raises(ValueError):
        a.copy()[0, 1, 2] = np.ones(1)
    with pytest.raises(ValueError):
        x[0, 1, 2] = np.ones(1)
    with pytest.raises(ValueError):
        x[0, 1, np.array(2)] = da.ones(1)
    # ... nor for a mask of the array's shape, which takes 0-d or 1-d values only
    m = a > 50
    for v in [np.ones((1, 9)), da.ones((1, 9))]:
        with pytest.raises(TypeError):
            a.copy()[m] = np.asarray(v)
        with pytest.raises(TypeError):
            x[m] = v
    with pytest.raises(IndexError):
        x.vindex[[0, 1], [1, 2, 3]] = 1
    assert np.array_equal(x.compute(), a)
    # cdask values: lazy (from x itself), 0-d, broadcast, through a NumPy mask
    b = a.copy()
    x[[2, 0]] = x[[0, 1]] * 2
    b[[2, 0]] = b[[0, 1]] * 2
    x[:, [3, 0], 1] = x.sum()
    b[:, [3, 0], 1] = b.sum()
    m = (a % 7 == 0)
    x[m] = da.arange(m.sum(), chunks=3)
    b[m] = np.arange(m.sum())
    x.vindex[[0, 2], :, [4, 1]] = da.from_array(np.arange(8).reshape(2, 4), chunks=1)
    b[[0, 2], :, [4, 1]] = np.arange(8).reshape(2, 4)
    x[..., 1, 2] = np.ones((1, 1, 3))
    b[..., 1, 2] = np.ones((1, 1, 3))
    x[[1], 0] = da.ones((1, 1, 5))
    b[[1], 0] = np.ones((1, 1, 5))
    assert np.array_equal(x.compute(), b)


def test_setitem_points_cdask_value_tasks_hold_one_block():
    """A cdask value assigned through an integer array reaches each touched
    block's task as one block holding that block's values only."""
    from cdask.array.indexing import _set_points_block

    a = np.zeros((30, 4))
    x = da.from_array(a, chunks=(5, 4))
    v = da.from_array(np.arange(40.0).reshape(10, 4), chunks=(3, 2))
    rows = [29, 0, 7, 6, 5, 28, 1, 14, 13, 2]
    x[rows] = v
    tasks = [t for t in x.layers[x.name].values() if isinstance(t, tuple) and
             t[0] is _set_points_block]
    assert len(tasks) == 4                     # blocks 0, 1, 2, 5
    sizes = sorted(len(t[2][0]) for t in tasks)
    assert sizes == [8, 8, 12, 12]          # points (rows x 4 columns) per block
    for t in tasks:
        assert isinstance(t[3], tuple) and isinstance(t[3][0], str)    # a key
    b = a.copy()
    b[rows] = np.arange(40.0).reshape(10, 4)
    assert np.array_equal(x.compute(), b)


@SETTINGS
@given(chunked(), st.data())
def test_getitem_full_mask_in_numpys_order(ac, data):
    # x[m] with m of x's shape lists the selected elements in C order, as
    # NumPy does, whatever the chunks along the trailing axes
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    m = np.array(data.draw(st.lists(st.booleans(), min_size=a.size, max_size=a.size)),
                 dtype=bool).reshape(a.shape)
    want = a[m]
    np.testing.assert_array_equal(x[da.from_array(m, chunks=chunks)].compute(), want)
    np.testing.assert_array_equal(x[m].compute(), want)
    if a.dtype.kind in "iuf":
        np.testing.assert_array_equal(x[x > 5].compute(), a[a > 5])


def test_mask_after_rechunk_of_unknown_rows():
    # rows of unknown sizes, columns rechunked: the mask made from the same
    # array lines up with it (the known bug of a new nan object per rechunk)
    a = np.arange(-20, 20.0).reshape(4, 10)
    x = da.from_array(a, chunks=(2, 5))
    u = x[x[:, 0] > -15]
    b = a[a[:, 0] > -15]
    r = u.rechunk({1: 4})
    assert r.chunks[1] == (4, 4, 2) and r.chunks[0] is u.chunks[0]
    np.testing.assert_array_equal(r.compute(), b)
    np.testing.assert_array_equal(r[u > 0].compute(), b[b > 0])
    np.testing.assert_array_equal(u.rechunk({1: (3, 7)}).T.compute(), b.T)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        u.rechunk({0: 1})


def test_order_free_reductions_of_an_nd_selection_read_blocks_in_place():
    # x[x > 0] of a matrix in 2-d blocks lists its elements in NumPy's
    # order, by bands of blocks; sum, mean, min... do not depend on the
    # order, read the selection block by block and fuse with the mask, so
    # no band is ever put together for them
    from cdask.array.slicing import mask_band
    a = np.random.default_rng(0).standard_normal((60, 70))
    x = da.from_array(a, chunks=(20, 30))
    s, b = x[x > 0], a[a > 0]
    for f in ["sum", "mean", "min", "max", "std", "var", "prod", "any", "all"]:
        r = getattr(s, f)()
        np.testing.assert_allclose(r.compute(), getattr(b, f)(), rtol=1e-12)
        np.testing.assert_allclose(getattr(da, f)(s, axis=0).compute(), getattr(np, f)(b, axis=0),
                                   rtol=1e-12)
        (opt,) = da.optimize(r)
        tasks = dict(opt.__dask_graph__()).values()
        assert not any(type(t) is tuple and t and t[0] is mask_band for t in tasks), f
    # order-dependent results keep NumPy's order
    np.testing.assert_array_equal(s.compute(), b)
    assert int(s.argmax().compute()) == int(b.argmax())
    np.testing.assert_allclose(s.cumsum().compute(), np.cumsum(b))


def test_sorted_dense_index_follows_the_blocks():
    # the days of one month from daily data in 30-day blocks (a groupby's
    # selection): one output block per run within an input block, each read
    # from that one block; a sparse index keeps blocks near the input's size
    import pandas as pd
    t = pd.date_range("1980-01-01", periods=3000, freq="D")
    xn = np.arange(3000 * 4.0).reshape(3000, 4)
    x = da.from_array(xn, chunks=(30, 4))
    idx = np.nonzero(t.month == 2)[0]
    y = x[idx]
    np.testing.assert_array_equal(y.compute(), xn[idx])
    starts = np.concatenate([[0], np.cumsum(y.chunks[0])[:-1]])
    assert all(len(set(idx[s:s + c] // 30)) == 1 for s, c in zip(starts, y.chunks[0]))
    assert max(y.chunks[0]) <= 30 and sum(y.chunks[0]) == len(idx)
    sparse = np.arange(0, 3000, 7)
    z = x[sparse]
    np.testing.assert_array_equal(z.compute(), xn[sparse])
    assert len(z.chunks[0]) < len(sparse) // 20
    back = x[idx[::-1]]                     # not sorted: blocks as before
    np.testing.assert_array_equal(back.compute(), xn[idx[::-1]])
