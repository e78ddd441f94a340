"""cdask and dask: dask's own collections and task-spec objects.

Covers: dask.compute / .compute(scheduler=...) of dask.array expressions and
dask.delayed graphs with cdask.get equal to the NumPy / plain-Python results
(dask hands the scheduler graphs of Task objects); graphs written directly
with dask._task_spec Task / Alias / DataNode / TaskRef / List / Dict
(nested tasks, keyword arguments, kernels as the callable); and cdask Kernels
inside dask graphs run by dask's own schedulers: dask.threaded.get and a
dask.distributed LocalCluster with threads and with a worker process (the
kernels travel by pickle, by name).
"""
import operator

import numpy as np
import pytest

import dask
import dask.array as da
import dask.threaded
from dask._task_spec import Alias, DataNode, Dict, List, Task, TaskRef

import cdask
from conftest import ORACLE

K = cdask.kernels


def inc(x):
    return x + 1


def add(*xs):
    return sum(xs)


def kw(a, b=0, *, scale=1):
    return (a + b) * scale


@pytest.fixture
def scheduler(get):
    return get


# ---------------------------------------------------------------- dask collections

RNG = np.random.default_rng(42)
A = RNG.standard_normal((40, 30))
B = RNG.standard_normal((30, 20))


ARRAY_CASES = [
    ("elementwise", lambda a, b: (a + 1) * a - a / 3, lambda a, b: (a + 1) * a - a / 3),
    ("sum", lambda a, b: a.sum(), lambda a, b: a.sum()),
    ("sum-axis", lambda a, b: a.sum(axis=0) + a.mean(axis=0), lambda a, b: a.sum(0) + a.mean(0)),
    ("matmul", lambda a, b: a @ b, lambda a, b: a @ b),
    ("transpose", lambda a, b: (a[:30] + a[:30].T).T, lambda a, b: (a[:30] + a[:30].T).T),
    ("slicing", lambda a, b: a[::3, 5:17] * 2, lambda a, b: a[::3, 5:17] * 2),
    ("rechunk", lambda a, b: a.rechunk((13, 7)) + 1, lambda a, b: a + 1),
    ("reductions", lambda a, b: da.stack([a.max(axis=1), a.min(axis=1), a.std(axis=1)]),
     lambda a, b: np.stack([a.max(1), a.min(1), a.std(1)])),
    ("where", lambda a, b: da.where(a > 0, a, -a).cumsum(axis=1),
     lambda a, b: np.where(a > 0, a, -a).cumsum(axis=1)),
]


@pytest.mark.parametrize("name, build, expect", ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_dask_array_expressions(scheduler, name, build, expect):
    a = da.from_array(A, chunks=(7, 11))
    b = da.from_array(B, chunks=(11, 6))
    x = build(a, b)
    (got,) = dask.compute(x, scheduler=scheduler)
    np.testing.assert_allclose(got, expect(A, B), rtol=1e-10, atol=1e-10)
    got2 = x.compute(scheduler=scheduler, num_workers=2)
    np.testing.assert_allclose(got2, expect(A, B), rtol=1e-10, atol=1e-10)


def test_dask_array_several_outputs(scheduler):
    x = da.arange(1000, chunks=64)
    y = (x * 2).sum()
    z = x[x % 7 == 0]
    s, m, zz = dask.compute(y, x.max(), z, scheduler=scheduler)
    assert s == 2 * sum(range(1000)) and m == 999
    np.testing.assert_array_equal(zz, np.arange(0, 1000, 7))


def test_dask_delayed(scheduler):
    d_inc = dask.delayed(inc)
    d_add = dask.delayed(add)
    parts = [d_inc(i) for i in range(20)]
    total = d_add(*parts)
    nested = dask.delayed(lambda xs: [x * 2 for x in xs])(parts[:3])
    assert dask.compute(total, nested, scheduler=scheduler) == (sum(range(1, 21)), [2, 4, 6])


def test_dask_delayed_with_kernels(scheduler):
    ones = [dask.delayed(K.ones)(100) for _ in range(5)]
    doubled = [dask.delayed(K.add)(o, o) for o in ones]
    total = dask.delayed(K.sum)(doubled)
    py = dask.delayed(float)(total)
    (got,) = dask.compute(py, scheduler=scheduler)
    assert got == 1000.0


def test_dask_error_propagates(scheduler):
    x = dask.delayed(operator.truediv)(1, 0)
    with pytest.raises(ZeroDivisionError):
        dask.compute(x, scheduler=scheduler)


# ---------------------------------------------------------------- task-spec graphs


def test_taskspec_graph(scheduler):
    dsk = {
        "a": DataNode("a", 1),
        "b": Task("b", inc, TaskRef("a")),
        "c": Alias("c", "b"),
        "d": Task("d", add, TaskRef("a"), Task(None, inc, TaskRef("b")), 100),
        ("e", 0): Task(("e", 0), sum, List(TaskRef("a"), TaskRef("d"))),
        "f": Task("f", kw, TaskRef("a"), b=TaskRef("b"), scale=TaskRef(("e", 0))),
        "g": Task("g", sorted, Dict({"x": TaskRef("a"), "y": 2})),
        "h": DataNode("h", np.arange(4.0)),
        "k": Task("k", K.add, TaskRef("h"), TaskRef("h")),
        "s": Task("s", K.sum, List(TaskRef("k"), TaskRef("h"))),
        "al2": Alias("al2", "c"),
    }
    keys = ["c", ["d", ("e", 0)], "f", "g", "s", "al2"]
    got = scheduler(dsk, keys, num_workers=2)
    c, (d, e), f, g, s, al2 = got
    assert c == 2 and al2 == 2
    assert d == 1 + 3 + 100
    assert e == 1 + 104
    assert f == (1 + 2) * 105
    assert g == ["x", "y"]
    assert s == 18.0


def test_taskspec_graph_python_and_kernel_mix(scheduler):
    dsk = {
        ("x", i): Task(("x", i), K.ones, 10 + i) for i in range(4)
    }
    dsk["py"] = Task("py", lambda *xs: [x * 2 for x in xs], *[TaskRef(("x", i)) for i in range(4)])
    dsk["tot"] = Task("tot", K.sum, TaskRef("py"))
    dsk["out"] = Task("out", float, TaskRef("tot"))
    assert scheduler(dsk, "out") == 2.0 * sum(10 + i for i in range(4))


def test_taskspec_errors(scheduler):
    dsk = {"a": DataNode("a", 1), "b": Task("b", operator.truediv, TaskRef("a"), 0)}
    with pytest.raises(ZeroDivisionError) as ei:
        scheduler(dsk, "b")
    if not ORACLE:
        assert any("'b'" in n for n in getattr(ei.value, "__notes__", []))
    with pytest.raises(KeyError):
        scheduler(dsk, "missing")
    cyc = {"a": Task("a", inc, TaskRef("b")), "b": Task("b", inc, TaskRef("a"))}
    with pytest.raises(RuntimeError if ORACLE else ValueError):
        scheduler(cyc, "a")


def test_taskspec_and_legacy_tuples_mixed(scheduler):
    dsk = {"a": DataNode("a", 1), "b": (inc, "a"), "c": Task("c", add, TaskRef("b"), TaskRef("a"))}
    assert scheduler(dsk, ["b", "c"]) in ([2, 3], (2, 3))


@pytest.mark.cdask_only
def test_taskspec_kernel_runs_as_kernel():
    stats = cdask.Stats()
    dsk = {"o": Task("o", K.ones, 1000), "a": Task("a", K.add, TaskRef("o"), TaskRef("o"))}
    r = cdask.get(dsk, "a", stats=stats, record=True)
    np.testing.assert_array_equal(r, np.full(1000, 2.0))
    names = {rec[0]: rec[1] for rec in stats.records}
    assert names.get("o") == "ones" and names.get("a") == "add"


@pytest.mark.cdask_only
def test_taskspec_graph_in_cdask_graph():
    dsk = {"a": DataNode("a", 2), "b": Task("b", inc, TaskRef("a"))}
    g = cdask.Graph(dsk)
    assert g.dependencies("b") == {"a"}
    assert cdask.get(g, "b") == 3


# ---------------------------------------------------------------- kernels under dask's schedulers


def _kernel_delayed():
    ones = [dask.delayed(K.ones, pure=True)(50 + i) for i in range(4)]
    sums = [dask.delayed(K.sum)(dask.delayed(K.mul)(o, o)) for o in ones]
    return dask.delayed(K.sum)(sums), float(sum(50 + i for i in range(4)))


def test_kernels_in_delayed_graph_threaded():
    x, expect = _kernel_delayed()
    assert dask.compute(x, scheduler=dask.threaded.get)[0] == expect
    assert dask.compute(x, scheduler="sync")[0] == expect


def test_kernels_in_delayed_graph_same_answer_with_scheduler_under_test(scheduler):
    x, expect = _kernel_delayed()
    assert dask.compute(x, scheduler=scheduler)[0] == dask.compute(x, scheduler="sync")[0]


@pytest.mark.slow
@pytest.mark.parametrize("processes", [False, True])
def test_kernels_in_delayed_graph_distributed(processes):
    distributed = pytest.importorskip("distributed")
    x, expect = _kernel_delayed()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=processes,
                                  dashboard_address=":0", silence_logs=50) as cluster:
        with distributed.Client(cluster) as client:
            got = client.compute(x).result(timeout=60)
            assert got == expect
            # arrays made by kernels travel back and forth
            arr = client.submit(K.ones, 10)
            doubled = client.submit(K.add, arr, arr)
            np.testing.assert_array_equal(doubled.result(timeout=60), np.full(10, 2.0))
            # a kernel is shipped by name; a failure keeps its type
            bad = client.submit(K.fail, 1)
            with pytest.raises(ValueError, match="cdask.kernels.fail"):
                bad.result(timeout=60)
