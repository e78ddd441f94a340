"""np.errstate in force at compute() governs floating-point errors raised in
blocks, whether they ran as C kernels on workers or as NumPy calls in Python
tasks on any thread."""
import warnings

import numpy as np
import pytest

import cdask


def _arrays():
    x = cdask.from_array(np.arange(1.0, 9.0), chunks=2)
    c_path = x / 0.0                 # C ufunc kernel
    q, _ = np.divmod(x, 0.0)         # two outputs: NumPy calls in Python tasks
    return c_path, q


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("num_workers", [1, 2])
def test_raise(which, num_workers):
    arr = _arrays()[which]
    with np.errstate(divide="raise", invalid="raise"):
        with pytest.raises(FloatingPointError, match="divide by zero"):
            arr.compute(num_workers=num_workers)


@pytest.mark.parametrize("which", [0, 1])
def test_warn_and_ignore(which):
    arr = _arrays()[which]
    with np.errstate(divide="warn", invalid="warn"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            arr.compute()
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("divide by zero" in m for m in msgs), msgs
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = arr.compute()
    with np.errstate(all="ignore"):
        expected = np.divmod(np.arange(1.0, 9.0), 0.0)[0] if which else np.arange(1.0, 9.0) / 0.0
    np.testing.assert_array_equal(got, expected)


def test_integer_division_by_zero_as_numpy():
    x = cdask.from_array(np.arange(6), chunks=4)
    with np.errstate(divide="ignore"):
        got = (x // 0).compute()
        expected = np.arange(6) // 0
    np.testing.assert_array_equal(got, expected)
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            (x // 0).compute()
