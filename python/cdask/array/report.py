"""The plan of a compute, told before it runs: ``Array.explain`` and
``cdask.explain``.

    >>> (((A + 1) * 2) ** 3).explain()
    cdask plan for power (6000, 6000) float64 - nothing has run
    Layers as built: 4 layers, 36 tasks
      array                       9 tasks  blocks of 63.99 MiB
      add                         9 tasks  blocks of 63.99 MiB
      multiply                    9 tasks  blocks of 63.99 MiB
      power                       9 tasks  blocks of 63.99 MiB
    As it would run: 17 tasks in 1 layer, on 2 workers
      store                      17 tasks  fused(power, multiply, add)
      no tasks of their own (fused into others, or read where they lie): array, add, ...
    Memory: budget 14.12 GiB (cdask.config memory_limit), spill limit 14.00 GiB
      result, allocated by compute() before the run: 274.66 MiB
      largest block: 63.99 MiB
      held by the scheduler at its peak: 0 B (the plan replayed in its order on 2 workers)
      projected peak: 274.66 MiB, 2% of the budget
      nothing would spill

The report is made by :func:`cdask.array.compute.prepare` - every step
``compute()`` takes before its scheduler starts: the layers culled and
fused, the tasks that write the result's blocks, the task-by-task fusion,
the budget checks (the result against the budget, the largest task against
the budget) and the spill limit - and then a replay of the plan in Python:
the tasks taken in the C scheduler's order (``Graph.order()``), C kernels
and Python tasks from queues of their own, at most as many at once as the
compute has workers; each value counted with its block's size from when its
task ends until its last reader ends; past the spill limit, the
latest-ordered held blocks spilled, as the scheduler spills them.  Tasks
take a time in proportion to the bytes they touch.  Which queue a free
thread serves depends on the real run's timing, so the plan is replayed
both ways (threads going on with the kind of task they ran; C work first):
the report gives both peaks, and the projected peak is made with the
larger.  A projection, not a bound.

The replay's peak is what the scheduler would hold (what a ``Profiler``'s
``memory`` records as ``held``); the projected peak adds the result, which
compute() allocates before the run.  Nothing is run, and nothing allocated
but the result's address space (untouched pages: the kernel gives them as
blocks land).

``explain`` prints the report and returns it: a ``PlanReport``, a ``str``
with the figures as attributes (``projected_peak``, ``projected_held`` and
``projected_held_low`` (the two replays' peaks),
``result_bytes``, ``budget``, ``spill_limit``, ``projected_spilled``,
``tasks_built``, ``tasks_run``, ``problems``).  In Jupyter it shows itself
as HTML, but not as the result of the cell whose ``explain()`` printed it
(it would show twice).  ``print=False`` only returns it.
"""

import builtins
import heapq
import html
import sys

from .compute import prepare
from .core import Array, BLOCK_BYTES, LAYER_CHUNKS
from .plan import cull_layers
from .utils import format_bytes, key_split
from .._core import Kernel
from ..diagnostics import task_operation

__all__ = ["explain", "PlanReport", "replay_memory"]

# plans of more tasks than this are not replayed (the replay costs some
# microseconds a task in Python)
REPLAY_MAX = 200_000
# blocks the scheduler may spill (chunks of at least this many bytes)
_SPILLABLE = 1 << 20


class PlanReport(str):
    """The text of a plan report, with its figures as attributes (see the
    module docstring)."""

    def __new__(cls, text, **figures):
        self = super().__new__(cls, text)
        self.__dict__.update(figures)
        self._printed_in = None       # the IPython cell that printed it
        return self

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        return "<pre style=\"line-height: 1.25\">%s</pre>" % html.escape(str(self))

    def _ipython_display_(self):
        if self._printed_in is not None and self._printed_in == _cell():
            return                 # the cell's explain() has printed it already
        from IPython.display import HTML, display
        display(HTML(self._repr_html_()))


def _cell():
    """The number of the IPython cell running, or None outside IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "execution_count", None)


def _block_bytes(key):
    """The bytes of the block ``key`` names: from its layer's chunks where
    they are known, else the layer's largest block, else 0."""
    if type(key) is not tuple or not key or type(key[0]) is not str:
        return BLOCK_BYTES.get(key, 0) if type(key) is str else 0
    known = LAYER_CHUNKS.get(key[0])
    if known is not None and len(key) == len(known[0]) + 1:
        n = known[1]
        try:
            for c, i in zip(known[0], key[1:]):
                n *= c[i]
        except (IndexError, TypeError):
            return BLOCK_BYTES.get(key[0], 0)
        if n == n:                  # not nan: a size known before the run
            return int(n)
    return BLOCK_BYTES.get(key[0], 0)


def _flat(keys):
    """The keys of a nested list of keys."""
    out, stack = [], [keys]
    while stack:
        k = stack.pop()
        if isinstance(k, list):
            stack.extend(k)
        else:
            out.append(k)
    return out


def replay_memory(g, keys, workers, spill_limit):
    """Replay the run of graph ``g`` for ``keys`` (see the module docstring):
    returns [(peak held, bytes spilled, {layer name: bytes spilled})] of
    two replays (see ``_replay``), the smaller peak first.  A value's size is its block's,
    from its layer's chunks (0 when unknown: results of store tasks, the
    tuples of partial reductions)."""
    deps = g.dependencies()
    prio = g.order()
    # data in the graph is there before the run and not counted as held;
    # an alias holds its target's value, counted once
    calls = {k for k, v in g.items() if type(v) is tuple and v and callable(v[0])}
    tasks = calls | {k for k, ds in deps.items() if ds}
    size = {k: _block_bytes(k) if k in calls else 0 for k in tasks}
    cost = {k: 1.0 + size[k] + sum(_block_bytes(d) for d in deps[k]) for k in tasks}
    refs = {k: 0 for k in tasks}
    readers = {k: [] for k in tasks}
    for k in tasks:
        for d in deps[k]:
            if d in tasks:
                refs[d] += 1
                readers[d].append(k)
    for k in _flat(keys):
        if k in refs:
            refs[k] += 1                 # results are held to the end
    plan = (tasks, deps, prio, size, cost, refs, readers,
            {k for k in calls if isinstance(g[k][0], Kernel)})
    return sorted((_replay(plan, workers, spill_limit, c_first) for c_first in (False, True)),
                  key=lambda r: r[0])


def _replay(plan, workers, spill_limit, c_first):
    """One replay.  C kernels and Python tasks wait in ready queues of their
    own, as in the scheduler, and at most ``workers`` tasks run at once; the
    calling thread starts on the Python tasks, the pool's threads on the C
    ones.  Which a thread takes next depends on timing: a thread in a batch
    of Python tasks pops the next one before C work waiting, or a woken C
    worker takes the thread's slot first.  ``c_first=False`` replays the
    first (a thread goes on with the kind of task it ran while there are
    some), True the second (a free slot goes to C work while there is some)."""
    tasks, deps, prio, size, cost, refs, readers, in_c = plan
    refs = dict(refs)
    ready = {True: [], False: []}          # C tasks, Python tasks
    waiting = {}
    for k in tasks:
        waiting[k] = sum(d in tasks for d in deps[k])
        if not waiting[k]:
            heapq.heappush(ready[k in in_c], (prio[k], k))
    running = []        # (end time, order, key)
    free = [False] + [True] * (max(1, int(workers)) - 1)   # the kind each idle thread takes
    held = peak = spilled = 0
    spilled_by = {}
    in_memory = []      # spillable held values: (-order, key)
    gone = set()        # spilled or freed
    t = 0.0
    while ready[True] or ready[False] or running:
        idle = []
        for kind in free:
            q = ready[kind] or ready[not kind]
            if not q:
                idle.append(kind)
                continue
            p, k = heapq.heappop(q)
            heapq.heappush(running, (t + cost[k], p, k))
        free = idle
        t, _, k = heapq.heappop(running)
        free.append(True if c_first else k in in_c)
        held += size[k]
        peak = max(peak, held)
        if size[k] >= _SPILLABLE:
            heapq.heappush(in_memory, (-prio[k], k))
        for r in readers[k]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready[r in in_c], (prio[r], r))
        for d in deps[k]:
            if d not in tasks:
                continue
            refs[d] -= 1
            if refs[d] == 0 and d not in gone:
                held -= size[d]
                gone.add(d)
        while spill_limit and held > spill_limit and in_memory:
            _, v = heapq.heappop(in_memory)
            if v in gone:
                continue
            gone.add(v)
            held -= size[v]
            spilled += size[v]
            layer = key_split(str(v[0] if type(v) is tuple and v else v))
            spilled_by[layer] = spilled_by.get(layer, 0) + size[v]
    return peak, spilled, spilled_by


def _layer_order(layers):
    """The layers' names, each after every layer it reads (by how many
    layers each needs: a reader needs more than what it reads)."""
    names = list(layers)
    if len(names) > 200:
        return names
    return sorted(names, key=lambda n: len(cull_layers(layers, [n])))


def _block_text(name):
    b = BLOCK_BYTES.get(name)
    return "blocks of %s" % format_bytes(b) if b else ""


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def _row(name, n, what, unit="task"):
    return "  %-22s %6d %s%s  %s" % (name, n, unit, " " if n == 1 else "s", what)


def explain(*arrays, print=True, **kwargs):
    """Report, without running anything, how ``compute(*arrays, **kwargs)``
    would run: the layers as built and the fused tasks they become, with
    task counts; the memory it would hold at its projected peak against the
    budget, and what would spill (see the module docstring).  Prints the
    report (unless ``print=False``) and returns it as a PlanReport."""
    for a in arrays:
        if not isinstance(a, Array):
            raise TypeError("cdask.explain explains cdask Arrays, not %s" % type(a).__name__)
    if not arrays:
        raise TypeError("cdask.explain needs an Array to explain")
    p = prepare(list(arrays), [None] * len(arrays), kwargs, check=False)
    lines = []
    head = ", ".join("%s %s %s" % (key_split(a.name), a.shape, a.dtype) for a in arrays)
    lines.append("cdask plan for %s - nothing has run" % head)

    # the layers as the arrays were built
    built = {}
    for a in arrays:
        built.update(a._layers)
    built = cull_layers(built, {a.name for a in arrays})
    n_built = sum(len(layer) for layer in built.values())
    lines.append("Layers as built: %s, %s" % (_plural(len(built), "layer"),
                                             _plural(n_built, "task")))
    for name in _layer_order(built):
        lines.append(_row(key_split(name), len(built[name]), _block_text(name)))

    # the tasks as they would run, by layer (in the order they would start)
    g = p.graph.cull(_flat(p.keys))      # as the scheduler does: what the keys need
    by_layer = {}
    prio = g.order() if len(g) <= REPLAY_MAX else {}
    deps = g.dependencies()
    ntasks = 0
    for k, task in g.items():
        name = k[0] if type(k) is tuple and k else k
        entry = by_layer.get(name)
        if entry is None:
            entry = by_layer[name] = [0, 0, {}, prio.get(k, 0)]
        op = task_operation(task)
        if op is None and not deps[k]:
            entry[1] += 1              # data: a block of an in-memory array, say
            continue
        entry[0] += 1
        ntasks += 1
        op = op or "alias"
        entry[2][op] = entry[2].get(op, 0) + 1
        entry[3] = min(entry[3], prio.get(k, 0))
    lines.append("As it would run: %s in %s, on %s"
                 % (_plural(ntasks, "task"), _plural(len(by_layer), "layer"),
                    _plural(p.workers, "worker")))
    for name, (n, nvalues, ops, _) in sorted(by_layer.items(), key=lambda kv: kv[1][3]):
        if n:
            what = ", ".join(op if c == n else "%s (%d)" % (op, c) for op, c in ops.items())
            lines.append(_row(key_split(str(name)), n, what))
        if nvalues:
            lines.append(_row(key_split(str(name)), nvalues, "data in the graph", "value"))
    folded = [key_split(n) for n in _layer_order(built) if n not in by_layer]
    if folded:
        lines.append("  no tasks of their own (fused into others, or read where they lie): "
                     + ", ".join(dict.fromkeys(folded)))

    # memory
    lines.append("Memory: budget %s (cdask.config memory_limit), spill limit %s"
                 % (format_bytes(p.budget), format_bytes(p.spill_limit)))
    lines.append("  result, allocated by compute() before the run: %s" % format_bytes(p.held))
    lines.append("  largest block: %s" % format_bytes(p.biggest))
    if len(g) <= REPLAY_MAX:
        low, (held, spilled, spilled_by) = replay_memory(g, p.keys, p.workers, p.spill_limit)
        held_low = low[0]
        peak = p.held + held
        span = format_bytes(held) if held_low == held else "%s to %s" % (
            format_bytes(held_low), format_bytes(held))
        lines.append("  held by the scheduler at its peak: %s (the plan replayed in its "
                     "order on %d worker%s%s)" % (
                         span, p.workers, "" if p.workers == 1 else "s",
                         "" if held_low == held else ", as its threads may take C and "
                         "Python tasks"))
        lines.append("  projected peak: %s, %.0f%% of the budget"
                     % (format_bytes(peak), 100.0 * peak / max(1, p.budget)))
        if spilled:
            lines.append("  would spill %s to disk: %s" % (format_bytes(spilled), ", ".join(
                "%s %s" % (n, format_bytes(b)) for n, b in
                sorted(spilled_by.items(), key=lambda kv: -kv[1]))))
        else:
            lines.append("  nothing would spill")
    else:
        held = held_low = spilled = peak = None
        lines.append("  not replayed: %d tasks (over %d)" % (len(g), REPLAY_MAX))
    for msg in p.problems:
        lines.append("Would fail: " + msg)
    report = PlanReport("\n".join(lines), projected_peak=peak, projected_held=held,
                        projected_held_low=held_low,
                        result_bytes=p.held, budget=p.budget, spill_limit=p.spill_limit,
                        projected_spilled=spilled, tasks_built=n_built, tasks_run=ntasks,
                        problems=list(p.problems))
    if print:
        builtins.print(report)
        report._printed_in = _cell()
    return report
