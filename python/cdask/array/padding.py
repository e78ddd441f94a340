"""``pad``: NumPy's ``np.pad``, every mode, on chunked arrays.

The array is padded one axis after the other, as NumPy does (so the corners
get what NumPy gives them): along each axis the result is the current array
joined between a left and a right pad (``concatenate``: the array's own
blocks are kept as they are).  A pad is

* ``constant`` / ``empty``: blocks of one value (or unset memory);
* ``edge``: the edge slab broadcast; ``linear_ramp``: NumPy's ``linspace``
  from the end value to the edge slab, one task per block of the slab;
* ``maximum`` / ``minimum`` / ``mean`` / ``median``: the statistic of the
  ``stat_length`` slab next to the edge, broadcast: NumPy's on a slab of one
  block along the axis (the median's always is), else a tree reduction;
* ``reflect`` / ``symmetric`` / ``wrap``: the positions they copy, taken with
  integer indexing, so a pad reads only the blocks at that edge, and pads
  wider than the axis repeat the pattern as NumPy's do (``reflect_type=
  'odd'`` for pads up to one reflection: ``2 * edge - reflected``);
* a callable: NumPy's protocol (``func(vector, iaxis_pad_width, iaxis,
  kwargs)`` changing each vector in place), on blocks spanning the axis.
"""

import numpy as np

from .chunks import normalize_chunks
from .creation import asarray, empty
from .joining import concatenate
from .mapping import map_blocks
from .reductions import any as _any, max as _max, mean as _mean, min as _min
from .routines import around as _around
from .reshape import broadcast_to
from .utils import chunks_known, unknown_chunks_error

__all__ = ["pad"]

_ALLOWED = {
    "empty": (), "edge": (), "wrap": (), "constant": ("constant_values",),
    "linear_ramp": ("end_values",), "maximum": ("stat_length",), "mean": ("stat_length",),
    "median": ("stat_length",), "minimum": ("stat_length",), "reflect": ("reflect_type",),
    "symmetric": ("reflect_type",),
}
_STATS = {"maximum": np.amax, "minimum": np.amin, "mean": np.mean, "median": np.median}
# statistics of slabs spanning several blocks, as tree reductions (the median
# needs the slab in one block)
_TREE = {"maximum": _max, "minimum": _min, "mean": _mean}


def _as_pairs(x, ndim, as_index=False):
    """NumPy's reading of a per-axis (before, after) argument."""
    if x is None:
        return ((None, None),) * ndim
    x = np.array(x)
    if as_index:
        x = np.round(x).astype(np.intp, copy=False)
    if x.ndim < 3:
        if x.size == 1:
            x = x.ravel()
            if as_index and x[0] < 0:
                raise ValueError("index can't contain negative values")
            return ((x[0], x[0]),) * ndim
        if x.size == 2 and x.shape != (2, 1):
            x = x.ravel()
            if as_index and (x[0] < 0 or x[1] < 0):
                raise ValueError("index can't contain negative values")
            return ((x[0], x[1]),) * ndim
    if as_index and x.size and x.min() < 0:
        raise ValueError("index can't contain negative values")
    try:
        b = np.broadcast_to(x, (ndim, 2))
    except ValueError:
        raise ValueError("operands could not be broadcast together with remapped shapes "
                         "[original->remapped]: %s and requested shape (%d,2)"
                         % (x.shape, ndim)) from None
    return tuple(tuple(row) for row in b.tolist())


def _along(axis, ndim, index):
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


def _value(v, dtype):
    out = np.empty((), dtype=dtype)
    out[...] = v              # NumPy's assignment casting, as np.pad's
    return out


def _pad_chunks(cur, axis, width):
    big = max(cur.chunks[axis]) if cur.chunks[axis] and max(cur.chunks[axis]) else width
    c = list(cur.chunks)
    c[axis] = normalize_chunks((big,), (width,))[0]
    return tuple(c)


def _shape_with(cur, axis, width):
    s = list(cur.shape)
    s[axis] = width
    return tuple(s)


def _ramp_parts(edge, end, width, axis):
    # np.linspace(end, edge, width, endpoint=False, axis=axis), step by step
    # (NumPy keeps a Python scalar end value weak)
    start = end if type(end) in (int, float, complex) else np.asarray(end)
    stop = np.asarray(edge.squeeze(axis))
    dt = np.result_type(start, stop)
    if dt.kind not in "fc":
        dt = np.result_type(dt, 1.0)
    delta = np.subtract(stop, start, dtype=dt.type)
    return start, dt, delta


def _ramp_zero_step(edge, end, width, axis):
    """Where NumPy's linspace step is 0 (NumPy then computes every element of
    the ramp another way, so the choice must be made over the whole slab)."""
    _, _, delta = _ramp_parts(edge, end, width, axis)
    return np.expand_dims(delta / width == 0, axis)


def _ramp_block(edge, zero_anywhere, end, width, axis, reverse):
    start, dt, delta = _ramp_parts(edge, end, width, axis)
    y = np.arange(0, width, dtype=dt).reshape((-1,) + (1,) * np.ndim(delta))
    if zero_anywhere:
        y /= width
        y = y * delta
    else:
        y = y * (delta / width)
    y += start
    y = np.moveaxis(y, 0, axis)
    if np.issubdtype(edge.dtype, np.integer):
        np.floor(y, out=y)
    y = y.astype(edge.dtype, copy=False)
    return y[_along(axis, y.ndim, slice(None, None, -1))] if reverse else y


def _stat_block(b, func, axis, dtype):
    r = func(b, axis=axis, keepdims=True)
    if np.issubdtype(dtype, np.integer):
        r = np.round(r)
    return r.astype(dtype)


def _reuse_positions(mode, n, ks):
    """Input positions of the pad elements at distances ``ks`` (negative:
    before the start, >= n: after the end) for reflect/symmetric/wrap."""
    if mode == "wrap":
        return np.mod(ks, n)
    if n == 1:
        return np.zeros_like(ks)
    if mode == "reflect":
        p = 2 * (n - 1)
        m = np.mod(ks, p)
        return np.where(m > n - 1, p - m, m)
    p = 2 * n
    m = np.mod(ks, p)
    return np.where(m >= n, p - 1 - m, m)


def _udf_block(b, func, width, axis, kwargs):
    b = np.array(b, copy=True)
    view = np.moveaxis(b, axis, -1)
    for ind in np.ndindex(view.shape[:-1]):
        func(view[ind + (Ellipsis,)], width, axis, kwargs)
    return b


def _pad_axis(cur, axis, wl, wr, mode, opts):
    nd = cur.ndim
    n = int(cur.shape[axis])
    dtype = cur.dtype
    sides = [(0, wl), (1, wr)]
    pads = [None, None]
    if mode in ("constant", "empty"):
        for side, w in sides:
            if not w:
                continue
            shape, chunks = _shape_with(cur, axis, w), _pad_chunks(cur, axis, w)
            if mode == "empty":
                pads[side] = empty(shape, dtype=dtype, chunks=chunks)
            else:
                v = asarray(_value(opts["constant_values"][axis][side], dtype))
                pads[side] = broadcast_to(v, shape, chunks=chunks)
    elif mode in ("edge", "linear_ramp"):
        for side, w in sides:
            if not w:
                continue
            edge = cur[_along(axis, nd, slice(0, 1) if side == 0 else slice(n - 1, n))]
            shape = _shape_with(cur, axis, w)
            if mode == "edge":
                pads[side] = broadcast_to(edge, shape, chunks=_shape_chunks(cur, axis, w))
            else:
                end = opts["end_values"][axis][side]
                c = list(edge.chunks)
                c[axis] = (w,)
                zero = _any(map_blocks(_ramp_zero_step, edge, end, w, axis, dtype=bool,
                                       token="linear_ramp_step"))
                pads[side] = map_blocks(_ramp_block, edge, zero, end, w, axis, side == 1,
                                        chunks=tuple(c), dtype=dtype, token="linear_ramp")
    elif mode in _STATS:
        lengths = list(opts["stat_length"][axis])
        for side, w in sides:
            if not w:
                continue
            L = n if lengths[side] is None or lengths[side] > n else int(lengths[side])
            win = cur[_along(axis, nd, slice(0, L) if side == 0 else slice(n - L, n))]
            if len(win.chunks[axis]) > 1 and mode in _TREE:
                # a slab of several blocks: a tree reduction, streamed
                stat = _TREE[mode](win, axis=axis, keepdims=True)
                if mode == "mean" and np.issubdtype(dtype, np.integer):
                    stat = _around(stat)
                stat = stat.astype(dtype)
            else:
                if len(win.chunks[axis]) > 1:
                    win = win.rechunk({axis: -1})
                c = list(win.chunks)
                c[axis] = (1,)
                stat = map_blocks(_stat_block, win, _STATS[mode], axis, dtype,
                                  chunks=tuple(c), dtype=dtype, token="pad_" + mode)
            pads[side] = broadcast_to(stat, _shape_with(cur, axis, w),
                                      chunks=_shape_chunks(cur, axis, w))
    else:
        odd = opts.get("reflect_type", "even") == "odd"
        for side, w in sides:
            if not w:
                continue
            ks = np.arange(-w, 0) if side == 0 else np.arange(n, n + w)
            part = cur[_along(axis, nd, _reuse_positions(mode, n, ks))]
            if odd and n > 1:
                edge = cur[_along(axis, nd, slice(0, 1) if side == 0 else slice(n - 1, n))]
                part = (2 * edge - part).astype(dtype)
            pads[side] = part
    parts = [p for p in (pads[0], cur, pads[1]) if p is not None]
    return parts[0] if len(parts) == 1 else concatenate(parts, axis=axis)


def _shape_chunks(cur, axis, w):
    c = list(cur.chunks)
    c[axis] = (w,)
    return tuple(c)


def pad(array, pad_width, mode="constant", **kwargs):
    """``np.pad``: ``array`` padded by ``pad_width`` (before, after) per axis
    in any of NumPy's modes, with their keyword arguments."""
    x = asarray(array)
    pw = np.asarray(pad_width)
    if pw.dtype.kind not in "iu":
        raise TypeError("`pad_width` must be of integral type.")
    widths = [(int(a), int(b)) for a, b in _as_pairs(pw, x.ndim, as_index=True)]
    if any(a or b for a, b in widths) and not chunks_known(x):
        raise unknown_chunks_error("pad")
    if callable(mode):
        y = pad(x, widths, "constant", constant_values=0)
        chunks = y.chunks
        for axis in range(y.ndim):
            if len(y.chunks[axis]) > 1:
                y = y.rechunk({axis: -1})
            y = map_blocks(_udf_block, y, mode, widths[axis], axis, kwargs, dtype=y.dtype,
                           token="pad_udf")
            if y.chunks != chunks:
                y = y.rechunk(chunks)
        return y
    if mode not in _ALLOWED:
        raise ValueError("mode '%s' is not supported" % (mode,))
    unsupported = set(kwargs) - set(_ALLOWED[mode])
    if unsupported:
        raise ValueError("unsupported keyword arguments for mode '%s': %s"
                         % (mode, unsupported))
    opts = {}
    if mode == "constant":
        opts["constant_values"] = _as_pairs(kwargs.get("constant_values", 0), x.ndim)
        if x.ndim and "constant_values" in kwargs:
            # NumPy assigns every value, even where nothing is padded: a
            # Python int out of the dtype's range raises OverflowError there
            np.pad(np.empty((0,) * x.ndim, dtype=x.dtype), 0, "constant",
                   constant_values=kwargs["constant_values"])
    elif mode == "linear_ramp":
        opts["end_values"] = _as_pairs(kwargs.get("end_values", 0), x.ndim)
    elif mode in _STATS:
        sl = kwargs.get("stat_length")
        opts["stat_length"] = _as_pairs(sl, x.ndim, as_index=sl is not None)
        if mode in ("maximum", "minimum") and x.size:
            for d, (a, b) in enumerate(opts["stat_length"]):
                n = x.shape[d]
                if min(n, n if a is None else a) == 0 or min(n, n if b is None else b) == 0:
                    raise ValueError("stat_length of 0 yields no value for padding")
    elif mode in ("reflect", "symmetric"):
        rt = kwargs.get("reflect_type", "even")
        if rt not in ("even", "odd"):
            raise ValueError("reflect_type must be 'even' or 'odd', got %r" % (rt,))
        opts["reflect_type"] = rt
    if mode not in ("constant", "empty"):
        for d, (a, b) in enumerate(widths):
            if x.shape[d] == 0 and (a or b):
                raise ValueError("can't extend empty axis %d using modes other than "
                                 "'constant' or 'empty'" % d)
    if opts.get("reflect_type") == "odd":
        for d, (a, b) in enumerate(widths):
            n = x.shape[d]
            reach = n - 1 if mode == "reflect" else n
            if n > 1 and max(a, b) > reach:
                raise NotImplementedError(
                    "pad: reflect_type='odd' with a pad wider than one reflection (axis %d: "
                    "%d > %d) is not supported" % (d, max(a, b), reach))
    if x.size == 0 and mode != "constant":
        # nothing to copy: NumPy returns the padded shape (of size 0 too)
        shape = tuple(int(s) + a + b for s, (a, b) in zip(x.shape, widths))
        return empty(shape, dtype=x.dtype, chunks=normalize_chunks("auto", shape, dtype=x.dtype))
    y = x
    for axis, (wl, wr) in enumerate(widths):
        if wl or wr:
            y = _pad_axis(y, axis, wl, wr, mode, opts)
    return y

