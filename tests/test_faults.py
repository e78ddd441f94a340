"""A memory-mapped input file that shrinks after from_npy: reading past its
new end raises OSError naming the file - in C kernels (a SIGBUS guard,
src/core/fault.h) and in Python tasks (blockio.check_mapped_size) - never a
crash.  Each case runs in a child process, since a regression would kill it."""

import os
import signal
import subprocess
import sys

import pytest

PRELUDE = r"""
import faulthandler, os, sys
import numpy as np
import cdask
if sys.argv[2] == "faulthandler":
    faulthandler.enable()           # over cdask's handler: runs put it back on top
path = sys.argv[3]
np.save(path, np.ones(3_000_000))
x = cdask.from_npy(path, chunks=500_000)
os.truncate(path, 4096 * 10)
"""

CHILD = PRELUDE + r"""
for expr in sys.argv[1].split(";"):
    try:
        r = eval(expr).compute()
    except OSError as ex:
        print(expr, "-> OSError:", ex, flush=True)
    else:
        print(expr, "-> no error:", np.asarray(r).sum(), flush=True)
"""

EXPRESSIONS = [
    "x.sum()", "(x + 1).sum()", "x[x > 0].mean()", "x * 2", "x.max()",   # C kernels
    "x", "x[2_000_000:]", "x[::3]", "x.rechunk(700_000)",                 # Python tasks
    "cdask.concatenate([x, x])",
]


def _run(code, *args, timeout=60):
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("handler", ["cdask", "faulthandler"])
def test_a_truncated_file_raises_oserror_naming_it(tmp_path, handler):
    path = str(tmp_path / "x.npy")
    p = _run(CHILD, ";".join(EXPRESSIONS), handler, path)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr[-2000:])
    lines = p.stdout.splitlines()
    assert len(lines) == len(EXPRESSIONS), p.stdout
    for expr, line in zip(EXPRESSIONS, lines):
        assert line.startswith(expr + " -> OSError:"), line
        assert path in line and "shorter than when it was mapped" in line


def test_to_npy_from_a_truncated_file_leaves_nothing(tmp_path):
    path = str(tmp_path / "x.npy")
    out = tmp_path / "out"
    out.mkdir()
    code = PRELUDE + "x.to_npy(sys.argv[4])\n"
    p = _run(code, "", "cdask", path, str(out / "y.npy"))
    assert p.returncode == 1 and "OSError" in p.stderr and path in p.stderr
    assert os.listdir(out) == []


def test_faults_outside_cdask_still_kill_the_process(tmp_path):
    """A read past the end by NumPy itself (no guard): the process dies of
    SIGBUS as without cdask, after faulthandler's dump - no hang, no loop."""
    path = str(tmp_path / "x.npy")
    code = PRELUDE + r"""
print(float(x.sum().compute()) if False else "guarded ok", flush=True)
m = np.load(path, mmap_mode="r")
print(float(m.sum()))
"""
    # np.load of the truncated .npy fails to map it; map the bytes directly
    code = code.replace('m = np.load(path, mmap_mode="r")',
                        'np.save(path + "2.npy", np.ones(3_000_000))\n'
                        'm = np.load(path + "2.npy", mmap_mode="r")\n'
                        'os.truncate(path + "2.npy", 4096)')
    p = _run(code, "", "faulthandler", path, timeout=60)
    assert p.returncode == -signal.SIGBUS, (p.returncode, p.stdout, p.stderr[-2000:])
    assert "guarded ok" in p.stdout and "Bus error" in p.stderr
