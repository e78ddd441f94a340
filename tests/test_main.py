"""``python -m cdask``: the headline job in a subprocess (issues 3 and 13)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cdask.__main__ import parse_size, write_npy


def run(*args, timeout=120, **env_extra):
    env = dict(os.environ, **env_extra)
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
    # the progress bars users get (cdask.diagnostics.ProgressBar), on stderr:
    # one while writing the input, one for the compute; into a pipe, plain
    # lines without carriage returns
    assert p.stderr.count("100%") >= 2 and "\r" not in p.stderr
    # the compute went through compute(): one fused task per block plus the
    # tree, not the unfused graph (mask, selection, partials per block)
    m = re.search(r"(\d+) blocks, (\d+) tasks", p.stdout)
    assert m and int(m.group(2)) <= int(m.group(1)) + 2
    assert "peak RSS of its process" in p.stdout     # NumPy ran in a child
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


def test_write_npy_in_parallel_blocks(tmp_path):
    import cdask

    path = str(tmp_path / "z.npy")
    nb = write_npy(path, 10_001, seed=3, chunks=1000, progress=False)
    assert nb == 11
    a = np.load(path)
    assert a.shape == (10_001,)
    assert np.isfinite(a).all() and (a > 0).any() and (a < 0).any()
    # the same numbers as cdask.random draws them, whatever the workers
    ref = cdask.random.default_rng(np.random.SFC64(3)).standard_normal(10_001, chunks=1000).compute()
    assert np.array_equal(a, ref)
    path1 = str(tmp_path / "one.npy")
    write_npy(path1, 10_001, seed=3, chunks=1000, num_workers=1, progress=False)
    assert np.array_equal(np.load(path1), a)


def test_help_documents_sizes():
    p = run("--help")
    assert p.returncode == 0
    assert "--size 40" in p.stdout and "GB" in p.stdout


def test_bad_arguments_are_clear_errors():
    p = run("--size", "-3")
    assert p.returncode == 2 and "--size must be positive" in p.stderr
    p = run("--workers", "0")
    assert p.returncode == 2 and "--workers must be at least 1" in p.stderr
    p = run("--chunks", "lots")
    assert p.returncode == 2 and "could not parse byte size 'lots'" in p.stderr


def test_temporary_folder_removed_after_sigterm_and_errors(tmp_path, monkeypatch, capsys):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    # SIGTERM while the input is being written
    proc = subprocess.Popen([sys.executable, "-m", "cdask", "--size", "2", "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(d.startswith("cdask-") for d in os.listdir(tmp_path)):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert os.listdir(tmp_path) == []
    # a run that fails in the middle (the disk fills up) leaves nothing either
    import tempfile

    import cdask.__main__ as job

    def full(path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(job, "write_npy", full)
    assert job.main(["--size", "0.001", "--quiet"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


_LAUNCHER = """
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
out = p.stdout.read()
_, status, ru = os.wait4(p.pid, 0)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "maxrss": ru.ru_maxrss, "out": out}))
"""


def test_three_gb_file_in_bounded_memory(tmp_path):
    # the whole job - writing the input and the compute - measured from
    # outside the process: the kernel's accounting of this one child
    # (os.wait4 on its pid; RUSAGE_CHILDREN would also count any earlier
    # child that happens to be reaped meanwhile).  The job is started by a
    # small launcher, not by pytest: Linux's ru_maxrss of a child includes
    # the resident size of the process it was forked (or vforked) from,
    # and pytest's grows past a gigabyte in a full run
    path = tmp_path / "x.npy"
    r = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "cdask", "--size",
                        "3", "--no-numpy", "--quiet", "--path", str(path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    out = res["out"]
    assert res["rc"] == 0, out
    peak = res["maxrss"] * 1024
    assert peak < 768 * 2 ** 20, "peak RSS %d MB" % (peak // 2 ** 20)
    c, _ = answers(out)
    assert abs(c - np.sqrt(2 / np.pi)) < 1e-3
    assert not path.exists()
