"""float -> integer casts of NaN, infinities, negative and out-of-range
values: the bits NumPy gives on this machine (float64/float32/complex to
uint32: 2^31 for NaN and below -2^31, 0 from 2^32 up; float16 through
int64), and its "invalid value encountered in cast" warning, in the C casts,
astype, and fused and unfused elementwise chains.

NumPy's own casts to uint32 differ with the position of an element: its
vectorised loop body gives the values above, the scalar tail of each call
(the last elements, fewer than a vector) those of a conversion through
int64.  cdask gives the body's values everywhere; the reference here is
NumPy's cast of the values followed by padding, so that all of them fall
in the body (``_np_cast``)."""

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask as da
from cdask import _core

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

FLOATS = [np.float64, np.float32, np.float16, np.complex128, np.complex64]
INTS = [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64]


def _edges():
    out = [np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0, 0.5, -0.5, -1.0]
    for e in (7, 8, 15, 16, 31, 32, 63, 64):
        for s in (1.0, -1.0):
            v = s * 2.0 ** e
            out += [v, np.nextafter(v, 0), np.nextafter(v, np.inf), np.nextafter(v, -np.inf),
                    v + 0.5, v - 1, v + 1]
    return out + [1e30, -1e30, 1e300, -1e300, 65504.0, -65504.0, 65520.0]


EDGES = _edges()
values = st.one_of(st.sampled_from(EDGES),
                   st.floats(allow_nan=True, allow_infinity=True, width=64))


def _run(fn):
    with np.errstate(all="warn"), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = fn()
    return r, sorted({str(x.message) for x in w})


def _np_cast(a, to):
    """NumPy's astype as its vectorised loop body gives it (see the top)."""
    pad = np.concatenate([a.reshape(-1), np.zeros(32, a.dtype)])
    return pad.astype(to)[:a.size].reshape(a.shape)


def _as(vals, src):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = np.array(vals, dtype=np.float64).astype(src)
        if np.dtype(src).kind == "c":
            a = a + 1j * a[::-1]
    return a


def test_c_casts_of_edges():
    """Every float and complex dtype to every integer dtype, on the edges of
    their ranges (and NaN, infinities), equal to NumPy's astype."""
    rng = np.random.default_rng(4)
    vals = np.concatenate([EDGES, rng.integers(0, 1 << 64, 20000, dtype=np.uint64)
                           .view(np.float64)])
    for src in FLOATS:
        a = _as(vals, src)
        for to in INTS:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = _np_cast(a, to)
            got = _core._cast(a, to)
            bad = np.nonzero(got != want)[0]
            assert bad.size == 0, (np.dtype(src).name, np.dtype(to).name, a[bad[:4]],
                                   want[bad[:4]], got[bad[:4]])


def test_uint32_from_nan_and_out_of_range():
    a = np.array([np.nan, -np.inf, np.inf, -1.0, -2.0 ** 31 - 1, 2.0 ** 31, 2.0 ** 32 + 5])
    with np.errstate(all="ignore"):
        want = _np_cast(a, np.uint32)
        assert want.tolist() == [2 ** 31, 2 ** 31, 0, 2 ** 32 - 1, 2 ** 31, 2 ** 31, 0]
        np.testing.assert_array_equal(da.from_array(a, chunks=3).astype(np.uint32).compute(),
                                      want)


@SETTINGS
@given(st.lists(values, min_size=1, max_size=9), st.sampled_from(FLOATS),
       st.sampled_from(INTS), st.sampled_from(["astype", "fused", "unfused"]))
def test_casts_bits_and_warning(vals, src, to, how):
    a = _as(vals, src)
    x = da.from_array(a, chunks=max(1, len(a) // 2))
    if how == "fused":
        want, ww = _run(lambda: _np_cast(a, to) + to(1))
        got, gw = _run(lambda: (x.astype(to) + to(1)).compute())
    else:
        want, ww = _run(lambda: _np_cast(a, to))
        got, gw = _run(lambda: x.astype(to).compute(fuse=how != "unfused"))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert gw == ww
