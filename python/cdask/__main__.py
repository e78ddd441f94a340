"""``python -m cdask``: the headline job, ``mean(x[x > 0])`` over a .npy file.

    python -m cdask                  # 2 GB of float64 in a temporary directory
    python -m cdask --size 0.1       # 0.1 GB: a quick run
    python -m cdask --size 40        # 40 GB: more than most machines' RAM
    python -m cdask --size 5e6       # 5,000,000 elements (values >= 1000 are element counts)
    python -m cdask --size 8GiB --path /data/x.npy --keep

Steps:

1. Write a float64 ``.npy`` file of normal random numbers with cdask itself:
   ``cdask.random.default_rng(np.random.SFC64(seed)).standard_normal(n).to_npy(path)``, every
   core drawing its own blocks; the array is never whole in memory, so the
   file may be larger than RAM.
2. ``x = cdask.from_npy(path)`` (a memory map) and ``x[x > 0].mean().compute()``:
   what a user's notebook runs - fusion (one task per block computes the
   mask, selects and sums), the memory budget, and the progress bar users get
   (``cdask.diagnostics.ProgressBar``, on stderr).
3. The same with NumPy, in a child process of its own so that its memory
   never counts against cdask's: ``x[x > 0].mean()`` on ``np.load(path,
   mmap_mode="r")``, or block by block when the temporaries would not fit.

Both answers, their times, the ratio and each process's peak resident memory
are printed.  The file and the temporary directory are removed at the end,
whatever happens (an error, Ctrl-C, SIGTERM), unless ``--keep``; a file named
by ``--path`` that exists already is used as it is and kept.
"""

import argparse
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

GB = 10 ** 9
NUMPY_BLOCK = 8 * 2 ** 20          # elements per block when NumPy goes block by block

EPILOG = """\
sizes: --size 2 is 2 GB (the default); any number below 1000 is GB, so --size 40
is a 40 GB file, more than the RAM of most machines: cdask's resident memory stays
a few blocks big, and NumPy is then run block by block.  A number of 1000 or more
is a count of float64 elements (--size 5e6); a byte size may carry a unit
(--size 500MB, --size 4GiB).  The file needs that much free disk space.

examples:
  python -m cdask --size 0.1           a quick run
  python -m cdask --size 40 --no-numpy larger than RAM, cdask only
  python -m cdask --path x.npy --keep  keep the file; later runs reuse it
"""


def parse_size(text):
    """'2' -> 2 GB; '2GB'/'500MiB' -> bytes; '1e6' or '1000000' (>= 1000) -> elements.

    Returns the number of float64 elements.
    """
    s = str(text).strip()
    try:
        v = float(s)
    except ValueError:
        from .array.chunks import parse_bytes
        nbytes = parse_bytes(s)
        return max(1, nbytes // 8)
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError("--size must be positive, got %r" % text)
    if v < 1000:
        return max(1, int(v * GB) // 8)
    return int(v)


def human_bytes(n):
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return ("%.0f %s" % (n, unit)) if unit == "B" else ("%.2f %s" % (n, unit))
        n /= 1000.0
    return "%.2f TB" % n  # pragma: no cover


def peak_rss(who=resource.RUSAGE_SELF):
    """Peak resident memory in bytes (Linux reports kilobytes)."""
    return resource.getrusage(who).ru_maxrss * 1024


def _bar(progress):
    from .diagnostics import ProgressBar
    return ProgressBar(out=sys.stderr) if progress else _Nothing()


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def write_npy(path, n, seed=0, chunks="auto", num_workers=None, progress=True):
    """Write ``n`` float64 normal random numbers to the .npy file ``path``
    with cdask: blocks drawn in parallel, each from its own generator, and
    written into the file by the tasks that draw them.  The generators are
    SFC64, NumPy's fastest: drawing normals is what bounds the write on a
    machine with few cores and a fast disk."""
    import cdask
    import numpy as np
    x = cdask.random.default_rng(np.random.SFC64(seed)).standard_normal(n, chunks=chunks)
    with _bar(progress):
        x.to_npy(path, num_workers=num_workers)
    return x.numblocks[0]


def cdask_mean_positive(path, chunks="auto", num_workers=None, progress=True):
    """``x[x > 0].mean().compute()`` with cdask.  Returns (value, seconds,
    tasks run, blocks)."""
    import cdask
    t0 = time.perf_counter()
    x = cdask.from_npy(path, chunks=chunks)
    stats = cdask.Stats()
    with _bar(progress):
        value = x[x > 0].mean().compute(num_workers=num_workers, stats=stats)
    return float(value), time.perf_counter() - t0, stats.total, x.npartitions


def _available_ram():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def numpy_mean_positive(path):
    """``x[x > 0].mean()`` with NumPy on ``np.load(path, mmap_mode="r")``.

    When the temporaries (mask and selected values, up to 9 bytes per
    element) would not fit comfortably in memory, NumPy goes block by block
    instead (and says so).  Returns (value, seconds, how)."""
    x = np.load(path, mmap_mode="r")
    need = 9 * x.size
    avail = _available_ram()
    t0 = time.perf_counter()
    if avail is None or need < avail // 2:
        r = float(x[x > 0].mean())
        how = "x[x > 0].mean() on np.load(mmap_mode='r')"
    else:
        s = 0.0
        n = 0
        for i in range(0, x.size, NUMPY_BLOCK):
            b = x[i:i + NUMPY_BLOCK]
            p = b[b > 0]
            s += float(p.sum())
            n += p.size
        r = s / n if n else math.nan
        how = "block by block (whole-array temporaries would not fit in RAM)"
    return r, time.perf_counter() - t0, how


_CHILD = ("import json, sys; from cdask.__main__ import numpy_mean_positive, peak_rss; "
          "r = numpy_mean_positive(sys.argv[1]); "
          "print(json.dumps({'value': r[0], 'seconds': r[1], 'how': r[2], "
          "'peak_rss': peak_rss()}))")


def numpy_in_child(path):
    """:func:`numpy_mean_positive` in a child process: (value, seconds, how,
    the child's peak RSS in bytes)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, path], check=True,
                         stdout=subprocess.PIPE).stdout
    r = json.loads(out.decode().strip().splitlines()[-1])
    return r["value"], r["seconds"], r["how"], r["peak_rss"]


def _chunks_arg(text):
    if text is None:
        return "auto"
    return int(text) if text.isdigit() else text


def _terminate(signum, frame):
    # SIGTERM: unwind like Ctrl-C, so that the finally clauses remove files
    raise KeyboardInterrupt("terminated (signal %d)" % signum)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m cdask", description=__doc__.split("\n\n")[0],
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2",
                    help="array size: a number < 1000 is GB (default 2; --size 40 for 40 GB), "
                         "a larger number is a count of float64 elements, or a byte size such "
                         "as 500MB, 4GiB")
    ap.add_argument("--path", default=None,
                    help="the .npy file (default: x.npy in a new temporary directory, removed "
                         "afterwards). An existing file is used as it is and kept.")
    ap.add_argument("--keep", action="store_true", help="keep the file afterwards")
    ap.add_argument("--chunks", default=None,
                    help="block size for writing and reading (e.g. 64MiB or 8000000); "
                         "default: auto")
    ap.add_argument("--workers", type=int, default=None, help="scheduler threads "
                    "(default: one per core)")
    ap.add_argument("--seed", type=int, default=0, help="random seed of the input")
    ap.add_argument("--no-numpy", action="store_true", help="skip the NumPy comparison")
    ap.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    a = ap.parse_args(argv)

    try:
        n = parse_size(a.size)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as e:
        ap.error(str(e))
    if a.workers is not None and a.workers < 1:
        ap.error("--workers must be at least 1, got %d" % a.workers)
    chunks = _chunks_arg(a.chunks)
    if isinstance(chunks, str) and chunks != "auto":
        from .array.chunks import parse_bytes
        try:
            parse_bytes(chunks)
        except ValueError as e:
            ap.error("--chunks: %s" % e)
    old_term = signal.signal(signal.SIGTERM, _terminate)
    tmpdir = None
    path = None
    existing = False
    try:
        if a.path is None:
            tmpdir = tempfile.mkdtemp(prefix="cdask-")
            path = os.path.join(tmpdir, "x.npy")
        else:
            path = a.path
            existing = os.path.exists(path)
        if existing:
            n = int(np.load(path, mmap_mode="r").size)
            print("using existing file %s" % path)
        else:
            free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
            if 8 * n + 2 ** 20 > free:
                print("not enough disk space for %s at %s (%s free)"
                      % (human_bytes(8 * n), path, human_bytes(free)), file=sys.stderr)
                return 2
            t0 = time.perf_counter()
            nb = write_npy(path, n, seed=a.seed, chunks=chunks, num_workers=a.workers,
                           progress=not a.quiet)
            dt = time.perf_counter() - t0
            print("wrote %s float64 (%s) to %s in %.2f s (%s/s, %d blocks drawn in parallel)"
                  % (format(n, ","), human_bytes(8 * n), path, dt,
                     human_bytes(8 * n / dt) if dt > 0 else "-", nb))
        sys.stdout.flush()

        value, secs, ntasks, nblocks = cdask_mean_positive(
            path, chunks=chunks, num_workers=a.workers, progress=not a.quiet)
        print("mean(x[x > 0]) over %s float64 (%s)" % (format(n, ","), human_bytes(8 * n)))
        print("cdask: %r  in %.3f s  (%s/s; %d blocks, %d tasks; peak RSS of this process %s)"
              % (value, secs, human_bytes(8 * n / secs) if secs > 0 else "-", nblocks, ntasks,
                 human_bytes(peak_rss())))
        sys.stdout.flush()
        if not a.no_numpy:
            nvalue, nsecs, how, nrss = numpy_in_child(path)
            print("numpy: %r  in %.3f s  (%s; peak RSS of its process %s)"
                  % (nvalue, nsecs, how, human_bytes(nrss)))
            rel = abs(value - nvalue) / abs(nvalue) if nvalue else abs(value - nvalue)
            print("ratio: cdask is %.2fx the speed of NumPy (numpy time / cdask time); "
                  "relative difference %.1e" % (nsecs / secs if secs > 0 else float("inf"), rel))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as e:
        print("python -m cdask: %s" % e, file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if path is not None and not existing and not a.keep:
            try:
                os.remove(path)
            except OSError:
                pass
        if tmpdir is not None and not a.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
        elif a.keep and path is not None and not existing and os.path.exists(path):
            print("kept %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
