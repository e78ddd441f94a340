"""cdask.get over the life of a process: Ctrl-C, fork, leaks, exit.

Covers: KeyboardInterrupt (SIGINT, and _thread.interrupt_main from a task)
stopping a run quickly with the module usable afterwards and the process
exiting promptly; cdask.get in a child after fork (pool already started in
the parent); reference counts of literals, callables and keys staying flat
over many runs (also failing runs); gc object counts and tracemalloc not
growing; kernel chunk memory returning to its starting level; several get
calls after a Ctrl-C and at interpreter exit.

Subprocess tests honour CDASK_TEST_ORACLE=1 (see conftest.SUBPROCESS_PRELUDE).
"""
import gc
import multiprocessing
import operator
import os
import pickle
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest

import cdask
from conftest import SUBPROCESS_PRELUDE

K = cdask.kernels
cdask_only = pytest.mark.cdask_only


def run_script(body, timeout=60):
    code = SUBPROCESS_PRELUDE + textwrap.dedent(body)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ))
    return r, time.monotonic() - t0


# ---------------------------------------------------------------- Ctrl-C


@cdask_only  # dask cannot stop a running spin kernel: its process would wait 30 s to exit
@pytest.mark.parametrize("num_workers", [1, 2])
def test_sigint_stops_spin_kernel(num_workers):
    r, wall = run_script("""
        import signal, threading, time
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            get({'x': (cdask.kernels.spin, 30.0), 'y': (cdask.kernels.spin, 30.0),
                 'z': (cdask.kernels.add, 'x', 'y')}, 'z', num_workers=%d)
            print('NOT INTERRUPTED')
        except KeyboardInterrupt:
            print('INTERRUPTED %%.3f' %% (time.monotonic() - t0))
        r = get({'a': (cdask.kernels.ones, 3), 'b': (cdask.kernels.sum, 'a')}, 'b')
        print('AFTER', float(r))
        import operator
        print('PY', get({'a': 1, 'b': (operator.add, 'a', 1)}, 'b'))
    """ % num_workers, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].startswith("INTERRUPTED"), r.stdout + r.stderr
    latency = float(lines[0].split()[1]) - 0.5
    assert latency < 2.0, "Ctrl-C honoured after %.2f s" % latency
    assert "AFTER 3.0" in r.stdout and "PY 2" in r.stdout
    # the spinning kernels were cancelled: the process did not wait for them at exit
    assert wall < 15, "process took %.1f s: spin kernels not cancelled?" % wall


def test_interrupt_main_from_a_task():
    # a Python task interrupts the main thread (like Ctrl-C) while another
    # task is still sleeping; get raises KeyboardInterrupt promptly and the
    # module keeps working
    r, wall = run_script("""
        import _thread, time, operator
        def interrupt():
            _thread.interrupt_main()
            return 1
        def snooze():
            for _ in range(30):
                time.sleep(0.1)
            return 2
        t0 = time.monotonic()
        try:
            get({'i': (interrupt,), 's': (snooze,), 'both': (operator.add, 'i', 's')},
                'both', num_workers=2)
            print('NOT INTERRUPTED')
        except KeyboardInterrupt:
            print('INTERRUPTED %.3f' % (time.monotonic() - t0))
        print('AFTER', get({'a': 1, 'b': (operator.add, 'a', 1)}, 'b', num_workers=2))
        print('AFTER2', float(get({'a': (cdask.kernels.ones, 4), 'b': (cdask.kernels.sum, 'a')}, 'b')))
    """, timeout=60)
    assert r.returncode == 0, r.stderr
    first = r.stdout.split("\n")[0]
    assert first.startswith("INTERRUPTED"), r.stdout + r.stderr
    assert float(first.split()[1]) < 2.0
    assert "AFTER 2" in r.stdout and "AFTER2 4.0" in r.stdout
    assert wall < 30


@cdask_only
def test_sigint_during_python_tasks_in_graph():
    # many short Python tasks: the interrupt is seen between tasks
    r, wall = run_script("""
        import signal, threading, time
        def nap(i):
            time.sleep(0.05)
            return i
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        dsk = {('n', i): (nap, i) for i in range(400)}
        dsk['s'] = (sum, [('n', i) for i in range(400)])
        t0 = time.monotonic()
        try:
            get(dsk, 's', num_workers=2)
            print('NOT INTERRUPTED')
        except KeyboardInterrupt:
            print('INTERRUPTED %.3f' % (time.monotonic() - t0))
        print('AFTER', get({('n', 1): (nap, 1), 'x': (nap, ('n', 1))}, 'x'))
    """)
    assert r.returncode == 0, r.stderr
    first = r.stdout.split("\n")[0]
    assert first.startswith("INTERRUPTED"), r.stdout + r.stderr
    assert float(first.split()[1]) - 0.5 < 2.0
    assert "AFTER 1" in r.stdout
    assert wall < 20


# ---------------------------------------------------------------- fork


def _child_work(path, num_workers):
    """Run a mixed kernel/Python graph; write the outcome to ``path`` (a pickle)."""
    try:
        from conftest import GET as get
        dsk = {("o", i): (K.ones, 100) for i in range(8)}
        dsk["s"] = (K.sum, [("o", i) for i in range(8)])
        dsk["p"] = (operator.add, (float, "s"), 1)
        out = ("ok", get(dsk, "p", num_workers=num_workers), os.getpid())
    except BaseException as e:  # noqa: BLE001
        out = ("error", repr(e), os.getpid())
    with open(path, "wb") as f:
        pickle.dump(out, f)


def _read(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def _join_or_kill(p, timeout, what):
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join(5)
        pytest.fail("%s did not finish within %s s (deadlock after fork?)" % (what, timeout))


@pytest.mark.parametrize("num_workers", [1, 2])
def test_get_in_forked_child(get, num_workers, tmp_path):
    # run in the parent first so the worker pool exists before the fork
    dsk = {"a": (K.ones, 10), "b": (K.sum, "a"), "c": (operator.mul, "b", 2)}
    assert get(dsk, "c", num_workers=2) == 20.0
    ctx = multiprocessing.get_context("fork")
    out = tmp_path / "child.pkl"
    p = ctx.Process(target=_child_work, args=(str(out), num_workers))
    p.start()
    _join_or_kill(p, 30, "child")
    assert p.exitcode == 0
    status, value, pid = _read(out)
    assert status == "ok", value
    assert pid != os.getpid()
    assert value == 801.0
    # the parent still works
    assert get(dsk, "c", num_workers=2) == 20.0


def _grandparent(dirname):
    ctx = multiprocessing.get_context("fork")
    _child_work(os.path.join(dirname, "middle.pkl"), 2)  # starts the pool in this child
    p = ctx.Process(target=_child_work, args=(os.path.join(dirname, "grandchild.pkl"), 2))
    p.start()
    p.join(30)
    if p.is_alive():
        p.kill()
        os._exit(3)


def test_get_in_forked_child_of_child(get, tmp_path):
    get({"a": (K.ones, 3)}, "a", num_workers=2)
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_grandparent, args=(str(tmp_path),))
    p.start()
    _join_or_kill(p, 60, "forked children")
    assert p.exitcode == 0
    for name in ("middle.pkl", "grandchild.pkl"):
        assert _read(tmp_path / name)[:2] == ("ok", 801.0), name


# ---------------------------------------------------------------- reference counts and leaks


class Marker:
    pass


def touch(x, y=None):
    return 1


def boom(x):
    raise ZeroDivisionError("boom")


def test_refcounts_flat(get):
    lit = Marker()
    arr = np.arange(1000.0)
    key = ("dyn", 123456789)  # a tuple created once: its refcount is ours to watch
    func = touch
    partial_like = Marker()
    dsk = {key: lit, "arr": arr, "a": (func, key, lit), "b": (func, [lit, key], "arr"),
           "c": (K.add, "arr", arr), "d": key, "e": (K.sum, ["c", arr])}
    objs = {"lit": lit, "arr": arr, "key": key, "func": func, "dsk": dsk,
            "kernel_add": K.add, "kernel_sum": K.sum, "other": partial_like}
    keys = ["a", "b", "c", ["d"], "e", key]
    for _ in range(5):  # warm-up
        get(dsk, keys, num_workers=2)
    gc.collect()
    before = {n: sys.getrefcount(o) for n, o in objs.items()}
    for _ in range(100):
        r = get(dsk, keys, num_workers=2)
    del r
    gc.collect()
    if hasattr(cdask._core, "_drain_releases"):
        cdask._core._drain_releases()
    after = {n: sys.getrefcount(o) for n, o in objs.items()}
    assert after == before


def test_refcounts_flat_on_errors(get):
    lit = Marker()
    dsk = {"a": (touch, lit), "bad": (boom, "a"), "c": (touch, "bad", lit)}
    objs = [lit, boom, touch, dsk]
    for _ in range(3):
        with pytest.raises(ZeroDivisionError):
            get(dsk, "c", num_workers=2)
    gc.collect()
    before = [sys.getrefcount(o) for o in objs]
    for _ in range(100):
        try:
            get(dsk, "c", num_workers=2)
        except ZeroDivisionError:
            pass
    gc.collect()
    assert [sys.getrefcount(o) for o in objs] == before


def test_refcounts_flat_on_pre_run_errors(get):
    lit = Marker()
    dsk = {"a": (touch, lit, "b"), "b": (touch, "a")}  # a cycle
    good = {"a": (touch, lit)}
    for _ in range(3):
        with pytest.raises(Exception):
            get(dsk, "a")
    before = sys.getrefcount(lit)
    for _ in range(100):
        with pytest.raises(Exception):
            get(dsk, "a")
        with pytest.raises(KeyError):
            get(good, "missing")
        with pytest.raises(TypeError):
            get(good, ["a", {"x": 1}])
    gc.collect()
    assert sys.getrefcount(lit) == before


def _small_workload(get):
    dsk = {("x", i): (K.ones, 50) for i in range(6)}
    dsk.update({("y", i): (operator.mul, ("x", i), 2.0) for i in range(6)})
    dsk["s"] = (K.sum, [("y", i) for i in range(6)])
    dsk["t"] = (touch, "s", [("x", 0), ("y", 1)])
    dsk["alias"] = "t"
    return get(dsk, ["s", ["alias"]], num_workers=2)


def test_gc_object_count_stable(get):
    for _ in range(20):
        _small_workload(get)
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(300):
        _small_workload(get)
    gc.collect()
    after = len(gc.get_objects())
    assert after - before < 150, (before, after)


@pytest.mark.slow
def test_tracemalloc_stable(get):
    for _ in range(30):
        _small_workload(get)
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(30):
            _small_workload(get)
        gc.collect()
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(600):
            _small_workload(get)
        gc.collect()
        now, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a leak of one small object per run would be ~30 kB here
    assert now - base < 24_000, now - base


@cdask_only
def test_chunk_memory_returns_to_start():
    core = cdask._core
    gc.collect()
    core._drain_releases()
    start = core._chunk_live_bytes()
    for _ in range(30):
        dsk = {("o", i): (K.ones, 10_000) for i in range(4)}
        dsk["a"] = (K.add, ("o", 0), ("o", 1))
        dsk["b"] = (K.mul, "a", ("o", 2))
        dsk["c"] = (operator.add, "b", 1.0)  # Python task on a chunk
        dsk["s"] = (K.sum, ["c", ("o", 3)])
        # a = 2, b = 2, c = 3 per element: 30,000 from c plus 10,000 from o3
        assert cdask.get(dsk, "s", num_workers=2) == 40_000.0
        with pytest.raises(ValueError):
            cdask.get({"o": (K.ones, 10_000), "f": (K.fail, "o")}, "f", num_workers=2)
    r = cdask.get({"o": (K.ones, 10_000)}, "o")
    gc.collect()
    core._drain_releases()
    assert core._chunk_live_bytes() > start  # the result still holds its chunk
    del r
    gc.collect()
    core._drain_releases()
    assert core._chunk_live_bytes() == start


# ---------------------------------------------------------------- process exit


def test_exit_right_after_runs():
    r, wall = run_script("""
        import threading, operator
        for i in range(20):
            assert float(get({'a': (cdask.kernels.ones, 1000), 'b': (cdask.kernels.sum, 'a')},
                             'b', num_workers=1 + i % 3)) == 1000.0
        def side():
            return get({'a': (operator.add, 1, 2)}, 'a', num_workers=2)
        t = threading.Thread(target=side)
        t.start(); t.join()
        print('ok')
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert wall < 30


@cdask_only  # an interrupt wedges dask's thread pool: the oracle's process never exits
def test_exit_after_failure_and_interrupt():
    r, wall = run_script("""
        import _thread, operator, time
        def interrupt():
            _thread.interrupt_main()
            return 1
        try:
            get({'f': (cdask.kernels.fail,)}, 'f')
        except ValueError:
            pass
        try:
            get({'i': (interrupt,)}, 'i', num_workers=2)
            time.sleep(5)  # the interrupt may land just after get returned
        except KeyboardInterrupt:
            pass
        print('ok')
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")
    assert wall < 30
