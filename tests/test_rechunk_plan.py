"""Bounded rechunk: the plan's stages keep every task's inputs + output within
``block_size_limit`` (checked on the graph), results equal NumPy, and a
row -> column rechunk of a memory-mapped array holds a few blocks at a time
where the direct rechunk holds every row block."""

import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import cdask as da
from cdask.array.creation import getter
from cdask.array.rechunk import plan_rechunk, _direct, _assemble, _slice_block

pytestmark = pytest.mark.usefixtures("no_skip_rechunk")   # the rechunk itself, not its source

SETTINGS = settings(max_examples=int(os.environ.get("CDASK_EXAMPLES", 60)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _nbytes(chunks, idx, itemsize):
    n = itemsize
    for c, i in zip(chunks, idx):
        n *= c[i]
    return n


def _task_bytes(task, in_name, in_chunks, out_bytes, itemsize):
    """Inputs + output held by one rechunk task (0 for an alias or a literal
    view, which run nothing)."""
    if isinstance(task, np.ndarray):
        return 0
    if isinstance(task, tuple) and task and task[0] == in_name:
        return 0                      # alias
    f = task[0]
    if f is getter:
        return 2 * out_bytes          # reads just its piece
    if f is _slice_block:
        return _nbytes(in_chunks, task[1][1:], itemsize) + out_bytes
    assert f is _assemble, f
    total = 0
    for k in task[3]:
        if isinstance(k, tuple) and k and k[0] == in_name:
            total += _nbytes(in_chunks, k[1:], itemsize)
        else:
            raise AssertionError("unexpected input %r" % (k,))
    return total + out_bytes


def _max_stage_bytes(x, new):
    """The largest task of the direct rechunk x -> new, from its graph."""
    y = _direct(x, new)
    worst = 0
    for key, task in y.layers[y.name].items():
        out = _nbytes(new, key[1:], x.dtype.itemsize)
        worst = max(worst, _task_bytes(task, x.name, x.chunks, out, x.dtype.itemsize))
    return y, worst


def _pm(chunks):
    n = 1
    for c in chunks:
        n *= max(c, default=0)
    return n


@st.composite
def rechunk_case(draw):
    nd = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 12)) for _ in range(nd))

    def chunking(s):
        parts, left = [], s
        while left:
            p = draw(st.integers(1, left))
            parts.append(p)
            left -= p
        return tuple(parts)

    old = tuple(chunking(s) for s in shape)
    new = tuple(chunking(s) for s in shape)
    dtype = draw(st.sampled_from(["f8", "i2", "bool", "c8"]))
    limit = draw(st.integers(1, 600)) * np.dtype(dtype).itemsize
    return shape, old, new, dtype, limit


@SETTINGS
@given(rechunk_case())
def test_plan_keeps_tasks_within_the_limit(case):
    shape, old, new, dtype, limit = case
    a = (np.arange(int(np.prod(shape))).reshape(shape) % 7).astype(dtype)
    x = da.from_array(a, chunks=old) + np.zeros((), dtype)   # computed blocks
    itemsize = np.dtype(dtype).itemsize
    plan = plan_rechunk(x.chunks, new, itemsize, limit)
    if x.chunks == new:
        assert plan == []
    else:
        assert plan[-1] == new and 1 <= len(plan) <= 2
    bound = max(limit, 2 * max(_pm(old), _pm(new)) * itemsize)
    z = x
    for stage in plan:
        z, worst = _max_stage_bytes(z, stage)
        assert worst <= bound, (stage, worst, bound)
    y = x.rechunk(new, block_size_limit=limit)
    assert y.chunks == new
    assert y.name == z.name            # rechunk runs exactly that plan
    assert np.array_equal(y.compute(), a)
    # with a limit large enough, rechunk is direct
    assert plan_rechunk(x.chunks, new, itemsize, 10**12) in ([], [new])


def test_rows_to_columns_16000_square_is_planned_in_bounds():
    x = da.zeros((16000, 16000), chunks=(250, 16000))
    new = ((16000,), (250,) * 64)
    limit = 64 * 2**20
    plan = plan_rechunk(x.chunks, new, 8, limit)
    assert len(plan) == 2
    mid = plan[0]
    # intermediate pieces lie inside one row block and one column block
    assert max(mid[0]) <= 250 and max(mid[1]) <= 16000
    z = x
    for stage in plan:
        z, worst = _max_stage_bytes(z, stage)
        assert worst <= limit
    _, direct = _max_stage_bytes(x, new)
    assert direct >= 16000 * 16000 * 8          # every row block for each column
    # the default limit is the config's array.chunk-size
    with da.config.set({"array.chunk-size": "64MiB"}):
        assert x.rechunk(new).name == z.name
    with da.config.set({"array.chunk-size": "10GiB", "memory_limit": "200GB"}):
        assert x.rechunk(new).name == _direct(x, new).name


def test_direct_when_it_fits():
    x = da.ones((100, 100), chunks=(10, 100))
    assert plan_rechunk(x.chunks, ((100,), (10,) * 10), 8, 10**6) == [((100,), (10,) * 10)]
    y = x.rechunk((100, 10), block_size_limit="1MB")
    assert len(y.layers) == len(x.layers) + 1
    assert np.array_equal(y.compute(), np.ones((100, 100)))


def test_block_size_limit_strings_and_values():
    a = np.arange(60 * 40.0).reshape(60, 40)
    x = da.from_array(a, chunks=(5, 40))
    for lim in ["4kB", "20KiB", 3000, None]:
        y = x.rechunk((60, 4), block_size_limit=lim)
        assert np.array_equal(y.compute(), a)
    with pytest.raises(ValueError):
        x.rechunk((60, 4), block_size_limit="lots")


def test_rechunk_slices_of_getter_blocks_are_getter_tasks(tmp_path):
    a = np.arange(40 * 30.0).reshape(40, 30)
    np.save(tmp_path / "a.npy", a)
    x = da.from_npy(tmp_path / "a.npy", chunks=(10, 30))
    y = x.rechunk((5, 7))                       # every new block inside one old block
    for t in y.layers[y.name].values():
        assert t[0] is getter and isinstance(t[1], np.memmap)
    assert np.array_equal(y.compute(), a)


def test_row_to_column_peak_memory(tmp_path):
    rows, cols = 4000, 2000                     # 64 MB of float64
    p = tmp_path / "m.npy"
    mm = np.lib.format.open_memmap(p, mode="w+", dtype="f8", shape=(rows, cols))
    mm[:] = np.random.default_rng(1).random((rows, cols))
    mm.flush()
    ref = np.load(p)
    del mm
    chunk = 250 * cols * 8                      # 4 MB blocks, before and after
    peaks = {}
    for limit in ["16MiB", "1GiB"]:             # bounded plan / direct rechunk
        for workers in (1, 2):
            x = da.from_npy(p, chunks=(250, cols))
            y = x.rechunk((rows, 125), block_size_limit=limit)
            st = da.Stats()
            r = y.compute(stats=st, num_workers=workers)
            assert np.array_equal(r, ref)
            peaks[limit, workers] = st.peak_bytes
    # blocks of a memory-mapped file are views of the page cache, not held
    # memory: even the direct rechunk holds only the column blocks it builds
    assert peaks["1GiB", 1] <= 4 * chunk
    # the plan reads pieces and holds a few blocks' worth
    assert peaks["16MiB", 1] <= 4 * chunk
    assert peaks["16MiB", 2] <= 10 * chunk
