"""The NumPy protocols of cdask Arrays: ``__array_ufunc__`` and ``__array_function__``.

``array_function(func, types, args, kwargs)`` is what ``Array.__array_function__``
calls for ``np.<func>(cdask_array, ...)``:

* NumPy functions in the table (``np.sum``, ``np.mean``, ``np.where``,
  ``np.clip``, ``np.std``, every reduction...) return lazy cdask Arrays; the
  call is bound to the NumPy function's own signature first, so positional
  arguments mean what they mean to NumPy;
* functions cdask provides under the same name in its namespace (creation
  or ufunc functions, say) are used likewise;
* anything else: the cdask arguments are computed, with a
  :class:`NotLazyWarning` (dask warns too), and NumPy is called.

``array_ufunc`` sends ``np.<ufunc>(cdask_array, ...)`` to ``elemwise`` (and
``np.matmul`` to the contraction).  This module sits above every module of
functions, since it dispatches to all of them.
"""

import inspect
import warnings

import numpy as np

from . import (blockwise, contraction, creation, grids, joining, overlap, rechunk,
               reductions as _red, reshape as rs, routines, store, triangles, ufunc_api,
               ufunc_methods)
from . import percentiles, sets, statistics
from . import applying, padding, rearranging, selection
from .chunk_types import is_valid_chunk_type
from .core import Array, transpose
from .creation import asarray
from .elemwise import elemwise, is_operand
from .routines import (NotLazyWarning, allclose, argwhere, clip, flatnonzero, isclose,
                       isneginf, isposinf, nonzero, where)

__all__ = ["array_function", "array_ufunc", "materialize", "HANDLED_FUNCTIONS"]

# where a NumPy function's namesake is looked for (the modules whose
# ``__all__`` make up the ``cdask`` namespace)
_NAMESPACES = (creation, ufunc_api, _red, routines, rs, joining, overlap, blockwise, store,
               contraction, rechunk, triangles, grids, statistics, sets, percentiles,
               selection, rearranging, padding, applying)


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
                      np.flatnonzero: flatnonzero, np.squeeze: rs.squeeze,
                      np.swapaxes: rs.swapaxes, np.isposinf: isposinf,
                      np.isneginf: isneginf}.items():
        t[npf] = ours
    t.update(_shape_table())
    t[np.percentile] = percentiles.percentile_exact   # NumPy's result, not dask's estimate
    t[np.take] = _np_take

    for f in ("dot", "tensordot", "vdot", "outer", "einsum"):
        t[getattr(np, f)] = getattr(contraction, f)
    t.update(_linalg_fft_table())
    return t


def _linalg_fft_table():
    """np.linalg and np.fft functions: cdask.linalg's and cdask.fft's, adapted
    to NumPy's signatures and defaults where dask's differ."""
    from . import fft as _fft, linalg as _la

    def np_cholesky(a, upper=False):
        return _la.cholesky(a, lower=not upper)

    def np_qr(a, mode="reduced"):
        if mode != "reduced":
            raise NotImplementedError("cdask qr: mode=%r (only 'reduced')" % (mode,))
        return _la.qr(a)

    def np_svd(a, full_matrices=True, compute_uv=True, hermitian=False):
        _unsupported_if(hermitian=hermitian)
        u, s, v = _la.svd(a, full_matrices=full_matrices and compute_uv)
        return (u, s, v) if compute_uv else s

    t = {np.linalg.cholesky: np_cholesky, np.linalg.qr: np_qr, np.linalg.svd: np_svd,
         np.linalg.solve: lambda a, b: _la.solve(a, b), np.linalg.inv: _la.inv,
         np.linalg.lstsq: _la.lstsq, np.linalg.norm: _la.norm}

    def no_out(f):
        def handler(*args, out=None, **kwargs):
            _unsupported_if(out=out is not None)
            return f(*args, **kwargs)
        handler.__name__ = f.__name__
        return handler

    for name in _fft.__all__:
        npf = getattr(np.fft, name, None)
        if npf is not None and hasattr(npf, "_implementation"):
            t[npf] = no_out(getattr(_fft, name))
    return t


def _np_take(a, indices, axis=None, out=None, mode="raise"):
    # NumPy's default axis (None: flattened), not dask's 0
    _unsupported_if(out=out is not None)
    return selection.take(a, indices, axis=axis, mode=mode)


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

    def joiner(f):
        def handler(arrays, *args, out=None, dtype=None, casting="same_kind", **kwargs):
            _unsupported_if(out=out is not None)
            arrays = list(arrays)
            return _cast_to(f(arrays, *args, **kwargs), arrays, dtype, casting)
        handler.__name__ = f.__name__
        return handler

    def np_transpose(a, axes=None):
        return transpose(asarray(a), axes)

    def np_broadcast_arrays(*args, subok=False):
        return tuple(rs.broadcast_arrays(*args))

    t = {np.reshape: np_reshape, np.ravel: np_ravel, np.broadcast_to: np_broadcast_to,
         np.broadcast_arrays: np_broadcast_arrays, np.transpose: np_transpose}
    for f in ("moveaxis", "rollaxis", "expand_dims", "flip", "flipud", "fliplr"):
        t[getattr(np, f)] = getattr(rs, f)
    t[np.roll] = joining.roll
    for f in ("concatenate", "stack", "hstack", "vstack", "dstack"):
        t[getattr(np, f)] = joiner(getattr(joining, f))
    for f in ("block", "atleast_1d", "atleast_2d", "atleast_3d", "diff"):
        t[getattr(np, f)] = getattr(joining, f)
    for f in ("cumsum", "cumprod", "nancumsum", "nancumprod"):
        t[getattr(np, f)] = _reduction_handler(getattr(_red, f), drop_defaults=(("out", None),))
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


def _by_name(func):
    """The cdask function of the same name as the NumPy one, if cdask has one."""
    name = getattr(func, "__name__", None)
    if not name:
        return None
    for mod in _NAMESPACES:
        if name in getattr(mod, "__all__", ()):
            cand = getattr(mod, name)
            if cand is not func and callable(cand):
                return cand
    return None


def array_function(func, types, args, kwargs):
    """The body of ``Array.__array_function__``: a lazy cdask result when cdask
    implements ``func``, else compute the arguments (NotLazyWarning) and call NumPy."""
    for t in types:
        if not issubclass(t, Array) and not issubclass(t, np.ndarray) and \
                not is_valid_chunk_type(t) and hasattr(t, "__array_function__"):
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
    args, kwargs = materialize((args, kwargs))
    return func(*args, **kwargs)


def materialize(obj):
    """``obj`` with every cdask Array in it (inside tuples, lists and dicts)
    computed to a NumPy array."""
    if isinstance(obj, Array):
        return np.asarray(obj)
    if isinstance(obj, tuple):
        return tuple(materialize(o) for o in obj)
    if isinstance(obj, list):
        return [materialize(o) for o in obj]
    if isinstance(obj, dict):
        return {k: materialize(v) for k, v in obj.items()}
    return obj


def array_ufunc(ufunc, method, inputs, kwargs):
    """The body of ``Array.__array_ufunc__``: ``__call__`` (several outputs
    too), ``reduce``, ``accumulate``, ``outer`` and ``reduceat`` (ufunc_methods.py)."""
    if method == "__call__" and ufunc is np.matmul:   # a gufunc: contraction, not elementwise
        return contraction.matmul(*inputs, **kwargs)
    out = kwargs.get("out", None)
    outs = out if isinstance(out, tuple) else (out,)
    operands = inputs[:1] if method == "reduceat" else inputs
    for x in operands + tuple(o for o in outs if o is not None):
        if not is_operand(x):
            return NotImplemented
    if any(o is not None and not isinstance(o, Array) for o in outs):
        return NotImplemented
    if isinstance(out, tuple) and all(o is None for o in out):
        kwargs = dict(kwargs, out=None)
    if method == "__call__" and ufunc.nout == 1:
        if isinstance(out, tuple) and len(out) == 1:
            kwargs = dict(kwargs, out=out[0])
        return elemwise(ufunc, *inputs, **kwargs)
    return ufunc_methods.dispatch(ufunc, method, inputs, kwargs)
