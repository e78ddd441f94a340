"""Array routines: ``where``, ``clip``, ``isnan``..., ``compute_chunk_sizes``,
``nonzero``; the elementwise functions NumPy writes in Python (``real``,
``imag``, ``angle``, ``around``, ``nan_to_num``, ``fix``...) and ``choose``;
``ndim``, ``shape``, ``result_type``.

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
import operator

import numpy as np

from .._core import get
from .core import Array, blockwise_simple
from .creation import asarray
from .elemwise import elemwise, unify_chunks_broadcast
from .reshape import broadcast_to
from .utils import broadcast_shapes
from . import reductions as _red
from .tokenize import tokenize

__all__ = [
    "where", "clip", "isnan", "isfinite", "isinf", "isposinf", "isneginf", "isclose",
    "allclose", "nonzero", "argwhere", "flatnonzero", "compute_chunk_sizes", "count_nonzero",
    "NotLazyWarning",
    "real", "imag", "angle", "around", "round", "nan_to_num", "isreal", "iscomplex", "fix",
    "i0", "sinc", "isnull", "notnull", "choose", "ndim", "shape", "result_type",
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


def _as_dtype(r, dtype):
    """dask's ufuncs take ``dtype=`` for the result, cast after the test
    (xarray's ffill counts NaNs with ``isnan(x, dtype=int)``)."""
    return r if dtype is None else r.astype(dtype)


def isnan(x, dtype=None):
    """``np.isnan`` elementwise (``dtype``: the result cast to it, as dask's)."""
    return _as_dtype(elemwise(np.isnan, x), dtype)


def isfinite(x, dtype=None):
    """``np.isfinite`` elementwise (``dtype``: the result cast to it, as dask's)."""
    return _as_dtype(elemwise(np.isfinite, x), dtype)


def isinf(x, dtype=None):
    """``np.isinf`` elementwise (``dtype``: the result cast to it, as dask's)."""
    return _as_dtype(elemwise(np.isinf, x), dtype)


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


# ---------------------------------------------------------------------------
# elementwise functions NumPy writes in Python
# ---------------------------------------------------------------------------
# Each is the chain of ufuncs NumPy's own Python code evaluates, so that the
# steps run as C kernels and fuse with their neighbours, and the result is
# NumPy's bit for bit.  Where NumPy's code does something no chain of ufuncs
# reproduces exactly (complex rounding, the Chebyshev series of ``i0``), the
# NumPy function itself runs on each block.  Called on NumPy data only, each
# is the NumPy function (as dask's are).

def _lazy(args):
    return any(isinstance(a, Array) for a in args)


def real(val):
    """``np.real``: the real part (for a non-complex Array, the Array itself,
    as NumPy returns the array itself)."""
    if not _lazy((val,)):
        return np.real(val)
    if val.dtype.kind == "c":
        return elemwise(np.real, val)
    return val


def imag(val):
    """``np.imag``: the imaginary part (zeros of the same dtype when not complex)."""
    if not _lazy((val,)):
        return np.imag(val)
    return elemwise(np.imag, val)


_DEGREES = 180 / np.pi


def angle(z, deg=False):
    """``np.angle``: the counterclockwise angle from the positive real axis,
    in radians (degrees with ``deg=True``)."""
    if not _lazy((z,)):
        return np.angle(z, deg=deg)
    if z.dtype.kind == "c":
        # arctan2 of the parts, one NumPy call per block (no part arrays)
        return elemwise(np.angle, z, deg=bool(deg))
    a = elemwise(np.arctan2, 0, z)
    if deg:
        a = elemwise(np.multiply, a, _DEGREES)
    return a


def _power_of_ten(n):
    # exact in double precision for 0 <= n <= 22, as NumPy's own table
    return float(10 ** n)


def around(x, decimals=0):
    """``np.around``: round to ``decimals`` decimals (half to even).

    Floating point: ``rint`` for ``decimals=0``; else NumPy's ``x * 10**d``,
    ``rint``, ``/ 10**d`` (divide first for negative ``d``), as C kernels.
    Integers with ``decimals >= 0`` are returned unchanged (a copy in NumPy)."""
    if not _lazy((x,)):
        return np.around(x, decimals=decimals)
    decimals = operator.index(decimals)
    kind = x.dtype.kind
    if kind in "iu" and decimals >= 0:
        return x.copy()
    if kind == "f":
        if decimals == 0:
            return elemwise(np.rint, x)
        if abs(decimals) <= 22:
            f = _power_of_ten(abs(decimals))
            first, second = (np.multiply, np.true_divide) if decimals > 0 else \
                (np.true_divide, np.multiply)
            return elemwise(second, elemwise(np.rint, elemwise(first, x, f)), f)
    return elemwise(np.round, x, decimals=decimals)


def round(a, decimals=0):
    """``np.round`` (the same as :func:`around`)."""
    return around(a, decimals=decimals)


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """``np.nan_to_num``: NaN -> ``nan``, +inf -> ``posinf`` (default: the
    largest finite value of the dtype), -inf -> ``neginf`` (the most negative).
    A lazy Array is never changed in place: ``copy`` is accepted for NumPy's
    signature only."""
    if not _lazy((x,)):
        return np.nan_to_num(x, copy=copy, nan=nan, posinf=posinf, neginf=neginf)
    kind = x.dtype.kind
    if kind not in "fc":
        return x.copy()
    if kind == "c":
        return elemwise(np.nan_to_num, x, nan=nan, posinf=posinf, neginf=neginf)
    info = np.finfo(x.dtype)
    t = x.dtype.type
    with np.errstate(over="ignore", invalid="ignore"):
        # NumPy copies the replacement values into the array: cast to its dtype
        vals = [t(nan), t(info.max if posinf is None else posinf),
                t(info.min if neginf is None else neginf)]
    r = elemwise(np.where, elemwise(np.isnan, x), vals[0], x)
    r = elemwise(np.where, elemwise(np.equal, x, np.inf), vals[1], r)
    return elemwise(np.where, elemwise(np.equal, x, -np.inf), vals[2], r)


def _all_false(b):
    return np.zeros(np.shape(b), dtype=bool)


def _all_true(b):
    return np.ones(np.shape(b), dtype=bool)


def isreal(x):
    """``np.isreal``: True where the imaginary part is zero."""
    if not _lazy((x,)):
        return np.isreal(x)
    if x.dtype.kind == "c":
        return elemwise(np.equal, elemwise(np.imag, x), 0)
    return elemwise(_all_true, x)


def iscomplex(x):
    """``np.iscomplex``: True where the imaginary part is not zero."""
    if not _lazy((x,)):
        return np.iscomplex(x)
    if x.dtype.kind == "c":
        return elemwise(np.not_equal, elemwise(np.imag, x), 0)
    return elemwise(_all_false, x)


def fix(x):
    """``np.fix``: round towards zero (``floor`` where ``x >= 0``, else ``ceil``)."""
    if not _lazy((x,)):
        return np.fix(x)
    return elemwise(np.where, elemwise(np.greater_equal, x, 0), elemwise(np.floor, x),
                    elemwise(np.ceil, x))


def i0(x):
    """``np.i0``: the modified Bessel function of the first kind, order 0
    (NumPy's own series on each block)."""
    if not _lazy((x,)):
        return np.i0(x)
    return elemwise(np.i0, x)


def sinc(x):
    """``np.sinc``: ``sin(pi x) / (pi x)`` (NumPy's own function on each block)."""
    if not _lazy((x,)):
        return np.sinc(x)
    return elemwise(np.sinc, x)


def isnull(values):
    """dask's ``isnull`` (pandas' rule) for numeric arrays: NaN is null."""
    values = asarray(values)
    if values.dtype.kind in "fc":
        return elemwise(np.isnan, values)
    return elemwise(_all_false, values)


def notnull(values):
    """dask's ``notnull``: the negation of :func:`isnull`."""
    values = asarray(values)
    if values.dtype.kind in "fc":
        return elemwise(np.logical_not, elemwise(np.isnan, values))
    return elemwise(_all_true, values)


# ---------------------------------------------------------------------------
# choose
# ---------------------------------------------------------------------------
class _ChooseBlock:
    """The task callable of ``choose``: ``np.choose`` of the index block and
    the choices, array choices coming as blocks and scalar ones (kept as
    they are, so NumPy's promotion sees Python scalars as weak) built in."""

    __slots__ = ("mode", "scalars", "dtype")

    def __init__(self, mode, scalars, dtype):
        self.mode = mode
        self.scalars = scalars      # per choice: (True, value) or (False, None): a block
        self.dtype = dtype

    def __reduce__(self):
        return (_ChooseBlock, (self.mode, self.scalars, self.dtype))

    def __dask_tokenize__(self):
        return ("choose", self.mode, self.scalars, str(self.dtype))

    __name__ = "choose"

    def __call__(self, a, *blocks):
        it = iter(blocks)
        choices = [v if is_const else next(it) for is_const, v in self.scalars]
        r = np.choose(a, choices, mode=self.mode)
        return r if r.dtype == self.dtype else r.astype(self.dtype)


def _operand_dtype_of(c):
    return c.dtype if isinstance(c, (Array, np.ndarray, np.generic)) else c


def choose(a, choices, mode="raise"):
    """``np.choose``: ``choices[a[i]][i]`` with every operand broadcast
    together.  An index out of range raises NumPy's ValueError when the
    blocks are computed (``mode="raise"``); ``"wrap"`` and ``"clip"`` as NumPy."""
    if mode not in ("raise", "wrap", "clip"):
        raise ValueError("clipmode must be one of 'clip', 'raise', or 'wrap' (got %r)"
                         % (mode,))
    if isinstance(choices, Array):
        choices = [choices[i] for i in range(choices.shape[0])]
    choices = list(choices)
    if not choices:
        raise ValueError("0-length sequence (choose needs at least one choice)")
    a = asarray(a)
    if a.dtype.kind not in "iub":
        raise TypeError("Cannot cast array data from dtype(%r) to dtype('int64') according "
                        "to the rule 'safe'" % str(a.dtype))
    dtype = np.result_type(*[_operand_dtype_of(c) for c in choices])
    scalars = tuple((True, c) if isinstance(c, (int, float, complex)) else (False, None)
                    for c in choices)
    ops = [a] + [c if isinstance(c, Array) else asarray(c) for c in choices
                 if not isinstance(c, (int, float, complex))]
    out_shape = broadcast_shapes([o.shape for o in ops])
    ops, out_chunks = unify_chunks_broadcast(ops, out_shape)
    ops = [o if o.shape == out_shape and o.chunks == out_chunks
           else broadcast_to(o, out_shape, chunks=out_chunks) for o in ops]
    return blockwise_simple(_ChooseBlock(mode, scalars, dtype), "choose", *ops, dtype=dtype,
                            chunks=out_chunks)


# ---------------------------------------------------------------------------
# metadata functions
# ---------------------------------------------------------------------------
def ndim(a):
    """``np.ndim``: the number of dimensions (no computing)."""
    return a.ndim if isinstance(a, Array) else np.ndim(a)


def shape(array):
    """``np.shape``: the shape (``nan`` for unknown sizes; no computing)."""
    return array.shape if isinstance(array, Array) else np.shape(array)


def result_type(*arrays_and_dtypes):
    """``np.result_type``, an Array counting as its dtype."""
    return np.result_type(*[a.dtype if isinstance(a, Array) else a for a in arrays_and_dtypes])
