"""cdask.<ufunc>: every elementwise NumPy ufunc as a lazy cdask function."""
import pickle

import numpy as np
import pytest

import cdask
from cdask.array.ufuncs import ALL_UFUNCS

ELEMENTWISE = sorted(n for n, i in ALL_UFUNCS.items() if i.signature is None and n.isidentifier())


def test_every_elementwise_ufunc_is_exported():
    missing = [n for n in ELEMENTWISE if not hasattr(cdask, n)]
    assert missing == []
    assert len(ELEMENTWISE) > 80


def _numeric_unary(n):
    # unary ufuncs with a float64 or int64 loop (isnat takes only datetimes)
    i = ALL_UFUNCS[n]
    return i.nin == 1 and i.nout == 1 and any(t[0] in "dl" for t in i.ufunc.types)


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if _numeric_unary(n)])
def test_unary_lazy_and_bit_identical(name):
    uf = ALL_UFUNCS[name].ufunc
    x = np.linspace(0.1, 0.9, 23)
    if not any(t.startswith("d->") for t in uf.types):
        x = np.arange(23, dtype=np.int64)
    a = cdask.from_array(x, chunks=5)
    r = getattr(cdask, name)(a)
    assert isinstance(r, cdask.Array)
    with np.errstate(all="ignore"):
        expected = uf(x)
        got = r.compute()
    assert got.dtype == expected.dtype
    assert np.array_equal(got.view(np.uint8), np.ascontiguousarray(expected).view(np.uint8))


def test_binary_with_scalar_and_numpy_passthrough():
    x = np.arange(10.0)
    a = cdask.from_array(x, chunks=4)
    assert np.array_equal(cdask.arctan2(a, 2.0).compute(), np.arctan2(x, 2.0))
    assert np.array_equal(cdask.maximum(a, x[::-1]).compute(), np.maximum(x, x[::-1]))
    # NumPy data only: the NumPy ufunc's own result, not an Array
    assert cdask.sin(0.5) == np.sin(0.5)
    assert isinstance(cdask.add(x, 1), np.ndarray)


def test_wrapper_behaves_like_the_ufunc():
    assert cdask.add.nin == 2 and cdask.exp.nout == 1
    assert pickle.loads(pickle.dumps(cdask.exp)) is cdask.exp
    assert "exp" in repr(cdask.exp)


def test_int_array_vs_python_int_comparisons():
    xn = np.arange(-5, 5, dtype=np.int8)
    x = cdask.from_array(xn, chunks=4)
    # in range: a C kernel (NumPy's int8 loop); out of range: by value, as NumPy
    assert isinstance((x > 0).dask[((x > 0).name, 0)][0], cdask.Kernel)
    for got, want in [(x > 0, xn > 0), (0 <= x, 0 <= xn), (x < 300, xn < 300),
                      (x == -129, xn == -129), (x != 127, xn != 127)]:
        assert np.array_equal(got.compute(), want)
    un = np.arange(4, dtype=np.uint16)
    u = cdask.from_array(un, chunks=3)
    assert np.array_equal((u > -1).compute(), un > -1)
    assert np.array_equal((u >= 65535).compute(), un >= 65535)
