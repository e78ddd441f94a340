"""Stored fused blocks of large files written with direct I/O
(blockio.direct_store): each block is computed into an aligned buffer and
its whole pages go to the disk with O_DIRECT, the partial pages at either
end through the page cache.  The bytes equal NumPy's; a filesystem that
refuses O_DIRECT gets buffered writes without an error; a failed write
leaves no file behind."""

import errno
import os

import numpy as np
import pytest

import cdask as da
from cdask.array import blockio
from cdask.array import fuse


def _chain(x):
    return ((x + 1) * 2) ** 3


@pytest.fixture
def direct(monkeypatch):
    """Every file counts as large; returns the list the spy of
    direct_store appends a 1 to per block and the one _pwrite_direct
    appends its result to."""
    stores, writes = [], []
    real_store, real_write = blockio.direct_store, blockio._pwrite_direct

    def store(*a):
        stores.append(1)
        return real_store(*a)

    def write(*a):
        r = real_write(*a)
        writes.append(r)
        return r

    monkeypatch.setattr(fuse, "direct_store", store)
    monkeypatch.setattr(blockio, "_pwrite_direct", write)
    with da.config.set({"array.direct_write_min": 1}):
        yield stores, writes


def _odirect_ok(d):
    p = os.path.join(d, "probe")
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
    except OSError:
        return False
    os.close(fd)
    os.unlink(p)
    return True


@pytest.mark.parametrize("shape,chunks", [
    ((1000, 3001), (97, 3001)),         # row blocks: unaligned offsets and lengths
    ((700, 1024), (128, 1024)),         # page-multiple rows after a 128-byte header
    ((3_000_000,), (262_147,)),         # 1-d, a small last block (not direct)
])
def test_direct_stores_equal_numpy(direct, tmp_path, shape, chunks):
    stores, writes = direct
    a = np.random.default_rng(1).random(shape)
    np.save(tmp_path / "a.npy", a)
    x = da.from_npy(tmp_path / "a.npy", chunks=chunks)
    want = _chain(a)
    for w in (1, 2):
        p = tmp_path / ("b%d.npy" % w)
        _chain(x).to_npy(p, num_workers=w)
        got = np.load(p)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    big = sum(1 for c in x.blocks.ravel() if c.nbytes >= blockio._DIRECT_BLOCK_MIN)
    assert len(stores) == 2 * big > 0
    if _odirect_ok(str(tmp_path)):
        assert writes and all(writes)
    # the file is complete for a reader that maps it, as for one that reads it
    assert np.array_equal(np.load(tmp_path / "b2.npy", mmap_mode="r"), want)


def test_column_blocks_and_small_files_stay_buffered(direct, tmp_path):
    stores, _ = direct
    a = np.random.default_rng(2).random((600, 800))
    np.save(tmp_path / "a.npy", a)
    x = da.from_npy(tmp_path / "a.npy", chunks=(600, 200))    # not contiguous in the file
    _chain(x).to_npy(tmp_path / "b.npy")
    assert np.array_equal(np.load(tmp_path / "b.npy"), _chain(a))
    assert not stores
    with da.config.set({"array.direct_write_min": 10 ** 12}):
        y = da.from_npy(tmp_path / "a.npy", chunks=(300, 800))
        _chain(y).to_npy(tmp_path / "c.npy")
    assert np.array_equal(np.load(tmp_path / "c.npy"), _chain(a)) and not stores


@pytest.mark.parametrize("where", ["open", "pwrite"])
def test_a_filesystem_refusing_o_direct_gets_buffered_writes(direct, tmp_path, monkeypatch,
                                                             where):
    """EINVAL from open(O_DIRECT) or from the first direct write (tmpfs,
    some FUSE and network filesystems): the same bytes, no error."""
    stores, writes = direct
    real_open, real_pwrite = os.open, os.pwrite
    direct_fds = set()

    def fake_open(path, flags, *a, **k):
        if flags & os.O_DIRECT:
            if where == "open":
                raise OSError(errno.EINVAL, "Invalid argument")
            fd = real_open(path, flags & ~os.O_DIRECT, *a, **k)
            direct_fds.add(fd)
            return fd
        return real_open(path, flags, *a, **k)

    def fake_pwrite(fd, data, at):
        if fd in direct_fds:
            direct_fds.discard(fd)          # closed next: its number is reused
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, at)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "pwrite", fake_pwrite)
    a = np.random.default_rng(3).random((900, 2000))
    np.save(tmp_path / "a.npy", a)
    x = da.from_npy(tmp_path / "a.npy", chunks=(100, 2000))
    _chain(x).to_npy(tmp_path / "b.npy")
    assert np.array_equal(np.load(tmp_path / "b.npy"), _chain(a))
    assert len(stores) == 9 and writes and not any(writes)


def test_a_failed_direct_write_leaves_no_file(direct, tmp_path, monkeypatch):
    """ENOSPC in the middle of the direct writes: to_npy raises it, and
    neither the target nor its temporary file is left."""
    real_pwrite = os.pwrite
    count = [0]

    def fake_pwrite(fd, data, at):
        count[0] += 1
        if count[0] == 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, at)

    a = np.random.default_rng(4).random((900, 2000))
    np.save(tmp_path / "a.npy", a)
    x = da.from_npy(tmp_path / "a.npy", chunks=(100, 2000))
    monkeypatch.setattr(os, "pwrite", fake_pwrite)
    with pytest.raises(OSError, match="No space left"):
        _chain(x).to_npy(tmp_path / "b.npy")
    assert sorted(os.listdir(tmp_path)) == ["a.npy"]


def test_buffers_are_reused_then_released(direct, tmp_path, monkeypatch):
    a = np.random.default_rng(5).random((800, 2048))
    np.save(tmp_path / "a.npy", a)
    x = da.from_npy(tmp_path / "a.npy", chunks=(100, 2048))
    real_take = blockio._take_buffer
    taken = []

    def take(n, phase):
        raw, buf = real_take(n, phase)
        taken.append(raw.ctypes.data)
        assert (buf.ctypes.data - phase) % blockio._ALIGN == 0 and buf.size == n
        return raw, buf

    monkeypatch.setattr(blockio, "_take_buffer", take)
    _chain(x).to_npy(tmp_path / "b.npy", num_workers=1)
    # one worker: one buffer serves every block, and is freed at the end
    assert len(taken) == 8 and len(set(taken)) == 1
    assert blockio._spare == []
    assert np.array_equal(np.load(tmp_path / "b.npy"), _chain(a))


# -- reads --------------------------------------------------------------------

def _evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.fixture
def reads(monkeypatch):
    """The list the spy of _direct_read appends its result's kind to."""
    seen = []
    real = blockio._direct_read

    def spy(x, v, **kw):
        r = real(x, v, **kw)
        seen.append(None if r is None else "direct")
        return r

    monkeypatch.setattr(blockio, "_direct_read", spy)
    return seen


@pytest.mark.parametrize("shape,chunks", [
    ((1000, 3001), (97, 3001)),         # unaligned offsets and lengths
    ((3_000_000,), (262_147,)),         # a small last block: read through the mapping
    ((600, 800), (600, 200)),           # column blocks: pread, not direct
])
def test_direct_reads_equal_numpy(reads, tmp_path, shape, chunks):
    a = np.random.default_rng(6).standard_normal(shape)
    np.save(tmp_path / "a.npy", a)
    with da.config.set({"array.direct_read": True}):
        x = da.from_npy(tmp_path / "a.npy", chunks=chunks)
        assert np.array_equal(x.compute(), a)
        np.testing.assert_allclose(float(x[x > 0].mean().compute()), a[a > 0].mean(),
                                   rtol=1e-12)
        _chain(x).to_npy(tmp_path / "b.npy")
    assert np.array_equal(np.load(tmp_path / "b.npy"), _chain(a))
    contiguous = len(shape) == 1 or chunks[1] == shape[1]
    big = contiguous * sum(c.nbytes >= blockio._DIRECT_BLOCK_MIN for c in x.blocks.ravel())
    if _odirect_ok(str(tmp_path)):
        assert reads.count("direct") == 3 * big      # 3 computes read every block
    # off: the mapping, as before
    reads.clear()
    with da.config.set({"array.direct_read": False}):
        x = da.from_npy(tmp_path / "a.npy", chunks=chunks)
        assert np.array_equal(x.compute(), a)
    assert not reads


def test_auto_reads_cold_large_files_directly_and_cached_ones_in_place(reads, tmp_path):
    a = np.random.default_rng(7).random((800, 4096))
    p = str(tmp_path / "a.npy")
    np.save(p, a)
    x = da.from_npy(p, chunks=(100, 4096))
    np.asarray(np.load(p, mmap_mode="r")).sum()        # in the page cache
    with da.config.set({"array.direct_write_min": 1}):
        assert float(x.sum().compute()) == pytest.approx(a.sum(), rel=1e-12)
        assert not reads                                 # cached: read in place
        _evict(p)
        blockio._cold_files.clear()
        assert float(x.sum().compute()) == pytest.approx(a.sum(), rel=1e-12)
        if _odirect_ok(str(tmp_path)):
            assert reads.count("direct") == 8
    reads.clear()
    _evict(p)
    blockio._cold_files.clear()
    assert float(x.sum().compute()) == pytest.approx(a.sum(), rel=1e-12)
    assert not reads                                     # a small file: the mapping


def test_direct_reads_fall_back_where_o_direct_is_refused(reads, tmp_path, monkeypatch):
    real_open = os.open

    def fake_open(path, flags, *a, **k):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *a, **k)

    a = np.random.default_rng(8).random((900, 2000))
    np.save(tmp_path / "a.npy", a)
    monkeypatch.setattr(os, "open", fake_open)
    with da.config.set({"array.direct_read": True}):
        x = da.from_npy(tmp_path / "a.npy", chunks=(100, 2000))
        assert np.array_equal(x.compute(), a)
        assert np.array_equal(_chain(x).compute(), _chain(a))
    assert reads and not any(reads)


def test_fused_tasks_read_their_cold_blocks_into_reused_buffers(reads, tmp_path, monkeypatch):
    """A fused reduction or chain reads its blocks itself (direct_call):
    one worker, one buffer for every block, freed when the compute ends."""
    calls = []
    real = blockio.direct_call

    def spy(*a):
        calls.append(1)
        return real(*a)

    taken = []
    real_take = blockio._take_buffer

    def take(n, phase):
        raw, buf = real_take(n, phase)
        taken.append(raw.ctypes.data)
        return raw, buf

    monkeypatch.setattr(fuse, "direct_call", spy)
    monkeypatch.setattr(blockio, "_take_buffer", take)
    a = np.random.default_rng(9).standard_normal((1000, 2048))
    np.save(tmp_path / "a.npy", a)
    with da.config.set({"array.direct_read": True}):
        x = da.from_npy(tmp_path / "a.npy", chunks=(125, 2048))
        m = float(x[x > 0].mean().compute(num_workers=1))
        y = _chain(x).sum(axis=1).compute(num_workers=1)
    np.testing.assert_allclose(m, a[a > 0].mean(), rtol=1e-12)
    np.testing.assert_allclose(y, _chain(a).sum(axis=1), rtol=1e-12)
    assert len(calls) == 16
    if _odirect_ok(str(tmp_path)):
        assert reads.count("direct") == 16
        assert len(taken) == 16 and len(set(taken)) <= 2
    assert blockio._spare == []


@pytest.mark.parametrize("expr", ["x.sum()", "x[x > 0].mean()", "x", "(x + 1) * 2"])
def test_a_file_shrunk_under_direct_reads_raises_oserror_naming_it(tmp_path, expr):
    p = str(tmp_path / "a.npy")
    a = np.random.default_rng(9).random((800, 4096))
    np.save(p, a)
    with da.config.set({"array.direct_read": True}):
        x = da.from_npy(p, chunks=(100, 4096))
        os.truncate(p, 128 + 8 * 4096 * 250)         # a quarter of it left
        with pytest.raises(OSError, match="shorter than when it was mapped") as e:
            eval(expr).compute()
    assert p in str(e.value)
