"""Progress bars for cdask computations (``dask.diagnostics``'s interface).

    from cdask.diagnostics import ProgressBar
    with ProgressBar():
        x[x > 0].mean().compute()

    [########################################] | 100% Completed | 1.52 s

The bar is drawn from the counters the C scheduler fills (``cdask.Stats``:
tasks done and total), on the calling thread, every ``dt`` seconds while the
compute runs, and once more at the end.  ``ProgressBar().register()`` turns
it on for every compute until ``unregister()``.  A ``dask.diagnostics.
ProgressBar`` in force (``with dask.diagnostics.ProgressBar(): ...``) is
honoured too, so a dask user's notebook shows its bars for cdask arrays.
"""

import sys
import threading
import time

from ._core import Stats

__all__ = ["ProgressBar"]

_active = []              # bars in force (context managers and registered ones)
_lock = threading.Lock()


class ProgressBar:
    """A text progress bar for cdask computes (see the module docstring).

    minimum: seconds a compute must run before the bar is shown; width:
    characters of the bar; dt: seconds between updates; out: a file
    (default sys.stdout)."""

    def __init__(self, minimum=0, width=40, dt=0.1, out=None):
        self.minimum = minimum
        self.width = width
        self.dt = dt
        self.out = out
        self.last_duration = None

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

    # ---- drawing -----------------------------------------------------------
    def _file(self):
        return self.out if self.out is not None else sys.stdout

    def _draw(self, done, total, elapsed):
        if self._last == (done, total) and done == total:
            return
        self._last = (done, total)
        frac = done / total if total else 1.0
        bar = "#" * int(self.width * frac)
        pct = int(100 * frac)
        self._file().write("\r[%-*s] | %3d%% Completed | %s"
                           % (self.width, bar, pct, _fmt_time(elapsed)))
        self._file().flush()

    def _start(self):
        self._t0 = time.perf_counter()
        self._shown = False
        self._last = None

    def _update(self, stats):
        elapsed = time.perf_counter() - self._t0
        if elapsed < self.minimum:
            return
        self._shown = True
        self._draw(stats.done, stats.total, elapsed)

    def _finish(self, stats, errored):
        elapsed = time.perf_counter() - self._t0
        self.last_duration = elapsed
        if elapsed < self.minimum:
            return
        if stats is not None and not errored:
            self._draw(stats.total, stats.total, elapsed)
        elif stats is not None:
            self._draw(stats.done, stats.total, elapsed)
        self._file().write("\n")
        self._file().flush()


def _fmt_time(t):
    if t < 60:
        return "%.2f s" % t
    m, s = divmod(t, 60)
    if m < 60:
        return "%dmin %.1fs" % (m, s)
    h, m = divmod(m, 60)
    return "%dhr %dmin" % (h, m)


def _dask_bars():
    # dask.diagnostics.ProgressBar objects in force: mirrored by cdask bars
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
            out.append(ProgressBar(minimum=getattr(cb, "_minimum", 0),
                                   width=getattr(cb, "_width", 40),
                                   dt=getattr(cb, "_dt", 0.1),
                                   out=getattr(cb, "_file", None)))
    return out


def get_with_progress(get, dsk, keys, **kwargs):
    """``get(dsk, keys, **kwargs)`` with the bars in force drawn around it."""
    with _lock:
        bars = list(_active)
    bars += _dask_bars()
    if not bars:
        return get(dsk, keys, **kwargs)
    stats = kwargs.get("stats")
    if stats is None:
        stats = kwargs["stats"] = Stats()
    user_cb = kwargs.get("callback")

    def callback(s):
        for b in bars:
            b._update(s)
        if user_cb is not None:
            user_cb(s)

    kwargs["callback"] = callback
    kwargs["interval"] = min([b.dt for b in bars] + [kwargs.get("interval", 1.0)])
    for b in bars:
        b._start()
    errored = True
    try:
        r = get(dsk, keys, **kwargs)
        errored = False
        return r
    finally:
        for b in bars:
            b._finish(stats, errored)
