"""Fusion of elementwise chains at compute time (first step of issue 4).

A block of ``((x + 1) * 2) ** 3`` is, before fusion, three C ufunc-kernel
tasks, each making a chunk-sized temporary.  :func:`fuse_elementwise`
rewrites the graph about to run so that each chain of such tasks - a task
whose inputs are ufunc-kernel tasks that nothing else reads - becomes one
task calling ``_core.fused_kernel``: the whole chain evaluated block by block
in cache-sized pieces, one pass over memory, with NumPy's own loops, so the
results stay bit-identical to the unfused graph.

A task is inlined into its consumer only when it is a C ufunc kernel task,
the consumer is its only reader, and it is not a key the caller asked for.
Steps whose loops cannot be fused (the fused kernel raises) leave the chain
as it was.
"""

import numpy as np

from .._core import Kernel, fused_kernel

_WEAK = {"int": int, "float": float, "complex": complex, "bool": bool}


def _spec(task):
    """(ufunc, operand dtype names, args) for a C ufunc-kernel task, else None."""
    if type(task) is not tuple or not task or not isinstance(task[0], Kernel):
        return None
    k = task[0]
    if k.name != "ufunc":
        return None
    try:
        _, (name, dts) = k.__reduce__()
    except (TypeError, ValueError):
        return None
    uf = getattr(np, name, None)
    if not isinstance(uf, np.ufunc) or len(dts) != len(task) - 1:
        return None
    return uf, dts, task[1:]


def _is_key(a, g):
    try:
        return a in g
    except TypeError:
        return False


def fuse_elementwise(g, keep=()):
    """Fuse chains of C ufunc-kernel tasks in the cdask Graph ``g`` (in place).

    ``keep``: keys that must stay (the outputs).  Returns the number of tasks
    removed by fusion."""
    specs = {}
    for key, task in g.items():
        s = _spec(task)
        if s is not None:
            specs[key] = s
    if len(specs) < 2:
        return 0
    dependents = g.dependents()
    keep = set(keep)

    def inlinable(k):
        return k in specs and k not in keep and len(dependents.get(k, ())) == 1

    # roots: ufunc tasks that will not themselves be inlined into a consumer
    removed = 0
    for root in list(specs):
        if inlinable(root):
            (consumer,) = dependents[root]
            if consumer in specs:
                continue          # part of its consumer's chain
        steps, inputs, in_dtypes, index, inlined = [], [], [], {}, []
        done = {}     # inlined key -> its step (a key read twice is computed once)

        def visit(key):
            uf, dts, args = specs[key]
            refs = []
            for a, dt in zip(args, dts):
                if _is_key(a, g):
                    if inlinable(a) and a != key:
                        if a not in done:
                            done[a] = visit(a)
                            inlined.append(a)
                        refs.append(("step", done[a]))
                        continue
                    if a not in index:
                        index[a] = len(inputs)
                        inputs.append(a)
                        in_dtypes.append(np.dtype(dt))
                    refs.append(("in", index[a]))
                else:
                    refs.append(("const", a))
            steps.append((uf, refs))
            return len(steps) - 1

        visit(root)
        if len(steps) < 2:
            continue
        try:
            k = fused_kernel(in_dtypes, steps)
        except (NotImplementedError, TypeError, ValueError, OverflowError):
            continue              # leave this chain unfused
        g[root] = (k,) + tuple(inputs)
        for a in inlined:
            del g[a]
        removed += len(inlined)
    return removed
