"""compute, persist and optimize: from Arrays to a run of the C scheduler.

:func:`run` is the one place a cdask graph is executed: it checks the plan
against the memory budget, adds the tasks that write each result's blocks
into its output, fuses (``fuse.py``), and calls ``cdask.get`` with the spill
limit and directory, under the BLAS thread policy of ``contraction.py``.
``compute`` assembles results; ``store``/``to_npy`` pass their targets.
"""

import itertools
import os
import tempfile

import numpy as np

from .. import config
from .._core import get
from ..diagnostics import get_with_progress
from ..graph import Graph
from ..utils import parse_bytes
from .blockio import release_buffers, sink_writers, store_block
from .chunks import default_chunk_bytes
from .chunk_types import MaskedResult, maybe_masked, note_masked
from .coarsen import coarsen
from .contraction import blas_limits
from .core import Array, BLOCK_BYTES, HANDED_LAYERS, finalize, scalar_result
from .layers import layer_tasks
from .plan import cull_layers, fuse_layers
from .schedulers import FutureBlocks, resolve
from .fuse import fuse_elementwise, fuse_reductions, read_in_place, sink_stores
from .tokenize import tokenize
from .utils import chunks_known, format_bytes, key_split, slices_from_chunks

__all__ = ["compute", "persist", "optimize", "run", "prepare", "RunPlan", "fused_graph",
           "dask_optimize", "to_delayed"]


def plan_check(g, budget, layer_names):
    """Raise MemoryError, before anything runs, if one task of g needs more
    than the budget at once: its output block plus its input blocks (by the
    largest block of each layer).  Task by task for graphs of up to 20,000
    tasks, and for bigger ones whose biggest block is over 1/64 of the budget
    (smaller blocks could only exceed it in a task reading more than 64 of
    them); graphs over 200,000 tasks are checked only against 2 blocks."""
    biggest = max([BLOCK_BYTES.get(n, 0) for n in layer_names] or [0])
    if 2 * biggest > budget:
        pass
    elif len(g) > 200_000 or (len(g) > 20_000 and biggest * 64 <= budget):
        return biggest
    sizes = {}
    for key in g:
        name = key[0] if type(key) is tuple and key else key
        b = BLOCK_BYTES.get(name)
        if b is not None:
            sizes[key] = b
    deps = g.dependencies()
    worst, wkey, wout, win = 0, None, 0, 0
    for key, ds in deps.items():
        out = sizes.get(key, 0)
        tot = out + sum(sizes.get(d, 0) for d in ds)
        if tot > worst:
            worst, wkey, wout, win = tot, key, out, tot - out
    if worst > budget:
        name = wkey[0] if type(wkey) is tuple and wkey else wkey
        raise MemoryError(
            "cdask: the task %r (operation %r) needs %s at once (inputs %s, output %s), more "
            "than the memory budget of %s (cdask.config memory_limit); use smaller chunks "
            "(x.rechunk(...) or chunks= when the array is made) or a larger memory_limit"
            % (wkey, key_split(str(name)), format_bytes(worst), format_bytes(win),
               format_bytes(wout), format_bytes(budget)))
    return biggest


def _spill_limit(budget, biggest, workers):
    """Held intermediates past this go to disk.  The budget bounds resident
    memory, and besides what the scheduler holds each running task has its
    output block resident: that much is kept out of the limit, which never
    goes below half the budget (the plan check has made sure that one task
    fits in the budget)."""
    return max(budget // 2, budget - max(workers, 1) * biggest)


def _get_kwargs(kwargs):
    kw = dict(kwargs)
    for k in ("scheduler", "optimize_graph", "traverse", "get", "pool"):
        kw.pop(k, None)
    return kw


def _fuse_enabled(kwargs):
    # On by default; compute(fuse=False) or cdask.config.set({"array.fuse":
    # False}) turn it off (to compare, or to debug a kernel).
    if "fuse" in kwargs:
        return bool(kwargs.pop("fuse"))

    return bool(config.get("array.fuse", True))


def _worth_fusing(g, layer_names):
    """Fusion rewrites the graph in Python, some 10-40 us per task: worth it
    when blocks are big enough for the passes over memory it saves to pay
    for that.  Graphs of many tiny blocks (over 20,000 tasks, none of 256
    KiB) run unfused."""
    if len(g) <= 20_000:
        return True
    return max([BLOCK_BYTES.get(n, 0) for n in layer_names] or [0]) >= 256 << 10


def _workers(kwargs):
    n = kwargs.get("num_workers")
    if n is None:
        n = config.get("num_workers", 1)
    try:
        return max(1, int(n))
    except (TypeError, ValueError):
        return 1


def _spill_dir():
    d = config.get("temporary_directory", None)
    return os.fspath(d) if d else tempfile.gettempdir()


def _memory_limit(kwargs):
    v = kwargs.pop("memory_limit", None)
    if v is None:
        return int(config.get("memory_limit"))
    return parse_bytes(v)


def _with_extra(keys, stores, extra):
    """keys with the store keys split into spans: the extra span keys are
    appended at the end (their results are never read)."""
    have = set(stores)
    return list(keys) + [k for k in extra if k not in have]


def _flatten_keys(keys):
    out = []
    stack = [keys]
    while stack:
        k = stack.pop()
        if isinstance(k, list):
            stack.extend(k)
        else:
            out.append(k)
    return out


def _dask_kwargs(kwargs):
    """The scheduler of a compute, for dask.compute of the other dask
    collections among its arguments (dask's own default if it is cdask's)."""
    value = kwargs.get("scheduler", kwargs.get("get"))
    if value is None:
        value = config.get("scheduler", None)
    if value is None or (isinstance(value, str) and value.lower() == "cdask") or value is get:
        return {}
    return {"scheduler": value}


def compute(*args, traverse=True, **kwargs):
    """Compute several collections at once: shared parts of their graphs run
    once (one ``cdask.get`` over the union graph).  Returns a tuple; arguments
    that are not cdask Arrays pass through unchanged (other dask collections
    are computed with their own machinery)."""
    arrays = []
    seen = {}
    for a in args:
        if isinstance(a, Array) and id(a) not in seen:
            seen[id(a)] = len(arrays)
            arrays.append(a)
    if not arrays:
        out = []
        for a in args:
            if hasattr(a, "__dask_graph__") and not isinstance(a, Array):
                import dask

                out.append(dask.compute(a, **_dask_kwargs(kwargs))[0])
            else:
                out.append(a)
        return tuple(out)
    results, plans = run(arrays, [None] * len(arrays), kwargs)
    finals = []
    for a, (kind, v) in zip(arrays, plans):
        if kind == "store":
            finals.append(v.result() if isinstance(v, MaskedResult) else v)
        elif kind == "scalar":
            finals.append(scalar_result(results[v]))
        else:
            finals.append(finalize(results[v], a.ndim, a.dtype))
    out = []
    for a in args:
        if isinstance(a, Array):
            out.append(finals[seen[id(a)]])
        elif hasattr(a, "__dask_graph__"):
            import dask

            out.append(dask.compute(a, **_dask_kwargs(kwargs))[0])
        else:
            out.append(a)
    return tuple(out)


def skip_rechunks(arrays, outs):
    """``arrays`` with each rechunk whose result is only gathered whole
    (``outs[i]`` None, or an ndarray or memmap, which any block can be
    written into) replaced by the array it rechunks: the values are the
    same, and a rechunk's blocks cost time and memory (a rechunk of computed
    blocks holds them all) that nothing here needs.  Only where the source's
    blocks are no bigger than twice the rechunk's, or than the default chunk
    size, so that the budget is kept as the rechunk keeps it.  Config
    ``array.skip_rechunk`` (True) turns it off."""
    if not config.get("array.skip_rechunk", True):
        return list(arrays)
    out = []
    for a, o in zip(arrays, outs):
        src = getattr(a, "_rechunk_of", None)
        if (src is not None and (o is None or isinstance(o, np.ndarray)) and a.ndim
                and chunks_known(a) and chunks_known(src) and src.shape == a.shape
                and src.dtype == a.dtype
                and _max_block_bytes(src) <= max(2 * _max_block_bytes(a),
                                                 default_chunk_bytes())):
            a = src
        out.append(a)
    return out


def _max_block_bytes(a):
    n = a.dtype.itemsize
    for c in a.chunks:
        n *= max(c) if c else 0
    return n


def run(arrays, outs, kwargs):
    """Run the graphs of ``arrays`` at once; the blocks of each array of known
    shape are written into ``outs[i]`` (a new array when None: anything with
    NumPy's ``__setitem__`` does, C-contiguous ndarrays and memmaps are
    written straight by fused tasks).  Returns (results, plans): per array
    ("store", out), ("scalar", slot) or ("blocks", slot) into results."""
    kwargs = dict(kwargs)
    arrays = skip_rechunks(arrays, outs)
    s, arrays = _scheduler(arrays, kwargs)
    if s.kind == "remote":
        return _run_remote(arrays, outs, s, kwargs)
    p = prepare(arrays, outs, kwargs)
    try:
        with blas_limits(p.layers):
            if s.kind == "cdask":
                results = get_with_progress(get, p.graph, p.keys, **p.get_kwargs)
            else:
                results = s.run(p.graph, p.keys)
    finally:
        release_buffers()           # direct reads' and writes' aligned buffers
    return results, p.plans


def _scheduler(arrays, kwargs):
    """The Scheduler of a compute of ``arrays`` (``schedulers.resolve``; its
    keywords are taken out of ``kwargs``), and the arrays, with their
    Futures gathered if the scheduler is not the Client holding them."""
    layers = {}
    for a in arrays:
        layers.update(a._layers)
    s, got = resolve(kwargs, layers)
    if "num_workers" in kwargs and s.client is None and s.kind != "cdask":
        s.kwargs["num_workers"] = kwargs["num_workers"]
    if got is not layers:
        arrays = [Array({n: got[n] for n in a._layers}, a.name, a.chunks, a.dtype)
                  for a in arrays]
    return s, arrays


def _remote_graph(arrays, kwargs):
    """The graph a scheduler of other processes runs for the blocks of
    ``arrays``: fused as compute() fuses (one task per fused kernel), or
    culled only with fuse=False."""
    layers = {}
    for a in arrays:
        layers.update(a._layers)
    names = {a.name for a in arrays}
    flat = [k for a in arrays for k in a._keys_flat()]
    if _fuse_enabled(kwargs):
        return fused_graph(layers, names, flat), layers
    g = Graph()
    for layer in cull_layers(layers, names).values():
        g.update(layer_tasks(layer))
    return g.cull(flat), layers


def _check_remote(g, layers, s, kwargs, held=0):
    """The budget checks of a run elsewhere: the results this process holds
    against its own budget, each task against its workers' (a Client's
    memory_limit per thread)."""
    budget = _memory_limit(kwargs)
    if held > budget:
        raise MemoryError(
            "cdask: the results of this compute would take %s, more than the memory budget of "
            "%s (cdask.config memory_limit) of this process; write them from the workers "
            "instead: x.to_npy(path) on a filesystem they share, or x.to_zarr(url)"
            % (format_bytes(held), format_bytes(budget)))
    plan_check(g, s.task_budget or budget, layers)


def _run_remote(arrays, outs, s, kwargs):
    """:func:`run` on a scheduler whose tasks run in other processes (a
    Client, processes): the fused graph of the arrays' blocks, plus a store
    task per block of each output its workers reach (``Scheduler.portable``);
    the other blocks come back and are written into their outputs here, as
    they arrive.  Returns what run returns."""
    g, layers = _remote_graph(arrays, kwargs)
    masked = maybe_masked(layers)
    store = "store-" + tokenize(*[a.name for a in arrays], id(g))
    keys, plans, here, whole = [], [], {}, []
    held = 0
    for ai, (a, out) in enumerate(zip(arrays, outs)):
        if (a.ndim == 0 and out is None) or not chunks_known(a):
            kind = "scalar" if a.ndim == 0 else "blocks"
            plans.append((kind, len(whole)))
            whole.append(a)
            keys.extend(a._keys_flat())
            continue
        if out is None:
            held += a.nbytes
            out = MaskedResult(a.shape, a.dtype) if masked and maybe_masked(a._layers) \
                else np.empty(a.shape, dtype=a.dtype)
            target = None
        else:
            target = s.portable(out)
        per_axis = slices_from_chunks(a.chunks)
        for idx in itertools.product(*map(range, a.numblocks)):
            sl = tuple(per_axis[d][i] for d, i in enumerate(idx))
            if target is None:        # (two arrays of one name: one key, two outputs)
                here.setdefault((a.name,) + idx, []).append((out, sl))
                keys.append((a.name,) + idx)
            else:
                sk = (store, ai) + idx
                g[sk] = (store_block, target, (a.name,) + idx, sl)
                keys.append(sk)
        plans.append(("store", out))
    _check_remote(g, layers, s, kwargs, held)
    keys = list(dict.fromkeys(keys))
    blocks = {}
    with blas_limits(layers):
        for key, value in s.results(g, keys):
            if key in here:
                for out, sl in here[key]:
                    out[sl] = value
            elif type(key) is tuple and key and key[0] != store:
                blocks[key] = value
    results = []
    for a in whole:
        results.append(blocks[(a.name,)] if a.ndim == 0 else
                       _nest(a.__dask_keys__(), blocks))
    return results, plans


def _nest(keys, blocks):
    if isinstance(keys, list):
        return [_nest(k, blocks) for k in keys]
    return blocks[keys]


class RunPlan:
    """What :func:`run` is about to run, made by :func:`prepare`: the graph
    (fused, with its store tasks), the keys asked for, the plans of the
    results, the layers, the keywords of ``cdask.get`` (spill limit and
    directory among them), and the memory figures of the budget check:
    ``budget``, ``held`` (bytes of the results compute() allocates),
    ``biggest`` (the largest block), ``workers``, ``spill_limit``, and
    ``problems`` (the MemoryError messages of a check that failed, when
    prepare was told not to raise them)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _problem(problems, message):
    if problems is None:
        raise MemoryError(message)
    problems.append(message)


def prepare(arrays, outs, kwargs, check=True):
    """Everything :func:`run` does before the scheduler starts, as a
    :class:`RunPlan`: nothing is run.  The budget checks raise MemoryError,
    or with ``check=False`` note their messages in ``problems``."""
    problems = None if check else []
    kwargs = dict(kwargs)
    layers = {}
    for a in arrays:
        layers.update(a._layers)
    fusing = _fuse_enabled(kwargs)
    masked = maybe_masked(layers)
    if masked:
        # blocks may be masked arrays, which C kernels would read without
        # their masks: the tasks run as they were built (Python ones there)
        fusing = False
    # what each array's store tasks read: its blocks, or runs of them merged
    # when they are tiny (coarsen.py) - written straight into the output,
    # they are internal results
    sources = []
    for a, o in zip(arrays, outs):
        src = (a.name, a.chunks)
        if fusing and a.ndim and chunks_known(a) and config.get("array.coarsen", True):
            m = coarsen(a, range(a.ndim))
            if m is not None:
                layers.update(m[0])
                src = (m[1], m[2])
        sources.append(src)
    names = {s[0] for s in sources} | {a.name for a in arrays if not chunks_known(a) or
                                       a.ndim == 0}
    layers = cull_layers(layers, names)
    if fusing:
        layers = fuse_layers(layers, keep=names)
    g = Graph()
    for layer in layers.values():
        g.update(layer_tasks(layer))
    budget = _memory_limit(kwargs)
    held = sum(a.nbytes for a, o in zip(arrays, outs) if o is None and a.ndim and chunks_known(a))
    if held > budget:
        big = max((a for a, o in zip(arrays, outs) if o is None and a.ndim and chunks_known(a)),
                  key=lambda a: a.nbytes)
        _problem(problems,
            "cdask: the result%s of this compute would take %s, more than the memory budget "
            "of %s (cdask.config memory_limit); write it to disk block by block instead: "
            "x.to_npy(path) or cdask.store(x, target) (the largest, %s, is %s)"
            % ("s" if len(arrays) > 1 else "", format_bytes(held), format_bytes(budget),
               big.name, format_bytes(big.nbytes)))
    try:
        biggest = plan_check(g, budget, layers)
    except MemoryError as e:
        if problems is None:
            raise
        problems.append(str(e))
        biggest = max([BLOCK_BYTES.get(n, 0) for n in layers] or [0])
    store = "store-" + tokenize(*[a.name for a in arrays], id(g))
    keys = []
    plans = []  # per array: ("store", out) or ("blocks", slot)
    for ai, a in enumerate(arrays):
        if a.ndim == 0 and outs[ai] is None:
            plans.append(("scalar", len(keys)))
            keys.append((a.name,))
        elif chunks_known(a):
            out = outs[ai]
            if out is None:
                out = MaskedResult(a.shape, a.dtype) if masked and maybe_masked(a._layers) \
                    else np.empty(a.shape, dtype=a.dtype)
            sname, schunks = sources[ai]
            per_axis = slices_from_chunks(schunks)
            for idx in itertools.product(*map(range, map(len, schunks))):
                sl = tuple(per_axis[d][i] for d, i in enumerate(idx))
                sk = (store, ai) + idx
                g[sk] = (store_block, out, (sname,) + idx, sl)
                keys.append(sk)
            plans.append(("store", out))
        else:
            plans.append(("blocks", len(keys)))
            keys.append(a.__dask_keys__())
    if fusing and _worth_fusing(g, layers):
        flat = _flatten_keys(keys)
        fuse_elementwise(g, keep=flat)
        fuse_reductions(g, keep=flat)
        stores = [k for k in flat if type(k) is tuple and k and k[0] == store]
        extra = sink_stores(g, stores, store_block, workers=_workers(kwargs))
        if len(extra) != len(stores):
            keys = _with_extra(keys, stores, extra)
    # blocks cdask.random draws are drawn straight into the target
    if not masked:
        sink_writers(g, [k for k in _flatten_keys(keys)
                         if type(k) is tuple and k and k[0] == store], store_block)

    kw = _get_kwargs(kwargs)
    # intermediates past the budget are spilled to unnamed files in the
    # temporary directory (config "temporary_directory"), removed with them
    workers = _workers(kwargs)
    kw.setdefault("spill_limit", _spill_limit(budget, biggest, workers))
    kw.setdefault("spill_dir", _spill_dir())
    return RunPlan(graph=g, keys=keys, plans=plans, layers=layers, get_kwargs=kw,
                   budget=budget, held=held, biggest=biggest, workers=workers,
                   spill_limit=kw["spill_limit"], problems=problems or [])


def fused_graph(layers, names, keys):
    """The graph of ``layers`` as compute() would run it for ``keys`` (the
    blocks of the layers ``names``): culled to what the keys need, chains
    fused on the layers (``plan.py``), then reductions and masks fused task
    by task (``fuse.py``)."""
    g = Graph()
    masked = maybe_masked(layers)      # masked blocks: not through C kernels
    culled = cull_layers(layers, names)
    for layer in (culled if masked else fuse_layers(culled, keep=names)).values():
        g.update(layer_tasks(layer))
    g = g.cull(keys)
    if not masked and _worth_fusing(g, layers):
        fuse_elementwise(g, keep=keys)
        fuse_reductions(g, keep=keys)
        read_in_place(g)
        g = g.cull(keys)            # blocks now read in place are left unread
    return g


def optimize(*args, **kwargs):
    """The arrays with their graphs as compute() would run them: culled to
    what they need, elementwise chains fused, and reductions fused with the
    chains and masks they consume (``repr`` of a fused task's kernel shows
    the operations it holds).  Other arguments pass through.  Like
    ``dask.optimize``, returns a tuple."""

    out = []
    for a in args:
        if not isinstance(a, Array):
            out.append(a)
            continue
        keys = a._keys_flat()
        g = fused_graph(a._layers, (a.name,), keys)
        out.append(Array({a.name: g}, a.name, a.chunks, a.dtype))
    return tuple(out)


def dask_optimize(dsk, keys, **kwargs):
    """``Array.__dask_optimize__``: what dask's schedulers (``dask.compute``,
    ``dask.persist``, ``dask.optimize``, a distributed Client) run is the
    graph compute() would run - the layers of the arrays asked for, fused -
    when every key is a block of an Array whose graph cdask handed out;
    otherwise ``dsk`` with its tasks fused task by task (a graph unpickled
    in another process, a distributed scheduler's: its kernels were recorded
    as they were unpickled, ``layers.kernel_from_pickle``)."""
    flat = _flatten_keys(keys)
    names = {k[0] for k in flat if type(k) is tuple and k and type(k[0]) is str}
    arrays = [HANDED_LAYERS.get(n) for n in names]
    if names and all(a is not None for a in arrays) and \
            all(type(k) is tuple and k and type(k[0]) is str for k in flat):
        layers = {}
        for a in arrays:
            layers.update(a._layers)
        return fused_graph(layers, names, flat)
    g = Graph()
    g.update(dsk)
    g = g.cull(flat)
    if not maybe_masked(k[0] for k in g if type(k) is tuple and k):
        fuse_elementwise(g, keep=flat)
        fuse_reductions(g, keep=flat)
    return g


def persist(*args, **kwargs):
    """Compute the blocks of each Array (their graphs fused as compute()
    fuses them); return Arrays whose graphs hold the results (chunk sizes
    become known).  Non-arrays pass through."""
    given = [a for a in args if isinstance(a, Array)]
    if not given:
        return tuple(args)
    kwargs = dict(kwargs)
    s, arrays = _scheduler(given, kwargs)
    keys = [a._keys_flat() for a in arrays]
    if s.kind == "remote":
        g, layers = _remote_graph(arrays, kwargs)
        _check_remote(g, layers, s, kwargs)
    else:
        layers = {}
        for a in arrays:
            layers.update(a._layers)
        if _fuse_enabled(kwargs):
            g = fused_graph(layers, {a.name for a in arrays}, _flatten_keys(keys))
        else:
            g = Graph()
            for layer in layers.values():
                g.update(layer_tasks(layer))
    with blas_limits(layers):
        if s.client is not None:
            # the blocks stay on the workers: Futures in the new graph
            futures = iter(s.futures(g, [k for ks in keys for k in ks]))
            results = [[next(futures) for _ in ks] for ks in keys]
        elif s.kind == "cdask":
            results = get_with_progress(get, g, keys, **_get_kwargs(kwargs))
        else:
            results = s.run(g, keys)
    done = {}
    for orig, a, ks, vals in zip(given, arrays, keys, results):
        if s.client is not None:
            layer = FutureBlocks(dict(zip(ks, vals)), s.client)
            if not chunks_known(a):       # the blocks' shapes, not the blocks
                shapes = s.client.gather(s.client.map(np.shape, vals))
        else:
            layer = dict(zip(ks, vals))
            shapes = [np.shape(v) for v in vals]
        chunks = a.chunks
        if not chunks_known(a):
            nb = a.numblocks
            shapes = {k[1:]: sh for k, sh in zip(ks, shapes)}
            chunks = tuple(
                tuple(shapes[tuple(i if d == ax else 0 for d in range(a.ndim))][ax]
                      for i in range(nb[ax]))
                for ax in range(a.ndim))
        if maybe_masked(a._layers):
            note_masked(a.name)
        done[id(orig)] = Array({a.name: layer}, a.name, chunks, a.dtype)
    return tuple(done[id(a)] if isinstance(a, Array) else a for a in args)


def to_delayed(x, optimize_graph=True):
    """``Array.to_delayed``: a NumPy object array (the shape of the block grid)
    of ``dask.delayed.Delayed`` objects, one per block, each computing to that
    block.  With ``optimize_graph`` they share the graph compute() would run
    (fused); else the array's graph as it is.  Needs dask."""
    try:
        from dask.delayed import Delayed
    except ImportError as e:   # pragma: no cover - dask is in the test extra
        raise ImportError("Array.to_delayed makes dask.delayed objects and needs dask "
                          "(pip install dask)") from e
    keys = x._keys_flat()
    g = x.__dask_graph__()
    if optimize_graph:
        g = dask_optimize(g, keys)
    g = dict(g)
    out = np.empty(x.numblocks, dtype=object)
    for k in keys:
        out[k[1:]] = Delayed(k, g)
    return out
