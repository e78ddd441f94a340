"""The talk's three expressions: cdask, NumPy and dask side by side, time and peak memory.

    python benchmarks/bench_expressions.py            # 6000 x 6000 float64 (a few minutes)
    python benchmarks/bench_expressions.py --quick    # 2000 x 2000

1. ``((A + 1) * 2) ** 3``
2. ``(B - B.mean(axis=0)) + (B.T / B.std())``
3. ``A.T.dot(B) - B.mean(axis=0)``

A and B are n x n float64 NumPy arrays in memory (``rng.random``); cdask and dask
wrap them with ``from_array`` and their default chunks (dask: threaded scheduler).
Every (expression, contender) pair runs in a child process of its own: the
child makes A and B, notes its RSS, resets its peak (VmHWM), runs the
expression once for the peak, then again for the time (best of the runs).
The NumPy child of expression 3 also times one ``A.T @ B`` alone: the
reference for the target.

Targets: expression 3 with cdask within 1.2x of that one NumPy matmul and
faster than dask; all three with cdask's peak memory below dask's.

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

EXPRS = {
    1: "((A + 1) * 2) ** 3",
    2: "(B - B.mean(axis=0)) + (B.T / B.std())",
    3: "A.T.dot(B) - B.mean(axis=0)",
}

_CHILD = r"""
import sys, time, numpy as np
who, expr_id, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if who == "cdask":
    import cdask as xp
elif who == "dask":
    import dask.array as xp
rng = np.random.default_rng(0)
A0 = rng.random((n, n))
B0 = rng.random((n, n))

def run():
    if who == "NumPy":
        A, B = A0, B0
    else:
        A, B = xp.from_array(A0), xp.from_array(B0)
    if expr_id == 1:
        r = ((A + 1) * 2) ** 3
    elif expr_id == 2:
        r = (B - B.mean(axis=0)) + (B.T / B.std())
    else:
        r = A.T.dot(B) - B.mean(axis=0)
    if who == "cdask":
        r = r.compute()
    elif who == "dask":
        r = r.compute(scheduler="threads")
    return r

base = rss_now()
reset_peak()
t0 = time.perf_counter()
r = run()
times = [time.perf_counter() - t0]
peak = peak_now()
chunk = None
if who != "NumPy":
    chunk = list(xp.from_array(A0).chunksize)
for _ in range(repeat - 1):
    del r
    t0 = time.perf_counter()
    r = run()
    times.append(time.perf_counter() - t0)
mm = None
if who == "NumPy" and expr_id == 3:
    del r
    mmt = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        m = A0.T @ B0
        mmt.append(time.perf_counter() - t0)
        del m
    mm = min(mmt)
    r = A0.T.dot(B0) - B0.mean(axis=0)
    err = 0.0
else:
    A, B = A0, B0
    ref = (((A + 1) * 2) ** 3 if expr_id == 1 else
           (B - B.mean(axis=0)) + (B.T / B.std()) if expr_id == 2 else
           A.T.dot(B) - B.mean(axis=0))
    err = float(np.max(np.abs(r - ref)) / np.max(np.abs(ref)))
report(time=min(times), times=times, peak=peak, base=base, matmul=mm, err=err, chunk=chunk)
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2000 x 2000 instead of 6000 x 6000")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-dask", action="store_true", help="leave dask out")
    a = ap.parse_args(argv)

    import cdask

    n = a.n or (2000 if a.quick else 6000)
    repeat = a.repeat or (3 if a.quick else 2)
    workers = int(cdask.config.get("num_workers"))
    contenders = ["NumPy", "cdask"]
    if not a.no_dask:
        try:
            import dask.array  # noqa: F401
            contenders.append("dask")
        except ImportError:
            pass
    res = {}
    for e in EXPRS:
        for who in contenders:
            reps = 1 if who == "dask" else repeat
            H.log(f"{e}. {EXPRS[e]}: {who} in a child ({reps} run(s))")
            r = H.run_child(_CHILD, args=[who, str(e), str(n), str(reps)])
            if not r.ok:
                H.log(r.stderr[-3000:])
                continue
            res[(e, who)] = r.report
            H.log(f"   {r.report['time']:.3f} s, peak +{(r.report['peak'] - r.report['base']) / 2**20:.0f} MiB")

    rows = []
    met_all = True
    mm = res.get((3, "NumPy"), {}).get("matmul")
    for e, text in EXPRS.items():
        c = res.get((e, "cdask"))
        d = res.get((e, "dask"))
        for who in contenders:
            r = res.get((e, who))
            if r is None:
                rows.append([f"{e}. `{text}`", who, "failed", "", "", "", "", ""])
                met_all = False
                continue
            peak = r["peak"] - r["base"]
            tgt, met = "", ""
            if who == "cdask":
                parts, oks = [], []
                if d is not None:
                    parts.append("peak < dask's")
                    oks.append(peak < d["peak"] - d["base"])
                if e == 3 and mm:
                    parts.append("≤ 1.2× NumPy matmul")
                    oks.append(r["time"] <= 1.2 * mm)
                if e == 3 and d is not None:
                    parts.append("faster than dask")
                    oks.append(r["time"] < d["time"])
                tgt = ", ".join(parts)
                met = H.yes_no(all(oks)) if oks else ""
                met_all = met_all and all(oks)
            rows.append([f"{e}. `{text}`", who, H.fmt_s(r["time"]),
                         H.fmt_ratio(r["time"] / c["time"]) if c else "",
                         H.fmt_mib(peak), f"{r['err']:.1e}" if who != "NumPy" else "",
                         tgt, met])
        if e == 3 and mm:
            rows.append([f"{e}. `{text}`", "one NumPy `A.T @ B`", H.fmt_s(mm),
                         H.fmt_ratio(mm / c["time"]) if c else "", "", "",
                         f"cdask ÷ this: {c['time'] / mm:.2f}×" if c else "", ""])
    table = H.markdown_table(
        ["expression", "contender", "time", "÷ cdask", "peak RSS above inputs",
         "max rel. diff vs NumPy", "target", "met"], rows, align="llrrrrlc")
    chunk = (res.get((1, "cdask")) or {}).get("chunk")
    dchunk = (res.get((1, "dask")) or {}).get("chunk")
    out = ["## The talk's expressions (`benchmarks/bench_expressions.py`)", ""]
    if a.quick:
        out += [f"_Quick mode: {n} × {n}._", ""]
    out += [f"A, B: {n} × {n} float64 in memory.  cdask with {workers} workers and its default "
            f"chunks {chunk}; dask's threaded scheduler with its default chunks {dchunk}.  "
            f"Each contender runs in a child process of its own; time is the best of {repeat} "
            f"runs (1 for dask), peak RSS is the child's VmHWM above its RSS after making A "
            f"and B.", "", table, "",
            f"- All targets met: {H.yes_no(met_all)}.",
            f"- Machine: {H.machine_line()}"]
    print("\n".join(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{e}/{w}": v for (e, w), v in res.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
