"""NumPy's ufunc methods on cdask Arrays: np.<ufunc>.reduce / accumulate /
outer / reduceat, lazy, NumPy's dtypes, values and exceptions (issue 16, part 4)."""

import functools
import warnings

import numpy as np
from numpy.lib.array_utils import normalize_axis_index
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da
from cdask import _core
from blockcheck import DTYPES, check, chunkings, sample
from cdask.array.dtypes import SUPPORTED_DTYPES

BINARY = sorted((u for u in vars(np).values() if isinstance(u, np.ufunc) and u.nin == 2
                 and u.signature is None), key=lambda u: u.__name__)
SINGLE = [u for u in BINARY if u.nout == 1]
# reductions whose floating results depend on the order of the operations (a
# tree, not one sequence): compared within a tolerance.  Scans (accumulate)
# and folds of the other ufuncs are NumPy's sequence of operations: its bits.
INEXACT_ORDER = {np.add, np.multiply, np.logaddexp, np.logaddexp2, np.hypot}


def _outputs_supported(u, dt):
    try:
        loop = u.resolve_dtypes((np.dtype(dt),) * 2 + (None,) * u.nout)
    except TypeError:
        return True     # NumPy raises; cdask must raise the same type
    return all(d in SUPPORTED_DTYPES for d in loop)


@st.composite
def _array(draw, min_ndim=0, ufuncs=SINGLE, unknown=True):
    u = draw(st.sampled_from(ufuncs))
    dt = draw(st.sampled_from([d for d in DTYPES if _outputs_supported(u, d)]))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=min_ndim, max_size=3)))
    chunks = chunkings(draw, st, shape)
    a = sample(shape, dt, draw(st.integers(0, 2 ** 16)))
    x = da.from_array(a, chunks=chunks)
    if unknown and a.ndim and draw(st.booleans()):
        # rows picked by a mask: unknown (nan) chunk sizes along axis 0
        keep = sample(a.shape[:1], bool, draw(st.integers(0, 99)))
        a, x = a[keep], x[da.from_array(keep, chunks=chunks[0])]
        assert x.ndim == 0 or np.isnan(x.shape[0])
    return u, a, x


def _numpy(f):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            try:
                return f(), None
            except Exception as e:      # what cdask must raise too
                return None, type(e)


def _compare(u, f, a, x, exact=None):
    want, err = _numpy(lambda: f(a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            if err is not None:
                with pytest.raises(err):
                    f(x).compute()
                return
            got = f(x)
            assert isinstance(got, da.Array)
            if exact or (exact is None and _exact(u, want.dtype)):
                _check(got, want)
            else:
                r = got.compute()
                assert r.dtype == np.asarray(want).dtype and r.shape == np.shape(want)
                # float16 results (bool inputs of logaddexp...) round at 1e-3
                np.testing.assert_allclose(r, want, rtol=1e-2 if r.dtype == np.float16 else
                                           1e-4 if r.dtype.itemsize <= 8 else 1e-10,
                                           equal_nan=True)


def _check(got, want):
    if any(s != s for s in got.shape):      # unknown chunk sizes: values and dtype
        r = got.compute()
        np.testing.assert_array_equal(r, want, strict=True)
        return
    check(got, want)


def _reduce_wrong(u, in_dt, dt):
    """This NumPy's reduce of u over a contiguous axis is not the left fold it
    documents (NumPy 2.4.5's arctan2, power, ldexp: of the first and last)."""
    if np.dtype(dt).kind not in "fc" or np.dtype(in_dt).kind == "b":
        return False
    v = np.array([3, 1, 2, 1, 2]).astype(in_dt)
    with np.errstate(all="ignore"):
        try:
            r = u.reduce(v)
        except (TypeError, ValueError):
            return False
        fold = functools.reduce(lambda acc, e: u(acc, e), v[1:], v[0].astype(r.dtype))
    return not np.isclose(r, fold, rtol=1e-2, equal_nan=True)


def _np_reduce(u, a, axis=0, keepdims=False, initial=None, where=True, **kw):
    """``u.reduce``, or where this NumPy's is wrong, the fold NumPy defines:
    the last slice of its accumulate (its bits), or (under a mask, or with
    two dtypes in the loop) slice by slice, as cdask folds then."""
    args = dict(axis=axis, keepdims=keepdims, where=where, **kw)
    if initial is not None:
        args["initial"] = initial
    r = u.reduce(a, **args)          # NumPy's dtype, and its errors
    if not _reduce_wrong(u, a.dtype, r.dtype) or axis == () or a.ndim == 0:
        return r
    ax = normalize_axis_index(axis if not isinstance(axis, tuple) else axis[0], a.ndim) \
        if axis is not None else 0
    if a.shape[ax] == 0:
        return r
    t = None
    if where is True:
        b = a.astype(r.dtype)
        if initial is not None:
            b = np.concatenate([np.full_like(np.take(b, [0], axis=ax), initial), b], axis=ax)
        try:
            t = np.take(u.accumulate(b, axis=ax), [-1], axis=ax)
        except TypeError:            # (ldexp: two dtypes in its loop)
            pass
    if t is None:
        w = np.broadcast_to(where, a.shape)
        first = 0 if initial is None else None
        t = np.take(a, [0], axis=ax).astype(r.dtype) if initial is None else \
            np.full(np.take(a, [0], axis=ax).shape, initial, dtype=r.dtype)
        for i in range(0 if first is None else 1, a.shape[ax]):
            t = u(t, np.take(a, [i], axis=ax), out=t.copy(), where=np.take(w, [i], axis=ax))
    return t if keepdims else np.squeeze(t, axis=ax)


def _exact(u, dt):
    return not (u in INEXACT_ORDER and np.dtype(dt).kind in "fc")


# ---------------------------------------------------------------------------
# reduce
# ---------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(_array(), st.data())
def test_reduce_matches_numpy(case, data):
    u, a, x = case
    nd = a.ndim
    axis = data.draw(st.sampled_from([0, None, (), -1] + ([(0, 1), 1] if nd >= 2 else [])
                                     + ([(0, 2), (2, 1, 0)] if nd >= 3 else [])))
    kw = dict(axis=axis, keepdims=data.draw(st.booleans()))
    if data.draw(st.booleans()):
        kw["initial"] = data.draw(st.sampled_from([0, 1, 3]))
    unknown = any(s != s for s in x.shape)
    if unknown and data.draw(st.booleans()):
        # a mask of unknown chunk sizes too: from the data
        kw["where"] = x > 0
        np_kw = dict(kw, where=a > 0)
    elif not unknown and data.draw(st.booleans()):
        w = sample(a.shape[-1:] if data.draw(st.booleans()) else a.shape, bool,
                   data.draw(st.integers(0, 99)))
        kw["where"] = w if data.draw(st.booleans()) else da.from_array(w, chunks=2)
        np_kw = dict(kw, where=np.asarray(w))
    else:
        np_kw = kw
    if a.dtype.kind in "iu" and u in (np.add, np.multiply):
        kw["dtype"] = np_kw["dtype"] = data.draw(st.sampled_from([None, a.dtype, np.float64]))
    want, err = _numpy(lambda: _np_reduce(u, a, **np_kw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            if err is not None:
                with pytest.raises(err):
                    u.reduce(x, **kw).compute()
                return
            got = u.reduce(x, **kw)
            assert isinstance(got, da.Array)
            if _exact(u, want.dtype):
                _check(got, want)
            else:
                r = got.compute()
                assert r.dtype == want.dtype and r.shape == want.shape
                np.testing.assert_allclose(r, want, rtol=1e-2 if r.dtype == np.float16 else 1e-4,
                                           equal_nan=True)


def test_reorderable_as_numpy():
    # cdask's split between tree and fold is NumPy's: several axes allowed or not
    from cdask.array.ufunc_methods import _reorderable
    for u in SINGLE:
        for dt in (np.float64, np.int64, np.bool_):
            try:
                u.reduce(np.ones((1, 1), dt), axis=(0, 1))
                ok = True
            except ValueError:
                ok = False
            except TypeError:
                continue
            assert ok == _reorderable(u), (u, dt)


def test_fast_paths_are_cdask_reductions():
    x = da.random.default_rng(0).random((40, 30), chunks=(7, 11))
    assert np.add.reduce(x, axis=None).name.startswith("sum-")
    assert np.multiply.reduce(x, axis=1).name.startswith("prod-")
    assert np.maximum.reduce(x, axis=(0, 1)).name.startswith("max-")
    assert np.minimum.reduce(x).name.startswith("min-")
    assert np.logical_or.reduce(x > 0.5).name.startswith("any-")
    a = x.compute()
    np.testing.assert_allclose(np.add.reduce(x, axis=None).compute(), a.sum())
    np.testing.assert_array_equal(np.maximum.reduce(x, axis=0, where=a > 0.3,
                                                    initial=-1.0).compute(),
                                  np.maximum.reduce(a, axis=0, where=a > 0.3, initial=-1.0))


def test_reduce_unknown_chunks():
    a = np.linspace(-3, 7, 31)
    x = da.from_array(a, chunks=6)
    sel, ref = x[x > 0], a[a > 0]
    np.testing.assert_allclose(np.add.reduce(sel).compute(), np.add.reduce(ref))
    assert np.subtract.reduce(sel).compute() == np.subtract.reduce(ref)
    assert np.fmax.reduce(sel).compute() == np.fmax.reduce(ref)
    np.testing.assert_array_equal(np.subtract.accumulate(sel).compute(),
                                  np.subtract.accumulate(ref))
    empty = x[x > 100]
    with pytest.raises(ValueError):
        np.maximum.reduce(empty).compute()
    with pytest.raises(ValueError):
        np.subtract.reduce(empty).compute()
    assert np.maximum.reduce(empty, initial=2.0).compute() == 2.0
    assert np.add.reduce(empty).compute() == 0.0
    with pytest.raises(ValueError):
        np.add.reduceat(sel, [0, 1])      # the axis' length is needed


def test_reduce_out():
    a = np.arange(24.0).reshape(4, 6)
    x = da.from_array(a, chunks=(3, 4))
    o = da.zeros(6, chunks=3)
    r = np.add.reduce(x, axis=0, out=o)
    assert r is o
    np.testing.assert_array_equal(o.compute(), a.sum(axis=0))
    o = da.zeros(4, chunks=2)
    assert np.subtract.accumulate(x, axis=1)[:, -1].compute().tolist() == \
        np.subtract.accumulate(a, axis=1)[:, -1].tolist()
    np.maximum.reduce(x, axis=1, out=(o,))
    np.testing.assert_array_equal(o.compute(), a.max(axis=1))


# ---------------------------------------------------------------------------
# accumulate
# ---------------------------------------------------------------------------
@settings(max_examples=120, deadline=None)
@given(_array(), st.data())
def test_accumulate_matches_numpy(case, data):
    u, a, x = case
    axis = data.draw(st.sampled_from([0, -1, None] + ([1] if a.ndim >= 2 else [])))
    dtype = None
    if a.dtype.kind in "iu" and u in (np.add, np.multiply, np.maximum):
        dtype = data.draw(st.sampled_from([None, np.int64, np.float64]))
    # NumPy's complex multiply rounds differently from one array shape to another
    # (its SIMD and scalar loops): within a tolerance where blocks meet
    exact = not (u is np.multiply and np.result_type(a.dtype, dtype or a.dtype).kind == "c")
    # NumPy 2.4.5 rounds an accumulate of two elements of power or arctan2
    # otherwise than a longer one (see ufunc_methods._numpy_accumulate); over
    # chunks of unknown sizes cdask cannot know that the axis has only two
    n = a.size if axis is None or a.ndim == 0 else a.shape[axis]
    if any(s != s for s in x.shape) and n == 2 and u in (np.power, np.arctan2):
        exact = False
    _compare(u, lambda v: u.accumulate(v, axis=axis, dtype=dtype), a, x, exact=exact)


def test_accumulate_bits_on_floats():
    # every ufunc scans in NumPy's own order: its bits (slice by slice along
    # the first axis of long slices, in cache-sized pieces along the last)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((9, 1300)) * 3
    x = da.from_array(a, chunks=((2, 0, 4, 3), (500, 1, 799)))
    check(np.add.accumulate(x[0], axis=0), np.add.accumulate(a[0]))
    check(np.add.accumulate(x.rechunk(((9,), (1300,))).ravel()), np.add.accumulate(a.ravel()))
    b = rng.standard_normal(100_000)
    check(np.add.accumulate(da.from_array(b, chunks=30_000)), np.add.accumulate(b))
    with np.errstate(all="ignore"):
        for u in (np.add, np.multiply, np.subtract, np.divide, np.maximum, np.fmin,
                  np.logaddexp, np.hypot, np.arctan2, np.power, np.copysign):
            for axis in (0, 1):
                check(u.accumulate(x, axis=axis), u.accumulate(a, axis=axis))


# ---------------------------------------------------------------------------
# outer
# ---------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(_array(ufuncs=BINARY), st.data())
def test_outer_matches_numpy(case, data):
    u, a, x = case
    bshape = tuple(data.draw(st.lists(st.integers(0, 4), min_size=0, max_size=2)))
    b = sample(bshape, a.dtype, 7)
    y = da.from_array(b, chunks=chunkings(data.draw, st, bshape)) if data.draw(st.booleans()) \
        else b
    want, err = _numpy(lambda: u.outer(a, b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            if err is not None:
                with pytest.raises(err):
                    r = u.outer(x, y)
                    for g in (r if isinstance(r, tuple) else (r,)):
                        g.compute()
                return
            got = u.outer(x, y)
            if u.nout == 1:
                got, want = (got,), (want,)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                _check(g, w)


def test_cdask_ufunc_methods():
    a = np.arange(12.0).reshape(3, 4)
    x = da.from_array(a, chunks=2)
    check(da.add.outer(x[0], a[1]), np.add.outer(a[0], a[1]))
    assert isinstance(da.multiply.outer(a[0], a[1]), da.Array)   # dask's: always lazy
    np.testing.assert_allclose(da.add.reduce(x, axis=1).compute(), a.sum(1))
    check(da.maximum.accumulate(x, 1), np.maximum.accumulate(a, 1))
    check(da.minimum.reduceat(x, [0, 2], axis=1), np.minimum.reduceat(a, [0, 2], axis=1))
    assert isinstance(da.add.reduce(a[0]), np.floating)               # NumPy data: NumPy's


# ---------------------------------------------------------------------------
# reduceat
# ---------------------------------------------------------------------------
@settings(max_examples=120, deadline=None)
@given(_array(min_ndim=1, unknown=False), st.data())
def test_reduceat_matches_numpy(case, data):
    u, a, x = case
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = a.shape[axis]
    idx = data.draw(st.lists(st.integers(0, n - 1), max_size=8)) if n else []
    _compare(u, lambda v: u.reduceat(v, idx, axis=axis), a, x)


def test_reduceat_spans_many_blocks():
    a = np.arange(200.0).reshape(100, 2)
    x = da.from_array(a, chunks=(7, 1))
    idx = [0, 99, 3, 50, 50, 51, 2, 98, 40]
    for u in (np.add, np.subtract, np.maximum):
        check(u.reduceat(x, idx), u.reduceat(a, idx))
    d = da.from_array(np.asarray(idx), chunks=4)   # cdask indices are computed
    check(np.add.reduceat(x, d), np.add.reduceat(a, idx))


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
def test_errors_are_numpys():
    x = da.ones((4, 5), chunks=2)
    for method, args in [("reduce", ()), ("accumulate", ()), ("reduceat", ([0],))]:
        with pytest.raises(ValueError):
            getattr(np.sin, method)(x, *args)          # a unary ufunc
        with pytest.raises(ValueError):
            getattr(np.divmod, method)(x, *args)       # two outputs
    with pytest.raises(ValueError):
        np.sin.outer(x, x)
    with pytest.raises(IndexError):
        np.add.reduceat(x, [0, 4])
    with pytest.raises(IndexError):
        np.add.reduceat(x, [-1])
    with pytest.raises(IndexError):
        np.add.reduceat(x, [5], axis=1)
    with pytest.raises(ValueError):
        np.subtract.reduce(x, axis=(0, 1))
    with pytest.raises(ValueError):
        np.maximum.reduce(x, where=np.ones((4, 5), bool))   # no identity, no initial
    with pytest.raises(ValueError):
        np.maximum.reduce(da.ones((0, 3), chunks=2))
    with pytest.raises(np.exceptions.AxisError):
        np.add.reduce(x, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        np.maximum.accumulate(x, axis=-3)
    with pytest.raises(TypeError):
        np.bitwise_and.reduce(x)                       # no float loop
    with pytest.raises(TypeError):
        np.add.at(x, [0], 1)                           # in place: not for lazy arrays


def test_results_are_lazy():
    x = da.ones((6, 4), chunks=3)
    for r in (np.add.reduce(x), np.subtract.reduce(x, 1), np.maximum.accumulate(x),
              np.add.outer(x[0], x[1]), np.add.reduceat(x, [0, 3]),
              np.logaddexp.reduce(x, axis=None)):
        assert isinstance(r, da.Array)


def test_floating_point_errors_follow_the_callers_errstate():
    x = da.from_array(np.array([1.0, 0.0, 2.0]), chunks=1)
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            np.divide.accumulate(x).compute()
        with pytest.raises(FloatingPointError):
            np.divide.reduce(x).compute()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="ignore"):
            check(np.divide.accumulate(x), np.divide.accumulate(np.array([1.0, 0.0, 2.0])))


# ---------------------------------------------------------------------------
# __array_function__: every NumPy function cdask implements is lazy
# ---------------------------------------------------------------------------
def _dispatched(f):
    return hasattr(f, "_implementation")      # NumPy's __array_function__ dispatcher


def test_every_numpy_function_cdask_implements_is_routed():
    import cdask.fft
    import cdask.linalg
    from cdask.array import numpy_api

    pairs = [(np, da), (np.linalg, cdask.linalg), (np.fft, cdask.fft)]
    missing = []
    for npm, cdm in pairs:
        for name in dir(cdm):
            f = getattr(npm, name, None)
            if name.startswith("_") or not _dispatched(f):
                continue
            if f not in numpy_api.HANDLED_FUNCTIONS and numpy_api._by_name(f) is None:
                missing.append("%s.%s" % (npm.__name__, name))
    assert not missing, missing


def test_linalg_and_fft_through_numpy_are_lazy():
    from cdask.array.routines import NotLazyWarning

    rng = np.random.default_rng(3)
    a = rng.random((6, 6)) + 6 * np.eye(6)
    a = a @ a.T
    t = rng.random((12, 4))
    b = rng.random(6)
    x, T, y = da.from_array(a, chunks=3), da.from_array(t, chunks=4), da.from_array(b, chunks=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLazyWarning)
        checks = [
            (np.linalg.cholesky(x), np.linalg.cholesky(a)),
            (np.linalg.cholesky(x, upper=True), np.linalg.cholesky(a, upper=True)),
            (np.linalg.inv(x), np.linalg.inv(a)),
            (np.linalg.solve(x, y), np.linalg.solve(a, b)),
            (np.linalg.norm(x, axis=1), np.linalg.norm(a, axis=1)),
            (np.linalg.svd(T, compute_uv=False), np.linalg.svd(t, compute_uv=False)),
            (np.linalg.lstsq(T, T[:, 0])[0], np.linalg.lstsq(t, t[:, 0])[0]),
            (np.fft.fft(y), np.fft.fft(b)),
            (np.fft.fft(x, axis=0), np.fft.fft(a, axis=0)),
            (np.fft.rfftn(x), np.fft.rfftn(a)),
            (np.fft.ifftshift(x), np.fft.ifftshift(a)),
        ]
        q, r = np.linalg.qr(T)
        u, s, vh = np.linalg.svd(T, full_matrices=False)
    for got, want in checks:
        assert isinstance(got, da.Array)
        np.testing.assert_allclose(got.compute(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose((q @ r).compute(), t, atol=1e-12)
    np.testing.assert_allclose(((u * s) @ vh).compute(), t, atol=1e-12)
    # what cdask cannot do lazily is NumPy's, with a warning
    with pytest.warns(NotLazyWarning):
        full = np.linalg.svd(T)
    assert full[0].shape == (12, 12)
    with pytest.warns(NotLazyWarning):
        np.fft.fft(y, out=np.empty(6, complex))


def test_masked_arrays_as_numpy():
    # NumPy's ufunc methods see an np.ma array's data (reduce, accumulate,
    # reduceat drop the mask); outer keeps the masks
    import cdask.ma

    a = np.arange(12.0).reshape(3, 4)
    m = cdask.ma.masked_greater(da.from_array(a, chunks=2), 6)
    nm = np.ma.masked_greater(a, 6)
    for f in (lambda v: np.add.reduce(v, axis=0), lambda v: np.maximum.reduce(v, axis=1),
              lambda v: np.hypot.reduce(v), lambda v: np.maximum.accumulate(v),
              lambda v: np.add.accumulate(v, axis=1), lambda v: np.add.reduceat(v, [0, 1])):
        got, want = f(m).compute(), f(nm)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        assert np.ma.getmask(got) is np.ma.nomask
    got = np.add.outer(m[0], m[1]).compute()
    want = np.add.outer(nm[0], nm[1])
    np.testing.assert_array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(want))
    np.testing.assert_array_equal(np.ma.filled(got, -1), np.ma.filled(want, -1))


def test_graphs_pickle():
    import pickle

    a = np.arange(24.0).reshape(4, 6)
    x = da.from_array(a, chunks=(3, 4))
    w = a > 5
    for r in (np.hypot.reduce(x, axis=1), np.subtract.reduce(x, axis=0, where=w, initial=1.0),
              np.power.reduce(x, axis=(), initial=2.0, where=w), np.maximum.accumulate(x),
              np.add.reduceat(x, [0, 2], axis=1), da.divmod(x, 4)[1]):
        g = pickle.loads(pickle.dumps(dict(r.__dask_graph__())))
        assert set(g) == set(r.__dask_graph__())
        np.testing.assert_array_equal(da.get(g, r._keys_flat()[0]),
                                      da.get(r.__dask_graph__(), r._keys_flat()[0]))


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int16", "uint8", "uint64"])
@pytest.mark.parametrize("u", [np.maximum, np.minimum])
def test_minmax_scan_along_rows_in_c_has_numpy_bits(u, dtype):
    # the C loop (kernels/scan.c): NumPy's first NaN (payload kept), the later
    # of equal values (signed zeros), from a carry across blocks; 1-d to 3-d,
    # blocks that are views of rows of a larger array
    rng = np.random.default_rng(11)
    a = (rng.standard_normal((3, 40, 700)) * 60).astype(dtype)
    if a.dtype.kind == "f":
        a[rng.random(a.shape) < 0.01] = np.nan
        a[rng.random(a.shape) < 0.05] = 0.0
        a[rng.random(a.shape) < 0.05] = -0.0
        bits = a.view(np.uint64 if a.itemsize == 8 else np.uint32)
        bits[1, 3, 5] = bits.dtype.type(0xfff8000000000003 if a.itemsize == 8 else 0xffc00003)
        bits[1, 3, 9] = bits.dtype.type(0x7ff8000000000005 if a.itemsize == 8 else 0x7fc00005)
    for v, chunks in ((a, (2, 17, 250)), (a[1], (40, 333)), (a[1, 3], 100), (a[:, :, 1:], -1)):
        x = da.from_array(v, chunks=chunks)
        want = u.accumulate(v, axis=-1)
        got = check(u.accumulate(x, axis=-1), want)
        assert got.tobytes() == want.tobytes()           # NaN payloads too
    assert _core.scan_minmax(True, np.zeros((2, 3), np.complex128), np.zeros((2, 3), np.complex128),
                              None) is False
