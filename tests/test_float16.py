"""float16 end to end (issue 16, part 1): creation, I/O, casts, masks, slicing,
every ufunc, fusion and reductions, against NumPy bit for bit (``.view('u2')``,
NaN payloads included) where NumPy is exact, within float16's tolerance for
reductions whose summation order differs."""

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask as da
from cdask import _core

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

F16 = np.dtype(np.float16)
OTHER = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
         np.uint64, np.float32, np.float64, np.complex64, np.complex128]


def numpy_paths(f, *args):
    """f's results on each element as NumPy's other loop paths give them: the
    operands (broadcast to the result's shape) made longer so that every
    element falls in a vector body, one-element arrays, 0-d arrays.  NumPy's
    vector bodies and scalar tails differ on a few special values (fmax of a
    signalling NaN, the sign of arccos(inf)'s NaN), so an element's place in
    a block decides which of them a chunked computation meets."""
    arrs = [a for a in args if isinstance(a, np.ndarray)]
    shape = np.broadcast_shapes(*(a.shape for a in arrs))
    full = [np.broadcast_to(a, shape).ravel() if isinstance(a, np.ndarray) else a for a in args]
    n = int(np.prod(shape))
    if n == 0:
        return []
    longer = [np.concatenate([a, np.repeat(a[:1], 32)]) if isinstance(a, np.ndarray) else a
              for a in full]
    out = [np.asarray(f(*longer))[:n].reshape(shape)]
    for take in (lambda a, i: a[i:i + 1], lambda a, i: np.asarray(a[i])):
        out.append(np.stack([np.asarray(f(*[take(a, i) if isinstance(a, np.ndarray) else a
                                              for a in full])).reshape(()) for i in range(n)])
                   .reshape(shape))
    return out


def bits_equal(got, expect, paths=()):
    """Same dtype, shape and bits (float16 compared as uint16: NaN payloads,
    signed zeros); where they differ, the bits of one of NumPy's other paths
    for that element (numpy_paths)."""
    got, expect = np.asarray(got), np.asarray(expect)
    assert got.dtype == expect.dtype, (got.dtype, expect.dtype)
    assert got.shape == expect.shape, (got.shape, expect.shape)
    if paths and expect.dtype.kind in "fc":
        u = {2: np.uint16, 4: np.uint32, 8: np.uint64}.get(expect.dtype.itemsize)
        if u is not None:
            gv = got.view(u)
            ok = gv == expect.view(u)
            for alt in paths:
                ok |= gv == np.asarray(alt, dtype=expect.dtype).view(u)
            assert ok.all(), (got[~ok], expect[~ok])
            return
    if expect.dtype == F16:
        np.testing.assert_array_equal(got.view(np.uint16), expect.view(np.uint16))
    elif expect.dtype.kind in "fc":
        np.testing.assert_array_equal(got.view(np.uint8), expect.view(np.uint8))
    else:
        np.testing.assert_array_equal(got, expect)


def halves(shape, seed):
    """float16 data with the awkward values in it: NaNs with payloads, infs,
    signed zeros, subnormals, the largest finite values."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 16, size=shape, dtype=np.uint16).view(F16).copy()
    flat = a.reshape(-1)
    special = np.array([0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe3f, 0x0001,
                        0x03ff, 0x7bff, 0xfbff, 0x3c00], np.uint16).view(F16)
    k = min(flat.size, special.size)
    flat[:k] = special[:k]
    return a


@st.composite
def shape_chunks(draw, max_dims=3, max_side=9):
    nd = draw(st.integers(1, max_dims))
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(nd))
    chunks = tuple(draw(st.integers(1, s)) for s in shape)
    return shape, chunks


def _ufuncs_with_half_loops(nin):
    out = []
    for name in sorted(dir(np)):
        u = getattr(np, name)
        if isinstance(u, np.ufunc) and u.nin == nin and u.nout == 1 and u.signature is None:
            try:
                u.resolve_dtypes((F16,) * nin + (None,))
            except TypeError:
                continue
            out.append(u)
    return sorted(set(out), key=lambda u: u.__name__)


UNARY = _ufuncs_with_half_loops(1)
BINARY = _ufuncs_with_half_loops(2)


def test_every_half_ufunc_is_listed():
    assert len(UNARY) > 30 and len(BINARY) > 20
    assert np.exp in UNARY and np.add in BINARY and np.arctan2 in BINARY


@SETTINGS
@given(shape_chunks(), st.sampled_from(UNARY), st.integers(0, 2 ** 16))
def test_unary_ufuncs_bitwise(sc, uf, seed):
    shape, chunks = sc
    a = halves(shape, seed)
    with np.errstate(all="ignore"):
        expect = uf(a)
        paths = numpy_paths(uf, a)
        got = uf(da.from_array(a, chunks=chunks))
        assert isinstance(got, da.Array) and got.dtype == expect.dtype
        bits_equal(got.compute(), expect, paths)
        bits_equal(getattr(da, uf.__name__)(da.from_array(a, chunks=chunks)).compute(), expect,
                   paths)


@SETTINGS
@given(shape_chunks(), st.sampled_from(BINARY), st.integers(0, 2 ** 16),
       st.sampled_from(["same", "other", "pyfloat", "pyint", "npscalar", "reflected"]))
def test_binary_ufuncs_bitwise(sc, uf, seed, kind):
    shape, chunks = sc
    a = halves(shape, seed)
    rng = np.random.default_rng(seed + 1)
    if kind in ("same", "reflected"):
        b = halves(shape, seed + 7)
        y = da.from_array(b, chunks=tuple(max(1, c - 1) for c in chunks))
    elif kind == "other":
        dt = OTHER[seed % len(OTHER)]
        b = (rng.standard_normal(shape) * 50).astype(dt)
        y = da.from_array(b, chunks=chunks)
    elif kind == "pyfloat":
        b = y = float(rng.standard_normal() * 100)
    elif kind == "pyint":
        b = y = int(rng.integers(-300, 300))
    else:
        b = y = np.float16(2.5)
    x = da.from_array(a, chunks=chunks)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args_np, args_da = ((b, a), (y, x)) if kind == "reflected" else ((a, b), (x, y))
        try:
            expect = uf(*args_np)
        except (TypeError, ValueError, OverflowError) as e:
            with pytest.raises(type(e)):
                uf(*args_da).compute()
            return
        got = uf(*args_da)
        assert got.dtype == expect.dtype
        bits_equal(got.compute(), expect, numpy_paths(uf, *args_np))


@SETTINGS
@given(shape_chunks(), st.integers(0, 2 ** 16), st.booleans())
def test_fused_chain_bitwise(sc, seed, fuse):
    """The issue's ((x + 1) * 2) ** 3, and a longer chain mixing float16 with
    float32 and comparisons, fused and unfused."""
    shape, chunks = sc
    a = halves(shape, seed)
    x = da.from_array(a, chunks=chunks)
    with np.errstate(all="ignore"):
        bits_equal((((x + 1) * 2) ** 3).compute(fuse=fuse), ((a + 1) * 2) ** 3)
        e = np.where(np.sqrt(np.abs(a)) > 2, a * np.float16(0.5), -a) + np.float32(1)
        g = da.where(da.sqrt(abs(x)) > 2, x * np.float16(0.5), -x) + np.float32(1)
        bits_equal(g.compute(fuse=fuse), e)
        e2 = np.sin(a.astype(np.float32)).astype(F16) / 3
        g2 = da.sin(x.astype(np.float32)).astype(F16) / 3
        bits_equal(g2.compute(fuse=fuse), e2)


def test_half_loops_of_other_dtypes():
    """NumPy resolves some ufuncs of bool/int8/uint8 to float16 loops."""
    for dt in (np.bool_, np.int8, np.uint8):
        a = np.arange(-5, 20).astype(dt)
        x = da.from_array(a, chunks=4)
        with np.errstate(all="ignore"):
            for uf in (np.sqrt, np.exp, np.sin, np.log):
                bits_equal(uf(x).compute(), uf(a))
            bits_equal((x / np.int8(3)).compute(), a / np.int8(3))


@pytest.mark.parametrize("dt", OTHER)
def test_casts_bitwise(dt):
    """astype to and from float16 for every dtype: every half value, and a
    large sample of doubles/floats/integers (rounding ties, overflow, NaN)."""
    every = np.arange(1 << 16, dtype=np.uint16).view(F16)
    x = da.from_array(every, chunks=5000)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bits_equal(x.astype(dt).compute(), every.astype(dt))
        rng = np.random.default_rng(3)
        if np.dtype(dt).kind in "fc":
            src = np.concatenate([rng.standard_normal(20000) * 10.0 ** rng.integers(-9, 6, 20000),
                                  every.astype(np.float64) + np.ldexp(1.0, -12) * every.astype(np.float64),
                                  rng.integers(0, 1 << 63, 20000, dtype=np.uint64).view(np.float64)])
            src = src.astype(dt)
            if np.dtype(dt).kind == "c":
                src = src + 1j * src[::-1]
        elif dt is np.bool_:
            src = rng.integers(0, 2, 1000).astype(bool)
        else:
            info = np.iinfo(dt)
            src = rng.integers(info.min, info.max, 50000, dtype=dt, endpoint=True)
            src[:200] = np.arange(65400, 65600).astype(dt)
        bits_equal(da.from_array(src, chunks=7777).astype(F16).compute(), src.astype(F16))


def test_creation():
    bits_equal(da.zeros((5, 4), dtype="f2", chunks=2).compute(), np.zeros((5, 4), "f2"))
    bits_equal(da.ones(7, dtype=np.float16, chunks=3).compute(), np.ones(7, "f2"))
    bits_equal(da.full(7, 2.1, dtype="f2", chunks=3).compute(), np.full(7, 2.1, "f2"))
    bits_equal(da.full(7, np.float16(-0.0), chunks=3).compute(), np.full(7, np.float16(-0.0)))
    bits_equal(da.arange(0, 10, 0.3, dtype="f2", chunks=7).compute(),
               np.arange(0, 10, 0.3, dtype="f2"))
    bits_equal(da.linspace(0, 1, 33, dtype="f2", chunks=5).compute(),
               np.linspace(0, 1, 33, dtype="f2"))
    a = halves((6, 5), 1)
    bits_equal(da.zeros_like(da.from_array(a)).compute(), np.zeros_like(a))
    bits_equal(da.asarray(a).compute(), a)
    bits_equal(da.from_array(a.astype(">f2"), chunks=2).compute(), a)
    assert da.empty(3, dtype="f2").dtype == F16
    assert da.eye(4, dtype="f2", chunks=2).compute().dtype == F16


@SETTINGS
@given(shape_chunks(), st.integers(0, 2 ** 16), st.data())
def test_slicing_masks_rechunk(sc, seed, data):
    shape, chunks = sc
    a = halves(shape, seed)
    x = da.from_array(a, chunks=chunks)
    idx = tuple(slice(data.draw(st.integers(0, s)), None, data.draw(st.sampled_from([1, 2, -1])))
                for s in shape)
    bits_equal(x[idx].compute(), a[idx])
    bits_equal(x[x > 0].compute(), a[a > 0])
    bits_equal(x.rechunk(1).compute(), a)
    bits_equal(da.concatenate([x, x], axis=0).compute(), np.concatenate([a, a], axis=0))
    bits_equal(x.T.compute(), a.T)
    bits_equal(da.where(da.isnan(x), np.float16(0), x).compute(),
               np.where(np.isnan(a), np.float16(0), a))


def test_io_roundtrips(tmp_path):
    a = halves((11, 7), 5)
    x = da.from_array(a, chunks=(4, 3))
    np.save(tmp_path / "a.npy", a)
    bits_equal(da.from_npy(str(tmp_path / "a.npy"), chunks=(3, 3)).compute(), a)
    da.to_npy(x, str(tmp_path / "b.npy"))
    bits_equal(np.load(tmp_path / "b.npy"), a)
    a.tofile(tmp_path / "a.raw")
    bits_equal(da.from_raw(str(tmp_path / "a.raw"), "f2", a.shape, chunks=(5, 2)).compute(), a)
    a.astype(">f2").tofile(tmp_path / "be.raw")
    bits_equal(da.from_raw(str(tmp_path / "be.raw"), ">f2", a.shape, chunks=5).compute()
               .astype("f2"), a)
    da.to_zarr(x, str(tmp_path / "a.zarr"))
    z = da.from_zarr(str(tmp_path / "a.zarr"))
    assert z.dtype == F16
    bits_equal(z.compute(), a)
    out = np.empty_like(a)
    da.store(x + 1, out)
    bits_equal(out, a + 1)
    bits_equal((x * 2).persist().compute(), a * 2)


def _close16(got, expect):
    """Equal within float16's rounding of a differently ordered accumulation;
    where NumPy's float16 result is near the overflow threshold (or past it),
    the order decides whether it overflows: those elements are not compared."""
    got, expect = np.asarray(got), np.asarray(expect)
    assert got.dtype == expect.dtype and got.shape == expect.shape
    e = expect.astype(np.float64)
    g = got.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(e))
    ok = np.isfinite(e) & (np.abs(e) < 30000)
    scale = float(np.max(np.abs(e[ok]))) if ok.any() else 1.0
    np.testing.assert_allclose(g[ok], e[ok], rtol=4e-3, atol=4e-3 * max(1.0, scale))


@SETTINGS
@given(shape_chunks(), st.integers(0, 2 ** 16), st.data())
def test_reductions(sc, seed, data):
    shape, chunks = sc
    a = (np.random.default_rng(seed).standard_normal(shape) * 4).astype(F16)
    x = da.from_array(a, chunks=chunks)
    axis = data.draw(st.sampled_from([None] + list(range(len(shape)))))
    keepdims = data.draw(st.booleans())
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in ("min", "max", "nanmin", "nanmax", "argmin", "argmax", "any", "all",
                  "count_nonzero"):
            kw = {} if f == "count_nonzero" or f.startswith("arg") else {"keepdims": keepdims}
            bits_equal(getattr(da, f)(x, axis=axis, **kw).compute(),
                       getattr(np, f)(a, axis=axis, **kw))
        for f in ("sum", "nansum", "mean", "nanmean", "var", "std", "prod", "nanvar"):
            _close16(getattr(da, f)(x, axis=axis, keepdims=keepdims).compute(),
                     getattr(np, f)(a, axis=axis, keepdims=keepdims))
        _close16(x.sum(axis=axis, dtype=np.float32).compute(),
                 a.sum(axis=axis, dtype=np.float32))
        cax = axis if axis is not None else data.draw(st.sampled_from([None, 0]))
        _close16(da.cumsum(x, axis=cax).compute(), np.cumsum(a, axis=cax))


def test_accumulation_dtypes():
    """float16 sums accumulate wider than float16 (as NumPy's pairwise float
    loop does), and mean uses float32 as NumPy does: no early overflow."""
    x = da.ones(100000, dtype="f2", chunks=1000)
    assert x.sum().dtype == F16
    assert np.isinf(x.sum().compute()) and np.isinf(np.ones(100000, "f2").sum())
    m = (x * 1000).mean()
    assert m.dtype == F16 and m.compute() == np.float16(1000)
    assert (np.ones(100000, "f2") * 1000).mean() == np.float16(1000)
    y = da.from_array(np.full(3000, 0.1, "f2"), chunks=100)
    _close16(y.sum().compute(), np.full(3000, 0.1, "f2").sum())
    assert x.mean(dtype="f8").dtype == np.float64


def test_unsupported_dtypes_list_float16():
    with pytest.raises(TypeError, match="supported dtypes.*float16.*datetime64"):
        da.from_array(np.array(["a"], dtype=object))
    with pytest.raises(TypeError, match="supported dtypes"):
        da.ones(3, dtype="f2").astype(np.longdouble) if np.dtype(np.longdouble).itemsize > 8 \
            else da.from_array(np.array([b"x"]))


def _c_cast_mismatches(src, to):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = src.astype(to)
        g = _core._cast(src, to)
    eb = e.view(np.uint8).reshape(len(e), -1)
    gb = g.view(np.uint8).reshape(len(g), -1)
    return np.nonzero((eb != gb).any(axis=1))[0]


EVERY_HALF = np.arange(1 << 16, dtype=np.uint16).view(F16)


@pytest.mark.parametrize("to", [np.dtype(n) for n in _core.DTYPES], ids=str)
def test_c_casts_of_every_half(to):
    """The C casts (what ufunc and fused kernels apply to operands) from each
    of the 65536 float16 values equal NumPy's astype bit for bit (NaN
    payloads, signalling NaNs and signed zeros included)."""
    bad = _c_cast_mismatches(EVERY_HALF, to)
    assert bad.size == 0, EVERY_HALF[bad[:5]].view(np.uint16)


def _cast_samples(dt):
    rng = np.random.default_rng(11)
    dt = np.dtype(dt)
    h = EVERY_HALF.astype(np.float64)
    if dt.kind in "fc":
        f8 = np.concatenate([
            rng.standard_normal(100000) * 10.0 ** rng.integers(-10, 7, 100000),
            rng.integers(0, 1 << 64, 100000, dtype=np.uint64).view(np.float64),
            h * (1 + np.ldexp(1.0, -11)), h * (1 - np.ldexp(1.0, -12)),   # around ties
            (h[:-1] + h[1:]) / 2,                                           # the ties
            [65504, 65519.99, 65520, 65536, 1e300, -0.0, 2.0 ** -25, 1.5 * 2.0 ** -24,
             2.0 ** -26, 5e-324],
            np.array([0x7ff0000000000001, 0x7ff4000000000000, 0xfff0000000000400,
                      0x7ff0040000000000], np.uint64).view(np.float64)])   # NaN payloads
        f4 = np.concatenate([
            f8.astype(np.float32),
            rng.integers(0, 1 << 32, 100000, dtype=np.uint64).astype(np.uint32).view(np.float32),
            np.arange(0x7f800000, 0x7f800000 + 20000, dtype=np.uint32).view(np.float32),
            np.arange(0x33000000 - 1000, 0x38800000 + 100000, 61,
                      dtype=np.uint32).view(np.float32)])                 # the subnormal range
        if dt == np.float64:
            return f8
        if dt == np.float32:
            return f4
        base = f4 if dt == np.complex64 else f8
        with np.errstate(all="ignore"):
            return (base + 1j * base[::-1]).astype(dt)
    if dt.kind == "b":
        return np.array([True, False] * 10)
    info = np.iinfo(dt)
    return np.concatenate([rng.integers(info.min, info.max, 50000, dtype=dt, endpoint=True),
                           np.arange(max(info.min, -70000), min(info.max, 70000), dtype=dt)])


@pytest.mark.parametrize("src", [np.dtype(n) for n in _core.DTYPES if n != "float16"], ids=str)
def test_c_casts_to_half(src):
    """C casts to float16 round as NumPy's astype does: once, to nearest
    even, from the double, float or integer value (overflow to infinity, NaN
    payloads kept)."""
    vals = _cast_samples(src)
    bad = _c_cast_mismatches(vals, F16)
    assert bad.size == 0, vals[bad[:5]]
