"""Progress bars that fit where they run (cdask.diagnostics.ProgressBar).

Covers: a terminal (a pseudo-terminal: one line redrawn with "\\r", elapsed
time, fitted to the width), a pipe (a few whole lines, no "\\r", the last at
100%), an error and a Ctrl-C in the compute (the bar closed with a newline,
the exception unchanged), the config key ``progress``, Jupyter without tqdm
(text bar, one warning naming cdask[diagnostics]; the widget refused), and a
real Jupyter kernel run by nbclient (a tqdm widget, green when done, red on
an error).  The compute runs in a child process wherever the bar's output
must be a real terminal or pipe.
"""
import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time

import numpy as np
import pytest

import cdask
from cdask import diagnostics
from cdask.diagnostics import ProgressBar

# A graph of known size: 20 blocks through a slow Python function, summed.
# The child prints the scheduler's task count after the compute.
PRELUDE = """
import os, sys, time
import numpy as np
import cdask
from cdask.diagnostics import ProgressBar

def slow(b):
    time.sleep(0.02)
    return b

def boom(b):
    if b[0] >= 8:
        raise ValueError("boom in block")
    time.sleep(0.02)
    return b

def nap(b):
    time.sleep(0.05)
    return b

x = cdask.from_array(np.arange(40.0), chunks=2).map_blocks(slow, dtype=float)
"""

KNOWN = PRELUDE + """
stats = cdask.Stats()
with ProgressBar(dt=0.05):
    r = x.sum().compute(stats=stats)
sys.stdout.flush()
print("RESULT", float(r), stats.total, file=sys.stderr)
"""

FAILING = PRELUDE + """
bad = cdask.from_array(np.arange(40.0), chunks=2).map_blocks(boom, dtype=float)
with ProgressBar(dt=0.05):
    bad.sum().compute()
"""

INTERRUPTED = PRELUDE + """
# 400 naps of 50 ms: 10 s on 2 workers unless interrupted (the bar is
# drawn between Python tasks, so short ones show it soon)
y = cdask.from_array(np.arange(800.0), chunks=2).map_blocks(nap, dtype=float)
print("READY", file=sys.stderr, flush=True)
try:
    with ProgressBar(dt=0.05):
        y.sum().compute()
    print("NOT INTERRUPTED", file=sys.stderr)
except KeyboardInterrupt:
    sys.stdout.flush()
    print("INTERRUPTED", file=sys.stderr)
print("AFTER", float(x.sum().compute()), file=sys.stderr)
"""

FRAME = re.compile(r"\[([# ]*)\] \| +(\d+)% Completed \| (?:(\d+)/(\d+) tasks \| )?"
                   r"(\d+\.\d\d s)( \| [^\r\n]*)?")


def _env():
    env = dict(os.environ)
    env["CDASK_NUM_WORKERS"] = "2"
    env.pop("CDASK_PROGRESS", None)
    return env


def run_pty(code, columns=120, interrupt=False, timeout=60):
    """Run ``code`` with stdout on a pseudo-terminal ``columns`` wide.
    Returns (returncode, what the terminal got, stderr).  With ``interrupt``,
    SIGINT is sent once the bar has been drawn (as Ctrl-C would)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST           # keep "\n" as it was written (no "\r\n")
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=slave, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=_env())
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:          # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
            if interrupt and not sent and b"%" in out:
                p.send_signal(signal.SIGINT)
                sent = True
        err = p.communicate(timeout=max(1, deadline - time.monotonic()))[1]
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out.decode(), err.decode()


def run_pipe(code, interrupt=False, timeout=60):
    """Run ``code`` with stdout into a pipe; returns (returncode, stdout, stderr)."""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_env())
    if interrupt:
        # the bar's first line comes once the compute has run for dt
        os.set_blocking(p.stdout.fileno(), False)
        out = b""
        deadline = time.monotonic() + timeout
        while b"%" not in out and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
            out += p.stdout.read() or b""
        p.send_signal(signal.SIGINT)
        os.set_blocking(p.stdout.fileno(), True)
        rest, err = p.communicate(timeout=timeout)
        return p.returncode, (out + rest).decode(), err.decode()
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out.decode(), err.decode()


def _one_traceback(err, last_line):
    # the compute's own exception, once, and nothing raised by the bar
    assert err.count("Traceback") == 1 and "During handling" not in err, err
    tail = [line for line in err.splitlines() if not line.startswith("cdask: raised by")]
    assert tail[-1] == last_line, err          # (the note naming the key may follow)


# ------------------------------------------------------------ a terminal
def test_terminal_bar_redrawn_in_place():
    rc, out, err = run_pty(KNOWN)
    assert rc == 0, err
    total = int(err.split()[-1])
    assert "RESULT 780.0" in err
    assert out.startswith("\r") and out.endswith("\n") and out.count("\n") == 1
    frames = [FRAME.fullmatch(f.rstrip()) for f in out.rstrip("\n").split("\r")[1:]]
    assert all(frames), out
    assert frames[-1].group(1) == "#" * 40 and frames[-1].group(2) == "100"
    assert frames[-1].group(3) is None        # no task counts on the one-line bar
    assert float(frames[-1].group(5)[:-2]) > 0.1   # elapsed time: 20 x 20 ms on 2 workers
    assert total > 20


def test_terminal_bar_fits_a_narrow_terminal():
    rc, out, err = run_pty(KNOWN, columns=60)
    assert rc == 0, err
    for frame in out.rstrip("\n").split("\r")[1:]:
        assert len(frame) < 60, frame
    assert "100% Completed" in out


def test_terminal_bar_on_error():
    rc, out, err = run_pty(FAILING)
    assert rc == 1
    _one_traceback(err, "ValueError: boom in block")
    assert out.endswith(" | failed: ValueError\n") and out.count("\n") == 1, out
    assert FRAME.fullmatch(out.rstrip("\n").split("\r")[-1]), out


def test_terminal_bar_on_ctrl_c():
    rc, out, err = run_pty(INTERRUPTED, interrupt=True)
    assert rc == 0, err
    assert "INTERRUPTED" in err and "Traceback" not in err, err
    assert "AFTER 780.0" in err                       # cdask still usable
    assert out.endswith(" | interrupted\n") and out.count("\n") == 1, out
    assert "100%" not in out


# ------------------------------------------------------------ a pipe
def test_pipe_gets_a_few_plain_lines():
    rc, out, err = run_pipe(KNOWN)
    assert rc == 0, err
    total = int(err.split()[-1])
    assert "\r" not in out
    lines = out.splitlines()
    assert 1 <= len(lines) <= 6, out
    m = FRAME.fullmatch(lines[-1])
    assert m and m.group(2) == "100" and m.group(3) == m.group(4) == str(total), out
    assert out.endswith("\n")


def test_pipe_on_error():
    rc, out, err = run_pipe(FAILING)
    assert rc == 1
    _one_traceback(err, "ValueError: boom in block")
    assert "\r" not in out
    assert out.splitlines()[-1].endswith(" | failed: ValueError"), out
    assert "100%" not in out.splitlines()[-1]


def test_pipe_on_ctrl_c():
    rc, out, err = run_pipe(INTERRUPTED, interrupt=True)
    assert rc == 0, err
    assert "INTERRUPTED" in err and "Traceback" not in err, err
    assert "\r" not in out
    lines = out.splitlines()
    assert lines and lines[-1].endswith(" | interrupted") and "100%" not in lines[-1], out


def test_lines_stay_few_over_an_hour():
    # the lines kind's own clock, driven by hand: an hour with a callback
    # every 0.1 s, the tasks done at an even pace
    buf = io.StringIO()
    display = diagnostics._LinesDisplay(ProgressBar(out=buf), buf)
    total = 1000
    for i in range(36000):
        display.draw(i * total // 36000, total, i * 0.1)
    display.finish(total, total, 3600.0, "")
    lines = buf.getvalue().splitlines()
    assert 5 <= len(lines) <= 40, len(lines)
    assert "\r" not in buf.getvalue() and "100% Completed" in lines[-1]


# ------------------------------------------------------------ choosing a kind
def test_kind_is_chosen_by_where_it_runs(monkeypatch):
    monkeypatch.setattr(diagnostics, "_in_jupyter", lambda: False)
    assert type(ProgressBar(out=io.StringIO())._display()) is diagnostics._LinesDisplay
    assert type(ProgressBar(out=io.StringIO(), kind="text")._display()) is diagnostics._TextDisplay
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            assert type(ProgressBar(out=tty)._display()) is diagnostics._TextDisplay
            assert type(ProgressBar(out=tty, kind="lines")._display()) is diagnostics._LinesDisplay
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(ValueError, match="kind"):
        ProgressBar(kind="fancy")


def test_config_progress_shows_a_bar(capsys):
    x = cdask.from_array(np.arange(8.0), chunks=2) + 1
    with cdask.config.set(progress=True):
        assert float(x.sum().compute()) == 36.0
    out = capsys.readouterr().out
    assert "100% Completed" in out and "\r" not in out      # captured: not a tty
    assert float(x.sum().compute()) == 36.0                 # unset: no bar
    assert capsys.readouterr().out == ""
    with cdask.config.set(progress="text"):
        x.sum().compute()
    assert capsys.readouterr().out.startswith("\r[")
    # an explicit bar in force wins: one bar, not two
    buf = io.StringIO()
    with cdask.config.set(progress=True), ProgressBar(out=buf):
        x.sum().compute()
    assert capsys.readouterr().out == "" and "100% Completed" in buf.getvalue()
    with pytest.raises(ValueError, match="progress"):
        cdask.config.set(progress="fancy")
    assert cdask.config.get("progress") is False


def test_config_progress_from_the_environment():
    code = PRELUDE + "x.sum().compute()\nprint('KEY', cdask.config.get('progress'))\n"
    env = _env()
    env["CDASK_PROGRESS"] = "1"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "100% Completed" in r.stdout and "KEY True" in r.stdout


def test_kinds_agree_with_config():
    assert cdask.config._PROGRESS_KINDS == diagnostics.KINDS


# ------------------------------------------------------------ Jupyter without tqdm
NO_TQDM_IN_JUPYTER = """
import sys, types, warnings
sys.modules["tqdm"] = None          # import tqdm fails, as without cdask[diagnostics]
sys.modules["ipywidgets"] = None
class ZMQInteractiveShell:          # what IPython.get_ipython() is in a kernel
    kernel = object()
ipython = types.ModuleType("IPython")
ipython.get_ipython = ZMQInteractiveShell
sys.modules["IPython"] = ipython
sys.modules["ipykernel"] = types.ModuleType("ipykernel")
""" + PRELUDE + """
from cdask import diagnostics
assert diagnostics._in_jupyter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with ProgressBar():
        x.sum().compute()
    with ProgressBar():
        x.sum().compute()
    with cdask.config.set(progress=True):
        x.sum().compute()
sys.stdout.flush()
for w in caught:
    print("WARNING", w.category.__name__, w.message, file=sys.stderr)
try:
    ProgressBar(kind="widget")
    print("NO ERROR", file=sys.stderr)
except ImportError as e:
    print("IMPORTERROR", e, file=sys.stderr)
"""


def test_jupyter_without_tqdm_falls_back_to_text():
    rc, out, err = run_pipe(NO_TQDM_IN_JUPYTER)
    assert rc == 0, err
    warned = [line for line in err.splitlines() if line.startswith("WARNING")]
    assert len(warned) == 1 and "cdask[diagnostics]" in warned[0], err
    assert out.count("\n") == 3 and out.count("\r[") >= 3       # three text bars
    assert out.count("100% Completed") == 3
    refused = [line for line in err.splitlines() if line.startswith("IMPORTERROR")]
    assert refused and "cdask[diagnostics]" in refused[0], err


# ------------------------------------------------------------ a real kernel
NOTEBOOK_CELLS = [
    """
    import time, numpy as np, cdask
    from cdask.diagnostics import ProgressBar
    def slow(b):
        time.sleep(0.01)
        return b
    def boom(b):
        raise ValueError("boom in block")
    x = cdask.from_array(np.arange(40.0), chunks=4).map_blocks(slow, dtype=float)
    with ProgressBar():
        print(float(x.sum().compute()))
    """,
    """
    with cdask.config.set(progress=True):
        print(float(x.sum().compute()))
    """,
    """
    try:
        with ProgressBar():
            cdask.from_array(np.arange(4.0), chunks=2).map_blocks(boom, dtype=float).compute()
    except ValueError:
        print("raised")
    """,
    """
    print(float(x.sum().compute()))    # no bar
    """,
]


def test_widget_in_a_jupyter_kernel(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    # a kernelspec of its own for this interpreter, so that a fresh venv
    # needs nothing installed beyond the test extra
    spec = tmp_path / "jupyter" / "kernels" / "cdask-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cdask test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("CDASK_NUM_WORKERS", "1")
    monkeypatch.delenv("CDASK_PROGRESS", raising=False)

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in NOTEBOOK_CELLS]
    NotebookClient(nb, kernel_name="cdask-test", timeout=60,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]

    def bars(cell):
        # the bar_style of each progress widget the cell displayed
        styles = []
        for o in cell.outputs:
            view = o.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view is None:
                continue
            box = state[view["model_id"]]["state"]
            for child in box["children"]:
                model = state[child.replace("IPY_MODEL_", "")]
                if model["model_name"] == "FloatProgressModel":
                    styles.append(model["state"]["bar_style"])
        return styles

    def stdout(cell):
        return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")

    assert bars(nb.cells[0]) == ["success"] and stdout(nb.cells[0]) == "780.0\n"
    assert bars(nb.cells[1]) == ["success"] and stdout(nb.cells[1]) == "780.0\n"
    assert bars(nb.cells[2]) == ["danger"] and stdout(nb.cells[2]) == "raised\n"
    assert bars(nb.cells[3]) == [] and stdout(nb.cells[3]) == "780.0\n"
    for cell in nb.cells:
        assert not any(o.get("name") == "stderr" for o in cell.outputs), cell.outputs


def test_persist_shows_the_bar_too():
    import io

    import cdask
    from cdask.diagnostics import ProgressBar

    out = io.StringIO()
    x = cdask.ones(100, chunks=10) + 1
    with ProgressBar(out=out, kind="lines"):
        (p,) = cdask.persist(x)
    assert "100%" in out.getvalue() and "\r" not in out.getvalue()
    assert float(p.sum().compute()) == 200.0
