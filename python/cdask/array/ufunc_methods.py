"""NumPy's ufunc methods on cdask Arrays, and ufuncs with several outputs.

``np.add.reduce(x)``, ``np.maximum.accumulate(x, axis=1)``, ``np.add.outer(v, w)``,
``np.add.reduceat(x, idx)`` and ``np.divmod(x, 3)`` reach :func:`dispatch`
through ``Array.__array_ufunc__``; ``cdask.add.reduce`` and ``cdask.divmod`` call
the same functions.  Every result is lazy and has NumPy's dtype, which (with
NumPy's exceptions for bad input) comes from NumPy itself: the method is
first called on a tiny sample of the same ndim and dtype.

* ``reduce``: over every axis ``add`` is cdask's ``sum`` (C kernels, fused
  with what it reads); ``multiply``/``maximum``/``minimum`` (and
  ``logical_or``/``logical_and`` of booleans) are ``prod``, ``max``, ``min``,
  ``any``, ``all``; ``where=`` puts the identity (or ``initial``) in the
  masked places first, an elementwise pass.  Other reorderable ufuncs (those
  NumPy reduces over several axes: an identity, or ``maximum``/``minimum``/
  ``fmax``/``fmin``; ``add`` along some axes, where NumPy's own per-block
  reduce is faster than ``sum``'s contiguous copy) run a tree of
  ``ufunc.reduce`` partials; the others (``subtract``, ``divide``,
  ``power``...) fold block after block along their one axis, in NumPy's order.
* ``accumulate``: a scan block after block along the axis, the last slice of
  the previous output block carried into the next: NumPy's sequence of
  operations, so its bits (``add`` too, where ``cumsum`` adds a carry to each
  block's own running sum).  Along a leading axis slice after slice over
  whole slices, along the last NumPy's accumulate in cache-sized pieces;
  complex and transcendental ufuncs, whose elementwise loops may round
  otherwise than their accumulate loops, by NumPy's accumulate of the carry
  and the block (complex multiply can still differ in the last bit where
  blocks meet: NumPy's own loops round it differently from shape to shape).
* ``outer``: the first operand given trailing length-1 axes, then the
  elementwise ufunc (C kernels).
* ``reduceat``: the indices are concrete; consecutive indices are grouped
  into output blocks whose input span stays near two input blocks, and each
  output block is NumPy's ``reduceat`` on the concatenated span.
* several outputs: one task per block computes them all (a tuple), and one
  Array per output picks its own; ``out=`` a tuple with a cdask Array or None
  per output (then, and with keywords, a task per block and output).
* masked arrays: as NumPy's methods on ``np.ma`` arrays, ``reduce``,
  ``accumulate`` and ``reduceat`` see the data (the mask is dropped),
  ``outer`` keeps the masks.
"""

import builtins
import functools
import operator
from itertools import product

import numpy as np

from .._core import scan_minmax, note_fpe
from .._errstate import report
from .chunk_types import maybe_masked
from .core import Array
from .layers import Blockwise
from .creation import asarray, empty
from .elemwise import elemwise
from .ma import getdata
from . import reductions as _red
from .tokenize import tokenize
from .utils import merge_layers, normalize_axis, normalize_axis_index, unknown_chunks_error

__all__ = ["dispatch", "call", "reduce", "accumulate", "outer", "reduceat"]

def _caller_errstate(fn):
    """A task function whose floating-point flags go to the scheduler, which
    applies the caller's ``np.errstate`` once the run is over (errstate is per
    thread: the caller's does not reach a worker; see UfuncBlock)."""

    @functools.wraps(fn)
    def task(*args):
        raised = []
        with np.errstate(all="call", call=lambda kind, flag: raised.append(flag)):
            r = fn(*args)
        if raised:
            bits = functools.reduce(operator.or_, (int(f) for f in raised))
            if not note_fpe(bits):
                report(bits, (fn.__name__,) * 4)
        return r
    return task


_IDEMPOTENT = frozenset([np.maximum, np.minimum, np.fmax, np.fmin])
_NoValue = np._NoValue


def _check_method(ufunc, method):
    # NumPy's own messages and exception type
    if ufunc.nin != 2:
        what = "outer product" if method == "outer" else method
        raise ValueError("%s only supported for binary functions" % what)
    if ufunc.nout != 1 and method != "outer":
        raise ValueError("%s only supported for functions returning a single value" % method)


def _sample_shape(x):
    # one element per axis (none where the array is empty), so NumPy's
    # checks of empty reductions apply to the sample too
    return tuple(0 if s == 0 else 1 for s in x.shape)


def _single_out(out, what):
    if isinstance(out, tuple):
        if len(out) != 1:
            raise ValueError("%s: out must be one cdask Array" % what)
        out = out[0]
    if out is not None and not isinstance(out, Array):
        raise TypeError("out= must be a cdask Array, got %s" % type(out).__name__)
    return out


def _into(out, r):
    """``r`` written into the cdask Array ``out`` (NumPy's same_kind cast), or ``r``."""
    if out is None:
        return r
    if tuple(out.shape) != tuple(r.shape):
        raise ValueError("output operand has shape %s, the result has shape %s"
                         % (out.shape, r.shape))
    if not np.can_cast(r.dtype, out.dtype, casting="same_kind"):
        raise TypeError("Cannot cast ufunc output from %r to %r with casting rule 'same_kind'"
                        % (r.dtype, out.dtype))
    out._become(r.astype(out.dtype) if r.dtype != out.dtype else r)
    return out


def _data(x):
    """``x``, or of a masked array its data: NumPy's ufunc methods see an
    ``np.ma`` array's data and drop its mask (only ``outer`` keeps it)."""
    return getdata(x) if maybe_masked(x._layers) else x


def _reorderable(ufunc):
    return ufunc.identity is not None or ufunc in _IDEMPOTENT


# ---------------------------------------------------------------------------
# several outputs
# ---------------------------------------------------------------------------
def call(ufunc, inputs, kwargs):
    """``ufunc(*inputs, **kwargs)`` for a ufunc of any number of outputs:
    an Array, or a tuple of Arrays (one per output)."""
    kwargs = dict(kwargs)
    out = kwargs.pop("out", None)
    if ufunc.nout == 1:
        return elemwise(ufunc, *inputs, out=_single_out(out, ufunc.__name__), **kwargs)
    if out is None:
        out = (None,) * ufunc.nout
    if not isinstance(out, tuple) or len(out) != ufunc.nout:
        raise ValueError("The 'out' tuple must have exactly %d entries: one per ufunc output"
                         % ufunc.nout)
    for o in out:
        if o is not None and not isinstance(o, Array):
            raise TypeError("out= entries must be cdask Arrays or None, got %s"
                            % type(o).__name__)
    if kwargs or any(o is not None for o in out):
        return tuple(elemwise(ufunc, *inputs, out=o, _output_index=i, **kwargs)
                     for i, o in enumerate(out))
    return _outputs(ufunc, inputs)


class _Outputs:
    """Task callable: every output of a ufunc on its blocks, as a tuple, each
    in its dtype."""

    def __init__(self, ufunc, dtypes):
        self.ufunc, self.dtypes = ufunc, tuple(dtypes)

    def __call__(self, *blocks):
        return _all_outputs(self.ufunc, self.dtypes, *blocks)


@_caller_errstate
def _all_outputs(ufunc, dtypes, *blocks):
    return tuple(np.asarray(r).astype(d, copy=False) for r, d in zip(ufunc(*blocks), dtypes))


def _outputs(ufunc, inputs):
    """The outputs of ``ufunc(*inputs)`` as Arrays computed by one task per
    block (the ufunc runs once for all its outputs)."""
    first = elemwise(ufunc, *inputs, _output_index=0)
    layer = first._layers[first.name]
    if not isinstance(layer, Blockwise) or maybe_masked(first._layers):
        # (np.ma's blocks: elemwise's own per-output tasks)
        return (first,) + tuple(elemwise(ufunc, *inputs, _output_index=i)
                                for i in range(1, ufunc.nout))
    dtypes = [first.dtype] + [elemwise(ufunc, *inputs, _output_index=i).dtype
                              for i in range(1, ufunc.nout)]
    token = tokenize("outputs", first.name)
    tname = "%s-outputs-%s" % (ufunc.__name__, token)
    layers = {k: v for k, v in first._layers.items() if k != first.name}
    layers[tname] = Blockwise(tname, layer.numblocks, _Outputs(ufunc, dtypes), layer.args)
    index = ("block", tname, tuple(range(len(layer.numblocks))))
    res = []
    for i, dt in enumerate(dtypes):
        name = "%s-%d-%s" % (ufunc.__name__, i, token)
        lay = dict(layers)
        lay[name] = Blockwise(name, layer.numblocks, operator.getitem, [index, ("const", i)])
        res.append(Array(lay, name, first.chunks, dt))
    return tuple(res)


# ---------------------------------------------------------------------------
# reduce
# ---------------------------------------------------------------------------
class _StartWhere:
    """Block task of a reduction over no axes under a mask: ``ufunc(start, x)``
    where the mask is true (only there: NumPy's loop sees nothing else), else
    ``start``."""

    def __init__(self, ufunc, start, dtype):
        self.ufunc, self.start, self.dtype = ufunc, start, dtype
        self.__name__ = ufunc.__name__

    def __call__(self, b, w):
        r = np.full(np.broadcast_shapes(np.shape(b), np.shape(w)), self.start, dtype=self.dtype)
        self.ufunc(self.start, b, out=r, where=w, casting="unsafe")
        return r


@_caller_errstate
def _chunk_reduce(b, axes, ufunc, dtype, initial):
    if initial is None and ufunc.identity is None and \
            builtins.any(b.shape[a] == 0 for a in axes):
        return None
    kw = {} if initial is None else {"initial": initial}
    return ufunc.reduce(b, axis=axes, dtype=dtype, keepdims=True, **kw)


@_caller_errstate
def _combine_reduce(parts, ufunc):
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    r = np.array(parts[0], copy=True)
    for p in parts[1:]:
        ufunc(r, p, out=r)
    return r


@_caller_errstate
def _agg_reduce(parts, ufunc, dtype, initial, axes, keepdims):
    r = _combine_reduce(parts, ufunc)
    if r is None:
        raise ValueError("zero-size array to reduction operation %s which has no identity"
                         % ufunc.__name__)
    if initial is not None and ufunc.identity is not None:
        ufunc(np.asarray(initial).astype(dtype), r, out=r, dtype=dtype)
    return _red.finish_reduction(r, axes, keepdims, dtype)


# NumPy 2.4.5's float power and arctan2 loops have a vector path and a
# scalar one that round differently; NumPy's accumulate takes the scalar one
# wherever the loop's operands overlap, which is every element of an
# accumulate of three slices or more, but not the one element of an
# accumulate of two slices (one loop call of one element).  And its reduce
# of those ufuncs along a contiguous axis of three elements or more is
# wrong (arctan2 of the first and the last).  _numpy_accumulate gives every
# piece of an axis ``n`` long NumPy's bits for the whole axis; folds whose
# NumPy reduce is wrong take the last slice of that accumulate instead.
def _numpy_accumulate(ufunc, a, axis, dtype, n=None):
    """``ufunc.accumulate(a, axis)``, rounded as NumPy rounds an accumulate of
    the whole axis (``n`` long: None or NaN for unknown, taken as long)."""
    if a.shape[axis] == 2 and not (n is not None and n < 3) and not _rows_exact(ufunc, dtype):
        shape = a.shape[:axis] + (1,) + a.shape[axis + 1:]
        padded = np.concatenate([a, np.ones(shape, dtype=a.dtype)], axis=axis)
        t = ufunc.accumulate(padded, axis=axis, dtype=dtype)
        return t[(slice(None),) * axis + (slice(0, 2),)]
    return ufunc.accumulate(a, axis=axis, dtype=dtype)


@functools.lru_cache(maxsize=None)
def _reduce_is_wrong(ufunc, dtype):
    """Whether this NumPy's ``ufunc.reduce`` over a contiguous axis disagrees
    with its own accumulate (beyond the rounding of a wider accumulator)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "fc":
        return False
    v = np.array([1.25, 0.75, 1.5, 0.5, 1.125, 0.875, 1.375, 0.625]).astype(dtype)
    try:
        with np.errstate(all="ignore"):
            r = ufunc.reduce(v, dtype=dtype)
            acc = ufunc.accumulate(v, dtype=dtype)[-1]
    except (TypeError, ValueError):
        return False
    tol = {2: 1e-2, 4: 1e-5}.get(dtype.itemsize // (2 if dtype.kind == "c" else 1), 1e-12)
    return not np.allclose(r, acc, rtol=tol, atol=0, equal_nan=True)


def _numpy_reduce(ufunc, a, axis, dtype, n=None):
    """``ufunc.reduce(a, axis, keepdims=True)``, from the accumulate where
    NumPy's reduce is wrong."""
    if _reduce_is_wrong(ufunc, dtype):
        t = _numpy_accumulate(ufunc, a, axis, dtype, n)
        return t[(slice(None),) * axis + (slice(-1, None),)]
    return ufunc.reduce(a, axis=axis, dtype=dtype, keepdims=True)


@_caller_errstate
def _fold_step(acc, b, axis, ufunc, dtype, elem, initial, w=None, n=None):
    """Left fold of ``ufunc`` along ``axis``: ``acc`` (keepdims, or None) then
    every slice of the block ``b`` (where ``w`` is true, when given: NumPy
    then has an ``initial``).  ``dtype`` is the accumulator's, ``elem`` the
    elements' (they differ for ``ldexp``: float and int)."""
    b = np.asarray(b)
    if acc is None:
        if initial is None and w is None:
            if b.shape[axis] == 0:
                return None
            if dtype == elem:
                return _numpy_reduce(ufunc, b, axis, dtype, n)
            acc, b = b[(slice(None),) * axis + (slice(0, 1),)].astype(dtype), \
                b[(slice(None),) * axis + (slice(1, None),)]
        else:
            shape = tuple(1 if a == axis else s for a, s in enumerate(b.shape))
            acc = np.full(shape, initial, dtype=dtype)
    if b.shape[axis] == 0:
        return acc
    if w is None and dtype == elem:
        both = np.concatenate([acc, b.astype(dtype, copy=False)], axis=axis)
        return _numpy_reduce(ufunc, both, axis, dtype, n)
    # slice by slice: under a mask, or with two dtypes in the loop
    w = True if w is None else np.broadcast_to(w, b.shape)
    for i in range(b.shape[axis]):
        sl = (slice(None),) * axis + (slice(i, i + 1),)
        acc = ufunc(acc, b[sl].astype(elem, copy=False), out=acc.copy(),
                    where=w if w is True else w[sl])
    return acc


def _mask_like(w, b):
    """The mask ``w`` broadcast to the block ``b``'s shape."""
    return np.array(np.broadcast_to(w, np.broadcast_shapes(np.shape(w), np.shape(b))),
                    dtype=bool)


def _elem_dtype(ufunc, xdtype, dtype):
    """The dtype NumPy's reduction loop takes the elements in."""
    try:
        return ufunc.resolve_dtypes((dtype, xdtype, None), reduction=True)[1]
    except (TypeError, ValueError):
        return dtype


def _fold_finish(acc, ufunc, axis, keepdims):
    if acc is None:
        raise ValueError("zero-size array to reduction operation %s which has no identity"
                         % ufunc.__name__)
    return acc if keepdims else np.squeeze(acc, axis=axis)


def _fold(ufunc, x, axis, dtype, keepdims, initial, where=None):
    elem = _elem_dtype(ufunc, x.dtype, dtype)
    wname = None
    if where is not None:
        w = elemwise(_mask_like, where, x)       # x's shape
        if w.chunks != x.chunks:
            w = w.rechunk(x.chunks)
        wname = w.name
        x = Array(merge_layers(x, w), x.name, x.chunks, x.dtype)
    token = tokenize("ufunc-fold", ufunc.__name__, x.name, axis, str(dtype), keepdims, initial,
                     wname)
    sname = "%s-fold-%s" % (ufunc.__name__, token)
    oname = "%s-reduce-%s" % (ufunc.__name__, token)
    steps, outs = {}, {}
    nb = x.numblocks
    n = x.shape[axis] + (initial is not None)     # the elements folded
    for idx in product(*map(range, nb)):
        prev = None
        if idx[axis] > 0:
            prev = (sname,) + idx[:axis] + (idx[axis] - 1,) + idx[axis + 1:]
        steps[(sname,) + idx] = (_fold_step, prev, (x.name,) + idx, axis, ufunc, dtype, elem,
                                 initial,
                                 None if wname is None else (wname,) + idx, n)
        if idx[axis] == nb[axis] - 1:
            okey = idx[:axis] + ((0,) if keepdims else ()) + idx[axis + 1:]
            outs[(oname,) + okey] = (_fold_finish, (sname,) + idx, ufunc, axis, keepdims)
    if nb[axis] == 0:
        raise ValueError("zero-size array to reduction operation %s which has no identity"
                         % ufunc.__name__)
    chunks = x.chunks[:axis] + (((1,),) if keepdims else ()) + x.chunks[axis + 1:]
    return _red.new_array(x, {sname: steps, oname: outs}, oname, chunks, dtype)


def _fast_reduce(ufunc, x, axes, dtype, keepdims):
    """cdask's own reduction doing what ``ufunc.reduce`` does, or None."""
    if not axes or x.dtype.hasobject:
        return None
    kw = dict(axis=axes, keepdims=keepdims)
    if ufunc is np.add and len(axes) == x.ndim:
        # (along some axes only, NumPy's order within each block is faster
        # than sum's, which makes the reduced axes contiguous first)
        return _red.sum(x, dtype=dtype, **kw)
    if ufunc is np.multiply:
        return _red.prod(x, dtype=dtype, **kw)
    if dtype != x.dtype:
        return None
    if ufunc is np.maximum:
        return _red.max(x, **kw)
    if ufunc is np.minimum:
        return _red.min(x, **kw)
    if x.dtype == bool and ufunc is np.logical_or:
        return _red.any(x, **kw)
    if x.dtype == bool and ufunc is np.logical_and:
        return _red.all(x, **kw)
    return None


def reduce(ufunc, array, axis=0, dtype=None, out=None, keepdims=False, initial=_NoValue,
           where=True):
    """``ufunc.reduce(array, ...)`` (NumPy's signature) as a lazy cdask Array."""
    _check_method(ufunc, "reduce")
    x = _data(asarray(array))
    out = _single_out(out, "reduce")
    has_where = not (isinstance(where, bool) and where)
    kw = {} if initial is _NoValue else {"initial": initial}
    sample = np.ones(_sample_shape(x), dtype=x.dtype)
    with np.errstate(all="ignore"):
        wsample = True if not has_where else np.ones(_sample_shape(x), dtype=bool)
        rdt = ufunc.reduce(sample, axis=axis, dtype=dtype, keepdims=keepdims, where=wsample,
                           **kw).dtype
    if initial is _NoValue or initial is None:
        initial = None
    else:
        initial = np.asarray(initial).astype(rdt)[()]
    axes = normalize_axis(axis, x.ndim) if x.ndim else ()   # (NumPy takes axis 0 of a 0-d)
    start = initial if initial is not None else ufunc.identity
    if start is not None:
        start = np.asarray(start).astype(rdt)[()]
    if not axes:
        # each element alone: NumPy starts from the identity (or initial)
        if has_where:       # (NumPy then has a start: an identity or initial)
            return _into(out, elemwise(_StartWhere(ufunc, start, rdt), x, where))
        r = x if start is None else elemwise(ufunc, start, x)
        return _into(out, r.astype(rdt) if r.dtype != rdt else r)
    if has_where and not _reorderable(ufunc):
        return _into(out, _fold(ufunc, x, axes[0], rdt, keepdims, initial, where))
    if has_where:
        # the identity (or initial, which NumPy then requires) where masked
        fill = np.asarray(ufunc.identity if ufunc.identity is not None else initial)
        xl = x.astype(rdt) if x.dtype != rdt else x
        x = elemwise(np.where, where, xl, fill.astype(rdt)[()])
    if initial is None or ufunc.identity is not None:
        r = _fast_reduce(ufunc, x, axes, rdt, keepdims)
        if r is not None:
            if initial is not None:
                r = elemwise(ufunc, initial, r, dtype=rdt)
            return _into(out, r)
    if not _reorderable(ufunc):
        return _into(out, _fold(ufunc, x, axes[0], rdt, keepdims, initial))
    block_initial = initial if ufunc.identity is None else None
    token = tokenize("ufunc-reduce", ufunc.__name__, x.name, axes, keepdims, str(rdt), initial)
    r = _red.reduction_tree(x, "%s-reduce" % ufunc.__name__, token, axes, keepdims, rdt, None,
                   chunk=_chunk_reduce, chunk_args=(axes, ufunc, rdt, block_initial),
                   combine=_combine_reduce, combine_args=(ufunc,),
                   aggregate=_agg_reduce, aggregate_args=(ufunc, rdt, initial, axes, keepdims))
    return _into(out, r)


# ---------------------------------------------------------------------------
# accumulate
# ---------------------------------------------------------------------------
@_caller_errstate
def _scan_step(b, prev, axis, ufunc, dtype, n=None):
    """NumPy's accumulate of the block ``b`` continuing from the step ``prev``
    before it along ``axis`` (None for the first): ``(output block, carry)``,
    the carry the last slice so far (keepdims; None before any element).

    The same operations as NumPy's, in its order (so its bits).  Along an axis
    that is not the last, slice after slice with the ufunc over whole slices
    (NumPy's accumulate would step through memory with the axis' stride)."""
    carry = None if prev is None else prev[1]
    b = np.asarray(b)
    total, n = n, b.shape[axis]     # the axis' length, the block's
    if n == 0:
        return b.astype(dtype), carry
    lead = (slice(None),) * axis
    if b.size == 0:
        t = b.astype(dtype)
        return t, t[lead + (slice(n - 1, n),)]
    if axis != b.ndim - 1 and b.size // n >= _SLICE_MIN and _rows_exact(ufunc, dtype):
        t = np.empty(b.shape, dtype=dtype)
        last = carry
        for i in range(n):
            sl = lead + (slice(i, i + 1),)
            if last is None:
                t[sl] = b[sl]
            else:
                ufunc(last, b[sl], out=t[sl], dtype=dtype)
            last = t[sl]
        return t, last
    if axis == b.ndim - 1 and ufunc in _MINMAX_SCAN:
        t = _minmax_rows(ufunc, b, carry, dtype)
        if t is not None:
            return t, t[lead + (slice(n - 1, n),)]
    if carry is None:
        t = _numpy_accumulate(ufunc, b, axis, dtype, total)
        return t, t[lead + (slice(n - 1, n),)]
    if not _rows_exact(ufunc, dtype):
        # NumPy's accumulate on the carry and the block: its loop, its bits
        both = np.concatenate([carry, b.astype(dtype, copy=False)], axis=axis)
        t = _numpy_accumulate(ufunc, both, axis, dtype, total)[lead + (slice(1, None),)]
        return t, t[lead + (slice(n - 1, n),)]
    # NumPy's accumulate in place on a copy, piece by piece small enough to
    # stay in cache between the copy and the scan (along the axis for 1-d
    # blocks, across it otherwise)
    t = np.empty(b.shape, dtype=dtype)
    if b.ndim == 1:
        step = builtins.max(_PIECE // t.itemsize, 1)
        last = carry
        for i in range(0, n, step):
            dst = t[i:i + step]
            _scan_piece(ufunc, b[i:i + step], dst, last, 0, dtype)
            last = dst[-1:]
        return t, last
    if axis == 0:
        _scan_piece(ufunc, b, t, carry, axis, dtype)
        return t, t[lead + (slice(n - 1, n),)]
    step = builtins.max(_PIECE // (t[0].size * t.itemsize or 1), 1)
    for r in range(0, b.shape[0], step):
        _scan_piece(ufunc, b[r:r + step], t[r:r + step], carry[r:r + step], axis, dtype)
    return t, t[lead + (slice(n - 1, n),)]


_MINMAX_SCAN = {np.maximum: True, np.minimum: False}


def _minmax_rows(ufunc, b, carry, dtype):
    """maximum/minimum accumulate along the last axis of ``b`` from ``carry``
    in C (kernels/scan.h: NumPy's bits, several times its speed), or None
    where the C loop does not take the dtype."""
    if b.dtype != np.dtype(dtype) or b.ndim == 0:
        return None
    n = b.shape[-1]
    src = b if b.ndim == 2 else np.ascontiguousarray(b).reshape(-1, n)
    t = np.empty(b.shape, dtype=dtype)
    c = None if carry is None else np.ascontiguousarray(carry, dtype=dtype).reshape(-1)
    if not scan_minmax(_MINMAX_SCAN[ufunc], src.reshape(-1, n) if src.ndim != 2 else src,
                        t.reshape(-1, n), c):
        return None
    return t


def _scan_piece(ufunc, src, dst, carry, axis, dtype):
    dst[...] = src
    if carry is not None:
        first = (slice(None),) * axis + (slice(0, 1),)
        ufunc(carry, dst[first], out=dst[first], dtype=dtype)
    ufunc.accumulate(dst, axis=axis, dtype=dtype, out=dst)


# ufuncs whose elementwise loop gives the bits of their accumulate loop on
# floats (exactly rounded IEEE operations); on integers and booleans every
# ufunc does.  The others (complex multiply, transcendental functions) may
# round differently in NumPy's SIMD loops: they scan by NumPy's accumulate
# of the carry and the block.
_ROWS_EXACT = frozenset([np.add, np.subtract, np.multiply, np.divide, np.maximum,
                         np.minimum, np.fmax, np.fmin, np.copysign, np.nextafter])


def _rows_exact(ufunc, dtype):
    kind = np.dtype(dtype).kind
    return kind in "biu" or (kind == "f" and ufunc in _ROWS_EXACT)


_PIECE = 1 << 18     # bytes


# slices of fewer elements are left to NumPy's accumulate (one call per
# slice would cost more than its strided loop)
_SLICE_MIN = 256


def _scan_out(step):
    return step[0]


# ufuncs whose accumulate over a block continues exactly as the ufunc of the
# carry and the block's own accumulate, for any dtype (maximum and minimum
# select one element, NaN first, else the last maximal one, in NumPy's
# elementwise and accumulate loops alike) or for integers and booleans
# (associative operations, wrapping): such scans run their blocks' own
# accumulates all at once, then apply the carries
_CARRY_LATER = frozenset([np.maximum, np.minimum])
_CARRY_LATER_INT = frozenset([np.add, np.multiply, np.bitwise_and, np.bitwise_or,
                              np.bitwise_xor, np.logical_and, np.logical_or])


def _carry_later(ufunc, xdtype, dtype):
    if ufunc in _CARRY_LATER:
        return True
    return (ufunc in _CARRY_LATER_INT and np.dtype(xdtype).kind in "biu"
            and np.dtype(dtype).kind in "biu")


@_caller_errstate
def _local_scan(b, axis, ufunc, dtype):
    """The block's own accumulate along ``axis`` and (a copy of) its last slice."""
    t, last = _scan_step(b, None, axis, ufunc, dtype)
    return t, None if last is None else last.copy()


@_caller_errstate
def _carry_step(prev, local, ufunc, dtype):
    """The scan's value at the end of the block ``local`` (its carry in
    ``prev``, None for the first block)."""
    last = local[1]
    if prev is None or last is None:
        return last if prev is None else prev
    return ufunc(prev, last, dtype=dtype)


@_caller_errstate
def _apply_carry(local, carry, ufunc, dtype):
    """The block's scan: its own accumulate continued from ``carry``, in place
    (the local result is read by this task only; the next carry reads its
    copied last slice)."""
    t = local[0]
    if carry is not None and t.size:     # (None: the blocks before are empty)
        ufunc(carry, t, out=t, dtype=dtype)
    return t


@_caller_errstate
def _apply_carry_into(region, local, carry, ufunc, dtype):
    # compute() stores the block straight into its result (blockio.sink_writers)
    if carry is None:
        region[...] = local[0]
    elif region.size:
        ufunc(carry, local[0], out=region, dtype=dtype)


_apply_carry.into = _apply_carry_into


def _accumulate_carry_later(ufunc, x, axis, rdt, token):
    """accumulate as ``_carry_later`` allows: every block's accumulate at once,
    a chain of carries over their last slices, each block then combined with
    its carry in one elementwise pass."""
    lname = "%s-scanlocal-%s" % (ufunc.__name__, token)
    cname = "%s-scancarry-%s" % (ufunc.__name__, token)
    oname = "%s-accumulate-%s" % (ufunc.__name__, token)
    local, carry, outs = {}, {}, {}
    for idx in product(*map(range, x.numblocks)):
        local[(lname,) + idx] = (_local_scan, (x.name,) + idx, axis, ufunc, rdt)
        j = idx[axis]
        before = idx[:axis] + (j - 1,) + idx[axis + 1:]
        if j == 0:
            outs[(oname,) + idx] = (_scan_out, (lname,) + idx)
            continue
        carry[(cname,) + before] = (_carry_step, (cname,) + idx[:axis] + (j - 2,) + idx[axis + 1:]
                                    if j > 1 else None, (lname,) + before, ufunc, rdt)
        outs[(oname,) + idx] = (_apply_carry, (lname,) + idx, (cname,) + before, ufunc, rdt)
    return _red.new_array(x, {lname: local, cname: carry, oname: outs}, oname, x.chunks, rdt)


def accumulate(ufunc, array, axis=0, dtype=None, out=None):
    """``ufunc.accumulate(array, axis, dtype)`` as a lazy cdask Array."""
    _check_method(ufunc, "accumulate")
    x = _data(asarray(array))
    out = _single_out(out, "accumulate")
    with np.errstate(all="ignore"):
        rdt = ufunc.accumulate(np.ones(_sample_shape(x), dtype=x.dtype), axis=axis,
                               dtype=dtype).dtype
    if axis is None:
        axis = 0
    axis = normalize_axis_index(axis, x.ndim)
    token = tokenize("ufunc-accumulate", ufunc.__name__, x.name, axis, str(rdt))
    if x.numblocks[axis] > 1 and _carry_later(ufunc, x.dtype, rdt):
        return _into(out, _accumulate_carry_later(ufunc, x, axis, rdt, token))
    sname = "%s-scan-%s" % (ufunc.__name__, token)
    oname = "%s-accumulate-%s" % (ufunc.__name__, token)
    steps, outs = {}, {}
    for idx in product(*map(range, x.numblocks)):
        prev = None
        if idx[axis] > 0:
            prev = (sname,) + idx[:axis] + (idx[axis] - 1,) + idx[axis + 1:]
        steps[(sname,) + idx] = (_scan_step, (x.name,) + idx, prev, axis, ufunc, rdt,
                                 x.shape[axis])
        outs[(oname,) + idx] = (_scan_out, (sname,) + idx)
    return _into(out, _red.new_array(x, {sname: steps, oname: outs}, oname, x.chunks, rdt))


# ---------------------------------------------------------------------------
# outer
# ---------------------------------------------------------------------------
def outer(ufunc, A, B, **kwargs):
    """``ufunc.outer(A, B)``: ``ufunc(A[..., None, ...], B)`` with the result
    of shape ``A.shape + B.shape`` (a tuple for several outputs)."""
    _check_method(ufunc, "outer")
    A, B = asarray(A), asarray(B)
    A = A[(Ellipsis,) + (None,) * B.ndim]
    return call(ufunc, (A, B), kwargs)


# ---------------------------------------------------------------------------
# reduceat
# ---------------------------------------------------------------------------
@_caller_errstate
def _reduceat_block(blocks, lo, hi, idx, extra, axis, ufunc, dtype):
    data = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=axis)
    data = data[(slice(None),) * axis + (slice(lo, hi),)]
    r = ufunc.reduceat(data, list(idx) + list(extra), axis=axis, dtype=dtype)
    if extra:
        r = r[(slice(None),) * axis + (slice(0, len(idx)),)]
    return r


def reduceat(ufunc, array, indices, axis=0, dtype=None, out=None):
    """``ufunc.reduceat(array, indices, axis, dtype)`` as a lazy cdask Array."""
    _check_method(ufunc, "reduceat")
    x = _data(asarray(array))
    out = _single_out(out, "reduceat")
    if isinstance(indices, Array):
        indices = indices.compute()
    indices = np.asarray(indices)
    if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
        # NumPy's own complaint about the indices
        ufunc.reduceat(np.ones(1, x.dtype), indices, dtype=dtype)
    indices = indices.astype(np.intp)
    axis = normalize_axis_index(axis, x.ndim)
    n = x.shape[axis]
    if n != n:
        raise unknown_chunks_error("%s.reduceat" % ufunc.__name__)
    for i in indices:
        if not 0 <= i < n:
            raise IndexError("index %d out-of-bounds in %s.reduceat [0, %d)"
                             % (i, ufunc.__name__, n))
    with np.errstate(all="ignore"):
        rdt = ufunc.reduceat(np.ones(_sample_shape(x), dtype=x.dtype), [0] if n else [],
                             axis=axis, dtype=dtype).dtype
    m = len(indices)
    stops = [int(indices[i + 1]) if i + 1 < m and indices[i] < indices[i + 1] else
             (int(indices[i]) + 1 if i + 1 < m else n) for i in range(m)]
    starts = [int(i) for i in indices]
    bounds = np.cumsum((0,) + x.chunks[axis])     # where each block starts
    limit = 2 * builtins.max(x.chunks[axis] or (1,))
    groups, cur = [], []
    for i in range(m):
        if cur:
            lo = builtins.min(starts[j] for j in cur + [i])
            hi = builtins.max(stops[j] for j in cur + [i])
            if hi - lo > limit:
                groups.append(cur)
                cur = []
        cur.append(i)
    if cur:
        groups.append(cur)
    token = tokenize("ufunc-reduceat", ufunc.__name__, x.name, indices.tobytes(), axis, str(rdt))
    oname = "%s-reduceat-%s" % (ufunc.__name__, token)
    tasks = {}
    others = [range(nb) for k, nb in enumerate(x.numblocks) if k != axis]
    for g, grp in enumerate(groups):
        lo = builtins.min(starts[j] for j in grp)
        hi = builtins.max(stops[j] for j in grp)
        b0 = int(np.searchsorted(bounds, lo, side="right")) - 1
        b1 = int(np.searchsorted(bounds, hi, side="left"))
        local = [starts[j] - lo for j in grp]
        last_stop = stops[grp[-1]]
        extra = [last_stop - lo] if last_stop < hi else []
        for rest in product(*others):
            keys = [(x.name,) + rest[:axis] + (b,) + rest[axis:] for b in range(b0, b1)]
            off = int(bounds[b0])
            tasks[(oname,) + rest[:axis] + (g,) + rest[axis:]] = (
                _reduceat_block, keys, lo - off, hi - off, local, extra, axis, ufunc, rdt)
    chunks = x.chunks[:axis] + (tuple(len(g) for g in groups) or (0,),) + x.chunks[axis + 1:]
    if not groups:
        return _into(out, empty(x.shape[:axis] + (0,) + x.shape[axis + 1:], dtype=rdt,
                                chunks=chunks))
    return _into(out, _red.new_array(x, {oname: tasks}, oname, chunks, rdt))


# ---------------------------------------------------------------------------
# __array_ufunc__
# ---------------------------------------------------------------------------
_METHODS = {"reduce": reduce, "accumulate": accumulate, "outer": outer, "reduceat": reduceat}


def dispatch(ufunc, method, inputs, kwargs):
    """``ufunc.<method>(*inputs, **kwargs)`` on cdask Arrays (``__call__``
    with several outputs, ``reduce``, ``accumulate``, ``outer``, ``reduceat``);
    NotImplemented for ``at`` (an in-place update cdask Arrays cannot take)."""
    if method == "__call__":
        return call(ufunc, inputs, kwargs)
    f = _METHODS.get(method)
    if f is None:
        return NotImplemented
    return f(ufunc, *inputs, **kwargs)
