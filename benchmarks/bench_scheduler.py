"""Scheduler benchmarks: cdask.get against dask.threaded.get, side by side in one run.

    python benchmarks/bench_scheduler.py            # full run (a few minutes)
    python benchmarks/bench_scheduler.py --quick    # small sizes, one repeat
    python benchmarks/bench_scheduler.py --json out.json

What it measures (every timing is the best of --repeat calls of the whole
``get(dsk, root)``: graph compile + run; gc disabled during a timed call):

a. C-kernel tasks: a fan-in-8 reduction tree.  Leaves ``('x', i): (kernels.ones, 4)``,
   internal nodes ``('s', level, j): (kernels.sum, [children...])`` up to one root.
   cdask.get on ~1,000,000 tasks and on ~100,000; dask.threaded.get on ~100,000
   (dask calls the Kernel objects as plain Python callables).  Figure: µs per task.
   Targets: cdask <= 0.5 µs/task and >= 100x less than dask.
b. Python tasks: the same tree with ``one()`` leaves and ``add_many(*children)``
   nodes.  cdask on ~1,000,000 (200,000 if that would be too slow) and ~100,000;
   dask on ~100,000.  Targets: cdask <= 5 µs/task and >= 10x less than dask.
   With ``record``: the same 1,000,000-task tree with ``record=True`` (a
   ``cdask.Stats`` filled with one record per task, what ``cdask.diagnostics.
   Profiler`` reads) against the same call without, interleaved in one run,
   best of --record-repeat each; figure = the ratio of the bests (wall time,
   and process CPU time, which other load on the machine sways less),
   target <= 1.03.
   Reading the records afterwards (``stats.records``, ``stats.memory``: Python
   objects made on first read) is timed apart, as it is not part of the get.
c. Peak memory: --mem-leaves leaves ``(kernels.ones, L/8)`` of L = --mem-leaf-mib MiB
   each, summed by a fan-in-8 tree of ``kernels.sum``.  Each contender runs in its
   own fresh child process; figure = peak RSS during the run minus the child's RSS
   after imports and graph construction.  Target: <= (workers + depth + 1) * L + 50 MiB.

Until cdask exists, ``--cdask-get dask.get`` (or any dotted name) stands in for
cdask.get; kernels fall back to NumPy stand-ins if ``cdask.kernels`` can't be
imported.  The report says so loudly when stand-ins were used.

stdout carries only the markdown report (run.py collects it); progress goes to stderr.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402

FANIN = 8


# --------------------------------------------------------------------------
# trivial Python callables (module level so they are ordinary functions)
# --------------------------------------------------------------------------
def one():
    return 1


def add_many(*xs):
    return sum(xs)


# --------------------------------------------------------------------------
# kernels and getters
# --------------------------------------------------------------------------
class StandinKernels:
    """NumPy stand-ins for cdask.kernels.ones / sum, used only while cdask is missing."""

    STANDIN = True

    @staticmethod
    def ones(n):
        import numpy as np
        return np.ones(n)

    @staticmethod
    def sum(*chunks):
        import numpy as np
        if len(chunks) == 1 and isinstance(chunks[0], (list, tuple)):
            chunks = chunks[0]
        total = 0.0
        for c in chunks:
            total += float(np.sum(c))
        return np.asarray(total)


def load_kernels(name: str):
    """(kernels namespace, is_standin)."""
    if name == "standin":
        return StandinKernels, True
    try:
        mod = importlib.import_module(name)
        mod.ones, mod.sum  # noqa: B018 - check they exist
        return mod, False
    except Exception as e:  # ImportError, AttributeError, a half-built extension...
        H.log(f"!! cannot use {name} ({type(e).__name__}: {e}); using NumPy stand-in kernels")
        return StandinKernels, True


def resolve(dotted: str):
    """'pkg.mod.attr' -> object (imports the longest importable module prefix)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p)
        return obj
    raise ImportError(f"cannot import {dotted}")


def make_call(getter, pass_workers: bool, workers: int):
    if pass_workers:
        return lambda dsk, key: getter(dsk, key, num_workers=workers)
    return lambda dsk, key: getter(dsk, key)


# --------------------------------------------------------------------------
# graphs
# --------------------------------------------------------------------------
def leaves_for(n_tasks: int, fanin: int = FANIN) -> int:
    """Number of leaves whose fan-in tree has about n_tasks tasks in all."""
    nl = max(2, round(n_tasks * (fanin - 1) / fanin))
    while tree_size(nl, fanin) > n_tasks and nl > 2:
        nl -= 1
    return nl


def tree_size(nleaves: int, fanin: int = FANIN) -> int:
    total, n = nleaves, nleaves
    while n > 1:
        n = -(-n // fanin)
        total += n
    return total


def tree_depth(nleaves: int, fanin: int = FANIN) -> int:
    d, n = 0, nleaves
    while n > 1:
        n = -(-n // fanin)
        d += 1
    return d


def build_tree(nleaves: int, leaf, node, fanin: int = FANIN):
    """dsk, root: leaves ('x', i) = leaf(i); ('s', level, j) = node([child keys])."""
    dsk = {}
    keys = []
    for i in range(nleaves):
        k = ("x", i)
        dsk[k] = leaf(i)
        keys.append(k)
    level = 0
    while len(keys) > 1:
        level += 1
        nxt = []
        for j in range(0, len(keys), fanin):
            k = ("s", level, j // fanin)
            dsk[k] = node(keys[j:j + fanin])
            nxt.append(k)
        keys = nxt
    return dsk, keys[0]


def c_tree(n_tasks: int, K, node_form: str = "list"):
    nl = leaves_for(n_tasks)
    ones, ksum = K.ones, K.sum
    if node_form == "list":
        dsk, root = build_tree(nl, lambda i: (ones, 4), lambda ch: (ksum, ch))
    else:
        dsk, root = build_tree(nl, lambda i: (ones, 4), lambda ch: (ksum, *ch))
    return dsk, root, 4.0 * nl


def py_tree(n_tasks: int):
    nl = leaves_for(n_tasks)
    dsk, root = build_tree(nl, lambda i: (one,), lambda ch: (add_many, *ch))
    return dsk, root, nl


def mem_tree(nleaves: int, leaf_bytes: int, K, fanin: int = FANIN):
    n = leaf_bytes // 8
    ones, ksum = K.ones, K.sum
    dsk, root = build_tree(nleaves, lambda i: (ones, n), lambda ch: (ksum, ch), fanin)
    return dsk, root, float(n) * nleaves


def as_float(x):
    try:
        return float(x)
    except Exception:
        import numpy as np
        return float(np.asarray(x))


# --------------------------------------------------------------------------
# parts a and b: per-task overhead
# --------------------------------------------------------------------------
def time_get(call, build, n_tasks, repeat, label):
    dsk, root, expected = build(n_tasks)
    n = len(dsk)
    H.log(f"{label}: {n:,} tasks, root {root}")
    t = H.best_of(lambda: call(dsk, root), repeat, log=H.log, label=label)
    got = as_float(t.result)
    ok = math.isclose(got, expected, rel_tol=1e-9)
    if not ok:
        H.log(f"!! {label}: wrong result {got!r}, expected {expected!r}")
    del dsk
    return {"tasks": n, "best_s": t.best, "times_s": t.times, "per_task_s": t.best / n,
            "result_ok": ok, "result": got, "expected": expected}


def overhead_part(name, build, cd_call, dk_call, big_n, small_n, dask_n, repeat,
                  budget_s, fallback_n):
    out = {}
    out["cdask_small"] = time_get(cd_call, build, small_n, repeat, f"[{name}] cdask {small_n:,}")
    est = out["cdask_small"]["per_task_s"] * big_n
    n = big_n
    if est > budget_s and fallback_n < big_n:
        n = max(small_n, fallback_n)
        H.log(f"[{name}] cdask at {big_n:,} tasks would take ~{est:.0f} s per run; using {n:,}")
    if n == small_n:
        out["cdask_big"] = out["cdask_small"]
    else:
        out["cdask_big"] = time_get(cd_call, build, n, repeat, f"[{name}] cdask {n:,}")
    out["dask"] = time_get(dk_call, build, dask_n, repeat, f"[{name}] dask {dask_n:,}")
    return out


def record_overhead(getter, K, n_tasks, repeat, workers, pass_workers, node_form="list"):
    """get(record=True) against get() on the same C tree, interleaved so that
    the machine's load drifts alike over both (see the docstring, part a)."""
    import cdask
    dsk, root, expected = c_tree(n_tasks, K, node_form)
    n = len(dsk)
    kw = {"num_workers": workers} if pass_workers else {}
    plain, rec, read = [], [], []
    cpu = {False: [], True: []}      # process CPU seconds: less swayed by other load
    ok = True
    H.log(f"[record] cdask {n:,} tasks, record=True against without, {repeat} pairs")
    for i in range(max(1, repeat)):
        for record in (False, True):
            st = cdask.Stats()
            c0 = time.process_time()
            t = H.best_of(lambda: getter(dsk, root, stats=st, record=record, **kw), 1)
            cpu[record].append(time.process_time() - c0)
            ok = ok and math.isclose(as_float(t.result), expected, rel_tol=1e-9)
            (rec if record else plain).append(t.best)
            if record:
                t0 = time.perf_counter()
                got = len(st.records), len(st.memory)
                read.append(time.perf_counter() - t0)
                ok = ok and got == (n, n)
            del st
        H.log(f"  [record] pair {i + 1}/{repeat}: without {plain[-1]:.3f} s "
              f"(CPU {cpu[False][-1]:.3f} s), record=True {rec[-1]:.3f} s "
              f"(CPU {cpu[True][-1]:.3f} s), reading the records {read[-1]:.3f} s")
    del dsk
    return {"tasks": n, "plain_s": plain, "record_s": rec, "read_s": read,
            "plain_cpu_s": cpu[False], "record_cpu_s": cpu[True],
            "ratio": min(rec) / min(plain), "cpu_ratio": min(cpu[True]) / min(cpu[False]),
            "result_ok": ok}


# --------------------------------------------------------------------------
# part c: peak memory, one fresh child per contender
# --------------------------------------------------------------------------
def mem_child(params: dict, rss_now, reset_peak, peak_now, report):
    """Runs inside the child process (see run_mem)."""
    import gc
    import numpy  # noqa: F401  - part of the baseline for both contenders
    getter = resolve(params["getter"])
    K, standin = load_kernels(params["kernels"])
    stats = None
    kw = {"num_workers": params["workers"]} if params["pass_workers"] else {}
    if params["getter"].startswith("cdask."):
        try:
            import cdask
            stats = cdask.Stats()
            kw["stats"] = stats
        except Exception:
            stats = None
    dsk, root, expected = mem_tree(params["leaves"], params["leaf_bytes"], K, params["fanin"])
    gc.collect()
    baseline = rss_now()
    reset_ok = reset_peak()
    t0 = time.perf_counter()
    result = getter(dsk, root, **kw)
    elapsed = time.perf_counter() - t0
    peak = peak_now() if reset_ok else None
    got = as_float(result)
    report(baseline=baseline, peak_hwm=peak, reset_ok=reset_ok, elapsed=elapsed,
           result=got, expected=expected, tasks=len(dsk),
           sched_peak_bytes=None if stats is None else int(stats.peak_bytes),
           result_ok=math.isclose(got, expected, rel_tol=1e-9))


def run_mem(label, params, timeout, env=None):
    code = (f"import sys; sys.path.insert(0, {HERE!r})\n"
            f"import bench_scheduler as B\n"
            f"B.mem_child({params!r}, rss_now, reset_peak, peak_now, report)\n")
    H.log(f"[memory] {label}: {params['leaves']} leaves x {params['leaf_bytes'] / 2**20:g} MiB "
          f"in a fresh child ...")
    r = H.run_child(code, timeout=timeout, env=env)
    if not r.ok:
        H.log(f"!! [memory] {label} child failed (rc {r.returncode}):\n{r.stderr[-3000:]}")
        return {"ok": False, "returncode": r.returncode, "stderr_tail": r.stderr[-3000:]}
    rep = r.report
    peak = rep["peak_hwm"] if rep.get("reset_ok") and rep.get("peak_hwm") else r.maxrss
    res = {"ok": True, "baseline_bytes": rep["baseline"], "peak_bytes": peak,
           "maxrss_bytes": r.maxrss, "delta_bytes": peak - rep["baseline"],
           "delta_maxrss_bytes": r.maxrss - rep["baseline"], "peak_source":
           "VmHWM reset before the run" if rep.get("reset_ok") else "wait4 ru_maxrss",
           "elapsed_s": rep["elapsed"], "result_ok": rep["result_ok"], "tasks": rep["tasks"],
           "sched_peak_bytes": rep.get("sched_peak_bytes"), "env": env or {}}
    H.log(f"[memory] {label}: +{res['delta_bytes'] / 2**20:.1f} MiB above baseline "
          f"({rep['baseline'] / 2**20:.1f} MiB), {rep['elapsed']:.2f} s")
    return res


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def both(*flags):
    if any(f is None for f in flags):
        return None
    return all(flags)


def build_report(R: dict) -> str:
    P = R["params"]
    lines = []
    title = "Scheduler: per-task overhead and peak memory (`benchmarks/bench_scheduler.py`)"
    lines.append(f"## {title}\n")
    if R["standin_getter"] or R["standin_kernels"]:
        lines.append("> **STAND-IN RUN — these are not cdask figures.** "
                     f"`cdask` column = `{P['cdask_get']}`"
                     + (", kernels = NumPy stand-ins" if R["standin_kernels"] else "") + ".\n")
    lines.append(
        f"cdask getter `{P['cdask_get']}`, dask getter `{P['dask_get']}`; kernels "
        f"`{P['kernels']}`{' (NumPy stand-ins)' if R['standin_kernels'] else ''}; "
        f"workers {P['workers']}; fan-in {FANIN}; best of {P['repeat']}; each timing is one whole "
        f"`get(dsk, root)` call (graph compile + run), gc disabled during the call; "
        f"µs/task = best time / number of tasks.\n")
    rows = []
    fig = {}
    for part, label, t_us, t_ratio in (("c", "C-kernel tasks", 0.5, 100),
                                       ("py", "Python tasks", 5.0, 10)):
        d = R.get(part)
        if not d:
            continue
        cb, cs, dk = d["cdask_big"], d["cdask_small"], d["dask"]
        r_big = H.ratio(dk["per_task_s"], cb["per_task_s"])
        r_small = H.ratio(dk["per_task_s"], cs["per_task_s"])
        us_ok = cb["per_task_s"] * 1e6 <= t_us
        fig[part] = {"cdask_us": cb["per_task_s"] * 1e6, "dask_us": dk["per_task_s"] * 1e6,
                     "ratio": r_big, "cdask_small_us": cs["per_task_s"] * 1e6,
                     "ratio_like_for_like": r_small}
        bad = "" if (cb["result_ok"] and cs["result_ok"] and dk["result_ok"]) else " (WRONG RESULT)"
        rows.append([f"{label}: µs/task, cdask {cb['tasks']:,} tasks vs dask {dk['tasks']:,} "
                     f"(extrapolated){bad}",
                     H.fmt_us(cb["per_task_s"]), H.fmt_us(dk["per_task_s"]), H.fmt_ratio(r_big),
                     f"≤ {t_us:g} µs and ≥ {t_ratio}×",
                     f"µs {H.yes_no(us_ok)}, ratio {H.yes_no(r_big is not None and r_big >= t_ratio)}"])
        if cs is not cb:
            rows.append([f"{label}: µs/task, like-for-like ({cs['tasks']:,} vs {dk['tasks']:,} tasks)",
                         H.fmt_us(cs["per_task_s"]), H.fmt_us(dk["per_task_s"]),
                         H.fmt_ratio(r_small), f"≥ {t_ratio}×",
                         H.yes_no(r_small is not None and r_small >= t_ratio)])
        if part == "c" and R.get("c_alt"):
            x = R["c_alt"]
            form = "`(sum, c1, …, c8)`" if x["node_form"] == "varargs" else "`(sum, [c1, …, c8])`"
            rows.append([f"{label}: µs/task, nodes as {form} instead, cdask only, "
                         f"{x['tasks']:,} tasks{'' if x['result_ok'] else ' (WRONG RESULT)'}",
                         H.fmt_us(x["per_task_s"]), "", "", f"≤ {t_us:g} µs",
                         H.yes_no(x["per_task_s"] * 1e6 <= t_us)])
    rc = R.get("record")
    if rc:
        fig["record_ratio"] = rc["ratio"]
        fig["record_cpu_ratio"] = rc["cpu_ratio"]
        rows.append([f"C-kernel tasks: `get(record=True)` / `get()`, {rc['tasks']:,} tasks, "
                     f"best of {len(rc['record_s'])} interleaved pairs "
                     f"(records read after: {H.fmt_s(min(rc['read_s']))})"
                     f"{'' if rc['result_ok'] else ' (WRONG RESULT)'}",
                     f"{rc['ratio']:.3f}", "", "", "≤ 1.03", H.yes_no(rc["ratio"] <= 1.03)])
        rows.append(["Same, process CPU time (both workers and the caller): less swayed by "
                     "other load on the machine",
                     f"{rc['cpu_ratio']:.3f}", "", "", "≤ 1.03", H.yes_no(rc["cpu_ratio"] <= 1.03)])
    m = R.get("mem")
    if m:
        bound = m["bound_bytes"]
        cd, dk = m["cdask"], m["dask"]
        cd_d = cd["delta_bytes"] if cd.get("ok") else None
        dk_d = dk["delta_bytes"] if dk.get("ok") else None
        fig["mem"] = {"cdask_mib": None if cd_d is None else cd_d / 2**20,
                      "dask_mib": None if dk_d is None else dk_d / 2**20,
                      "bound_mib": bound / 2**20}
        bad = "" if (cd.get("result_ok", True) and dk.get("result_ok", True)) else " (WRONG RESULT)"
        rows.append([f"Peak RSS above baseline: {m['leaves']} leaves × {m['leaf_mib']:g} MiB "
                     f"({m['leaves'] * m['leaf_mib'] / 1024:.2f} GiB if all held), fan-in {m['fanin']}{bad}",
                     H.fmt_mib(cd_d) if cd.get("ok") else "failed",
                     H.fmt_mib(dk_d) if dk.get("ok") else "failed",
                     H.fmt_ratio(H.ratio(dk_d, cd_d)),
                     f"cdask ≤ {H.fmt_mib(bound)}",
                     H.yes_no(None if cd_d is None else cd_d <= bound)])
        cdf, dkf = m.get("cdask_fixed_mmap"), m.get("dask_fixed_mmap")
        if cdf is not None and dkf is not None:
            cf = cdf["delta_bytes"] if cdf.get("ok") else None
            df = dkf["delta_bytes"] if dkf.get("ok") else None
            fig["mem"].update(cdask_fixed_mmap_mib=None if cf is None else cf / 2**20,
                              dask_fixed_mmap_mib=None if df is None else df / 2**20)
            rows.append(["Same, with `MALLOC_MMAP_THRESHOLD_=131072` (freed leaves go back to "
                         "the OS, so RSS tracks live data)",
                         H.fmt_mib(cf) if cdf.get("ok") else "failed",
                         H.fmt_mib(df) if dkf.get("ok") else "failed",
                         H.fmt_ratio(H.ratio(df, cf)), f"cdask ≤ {H.fmt_mib(bound)}",
                         H.yes_no(None if cf is None else cf <= bound)])
        sp = cd.get("sched_peak_bytes") if cd.get("ok") else None
        if sp is not None:
            fig["mem"]["cdask_stats_peak_mib"] = sp / 2**20
            rows.append(["cdask's own count: `Stats.peak_bytes` (bytes of chunks held at once)",
                         H.fmt_mib(sp), "", "", f"≤ {H.fmt_mib(bound)}", H.yes_no(sp <= bound)])
    R["figures"] = fig
    lines.append(H.markdown_table(["figure", "cdask", "dask", "ratio (dask/cdask)", "target", "met?"],
                                  rows, "lrrrll"))
    lines.append("")
    # details
    drows = []
    for part, label in (("c", "C-kernel tree"), ("py", "Python tree")):
        d = R.get(part)
        if not d:
            continue
        seen = set()
        for who, key in (("cdask", "cdask_big"), ("cdask", "cdask_small"), ("dask", "dask")):
            x = d[key]
            if id(x) in seen:
                continue
            seen.add(id(x))
            drows.append([label, who, f"{x['tasks']:,}", H.fmt_s(x["best_s"]),
                          ", ".join(f"{t:.3f}" for t in x["times_s"]), H.fmt_us(x["per_task_s"]),
                          "ok" if x["result_ok"] else "**WRONG**"])
    if drows:
        lines.append("Timings (whole `get` call):\n")
        lines.append(H.markdown_table(["graph", "contender", "tasks", "best", "all runs (s)",
                                       "µs/task", "result"], drows, "llrrlrl"))
        lines.append("")
    if m:
        mrows = []
        for who, key, alloc in (("cdask", "cdask", "default"), ("dask", "dask", "default"),
                                ("cdask", "cdask_fixed_mmap", "mmap threshold 128 KiB"),
                                ("dask", "dask_fixed_mmap", "mmap threshold 128 KiB")):
            x = m.get(key)
            if x is None:
                continue
            if not x.get("ok"):
                mrows.append([who, alloc, "failed", "", "", "", "", ""])
                continue
            sp = x.get("sched_peak_bytes")
            mrows.append([who, alloc, H.fmt_mib(x["baseline_bytes"]), H.fmt_mib(x["peak_bytes"]),
                          H.fmt_mib(x["delta_bytes"]), "" if sp is None else H.fmt_mib(sp), H.fmt_s(x["elapsed_s"]), "ok" if x["result_ok"] else "**WRONG**"])
        lines.append(f"Peak memory, one fresh child process per contender ({m['tasks']:,} tasks, "
                     f"depth {m['depth']}, workers {P['workers']}; bound = (workers + depth + 1) × L "
                     f"+ 50 MiB = ({P['workers']} + {m['depth']} + 1) × {m['leaf_mib']:g} MiB + 50 MiB "
                     f"= {H.fmt_mib(m['bound_bytes'])}; baseline = RSS after imports and graph construction; "
                     f"peak = the child's VmHWM, reset just before the run):\n")
        lines.append(H.markdown_table(["contender", "glibc malloc", "baseline RSS", "peak RSS",
                                       "peak − baseline", "Stats.peak_bytes", "run time", "result"],
                                      mrows, "llrrrrrl"))
        lines.append("")
        f = m["fanin"]
        lines.append(f"Note: each `sum` node needs all {f} of its inputs alive at once, so no "
                     f"schedule can go below ~{f} × L on this graph.  cdask allocates chunks of 1 MiB "
                     f"or more with their own mapping, so freeing one returns its pages at once; "
                     f"with glibc's malloc a freed multi-MiB block may stay resident, which the "
                     f"`MALLOC_MMAP_THRESHOLD_` run separates from scheduling.\n")
    return "\n".join(lines)


# --------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    ap.add_argument("--json", metavar="OUT", help="also write every raw figure to OUT")
    ap.add_argument("--cdask-get", default="cdask.get",
                    help="dotted name of the getter in the cdask column (stand-in: dask.get)")
    ap.add_argument("--dask-get", default="dask.threaded.get")
    ap.add_argument("--kernels", default="cdask.kernels",
                    help="module with ones/sum kernels, or 'standin' for NumPy stand-ins")
    ap.add_argument("--workers", type=int, default=None, help="num_workers (default: cores)")
    ap.add_argument("--repeat", type=int, default=None, help="best of N (default 3, quick 1)")
    ap.add_argument("--c-tasks", type=int, default=None, help="cdask C-kernel tree size (1,000,000)")
    ap.add_argument("--py-tasks", type=int, default=None, help="cdask Python tree size (1,000,000)")
    ap.add_argument("--dask-tasks", type=int, default=None, help="dask tree size (100,000)")
    ap.add_argument("--py-fallback-tasks", type=int, default=200_000,
                    help="cdask Python tree size if --py-tasks would exceed --budget")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds one cdask big-tree run may take before falling back")
    ap.add_argument("--node-form", choices=("list", "varargs"), default="list",
                    help="C tree nodes as (sum, [children]) or (sum, c1, c2, ...)")
    ap.add_argument("--mem-leaves", type=int, default=None, help="memory graph leaves (400)")
    ap.add_argument("--mem-leaf-mib", type=float, default=8.0, help="MiB per leaf (8)")
    ap.add_argument("--mem-fanin", type=int, default=2,
                    help="fan-in of the memory graph's tree (2: a binary tree, for which the "
                         "bound (workers + depth + 1) x L is meaningful; with fan-in f a node "
                         "alone holds f inputs)")
    ap.add_argument("--mem-timeout", type=float, default=600.0)
    ap.add_argument("--no-malloc-diag", action="store_true",
                    help="skip the second memory run with glibc's mmap threshold fixed")
    ap.add_argument("--record-repeat", type=int, default=None,
                    help="pairs of record=True / without (default 5, quick 2)")
    ap.add_argument("--only", default="c,record,py,mem",
                    help="comma list of parts: c, record, py, mem")
    a = ap.parse_args(argv)

    quick = a.quick
    repeat = a.repeat or (1 if quick else 3)
    c_n = a.c_tasks or (100_000 if quick else 1_000_000)
    py_n = a.py_tasks or (100_000 if quick else 1_000_000)
    dask_n = a.dask_tasks or (20_000 if quick else 100_000)
    mem_leaves = a.mem_leaves or (64 if quick else 400)
    workers = a.workers or len(os.sched_getaffinity(0))
    parts = {p.strip() for p in a.only.split(",") if p.strip()}

    cd_getter = resolve(a.cdask_get)
    dk_getter = resolve(a.dask_get)
    standin_getter = not (a.cdask_get.startswith("cdask.")
                          or (getattr(cd_getter, "__module__", None) or "").startswith("cdask"))
    # pass num_workers to cdask.get and dask.threaded.get; dask.get (sync) refuses it
    cd_pass = not (getattr(cd_getter, "__module__", None) or "").startswith("dask.local")
    dk_pass = not (getattr(dk_getter, "__module__", None) or "").startswith("dask.local")
    K, standin_kernels = load_kernels(a.kernels)
    cd_call = make_call(cd_getter, cd_pass, workers)
    dk_call = make_call(dk_getter, dk_pass, workers)

    params = {"quick": quick, "repeat": repeat, "workers": workers, "cdask_get": a.cdask_get,
              "dask_get": a.dask_get, "kernels": a.kernels, "c_tasks": c_n, "py_tasks": py_n,
              "dask_tasks": dask_n, "node_form": a.node_form, "fanin": FANIN,
              "argv": sys.argv[1:] if argv is None else list(argv)}
    R = {"params": params, "machine": H.machine_info(), "standin_getter": standin_getter,
         "standin_kernels": standin_kernels, "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    if standin_getter or standin_kernels:
        H.log("!! STAND-IN RUN: the 'cdask' column is not cdask")

    if "c" in parts:
        R["c"] = overhead_part("C", lambda n: c_tree(n, K, a.node_form), cd_call, dk_call,
                               c_n, min(dask_n, c_n), dask_n, repeat, a.budget, c_n)
        other = "varargs" if a.node_form == "list" else "list"
        R["c_alt"] = time_get(cd_call, lambda n: c_tree(n, K, other), c_n, repeat,
                              f"[C, {other} nodes] cdask {c_n:,}")
        R["c_alt"]["node_form"] = other
    if "record" in parts and not standin_getter:
        R["record"] = record_overhead(cd_getter, K, c_n, a.record_repeat or (2 if quick else 5),
                                      workers, cd_pass, a.node_form)
    if "py" in parts:
        R["py"] = overhead_part("Py", py_tree, cd_call, dk_call, py_n, min(dask_n, py_n), dask_n,
                                repeat, a.budget, a.py_fallback_tasks)
    if "mem" in parts:
        leaf_bytes = int(a.mem_leaf_mib * 2 ** 20) // 8 * 8
        mf = a.mem_fanin
        depth = tree_depth(mem_leaves, mf)
        common = {"leaves": mem_leaves, "leaf_bytes": leaf_bytes, "fanin": mf,
                  "workers": workers, "kernels": a.kernels}
        R["mem"] = {
            "leaves": mem_leaves, "leaf_bytes": leaf_bytes, "leaf_mib": leaf_bytes / 2 ** 20,
            "depth": depth, "tasks": tree_size(mem_leaves, mf), "fanin": mf,
            "bound_bytes": (workers + depth + 1) * leaf_bytes + 50 * 2 ** 20,
            "cdask": run_mem("cdask", dict(common, getter=a.cdask_get, pass_workers=cd_pass),
                             a.mem_timeout),
            "dask": run_mem("dask", dict(common, getter=a.dask_get, pass_workers=dk_pass),
                            a.mem_timeout),
        }
        if not a.no_malloc_diag:
            env = {"MALLOC_MMAP_THRESHOLD_": "131072"}
            R["mem"]["diag_env"] = env
            R["mem"]["cdask_fixed_mmap"] = run_mem(
                "cdask, MALLOC_MMAP_THRESHOLD_=131072",
                dict(common, getter=a.cdask_get, pass_workers=cd_pass), a.mem_timeout, env)
            R["mem"]["dask_fixed_mmap"] = run_mem(
                "dask, MALLOC_MMAP_THRESHOLD_=131072",
                dict(common, getter=a.dask_get, pass_workers=dk_pass), a.mem_timeout, env)

    md = build_report(R)
    print(md)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(R, f, indent=2, default=str)
        H.log(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
