"""Progress bars and profiles of cdask computations (``dask.diagnostics``'s
interface): ``ProgressBar`` and ``Profiler``.

    from cdask.diagnostics import ProgressBar
    with ProgressBar():
        x[x > 0].mean().compute()

    [########################################] | 100% Completed | 1.52 s

    cdask.config.set(progress=True)      # a bar for every compute from now on

The bar is drawn from the counters the C scheduler fills (``cdask.Stats``:
tasks done and total), on the calling thread, every ``dt`` seconds while the
compute runs, and once more at the end.  ``ProgressBar().register()`` turns
it on for every compute until ``unregister()``; so does the config key
``progress`` (True, or the name of a kind below) while no other bar is in
force.  A ``dask.diagnostics.ProgressBar`` in force (``with dask.diagnostics.
ProgressBar(): ...``) is honoured too, so a dask user's notebook shows its
bars for cdask arrays.

How it is drawn depends on where it runs (``kind="auto"``, the default):

    widget  in a Jupyter kernel, with no ``out`` given: a tqdm notebook
            widget (needs tqdm and ipywidgets: ``pip install
            "cdask[diagnostics]"``).  Green when done, red on an error.
    text    on a terminal (``out.isatty()``), or into a Jupyter kernel's
            stream: one line redrawn in place with ``\\r``, with the elapsed
            time, fitted to the terminal's width.
    lines   into a file or a pipe: plain lines and no ``\\r`` - one when the
            compute has run for ``dt`` s, one per quarter of the tasks at
            most every 2 s, one after a quiet spell (10 s, then a quarter of
            the time run so far), and a last one with the outcome and the
            elapsed time.  An hour-long compute logs some twenty.

``ProgressBar(kind="text")`` (or "lines", "widget") forces one.  In Jupyter
without tqdm or ipywidgets the text bar is used, with one warning per process;
only an explicit ``kind="widget"`` raises ImportError.

The counters are read when ``cdask.get`` calls its callback: between the
Python tasks the calling thread runs, so a bar over long Python tasks moves
in steps of a task or more.

An error or a Ctrl-C in the compute closes the bar before the exception goes
on unchanged: the last state is drawn with "failed: <error type>" or
"interrupted", the line ends with a newline, a widget turns red.  The bar
itself never raises into a compute: if drawing fails (a closed file...), it
warns once and stays silent for the rest of that compute.

Profiler
--------
    from cdask.diagnostics import Profiler
    with Profiler() as prof:
        ((A + 1) * 2 ** 3).compute()
    prof.results          # [TaskData(key, task, start_time, end_time,
                          #           worker_id, bytes, op), ...]
    prof.memory           # [MemoryData(time, held, spilled), ...]
    prof.to_dataframe()   # the results in pandas
    prof.plot("trace.png")       # a row per worker, bars by operation,
                                 # memory held and spilled underneath
    prof.animate("trace.gif")    # the same, replayed as the workers went

A profiler in force (``with``, or ``register()`` until ``unregister()``)
makes every compute and persist run with ``cdask.get(..., record=True)``: the
scheduler itself keeps one record per task (key, worker, start and end on
``time.monotonic()``'s clock, bytes made) and, taken under the same lock,
the bytes held - the task's output counted, the inputs it was the last to
need freed - and spilled so far.  That is the whole recorder: nothing runs
per task in Python, and the records become Python objects only when first
read (``get(record=True)`` on a million tasks costs a few percent, see
``benchmarks/bench_scheduler.py``, part ``record``).  The records are collected in a
``finally``: a compute that raises or is interrupted leaves the trace of the
tasks that finished, then the exception goes on.

``worker_id`` is the pool thread that ran the task, -1 for the thread that
called compute (it runs the Python tasks first).  ``op`` is the kernel's or
function's name; a fused task's is ``fused(...)`` with the operations its
kernel holds (read from the kernel's repr, once a kernel).  ``held`` counts
the values the scheduler holds (chunks and Python results), not the
process's RSS.

``plot`` returns a matplotlib Figure and ``animate`` a GIF (with a
filename, through Pillow), an HTML animation in Jupyter (``to_jshtml``: no
ffmpeg), or the FuncAnimation elsewhere.  Figures are plain
``matplotlib.figure.Figure`` objects on an Agg canvas, never pyplot's: no
display is needed and none is left open.  These need matplotlib, Pillow and
pandas - ``pip install "cdask[diagnostics]"``; without them the call raises
an ImportError saying so.
"""

import collections
import math
import os
import re
import sys
import threading
import time
import warnings

from . import config
from ._core import Kernel, Stats

__all__ = ["ProgressBar", "KINDS", "Profiler", "TaskData", "MemoryData", "task_operation"]

KINDS = ("auto", "widget", "text", "lines")

_EXTRA_HINT = 'pip install "cdask[diagnostics]"'

_active = []              # bars in force (context managers and registered ones)
_profilers = []           # profilers in force, likewise
_lock = threading.Lock()
_warned_no_widget = False  # the Jupyter fallback to text warns once per process


class ProgressBar:
    """A progress bar for cdask computes (see the module docstring).

    minimum: seconds a compute must run before the bar is shown; width:
    characters of the text bar; dt: seconds between updates; out: a file
    (default: sys.stdout when the compute starts); kind: "auto" (by where it
    runs), "widget", "text" or "lines"."""

    def __init__(self, minimum=0, width=40, dt=0.1, out=None, kind="auto"):
        if kind not in KINDS:
            raise ValueError("ProgressBar: kind must be one of %s, got %r"
                             % (", ".join(map(repr, KINDS)), kind))
        if kind == "widget" and _widget_class() is None:
            raise ImportError("ProgressBar(kind='widget') needs tqdm and ipywidgets: "
                              + _EXTRA_HINT)
        self.minimum = minimum
        self.width = width
        self.dt = dt
        self.out = out
        self.kind = kind
        self.last_duration = None

    def __repr__(self):
        return "<cdask.diagnostics.ProgressBar kind=%r>" % self.kind

    # ---- turning it on and off -------------------------------------------
    def __enter__(self):
        self.register()
        return self

    def __exit__(self, *exc):
        self.unregister()

    def register(self):
        with _lock:
            if self not in _active:
                _active.append(self)

    def unregister(self):
        with _lock:
            if self in _active:
                _active.remove(self)

    # ---- one compute -------------------------------------------------------
    def _display(self):
        """A new display for one compute, of the kind that fits its output."""
        kind = _resolve_kind(self.kind, self.out)
        if kind == "widget":
            return _WidgetDisplay(self)
        out = self.out if self.out is not None else sys.stdout
        if kind == "text":
            return _TextDisplay(self, out)
        return _LinesDisplay(self, out)


# ---------------------------------------------------------------- displays
class _Display:
    """What one bar draws during one compute.  update() runs at every
    callback, close() once at the end; both swallow their own errors (a
    progress bar must not change what the compute raises or returns)."""

    def __init__(self, bar):
        self.bar = bar
        self.t0 = time.perf_counter()
        self.shown = False
        self.broken = False

    def update(self, done, total):
        if self.broken:
            return
        elapsed = time.perf_counter() - self.t0
        if elapsed < self.bar.minimum:
            return
        try:
            self.shown = True
            self.draw(done, total, elapsed)
        except Exception as e:   # noqa: BLE001 - never into the compute
            self._break(e)

    def close(self, done, total, exc):
        elapsed = time.perf_counter() - self.t0
        self.bar.last_duration = elapsed
        if self.broken or elapsed < self.bar.minimum:
            return
        if exc is None:
            done = total
        try:
            self.finish(done, total, elapsed, _outcome(exc))
        except Exception as e:   # noqa: BLE001
            self._break(e)

    def _break(self, e):
        self.broken = True
        warnings.warn("cdask.diagnostics: progress bar turned off for this compute: %s: %s"
                      % (type(e).__name__, e), RuntimeWarning, stacklevel=2)


class _TextDisplay(_Display):
    """One line redrawn in place with a carriage return (a terminal)."""

    def __init__(self, bar, out):
        super().__init__(bar)
        self.out = out
        self.width = _fit_width(bar.width, out)
        self.last = None
        self.drawn = 0     # length of the line on screen, to blank a longer one

    def _line(self, done, total, elapsed, suffix=""):
        frac = done / total if total else 1.0
        return "[%-*s] | %3d%% Completed | %s%s" % (
            self.width, "#" * int(self.width * frac), int(100 * frac),
            _fmt_time(elapsed), suffix)

    def _write(self, text, end=""):
        pad = " " * max(0, self.drawn - len(text))
        self.out.write("\r" + text + pad + end)
        self.out.flush()
        self.drawn = len(text)

    def draw(self, done, total, elapsed):
        if total and done >= total:
            return       # the last frame is close()'s
        text = self._line(done, total, elapsed)
        if text != self.last:
            self.last = text
            self._write(text)

    def finish(self, done, total, elapsed, outcome):
        self._write(self._line(done, total, elapsed, outcome and " | " + outcome), "\n")


class _LinesDisplay(_Display):
    """Whole lines, few of them, no carriage returns (a file or a pipe)."""

    STEP = 0.25      # a line per quarter of the tasks...
    STEP_GAP = 2.0   # ...at most every 2 s,
    QUIET = 10.0     # and one after max(QUIET, elapsed / 4) s without a line

    def __init__(self, bar, out):
        super().__init__(bar)
        self.out = out
        self.width = bar.width
        self.lines = 0
        self.t_line = 0.0
        self.step = 0

    def _line(self, done, total, elapsed, suffix=""):
        frac = done / total if total else 1.0
        return "[%-*s] | %3d%% Completed | %d/%d tasks | %s%s\n" % (
            self.width, "#" * int(self.width * frac), int(100 * frac), done, total,
            _fmt_time(elapsed), suffix)

    def _write(self, text, elapsed):
        self.out.write(text)
        self.out.flush()
        self.lines += 1
        self.t_line = elapsed

    def draw(self, done, total, elapsed):
        if total and done >= total:
            return       # the last line is close()'s
        step = int(done / total / self.STEP) if total else 0
        since = elapsed - self.t_line
        if (self.lines == 0
                or (step > self.step and since >= self.STEP_GAP)
                or since >= max(self.QUIET, elapsed / 4)):
            self.step = max(self.step, step)
            self._write(self._line(done, total, elapsed), elapsed)

    def finish(self, done, total, elapsed, outcome):
        self._write(self._line(done, total, elapsed, outcome and " | " + outcome), elapsed)


class _WidgetDisplay(_Display):
    """A tqdm notebook widget, made at the first update past ``minimum``."""

    def __init__(self, bar):
        super().__init__(bar)
        self.tqdm = None

    def _widget(self, total, elapsed):
        if self.tqdm is None:
            self.tqdm = _widget_class()(total=total, desc="cdask", unit="task", leave=True)
            # the widget's clock starts with the compute, not when first shown
            self.tqdm.start_t -= elapsed
        return self.tqdm

    def draw(self, done, total, elapsed):
        w = self._widget(total, elapsed)
        if w.n != done:
            w.n = done
            w.refresh()

    def finish(self, done, total, elapsed, outcome):
        w = self._widget(total, elapsed)
        w.n = done
        if outcome:
            w.set_postfix_str(outcome, refresh=False)
            w.refresh()
            w.disp(bar_style="danger")
        w.close()


def _outcome(exc):
    if exc is None:
        return ""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return "failed: " + type(exc).__name__


# ------------------------------------------------------ where are we running
def _in_jupyter():
    """True inside an IPython kernel (Jupyter, VS Code, Colab...), False in a
    terminal IPython or plain Python.  Looks only at modules already loaded."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:   # noqa: BLE001 - a broken IPython is not a kernel
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def _is_kernel_stream(f):
    # ipykernel's OutStream: not a tty, but the front end honours "\r"
    return type(f).__module__.startswith("ipykernel")


def _isatty(f):
    try:
        return bool(f.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _widget_class():
    """tqdm's notebook bar, or None without tqdm or ipywidgets."""
    try:
        import ipywidgets  # noqa: F401 - tqdm.notebook imports without it, then fails
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:
        return None
    return notebook_tqdm


def _resolve_kind(kind, out):
    if kind != "auto":
        return kind
    jupyter = _in_jupyter()
    if jupyter and out is None:
        if _widget_class() is not None:
            return "widget"
        _warn_no_widget()
        return "text"
    f = out if out is not None else sys.stdout
    if _isatty(f) or (jupyter and _is_kernel_stream(f)):
        return "text"
    return "lines"


def _warn_no_widget():
    global _warned_no_widget
    with _lock:
        if _warned_no_widget:
            return
        _warned_no_widget = True
    warnings.warn("cdask.diagnostics: a text progress bar is shown instead of a Jupyter "
                  "widget, which needs tqdm and ipywidgets: " + _EXTRA_HINT,
                  UserWarning, stacklevel=4)


def _fit_width(width, out):
    """The bar's width, narrowed so the whole line fits the terminal."""
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return width
    room = columns - len("[] | 100% Completed | 59min 59.9s") - 1
    if columns <= 0 or room >= width:
        return width
    return max(room, 10)


def _fmt_time(t):
    if t < 60:
        return "%.2f s" % t
    m, s = divmod(t, 60)
    if m < 60:
        return "%dmin %.1fs" % (m, s)
    h, m = divmod(m, 60)
    return "%dhr %dmin" % (h, m)


# ------------------------------------------------------------ which bars
def _dask_callbacks(name):
    """dask.diagnostics callbacks of class `name` in force (dask keeps the
    callbacks' method tuples in Callback.active; their owner is the object)."""
    mod = sys.modules.get("dask.callbacks")
    if mod is None:
        return []
    out = []
    seen = set()
    for entry in list(getattr(mod.Callback, "active", ())):
        cb = entry
        if isinstance(entry, tuple):
            owners = [getattr(f, "__self__", None) for f in entry if f is not None]
            cb = next((o for o in owners if o is not None), None)
        if cb is None or id(cb) in seen:
            continue
        seen.add(id(cb))
        if type(cb).__name__ == name and type(cb).__module__.startswith("dask."):
            out.append(cb)
    return out


def _dask_bars():
    # dask.diagnostics.ProgressBar objects in force, each with the cdask bar
    # that mirrors it
    return [(cb, ProgressBar(minimum=getattr(cb, "_minimum", 0),
                             width=getattr(cb, "_width", 40),
                             dt=getattr(cb, "_dt", 0.1),
                             out=getattr(cb, "_file", None)))
            for cb in _dask_callbacks("ProgressBar")]


def _feed_dask_profiler(dp, prof, dsk):
    """Give a dask.diagnostics.Profiler in force the tasks of a cdask
    compute, as its own callbacks would have (dask's TaskData; the same
    monotonic clock as its timer), so its visualize() shows them."""
    try:
        from dask.diagnostics.profile import TaskData as DaskTaskData
        dp._dsk.update(dict(dsk.items()))
        dp.results.extend(DaskTaskData(t.key, t.task, t.start_time, t.end_time, t.worker_id)
                          for t in prof.results)
    except Exception as e:   # noqa: BLE001 - never into the compute
        warnings.warn("cdask.diagnostics: could not fill a dask Profiler: %s: %s"
                      % (type(e).__name__, e), RuntimeWarning, stacklevel=3)


def _config_bar():
    # the config key "progress": True/False/None, or a kind
    value = config.get("progress", False)
    if not value:
        return None
    return ProgressBar(kind=value if isinstance(value, str) else "auto")


def get_with_progress(get, dsk, keys, **kwargs):
    """``get(dsk, keys, **kwargs)`` with the bars in force drawn around it and
    the profilers in force fed its records."""
    with _lock:
        profilers = list(_profilers)
    mirrored = [(dp, Profiler()) for dp in _dask_callbacks("Profiler")]
    profilers += [p for _, p in mirrored]
    if not profilers:
        return _get_with_bars(get, dsk, keys, kwargs)
    stats = kwargs.get("stats")
    own = stats is None
    if own:
        stats = kwargs["stats"] = Stats()
    kwargs["record"] = True
    t0 = time.monotonic()
    try:
        return _get_with_bars(get, dsk, keys, kwargs)
    finally:
        # also after an error or a Ctrl-C: the scheduler keeps the records
        # of the tasks that finished, and a partial trace is what shows why
        t1 = time.monotonic()
        for p in profilers:
            p._add_run(stats, dsk, t0, t1, own)
        for dp, p in mirrored:
            _feed_dask_profiler(dp, p, dsk)


def _get_with_bars(get, dsk, keys, kwargs):
    with _lock:
        bars = list(_active)
    mirrored = _dask_bars()
    bars += [b for _, b in mirrored]
    if not bars:
        bar = _config_bar()
        if bar is None:
            return get(dsk, keys, **kwargs)
        bars = [bar]
    displays = [b._display() for b in bars]
    stats = kwargs.get("stats")
    if stats is None:
        stats = kwargs["stats"] = Stats()
    user_cb = kwargs.get("callback")

    def callback(s):
        done, total = s.done, s.total
        for d in displays:
            d.update(done, total)
        if user_cb is not None:
            user_cb(s)

    kwargs["callback"] = callback
    kwargs["interval"] = min([b.dt for b in bars] + [kwargs.get("interval", 1.0)])
    try:
        result = get(dsk, keys, **kwargs)
    except BaseException as exc:
        _close(displays, stats, exc, mirrored)
        raise
    _close(displays, stats, None, mirrored)
    return result


def _close(displays, stats, exc, mirrored):
    for d in displays:
        d.close(stats.done, stats.total, exc)
    for cb, bar in mirrored:
        if bar.last_duration is not None:
            cb.last_duration = bar.last_duration


# ================================================================ profiler
TaskData = collections.namedtuple(
    "TaskData", ["key", "task", "start_time", "end_time", "worker_id", "bytes", "op"])
TaskData.__doc__ = """One task of a profiled compute: dask's TaskData fields
(key, task, start_time, end_time, worker_id), then the bytes of the value it
made and its operation (a kernel's or function's name; for a fused kernel,
"fused(...)" naming the operations it holds).  Times are time.monotonic()
seconds; worker_id is the pool thread, -1 for the thread that called
compute."""

MemoryData = collections.namedtuple("MemoryData", ["time", "held", "spilled"])
MemoryData.__doc__ = """What a profiled compute held after a task ended
(time.monotonic() seconds): bytes of values in memory (its output counted,
inputs no longer needed freed) and bytes spilled to disk so far."""

_FUSED_OP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\(")


def _fused_op(kernel):
    """'fused(mean, add, greater)' from a fused kernel's repr, e.g.
    <cdask fused kernel mean(add(in0, 1)[greater(...)])>: the operations it
    holds, in the order they are written, each once."""
    text = repr(kernel)
    body = text[len("<cdask fused kernel "):].rstrip(">").split(";")[0]
    ops = list(dict.fromkeys(_FUSED_OP.findall(body)))
    return "fused(%s)" % ", ".join(ops) if ops else "fused"


_KERNEL_NAME = re.compile(r"kernel '([^']+)'")


def task_operation(task):
    """A task's operation as a Profiler names it, read from the task alone
    (for graph drawings and plan reports): a kernel's name ('add', 'sum',
    'gemm'), 'fused(...)' with a fused kernel's operations, a function's
    __name__; 'list' for a list; None for anything else (data, or an alias:
    a key standing for another)."""
    if type(task) is tuple and task and callable(task[0]):
        f = task[0]
        if isinstance(f, Kernel):
            if f.name == "fused":
                return _fused_op(f)
            m = _KERNEL_NAME.search(repr(f))
            return m.group(1) if m else f.name
        f = getattr(f, "func", f)             # functools.partial
        return getattr(f, "__name__", None) or type(f).__name__
    if type(task) is list:
        return "list"
    return None


class _Run:
    """One compute's trace as the scheduler left it, made into Python
    objects only when the profiler is read (a million records cost more to
    turn into tuples than the compute that made them).  A Stats the caller
    passed may be reused by their next compute: its records are read now."""

    def __init__(self, stats, dsk, t0, t1, own):
        self._stats = stats if own else None
        if not own:
            self._read(stats)
        self.dsk = dsk
        self.t0, self.t1 = t0, t1
        self._tasks = None

    def _read(self, stats):
        self._records = stats.records or []
        self._memory = stats.memory if self._records else []

    @property
    def records(self):
        if self._stats is not None:
            st, self._stats = self._stats, None
            self._read(st)
        return self._records

    @property
    def memory(self):
        self.records                     # noqa: B018 - reads the Stats once
        return self._memory

    def tasks(self):
        if self._tasks is None:
            dsk, out, ops = self.dsk, [], {}
            for key, name, worker, start, end, nbytes in self.records:
                try:
                    task = dsk[key]
                except (KeyError, TypeError):
                    task = None
                op = name
                if name == "fused" and type(task) is tuple and task:
                    f = task[0]
                    op = ops.get(id(f))   # a kernel's repr read once, not once a task
                    if op is None:
                        op = ops[id(f)] = _fused_op(f) if isinstance(f, Kernel) else name
                out.append(TaskData(key, task, start, end, worker, nbytes, op))
            self._tasks = out
            self.dsk = self._records = None    # neither is needed any more
        return self._tasks


class Profiler:
    """Records every task of the computes run while it is in force: which
    worker ran it, when, what it made, and the memory held over time (see the
    module docstring).  Like dask.diagnostics.Profiler:

        with Profiler() as prof:
            y.compute()
        prof.results          # [TaskData(key, task, start_time, ...)]
        prof.plot("trace.png"); prof.animate("trace.gif")

    Computes started while it is in force add to it; entering a ``with``
    block and ``clear()`` empty it.  A ``dask.diagnostics.Profiler`` in force
    is given the tasks of cdask computes too (its TaskData, for its bokeh
    ``visualize()``).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.clear()

    def __repr__(self):
        return "<cdask.diagnostics.Profiler %d computes>" % len(self._runs)

    # ---- turning it on and off -------------------------------------------
    def __enter__(self):
        # as dask's: a with block starts afresh and sets the start and end
        self.clear()
        self._entered = time.monotonic()
        self.register()
        return self

    def __exit__(self, *exc):
        self.unregister()
        self._exited = time.monotonic()

    def register(self):
        with _lock:
            if self not in _profilers:
                _profilers.append(self)

    def unregister(self):
        with _lock:
            if self in _profilers:
                _profilers.remove(self)

    def clear(self):
        with self._lock:
            self._runs = []
            self._results = None
            self._entered = self._exited = None

    def _add_run(self, stats, dsk, t0, t1, own=False):
        # runs in get_with_progress's finally: never raise over the
        # compute's own outcome
        try:
            run = _Run(stats, dsk, t0, t1, own)
        except Exception as e:   # noqa: BLE001
            warnings.warn("cdask.diagnostics: Profiler lost a compute's trace: %s: %s"
                          % (type(e).__name__, e), RuntimeWarning, stacklevel=3)
            return
        with self._lock:
            self._runs.append(run)
            self._results = None

    # ---- what it holds ---------------------------------------------------
    @property
    def results(self):
        """One TaskData per task, compute after compute, each in the order
        its tasks finished."""
        with self._lock:
            if self._results is None:
                out = []
                for run in self._runs:
                    out.extend(run.tasks())
                self._results = out
            return list(self._results)

    @property
    def memory(self):
        """MemoryData over time: a point at the start of each compute (nothing
        held), then one after each task."""
        out = []
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            out.append(MemoryData(run.t0, 0, 0))
            out.extend(MemoryData(*m) for m in run.memory)
        return out

    @property
    def start_time(self):
        """When the with block began, or (registered) the first compute did;
        time.monotonic() seconds, None before either."""
        if self._entered is not None:
            return self._entered
        return self._runs[0].t0 if self._runs else None

    @property
    def end_time(self):
        """When the with block ended, or the last compute did."""
        if self._exited is not None:
            return self._exited
        return self._runs[-1].t1 if self._runs else None

    def to_dataframe(self):
        """The results as a pandas DataFrame, one row per task, columns
        TaskData's fields (needs pandas: the cdask[diagnostics] extra)."""
        pd = _require("pandas", "Profiler.to_dataframe")
        return pd.DataFrame(self.results, columns=list(TaskData._fields))

    # ---- pictures --------------------------------------------------------
    def plot(self, filename=None, *, width=10.0, dpi=100, title=None):
        """A matplotlib Figure of the trace: one row per worker with its
        tasks as bars coloured by operation, and underneath the memory held
        and spilled over time.  With ``filename`` it is also written, in the
        format its extension names (png, svg, pdf...).  Needs matplotlib
        (the cdask[diagnostics] extra)."""
        tr = _Trace(self)
        fig = tr.figure(width, dpi, title)
        tr.draw_all()
        if filename is not None:
            fig.savefig(os.fspath(filename))
        return fig

    visualize = plot   # dask's name (dask draws with bokeh)

    MERGE_OVER = 5000  # animate(): tasks past which neighbouring bars are merged

    def animate(self, filename=None, *, frames=None, max_frames=200, fps=10,
                width=8.0, dpi=80, title=None):
        """Replay the trace: tasks appear as the workers take them, the
        memory curve grows (and falls as intermediates are freed) with them.
        ``frames`` frames, each adding the next tasks/frames tasks to start,
        the last showing the end: by default a frame per ten tasks, at most
        ``max_frames``.  Past MERGE_OVER tasks, runs of tasks of one
        operation that follow each other on a worker within half a pixel are
        drawn as one bar, so that a frame of a huge trace draws far fewer.

        With ``filename`` a GIF is written with Pillow and the path returned
        (each frame drawn once: matplotlib's PillowWriter would draw it two
        or three times); else, in Jupyter, an IPython HTML animation (matplotlib's
        to_jshtml: no ffmpeg needed), and elsewhere the matplotlib
        FuncAnimation.  Needs matplotlib and Pillow (cdask[diagnostics])."""
        tr = _Trace(self)
        n = len(tr.start)
        if frames is None:
            frames = max(1, min(max_frames, math.ceil(n / 10)))
        frames = max(1, int(frames))
        fig = tr.figure(width, dpi, title)
        tr.draw_all()             # lay the figure out once, with everything in it...
        fig.canvas.draw()
        fig.set_layout_engine("none")   # ...not again at every frame
        if n > self.MERGE_OVER:
            # a huge trace: bars within half a pixel of each other drawn as one
            tr.merge = 0.5 * tr.ax.get_xlim()[1] / max(1.0, tr.ax.get_window_extent().width)
        times = tr.frame_times(frames)
        if filename is not None:
            tr.write_gif(os.fspath(filename), times, fps)
            return filename
        animation = _require("matplotlib.animation", "Profiler.animate")
        anim = animation.FuncAnimation(fig, tr.draw_until, frames=times, blit=False,
                                       interval=1000.0 / fps, repeat=False)
        if _in_jupyter():
            from IPython.display import HTML
            return HTML(anim.to_jshtml(fps=fps))
        return anim


def _require(module, what):
    """Import `module` for `what`, or raise an ImportError naming the extra."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError("%s needs %s: %s" % (what, module.split(".")[0], _EXTRA_HINT)) from e


_FIGURE = []


def _figure_class():
    """matplotlib's Figure, able to show itself in Jupyter (as a PNG) even
    when pyplot, which registers the inline display, was never imported."""
    if not _FIGURE:
        from matplotlib.figure import Figure

        class TraceFigure(Figure):
            def _repr_png_(self):
                import io
                buf = io.BytesIO()
                self.savefig(buf, format="png")
                return buf.getvalue()

        _FIGURE.append(TraceFigure)
    return _FIGURE[0]


def _byte_unit(nbytes):
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if nbytes >= scale:
            return unit, scale
    return "bytes", 1


class _Trace:
    """A profiler's trace laid out for drawing: the tasks as arrays sorted by
    start, a row per worker, a colour per operation; and the figure (a plain
    matplotlib Figure on an Agg canvas: no pyplot, so nothing is left open
    and no display is needed)."""

    LEGEND_MAX = 12
    EDGES_UNDER = 2000    # bars drawn with an edge, up to this many

    def __init__(self, prof):
        np = _require("numpy", "Profiler")
        _require("matplotlib", "Profiler.plot and Profiler.animate")
        res = sorted(prof.results, key=lambda t: t.start_time)
        mem = prof.memory
        t0 = prof.start_time if prof.start_time is not None else 0.0
        self.np = np
        self.t_end = max([prof.end_time - t0 if prof.end_time is not None else 0.0]
                         + [t.end_time - t0 for t in res] + [1e-6])
        self.start = np.array([t.start_time - t0 for t in res], dtype=float)
        self.end = np.array([t.end_time - t0 for t in res], dtype=float)
        workers = sorted({t.worker_id for t in res}, key=lambda w: (w < 0, w))
        self.workers = workers
        row = {w: i for i, w in enumerate(workers)}
        self.row = np.array([row[t.worker_id] for t in res], dtype=int)
        # operations by time spent, most first: colours and legend order
        spent = collections.Counter()
        for t in res:
            spent[t.op] += t.end_time - t.start_time
        self.ops = [op for op, _ in spent.most_common()]
        index = {op: i for i, op in enumerate(self.ops)}
        self.op_index = np.array([index[t.op] for t in res], dtype=int)
        self.mem_t = np.array([m.time - t0 for m in mem], dtype=float)
        self.mem_held = np.array([m.held for m in mem], dtype=float)
        self.mem_spilled = np.array([m.spilled for m in mem], dtype=float)
        top = max([1.0] + list(self.mem_held) + list(self.mem_spilled))
        self.unit, self.scale = _byte_unit(top)

    def colours(self):
        from matplotlib import colormaps
        cmap = colormaps["tab20" if len(self.ops) > 10 else "tab10"]
        cols = [cmap(i % cmap.N) for i in range(min(len(self.ops), self.LEGEND_MAX))]
        cols += [(0.6, 0.6, 0.6, 1.0)] * (len(self.ops) - len(cols))   # the rest: grey
        return cols

    def figure(self, width, dpi, title):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        nrows = max(1, len(self.workers))
        height = 1.6 + 0.35 * nrows + 1.6
        fig = _figure_class()(figsize=(width, height), dpi=dpi, layout="constrained")
        FigureCanvasAgg(fig)
        self.fig = fig
        self.ax, self.ax_mem = fig.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [max(1.0, 0.35 * nrows), 1.6]})
        ax, axm = self.ax, self.ax_mem
        ax.set_yticks(range(nrows))
        ax.set_yticklabels(["caller" if w < 0 else "worker %d" % w for w in self.workers]
                           or ["(no tasks)"])
        ax.set_ylim(nrows - 0.5, -0.5)
        ax.set_xlim(0, self.t_end * 1.01)
        ax.set_title(title or "cdask trace: %d tasks on %d threads, %.3g s"
                     % (len(self.start), len(self.workers), self.t_end))
        axm.set_xlabel("seconds")
        axm.set_ylabel(self.unit)
        axm.set_ylim(0, max(1.0, self.mem_held.max() if self.mem_held.size else 0,
                            self.mem_spilled.max() if self.mem_spilled.size else 0)
                     / self.scale * 1.1)
        cols = self.colours()
        from matplotlib.patches import Patch
        handles = [Patch(color=cols[i], label=op) for i, op in
                   enumerate(self.ops[:self.LEGEND_MAX])]
        if len(self.ops) > self.LEGEND_MAX:
            handles.append(Patch(color=cols[-1], label="%d other operations"
                                 % (len(self.ops) - self.LEGEND_MAX)))
        if handles:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      fontsize="small", frameon=False, title="operation")
        self.col_array = self.np.array(cols) if cols else self.np.zeros((0, 4))
        (self.held_line,) = axm.step([], [], where="post", color="tab:blue", label="held")
        (self.spill_line,) = axm.step([], [], where="post", color="tab:red", label="spilled")
        axm.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
                   frameon=False, title="memory")
        self.now = None
        return fig

    merge = None      # seconds: bars of a row and an operation closer than this are drawn as one

    def _bars_until(self, m, t=None):
        """Start, end, row and operation of the bars of the first m tasks
        (those running at t cut there); with ``merge``, a run of tasks on a
        row of the same operation, each starting less than ``merge`` after
        the one before ended, becomes one bar (tasks on a row never overlap,
        so the runs do not either)."""
        np = self.np
        s, e, r, o = self.start[:m], self.end[:m], self.row[:m], self.op_index[:m]
        if t is not None:
            e = np.minimum(e, t)
        if self.merge is None or m < 2:
            return s, e, r, o
        order = np.lexsort((s, r))           # a row's tasks one after the other
        s, e, r, o = s[order], e[order], r[order], o[order]
        new = np.ones(m, dtype=bool)
        new[1:] = (r[1:] != r[:-1]) | (o[1:] != o[:-1]) | (s[1:] - e[:-1] > self.merge)
        first = np.flatnonzero(new)
        return (s[first], np.maximum.reduceat(e, first), r[first], o[first])

    def _verts(self, s, e, r):
        np = self.np
        x = np.stack([s, e, e, s], axis=1)
        y = np.stack([r - 0.4, r - 0.4, r + 0.4, r + 0.4], axis=1)
        return np.stack([x, y], axis=2)

    def draw_all(self):
        """Every bar (one polygon a task, in one collection) and the whole
        memory curve."""
        from matplotlib.collections import PolyCollection
        s, e, r, o = self._bars_until(len(self.start))
        # a thin white line between tasks that follow each other on a row
        # (one solid bar otherwise), where there are few enough to see
        edges = dict(edgecolors="white", linewidths=0.4) if len(s) <= self.EDGES_UNDER \
            else dict(edgecolors="none")
        self.bars = PolyCollection(self._verts(s, e, r), facecolors=self.col_array[o]
                                   if len(s) else "none", **edges)
        self.ax.add_collection(self.bars)
        self._memory_until(None)

    def _memory_until(self, t):
        np = self.np
        j = self.mem_t.size if t is None else int(np.searchsorted(self.mem_t, t, side="right"))
        x = self.mem_t[:j]
        if t is not None and j:
            x = np.append(x, t)
            held = np.append(self.mem_held[:j], self.mem_held[j - 1])
            spilled = np.append(self.mem_spilled[:j], self.mem_spilled[j - 1])
        else:
            held, spilled = self.mem_held[:j], self.mem_spilled[:j]
        self.held_line.set_data(x, held / self.scale)
        self.spill_line.set_data(x, spilled / self.scale)

    def frame_times(self, frames):
        """The times of `frames` frames: frame i (of 1..frames-1) shows the
        trace once i/frames of the tasks have started, so each adds at most
        ceil(tasks / frames) of them; the last one shows the end."""
        np = self.np
        n = len(self.start)
        if n == 0 or frames <= 1:
            return [self.t_end]
        idx = np.ceil(np.arange(1, frames) * n / frames).astype(int) - 1
        return list(self.start[np.clip(idx, 0, n - 1)]) + [self.t_end]

    def write_gif(self, path, times, fps):
        """Draw each frame once and write them as a looping GIF with Pillow,
        each frame kept as a palette image (a quarter of its RGBA size)."""
        np = self.np
        Image = _require("PIL.Image", "Profiler.animate (writing a GIF)")
        frames = []
        for t in times:
            self.draw_until(t)
            self.fig.canvas.draw()
            rgb = Image.fromarray(np.asarray(self.fig.canvas.buffer_rgba())[..., :3])
            frames.append(rgb.convert("P", palette=Image.Palette.ADAPTIVE))
        frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                       duration=max(20, int(round(1000.0 / fps))), loop=0)

    def draw_until(self, t):
        """One frame: the tasks started by t (those still running cut at t),
        the memory until t, and a line at t."""
        np = self.np
        m = int(np.searchsorted(self.start, t, side="right"))
        s, e, r, o = self._bars_until(m, t)
        self.bars.set_verts(self._verts(s, e, r))
        self.bars.set_facecolors(self.col_array[o] if len(s) else "none")
        self._memory_until(t)
        if self.now is None:
            self.now = [a.axvline(t, color="0.3", lw=0.8, ls=":") for a in (self.ax, self.ax_mem)]
        for line in self.now:
            line.set_xdata([t, t])
        return [self.bars, self.held_line, self.spill_line] + self.now
