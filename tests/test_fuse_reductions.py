"""Masks and reductions in the same pass: full reductions of elementwise
chains and of boolean selections become one fused task per block, whose
results agree with NumPy (within its own floating-point error) and with the
unfused graph."""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask
from cdask._core import fused_kernel


def _records(arr, **kw):
    s = cdask.Stats()
    r = arr.compute(stats=s, record=True, **kw)
    return r, s.records


def _names(arr, **kw):
    return [rec[1] for rec in _records(arr, **kw)[1]]


def _close(got, want, dtype):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind in "fc":
        rtol = 1e-5 if want.dtype in (np.float32, np.complex64) else 1e-10
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 10)
    else:
        assert got.tolist() == want.tolist()


EXPRS = {
    "mean(x[x > 0])": (lambda x: x[x > 0].mean(), lambda x: np.mean(x[x > 0])),
    "x[x > 0].sum()": (lambda x: x[x > 0].sum(), lambda x: x[x > 0].sum()),
    "(x > 0).sum()": (lambda x: (x > 0).sum(), lambda x: (x > 0).sum()),
    "((x + 1) * 2).mean()": (lambda x: ((x + 1) * 2).mean(), lambda x: ((x + 1) * 2).mean()),
    "(x * x).max()": (lambda x: (x * x).max(), lambda x: (x * x).max()),
    "x[x < 1].min()": (lambda x: x[x < 1].min(), lambda x: x[x < 1].min()),
    "y=x-1; y[y > 0].max()": (lambda x: (lambda y: y[y > 0].max())(x - 1),
                              lambda x: (lambda y: y[y > 0].max())(x - 1)),
    "where(x > 0, x, 0).max()": (lambda x: cdask.where(x > 0, x, 0).max(),
                                 lambda x: np.where(x > 0, x, 0).max()),
    "x.sum()": (lambda x: x.sum(), lambda x: x.sum()),
    "x.mean()": (lambda x: x.mean(), lambda x: x.mean()),
}


@st.composite
def cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 7)) for _ in range(ndim))
    chunks = tuple(draw(st.integers(1, s)) for s in shape)
    dtype = draw(st.sampled_from(["int8", "int32", "uint16", "int64", "float32", "float64"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return shape, chunks, dtype, seed, draw(st.sampled_from(sorted(EXPRS)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_fused_reductions_match_numpy_and_unfused(c):
    shape, chunks, dtype, seed, name = c
    xn = (np.random.default_rng(seed).standard_normal(shape) * 5).astype(dtype)
    ours, theirs = EXPRS[name]
    x = cdask.from_array(xn, chunks=chunks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            try:
                want = theirs(xn)
            except ValueError:          # min/max of an empty selection
                with pytest.raises(ValueError, match="zero-size array"):
                    ours(x).compute()
                with pytest.raises(ValueError, match="zero-size array"):
                    ours(x).compute(fuse=False)
                return
            got = ours(x).compute()
            unfused = ours(x).compute(fuse=False)
    if np.asarray(want).dtype.kind == "f" and np.isnan(want):
        assert np.isnan(got) and np.isnan(unfused)
        return
    _close(got, want, dtype)
    _close(unfused, want, dtype)


@pytest.mark.parametrize("name", ["mean(x[x > 0])", "x[x > 0].sum()", "(x > 0).sum()",
                                  "((x + 1) * 2).mean()", "(x * x).max()", "x[x < 1].min()",
                                  "y=x-1; y[y > 0].max()", "x.mean()"])
def test_one_fused_task_per_block(name):
    xn = np.random.default_rng(3).standard_normal((40, 30))
    x = cdask.from_array(xn, chunks=(10, 15))       # 8 blocks, not contiguous in xn
    expr = EXPRS[name][0](x)
    names = _names(expr)
    assert names.count("fused") == 8, names
    # no elementwise task, no selection, no Python chunk step left
    for n in names:
        assert n == "fused" or n.startswith(("_agg", "_combine", "sum")), names


def test_fused_task_shows_what_it_holds():
    x = cdask.from_array(np.arange(-5.0, 5.0), chunks=5)
    y = x + 1
    e = y[y > 0].mean()
    g = e.__dask_graph__().copy()
    from cdask.array.fuse import fuse_elementwise, fuse_reductions

    keep = [k for k in g if k[0] == e.name]
    fuse_elementwise(g, keep=keep)
    assert fuse_reductions(g, keep=keep) == 2
    text = " ".join(repr(t[0]) for t in g.values() if type(t) is tuple)
    assert "mean(add(in0, 1)[greater(add(in0, 1), 0)])" in text
    assert e.compute() == np.mean((np.arange(-5.0, 5.0) + 1)[np.arange(-5.0, 5.0) + 1 > 0])


def test_shared_subexpression_runs_once_per_block():
    xn = np.random.default_rng(0).standard_normal((30, 40))
    x = cdask.from_array(xn, chunks=(10, 20))     # 6 blocks
    s = cdask.sqrt(x * x + 1)                      # read by three consumers
    a, b, c = s * 2, s[s > 1.2].mean(), (s + 1).max()
    st_ = cdask.Stats()
    ra, rb, rc = cdask.compute(a, b, c, stats=st_, record=True)
    assert np.array_equal(ra, np.sqrt(xn * xn + 1) * 2)
    sn = np.sqrt(xn * xn + 1)
    np.testing.assert_allclose(rb, sn[sn > 1.2].mean(), rtol=1e-12)
    assert rc == (sn + 1).max()
    # s is one fused task per block (sqrt(add(multiply(..)))), computed once
    fused = [r for r in st_.records if r[1] == "fused"]
    s_tasks = [r for r in fused if r[0][0] == s.name]
    assert len(s_tasks) == 6
    assert not any(r[1] in ("multiply", "sqrt") for r in st_.records)


def test_empty_selection_mean_is_nan_with_numpy_warning():
    x = cdask.from_array(np.arange(10.0), chunks=3)
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        assert np.isnan(x[x > 100].mean().compute())


def test_errstate_raise_inside_fused_reduction():
    x = cdask.from_array(np.arange(6.0), chunks=3)
    e = (1 / x).sum()
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            e.compute()
    with np.errstate(divide="ignore"):
        assert np.isinf(e.compute())


def test_memmap_mean_of_positive(tmp_path):
    xn = np.random.default_rng(5).standard_normal((500, 300))
    np.save(tmp_path / "x.npy", xn)
    x = cdask.from_npy(tmp_path / "x.npy", chunks=(100, 300))
    got, recs = _records(x[x > 0].mean())
    np.testing.assert_allclose(got, xn[xn > 0].mean(), rtol=1e-12)
    assert [r[1] for r in recs].count("fused") == 5
    assert "getter" not in [r[1] for r in recs]     # blocks read in place, no copy task


def test_reduce_kernel_bad_arguments():
    with pytest.raises(ValueError, match="unknown reduction"):
        fused_kernel(["f8"], [], reduce=("median", ("in", 0), None, None))
    with pytest.raises(TypeError, match="mask must be boolean"):
        fused_kernel(["f8", "f8"], [], reduce=("sum", ("in", 0), ("in", 1), "f8"))
    with pytest.raises(ValueError, match="must be an input or a step"):
        fused_kernel(["f8"], [], reduce=("sum", ("const", 1), None, "f8"))
    with pytest.raises(TypeError, match="keeps its value's dtype"):
        fused_kernel(["f8"], [], reduce=("max", ("in", 0), None, "f4"))
    with pytest.raises(ValueError, match="used neither"):
        fused_kernel(["f8"], [(np.negative, [("in", 0)])], reduce=("sum", ("in", 0), None, "f8"))
    with pytest.raises(ValueError, match="no store"):
        fused_kernel(["f8"], [], reduce=("sum", ("in", 0), None, "f8"), store=(0,))


def test_optimize_returns_the_fused_graph():
    xn = np.arange(-6.0, 6.0)
    x = cdask.from_array(xn, chunks=4)
    y = ((x + 1) * 2) ** 3
    m = x[x > 0].mean()
    oy, om, other = cdask.optimize(y, m, 5)
    assert other == 5
    ky = [repr(t[0]) for t in oy.__dask_graph__().values() if type(t) is tuple]
    assert sum("power(multiply(add(in0, 1), 2), 3)" in r for r in ky) == 3
    km = [repr(t[0]) for t in om.__dask_graph__().values() if type(t) is tuple]
    assert sum("mean(in0[greater(in0, 0)])" in r for r in km) == 3
    assert np.array_equal(oy.compute(), ((xn + 1) * 2) ** 3)
    assert om.compute() == xn[xn > 0].mean()
    assert len(oy.__dask_graph__()) < len(y.__dask_graph__())


WHERE_OPS = [("x", "y"), ("x", 0), (0, "y"), (1.5, "x"), ("y", True), (2, 3), ("x", -7)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["bool", "int8", "int32", "uint8", "float32", "float64", "complex128"]),
       st.sampled_from(["int8", "float32", "float64", "bool"]),
       st.sampled_from(WHERE_OPS), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_where_in_c_matches_numpy(dx, dy, ops, chunk, seed):
    rng = np.random.default_rng(seed)
    xn = (rng.standard_normal((5, 6)) * 4).astype(dx)
    yn = (rng.standard_normal((6,)) * 4).astype(dy)          # broadcast along rows
    cn = rng.standard_normal((5, 6)) > 0
    x, y, c = (cdask.from_array(v, chunks=chunk) for v in (xn, yn, cn))
    pick = {"x": (x, xn), "y": (y, yn)}
    a, an = pick.get(ops[0], (ops[0], ops[0]))
    b, bn = pick.get(ops[1], (ops[1], ops[1]))
    want = np.where(cn, an, bn)
    e = cdask.where(c, a, b)
    assert e.dtype == want.dtype
    got, unf = e.compute(), e.compute(fuse=False)
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    assert unf.tobytes() == want.tobytes()
    if want.dtype.kind in "biuf":
        e2 = cdask.where(c & (x > 0), a, b) * 2
        want2 = np.where(cn & (xn > 0), an, bn) * 2
        assert e2.compute().tobytes() == want2.tobytes()


def test_where_runs_in_c_and_fuses():
    xn = np.random.default_rng(2).standard_normal((30, 20))
    x = cdask.from_array(xn, chunks=(10, 10))
    e = cdask.where(x > 0, x, 0) * 3 + 1
    assert set(_names(e)) == {"fused"}
    assert np.array_equal(e.compute(), np.where(xn > 0, xn, 0) * 3 + 1)
    m = cdask.where(x > 0, x, 0).max()
    names = _names(m)
    assert names.count("fused") == 6 and "_UfuncBlock" not in " ".join(names)
