"""NumPy's ufunc methods on cdask arrays against cdask's own reductions, NumPy and dask.

    python benchmarks/bench_ufunc_methods.py            # 8000 x 8000 float64
    python benchmarks/bench_ufunc_methods.py --quick    # 2530 x 2530 (elements / 10)

a. ``np.add.reduce(X, axis=k)`` along each axis of an 8000 x 8000 float64
   matrix, beside cdask's own ``X.sum(axis=k)``, NumPy's ``np.add.reduce`` and
   dask's ``sum`` (dask has no ``ufunc.reduce``).
b. ``np.maximum.accumulate(X, axis=k)`` along each axis, beside cdask's own
   ``X.cumsum(axis=k)`` (a scan over the same data), NumPy's and dask's
   ``cumreduction(np.maximum.accumulate, np.maximum, -inf, ...)``.

Target (issue 16): at least as fast as cdask's own sum/cumsum on the same data,
and faster than NumPy.  The accumulate results are checked bit for bit
against NumPy's, the reductions within 1e-12 (relative).

c. cdask's ``x.sum/mean/min/max(axis=k)`` along each axis beside NumPy's
   (target: faster than NumPy; results within 1e-12 relative, min/max exact).

The float16 ``((x + 1) * 2) ** 3`` of the issue is benchmarks/bench_float16.py.

stdout carries only the markdown report (run.py collects it); progress goes to stderr.
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402


def _dask_maximum_accumulate(dda, np):
    from dask.array.reductions import cumreduction

    return lambda D, axis: cumreduction(np.maximum.accumulate, np.maximum, -np.inf, D,
                                        axis=axis, dtype=D.dtype)


def bench(n, repeat, cd, dda, np):
    A = np.random.default_rng(0).random((n, n))
    X = cd.from_array(A)
    D = dda.from_array(A) if dda is not None else None
    dmax = _dask_maximum_accumulate(dda, np) if dda is not None else None
    rows, res = [], {}
    for method in ("add.reduce", "maximum.accumulate"):
        for axis in (0, 1):
            label = f"np.{method}(x, axis={axis})"
            if method == "add.reduce":
                ours = (lambda ax=axis: np.add.reduce(X, axis=ax).compute())
                own_name = f"cdask `x.sum(axis={axis})`"
                own = (lambda ax=axis: X.sum(axis=ax).compute())
                ref = (lambda ax=axis: np.add.reduce(A, axis=ax))
                dsk = (lambda ax=axis: D.sum(axis=ax).compute(scheduler="threads")) \
                    if D is not None else None
                dsk_name = "dask `x.sum`"
            else:
                ours = (lambda ax=axis: np.maximum.accumulate(X, axis=ax).compute())
                own_name = f"cdask `x.cumsum(axis={axis})`"
                own = (lambda ax=axis: X.cumsum(axis=ax).compute())
                ref = (lambda ax=axis: np.maximum.accumulate(A, axis=ax))
                dsk = (lambda ax=axis: dmax(D, ax).compute(scheduler="threads")) \
                    if D is not None else None
                dsk_name = "dask `cumreduction`"
            t_ours = H.best_of(ours, repeat, log=H.log, label=f"{label} cdask")
            t_own = H.best_of(own, repeat, log=H.log, label=f"{label} {own_name}")
            t_np = H.best_of(ref, max(1, repeat // 2), log=H.log, label=f"{label} NumPy")
            t_d = H.best_of(dsk, 1, log=H.log, label=f"{label} dask") if dsk else None
            want = t_np.result
            if method == "add.reduce":
                ok = bool(np.allclose(t_ours.result, want, rtol=1e-12, atol=0))
                check = "≤ 1e-12 rel."
            else:
                ok = t_ours.result.tobytes() == want.tobytes()
                check = "bit-identical"
            del want
            c = t_ours.best
            met = c <= t_own.best and c < t_np.best
            res[label] = {"cdask_s": c, "own_s": t_own.best, "numpy_s": t_np.best,
                          "dask_s": t_d.best if t_d else None, "correct": ok}
            rows.append([label, "cdask", H.fmt_s(c), "1.00×", f"{check}: {H.yes_no(ok)}",
                         "≤ own, < NumPy", H.yes_no(met)])
            rows.append(["", own_name, H.fmt_s(t_own.best), H.fmt_ratio(t_own.best / c), "",
                         "", ""])
            rows.append(["", "NumPy", H.fmt_s(t_np.best), H.fmt_ratio(t_np.best / c), "",
                         "", ""])
            if t_d is not None:
                rows.append(["", dsk_name, H.fmt_s(t_d.best), H.fmt_ratio(t_d.best / c), "",
                             "", ""])
    for name in ("sum", "mean", "min", "max"):
        for axis in (0, 1):
            label = f"x.{name}(axis={axis})"
            t_c = H.best_of(lambda: getattr(X, name)(axis=axis).compute(), repeat,
                            log=H.log, label=f"{label} cdask")
            t_np = H.best_of(lambda: getattr(A, name)(axis=axis), max(1, repeat // 2),
                             log=H.log, label=f"{label} NumPy")
            t_d = H.best_of(lambda: getattr(D, name)(axis=axis).compute(scheduler="threads"),
                            1, log=H.log, label=f"{label} dask") if D is not None else None
            want = t_np.result
            ok = bool(np.allclose(t_c.result, want, rtol=1e-12, atol=0)) if name in (
                "sum", "mean") else t_c.result.tobytes() == want.tobytes()
            c = t_c.best
            res[label] = {"cdask_s": c, "numpy_s": t_np.best,
                          "dask_s": t_d.best if t_d else None, "correct": ok}
            rows.append([label, "cdask", H.fmt_s(c), "1.00×",
                         f"{'≤ 1e-12 rel.' if name in ('sum', 'mean') else 'exact'}: "
                         f"{H.yes_no(ok)}", "< NumPy", H.yes_no(c < t_np.best)])
            rows.append(["", "NumPy", H.fmt_s(t_np.best), H.fmt_ratio(t_np.best / c), "",
                         "", ""])
            if t_d is not None:
                rows.append(["", "dask", H.fmt_s(t_d.best), H.fmt_ratio(t_d.best / c), "",
                             "", ""])
    table = H.markdown_table(["operation", "contender", "time", "÷ cdask", "result",
                              "target", "met"], rows, align="llrrllc")
    return table, res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-dask", action="store_true", help="leave dask out")
    a = ap.parse_args(argv)

    import numpy as np
    import cdask

    dda = H.dask_array(a.no_dask)
    n = 2530 if a.quick else 8000
    repeat = a.repeat or (2 if a.quick else 5)
    workers = int(cdask.config.get("num_workers"))
    table, res = bench(n, repeat, cdask, dda, np)

    out = ["## Ufunc methods: `np.add.reduce`, `np.maximum.accumulate`; reductions by axis "
           "(`benchmarks/bench_ufunc_methods.py`)", ""]
    if a.quick:
        out += ["_Quick mode: 2530 × 2530 (elements divided by 10)._", ""]
    out += [f"{n} × {n} float64 in memory, default chunks; cdask with {workers} workers; "
            f"dask's threaded scheduler with its default chunks.  Best of {repeat} for cdask, "
            f"of {max(1, repeat // 2)} for NumPy, of 1 for dask.  ÷ cdask: the contender's "
            "time over cdask's.", "", table, ""]
    out.append(f"- Machine: {H.machine_line()}")
    H.emit(out, a.json, {"results": res}, dda is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
