"""The main job, ``python -m cdask``, measured as a user runs it.

    python benchmarks/bench_main.py                # a 2 GB file (fits in the page cache)
    python benchmarks/bench_main.py --size 8GB
    python benchmarks/bench_main.py --big          # min(1.3 x RAM, 0.4 x free disk)
    python benchmarks/bench_main.py --quick        # 0.5 GB

Each pass runs ``python -m cdask`` in a child process and reads the figures
it prints; the child's peak resident memory comes from the kernel
(``os.wait4``), measured from outside.  In one run, on one file:

a. writing the input (``cdask.random`` + ``to_npy``, flushed to the file)
   against ``dd if=/dev/zero oflag=direct conv=fsync`` of the same size.
   Target: at least 80% of dd's speed.
b. ``x[x > 0].mean()`` on the page-cached file: cdask against NumPy (which
   the job runs in a child of its own).  Target: cdask at least 2x faster.
c. the same on the file evicted from the page cache
   (``posix_fadvise(DONTNEED)``), against ``dd iflag=direct`` reading it.
   Target: at least 80% of dd's speed (a file larger than RAM with --big).
   Peak RSS of the job (``--no-numpy``, so no NumPy child counts): under
   768 MB.

stdout carries only the markdown report; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402
from bench_ooc import dd, evict, settle  # noqa: E402

RSS_BOUND = 768 * 2 ** 20


def job(*args):
    """Run ``python -m cdask *args``: (its stdout, its peak RSS in bytes from
    the kernel, wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "cdask", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError("python -m cdask %s failed (exit %d)" % (" ".join(args), p.returncode))
    return out, ru.ru_maxrss * 1024, wall


def figures(out):
    """The job's printed figures: write seconds, cdask seconds, numpy seconds."""
    def num(pat):
        m = re.search(pat, out, re.M)
        return float(m.group(1)) if m else None
    return {"write_s": num(r"^wrote .* in ([0-9.]+) s"),
            "cdask_s": num(r"^cdask: \S+\s+in ([0-9.]+) s"),
            "numpy_s": num(r"^numpy: \S+\s+in ([0-9.]+) s"),
            "cdask_value": num(r"^cdask: (\S+)"),
            "numpy_value": num(r"^numpy: (\S+)")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default=None, help="file size, e.g. 8GB (default 2GB)")
    ap.add_argument("--big", action="store_true", help="min(1.3 x RAM, 0.4 x free disk)")
    ap.add_argument("--quick", action="store_true", help="0.5 GB")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of the page-cached pass")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import cdask
    from cdask.array.chunks import parse_bytes

    base_dir = a.dir or tempfile.gettempdir()
    ram = cdask.config.machine_memory()
    if a.size:
        size = parse_bytes(a.size)
    elif a.big:
        size = int(min(1.3 * ram, 0.4 * shutil.disk_usage(base_dir).free))
    elif a.quick:
        size = 5 * 10 ** 8
    else:
        size = 2 * 10 ** 9
    n = size // 8
    size = 8 * n
    gb = size / 1e9
    workdir = tempfile.mkdtemp(prefix="cdask-main-", dir=base_dir)
    src = os.path.join(workdir, "x.npy")
    res = {"size": size, "ram": ram}
    try:
        # a. writing, against dd's direct write of as many bytes
        settle()
        blk = 16 * 2 ** 20
        zeros = os.path.join(workdir, "zeros.bin")
        H.log(f"dd: direct write of {gb:.2f} GB")
        t_ddw = dd(["if=/dev/zero", f"of={zeros}", f"count={-(-size // blk)}",
                    "oflag=direct", "conv=fsync"])
        os.unlink(zeros)
        settle()
        fits = size < 0.5 * ram
        # larger than RAM, NumPy's pass would read the whole file again:
        # bench_ooc.py compares with NumPy there
        H.log("job: write the input, then mean(x[x > 0]) with cdask"
              + (" and NumPy" if fits else ""))
        out, _, _ = job("--size", str(n), "--path", src, "--keep", "--quiet",
                        *(() if fits else ("--no-numpy",)))
        first = figures(out)
        res.update(dd_write_s=t_ddw, first=first)

        # b. page-cached: the file was just written; read it through once more
        cached = []
        if fits:
            for i in range(a.repeat):
                H.log(f"job on the page-cached file, run {i + 1}/{a.repeat}")
                out, rss, _ = job("--path", src, "--quiet")
                cached.append(figures(out) | {"rss": rss})
        res["cached"] = cached

        # c. cold: evicted, against dd's direct read
        evict(src)
        settle()
        H.log("dd: direct read")
        t_ddr = dd([f"if={src}", "of=/dev/null", "iflag=direct"])
        evict(src)
        settle()
        H.log("job on the evicted file (--no-numpy)")
        out, rss_cold, _ = job("--path", src, "--no-numpy", "--quiet")
        cold = figures(out) | {"rss": rss_cold}
        res.update(dd_read_s=t_ddr, cold=cold)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = []
    w = first["write_s"]
    rows.append(["a. write the input (cdask.random + to_npy)", H.fmt_s(w), f"{gb / w:.2f} GB/s",
                 f"dd oflag=direct {H.fmt_s(t_ddw)} ({gb / t_ddw:.2f} GB/s)",
                 f"{t_ddw / w:.0%} of dd", "≥ 80% of dd", H.yes_no(t_ddw / w >= 0.8), ""])
    if cached:
        bc = min(c["cdask_s"] for c in cached)
        bn = min(c["numpy_s"] for c in cached)
        rows.append(["b. mean(x[x > 0]), page-cached", H.fmt_s(bc), f"{gb / bc:.2f} GB/s",
                     f"NumPy (child) {H.fmt_s(bn)}", f"{bn / bc:.2f}× NumPy", "≥ 2× NumPy",
                     H.yes_no(bn / bc >= 2), ""])
    c = cold["cdask_s"]
    rows.append([f"c. mean(x[x > 0]), evicted ({gb * 1e9 / ram:.2f} × RAM)", H.fmt_s(c),
                 f"{gb / c:.2f} GB/s", f"dd iflag=direct {H.fmt_s(t_ddr)} ({gb / t_ddr:.2f} GB/s)",
                 f"{t_ddr / c:.0%} of dd", "≥ 80% of dd", H.yes_no(t_ddr / c >= 0.8),
                 f"{H.fmt_mib(rss_cold)} {H.yes_no(rss_cold < RSS_BOUND)}"])
    table = H.markdown_table(["pass", "cdask", "throughput", "reference", "ratio", "target",
                              "met", "job's peak RSS (< 768 MiB)"], rows, align="lrrlrlcl")
    lines = ["## The main job, `python -m cdask` (`benchmarks/bench_main.py`)", "",
             f"A {gb:.2f} GB float64 `.npy` ({gb * 1e9 / ram:.2f} × RAM).  Every pass is the "
             "job itself in a child process; its figures are the ones it prints, its peak RSS "
             "the kernel's (`os.wait4`).", "", table, "",
             f"- Values: cdask {first['cdask_value']!r}, NumPy {first['numpy_value']!r}."
             if first.get("numpy_value") is not None else
             f"- Value: cdask {first['cdask_value']!r} (NumPy is not run on a file larger than "
             "half of RAM: bench_ooc.py compares it there).",
             "- b is not run when the file is more than half of RAM (it would not stay cached)."
             if not cached else
             f"- b: best of {len(cached)} runs of the job on the cached file (its peak RSS is "
             "not shown: the kernel's figure for the job includes its NumPy child's).",
             f"- Machine: {H.machine_line()}"]
    print("\n".join(lines))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
