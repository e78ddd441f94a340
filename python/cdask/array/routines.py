"""Array routines: ``where``, ``clip``, ``isnan``..., ``compute_chunk_sizes``,
``nonzero`` and the ``__array_function__`` table.

``array_function(func, types, args, kwargs)`` is what ``Array.__array_function__``
(core.py) calls for ``np.<func>(cdask_array, ...)``:

* NumPy functions in the table (``np.sum``, ``np.mean``, ``np.where``,
  ``np.clip``, ``np.std``, every reduction...) return lazy cdask Arrays; the
  call is bound to the NumPy function's own signature first, so positional
  arguments mean what they mean to NumPy;
* functions cdask provides under the same name elsewhere in the package
  (``cdask.<name>``, e.g. creation or ufunc functions) are used likewise;
* anything else: the cdask arguments are computed, with a
  :class:`NotLazyWarning` (dask warns too), and NumPy is called.
"""

import functools
import inspect
import itertools
import math
import warnings

import numpy as np

from . import reductions as _red
from .tokenize import tokenize

__all__ = [
    "where", "clip", "isnan", "isfinite", "isinf", "isposinf", "isneginf", "isclose",
    "allclose", "nonzero", "argwhere", "flatnonzero", "compute_chunk_sizes", "count_nonzero",
    "squeeze", "swapaxes", "NotLazyWarning",
]

count_nonzero = _red.count_nonzero


class NotLazyWarning(UserWarning):
    """A NumPy function without a cdask implementation was called on a cdask
    Array: the arrays were computed and NumPy was called on the results."""


def _core():
    from . import core
    return core


def _Array():
    return _core().Array


def _elemwise(*args, **kwargs):
    return _core().elemwise(*args, **kwargs)


def _asarray(x):
    return _red._asarray(x)


# ---------------------------------------------------------------------------
# elementwise routines
# ---------------------------------------------------------------------------
def where(condition, x=None, y=None):
    """``np.where``: elements of ``x`` where ``condition`` is true, else of ``y``
    (NumPy broadcasting); with only ``condition``, ``nonzero(condition)``."""
    if x is None and y is None:
        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    return _elemwise(np.where, condition, x, y)


def _no_value(v):
    return v is None or v is np._NoValue


def clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue,
         max=np._NoValue, **kwargs):
    """``np.clip``: limit the values to ``[a_min, a_max]`` (either may be None)."""
    if not _no_value(min):
        if not _no_value(a_min):
            raise ValueError("Passing `min` or `max` keyword argument when `a_min` and "
                             "`a_max` are provided is forbidden.")
        a_min = min
    if not _no_value(max):
        if not _no_value(a_max):
            raise ValueError("Passing `min` or `max` keyword argument when `a_min` and "
                             "`a_max` are provided is forbidden.")
        a_max = max
    lo = None if _no_value(a_min) else a_min
    hi = None if _no_value(a_max) else a_max
    Array = _Array()
    if lo is None and hi is None:
        r = _asarray(a) if not isinstance(a, Array) else a
        r = _elemwise(np.positive, r) if r.dtype.kind != "b" else r
    elif lo is None:
        r = _elemwise(np.minimum, a, hi, **kwargs)
    elif hi is None:
        r = _elemwise(np.maximum, a, lo, **kwargs)
    else:
        r = _elemwise(np.clip, a, lo, hi, **kwargs)
    if out is not None:
        if isinstance(out, tuple):
            out = out[0]
        if not isinstance(out, Array):
            raise TypeError("out= must be a cdask Array")
        if r.dtype != out.dtype:
            r = r.astype(out.dtype)
        out._become(r)
        return out
    return r


def isnan(x):
    """``np.isnan`` elementwise."""
    return _elemwise(np.isnan, x)


def isfinite(x):
    """``np.isfinite`` elementwise."""
    return _elemwise(np.isfinite, x)


def isinf(x):
    """``np.isinf`` elementwise."""
    return _elemwise(np.isinf, x)


def isposinf(x):
    """``np.isposinf`` elementwise."""
    return _elemwise(np.isposinf, x, dtype=bool)


def isneginf(x):
    """``np.isneginf`` elementwise."""
    return _elemwise(np.isneginf, x, dtype=bool)


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``np.isclose`` elementwise."""
    return _elemwise(np.isclose, a, b, dtype=bool, rtol=rtol, atol=atol, equal_nan=equal_nan)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``np.allclose`` as a lazy 0-d bool Array."""
    return _red.all(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


# ---------------------------------------------------------------------------
# chunk sizes
# ---------------------------------------------------------------------------
def _block_shape(b):
    return np.shape(b)


def compute_chunk_sizes(x, **kwargs):
    """Fill in unknown (nan) chunk sizes of ``x`` in place and return ``x``.

    Only the blocks needed to learn the missing sizes are computed (for each
    axis with unknown sizes, one line of blocks along it), and only their
    shapes come back.
    """
    Array = _Array()
    if not isinstance(x, Array):
        raise TypeError("compute_chunk_sizes needs a cdask Array")
    chunks = x.chunks
    unknown_axes = [a for a, c in enumerate(chunks)
                    if any(isinstance(v, float) and math.isnan(v) for v in c)]
    if not unknown_axes:
        return x
    nb = x.numblocks
    wanted = set()
    for a in unknown_axes:
        for i in range(nb[a]):
            idx = [0] * x.ndim
            idx[a] = i
            wanted.add(tuple(idx))
    wanted = sorted(wanted)
    name = "chunk-shape-" + tokenize(x.name, "chunk-shape")
    g = x.__dask_graph__().copy()
    keys = []
    for idx in wanted:
        k = (name,) + idx
        g[k] = (_block_shape, (x.name,) + idx)
        keys.append(k)
    from .. import get
    kw = {k: v for k, v in kwargs.items() if k not in ("scheduler", "optimize_graph")}
    shapes = dict(zip(wanted, get(g, keys, **kw)))
    new = list(chunks)
    for a in unknown_axes:
        sizes = []
        for i in range(nb[a]):
            idx = [0] * x.ndim
            idx[a] = i
            sizes.append(int(shapes[tuple(idx)][a]))
        new[a] = tuple(sizes)
    new = tuple(new)
    become = getattr(x, "_become", None)
    if become is not None:
        become(Array(x._layers, x.name, new, x.dtype))
    else:  # pragma: no cover - older core
        x._chunks = new
        x._shape = None
    return x


# ---------------------------------------------------------------------------
# nonzero / argwhere
# ---------------------------------------------------------------------------
def _nonzero_block(b, offsets):
    nz = np.nonzero(b)
    if not nz:
        return np.zeros((0, int(np.count_nonzero(b))), dtype=np.intp)
    return np.stack([i + o for i, o in zip(nz, offsets)]).astype(np.intp, copy=False) \
        if nz else np.zeros((0, 0), np.intp)


def _row(b, k):
    return np.ascontiguousarray(b[k])


def _argwhere_block(b):
    return np.ascontiguousarray(b.T)


def _nonzero_stacked(a):
    """(name, nblocks, layers): per block an (ndim, m) int array of global indices,
    blocks in C order of the whole array."""
    a = _asarray(a)
    if any(len(c) > 1 for c in a.chunks[1:]):
        # blocks along later axes would interleave: one block per row band
        a = a.rechunk({k: -1 for k in range(1, a.ndim)})
    for c in a.chunks[1:]:
        if any(isinstance(v, float) and math.isnan(v) for v in c):
            raise ValueError("nonzero needs known chunk sizes on axes after the first; call "
                             "compute_chunk_sizes() first")
    if any(isinstance(v, float) and math.isnan(v) for v in a.chunks[0]):
        # global indices need the offsets of the blocks along axis 0
        raise ValueError("nonzero needs known chunk sizes; call compute_chunk_sizes() first")
    name = "nonzero-" + tokenize(a.name, "nonzero")
    layer = {}
    offs0 = [0]
    for c in a.chunks[0] if a.ndim else ():
        offs0.append(offs0[-1] + c)
    keys = a._keys_flat()
    for j, k in enumerate(keys):
        off = (offs0[k[1]],) + (0,) * (a.ndim - 1) if a.ndim else ()
        layer[(name, j)] = (_nonzero_block, k, off)
    return a, name, len(keys), layer


def nonzero(a):
    """``np.nonzero``: a tuple of 1-d index Arrays (unknown chunk sizes)."""
    Array = _Array()
    a = _asarray(a)
    if a.ndim == 0:
        raise ValueError("Calling nonzero on 0d arrays is not allowed. Use np.atleast_1d("
                         "scalar).nonzero() instead.")
    a, sname, n, slayer = _nonzero_stacked(a)
    layers = dict(a._layers)
    layers[sname] = slayer
    out = []
    for d in range(a.ndim):
        name = "nonzero-%d-%s" % (d, tokenize(sname, d))
        layer = {(name, j): (_row, (sname, j), d) for j in range(n)}
        ls = dict(layers)
        ls[name] = layer
        out.append(Array(ls, name, ((math.nan,) * n,), np.intp))
    return tuple(out)


def flatnonzero(a):
    """``np.flatnonzero`` for 1-d arrays (indices of non-zero elements)."""
    a = _asarray(a)
    if a.ndim != 1:
        raise NotImplementedError("cdask flatnonzero: only 1-d arrays (ravel first)")
    return nonzero(a)[0]


def argwhere(a):
    """``np.argwhere``: an (N, ndim) index Array (unknown chunk sizes along axis 0)."""
    Array = _Array()
    a = _asarray(a)
    if a.ndim == 0:
        raise NotImplementedError("cdask argwhere of a 0-d array")
    a, sname, n, slayer = _nonzero_stacked(a)
    layers = dict(a._layers)
    layers[sname] = slayer
    name = "argwhere-" + tokenize(sname)
    layers[name] = {(name, j, 0): (_argwhere_block, (sname, j)) for j in range(n)}
    return Array(layers, name, ((math.nan,) * n, (a.ndim,)), np.intp)


# ---------------------------------------------------------------------------
# small shape routines the Array methods delegate to
# ---------------------------------------------------------------------------
def _squeeze_block(b, axes):
    return np.squeeze(b, axis=axes)


def squeeze(a, axis=None):
    """``np.squeeze``: drop length-1 axes."""
    Array = _Array()
    a = _asarray(a)
    if axis is None:
        axes = tuple(i for i, s in enumerate(a.shape) if s == 1)
    else:
        axes = _red._normalize_axis(axis, a.ndim)
        for i in axes:
            if a.shape[i] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not "
                                 "equal to one")
    if not axes:
        return a
    name = "squeeze-" + tokenize(a.name, axes)
    layer = {}
    for k in a._keys_flat():
        idx = tuple(i for d, i in enumerate(k[1:]) if d not in axes)
        layer[(name,) + idx] = (_squeeze_block, k, axes)
    layers = dict(a._layers)
    layers[name] = layer
    chunks = tuple(c for d, c in enumerate(a.chunks) if d not in axes)
    return Array(layers, name, chunks, a.dtype)


def swapaxes(a, axis1, axis2):
    """``np.swapaxes``."""
    a = _asarray(a)
    ax = list(range(a.ndim))
    i, j = _red._normalize_axis(axis1, a.ndim)[0], _red._normalize_axis(axis2, a.ndim)[0]
    ax[i], ax[j] = ax[j], ax[i]
    return a.transpose(ax)


# ---------------------------------------------------------------------------
# __array_function__
# ---------------------------------------------------------------------------
def _reduction_handler(ours, drop_defaults=()):
    """Adapter: NumPy-style keyword arguments -> the cdask reduction."""
    params = set(inspect.signature(ours).parameters)

    def handler(*args, **kwargs):
        for k, default in drop_defaults:
            if k in kwargs and (kwargs[k] is np._NoValue or kwargs[k] is default):
                del kwargs[k]
        for k in list(kwargs):
            if kwargs[k] is np._NoValue:
                del kwargs[k]
        unknown = [k for k in kwargs if k not in params]
        if unknown:
            raise _Unsupported(unknown)
        return ours(*args, **kwargs)

    handler.__name__ = ours.__name__
    return handler


class _Unsupported(Exception):
    pass


def _build_table():
    t = {}
    red = {
        np.sum: _red.sum, np.prod: _red.prod, np.mean: _red.mean, np.std: _red.std,
        np.var: _red.var, np.min: _red.min, np.max: _red.max, np.amin: _red.min,
        np.amax: _red.max, np.any: _red.any, np.all: _red.all, np.argmin: _red.argmin,
        np.argmax: _red.argmax, np.nansum: _red.nansum, np.nanprod: _red.nanprod,
        np.nanmean: _red.nanmean, np.nanstd: _red.nanstd, np.nanvar: _red.nanvar,
        np.nanmin: _red.nanmin, np.nanmax: _red.nanmax, np.nanargmin: _red.nanargmin,
        np.nanargmax: _red.nanargmax, np.count_nonzero: _red.count_nonzero,
    }
    for f in ("cumsum", "cumprod", "nancumsum", "nancumprod"):
        if hasattr(_red, f) and hasattr(np, f):
            red[getattr(np, f)] = getattr(_red, f)
    for npf, ours in red.items():
        t[npf] = _reduction_handler(ours, drop_defaults=(("out", None),))
    for npf, ours in {np.where: where, np.clip: clip, np.isclose: isclose,
                      np.allclose: allclose, np.nonzero: nonzero, np.argwhere: argwhere,
                      np.flatnonzero: flatnonzero, np.squeeze: squeeze,
                      np.swapaxes: swapaxes, np.isposinf: isposinf,
                      np.isneginf: isneginf}.items():
        t[npf] = ours
    t.update(_shape_table())
    from . import linalg as la

    for f in ("dot", "tensordot", "vdot", "outer", "einsum"):
        t[getattr(np, f)] = getattr(la, f)
    return t


def _unsupported_if(**kw):
    bad = [k for k, v in kw.items() if v]
    if bad:
        raise _Unsupported(bad)


def _cast_to(r, arrays, dtype, casting):
    """NumPy's dtype=/casting= of concatenate and friends."""
    if dtype is None:
        return r
    dtype = np.dtype(dtype)
    for a in arrays:
        src = getattr(a, "dtype", None) or np.asarray(a).dtype
        if not np.can_cast(src, dtype, casting=casting):
            raise TypeError("Cannot cast array data from %r to %r according to the rule %r"
                            % (src, dtype, casting))
    return r.astype(dtype, casting="unsafe")


def _shape_table():
    """The dimension-shuffling and joining functions (reshape.py, joining.py)."""
    from . import reshape as rs, joining as jn

    def np_reshape(a, shape=None, order="C", newshape=None, copy=None):
        if shape is None:
            shape = newshape
        if copy is False:
            raise NotImplementedError("cdask reshape cannot promise copy=False")
        return rs.reshape(a, shape, order=order)

    def np_ravel(a, order="C"):
        return rs.ravel(a, order=order)

    def np_broadcast_to(array, shape, subok=False):
        return rs.broadcast_to(array, shape)

    def joiner(f, seq_name):
        def handler(arrays, *args, out=None, dtype=None, casting="same_kind", **kwargs):
            _unsupported_if(out=out is not None)
            arrays = list(arrays)
            return _cast_to(f(arrays, *args, **kwargs), arrays, dtype, casting)
        handler.__name__ = f.__name__
        return handler

    def np_transpose(a, axes=None):
        return _core().transpose(_asarray(a), axes)

    def np_broadcast_arrays(*args, subok=False):
        return tuple(rs.broadcast_arrays(*args))

    t = {np.reshape: np_reshape, np.ravel: np_ravel, np.broadcast_to: np_broadcast_to,
         np.broadcast_arrays: np_broadcast_arrays, np.transpose: np_transpose}
    for f in ("moveaxis", "rollaxis", "expand_dims", "flip", "flipud", "fliplr", "roll"):
        t[getattr(np, f)] = getattr(rs, f)
    for f in ("concatenate", "stack", "hstack", "vstack", "dstack"):
        t[getattr(np, f)] = joiner(getattr(jn, f), "arrays")
    for f in ("block", "atleast_1d", "atleast_2d", "atleast_3d", "diff"):
        t[getattr(np, f)] = getattr(jn, f)
    for f in ("cumsum", "cumprod", "nancumsum", "nancumprod"):
        t[getattr(np, f)] = _reduction_handler(getattr(jn, f), drop_defaults=(("out", None),))
    return t


HANDLED_FUNCTIONS = _build_table()


def _bind(func, args, kwargs):
    """Bind a NumPy call to its signature -> (positional-only prefix, keywords)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return args, kwargs
    try:
        ba = sig.bind(*args, **kwargs)
    except TypeError:
        return args, kwargs
    pos = []
    kw = {}
    first = True
    for name, value in ba.arguments.items():
        p = sig.parameters[name]
        if p.kind == p.VAR_POSITIONAL:
            pos.extend(value)
        elif p.kind == p.VAR_KEYWORD:
            kw.update(value)
        elif first and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            pos.append(value)   # the array argument stays positional (names differ)
        elif p.kind == p.POSITIONAL_ONLY:
            pos.append(value)
        else:
            kw[name] = value
        first = False
    return tuple(pos), kw


def _materialize(obj):
    from .core import _materialize as materialize

    return materialize(obj)


def _by_name(func):
    """A cdask function of the same name as the NumPy one, defined in cdask."""
    name = getattr(func, "__name__", None)
    if not name:
        return None
    import cdask
    cand = getattr(cdask, name, None)
    if cand is None:
        try:
            from . import creation
            cand = getattr(creation, name, None)
        except ImportError:
            cand = None
    if cand is None or cand is func or not callable(cand):
        return None
    mod = getattr(cand, "__module__", "") or ""
    if not mod.startswith("cdask"):
        return None
    return cand


def array_function(func, types, args, kwargs):
    """The body of ``Array.__array_function__``: a lazy cdask result when cdask
    implements ``func``, else compute the arguments (NotLazyWarning) and call NumPy."""
    Array = _Array()
    for t in types:
        if not issubclass(t, Array) and not issubclass(t, np.ndarray) and \
                hasattr(t, "__array_function__"):
            return NotImplemented
    handler = HANDLED_FUNCTIONS.get(func)
    if handler is not None:
        pos, kw = _bind(func, args, kwargs)
        try:
            return handler(*pos, **kw)
        except _Unsupported as e:
            reason = "argument(s) %s not supported lazily" % ", ".join(map(repr, e.args[0]))
        except NotImplementedError as e:
            reason = str(e)
    else:
        cand = _by_name(func)
        if cand is not None:
            try:
                return cand(*args, **kwargs)
            except NotImplementedError as e:
                reason = str(e)
        else:
            reason = "not implemented by cdask"
    warnings.warn("np.%s: %s; computing the cdask arrays and calling NumPy (the result is a "
                  "NumPy value, not a lazy cdask Array)" % (getattr(func, "__name__", func),
                                                             reason),
                  NotLazyWarning, stacklevel=3)
    args, kwargs = _materialize((args, kwargs))
    return func(*args, **kwargs)


# ---------------------------------------------------------------------------
# Array methods that core.py does not define itself
# ---------------------------------------------------------------------------
def _attach():
    Array = _Array()
    for name in ("compute_chunk_sizes", "clip", "squeeze", "swapaxes", "nonzero"):
        f = globals()[name]
        cur = Array.__dict__.get(name)
        if cur is None:
            setattr(Array, name, f)
    if "__array_function__" not in Array.__dict__:
        def __array_function__(self, func, types, args, kwargs):
            return array_function(func, types, args, kwargs)
        Array.__array_function__ = __array_function__


try:
    _attach()
except ImportError:  # pragma: no cover - core.py not importable yet
    pass
