"""Which scheduler runs a compute: cdask's C scheduler, or one of dask's.

``compute``, ``persist``, ``store``/``to_npy`` (``scheduler=``, or dask's old
``get=``) and the config key ``scheduler`` take what dask's ``compute`` takes:

* ``"cdask"``, the default: ``cdask.get``, the C scheduler;
* dask's names (``config.SCHEDULER_NAMES``): ``"threads"``, ``"sync"``,
  ``"processes"`` and their aliases, ``"distributed"`` for the current Client;
* a ``distributed.Client``, a ``concurrent.futures`` executor, or the ``get``
  callable of any dask scheduler.

Anything else raises ValueError naming what is accepted.  :func:`resolve`
makes a :class:`Scheduler` of one of three kinds:

* ``"cdask"``: the C scheduler;
* ``"local"``: a dask scheduler whose tasks run in this process (threads,
  sync, a thread pool).  It runs the very graph cdask.get would, store tasks
  writing into the outputs included;
* ``"remote"``: one whose tasks run in other processes (processes, a process
  pool, a Client, a get callable cdask does not know).  It runs the fused
  graph of the arrays - one task per fused kernel - and its results travel
  back pickled; an output is written from the workers only when they can
  reach it (:meth:`Scheduler.portable`: a file on a filesystem they see, a
  zarr store), else the blocks come back and are written here.

A Client is checked before any work starts: closed, unreachable or
asynchronous raise.  Its workers' ``memory_limit`` becomes cdask's budget
for the tasks they run: the plan check holds each task to a thread's share
of what a worker may fill before distributed pauses it (80% by default),
and ``workers.CdaskSetup`` sets it as cdask's ``memory_limit`` on every
worker.  Arrays persisted on a Client hold :class:`FutureBlocks`; a compute
of such an array runs on that Client unless another scheduler is named, in
which case the blocks are gathered first (the one thing fetched that the
user did not name, and only on their request).
"""

import os
import pickle
import sys
import weakref

import numpy as np

from .. import config
from .._core import get as cdask_get
from .blockio import FileRegion, file_offset, tokenize_maps_for_dask

__all__ = ["Scheduler", "resolve", "FutureBlocks", "future_layer", "is_client"]


class FutureBlocks(dict):
    """A layer of an Array persisted on a cluster: key -> ``distributed.Future``
    of each block; ``client`` is the Client holding them."""

    def __init__(self, futures, client):
        super().__init__(futures)
        self.client = client

    def __reduce__(self):
        return (FutureBlocks, (dict(self), self.client))


def _is_future(v):
    d = sys.modules.get("distributed")
    return d is not None and isinstance(v, d.Future)


def future_layer(dsk):
    """``dsk`` as an Array's layer: FutureBlocks when its values are Futures
    (``client.persist``, ``dask.persist`` on a cluster), else a dict."""
    for v in dsk.values():
        if _is_future(v):
            return FutureBlocks(dsk, v.client)
        break
    return dict(dsk)


def is_client(x):
    d = sys.modules.get("distributed")
    return d is not None and isinstance(x, d.Client)


def _names():
    return ", ".join(map(repr, config.SCHEDULER_NAMES))


def _unknown(value):
    return ValueError("cdask: unknown scheduler %r; use one of %s, a distributed.Client, a "
                      "concurrent.futures executor or a dask scheduler's get callable"
                      % (value, _names()))


class Scheduler:
    """A resolved scheduler: ``kind`` ("cdask", "local", "remote"), ``get``
    (dask's signature, ``get(dsk, keys, **kwargs)``), ``label`` (for
    messages), ``client`` (a Client, or None), ``task_budget`` (bytes one
    task of its workers may use, or None: cdask's own memory_limit) and
    ``kwargs`` (passed on to ``get``)."""

    def __init__(self, kind, get, label, client=None, task_budget=None, same_machine=False):
        self.kind = kind
        self.get = get
        self.label = label
        self.client = client
        self.task_budget = task_budget
        self.same_machine = same_machine
        self.kwargs = {}

    def __repr__(self):
        return "<cdask scheduler %s (%s)>" % (self.label, self.kind)

    # ---- running on other processes -------------------------------------
    def results(self, g, keys):
        """Run the graph ``g`` for the flat list ``keys``; yield (key, value)
        as results arrive - from a Client in batches, so that a result
        written into an output is not held whole as blocks first."""
        try:
            if self.client is None:
                yield from zip(keys, self.get(dict(g), keys, **self.kwargs))
                return
            from distributed import as_completed

            futures = self.client.get(dict(g), keys, sync=False, **self.kwargs)
        except Exception as e:
            _raise_unpicklable(g, self.label, e)
            raise
        done = as_completed(futures, loop=self.client.loop, with_results=True)
        for batch in done.batches():
            for f, v in batch:
                yield f.key, v
        del futures

    def futures(self, g, keys):
        """Run ``g`` on the Client for ``keys``; their Futures, in the order
        of ``keys``."""
        try:
            futures = self.client.get(dict(g), keys, sync=False, **self.kwargs)
        except Exception as e:
            _raise_unpicklable(g, self.label, e)
            raise
        by_key = {f.key: f for f in futures}
        return [by_key[k] for k in keys]

    def run(self, g, keys):
        """``get(g, keys)``, a pickling failure named by its task."""
        try:
            return self.get(dict(g) if self.kind == "remote" else g, keys, **self.kwargs)
        except Exception as e:
            if self.kind == "remote":
                _raise_unpicklable(g, self.label, e)
            raise

    def portable(self, target):
        """``target`` as something the workers write into themselves, or None
        when they cannot reach it (its blocks then come back to be written
        here): a C-ordered shared memory-mapped file, or a zarr array on a
        filesystem they see (checked) or in an object store."""
        if not self.same_machine and self.client is None:
            return None
        if isinstance(target, np.memmap):
            off = file_offset(target, target)
            if off is None or target.mode == "r" or not target.flags.c_contiguous:
                return None
            path = os.path.abspath(target.filename)
            if not self._sees(path):
                return None
            return FileRegion(path, off, target.shape, target.dtype)
        if type(target).__module__.split(".")[0] == "zarr" and hasattr(target, "store"):
            store = type(target.store).__name__
            if store == "LocalStore":
                root = os.fspath(getattr(target.store, "root", ""))
                return target if root and self._sees(root) else None
            if store in ("FsspecStore", "ObjectStore"):
                return target
        return None

    def _sees(self, path):
        if self.client is None:
            return self.same_machine
        seen = self.client.run(os.path.exists, path)
        return bool(seen) and all(seen.values())


def _raise_unpicklable(g, label, error):
    """If a task of ``g`` does not pickle, raise TypeError naming it (from
    ``error``, what the scheduler raised)."""
    try:
        import cloudpickle

        dumps = cloudpickle.dumps
    except ImportError:          # pragma: no cover - cloudpickle comes with dask
        dumps = pickle.dumps
    from .utils import key_split

    for key, task in g.items():
        try:
            dumps(task)
        except Exception as why:
            name = key[0] if type(key) is tuple and key else key
            raise TypeError("cdask: the task %r (operation %r) cannot be pickled, and the %s "
                            "scheduler runs tasks in other processes: %s: %s"
                            % (key, key_split(str(name)), label, type(why).__name__, why)) \
                from error


def _client(client):
    """A Scheduler for a distributed Client, checked: raises before any work
    when it is asynchronous, closed or its scheduler does not answer."""
    if client.asynchronous:
        raise ValueError("cdask: the distributed Client is asynchronous; use "
                         "`await client.compute(x)` or `await client.persist(x)`")
    status = str(getattr(client, "status", ""))
    if status in ("closed", "closing", "failed") or client.scheduler is None:
        raise RuntimeError("cdask: the distributed Client is %s; make a new one "
                           "(distributed.Client(address)) to compute on a cluster"
                           % (status or "closed"))
    import dask
    from dask.utils import parse_timedelta

    tokenize_maps_for_dask()

    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect", "30s"))
    try:
        info = client.sync(client.scheduler.identity, n_workers=-1, callback_timeout=timeout)
    except (OSError, TimeoutError) as e:
        raise ConnectionError("cdask: the scheduler of the distributed Client, %s, does not "
                              "answer (%s: %s)" % (_address(client), type(e).__name__, e)) from e
    # a task may fill its thread's share of what a worker holds before
    # distributed pauses it (by default 80% of its memory_limit)
    pause = dask.config.get("distributed.worker.memory.pause", 0.8) or 0.95
    limits = [w["memory_limit"] * pause / max(1, w.get("nthreads") or 1)
              for w in info.get("workers", {}).values() if w.get("memory_limit")]
    _set_up_workers(client)
    return Scheduler("remote", client.get, "distributed Client %s" % _address(client),
                     client=client, task_budget=int(min(limits)) if limits else None)


def _address(client):
    try:
        return client.scheduler.address
    except AttributeError:
        return "(no scheduler)"


_SET_UP = weakref.WeakSet()


def _set_up_workers(client):
    # once per Client: the plugin is run on every worker, later ones too
    if client in _SET_UP:
        return
    from .workers import CdaskSetup

    client.register_plugin(CdaskSetup(), name="cdask-setup")
    _SET_UP.add(client)


def _executor(pool):
    import concurrent.futures
    from functools import partial

    from dask.local import get_async

    n = getattr(pool, "_max_workers", None) or config.get("num_workers", 1)
    kind = "local" if isinstance(pool, concurrent.futures.ThreadPoolExecutor) else "remote"
    return Scheduler(kind, partial(get_async, pool.submit, n), type(pool).__name__,
                     same_machine=True)


def _named(name):
    kind = config.SCHEDULER_NAMES.get(name.strip().lower())
    if kind is None:
        raise _unknown(name)
    if kind == "cdask":
        return Scheduler("cdask", cdask_get, "cdask")
    if kind == "distributed":
        try:
            from distributed import get_client
            client = get_client()
        except (ImportError, ValueError) as e:
            raise ValueError("cdask: scheduler=%r needs a running distributed.Client (none "
                             "was found: %s)" % (name, e)) from None
        return _client(client)
    import dask.local
    import dask.multiprocessing
    import dask.threaded

    if kind == "threads":
        return Scheduler("local", dask.threaded.get, "threads")
    if kind == "sync":
        return Scheduler("local", dask.local.get_sync, "sync")
    return Scheduler("remote", dask.multiprocessing.get, "processes", same_machine=True)


def _of(value):
    if isinstance(value, str):
        return _named(value)
    if is_client(value):
        return _client(value)
    if is_client(getattr(value, "__self__", None)):          # client.get
        return _client(value.__self__)
    if hasattr(value, "submit") and hasattr(value, "shutdown"):   # an Executor
        return _executor(value)
    if callable(value):
        if value is cdask_get:
            return Scheduler("cdask", cdask_get, "cdask")
        mod = getattr(value, "__module__", "") or ""
        if mod in ("dask.threaded", "dask.local") and \
                getattr(value, "__name__", "") in ("get", "get_sync"):
            return Scheduler("local", value, mod)
        if mod == "dask.multiprocessing":
            return Scheduler("remote", value, "processes", same_machine=True)
        return Scheduler("remote", value, getattr(value, "__name__", repr(value)))
    raise _unknown(value)


def futures_client(layers):
    """The Client of the FutureBlocks among ``layers``, or None."""
    for layer in layers.values():
        if type(layer) is FutureBlocks:
            return layer.client
    return None


def resolve(kwargs, layers):
    """The Scheduler a compute of arrays with ``layers`` runs on, from
    ``kwargs`` (``scheduler``, ``get`` and ``pool`` are taken out of it), the
    config key ``scheduler``, or - for arrays persisted on a cluster - their
    Client.  Returns (scheduler, layers): the layers with their Futures
    gathered when the scheduler is not their Client's."""
    value = kwargs.pop("scheduler", None)
    get = kwargs.pop("get", None)
    pool = kwargs.pop("pool", None)
    if get is not None:
        if value is not None:
            raise ValueError("cdask: give scheduler= or get=, not both")
        value = get
    held = futures_client(layers)
    if value is None:
        value = config.get("scheduler", None)
    if value is None:
        value = held if held is not None else "cdask"
    s = _of(value)
    if pool is not None:
        if s.kind == "cdask" or s.client is not None:
            raise ValueError("cdask: pool= is for dask's threaded and multiprocessing "
                             "schedulers (scheduler='threads' or 'processes'), not the %s "
                             "scheduler" % s.label)
        s.kwargs["pool"] = pool
    if held is not None and held is not s.client:
        layers = gathered(layers)
    return s, layers


def gathered(layers):
    """``layers`` with each FutureBlocks layer fetched into a dict of blocks."""
    out = dict(layers)
    for name, layer in layers.items():
        if type(layer) is FutureBlocks:
            keys = list(layer)
            out[name] = dict(zip(keys, layer.client.gather([layer[k] for k in keys])))
    return out
