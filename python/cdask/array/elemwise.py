"""Elementwise operations: NumPy ufuncs (and elementwise functions) applied
block by block with NumPy's broadcasting and dtype rules.

The per-block task callable comes from ``ufuncs.ufunc_task(ufunc,
in_dtypes)`` - a C kernel running NumPy's own inner loop - when there is one
(``in_dtypes``: per operand its ``np.dtype``, or for a Python scalar its type
``int``/``float``/``complex``/``bool``; the task is called as
``task(*operands)`` with blocks for arrays and the scalars themselves).
Otherwise a plain Python callable (:class:`UfuncBlock`) calls the NumPy
ufunc.  The output dtype is ``ufuncs.result_dtype(ufunc, *args)``, else
``ufunc.resolve_dtypes`` (NEP 50 rules).  ``x ** e`` with a scalar ``e``
asks ``ufuncs.pow_rewrite(dtype, e)`` for the one-argument ufunc NumPy
itself would apply (``square``, ``sqrt``, ``reciprocal``; None -> power).
"""

import numbers
import operator

import numpy as np

from .._core import note_fpe
from .._core import Kernel, fused_kernel
from .._errstate import report
from .chunk_types import keep_block, maybe_masked
from .chunks import normalize_chunks
from .core import Array
from .creation import from_array
from .dtypes import check_dtype
from .layers import Blockwise, note_fused_kernel, note_ufunc_kernel
from .rechunk import rechunk
from .tokenize import tokenize
from . import ufuncs
from .utils import broadcast_shapes, common_chunks, is_scalar, merge_layers, shape_str, with_layer

__all__ = ["elemwise", "unify_chunks_broadcast", "is_operand", "power", "UfuncBlock"]


def is_operand(x):
    if isinstance(x, (Array, np.ndarray, numbers.Number, np.generic, list, tuple)):
        return True
    if x is None:
        return False
    if hasattr(x, "__dask_graph__"):
        return False
    return hasattr(x, "__array__") and getattr(x, "__array_ufunc__", 1) is not None


class UfuncBlock:
    """Fallback per-block callable: calls the NumPy ufunc (or any function)
    on the blocks and casts to the expected dtype."""

    __slots__ = ("op", "dtype", "kwargs", "index", "nin", "has_where", "has_out")

    def __init__(self, op, dtype, kwargs=(), index=None, nin=None, has_where=False,
                 has_out=False):
        self.op = op
        self.dtype = dtype
        self.kwargs = tuple(kwargs)
        self.index = index
        self.nin = nin
        self.has_where = has_where
        self.has_out = has_out

    @property
    def __name__(self):
        return getattr(self.op, "__name__", "elemwise")

    def __reduce__(self):
        return (UfuncBlock, (self.op, self.dtype, self.kwargs, self.index, self.nin,
                              self.has_where, self.has_out))

    def __call__(self, *args):
        # np.errstate is per thread (a context variable): the caller's does
        # not reach the worker that runs this block.  Collect the flags NumPy
        # reports here and hand them to the scheduler, which applies the
        # caller's errstate when the run is over, as for C kernels.  Outside
        # a cdask run (dask's own schedulers), act on them in this thread.
        raised = []
        with np.errstate(all="call", call=lambda kind, flag: raised.append(flag)):
            r = self._call(*args)
        if raised:
            bits = 0
            for f in raised:
                bits |= int(f)
            if not note_fpe(bits):
                report(bits, (self.__name__,) * 4)
        return r

    def _call(self, *args):
        kw = dict(self.kwargs)
        op = self.op
        if any(isinstance(a, np.ma.MaskedArray) for a in args):
            # np.ma's own function (np.ma.add...): what a masked array's operators call
            op = _MA_UFUNCS.get(getattr(op, "__name__", None), op) if isinstance(op, np.ufunc) \
                else op
        if self.has_where or self.has_out:
            ins = args[:self.nin]
            rest = list(args[self.nin:])
            where = rest.pop(0) if self.has_where else True
            if self.has_out:
                o = np.array(rest.pop(0), dtype=self.dtype, copy=True)
            else:
                shp = np.broadcast_shapes(*[np.shape(a) for a in ins], np.shape(where))
                o = np.empty(shp, dtype=self.dtype)
            if not isinstance(self.op, np.ufunc):
                r = np.asarray(self.op(*ins, **kw))
                np.copyto(o, r, where=where, casting="unsafe")
                return o
            if self.index is not None:
                outs = [None] * self.op.nout
                outs[self.index] = o
                self.op(*ins, out=tuple(outs), where=where, casting="unsafe", **kw)
            else:
                self.op(*ins, out=o, where=where, casting="unsafe", **kw)
            return o
        r = op(*args, **kw)
        if self.index is not None:
            r = r[self.index]
        if type(r) is not np.ndarray:
            r = keep_block(r)
        if r.dtype != self.dtype:
            r = r.astype(self.dtype)
        return r


# np.ma's masked versions of the ufuncs, by the ufunc's name: what a masked
# array's operators call (``m + 1`` is np.ma.add; comparisons are the
# operators themselves, whose data under the mask differs from np.ma.less...)
_MA_UFUNCS = {n: f for n, f in vars(np.ma).items()
              if isinstance(f, np.ma.core._MaskedUFunc) and isinstance(getattr(np, n, None),
                                                                          np.ufunc)
              and getattr(np, n).__name__ == n}
_MA_UFUNCS.update(equal=operator.eq, not_equal=operator.ne, less=operator.lt,
                  less_equal=operator.le, greater=operator.gt, greater_equal=operator.ge,
                  power=np.ma.power)


def _masked_dtype(op, args):
    """The dtype np.ma's version of the ufunc ``op`` gives on masked blocks
    (np.ma does not treat Python scalars as weak: float32 + 1 is float64)."""
    f = _MA_UFUNCS.get(op.__name__, op)
    samples = [np.ma.masked_array(np.ones((1,) * a.ndim, dtype=a.dtype))
               if isinstance(a, (Array, np.ndarray)) else a for a in args]
    with np.errstate(all="ignore"):
        return np.asarray(f(*samples)).dtype


def _operand_dtype(a):
    if isinstance(a, (Array, np.ndarray, np.generic)):
        return a.dtype
    if isinstance(a, bool):
        return np.dtype(bool)
    if isinstance(a, int):
        return int
    if isinstance(a, float):
        return float
    if isinstance(a, complex):
        return complex
    return np.asarray(a).dtype


_COMPARISONS = frozenset(["equal", "not_equal", "less", "less_equal", "greater",
                          "greater_equal"])


def resolve_dtype(op, args, index, dtype):
    """The output dtype of ``op(*args)`` and the loop input dtypes."""
    in_types = tuple(_operand_dtype(a) for a in args)
    if isinstance(op, np.ufunc):
        if dtype is None and index is None:
            try:
                r = ufuncs.result_dtype(op, *args)
                if r is not None:
                    return np.dtype(r), None
            except NotImplementedError:
                pass
        try:
            if dtype is not None and op.nout == 1:
                res = op.resolve_dtypes(in_types + (None,), signature=(None,) * op.nin +
                                        (np.dtype(dtype),))
            else:
                res = op.resolve_dtypes(in_types + (None,) * op.nout)
            outs = res[op.nin:]
            return np.dtype(outs[index or 0]), res[:op.nin]
        except TypeError:
            # resolve_dtypes does not cover every loop (e.g. legacy ones):
            # fall back to a sample computation, which also raises NumPy's own
            # error when the types are not supported
            pass
    samples = []
    for a in args:
        if isinstance(a, (Array, np.ndarray)):
            samples.append(np.ones((1,) * max(a.ndim, 0), dtype=a.dtype))
        else:
            samples.append(a)
    kw = {"dtype": dtype} if (dtype is not None and isinstance(op, np.ufunc)) else {}
    with np.errstate(all="ignore"):
        r = op(*samples, **kw)
    if index is not None:
        r = r[index]
    return np.asarray(r).dtype, None


def unify_chunks_broadcast(arrays, out_shape):
    """Rechunk Arrays (aligned from the right, NumPy broadcasting) to common
    block grids.  Returns (arrays, out_chunks)."""
    nd = len(out_shape)
    out_chunks = []
    for ax in range(nd):
        lists = []
        for a in arrays:
            k = ax - (nd - a.ndim)
            if k >= 0 and not (a.shape[k] == 1 and out_shape[ax] != 1):
                lists.append(a.chunks[k])
        if lists:
            out_chunks.append(common_chunks(lists, out_shape[ax]))
        else:
            out_chunks.append((1,))
    out_chunks = tuple(out_chunks)
    res = []
    for a in arrays:
        want = []
        for k in range(a.ndim):
            ax = k + nd - a.ndim
            if a.shape[k] == 1 and out_shape[ax] != 1:
                want.append(a.chunks[k])  # (1,)
            else:
                want.append(out_chunks[ax])
        want = tuple(want)
        if want != a.chunks:
            a = rechunk(a, want)
        res.append(a)
    return res, out_chunks


def _exact_int_scalars(op, args):
    # NumPy compares an integer array with a Python int by value, so
    # `int8_array < 300` is all True; a Python int that fits the loop's
    # integer dtype compares exactly as that dtype's scalar does, and then
    # the C kernel applies.  Out-of-range ints stay as they are (NumPy's
    # own call handles them).
    if not any(type(a) is int for a in args):
        return args
    try:
        loop = ufuncs.resolve(op, tuple(int if type(a) is int else
                                 (a.dtype if hasattr(a, "dtype") else type(a)) for a in args))
    except Exception:
        return args
    out = list(args)
    for k, a in enumerate(args):
        lt = np.dtype(loop[k])
        if type(a) is int and lt.kind in "iu":
            info = np.iinfo(lt)
            if info.min <= a <= info.max:
                out[k] = lt.type(a)
    return out


def _where_kernel(args, in_dtypes):
    """np.where(cond, x, y) as a C kernel (a one-step fused program) taking
    the array operands only, scalars built in; None if it cannot run in C."""

    refs, dts = [], []
    for a, dt in zip(args, in_dtypes):
        if is_scalar(a):
            refs.append(("const", a))
        else:
            refs.append(("in", len(dts)))
            dts.append(dt)
    if not dts or refs[0][0] == "const":
        return None
    try:
        return fused_kernel(dts, [(np.where, refs)])
    except (NotImplementedError, TypeError, ValueError, OverflowError):
        return None


def _program_of(fn, op, op_args, where_kernel):
    """What the C kernel ``fn`` computes on the operands ``op_args`` (see
    ``layers.py``), or None when it is not a C elementwise kernel."""
    if not isinstance(fn, Kernel) or fn.name not in ("ufunc", "fused"):
        return None
    if fn.name == "fused" and not where_kernel:
        return None
    refs, dts = [], []
    for a in op_args:
        if is_scalar(a):
            refs.append(("const", a))
        else:
            refs.append(("in", len(dts)))
            dts.append(np.dtype(a.dtype))
    if fn.name == "ufunc":
        note_ufunc_kernel(fn, op, [_operand_dtype(a) for a in op_args])
    else:
        note_fused_kernel(fn, dts, [(op, refs)])
    return dts, [(op, refs)]


def elemwise(op, *args, dtype=None, out=None, where=True, name=None, _output_index=None,
             **kwargs):
    """Apply a NumPy ufunc (or elementwise function) blockwise with NumPy
    broadcasting over cdask Arrays, NumPy arrays and scalars."""
    index = _output_index
    conv = []
    for a in args:
        if isinstance(a, Array) or is_scalar(a):
            conv.append(a)
        elif isinstance(a, np.ndarray):
            conv.append(a)
        elif hasattr(a, "__dask_graph__"):
            raise TypeError("cannot mix cdask arrays with %s" % type(a).__name__)
        else:
            conv.append(np.asarray(a))
    args = conv
    if isinstance(out, tuple):
        out = out[0] if len(out) == 1 else out
    if out is not None and not isinstance(out, Array):
        raise TypeError("out= must be a cdask Array, got %s" % type(out).__name__)
    has_where = not (isinstance(where, bool) and where)
    if has_where and not isinstance(where, Array):
        where = np.asarray(where)
    if isinstance(op, np.ufunc) and op.__name__ in _COMPARISONS:
        args = _exact_int_scalars(op, args)
    op_args = list(args)

    # dtype: for NEP 50 the resolution sees Python scalars as weak
    if dtype is not None:
        dtype = np.dtype(dtype)
    out_dtype, loop_types = resolve_dtype(op, args, index, dtype)
    masked = any(isinstance(a, Array) and maybe_masked(a._layers) for a in args)
    if masked and isinstance(op, np.ufunc) and dtype is None and index is None and not kwargs:
        out_dtype = _masked_dtype(op, args)
    if isinstance(op, np.ufunc) and op.__name__ not in _COMPARISONS and \
            any(type(a) is int for a in args):
        if loop_types is None:
            try:
                loop_types = op.resolve_dtypes(tuple(_operand_dtype(a) for a in args) +
                                               (None,) * op.nout)[:op.nin]
            except TypeError:
                loop_types = None
        for a, lt in zip(args, loop_types or ()):
            if type(a) is int and np.dtype(lt).kind in "iu":
                np.asarray(a, dtype=lt)  # OverflowError like NumPy's
    if out is not None:
        if not np.can_cast(out_dtype, out.dtype, casting=kwargs.get("casting", "same_kind")):
            raise TypeError("Cannot cast ufunc %r output from %r to %r with casting rule "
                            "'same_kind'" % (getattr(op, "__name__", op), out_dtype, out.dtype))
    check_dtype(out_dtype)

    arrays_all = [a for a in op_args if not is_scalar(a)]
    extra = []
    if has_where:
        extra.append(where)
    if out is not None and has_where:
        extra.append(out)
    shapes = [np.shape(a) if not isinstance(a, Array) else a.shape
              for a in arrays_all + extra]
    out_shape = broadcast_shapes(shapes) if shapes else ()
    if out is not None and tuple(out.shape) != tuple(out_shape):
        raise ValueError("non-broadcastable output operand with shape %s doesn't match the "
                         "broadcast shape %s" % (shape_str(out.shape), shape_str(out_shape)))

    # NumPy arrays become Arrays chunked like the rest
    cd = [a for a in arrays_all + extra if isinstance(a, Array)]

    if cd:
        cd, out_chunks = unify_chunks_broadcast(cd, out_shape)
    else:
        out_chunks = tuple(normalize_chunks("auto", tuple(out_shape), dtype=out_dtype))
    nd = len(out_shape)

    def to_array(a):
        if isinstance(a, Array):
            return a
        ch = []
        for k in range(a.ndim):
            ax = k + nd - a.ndim
            ch.append((1,) if (a.shape[k] == 1 and out_shape[ax] != 1) else out_chunks[ax])
        return from_array(a, chunks=tuple(ch))

    it = iter(cd)
    operands = []
    for a in op_args + extra:
        if is_scalar(a):
            operands.append(a)
        elif isinstance(a, Array):
            operands.append(next(it))
        else:
            operands.append(to_array(a))
    n_in = len(op_args)

    # the task callable (only Python ones where blocks may be masked arrays,
    # whose masks the C kernels would not see)
    fn = None
    in_dtypes = tuple(_operand_dtype(a) for a in op_args)
    masked = masked or any(isinstance(a, Array) and maybe_masked(a._layers) for a in operands)
    if masked and has_where:
        raise NotImplementedError("cdask: where= is not supported for masked arrays; "
                                  "use cdask.ma.where")
    if masked:
        pass
    elif isinstance(op, np.ufunc) and not has_where and index is None and not kwargs and \
            dtype is None:
        try:
            fn = ufuncs.ufunc_task(op, in_dtypes)
        except Exception:
            fn = None
    drop_scalars = False
    if fn is None and not masked and op is np.where and not has_where and index is None and not kwargs \
            and dtype is None:
        fn = _where_kernel(op_args, in_dtypes)
        drop_scalars = fn is not None
    if fn is None:
        kw = dict(kwargs)
        if dtype is not None and isinstance(op, np.ufunc):
            kw["dtype"] = dtype
        fn = UfuncBlock(op, out_dtype, sorted(kw.items()), index, n_in, has_where,
                         out is not None and has_where)

    opname = getattr(op, "__name__", "elemwise")
    if name is None:
        name = "%s-%s" % (opname, tokenize(op, [a.name if isinstance(a, Array) else a
                                                for a in operands],
                                           out_dtype, dtype, index, sorted(kwargs.items()),
                                           getattr(op, "__module__", None)))
    arr_ops = [a for a in operands if isinstance(a, Array)]
    args = []
    for a in operands:
        if isinstance(a, Array):
            off = nd - a.ndim
            args.append(("block", a.name,
                         tuple(None if (a.shape[k] == 1 and out_shape[k + off] != 1) else k + off
                               for k in range(a.ndim))))
        elif not drop_scalars:
            args.append(("const", a))
    layer = Blockwise(name, tuple(len(c) for c in out_chunks), fn, args,
                      _program_of(fn, op, op_args, drop_scalars))
    res = Array(with_layer(merge_layers(*arr_ops), name, layer), name, out_chunks, out_dtype)
    if out is not None:
        if res.dtype != out.dtype:
            res = res.astype(out.dtype)
        out._become(res)
        return out
    return res


def power(x, e):
    """``x ** e`` for an Array ``x``: with a scalar exponent, the rewrite
    NumPy's ``ndarray.__pow__`` applies (``x ** 2`` -> ``square(x)``, ...),
    else ``np.power``."""
    if is_scalar(e) and not isinstance(e, np.ndarray) and not maybe_masked(x._layers):
        # (a masked array's ** is np.ma.power, never rewritten)
        try:
            fn = ufuncs.pow_rewrite(x.dtype, e)
        except Exception:
            fn = None
        if isinstance(fn, np.ufunc):
            # NumPy's own rewrite (x ** 2 -> square(x), ...)
            return elemwise(fn, x)
        if fn is not None:
            dt, _ = resolve_dtype(np.power, (x, e), None, None)
            name = "power-" + tokenize("pow", x.name, e, dt)
            layer = {(name,) + k[1:]: (fn, k) for k in x._keys_flat()}
            return Array(with_layer(x._layers, name, layer), name, x.chunks, dt)
    return elemwise(np.power, x, e)
