"""Function application names of issue 15: apply_gufunc, gufunc, as_gufunc,
frompyfunc (gufuncs.py); apply_along_axis, apply_over_axes, atop,
unify_chunks (applying.py) - against NumPy (np.vectorize with a signature is
NumPy's own gufunc emulation) and dask where NumPy has nothing alike, over
hypothesis shapes, chunkings and dtypes; bad arguments raise dask's
exception types.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da
from blockcheck import check, chunkings, sample

EX = settings(max_examples=25, deadline=None)


@st.composite
def arrays(draw, min_dims=1, max_dims=3, max_side=6, dtypes=(np.float64, np.float32,
                                                              np.int32)):
    shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=min_dims,
                                max_size=max_dims)))
    chunks = chunkings(draw, st, shape)
    dtype = draw(st.sampled_from(dtypes))
    return sample(shape, dtype, draw(st.integers(0, 2 ** 16))), chunks


def _whole(chunks, axes):
    """``chunks`` with the axes ``axes`` in one block each."""
    return tuple((sum(c),) if d in axes else c for d, c in enumerate(chunks))


# ---------------------------------------------------------------------------
# apply_gufunc
# ---------------------------------------------------------------------------
def _sum_last(v):
    return v.sum(axis=-1)


def _max_last(v):
    return v.max(axis=-1)


def _stats(v):
    return v.mean(axis=-1), v.max(axis=-1)


@EX
@given(arrays())
def test_apply_gufunc_reduction_and_two_outputs(ac):
    a, chunks = ac
    x = da.from_array(a, chunks=_whole(chunks, {a.ndim - 1}))
    check(da.apply_gufunc(_sum_last, "(i)->()", x, axis=-1), np.sum(a, axis=-1))
    with pytest.raises(ValueError, match="shape"):
        # np.sum sums the whole block: not a gufunc, told apart by the block's shape
        da.apply_gufunc(np.sum, "(i)->()", da.ones((2, 3), chunks=(1, 3))).compute()
    m, mx = da.apply_gufunc(_stats, "(i)->(),()", x)
    check(m, a.mean(axis=-1), exact=False)
    check(mx, a.max(axis=-1))
    # the core axis elsewhere, in several blocks: allow_rechunk
    y = da.from_array(a, chunks=chunks)
    check(da.apply_gufunc(_max_last, "(i)->()", y, axis=0, allow_rechunk=True), a.max(axis=0))
    check(da.apply_gufunc(_max_last, "(i)->()", y, axes=[(0,), ()], allow_rechunk=True,
                          keepdims=False), a.max(axis=0))
    check(da.apply_gufunc(_max_last, "(i)->()", y, axis=0, keepdims=True, allow_rechunk=True),
          a.max(axis=0, keepdims=True))


def _matmul_vec(a, b):
    return np.matmul(a, b)


@EX
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4),
       st.lists(st.integers(1, 3), max_size=2), st.integers(0, 2 ** 16), st.booleans())
def test_apply_gufunc_matmul_broadcast_loops(m, n, p, loop, seed, vectorize):
    a = sample(tuple(loop) + (m, n), np.float64, seed)
    b = sample((1,) * len(loop) + (n, p), np.float64, seed + 1) if loop else \
        sample((n, p), np.float64, seed + 1)
    x = da.from_array(a, chunks=(1,) * len(loop) + (m, n))
    y = da.from_array(b)
    func = (lambda u, v: u @ v) if vectorize else _matmul_vec
    r = da.apply_gufunc(func, "(m,n),(n,p)->(m,p)", x, y, vectorize=vectorize,
                        output_dtypes=float)
    want = np.vectorize(lambda u, v: u @ v, signature="(m,n),(n,p)->(m,p)")(a, b)
    check(r, want, exact=False)


@EX
@given(arrays(max_dims=2))
def test_apply_gufunc_new_core_dims_and_axes(ac):
    a, chunks = ac
    x = da.from_array(a, chunks=_whole(chunks, {a.ndim - 1}))

    def outer_self(v):
        return v[..., :, None] * v[..., None, :2]

    k = min(2, a.shape[-1])
    want = a[..., :, None] * a[..., None, :2]
    r = da.apply_gufunc(outer_self, "(i)->(i,j)", x, output_sizes={"j": k})
    check(r, want)
    # output core axes moved to the front
    r = da.apply_gufunc(outer_self, "(i)->(i,j)", x, output_sizes={"j": k},
                        axes=[(-1,), (0, 1)])
    check(r, np.moveaxis(want, (-2, -1), (0, 1)))


@EX
@given(arrays(min_dims=2, max_dims=3))
def test_apply_gufunc_output_dtype_inference_and_vectorize(ac):
    a, chunks = ac
    x = da.from_array(a, chunks=_whole(chunks, {a.ndim - 1}))
    r = da.apply_gufunc(lambda v: (v > 0).sum(-1), "(i)->()", x)
    check(r, (a > 0).sum(-1))
    med = lambda v: float(np.median(v))    # noqa: E731
    r = da.apply_gufunc(med, "(i)->()", x, vectorize=True)
    check(r, np.vectorize(med, signature="(i)->()")(a))


def test_apply_gufunc_meta():
    a = sample((3, 4), np.float64, 5)
    x = da.from_array(a, chunks=(1, 4))
    r = da.apply_gufunc(_sum_last, "(i)->()", x, meta=np.empty((0,), np.float32))
    check(r, a.sum(-1).astype(np.float32))
    m, mx = da.apply_gufunc(_stats, "(i)->(),()", x,
                            meta=(np.empty((0,), np.float32), np.empty((0,), np.int64)))
    check(m, a.mean(-1).astype(np.float32))
    check(mx, a.max(-1).astype(np.int64))


def test_gufunc_and_as_gufunc():
    a = sample((4, 5), np.float64, 3)
    x = da.from_array(a, chunks=(2, 5))

    @da.as_gufunc("(i)->()", output_dtypes=float)
    def spread(v):
        return v.max(-1) - v.min(-1)

    assert isinstance(spread, da.gufunc)
    check(spread(x), np.ptp(a, axis=-1))
    g = da.gufunc(lambda v: v.mean(-1), signature="(i)->()", output_dtypes=float, axis=0)
    check(g(da.from_array(a, chunks=(4, 2))), a.mean(axis=0), exact=False)
    y = da.from_array(a, chunks=(2, 2))
    with pytest.raises(ValueError, match="multiple chunks"):
        spread(y)
    check(spread(y, allow_rechunk=True), np.ptp(a, axis=-1))
    with pytest.raises(TypeError, match="Unsupported"):
        da.as_gufunc("(i)->()", bogus=1)


def test_apply_gufunc_errors():
    x = da.from_array(np.ones((4, 5)), chunks=(2, 2))
    one = da.from_array(np.ones((4, 5)), chunks=(2, 5))
    with pytest.raises(ValueError, match="multiple chunks"):
        da.apply_gufunc(_sum_last, "(i)->()", x, axis=-1)
    with pytest.raises(ValueError, match="signature"):
        da.apply_gufunc(np.sum, "(i->()", one)
    with pytest.raises(TypeError, match="string"):
        da.apply_gufunc(np.sum, None, one)
    with pytest.raises(ValueError, match="arguments"):
        da.apply_gufunc(np.add, "(),()->()", one)
    with pytest.raises(ValueError, match="different lengths"):
        da.apply_gufunc(np.add, "(i),(i)->(i)", one, da.ones(4, chunks=4))
    with pytest.raises(ValueError, match="chunksize"):
        da.apply_gufunc(np.add, "(),()->()", one, da.from_array(np.ones((4, 5)), chunks=(1, 5)))
    with pytest.raises(ValueError, match="output_sizes"):
        da.apply_gufunc(lambda v: v, "(i)->(j)", one, output_dtypes=float)
    with pytest.raises(ValueError, match="Only one of"):
        da.apply_gufunc(np.sum, "(i)->()", one, axis=-1, axes=[(-1,)])
    with pytest.raises(ValueError, match="output"):
        da.apply_gufunc(_stats, "(i)->(),()", one, output_dtypes=float)
    with pytest.raises(ValueError, match="keepdims"):
        da.apply_gufunc(lambda v: v, "(i)->(i)", one, keepdims=True, output_dtypes=float)
    with pytest.raises(ValueError, match="output axes"):
        da.apply_gufunc(lambda v: v, "(i)->(i)", one, axes=[(-1,), (5,)], output_dtypes=float)
    with pytest.raises(ValueError, match="inference"):
        da.apply_gufunc(lambda v: v.no_such_method(), "(i)->()", one)
    # unknown chunk sizes along a loop axis are fine
    a = np.arange(20.0).reshape(4, 5)
    u = da.from_array(a, chunks=(2, 5))[da.from_array(a[:, 0] > 2, chunks=2)]
    np.testing.assert_array_equal(da.apply_gufunc(_sum_last, "(i)->()", u).compute(),
                                  a[a[:, 0] > 2].sum(-1))
    # several chunks on a loop axis are fine, and the results equal NumPy's
    check(da.apply_gufunc(np.add, "(),()->()", x, x), np.full((4, 5), 2.0))


# ---------------------------------------------------------------------------
# frompyfunc
# ---------------------------------------------------------------------------
@EX
@given(arrays(dtypes=(np.float64, np.int64, np.int8)))
def test_frompyfunc(ac):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)

    def f2(u, v):
        return u * 2 + v

    f = da.frompyfunc(f2, 2, 1)
    assert (f.nin, f.nout, f.nargs) == (2, 1, 3)
    nf = np.frompyfunc(f2, 2, 1)
    # the object loop passes Python objects: the result dtype is theirs
    one = np.ones((), a.dtype).item()
    want = nf(a, 1)
    check(f(x, 1), want.astype(np.asarray(f2(one, 1)).dtype))
    check(f(x, 1, dtype=np.float32), want.astype(np.float32))
    b = sample(a.shape[-1:], np.float64, 1)
    check(f(x, b), nf(a, b).astype(np.float64))
    # on NumPy arguments: NumPy's object ufunc
    r = f(a, 1)
    assert r.dtype == object and np.array_equal(r, want)
    check(f.outer(da.from_array(a.ravel()[:3]), da.from_array(b)),
          nf.outer(a.ravel()[:3], b).astype(np.float64))


def test_frompyfunc_errors():
    with pytest.raises(NotImplementedError):
        da.frompyfunc(divmod, 2, 2)
    f = da.frompyfunc(str, 1, 1)
    with pytest.raises(TypeError, match="dtype"):
        f(da.ones(3, chunks=2))
    g = da.frompyfunc(abs, 1, 1)
    with pytest.raises(TypeError, match="arguments"):
        g(da.ones(3, chunks=2), 1)
    with pytest.raises(ValueError, match="binary"):
        g.outer(da.ones(2), da.ones(2))


# ---------------------------------------------------------------------------
# apply_along_axis, apply_over_axes
# ---------------------------------------------------------------------------
@EX
@given(arrays(), st.data())
def test_apply_along_axis(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    for f in (np.cumsum, np.sum, lambda v: v[:2] * 3, lambda v: np.outer(v, v[:1]),
              lambda v, k=2: np.sort(v)[::-1] * k):
        check(da.apply_along_axis(f, axis, x), np.apply_along_axis(f, axis, a),
              exact=a.dtype.kind != "f" or f is not np.sum)
    check(da.apply_along_axis(np.linspace, axis, x, 1, 3, endpoint=False),
          np.apply_along_axis(np.linspace, axis, a, 1, 3, endpoint=False))
    check(da.apply_along_axis(np.sum, axis, x, dtype=np.float64, shape=()),
          np.apply_along_axis(np.sum, axis, a).astype(np.float64), exact=False)


@EX
@given(arrays(), st.data())
def test_apply_over_axes(ac, data):
    a, chunks = ac
    x = da.from_array(a, chunks=chunks)
    axes = data.draw(st.lists(st.integers(-a.ndim, a.ndim - 1), min_size=1, max_size=3,
                              unique=True))
    check(da.apply_over_axes(np.max, x, axes), np.apply_over_axes(np.max, a, axes))
    check(da.apply_over_axes(np.sum, x, axes[0]), np.apply_over_axes(np.sum, a, axes[0]),
          exact=False)
    check(da.apply_over_axes(np.cumsum, x, axes), np.apply_over_axes(np.cumsum, a, axes),
          exact=a.dtype.kind != "f")


def test_apply_along_axis_errors():
    x = da.ones((2, 3), chunks=1)
    with pytest.raises(np.exceptions.AxisError):
        da.apply_along_axis(np.sum, 2, x)
    with pytest.raises(ValueError, match="dimensionality"):
        da.apply_over_axes(lambda v, ax: np.outer(v, v), x, [0])
    y = x[da.from_array(np.ones(2, bool), chunks=1)]
    with pytest.raises(ValueError, match="unknown"):
        da.apply_along_axis(np.sum, 0, y)
    # along a known axis, unknown other axes are fine
    np.testing.assert_array_equal(da.apply_along_axis(np.sum, 1, y).compute(), [3.0, 3.0])


# ---------------------------------------------------------------------------
# atop, unify_chunks
# ---------------------------------------------------------------------------
def test_atop_is_blockwise_with_a_warning():
    a = sample((4, 6), np.float64, 1)
    x = da.from_array(a, chunks=(2, 3))
    with pytest.warns(UserWarning, match="blockwise"):
        r = da.atop(np.add, "ij", x, "ij", x, "ij")
    check(r, a + a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(da.atop(np.transpose, "ji", x, "ij"), a.T)


@EX
@given(st.lists(st.integers(1, 8), min_size=1, max_size=3), st.data())
def test_unify_chunks_against_dask(shape, data):
    import dask.array as dda

    c1, c2 = chunkings(data.draw, st, shape), chunkings(data.draw, st, shape)
    a, b = sample(tuple(shape), np.float64, 1), sample(tuple(shape), np.float64, 2)
    ind = "ijk"[:len(shape)]
    got_c, got_a = da.unify_chunks(da.from_array(a, chunks=c1), ind,
                                   da.from_array(b, chunks=c2), ind, "lit", None)
    want_c, _ = dda.unify_chunks(dda.from_array(a, chunks=c1), ind,
                                 dda.from_array(b, chunks=c2), ind, "lit", None)
    assert got_c == want_c
    assert got_a[2] == "lit"
    assert got_a[0].chunks == got_a[1].chunks == tuple(want_c[i] for i in ind)
    check(got_a[0], a)
    check(got_a[1], b)
    # a broadcast axis of length 1 keeps its block
    one = da.ones((1,) + tuple(shape[1:]), chunks=1)
    cc, arrs = da.unify_chunks(da.from_array(a, chunks=c1), ind, one, ind)
    assert arrs[1].chunks[0] == (1,) and cc[ind[0]] == c1[0]


def test_unify_chunks_edges():
    assert da.unify_chunks() == ({}, [])
    assert da.unify_chunks(0, None) == ({}, [0])
    with pytest.raises(ValueError, match="align"):
        da.unify_chunks(da.ones(4, chunks=2), "i", da.ones(5, chunks=2), "i")
    x = da.ones((2, 3), chunks=1)
    with pytest.raises(ValueError):
        da.unify_chunks(x, "i")
