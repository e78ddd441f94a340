"""Fusion task by task, on the graph about to run: what the layer plan
(``plan.py``) did not see.

That plan fuses chains, masks and full reductions of Blockwise layers before
their tasks exist.  The passes here take the rest: tasks of plain dict
layers (N-d boolean selections, blocks of in-memory arrays, a graph that
came from another process), fused kernels that read blocks of larger arrays
where they lie (:func:`read_in_place`), and the stores compute() adds
(:func:`sink_stores`).

A block of ``((x + 1) * 2) ** 3`` in such a graph is three C ufunc-kernel
tasks.  :func:`fuse_elementwise` makes each chain - a task whose inputs are
ufunc-kernel tasks that nothing else reads - one task calling
``_core.fused_kernel``: the chain evaluated in cache-sized pieces, one pass
over memory, with NumPy's own loops, bit-identical to the unfused graph.
A task is inlined into its consumer only when it is a C ufunc-kernel task,
the consumer is its only reader, and it is not a key the caller asked for.

What a kernel computes is only ever known from what cdask recorded when it
made the kernel, or unpickled it (``layers.UFUNC_KERNELS``,
``FUSED_KERNELS``): a kernel that was not recorded is left as it is.
"""

import numpy as np

from .. import kernels
from .._core import Kernel, fused_kernel, fused_rebind
from .blockio import direct_call, direct_store, direct_target, getter, reads_direct
from .layers import FUSED_KERNELS, UFUNC_KERNELS, note_fused_kernel
from .reductions import chunk_max_all, chunk_mean_all, chunk_min_all
from .slicing import mask_block


def _make(in_dtypes, steps, **kw):
    """fused_kernel(in_dtypes, steps, **kw), its program recorded."""
    k = fused_kernel(in_dtypes, steps, **kw)
    note_fused_kernel(k, in_dtypes, steps, plain=not kw)
    return k


def _rebind(k, views=None, store=None, span=None):
    """fused_rebind, the program of the new kernel recorded (it is k's)."""
    k2 = fused_rebind(k, views=views, store=store, span=span)
    p = FUSED_KERNELS.get(id(k))
    if p is not None and p[0] is k:
        note_fused_kernel(k2, p[1], p[2], views=views, plain=p[4] and store is None)
    return k2


def _spec(task):
    """(ufunc, operand dtype names, args) for a C ufunc-kernel task, else None."""
    if type(task) is not tuple or not task or not isinstance(task[0], Kernel):
        return None
    k = task[0]
    got = UFUNC_KERNELS.get(id(k))     # recorded when elemwise made it, or
    if got is None or got[0] is not k:  # when it was unpickled (layers.py)
        return None
    _, uf, dts = got
    if len(dts) != len(task) - 1:
        return None
    return uf, dts, task[1:]


def _const_sig(v):
    # constants that compare equal but resolve differently (1, 1.0, True,
    # np.float32(1)) must not share a kernel, nor NaNs of different payloads
    # (their reprs are all "nan"): their bits are part of the key
    if isinstance(v, (np.generic, np.ndarray)):
        raw = v.tobytes()
    elif type(v) in (float, complex):
        raw = np.asarray(v).tobytes()
    else:
        raw = None
    return (type(v), str(getattr(v, "dtype", "")), repr(v), raw)


def program_signature(in_dtypes, steps):
    """A hashable key for a fused program: kernels are shared through it."""
    return (tuple(np.dtype(d).str for d in in_dtypes),
            tuple((uf, tuple((kind, _const_sig(v)) if kind == "const" else (kind, v)
                             for kind, v in refs))
                  for uf, refs in steps))


def _is_key(a, g):
    try:
        return a in g
    except TypeError:
        return False


class _Abort(Exception):
    pass


def fuse_elementwise(g, keep=()):
    """Fuse chains of C elementwise tasks (ufunc kernels and plain fused
    kernels, such as ``where``) in the cdask Graph ``g`` (in place).

    ``keep``: keys that must stay (the outputs).  Returns the number of tasks
    removed by fusion."""
    specs = {}
    memo = {}
    for key, task in g.items():
        s = _plain_program(task, g, memo)
        if s is not None:
            specs[key] = s
    if len(specs) < 2:
        return 0
    dependents = g.dependents()
    keep = set(keep)

    def inlinable(k):
        return (_hashable(k) and k in specs and k not in keep
                and len(dependents.get(k, ())) == 1)

    # roots: tasks that will not themselves be inlined into a consumer
    removed = 0
    cache = {}    # program signature -> Kernel (blocks of one array share it)
    for root in list(specs):
        if inlinable(root):
            (consumer,) = dependents[root]
            if consumer in specs:
                continue          # part of its consumer's chain
        b = ProgramBuilder()
        inlined = []
        done = {}     # inlined key -> its step (a key read twice is computed once)

        def visit(key):
            prog = specs[key]
            known = {}
            for a in prog[2]:
                if a != key and inlinable(a):
                    if a not in done:
                        done[a] = visit(a)
                        inlined.append(a)
                    known[a] = done[a]
            r = b.program(prog, known)
            if r is None:
                raise _Abort
            return r

        try:
            visit(root)
        except _Abort:
            continue
        if not inlined:
            continue
        sig = program_signature(b.in_dtypes, b.steps)
        k = cache.get(sig)
        if k is None:
            try:
                k = _make(b.in_dtypes, b.steps)
            except (NotImplementedError, TypeError, ValueError, OverflowError):
                k = False
            cache[sig] = k
        if k is False:
            continue              # leave this chain unfused
        g[root] = (k,) + tuple(b.inputs)
        for a in inlined:
            del g[a]
        removed += len(inlined)
    return removed


def _program(task, g, memo):
    """The program of a C elementwise task, the one conversion from tasks to
    programs that every fusion pass uses: ``(in_dtypes, steps, inputs, views,
    kernel)``.

    * A fused-kernel task that neither stores nor reduces gives its kernel's
      own program (read once per kernel: ``memo`` maps ``id(kernel)`` to it),
      its views (None when it has none) and the kernel itself.
    * A C ufunc-kernel task gives a one-step program whose inputs are its
      key arguments (other arguments become constants); no views, no kernel.

    Anything else gives None."""
    if type(task) is not tuple or not task or not isinstance(task[0], Kernel):
        return None
    k = task[0]
    if k.name == "fused":
        got = memo.get(id(k))
        if got is None or got[0] is not k:
            noted = FUSED_KERNELS.get(id(k))   # recorded when it was made
            if noted is not None and noted[0] is k:
                got = memo[id(k)] = (k, not noted[4], [np.dtype(d) for d in noted[1]],
                                     noted[2], noted[3])
        if got is None or got[0] is not k:
            return None                 # not one cdask recorded: left as it is
        _, stored, dts, steps, views = got
        if stored:
            return None
        return dts, steps, list(task[1:]), views, k
    sp = _spec(task)
    if sp is None:
        return None
    uf, dts, args = sp
    in_dtypes, refs, inputs = [], [], []
    for a, dt in zip(args, dts):
        if _is_key(a, g):
            if a not in inputs:
                inputs.append(a)
                in_dtypes.append(np.dtype(dt))
            refs.append(("in", inputs.index(a)))
        else:
            refs.append(("const", a))
    return in_dtypes, [(uf, refs)], inputs, None, None


def _plain_program(task, g, memo):
    """(in_dtypes, steps, inputs) of a task :func:`_program` converts and that
    reads no block in place (no views), else None."""
    p = _program(task, g, memo)
    if p is None or p[3] is not None:
        return None
    return p[:3]


# ---------------------------------------------------------------------------
# views and stores: blocks read where they lie, results written where they go

class _Programs:
    """Fused kernels (without views or store) for C elementwise tasks, made
    once per distinct program and shared by the blocks that run it."""

    def __init__(self):
        self.cache = {}
        self.memo = {}      # id(kernel) -> its program (see _program)

    def of(self, task, g):
        """(kernel, inputs, views, in_dtypes) for a fused or C ufunc-kernel task,
        else None."""
        p = _program(task, g, self.memo)
        if p is None:
            return None
        in_dtypes, steps, inputs, views, k = p
        if k is None:
            sig = program_signature(in_dtypes, steps)
            k = self.cache.get(sig)
            if k is None:
                try:
                    k = _make(in_dtypes, steps)
                except (NotImplementedError, TypeError, ValueError, OverflowError):
                    k = False
                self.cache[sig] = k
            if k is False:
                return None
        return k, inputs, list(views) if views is not None else [None] * len(inputs), in_dtypes


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
        if isinstance(x, np.memmap) and reads_direct(x):
            return None           # a cold large file: _direct_source
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


def _direct_source(val):
    """(memmap, slices) when the graph value val is a getter task of a block
    of a large, cold memory-mapped file (blockio.reads_direct): the fused
    task reads it itself, with O_DIRECT (blockio.direct_call)."""
    if type(val) is tuple and len(val) == 3 and val[0] is getter:
        x, sl = val[1], val[2]
        if (isinstance(x, np.memmap) and type(sl) is tuple and len(sl) == x.ndim and
                all(type(s) is slice for s in sl) and reads_direct(x)):
            return x, sl
    return None


def _with_views(inputs, views, g, in_dtypes):
    """inputs and views with the inputs that are blocks of larger arrays read
    in place; whether any changed; and the (input index, slices) of the
    inputs the task is to read itself with direct I/O (the input is then
    the memmap).  in_dtypes: the program's."""
    inputs, views = list(inputs), list(views)
    changed = False
    reads = []
    for i, a in enumerate(inputs):
        if views[i] is not None or not _is_key(a, g):
            continue
        d = _direct_source(g[a])
        if d is not None and d[0].dtype == in_dtypes[i]:
            inputs[i] = d[0]
            reads.append((i, d[1]))
            changed = True
            continue
        src = _view_source(g[a])
        if src is None:
            continue
        base, view = src
        if base.dtype != in_dtypes[i]:
            continue
        inputs[i], views[i] = base, view
        changed = True
    return inputs, views, changed, tuple(reads)


def _task(k, inputs, reads, tail=()):
    """The task calling kernel k on inputs (then tail): through
    blockio.direct_call when some inputs are read with direct I/O."""
    if reads:
        return (direct_call, k, reads) + tuple(inputs) + tuple(tail)
    return (k,) + tuple(inputs) + tuple(tail)


def _spans(n, parts):
    step = -(-n // parts)
    # keep spans a multiple of 64 elements (loops' vector tails land as on
    # one call over the whole block)
    step = -(-step // 64) * 64
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


def sink_stores(g, keep, store_fn, workers=1, min_tasks_per_worker=8,
                min_span=1 << 18):
    """Rewrite, in the cdask Graph ``g``, the stores compute() adds -
    ``(store_fn, out, key, slices)`` - of blocks computed by a fused or C
    ufunc-kernel task that nothing else reads: the kernel writes its result
    straight into ``out`` (no block-sized chunk, no copy under the GIL), and
    reads blocks of in-memory and memory-mapped inputs where they lie.  Big
    blocks are shared among several store tasks (spans) when there are fewer
    than ``min_tasks_per_worker * workers`` of them (8 per worker: blocks of
    uneven cost still keep both cores busy to the end).  Fused tasks that are
    not stored also read their inputs in place.

    The destination's dtype is the Array's, which is the kernel's result
    dtype; the kernel checks it and raises TypeError if they ever differ.
    Returns the keys to compute in place of ``keep`` (stores split into spans
    have several)."""
    keep = list(keep)
    keepset = set(keep)
    dependents = None
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
        prog = progs.of(g[bk], g)
        if prog is None:
            continue
        if dependents is None:
            dependents = g.dependents()
        if len(dependents.get(bk, ())) != 1:
            continue
        start = tuple(s.indices(d)[0] for s, d in zip(sl, out.shape))
        plan.append((sk, bk, out, start, _block_size(out, sl), prog, sl))
    parts = 1
    if plan and workers > 1 and len(plan) < min_tasks_per_worker * workers:
        parts = -(-min_tasks_per_worker * workers // len(plan))
    new_keys = {}
    for sk, bk, out, start, n, (k, inputs, views, dts), sl in plan:
        inputs, views, _, reads = _with_views(inputs, views, g, dts)
        vv = views if any(v is not None for v in views) else None
        direct = direct_target(out, sl)
        if direct is not None:
            # a large file: computed into a buffer, written with O_DIRECT
            kd = _rebind(k, views=vv, store=(0,) * out.ndim)
            del g[bk]
            g[sk] = (direct_store, kd, out, sl, reads) + tuple(inputs)
            continue
        spans = [None]
        if parts > 1 and n >= 2 * min_span:
            spans = _spans(n, min(parts, n // min_span))
        ks = [_rebind(k, views=vv, store=start, span=sp) for sp in spans]
        del g[bk]
        g[sk] = _task(ks[0], inputs, reads, (out,))
        extra = [sk]
        for j, kj in enumerate(ks[1:], 1):
            kk = sk + ("span", j)
            g[kk] = _task(kj, inputs, reads, (out,))
            extra.append(kk)
        new_keys[sk] = extra
    read_in_place(g)
    out = []
    for k in keep:
        out.extend(new_keys.get(k, (k,)))
    return out


def read_in_place(g):
    """Rewrite, in the cdask Graph ``g``, the fused-kernel tasks (plain ones
    and fused reductions; stores already do) whose inputs are blocks of
    larger in-memory or memory-mapped arrays: they read them where they lie
    (views).  Returns the number of tasks rewritten."""
    done = 0
    for key, task in list(g.items()):
        if (type(task) is not tuple or not task or not isinstance(task[0], Kernel)
                or task[0].name != "fused"):
            continue
        k = task[0]
        noted = FUSED_KERNELS.get(id(k))
        if noted is None or noted[0] is not k or len(noted[1]) != len(task) - 1:
            continue                    # not recorded, or a store (its destination last)
        dts, views = noted[1], noted[3]
        views = list(views) if views is not None else [None] * len(dts)
        inputs, views, changed, reads = _with_views(task[1:], views, g, dts)
        if changed:
            g[key] = _task(_rebind(k, views=views), inputs, reads)
            done += 1
    return done


def _block_size(out, sl):
    n = 1
    for s, dim in zip(sl, out.shape):
        lo, hi, _ = s.indices(dim)
        n *= max(hi - lo, 0)
    return n


# ---------------------------------------------------------------------------
# reductions and masks in the same pass

class ProgramBuilder:
    """One fused program assembled from several: shared inputs, steps in order."""

    def __init__(self):
        self.in_dtypes, self.inputs, self.steps = [], [], []

    def input(self, key, dtype):
        for i, k in enumerate(self.inputs):
            if k is key or (type(k) is type(key) and _hashable(k) and _hashable(key)
                            and k == key):
                if self.in_dtypes[i] != dtype:
                    return None
                return ("in", i)
        self.inputs.append(key)
        self.in_dtypes.append(np.dtype(dtype))
        return ("in", len(self.inputs) - 1)

    def program(self, prog, known):
        """Append prog = (in_dtypes, steps, inputs); inputs found in `known`
        (key -> ref) are those refs.  Returns the ref of its result."""
        in_dtypes, steps, inputs = prog
        refs = []
        for key, dt in zip(inputs, in_dtypes):
            r = known.get(key) if _hashable(key) else None
            if r is None:
                r = self.input(key, dt)
                if r is None:
                    return None
            refs.append(r)
        return append_steps(self.steps, steps, refs)


def append_steps(out, steps, refs):
    """Append a program's ``steps`` to the program ``out`` (a list of steps),
    its ``("in", i)`` operands becoming ``refs[i]`` and its step numbers
    shifted past what ``out`` already holds.  Returns the ref of its result."""
    base = len(out)
    for uf, ops in steps:
        new = []
        for kind, v in ops:
            if kind == "in":
                new.append(refs[v])
            elif kind == "step":
                new.append(("step", base + v))
            else:
                new.append((kind, v))
        out.append((uf, new))
    return ("step", len(out) - 1)


def _hashable(k):
    try:
        hash(k)
        return True
    except TypeError:
        return False


def _reg_dtype(b, ref):
    if ref[0] == "in":
        return b.in_dtypes[ref[1]]
    k = fused_kernel(b.in_dtypes, b.steps[:ref[1] + 1])
    return _kernel_out_dtype(k, b.in_dtypes)


def _kernel_out_dtype(k, in_dtypes):
    # the result dtype of a plain fused kernel: run it on one element
    ones = [np.ones(1, dtype=d) for d in in_dtypes]
    with np.errstate(all="ignore"):
        return np.asarray(k(*ones)).dtype


def _sum_dtype(dt):
    dt = np.dtype(dt)
    if dt.kind == "b" or dt.kind == "i":
        return np.dtype(np.int64)
    if dt.kind == "u":
        return np.dtype(np.uint64)
    return dt


def reduction_kind(func, consts):
    """(kind, out_dtype or None) when ``(func, block, *consts)`` is the
    per-block task of a full reduction a fused kernel can take - ``sum``
    (its C kernel), ``mean``, ``min``, ``max`` over every axis - else None."""
    n = len(consts)
    if func is kernels.sum and n == 0:
        return "sum", None
    if func is chunk_mean_all and n == 2:
        return "mean", np.dtype(consts[1])
    if func is chunk_min_all and n == 1:
        return "min", None
    if func is chunk_max_all and n == 1:
        return "max", None
    return None


def reduction_kernel(b, kind, value_ref, mask_ref, out_dt, cache):
    """The fused kernel that runs the program of the ProgramBuilder ``b`` and
    reduces (``kind``) its value ``value_ref`` where ``mask_ref`` (None: every
    element) is true; False when the fused kernel cannot take it.  ``cache``
    (a dict) shares kernels among the blocks that run the same program."""
    sig = (program_signature(b.in_dtypes, b.steps), kind, value_ref, mask_ref, str(out_dt))
    k = cache.get(sig)
    if k is None:
        try:
            vdt = _reg_dtype(b, value_ref)
            if kind == "sum":
                out_dt = _sum_dtype(vdt)
            elif kind in ("min", "max"):
                out_dt = vdt
            k = _make(b.in_dtypes, b.steps, reduce=(kind, value_ref, mask_ref, out_dt))
        except (NotImplementedError, TypeError, ValueError, OverflowError):
            k = False
        cache[sig] = k
    return k


def fuse_reductions(g, keep=()):
    """Rewrite, in the cdask Graph ``g`` (after :func:`fuse_elementwise`),
    the per-block tasks of full reductions - ``sum`` (its C kernel), ``mean``,
    ``min``, ``max`` over every axis - whose block is an elementwise chain, a
    boolean selection ``x[mask]`` of chains, or a block read in place: each
    becomes one fused task that evaluates the chain and the mask block by
    block and reduces the selected elements in the same pass, so that
    ``x[x > 0].mean()`` never materialises ``x > 0`` nor ``x[x > 0]``.
    Returns the number of reduction tasks fused."""

    keep = set(keep)
    dependents = None
    done = 0
    cache = {}
    memo = {}
    for key, task in list(g.items()):
        if type(task) is not tuple or len(task) < 2:
            continue
        got = reduction_kind(task[0], task[2:])
        if got is None:
            continue
        kind, out_dt = got
        bk = task[1]
        if not _is_key(bk, g) or bk in keep:
            continue
        btask = g[bk]
        if not _may_fuse_block(btask, mask_block):
            continue                    # e.g. sum of blocks made by other kernels
        if dependents is None:
            dependents = g.dependents()
        if len(dependents.get(bk, ())) != 1:
            continue
        b = ProgramBuilder()
        absorbed = [bk]
        mask_ref = None
        if type(btask) is tuple and len(btask) == 3 and btask[0] is mask_block:
            xk, mk = btask[1], btask[2]
            if not (_is_key(xk, g) and _is_key(mk, g)) or mk in keep:
                continue
            mprog = _plain_program(g[mk], g, memo)
            if mprog is None or len(dependents.get(mk, ())) != 1:
                continue
            known = {}
            xprog = _plain_program(g[xk], g, memo) if xk not in keep else None
            if xprog is not None and set(dependents.get(xk, ())) <= {bk, mk}:
                value_ref = b.program(xprog, known)
                known[xk] = value_ref
                absorbed.append(xk)
            else:
                value_ref = None
            mask_ref = b.program(mprog, known)
            if value_ref is None:
                value_ref = _input_ref(b, xk, g)
            absorbed.append(mk)
            if mask_ref is None or value_ref is None:
                continue
        else:
            prog = _plain_program(btask, g, memo)
            if prog is not None:
                value_ref = b.program(prog, {})
            else:
                src = _view_source(btask)
                if src is None:
                    continue            # nothing to fuse: the reduction is already one pass
                value_ref = b.input(bk, src[0].dtype)
                absorbed = []           # bk stays: read in place below
            if value_ref is None:
                continue
        k = reduction_kernel(b, kind, value_ref, mask_ref, out_dt, cache)
        if k is False:
            continue
        inputs, views, changed, reads = _with_views(b.inputs, [None] * len(b.inputs), g,
                                                    b.in_dtypes)
        if changed:
            k = _rebind(k, views=views)
        g[key] = _task(k, inputs, reads)
        for a in absorbed:
            if a in g and set(dependents.get(a, ())) <= set(absorbed) | {key}:
                del g[a]
        done += 1
    return done


def _may_fuse_block(btask, mask_block):
    """Cheap test: could the block task feed a fused reduction at all?"""
    if type(btask) is np.ndarray:
        return True
    if type(btask) is not tuple or not btask:
        return False
    f = btask[0]
    if f is mask_block:
        return True
    if isinstance(f, Kernel):
        return f.name in ("ufunc", "fused")

    return f is getter


def _input_ref(b, key, g):
    # an input the mask's program already reads (its dtype is declared
    # there); else the dtype of a block read in place or of a literal
    for i, k in enumerate(b.inputs):
        if k == key and type(k) is type(key):
            return ("in", i)
    src = _view_source(g[key]) if _is_key(key, g) else None
    if src is not None:
        return b.input(key, src[0].dtype)
    val = g[key] if _is_key(key, g) else None
    if type(val) is np.ndarray:
        return b.input(key, val.dtype)
    return None
