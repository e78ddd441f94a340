"""Fusion planned on layers, before any per-block task of a chain is made.

``fuse_layers(layers, keep)`` rewrites an Array's ``{name: layer}`` dict:
each chain of :class:`~cdask.array.layers.Blockwise` layers that carry a
program (C elementwise kernels: ufuncs, ``where``) becomes one Blockwise
layer whose kernel is the chain's fused program - built from the programs
the layers recorded when the operations were called, never read back from a
kernel.  The fused layer keeps the name and block keys of the chain's last
layer; the layers folded into it are dropped, so their tasks are never made.

A layer is folded into its reader when
* it carries a program and so does the reader,
* the reader is its only reader, among the Blockwise layers and the plain
  dict layers alike, and its blocks are not asked for (``keep``),
* the reader reads it block for block: same grid, identity index map.

Results are bit-identical to the unfused graph: the fused kernel evaluates
each step with the loop NumPy itself would pick for it (``fused_py.c``), and
a chain that the fused kernel cannot take (it raises) is left as it was.

Then full reductions (:func:`fuse_reductions`): a partial layer of ``sum``,
``mean``, ``min`` or ``max`` over every axis that reads a fused chain, or a
1-d selection ``x[m]`` of chains, becomes one layer whose kernel evaluates
the chain and the mask and reduces in the same pass; ``x > 0`` and
``x[x > 0]`` never get tasks.

``compute()``, ``persist()``, ``optimize()`` and ``Array.__dask_optimize__``
all call this one function.  The per-task passes of ``fuse.py`` still run
after it on the tasks that are left (blocks read in place, stores, plain
dict layers such as N-d masks).
"""

from .._core import fused_kernel
from . import fuse
from .layers import Blockwise, note_fused_kernel
from .slicing import mask_block

__all__ = ["fuse_layers", "fuse_chains", "fuse_reductions", "cull_layers"]

# program signature -> fused Kernel (or False: cannot be fused).  Arrays made
# by the same code share their kernels through it.  Bounded.
_KERNELS = {}
_KERNELS_MAX = 4096


def _kernel(in_dtypes, steps):
    sig = fuse.program_signature(in_dtypes, steps)
    k = _KERNELS.get(sig)
    if k is None:
        if len(_KERNELS) >= _KERNELS_MAX:
            _KERNELS.clear()
        try:
            k = fused_kernel(in_dtypes, steps)
        except (NotImplementedError, TypeError, ValueError, OverflowError):
            k = False
        _KERNELS[sig] = k
    if k is not False:
        note_fused_kernel(k, in_dtypes, steps)
    return k


def _dict_reads(layer, names):
    """Which of ``names`` the tasks of a plain layer read (any depth)."""
    found = set()
    stack = []
    for t in layer.values():
        if type(t) is tuple:
            if t and type(t[0]) is str and t[0] in names:
                found.add(t[0])
                continue
            stack.extend(t)
        elif type(t) is list:
            stack.extend(t)
        while stack:
            a = stack.pop()
            ta = type(a)
            if ta is tuple:
                if a and type(a[0]) is str and a[0] in names:
                    found.add(a[0])
                else:
                    stack.extend(a)
            elif ta is list:
                stack.extend(a)
        if len(found) == len(names):
            break
    return found


def cull_layers(layers, names):
    """The layers that the layers ``names`` need, directly or not: rules say
    what they read, plain layers are read for the names they mention.  Layers
    left out are never turned into tasks."""
    out = {}
    stack = [n for n in names if n in layers]
    rest = None
    while stack:
        n = stack.pop()
        if n in out:
            continue
        lay = out[n] = layers[n]
        if type(lay) is Blockwise:
            stack.extend(r for r in lay.reads() if r in layers and r not in out)
        else:
            if rest is None:
                rest = set(layers)
            stack.extend(r for r in _dict_reads(lay, rest - set(out)) if r not in out)
    return out


def fuse_layers(layers, keep=()):
    """A new ``{name: layer}`` dict with the elementwise chains of ``layers``
    fused, then the full reductions fused with the chains and masks they
    read (see the module docstring); ``layers`` itself is not changed.
    ``keep``: names of the layers whose blocks are asked for."""
    return fuse_reductions(fuse_chains(layers, keep), keep)


def _readers(layers, bw, keep, names):
    """Of ``names``: the Blockwise readers of each (a dict), and the set of
    those that may be folded into a reader at all - not asked for (``keep``)
    and read by no plain dict layer."""
    readers = {}
    for n, l in bw.items():
        for name in l.reads():
            readers.setdefault(name, set()).add(n)
    cands = {n for n in names if n not in keep}
    if cands:
        for l in layers.values():
            if type(l) is not Blockwise:
                cands -= _dict_reads(l, cands)
                if not cands:
                    break
    return readers, cands


def fuse_chains(layers, keep=()):
    """``layers`` with each elementwise chain folded into one Blockwise layer."""
    bw = {n: l for n, l in layers.items() if type(l) is Blockwise}
    progs = {n for n, l in bw.items() if l.program is not None}
    if len(progs) < 2:
        return layers
    keep = set(keep)
    readers, cands = _readers(layers, bw, keep, progs)
    cands = {n for n in cands if len(readers.get(n, ())) == 1}

    def foldable(name, reader):
        if name not in cands:
            return False
        (r,) = readers[name]
        if r != reader or reader not in progs:
            return False
        rl, ml = bw[reader], bw[name]
        if ml.numblocks != rl.numblocks:
            return False
        ident = tuple(range(len(rl.numblocks)))
        return all(a[2] == ident for a in rl.block_args() if a[1] == name)

    out = dict(layers)
    for root in progs:
        r = readers.get(root, ())
        if len(r) == 1 and foldable(root, next(iter(r))):
            continue                    # folded into its reader's chain
        inputs, in_dtypes, steps, folded = [], [], [], []
        done = {}

        def visit(name):
            layer = bw[name]
            dts, lsteps = layer.program
            refs = []
            for (_, src, imap), dt in zip(layer.block_args(), dts):
                if foldable(src, name):
                    if src not in done:
                        done[src] = visit(src)
                        folded.append(src)
                    refs.append(done[src])
                    continue
                op = (src, imap)
                for i, (have, hdt) in enumerate(zip(inputs, in_dtypes)):
                    if have == op and hdt == dt:
                        refs.append(("in", i))
                        break
                else:
                    inputs.append(op)
                    in_dtypes.append(dt)
                    refs.append(("in", len(inputs) - 1))
            return fuse.append_steps(steps, lsteps, refs)

        visit(root)
        if not folded:
            continue
        k = _kernel(in_dtypes, steps)
        if k is False:
            continue                    # the chain stays as it was
        rl = bw[root]
        out[root] = Blockwise(root, rl.numblocks, k,
                              [("block", src, imap) for src, imap in inputs],
                              (list(in_dtypes), steps))
        for f in folded:
            del out[f]
    return out


def fuse_reductions(layers, keep=()):
    """``layers`` with the per-block partials of full reductions (``sum``,
    ``mean``, ``min``, ``max`` over every axis: ``fuse.reduction_kind``)
    fused with what they read, when that is

    * an elementwise layer with a program (a fused chain), or
    * a 1-d boolean selection ``x[m]`` whose mask ``m`` has a program, and
      whose values ``x`` too when only the selection and the mask read them:

    the partial layer becomes one Blockwise layer whose kernel evaluates the
    program and the mask and reduces the selected elements in the same pass;
    the layers folded into it are dropped.  A layer is folded only when the
    reader is its only reader, block for block, and it is not asked for."""
    bw = {n: l for n, l in layers.items() if type(l) is Blockwise}
    parts = []
    for n, l in bw.items():
        a = l.args
        if not a or a[0][0] != "block" or a[0][1] not in bw or \
                any(o[0] != "const" for o in a[1:]):
            continue
        got = fuse.reduction_kind(l.func, [o[1] for o in a[1:]])
        if got is not None:
            parts.append((n, got))
    if not parts:
        return layers
    keep = set(keep)
    readers, cands = _readers(layers, bw, keep, set(bw))

    def only_reader(name, reader, also=()):
        """``reader`` (with ``also``) is all that reads ``name``, block for block."""
        if name not in cands or name not in bw or not readers.get(name, set()) <= \
                {reader, *also} or bw[name].numblocks != bw[reader].numblocks:
            return False
        ident = tuple(range(len(bw[reader].numblocks)))
        return all(a[2] == ident for r in (reader, *also) if r in bw
                   for a in bw[r].block_args() if a[1] == name)

    def program(layer):
        dts, steps = layer.program
        return dts, steps, [(a[1], a[2]) for a in layer.block_args()]

    out = dict(layers)
    cache = {}
    for pname, (kind, out_dt) in parts:
        p = bw[pname]
        src = p.args[0][1]
        if not only_reader(src, pname):
            continue
        blk = bw[src]
        b = fuse.ProgramBuilder()
        absorbed = [src]
        mask_ref = None
        if blk.program is not None:
            value_ref = b.program(program(blk), {})
        elif blk.func is mask_block and len(blk.args) == 2 and \
                all(a[0] == "block" for a in blk.args):
            xn, mn = blk.args[0][1], blk.args[1][1]
            if not only_reader(mn, src) or bw[mn].program is None:
                continue
            known = {}
            value_ref = None
            ident = blk.args[0][2]
            if only_reader(xn, src, (mn,)) and bw[xn].program is not None:
                value_ref = known[(xn, ident)] = b.program(program(bw[xn]), known)
                absorbed.append(xn)
            mask_ref = b.program(program(bw[mn]), known)
            absorbed.append(mn)
            if value_ref is None and mask_ref is not None:
                # x stays an input: the mask's program reads it (its dtype)
                value_ref = next((("in", i) for i, op in enumerate(b.inputs)
                                  if op == (xn, ident)), None)
            if mask_ref is None or value_ref is None:
                continue
        else:
            continue
        if value_ref is None:
            continue
        k = fuse.reduction_kernel(b, kind, value_ref, mask_ref, out_dt, cache)
        if k is False:
            continue
        out[pname] = Blockwise(pname, p.numblocks, k,
                               [("block", n, imap) for n, imap in b.inputs])
        for n in absorbed:
            out.pop(n, None)
    return out
