"""The ``linalg`` extension of the array API standard (``xp.linalg``).

Every function works on stacks of matrices (the last two axes; the leading
ones broadcast): a generalized ufunc over cdask blocks (``apply_gufunc``),
each matrix whole in one block, NumPy's LAPACK routine per block.  The
contractions (``matmul``, ``tensordot``, ``vecdot``, ``outer``) are cdask's;
``vector_norm`` and ``cross`` are reductions and elementwise chains.
"""

import builtins
import math
from collections import namedtuple

import numpy as np

from .. import array as da
from ._dtypes import as_dtype
from ._elementwise import operand
from ._functions import matmul, matrix_transpose, tensordot, vecdot, axes_tuple, axis_index

__all__ = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul",
           "matrix_norm", "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv",
           "qr", "slogdet", "solve", "svd", "svdvals", "tensordot", "trace", "vecdot",
           "vector_norm"]

EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
QRResult = namedtuple("QRResult", ["Q", "R"])
SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])


def _real(dt):
    return np.empty(0, dt).real.dtype


def _float_matrix(x, what, square=False):
    x = operand(x)
    if x.ndim < 2:
        raise ValueError("%s needs an array of 2 or more dimensions, got %d" % (what, x.ndim))
    if x.dtype.kind not in "fc":
        raise TypeError("%s needs a floating-point array, got %s" % (what, x.dtype))
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError("%s needs square matrices, got shape %s" % (what, x.shape))
    return x


def _gufunc(func, signature, *args, dtypes, sizes=None, **kwargs):
    return da.apply_gufunc(func, signature, *args, output_dtypes=dtypes,
                           output_sizes=sizes or {}, allow_rechunk=True, **kwargs)


def _np(name):
    """NumPy's ``np.linalg`` function ``name``, called by name on each block."""
    return getattr(np.linalg, name)


def cholesky(x, /, *, upper=False):
    """The Cholesky factor of each Hermitian positive-definite matrix (lower, or ``upper``)."""
    x = _float_matrix(x, "cholesky", square=True)
    return _gufunc(np.linalg.cholesky, "(m,m)->(m,m)", x, dtypes=x.dtype, upper=upper)


def det(x, /):
    x = _float_matrix(x, "det", square=True)
    return _gufunc(np.linalg.det, "(m,m)->()", x, dtypes=x.dtype)


def _diagonal_block(a, offset):
    return np.diagonal(a, offset=offset, axis1=-2, axis2=-1)


def diagonal(x, /, *, offset=0):
    """The ``offset``-th diagonal of each matrix (the last two axes)."""
    x = operand(x)
    if x.ndim < 2:
        raise ValueError("diagonal needs an array of 2 or more dimensions")
    m, n = x.shape[-2:]
    k = builtins.max(0, builtins.min(m, n - offset) if offset >= 0 else builtins.min(m + offset, n))
    return _gufunc(_diagonal_block, "(m,n)->(k)", x, dtypes=x.dtype, sizes={"k": k},
                   offset=offset)


def _eigh_block(a):
    w, v = np.linalg.eigh(a)
    return w, v


def eigh(x, /):
    """Eigenvalues (ascending) and eigenvectors of each Hermitian matrix."""
    x = _float_matrix(x, "eigh", square=True)
    w, v = _gufunc(_eigh_block, "(m,m)->(m),(m,m)", x, dtypes=(_real(x.dtype), x.dtype))
    return EighResult(w, v)


def eigvalsh(x, /):
    x = _float_matrix(x, "eigvalsh", square=True)
    return _gufunc(np.linalg.eigvalsh, "(m,m)->(m)", x, dtypes=_real(x.dtype))


def inv(x, /):
    x = _float_matrix(x, "inv", square=True)
    return _gufunc(np.linalg.inv, "(m,m)->(m,m)", x, dtypes=x.dtype)


def _matrix_norm_block(a, ord):
    return np.linalg.norm(a, ord=ord, axis=(-2, -1))


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """The ``ord`` norm of each matrix ('fro', 'nuc', +-1, +-2, +-inf)."""
    x = _float_matrix(x, "matrix_norm")
    if ord not in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
        raise ValueError("matrix_norm: unsupported ord %r" % (ord,))
    out = _gufunc(_matrix_norm_block, "(m,n)->()", x, dtypes=_real(x.dtype), ord=ord)
    return out[..., None, None] if keepdims else out


def matrix_power(x, n, /):
    x = _float_matrix(x, "matrix_power", square=True)
    if not isinstance(n, int) or isinstance(n, builtins.bool):
        raise TypeError("matrix_power: n must be an int, got %r" % (n,))
    return _gufunc(np.linalg.matrix_power, "(m,m)->(m,m)", x, dtypes=x.dtype, n=n)


def _rank_block(a, rtol):
    return np.linalg.matrix_rank(a, rtol=rtol)


def matrix_rank(x, /, *, rtol=None):
    """The number of singular values of each matrix above ``rtol * largest``."""
    x = _float_matrix(x, "matrix_rank")
    if rtol is None or isinstance(rtol, (int, float)):
        return _gufunc(_rank_block, "(m,n)->()", x, dtypes=np.dtype(np.int64), rtol=rtol)
    rtol = operand(rtol, "rtol")
    return _gufunc(_rank_tol_block, "(m,n),()->()", x, rtol, dtypes=np.dtype(np.int64))


def _rank_tol_block(a, rtol):
    return np.linalg.matrix_rank(a, rtol=rtol)


def outer(x1, x2, /):
    x1, x2 = operand(x1, "x1"), operand(x2, "x2")
    if x1.ndim != 1 or x2.ndim != 1:
        raise ValueError("outer needs one-dimensional arrays")
    return da.multiply(x1[:, None], x2[None, :])


def _pinv_block(a, rtol):
    return np.linalg.pinv(a, rtol=rtol)


def pinv(x, /, *, rtol=None):
    x = _float_matrix(x, "pinv")
    if rtol is None or isinstance(rtol, (int, float)):
        return _gufunc(_pinv_block, "(m,n)->(n,m)", x, dtypes=x.dtype, rtol=rtol)
    rtol = operand(rtol, "rtol")
    return _gufunc(_pinv_block, "(m,n),()->(n,m)", x, rtol, dtypes=x.dtype)


def _qr_block(a, mode):
    q, r = np.linalg.qr(a, mode=mode)
    return q, r


def qr(x, /, *, mode="reduced"):
    """Q and R of each matrix (``mode`` 'reduced' or 'complete')."""
    x = _float_matrix(x, "qr")
    if mode not in ("reduced", "complete"):
        raise ValueError("qr: mode must be 'reduced' or 'complete', got %r" % (mode,))
    m, n = x.shape[-2:]
    k = builtins.min(m, n) if mode == "reduced" else m
    q, r = _gufunc(_qr_block, "(m,n)->(m,k),(k,n)", x, dtypes=(x.dtype, x.dtype),
                   sizes={"k": k}, mode=mode)
    return QRResult(q, r)


def _slogdet_block(a):
    s, l = np.linalg.slogdet(a)
    return s, l


def slogdet(x, /):
    x = _float_matrix(x, "slogdet", square=True)
    s, l = _gufunc(_slogdet_block, "(m,m)->(),()", x, dtypes=(x.dtype, _real(x.dtype)))
    return SlogdetResult(s, l)


def solve(x1, x2, /):
    """The solution of ``x1 @ y = x2`` for each square ``x1`` (``x2`` one
    vector if 1-d, else a stack of matrices), in the promoted dtype."""
    x1 = _float_matrix(x1, "solve", square=True)
    x2 = operand(x2, "x2")
    dt = np.result_type(x1.dtype, x2.dtype)
    if x2.ndim == 1:
        return _gufunc(np.linalg.solve, "(m,m),(m)->(m)", x1, x2, dtypes=dt)
    return _gufunc(np.linalg.solve, "(m,m),(m,k)->(m,k)", x1, x2, dtypes=dt)


def _svd_block(a, full_matrices):
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return u, s, vh


def svd(x, /, *, full_matrices=True):
    x = _float_matrix(x, "svd")
    m, n = x.shape[-2:]
    k = builtins.min(m, n)
    a, b = (m, n) if full_matrices else (k, k)
    u, s, vh = _gufunc(_svd_block, "(m,n)->(m,a),(k),(b,n)", x,
                       dtypes=(x.dtype, _real(x.dtype), x.dtype),
                       sizes={"a": a, "b": b, "k": k}, full_matrices=full_matrices)
    return SVDResult(u, s, vh)


def svdvals(x, /):
    x = _float_matrix(x, "svdvals")
    k = builtins.min(x.shape[-2:])
    return _gufunc(np.linalg.svdvals, "(m,n)->(k)", x, dtypes=_real(x.dtype), sizes={"k": k})


def _trace_block(a, offset, dtype):
    return np.trace(a, offset=offset, axis1=-2, axis2=-1, dtype=dtype)


def trace(x, /, *, offset=0, dtype=None):
    """The sum of the ``offset``-th diagonal of each matrix (sum's dtype rules)."""
    from ._functions import sum_dtype
    x = operand(x)
    if x.ndim < 2:
        raise ValueError("trace needs an array of 2 or more dimensions")
    dt = sum_dtype(x, dtype)
    return _gufunc(_trace_block, "(m,n)->()", x, dtypes=dt, offset=offset, dtype=dt)


def cross(x1, x2, /, *, axis=-1):
    """The cross product of 3-element vectors along ``axis`` (the operands
    broadcast against each other first)."""
    x1, x2 = da.broadcast_arrays(operand(x1, "x1"), operand(x2, "x2"))
    ax = axis_index(axis, x1.ndim)
    if x1.shape[ax] != 3:
        raise ValueError("cross: the axis must have size 3, got %s" % (x1.shape[ax],))
    a = [da.take(x1, [i], axis=ax) for i in range(3)]
    b = [da.take(x2, [i], axis=ax) for i in range(3)]
    c = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    return da.concatenate(da.broadcast_arrays(*c), axis=ax)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """The ``ord`` norm over ``axis`` (all axes by default): reductions of ``|x|``."""
    x = operand(x)
    if x.dtype.kind not in "fc":
        raise TypeError("vector_norm needs a floating-point array, got %s" % x.dtype)
    axes = axes_tuple(axis, x.ndim)
    rdt = _real(x.dtype)
    a = da.absolute(x)
    if ord == math.inf:
        out = da.max(a, axis=axes, keepdims=keepdims)
    elif ord == -math.inf:
        out = da.min(a, axis=axes, keepdims=keepdims)
    elif ord == 0:
        out = da.sum(a != 0, axis=axes, keepdims=keepdims, dtype=rdt)
    elif ord == 1:
        out = da.sum(a, axis=axes, keepdims=keepdims)
    elif ord == 2:
        out = da.sqrt(da.sum(a * a, axis=axes, keepdims=keepdims))
    elif isinstance(ord, (int, float)) and not isinstance(ord, builtins.bool):
        out = da.sum(a ** ord, axis=axes, keepdims=keepdims) ** (1.0 / ord)
    else:
        raise ValueError("vector_norm: unsupported ord %r" % (ord,))
    return out if out.dtype == rdt else out.astype(rdt)


del as_dtype
