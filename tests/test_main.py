"""``python -m cdask``: the headline job in a subprocess (issue 3, item 8)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from cdask.__main__ import parse_size, write_npy


def run(*args, timeout=120):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "cdask", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def answers(out):
    c = re.search(r"^cdask: (\S+)", out, re.M)
    n = re.search(r"^numpy: (\S+)", out, re.M)
    return float(c.group(1)), (float(n.group(1)) if n else None)


def test_quick_run_matches_numpy():
    p = run("--size", "0.01")
    assert p.returncode == 0, p.stderr
    c, n = answers(p.stdout)
    assert n is not None
    assert abs(c - n) <= 1e-12 * abs(n)
    assert 0.7 < c < 0.9     # E[x | x > 0] for a standard normal is sqrt(2/pi) = 0.798
    assert "ratio" in p.stdout
    assert "tasks" in p.stderr      # the progress line from cdask.Stats
    # the temporary file is gone
    m = re.search(r"to (\S+\.npy)", p.stdout)
    assert m and not os.path.exists(m.group(1))


def test_keep_and_existing_path(tmp_path):
    path = tmp_path / "y.npy"
    p = run("--size", "20000", "--path", str(path), "--keep", "--quiet", "--chunks", "3000")
    assert p.returncode == 0, p.stderr
    assert path.exists()
    a = np.load(path)
    assert a.shape == (20000,) and a.dtype == np.float64
    assert (a > 0).any() and (a < 0).any()
    c, n = answers(p.stdout)
    assert abs(c - a[a > 0].mean()) <= 1e-12
    # an existing file is used as it is and kept
    p = run("--path", str(path), "--no-numpy", "--quiet")
    assert p.returncode == 0, p.stderr
    assert path.exists()
    c2, n2 = answers(p.stdout)
    assert n2 is None and abs(c2 - c) <= 1e-12


def test_parse_size():
    assert parse_size("2") == 2 * 10**9 // 8
    assert parse_size("0.1") == 10**8 // 8
    assert parse_size("1e6") == 1_000_000
    assert parse_size("5000") == 5000
    assert parse_size("8MiB") == 2**20
    with pytest.raises(Exception):
        parse_size("-1")


def test_write_npy_blockwise(tmp_path):
    path = str(tmp_path / "z.npy")
    write_npy(path, 10_001, seed=3, block=1000, progress=False)
    a = np.load(path)
    assert a.shape == (10_001,)
    assert np.isfinite(a).all() and (a > 0).any() and (a < 0).any()
