"""cdask.fft against numpy.fft: every transform over hypothesis shapes,
chunkings (ragged, size-1 blocks; transformed axes split or not) and dtypes,
with n/s, axis/axes and norm; results are NumPy's bit for bit (the same
pocketfft runs on each block) and of NumPy's dtype.  fftfreq/rfftfreq are
chunked and exact; fftshift/ifftshift work on split axes.  Split transform
axes are rechunked, with a PerformanceWarning when the blocks get large;
unknown chunk sizes and bad arguments raise NumPy's exception types."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da
from blockcheck import chunkings, sample

EX = settings(max_examples=25, deadline=None)

DTYPES = (np.float64, np.float32, np.complex128, np.complex64, np.int32, np.bool_)
ONE_D = ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft")
ND = ("fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn")
REAL_IN = ("rfft", "ihfft", "rfft2", "rfftn")     # NumPy refuses complex input


@st.composite
def arrays(draw, min_dims=1, max_dims=3, dtypes=DTYPES):
    shape = tuple(draw(st.lists(st.integers(2, 7), min_size=min_dims, max_size=max_dims)))
    chunks = chunkings(draw, st, shape)
    dtype = draw(st.sampled_from(dtypes))
    return sample(shape, dtype, draw(st.integers(0, 2 ** 16))), chunks


def _same(got, want):
    assert isinstance(got, np.ndarray) and not isinstance(got, np.ma.MaskedArray)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got, want, strict=True)


def _quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", da.PerformanceWarning)
        return f(*args, **kw)


@EX
@given(arrays(), st.sampled_from(ONE_D), st.sampled_from([None, "backward", "ortho", "forward"]),
       st.data())
def test_one_d_transforms(ac, name, norm, data):
    a, chunks = ac
    if name in REAL_IN and a.dtype.kind == "c":
        a = a.real.copy()
    axis = data.draw(st.sampled_from([None] + list(range(-a.ndim, a.ndim))))
    n = data.draw(st.sampled_from([None, 1, 2, 5, 8]))
    if name in ("irfft", "hfft") and n == 1:
        n = 2
    kw = {"n": n, "norm": norm}
    if axis is not None:
        kw["axis"] = axis
    x = da.from_array(a, chunks=chunks)
    y = _quiet(getattr(da.fft, name), x, **kw)
    want = getattr(np.fft, name)(a, **kw)
    assert y.shape == want.shape and y.dtype == want.dtype
    _same(y.compute(), want)


@pytest.mark.filterwarnings("ignore:`axes` should not be `None`:DeprecationWarning")
@EX
@given(arrays(min_dims=2), st.sampled_from(ND), st.data())
def test_nd_transforms(ac, name, data):
    a, chunks = ac
    if name in REAL_IN and a.dtype.kind == "c":
        a = a.imag.copy()
    nd = a.ndim
    if name.endswith("2"):
        axes = data.draw(st.sampled_from([None, (0, 1), (1, 0), (-1, -2)]))
        k = 2
    else:
        axes = data.draw(st.sampled_from([None, (0,), (nd - 1, 0), tuple(range(nd))]))
        k = nd if axes is None else len(axes)
    s = data.draw(st.sampled_from([None, "some"]))
    if s == "some":
        s = tuple(data.draw(st.integers(2, 6)) for _ in range(k))
        if axes is None and not name.endswith("2"):
            axes = tuple(range(nd - k, nd))
    norm = data.draw(st.sampled_from([None, "ortho"]))
    x = da.from_array(a, chunks=chunks)
    y = _quiet(getattr(da.fft, name), x, s=s, axes=axes, norm=norm)
    want = getattr(np.fft, name)(a, s=s, axes=axes, norm=norm)
    _same(y.compute(), want)


def test_numpy2_axes_for_s_without_axes():
    a = sample((4, 5, 6), np.float64)
    x = da.from_array(a, chunks=2)
    with pytest.warns(DeprecationWarning):
        y = _quiet(da.fft.fftn, x, s=(3, 4))
    with pytest.warns(DeprecationWarning):
        want = np.fft.fftn(a, s=(3, 4))           # the last two axes
    _same(y.compute(), want)


def test_split_axes_are_rechunked_and_warn_when_big():
    a = sample((6, 40), np.float64)
    x = da.from_array(a, chunks=(3, 7))
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # one block of 3 x 40 is small: no warning
        y = da.fft.fft(x)
    assert y.chunks == ((3, 3), (40,))
    _same(y.compute(), np.fft.fft(a))
    with da.config.set({"array.chunk-size": 512}):
        with pytest.warns(da.PerformanceWarning, match="axes 0, 1 are split"):
            y = da.fft.rfft2(x)
        with pytest.warns(da.PerformanceWarning, match="axis 1 is split"):
            da.fft.fft(x)
    _same(y.compute(), np.fft.rfft2(a))
    z = da.fft.fft(da.from_array(a, chunks=(2, 40)))  # the axis already one block
    assert z.chunks == ((2, 2, 2), (40,))
    assert issubclass(da.PerformanceWarning, Warning)


def test_unknown_chunk_sizes():
    a = sample((6, 5), np.complex128)
    x = da.from_array(a, chunks=(2, 5))
    keep = np.array([1, 0, 1, 1, 0, 1], bool)
    u = x[da.from_array(keep, chunks=2)]
    assert any(c != c for c in u.chunks[0])
    _same(da.fft.fft(u, axis=1).compute(), np.fft.fft(a[keep], axis=1))   # other axis: fine
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        da.fft.fft(u, axis=0)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        da.fft.fftshift(u)
    _same(da.fft.fftshift(u, axes=1).compute(), np.fft.fftshift(a[keep], axes=1))


def test_errors_are_numpys():
    a = sample((4, 6), np.float64)
    x = da.from_array(a, chunks=2)
    with pytest.raises(IndexError):
        np.fft.fft(a, axis=2)
    with pytest.raises(np.exceptions.AxisError):   # an IndexError, naming the axis
        da.fft.fft(x, axis=2)
    with pytest.raises(ValueError, match="Invalid number of FFT data points"):
        da.fft.fft(x, n=0)
    with pytest.raises(ValueError, match="Invalid number of FFT data points"):
        np.fft.fft(a, n=0)
    with pytest.raises(ValueError, match="Invalid norm value"):
        da.fft.fft(x, norm="sideways")
    with pytest.raises(ValueError, match="Shape and axes have different lengths"):
        da.fft.fftn(x, s=(2, 3), axes=(0,))
    with pytest.raises(ValueError, match="Duplicate axes"):
        da.fft.fftn(x, axes=(0, 0))
    with pytest.raises(TypeError):
        da.fft.rfft(x.astype(np.complex128))       # NumPy's TypeError, at graph time
    with pytest.raises(ValueError, match="unknown `kind`"):
        da.fft.fft_wrap(np.fft.fft, kind="fht")
    with pytest.raises(ValueError, match="n should be an integer"):
        da.fft.fftfreq(4.5)
    with pytest.raises(ZeroDivisionError):
        da.fft.fftfreq(0)
    with pytest.raises(ZeroDivisionError):
        np.fft.fftfreq(0)


def test_fft_wrap():
    a = sample((5, 8), np.float64)
    x = da.from_array(a, chunks=(2, 3))

    def my_fft(b, n=None, axis=-1, norm=None):
        return np.fft.fft(b, n, axis, norm) * 2

    f = _quiet(da.fft.fft_wrap, my_fft, kind="fft")
    assert f.__name__ == "my_fft"
    _same(_quiet(f, x, n=6).compute(), np.fft.fft(a, 6) * 2)
    g = da.fft.fft_wrap(np.fft.irfftn)
    _same(_quiet(g, x, axes=(0, 1)).compute(), np.fft.irfftn(a, axes=(0, 1)))
    h = da.fft.fft_wrap(np.fft.rfft, dtype=np.complex128)
    assert _quiet(h, x).dtype == np.complex128


@EX
@given(st.integers(1, 40), st.sampled_from([1.0, 0.1, 3, 2.5e-3]), st.integers(1, 9))
def test_fftfreq_rfftfreq(n, d, c):
    f = da.fft.fftfreq(n, d, chunks=c)
    r = da.fft.rfftfreq(n, d, chunks=c)
    assert max(f.chunks[0]) <= c
    _same(f.compute(), np.fft.fftfreq(n, d))
    _same(r.compute(), np.fft.rfftfreq(n, d))


@EX
@given(arrays(max_dims=3, dtypes=(np.float64, np.int32, np.complex64)), st.data())
def test_fftshift_ifftshift(ac, data):
    a, chunks = ac
    nd = a.ndim
    axes = data.draw(st.sampled_from([None, 0, -1, tuple(range(nd))[::-1], (0, 0)]))
    x = da.from_array(a, chunks=chunks)
    for dn, npf in ((da.fft.fftshift, np.fft.fftshift), (da.fft.ifftshift, np.fft.ifftshift)):
        y = dn(x, axes=axes)
        _same(y.compute(), npf(a, axes=axes))
    # the round trip, and a single-chunk axis stays one chunk
    _same(da.fft.ifftshift(da.fft.fftshift(x, axes=axes), axes=axes).compute(), a)
    for ax in range(nd):
        if len(chunks[ax]) == 1 and axes is None:
            assert len(da.fft.fftshift(x).chunks[ax]) == 1


def test_submodule_imports():
    import importlib

    import cdask.fft
    from cdask.fft import fft2, fftfreq  # noqa: F401

    assert cdask.fft is da.fft and importlib.import_module("cdask.fft") is da.fft
    import os

    path = os.path.join(os.path.dirname(__file__), "data", "dask_array_names.txt")
    names = [n.strip()[len("fft."):] for n in open(path) if n.startswith("fft.")]
    assert len(names) >= 19
    for n in names:
        assert callable(getattr(da.fft, n)), n
