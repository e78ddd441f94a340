"""Graphs of tiny blocks, end to end (build, fuse, run): cdask against dask.

    python benchmarks/bench_tiny.py            # 1,000,000 blocks for cdask, 20,000 for dask
    python benchmarks/bench_tiny.py --quick    # 100,000 and 2,000
    python benchmarks/bench_tiny.py --json out.json

The four expressions of issue 12, each over blocks of 10 elements (1-D) or
10 x 10 (2-D):

a. ``((x + 1) * 2 - 1).sum()`` of ``ones(N * 10, chunks=10)``;
b. ``x[x > 0].mean()`` of ``arange(N * 10, chunks=10) % 7 - 3``;
c. ``(x * 2 + 1).sum(axis=0)`` of an ``(sqrt(N) * 10)``-square array in 10 x 10 blocks;
d. ``(y + v).sum()``: y as in c, v of length ``sqrt(N) * 10`` in blocks of 10.

Figure: microseconds per block, the whole of ``expr.compute()`` including
building the Array.  Targets: cdask at most 3 us per block at 1,000,000
blocks, and at least 100x cheaper per block than dask (measured at 20,000
blocks: dask's cost per block does not fall with more).  Also the 2,000-block
case of issue 12, ``(((x + 1) * 2) ** 3 - 1).sum()``, fused against unfused.

stdout carries only the markdown report; progress goes to stderr.  No asserts.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402


def exprs(mod, nblocks):
    side = int(math.isqrt(nblocks)) * 10

    def a():
        x = mod.ones(nblocks * 10, chunks=10)
        return float(((x + 1) * 2 - 1).sum().compute())

    def b():
        x = mod.arange(nblocks * 10, chunks=10) % 7 - 3
        return float(x[x > 0].mean().compute())

    def c():
        x = mod.ones((side, side), chunks=10)
        return float((x * 2 + 1).sum(axis=0).compute()[0])

    def d():
        y = mod.ones((side, side), chunks=10)
        v = mod.arange(side, chunks=10)
        return float((y + v).sum().compute())

    return [("a. `((x + 1) * 2 - 1).sum()`, 1-D", a, nblocks),
            ("b. `x[x > 0].mean()`, 1-D", b, nblocks),
            ("c. `(x * 2 + 1).sum(axis=0)`, 2-D", c, (side // 10) ** 2),
            ("d. `(y + v).sum()`, 2-D + 1-D", d, (side // 10) ** 2)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-dask", action="store_true")
    a = ap.parse_args(argv)

    import cdask
    dda = H.dask_array(a.no_dask)

    n_c = 100_000 if a.quick else 1_000_000
    n_d = 2_000 if a.quick else 20_000
    rep = 1 if a.quick else 2
    rows, res = [], {"quick": a.quick, "cdask_blocks": n_c, "dask_blocks": n_d, "rows": []}
    for (label, fc, bc), (_, fd, bd) in zip(exprs(cdask, n_c), exprs(dda, n_d) if dda else
                                            [(None, None, None)] * 4):
        H.log(label)
        tc = H.best_of(fc, rep, log=H.log, label="cdask")
        td = H.best_of(fd, 1, log=H.log, label="dask") if fd is not None else None
        uc, ud = tc.best / bc, (td.best / bd if td else None)
        r = H.ratio(ud, uc)
        ok = uc <= 3e-6 and (r is None or r >= 100)
        rows.append([label, f"{bc:,}", H.fmt_us(uc), f"{bd:,}" if td else "-", H.fmt_us(ud),
                     H.fmt_ratio(r), "≤ 3 µs, ≥ 100×", H.yes_no(ok)])
        res["rows"].append({"label": label, "cdask_blocks": bc, "cdask_s": tc.best,
                            "dask_blocks": bd if td else None, "dask_s": td.best if td else None,
                            "cdask_value": tc.result, "dask_value": td.result if td else None})

    # the 2,000-block case: fused against unfused, per block
    H.log("e. (((x + 1) * 2) ** 3 - 1).sum() over 2,000 blocks")

    def e(fuse):
        # unfused: the graph as it was before fusion was planned - no fusion,
        # no merging of tiny blocks
        with cdask.config.set({"array.coarsen": fuse}):
            x = cdask.ones(20_000, chunks=10)
            return float(((((x + 1) * 2) ** 3) - 1).sum().compute(fuse=fuse))

    tf = H.best_of(lambda: e(True), 5, log=H.log, label="fused")
    tu = H.best_of(lambda: e(False), 5, log=H.log, label="unfused")
    res["small"] = {"fused_s": tf.best, "unfused_s": tu.best}
    out = ["## Tiny blocks: end to end per block, cdask against dask", ""]
    if a.quick:
        out += ["_Quick mode: 100,000 blocks for cdask, 2,000 for dask._", ""]
    out.append(H.markdown_table(
        ["expression", "cdask blocks", "cdask per block", "dask blocks", "dask per block",
         "dask / cdask (per block)", "target", "met"], rows, align="lrrrrrrc"))
    out += ["",
            f"- e. `(((x + 1) * 2) ** 3 - 1).sum()` over 2,000 blocks, end to end: fused "
            f"{H.fmt_us(tf.best / 2000)} per block, unfused and unmerged "
            f"{H.fmt_us(tu.best / 2000)} "
            f"(target: fused no more than unfused; "
            f"{'met' if tf.best <= tu.best else 'not met'}).",
            "- Values (dask's arrays are smaller - its block counts - so its values differ): "
            + "; ".join(f"{r['label'][:2]} cdask {r['cdask_value']!r}, dask "
                                      f"{r['dask_value']!r}" for r in res["rows"]) + ".",
            f"- Timings: cdask best of {rep}, dask 1 run; gc disabled while timed.",
            f"- Machine: {H.machine_line()}"]
    H.emit(out, a.json, res, dda is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
