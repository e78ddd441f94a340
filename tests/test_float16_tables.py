"""float16 chains run as tables of their 65536 values (kernels/fused.c:
"float16 chains as tables"): the same bits as NumPy and as the step-by-step
engine, the floating-point errors of the values met and no others, and the
tables built once."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask
from cdask import _core

N = 1 << 17          # elements: runs long enough to build a table
CHUNK = 1 << 16


@pytest.fixture(params=["tables", "steps"])
def tables(request):
    was = _core._half_tables()[0]
    on = _core._half_tables(request.param == "tables")[0]
    yield on
    _core._half_tables(was)


@pytest.fixture(params=["f16c", "software"])
def hw(request):
    was = _core._half_hw()
    _core._half_hw(request.param == "f16c")
    yield
    _core._half_hw(was)


def every_value(extra=N - 65536, seed=0):
    """All 65536 float16 bit patterns (NaNs, infinities, subnormals), then
    normal values."""
    rng = np.random.default_rng(seed)
    bits = np.arange(65536, dtype=np.uint16).view(np.float16)
    return np.concatenate([bits, (rng.standard_normal(extra) * 4).astype(np.float16)])


def _bits(a):
    a = np.asarray(a)
    return a.dtype, a.shape, a.tobytes()


def _run(f, a):
    """f(a), with the warning categories and messages it gave."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = f(a)
        r = r.compute() if isinstance(r, cdask.Array) else r
    kinds = sorted({str(m.message).split(" encountered")[0] for m in w
                    if issubclass(m.category, RuntimeWarning)})
    return r, kinds


CHAINS = {
    "((x + 1) * 2) ** 3": lambda x: ((x + 1) * 2) ** 3,
    "x ** 3": lambda x: x ** 3,
    "x + 1": lambda x: x + 1,
    "sqrt(|x|) * 3": lambda x: np.sqrt(np.abs(x)) * 3,
    "sin(x) > 0.5": lambda x: np.sin(x) > 0.5,
    "x * float32 3": lambda x: x * np.float32(3),          # a float32 result
    "floor(x * 3) / 0": lambda x: np.floor(x * 3) / 0,
    "arctan2(x, 2) - 1": lambda x: np.arctan2(x, 2) - np.float16(1),
    "exp(x) * float64 2": lambda x: np.exp(x) * np.float64(2),     # a float64 result
}


@pytest.mark.parametrize("name", list(CHAINS))
def test_every_value_same_bits_and_warnings_as_numpy(name, tables, hw):
    f = CHAINS[name]
    a = every_value()
    want, wk = _run(f, a)
    got, gk = _run(f, cdask.from_array(a, chunks=CHUNK))
    assert _bits(got) == _bits(want)
    assert gk == wk


def test_tables_are_built_once_and_used():
    _core._half_tables(True)
    a = every_value(seed=3)
    x = cdask.from_array(a, chunks=CHUNK)
    f = lambda v: np.cbrt(v * np.float16(1.5)) - 7      # a chain no other test builds
    _, before, most = _core._half_tables()
    r1 = f(x).compute()
    _, after, _ = _core._half_tables()
    assert after == min(before + 1, most)        # (none once the cache is full)
    r2 = f(x).compute()
    assert _core._half_tables()[1] == after                 # cached
    with np.errstate(all="ignore"):
        assert _bits(r1) == _bits(r2) == _bits(f(a))


def test_errors_only_for_the_values_met():
    """The table of x ** 3 holds overflows (|x| > 40); an array of small
    values raises none, one large value raises it."""
    small = (np.random.default_rng(1).uniform(-30, 30, N)).astype(np.float16)
    x = cdask.from_array(small, chunks=CHUNK)
    with np.errstate(over="raise", invalid="raise"):
        got = (x ** 3).compute()
        assert _bits(got) == _bits(small ** 3)
        big = small.copy()
        big[N - 5] = 1000
        with pytest.raises(FloatingPointError, match="overflow"):
            (cdask.from_array(big, chunks=CHUNK) ** 3).compute()
        with pytest.raises(FloatingPointError):
            big ** 3


def test_register_read_twice_and_reductions(tables):
    a = every_value(seed=5)
    a = a[np.isfinite(a)][: N // 2]
    x = cdask.from_array(a, chunks=CHUNK // 2)
    with np.errstate(all="ignore"):
        y = x + 1
        assert _bits((y * y).compute()) == _bits((a + 1) * (a + 1))
        assert _bits(((x * 2) ** 2).sum().compute()) == _bits(((a * 2) ** 2).sum())
        m = x[x > 0]
        assert _bits((m ** 0.5).compute()) == _bits(a[a > 0] ** 0.5)


def test_broadcast_and_views(tables):
    a = every_value(extra=2 ** 18 - 65536, seed=7).reshape(512, 512)
    x = cdask.from_array(a, chunks=(256, 512))
    row = np.linspace(-3, 3, 512).astype(np.float16)
    with np.errstate(all="ignore"):
        assert _bits((x.T * 3 - 1).compute()) == _bits(a.T * 3 - 1)
        assert _bits((np.sqrt(x[::2, 1:]) + 1).compute()) == _bits(np.sqrt(a[::2, 1:]) + 1)
        assert _bits(((x + row) ** 2).compute()) == _bits((a + row) ** 2)


UNARY = [np.negative, np.absolute, np.sqrt, np.exp, np.log1p, np.sin, np.floor, np.rint,
         np.square, np.reciprocal, np.tanh, np.isnan, np.signbit]
SCALAR = [np.add, np.subtract, np.multiply, np.true_divide, np.power, np.maximum,
          np.fmod, np.arctan2, np.greater, np.copysign]


@st.composite
def chains(draw):
    steps = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(UNARY)),))
        else:
            c = draw(st.sampled_from([0.5, 2, -3, 1e-3, 7.25, np.float16(3), np.float32(0.1)]))
            steps.append((draw(st.sampled_from(SCALAR)), c, draw(st.booleans())))
    return steps


def _apply(steps, v):
    for s in steps:
        if len(s) == 1:
            v = s[0](v)
        elif s[2]:
            v = s[0](v, s[1])
        else:
            v = s[0](s[1], v)
    return v


@settings(max_examples=40, deadline=None)
@given(chains(), st.integers(0, 2 ** 16))
def test_random_chains_match_numpy(steps, seed):
    a = every_value(seed=seed)
    with np.errstate(all="ignore"):
        try:
            want = _apply(steps, a)
        except TypeError:       # (a boolean where NumPy takes no booleans)
            return
        got = _apply(steps, cdask.from_array(a, chunks=CHUNK)).compute()
    assert _bits(got) == _bits(want)
