"""Progress bars for cdask computations (``dask.diagnostics``'s interface).

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
"""

import os
import sys
import threading
import time
import warnings

from . import config
from ._core import Stats

__all__ = ["ProgressBar", "KINDS"]

KINDS = ("auto", "widget", "text", "lines")

_EXTRA_HINT = 'pip install "cdask[diagnostics]"'

_active = []              # bars in force (context managers and registered ones)
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
def _dask_bars():
    # dask.diagnostics.ProgressBar objects in force, each with the cdask bar
    # that mirrors it
    mod = sys.modules.get("dask.callbacks")
    if mod is None:
        return []
    out = []
    seen = set()
    for entry in list(getattr(mod.Callback, "active", ())):
        # dask keeps the callbacks' method tuples; their owner is the bar
        cb = entry
        if isinstance(entry, tuple):
            owners = [getattr(f, "__self__", None) for f in entry if f is not None]
            cb = next((o for o in owners if o is not None), None)
        if cb is None or id(cb) in seen:
            continue
        seen.add(id(cb))
        if type(cb).__name__ == "ProgressBar" and type(cb).__module__.startswith("dask."):
            out.append((cb, ProgressBar(minimum=getattr(cb, "_minimum", 0),
                                        width=getattr(cb, "_width", 40),
                                        dt=getattr(cb, "_dt", 0.1),
                                        out=getattr(cb, "_file", None))))
    return out


def _config_bar():
    # the config key "progress": True/False/None, or a kind
    value = config.get("progress", False)
    if not value:
        return None
    return ProgressBar(kind=value if isinstance(value, str) else "auto")


def get_with_progress(get, dsk, keys, **kwargs):
    """``get(dsk, keys, **kwargs)`` with the bars in force drawn around it."""
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
