"""A rechunk whose result is only gathered whole - computed, stored into an
ndarray or a memmap, written to .npy - is not run: the source's blocks go
to the output (compute.skip_rechunks).  The values are the same; the
rechunk's own work (a rechunk of computed blocks holds them all, or
spills) is saved."""

import numpy as np
import pytest

import cdask
from cdask.array.compute import skip_rechunks


@pytest.fixture
def a():
    return np.random.default_rng(3).random((60, 80))


def test_bare_rechunks_are_skipped_for_whole_results(a):
    x = cdask.from_array(a, chunks=(10, 80)) + 1
    y = x.rechunk((60, 7))
    z = y.rechunk((13, 13))              # a rechunk of a rechunk: back to x
    assert skip_rechunks([y], [None])[0] is x
    assert skip_rechunks([z], [None])[0] is x
    assert skip_rechunks([z], [np.empty(a.shape)])[0] is x
    for arr in (y, z):
        got = arr.compute()
        assert arr.chunks != x.chunks
        assert np.array_equal(got, a + 1)


def test_not_skipped_where_the_chunks_matter(a):
    x = cdask.from_array(a, chunks=(10, 80))
    y = x.rechunk((60, 7))

    class Target:                        # any __setitem__ target: its writes may need y's blocks
        shape = a.shape

        def __setitem__(self, k, v):
            pass

    assert skip_rechunks([y], [Target()])[0] is y
    assert skip_rechunks([y + 1], [None])[0] is not x          # only a bare rechunk
    with cdask.config.set({"array.skip_rechunk": False}):
        assert skip_rechunks([y], [None])[0] is y
        assert np.array_equal(y.compute(), a)


def test_not_skipped_when_the_source_blocks_are_bigger_than_the_budget_wants():
    a = np.arange(64 * 1024, dtype=np.float64)        # one 512 KiB block
    x = cdask.from_array(a, chunks=-1)
    with cdask.config.set({"array.chunk-size": "64KiB"}):
        y = x.rechunk(1024)                           # 8 KiB blocks: x's is 64 times bigger
        assert skip_rechunks([y], [None])[0] is y
        assert np.array_equal(y.compute(), a)
    # a source block at most twice the rechunk's, or within the chunk size, is fine
    assert skip_rechunks([x.rechunk(40 * 1024)], [None])[0] is x


def test_store_and_to_npy_of_a_rechunk_of_computed_blocks(a, tmp_path):
    x = cdask.from_array(a, chunks=(7, 80)) * 3
    y = x.rechunk((60, 9))
    want = a * 3
    st = cdask.Stats()
    y.to_npy(tmp_path / "y.npy", stats=st)
    assert np.array_equal(np.load(tmp_path / "y.npy"), want)
    assert st.spilled_bytes == 0
    out = np.zeros(a.shape)
    cdask.store(y, out)
    assert np.array_equal(out, want)
    with cdask.config.set({"array.skip_rechunk": False}):
        y.to_npy(tmp_path / "z.npy")
    assert np.load(tmp_path / "z.npy").tobytes() == np.load(tmp_path / "y.npy").tobytes()


def test_rechunk_feeding_other_work_still_runs(a):
    x = cdask.from_array(a, chunks=(10, 80))
    y = x.rechunk((60, 7))
    r = (y.sum(axis=0), y.map_blocks(lambda b: b * b.shape[1]))
    assert np.allclose(r[0].compute(), a.sum(axis=0))
    want = np.concatenate([a[:, i:i + 7] * a[:, i:i + 7].shape[1] for i in range(0, 80, 7)],
                          axis=1)
    assert np.array_equal(r[1].compute(), want)
