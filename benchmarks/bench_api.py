"""Statistics and sets (issue 15): cdask, NumPy and dask side by side, time and peak memory.

    python benchmarks/bench_api.py            # 1e8 elements, a 10,000 x 10,000 matrix
    python benchmarks/bench_api.py --quick    # 1e7 elements, 3,000 x 3,000

* ``histogram(x, bins=100, range=(0, 1))`` of ``n`` float64 (``rng.random``);
* ``bincount(x)`` of ``n`` int64 in [0, 1000);
* ``isin(x, t)`` of ``n`` int64 in [0, 10**6) against 1,000 test values;
* ``take(x, idx)`` of ``n`` float64 at ``n / 10`` random indices (only when
  ``cdask.take`` exists; the row says so otherwise);
* ``median(A, axis=0)`` of an ``m x m`` float64 matrix;
* ``unique(x)`` of ``n`` int64 in [0, 10**5).

The data are NumPy arrays in memory; cdask and dask wrap them with
``from_array`` and their default chunks (dask: threaded scheduler).  Every
(case, contender) pair runs in a child process of its own: the child makes
the data, notes its RSS, resets its peak (VmHWM), runs the case once for the
peak, then again for the time (best of the runs), and checks the result
against NumPy's.  Targets (the issue's): cdask faster than dask, with a peak
RSS above the data no higher than dask's.

stdout carries only the markdown report (run.py collects it); progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402

CASES = {
    "histogram": "histogram(x, bins=100, range=(0, 1))",
    "bincount": "bincount(x)",
    "isin": "isin(x, t)",
    "take": "take(x, idx)",
    "median": "median(A, axis=0)",
    "unique": "unique(x)",
}

_CHILD = r"""
import sys, time, numpy as np
who, case = sys.argv[1], sys.argv[2]
n, m, repeat = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if who == "cdask":
    import cdask as xp
elif who == "dask":
    import dask
    import dask.array as xp
    dask.config.set(scheduler="threads")
else:
    xp = np
rng = np.random.default_rng(0)
extra = {}
if case == "histogram":
    data = rng.random(n)
elif case == "bincount":
    data = rng.integers(0, 1000, n)
elif case == "isin":
    data = rng.integers(0, 10 ** 6, n)
    extra["t"] = rng.integers(0, 10 ** 6, 1000)
elif case == "take":
    data = rng.random(n)
    extra["idx"] = rng.integers(0, n, n // 10)
elif case == "median":
    data = rng.random((m, m))
else:
    data = rng.integers(0, 10 ** 5, n)

def run(mod, x):
    if case == "histogram":
        return mod.histogram(x, bins=100, range=(0, 1))[0]
    if case == "bincount":
        return mod.bincount(x)
    if case == "isin":
        return mod.isin(x, extra["t"])
    if case == "take":
        return mod.take(x, extra["idx"], axis=0)
    if case == "median":
        return mod.median(x, axis=0)
    return mod.unique(x)

def once():
    if who == "NumPy":
        return run(np, data)
    x = xp.from_array(data)
    return run(xp, x).compute()

base = rss_now()
reset_peak()
t0 = time.perf_counter()
r = once()
times = [time.perf_counter() - t0]
peak = peak_now()
chunk = None if who == "NumPy" else list(xp.from_array(data).chunksize)
for _ in range(repeat - 1):
    del r
    t0 = time.perf_counter()
    r = once()
    times.append(time.perf_counter() - t0)
ok = True
if who != "NumPy":
    ok = bool(np.array_equal(np.asarray(r), run(np, data)))
report(time=min(times), times=times, peak=peak, base=base, ok=ok, chunk=chunk)
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1e7 elements, 3000 x 3000")
    ap.add_argument("--n", type=int, default=None, help="elements of the 1-d cases")
    ap.add_argument("--m", type=int, default=None, help="side of the median's matrix")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--only", default="", help="comma list of cases")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-dask", action="store_true", help="leave dask out")
    a = ap.parse_args(argv)

    import cdask

    n = a.n or (10 ** 7 if a.quick else 10 ** 8)
    m = a.m or (3000 if a.quick else 10000)
    repeat = a.repeat or (3 if a.quick else 2)
    workers = int(cdask.config.get("num_workers"))
    has_take = hasattr(cdask, "take")
    cases = [c for c in CASES if not a.only or c in a.only.split(",")]
    contenders = ["NumPy", "cdask"]
    if H.dask_array(a.no_dask) is not None:
        contenders.append("dask")
    res = {}
    for case in cases:
        if case == "take" and not has_take:
            H.log("take: cdask.take does not exist yet; skipped")
            continue
        for who in contenders:
            H.log(f"{case}: {who} in a child ({repeat} run(s))")
            r = H.run_child(_CHILD, args=[who, case, str(n), str(m), str(repeat)])
            if not r.ok:
                H.log(r.stderr[-3000:])
                continue
            res[(case, who)] = r.report
            H.log(f"   {r.report['time']:.3f} s, peak +"
                  f"{(r.report['peak'] - r.report['base']) / 2 ** 20:.0f} MiB, "
                  f"equal to NumPy: {r.report['ok']}")

    rows = []
    met_all = True
    for case in cases:
        label = f"`{CASES[case]}`"
        if case == "take" and not has_take:
            rows.append([label, "", "skipped: no cdask.take yet", "", "", "", "", ""])
            continue
        c = res.get((case, "cdask"))
        d = res.get((case, "dask"))
        for who in contenders:
            r = res.get((case, who))
            if r is None:
                rows.append([label, who, "failed", "", "", "", "", ""])
                met_all = False
                continue
            peak = r["peak"] - r["base"]
            tgt = met = ""
            if who == "cdask" and d is not None:
                oks = [r["time"] < d["time"], peak <= d["peak"] - d["base"], r["ok"]]
                tgt = "faster than dask, peak ≤ dask's, = NumPy"
                met = H.yes_no(all(oks))
                met_all = met_all and all(oks)
            rows.append([label, who, H.fmt_s(r["time"]),
                         H.fmt_ratio(r["time"] / c["time"]) if c else "", H.fmt_mib(peak),
                         "" if who == "NumPy" else H.yes_no(r["ok"]), tgt, met])
    table = H.markdown_table(
        ["case", "contender", "time", "÷ cdask", "peak RSS above data", "= NumPy", "target",
         "met"], rows, align="llrrrclc")
    chunk = (res.get(("histogram", "cdask")) or {}).get("chunk")
    dchunk = (res.get(("histogram", "dask")) or {}).get("chunk")
    out = ["## Statistics and sets (`benchmarks/bench_api.py`)", ""]
    if a.quick:
        out += [f"_Quick mode: n = {n:,}, m = {m:,}._", ""]
    out += [f"1-d cases over n = {n:,} elements, the median over an {m:,} × {m:,} float64 "
            f"matrix, all in memory.  cdask with {workers} workers and its default chunks "
            f"({chunk} for the 1-d float64 data); dask's threaded scheduler with its default "
            f"chunks ({dchunk}).  Each contender runs in a child process of its own; time is "
            f"the best of {repeat} runs, peak RSS is the child's VmHWM above its RSS after "
            f"making the data.", "", table, ""]
    if not has_take:
        out.append("- `take`: skipped, `cdask.take` does not exist yet.")
    out += [f"- All targets met: {H.yes_no(met_all)}.", f"- Machine: {H.machine_line()}"]
    H.emit(out, None, None, "dask" in contenders)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{c}/{w}": v for (c, w), v in res.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
