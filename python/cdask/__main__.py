"""``python -m cdask``: the headline job, ``mean(x[x > 0])`` on a memory-mapped .npy file.

    python -m cdask                  # 2 GB of float64 in a temporary directory
    python -m cdask --size 0.1       # 0.1 GB: a quick run
    python -m cdask --size 5e6       # 5,000,000 elements (values >= 1000 are element counts)
    python -m cdask --size 8GiB --path /data/x.npy --keep

Steps: write a float64 .npy file of random numbers of both signs, block by
block through a memory map (the whole array is never in memory, so the file
may be larger than RAM); memory-map it with ``cdask.from_npy``; compute
``x[x > 0].mean()`` on the C scheduler with a progress line on stderr; then
the same with NumPy on the memory map, and print both answers, their times
and the ratio.  The file is deleted at the end unless ``--keep`` (or unless
``--path`` named an existing file, which is then used as it is).
"""

import argparse
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np

GB = 10 ** 9
WRITE_BLOCK = 8 * 2 ** 20          # elements per written block (64 MiB of float64)


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
        return builtin_max(1, nbytes // 8)
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError("--size must be positive, got %r" % text)
    if v < 1000:
        return builtin_max(1, int(v * GB) // 8)
    return int(v)


builtin_max = max


def human_bytes(n):
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return ("%.0f %s" % (n, unit)) if unit == "B" else ("%.2f %s" % (n, unit))
        n /= 1000.0
    return "%.2f TB" % n  # pragma: no cover


def write_npy(path, n, seed=0, block=WRITE_BLOCK, progress=True):
    """Write ``n`` float64 normal random numbers to ``path`` (.npy), one block at a time.

    The header and file size come from ``open_memmap``; each block is then
    written through its own small memory map, flushed and unmapped, so the
    process never holds more than one block.
    """
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n,))
    offset = mm.offset
    del mm
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    done = 0
    shown = 0.0
    while done < n:
        m = min(block, n - done)
        win = np.memmap(path, dtype=np.float64, mode="r+", offset=offset + 8 * done, shape=(m,))
        rng.standard_normal(out=win)
        win.flush()
        del win
        done += m
        el = time.perf_counter() - t0
        if progress and (el - shown >= 0.25 or done == n):
            shown = el
            sys.stderr.write("\rwriting %s: %5.1f%%  %s  %.1f s   "
                             % (os.path.basename(path), 100.0 * done / n,
                                human_bytes(8 * done), el))
            sys.stderr.flush()
    if progress:
        sys.stderr.write("\n")
        sys.stderr.flush()


class Progress:
    """A progress line on stderr from the cdask.Stats the scheduler fills."""

    def __init__(self, stream=sys.stderr, label="cdask"):
        self.stream = stream
        self.label = label
        self.last = ""

    def __call__(self, stats):
        total = stats.total or 0
        done = stats.done or 0
        pct = 100.0 * done / total if total else 0.0
        line = ("\r%s: %d/%d tasks (%5.1f%%)  held %s  peak %s  %.1f s   "
                % (self.label, done, total, pct, human_bytes(stats.bytes_held),
                   human_bytes(stats.peak_bytes), stats.elapsed))
        self.last = line
        self.stream.write(line)
        self.stream.flush()

    def end(self):
        if self.last:
            self.stream.write("\n")
            self.stream.flush()


def _from_npy():
    import cdask
    f = getattr(cdask, "from_npy", None)
    if f is None:
        from .array.creation import from_npy as f
    return f


def cdask_mean_positive(path, chunks=None, num_workers=None, progress=True):
    """``mean(x[x > 0])`` with cdask; returns (value, seconds, stats, ntasks)."""
    import cdask
    from_npy = _from_npy()
    t0 = time.perf_counter()
    x = from_npy(path) if chunks is None else from_npy(path, chunks=chunks)
    m = x[x > 0].mean()
    graph = m.__dask_graph__()
    keys = m.__dask_keys__()
    stats = cdask.Stats()
    cb = Progress() if progress else None
    try:
        res = cdask.get(graph, keys, num_workers=num_workers, stats=stats,
                        callback=cb, interval=0.1)
    finally:
        if cb is not None:
            cb.end()
    t1 = time.perf_counter()
    while isinstance(res, (list, tuple)):
        res = res[0]
    return float(np.asarray(res)), t1 - t0, stats


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
    """The same with NumPy on the memory map: ``x[x > 0].mean()``.

    When the temporaries (mask + selected values, up to 9 bytes per element)
    would not fit comfortably in memory, NumPy is run block by block instead
    (the figure is then labelled so).  Returns (value, seconds, how).
    """
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
        for i in range(0, x.size, WRITE_BLOCK):
            b = x[i:i + WRITE_BLOCK]
            p = b[b > 0]
            s += float(p.sum())
            n += p.size
        r = s / n if n else math.nan
        how = "block by block (whole-array temporaries would not fit in RAM)"
    return r, time.perf_counter() - t0, how


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m cdask", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="2",
                    help="array size: a number < 1000 is GB (default 2), a larger number is "
                         "a count of float64 elements, or a byte size such as 500MB, 4GiB")
    ap.add_argument("--path", default=None,
                    help="the .npy file (default: x.npy in a new temporary directory). "
                         "An existing file is used as it is and kept.")
    ap.add_argument("--keep", action="store_true", help="keep the file afterwards")
    ap.add_argument("--chunks", default=None,
                    help="block size for from_npy (e.g. 64MiB or 8000000); default: auto")
    ap.add_argument("--workers", type=int, default=None, help="scheduler threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-numpy", action="store_true", help="skip the NumPy comparison")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    a = ap.parse_args(argv)

    try:
        n = parse_size(a.size)
    except (ValueError, TypeError) as e:
        ap.error(str(e))
    tmpdir = None
    existing = False
    if a.path is None:
        tmpdir = tempfile.mkdtemp(prefix="cdask-")
        path = os.path.join(tmpdir, "x.npy")
    else:
        path = a.path
        existing = os.path.exists(path)
    chunks = None
    if a.chunks is not None:
        chunks = int(a.chunks) if a.chunks.isdigit() else a.chunks
    try:
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
            write_npy(path, n, seed=a.seed, progress=not a.quiet)
            print("wrote %s float64 (%s) to %s in %.2f s"
                  % (format(n, ","), human_bytes(8 * n), path, time.perf_counter() - t0))
        sys.stdout.flush()

        value, secs, stats = cdask_mean_positive(path, chunks=chunks, num_workers=a.workers,
                                                 progress=not a.quiet)
        print("mean(x[x > 0]) over %s float64 (%s)" % (format(n, ","), human_bytes(8 * n)))
        print("cdask: %r  in %.3f s  (%d tasks, peak %s held by the scheduler)"
              % (value, secs, stats.total, human_bytes(stats.peak_bytes)))
        sys.stdout.flush()
        if not a.no_numpy:
            nvalue, nsecs, how = numpy_mean_positive(path)
            print("numpy: %r  in %.3f s  (%s)" % (nvalue, nsecs, how))
            rel = abs(value - nvalue) / abs(nvalue) if nvalue else abs(value - nvalue)
            print("ratio: cdask is %.2fx the speed of NumPy (numpy time / cdask time); "
                  "relative difference %.1e" % (nsecs / secs if secs > 0 else float("inf"), rel))
    finally:
        if not existing and not a.keep:
            try:
                os.remove(path)
            except OSError:
                pass
        if tmpdir is not None and not a.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
        elif a.keep and not existing:
            print("kept %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
