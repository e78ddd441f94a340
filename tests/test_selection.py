"""Selection and rearranging names of issue 15 against NumPy (and dask where
NumPy has no such function): take, compress, extract, select, piecewise,
insert, delete, append, ravel_multi_index, unravel_index (selection.py);
tile, repeat (and Array.repeat), rot90, reshape_blockwise, shuffle (and
Array.shuffle) (rearranging.py); coarsen, push (applying.py).

Shapes and chunkings come from hypothesis (ragged and size-1 blocks, empty
axes); arrays with unknown (nan) chunk sizes are made with a boolean mask.
Values are compared bit for bit (``blockcheck.check`` also checks every
block's shape and dtype); bad arguments must raise NumPy's (or dask's)
exception types.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da
from blockcheck import check, chunkings, sample

EX = settings(max_examples=30, deadline=None)
DTYPES = (np.float64, np.float32, np.int64, np.int8, np.uint16, np.bool_, np.complex64)


@st.composite
def arrays(draw, min_dims=1, max_dims=3, max_side=7, dtypes=DTYPES, min_side=0):
    shape = tuple(draw(st.lists(st.integers(min_side, max_side), min_size=min_dims,
                                max_size=max_dims)))
    chunks = chunkings(draw, st, shape)
    dtype = draw(st.sampled_from(dtypes))
    return sample(shape, dtype, draw(st.integers(0, 2 ** 16))), chunks


def _unknown(a, chunks):
    """``a`` as a cdask Array whose chunk sizes along axis 0 are unknown."""
    x = da.from_array(a, chunks=chunks)
    y = x[da.from_array(np.ones(a.shape[0], bool), chunks=(chunks[0],))]
    assert any(c != c for c in y.chunks[0]) or a.shape[0] == 0
    return y


def _same(got, want):
    """Values, shape and dtype of a result with unknown chunk sizes."""
    got = got.compute()
    np.testing.assert_array_equal(got, want, strict=True)


# ---------------------------------------------------------------------------
# take
# ---------------------------------------------------------------------------
@EX
@given(arrays(), st.data())
def test_take_against_numpy(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = a.shape[axis]
    mode = data.draw(st.sampled_from(["raise", "wrap", "clip"]))
    lo, hi = (-n, n - 1) if mode == "raise" else (-3 * n - 2, 3 * n + 2)
    if n == 0 and mode != "raise":
        ind = np.zeros(0, np.intp)
    elif n == 0:
        ind = np.zeros((0, 2), np.intp)
    else:
        shape = data.draw(st.sampled_from([(), (0,), (4,), (2, 3)]))
        ind = np.asarray(data.draw(st.lists(st.integers(lo, hi), min_size=int(np.prod(shape)),
                                            max_size=int(np.prod(shape)))),
                         dtype=np.intp).reshape(shape)
    check(da.take(x, ind, axis=axis, mode=mode), np.take(a, ind, axis=axis, mode=mode))
    if ind.size:
        check(da.take(x, ind.tolist() if ind.ndim else int(ind), axis=axis, mode=mode),
              np.take(a, ind, axis=axis, mode=mode))
    if ind.ndim:
        di = da.from_array(ind, chunks=max(1, ind.shape[0] // 2) if ind.size else 1)
        check(da.take(x, di, axis=axis, mode=mode), np.take(a, ind, axis=axis, mode=mode))


def test_take_flat_default_axis_and_numpy_input():
    a = np.arange(24.0).reshape(4, 6)
    x = da.from_array(a, chunks=(3, 4))
    check(da.take(x, [5, 0, 23], axis=None), np.take(a, [5, 0, 23]))
    check(da.take(x, [3, 1]), np.take(a, [3, 1], axis=0))     # dask's default axis=0
    check(da.take(a, da.from_array(np.array([[1, 0], [2, 3]])), axis=1),
          np.take(a, [[1, 0], [2, 3]], axis=1))
    # NumPy's casting of the indices: booleans and floats are integers to np.take
    check(da.take(x, np.array([True, False]), axis=1), np.take(a, np.array([True, False]), 1))


def test_take_unknown_chunks():
    a = sample((6, 5), np.float64, 3)
    y = _unknown(a, ((2, 4), (2, 3)))
    _same(da.take(y, [4, 0, 4], axis=1), np.take(a, [4, 0, 4], axis=1))
    with pytest.raises(ValueError, match="unknown"):
        da.take(y, [1], axis=0)


def test_take_errors():
    x = da.from_array(np.arange(6), chunks=4)
    with pytest.raises(IndexError, match="out of bounds"):
        da.take(x, [6])
    with pytest.raises(IndexError):
        da.take(x, da.from_array(np.array([7])), axis=0).compute()
    with pytest.raises(np.exceptions.AxisError):
        da.take(x, [0], axis=1)
    with pytest.raises(ValueError, match="clipmode"):
        da.take(x, [0], mode="nope")
    with pytest.raises(IndexError, match="empty"):
        da.take(da.zeros(0, chunks=1), [0], mode="clip")


def test_take_streams_block_by_block():
    # a take along an axis reads, per output block, only the blocks its
    # indices fall in
    from reference import dependencies

    x = da.arange(10000, chunks=100)
    ind = np.arange(250, 450)
    y = da.take(x, ind)
    check(y, np.arange(10000)[ind])
    dsk = dict(y.__dask_graph__())
    needed = set()
    for k in y._keys_flat():
        deps = dependencies(dsk, k)
        assert len(deps) <= 3, deps
        needed |= deps
    assert needed <= {(x.name, i) for i in (2, 3, 4)}, needed


# ---------------------------------------------------------------------------
# compress, extract
# ---------------------------------------------------------------------------
@EX
@given(arrays(), st.data())
def test_compress_and_extract(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.sampled_from([None] + list(range(-a.ndim, a.ndim))))
    n = a.size if axis is None else a.shape[axis]
    m = data.draw(st.integers(0, n))
    cond = np.asarray(data.draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=bool)
    check(da.compress(cond, x, axis=axis), np.compress(cond, a, axis=axis))
    check(da.compress(cond.astype(np.int8), x, axis=axis),
          np.compress(cond.astype(np.int8), a, axis=axis))
    if m:
        dc = da.from_array(cond, chunks=max(1, m // 2))
        _same(da.compress(dc, x, axis=axis), np.compress(cond, a, axis=axis))
    mask = sample(a.shape, np.bool_, 5)
    check(da.extract(mask, x), np.extract(mask, a))
    _same(da.extract(da.from_array(mask, chunks=chunks), x), np.extract(mask, a))


def test_compress_errors():
    x = da.from_array(np.arange(6), chunks=4)
    with pytest.raises(ValueError, match="1-d"):
        da.compress([[True]], x)
    with pytest.raises(IndexError, match="out of bounds"):
        da.compress([False] * 6 + [True], x)
    check(da.compress([True] * 6 + [False], x), np.compress([True] * 6 + [False], np.arange(6)))
    with pytest.raises(np.exceptions.AxisError):
        da.compress([True], x, axis=2)
    with pytest.raises(NotImplementedError, match="longer"):
        da.compress(da.from_array(np.ones(7, bool)), x)


# ---------------------------------------------------------------------------
# select, piecewise
# ---------------------------------------------------------------------------
@EX
@given(arrays(dtypes=(np.float64, np.float32, np.int16, np.uint8, np.bool_)), st.data())
def test_select(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    b = sample(a.shape, np.float32, 7)
    y = da.from_array(b, chunks=chunks)
    default = data.draw(st.sampled_from([0, 1.5, np.float32(-2), np.int8(3), 7j]))
    conds_np = [b > 0, a > 0 if a.dtype != bool else a]
    conds = [y > 0, x > 0 if a.dtype != bool else x]
    for choices_np, choices in [([a, b], [x, y]), ([a, 2], [x, 2]), ([b, a[..., :1]], [y, x[..., :1]])]:
        try:
            want = np.select(conds_np, choices_np, default)
        except TypeError:
            with pytest.raises(TypeError):
                da.select(conds, choices, default)
            continue
        check(da.select(conds, choices, default), want)
        check(da.select([c for c in conds_np], choices, default), want)


def test_select_errors():
    x = da.from_array(np.arange(4), chunks=2)
    with pytest.raises(ValueError, match="same length"):
        da.select([x > 1], [x, x])
    with pytest.raises(ValueError, match="empty"):
        da.select([], [])
    with pytest.raises(TypeError, match="boolean"):
        da.select([x], [x])


@EX
@given(arrays(dtypes=(np.float64, np.float32, np.int32)), st.booleans())
def test_piecewise(ac, otherwise):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    funcs = [lambda v: -v, 3, lambda v: v * 2] + ([lambda v: v + 1] if otherwise else [])
    want = np.piecewise(a, [a < 0, a > 1, a == 0], funcs)
    check(da.piecewise(x, [x < 0, x > 1, x == 0], funcs), want)
    check(da.piecewise(x, [a < 0, a > 1, a == 0], funcs), want)
    # keyword and positional arguments reach the functions
    check(da.piecewise(x, [x > 0], [lambda v, k, s=1: v * k + s, 0], 3, s=2),
          np.piecewise(a, [a > 0], [lambda v, k, s=1: v * k + s, 0], 3, s=2))


def test_piecewise_errors():
    x = da.from_array(np.arange(4.0), chunks=2)
    with pytest.raises(ValueError, match="functions are expected"):
        da.piecewise(x, [x > 1], [1, 2, 3])


# ---------------------------------------------------------------------------
# insert, delete, append
# ---------------------------------------------------------------------------
@EX
@given(arrays(), st.data())
def test_delete(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.sampled_from([None] + list(range(-a.ndim, a.ndim))))
    n = a.size if axis is None else a.shape[axis]
    kinds = ["slice", "list", "mask"] + (["int"] if n else [])
    kind = data.draw(st.sampled_from(kinds))
    if kind == "int":
        obj = data.draw(st.integers(-n, n - 1))
    elif kind == "slice":
        obj = slice(data.draw(st.integers(-n - 1, n + 1)), data.draw(st.integers(-n - 1, n + 1)),
                    data.draw(st.sampled_from([None, 1, 2, -1, -3])))
    elif kind == "list":
        obj = data.draw(st.lists(st.integers(-n, n - 1), max_size=6)) if n else []
    else:
        obj = np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    check(da.delete(x, obj, axis=axis), np.delete(a, obj, axis=axis))


def test_delete_many_runs_and_errors():
    a = np.arange(300)
    x = da.from_array(a, chunks=50)
    obj = np.arange(0, 300, 2)       # every other element: a take, not 150 slices
    y = da.delete(x, obj, 0)
    check(y, np.delete(a, obj))
    assert y.numblocks[0] < 20
    with pytest.raises(IndexError, match="out of bounds"):
        da.delete(x, 300, 0)
    with pytest.raises(IndexError):
        da.delete(x, [300], 0)
    with pytest.raises(ValueError, match="boolean"):
        da.delete(x, [True, False], 0)


@EX
@given(arrays(max_dims=2), st.data())
def test_insert(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.sampled_from([None] + list(range(-a.ndim, a.ndim))))
    n = a.size if axis is None else a.shape[axis]
    kind = data.draw(st.sampled_from(["int", "slice", "list", "one"]))
    if kind == "int":
        obj = data.draw(st.integers(-n, n))
    elif kind == "slice":
        obj = slice(data.draw(st.integers(0, n)), None, data.draw(st.sampled_from([1, 2])))
    elif kind == "one":
        obj = [data.draw(st.integers(-n, n))]
    else:
        obj = data.draw(st.lists(st.integers(-n, n), max_size=5))
    k = len(range(*obj.indices(n))) if kind == "slice" else (1 if kind == "int" else len(obj))
    full = list(a.shape) if axis is not None else [n]
    full[0 if axis is None else axis] = k
    vshape = data.draw(st.sampled_from([(), (1,), (2,), (a.shape[-1],), tuple(full)]))
    v = sample(vshape, np.float64, 1) if vshape else 7
    try:
        want = np.insert(a, obj, v, axis=axis)
    except (ValueError, IndexError) as e:
        with pytest.raises(type(e)):
            da.insert(x, obj, v, axis=axis).compute()
        return
    check(da.insert(x, obj, v, axis=axis), want)
    if vshape:
        check(da.insert(x, obj, da.from_array(v, chunks=1), axis=axis), want)


def test_insert_many_points_is_one_gather():
    a = np.arange(200.0).reshape(2, 100)
    x = da.from_array(a, chunks=(1, 30))
    obj = np.arange(100, -1, -3)          # 34 points, unsorted
    vals = np.arange(34.0) * -1
    y = da.insert(x, obj, vals, axis=1)
    check(y, np.insert(a, obj, vals, axis=1))
    assert y.numblocks[1] < 10
    check(da.insert(x, [5] * 3 + list(range(0, 100, 2)), 7.0, axis=1),
          np.insert(a, [5] * 3 + list(range(0, 100, 2)), 7.0, axis=1))


def test_insert_numpy_examples_and_errors():
    a = np.arange(6).reshape(3, 2)
    x = da.from_array(a, chunks=(2, 1))
    check(da.insert(x, 1, 5), np.insert(a, 1, 5))
    check(da.insert(x, 1, 5, axis=1), np.insert(a, 1, 5, axis=1))
    check(da.insert(x, [1], [[1], [2], [3]], axis=1), np.insert(a, [1], [[1], [2], [3]], axis=1))
    check(da.insert(x, 1, [1, 2, 3], axis=1), np.insert(a, 1, [1, 2, 3], axis=1))
    check(da.insert(x, (1, 1), [7.13, False], axis=None), np.insert(a, (1, 1), [7.13, False]))
    check(da.insert(x, [2, 0, 2], 9, axis=0), np.insert(a, [2, 0, 2], 9, axis=0))
    with pytest.raises(IndexError, match="out of bounds"):
        da.insert(x, 4, 0, axis=0)
    with pytest.raises(IndexError, match="out of bounds"):
        da.insert(x, [0, 4], 0, axis=0)
    with pytest.raises(ValueError, match="one dimensional"):
        da.insert(x, [[0]], 0, axis=0)
    with pytest.raises(np.exceptions.AxisError):
        da.insert(x, 0, 0, axis=2)


@EX
@given(arrays(max_dims=2), st.booleans())
def test_append(ac, flat):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    b = sample(a.shape, np.float32, 2)
    if flat:
        check(da.append(x, b), np.append(a, b))
        check(da.append(x, [1, 2]), np.append(a, [1, 2]))
    else:
        check(da.append(x, da.from_array(b, chunks=chunks), axis=-1), np.append(a, b, axis=-1))


# ---------------------------------------------------------------------------
# ravel_multi_index, unravel_index
# ---------------------------------------------------------------------------
@EX
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.integers(0, 9),
       st.sampled_from(["C", "F"]), st.integers(0, 2 ** 16))
def test_ravel_unravel(dims, npts, order, seed):
    rng = np.random.default_rng(seed)
    idx = tuple(rng.integers(0, d, npts) for d in dims)
    xs = tuple(da.from_array(i, chunks=max(1, npts // 3 or 1)) for i in idx)
    flat = np.ravel_multi_index(idx, dims, order=order)
    check(da.ravel_multi_index(xs, dims, order=order), flat)
    check(da.ravel_multi_index(da.from_array(np.stack(idx), chunks=(1, 2)), dims, order=order),
          flat)
    got = da.unravel_index(da.from_array(flat, chunks=2), dims, order=order)
    assert len(got) == len(dims)
    for g, w in zip(got, np.unravel_index(flat, dims, order=order)):
        check(g, w)
    # broadcasting of the coordinate arrays, modes
    wrapped = (idx[0][:, None] + 7,) + tuple(i[None, :] for i in idx[1:])
    check(da.ravel_multi_index(tuple(da.from_array(w) for w in wrapped), dims, mode="wrap"),
          np.ravel_multi_index(wrapped, dims, mode="wrap"))


def test_ravel_unravel_errors():
    with pytest.raises(TypeError, match="only int"):
        da.ravel_multi_index((da.from_array(np.array([1.0])),), (3,))
    with pytest.raises(ValueError, match="length"):
        da.ravel_multi_index((da.from_array(np.array([1])),), (3, 4))
    with pytest.raises(ValueError):
        da.ravel_multi_index((da.from_array(np.array([5])),), (3,)).compute()
    with pytest.raises(TypeError, match="only int"):
        da.unravel_index(da.from_array(np.array([1.5])), (3,))
    with pytest.raises(ValueError):
        da.unravel_index(da.from_array(np.array([9])), (3,))[0].compute()
    assert da.unravel_index(da.from_array(np.array([1])), ()) == ()


# ---------------------------------------------------------------------------
# tile, repeat, rot90
# ---------------------------------------------------------------------------
@EX
@given(arrays(max_dims=3), st.lists(st.integers(0, 3), min_size=0, max_size=4))
def test_tile(ac, reps):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    check(da.tile(x, reps), np.tile(a, reps))
    if reps:
        check(da.tile(x, reps[0]), np.tile(a, reps[0]))


def test_tile_errors():
    x = da.ones(3, chunks=2)
    with pytest.raises(ValueError, match="negative"):
        da.tile(x, -1)
    with pytest.raises(TypeError):
        da.tile(x, 1.5)


@EX
@given(arrays(), st.data())
def test_repeat(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.sampled_from([None] + list(range(-a.ndim, a.ndim))))
    n = a.size if axis is None else a.shape[axis]
    r = data.draw(st.sampled_from(["int", "list", "one"]))
    if r == "int":
        reps = data.draw(st.integers(0, 3))
    elif r == "one":
        reps = [data.draw(st.integers(0, 3))]
    else:
        reps = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    check(da.repeat(x, reps, axis=axis), np.repeat(a, reps, axis=axis))
    check(x.repeat(reps, axis=axis), a.repeat(reps, axis=axis))


def test_repeat_errors_and_unknown():
    x = da.from_array(np.arange(6), chunks=4)
    with pytest.raises(ValueError, match="negative"):
        da.repeat(x, -1)
    with pytest.raises(ValueError, match="broadcast"):
        da.repeat(x, [1, 2])
    with pytest.raises(NotImplementedError):
        da.repeat(x, da.from_array(np.ones(6, int)))
    a = sample((5, 3), np.int32, 2)
    y = _unknown(a, ((2, 3), (1, 2)))
    _same(da.repeat(y, 2, axis=1), np.repeat(a, 2, axis=1))
    with pytest.raises(ValueError, match="unknown"):
        da.repeat(y, 2, axis=0)


@EX
@given(arrays(min_dims=2, max_dims=3), st.integers(-5, 5), st.data())
def test_rot90(ac, k, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    ax = data.draw(st.lists(st.integers(-a.ndim, a.ndim - 1), min_size=2, max_size=2,
                            unique=True).filter(lambda t: (t[0] - t[1]) % a.ndim))
    check(da.rot90(x, k, ax), np.rot90(a, k, ax))
    check(da.rot90(x), np.rot90(a))


def test_rot90_errors():
    x = da.ones((2, 3), chunks=1)
    with pytest.raises(ValueError, match="len"):
        da.rot90(x, axes=(0,))
    with pytest.raises(ValueError, match="different"):
        da.rot90(x, axes=(0, 0))
    with pytest.raises(ValueError, match="different"):
        da.rot90(x, axes=(0, -2))
    with pytest.raises(ValueError, match="out of range"):
        da.rot90(x, axes=(0, 3))


# ---------------------------------------------------------------------------
# reshape_blockwise, shuffle (against dask: NumPy has neither)
# ---------------------------------------------------------------------------
@EX
@given(arrays(min_dims=2, max_dims=4, max_side=4, min_side=1), st.data())
def test_reshape_blockwise_against_dask(ac, data):
    import dask.array as dda

    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    start = data.draw(st.integers(0, a.ndim - 2))
    stop = data.draw(st.integers(start + 2, a.ndim))
    shape = a.shape[:start] + (int(np.prod(a.shape[start:stop])),) + a.shape[stop:]
    got = da.reshape_blockwise(x, shape)
    if all(len(c) == 1 for c in chunks[start + 1:stop]):
        # blocks whole along the later merged axes: NumPy's order
        check(got, a.reshape(shape))
    if min(a.shape) > 1:        # dask mishandles merged axes of length 1
        want = dda.reshape_blockwise(dda.from_array(a, chunks=chunks), shape)
        assert got.chunks == want.chunks
        check(got, want.compute())
        check(da.reshape_blockwise(x, -1),
              dda.reshape_blockwise(dda.from_array(a, chunks=chunks), -1).compute())
    check(da.reshape_blockwise(got, a.shape, chunks=x.chunks), a)


def test_reshape_blockwise_errors():
    x = da.ones((2, 3), chunks=1)
    with pytest.raises(TypeError, match="chunks"):
        da.reshape_blockwise(x, (2, 3, 1))
    with pytest.raises(ValueError, match="not allowed"):
        da.reshape_blockwise(x, (6,), chunks=((1,) * 6,))
    with pytest.raises(ValueError, match="size"):
        da.reshape_blockwise(x, (7,))
    with pytest.raises(NotImplementedError):
        da.reshape_blockwise(x, (3, 2))
    with pytest.raises(ValueError, match="blocks"):
        da.reshape_blockwise(da.ones(6, chunks=3), (2, 3), chunks=((1, 1), (2, 1)))
    with pytest.raises(ValueError, match="match"):
        da.reshape_blockwise(da.ones(6, chunks=(2, 4)), (2, 3), chunks=((1, 1), (3,)))


@EX
@given(arrays(min_dims=1, max_dims=3, min_side=1), st.data())
def test_shuffle_against_dask(ac, data):
    import dask.array as dda

    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.integers(0, a.ndim - 1))
    n = a.shape[axis]
    perm = data.draw(st.permutations(list(range(n))))
    cuts = sorted(data.draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=4, unique=True)))
    indexer = [list(perm[i:j]) for i, j in zip([0] + cuts, cuts + [n]) if perm[i:j]]
    got = da.shuffle(x, indexer, axis)
    want = dda.shuffle(dda.from_array(a, chunks=chunks), indexer, axis)
    assert got.chunks[axis] == want.chunks[axis]
    check(got, want.compute())
    check(x.shuffle(indexer, axis), want.compute())


def test_shuffle_errors():
    x = da.ones((4, 4), chunks=2)
    with pytest.raises(ValueError, match="list of lists"):
        da.shuffle(x, [0, 1], 0)
    with pytest.raises(IndexError, match="out of bounds"):
        da.shuffle(x, [[0, 4]], 0)
    with pytest.raises(TypeError, match="integer"):
        da.shuffle(x, [[0]], 0.5)
    y = x[da.from_array(np.ones(4, bool), chunks=2)]
    with pytest.raises(ValueError, match="known chunk sizes"):
        da.shuffle(y, [[0]], 1)


# ---------------------------------------------------------------------------
# coarsen, push
# ---------------------------------------------------------------------------
@EX
@given(st.lists(st.integers(1, 3), min_size=1, max_size=3), st.data(),
       st.sampled_from(["sum", "max", "min", "mean", "prod"]), st.booleans())
def test_coarsen(factors, data, red, trim):
    import dask.array as dda

    shape = tuple(f * data.draw(st.integers(0, 3)) + (data.draw(st.integers(0, f - 1))
                                                     if trim else 0) for f in factors)
    chunks = chunkings(data.draw, st, shape)
    a = sample(shape, np.float64, 4)
    x = da.from_array(a, chunks=chunks)
    axes = {d: f for d, f in enumerate(factors)}
    got = da.coarsen(getattr(np, red), x, axes, trim_excess=trim)
    t = a[tuple(slice(0, s - s % f) for s, f in zip(shape, factors))]
    newshape = [v for s, f in zip(t.shape, factors) for v in (s // f, f)]
    want = getattr(np, red)(t.reshape(newshape), axis=tuple(range(1, 2 * len(shape), 2)))
    check(got, want, exact=red in ("max", "min"))
    check(da.coarsen(getattr(da, red), x, axes, trim_excess=trim), want,
          exact=red in ("max", "min"))
    if want.size:      # dask cannot coarsen to empty axes
        d = dda.coarsen(getattr(np, red), dda.from_array(a, chunks=chunks), axes,
                        trim_excess=trim)
        np.testing.assert_allclose(got.compute(), d.compute())


def test_coarsen_errors_and_dtype():
    x = da.from_array(np.arange(12, dtype=np.int16).reshape(3, 4), chunks=2)
    with pytest.raises(ValueError, match="align"):
        da.coarsen(np.sum, x, {0: 2})
    with pytest.raises(np.exceptions.AxisError):
        da.coarsen(np.sum, x, {2: 2})
    with pytest.raises(ValueError, match="positive"):
        da.coarsen(np.sum, x, {0: 0})
    r = da.coarsen(np.mean, x, {1: 2, -2: 3})
    check(r, np.arange(12, dtype=np.int16).reshape(1, 3, 2, 2).mean(axis=(1, 3)))


def _push_reference(a, n, axis):
    a = np.moveaxis(a.copy(), axis, -1)
    for idx in np.ndindex(a.shape[:-1]):
        last, at = None, None
        for j in range(a.shape[-1]):
            v = a[idx + (j,)]
            if not np.isnan(v):
                last, at = v, j
            elif last is not None and (n is None or j - at <= n):
                a[idx + (j,)] = last
    return np.moveaxis(a, -1, axis)


@EX
@given(arrays(dtypes=(np.float64, np.float32, np.complex128)), st.data())
def test_push(ac, data):
    a, chunks = ac
    a = a.copy()
    a[sample(a.shape, np.bool_, 9)] = np.nan
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = data.draw(st.sampled_from([None, 0, 1, 2, 5]))
    check(da.push(x, n, axis), _push_reference(a, n, axis))
    if a.ndim > 1 and a.shape[0]:
        y = _unknown(a, chunks)
        _same(da.push(y, n, axis), _push_reference(a, n, axis))


def test_push_ints_and_errors():
    a = np.arange(6).reshape(2, 3)
    check(da.push(da.from_array(a, chunks=1), None, 1), a)
    x = da.from_array(np.array([1.0, np.nan]), chunks=1)
    with pytest.raises(ValueError, match="non-negative"):
        da.push(x, -1, 0)
    with pytest.raises(np.exceptions.AxisError):
        da.push(x, 1, 1)


def test_numpy_functions_on_cdask_arrays_stay_lazy():
    import warnings

    a = np.arange(12.0).reshape(3, 4)
    x = da.from_array(a, chunks=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no NotLazyWarning: nothing is computed
        check(np.take(x, [1, 5]), np.take(a, [1, 5]))       # NumPy's default axis=None
        check(np.take(x, [3, 0], axis=1), np.take(a, [3, 0], axis=1))
        check(np.insert(x, 1, 7.0), np.insert(a, 1, 7.0))
        check(np.delete(x, [0, 2], axis=1), np.delete(a, [0, 2], axis=1))
        check(np.compress([True, False, True], x, axis=0),
              np.compress([True, False, True], a, axis=0))
        check(np.select([x > 5], [x], -1.0), np.select([a > 5], [a], -1.0))
        check(np.tile(x, (2, 1)), np.tile(a, (2, 1)))
        check(np.repeat(x, 2), np.repeat(a, 2))
        check(np.rot90(x, 3), np.rot90(a, 3))
        check(np.append(x, [1.0]), np.append(a, [1.0]))
        check(np.pad(x, 2, mode="reflect"), np.pad(a, 2, mode="reflect"))
        check(np.apply_along_axis(np.cumsum, 1, x), np.apply_along_axis(np.cumsum, 1, a))


def test_unknown_chunk_sizes_on_other_axes():
    a = sample((5, 4), np.float64, 11)
    y = _unknown(a, ((2, 3), (2, 2)))
    _same(da.select([y > 0], [y], -1.0), np.select([a > 0], [a], -1.0))
    _same(da.delete(y, [1, 2], axis=1), np.delete(a, [1, 2], axis=1))
    _same(da.append(y, y, axis=1), np.append(a, a, axis=1))
    _same(da.tile(y, (2, 3)), np.tile(a, (2, 3)))
    _same(da.rot90(y), np.rot90(a))
    _same(da.piecewise(y, [y > 0], [0, lambda v: v * 3]), np.piecewise(a, [a > 0], [0, lambda v: v * 3]))
    _same(da.coarsen(np.max, y, {1: 2}), a.reshape(5, 2, 2).max(axis=2))
    i, j = (np.abs(a) * 10).astype(int) % 5, (np.abs(a) * 7).astype(int) % 4
    yi = _unknown(i, ((2, 3), (2, 2)))
    yj = _unknown(j, ((2, 3), (2, 2)))
    _same(da.ravel_multi_index((yi, yj), (5, 4)), np.ravel_multi_index((i, j), (5, 4)))
    with pytest.raises(ValueError, match="unknown"):
        da.insert(y, 1, 0.0, axis=1)
    with pytest.raises(ValueError, match="unknown"):
        da.coarsen(np.max, y, {0: 5})
