"""Rechunk and transpose of an on-disk matrix larger than the memory budget.

    python benchmarks/bench_rechunk.py                      # 16000 x 16000 float64 (2 GB), 512MB budget
    python benchmarks/bench_rechunk.py --n 32000 --memory-limit 2GB
    python benchmarks/bench_rechunk.py --quick              # 8000 x 8000, 128MB budget

The matrix is made with cdask (``cdask.random.default_rng(0).random((n, n),
chunks=(rows, n)).to_npy(path)``) in a scratch directory, deleted at the
end.  Its blocks are row slabs of ``--rows`` rows (default 500: 64 MB).  Four
passes, each result written to a second ``.npy`` (to_npy for cdask,
``da.store`` into ``np.lib.format.open_memmap`` for dask, assignment into one
for NumPy):

- ``rechunk``: ``x.rechunk((n, rows))``, row slabs to column slabs.  The
  source is a file, so every column slab can be read from it again.
- ``(x + 1).rechunk``: the same of a computed matrix.  Every column slab needs
  a piece of every row slab, and computed slabs cannot be read again: the
  whole matrix is held at once, so what passes the budget is spilled to disk.
- ``x.T`` and ``(x + 1).T``: transposes (column slabs of the target).

Each contender runs in a child process of its own, with the input evicted
from the page cache and earlier writes written back first; peak resident memory is the child's VmHWM over the
pass (reset after imports and graph building).  cdask's bound is its memory
budget + 300 MB; dask and NumPy have no budget and are shown for reference.
stdout carries only the markdown report; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402
from bench_ooc import evict, settle  # noqa: E402

PASSES = ["rechunk", "(x + 1).rechunk", "x.T", "(x + 1).T"]

_CHILD = r"""
import sys, time, numpy as np
who, task, path, out, limit, rows, spill = sys.argv[1:8]
rows = int(rows)
mm = np.load(path, mmap_mode="r")
n = mm.shape[0]
spilled = None
if who == "cdask":
    import cdask
    cdask.config.set(memory_limit=limit, temporary_directory=spill)
    x = cdask.from_npy(path, chunks=(rows, n))
    e = {"rechunk": lambda: x.rechunk((n, rows)), "(x + 1).rechunk": lambda: (x + 1).rechunk((n, rows)),
         "x.T": lambda: x.T, "(x + 1).T": lambda: (x + 1).T}[task]()
    st = cdask.Stats()
    base = rss_now(); reset_peak(); t0 = time.perf_counter()
    e.to_npy(out, stats=st)
    spilled = st.spilled_bytes
elif who == "dask":
    import dask, dask.array as da

    class Reader:
        # dask.array.from_array copies an ndarray (a memmap too) whole
        def __init__(self, a):
            self.a, self.shape, self.dtype, self.ndim = a, a.shape, a.dtype, a.ndim

        def __getitem__(self, idx):
            return np.asarray(self.a[idx])

    x = da.from_array(Reader(mm), chunks=(rows, n))
    e = {"rechunk": lambda: x.rechunk((n, rows)), "(x + 1).rechunk": lambda: (x + 1).rechunk((n, rows)),
         "x.T": lambda: x.T, "(x + 1).T": lambda: (x + 1).T}[task]()
    target = np.lib.format.open_memmap(out, mode="w+", dtype=e.dtype, shape=e.shape)
    base = rss_now(); reset_peak(); t0 = time.perf_counter()
    da.store(e, target)
    target.flush()
    del target
else:
    target = np.lib.format.open_memmap(out, mode="w+", dtype=mm.dtype, shape=mm.shape)
    base = rss_now(); reset_peak(); t0 = time.perf_counter()
    src = {"rechunk": mm, "(x + 1).rechunk": None, "x.T": mm.T, "(x + 1).T": None}[task]
    if src is None:
        r = mm + 1
        target[...] = r.T if task.endswith(".T") else r
        del r
    else:
        target[...] = src
    target.flush()
    del target
t = time.perf_counter() - t0
report(time=t, peak=peak_now(), base=base, spilled=spilled)
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=None, help="matrix side (default 16000)")
    ap.add_argument("--rows", type=int, default=None, help="rows per block (default 500)")
    ap.add_argument("--memory-limit", default=None, help="cdask's budget (default 512MB)")
    ap.add_argument("--quick", action="store_true", help="8000 x 8000, 128MB budget")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--no-numpy", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import cdask
    from cdask.array.chunks import parse_bytes

    n = a.n or (8000 if a.quick else 16000)
    rows = a.rows or (250 if a.quick else 500)
    limit = parse_bytes(a.memory_limit or ("128MB" if a.quick else "512MB"))
    block = rows * n * 8
    size = n * n * 8
    workdir = tempfile.mkdtemp(prefix="cdask-rechunk-", dir=a.dir or tempfile.gettempdir())
    src, dst = os.path.join(workdir, "x.npy"), os.path.join(workdir, "y.npy")
    spill = os.path.join(workdir, "spill")
    os.mkdir(spill)
    contenders = ["cdask"] + ([] if a.no_dask else ["dask"]) + ([] if a.no_numpy else ["numpy"])
    results = {}
    try:
        H.log(f"making a {n} x {n} float64 matrix ({size / 1e9:.2f} GB) in {src}")
        with cdask.config.set(memory_limit=limit):
            cdask.random.default_rng(0).random((n, n), chunks=(rows, n)).to_npy(src)
        for task in PASSES:
            for who in contenders:
                evict(src)
                settle()
                H.log(f"{task}: {who}")
                r = H.run_child(_CHILD, args=[who, task, src, dst, str(limit), str(rows), spill])
                if not r.ok:
                    H.log(r.stderr[-3000:])
                results[(task, who)] = r.report if r.ok else None
                left = os.listdir(spill)
                if who == "cdask" and left:
                    H.log(f"spill files left behind: {left}")
                    results[(task, who)] = None
                if os.path.exists(dst):
                    os.unlink(dst)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    bound = limit + 300 * 2**20
    rows_out = []
    for task in PASSES:
        base_t = (results.get((task, "cdask")) or {}).get("time")
        for who in contenders:
            rep = results.get((task, who))
            if rep is None:
                rows_out.append([task, who, "failed", "", "", "", ""])
                continue
            peak = rep["peak"] - rep["base"]
            ok = H.yes_no(peak <= bound) if who == "cdask" else ""
            sp = H.fmt_mib(rep["spilled"]) if rep.get("spilled") is not None else ""
            rel = "1.00" if who == "cdask" else H.fmt_ratio(H.ratio(rep["time"], base_t))
            rows_out.append([task, who, H.fmt_s(rep["time"]), rel,
                             f"{H.fmt_mib(peak)} {ok}".strip(), f"{peak / block:.1f}", sp])
    table = H.markdown_table(
        ["pass", "contender", "time", "time ÷ cdask's", "peak RSS (cdask ≤ budget + 300 MB)",
         "peak in blocks", "spilled"], rows_out, align="llrrlrr")
    out = [f"## Rechunk and transpose of a matrix on disk (`benchmarks/bench_rechunk.py`)", "",
           f"A {n} × {n} float64 `.npy` ({size / 1e9:.2f} GB, {size / limit:.1f} × cdask's memory "
           f"budget of {H.fmt_mib(limit)}) in row blocks of {rows} rows ({H.fmt_mib(block)}); "
           f"each result written to a second `.npy`; page cache evicted before every pass; "
           f"peak RSS of each contender's own process over the pass.", "", table, "",
           f"- Machine: {H.machine_line()}"]
    print("\n".join(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{t}/{w}": v for (t, w), v in results.items()}, f, indent=1)
    return 0 if all(results.get((t, "cdask")) for t in PASSES) else 1


if __name__ == "__main__":
    sys.exit(main())
