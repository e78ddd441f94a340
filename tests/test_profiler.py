"""cdask.diagnostics.Profiler: one record per task from the scheduler's own
records (key, operation, worker, times, bytes), the memory held and spilled
over time, partial traces of failed computes, and the trace as a plot, an
animation, files and a DataFrame; an ImportError naming cdask[diagnostics]
when matplotlib or pandas is missing."""
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict

import numpy as np
import pytest

import cdask
import cdask as da
from cdask import diagnostics
from cdask.diagnostics import MemoryData, Profiler, TaskData

matplotlib = pytest.importorskip("matplotlib")
PIL_Image = pytest.importorskip("PIL.Image")
pd = pytest.importorskip("pandas")


def _talk_a():
    a = da.random.random((1200, 1200), chunks=150)       # 64 blocks
    return ((a + 1) * 2) ** 3


def _talk_b():
    b = da.random.random((800, 800), chunks=200)
    return (b - b.mean(axis=0)) + (b.T / b.std())


def _bars(fig):
    """Bars drawn on the trace axes: paths of its collections plus patches."""
    ax = fig.axes[0]
    return sum(len(c.get_paths()) for c in ax.collections) + len(ax.patches)


@pytest.fixture(scope="module")
def prof_b():
    """A profiled compute of the talk's second expression, with its Stats."""
    st = cdask.Stats()
    with Profiler() as prof:
        got = _talk_b().compute(stats=st, num_workers=2)
    assert got.shape == (800, 800)
    return prof, st


# ------------------------------------------------------------------ records
def test_one_record_per_task(prof_b):
    prof, st = prof_b
    res = prof.results
    assert st.total > 20
    assert len(res) == st.total == st.done
    assert all(isinstance(t, TaskData) for t in res)
    keys = [t.key for t in res]
    assert len(set(keys)) == len(keys), "a task recorded twice"
    for t in res:
        assert t.start_time <= t.end_time
        assert prof.start_time <= t.start_time and t.end_time <= prof.end_time
        assert t.bytes >= 0 and isinstance(t.op, str) and t.op
        assert t.worker_id >= -1
        assert t.task is not None          # the graph's task, as dask's TaskData has


def test_intervals_on_one_worker_do_not_overlap(prof_b):
    prof, _ = prof_b
    by_worker = defaultdict(list)
    for t in prof.results:
        by_worker[t.worker_id].append((t.start_time, t.end_time))
    assert sum(map(len, by_worker.values())) == len(prof.results)
    for w, spans in by_worker.items():
        spans.sort()
        for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
            assert s1 >= e0, (w, (s0, e0), (s1, e1))


def test_fused_tasks_name_their_operations():
    with Profiler() as prof:
        _talk_a().compute()
    ops = {t.op for t in prof.results}
    fused = [op for op in ops if op.startswith("fused(")]
    assert fused, ops
    # ((a + 1) * 2) ** 3: the three elementwise operations in one kernel
    assert any({"add", "multiply", "power"} <= set(op[6:-1].split(", ")) for op in fused), fused
    assert "fused" not in ops                        # every fused task was named


def test_memory_over_time_rises_and_falls(prof_b):
    prof, st = prof_b
    mem = prof.memory
    assert all(isinstance(m, MemoryData) for m in mem)
    assert len(mem) == len(prof.results) + 1         # a start point, then one a task
    assert mem[0].held == 0
    times = [m.time for m in mem]
    assert times == sorted(times)
    held = [m.held for m in mem]
    assert 0 < max(held) <= st.peak_bytes     # peak: before the inputs are freed
    # intermediates are freed as their consumers finish
    assert any(b < a for a, b in zip(held, held[1:]))
    assert all(m.spilled == 0 for m in mem)


def test_spilled_bytes_recorded(tmp_path):
    x = da.random.random((4096, 1024), chunks=(256, 1024))       # 2 MiB blocks
    with Profiler() as prof:
        (x + 1).rechunk((4096, 256)).sum(axis=0).compute(
            spill_limit=4 << 20, spill_dir=str(tmp_path), num_workers=2)
    spilled = [m.spilled for m in prof.memory]
    assert max(spilled) > 0
    assert spilled == sorted(spilled)                # bytes spilled so far


def test_failed_compute_gives_partial_trace_and_raises():
    calls = []

    def f(block):
        calls.append(1)
        if len(calls) > 5:
            raise ValueError("block six fails")
        return block + 1

    x = da.ones((40, 10), chunks=(2, 10))            # 20 blocks
    y = x.map_blocks(f, dtype=x.dtype)
    st = cdask.Stats()
    with Profiler() as prof:
        with pytest.raises(ValueError, match="block six fails"):
            y.compute(num_workers=1, stats=st)
    res = prof.results
    assert 0 < len(res) < st.total
    assert len(res) == st.done
    assert sum(t.op == "f" for t in res) == 5        # the five blocks before the error
    assert len(prof.memory) == len(res) + 1


def test_interrupted_compute_gives_partial_trace():
    calls = []

    def g(block):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return block * 2

    y = da.ones((20, 10), chunks=(2, 10)).map_blocks(g, dtype=float)
    with Profiler() as prof:
        with pytest.raises(KeyboardInterrupt):
            y.compute(num_workers=1)
    assert sum(t.op == "g" for t in prof.results) == 3


def test_talk_fail_case_traced_and_drawn():
    a = da.random.random((600, 400), chunks=100)
    b = da.random.random((600, 400), chunks=100)
    st = cdask.Stats()
    with Profiler() as prof:
        a.T.dot(b).__sub__(b.mean(axis=0)).compute(stats=st)
    assert len(prof.results) == st.total
    assert _bars(prof.plot()) == st.total


def test_records_keep_no_extra_references():
    key = "a-key-of-its-own-%d" % os.getpid()
    dsk = {key: (cdask.kernels.ones, 10), "s": (cdask.kernels.sum, [key])}
    before = sys.getrefcount(key)
    st = cdask.Stats()
    cdask.get(dsk, "s", stats=st, record=True)
    assert [r[0] for r in st.records] == [key, "s"]
    assert [m[1] >= 0 for m in st.memory] == [True, True]
    del st
    assert sys.getrefcount(key) == before
    st = cdask.Stats()
    cdask.get(dsk, "s", stats=st, record=True)      # never read
    del st
    assert sys.getrefcount(key) == before


def test_several_computes_add_up_and_clear():
    prof = Profiler()
    prof.register()
    try:
        da.ones((10, 10), chunks=5).sum().compute()
        n1 = len(prof.results)
        da.ones((10, 10), chunks=5).sum().compute()
    finally:
        prof.unregister()
    assert n1 > 0 and len(prof.results) == 2 * n1
    assert sum(m.held == 0 and i > 0 for i, m in enumerate(prof.memory)) >= 1
    da.ones((10, 10), chunks=5).sum().compute()      # not in force any more
    assert len(prof.results) == 2 * n1
    prof.clear()
    assert prof.results == [] and prof.memory == []


def test_no_profiler_no_recording():
    st = cdask.Stats()
    da.ones((10, 10), chunks=5).sum().compute(stats=st)
    assert st.records == []


def test_to_dataframe(prof_b):
    prof, st = prof_b
    df = prof.to_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["key", "task", "start_time", "end_time", "worker_id",
                                "bytes", "op"]
    assert len(df) == st.total
    assert (df.end_time >= df.start_time).all()
    assert df.bytes.sum() == sum(t.bytes for t in prof.results)


# ----------------------------------------------------------------- pictures
def test_plot_one_bar_per_record(prof_b):
    prof, _ = prof_b
    fig = prof.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    assert _bars(fig) == len(prof.results)
    ax, axm = fig.axes[:2]
    # a row per worker, a legend entry per operation
    workers = {t.worker_id for t in prof.results}
    assert len(ax.get_yticks()) == len(workers)
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert labels == {t.op for t in prof.results}
    # bars coloured by operation: as many colours as operations
    cols = {tuple(c) for c in ax.collections[0].get_facecolors()}
    assert len(cols) == len(labels)
    # memory underneath: the held curve reaches the peak
    held = axm.get_lines()[0].get_ydata()
    unit = axm.get_ylabel()
    scale = {"bytes": 1, "KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30}[unit]
    assert math.isclose(max(held) * scale, max(m.held for m in prof.memory))
    # no pyplot figure left open
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_plot_files(prof_b, tmp_path):
    prof, _ = prof_b
    png, svg = tmp_path / "trace.png", tmp_path / "trace.svg"
    fig = prof.plot(png)
    assert _bars(fig) == len(prof.results)
    prof.plot(str(svg))
    with PIL_Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")


def test_animate_gif_frames(tmp_path):
    with Profiler() as prof:
        _talk_a().compute(num_workers=2)
    n = len(prof.results)
    assert n >= 64
    gif = tmp_path / "trace.gif"
    assert prof.animate(gif) == gif
    with PIL_Image.open(gif) as im:
        assert im.format == "GIF"
        assert im.n_frames >= n / 10
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_animation_replays_the_trace(prof_b):
    prof, _ = prof_b
    anim = prof.animate(frames=8)
    assert isinstance(anim, matplotlib.animation.FuncAnimation)
    anim._draw_was_started = True    # not shown: no "deleted without rendering" warning
    # the frames, through the trace object animate() draws them with
    tr = diagnostics._Trace(prof)
    tr.figure(8.0, 80, None)
    tr.draw_all()
    times = tr.frame_times(8)
    assert len(times) == 8 and times == sorted(times)
    res = sorted(prof.results, key=lambda t: t.start_time)
    t_mid = times[4]
    tr.draw_until(t_mid)
    # halfway: the tasks started by then, none cut past then, the memory until then
    started = sum(t.start_time - prof.start_time <= t_mid for t in res)
    assert 0 < started < len(res)
    assert _bars(tr.fig) == started
    right = max(v[:, 0].max() for v in (p.vertices for p in tr.bars.get_paths()))
    assert right <= t_mid + 1e-9
    assert max(tr.held_line.get_xdata()) <= t_mid + 1e-9
    tr.draw_until(times[-1])
    assert _bars(tr.fig) == len(res)


def test_animate_in_jupyter_returns_html(prof_b, monkeypatch):
    pytest.importorskip("IPython")
    prof, _ = prof_b
    monkeypatch.setattr(diagnostics, "_in_jupyter", lambda: True)
    html = prof.animate(frames=3)
    from IPython.display import HTML
    assert isinstance(html, HTML)
    assert "<script" in html.data and "img" in html.data


# ------------------------------------------------------------- no extras
_NO_MODULE = r"""
import sys
sys.modules[{mod!r}] = None
import cdask as da
from cdask.diagnostics import Profiler
with Profiler() as p:
    da.ones((10, 10), chunks=5).sum().compute()
assert len(p.results) > 0          # recording needs none of the extras
for call in {calls!r}:
    try:
        eval(call)
    except ImportError as e:
        assert "cdask[diagnostics]" in str(e), str(e)
        print("ImportError", call)
    else:
        print("no error", call)
"""


@pytest.mark.parametrize("mod, calls", [
    ("matplotlib", ["p.plot()", "p.animate()", "p.plot('x.png')"]),
    ("pandas", ["p.to_dataframe()"]),
    ("PIL", ["p.animate('x.gif')"]),
])
def test_import_error_names_the_extra(mod, calls, tmp_path):
    code = _NO_MODULE.format(mod=mod, calls=calls)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == ["ImportError " + c for c in calls]
    assert not os.path.exists(tmp_path / "x.png") and not os.path.exists(tmp_path / "x.gif")


def test_huge_trace_bars_merged_within_half_a_pixel(prof_b):
    prof, _ = prof_b
    tr = diagnostics._Trace(prof)
    tr.figure(5.0, 20, None)          # a small figure: many tasks share a pixel
    tr.draw_all()
    tr.fig.canvas.draw()
    tr.merge = 0.5 * tr.ax.get_xlim()[1] / tr.ax.get_window_extent().width
    s, e, r, o = tr._bars_until(len(tr.start))
    assert 0 < len(s) < len(tr.start)
    # every task lies inside one bar of its row and its operation
    for ts, te, tr_row, top in zip(tr.start, tr.end, tr.row, tr.op_index):
        inside = (s <= ts) & (te <= e) & (r == tr_row) & (o == top)
        assert inside.sum() == 1
    # and bars of a row do not overlap
    for row in set(r):
        spans = sorted(zip(s[r == row], e[r == row]))
        assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:]))


def test_plot_shows_itself_in_jupyter(prof_b):
    # a Figure made without pyplot: IPython displays it through _repr_png_
    prof, _ = prof_b
    png = prof.plot()._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_with_block_starts_afresh_and_times_it():
    prof = Profiler()
    with prof:
        da.ones((10, 10), chunks=5).sum().compute()
    n = len(prof.results)
    with prof:
        da.ones((10, 10), chunks=5).sum().compute()
    assert len(prof.results) == n > 0                # as dask's: entering clears
    assert prof.start_time <= min(t.start_time for t in prof.results)
    assert prof.end_time >= max(t.end_time for t in prof.results)


def test_dask_profiler_in_force_gets_cdask_tasks():
    dd = pytest.importorskip("dask.diagnostics")
    st = cdask.Stats()
    with dd.Profiler() as dprof:
        da.ones((10, 10), chunks=5).sum().compute(stats=st)
    assert len(dprof.results) == st.total > 0
    t = dprof.results[0]
    assert type(t).__module__.startswith("dask.")
    assert dprof.start_time <= t.start_time <= t.end_time <= dprof.end_time
    assert t.key in dprof._dsk


def test_records_read_only_when_the_profiler_is():
    with Profiler() as prof:
        da.ones((10, 10), chunks=5).sum().compute()
    run = prof._runs[0]
    assert run._stats is not None                    # nothing made into tuples yet
    assert len(prof.results) > 0
    assert run._stats is None and run.dsk is None    # read once, graph dropped


def test_persist_is_profiled_too():
    x = da.ones((20, 20), chunks=5) + 1
    with Profiler() as prof:
        y = x.persist()
    assert len(prof.results) >= 16                   # a task a block at least
    assert float(y.sum().compute()) == 800.0


def test_record_with_nothing_to_run():
    st = cdask.Stats()
    assert cdask.get({"a": 1}, [], stats=st, record=True) == []
    assert st.records == [] and st.memory == []
    assert cdask.get({"a": 1}, "a", stats=st, record=True) == 1
    assert st.records == [] and st.memory == []
