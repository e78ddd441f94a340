"""The dask.array names of issue 15, part 1, against NumPy: NumPy's Python-level
elementwise functions (real, imag, angle, around, nan_to_num, fix...),
ptp, average, ediff1d, the triangles and diagonals (tri, tril, triu, diag,
diagonal, trace, *_indices), the grids (meshgrid, indices, fromfunction),
choose, assert_eq, register_chunk_type, the dtype names and constants, the
Array attributes A, trace, choose, to_delayed, and the submodule imports.

Shapes and chunkings come from hypothesis (ragged and size-1 blocks, empty
axes); arrays with unknown (nan) chunk sizes are made with a boolean mask.
Values are compared bit for bit (``blockcheck.check``, which also checks
every block's shape and dtype) wherever cdask promises NumPy's result
exactly, else with a tolerance.
"""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da
from blockcheck import check, chunkings, sample

EX = settings(max_examples=25, deadline=None)


@st.composite
def arrays(draw, min_dims=1, max_dims=3, max_side=7, dtypes=(np.float64, np.float32)):
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=min_dims,
                                max_size=max_dims)))
    chunks = chunkings(draw, st, shape)
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2 ** 16))
    return sample(shape, dtype, seed), chunks


def _unknown(a, chunks):
    """``a`` as a cdask Array whose chunk sizes along axis 0 are unknown."""
    x = da.from_array(a, chunks=chunks)
    keep = da.from_array(np.ones(a.shape[0], bool), chunks=(chunks[0],))
    y = x[keep]
    assert any(c != c for c in y.chunks[0]) or a.shape[0] == 0
    return y


def _specials(a):
    # NaN, infinities and signed zeros where the array has room for them
    a = a.copy()
    flat = a.reshape(-1)
    vals = [np.nan, np.inf, -np.inf, -0.0, 0.0, 2.5, -2.5, 0.5, -0.5]
    for i, v in enumerate(vals[:flat.size]):
        flat[(i * 7) % flat.size] = v
    return a


# ---------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------
FLOATS = (np.float64, np.float32)
ALL = (np.float64, np.float32, np.complex128, np.complex64, np.int64, np.int8, np.uint16,
       np.bool_)


@EX
@given(arrays(dtypes=ALL))
def test_real_imag_isreal_iscomplex(ac):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    check(da.real(x), np.real(a))
    check(da.imag(x), np.imag(a))
    check(da.isreal(x), np.isreal(a))
    check(da.iscomplex(x), np.iscomplex(a))
    check(x.real, a.real)
    check(x.imag, a.imag)


@EX
@given(arrays(dtypes=FLOATS + (np.complex128, np.complex64, np.int64, np.int16)),
       st.booleans())
def test_angle(ac, deg):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    check(da.angle(x, deg=deg), np.angle(a, deg=deg))


@EX
@given(arrays(dtypes=FLOATS + (np.complex128, np.int64, np.int32, np.uint8)),
       st.integers(-4, 6), st.integers(-3, 3))
def test_around_bit_identical(ac, decimals, scale):
    a, chunks = ac
    if a.dtype.kind == "f":
        a = _specials(a * 10.0 ** scale).astype(a.dtype)
        if a.size:
            a.reshape(-1)[-1] = 1.005   # a tie in decimal, not in binary
    x = da.from_array(a, chunks=chunks)
    check(da.around(x, decimals), np.around(a, decimals))
    check(da.round(x, decimals), np.round(a, decimals))
    check(x.round(decimals), a.round(decimals))


def test_around_large_decimals_and_errors():
    a = np.array([1.23456789e-30, 123456.5, -7.25, np.nan])
    x = da.from_array(a, chunks=3)
    for d in (25, 30, -25):
        check(da.around(x, d), np.around(a, d))
    with pytest.raises(TypeError):
        da.around(x, 1.5)
    # on NumPy data, NumPy's result
    assert np.array_equal(da.around(a, 1), np.around(a, 1), equal_nan=True)


@EX
@given(arrays(dtypes=FLOATS + (np.complex128, np.int32, np.bool_)),
       st.sampled_from([None, 7.0, -1e300]), st.sampled_from([0.0, -3.5]))
def test_nan_to_num(ac, inf_value, nan_value):
    a, chunks = ac
    if a.dtype.kind == "f":
        a = _specials(a)
    elif a.dtype.kind == "c" and a.size:
        a.reshape(-1)[0] = complex(np.nan, np.inf)
    x = da.from_array(a, chunks=chunks)
    check(da.nan_to_num(x), np.nan_to_num(a))
    with np.errstate(over="ignore"):
        expect = np.nan_to_num(a, nan=nan_value, posinf=inf_value, neginf=inf_value)
    check(da.nan_to_num(x, nan=nan_value, posinf=inf_value, neginf=inf_value), expect)


@EX
@given(arrays(dtypes=FLOATS + (np.int64, np.int8)))
def test_fix_i0_sinc(ac):
    a, chunks = ac
    if a.dtype.kind == "f":
        a = _specials(a * 3).astype(a.dtype)
    x = da.from_array(a, chunks=chunks)
    check(da.fix(x), np.fix(a))
    with np.errstate(all="ignore"):
        check(da.sinc(x), np.sinc(a))
        if a.dtype.kind == "f":
            check(da.i0(x), np.i0(a))


@EX
@given(arrays(dtypes=FLOATS + (np.complex128, np.int64, np.bool_)))
def test_isnull_notnull(ac):
    a, chunks = ac
    if a.dtype.kind == "f":
        a = _specials(a)
    x = da.from_array(a, chunks=chunks)
    null = np.isnan(a) if a.dtype.kind in "fc" else np.zeros(a.shape, bool)
    check(da.isnull(x), null)
    check(da.notnull(x), ~null)


def test_i0_of_complex_raises_numpys_error():
    x = da.from_array(np.array([1 + 1j]), chunks=1)
    with pytest.raises(TypeError):
        da.i0(x)


@pytest.mark.parametrize("f", [lambda x: da.around(x, 2), lambda x: da.around(x, -1),
                               da.nan_to_num, da.fix, lambda x: da.angle(x, deg=True)])
def test_elementwise_chains_fuse_into_one_c_task_per_block(f):
    x = da.from_array(np.linspace(-5, 5, 60), chunks=7)
    y = f(x)
    (o,) = da.optimize(y)
    tasks = list(o.__dask_graph__().values())
    assert len(tasks) == x.numblocks[0]
    assert all(getattr(t[0], "name", None) in ("fused", "ufunc") for t in tasks)
    check(o, f(x.compute()) if f is not da.nan_to_num else np.nan_to_num(x.compute()))


def test_elementwise_on_unknown_chunks():
    a = _specials(np.linspace(-3, 3, 11))
    x = _unknown(a, ((4, 4, 3),))
    for f, g in [(lambda v: da.around(v, 1), lambda v: np.around(v, 1)),
                 (da.nan_to_num, np.nan_to_num), (da.fix, np.fix), (da.real, np.real),
                 (da.iscomplex, np.iscomplex), (da.angle, np.angle)]:
        r = f(x)
        assert any(c != c for c in r.chunks[0])
        np.testing.assert_array_equal(r.compute(), g(a))


def test_numpy_functions_dispatch_to_cdask():
    a = np.arange(12.0).reshape(3, 4) - 5.5
    x = da.from_array(a, chunks=(2, 3))
    for f in (np.around, np.round, np.real, np.imag, np.nan_to_num, np.fix, np.isreal,
              np.iscomplex, np.angle, np.ptp, np.tril, np.triu, np.diagonal, np.trace,
              np.ediff1d, np.average):
        r = f(x)
        assert isinstance(r, da.Array), f
        np.testing.assert_allclose(r.compute(), f(a), rtol=1e-12)
    assert np.ndim(x) == 2 and np.shape(x) == (3, 4)
    assert da.ndim(x) == 2 and da.shape(x) == (3, 4)
    assert np.result_type(x.astype(np.float32), 1.0) == np.float32
    assert da.result_type(x.astype(np.int8), np.int16) == np.int16


# ---------------------------------------------------------------------------
# ptp, average, ediff1d
# ---------------------------------------------------------------------------
@EX
@given(arrays(dtypes=(np.float64, np.int64, np.int8, np.uint8)), st.data())
def test_ptp(ac, data):
    a, chunks = ac
    axis = data.draw(st.sampled_from([None] + list(range(-a.ndim, a.ndim))))
    keepdims = data.draw(st.booleans())
    if a.size == 0 and (axis is None or a.shape[axis] == 0):
        return _check_raises_like_numpy(lambda v: np.ptp(v, axis=axis), a, chunks)
    x = da.from_array(a, chunks=chunks)
    check(da.ptp(x, axis=axis, keepdims=keepdims), np.ptp(a, axis=axis, keepdims=keepdims))


def _check_raises_like_numpy(f, a, chunks):
    with pytest.raises(ValueError):
        f(a)
    with pytest.raises(ValueError):
        np.asarray(f(da.from_array(a, chunks=chunks)))


def test_ptp_unknown_chunks():
    a = np.array([[3, 9], [-4, 1], [7, 7]], dtype=np.int16)
    x = _unknown(a, ((2, 1), (1, 1)))
    np.testing.assert_array_equal(da.ptp(x, axis=0).compute(), np.ptp(a, axis=0))
    assert da.ptp(x).compute() == np.ptp(a)


@EX
@given(arrays(min_dims=1, max_dims=3, dtypes=(np.float64, np.float32, np.int32)), st.data())
def test_average(ac, data):
    a, chunks = ac
    if a.size == 0:
        a, chunks = np.arange(6.0).reshape(2, 3), ((1, 1), (2, 1))
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.sampled_from([None] + list(range(a.ndim))))
    keepdims = data.draw(st.booleans())
    returned = data.draw(st.booleans())
    kind = data.draw(st.sampled_from(["none", "full", "1d"] if axis is not None
                                     else ["none", "full"]))
    w = None
    if kind == "full":
        w = sample(a.shape, np.float64, 1) ** 2 + 0.5
    elif kind == "1d":
        w = (np.arange(a.shape[axis]) % 3 + 1).astype(np.int64)
    got = da.average(x, axis=axis, weights=w, returned=returned, keepdims=keepdims)
    exp = np.average(a, axis=axis, weights=w, returned=returned, keepdims=keepdims)
    if not returned:
        got, exp = (got,), (exp,)
    for g, e in zip(got, exp):
        e = np.asarray(e)
        assert g.shape == e.shape and g.dtype == e.dtype, (g, e.shape, e.dtype)
        np.testing.assert_allclose(g.compute(), e, rtol=1e-5 if a.dtype == np.float32
                                   else 1e-12)


def test_average_errors_are_numpys():
    a = np.arange(12.0).reshape(3, 4)
    x = da.from_array(a, chunks=2)
    for kw in [dict(weights=np.ones(4)), dict(weights=np.ones((2, 2)), axis=0),
               dict(weights=np.ones(5), axis=1), dict(weights=np.ones((4, 2)), axis=(1, 0)),
               dict(weights=np.ones(3), axis=(0, 0))]:
        with pytest.raises((TypeError, ValueError)) as want:
            np.average(a, **kw)
        with pytest.raises(want.type, match="weights|Axis|axis"):
            da.average(x, **kw)
    # weights along a tuple of axes, in the order given
    b = np.arange(24.0).reshape(2, 3, 4)
    w = np.arange(8.0).reshape(4, 2) + 1
    np.testing.assert_allclose(da.average(da.from_array(b, chunks=2), axis=(2, 0),
                                          weights=w).compute(),
                               np.average(b, axis=(2, 0), weights=w), rtol=1e-12)
    with pytest.raises(np.exceptions.AxisError):
        da.average(x, axis=2)


@EX
@given(arrays(dtypes=(np.float64, np.int64, np.int8)), st.data())
def test_ediff1d(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    begin = data.draw(st.sampled_from([None, 5, [1, 2], np.array([[7], [8]])]))
    end = data.draw(st.sampled_from([None, -1, (3, 4, 5)]))
    check(da.ediff1d(x, to_end=end, to_begin=begin), np.ediff1d(a, to_end=end,
                                                                to_begin=begin))


def test_ediff1d_errors():
    x = da.from_array(np.arange(5), chunks=2)
    with pytest.raises(TypeError, match="to_end"):
        da.ediff1d(x, to_end=0.5)
    with pytest.raises(TypeError):
        np.ediff1d(np.array([True, False]))
    with pytest.raises(TypeError):
        da.ediff1d(da.from_array(np.array([True, False]), chunks=1))
    with pytest.raises(ValueError, match="unknown"):
        da.ediff1d(_unknown(np.arange(5.0), ((2, 3),)))


# ---------------------------------------------------------------------------
# triangles and diagonals
# ---------------------------------------------------------------------------
class _Counter:
    """A map_blocks function that counts its calls (and raises when told)."""

    def __init__(self, fail=False):
        self.calls = 0
        self.fail = fail

    def __call__(self, b):
        self.calls += 1
        if self.fail:
            raise RuntimeError("an input block was read")
        return b


@EX
@given(arrays(min_dims=1, max_dims=4, dtypes=(np.float64, np.int32, np.bool_,
                                              np.complex64)),
       st.integers(-8, 8))
def test_tril_triu(ac, k):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    check(da.tril(x, k), np.tril(a, k))
    check(da.triu(x, k), np.triu(a, k))


def test_tril_triu_build_no_data_and_skip_blocks_outside():
    a = np.arange(36.0).reshape(6, 6)
    c = _Counter()
    x = da.from_array(a, chunks=((1, 3, 2), (2, 4))).map_blocks(c, dtype=a.dtype)
    before = c.calls            # map_blocks may probe the function
    t = da.tril(x, 1)
    u = da.triu(x, -2)
    assert c.calls == before
    check(t, np.tril(a, 1))
    check(u, np.triu(a, -2))
    # a triangle that misses every block reads none of them
    bad = da.from_array(a, chunks=2).map_blocks(_Counter(fail=True), dtype=a.dtype)
    check(da.tril(bad, -6), np.tril(a, -6))
    check(da.triu(bad, 6), np.triu(a, 6))
    with pytest.raises(RuntimeError):
        da.tril(bad, 0).compute()


def test_tril_errors():
    with pytest.raises(TypeError, match="1 dimension"):
        da.tril(da.from_array(np.float64(1.0)))
    x = _unknown(np.ones((4, 4)), ((2, 2), (4,)))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.triu(x)
    # unknown sizes on a leading axis are fine
    y = _unknown(np.arange(24.0).reshape(2, 3, 4), ((1, 1), (2, 1), (3, 1)))
    np.testing.assert_array_equal(da.tril(y).compute(), np.tril(np.arange(24.0).reshape(2, 3, 4)))


@EX
@given(st.integers(0, 9), st.one_of(st.none(), st.integers(0, 9)), st.integers(-10, 10),
       st.sampled_from([float, np.int8, bool, np.float32]), st.integers(1, 5))
def test_tri(n, m, k, dtype, c):
    check(da.tri(n, m, k, dtype=dtype, chunks=c), np.tri(n, m, k, dtype=dtype))


def test_tri_errors():
    with pytest.raises(ValueError, match="negative"):
        da.tri(-1)
    with pytest.raises(TypeError):
        da.tri(2.5)
    with pytest.raises(TypeError):
        da.tri(3, dtype=object)


@EX
@given(arrays(min_dims=1, max_dims=1, max_side=8, dtypes=(np.float64, np.int16,
                                                          np.complex128)),
       st.integers(-4, 4))
def test_diag_of_1d(ac, k):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    check(da.diag(x, k), np.diag(a, k))


@EX
@given(arrays(min_dims=2, max_dims=4, dtypes=(np.float64, np.int32, np.bool_)), st.data())
def test_diagonal_and_diag_of_2d(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    nd = a.ndim
    ax1 = data.draw(st.integers(-nd, nd - 1))
    ax2 = data.draw(st.integers(-nd, nd - 1).filter(lambda v: v % nd != ax1 % nd))
    off = data.draw(st.integers(-9, 9))
    check(da.diagonal(x, off, ax1, ax2), np.diagonal(a, off, ax1, ax2))
    if nd == 2:
        check(da.diag(x, off), np.diag(a, off))


@EX
@given(arrays(min_dims=2, max_dims=3, dtypes=(np.int64, np.int8, np.bool_, np.float64)),
       st.integers(-5, 5), st.sampled_from([None, np.float64, np.int32]))
def test_trace(ac, off, dtype):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    exp = np.trace(a, off, dtype=dtype)
    got = da.trace(x, off, dtype=dtype)
    assert got.dtype == exp.dtype and got.shape == np.shape(exp)
    np.testing.assert_allclose(got.compute(), exp, rtol=1e-12)
    np.testing.assert_allclose(x.trace(off, dtype=dtype).compute(), exp, rtol=1e-12)
    np.testing.assert_allclose(da.trace(x, off, -1, 0).compute(), np.trace(a, off, -1, 0),
                               rtol=1e-12)


def test_diagonal_errors_and_unknown_chunks():
    x = da.from_array(np.arange(24.0).reshape(2, 3, 4), chunks=2)
    with pytest.raises(ValueError, match="at least two"):
        da.diagonal(x[0, 0])
    with pytest.raises(ValueError, match="cannot be the same"):
        da.diagonal(x, 0, 1, -2)
    with pytest.raises(np.exceptions.AxisError):
        da.diagonal(x, 0, 0, 3)
    with pytest.raises(ValueError, match="1- or 2-d"):
        da.diag(x)
    a = np.arange(24.0).reshape(4, 6)
    u = _unknown(a, ((2, 2), (3, 3)))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.diagonal(u)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.diag(_unknown(np.arange(3.0), ((2, 1),)))
    # unknown sizes off the diagonal's axes are fine
    b = np.arange(24.0).reshape(2, 3, 4)
    r = da.diagonal(_unknown(b, ((1, 1), (2, 1), (4,))), 0, 1, 2)
    assert r.chunks[-1] == (2, 1)
    np.testing.assert_array_equal(r.compute(), np.diagonal(b, 0, 1, 2))


def test_diagonal_reads_only_the_blocks_it_crosses():
    a = np.arange(64.0).reshape(8, 8)
    x = da.from_array(a, chunks=2)
    d = da.diagonal(x, 3)
    deps = set()
    for t in d.__dask_graph__().values():
        if isinstance(t, tuple) and t and getattr(t[0], "__name__", "") == "_diagonal_block":
            deps.add(t[1][1:])
    assert deps == {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)}
    check(d, np.diagonal(a, 3))


@EX
@given(st.integers(0, 9), st.one_of(st.none(), st.integers(0, 9)), st.integers(-10, 10),
       st.sampled_from(["auto", 1, 3, (2, 3), ((1, 4), -1)]))
def test_tril_triu_indices(n, m, k, chunks):
    if isinstance(chunks, tuple) and chunks[0] == (1, 4):
        chunks = ((1, n - 1) if n > 1 else (n,), -1)
    for f, g in [(da.tril_indices, np.tril_indices), (da.triu_indices, np.triu_indices)]:
        got = f(n, k, m, chunks=chunks)
        exp = g(n, k, m)
        assert len(got) == 2
        for r, e in zip(got, exp):
            assert not any(c != c for c in r.chunks[0])      # known sizes
            check(r, e)


@EX
@given(arrays(min_dims=2, max_dims=2, dtypes=(np.float64,)), st.integers(-4, 4))
def test_indices_from(ac, k):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    for f, g in [(da.tril_indices_from, np.tril_indices_from),
                 (da.triu_indices_from, np.triu_indices_from)]:
        for r, e in zip(f(x, k), g(a, k)):
            check(r, e)
        # the masks these index give NumPy's elements
        rows, cols = f(x, k)
        np.testing.assert_array_equal(x.vindex[rows.compute(), cols.compute()].compute(),
                                      a[g(a, k)])


def test_indices_from_errors():
    with pytest.raises(ValueError, match="2-d"):
        da.tril_indices_from(da.ones(3, chunks=1))
    with pytest.raises(ValueError, match="2-d"):
        np.tril_indices_from(np.ones(3))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        da.triu_indices_from(_unknown(np.ones((3, 3)), ((2, 1), (3,))))
    with pytest.raises(ValueError, match="negative"):
        da.tril_indices(-2)


# ---------------------------------------------------------------------------
# grids
# ---------------------------------------------------------------------------
@EX
@given(st.lists(arrays(min_dims=1, max_dims=2, max_side=5,
                       dtypes=(np.float64, np.int32, np.float32)), min_size=0, max_size=3),
       st.sampled_from(["xy", "ij"]), st.booleans())
def test_meshgrid(inputs, indexing, sparse):
    arrs = [a for a, _ in inputs]
    xs = [da.from_array(a, chunks=c) for a, c in inputs]
    got = da.meshgrid(*xs, indexing=indexing, sparse=sparse)
    exp = np.meshgrid(*arrs, indexing=indexing, sparse=sparse)
    assert isinstance(got, tuple) and len(got) == len(exp)
    for g, e in zip(got, exp):
        check(g, e)


def test_meshgrid_chunks_follow_the_inputs_and_errors():
    x = da.from_array(np.arange(5), chunks=(2, 3))
    y = da.from_array(np.arange(4.0), chunks=(1, 3))
    gx, gy = da.meshgrid(x, y)
    assert gx.chunks == ((1, 3), (2, 3)) == gy.chunks
    gx, gy = da.meshgrid(x, y, indexing="ij")
    assert gx.chunks == ((2, 3), (1, 3))
    with pytest.raises(ValueError, match="indexing"):
        da.meshgrid(x, y, indexing="yx")
    # unknown sizes: sparse grids work, dense ones need the sizes
    u = _unknown(np.arange(5), ((2, 3),))
    su, sy = da.meshgrid(u, y, sparse=True)
    np.testing.assert_array_equal(su.compute(), np.arange(5)[None, :])
    np.testing.assert_array_equal(sy.compute(), np.arange(4.0)[:, None])
    with pytest.raises(ValueError, match="sparse=True"):
        da.meshgrid(u, y)
    with pytest.raises(TypeError):
        da.meshgrid(x, y, bad=1)


@EX
@given(st.lists(st.integers(0, 6), min_size=0, max_size=3), st.data(),
       st.sampled_from([int, np.int32, float, np.uint8]))
def test_indices(dims, data, dtype):
    dims = tuple(dims)
    chunks = chunkings(data.draw, st, dims)
    check(da.indices(dims, dtype=dtype, chunks=chunks), np.indices(dims, dtype=dtype))
    for g, e in zip(da.indices(dims, dtype=dtype, chunks=chunks, sparse=True),
                    np.indices(dims, dtype=dtype, sparse=True)):
        check(g, e)


def test_indices_errors():
    with pytest.raises(ValueError, match="dimensions"):
        da.indices((3, 4), chunks=((1, 2),))
    with pytest.raises(ValueError, match="negative"):
        da.indices((3, -1))
    with pytest.raises(TypeError):
        da.indices((3,), dtype=object)


@EX
@given(st.lists(st.integers(0, 6), min_size=1, max_size=3), st.data(),
       st.sampled_from([None, int, np.float32]))
def test_fromfunction(dims, data, dtype):
    dims = tuple(dims)
    chunks = chunkings(data.draw, st, dims)

    def f(*coords, scale=1):
        return sum((k + 1) * c for k, c in enumerate(coords)) * scale

    got = da.fromfunction(f, chunks=chunks, shape=dims, dtype=dtype, scale=3)
    exp = np.fromfunction(f, dims, dtype=float if dtype is None else dtype, scale=3)
    check(got, exp)


def test_fromfunction_calls_per_block_and_errors():
    calls = []

    def f(i, j):
        calls.append(i.shape)
        return i == j

    x = da.fromfunction(f, chunks=(2, 3), shape=(4, 6), dtype=int)
    n = len(calls)              # the dtype probe only
    assert x.dtype == bool
    got = x.compute()
    assert sorted(calls[n:]) == [(2, 3)] * 4
    np.testing.assert_array_equal(got, np.fromfunction(f, (4, 6), dtype=int))
    # a function returning a scalar fills the grid, as it would broadcast
    check(da.fromfunction(lambda i, j: 7.0, shape=(2, 3), chunks=2), np.full((2, 3), 7.0))
    # two lambdas are two arrays
    a = da.fromfunction(lambda i: i + 1, shape=(3,))
    b = da.fromfunction(lambda i: i * 2, shape=(3,))
    assert a.name != b.name
    with pytest.raises(TypeError, match="shape"):
        da.fromfunction(f)
    with pytest.raises(TypeError, match="callable"):
        da.fromfunction(3, shape=(2,))


# ---------------------------------------------------------------------------
# choose
# ---------------------------------------------------------------------------
@EX
@given(arrays(min_dims=1, max_dims=3, max_side=5, dtypes=(np.int64,)), st.integers(1, 4),
       st.sampled_from(["raise", "wrap", "clip"]), st.data())
def test_choose(ac, n, mode, data):
    idx, chunks = ac
    idx = np.abs(idx) % (n if mode == "raise" else n + 3)
    shape = idx.shape
    choices = []
    for j in range(n):
        kind = data.draw(st.sampled_from(["scalar", "full", "row"]))
        if kind == "scalar":
            choices.append(j * 10 + 1)
        elif kind == "full":
            choices.append(sample(shape, np.float32, j))
        else:
            choices.append(da.from_array(sample(shape[-1:], np.int16, j)))
    x = da.from_array(idx, chunks=chunks)
    np_choices = [c.compute() if isinstance(c, da.Array) else c for c in choices]
    check(da.choose(x, choices, mode=mode), np.choose(idx, np_choices, mode=mode))
    if mode == "raise":
        check(x.choose(choices), np.choose(idx, np_choices))


def test_choose_errors():
    x = da.from_array(np.array([0, 1, 2]), chunks=2)
    with pytest.raises(ValueError, match="invalid entry"):
        da.choose(x, [np.zeros(3), np.ones(3)]).compute()
    with pytest.raises(ValueError, match="clipmode"):
        da.choose(x, [1, 2, 3], mode="bad")
    with pytest.raises(ValueError, match="broadcast"):
        da.choose(x, [np.zeros(2), 1, 2])
    with pytest.raises(TypeError):
        da.choose(x.astype(float), [1, 2, 3])
    # unknown chunk sizes, chunked alike
    u = _unknown(np.arange(5.0), ((2, 3),))
    np.testing.assert_array_equal(da.choose((u > 2).astype(int), [u, -u, 9]).compute(),
                                  [0.0, 1.0, 2.0, -3.0, -4.0])


# ---------------------------------------------------------------------------
# assert_eq, register_chunk_type, names
# ---------------------------------------------------------------------------
def test_assert_eq_passes_and_fails_clearly():
    import dask.array as dda

    a = np.arange(12.0).reshape(3, 4)
    x = da.from_array(a, chunks=(2, 3))
    assert da.assert_eq(x, a)
    assert da.assert_eq(a, x + 0)
    assert da.assert_eq(x, dda.from_array(a, chunks=2))
    assert da.assert_eq(x * (1 + 1e-9), a)
    n = np.array([np.nan, 1.0])
    assert da.assert_eq(da.from_array(n), n)
    with pytest.raises(AssertionError, match="values differ at 1 of 12"):
        b = a.copy()
        b[2, 3] = -1
        da.assert_eq(x, b)
    with pytest.raises(AssertionError, match="shapes differ"):
        da.assert_eq(x, a[:2])
    with pytest.raises(AssertionError, match="dtypes differ"):
        da.assert_eq(x, a.astype(np.float32))
    assert da.assert_eq(x, a.astype(np.float32), check_dtype=False)
    with pytest.raises(AssertionError):
        da.assert_eq(da.from_array(n), n, equal_nan=False)
    with pytest.raises(AssertionError, match="dimensions"):
        da.assert_eq(x, a.ravel(), check_shape=False)
    # an Array that lies about its chunks, or its dtype
    lying = da.Array(x._layers, x.name, ((1, 2), (2, 2)), x.dtype)
    with pytest.raises(AssertionError, match="chunks say"):
        da.assert_eq(lying, a)
    liar = da.Array(x._layers, x.name, x.chunks, np.float32)
    with pytest.raises(AssertionError, match="dtype"):
        da.assert_eq(liar, a.astype(np.float32))
    with pytest.raises(TypeError, match="unexpected"):
        da.assert_eq(x, a, bogus=1)


def test_register_chunk_type():
    from cdask.array import chunk_types

    class Duck:
        def __array_function__(self, func, types, args, kwargs):
            return "duck"

        def __array__(self, dtype=None, copy=None):
            return np.arange(3.0)

    x = da.from_array(np.arange(3.0), chunks=2)
    # unregistered: cdask defers to the type (NumPy then asks Duck)
    assert np.concatenate([x, Duck()]) == "duck"
    assert da.register_chunk_type(Duck) is Duck
    try:
        assert chunk_types.is_valid_chunk_type(Duck)
        da.register_chunk_type(Duck)
        assert chunk_types.HANDLED_CHUNK_TYPES.count(Duck) == 1
        r = np.concatenate([x, Duck()])
        assert not isinstance(r, str)          # cdask handled it
        np.testing.assert_array_equal(np.asarray(r), np.r_[np.arange(3.0), np.arange(3.0)])
    finally:
        chunk_types.HANDLED_CHUNK_TYPES.remove(Duck)
    with pytest.raises(TypeError, match="type"):
        da.register_chunk_type(3)


def test_dtype_names_and_constants_are_numpys():
    import dask.array as dda

    for n in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "float32", "float64", "complex64", "complex128", "newaxis"):
        assert getattr(da, n) is getattr(dda, n) is getattr(np, n), n
    for n in ("pi", "e", "inf", "euler_gamma"):
        assert getattr(da, n) == getattr(np, n), n
    assert np.isnan(da.nan)
    x = da.ones(3, chunks=2).astype(da.float32)
    assert x.dtype == np.float32
    assert x[:, da.newaxis].shape == (3, 1)


def test_array_attributes():
    import dask
    from dask.delayed import Delayed

    a = np.arange(20.0).reshape(4, 5)
    x = da.from_array(a, chunks=(3, 2))
    assert x.A is x
    for opt in (True, False):
        d = x.to_delayed(optimize_graph=opt)
        assert d.shape == x.numblocks and d.dtype == object
        assert all(isinstance(v, Delayed) for v in d.ravel())
        np.testing.assert_array_equal(d[1, 2].compute(), a[3:, 4:])
        blocks = dask.compute(*d.ravel())
        assert [b.shape for b in blocks] == [(3, 2), (3, 2), (3, 1), (1, 2), (1, 2), (1, 1)]
    y = (x + 1).sum(axis=0)
    np.testing.assert_array_equal(y.to_delayed()[0].compute(), (a + 1).sum(axis=0)[:2])
    z = da.from_array(np.float64(3.0)) * 2
    assert z.to_delayed().shape == () and z.to_delayed()[()].compute() == 6.0


def test_submodules_import_in_a_fresh_interpreter():
    code = ("import cdask.linalg, cdask.random, cdask.overlap\n"
            "from cdask.linalg import qr, norm\n"
            "from cdask.random import default_rng\n"
            "import cdask\n"
            "assert cdask.linalg is cdask.array.linalg and cdask.random is cdask.array.random\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
