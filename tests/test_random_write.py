"""cdask.random's blocks drawn in pieces straight into the target of a
compute or a to_npy (blockio.sink_writers): the same values as drawing each
block whole, which are NumPy's Generator's for the block's seed."""

import itertools

import numpy as np
import pytest

import cdask as da
from cdask.array import blockio
from cdask.array import random as crandom


def _reference(x):
    """x's values from its own graph, each block drawn whole by _block."""
    g = dict(x.__dask_graph__())
    out = np.empty(x.shape, dtype=x.dtype)
    starts = [np.cumsum((0,) + c) for c in x.chunks]
    for idx in itertools.product(*[range(len(c)) for c in x.chunks]):
        t = g[(x.name,) + idx]
        assert t[0] is crandom._block
        sl = tuple(slice(s[i], s[i + 1]) for s, i in zip(starts, idx))
        out[sl] = t[0](*t[1:])
    return out


CASES = [
    ("random", (), {}, "f8"), ("random", (), {}, "f4"),
    ("standard_normal", (), {}, "f8"), ("standard_normal", (), {}, "f4"),
    ("normal", (3.0, 2.0), {}, None), ("uniform", (-1.0, 4.0), {}, None),
    ("integers", (0, 1000), {}, "i8"), ("integers", (-5, 5), {}, "i2"),
]


def _make(seed, method, args, kw, dtype, shape, chunks):
    g = da.random.default_rng(seed)
    extra = {} if dtype is None else {"dtype": dtype}
    return getattr(g, method)(*args, size=shape, chunks=chunks, **kw, **extra)


@pytest.mark.parametrize("method,args,kw,dtype", CASES)
@pytest.mark.parametrize("piece", [24, 4096, 1 << 20])
def test_pieces_equal_whole_blocks(method, args, kw, dtype, piece, tmp_path, monkeypatch):
    monkeypatch.setattr(blockio, "_PIECE", piece)
    shape, chunks = (301, 40), (77, 40)        # row blocks: contiguous in the file
    x = _make(7, method, args, kw, dtype, shape, chunks)
    ref = _reference(x)
    assert np.array_equal(x.compute(), ref)
    p = tmp_path / "r.npy"
    x.to_npy(p)
    assert np.array_equal(np.load(p), ref)
    # column blocks: not contiguous in the file, drawn whole and stored
    y = _make(7, method, args, kw, dtype, shape, (100, 13))
    y.to_npy(p)
    assert np.array_equal(np.load(p), _reference(y))


def test_block_values_are_numpys_for_the_documented_seed():
    g = da.random.default_rng(11)
    x = g.standard_normal((10, 6), chunks=(4, 6))
    got = x.compute()
    root = np.random.SeedSequence(11)
    for f, (r0, r1) in enumerate([(0, 4), (4, 8), (8, 10)]):
        ss = np.random.SeedSequence(root.entropy, spawn_key=(0, f))
        want = np.random.Generator(np.random.PCG64(ss)).standard_normal((r1 - r0, 6))
        assert np.array_equal(got[r0:r1], want)


@pytest.mark.parametrize("seed", [np.random.SFC64(11), np.random.Generator(np.random.SFC64(11)),
                                  np.random.Philox(11)])
def test_a_bit_generator_seed_gives_its_class_to_every_block(seed, tmp_path):
    """default_rng(BitGenerator or np.random.Generator), as in dask: the
    blocks draw from that BitGenerator class, seeded from its SeedSequence;
    drawn whole, in pieces into a file, and by the other distributions."""
    cls = type(getattr(seed, "bit_generator", seed))
    g = da.random.default_rng(seed)
    assert cls.__name__ in repr(g)
    x = g.standard_normal((10, 6), chunks=(4, 6))
    root = np.random.SeedSequence(11)
    want = np.concatenate([
        np.random.Generator(cls(np.random.SeedSequence(root.entropy, spawn_key=(0, f))))
        .standard_normal((r1 - r0, 6)) for f, (r0, r1) in enumerate([(0, 4), (4, 8), (8, 10)])])
    assert np.array_equal(x.compute(), want)
    p = tmp_path / "r.npy"
    x.to_npy(p)
    assert np.array_equal(np.load(p), want)
    # the call-by-call seeds of the other distributions, and spawned generators
    y = g.poisson(3.0, size=9, chunks=4)
    ss = np.random.SeedSequence(root.entropy, spawn_key=(1, 0))
    assert np.array_equal(y.compute()[:4], np.random.Generator(cls(ss)).poisson(3.0, size=4))
    child = g.spawn(1)[0]
    assert child._bitgen is g._bitgen
    # a different class gives other values, and another graph key
    pcg = da.random.default_rng(11).standard_normal((10, 6), chunks=(4, 6))
    assert pcg.name != x.name and not np.array_equal(pcg.compute(), want)


def test_legacy_seeded_bit_generator_draws_reproducibly():
    """A BitGenerator without a SeedSequence (MT19937 seeded the legacy way)
    seeds the root from its own stream: the same state, the same values."""
    def make():
        bg = np.random.MT19937()
        bg._legacy_seeding(5)
        return da.random.default_rng(bg).random(12, chunks=5).compute()
    a, b = make(), make()
    assert np.array_equal(a, b) and a.shape == (12,) and ((0 <= a) & (a < 1)).all()


def test_stores_become_writers_only_when_nothing_else_reads_the_block(tmp_path, monkeypatch):
    calls = []
    real = blockio.write_pieces

    def spy(*a):
        calls.append(1)
        return real(*a)

    monkeypatch.setattr(blockio, "write_pieces", spy)
    x = da.random.default_rng(3).random(1000, chunks=100)
    ref = _reference(x)
    assert np.array_equal(x.compute(), ref)
    assert len(calls) == 10
    # x is read by its own store and by x + 1's: drawn once, stored as a block
    calls.clear()
    a, b = da.compute(x, x + 1)
    assert not calls
    assert np.array_equal(a, ref) and np.array_equal(b, ref + 1)
    # a 0-d draw and an empty one
    assert np.array_equal(da.random.default_rng(3).random((0, 5), chunks=2).compute(),
                          np.empty((0, 5)))
    s = da.random.default_rng(3).random()
    assert 0 <= float(s.compute()) < 1


def test_to_npy_of_random_is_durable_and_exact_across_workers(tmp_path):
    x = da.random.default_rng(5).standard_normal(3_000_000, chunks=250_000)
    ref = _reference(x)
    for w in (1, 2):
        p = tmp_path / ("w%d.npy" % w)
        x.to_npy(p, num_workers=w)
        assert np.array_equal(np.load(p, mmap_mode="r"), ref)


@pytest.mark.parametrize("stage", [8192, 3 * 4096, 8 << 20])
@pytest.mark.parametrize("piece", [24, 5000, 1 << 20])
def test_direct_writes_of_big_files(stage, piece, tmp_path, monkeypatch):
    # files over config array.direct_write_min bytes (a quarter of RAM by
    # default; 0 here) get their whole pages written with O_DIRECT, the
    # pages shared with the header or the next block through the page cache
    monkeypatch.setattr(blockio, "_PIECE", piece)
    monkeypatch.setattr(blockio, "_STAGE", stage)
    used = []
    real = blockio._write_direct
    monkeypatch.setattr(blockio, "_write_direct", lambda *a: used.append(1) or real(*a))
    with da.config.set({"array.direct_write_min": 0}):
        for shape, chunks, dtype in [((100003,), (9991,), "f8"), ((301, 40), (77, 40), "f4"),
                                     ((3,), (1,), "f8"), ((5000,), (4096,), "f8")]:
            x = da.random.default_rng(1).random(shape, chunks=chunks, dtype=dtype)
            p = tmp_path / "d.npy"
            x.to_npy(p)
            assert np.array_equal(np.load(p), _reference(x)), (shape, chunks, dtype)
    assert used
    # below the threshold, the page cache
    used.clear()
    with da.config.set({"array.direct_write_min": 1 << 40}):
        x = da.random.default_rng(1).random(1000, chunks=100)
        x.to_npy(tmp_path / "e.npy")
        assert np.array_equal(np.load(tmp_path / "e.npy"), _reference(x))
    assert not used
