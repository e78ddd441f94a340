"""cdask's graphs on dask's schedulers and on a dask.distributed LocalCluster.

    python benchmarks/bench_distributed.py            # A, B 2000 x 2000; x 25M floats (a few minutes)
    python benchmarks/bench_distributed.py --quick    # 1000 x 1000; 5M

The talk's three expressions over A and B, and ``mean(x[x > 0])`` over x,
all read from ``.npy`` files, each computed four ways:

* ``cdask``          - cdask's own C scheduler;
* ``dask threads``   - dask's threaded scheduler running cdask's graph
  (``compute(scheduler="threads")``: the graph cdask.get would run);
* ``cluster, cdask`` - a two-process ``LocalCluster`` (one thread each)
  running cdask's fused graph (``compute(scheduler=client)``);
* ``cluster, dask``  - the same cluster running dask.array's graph of the
  same expression (``da.from_array(np.load(path, mmap_mode="r"))``, which
  is how a dask user maps a ``.npy``: dask then ships the mapped data to
  the cluster, where cdask's ``from_npy`` ships a reference to the file).

Both libraries use the same blocks: A and B in 4 x 4, x in 16.

Each contender runs in a child process of its own (with its own cluster);
time is the best of the runs after the first, peak RSS is each process's
VmHWM over the timed runs (the client, and each worker), ``tasks`` the
tasks the cluster ran per compute.  Target: on the cluster, cdask's graph
is faster than dask.array's, holding fewer, fused tasks.  On a shared
machine the figures are noisy.  stdout carries only the markdown report.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402

EXPRS = {
    1: "((A + 1) * 2) ** 3",
    2: "(B - B.mean(axis=0)) + (B.T / B.std())",
    3: "A.T.dot(B) - B.mean(axis=0)",
    4: "x[x > 0].mean()",
}
WHO = ["cdask", "dask threads", "cluster, cdask", "cluster, dask"]

_CHILD = r"""
import sys, time, numpy as np
who, expr_id, d, repeat = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
bn, bm = int(sys.argv[5]), int(sys.argv[6])
lib = "dask" if who == "cluster, dask" else "cdask"
chunks = lambda name: (bm,) if name == "x" else (bn, bn)
if lib == "cdask":
    import cdask as xp
    load = lambda name: xp.from_npy(d + "/" + name + ".npy", chunks=chunks(name))
else:
    import dask.array as xp
    load = lambda name: xp.from_array(np.load(d + "/" + name + ".npy", mmap_mode="r"),
                                      chunks=chunks(name))
client = None
if who.startswith("cluster"):
    import distributed
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=50)
    client = distributed.Client(cluster)

def expr():
    if expr_id == 4:
        x = load("x")
        return x[x > 0].mean()
    A, B = load("A"), load("B")
    if expr_id == 1:
        return ((A + 1) * 2) ** 3
    if expr_id == 2:
        return (B - B.mean(axis=0)) + (B.T / B.std())
    return A.T.dot(B) - B.mean(axis=0)

def run():
    r = expr()
    if who == "cdask":
        return r.compute()
    if who == "dask threads":
        return r.compute(scheduler="threads")
    return r.compute(scheduler=client)

def worker_peaks(reset):
    return list(client.run(reset_peak if reset else peak_now).values())

r = run()                                # warm-up: imports, kernels, the workers' first tasks
del r
if client is not None:
    worker_peaks(True)
reset_peak()
times, tasks = [], None
for _ in range(repeat):
    if client is not None:
        with distributed.get_task_stream(client) as ts:
            t0 = time.perf_counter()
            r = run()
            times.append(time.perf_counter() - t0)
        tasks = len(ts.data)
    else:
        t0 = time.perf_counter()
        r = run()
        times.append(time.perf_counter() - t0)
    if _ < repeat - 1:
        del r
peak = peak_now()
workers = worker_peaks(False) if client is not None else []
if expr_id == 4:
    x = np.load(d + "/x.npy", mmap_mode="r")
    ref = x[x > 0].mean()
else:
    A, B = np.load(d + "/A.npy"), np.load(d + "/B.npy")
    ref = (((A + 1) * 2) ** 3 if expr_id == 1 else
           (B - B.mean(axis=0)) + (B.T / B.std()) if expr_id == 2 else
           A.T.dot(B) - B.mean(axis=0))
err = float(np.max(np.abs(np.asarray(r) - ref)) / np.max(np.abs(ref)))
report(time=min(times), times=times, peak=peak, workers=workers, tasks=tasks, err=err)
if client is not None:
    client.close()
    cluster.close()
"""


def _make_inputs(d, n, m):
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(os.path.join(d, "A.npy"), rng.random((n, n)))
    np.save(os.path.join(d, "B.npy"), rng.random((n, n)))
    x = np.lib.format.open_memmap(os.path.join(d, "x.npy"), mode="w+", dtype="f8", shape=(m,))
    step = 1 << 22
    for i in range(0, m, step):
        x[i:i + step] = rng.standard_normal(min(step, m - i))
    x.flush()
    del x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1000 x 1000 and 5M elements")
    ap.add_argument("--n", type=int, default=None, help="A and B are n x n")
    ap.add_argument("--m", type=int, default=None, help="x has m elements")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    n = a.n or (1000 if a.quick else 2000)
    m = a.m or (5_000_000 if a.quick else 25_000_000)
    res = {}
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as d:
        H.log(f"inputs: A, B {n} x {n}, x {m} float64 in {d}")
        _make_inputs(d, n, m)
        for e, text in EXPRS.items():
            for who in WHO:
                H.log(f"{e}. {text}: {who}")
                r = H.run_child(_CHILD, args=[who, str(e), d, str(a.repeat), str(-(-n // 4)),
                                              str(-(-m // 16))], timeout=900)
                if not r.ok:
                    H.log(r.stderr[-3000:])
                    continue
                res[(e, who)] = r.report
                H.log(f"   {r.report['time']:.3f} s, tasks {r.report['tasks']}")
    rows = []
    met_all = True
    for e, text in EXPRS.items():
        base = res.get((e, "cdask"))
        dd = res.get((e, "cluster, dask"))
        for who in WHO:
            r = res.get((e, who))
            if r is None:
                rows.append([f"{e}. `{text}`", who, "failed", "", "", "", "", "", ""])
                met_all = False
                continue
            tgt = met = ""
            if who == "cluster, cdask" and dd is not None:
                ok = r["time"] < dd["time"]
                tgt, met = f"÷ dask's graph: {r['time'] / dd['time']:.2f}× (< 1)", H.yes_no(ok)
                met_all = met_all and ok
            rows.append([f"{e}. `{text}`", who, H.fmt_s(r["time"]),
                         H.fmt_ratio(r["time"] / base["time"]) if base else "",
                         "" if r["tasks"] is None else str(r["tasks"]),
                         H.fmt_mib(r["peak"]),
                         " / ".join(H.fmt_mib(p) for p in r["workers"]),
                         f"{r['err']:.1e}", f"{tgt} {met}".strip()])
    table = H.markdown_table(
        ["expression", "contender", "time", "÷ cdask", "tasks", "peak RSS (client)",
         "peak RSS (workers)", "max rel. diff vs NumPy", "target"], rows,
        align="llrrrrrrl")
    out = ["## cdask's graphs on dask's schedulers and a LocalCluster "
           "(`benchmarks/bench_distributed.py`)", ""]
    if a.quick:
        out += ["_Quick mode._", ""]
    out += [f"A, B: {n} × {n} float64, x: {m} float64, in `.npy` files (cdask: `from_npy`; "
            f"dask: `from_array` of `np.load(mmap_mode='r')`), both in blocks of "
            f"{-(-n // 4)} × {-(-n // 4)} and {-(-m // 16)}.  The cluster: a LocalCluster of "
            f"2 worker processes with 1 thread each, started in each contender's child "
            f"process.  Time: best of {a.repeat} runs after a warm-up run.", "", table, "",
            f"- Target met on every expression (cluster, cdask's graph faster than "
            f"dask.array's): {H.yes_no(met_all)}.",
            f"- Machine: {H.machine_line()}"]
    H.emit(out, a.json, {f"{e}/{w}": v for (e, w), v in res.items()}, True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
