"""Array.explain and cdask.explain: the plan told before it runs, built on
the steps compute() takes (compute.prepare): layers and fused tasks with
their counts, the projected peak against the budget (within 2x of what a
Profiler then measures, on the talk's three expressions at 6000 x 6000),
what would spill, the budget checks' failures; and nothing is run."""
import numpy as np
import pytest

import cdask
import cdask as da
from cdask.array.report import PlanReport
from cdask.diagnostics import Profiler

N = 6000                     # as benchmarks/bench_expressions.py


@pytest.fixture(scope="module")
def talk_inputs():
    rng = np.random.default_rng(0)
    return rng.random((N, N)), rng.random((N, N))


TALK = {
    1: lambda A, B: ((A + 1) * 2) ** 3,
    2: lambda A, B: (B - B.mean(axis=0)) + (B.T / B.std()),
    3: lambda A, B: A.T.dot(B) - B.mean(axis=0),
}


def _measured(prof, result_bytes):
    """The peak a Profiler measured: what the scheduler held at its most,
    plus the result compute() allocated before the run."""
    return max(m.held for m in prof.memory) + result_bytes


@pytest.mark.parametrize("expr", sorted(TALK))
def test_projected_peak_within_2x_of_the_measured_one(talk_inputs, expr):
    A0, B0 = talk_inputs
    A, B = da.from_array(A0), da.from_array(B0)
    x = TALK[expr](A, B)
    with Profiler() as before:
        rep = x.explain(print=False)
    assert before.results == []                      # explain ran no task
    assert rep.result_bytes == x.nbytes == N * N * 8
    with Profiler() as prof:
        got = x.compute()
    assert got.shape == (N, N)
    measured = _measured(prof, x.nbytes)
    assert measured / 2 <= rep.projected_peak <= measured * 2, (rep.projected_peak, measured)
    # the scheduler's part alone: in the span of the two replays (the real
    # run goes one way or the other as its threads' timing has it), give or
    # take 2x
    held = max(m.held for m in prof.memory)
    assert rep.projected_held_low <= rep.projected_held
    assert rep.projected_held_low / 2 <= held <= rep.projected_held * 2 + 4096, (
        rep.projected_held_low, rep.projected_held, held)
    # the tasks it said would run are the tasks that ran
    assert rep.tasks_run == len(prof.results)


def test_nothing_runs():
    calls = []

    def f(b):
        calls.append(1)
        return b + 1

    x = da.ones((40, 40), chunks=10).map_blocks(f, dtype=float).sum()
    st = cdask.Stats()
    with Profiler() as prof:
        rep = x.explain(print=False, stats=st)
        cdask.explain(x, x + 1, print=False)
    assert calls == [] and prof.results == [] and st.done == 0
    run = rep[rep.index("As it would run"):]
    assert "\n  %-22s %6d tasks  f\n" % ("f", 16) in run     # f's 16 blocks would run
    with Profiler() as prof:
        x.compute()
    assert len(calls) == 16 and rep.tasks_run == len(prof.results)


def test_layers_and_fused_kernels_with_task_counts():
    x = da.ones((8, 8), chunks=4)
    y = ((x + 1) * 2) ** 3
    rep = y.explain(print=False)
    text = str(rep)
    assert text.startswith("cdask plan for power (8, 8) float64 - nothing has run")
    built = text[text.index("Layers as built"):text.index("As it would run")]
    for op in ("ones", "add", "multiply", "power"):
        assert "\n  %-22s %6d tasks" % (op, 4) in built
    assert "4 layers, 16 tasks" in built and rep.tasks_built == 16
    run = text[text.index("As it would run"):text.index("Memory")]
    assert "fused(power, multiply, add)" in run
    assert "no tasks of their own" in run and "add" in run.split("no tasks of their own")[1]
    with Profiler() as prof:
        y.compute()
    assert rep.tasks_run == len(prof.results)


def test_reports_what_would_spill(tmp_path):
    x = da.random.random((4096, 1024), chunks=(256, 1024))       # 2 MiB blocks
    y = (x + 1).rechunk((4096, 256)).sum(axis=0)
    kw = dict(spill_limit=4 << 20, spill_dir=str(tmp_path), num_workers=2)
    rep = y.explain(print=False, **kw)
    assert rep.spill_limit == 4 << 20
    assert rep.projected_spilled > 0
    assert "would spill" in rep and "nothing would spill" not in rep
    with Profiler() as prof:
        y.compute(**kw)
    assert max(m.spilled for m in prof.memory) > 0              # and it did
    quiet = y.explain(print=False, num_workers=2)
    assert quiet.projected_spilled == 0 and "nothing would spill" in quiet


def test_budget_failures_are_reported_not_raised():
    x = da.ones((2000, 2000), chunks=500) + 1                  # a 30.5 MiB result
    with cdask.config.set(memory_limit="16 MiB"):
        rep = x.explain(print=False)
        with pytest.raises(MemoryError) as e:
            x.compute()
    assert rep.problems and "Would fail: " + str(e.value) in rep
    assert rep.budget == 16 << 20


def test_prints_and_shows_itself(capsys):
    x = da.ones((4, 4), chunks=2).sum()
    rep = x.explain()
    out = capsys.readouterr().out
    assert out == str(rep) + "\n"
    assert isinstance(rep, str) and isinstance(rep, PlanReport)
    assert repr(rep) == str(rep)                    # readable, not a quoted string
    html = rep._repr_html_()
    assert html.startswith("<pre") and "cdask plan for sum" in html
    assert "<" not in html[html.index(">") + 1:html.rindex("</pre>")].replace("&lt;", "")
    # in Jupyter: not shown again as the result of the cell that printed it;
    # shown in a later cell
    shown = []
    import IPython
    import IPython.display

    class Shell:
        execution_count = 7

    real = IPython.display.display, IPython.get_ipython
    IPython.display.display = lambda obj: shown.append(obj)
    IPython.get_ipython = lambda: Shell
    try:
        rep = x.explain()
        rep._ipython_display_()
        assert shown == []
        Shell.execution_count = 8
        rep._ipython_display_()
        assert len(shown) == 1 and shown[0].data == html
        x.explain(print=False)._ipython_display_()
        assert len(shown) == 2
    finally:
        IPython.display.display, IPython.get_ipython = real
    capsys.readouterr()
    assert x.explain(print=False) == rep and capsys.readouterr().out == ""


def test_unknown_chunk_sizes_and_several_arrays():
    v = da.random.default_rng(0).standard_normal(1000, chunks=100)
    m = v[v > 0]
    rep = cdask.explain(m.mean(), m, print=False)
    assert rep.startswith("cdask plan for mean () float64, getitem-mask (nan,) float64")
    assert rep.result_bytes == 0            # the selection's size is not known: not counted
    with pytest.raises(TypeError, match="cdask Arrays"):
        cdask.explain(np.ones(3))


def test_the_talks_mean_of_an_array_on_disk_over_the_budget(tmp_path):
    # blocks read in place by the fused reduction: their getters never run
    # (the scheduler runs what the keys need), nothing is held or spilled
    path = str(tmp_path / "x.npy")
    da.random.default_rng(1).standard_normal(4_000_000, chunks=500_000).to_npy(path)
    x = da.from_npy(path, chunks=500_000)                    # 8 blocks of 4 MB
    y = x[x > 0].mean()
    with cdask.config.set(memory_limit="8 MiB"):
        rep = y.explain(print=False)
        with Profiler() as prof:
            got = y.compute()
    assert rep.budget == 8 << 20 and x.nbytes > 3 * rep.budget
    assert rep.projected_spilled == 0 and rep.projected_held < 4096
    assert "array" in rep.split("no tasks of their own")[1]   # read where they lie
    assert "fused(mean, greater)" in rep
    assert rep.tasks_run == len(prof.results)
    assert max(m.held for m in prof.memory) < 4096
    xn = np.load(path)
    assert np.isclose(got, xn[xn > 0].mean(), rtol=1e-12)
