"""cdask.ma against numpy.ma, and masked blocks through the rest of cdask.

Every function of dask.array.ma is compared with np.ma on the whole array
(type, mask, the unmasked data, dtype and fill value) over hypothesis shapes,
chunkings (ragged and size-1 blocks, unknown sizes) and dtypes.  Then the
masked arrays go through what could drop a mask - cdask's C kernels read raw
buffers - : elementwise chains, comparisons, reductions, astype, slicing,
``x[mask]``, concatenate, rechunk, persist and compute; each result must be
np.ma's, and no C kernel may appear in a masked array's graph.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask
import cdask as da
from blockcheck import chunkings, sample

EX = settings(max_examples=25, deadline=None)


@st.composite
def masked(draw, min_dims=1, max_dims=3, max_side=7, dtypes=(np.float64, np.float32, np.int64,
                                                              np.int16)):
    """(np.ma array, the same as a cdask Array, chunks): masked where the data
    is above a drawn threshold (so none, some or all elements)."""
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=min_dims,
                                max_size=max_dims)))
    chunks = chunkings(draw, st, shape)
    dtype = draw(st.sampled_from(dtypes))
    a = sample(shape, dtype, draw(st.integers(0, 2 ** 16)))
    t = draw(st.sampled_from([-1e9, -1, 0, 0.5, 1e9]))
    t = np.asarray(t).astype(dtype) if np.dtype(dtype).kind in "iu" and abs(t) < 1e4 else t
    # np.ma's reference with a mask array even where nothing is masked: some
    # results of np.ma (dtype of mean, reductions over nothing) differ for an
    # array without one, and a cdask array's mask is the union of its blocks'
    m = np.ma.MaskedArray(a, mask=np.ma.getmaskarray(np.ma.masked_greater(a, t)), shrink=False)
    x = da.ma.masked_greater(da.from_array(a, chunks=chunks), t)
    return m, x, chunks


def same(got, want, rtol=1e-6, exact=False):
    """``got`` (computed) is np.ma's ``want``: the same type, dtype, shape,
    mask, unmasked values (bit for bit when ``exact``) and fill value."""
    if want is np.ma.masked:
        assert got is np.ma.masked, got
        return
    assert isinstance(got, np.ma.MaskedArray) == isinstance(want, np.ma.MaskedArray), \
        (type(got), type(want))
    g, w = np.asanyarray(got), np.asanyarray(want)
    assert g.dtype == w.dtype, (g.dtype, w.dtype)
    assert g.shape == w.shape, (g.shape, w.shape)
    gm, wm = np.ma.getmaskarray(g), np.ma.getmaskarray(w)
    np.testing.assert_array_equal(gm, wm)
    gd, wd = np.ma.getdata(g)[~gm], np.ma.getdata(w)[~wm]
    if exact or w.dtype.kind in "biu":
        np.testing.assert_array_equal(gd, wd)
    else:
        np.testing.assert_allclose(gd, wd, rtol=rtol, atol=1e-12, equal_nan=True)
    if isinstance(want, np.ma.MaskedArray) and want.ndim:
        fv = [np.asarray(v.fill_value).astype(w.dtype) for v in (got, want)]
        assert fv[0] == fv[1] or fv[0] != fv[0] and fv[1] != fv[1], fv


def no_kernels(x):
    """No task of x's graph, as compute runs it, calls a C kernel."""
    g = da.optimize(x)[0].__dask_graph__()
    for key, task in dict(g).items():
        assert not (isinstance(task, tuple) and task and isinstance(task[0], cdask.Kernel)), key


# ---------------------------------------------------------------------------
# making and reading masked arrays
# ---------------------------------------------------------------------------
@EX
@given(masked())
def test_compute_is_np_ma(mxc):
    m, x, _ = mxc
    assert isinstance(x._meta, np.ma.MaskedArray)
    assert "chunktype=numpy.ma.MaskedArray" in repr(x)
    same(x.compute(), m, exact=True)
    np.testing.assert_array_equal(np.ma.getdata(x.compute()), m.data)   # under the mask too


@EX
@given(masked(dtypes=(np.float64, np.int32)), st.data())
def test_masking_functions(mxc, data):
    m, x, chunks = mxc
    a = m.data
    d = da.from_array(a, chunks=chunks)
    v = a.flat[0] if a.size else a.dtype.type(1)
    lo, hi = (-0.5, 0.5) if a.dtype.kind == "f" else (-20, 20)
    for name in ("masked_greater", "masked_greater_equal", "masked_less", "masked_less_equal",
                 "masked_not_equal", "masked_equal"):
        same(getattr(da.ma, name)(d, v).compute(), getattr(np.ma, name)(a, v), exact=True)
    same(da.ma.masked_inside(d, lo, hi).compute(), np.ma.masked_inside(a, lo, hi), exact=True)
    same(da.ma.masked_outside(d, lo, hi).compute(), np.ma.masked_outside(a, lo, hi), exact=True)
    same(da.ma.masked_values(d, v).compute(), np.ma.masked_values(a, v), exact=True)
    cond = a > v
    same(da.ma.masked_where(da.from_array(cond, chunks=chunks), d).compute(),
         np.ma.masked_where(cond, a), exact=True)
    same(da.ma.masked_where(cond, d).compute(), np.ma.masked_where(cond, a), exact=True)
    fv = data.draw(st.sampled_from([None, 7]))
    same(da.ma.masked_array(d, mask=cond, fill_value=fv).compute(),
         np.ma.masked_array(a, mask=cond, fill_value=fv), exact=True)
    same(da.ma.masked_array(d, mask=True).compute(), np.ma.masked_array(a, mask=True))
    same(da.ma.masked_array(d).compute(), np.ma.masked_array(a), exact=True)
    same(da.ma.masked_array(d, dtype=np.float32).compute(),
         np.ma.masked_array(a, dtype=np.float32), exact=True)
    # reading them
    same(da.ma.filled(x).compute(), np.ma.filled(m), exact=True)
    same(da.ma.filled(x, 3).compute(), np.ma.filled(m, 3), exact=True)
    same(da.ma.getdata(x).compute(), np.ma.getdata(m), exact=True)
    same(da.ma.getmaskarray(x).compute(), np.ma.getmaskarray(m), exact=True)
    for axis in [None] + list(range(m.ndim)):
        got = da.ma.count(x, axis=axis).compute()
        np.testing.assert_array_equal(got, np.ma.count(m, axis=axis))
    np.testing.assert_array_equal(da.ma.count(x, axis=0, keepdims=True).compute(),
                                  np.ma.count(m, axis=0, keepdims=True))
    for name in ("ones_like", "zeros_like"):
        same(getattr(da.ma, name)(x).compute(), getattr(np.ma, name)(m), exact=True)
    e = da.ma.empty_like(x).compute()
    assert isinstance(e, np.ma.MaskedArray) or not m.mask.any()
    np.testing.assert_array_equal(np.ma.getmaskarray(e), np.ma.getmaskarray(m))
    for got, want in zip(da.ma.nonzero(x), np.ma.nonzero(m)):
        np.testing.assert_array_equal(got.compute(), want)


@EX
@given(masked(dtypes=(np.float64, np.float32)))
def test_invalid(mxc):
    m, _, chunks = mxc
    a = m.data.copy()
    if a.size:
        a.flat[::3] = np.nan
        a.flat[1::4] = np.inf
    d = da.from_array(a, chunks=chunks)
    same(da.ma.masked_invalid(d).compute(), np.ma.masked_invalid(a), exact=True)
    same(da.ma.fix_invalid(d).compute(), np.ma.fix_invalid(a), exact=True)
    same(da.ma.fix_invalid(d, fill_value=-1).compute(), np.ma.fix_invalid(a, fill_value=-1),
         exact=True)
    np.testing.assert_array_equal(np.ma.getdata(da.ma.fix_invalid(d).compute()),
                                  np.ma.fix_invalid(a).data)


def test_fill_value_and_where():
    a = np.arange(12.0).reshape(3, 4)
    x = da.ma.masked_greater(da.from_array(a, chunks=2), 6)
    name = x.name
    da.ma.set_fill_value(x, -1.5)              # in place, as dask
    assert x.name != name
    r = x.compute()
    assert r.fill_value == -1.5
    want = np.ma.masked_greater(a, 6)
    want.fill_value = -1.5
    same(r, want)
    with pytest.raises(TypeError):
        da.ma.set_fill_value(x, "text")
    with pytest.raises(ValueError):
        da.ma.set_fill_value(x, np.ones(2))
    with pytest.raises(TypeError):
        da.ma.set_fill_value(np.ma.masked_array(a), 1.0)
    m = np.ma.masked_greater(a, 6)
    same(da.ma.where(x > 2, x, 100.0).compute(), np.ma.where(m > 2, m, 100.0))
    for got, want in zip(da.ma.where(x > 2), np.ma.where(m > 2)):
        np.testing.assert_array_equal(got.compute(), want)
    with pytest.raises(ValueError, match="both or neither"):
        da.ma.where(x > 2, x)
    v = da.ma.masked_values(da.from_array(a, chunks=2), 3.0)
    assert v.compute().fill_value == np.ma.masked_values(a, 3.0).fill_value == 3.0


@EX
@given(masked(min_dims=2, max_dims=2, dtypes=(np.float64, np.int32)), st.data())
def test_average(mxc, data):
    m, x, chunks = mxc
    axis = data.draw(st.sampled_from([None, 0, 1]))
    with np.errstate(all="ignore"):
        same(da.ma.average(x, axis=axis).compute(), np.ma.average(m, axis=axis))
        w = sample(m.shape, np.float64, 3) ** 2 + 0.1
        same(da.ma.average(x, axis=axis, weights=da.from_array(w, chunks=chunks)).compute(),
             np.ma.average(m, axis=axis, weights=w))
        if axis is not None:
            w1 = sample((m.shape[axis],), np.float64, 4) ** 2 + 0.1
            got, gs = da.ma.average(x, axis=axis, weights=w1, returned=True)
            want, ws = np.ma.average(m, axis=axis, weights=w1, returned=True)
            same(got.compute(), want)
            same(gs.compute(), ws)
    with pytest.raises(TypeError, match="Axis must be specified"):
        da.ma.average(x, weights=np.ones(m.shape[0] + 1))


def test_errors_are_numpys():
    a = np.arange(6.0).reshape(2, 3)
    x = da.from_array(a, chunks=2)
    with pytest.raises(IndexError, match="Inconsistent shape"):
        da.ma.masked_where(np.ones((3, 2), bool), x)
    with pytest.raises(ValueError, match="array `value`s"):
        da.ma.masked_equal(x, np.ones(3))
    with pytest.raises(np.ma.MaskError, match="Mask and data not compatible"):
        da.ma.masked_array(x, mask=np.ones(4, bool))
    with pytest.raises(ValueError, match="non-scalar fill_value"):
        da.ma.masked_array(x, fill_value=np.ones(2))
    with pytest.raises(np.exceptions.AxisError):
        da.ma.count(x, axis=3)
    m = da.ma.masked_greater(x, 2)
    for f in (da.nanmean, da.nansum, da.nanargmax, da.nancumsum):
        with pytest.raises(NotImplementedError, match="masked"):
            f(m)
    with pytest.raises(NotImplementedError, match="masked"):
        m.dot(m.T)
    with pytest.raises(NotImplementedError, match="masked"):
        da.add(m, 1, where=np.ones(3, bool))


# ---------------------------------------------------------------------------
# masked blocks through the rest of cdask
# ---------------------------------------------------------------------------
def test_the_brief_example():
    a = np.random.default_rng(0).random((40, 30))
    x = da.from_array(a, chunks=(7, 11))
    y = da.ma.masked_greater(x, 0.5) + 1
    no_kernels(y.sum())
    same(y.sum().compute(), (np.ma.masked_greater(a, 0.5) + 1).sum(), rtol=1e-12)


@EX
@given(masked(), st.data())
def test_elementwise(mxc, data):
    m, x, _ = mxc
    with np.errstate(all="ignore"):
        cases = [
            ((x + 1) * 2 - x, (m + 1) * 2 - m),
            (x > 0, m > 0),
            (x == x, m == m),
            (-x, -m),
            (abs(x), abs(m)),
            (x * x.astype(np.float32), m * m.astype(np.float32)),
            (da.sqrt(x), np.ma.sqrt(m)),
            (np.log(x), np.ma.log(m)),
            (da.maximum(x, 0.25), np.ma.maximum(m, 0.25)),
            (x / 0, m / 0),
            (x ** 2, m ** 2),
            (x ** 0.5, m ** 0.5),
            (2.0 ** x, 2.0 ** m),
            (da.exp(x.astype(np.float64)) + x, np.ma.exp(m.astype(np.float64)) + m),
        ]
        for got, want in cases:
            assert isinstance(got._meta, np.ma.MaskedArray)
            same(got.compute(), want)
    y = (x + 1) * 2
    no_kernels(y)
    layer = y._layers[y.name]
    assert not isinstance(getattr(layer, "func", None), cdask.Kernel)


@EX
@given(masked(), st.data())
def test_reductions(mxc, data):
    m, x, _ = mxc
    axis = data.draw(st.sampled_from([None, 0, -1, tuple(range(m.ndim))]))
    keepdims = data.draw(st.booleans())
    kw = {"axis": axis, "keepdims": keepdims}
    with np.errstate(all="ignore"):
        for name in ("sum", "prod", "mean", "min", "max", "any", "all", "var", "std"):
            try:
                want = getattr(m, name)(**kw)
            except ValueError:            # min, max over nothing
                with pytest.raises(ValueError):
                    getattr(x, name)(**kw).compute()
                continue
            got = getattr(x, name)(**kw).compute()
            same(got, want, rtol=1e-4 if m.dtype == np.float32 else 1e-9)
        same(x.std(ddof=1, **kw).compute(), m.std(ddof=1, **kw), rtol=1e-4)
        same(x.sum(dtype=np.float32, **kw).compute(), m.sum(dtype=np.float32, **kw), rtol=1e-4)
        if m.size and (axis is None or isinstance(axis, int)):
            same(x.argmin(axis=axis).compute(), m.argmin(axis=axis))
            same(x.argmax(axis=axis).compute(), m.argmax(axis=axis))
        same(da.count_nonzero(x, axis=axis).compute(), np.count_nonzero(m, axis=axis))
        if axis is None or isinstance(axis, int):
            same(x.cumsum(axis=axis).compute(), m.cumsum(axis=axis),
                 rtol=1e-4 if m.dtype == np.float32 else 1e-9)
            same(da.cumprod(x, axis=axis).compute(), np.cumprod(m, axis=axis),
                 rtol=1e-4 if m.dtype == np.float32 else 1e-9)
    no_kernels(x.sum(axis=axis))
    no_kernels(x.mean(axis=axis))


@EX
@given(masked(), st.data())
def test_moving_blocks(mxc, data):
    m, x, chunks = mxc
    same(x.astype(np.float32).compute(), m.astype(np.float32), exact=True)
    same(x.astype(np.int8).compute(), m.astype(np.int8), exact=True)
    same(x.T.compute(), m.T, exact=True)
    sl = tuple(slice(None, None, 2) if i % 2 else slice(1, None) for i in range(m.ndim))
    same(x[sl].compute(), m[sl], exact=True)
    same(x[..., ::-1].compute(), m[..., ::-1], exact=True)
    same(x.rechunk(data.draw(st.sampled_from([1, 3, -1]))).compute(), m, exact=True)
    same(da.concatenate([x, x[:2]], axis=0).compute(), np.ma.concatenate([m, m[:2]]),
         exact=True)
    same(da.stack([x, x]).compute(), np.ma.stack([m, m]), exact=True)
    same(x.reshape(-1).compute(), m.reshape(-1), exact=True)
    same(da.roll(x, 1, axis=0).compute(), np.roll(m, 1, axis=0), exact=True)
    # boolean masks: a cdask one (unknown chunk sizes) and a NumPy one
    keep = (m.data > 0)
    u = x[da.from_array(keep, chunks=chunks)] if m.ndim == 1 else x[x > 0]
    want = m[keep] if m.ndim == 1 else m[m > 0]
    same(u.compute(), want, exact=True)
    same(u.sum().compute(), want.sum(), rtol=1e-4)
    idx = np.arange(m.shape[0])[::-1]
    same(x[idx].compute(), m[idx], exact=True)
    p = x.persist()
    same(p.compute(), m, exact=True)
    same((p + 1).compute(), m + 1, exact=True)


def test_from_array_and_tokens():
    a = np.arange(10.0)
    m1 = np.ma.masked_array(a, mask=a > 5)
    m2 = np.ma.masked_array(a, mask=a < 2)
    x1 = da.from_array(m1, chunks=3)
    x2 = da.from_array(m2, chunks=3)
    assert x1.name != x2.name                 # same data, another mask
    same(x1.compute(), m1, exact=True)
    same(x2.sum().compute(), m2.sum())
    same(da.asarray(m1, dtype=np.float32).compute(), m1.astype(np.float32), exact=True)
    b = np.ma.masked_array(a, mask=a > 5, fill_value=-3.0)
    assert da.from_array(b, chunks=4).compute().fill_value == -3.0
    # slices of the source (getter tasks composed), points, integer arrays
    a2 = np.arange(20.0).reshape(4, 5)
    m3 = np.ma.masked_array(a2, mask=a2 % 3 == 0, fill_value=2.5)
    x3 = da.from_array(m3, chunks=(3, 2))
    same(x3[1:, ::2].compute(), m3[1:, ::2], exact=True)
    same(x3.vindex[[0, 3, 2], [4, 0, 1]].compute(), m3[[0, 3, 2], [4, 0, 1]], exact=True)
    same(x3[[3, 0]].compute(), m3[[3, 0]], exact=True)
    same(x3[:, [4, 1, 1]].compute(), m3[:, [4, 1, 1]], exact=True)
    same(da.where(x3 > 5, x3, 0).compute(), np.where(m3 > 5, m3, 0))   # NumPy's: plain
    assert da.ma.normalize_masked_array(m1) != da.ma.normalize_masked_array(m2)
    assert da.ma.normalize_masked_array(m1) == da.ma.normalize_masked_array(m1.copy())


def test_map_blocks_of_np_ma():
    a = np.arange(12.0).reshape(3, 4)
    x = da.from_array(a, chunks=2)
    y = x.map_blocks(np.ma.masked_greater, 5, dtype=float)
    assert isinstance(y._meta, np.ma.MaskedArray)
    same((y + 1).sum().compute(), (np.ma.masked_greater(a, 5) + 1).sum())
    z = x.map_blocks(lambda b: np.ma.masked_less(b, 3))        # found on the sample block
    same((z * 2).compute(), np.ma.masked_less(a, 3) * 2)


def test_plain_arrays_unchanged():
    a = np.arange(12.0).reshape(3, 4)
    x = da.from_array(a, chunks=2)
    assert not isinstance(x._meta, np.ma.MaskedArray)
    assert "chunktype=numpy.ndarray" in repr(x)
    r = (x + 1).sum(axis=0).compute()
    assert type(r) is np.ndarray
    # a plain result of masked blocks is an ndarray, as np.ma's
    m = da.ma.masked_greater(x, 100)
    assert type(da.ma.filled(m).compute()) is np.ndarray
    assert type(da.ma.getmaskarray(m).sum(axis=0).compute()) is np.ndarray


def test_submodule_imports():
    import importlib

    import cdask.ma
    from cdask.ma import masked_where  # noqa: F401

    assert cdask.ma is da.ma and importlib.import_module("cdask.ma") is da.ma
    import os

    path = os.path.join(os.path.dirname(__file__), "data", "dask_array_names.txt")
    names = [n.strip()[len("ma."):] for n in open(path) if n.startswith("ma.")]
    assert len(names) >= 25
    for n in names:
        assert callable(getattr(da.ma, n)), n


@EX
@given(masked(max_dims=2), st.data())
def test_unknown_chunk_sizes(mxc, data):
    m, x, chunks = mxc
    keep = sample((m.shape[0],), np.float64, 5) > 0
    d = da.from_array(m.data, chunks=chunks)[da.from_array(keep, chunks=(chunks[0],))]
    assert m.shape[0] == 0 or any(c != c for c in d.chunks[0])
    a = m.data[keep]
    t = data.draw(st.sampled_from([-1, 0, 0.5]))
    u = da.ma.masked_greater(d, t)
    want = np.ma.MaskedArray(a, mask=np.ma.getmaskarray(np.ma.masked_greater(a, t)), shrink=False)
    same(u.compute(), want, exact=True)
    same((u * 2).compute(), want * 2, exact=True)
    with np.errstate(all="ignore"):
        same(u.mean(axis=0).compute(), want.mean(axis=0))
        same(u.sum().compute(), want.sum())
    np.testing.assert_array_equal(da.ma.count(u, axis=0).compute(), np.ma.count(want, axis=0))
    same(u[u > 0].compute(), want[want > 0], exact=True)
    same(da.ma.filled(u, 1).compute(), np.ma.filled(want, 1), exact=True)


def test_setitem_keeps_masks():
    a = np.arange(12.0).reshape(3, 4)
    m = np.ma.masked_greater(a, 6)
    x = da.ma.masked_greater(da.from_array(a, chunks=2), 6)
    for index, value in [(x < 2, -1.0), ((0, 0), 100.0), ((slice(None), 3), 7.0),
                         (([0, 2], [1, 1]), 9.0)]:
        x[index] = value
        m[index.compute() if isinstance(index, da.Array) else index] = value
        same(x.compute(), m, exact=True)
    assert isinstance(x._meta, np.ma.MaskedArray)


def test_fill_values_of_joined_blocks():
    # the blocks' fill value when they share one, np.ma's default when not (as dask)
    a = np.arange(6.0)
    x = da.ma.masked_values(da.from_array(a, chunks=2), 3.0)
    y = da.ma.masked_values(da.from_array(a, chunks=2), 4.0)
    default = np.ma.masked_array(a).fill_value
    assert da.concatenate([x, x]).compute().fill_value == 3.0
    assert da.concatenate([x, y]).compute().fill_value == default
    assert da.concatenate([x, y]).rechunk(12).compute().fill_value == default
    assert da.concatenate([x, x[::-1]]).rechunk(12).compute().fill_value == 3.0
    same(da.concatenate([x, y]).compute(), np.ma.concatenate([np.ma.masked_values(a, 3.0),
                                                              np.ma.masked_values(a, 4.0)]))
