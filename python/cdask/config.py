"""cdask's configuration: a small global key -> value store.

    cdask.config.set(num_workers=2)            # set until changed
    with cdask.config.set(num_workers=2):      # set for a block, then restored
        ...
    cdask.config.set({"num-workers": 2})       # keys with dashes: pass a dict
    cdask.config.get("num_workers")            # KeyError if unknown...
    cdask.config.get("colour", None)           # ...unless a default is given
    cdask.config.refresh()                     # re-read CDASK_* variables

Keys are case-insensitive and "-" and "_" are the same character, so
"num-workers" and "num_workers" name one key.  Any key may be set; known keys
are checked:

    num_workers   a positive int; default: the CDASK_NUM_WORKERS environment
                  variable, else the number of CPUs.  Setting it also sets the
                  default size of the C worker pool.
    memory_limit  the memory budget of a computation, in bytes (an int, or a
                  string such as "2GB" or "1.5GiB"; stored as an int); default:
                  CDASK_MEMORY_LIMIT, else 60% of the machine's RAM (or of the
                  cgroup's limit when one is set).  compute() refuses a result
                  larger than the budget (MemoryError, pointing to to_npy and
                  store), and chunks="auto" never plans blocks larger than
                  budget / (4 x num_workers).
    array.fuse    (default True) compute(), persist(), optimize() and dask's
                  schedulers fuse elementwise chains, masks and reductions;
                  compute(fuse=False) turns it off for one call.
    array.coarsen (default True) a reduction over blocks far below 64 KiB
                  reads them merged into runs of about 1 MiB along the
                  reduced axes (one task per run); read when the reduction
                  is built.
    progress      (default False) True shows a progress bar for every
                  compute (cdask.diagnostics.ProgressBar(), drawn as fits
                  where it runs: a Jupyter widget, a terminal line, or a few
                  lines into a file); "widget", "text" or "lines" picks one.
                  Ignored while another ProgressBar is in force.
    scheduler     (default "cdask") what runs compute(), persist() and
                  stores: "cdask" (the C scheduler), one of dask's names
                  ("threads", "sync", "processes", "distributed"... see
                  SCHEDULER_NAMES), a distributed.Client, a
                  concurrent.futures executor or a dask scheduler's get
                  callable; see cdask.array.schedulers.

Defaults come from environment variables CDASK_<KEY>, e.g. CDASK_NUM_WORKERS=3
gives get("num_workers") == 3.  Their values are read as int, float or bool
(true/false/yes/no/on/off) when they look like one, None for "none"/"null",
otherwise kept as strings.
"""

import os
import threading
import warnings

from . import _core
from .utils import parse_bytes

__all__ = ["set", "get", "refresh", "config", "ENV_PREFIX", "SCHEDULER_NAMES"]

ENV_PREFIX = "CDASK_"

_lock = threading.RLock()
_NO_DEFAULT = object()
_ABSENT = object()

# The live configuration (normalised key -> value).  Read it through get();
# it is exposed for inspection only.
config = {}


def machine_memory():
    """Bytes of RAM this process may use: MemTotal, or the cgroup's limit."""
    total = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) * 1024
                    break
    except OSError:  # pragma: no cover - not Linux
        pass
    if total is None:  # pragma: no cover
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = 8 << 30
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                v = f.read().strip()
            if v.isdigit() and 0 < int(v) < total:
                total = int(v)
        except OSError:
            pass
    return total


def _builtin_defaults():
    return {"num_workers": max(1, os.cpu_count() or 1),
            "memory_limit": int(machine_memory() * 0.6),
            "progress": False}


def _norm(key):
    if not isinstance(key, str):
        raise TypeError("cdask.config keys are strings, got %r" % (key,))
    k = key.strip().lower().replace("-", "_")
    if not k:
        raise ValueError("cdask.config: empty key")
    return k


def _parse_env(text):
    s = text.strip()
    low = s.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    try:
        return int(s, 10)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return text


def _check_num_workers(value):
    # bool is an int subclass, but True workers is surely a mistake
    if isinstance(value, bool):
        raise ValueError("cdask.config: num_workers must be a positive int, got %r" % (value,))
    try:
        n = value.__index__()
    except (AttributeError, TypeError):
        raise ValueError("cdask.config: num_workers must be a positive int, got %r" % (value,)) from None
    if n <= 0:
        raise ValueError("cdask.config: num_workers must be a positive int, got %r" % (value,))
    return int(n)


def _check_memory_limit(value):
    try:
        n = parse_bytes(value)
    except (TypeError, ValueError):
        raise ValueError("cdask.config: memory_limit must be a byte size such as '2GB' or an "
                         "int, got %r" % (value,)) from None
    if n <= 0:
        raise ValueError("cdask.config: memory_limit must be positive, got %r" % (value,))
    return n


# the kinds of cdask.diagnostics.KINDS (config is imported before it)
_PROGRESS_KINDS = ("auto", "widget", "text", "lines")


def _check_progress(value):
    # CDASK_PROGRESS=1 arrives as the int 1
    if value is None or (type(value) is int and value in (0, 1)):
        return bool(value)
    if isinstance(value, bool) or value in _PROGRESS_KINDS:
        return value
    raise ValueError("cdask.config: progress must be True, False or one of %s, got %r"
                     % (", ".join(map(repr, _PROGRESS_KINDS)), value))


# the names compute(scheduler=...) takes, each to the scheduler it names:
# cdask's own and dask's (dask.base.named_schedulers, and "distributed" for
# the current Client)
SCHEDULER_NAMES = {"cdask": "cdask", "threads": "threads", "threading": "threads",
                   "sync": "sync", "synchronous": "sync", "single-threaded": "sync",
                   "processes": "processes", "multiprocessing": "processes",
                   "distributed": "distributed", "dask.distributed": "distributed"}


def _check_scheduler(value):
    # a name is checked here; an object (a Client, an executor, a get
    # callable) when a compute resolves it (cdask.array.schedulers)
    if value is None:
        return None
    if isinstance(value, str):
        name = value.strip().lower()
        if name not in SCHEDULER_NAMES:
            raise ValueError("cdask.config: unknown scheduler %r; the names are %s, or pass a "
                             "distributed.Client, an executor or a scheduler's get callable"
                             % (value, ", ".join(map(repr, SCHEDULER_NAMES))))
        return name
    if callable(value) or hasattr(value, "submit"):
        return value
    raise ValueError("cdask.config: scheduler must be a name (%s), a distributed.Client, an "
                     "executor or a get callable, got %r"
                     % (", ".join(map(repr, SCHEDULER_NAMES)), value))


_CHECKS = {"num_workers": _check_num_workers, "memory_limit": _check_memory_limit,
           "progress": _check_progress, "scheduler": _check_scheduler}


def _validate(key, value):
    check = _CHECKS.get(key)
    return check(value) if check is not None else value


def _push_to_core(key, value):
    """Keep the C side in step with keys it has a copy of."""
    if key == "num_workers":
        _core.set_default_workers(value)


def _store(key, value):
    """Set or (value is _ABSENT) remove a normalised key; lock held."""
    if value is _ABSENT:
        config.pop(key, None)
        if key in _CHECKS:   # a checked key always has a value: its default
            value = _read_defaults(strict=False).get(key, _ABSENT)
            if value is _ABSENT:
                return
        else:
            return
    _push_to_core(key, value)
    config[key] = value


def _read_defaults(strict):
    values = _builtin_defaults()
    for name, text in os.environ.items():
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        key = _norm(name[len(ENV_PREFIX):])
        value = _parse_env(text)
        try:
            value = _validate(key, value)
        except ValueError as e:
            if strict:
                raise ValueError("environment variable %s=%r: %s" % (name, text, e)) from None
            warnings.warn("cdask: ignoring environment variable %s=%r: %s" % (name, text, e),
                          RuntimeWarning, stacklevel=3)
            continue
        values[key] = value
    return values


def refresh():
    """Forget every value set and re-read the defaults from the environment.

    Raises ValueError (and changes nothing) if a CDASK_* variable holds a bad
    value for a checked key."""
    with _lock:
        values = _read_defaults(strict=True)
        for key, value in values.items():
            _push_to_core(key, value)
        config.clear()
        config.update(values)


class set:
    """Set configuration values: ``set(num_workers=2)`` or ``set({"num-workers": 2})``.

    The values take effect at once.  Used as a context manager, the previous
    values are restored when the block ends (blocks may nest)."""

    def __init__(self, arg=None, **kwargs):
        items = {}
        if arg is not None:
            if not hasattr(arg, "items"):
                raise TypeError("cdask.config.set takes a mapping and/or keyword arguments, got %r"
                                % (type(arg).__name__,))
            for k, v in arg.items():
                items[_norm(k)] = v
        for k, v in kwargs.items():
            items[_norm(k)] = v
        checked = {k: _validate(k, v) for k, v in items.items()}   # all or nothing
        self._old = []
        with _lock:
            try:
                for key, value in checked.items():
                    old = config.get(key, _ABSENT)
                    _store(key, value)
                    self._old.append((key, old))
            except BaseException:
                self.__exit__(None, None, None)   # undo the part already done
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with _lock:
            for key, old in reversed(self._old):
                _store(key, old)
        self._old = []
        return False

    def __repr__(self):
        return "<cdask.config.set %s>" % ", ".join("%s" % k for k, _ in self._old)


def get(key, default=_NO_DEFAULT):
    """The value of `key`; `default` if it is unset, else KeyError."""
    k = _norm(key)
    with _lock:
        if k in config:
            return config[k]
    if default is _NO_DEFAULT:
        raise KeyError(key)
    return default


# Initial values.  A bad CDASK_* variable must not make ``import cdask`` fail:
# it is reported as a warning and ignored (refresh() raises instead).
with _lock:
    config.update(_read_defaults(strict=False))
    try:
        _push_to_core("num_workers", config["num_workers"])
    except ValueError as _e:   # e.g. more workers than the pool allows
        warnings.warn("cdask: num_workers=%r not applied to the worker pool: %s"
                      % (config["num_workers"], _e), RuntimeWarning)
