"""datetime64 and timedelta64 in every unit (issue 16, part 2): creation, I/O,
slicing, comparisons, min/max, argmin/argmax, sorting-based functions,
differences and sums of timedeltas, against NumPy exactly (NaT included);
NumPy's exception types where NumPy refuses, a TypeError naming the
operation where cdask does not support it."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask as da

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

UNITS = ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns"]
NAT = np.iinfo(np.int64).min


def same(got, expect):
    got, expect = np.asarray(got), np.asarray(expect)
    assert got.dtype == expect.dtype, (got.dtype, expect.dtype)
    assert got.shape == expect.shape, (got.shape, expect.shape)
    if expect.dtype.kind in "mM":
        np.testing.assert_array_equal(got.view(np.int64), expect.view(np.int64))
    else:
        np.testing.assert_array_equal(got, expect)


def times(shape, kind, unit, seed, nat=True):
    rng = np.random.default_rng(seed)
    v = rng.integers(-10 ** 6, 10 ** 6, size=shape, dtype=np.int64)
    if nat and v.size:
        v.reshape(-1)[rng.integers(0, v.size, max(1, v.size // 7))] = NAT
    return v.view("%s8[%s]" % (kind, unit))


@st.composite
def shape_chunks(draw, max_dims=3, max_side=8):
    nd = draw(st.integers(1, max_dims))
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(nd))
    chunks = tuple(draw(st.integers(1, s)) for s in shape)
    return shape, chunks


cases = st.tuples(shape_chunks(), st.sampled_from("Mm"), st.sampled_from(UNITS),
                  st.integers(0, 2 ** 16), st.booleans())


@SETTINGS
@given(cases, st.data())
def test_slicing_comparisons_masks(case, data):
    (shape, chunks), kind, unit, seed, nat = case
    a = times(shape, kind, unit, seed, nat)
    x = da.from_array(a, chunks=chunks)
    assert x.dtype == a.dtype
    same(x.compute(), a)
    idx = tuple(slice(data.draw(st.integers(0, s)), None, data.draw(st.sampled_from([1, 2, -1])))
                for s in shape)
    same(x[idx].compute(), a[idx])
    pivot = a.reshape(-1)[0]
    b = times(shape, kind, unit, seed + 1, nat)
    y = da.from_array(b, chunks=1)
    for op in (np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal):
        same(op(x, pivot).compute(), op(a, pivot))
        same(op(x, y).compute(), op(a, b))
    same(da.isnat(x).compute(), np.isnat(a))
    same(x[x > pivot].compute(), a[a > pivot])
    same(da.where(da.isnat(x), pivot, x).compute(), np.where(np.isnat(a), pivot, a))
    same(da.maximum(x, y).compute(), np.maximum(a, b))
    same(da.fmin(x, y).compute(), np.fmin(a, b))
    same(x.rechunk(2).compute(), a)
    same(da.concatenate([x, y], axis=-1).compute(), np.concatenate([a, b], axis=-1))


@SETTINGS
@given(cases, st.data())
def test_min_max_arg(case, data):
    (shape, chunks), kind, unit, seed, nat = case
    a = times(shape, kind, unit, seed, nat)
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.sampled_from([None] + list(range(len(shape)))))
    keepdims = data.draw(st.booleans())
    se = data.draw(st.sampled_from([None, 2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in ("min", "max", "nanmin", "nanmax", "ptp"):
            kw = {"keepdims": keepdims} if f == "ptp" else {"keepdims": keepdims,
                                                              "split_every": se}
            r = getattr(da, f)(x, axis=axis, **kw)
            e = getattr(np, f)(a, axis=axis, keepdims=keepdims)
            assert r.dtype == e.dtype
            same(r.compute(), e)
        for f in ("argmin", "argmax", "nanargmin", "nanargmax"):
            same(getattr(da, f)(x, axis=axis, split_every=se).compute(),
                 getattr(np, f)(a, axis=axis))
        same(da.any(x, axis=axis).compute(), np.any(a, axis=axis))
        same(da.all(x, axis=axis).compute(), np.all(a, axis=axis))
        same(da.count_nonzero(x, axis=axis).compute(), np.count_nonzero(a, axis=axis))


@SETTINGS
@given(cases, st.data())
def test_differences_and_timedelta_sums(case, data):
    (shape, chunks), kind, unit, seed, nat = case
    a = times(shape, kind, unit, seed, nat)
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.sampled_from(list(range(len(shape)))))
    # differences: datetime - datetime, diff, datetime -+ timedelta
    same((x - x[(slice(0, 1),) * len(shape)]).compute(), a - a[(slice(0, 1),) * len(shape)])
    same(da.diff(x, axis=axis).compute(), np.diff(a, axis=axis))
    step = np.timedelta64(3 if unit in "YM" else 5, unit)
    same((x + step).compute(), a + step)
    same((x - step).compute(), a - step)
    d = times(shape, "m", unit, seed + 3, nat)
    t = da.from_array(d, chunks=chunks)
    same((x + t).compute(), a + d)
    same((t * 3).compute(), d * 3)
    same((-t).compute(), -d)
    same(abs(t).compute(), abs(d))
    with np.errstate(all="ignore"):
        nz = d.copy()
        nz[nz.view(np.int64) == 0] = np.timedelta64(1, unit)
        same((t // da.from_array(nz, chunks=1)).compute(), d // nz)
        same((t / np.timedelta64(7, unit)).compute(), d / np.timedelta64(7, unit))
        same((t % np.timedelta64(7, unit)).compute(), d % np.timedelta64(7, unit))


@SETTINGS
@given(cases, st.data())
def test_timedelta_sums(case, data):
    (shape, chunks), _, unit, seed, nat = case
    a = times(shape, "M", unit, seed, nat)
    x = da.from_array(a, chunks=chunks)
    d = times(shape, "m", unit, seed + 3, nat)
    t = da.from_array(d, chunks=chunks)
    axis = data.draw(st.sampled_from(list(range(len(shape)))))
    keepdims = data.draw(st.booleans())
    rax = data.draw(st.sampled_from([None, axis]))
    for f in ("sum", "nansum", "mean", "nanmean"):
        r = getattr(da, f)(t, axis=rax, keepdims=keepdims)
        e = getattr(np, f)(d, axis=rax, keepdims=keepdims)
        assert r.dtype == e.dtype
        same(r.compute(), e)
    same(da.cumsum(t, axis=rax).compute(), np.cumsum(d, axis=rax))
    same(da.nancumsum(t, axis=axis).compute(), np.nancumsum(d, axis=axis))
    # a sum of the differences (the time elapsed)
    same(da.diff(x, axis=axis).sum(axis=axis).compute(), np.diff(a, axis=axis).sum(axis=axis))


@SETTINGS
@given(cases)
def test_sorting_based(case):
    (shape, chunks), kind, unit, seed, nat = case
    a = times(shape, kind, unit, seed, nat)
    x = da.from_array(a, chunks=chunks)
    flat = a.reshape(-1)
    xf = da.from_array(flat, chunks=3)
    same(da.unique(x).compute(), np.unique(a))
    k = min(3, flat.size)
    same(da.topk(xf, k).compute(), np.sort(flat)[::-1][:k])    # (NaT sorts last)
    same(da.topk(xf, -k).compute(), np.sort(flat)[:k])
    srt = np.sort(flat)
    same(da.searchsorted(da.from_array(srt, chunks=2), flat[:4]).compute(),
         np.searchsorted(srt, flat[:4]))
    same(da.isin(x, flat[:3]).compute(), np.isin(a, flat[:3]))
    if kind == "m":
        same(da.median(x, axis=0).compute(), np.median(a, axis=0))
        same(da.nanmedian(x, axis=-1).compute(), np.nanmedian(a, axis=-1))


def test_topk_matches_numpy_without_nat():
    a = times((40,), "M", "s", 3, nat=False)
    x = da.from_array(a, chunks=7)
    same(da.topk(x, 5).compute(), np.sort(a)[::-1][:5])
    same(da.topk(x, -5).compute(), np.sort(a)[:5])
    same(da.argtopk(x, 4).compute(), np.argsort(a)[::-1][:4])


@pytest.mark.parametrize("unit", UNITS + ["ps", "fs", "as", "generic"])
def test_every_unit_creation_and_io(unit, tmp_path):
    u = "" if unit == "generic" else "[%s]" % unit
    for kind in "Mm":
        dt = np.dtype(kind + "8" + u)
        a = np.arange(-20, 20, dtype=np.int64).reshape(8, 5).view(dt).copy()
        a[1, 2] = np.datetime64("NaT") if kind == "M" else np.timedelta64("NaT")
        x = da.from_array(a, chunks=(3, 2))
        assert x.dtype == dt
        same(x.compute(), a)
        same(da.zeros((4, 3), dtype=dt, chunks=2).compute(), np.zeros((4, 3), dtype=dt))
        same(da.full((4, 3), a[0, 0], chunks=2).compute(), np.full((4, 3), a[0, 0]))
        same(da.empty_like(x).shape and da.zeros_like(x).compute(), np.zeros_like(a))
        np.save(tmp_path / "a.npy", a)
        same(da.from_npy(str(tmp_path / "a.npy"), chunks=(3, 3)).compute(), a)
        da.to_npy(x, str(tmp_path / "b.npy"))
        same(np.load(tmp_path / "b.npy"), a)
        a.tofile(tmp_path / "a.raw")
        same(da.from_raw(str(tmp_path / "a.raw"), dt, a.shape, chunks=(5, 2)).compute(), a)
        out = np.empty_like(a)
        da.store(x, out)
        same(out, a)
        same(x.persist().compute(), a)
        if unit != "generic":
            da.to_zarr(x, str(tmp_path / ("%s.zarr" % kind)))
            z = da.from_zarr(str(tmp_path / ("%s.zarr" % kind)))
            assert z.dtype == dt
            same(z.compute(), a)


def test_casts_between_units_and_integers():
    a = times((30,), "M", "s", 9)
    x = da.from_array(a, chunks=7)
    for to in ("M8[D]", "M8[ms]", "M8[Y]", "i8", "f8"):
        same(x.astype(to).compute(), a.astype(to))
    i = np.arange(-7, 8)
    same(da.from_array(i, chunks=4).astype("M8[h]").compute(), i.astype("M8[h]"))
    same(da.from_array(i, chunks=4).astype("m8[us]").compute(), i.astype("m8[us]"))
    with pytest.raises(TypeError, match="Cannot cast"):
        x.astype("m8[s]", casting="safe")


@pytest.mark.parametrize("args", [
    (np.datetime64("2020-01-01"), np.datetime64("2020-03-01")),
    (np.datetime64("2020-01-01"), np.datetime64("2021-03-01"), 7),
    (np.datetime64("2020-01-01"), np.datetime64("2020-03-01"), np.timedelta64(5, "h")),
    (np.datetime64("2020-03-01"), np.datetime64("2020-01-01"), -3),
    (np.datetime64("2020-01"), np.datetime64("2023-03"), 2),
    (np.datetime64("2020-01-01", "s"), np.datetime64("2020-01-02"), np.timedelta64(1, "h")),
    (np.datetime64("2020-01-01"), np.datetime64("2020-01-01")),
    (np.timedelta64(0, "s"), np.timedelta64(100, "s"), 3),
    (np.timedelta64(10, "ms"), np.timedelta64(-3, "ms"), np.timedelta64(-2, "ms")),
])
def test_arange(args):
    e = np.arange(*args)
    r = da.arange(*args, chunks=4)
    assert r.dtype == e.dtype and r.shape == e.shape
    same(r.compute(), e)


def _numpy_error(f):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f()
        except Exception as e:
            return e
    raise AssertionError("NumPy did not raise")


@pytest.mark.parametrize("name,f", [
    ("add datetimes", lambda m, x, t: m.add(x, x)),
    ("multiply a datetime", lambda m, x, t: m.multiply(x, 2)),
    ("unit mismatch", lambda m, x, t: m.add(x, np.timedelta64(1, "M"))),
    ("datetime < timedelta", lambda m, x, t: m.less(x, t)),
    ("sin of timedelta", lambda m, x, t: m.sin(t)),
    ("sum of datetimes", lambda m, x, t: m.sum(x)),
    ("mean of datetimes", lambda m, x, t: m.mean(x)),
    ("cumsum of datetimes", lambda m, x, t: m.cumsum(x, axis=0)),
    ("prod of timedeltas", lambda m, x, t: m.prod(t)),
    ("cumprod of timedeltas", lambda m, x, t: m.cumprod(t, axis=0)),
    ("var of timedeltas", lambda m, x, t: m.var(t)),
    ("std of datetimes", lambda m, x, t: m.std(x)),
    ("sum with a unit", lambda m, x, t: m.sum(t, dtype="m8[ms]")),
    ("average of timedeltas", lambda m, x, t: m.average(t)),
    ("dot of datetimes", lambda m, x, t: m.dot(x, x)),
    ("matmul of datetimes", lambda m, x, t: m.matmul(x[:, None], x[None, :])),
])
def test_refused_as_numpy(name, f):
    a = times((6,), "M", "D", 1)
    d = times((6,), "m", "D", 2)
    expect = _numpy_error(lambda: f(np, a, d))
    x, t = da.from_array(a, chunks=4), da.from_array(d, chunks=4)
    with pytest.raises(type(expect)) as ei:
        r = f(da, x, t)
        if isinstance(r, da.Array):
            r.compute()
    assert type(ei.value) is type(expect), (name, ei.value)


def test_unsupported_names_the_operation():
    x = da.from_array(times((6,), "M", "s", 1), chunks=4)
    t = da.from_array(times((6,), "m", "s", 1), chunks=4)
    with pytest.raises(TypeError, match="cdask: dot of timedelta64"):
        da.dot(t, t)
    with pytest.raises(TypeError, match="cdask: tensordot of timedelta64"):
        da.tensordot(t, t, 1)
    with pytest.raises(TypeError, match="cdask: moment of datetime64"):
        da.moment(x, 3)
    with pytest.raises(TypeError, match="cdask: moment of timedelta64"):
        da.moment(t, 3)


def test_repr_and_scalars():
    a = np.arange(5).astype("M8[D]")
    x = da.from_array(a, chunks=2)
    assert "datetime64[D]" in repr(x)
    assert "datetime64[D]" in x._repr_html_()
    assert x[1].compute() == a[1]
    assert x.max().compute() == a.max()
    assert isinstance(x.max().compute(), np.datetime64)


def test_percentile_and_norm_as_numpy():
    a = times((40,), "m", "s", 4, nat=False)
    t = da.from_array(a, chunks=7)
    for q in (0, 13, 50, 99.5, [25, 75]):
        same(da.percentile(t, q).compute(), np.percentile(a, q))
    d = times((5, 8), "M", "D", 5, nat=False)
    x = da.from_array(d, chunks=3)
    np.testing.assert_allclose(da.linalg.norm(x).compute(), np.linalg.norm(d))
    np.testing.assert_allclose(da.linalg.norm(x, axis=0).compute(), np.linalg.norm(d, axis=0))
