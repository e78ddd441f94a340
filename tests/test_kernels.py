"""Tests of cdask's built-in C kernels called as Python callables.

Covers: every kernel against NumPy for each dtype it accepts, the
broadcasting rule, error types and messages, inputs that need a copy
(non-contiguous, byte-swapped, unaligned), pickling, and that calls leak
neither chunk memory nor references to their inputs.
"""
import gc
import math
import pickle
import sys

import numpy as np
import pytest

try:  # the OpenBLAS the extension links against must be loadable first
    import scipy_openblas32  # noqa: F401
except ImportError:  # pragma: no cover
    pass

from cdask import _core

K = _core.kernels

INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float32", "float64"]
COMPLEX_DTYPES = ["complex64", "complex128"]
ALL_DTYPES = ["bool"] + INT_DTYPES + FLOAT_DTYPES + COMPLEX_DTYPES


def sample(dtype, shape, seed=0):
    """Random data of dtype covering the whole integer range (to test wrapping)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dt)
    re = rng.standard_normal(shape) * 100
    im = rng.standard_normal(shape) * 100
    return (re + 1j * im).astype(dt)


def assert_same(got, expect):
    """Exact for integers; floats within rounding (NumPy's SIMD loops may use FMA)."""
    got = np.asarray(got)
    expect = np.asarray(expect)
    assert got.dtype == expect.dtype and got.shape == expect.shape
    if got.dtype.kind in "fc":
        single = got.dtype in (np.float32, np.complex64)
        np.testing.assert_allclose(got, expect, rtol=1e-5 if single else 1e-12)
    else:
        np.testing.assert_array_equal(got, expect)


def np_binop(op, a, b):
    with np.errstate(over="ignore", invalid="ignore"):
        if op == "add":
            return np.add(a, b)
        if op == "sub":
            return np.subtract(a, b)
        return np.multiply(a, b)


@pytest.fixture(autouse=True)
def _drain():
    _core._drain_releases()
    yield
    _core._drain_releases()


# ---------------------------------------------------------------- registry


def test_registry_and_attributes():
    assert set(K) == {"add", "sub", "mul", "sum", "ones", "zeros", "dot", "gemm", "spin", "fail",
                      "histogram"}
    for name, k in K.items():
        assert isinstance(k, _core.Kernel)
        assert k.name == name
        assert k.params == b""
        assert isinstance(k.doc, str) and k.doc
        assert k.__doc__ == k.doc
    assert K["add"].min_in == 2 and K["add"].max_in == 2
    assert K["sum"].min_in == 1 and K["sum"].max_in is None
    assert K["fail"].min_in == 0 and K["fail"].max_in is None
    assert repr(K["add"]) == "<cdask kernel 'add'>"
    assert repr(_core.Kernel("add", b"\x01\xff")) == "<cdask kernel 'add' params=01ff>"
    assert _core.Kernel("sum") == K["sum"]
    assert hash(_core.Kernel("sum")) == hash(K["sum"])
    assert _core.Kernel("sum") != K["add"]
    assert _core.Kernel("sum", b"x") != K["sum"]
    assert _core.Kernel("sum", bytearray(b"x")) == _core.Kernel("sum", b"x")
    assert "cdask C kernel" in _core.Kernel.__doc__


def test_unknown_kernel_and_bad_params():
    with pytest.raises(ValueError, match="known kernels: .*add.*sum"):
        _core.Kernel("nope")
    with pytest.raises(TypeError):
        _core.Kernel("add", "not bytes")
    with pytest.raises(TypeError):
        _core.Kernel(3)


@pytest.mark.parametrize("name", ["add", "sum", "dot", "fail"])
def test_pickle_roundtrip(name):
    k = K[name]
    for kk in (k, _core.Kernel(name, b"\x00\x01")):
        for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
            k2 = pickle.loads(pickle.dumps(kk, protocol=proto))
            assert k2 == kk and k2.params == kk.params and k2.name == kk.name
    if name in ("add", "sum"):
        k2 = pickle.loads(pickle.dumps(k))
        np.testing.assert_array_equal(k2(*[np.ones(3)] * k.min_in), k(*[np.ones(3)] * k.min_in))


def test_cloudpickle_roundtrip():
    cloudpickle = pytest.importorskip("cloudpickle")
    task = (K["sum"], [(K["ones"], 3), (K["ones"], 4)])
    task2 = cloudpickle.loads(cloudpickle.dumps(task))
    assert task2[0] == K["sum"]
    assert task2[1][0][0] == K["ones"]
    assert task2[0](*[f(n) for f, n in task2[1]]) == 7.0


# ---------------------------------------------------------------- add, sub, mul


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_binary_vs_numpy(op, dtype):
    if op == "sub" and dtype == "bool":
        with pytest.raises(TypeError, match="kernel 'sub'.*boolean"):
            K[op](np.ones(3, bool), np.ones(3, bool))
        return
    a = sample(dtype, (7, 5), 1)
    b = sample(dtype, (7, 5), 2)
    r = K[op](a, b)
    expect = np_binop(op, a, b)
    assert isinstance(r, np.ndarray)
    assert_same(r, expect)
    # scalar broadcast, both sides
    s = sample(dtype, (), 3)
    assert_same(K[op](a, s), np_binop(op, a, s))
    assert_same(K[op](s, a), np_binop(op, s, a))
    assert_same(K[op](a, np.asarray(s).reshape(1, 1)),
                np_binop(op, a, np.asarray(s).reshape(1, 1)))
    # 0-d op 0-d gives a NumPy scalar, like NumPy
    r0 = K[op](s, s)
    e0 = np_binop(op, s, s)
    assert np.ndim(r0) == 0 and not isinstance(r0, np.ndarray)
    assert_same(r0, e0)


def test_integer_wraparound():
    a = np.array([127, -128, 100], dtype=np.int8)
    b = np.array([1, -1, 100], dtype=np.int8)
    np.testing.assert_array_equal(K["add"](a, b), np.array([-128, 127, -56], np.int8))
    np.testing.assert_array_equal(K["mul"](a, b), (a.astype(int) * b.astype(int)).astype(np.int8))
    big = np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).min], dtype=np.int64)
    np.testing.assert_array_equal(K["add"](big, np.int64(1)), big + np.int64(1))
    np.testing.assert_array_equal(K["mul"](big, big), big * big)
    u = np.array([65535], dtype=np.uint16)
    np.testing.assert_array_equal(K["mul"](u, u), u * u)
    np.testing.assert_array_equal(K["sub"](np.uint8(0), np.uint8(1)), np.uint8(255))


def test_bool_logic():
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    np.testing.assert_array_equal(K["add"](a, b), a | b)
    np.testing.assert_array_equal(K["mul"](a, b), a & b)


def test_broadcast_rules():
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(K["add"](a, np.array([2.0])), a + 2)
    np.testing.assert_array_equal(K["add"](np.array([[2.0]]), a), a + 2)
    np.testing.assert_array_equal(K["add"](a, 2.0), a + 2)
    assert K["add"](np.ones((1,)), np.ones((0,))).shape == (0,)
    assert K["add"](np.ones((0, 3)), np.ones((0, 3))).shape == (0, 3)
    with pytest.raises(ValueError, match=r"kernel 'add'.*\(3, 4\) and \(5,\)"):
        K["add"](a, np.ones(5))
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(4, 3\)"):
        K["mul"](a, a.T.copy())
    # a single element with more dimensions than the other side would change
    # NumPy's result shape: refused rather than silently different
    with pytest.raises(ValueError):
        K["add"](np.ones((1, 1, 1)), np.ones(5))


def test_float16_chunks_refused_by_the_basic_kernels():
    # float16 arithmetic runs NumPy's own loops (the ufunc kernel), not these
    with pytest.raises(TypeError, match="kernel 'add' does not take float16"):
        K["add"](np.ones(3, np.float16), np.ones(3, np.float16))
    with pytest.raises(TypeError, match="kernel 'sum' does not take float16"):
        K["sum"](np.ones(3, np.float16))


def test_mixed_dtypes_refused():
    with pytest.raises(TypeError, match="kernel 'add': inputs have dtypes float64 and int32"):
        K["add"](np.ones(3), np.ones(3, np.int32))
    with pytest.raises(TypeError, match="kernel 'mul'"):
        K["mul"](np.ones(3), 2)  # a Python int is int64
    with pytest.raises(TypeError, match="kernel 'sum'"):
        K["sum"](np.ones(3), np.ones(3, np.float32))


@pytest.mark.parametrize("bad, word", [
    (np.array(["a", "b"]), "<U1"),
    ("abc", "str"),
    (np.array([1, None], dtype=object), "object"),
    (None, "NoneType"),
    (np.ones(3, np.longdouble), "float128"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime64"),
    (np.zeros(2, dtype=[("x", "f8")]), "'x'"),
])
def test_unsupported_values(bad, word):
    with pytest.raises(TypeError) as ei:
        K["add"](np.ones(2), bad)
    msg = str(ei.value)
    assert "argument 2 of kernel 'add'" in msg
    assert word in msg
    assert "float64" in msg  # lists the supported dtypes


class _BadArrayLike:
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("no array for you")


def test_unconvertible_value():
    with pytest.raises(TypeError, match="argument 2 of kernel 'sum'.*_BadArrayLike") as ei:
        K["sum"]([np.ones(3), _BadArrayLike()])
    assert isinstance(ei.value.__cause__, RuntimeError)
    with pytest.raises(TypeError, match="argument 1 of kernel 'sum'.*generator"):
        K["sum"](x for x in range(3))
    with pytest.raises(TypeError, match="too large"):
        K["sum"](10 ** 30)


def test_python_scalars():
    assert K["sum"](True).dtype == np.int64
    r = K["sum"](2 ** 63)
    assert r.dtype == np.uint64 and int(r) == 2 ** 63
    assert K["sum"](-(2 ** 63)) == -(2 ** 63)
    assert K["add"](1.5, 2.25) == 3.75 and K["add"](1.5, 2.25).dtype == np.float64
    z = K["mul"](1 + 2j, 3 - 1j)
    assert z == (1 + 2j) * (3 - 1j) and z.dtype == np.complex128
    assert K["add"](np.float32(1), np.float32(2)).dtype == np.float32
    assert K["add"](np.uint8(250), np.uint8(10)) == np.uint8(4)


def test_wrong_arity():
    with pytest.raises(TypeError, match="kernel 'add' takes 2 inputs, got 3"):
        K["add"](1, 2, 3)
    with pytest.raises(TypeError, match="kernel 'sum' takes 1 or more inputs, got 0"):
        K["sum"]()
    with pytest.raises(TypeError, match="kernel 'sum' takes 1 or more inputs, got 0"):
        K["sum"]([])
    with pytest.raises(TypeError, match="keyword"):
        K["add"](1, b=2)


# ---------------------------------------------------------------- awkward inputs


@pytest.mark.parametrize("dtype", ["int16", "int64", "float32", "float64", "complex128"])
def test_non_contiguous_input(dtype):
    base = sample(dtype, (10, 12), 5)
    a = base[::2, 1::3]
    b = base.T[:6, :4]
    assert not a.flags.c_contiguous
    assert_same(K["add"](a, a), a + a)
    assert_same(K["mul"](b, np.ascontiguousarray(b)), b * b)
    f = np.asfortranarray(base)
    assert_same(K["sub"](f, base), np.zeros_like(base))


@pytest.mark.parametrize("dtype", ["int16", "int32", "uint64", "float32", "float64", "complex64",
                                   "complex128"])
def test_byteswapped_input(dtype):
    a = sample(dtype, (9,), 6)
    swapped = a.astype(np.dtype(dtype).newbyteorder())
    assert not swapped.dtype.isnative
    np.testing.assert_array_equal(K["add"](swapped, a), a + a)
    got = K["sum"](swapped)
    np.testing.assert_allclose(got, np.sum(a), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float64", "complex128"])
def test_unaligned_input(dtype):
    a = sample(dtype, (17,), 7)
    buf = bytearray(a.nbytes + 1)
    un = np.frombuffer(buf, dtype=dtype, count=a.size, offset=1)
    un[...] = a
    assert not un.flags.aligned
    assert_same(K["add"](un, a), a + a)
    assert_same(K["mul"](un, un), a * a)


def test_readonly_and_views_are_fine():
    a = np.arange(10.0)
    a.flags.writeable = False
    np.testing.assert_array_equal(K["add"](a, a), a * 2)


def test_results_are_writeable_and_own_their_memory():
    r = K["add"](np.arange(100.0), np.arange(100.0))
    assert r.flags.writeable and r.flags.c_contiguous
    r[0] = 42  # the chunk memory is ours
    assert r[0] == 42
    base = r.base
    assert type(base).__name__ == "_ChunkOwner"
    del r
    gc.collect()


# ---------------------------------------------------------------- sum


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_sum_vs_numpy(dtype):
    a = sample(dtype, (37, 11), 8)
    b = sample(dtype, (5,), 9)
    c = sample(dtype, (), 10)
    got = K["sum"](a, b, c)
    with np.errstate(over="ignore"):
        expect = np.sum(a) + np.sum(b) + np.sum(c)
    expect_dtype = {"b": np.int64, "i": np.int64, "u": np.uint64}.get(np.dtype(dtype).kind,
                                                                      np.dtype(dtype))
    assert np.ndim(got) == 0 and not isinstance(got, np.ndarray)
    assert got.dtype == expect_dtype
    if np.dtype(dtype).kind in "fc":
        single = dtype in ("float32", "complex64")
        np.testing.assert_allclose(got, expect, rtol=1e-5 if single else 1e-12)
    else:
        assert got == expect.astype(expect_dtype)


def test_sum_list_flattening():
    parts = [np.arange(5.0), np.arange(3.0), 4.0]
    assert K["sum"](parts) == 17.0
    assert K["sum"](parts[:1], (parts[1], [parts[2]])) == 17.0
    assert K["sum"](np.zeros(0)) == 0.0
    assert math.copysign(1.0, K["sum"](np.zeros(0))) == 1.0


@pytest.mark.parametrize("n", [1, 7, 8, 9, 127, 128, 129, 1000, 100_003, 1_000_000])
def test_sum_float_accuracy(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n) + 1.0
    exact = math.fsum(x.tolist())
    err = abs(float(K["sum"](x)) - exact)
    err_np = abs(float(np.sum(x)) - exact)
    tol = 4 * err_np + 8 * np.finfo(np.float64).eps * np.sum(np.abs(x))
    assert err <= tol, (err, err_np)
    # float32: accumulated in double, so at least as good as NumPy's
    x32 = x.astype(np.float32)
    exact32 = math.fsum(x32.astype(np.float64).tolist())
    err32 = abs(float(K["sum"](x32)) - exact32)
    err32_np = abs(float(np.sum(x32)) - exact32)
    assert err32 <= 2 * err32_np + 2 * np.finfo(np.float32).eps * abs(exact32) + 1e-6


def test_sum_pairwise_beats_naive():
    x = np.full(2 ** 20, 0.1, dtype=np.float32)
    exact = math.fsum(x.astype(np.float64).tolist())
    assert abs(float(K["sum"](x)) - exact) / exact < 1e-6


def test_sum_complex_accuracy():
    rng = np.random.default_rng(3)
    z = rng.standard_normal(10_001) + 1j * rng.standard_normal(10_001)
    got = K["sum"](z)
    assert abs(got.real - math.fsum(z.real.tolist())) < 1e-11
    assert abs(got.imag - math.fsum(z.imag.tolist())) < 1e-11


def test_sum_of_many_scalars():
    vals = [np.float64(i) for i in range(50)]
    assert K["sum"](*vals) == sum(range(50))
    assert K["sum"](vals) == sum(range(50))


def test_sum_nonzero_bool_bytes_count_as_true():
    raw = np.array([0, 1, 2, 255], dtype=np.uint8).view(bool)
    assert K["sum"](raw) == 3


# ---------------------------------------------------------------- ones, zeros


@pytest.mark.parametrize("name, fill", [("ones", 1.0), ("zeros", 0.0)])
def test_ones_zeros(name, fill):
    for n in (0, 1, 5, 1000, 300_000):
        r = K[name](n)
        assert r.dtype == np.float64 and r.shape == (n,)
        assert np.all(r == fill)
    assert K[name](np.int32(3)).shape == (3,)
    assert K[name](np.uint64(2)).shape == (2,)
    with pytest.raises(ValueError, match=f"kernel '{name}'.*>= 0"):
        K[name](-1)
    with pytest.raises(TypeError, match=f"kernel '{name}'"):
        K[name](2.5)
    with pytest.raises(TypeError, match=f"kernel '{name}'"):
        K[name](np.array([3]))
    assert K[name].out_bytes(10) == 80
    assert K[name].work_bytes(10) == 0


def test_out_bytes():
    a = np.ones((3, 4))
    assert K["add"].out_bytes(a, a) == 96
    assert K["add"].out_bytes(a, 1.0) == 96
    assert K["add"].out_bytes(a, np.ones(5)) == 0
    assert K["sum"].out_bytes(a) == 8
    assert K["sum"].out_bytes(np.ones(3, np.float32)) == 4
    assert K["dot"].out_bytes(a, a.T.copy()) == 72
    assert K["spin"].out_bytes(0.0) == 8
    assert K["fail"].out_bytes() == 0


# ---------------------------------------------------------------- dot


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dot(dtype):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(1000).astype(dtype)
    y = rng.standard_normal(1000).astype(dtype)
    r = K["dot"](x, y)
    assert np.ndim(r) == 0 and r.dtype == dtype
    np.testing.assert_allclose(r, np.dot(x, y), rtol=1e-4 if dtype == "float32" else 1e-12)
    a = rng.standard_normal((37, 23)).astype(dtype)
    b = rng.standard_normal((23, 19)).astype(dtype)
    m = K["dot"](a, b)
    assert m.shape == (37, 19) and m.dtype == dtype
    np.testing.assert_allclose(m, np.dot(a, b), rtol=1e-4 if dtype == "float32" else 1e-12,
                               atol=1e-4 if dtype == "float32" else 1e-12)
    # non-contiguous operands are copied first
    np.testing.assert_allclose(K["dot"](b.T, a.T), np.dot(b.T, a.T), rtol=1e-4, atol=1e-4)


def test_dot_edge_cases():
    assert K["dot"](np.zeros(0), np.zeros(0)) == 0.0
    np.testing.assert_array_equal(K["dot"](np.ones((2, 0)), np.ones((0, 3))), np.zeros((2, 3)))
    assert K["dot"](np.ones((0, 3)), np.ones((3, 2))).shape == (0, 2)
    with pytest.raises(ValueError, match=r"kernel 'dot'.*\(3,\) and \(4,\)"):
        K["dot"](np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 3\)"):
        K["dot"](np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="1-d or two 2-d"):
        K["dot"](np.ones((2, 3)), np.ones(3))
    with pytest.raises(TypeError, match="kernel 'dot'.*int64"):
        K["dot"](np.ones(3, np.int64), np.ones(3, np.int64))
    with pytest.raises(TypeError, match="kernel 'dot': inputs have dtypes float32 and float64"):
        K["dot"](np.ones(3, np.float32), np.ones(3))


# ---------------------------------------------------------------- spin, fail


def test_spin():
    import time
    t0 = time.perf_counter()
    r = K["spin"](0.05)
    dt = time.perf_counter() - t0
    assert r.dtype == np.float64 and np.ndim(r) == 0
    assert 0.05 <= r <= dt + 0.01
    assert K["spin"](0) >= 0.0
    assert K["spin"](np.float32(0.001)) >= 0.001
    with pytest.raises(ValueError, match="kernel 'spin'"):
        K["spin"](-1.0)
    with pytest.raises(ValueError, match="kernel 'spin'"):
        K["spin"](float("nan"))
    with pytest.raises(TypeError, match="kernel 'spin'"):
        K["spin"](np.ones(2))


def test_spin_releases_the_gil():
    import threading
    import time
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.01)
        before = counter[0]
        K["spin"](0.2)
        after = counter[0]
    finally:
        stop.set()
        t.join()
    assert after - before > 1000


def test_fail():
    for args in ((), (1,), (np.ones(3), [1, 2])):
        with pytest.raises(ValueError, match="cdask.kernels.fail was called"):
            K["fail"](*args)


# ---------------------------------------------------------------- leaks


def _workload():
    big = np.arange(20_000, dtype=np.float64)  # above the GIL-release threshold
    small = np.arange(10, dtype=np.int32)
    sw = big.astype(">f8")
    return big, small, sw


def test_live_bytes_return_to_start():
    gc.collect()
    _core._drain_releases()
    start = _core._chunk_live_bytes()
    big, small, sw = _workload()
    results = []
    for _ in range(5):
        results.append(K["add"](big, big))
        results.append(K["mul"](small, small))
        results.append(K["sum"](big, sw))
        results.append(K["ones"](50_000))
        results.append(K["dot"](np.ones((30, 30)), np.ones((30, 30))))
        with pytest.raises(ValueError):
            K["add"](big, np.ones(3))
        with pytest.raises(TypeError):
            K["add"](big, "x")
    assert _core._chunk_live_bytes() > start  # results hold chunk memory
    views = [r[1:] for r in results if isinstance(r, np.ndarray)]
    del results
    gc.collect()
    assert _core._chunk_live_bytes() > start  # views keep their chunks alive
    del views
    gc.collect()
    _core._drain_releases()
    assert _core._chunk_live_bytes() == start


def test_input_refcounts_stay_flat():
    big, small, sw = _workload()
    un_buf = bytearray(8 * 100 + 1)
    un = np.frombuffer(un_buf, dtype=np.float64, count=100, offset=1)
    objs = [big, small, sw, un]
    for _ in range(3):  # warm up caches
        K["add"](big, big)
    before = [sys.getrefcount(o) for o in objs]
    for _ in range(200):
        K["add"](big, big)
        K["mul"](small, small)
        K["sum"]([big, sw])
        K["sum"](un, un)
        try:
            K["add"](big, small)
        except TypeError:
            pass
        try:
            K["add"](big, np.ones(3))
        except ValueError:
            pass
    _core._drain_releases()
    after = [sys.getrefcount(o) for o in objs]
    assert after == before


def test_result_view_of_input_keeps_memory_alive():
    # a result returned as a view of its chunk stays valid after everything else is gone
    r = K["add"](np.arange(3.0), np.float64(1))
    gc.collect()
    np.testing.assert_array_equal(r, [1.0, 2.0, 3.0])


def test_drain_and_pending_are_callable():
    assert _core._drain_releases() >= 0
    assert isinstance(_core._chunk_live_bytes(), int)


# ---------------------------------------------------------------- release queue


def test_release_queue_from_threads():
    _core._drain_releases()
    arrays = [np.arange(i + 1, dtype=np.float64) for i in range(3000)]
    swapped = np.arange(10.0).astype(">f8")  # converted: the copy is the owner
    before = [sys.getrefcount(a) for a in arrays]
    n = _core._test_release_queue(arrays + [swapped] * 5, 4)
    assert n == 3005
    assert _core._pending_releases() == 3005
    # the owners are still referenced by the queue
    assert [sys.getrefcount(a) for a in arrays] == [b + 1 for b in before]
    assert _core._drain_releases() == 3005
    assert _core._pending_releases() == 0
    assert [sys.getrefcount(a) for a in arrays] == before
    assert _core._drain_releases() == 0


def test_release_queue_scalars_do_not_queue():
    # Python numbers become owned chunks: nothing to release through Python
    _core._drain_releases()
    assert _core._test_release_queue([1, 2.0, 3j, True, np.float32(1)], 2) == 5
    assert _core._pending_releases() == 0


def test_release_queue_many_rounds():
    a = np.ones(4)
    before = sys.getrefcount(a)
    for _ in range(20):
        _core._test_release_queue([a] * 500, 3)
        assert _core._drain_releases() == 500
    assert sys.getrefcount(a) == before


def test_chunk_owner_keeps_result_alive():
    r = K["ones"](1000)
    owner = r.base
    assert type(owner).__name__ == "_ChunkOwner"
    assert "float64" in repr(owner)
    with pytest.raises(TypeError):
        type(owner)()


# ---------------------------------------------------------------- as plain callables in dask


def test_kernels_run_under_dask():
    dask = pytest.importorskip("dask")
    import dask.threaded
    dsk = {("x", i): (K["ones"], 4) for i in range(8)}
    dsk["s"] = (K["sum"], [("x", i) for i in range(8)])
    dsk["t"] = (K["add"], "s", (K["sum"], [1.0, 2.0]))
    assert dask.get(dsk, "s") == 32.0
    s, t = dask.threaded.get(dsk, ["s", "t"], num_workers=2)
    assert s == 32.0 and t == 35.0
