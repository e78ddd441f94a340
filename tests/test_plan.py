"""Fusion planned on layers (cdask/array/plan.py, layers.py): elementwise
chains fused before their per-block tasks exist, the same plan for compute,
persist, optimize and dask's own schedulers, bit for bit as unfused."""
import importlib
import pickle

import dask
import re

import numpy as np
import pytest
from dask.callbacks import Callback
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask
from cdask.array.layers import Blockwise
from cdask.array.plan import fuse_layers

compute_mod = importlib.import_module("cdask.array.compute")


def _layer(a):
    return a._layers[a.name]


# ---------------------------------------------------------------- Blockwise

def test_blockwise_reads_as_the_dict_of_its_tasks():
    f = np.add
    lay = Blockwise("z", (2, 3), f, [("block", "x", (0, 1)), ("block", "v", (None, 1)),
                                      ("const", 2.5)])
    assert len(lay) == 6 and lay._tasks is None
    assert lay[("z", 1, 2)] == (f, ("x", 1, 2), ("v", 0, 2), 2.5)
    assert lay._tasks is None                  # one task read: nothing built
    assert ("z", 1, 2) in lay and ("z", 2, 0) not in lay and ("y", 0, 0) not in lay
    with pytest.raises(KeyError):
        lay[("z", 0, 3)]
    want = {("z", i, j): (f, ("x", i, j), ("v", 0, j), 2.5) for i in range(2) for j in range(3)}
    assert dict(lay.items()) == want and set(lay) == set(want) and lay == want
    back = pickle.loads(pickle.dumps(lay))
    assert type(back) is Blockwise and back._tasks is None and back == want
    zero = Blockwise("s", (), np.negative, [("block", "t", ())])
    assert dict(zero) == {("s",): (np.negative, ("t",))}


def test_elementwise_ops_record_layers_with_programs():
    x = cdask.ones((4, 6), chunks=2)
    v = np.arange(6.0)
    y = x * 2 + v
    lay = _layer(y)
    assert type(lay) is Blockwise and lay.program is not None
    dts, steps = lay.program
    assert [str(d) for d in dts] == ["float64", "float64"]
    assert steps == [(np.add, [("in", 0), ("in", 1)])]
    w = cdask.where(x > 1, x, 0.5)
    assert _layer(w).program[1][0][0] is np.where


# ---------------------------------------------------------------- the plan

def test_chain_fused_on_layers_and_never_built_unfused():
    xn = np.linspace(-2, 2, 60).reshape(6, 10)
    x = cdask.from_array(xn, chunks=(3, 5))
    a = x + 1
    b = a * 2
    c = b ** 3 - np.arange(10.0)
    layers = fuse_layers(c._layers, keep=(c.name,))
    assert a.name not in layers and b.name not in layers
    top = layers[c.name]
    assert "subtract(power(multiply(add(in0, 1), 2), 3), in1)" in repr(top.func)
    expected = ((xn + 1) * 2) ** 3 - np.arange(10.0)
    assert np.array_equal(c.compute(), expected)
    # compute() never made the per-block tasks of the folded layers
    assert _layer(a)._tasks is None and _layer(b)._tasks is None
    assert np.array_equal(c.compute(fuse=False), expected)


def test_what_is_not_folded():
    x = cdask.from_array(np.arange(24.0).reshape(4, 6), chunks=2)
    s = x + 1
    y, z = s * 2, s * 3                # s has two readers: kept
    layers = fuse_layers({**y._layers, **z._layers}, keep=(y.name, z.name))
    assert s.name in layers
    t = x - 1
    u = t * 4                          # t is asked for too: kept
    assert t.name in fuse_layers(u._layers, keep=(u.name, t.name))
    r = x * 3
    q = r[1:] + 1                      # read by a slicing layer (a dict): kept
    assert r.name in fuse_layers(q._layers, keep=(q.name,))
    row = cdask.from_array(np.arange(6.0), chunks=2) * 2   # broadcast into its reader
    p = x + row
    assert row.name in fuse_layers(p._layers, keep=(p.name,))
    for arr, ref in [(q, np.arange(24.0).reshape(4, 6)[1:] * 3 + 1),
                     (p, np.arange(24.0).reshape(4, 6) + np.arange(6.0) * 2)]:
        assert np.array_equal(arr.compute(), ref)


def test_fusion_applies_at_any_graph_size():
    x = cdask.ones(300_000, chunks=10)          # 30,000 blocks
    y = (x + 1) * 2 - 1
    (o,) = cdask.optimize(y)
    assert len(o.dask) == 2 * x.numblocks[0]     # the ones blocks and one fused task each
    assert float(y.sum().compute()) == 3.0 * 300_000


# ---------------------------------------------------------------- one plan everywhere

class _Count(Callback):
    def __init__(self):
        super().__init__()
        self.names = []

    def _pretask(self, key, dsk, state):
        t = dsk[key]
        f = getattr(t, "func", None)          # dask's Task objects
        if f is None and type(t) is tuple and t:
            f = t[0]
        self.names.append(repr(f))


def _expr():
    xn = np.linspace(-1, 1, 40).reshape(4, 10)
    x = cdask.from_array(xn, chunks=(2, 5))
    return ((x + 1) * 2) ** 3, ((xn + 1) * 2) ** 3


def test_dask_compute_runs_fused_tasks():
    y, expected = _expr()
    with _Count() as c:
        (r,) = dask.compute(y, scheduler="threads")
    assert np.array_equal(r, expected)
    fused = [n for n in c.names if "fused kernel" in n]
    assert len(fused) == y.npartitions
    assert not any("ufunc kernel" in n for n in c.names)


def test_dask_optimize_and_persist_run_fused_tasks(monkeypatch):
    y, expected = _expr()
    (o,) = dask.optimize(y)
    reprs = [repr(t[0]) for t in o.dask.values() if type(t) is tuple]
    assert sum("fused kernel" in r for r in reprs) == y.npartitions
    assert np.array_equal(o.compute(), expected)

    seen = []
    real = compute_mod.get

    def spy(g, keys, **kw):
        seen.append([repr(t[0]) for t in g.values() if type(t) is tuple and t])
        return real(g, keys, **kw)

    monkeypatch.setattr(compute_mod, "get", spy)
    p = y.persist()
    assert sum("fused kernel" in r for r in seen[0]) == y.npartitions
    assert not any("ufunc kernel" in r for r in seen[0])
    monkeypatch.undo()
    assert np.array_equal(p.compute(), expected)


def test_persist_without_fusion_runs_the_plain_graph(monkeypatch):
    y, expected = _expr()
    seen = []
    real = compute_mod.get
    monkeypatch.setattr(compute_mod, "get", lambda g, k, **kw: seen.append(len(g)) or
                        real(g, k, **kw))
    p = y.persist(fuse=False)
    assert seen == [4 * y.npartitions]           # from_array, add, multiply, power
    monkeypatch.undo()
    assert np.array_equal(p.compute(), expected)


# ---------------------------------------------------------------- random trees

UNARY = [np.negative, np.absolute, np.sqrt, np.exp, np.sin, np.floor]
BINARY = [np.add, np.subtract, np.multiply, np.true_divide, np.maximum, np.minimum,
          np.hypot, np.arctan2]


@st.composite
def trees(draw, depth=0):
    """An expression over leaves 'x', 'y' (same shape) and 'v' (broadcast
    row), with constants."""
    if depth >= 4 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(["x", "y", "v", 1.5, -2, 3]))
    if draw(st.booleans()):
        return (draw(st.sampled_from(UNARY)), draw(trees(depth + 1)))
    return (draw(st.sampled_from(BINARY)), draw(trees(depth + 1)), draw(trees(depth + 1)))


def _eval(t, env):
    if isinstance(t, str):
        return env[t]
    if not isinstance(t, tuple):
        return t
    return t[0](*[_eval(a, env) for a in t[1:]])


def _has_leaf(t):
    return isinstance(t, str) or (isinstance(t, tuple) and any(_has_leaf(a) for a in t[1:]))


def _same_bits(got, expected):
    """Bit for bit, but for the sign of NaNs: NumPy's own loops give NaNs of
    either sign depending on which of their code paths (vector body, scalar
    tail) an element falls in, so only NaN positions are compared."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    gn, en = np.isnan(got), np.isnan(expected)
    assert np.array_equal(gn, en)
    assert np.where(gn, 0, got).tobytes() == np.where(en, 0, expected).tobytes()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.integers(1, 4), st.integers(0, 2**32 - 1),
       st.sampled_from(["float64", "float32"]))
def test_random_trees_fused_equal_unfused_bit_for_bit(tree, chunk, seed, dtype):
    if not _has_leaf(tree):
        tree = (np.add, "x", tree)
    rng = np.random.default_rng(seed)
    xn = rng.standard_normal((5, 7)).astype(dtype)
    yn = rng.standard_normal((5, 7)).astype(dtype)
    vn = rng.standard_normal(7).astype(dtype)
    env = {"x": cdask.from_array(xn, chunks=chunk), "y": cdask.from_array(yn, chunks=chunk),
           "v": cdask.from_array(vn, chunks=chunk)}
    with np.errstate(all="ignore"):
        expected = np.asarray(_eval(tree, {"x": xn, "y": yn, "v": vn}))
        z = _eval(tree, env)
        fused = np.asarray(z.compute())
        plain = np.asarray(z.compute(fuse=False))
        (r,) = dask.compute(z, scheduler="sync")
    for got in (fused, plain, np.asarray(r)):
        _same_bits(got, expected)


FIXED = [
    (np.add, (np.multiply, "x", 2), 1),
    (np.subtract, (np.sqrt, (np.absolute, "x")), (np.multiply, "x", "x")),
    (np.maximum, (np.sin, "x"), (np.negative, (np.exp, (np.multiply, "x", -0.5)))),
    (np.true_divide, (np.add, "x", 3), (np.add, (np.absolute, "x"), 1)),
    (np.hypot, (np.floor, (np.multiply, "x", 4)), (np.subtract, "x", 0.25)),
]


@pytest.mark.parametrize("tree", FIXED, ids=range(len(FIXED)))
def test_fixed_trees_at_100_000_blocks(tree):
    xn = np.random.default_rng(7).standard_normal(200_000)
    x = cdask.from_array(xn, chunks=2)                   # 100,000 blocks
    z = _eval(tree, {"x": x})
    expected = _eval(tree, {"x": xn})
    got = z.compute()
    _same_bits(got, expected)
    _same_bits(z.compute(fuse=False), got)
    (o,) = cdask.optimize(z)
    assert len(o.dask) == 2 * x.numblocks[0]             # the blocks of x and one task each


# ---------------------------------------------------------------- tiny blocks merged

def _tasks(a):
    (o,) = cdask.optimize(a)
    return len(o.dask)


def test_tiny_blocks_of_a_reduction_are_merged():
    x = cdask.ones(1_000_000, chunks=10)                 # 100,000 blocks of 80 bytes
    a = (x + 1) * 2 - 1
    y = a.sum()
    assert _tasks(y) < 200
    assert float(y.compute()) == 3_000_000.0
    # the 100,000-block layers were never turned into tasks
    assert _layer(x)._tasks is None and _layer(a)._tasks is None
    with cdask.config.set({"array.coarsen": False}):
        z = ((cdask.ones(1_000_000, chunks=10) + 1) * 2 - 1).sum()
    assert _tasks(z) > 100_000 and float(z.compute()) == 3_000_000.0


def test_merged_mask_mean_and_float_sums():
    n = 700_000
    xn = np.arange(n) % 7 - 3
    x = cdask.arange(n, chunks=10) % 7 - 3
    m = x[x > 0].mean()
    assert _tasks(m) < 200
    assert m.compute() == xn[xn > 0].mean()
    rn = np.random.default_rng(3).standard_normal(n)
    path_free = cdask.from_array(rn, chunks=10)          # literal views: not a rule, not merged
    assert _tasks(path_free.sum()) > n // 10
    assert abs(float(path_free.sum().compute()) - rn.sum()) <= 1e-9 * np.abs(rn).sum()


def test_merged_along_the_reduced_axis_only(tmp_path):
    yn = np.random.default_rng(5).standard_normal((600, 400))
    np.save(tmp_path / "y.npy", yn)
    y = cdask.from_npy(tmp_path / "y.npy", chunks=10)   # 60 x 40 blocks of 800 bytes, memmap
    s = (y * 2 + 1).sum(axis=0)
    assert s.chunks == ((10,) * 40,)                     # the blocks asked for keep their keys
    assert s.__dask_keys__() == [(s.name, i) for i in range(40)]
    assert _tasks(s) < 60 * 40
    np.testing.assert_allclose(s.compute(), (yn * 2 + 1).sum(axis=0), rtol=1e-12, atol=1e-12)
    v = cdask.arange(400, chunks=10)
    t = (y + v).sum()
    assert _tasks(t) < 60 * 40
    np.testing.assert_allclose(float(t.compute()), (yn + np.arange(400)).sum(), rtol=1e-12)
    m = (y - 1).mean(axis=1)
    assert m.chunks == ((10,) * 60,)
    np.testing.assert_allclose(m.compute(), (yn - 1).mean(axis=1), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- pickles and a cluster

def test_every_task_of_a_fused_graph_pickles():
    y, expected = _expr()
    xn = np.linspace(-1, 1, 40).reshape(4, 10)
    m = cdask.from_array(xn, chunks=(2, 5))
    s = m[m > 0].mean()
    (oy, os_) = cdask.optimize(y, s)
    for o in (oy, os_):
        g = dict(o.dask)
        back = pickle.loads(pickle.dumps(g))
        kinds = {repr(t[0]).split(" ")[1] for t in back.values() if type(t) is tuple and t
                 and isinstance(t[0], cdask.Kernel)}
        assert "fused" in kinds
        assert set(back) == set(g)
    assert np.array_equal(cdask.get(dict(pickle.loads(pickle.dumps(dict(oy.dask)))),
                                    oy.__dask_keys__())[0][0], expected[:2, :5])
    assert float(s.compute()) == xn[xn > 0].mean()


@pytest.mark.slow
def test_distributed_client_runs_the_fused_plan():
    distributed = pytest.importorskip("distributed")
    y, expected = _expr()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=":0", silence_logs=50) as cluster:
        with distributed.Client(cluster) as client:
            with distributed.get_task_stream(client) as ts:
                got = client.compute(y).result(timeout=60)
    assert np.array_equal(got, expected)
    # the key names before their tokens (a token's hex digits may spell "add")
    names = [re.sub(r"-[0-9a-f]{8,}.*", "", str(t["key"]).strip("(\"'")) for t in ts.data]
    # the chain's blocks ran as one fused task each, under the last op's keys
    assert sum(n == "power" for n in names) == y.npartitions, names
    assert not any(n in ("add", "multiply") for n in names), names


def test_dask_optimize_without_the_layers_fuses_task_by_task(monkeypatch):
    # a scheduler in another process has not seen the arrays' layers
    y, expected = _expr()
    dsk = dict(y.__dask_graph__())
    monkeypatch.setattr(compute_mod, "HANDED_LAYERS", {})
    g = compute_mod.dask_optimize(dsk, y.__dask_keys__())
    assert sum("fused kernel" in repr(t[0]) for t in g.values() if type(t) is tuple) == \
        y.npartitions
    assert np.array_equal(np.block(cdask.get(g, y.__dask_keys__())), expected)


def test_kernels_cdask_did_not_record_are_left_unfused(monkeypatch):
    # the passes never read a program back out of a kernel: one that was not
    # recorded (made or unpickled by cdask) is run as it is
    from cdask.array import layers

    y, expected = _expr()
    dsk = dict(y.__dask_graph__())
    monkeypatch.setattr(compute_mod, "HANDED_LAYERS", {})
    monkeypatch.setattr(layers, "UFUNC_KERNELS", {})
    monkeypatch.setattr(layers, "FUSED_KERNELS", {})
    from cdask.array import fuse
    monkeypatch.setattr(fuse, "UFUNC_KERNELS", layers.UFUNC_KERNELS)
    monkeypatch.setattr(fuse, "FUSED_KERNELS", layers.FUSED_KERNELS)
    g = compute_mod.dask_optimize(dsk, y.__dask_keys__())
    assert not any("fused kernel" in repr(t[0]) for t in g.values() if type(t) is tuple)
    assert np.array_equal(np.block(cdask.get(g, y.__dask_keys__())), expected)


_UNPICKLE_ELSEWHERE = """
import importlib, pickle, sys
import numpy as np
from cdask.array import layers
compute = importlib.import_module("cdask.array.compute")
assert not layers.UFUNC_KERNELS and not layers.FUSED_KERNELS
dsk, keys = pickle.loads(sys.stdin.buffer.read())
assert layers.UFUNC_KERNELS                   # recorded as they were unpickled
g = compute.dask_optimize(dsk, keys)
import cdask
fused = sum("fused kernel" in repr(t[0]) for t in g.values() if type(t) is tuple)
got = np.block(cdask.get(g, keys))
sys.stdout.write("%d %r" % (fused, got.tobytes().hex()))
"""


def test_a_graph_unpickled_in_another_process_is_fused_there():
    import subprocess
    import sys

    y, expected = _expr()
    blob = pickle.dumps((dict(y.__dask_graph__()), y.__dask_keys__()))
    out = subprocess.run([sys.executable, "-c", _UNPICKLE_ELSEWHERE], input=blob,
                         capture_output=True, check=True).stdout.decode()
    fused, data = out.split(" ", 1)
    assert int(fused) == y.npartitions
    assert bytes.fromhex(eval(data)) == expected.tobytes()


def test_reductions_and_masks_fused_on_layers():
    from cdask.array import indexing

    xn = np.arange(2000) % 7 - 3.0
    x = cdask.from_array(xn, chunks=100) * 1.5
    sel = x[x > 0]
    m = sel.mean()
    layers = fuse_layers(m._layers, keep=(m.name,))
    parts = [l for l in layers.values() if type(l) is Blockwise and
             "fused kernel mean" in repr(l.func)]
    assert len(parts) == 1
    # the chain, the mask and the selection were folded into the partials
    assert x.name not in layers and sel.name not in layers
    assert not any(type(l) is Blockwise and l.func is indexing.mask_block
                   for l in layers.values())
    want = (xn * 1.5)[xn * 1.5 > 0]
    np.testing.assert_allclose(float(m.compute()), want.mean(), rtol=1e-14)
    assert _layer(sel)._tasks is None and _layer(x)._tasks is None   # never built
    for r, ref in [(((x + 1) ** 2).sum(), ((xn * 1.5 + 1) ** 2).sum()),
                   ((x - 1).min(), (xn * 1.5 - 1).min()), ((x * x).max(), (xn * xn * 2.25).max()),
                   (x[x < 0].sum(), (xn * 1.5)[xn * 1.5 < 0].sum())]:
        lay = fuse_layers(r._layers, keep=(r.name,))
        assert any(type(l) is Blockwise and "fused kernel" in repr(l.func) and
                   "(" in repr(l.func).split("kernel ", 1)[1] for l in lay.values())
        np.testing.assert_allclose(float(r.compute()), ref, rtol=1e-13)
    # the values are read elsewhere too: x stays, the mask is still fused
    both = fuse_layers({**x[x > 0].sum()._layers, **x._layers}, keep=(x.name,))
    assert x.name in both


def test_handing_a_graph_to_dask_keeps_nothing_alive():
    import gc
    import weakref

    big = np.ones(1000)
    ref = weakref.ref(big)
    a = cdask.from_array(big, chunks=100) + 1
    dask.compute(a, scheduler="sync")
    del a, big
    gc.collect()
    assert ref() is None
