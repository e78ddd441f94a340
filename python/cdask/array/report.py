"""The plan of a compute, told before it runs: ``Array.explain`` and
``cdask.explain``.

    >>> ((A + 1) * 2 ** 3).explain()
    cdask plan for power (6000, 6000) float64 - nothing has run
    Layers as built: 4 layers, 36 tasks
      array                9 tasks   blocks of 64.0 MiB
      ...
    As it would run: 9 tasks on 2 workers
      store                9 tasks   fused(power, multiply, add)
      no tasks of their own (fused into others, or read where they lie): ...
    Memory: budget 14.1 GiB (cdask.config memory_limit)
      ...

The report is made by :func:`cdask.array.compute.prepare` - every step
``compute()`` takes before its scheduler starts: the layers culled and
fused, the tasks that write the result's blocks, the task-by-task fusion,
the budget checks (the result against the budget, the largest task against
the budget) and the spill limit - and then a replay of the plan in Python:
the tasks taken in the C scheduler's order (``Graph.order()``) by as many
workers as the compute would have, each held value counted with its
layer's block size from when its task ends until its last reader ends, the
latest-ordered held blocks past the spill limit spilled as the scheduler
spills them.  The replay gives the projected peak of what the scheduler
holds (what a ``Profiler``'s ``memory`` records as ``held``); the result,
which compute() allocates before the run, comes on top.  Tasks take a time
in proportion to the bytes they touch; the real run's timing differs, so
the peak is a projection, not a bound.  Nothing is run or allocated but the
result's address space (untouched pages: the kernel gives them as blocks
land).

``explain`` prints the report and returns it: a ``PlanReport``, a ``str``
with the figures as attributes (``projected_peak``, ``projected_held``,
``result_bytes``, ``budget``, ``spill_limit``, ``projected_spilled``,
``tasks_built``, ``tasks_run``, ``problems``).  In Jupyter it shows itself
as HTML; right after it was printed, once, it does not show itself again.
``print=False`` only returns it.
"""

import builtins
import heapq
import html

from .compute import prepare
from .core import Array, BLOCK_BYTES
from .plan import cull_layers
from .utils import format_bytes, key_split
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
        self._printed = False
        return self

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        return "<pre style=\"line-height: 1.25\">%s</pre>" % html.escape(str(self))

    def _ipython_display_(self):
        if self._printed:          # explain() has just printed it
            self._printed = False
            return
        from IPython.display import HTML, display
        display(HTML(self._repr_html_()))


def _block_bytes(key):
    name = key[0] if type(key) is tuple and key else key
    return BLOCK_BYTES.get(name, 0) if type(name) is str else 0


def replay_memory(g, keys, workers, spill_limit):
    """Replay the run of graph ``g`` for ``keys`` (see the module docstring):
    returns (peak held, bytes spilled, {layer name: bytes spilled}).  A
    value's size is its layer's largest block (BLOCK_BYTES; 0 when unknown:
    results of store tasks, partial reductions' tuples)."""
    deps = g.dependencies()
    prio = g.order()
    # data in the graph is there before the run and not counted as held;
    # an alias holds its target's value, counted once
    calls = {k for k, v in g.items() if type(v) is tuple and v and callable(v[0])}
    tasks = calls | {k for k, ds in deps.items() if ds}
    size = {k: _block_bytes(k) if k in calls else 0 for k in tasks}
    refs = {k: 0 for k in tasks}
    readers = {k: [] for k in tasks}
    for k in tasks:
        for d in deps[k]:
            if d in tasks:
                refs[d] += 1
                readers[d].append(k)
    flat = []
    stack = [keys]
    while stack:
        k = stack.pop()
        if isinstance(k, list):
            stack.extend(k)
        else:
            flat.append(k)
    for k in flat:
        if k in refs:
            refs[k] += 1                 # results are held to the end
    ready = []
    waiting = {}
    for k in tasks:
        waiting[k] = sum(d in tasks for d in deps[k])
        if not waiting[k]:
            heapq.heappush(ready, (prio[k], k))
    running = []        # (end time, order, key)
    held = peak = spilled = 0
    spilled_by = {}
    in_memory = []      # spillable held values: (-order, key)
    gone = set()        # spilled or freed
    t = 0.0
    slots = max(1, int(workers))
    while ready or running:
        while ready and len(running) < slots:
            p, k = heapq.heappop(ready)
            cost = 1.0 + size[k] + sum(_block_bytes(d) for d in deps[k])
            heapq.heappush(running, (t + cost, p, k))
        t, _, k = heapq.heappop(running)
        held += size[k]
        peak = max(peak, held)
        if size[k] >= _SPILLABLE:
            heapq.heappush(in_memory, (-prio[k], k))
        for r in readers[k]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, (prio[r], r))
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
    lines.append("Layers as built: %d layers, %d tasks" % (len(built), n_built))
    for name in _layer_order(built):
        lines.append(_row(key_split(name), len(built[name]), _block_text(name)))

    # the tasks as they would run, by layer (in the order they would start)
    g = p.graph
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
    lines.append("As it would run: %d tasks in %d layers, on %d worker%s"
                 % (ntasks, len(by_layer), p.workers, "" if p.workers == 1 else "s"))
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
        held, spilled, spilled_by = replay_memory(g, p.keys, p.workers, p.spill_limit)
        peak = p.held + held
        lines.append("  held by the scheduler at its projected peak: %s (the plan replayed "
                     "in its order on %d worker%s)" % (format_bytes(held), p.workers,
                                                      "" if p.workers == 1 else "s"))
        lines.append("  projected peak: %s, %.0f%% of the budget"
                     % (format_bytes(peak), 100.0 * peak / max(1, p.budget)))
        if spilled:
            lines.append("  would spill %s to disk: %s" % (format_bytes(spilled), ", ".join(
                "%s %s" % (n, format_bytes(b)) for n, b in
                sorted(spilled_by.items(), key=lambda kv: -kv[1]))))
        else:
            lines.append("  nothing would spill")
    else:
        held = spilled = peak = None
        lines.append("  not replayed: %d tasks (over %d)" % (len(g), REPLAY_MAX))
    for msg in p.problems:
        lines.append("Would fail: " + msg)
    report = PlanReport("\n".join(lines), projected_peak=peak, projected_held=held,
                        result_bytes=p.held, budget=p.budget, spill_limit=p.spill_limit,
                        projected_spilled=spilled, tasks_built=n_built, tasks_run=ntasks,
                        problems=list(p.problems))
    if print:
        builtins.print(report)
        report._printed = True
    return report
