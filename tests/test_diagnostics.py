"""cdask.diagnostics.ProgressBar, and dask's ProgressBar honoured for cdask computes."""
import io
import re

import numpy as np
import pytest

import cdask
from cdask.diagnostics import ProgressBar


def _slow(b):
    import time

    time.sleep(0.02)
    return b


def _array():
    return cdask.from_array(np.arange(40.0), chunks=2).map_blocks(_slow, dtype=float)


def test_progress_bar_draws_to_completion():
    buf = io.StringIO()
    with ProgressBar(out=buf, dt=0.05) as pb:
        assert float(_array().sum().compute()) == np.arange(40.0).sum()
    text = buf.getvalue()
    frames = re.findall(r"\[([# ]*)\] \| +(\d+)% Completed", text)
    assert frames and frames[-1][1] == "100" and frames[-1][0] == "#" * 40
    assert len(frames) >= 2                       # drawn while running, then at the end
    assert text.endswith("\n") and pb.last_duration > 0
    # off after the with block
    buf2 = io.StringIO()
    pb2 = ProgressBar(out=buf2)
    _array().sum().compute()
    assert buf2.getvalue() == ""


def test_register_minimum_and_errors():
    buf = io.StringIO()
    pb = ProgressBar(out=buf, minimum=30)          # never shown: the compute is shorter
    pb.register()
    try:
        _array().compute()
    finally:
        pb.unregister()
    assert buf.getvalue() == ""
    buf = io.StringIO()
    bad = cdask.from_array(np.arange(4.0), chunks=2).map_blocks(_boom, dtype=float)
    with ProgressBar(out=buf):
        with pytest.raises(ZeroDivisionError):
            bad.compute()
    assert "Completed" in buf.getvalue() and buf.getvalue().endswith("\n")


def _boom(b):
    return 1 / 0


def test_dask_progress_bar_is_honoured():
    diag = pytest.importorskip("dask.diagnostics")
    buf = io.StringIO()
    with diag.ProgressBar(out=buf):
        _array().sum().compute()
    assert "100% Completed" in buf.getvalue()


def test_user_callback_still_called_with_a_bar():
    seen = []
    with ProgressBar(out=io.StringIO()):
        _array().sum().compute(callback=lambda s: seen.append(s.done), interval=0.01)
    assert seen
