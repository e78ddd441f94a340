"""store / to_npy / from_raw: blocks written where they go, files that are
complete or absent, raw files checked before they are mapped."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask

DTYPES = ["bool", "int8", "uint16", "int32", "int64", "float32", "float64", "complex64",
          "complex128"]


@st.composite
def arrays(draw):
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.integers(0, 7)) for _ in range(ndim))
    dtype = draw(st.sampled_from(DTYPES))
    chunks = tuple(draw(st.integers(1, max(s, 1))) for s in shape)
    seed = draw(st.integers(0, 2**32 - 1))
    xn = (np.random.default_rng(seed).standard_normal(shape) * 20).astype(dtype)
    return xn, chunks


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(arrays())
def test_to_npy_round_trip(tmp_path, xc):
    xn, chunks = xc
    x = cdask.from_array(xn, chunks=chunks)
    p = tmp_path / "x.npy"
    x.to_npy(p)
    back = np.load(p)
    assert back.dtype == xn.dtype and back.shape == xn.shape
    assert back.tobytes() == xn.tobytes()
    y = cdask.from_npy(p, chunks=chunks)
    assert y.compute().tobytes() == xn.tobytes()
    assert sorted(os.listdir(tmp_path)) == ["x.npy"]          # no temporary left


def test_to_npy_of_a_fused_chain_and_store_targets(tmp_path):
    xn = np.random.default_rng(0).standard_normal((300, 200))
    x = cdask.from_array(xn, chunks=(70, 60))
    e = (x * 2 + 1) ** 3
    e.to_npy(tmp_path / "e.npy")
    assert np.load(tmp_path / "e.npy").tobytes() == ((xn * 2 + 1) ** 3).tobytes()
    out = np.zeros((300, 200))
    cdask.store(e, out)
    assert out.tobytes() == ((xn * 2 + 1) ** 3).tobytes()
    mm = np.lib.format.open_memmap(tmp_path / "m.npy", mode="w+", dtype="f8", shape=(300, 200))
    cdask.store([x + 1, x - 1], [mm, np.zeros((300, 200))])
    mm.flush()
    assert np.load(tmp_path / "m.npy").tobytes() == (xn + 1).tobytes()
    big = np.zeros((400, 300))
    cdask.store(x, big, regions=(slice(50, 350), slice(100, 300)))
    assert np.array_equal(big[50:350, 100:300], xn)
    assert big.sum() == pytest.approx(xn.sum())


class _Recorder:
    """A target with only __setitem__ (as zarr and h5py arrays have)."""

    def __init__(self, shape, dtype):
        self.data = np.zeros(shape, dtype)
        self.shape = shape
        self.calls = 0

    def __setitem__(self, idx, value):
        self.calls += 1
        self.data[idx] = value


def test_store_into_any_setitem_target():
    xn = np.arange(60.0).reshape(6, 10)
    x = cdask.from_array(xn, chunks=(2, 5))
    t = _Recorder((6, 10), "f8")
    cdask.store(x * 2, t)
    assert np.array_equal(t.data, xn * 2) and t.calls == 6
    t2 = _Recorder((10, 12), "f8")
    cdask.store(x, t2, regions=(slice(2, 8), slice(1, 11)))
    assert np.array_equal(t2.data[2:8, 1:11], xn) and t2.data.sum() == xn.sum()


def test_failed_compute_leaves_no_file(tmp_path):
    x = cdask.from_array(np.arange(10.0), chunks=3)
    bad = x.map_blocks(_boom, dtype=float)
    p = tmp_path / "out.npy"
    with pytest.raises(RuntimeError, match="boom"):
        bad.to_npy(p)
    assert os.listdir(tmp_path) == []
    p.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="boom"):
        bad.to_npy(p)
    assert p.read_bytes() == b"old contents"             # the old file is untouched
    assert os.listdir(tmp_path) == ["out.npy"]


def _boom(b):
    if b[0] >= 6:
        raise RuntimeError("boom")
    return b


def test_bad_targets_raise_before_any_work(tmp_path):
    calls = []
    x = cdask.from_array(np.arange(10.0), chunks=3).map_blocks(
        lambda b: calls.append(1) or b, dtype=float)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        x.to_npy(tmp_path / "missing" / "x.npy")
    with pytest.raises(IsADirectoryError):
        x.to_npy(tmp_path)
    with pytest.raises(ValueError, match="does not match target shape"):
        cdask.store(x, np.zeros(11))
    with pytest.raises(TypeError, match="__setitem__"):
        cdask.store(x, 5)
    u = x[x > 3]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        u.to_npy(tmp_path / "u.npy")
    assert calls == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            cdask.ones(10, chunks=3).to_npy(d / "x.npy")
    finally:
        d.chmod(0o700)


def test_full_disk_raises_oserror_and_cleans_up(tmp_path):
    # RLIMIT_FSIZE stands in for a full disk: the space is reserved before
    # anything is written through the mapping, so the failure is an OSError
    # naming the path (not SIGBUS), and no file is left behind
    code = textwrap.dedent(f"""
        import os, resource, signal, sys
        import cdask
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        x = cdask.ones((1000, 1000), chunks=(250, 1000))          # 8 MB
        try:
            x.to_npy({str(tmp_path / "big.npy")!r})
        except OSError as e:
            print("OSError", "big.npy" in str(e), e.errno)
        print(sorted(os.listdir({str(tmp_path)!r})))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("OSError True"), r.stdout
    assert lines[1] == "[]"


def test_from_raw(tmp_path):
    xn = np.random.default_rng(1).standard_normal((30, 20))
    p = tmp_path / "x.raw"
    with open(p, "wb") as f:
        f.write(b"HEAD" * 4)
        f.write(xn.astype(">f4").tobytes())
    y = cdask.from_raw(p, ">f4", (30, 20), offset=16, chunks=(7, 9))
    assert np.array_equal(y.compute(), xn.astype(">f4"))
    z = cdask.from_raw(p, "f8", 300, offset=16)
    assert z.shape == (300,)
    f = cdask.from_raw(p, ">f4", (20, 30), offset=16, order="F")
    assert np.array_equal(f.compute(), np.asarray(xn.astype(">f4").ravel().reshape((20, 30), order="F")))
    with pytest.raises(ValueError, match="x.raw"):
        cdask.from_raw(p, "f8", (30, 21), offset=16)
    with pytest.raises(FileNotFoundError):
        cdask.from_raw(tmp_path / "nope", "f8", 3)
    with pytest.raises(ValueError, match="order"):
        cdask.from_raw(p, "f8", 3, order="K")


def _zarr():
    return pytest.importorskip("zarr")


def _h5py():
    return pytest.importorskip("h5py")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(arrays())
def test_zarr_round_trip(tmp_path_factory, xc):
    zarr = _zarr()
    xn, chunks = xc
    if xn.ndim == 0:
        return
    d = tmp_path_factory.mktemp("z")
    x = cdask.from_array(xn, chunks=chunks)
    x.to_zarr(str(d / "x.zarr"))
    y = cdask.from_zarr(str(d / "x.zarr"))
    got = y.compute()
    assert got.dtype == xn.dtype and got.tobytes() == xn.tobytes()
    z = zarr.open_array(str(d / "x.zarr"), mode="r")
    assert cdask.from_array(z).compute().tobytes() == xn.tobytes()


def test_to_zarr_irregular_chunks_and_existing(tmp_path):
    zarr = _zarr()
    xn = np.arange(100.0).reshape(10, 10)
    x = cdask.from_array(xn, chunks=((3, 5, 2), (4, 6)))      # irregular: rechunked first
    z = x.to_zarr(str(tmp_path / "a.zarr"))
    assert np.array_equal(z[...], xn)
    with pytest.raises(Exception):
        x.to_zarr(str(tmp_path / "a.zarr"))                   # exists, overwrite=False
    (x + 1).to_zarr(str(tmp_path / "a.zarr"), overwrite=True)
    assert np.array_equal(cdask.from_zarr(str(tmp_path / "a.zarr")).compute(), xn + 1)
    target = zarr.zeros((10, 10), chunks=(5, 5), dtype="f8")
    cdask.from_array(xn, chunks=5).to_zarr(target)
    assert np.array_equal(target[...], xn)


def test_h5py_datasets_in_and_out(tmp_path):
    h5py = _h5py()
    xn = np.random.default_rng(3).standard_normal((60, 40))
    with h5py.File(tmp_path / "f.h5", "w") as f:
        ds = f.create_dataset("a", data=xn, chunks=(15, 20))
        x = cdask.from_array(ds, chunks=(15, 20))
        assert np.array_equal((x * 2).compute(), xn * 2)
        out = f.create_dataset("b", shape=(60, 40), dtype="f8")
        cdask.store(x + 1, out)
        assert np.array_equal(out[...], xn + 1)


@pytest.mark.parametrize("dtype", ["<f8", ">i4", "u1", "<c16", ">f4"])
def test_thin_slabs_of_files_read_and_written_with_pread_pwrite(tmp_path, dtype, no_skip_rechunk):
    # column blocks of a C-ordered file (thin slabs: a short run of every
    # row) go through pread/pwrite rather than the mapping; same bytes
    rng = np.random.default_rng(7)
    n, m = 1100, 900
    a = (rng.random((n, m)) * 100).astype(dtype)
    p = tmp_path / "a.npy"
    np.save(p, a)
    x = cdask.from_npy(p, chunks=(n // 3, m))
    for y, want in ((x.rechunk((n, 130)), a), (x.T, a.T), (x[:, 7:811:1].rechunk((n, 97)), a[:, 7:811]),
                    ((x + 1).T, (a + 1).T)):
        out = tmp_path / "y.npy"
        y.to_npy(out)
        got = np.load(out)
        # cdask arrays have native byte order; the values are the same
        assert got.dtype == want.dtype.newbyteorder("=") and np.array_equal(got, want)
        # into a memmap target too (cdask.store), at an offset inside a bigger file
        tgt = np.lib.format.open_memmap(tmp_path / "t.npy", mode="w+", dtype=want.dtype,
                                        shape=(want.shape[0] + 3, want.shape[1] + 5))
        cdask.store(y, tgt, regions=(slice(2, 2 + want.shape[0]), slice(5, None)))
        assert np.array_equal(tgt[2:2 + want.shape[0], 5:], want)
        assert not tgt[:2].any() and not tgt[:, :5].any()
        del tgt
    # the reads are the file's bytes whatever the memmap's own offset
    mm = np.memmap(p, dtype=a.dtype, mode="r", offset=128, shape=(n, m))
    from cdask.array.creation import getter
    from cdask.array.blockio import thin_slab
    for sl in ((slice(5, 900), slice(100, 200)), (slice(0, n, 2), slice(3, 500)), (slice(9, 10), slice(None))):
        g = getter(mm, sl)
        assert g.flags.owndata == thin_slab(mm[sl].view(np.ndarray))
        assert g.tobytes() == np.ascontiguousarray(a[sl]).tobytes()
    assert thin_slab(mm[:, 100:200].view(np.ndarray)) == (a.itemsize * 100 * n >= 256 << 10)


def test_pread_region_errors(tmp_path):
    out = np.empty((4, 8))
    with pytest.raises(OSError, match="missing"):
        cdask._core.pread_region(str(tmp_path / "missing"), 0, (64, 8), out)
    short = tmp_path / "short"
    short.write_bytes(b"\0" * 100)
    with pytest.raises(OSError, match="short"):
        cdask._core.pread_region(str(short), 0, (64, 8), out)
    with pytest.raises(ValueError, match="itemsize"):
        cdask._core.pread_region(str(short), 0, (64, 16), out)


def test_to_npy_syncs_the_directory_after_the_rename(tmp_path, monkeypatch):
    # durable on return: the data synced before the rename, the directory after
    import stat
    events = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(a, b):
        events.append("replace")
        return real_replace(a, b)

    def fsync(fd):
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        return real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    x = cdask.arange(1000.0, chunks=100) + 1
    x.to_npy(tmp_path / "d.npy")
    assert events[-2:] == ["replace", "fsync dir"], events
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), np.arange(1000.0) + 1)
