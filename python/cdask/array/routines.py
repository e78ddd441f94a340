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

import math

import numpy as np

from .._core import get
from .core import Array
from .creation import asarray
from .elemwise import elemwise
from . import reductions as _red
from .tokenize import tokenize

__all__ = [
    "where", "clip", "isnan", "isfinite", "isinf", "isposinf", "isneginf", "isclose",
    "allclose", "nonzero", "argwhere", "flatnonzero", "compute_chunk_sizes", "count_nonzero",
    "NotLazyWarning",
]

count_nonzero = _red.count_nonzero


class NotLazyWarning(UserWarning):
    """A NumPy function without a cdask implementation was called on a cdask
    Array: the arrays were computed and NumPy was called on the results."""


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
    return elemwise(np.where, condition, x, y)


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
    if lo is None and hi is None:
        r = asarray(a) if not isinstance(a, Array) else a
        r = elemwise(np.positive, r) if r.dtype.kind != "b" else r
    elif lo is None:
        r = elemwise(np.minimum, a, hi, **kwargs)
    elif hi is None:
        r = elemwise(np.maximum, a, lo, **kwargs)
    else:
        r = elemwise(np.clip, a, lo, hi, **kwargs)
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
    return elemwise(np.isnan, x)


def isfinite(x):
    """``np.isfinite`` elementwise."""
    return elemwise(np.isfinite, x)


def isinf(x):
    """``np.isinf`` elementwise."""
    return elemwise(np.isinf, x)


def isposinf(x):
    """``np.isposinf`` elementwise."""
    return elemwise(np.isposinf, x, dtype=bool)


def isneginf(x):
    """``np.isneginf`` elementwise."""
    return elemwise(np.isneginf, x, dtype=bool)


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``np.isclose`` elementwise."""
    return elemwise(np.isclose, a, b, dtype=bool, rtol=rtol, atol=atol, equal_nan=equal_nan)


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
    x._become(Array(x._layers, x.name, new, x.dtype))
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
    a = asarray(a)
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
    a = asarray(a)
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
    a = asarray(a)
    if a.ndim != 1:
        raise NotImplementedError("cdask flatnonzero: only 1-d arrays (ravel first)")
    return nonzero(a)[0]


def argwhere(a):
    """``np.argwhere``: an (N, ndim) index Array (unknown chunk sizes along axis 0)."""
    a = asarray(a)
    if a.ndim == 0:
        raise NotImplementedError("cdask argwhere of a 0-d array")
    a, sname, n, slayer = _nonzero_stacked(a)
    layers = dict(a._layers)
    layers[sname] = slayer
    name = "argwhere-" + tokenize(sname)
    layers[name] = {(name, j, 0): (_argwhere_block, (sname, j)) for j in range(n)}
    return Array(layers, name, ((math.nan,) * n, (a.ndim,)), np.intp)
