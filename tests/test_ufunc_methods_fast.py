"""The faster paths of ufunc methods and reductions (issue 16): scans whose
blocks accumulate at once and take their carries after (maximum/minimum of
any dtype, associative integer ufuncs), written straight into compute()'s
result; checked bit for bit against NumPy on NaN payloads, signed zeros and
infinities, along every axis, chunkings with empty blocks included."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask as da

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

SPECIAL64 = np.array([0x7ff8000000000001, 0xfff8000000000002, 0x7ff0000000000005, 0,
                      1 << 63, 0x3ff0000000000000, 0xbff0000000000000,
                      0x7ff0000000000000, 0xfff0000000000000], np.uint64).view(np.float64)


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint8) if a.dtype.kind == "f" else a


@st.composite
def scan_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=1, max_size=3)))
    chunks = tuple(draw(st.integers(1, s)) for s in shape)
    axis = draw(st.integers(0, len(shape) - 1))
    kind = draw(st.sampled_from(["f8", "f4", "f2", "i8", "u1", "b"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if kind[0] == "f":
        a = rng.choice(np.concatenate([SPECIAL64, rng.integers(-3, 4, 9).astype(float)]),
                       size=shape)
        with np.errstate(all="ignore"):
            a = a.astype(kind)
        u = draw(st.sampled_from([np.maximum, np.minimum]))
    else:
        a = rng.integers(0, 256, size=shape).astype(kind)
        u = draw(st.sampled_from([np.maximum, np.minimum, np.add, np.multiply,
                                  np.bitwise_xor, np.bitwise_or, np.logical_and]))
    return a, chunks, axis, u


@SETTINGS
@given(scan_cases(), st.sampled_from(["compute", "unfused", "blocks"]))
def test_carry_later_scans_bitwise(case, how):
    a, chunks, axis, u = case
    x = da.from_array(a, chunks=chunks)
    with np.errstate(all="ignore"):
        want = u.accumulate(a, axis=axis)
        r = u.accumulate(x, axis=axis)
        if how == "compute":
            got = r.compute()
        elif how == "unfused":
            got = r.compute(fuse=False)
        else:
            got = np.block(_nested(r)) if a.ndim else r.compute()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(_bits(got), _bits(want))


def _nested(r):
    """The blocks of r, computed one by one, nested as np.block takes them."""
    def at(prefix):
        if len(prefix) == r.ndim:
            return r.blocks[prefix].compute()
        return [at(prefix + (i,)) for i in range(r.numblocks[len(prefix)])]
    return at(())


def test_carry_later_with_empty_blocks_and_store(tmp_path):
    a = np.array([3.0, -0.0, np.nan, 0.0, 7.0, -np.inf, 2.0])
    x = da.from_array(a, chunks=2)
    sel = x[x > -1]            # unknown chunk sizes, empty blocks among them
    want = np.maximum.accumulate(a[a > -1])
    np.testing.assert_array_equal(_bits(np.maximum.accumulate(sel).compute()), _bits(want))
    b = np.random.default_rng(1).standard_normal((40, 50))
    out = np.zeros_like(b)
    da.store(np.minimum.accumulate(da.from_array(b, chunks=(13, 9)), axis=1), out)
    np.testing.assert_array_equal(out, np.minimum.accumulate(b, axis=1))


@pytest.mark.parametrize("axis", [0, 1, 2, (0, 1), (0, 2), (1, 2), None])
@pytest.mark.parametrize("layout", ["C", "F", "view"])
def test_sums_by_axis_match_numpy(axis, layout):
    """sum/mean of blocks read in place (views, F order) along every axis: the
    reduced axes summed in slabs (no transposing copy), within float
    tolerance of NumPy."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal((150, 70, 90)) * 10.0 ** rng.integers(-3, 4, (150, 70, 90))
    a = {"C": base, "F": np.asfortranarray(base), "view": base[5:, ::1, 3:]}[layout]
    x = da.from_array(a, chunks=(140, 30, 50))
    for f in ("sum", "mean"):
        got = getattr(x, f)(axis=axis).compute()
        want = getattr(a, f)(axis=axis)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_sum_along_outer_axis_more_accurate_than_rows():
    """0.1 added 200,000 times down a column: row by row (NumPy's order along
    an outer axis) the error grows with the count; in slabs it stays small."""
    a = np.full((200_000, 3), 0.1)
    exact = np.sum(np.full(200_000, 0.1, dtype=np.longdouble))
    got = da.from_array(a, chunks=(100_000, 3)).sum(axis=0).compute()
    assert np.all(np.abs(got - exact) <= np.abs(a.sum(axis=0) - exact))
    assert np.all(np.abs(got - exact) < 1e-9)
