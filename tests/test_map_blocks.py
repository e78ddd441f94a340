"""map_blocks with dask's semantics: block_id, block_info, drop_axis,
new_axis, chunks, dtype inference, broadcasting, literal arguments (issue 5)."""

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import cdask as da

from blockcheck import check, chunkings, sample

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _global_index(b, block_info=None):
    # every element replaced by its flat index in the whole array, from block_info
    info = block_info[0]
    grids = np.indices(b.shape) if b.ndim else np.zeros((0,), int)
    flat = np.zeros(b.shape, dtype=np.int64)
    for ax, (lo, hi) in enumerate(info["array-location"]):
        assert hi - lo == b.shape[ax]
        flat = flat * info["shape"][ax] + grids[ax] + lo
    out = block_info[None]
    assert out["chunk-shape"] == b.shape
    assert out["dtype"] == np.dtype(np.int64)
    assert out["shape"] == info["shape"] and out["num-chunks"] == info["num-chunks"]
    assert out["chunk-location"] == info["chunk-location"]
    return flat


@SETTINGS
@given(data=st.data())
def test_block_info_locates_every_block(data):
    nd = data.draw(st.integers(0, 3))
    shape = tuple(data.draw(st.integers(0, 5)) for _ in range(nd))
    x = da.ones(shape, chunks=chunkings(data.draw, st, shape))
    r = x.map_blocks(_global_index, dtype=np.int64)
    check(r, np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape))


@SETTINGS
@given(data=st.data())
def test_block_id_and_broadcasting(data):
    nd = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.integers(1, 5)) for _ in range(nd))
    a = sample(shape, np.float64, 1)
    x = da.from_array(a, chunks=chunkings(data.draw, st, shape))
    b = sample(shape[1:], np.float64, 2)
    y = da.from_array(b, chunks=chunkings(data.draw, st, shape[1:]))

    def f(u, s, v, block_id=None):
        assert len(block_id) == nd
        return u * s - v

    check(da.map_blocks(f, x, 3.0, y), a * 3.0 - b)
    ids = x.map_blocks(lambda u, block_id=None: np.full(u.shape, block_id[-1]), dtype=int)
    want = np.concatenate([np.full(c, i) for i, c in enumerate(x.chunks[-1])])
    check(ids, np.broadcast_to(want, shape).astype(int))


def test_block_info_keys_are_argument_positions():
    x = da.ones((6, 4), chunks=(4, 2))
    y = da.ones(4, chunks=2)
    seen = {}

    def f(a, s, b, block_info=None, block_id=None):
        seen[block_id] = block_info
        return a + b

    da.map_blocks(f, x, 3, y, dtype=float).compute()
    info = seen[(1, 1)]
    assert set(info) == {0, 2, None}
    assert info[0] == {"shape": (6, 4), "num-chunks": (2, 2), "chunk-location": (1, 1),
                       "array-location": [(4, 6), (2, 4)]}
    assert info[2] == {"shape": (4,), "num-chunks": (2,), "chunk-location": (1,),
                       "array-location": [(2, 4)]}
    assert info[None] == {"shape": (6, 4), "num-chunks": (2, 2), "chunk-location": (1, 1),
                          "array-location": [(4, 6), (2, 4)], "chunk-shape": (2, 2),
                          "dtype": np.dtype(float)}


@SETTINGS
@given(data=st.data())
def test_drop_axis_new_axis_chunks(data):
    shape = (data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    a = sample(shape, np.int64, 3)
    x = da.from_array(a, chunks=chunkings(data.draw, st, shape))
    ax = data.draw(st.integers(0, 1))
    # the dropped axis is seen whole even when it has several blocks
    check(x.map_blocks(np.sum, axis=ax, drop_axis=ax), a.sum(axis=ax))
    check(x.map_blocks(lambda b: b[None], new_axis=0), a[None])
    check(x.map_blocks(lambda b: b[:, None, :], new_axis=[1]), a[:, None, :])
    # a new axis with its own length: chunks given
    r = x.map_blocks(lambda b: np.stack([b, -b], axis=2), new_axis=2,
                     chunks=x.chunks + ((2,),))
    check(r, np.stack([a, -a], axis=2))
    # one block shape for every block
    r = x.map_blocks(lambda b: b[:1, :1], chunks=(1, 1))
    check(r, a[np.ix_(np.cumsum((0,) + x.chunks[0][:-1]), np.cumsum((0,) + x.chunks[1][:-1]))])
    # chunks with more entries than axes: leading new axes, as dask
    check(x.map_blocks(lambda b: b[None], chunks=((1,),) + x.chunks), a[None])
    check(x.map_blocks(lambda b: b[None, None], chunks=(1, 1) + x.chunksize)
          if all(len(set(c)) == 1 for c in x.chunks) else x.map_blocks(
              lambda b: b[None, None], chunks=((1,), (1,)) + x.chunks), a[None, None])
    # drop and add at once
    check(x.map_blocks(lambda b: b.sum(axis=1)[None], drop_axis=1, new_axis=0),
          a.sum(axis=1)[None])


def test_dtype_inference_and_cast():
    x = da.from_array(np.arange(10, dtype=np.int32), chunks=3)
    r = x.map_blocks(lambda b: b / 2)
    assert r.dtype == np.float64
    check(r, np.arange(10, dtype=np.int32) / 2)
    r = x.map_blocks(lambda b: b > 4)
    check(r, np.arange(10) > 4)
    # declared dtype wins; blocks are cast to it
    r = x.map_blocks(lambda b: b * 1.5, dtype=np.float32)
    check(r, (np.arange(10, dtype=np.int32) * 1.5).astype(np.float32))
    # meta gives the dtype without calling func
    calls = []
    r = x.map_blocks(lambda b: calls.append(1) or b.astype(np.int8), meta=np.empty(0, np.int8))
    assert r.dtype == np.int8 and not calls
    with pytest.raises(TypeError):
        x.map_blocks(lambda b: b, dtype=object)


def test_literal_and_keyword_arguments():
    x = da.from_array(np.arange(6.0), chunks=2)
    tup = (np.add, 1)    # a tuple starting with a callable is a literal, not a task
    key = (x.name, 0)    # a tuple equal to a key is a literal too

    def f(b, t, k, scale=1):
        assert t == tup and k == key
        return b * scale

    check(da.map_blocks(f, x, tup, key, scale=3), np.arange(6.0) * 3)
    # the graph pickles (dask.distributed)
    g = pickle.loads(pickle.dumps(dict(x.map_blocks(np.negative).__dask_graph__())))
    assert len(g) == 6


def test_bad_input():
    x = da.ones((4, 4), chunks=2)
    with pytest.raises(ValueError, match="at least one"):
        da.map_blocks(np.negative, np.ones(3))
    with pytest.raises(TypeError, match="callable"):
        da.map_blocks(x, np.negative)
    with pytest.raises(ValueError, match="entries"):
        x.map_blocks(lambda b: b, chunks=(2,))
    with pytest.raises(ValueError, match="blocks"):
        x.map_blocks(lambda b: b, chunks=((4,), (2, 2)))
    with pytest.raises(np.exceptions.AxisError):
        x.map_blocks(np.sum, drop_axis=2)
    with pytest.raises(ValueError):
        da.map_blocks(np.add, x, da.ones((3, 4), chunks=2))


def test_enforce_ndim():
    x = da.ones((4, 4), chunks=2)
    ok = x.map_blocks(lambda b: b * 2, enforce_ndim=True)
    check(ok, np.full((4, 4), 2.0))
    bad = x.map_blocks(lambda b: b.sum(axis=0), enforce_ndim=True, dtype=float)
    with pytest.raises(ValueError, match="enforce_ndim"):
        bad.compute()


def test_dtype_inference_sees_block_info():
    x = da.from_array(np.arange(6, dtype=np.int64), chunks=2)

    def f(b, block_info=None):
        lo, _ = block_info[0]["array-location"][0]
        return b / 4 + lo       # float from int blocks, using block_info

    r = x.map_blocks(f)
    assert r.dtype == np.float64
    check(r, np.arange(6) / 4 + np.repeat([0, 2, 4], 2))

    def g(b):
        if b.size == 1:
            raise RuntimeError("no samples please")
        return b / 2

    with pytest.warns(UserWarning, match="could not infer the output dtype"):
        r = x.map_blocks(g)
    assert r.dtype == np.int64      # assumed; dtype= would choose
    check(x.map_blocks(g, dtype=np.float64), np.arange(6) / 2)
    # block_info handed to func is a copy each time
    def h(b, block_info=None):
        block_info[0]["shape"] = None
        return b

    y = x.map_blocks(h, dtype=np.int64)
    check(y, np.arange(6))
    check(y, np.arange(6))
