"""Shared helpers for the cdask benchmarks.

* ``best_of``          - best-of-N wall time of a callable (``time.perf_counter``).
* ``run_child``        - run a Python snippet in a fresh child process and get its
                         peak RSS (from ``os.wait4``'s rusage, i.e. what
                         ``/usr/bin/time -v`` reports) plus the JSON it reported.
* ``CHILD_PRELUDE``    - code to put at the top of such a snippet: ``rss_now()``,
                         ``reset_peak()``, ``peak_now()`` and ``report(**fields)``.
* ``markdown_table``   - a markdown table printer; ``fmt_*`` helpers for figures
                         and ratios.
* ``machine_info``     - nproc, RAM, CPU model (for RESULTS.md headers).

Nothing here imports cdask or dask: it is usable before they exist.
"""
from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

RESULT_MARKER = "__BENCH_RESULT__ "


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------
@dataclass
class Timing:
    best: float                     # seconds, best of the repeats
    times: list = field(default_factory=list)  # every repeat, seconds
    result: Any = None              # what the last call returned

    @property
    def median(self) -> float:
        s = sorted(self.times)
        return s[len(s) // 2]


def best_of(fn: Callable[[], Any], repeat: int = 3, *, setup: Callable[[], Any] | None = None,
            disable_gc: bool = True, log: Callable[[str], None] | None = None,
            label: str = "") -> Timing:
    """Call ``fn()`` ``repeat`` times and return the best wall time.

    ``setup()`` (untimed) runs before each call.  Like ``timeit``, the cyclic
    garbage collector is collected before and disabled during each timed call
    (``disable_gc=False`` to keep it on).
    """
    times = []
    result = None
    for i in range(max(1, repeat)):
        if setup is not None:
            setup()
        result = None          # drop the previous result before timing again
        gc.collect()
        was_enabled = gc.isenabled()
        if disable_gc:
            gc.disable()
        try:
            t0 = time.perf_counter()
            result = fn()
            t1 = time.perf_counter()
        finally:
            if was_enabled:
                gc.enable()
        times.append(t1 - t0)
        if log is not None:
            log(f"  {label} run {i + 1}/{repeat}: {t1 - t0:.3f} s")
    return Timing(best=min(times), times=times, result=result)


# --------------------------------------------------------------------------
# child processes and peak RSS
# --------------------------------------------------------------------------
CHILD_PRELUDE = r'''
import json as _json, os as _os, sys as _sys
_PAGE = _os.sysconf("SC_PAGE_SIZE")

def rss_now():
    """Current resident set size of this process, bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE

def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None

def reset_peak():
    """Reset VmHWM (peak RSS) to the current RSS; True if the kernel allowed it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

def peak_now():
    """Peak RSS (VmHWM) of this process so far (since reset_peak()), bytes."""
    return _status_kb("VmHWM")

def report(**fields):
    _sys.stdout.write("''' + RESULT_MARKER + r'''" + _json.dumps(fields) + "\n")
    _sys.stdout.flush()
'''


@dataclass
class ChildResult:
    returncode: int
    maxrss: int            # peak RSS of the child over its whole life, bytes (wait4 rusage)
    wall: float            # seconds, child start to exit
    report: dict           # the last report(**fields) the child made ({} if none)
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.report)


def run_child(code: str, *, prelude: bool = True, args: Sequence[str] = (),
              env: dict | None = None, cwd: str | None = None,
              timeout: float | None = None) -> ChildResult:
    """Run ``python -c code`` in a fresh child process.

    ``maxrss`` is the child's lifetime peak RSS from ``os.wait4`` (the kernel's
    rusage for that one child, as ``/usr/bin/time -v`` reports it), so every
    contender measured this way gets its own process and its own peak.  Caveat:
    Linux folds the pre-exec address space into it, and subprocess starts the
    child with vfork, so ``maxrss`` is at least the *parent's* peak RSS.  When
    the parent is big, use the child's own ``reset_peak()`` / ``peak_now()``
    (VmHWM via /proc/self/clear_refs) instead, as bench_scheduler does.  Output goes to
    temporary files (so the parent, not ``communicate()``, reaps the child).
    The child may call ``report(**fields)`` (from ``CHILD_PRELUDE``) to hand
    figures back, e.g. its baseline RSS after imports.
    """
    src = (CHILD_PRELUDE + "\n" + code) if prelude else code
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", src, *args], stdout=out, stderr=err,
                                env=full_env, cwd=cwd)
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid != 0:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        proc.returncode = rc          # tell Popen it has been reaped
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    rep: dict = {}
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            rep = json.loads(line[len(RESULT_MARKER):])
    maxrss = ru.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return ChildResult(returncode=rc, maxrss=maxrss, wall=wall, report=rep,
                       stdout=stdout, stderr=stderr)


# --------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                   align: str | None = None) -> str:
    """A GitHub-markdown table.  ``align``: one char per column, 'l', 'r' or 'c'."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or ("l" + "r" * (len(headers) - 1))
    seps = []
    for w, a in zip(widths, align):
        w = max(w, 3)
        if a == "r":
            seps.append("-" * (w - 1) + ":")
        elif a == "c":
            seps.append(":" + "-" * (w - 2) + ":")
        else:
            seps.append("-" * w)

    def line(r):
        return "| " + " | ".join(
            c.rjust(max(w, 3)) if a == "r" else c.ljust(max(w, 3))
            for c, w, a in zip(r, widths, align)) + " |"

    return "\n".join([line(cells[0]), "| " + " | ".join(seps) + " |"]
                     + [line(r) for r in cells[1:]])


def fmt_sig(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant figures, no exponent for ordinary sizes."""
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 10 ** digits:
        return f"{x:,.0f}"
    if ax < 1e-3:
        return f"{x:.{digits - 1}e}"
    import math
    decimals = max(0, digits - 1 - int(math.floor(math.log10(ax))))
    return f"{x:.{decimals}f}"


def fmt_us(seconds: float | None, digits: int = 3) -> str:
    return "n/a" if seconds is None else fmt_sig(seconds * 1e6, digits) + " µs"


def fmt_s(seconds: float | None) -> str:
    return "n/a" if seconds is None else fmt_sig(seconds, 3) + " s"


def fmt_mib(nbytes: float | None) -> str:
    return "n/a" if nbytes is None else fmt_sig(nbytes / 2 ** 20, 3) + " MiB"


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else fmt_sig(r, 3) + "×"


def ratio(slow: float | None, fast: float | None) -> float | None:
    if slow is None or fast is None or fast <= 0:
        return None
    return slow / fast


def yes_no(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


# --------------------------------------------------------------------------
# machine description
# --------------------------------------------------------------------------
def machine_info() -> dict:
    info = {"nproc": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}
    try:
        info["nproc_affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["ram_bytes"] = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info.setdefault("cpu_model", platform.processor() or "unknown")
    return info


def machine_line(info: dict | None = None) -> str:
    info = info or machine_info()
    ram = info.get("ram_bytes")
    ram_s = f"{ram / 2 ** 30:.1f} GiB RAM" if ram else "RAM unknown"
    return (f"{info.get('nproc_affinity', info['nproc'])} CPUs (nproc), {ram_s}, "
            f"{info['cpu_model']}; Python {info['python']}; {info['platform']}")


def log(msg: str) -> None:
    """Progress messages go to stderr; stdout carries only the markdown report."""
    print(msg, file=sys.stderr, flush=True)


def dask_array(skip: bool = False):
    """``dask.array`` with dask's threaded scheduler, or None when ``skip``
    (a benchmark's --no-dask) or dask cannot be imported."""
    if skip:
        return None
    try:
        import dask
        import dask.array as dda
    except ImportError:
        return None
    dask.config.set(scheduler="threads")
    return dda


def emit(lines: Sequence[str], json_path: str | None, data: Any, dask_ran: bool) -> None:
    """Print a benchmark's markdown report (``lines``; a note is added when
    dask did not run) and write ``data`` to ``json_path`` when one is given."""
    lines = list(lines)
    if not dask_ran:
        lines.append("- dask was not run (not importable or --no-dask).")
    print("\n".join(lines))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(data, f, indent=1, default=str)
