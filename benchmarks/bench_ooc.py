"""Out-of-core benchmarks: a .npy larger than memory, read and written from disk.

    python benchmarks/bench_ooc.py                   # size: min(1.3 x RAM, 0.4 x free disk)
    python benchmarks/bench_ooc.py --size 4GB        # any size
    python benchmarks/bench_ooc.py --quick           # 2 GB

The input is made with cdask itself (``cdask.random.default_rng(0).random(n)
.to_npy(path)``, uniform in [0, 1), streamed block by block) in a scratch
directory and deleted at the end.  Uniform and non-negative because NumPy's
float64 ``power`` loop costs ~200 ns per negative base (~15 ns per positive
one): over mixed-sign data the store pass would measure ``pow``, not the disk.  Then, each contender in a child process of its own, with the
file evicted from the page cache before every pass
(``posix_fadvise(POSIX_FADV_DONTNEED)``) and the previous pass's dirty data
written back first (``settle``: sync, then wait for /proc/meminfo's Dirty +
Writeback to drain):

a. ``mean(x[x > 0])`` - cdask on ``from_npy``, dask on ``np.memmap``
   (``dask.array.from_array``, threaded scheduler, default chunks).
   Target: cdask at least 95% of a direct-I/O read of the same file
   (``dd iflag=direct``, measured in the same run).
b. ``((x + 1) * 2) ** 3`` of a second input (``--store-size``, default
   6.4 GB) stored to a third ``.npy``, timed until it is on disk - cdask
   ``to_npy`` (which returns once its data is synced), dask ``da.store`` into
   ``np.lib.format.open_memmap`` then its ``flush`` (``msync``).  Target: at
   least 90% of a direct-I/O copy of that input
   (``dd iflag=direct oflag=direct conv=fsync``).

cdask's passes run ``--repeat`` times (default 2), each from a cold cache
after the writeback of the one before has drained; the table gives the
best time and the spread.

Peak resident memory of each child (VmHWM, reset after imports) is printed
beside the bound: cdask's memory budget (``--memory-limit``, default 2GB)
+ 300 MB.

stdout carries only the markdown report (run.py collects it; it passes
--quick through --only ooc): progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402


def evict(path):
    """Drop the file's pages from the page cache (written data synced first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def settle(limit=64 << 20, timeout=60.0):
    """Wait until the kernel has written back what earlier passes left dirty
    (and has had a moment for freed extents), so that no pass pays for the
    previous one's writeback: sync, then poll /proc/meminfo's Dirty +
    Writeback down to `limit` bytes."""
    os.sync()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        kb = {}
        with open("/proc/meminfo") as f:
            for line in f:
                k, v = line.split(":", 1)
                kb[k] = int(v.split()[0])
        if (kb.get("Dirty", 0) + kb.get("Writeback", 0)) * 1024 <= limit:
            break
        time.sleep(0.2)
    time.sleep(1.0)


def dd(args):
    t0 = time.perf_counter()
    subprocess.run(["dd", "bs=16M", "status=none"] + args, check=True)
    return time.perf_counter() - t0


_CHILD = r"""
import sys, time, numpy as np
who, task, path, out, limit = sys.argv[1:6]
if who == "cdask":
    import cdask
    cdask.config.set(memory_limit=limit)
    x = cdask.from_npy(path)
else:
    import dask, dask.array as da
    mm = np.load(path, mmap_mode="r")

    class Reader:
        # dask.array.from_array copies an np.ndarray (a memmap too) whole
        # before chunking it; an array-like that only slices keeps it lazy
        def __init__(self, a):
            self.a, self.shape, self.dtype, self.ndim = a, a.shape, a.dtype, a.ndim

        def __getitem__(self, idx):
            return np.asarray(self.a[idx])

    x = da.from_array(Reader(mm))
base = rss_now()
reset_peak()
t0 = time.perf_counter()
if task == "mean":
    r = float(x[x > 0].mean().compute())
else:
    e = ((x + 1) * 2) ** 3
    if who == "cdask":
        e.to_npy(out)
    else:
        target = np.lib.format.open_memmap(out, mode="w+", dtype=e.dtype, shape=e.shape)
        da.store(e, target)
        target.flush()
        del target
    r = None
t = time.perf_counter() - t0
report(time=t, peak=peak_now(), base=base, value=r)
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default=None, help="input size, e.g. 32GB (default: see above)")
    ap.add_argument("--quick", action="store_true", help="2 GB input")
    ap.add_argument("--memory-limit", default="2GB", help="cdask's memory budget")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--store-size", default="6.4GB",
                    help="size of the store pass's input (default 6.4GB; at most --size)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each cdask pass")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import numpy as np
    import cdask
    from cdask.array.chunks import parse_bytes

    base_dir = a.dir or tempfile.gettempdir()
    free = shutil.disk_usage(base_dir).free
    ram = cdask.config.machine_memory()
    if a.size:
        size = parse_bytes(a.size)
    elif a.quick:
        size = 2 * 10**9
    else:
        size = int(min(1.3 * ram, 0.4 * free))
    n = size // 8
    limit = parse_bytes(a.memory_limit)
    workdir = tempfile.mkdtemp(prefix="cdask-ooc-", dir=base_dir)
    src, dst = os.path.join(workdir, "x.npy"), os.path.join(workdir, "y.npy")
    n_store = min(n, parse_bytes(a.store_size) // 8)
    ssrc = src if n_store == n else os.path.join(workdir, "s.npy")
    rows = []
    res = {"size": n * 8, "store_size": n_store * 8, "ram": ram, "memory_limit": limit}
    try:
        H.log(f"making {n * 8 / 1e9:.1f} GB of float64 in {src} (cdask, streamed)")
        t0 = time.perf_counter()
        with cdask.config.set(memory_limit=limit):
            cdask.random.default_rng(0).random(n).to_npy(src)
            res["create_s"] = time.perf_counter() - t0
            if ssrc != src:
                H.log(f"making {n_store * 8 / 1e9:.1f} GB of float64 in {ssrc}")
                cdask.random.default_rng(1).random(n_store).to_npy(ssrc)
        evict(src)
        settle()
        t_read = dd([f"if={src}", "of=/dev/null", "iflag=direct"])
        evict(ssrc)
        settle()
        t_copy = dd([f"if={ssrc}", f"of={dst}", "iflag=direct", "oflag=direct", "conv=fsync"])
        os.unlink(dst)
        res.update(dd_read_s=t_read, dd_copy_s=t_copy)
        H.log(f"dd direct read {n * 8 / t_read / 1e9:.2f} GB/s, "
              f"copy {n_store * 8 / t_copy / 1e9:.2f} GB/s")
        contenders = ["cdask"] + ([] if a.no_dask else ["dask"])
        results = {}
        for task in ("mean", "store"):
            inp = src if task == "mean" else ssrc
            for who in contenders:
                runs = []
                for k in range(max(1, a.repeat) if who == "cdask" else 1):
                    evict(inp)
                    settle()
                    H.log(f"{task}: {who} run {k + 1}")
                    r = H.run_child(_CHILD, args=[who, task, inp, dst, str(limit)])
                    if not r.ok:
                        H.log(r.stderr[-3000:])
                    elif runs is not None:
                        runs.append(r.report)
                    if os.path.exists(dst):
                        os.unlink(dst)
                    if not r.ok:
                        runs = None
                        break
                results[(task, who)] = runs
        res["children"] = {f"{t}/{w}": v for (t, w), v in results.items()}
        gb, sgb = n * 8 / 1e9, n_store * 8 / 1e9
        bound = limit + 300 * 2**20
        for task, ref, size, frac, what in (("mean", t_read, gb, 0.95, "direct-I/O read"),
                                            ("store", t_copy, sgb, 0.90, "direct-I/O copy")):
            for who in contenders:
                runs = results.get((task, who))
                if not runs:
                    rows.append([task, who, "failed", "", "", "", "", "", ""])
                    continue
                times = [rep["time"] for rep in runs]
                t = min(times)
                eff = ref / t
                peak = max(rep["peak"] - rep["base"] for rep in runs)
                spread = (f"{H.fmt_s(min(times))}-{H.fmt_s(max(times))}" if len(times) > 1
                          else "")
                tgt = f"≥ {frac:.0%} of {what}" if who == "cdask" else ""
                met = H.yes_no(eff >= frac) if who == "cdask" else ""
                mem_ok = H.yes_no(peak <= bound) if who == "cdask" else ""
                rows.append([task, who, H.fmt_s(t), spread, f"{size / t:.2f} GB/s",
                             f"{eff:.0%}", tgt, met, f"{H.fmt_mib(peak)} {mem_ok}"])
        table = H.markdown_table(
            ["pass", "contender", "best time", "spread", "throughput", "÷ dd time", "target",
             "met", "peak RSS (≤ budget + 300 MB)"], rows, align="llrrrrlcl")
        vals = [(results.get(("mean", w)) or [None])[0] for w in contenders]
        out = ["## Out of core: a .npy larger than memory (`benchmarks/bench_ooc.py`)", "",
               f"Input of the mean: {gb:.1f} GB of float64 ({gb * 1e9 / ram:.2f} × RAM), made by "
               f"cdask in {H.fmt_s(res['create_s'])}; of the store: {sgb:.1f} GB; page cache "
               f"evicted and writeback drained before every pass; cdask memory budget "
               f"{H.fmt_mib(limit)}, best of {max(1, a.repeat)} runs (dask: 1).  Disk, same run: "
               f"direct-I/O read {gb / t_read:.2f} GB/s, direct-I/O copy to disk "
               f"{sgb / t_copy:.2f} GB/s (`dd bs=16M`, the copy with `conv=fsync`).",
               "", table, "",
               "- mean(x[x > 0]) values: " + ", ".join(
                   f"{w} {v['value']:.12g}" for w, v in zip(contenders, vals) if v),
               f"- Machine: {H.machine_line()}"]
        print("\n".join(out))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
