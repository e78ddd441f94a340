"""cdask.array creation: from_array, from_npy, ones/zeros/full/empty(+_like),
arange, linspace, eye, random; chunk normalization."""

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import cdask as da
from cdask.array.chunks import normalize_chunks, parse_bytes

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64", "complex64", "complex128"]


@st.composite
def shape_and_chunks(draw, max_ndim=3, max_side=9):
    nd = draw(st.integers(0, max_ndim))
    shape = tuple(draw(st.integers(0, max_side)) for _ in range(nd))
    chunks = []
    for s in shape:
        kind = draw(st.sampled_from(["int", "ragged", "full", "one"]))
        if s == 0:
            chunks.append((0,))
        elif kind == "int":
            chunks.append(draw(st.integers(1, s + 2)))
        elif kind == "one":
            chunks.append(1)
        elif kind == "full":
            chunks.append(-1)
        else:
            parts = []
            left = s
            while left:
                p = draw(st.integers(1, left))
                parts.append(p)
                left -= p
            chunks.append(tuple(parts))
    return shape, tuple(chunks)


# --------------------------------------------------------------------- chunks

def test_normalize_chunks_forms():
    assert normalize_chunks(4, (10, 5)) == ((4, 4, 2), (4, 1))
    assert normalize_chunks((4, -1), (10, 5)) == ((4, 4, 2), (5,))
    assert normalize_chunks((4, None), (10, 5)) == ((4, 4, 2), (5,))
    assert normalize_chunks({0: 3}, (6, 5)) == ((3, 3), (5,))
    assert normalize_chunks({-1: 2}, (2, 5)) == ((2,), (2, 2, 1))
    assert normalize_chunks(((2, 3), (5,)), (5, 5)) == ((2, 3), (5,))
    assert normalize_chunks(((2, 3),)) == ((2, 3),)
    assert normalize_chunks((2, 3), (5,)) == ((2, 3),)
    assert normalize_chunks("auto", (2, 3), dtype="i4") == ((2,), (3,))
    assert normalize_chunks("1kiB", (2000,), dtype="f4")[0][0] == 256
    assert normalize_chunks(("auto",), (20,), limit=5, dtype="u1") == ((5, 5, 5, 5),)
    assert normalize_chunks((), (0, 0)) == ((0,), (0,))
    assert normalize_chunks(5, (0,)) == ((0,),)
    c = normalize_chunks((1, (math.nan,)), (1, math.nan))
    assert c[0] == (1,) and math.isnan(c[1][0])


def test_auto_chunks_default_target():
    (c0, c1) = normalize_chunks("auto", (100_000, 100_000), dtype="f8")
    nbytes = c0[0] * c1[0] * 8
    assert 32 * 2**20 <= nbytes <= 64 * 2**20
    # config changes the target
    with da.config.set({"array.chunk-size": "1MiB"}):
        (c,) = normalize_chunks("auto", (10**7,), dtype="f8")
        assert c[0] * 8 <= 2**20
    assert normalize_chunks("64MiB", (10**9,), dtype="u1")[0][0] == 64 * 2**20


def test_parse_bytes():
    assert parse_bytes("64MiB") == 64 * 2**20
    assert parse_bytes("1GB") == 10**9
    assert parse_bytes("500 kB") == 500_000
    assert parse_bytes(123) == 123
    with pytest.raises(ValueError):
        parse_bytes("12 parsecs")


@pytest.mark.parametrize("chunks, shape, words", [
    (((2, 2),), (5,), ["axis 0", "add up"]),
    (((2, -1, 4),), (5,), ["axis 0", "negative"]),
    ((0,), (5,), ["axis 0", "positive"]),
    ((-3,), (5,), ["axis 0", "positive"]),
    ((2, 2), (5, 5, 5), ["3 dimensions"]),
    (((),), (5,), ["axis 0", "empty"]),
    ((2, (1, 1)), (4, 3), ["axis 1", "add up"]),
    ((2, "bogus"), (4, 3), ["byte size"]),
])
def test_normalize_chunks_errors(chunks, shape, words):
    with pytest.raises(ValueError) as ei:
        normalize_chunks(chunks, shape)
    for w in words:
        assert w in str(ei.value)


@SETTINGS
@given(shape_and_chunks())
def test_normalize_chunks_sums(sc):
    shape, chunks = sc
    c = normalize_chunks(chunks, shape)
    assert len(c) == len(shape)
    for cc, s in zip(c, shape):
        assert sum(cc) == s
        assert all(x >= 0 for x in cc)


# ----------------------------------------------------------------- from_array

@SETTINGS
@given(shape_and_chunks(), st.sampled_from(DTYPES))
def test_from_array_roundtrip(sc, dtype):
    shape, chunks = sc
    a = (np.arange(int(np.prod(shape))) % 7).astype(dtype).reshape(shape)
    x = da.from_array(a, chunks=chunks)
    assert x.shape == a.shape and x.dtype == a.dtype
    r = x.compute()
    assert isinstance(r, (np.ndarray, np.generic))
    np.testing.assert_array_equal(r, a)
    assert np.asarray(x).dtype == a.dtype


def test_from_array_no_copy_of_source_and_deterministic():
    a = np.arange(100.0)
    x = da.from_array(a, chunks=10)
    y = da.from_array(a, chunks=10)
    assert x.name == y.name
    assert da.from_array(a, chunks=20).name != x.name
    assert da.from_array(a + 1, chunks=10).name != x.name
    r = x.compute()
    assert r is not a and not np.shares_memory(r, a)


class ArrayLike:
    """h5py/zarr-like: shape, dtype, __getitem__; records the reads."""

    def __init__(self, a):
        self.a = a
        self.shape = a.shape
        self.dtype = a.dtype
        self.reads = []

    def __getitem__(self, idx):
        self.reads.append(idx)
        return self.a[idx].copy()


def test_from_array_arraylike_reads_only_blocks():
    a = np.arange(60.0).reshape(6, 10)
    src = ArrayLike(a)
    x = da.from_array(src, chunks=(3, 5))
    assert x.numblocks == (2, 2)
    np.testing.assert_array_equal(x.compute(), a)
    assert len(src.reads) == 4
    for r in src.reads:
        assert src.a[r].size == 15
    src.reads.clear()
    np.testing.assert_array_equal(x[:3, :5].compute(), a[:3, :5])
    assert len(src.reads) == 1


def test_from_array_memmap_is_not_loaded(tmp_path):
    fn = tmp_path / "m.dat"
    mm = np.memmap(fn, dtype="f8", mode="w+", shape=(100, 8))
    mm[:] = np.arange(800).reshape(100, 8)
    mm.flush()
    ro = np.memmap(fn, dtype="f8", mode="r", shape=(100, 8))
    x = da.from_array(ro, chunks=(10, 8))
    g = x.__dask_graph__()
    # every task holds the memmap itself and a block's slices, not data
    for k, v in g.items():
        assert isinstance(v, tuple) and callable(v[0])
        assert v[1] is ro
    np.testing.assert_array_equal(x.compute(), np.arange(800).reshape(100, 8))
    np.testing.assert_array_equal(x[55:57].compute(), np.arange(800).reshape(100, 8)[55:57])


def test_unsupported_dtypes():
    for bad in [np.array(["a", "b"]), np.array([object(), 1], dtype=object),
                np.zeros(3, dtype="V4"), np.zeros(2, dtype=[("x", "f8")])]:
        with pytest.raises(TypeError) as ei:
            da.from_array(bad)
        msg = str(ei.value)
        assert "float64" in msg and "complex128" in msg and "uint64" in msg
    with pytest.raises(TypeError):
        da.ones(3, dtype=object)
    with pytest.raises(TypeError):
        da.zeros(3, dtype="U3")


# -------------------------------------------------------------------- from_npy

@pytest.mark.parametrize("shape, dtype, order", [
    ((10,), "f8", "C"), ((7, 5), "i4", "C"), ((7, 5), "c16", "F"), ((0, 3), "f4", "C"),
    ((), "u2", "C"), ((4, 1, 3), "bool", "C")])
def test_from_npy(tmp_path, shape, dtype, order):
    a = np.asarray((np.arange(int(np.prod(shape))) % 5).reshape(shape).astype(dtype), order=order)
    fn = tmp_path / "a.npy"
    np.save(fn, a)
    x = da.from_npy(fn, chunks=2 if shape else ())
    assert x.shape == a.shape and x.dtype == a.dtype
    np.testing.assert_array_equal(x.compute(), a)
    if a.size:
        np.testing.assert_array_equal((x + 1).compute(), a + 1)


def test_from_npy_memmaps(tmp_path):
    a = np.arange(1000.0)
    fn = tmp_path / "big.npy"
    np.save(fn, a)
    x = da.from_npy(str(fn), chunks=100)
    vals = [v for v in x.__dask_graph__().values()]
    assert all(isinstance(v[1], np.memmap) for v in vals)
    np.testing.assert_array_equal(x[250:260].compute(), a[250:260])


def test_from_npy_missing(tmp_path):
    fn = tmp_path / "nope.npy"
    with pytest.raises(FileNotFoundError) as ei:
        da.from_npy(fn)
    assert "nope.npy" in str(ei.value)


def test_from_npy_truncated(tmp_path):
    fn = tmp_path / "t.npy"
    np.save(fn, np.arange(100.0))
    data = fn.read_bytes()
    fn.write_bytes(data[:-40])
    with pytest.raises(ValueError) as ei:
        da.from_npy(fn)
    assert "t.npy" in str(ei.value) and "truncated" in str(ei.value)
    # only part of the header
    fn.write_bytes(data[:30])
    with pytest.raises(ValueError) as ei:
        da.from_npy(fn)
    assert "t.npy" in str(ei.value)


@pytest.mark.parametrize("payload", [b"", b"hello world", b"\x93NUMPY\x01\x00\x10\x00{'descr': 12}   \n",
                                     b"\x93NUMPY\x09\x00garbage"])
def test_from_npy_corrupt(tmp_path, payload):
    fn = tmp_path / "c.npy"
    fn.write_bytes(payload)
    with pytest.raises(ValueError) as ei:
        da.from_npy(fn)
    assert "c.npy" in str(ei.value)


def test_from_npy_object(tmp_path):
    fn = tmp_path / "o.npy"
    np.save(fn, np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(TypeError) as ei:
        da.from_npy(fn)
    assert "o.npy" in str(ei.value)


# ------------------------------------------------------------- constructors

@SETTINGS
@given(shape_and_chunks(), st.sampled_from(DTYPES))
def test_filled(sc, dtype):
    shape, chunks = sc
    np.testing.assert_array_equal(da.ones(shape, dtype=dtype, chunks=chunks).compute(),
                                  np.ones(shape, dtype=dtype))
    np.testing.assert_array_equal(da.zeros(shape, dtype=dtype, chunks=chunks).compute(),
                                  np.zeros(shape, dtype=dtype))
    f = da.full(shape, 3, dtype=dtype, chunks=chunks)
    np.testing.assert_array_equal(f.compute(), np.full(shape, 3, dtype=dtype))
    e = da.empty(shape, dtype=dtype, chunks=chunks)
    assert e.compute().shape == shape and e.dtype == np.dtype(dtype)


def test_filled_tasks_make_their_block():
    x = da.ones((10, 10), chunks=(5, 4))
    g = x.__dask_graph__()
    assert len(g) == 6
    shapes = sorted(v[1] for v in g.values())
    assert (5, 2) in shapes and (5, 4) in shapes


def test_like():
    a = np.arange(12.0).reshape(3, 4)
    x = da.from_array(a, chunks=2)
    for f, nf in [(da.ones_like, np.ones_like), (da.zeros_like, np.zeros_like)]:
        y = f(x)
        assert y.chunks == x.chunks
        np.testing.assert_array_equal(y.compute(), nf(a))
        np.testing.assert_array_equal(f(a).compute(), nf(a))
        assert f(x, dtype="i4").dtype == np.dtype("i4")
    np.testing.assert_array_equal(da.full_like(x, 7).compute(), np.full_like(a, 7))
    assert da.empty_like(x).shape == (3, 4)
    assert da.full((2,), 1.5).dtype == np.float64
    assert da.full((2,), 1).dtype == np.array(1).dtype


@SETTINGS
@given(st.integers(-20, 20), st.integers(-20, 40), st.sampled_from([1, 2, 3, -1, -2, 7]),
       st.integers(1, 6), st.sampled_from([None, "i1", "i4", "f4", "f8", "u2"]))
def test_arange_ints(start, stop, step, ch, dtype):
    try:
        expect = np.arange(start, stop, step, dtype=dtype)
    except Exception:
        return
    if expect.size == 0 and dtype is None:
        pass
    x = da.arange(start, stop, step, chunks=ch, dtype=dtype)
    assert x.dtype == expect.dtype and x.shape == expect.shape
    np.testing.assert_array_equal(x.compute(), expect)


@SETTINGS
@given(st.floats(-100, 100), st.floats(-100, 100), st.floats(0.01, 10), st.booleans(),
       st.integers(1, 50), st.sampled_from([None, "f4"]))
def test_arange_floats_bitwise(start, stop, step, neg, ch, dtype):
    if neg:
        step = -step
    expect = np.arange(start, stop, step, dtype=dtype)
    x = da.arange(start, stop, step, chunks=ch, dtype=dtype)
    assert x.shape == expect.shape and x.dtype == expect.dtype
    r = x.compute()
    assert r.tobytes() == expect.tobytes()


def test_arange_forms():
    np.testing.assert_array_equal(da.arange(10).compute(), np.arange(10))
    np.testing.assert_array_equal(da.arange(2, 10, chunks=3).compute(), np.arange(2, 10))
    np.testing.assert_array_equal(da.arange(0.0, 1.0, 0.1, chunks=4).compute(),
                                  np.arange(0.0, 1.0, 0.1))
    with pytest.raises(ValueError):
        da.arange(0, 10, 0)


@SETTINGS
@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.integers(0, 60), st.booleans(),
       st.integers(1, 20), st.sampled_from([None, "f4", "i8"]))
def test_linspace_bitwise(start, stop, num, endpoint, ch, dtype):
    expect = np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype)
    x = da.linspace(start, stop, num, endpoint=endpoint, chunks=ch, dtype=dtype)
    assert x.shape == expect.shape and x.dtype == expect.dtype
    assert x.compute().tobytes() == expect.tobytes()


def test_linspace_retstep():
    x, step = da.linspace(0, 1, 11, retstep=True, chunks=3)
    e, estep = np.linspace(0, 1, 11, retstep=True)
    assert step == estep
    np.testing.assert_array_equal(x.compute(), e)


@SETTINGS
@given(st.integers(0, 9), st.one_of(st.none(), st.integers(0, 9)), st.integers(-10, 10),
       st.integers(1, 5), st.sampled_from(["f8", "i4", "bool"]))
def test_eye(N, M, k, ch, dtype):
    x = da.eye(N, chunks=ch, M=M, k=k, dtype=dtype)
    np.testing.assert_array_equal(x.compute(), np.eye(N, M, k=k, dtype=dtype))
    assert x.dtype == np.dtype(dtype)


# ---------------------------------------------------------------------- random

def test_random_reproducible_and_worker_independent():
    r1 = da.random.default_rng(42).random((50, 40), chunks=(7, 9)).compute(num_workers=1)
    r2 = da.random.default_rng(42).random((50, 40), chunks=(7, 9)).compute(num_workers=2)
    r3 = da.random.default_rng(43).random((50, 40), chunks=(7, 9)).compute()
    assert r1.tobytes() == r2.tobytes()
    assert not np.array_equal(r1, r3)
    assert ((r1 >= 0) & (r1 < 1)).all()
    # blocks are independent streams
    assert not np.array_equal(r1[:7, :9], r1[7:14, :9])


def test_random_successive_calls_differ():
    g = da.random.default_rng(0)
    a = g.random(100, chunks=10)
    b = g.random(100, chunks=10)
    assert a.name != b.name
    assert not np.array_equal(a.compute(), b.compute())
    g2 = da.random.default_rng(0)
    np.testing.assert_array_equal(g2.random(100, chunks=10).compute(), a.compute())


def test_random_methods():
    g = da.random.default_rng(1)
    n = g.normal(5.0, 2.0, size=(20000,), chunks=3000).compute()
    assert abs(n.mean() - 5.0) < 0.1 and abs(n.std() - 2.0) < 0.1
    s = g.standard_normal((1000,), chunks=100, dtype="f4")
    assert s.dtype == np.float32 and s.compute().dtype == np.float32
    u = g.uniform(-3, -1, size=(500, 3), chunks=(100, 3)).compute()
    assert u.min() >= -3 and u.max() < -1
    i = g.integers(0, 10, size=(1000,), chunks=99, dtype="i2")
    iv = i.compute()
    assert i.dtype == np.int16 and iv.dtype == np.int16 and iv.min() >= 0 and iv.max() < 10
    assert set(np.unique(iv)) == set(range(10))
    j = g.integers(5, size=(50,)).compute()
    assert j.max() < 5
    assert g.random().shape == ()
    assert isinstance(float(g.random().compute()), float)


@pytest.mark.parametrize("args", [(10.0,), (0, 10.0, 1), (0.5, 10, 1), (0, 10, 0.5),
                                  (np.float32(0), 10, 1), (0, np.float16(10), 1),
                                  (np.int8(0), np.int8(10), np.int8(1)), (3, 10, np.float32(2))])
def test_arange_dtype_follows_every_argument(args):
    # NumPy's dtype of arange depends on stop's type too: arange(10.) is float64
    a = np.arange(*args)
    x = da.arange(*args, chunks=3)
    assert x.dtype == a.dtype
    np.testing.assert_array_equal(x.compute(), a)
    assert x.compute().dtype == a.dtype
