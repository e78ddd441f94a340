"""Layers kept as rules: what a layer computes, before its tasks exist.

A layer of an Array (``Array._layers[name]``) is a mapping ``{key: task}``.
Most layers are plain dicts.  A :class:`Blockwise` layer is one whose tasks
all follow one rule - the task of output block ``idx`` calls ``func`` on the
block of each operand that ``idx`` lines up with, plus constants - and keeps
that rule instead of the tasks.  Its tasks are made the first time the
mapping is read, once (:meth:`Blockwise.materialize`); until then the
planner (``plan.py``) can rewrite the rule itself, so that an elementwise
chain's per-block tasks are only ever made fused.

An operand of the rule is one of

* ``("block", layer_name, index_map)``: the block of layer ``layer_name`` at
  ``tuple(0 if m is None else idx[m] for m in index_map)``, so ``index_map``
  says, per axis of the operand, which output axis it follows (None: the
  operand has one block there, broadcast);
* ``("const", value)``: passed as it is;
* ``("shape", chunks)``: the shape of output block ``idx`` in ``chunks``;
* ``("slices", chunks)``: the tuple of slices output block ``idx`` covers;
* ``("lo", axis, chunks)`` / ``("hi", axis, chunks)``: where block ``idx``
  starts / ends along ``axis``.

The last three make sources - ``ones``, ``arange``, getters of array-likes -
rules too: their tasks depend on where the block lies, not on other blocks.

``program``, when not None, is what ``func`` computes, as the fused kernel
takes it (``_core.fused_kernel(in_dtypes, steps)``): ``("in", i)`` refers to
the i-th *block* operand, whose dtype is ``in_dtypes[i]``, constants are
spelt out in the steps.  Only C elementwise kernels carry a program; it is
what lets the planner fuse a layer into its reader without reading anything
back from a kernel.

Kernels pickle with their programs: one that cdask recorded (below) is
recorded again in the process that unpickles it, so that a graph shipped to
another process - a dask.distributed scheduler - is fused there as it would
be here, without reading anything back from a kernel.

Imports nothing from the rest of the package but ``utils``.
"""

import copyreg
import itertools
from collections.abc import Mapping

import numpy as np

from .._core import Kernel
from .utils import prod

__all__ = ["Blockwise", "is_blockwise", "layer_tasks", "note_ufunc_kernel", "note_fused_kernel",
           "UFUNC_KERNELS", "FUSED_KERNELS"]


class Blockwise(Mapping):
    """A layer ``{(name, *idx): (func, *operands at idx)}`` kept as its rule;
    see the module docstring."""

    __slots__ = ("name", "numblocks", "func", "args", "program", "_tasks", "_offs")

    def __init__(self, name, numblocks, func, args, program=None):
        self.name = name
        self.numblocks = tuple(int(n) for n in numblocks)
        self.func = func
        self.args = tuple(args)
        self.program = program
        self._tasks = None
        self._offs = None

    # ---- the rule ----------------------------------------------------------
    def block_args(self):
        """The ``("block", name, index_map)`` operands, in order."""
        return [a for a in self.args if a[0] == "block"]

    def reads(self):
        """Names of the layers whose blocks the tasks read."""
        return {a[1] for a in self.args if a[0] == "block"}

    def task(self, idx):
        """The task of output block ``idx`` (a tuple of block indices)."""
        out = [self.func]
        for a in self.args:
            kind = a[0]
            if kind == "block":
                out.append((a[1],) + tuple(0 if m is None else idx[m] for m in a[2]))
            elif kind == "const":
                out.append(a[1])
            elif kind == "shape":
                out.append(tuple(c[i] for c, i in zip(a[1], idx)))
            elif kind == "slices":
                out.append(tuple(slice(o[i], o[i + 1]) for o, i in zip(self._offsets(a[1]), idx)))
            elif kind == "lo":
                out.append(self._offsets(a[2])[a[1]][idx[a[1]]])
            elif kind == "hi":
                out.append(self._offsets(a[2])[a[1]][idx[a[1]] + 1])
            else:
                raise ValueError("Blockwise: unknown operand kind %r" % (kind,))
        return tuple(out)

    def _offsets(self, chunks):
        """Per axis of ``chunks`` (an operand's), where each block starts, and the end."""
        cache = self._offs
        if cache is None:
            cache = self._offs = {}
        o = cache.get(id(chunks))
        if o is None:
            o = cache[id(chunks)] = tuple(tuple(itertools.accumulate(c, initial=0))
                                          for c in chunks)
        return o

    def materialize(self):
        """The tasks, as a dict (made once; shared by every reader)."""
        t = self._tasks
        if t is None:
            t = self._tasks = self._build()
        return t

    def _build(self):
        name, f, nb = self.name, self.func, self.numblocks
        if not nb:
            return {(name,): self.task(())}
        idxs = itertools.product(*map(range, nb))
        args = self.args
        nd = len(nb)
        ident = tuple(range(nd))
        # the common shapes, built without a per-operand loop per block
        if len(args) == 1 and args[0][0] == "block" and args[0][2] == ident:
            n0 = args[0][1]
            return {(name,) + i: (f, (n0,) + i) for i in idxs}
        if len(args) == 2:
            a0, a1 = args
            b0 = a0[0] == "block" and a0[2] == ident
            b1 = a1[0] == "block" and a1[2] == ident
            if b0 and b1:
                n0, n1 = a0[1], a1[1]
                return {(name,) + i: (f, (n0,) + i, (n1,) + i) for i in idxs}
            if b0 and a1[0] == "const":
                n0, c = a0[1], a1[1]
                return {(name,) + i: (f, (n0,) + i, c) for i in idxs}
            if b1 and a0[0] == "const":
                c, n1 = a0[1], a1[1]
                return {(name,) + i: (f, c, (n1,) + i) for i in idxs}
        if args and args[0][0] == "shape" and all(a[0] == "const" for a in args[1:]):
            # filled sources: (func, block shape, constants...)
            rest = tuple(a[1] for a in args[1:])
            return {(name,) + i: (f, shp) + rest
                    for i, shp in zip(idxs, itertools.product(*args[0][1]))}
        return {(name,) + i: self.task(i) for i in idxs}

    # ---- the Mapping, as the dict of tasks would answer -----------------
    def __len__(self):
        return prod(self.numblocks) if self.numblocks else 1

    def __iter__(self):
        return iter(self.materialize())

    def __getitem__(self, key):
        t = self._tasks
        if t is not None:
            return t[key]
        if type(key) is not tuple or not key or key[0] != self.name or \
                len(key) != len(self.numblocks) + 1:
            raise KeyError(key)
        idx = key[1:]
        for i, n in zip(idx, self.numblocks):
            if type(i) is not int or not 0 <= i < n:
                raise KeyError(key)
        return self.task(idx)

    def __contains__(self, key):
        try:
            self[key]
        except (KeyError, TypeError):
            return False
        return True

    def keys(self):
        return self.materialize().keys()

    def values(self):
        return self.materialize().values()

    def items(self):
        return self.materialize().items()

    def __eq__(self, other):
        if isinstance(other, Mapping):
            return self.materialize() == dict(other.items())
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "Blockwise<%s, %s blocks, %r>" % (self.name, "x".join(map(str, self.numblocks))
                                                 or "1", self.func)

    def __reduce__(self):
        return (Blockwise, (self.name, self.numblocks, self.func, self.args, self.program))


def is_blockwise(layer):
    return type(layer) is Blockwise


def layer_tasks(layer):
    """A layer as something ``dict.update`` reads at C speed: Blockwise layers
    give their materialized dict."""
    return layer.materialize() if type(layer) is Blockwise else layer


# What the C kernels made by cdask compute, by id of the kernel, recorded
# when each was made - elemwise for its ufunc kernels, plan.py for the fused
# kernels it builds - so that the fusion passes never read a program back
# out of a kernel.  Each entry holds the kernel, so an id is never reused
# while its entry lives.  Bounded.
UFUNC_KERNELS = {}     # id -> (kernel, ufunc, declared operand dtypes)
FUSED_KERNELS = {}     # id -> (kernel, in_dtypes, steps, views, plain)
_KERNELS_MAX = 4096


def _note(table, kernel, entry):
    # the newest last: a full table drops its oldest entry (each kernel is
    # noted again whenever it is used to build a layer)
    k = id(kernel)
    table.pop(k, None)
    table[k] = entry
    if len(table) > _KERNELS_MAX:
        del table[next(iter(table))]


def note_ufunc_kernel(kernel, ufunc, dtypes):
    _note(UFUNC_KERNELS, kernel, (kernel, ufunc, tuple(dtypes)))


def note_fused_kernel(kernel, in_dtypes, steps, views=None, plain=True):
    """``plain``: the kernel returns its result (no store into a destination,
    no reduction); ``views``: the blocks it reads in place, or None."""
    _note(FUSED_KERNELS, kernel, (kernel, list(in_dtypes), [(uf, list(refs)) for uf, refs in steps],
                                  views, plain))


def _reduce_kernel(kernel):
    # Kernel's own pickle form, with the program recorded again on load
    # for the kernels the fusion passes read (copyreg: pickle, cloudpickle
    # and dask.distributed's serialisation all consult it)
    rv = kernel.__reduce__()
    if kernel.name in ("ufunc", "fused") and type(rv) is tuple and len(rv) == 2:
        return kernel_from_pickle, rv
    return rv


def kernel_from_pickle(make, args):
    """Unpickle a C elementwise kernel: ``make(*args)``, its program recorded
    (``UFUNC_KERNELS`` / ``FUSED_KERNELS``) as when cdask made it."""
    k = make(*args)
    if k.name == "ufunc" and len(args) == 2:
        uf = getattr(np, args[0], None)
        if isinstance(uf, np.ufunc):
            note_ufunc_kernel(k, uf, args[1])
    elif k.name == "fused" and len(args) >= 2:
        views, store, span, red = (tuple(args[2:6]) + (None,) * 4)[:4]
        note_fused_kernel(k, args[0], args[1], views=views,
                          plain=store is None and red is None)
    return k


copyreg.pickle(Kernel, _reduce_kernel)
