"""from_npy: the header is parsed and validated in C; every numeric and bool
dtype, both byte orders, C and Fortran order; malformed files raise
ValueError naming the file and the problem."""
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask
from cdask._core import npy_header

DTYPES = ["?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8", "c8", "c16"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(DTYPES), st.sampled_from("<>"), st.booleans(),
       st.lists(st.integers(0, 6), min_size=0, max_size=3), st.integers(0, 2**32 - 1))
def test_every_dtype_byte_order_and_layout(tmp_path, dt, order, fortran, shape, seed):
    dtype = np.dtype(dt).newbyteorder(order) if np.dtype(dt).itemsize > 1 else np.dtype(dt)
    xn = np.asarray(np.random.default_rng(seed).standard_normal(shape) * 50).astype(dtype)
    if fortran and xn.ndim > 1:
        xn = np.asfortranarray(xn)
    p = tmp_path / "x.npy"
    np.save(p, xn)
    descr, f, shp, off, size = npy_header(p)
    assert np.dtype(descr) == dtype and shp == tuple(shape) and size == p.stat().st_size
    assert f == (fortran and xn.ndim > 1 and not xn.flags.c_contiguous)
    x = cdask.from_npy(p, chunks=2 if shape else ())
    got = x.compute()
    assert got.shape == xn.shape
    assert np.array_equal(got, xn) or (dtype.kind in "fc" and np.allclose(got, xn, equal_nan=True))
    assert got.astype(dtype.newbyteorder("=")).tobytes() == \
        np.ascontiguousarray(xn).astype(dtype.newbyteorder("=")).tobytes()


def _write(p, header, data=b"", version=(1, 0), magic=b"\x93NUMPY"):
    h = header.encode("latin1")
    if version[0] == 1:
        pre = magic + bytes(version) + struct.pack("<H", len(h))
    else:
        pre = magic + bytes(version) + struct.pack("<I", len(h))
    p.write_bytes(pre + h + data)


GOOD = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"


@pytest.mark.parametrize("header,problem", [
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", "newline"),
    ("{'descr': '<f8', 'fortran_order': False}\n", "missing 'shape'"),
    ("{'descr': '<f8', 'fortran_order': 0, 'shape': (2, 3)}\n", "fortran_order"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': 6}\n", "not a tuple"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (6)}\n", "not a tuple"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (2, -3)}\n", "non-negative"),
    ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}\n", "structured"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'x': 1}\n", "unexpected"),
    ("{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", "repeated"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)} junk\n", "after the dict"),
    ("[1, 2, 3]\n", "not a dict"),
    ("{'descr': __import__('os'), 'fortran_order': False, 'shape': (2,)}\n", "descr"),
    ("{'descr': 'zz9', 'fortran_order': False, 'shape': (2,)}\n", "not a dtype"),
])
def test_malformed_headers(tmp_path, header, problem):
    p = tmp_path / "bad.npy"
    _write(p, header, b"\0" * 48)
    with pytest.raises(ValueError, match="bad.npy") as e:
        cdask.from_npy(p)
    assert problem in str(e.value)


def test_bad_magic_version_and_truncated_data(tmp_path):
    p = tmp_path / "bad.npy"
    _write(p, GOOD + "\n", b"\0" * 48, magic=b"\x93NUMPZ")
    with pytest.raises(ValueError, match="magic"):
        cdask.from_npy(p)
    _write(p, GOOD + "\n", b"\0" * 48, version=(9, 0))
    with pytest.raises(ValueError, match="version 9.0"):
        cdask.from_npy(p)
    _write(p, GOOD + "\n", b"\0" * 47)                      # one byte short
    with pytest.raises(ValueError, match="truncated"):
        cdask.from_npy(p)
    _write(p, GOOD + "\n", b"\0" * 48, version=(2, 0))      # version 2 header
    assert cdask.from_npy(p).shape == (2, 3)
    p.write_bytes(b"\x93NUM")
    with pytest.raises(ValueError, match="magic"):
        cdask.from_npy(p)
    _write(p, "{'descr': '|O', 'fortran_order': False, 'shape': (2,)}\n", b"\0" * 16)
    with pytest.raises(TypeError, match="object"):
        cdask.from_npy(p)
    with pytest.raises(FileNotFoundError):
        cdask.from_npy(tmp_path / "missing.npy")
