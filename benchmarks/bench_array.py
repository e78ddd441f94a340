"""Array-layer benchmarks: cdask.Array against dask.array, side by side in one run.

    python benchmarks/bench_array.py            # full run (a few minutes, mostly dask)
    python benchmarks/bench_array.py --quick    # sizes / 10, one repeat
    python benchmarks/bench_array.py --json out.json

a. Scheduling cost per chunk: ``ones(2_000_000, chunks=10).sum()`` (200,000
   tiny chunks), graph build + compute, end to end.  Figure: µs per chunk.
   Target: cdask >= 30x faster than dask.
b. Graph construction: build ``(x + 1).sum()`` over ``x = ones(1_000_000,
   chunks=1)`` (1,000,000 chunks) and materialise its task graph
   (dask: ``dict(y.__dask_graph__())``; cdask: ``y.__dask_graph__()``, the C
   Graph merging the layers; cdask does not expose the compile of its plan
   separately, so that is not included).  Target: cdask >= 10x faster.
   The cdask compute of the same expression is shown for information.

stdout carries only the markdown report (run.py collects it); progress goes to stderr.
No asserts: the figures and ratios are reported, the targets marked met or not.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402


def bench_sum(mod, n, chunks, repeat):
    def run():
        return float(mod.ones(n, chunks=chunks).sum().compute())

    return H.best_of(run, repeat, log=H.log, label=mod.__name__ + " ones.sum")


def bench_graph(mod, n, repeat, is_dask):
    def run():
        x = mod.ones(n, chunks=1)
        y = (x + 1).sum()
        g = y.__dask_graph__()
        if is_dask:
            g = dict(g)
        return len(g)

    return H.best_of(run, repeat, log=H.log, label=mod.__name__ + " graph")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-dask", action="store_true", help="cdask figures only")
    a = ap.parse_args(argv)

    import numpy as np  # noqa: F401
    import cdask

    try:
        if a.no_dask:
            raise ImportError
        import dask
        import dask.array as dda
        dask.config.set(scheduler="threads")
    except ImportError:
        dda = None

    scale = 10 if a.quick else 1
    rep_c = a.repeat or (1 if a.quick else 3)
    rep_d = 1
    n_sum = 2_000_000 // scale
    n_graph = 1_000_000 // scale
    res = {"quick": a.quick}

    # ---- a. ones(...).sum(): scheduling cost per chunk -------------------
    H.log(f"a. ones({n_sum:,}, chunks=10).sum()")
    tc = bench_sum(cdask, n_sum, 10, rep_c)
    assert_val = tc.result
    td = bench_sum(dda, n_sum, 10, rep_d) if dda is not None else None
    nchunks = n_sum // 10
    res["sum"] = {"chunks": nchunks, "cdask_s": tc.best, "dask_s": td.best if td else None,
                  "value_cdask": assert_val, "value_dask": td.result if td else None}

    # ---- b. graph build + materialise ---------------------------------
    H.log(f"b. (x + 1).sum() over {n_graph:,} chunks: build + materialise the graph")
    gc_ = bench_graph(cdask, n_graph, rep_c, False)
    gd = bench_graph(dda, n_graph, rep_d, True) if dda is not None else None
    H.log("   cdask compute of the same")
    cc = H.best_of(lambda: float((cdask.ones(n_graph, chunks=1) + 1).sum().compute()), 1,
                   log=H.log, label="cdask compute")
    res["graph"] = {"chunks": n_graph, "cdask_s": gc_.best, "dask_s": gd.best if gd else None,
                    "cdask_tasks": gc_.result, "dask_tasks": gd.result if gd else None,
                    "cdask_compute_s": cc.best, "value": cc.result}

    # ---- report --------------------------------------------------------
    r1 = H.ratio(td.best if td else None, tc.best)
    r2 = H.ratio(gd.best if gd else None, gc_.best)
    rows = [
        [f"a. `ones({n_sum:,}, chunks=10).sum()` ({nchunks:,} chunks), build + compute",
         H.fmt_s(tc.best), H.fmt_s(td.best if td else None),
         H.fmt_us(tc.best / nchunks), H.fmt_us(td.best / nchunks if td else None),
         H.fmt_ratio(r1), "≥ 30×", H.yes_no(None if r1 is None else r1 >= 30)],
        [f"b. build + materialise `(x + 1).sum()` graph ({n_graph:,} chunks)",
         H.fmt_s(gc_.best), H.fmt_s(gd.best if gd else None),
         H.fmt_us(gc_.best / n_graph), H.fmt_us(gd.best / n_graph if gd else None),
         H.fmt_ratio(r2), "≥ 10×", H.yes_no(None if r2 is None else r2 >= 10)],
    ]
    out = ["## Array layer: cdask.Array vs dask.array", ""]
    if a.quick:
        out += ["_Quick mode: sizes divided by 10._", ""]
    out.append(H.markdown_table(
        ["benchmark", "cdask", "dask", "cdask per chunk", "dask per chunk", "dask / cdask",
         "target", "met"], rows, align="lrrrrrrc"))
    out += ["",
            f"- Tasks in the graph of b: cdask {gc_.result:,}"
            + (f", dask {gd.result:,}" if gd else "") + ".",
            f"- cdask compute of b's `(x + 1).sum()`: {H.fmt_s(cc.best)} "
            f"(result {cc.result:,.0f}).",
            f"- Results of a: cdask {assert_val:,.0f}"
            + (f", dask {td.result:,.0f}" if td else "") + ".",
            f"- Timings: cdask best of {rep_c}, dask {rep_d} run(s); gc disabled while timed.",
            f"- Machine: {H.machine_line()}"]
    if dda is None:
        out.append("- dask was not run (not importable or --no-dask).")
    print("\n".join(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
