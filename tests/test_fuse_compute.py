"""compute() fuses chains of elementwise C tasks into one fused task per block."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask
from cdask.array.fuse import fuse_elementwise


def _fused_graph(arr):
    g = arr.__dask_graph__().copy()
    n = fuse_elementwise(g, keep=[k for k in g if k[0] == arr.name])
    return g, n


def test_chain_becomes_one_task_per_block():
    xn = np.linspace(-3, 3, 50)
    x = cdask.from_array(xn, chunks=10)
    y = ((x + 1) * 2) ** 3
    g, removed = _fused_graph(y)
    assert removed == 2 * x.numblocks[0]        # add and multiply folded into power
    task = g[(y.name, 0)]
    assert "power(multiply(add(in0, 1), 2), 3)" in repr(task[0])
    assert np.array_equal(y.compute(fuse=True), ((xn + 1) * 2) ** 3)


def test_shared_subexpression_not_inlined_twice():
    xn = np.arange(20.0)
    x = cdask.from_array(xn, chunks=5)
    s = x + 1                    # read by two consumers: computed once, kept
    y, z = s * 2, s * 3
    a, b = cdask.compute(y, z, fuse=True)
    assert np.array_equal(a, (xn + 1) * 2) and np.array_equal(b, (xn + 1) * 3)
    g = cdask.Graph()
    for layer in {**y._layers, **z._layers}.values():
        g.update(layer)
    fuse_elementwise(g, keep=[k for k in g if k[0] in (y.name, z.name)])
    assert (s.name, 0) in g      # still its own task


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["float32", "float64", "int32", "int64", "complex128"]),
       st.integers(1, 7))
def test_fused_equals_unfused_bit_for_bit(seed, dtype, chunk):
    rng = np.random.default_rng(seed)
    an = (rng.standard_normal((9, 7)) * 5).astype(dtype)
    bn = (rng.standard_normal((7,)) * 5).astype(dtype)
    a = cdask.from_array(an, chunks=chunk)
    b = cdask.from_array(bn, chunks=chunk)
    with np.errstate(all="ignore"):
        expr = np.abs(a * b - 3) + np.maximum(a, b) * 2
        fused = expr.compute(fuse=True)
        unfused = expr.compute(fuse=False)
        ref = np.abs(an * bn - 3) + np.maximum(an, bn) * 2
    assert fused.dtype == unfused.dtype == ref.dtype
    assert fused.tobytes() == unfused.tobytes() == ref.tobytes()


def test_errstate_raise_inside_fused_task():
    x = cdask.from_array(np.arange(6.0), chunks=3)
    y = (x * 0 + 1) / (x * 0)
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            y.compute(fuse=True)
    with np.errstate(divide="ignore"):
        assert np.isinf(y.compute(fuse=True)).all()


def _task_names(arr, **kw):
    st = cdask.Stats()
    arr.compute(stats=st, record=True, **kw)
    return [r[1] for r in st.records]


def test_fusion_switch():
    x = cdask.from_array(np.arange(6.0), chunks=3)
    y = (x + 1) * 2
    assert np.array_equal(y.compute(), (np.arange(6.0) + 1) * 2)
    assert set(_task_names(y)) == {"fused"}                   # default: on
    with cdask.config.set({"array.fuse": False}):
        assert np.array_equal(y.compute(), (np.arange(6.0) + 1) * 2)
        names = _task_names(y)
    assert "fused" not in names and "add" in names and "multiply" in names
    assert "fused" not in _task_names(y, fuse=False)
