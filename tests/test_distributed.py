"""cdask graphs on dask's schedulers and on real dask.distributed clusters.

``scheduler=`` (and ``get=``, and the config key ``scheduler``) picks what
runs a compute: cdask's C scheduler, dask's threads/sync/processes, a get
callable, or a Client, whose workers run the fused graph - one task per
fused kernel.  Two clusters: a ``LocalCluster`` of two worker processes
over TCP on loopback (one per module, 300 MB per worker), and one started
with dask's command-line tools (``dask scheduler`` and ``dask worker`` as
subprocesses).  Results are checked against NumPy's.
"""

import os
import pickle
import subprocess
import sys
import threading
import time

import cloudpickle
import dask
import dask.array as dda
import dask.local
import dask.threaded
import distributed
import numpy as np
import pytest

import cdask
from cdask.array.compute import fused_graph
from cdask.array.schedulers import FutureBlocks

LIMIT = 300 * 10**6            # each LocalCluster worker's memory_limit

# the workers cannot import this module: its functions travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", protocol="tcp", dashboard_address=":0",
                                  memory_limit=LIMIT, silence_logs=50) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def _data():
    xn = np.random.default_rng(18).standard_normal((120, 90))
    return cdask.from_array(xn, chunks=(30, 45)), xn


def _exprs():
    x, xn = _data()
    return [((x + 1) * 2 - x, (xn + 1) * 2 - xn),
            (np.sin(x).sum(axis=0), np.sin(xn).sum(axis=0)),
            (x[x > 0].mean(), xn[xn > 0].mean()),
            ((x @ x.T).sum(), (xn @ xn.T).sum())]


def _check(got, want):
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)


def _n_tasks(a):
    """The tasks of the graph cdask runs elsewhere for the blocks of a."""
    return len(fused_graph(a._layers, {a.name}, a._keys_flat()))


# ---------------------------------------------------------------- in this process

@pytest.mark.parametrize("how", ["cdask", "threads", "threading", "sync", "synchronous",
                                 "single-threaded", "get=threaded", "get=sync",
                                 "config=threads"])
def test_local_schedulers_match_numpy(how):
    for expr, want in _exprs():
        if how.startswith("get="):
            f = dask.threaded.get if how == "get=threaded" else dask.local.get_sync
            got = expr.compute(get=f)
        elif how.startswith("config="):
            with cdask.config.set(scheduler=how[7:]):
                got = expr.compute()
        else:
            got = expr.compute(scheduler=how)
        _check(got, want)


def test_a_get_callable_cdask_does_not_know_runs_the_fused_blocks():
    # as if its tasks ran in other processes: the fused graph of the blocks
    (y, want), = _exprs()[:1]
    seen = []

    def get(dsk, keys, **kwargs):
        seen.append(len(dsk))
        return dask.threaded.get(dsk, keys, **kwargs)

    _check(y.compute(get=get), want)
    _check(y.compute(scheduler=get), want)
    assert seen == [_n_tasks(y)] * 2


def test_persist_and_cdask_compute_on_dask_schedulers():
    for expr, want in _exprs():
        (p,) = cdask.persist(expr, scheduler="threads")
        _check(p.compute(scheduler="sync"), want)
    x, xn = _data()
    a, b = cdask.compute(x + 1, x.sum(), scheduler="sync")
    _check(a, xn + 1)
    _check(b, xn.sum())
    d = dda.from_array(xn, chunks=30)
    got = cdask.compute(x * 2, d * 3, scheduler="threads")
    _check(got[0], xn * 2)
    _check(got[1], xn * 3)


def test_processes_scheduler():
    x, xn = _data()
    y = np.exp(x) + x
    (got,) = cdask.compute(y.sum(axis=1), scheduler="processes", num_workers=2)
    _check(got, (np.exp(xn) + xn).sum(axis=1))


def test_bad_scheduler_names_and_values():
    x, _ = _data()
    for bad in ("thread", "dask", "", "gpu"):
        with pytest.raises(ValueError, match="unknown scheduler.*'threads'"):
            x.compute(scheduler=bad)
        with pytest.raises(ValueError, match="unknown scheduler"):
            x.persist(scheduler=bad)
        with pytest.raises(ValueError, match="unknown scheduler"):
            cdask.config.set(scheduler=bad)
    for bad in (3, object(), [1]):
        with pytest.raises(ValueError, match="scheduler"):
            x.compute(scheduler=bad)
        with pytest.raises(ValueError, match="scheduler"):
            cdask.config.set(scheduler=bad)
    with pytest.raises(ValueError, match="not both"):
        x.compute(scheduler="sync", get=dask.local.get_sync)
    with pytest.raises(ValueError, match="pool="):
        x.compute(pool=object())
    assert cdask.config.get("scheduler", None) is None


# ---------------------------------------------------------------- kernels pickle

def test_fused_and_c_kernels_pickle():
    x, xn = _data()
    y = np.sqrt(abs(x) + 1) * 2
    s = y.sum()
    g = fused_graph(s._layers, {s.name}, s._keys_flat())
    kernels = {t[0] for t in g.values() if type(t) is tuple and t and
               isinstance(t[0], cdask.Kernel)}
    assert any("fused" in repr(k) for k in kernels)
    want = np.sqrt(np.abs(xn) + 1).__mul__(2).sum()
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        for k in kernels:
            assert repr(loads(dumps(k))) == repr(k)
        back = loads(dumps(dict(g)))
        np.testing.assert_allclose(cdask.get(back, [(s.name,)])[0], want, rtol=1e-12)
        k = loads(dumps(cdask.kernels.add))
        np.testing.assert_array_equal(k(np.arange(3.0), np.ones(3)), np.arange(3.0) + 1)


# ---------------------------------------------------------------- on a LocalCluster

def test_client_runs_one_task_per_fused_kernel(client):
    for expr, want in _exprs():
        with distributed.get_task_stream(client) as ts:
            got = expr.compute(scheduler=client)
        _check(got, want)
        assert len(ts.data) == _n_tasks(expr)
    expr, want = _exprs()[1]
    with cdask.config.set(scheduler=client):
        with distributed.get_task_stream(client) as ts:
            _check(expr.compute(), want)
    assert len(ts.data) == _n_tasks(expr)
    with distributed.get_task_stream(client) as ts:
        _check(expr.compute(scheduler=client.get), want)
        _check(expr.compute(scheduler="distributed"), want)
    assert len(ts.data) == 2 * _n_tasks(expr)
    # the workers' limits are cdask's budget there
    got = client.run(lambda: (cdask.config.get("memory_limit"), cdask.config.get("num_workers")))
    assert set(got.values()) == {(LIMIT, 1)}


def test_a_task_over_a_workers_limit_is_refused_before_it_runs(client):
    big = cdask.ones((2 * LIMIT // 8,), chunks=LIMIT // 8)     # blocks of the whole limit
    with distributed.get_task_stream(client) as ts:
        with pytest.raises(MemoryError, match="memory budget"):
            big.sum().compute(scheduler=client)
    assert not ts.data


def test_persist_on_a_client_keeps_futures(client):
    x, xn = _data()
    y = (x + 1) * 2
    want = (xn + 1) * 2
    for p in (y.persist(scheduler=client), client.persist(y),
              dask.persist(y, scheduler=client)[0], cdask.persist(y, scheduler=client)[0]):
        layer = p._layers[p.name]
        assert type(layer) is FutureBlocks and len(layer) == y.npartitions
        assert all(isinstance(f, distributed.Future) for f in layer.values())
        distributed.wait(p)
        # computes of the persisted array run on its Client, from its blocks
        with distributed.get_task_stream(client) as ts:
            _check(p.compute(), want)
            _check(p.sum().compute(), want.sum())
            _check((p + 1).compute(), want + 1)
        assert ts.data and not any(y.name in str(t["key"]) for t in ts.data)
    # a named scheduler elsewhere gathers the blocks first
    _check(p.sum().compute(scheduler="cdask"), want.sum())
    _check((p - 1).compute(scheduler="threads"), want - 1)
    # unknown chunk sizes become known
    m = x[x > 0].persist(scheduler=client)
    assert not any(np.isnan(c) for c in m.chunks[0])
    _check(m.compute(), xn[xn > 0])
    distributed.progress(m, notebook=False)


def test_client_and_dask_entry_points(client):
    x, xn = _data()
    y = np.cos(x) * x
    want = np.cos(xn) * xn
    _check(client.compute(y).result(), want)
    _check(client.compute(y.sum()).result(), want.sum())
    _check(dask.compute(y, scheduler=client)[0], want)
    (py,) = dask.persist(y, scheduler=client)
    _check(client.compute(py.mean()).result(), want.mean())
    futures = client.compute([y, y.max()])
    distributed.wait(futures)
    _check(futures[1].result(), want.max())


def test_dask_interop_same_chunks_no_recompute(client):
    x, xn = _data()
    y = (x + 1) ** 2
    d = y.to_dask()
    assert isinstance(d, dda.Array) and d.chunks == y.chunks and d.name == y.name
    assert y.to_dask_array().name == y.name
    _check(d.compute(), (xn + 1) ** 2)
    _check(d.sum().compute(scheduler=client), ((xn + 1) ** 2).sum())
    # every task of dask's graph is one of cdask's fused kernels or data
    assert all(not (type(t) is tuple and t) or isinstance(t[0], cdask.Kernel)
               for t in dict(d.dask).values())
    calls = []

    def count(b):
        calls.append(1)
        return b * 3

    e = dda.from_array(xn, chunks=(40, 30)).map_blocks(count).persist(scheduler="sync")
    before = len(calls)
    c = cdask.from_dask(e)
    assert c.chunks == e.chunks and c.name == e.name and c.dtype == e.dtype
    _check((c + 1).compute(), xn * 3 + 1)
    _check(c.sum().compute(scheduler=client), (xn * 3).sum())
    assert len(calls) == before
    lazy = cdask.from_dask(dda.arange(50, chunks=7) * 2)
    _check(lazy.compute(), np.arange(50) * 2)
    assert cdask.from_dask(c) is c
    with pytest.raises(TypeError, match="dask.array.Array"):
        cdask.from_dask(xn)


def test_stores_are_written_from_the_workers(client, tmp_path):
    n = 200_000
    x = cdask.arange(n, chunks=25_000, dtype=np.float64)
    y = x * 0.5 + 1
    want = np.arange(n, dtype=np.float64) * 0.5 + 1
    path = tmp_path / "y.npy"
    with distributed.get_task_stream(client) as ts:
        y.to_npy(path, scheduler=client)
    np.testing.assert_array_equal(np.load(path), want)
    stores = [t for t in ts.data if str(t["key"]).startswith("('store-")]
    assert len(stores) == y.npartitions           # each block written by a worker task
    assert {t["worker"] for t in ts.data} <= set(client.scheduler_info()["workers"])
    import zarr

    z = zarr.open_array(str(tmp_path / "y.zarr"), mode="w", shape=(n,), chunks=(25_000,),
                        dtype="f8")
    with distributed.get_task_stream(client) as ts:
        cdask.store(y, z, scheduler=client)
    np.testing.assert_array_equal(z[:], want)
    assert sum(str(t["key"]).startswith("('store-") for t in ts.data) == y.npartitions
    with cdask.config.set(scheduler=client):
        y.to_zarr(str(tmp_path / "w.zarr"))
    np.testing.assert_array_equal(cdask.from_zarr(str(tmp_path / "w.zarr")).compute(), want)
    # a target of this process only: its blocks come back and are written here
    out = np.zeros(n)
    cdask.store(y, out, scheduler=client)
    np.testing.assert_array_equal(out, want)
    cdask.store(y[:1000], out, regions=slice(5000, 6000), scheduler=client)
    np.testing.assert_array_equal(out[5000:6000], want[:1000])


class _Unpicklable:
    """A block function that holds a lock, so that it cannot be pickled."""

    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self, b):
        return b + 1

    def __dask_tokenize__(self):
        return "unpicklable"


def test_an_unpicklable_task_is_named(client):
    x, xn = _data()
    y = x.map_blocks(_Unpicklable())
    _check(y.compute(scheduler="threads"), xn + 1)       # fine in this process
    for sched in (client, "processes"):
        with pytest.raises(TypeError, match=r"the task \('_unpicklable|cannot be pickled") \
                as info:
            y.sum().compute(scheduler=sched)
        assert "cannot be pickled" in str(info.value) and y.name in str(info.value)


def test_a_closed_client_raises_before_work():
    x, _ = _data()
    c = distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                           dashboard_address=":0", silence_logs=50)
    _check(x.sum().compute(scheduler=c), _data()[1].sum())
    c.close()
    with pytest.raises(RuntimeError, match="Client is closed"):
        x.sum().compute(scheduler=c)
    with pytest.raises(RuntimeError, match="Client is closed"):
        x.persist(scheduler=c)
    with cdask.config.set(scheduler=c):
        with pytest.raises(RuntimeError, match="Client is closed"):
            x.compute()


async def _die():
    os._exit(1)


def test_a_worker_killed_mid_compute_recovers(client):
    def slow(b):
        time.sleep(0.05)
        return b * 2

    x = cdask.arange(64 * 1000, chunks=1000, dtype=np.float64)
    y = x.map_blocks(slow).sum()
    want = (np.arange(64 * 1000, dtype=np.float64) * 2).sum()
    got = []
    t = threading.Thread(target=lambda: got.append(y.compute(scheduler=client)))
    t.start()
    deadline = time.time() + 20
    while time.time() < deadline and not any(client.processing().values()):
        time.sleep(0.01)
    time.sleep(0.3)
    victim = sorted(client.scheduler_info()["workers"])[0]
    client.run(_die, workers=[victim], wait=False)
    t.join(50)
    assert got and got[0] == want
    client.wait_for_workers(2, timeout=30)
    assert victim not in client.scheduler_info()["workers"]      # it did die


def _reset_peak():
    """Reset the worker's VmHWM: ru_maxrss of a forked process starts at its
    parent's (a worker forked from a big pytest process would report it)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def test_worker_rss_stays_under_its_limit_on_an_array_4x_bigger(client):
    n = 4 * LIMIT // 8 + 8_000_000              # 1.26 GB of float64, generated
    x = cdask.random.default_rng(18).random((n,), chunks=2_000_000)
    assert x.nbytes > 4 * LIMIT
    client.run(_reset_peak)
    got = (x * 2 - 1).sum().compute(scheduler=client)
    assert abs(got) < 6 * np.sqrt(n / 3)      # a mean of 0: within 6 sigma
    peaks = client.run(_peak_rss)
    assert len(peaks) == 2 and all(p < LIMIT for p in peaks.values()), peaks


# ---------------------------------------------------------------- dask's own command-line tools

@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    sfile = str(d / "scheduler.json")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(cdask.__file__))] +
        [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    dask_cli = [sys.executable, "-m", "dask"]
    procs = []
    try:
        procs.append(subprocess.Popen(dask_cli + ["scheduler", "--host", "127.0.0.1", "--port",
                                                  "0", "--dashboard-address", ":0",
                                                  "--scheduler-file", sfile],
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, cwd=str(d)))
        deadline = time.time() + 30
        while not os.path.exists(sfile) and time.time() < deadline:
            time.sleep(0.1)
        assert os.path.exists(sfile), "dask scheduler did not start"
        procs.append(subprocess.Popen(dask_cli + ["worker", "--scheduler-file", sfile,
                                                  "--nworkers", "1", "--nthreads", "2",
                                                  "--host", "127.0.0.1",
                                                  "--memory-limit", "500MB"],
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, cwd=str(d)))
        with distributed.Client(scheduler_file=sfile, set_as_default=False) as c:
            c.wait_for_workers(1, timeout=30)
            yield c, procs
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_a_cluster_from_the_command_line(cli_cluster, tmp_path):
    # its Client is not the default one: everything goes through the one given
    c, procs = cli_cluster
    for expr, want in _exprs():
        with distributed.get_task_stream(c) as ts:
            _check(expr.compute(scheduler=c), want)
        assert len(ts.data) == _n_tasks(expr)
    x, xn = _data()
    p = (x * 3).persist(scheduler=c)
    _check(p.sum().compute(), (xn * 3).sum())
    (x - 1).to_npy(tmp_path / "z.npy", scheduler=c)
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), xn - 1)
    assert set(c.run(lambda: cdask.config.get("memory_limit")).values()) == {500 * 10**6}
    # a scheduler that is gone: a clear error, before any work
    procs[0].terminate()
    procs[0].wait(10)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        with pytest.raises(ConnectionError, match="does not answer"):
            x.sum().compute(scheduler=c)


# ---------------------------------------------------------------- packaging

def test_extras_hide_nothing():
    import re
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    extras = project["optional-dependencies"]
    assert sorted(project["dependencies"]) == ["numpy>=2", "scipy-openblas32", "threadpoolctl"]
    assert extras["distributed"] == ["dask==2026.8.0", "distributed==2026.8.0"]
    assert extras["zarr"] == ["zarr"]
    (all_,) = extras["all"]
    named = set(re.fullmatch(r"cdask\[(.*)\]", all_).group(1).split(","))
    assert named == set(extras) - {"all", "test"}
    # the test extra installs the pair, pinned alike
    assert {"dask==2026.8.0", "distributed==2026.8.0"} <= set(extras["test"])


def test_a_npy_source_travels_as_its_file(client, tmp_path):
    # a memory-mapped source pickles as a reference to its file, not its data
    xn = np.random.default_rng(5).standard_normal(400_000)
    np.save(tmp_path / "x.npy", xn)
    x = cdask.from_npy(tmp_path / "x.npy", chunks=50_000)
    y = x[x > 0].mean()
    g = dict(fused_graph(y._layers, {y.name}, y._keys_flat()))
    assert len(pickle.dumps(g)) < xn.nbytes // 20
    assert len(cloudpickle.dumps(g)) < xn.nbytes // 20
    np.testing.assert_allclose(cdask.get(pickle.loads(pickle.dumps(g)), [(y.name,)])[0],
                               xn[xn > 0].mean(), rtol=1e-12)
    np.testing.assert_allclose(y.compute(scheduler=client), xn[xn > 0].mean(), rtol=1e-12)
    (src,) = [t for t in g.values() if isinstance(t, np.memmap)] or \
        [a for t in g.values() if type(t) is tuple for a in t if isinstance(a, np.memmap)][:1]
    view = pickle.loads(pickle.dumps(src[1000:3000:2]))
    assert isinstance(view, np.memmap)
    np.testing.assert_array_equal(view, np.asarray(src)[1000:3000:2])
    # dask's tokenize (a Client tokenizes every task) names it by its file,
    # without hashing the data
    from dask.base import normalize_token, tokenize
    assert normalize_token(src)[0] == "cdask-shared-map"
    assert tokenize(view) == tokenize(src[1000:3000:2]) != tokenize(src[1000:3000])


def test_results_of_one_name_and_0d_stores_elsewhere(client):
    x, xn = _data()
    y = x * 2
    a, b, c = cdask.compute(y, y.copy(), y.sum(), scheduler=client)
    _check(a, xn * 2)
    _check(b, xn * 2)
    _check(c, (xn * 2).sum())
    out = np.zeros(())
    cdask.store(y.sum(), out, scheduler=client)
    _check(out, (xn * 2).sum())
