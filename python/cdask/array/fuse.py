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

from .._core import Kernel, fused_kernel, fused_rebind

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


def _const_sig(v):
    # constants that compare equal but resolve differently (1, 1.0, True,
    # np.float32(1)) must not share a kernel
    return (type(v), str(getattr(v, "dtype", "")), repr(v))


def _signature(in_dtypes, steps):
    return (tuple(np.dtype(d).str for d in in_dtypes),
            tuple((uf, tuple((kind, _const_sig(v)) if kind == "const" else (kind, v)
                             for kind, v in refs))
                  for uf, refs in steps))


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
    cache = {}    # program signature -> Kernel (blocks of one array share it)
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
        sig = _signature(in_dtypes, steps)
        k = cache.get(sig)
        if k is None:
            try:
                k = fused_kernel(in_dtypes, steps)
            except (NotImplementedError, TypeError, ValueError, OverflowError):
                k = False
            cache[sig] = k
        if k is False:
            continue              # leave this chain unfused
        g[root] = (k,) + tuple(inputs)
        for a in inlined:
            del g[a]
        removed += len(inlined)
    return removed


# ---------------------------------------------------------------------------
# views and stores: blocks read where they lie, results written where they go

class _Programs:
    """Fused kernels (without views or store) for C elementwise tasks, made
    once per distinct program and shared by the blocks that run it."""

    def __init__(self):
        self.cache = {}
        self.sinks = {}     # id(kernel) -> (kernel, has views or store)

    def of(self, task, g):
        """(kernel, inputs, views) for a fused or C ufunc-kernel task, else None."""
        if type(task) is not tuple or not task or not isinstance(task[0], Kernel):
            return None
        k = task[0]
        if k.name == "fused":
            got = self.sinks.get(id(k))
            if got is None:
                _, (dts, steps, views, store, span) = k.__reduce__()
                got = self.sinks[id(k)] = (k, views, store is not None,
                                           [np.dtype(d) for d in dts])
            _, views, stored, dts = got
            if stored:
                return None
            inputs = list(task[1:])
            return (k, inputs, list(views) if views is not None else [None] * len(inputs),
                    dts)
        sp = _spec(task)
        if sp is None:
            return None
        uf, dts, args = sp
        in_dtypes, refs, inputs = [], [], []
        for a, dt in zip(args, dts):
            if _is_key(a, g):
                if a in inputs:
                    refs.append(("in", inputs.index(a)))
                else:
                    refs.append(("in", len(inputs)))
                    inputs.append(a)
                    in_dtypes.append(np.dtype(dt))
            else:
                refs.append(("const", a))
        steps = [(uf, refs)]
        sig = _signature(in_dtypes, steps)
        k = self.cache.get(sig)
        if k is None:
            try:
                k = fused_kernel(in_dtypes, steps)
            except (NotImplementedError, TypeError, ValueError, OverflowError):
                k = False
            self.cache[sig] = k
        if k is False:
            return None
        return k, inputs, [None] * len(inputs), in_dtypes


def _c_base(a):
    """a, if it is an ndarray the C kernels can read in place (C-contiguous,
    aligned, native byte order), else None."""
    if (isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.aligned
            and a.dtype.isnative and a.ndim > 0):
        return a
    return None


def _box_of(v):
    """(base, start) when the ndarray v is a box of a C-contiguous base with
    v's own strides (a basic slice with step 1), else None."""
    b = v.base
    if not isinstance(b, np.ndarray) or _c_base(b) is None or b.dtype != v.dtype:
        return None
    if b.ndim != v.ndim or b.strides != v.strides:
        return None
    off = v.__array_interface__["data"][0] - b.__array_interface__["data"][0]
    if off < 0:
        return None
    start = []
    for st, n, sz in zip(b.strides, b.shape, v.shape):
        if st <= 0:
            return None
        s = off // st
        off -= s * st
        if s + sz > n:
            return None
        start.append(int(s))
    if off != 0:
        return None
    return b, tuple(start)


def _view_source(val):
    """(base array, (start, shape)) when the graph value val is a block of a
    larger array that a fused kernel can read in place: a literal view made
    by from_array, or a getter task on an in-memory or memory-mapped array."""
    from .creation import getter

    if type(val) is np.ndarray:
        if _c_base(val) is not None and val.base is None:
            return None           # a whole array: already read in place
        box = _box_of(val)
        if box is None:
            return None
        return box[0], (box[1], tuple(int(s) for s in val.shape))
    if type(val) is tuple and len(val) == 3 and val[0] is getter:
        x, sl = val[1], val[2]
        base = _c_base(x)
        if base is None or type(sl) is not tuple or len(sl) != x.ndim:
            return None
        start, shape = [], []
        for s, n in zip(sl, x.shape):
            if type(s) is not slice:
                return None
            lo, hi, step = s.indices(n)
            if step != 1 or hi < lo:
                return None
            start.append(lo)
            shape.append(hi - lo)
        return base, (tuple(start), tuple(shape))
    return None


def _with_views(inputs, views, g, in_dtypes):
    """inputs and views with the inputs that are blocks of larger arrays read
    in place; and whether any changed.  in_dtypes: the program's."""
    inputs, views = list(inputs), list(views)
    changed = False
    for i, a in enumerate(inputs):
        if views[i] is not None or not _is_key(a, g):
            continue
        src = _view_source(g[a])
        if src is None:
            continue
        base, view = src
        if base.dtype != in_dtypes[i]:
            continue
        inputs[i], views[i] = base, view
        changed = True
    return inputs, views, changed


def _spans(n, parts):
    step = -(-n // parts)
    # keep spans a multiple of 64 elements (loops' vector tails land as on
    # one call over the whole block)
    step = -(-step // 64) * 64
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


def sink_stores(g, keep, store_fn, workers=1, min_tasks_per_worker=4,
                min_span=1 << 18):
    """Rewrite, in the cdask Graph ``g``, the stores compute() adds -
    ``(store_fn, out, key, slices)`` - of blocks computed by a fused or C
    ufunc-kernel task that nothing else reads: the kernel writes its result
    straight into ``out`` (no block-sized chunk, no copy under the GIL), and
    reads blocks of in-memory and memory-mapped inputs where they lie.  Big
    blocks are shared among several store tasks (spans) when there are fewer
    than ``min_tasks_per_worker * workers`` of them.  Fused tasks that are
    not stored also read their inputs in place.

    The destination's dtype is the Array's, which is the kernel's result
    dtype; the kernel checks it and raises TypeError if they ever differ.
    Returns the keys to compute in place of ``keep`` (stores split into spans
    have several)."""
    keep = list(keep)
    keepset = set(keep)
    dependents = g.dependents()
    progs = _Programs()
    plan = []          # (store key, block key, out, start, n, (kernel, inputs, views))
    for sk in keep:
        task = g.get(sk) if _is_key(sk, g) else None
        if (type(task) is not tuple or len(task) != 4 or task[0] is not store_fn
                or not _is_key(task[2], g)):
            continue
        out, bk, sl = task[1], task[2], task[3]
        if (_c_base(out) is None or not out.flags.writeable or bk in keepset
                or type(sl) is not tuple or len(sl) != out.ndim):
            continue
        if len(dependents.get(bk, ())) != 1:
            continue
        prog = progs.of(g[bk], g)
        if prog is None:
            continue
        start = tuple(s.indices(d)[0] for s, d in zip(sl, out.shape))
        plan.append((sk, bk, out, start, _block_size(out, sl), prog))
    parts = 1
    if plan and workers > 1 and len(plan) < min_tasks_per_worker * workers:
        parts = -(-min_tasks_per_worker * workers // len(plan))
    new_keys = {}
    for sk, bk, out, start, n, (k, inputs, views, dts) in plan:
        inputs, views, _ = _with_views(inputs, views, g, dts)
        vv = views if any(v is not None for v in views) else None
        spans = [None]
        if parts > 1 and n >= 2 * min_span:
            spans = _spans(n, min(parts, n // min_span))
        ks = [fused_rebind(k, views=vv, store=start, span=sp) for sp in spans]
        del g[bk]
        g[sk] = (ks[0],) + tuple(inputs) + (out,)
        extra = [sk]
        for j, kj in enumerate(ks[1:], 1):
            kk = sk + ("span", j)
            g[kk] = (kj,) + tuple(inputs) + (out,)
            extra.append(kk)
        new_keys[sk] = extra
    # fused tasks left (their results feed reductions and the like): views
    for key, task in list(g.items()):
        if (type(task) is not tuple or not task or not isinstance(task[0], Kernel)
                or task[0].name != "fused"):
            continue
        prog = progs.of(task, g)
        if prog is None:
            continue
        k, inputs, views, dts = prog
        inputs, views, changed = _with_views(inputs, views, g, dts)
        if changed:
            g[key] = (fused_rebind(k, views=views),) + tuple(inputs)
    out = []
    for k in keep:
        out.extend(new_keys.get(k, (k,)))
    return out


def _block_size(out, sl):
    n = 1
    for s, dim in zip(sl, out.shape):
        lo, hi, _ = s.indices(dim)
        n *= max(hi - lo, 0)
    return n
