"""Fusion benchmarks: cdask's fused tasks against NumPy, numexpr and dask, side by side.

    python benchmarks/bench_fusion.py            # full sizes (a few minutes, mostly dask)
    python benchmarks/bench_fusion.py --quick    # sizes / 10, fewer repeats

a. ``mean(x[x > 0])`` on 200,000,000 float64 held in memory, then on the same
   values in a memory-mapped ``.npy`` already in the page cache.  The
   bandwidth floor is the best of five ``np.sum(x)`` over the same bytes in
   this process.  Targets: cdask within 1.5x of the floor, and at least 5x
   faster than dask (threaded scheduler, default chunks).  numexpr cannot put
   a mask into a reduction: its best form is two fused sums,
   ``sum(where(x > 0, x, 0)) / sum(x > 0)``.
b. ``((A + 1) * 2) ** 3`` on an 8000 x 8000 float64 matrix: at least 1.7x
   faster than NumPy, bit-identical; peak memory no more than input + output
   + one chunk per worker, each contender's peak measured in a child process
   of its own (the child builds A, notes its RSS, then computes).
c. ``sqrt(a * a + b * b) / (1 + exp(-c))`` on three 4000 x 4000 float64
   matrices: faster than numexpr (its default threads), bit-identical to NumPy.

stdout carries only the markdown report (run.py collects it); progress goes to stderr.
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


def _mean_pos_contenders(x, cd, dda, ne):
    """{name: callable} computing mean(x[x > 0]) for the array-like x."""
    import numpy as np

    out = {}
    X = cd.from_npy(x.filename) if isinstance(x, np.memmap) else cd.from_array(x)
    out["cdask"] = lambda: float(X[X > 0].mean().compute())
    out["NumPy"] = lambda: float(np.mean(x[x > 0]))
    if ne is not None:
        def _ne():
            s = ne.evaluate("sum(where(x > 0, x, 0.0))", local_dict={"x": x})
            n = ne.evaluate("sum(where(x > 0, 1, 0))", local_dict={"x": x})
            return float(s) / float(n)
        out["numexpr"] = _ne
    if dda is not None:
        # dask.array.from_array copies an ndarray (a memmap too) whole before
        # chunking it: a memmap goes through an array-like that only slices
        D = dda.from_array(_Reader(x) if isinstance(x, np.memmap) else x)
        out["dask"] = lambda: float(D[D > 0].mean().compute(scheduler="threads"))
    return out


class _Reader:
    def __init__(self, a):
        self.a, self.shape, self.dtype, self.ndim = a, a.shape, a.dtype, a.ndim

    def __getitem__(self, idx):
        import numpy as np

        return np.asarray(self.a[idx])


def bench_mean_pos(n, repeat, cd, dda, ne, np):
    rng = np.random.default_rng(0)
    H.log(f"a. making {n:,} float64 ({n * 8 / 2**30:.2f} GiB)")
    x = rng.standard_normal(n)
    rows = []
    res = {}
    tmpdir = tempfile.mkdtemp(prefix="cdask-bench-")
    path = os.path.join(tmpdir, "x.npy")
    try:
        for where in ("in memory", "memory-mapped .npy (page cache warm)"):
            if where.startswith("memory-mapped"):
                np.save(path, x)
                src = np.load(path, mmap_mode="r")
                float(np.sum(src))                         # page cache warm
            else:
                src = x
            floor = H.best_of(lambda: float(np.sum(src)), 5, log=H.log, label="floor np.sum")
            times = {}
            values = {}
            for name, fn in _mean_pos_contenders(src, cd, dda, ne).items():
                reps = 1 if name in ("dask", "NumPy") else repeat
                t = H.best_of(fn, reps, log=H.log, label=f"{name} ({where})")
                times[name] = t.best
                values[name] = t.result
            ref = values["NumPy"]
            res[where] = {"floor_s": floor.best, "times": times, "values": values}
            c = times["cdask"]
            for name, t in times.items():
                rel = abs(values[name] - ref) / abs(ref)
                tgt, met = "", ""
                if name == "cdask":
                    tgt = "≤ 1.5× floor"
                    met = H.yes_no(c <= 1.5 * floor.best)
                elif name == "dask":
                    tgt = "cdask ≥ 5× faster"
                    met = H.yes_no(t / c >= 5)
                rows.append([where, name, H.fmt_s(t), H.fmt_ratio(t / floor.best),
                             H.fmt_ratio(t / c), f"{rel:.1e}", tgt, met])
            rows.append([where, "floor: best of 5 `np.sum(x)`", H.fmt_s(floor.best), "1.00×",
                         "", "", "", ""])
            del src
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.rmdir(tmpdir)
    table = H.markdown_table(
        ["data", "contender", "time", "÷ floor", "÷ cdask", "rel. diff vs NumPy", "target",
         "met"], rows, align="llrrrrlc")
    return table, res


_POW_CHILD = r"""
import sys, time, numpy as np
who, n = sys.argv[1], int(sys.argv[2])
if who == "cdask":
    import cdask
elif who == "dask":
    import dask, dask.array as da
A = np.random.default_rng(0).random((n, n))
base = rss_now()
reset_peak()
t0 = time.perf_counter()
if who == "NumPy":
    r = ((A + 1) * 2) ** 3
elif who == "cdask":
    x = cdask.from_array(A)
    chunk = x.chunksize
    r = (((x + 1) * 2) ** 3).compute()
else:
    x = da.from_array(A)
    chunk = x.chunksize
    r = (((x + 1) * 2) ** 3).compute(scheduler="threads")
t = time.perf_counter() - t0
peak = peak_now()                    # before checking the result (NumPy's temporaries)
ok = bool(np.array_equal(r, ((A + 1) * 2) ** 3))
cb = 0 if who == "NumPy" else int(np.prod(chunk)) * 8
report(time=t, peak=peak, base=base, ok=ok, chunk_bytes=cb)
"""


def bench_pow(n, repeat, cd, dda, np, workers):
    A = np.random.default_rng(0).random((n, n))
    ref = ((A + 1) * 2) ** 3
    X = cd.from_array(A)
    e = ((X + 1) * 2) ** 3
    tn = H.best_of(lambda: ((A + 1) * 2) ** 3, repeat, log=H.log, label="b. NumPy")
    tc = H.best_of(lambda: e.compute(), repeat, log=H.log, label="b. cdask")
    tu = H.best_of(lambda: e.compute(fuse=False), 1, log=H.log, label="b. cdask unfused")
    same = bool(np.array_equal(tc.result, ref)) and tc.result.tobytes() == ref.tobytes()
    td = None
    if dda is not None:
        D = dda.from_array(A)
        td = H.best_of(lambda: (((D + 1) * 2) ** 3).compute(scheduler="threads"), 1,
                       log=H.log, label="b. dask")
    del A, ref, X, e
    mem = {}
    for who in ["NumPy", "cdask"] + (["dask"] if dda is not None else []):
        H.log(f"b. peak memory, {who} in a child")
        r = H.run_child(_POW_CHILD, args=[who, str(n)])
        if not r.ok:
            H.log(r.stderr[-2000:])
            continue
        mem[who] = r.report
    in_b = out_b = n * n * 8
    rows = []
    sp = tn.best / tc.best
    rows.append(["time", H.fmt_s(tn.best), H.fmt_s(tc.best), H.fmt_s(tu.best),
                 H.fmt_s(td.best) if td else "", f"NumPy ÷ cdask {sp:.2f}×", "≥ 1.7×",
                 H.yes_no(sp >= 1.7)])
    rows.append(["bit-identical to NumPy", "", H.yes_no(same), "", "", "", "yes",
                 H.yes_no(same)])
    peaks = {w: m["peak"] - m["base"] for w, m in mem.items()}
    if "cdask" in mem:
        bound = out_b + workers * mem["cdask"]["chunk_bytes"]
        rows.append(["peak RSS above input (child)", H.fmt_mib(peaks.get("NumPy")),
                     H.fmt_mib(peaks["cdask"]), "", H.fmt_mib(peaks.get("dask")),
                     f"bound: output + {workers} × chunk = {H.fmt_mib(bound)}",
                     "cdask ≤ bound", H.yes_no(peaks["cdask"] <= bound)])
    table = H.markdown_table(
        ["figure", "NumPy", "cdask", "cdask unfused", "dask", "ratio / bound", "target", "met"],
        rows, align="lrrrrlcc")
    return table, {"numpy_s": tn.best, "cdask_s": tc.best, "unfused_s": tu.best,
                   "dask_s": td.best if td else None, "identical": same, "mem": mem,
                   "input_bytes": in_b}


def bench_chain(n, repeat, cd, dda, ne, np):
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal((n, n)) for _ in range(3))
    ref = np.sqrt(a * a + b * b) / (1 + np.exp(-c))
    A, B, C = (cd.from_array(v) for v in (a, b, c))
    e = cd.sqrt(A * A + B * B) / (1 + cd.exp(-C))
    times = {"NumPy": H.best_of(lambda: np.sqrt(a * a + b * b) / (1 + np.exp(-c)), repeat,
                                log=H.log, label="c. NumPy"),
             "cdask": H.best_of(lambda: e.compute(), repeat, log=H.log, label="c. cdask")}
    if ne is not None:
        times["numexpr"] = H.best_of(lambda: ne.evaluate("sqrt(a * a + b * b) / (1 + exp(-c))",
                                                         local_dict={"a": a, "b": b, "c": c}),
                                     repeat, log=H.log, label="c. numexpr")
    if dda is not None:
        DA, DB, DC = (dda.from_array(v) for v in (a, b, c))
        de = dda.sqrt(DA * DA + DB * DB) / (1 + dda.exp(-DC))
        times["dask"] = H.best_of(lambda: de.compute(scheduler="threads"), 1, log=H.log,
                                  label="c. dask")
    same = times["cdask"].result.tobytes() == ref.tobytes()
    c_t = times["cdask"].best
    rows = []
    for name, t in times.items():
        tgt = met = ""
        if name == "numexpr":
            tgt, met = "cdask faster", H.yes_no(c_t < t.best)
        err = float(np.max(np.abs(t.result - ref)))
        rows.append([name, H.fmt_s(t.best), H.fmt_ratio(t.best / c_t), f"{err:.1e}", tgt, met])
    table = H.markdown_table(["contender", "time", "÷ cdask", "max abs diff vs NumPy", "target",
                              "met"], rows, align="lrrrlc")
    return table, {k: v.best for k, v in times.items()}, same


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
    try:
        import numexpr as ne
    except ImportError:
        ne = None

    scale = 10 if a.quick else 1
    repeat = a.repeat or (2 if a.quick else 5)
    workers = int(cdask.config.get("num_workers"))
    n_a = 200_000_000 // scale
    n_b = 8000 if not a.quick else 2530
    n_c = 4000 if not a.quick else 1265

    ta, ra = bench_mean_pos(n_a, repeat, cdask, dda, ne, np)
    tb, rb = bench_pow(n_b, repeat, cdask, dda, np, workers)
    tc, rc, same_c = bench_chain(n_c, repeat, cdask, dda, ne, np)

    out = ["## Fusion: one pass over memory (`benchmarks/bench_fusion.py`)", ""]
    if a.quick:
        out += ["_Quick mode: sizes divided by 10._", ""]
    out += [f"cdask with {workers} workers, default chunks, fusion on (the default); "
            f"numexpr with its default threads; dask's threaded scheduler with its default "
            f"chunks.  Best of {repeat} for cdask and numexpr, of 1 for NumPy and dask.", "",
            f"### a. `mean(x[x > 0])`, {n_a:,} float64", "", ta, "",
            f"### b. `((A + 1) * 2) ** 3`, {n_b} × {n_b} float64", "", tb, "",
            f"### c. `sqrt(a * a + b * b) / (1 + exp(-c))`, three {n_c} × {n_c} float64", "",
            tc, "", f"- c. cdask bit-identical to NumPy: {H.yes_no(same_c)}.",
            f"- Machine: {H.machine_line()}"]
    H.emit(out, a.json, {"a": ra, "b": rb, "c": rc}, dda is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
