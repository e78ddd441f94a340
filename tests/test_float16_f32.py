"""float16 loops run as float32 loops between vectorised (F16C) conversions
(src/kernels/half.c): the same bits and the same floating-point warnings as
NumPy's own float16 loops, on the values where they could differ -
subnormals, ties, overflow to infinity, infinities, quiet and signalling
NaNs with payloads - on both paths (F16C, and the software one every CPU
has), fused and unfused, and the float16 <-> float32 casts on both."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask as da
from cdask import _core

F16 = np.dtype(np.float16)
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

# Bit patterns where float16 arithmetic is awkward.
SPECIAL = np.array([
    0x0000, 0x8000, 0x0001, 0x8001, 0x0002, 0x01ff, 0x0200, 0x03ff, 0x83ff, 0x0400,
    0x0401, 0x3c00, 0xbc00, 0x3c01, 0x3bff, 0x4000, 0x3800, 0x3555, 0x4248, 0x5bff,
    0x7800, 0x7bfe, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7e01, 0xfe3f,
    0x7fff, 0x7c01, 0xfc01, 0x7d55, 0xfdff, 0x1400, 0x2000, 0x6400, 0xe400, 0x57ff,
], np.uint16)


def _cpu_has_f16c():
    try:
        with open("/proc/cpuinfo") as f:
            return " f16c" in f.read()
    except OSError:
        return False


def _routed(nin):
    """NumPy's ufuncs whose float16 loop cdask runs through float32."""
    out = []
    for name in sorted(dir(np)):
        u = getattr(np, name)
        if (isinstance(u, np.ufunc) and u.nin == nin and u.nout == 1 and u.signature is None
                and name == u.__name__):
            try:
                if _core._half_route(u) != "numpy":
                    out.append(u)
            except (TypeError, NotImplementedError):
                pass
    return out


UNARY, BINARY = _routed(1), _routed(2)


@pytest.fixture(params=["f16c", "software"])
def path(request):
    """Run the test on F16C (where the CPU has it) and on the software path."""
    was = _core._half_hw()
    on = _core._half_hw(request.param == "f16c")
    assert on == (request.param == "f16c" and was)
    yield request.param
    _core._half_hw(was)


def test_routes():
    """On a CPU with F16C, NumPy's float16 arithmetic runs through float32
    loops (add and multiply keeping the second of two NaNs, as NumPy's compiled
    loops pick which NaN's payload survives); loops that do not compute in
    float32 keep NumPy's own."""
    assert _core._half_hw() == _cpu_has_f16c()
    if not _cpu_has_f16c():
        assert UNARY == [] and BINARY == []
        return
    assert _core._half_route(np.add) == "float32, NaN of the second"
    assert _core._half_route(np.multiply) == "float32, NaN of the second"
    for u in (np.subtract, np.divide, np.power, np.sqrt, np.floor, np.arctan2, np.hypot):
        assert _core._half_route(u) == "float32", u
    for u in (np.sin, np.exp, np.negative, np.square, np.maximum, np.less):
        assert _core._half_route(u) == "numpy", u
    assert {u.__name__ for u in BINARY} >= {"add", "subtract", "multiply", "divide", "power"}


@st.composite
def half_arrays(draw, n=None):
    """float16 arrays mixing the special patterns with random bits, long
    enough to reach the vector conversions (groups of eight) and their tails."""
    n = draw(st.integers(1, 70)) if n is None else n
    bits = draw(st.lists(st.one_of(st.sampled_from(SPECIAL.tolist()),
                                   st.integers(0, 0xffff)), min_size=n, max_size=n))
    return np.array(bits, np.uint16).view(F16)


def _kinds(caught):
    """The NumPy error kinds among caught RuntimeWarnings."""
    out = set()
    for w in caught:
        text = str(w.message)
        for kind in ("divide by zero", "overflow", "invalid value"):
            if text.startswith(kind):
                out.add(kind)
    return out


def _run(fn):
    """fn()'s result and the kinds of warning it gave (underflow ignored:
    see kernels/half.h)."""
    with np.errstate(all="warn", under="ignore"), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = fn()
    return r, _kinds(w)


def _same(got, expect):
    assert got.dtype == expect.dtype == F16
    np.testing.assert_array_equal(got.view(np.uint16), expect.view(np.uint16))


@SETTINGS
@given(st.data())
def test_binary_bits_and_warnings(path, data):
    u = data.draw(st.sampled_from(BINARY), label="ufunc")
    a = data.draw(half_arrays(), label="a")
    b = data.draw(half_arrays(len(a)), label="b")
    chunks = data.draw(st.integers(1, len(a)), label="chunks")
    kind = data.draw(st.sampled_from(["arrays", "scalar", "pyint", "reflected"]), label="kind")
    x, y = da.from_array(a, chunks=chunks), da.from_array(b, chunks=chunks)
    if kind == "scalar":
        y = b = b[0]
    elif kind == "pyint":
        y = b = data.draw(st.integers(-70000, 70000), label="int")
    if kind == "reflected":
        x, y, a, b = y, x, b, a
    expect, ew = _run(lambda: u(a, b))
    got, gw = _run(lambda: u(x, y).compute())
    _same(got, expect)
    assert gw == ew, (u, gw, ew)


@SETTINGS
@given(st.data())
def test_unary_bits_and_warnings(path, data):
    u = data.draw(st.sampled_from(UNARY), label="ufunc")
    a = data.draw(half_arrays(), label="a")
    x = da.from_array(a, chunks=data.draw(st.integers(1, len(a)), label="chunks"))
    expect, ew = _run(lambda: u(a))
    got, gw = _run(lambda: u(x).compute())
    _same(got, expect)
    assert gw == ew, (u, gw, ew)


@SETTINGS
@given(half_arrays(), half_arrays(1), st.booleans())
def test_chains(path, a, c, fuse):
    """The issue's ((x + 1) * 2) ** 3 and chains with a float16 scalar,
    a broadcast row and divisions: rounded to float16 after every step."""
    x = da.from_array(a, chunks=max(1, len(a) // 3))
    s = c[0]
    m = np.stack([a, a[::-1]])
    X = da.from_array(m, chunks=(1, max(1, len(a) // 2)))
    for fn in (lambda v: ((v + 1) * 2) ** 3,
               lambda v: (v - s) / (v * s + np.float16(3)),
               lambda v: np.sqrt(np.hypot(v, 7) ** 2.5) - v):
        expect, ew = _run(lambda: fn(a))
        got, gw = _run(lambda: fn(x).compute(fuse=fuse))
        _same(got, expect)
        assert gw == ew
    expect, _ = _run(lambda: (m + a) * m[0] / 3)
    got, _ = _run(lambda: ((X + a) * X[0] / 3).compute(fuse=fuse))
    _same(got, expect)


def test_every_pair_of_specials(path):
    """Every pair of the special patterns (and every half against a few)
    through + - * / and power, in one array: vector bodies and tails alike."""
    a = np.repeat(SPECIAL, SPECIAL.size).view(F16)
    b = np.tile(SPECIAL, SPECIAL.size).view(F16)
    every = np.arange(1 << 16, dtype=np.uint16).view(F16)
    for u in (np.add, np.subtract, np.multiply, np.divide, np.power, np.fmod):
        for p, q in ((a, b), (every, np.float16(3)), (np.float16(-0.5), every)):
            with np.errstate(all="ignore"):
                expect = u(p, q)
                xp = da.from_array(p, chunks=1000) if np.ndim(p) else p
                xq = da.from_array(q, chunks=777) if np.ndim(q) else q
                _same(u(xp, xq).compute(), expect)


def test_casts_both_ways(path):
    """float16 <-> float32 casts (astype and the C casts) are NumPy's bit for
    bit - signalling NaNs kept signalling, in groups with ordinary values -
    and raise no warning NumPy's casts do not."""
    rng = np.random.default_rng(5)
    every = np.arange(1 << 16, dtype=np.uint16)
    h = rng.permutation(every).view(F16)
    f = np.concatenate([
        rng.integers(0, 1 << 32, 200000, dtype=np.uint64).astype(np.uint32),
        np.arange(0x7f800000, 0x7f800000 + 5000, dtype=np.uint32),
        np.arange(0xff800000 - 2000, 0xff800000 + 2000, dtype=np.uint32),
        every.astype(np.uint32) << 13 | 0x1000,                     # ties
        (every.astype(np.uint32) << 13 | 0x1000) + 1,
        np.arange(0x477fe000, 0x47800100, dtype=np.uint32),        # overflow threshold
    ]).view(np.float32)
    f = rng.permutation(f)
    for src, to in ((h, np.float32), (f, F16)):
        with np.errstate(all="ignore"):
            expect = src.astype(to)
        np.testing.assert_array_equal(_core._cast(src, to).view(np.uint8),
                                      expect.view(np.uint8))
        with np.errstate(invalid="raise", divide="raise"):
            got = da.from_array(src, chunks=4099).astype(to).compute()
        np.testing.assert_array_equal(got.view(np.uint8), expect.view(np.uint8))
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError, match="overflow"):
            da.from_array(np.float32([1, 70000, 3]), chunks=2).astype(F16).compute()


def test_nan_constants_keep_their_payloads():
    """Fused kernels are shared between programs by signature: constants that
    differ only in their NaN payload (their reprs are all "nan") must not
    share one, in any dtype."""
    for dt, pats in ((np.float16, [0x7e00, 0xfe00, 0x7e05]),
                     (np.float32, [0x7fc00001, 0xffc00002]),
                     (np.float64, [0x7ff8000000000001, 0xfff8000000000002])):
        ut = np.dtype("u%d" % np.dtype(dt).itemsize)
        a = np.zeros(3, dt)
        x = da.from_array(a, chunks=2)
        for p in pats:
            s = np.array([p], ut).view(dt)[0]
            for c in (s, float(s)) if dt is np.float64 else (s,):
                with np.errstate(all="ignore"):
                    np.testing.assert_array_equal((x * c + dt(3)).compute().view(ut),
                                                  (a * c + dt(3)).view(ut))
