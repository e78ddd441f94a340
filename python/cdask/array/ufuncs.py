"""NumPy ufuncs for cdask arrays: dtype resolution and per-block task callables.

Every elementwise NumPy ufunc runs on a block through NumPy's *own* inner
loop, resolved once per (ufunc, input dtypes) at graph-build time:

* :func:`resolve` asks ``ufunc.resolve_dtypes`` - NumPy 2's promotion and
  type resolution, including NEP 50's "weak" Python scalars - for the loop
  dtypes.  Nothing of NumPy's promotion is re-implemented here.
* :func:`ufunc_task` turns that into the callable of a task: a C
  :class:`cdask.Kernel` (``cdask._core.ufunc_kernel``) that runs NumPy's inner
  loop for exactly those dtypes on a C worker without the GIL - broadcasting
  its block arguments, casting them to the loop dtypes as NumPy's buffered
  iteration does - or, when NumPy offers no such C loop for the dtypes
  (generalized or multi-output ufuncs, datetime/longdouble/object loops,
  loops that only exist as new-style ArrayMethods), the NumPy ufunc itself,
  called from Python.  Both give NumPy's result bit for bit.
* :func:`result_dtype` is the output dtype of ``ufunc(*args)``.
* :func:`pow_rewrite` reproduces ``ndarray.__pow__``'s rewrites
  (``x ** 2`` -> ``square(x)``...; None when there is none), which NumPy
  applies for inexact arrays and which can differ in the last bit from
  ``power`` for complex numbers.
* :data:`ALL_UFUNCS` lists NumPy's ufuncs under every name NumPy exports
  them by (``abs`` and ``absolute``...), for ``cdask.exp`` and friends.

Task calling convention: ``task(*operands)`` with one block per array operand
and Python scalars passed as themselves (declared in ``in_dtypes`` as their
type ``int``/``float``/``complex``; ``bool`` is NumPy's strong bool).  The C
kernel converts a weak Python int as NumPy does (OverflowError when it does
not fit an integer loop, through double for floating loops).  Comparisons of
integer arrays with Python ints use NumPy itself, which compares by value
(``int8_array < 300`` is all True).
"""

import collections
import functools

import numpy as np

from .. import _core
from .dtypes import SUPPORTED_DTYPES

__all__ = ["ALL_UFUNCS", "UfuncInfo", "SUPPORTED_DTYPES", "resolve", "result_dtype",
           "ufunc_task", "pow_rewrite", "operand_dtype"]


UfuncInfo = collections.namedtuple("UfuncInfo", "name ufunc nin nout signature")
UfuncInfo.__doc__ = """One NumPy ufunc under one of its NumPy names.

``signature`` is the core signature of a generalized ufunc (``matmul``...),
None for elementwise ones."""


def _all_ufuncs():
    out = {}
    for name in sorted(vars(np)):
        u = getattr(np, name)
        if isinstance(u, np.ufunc):
            out[name] = UfuncInfo(name, u, u.nin, u.nout, u.signature)
    return out


#: ``{numpy_name: UfuncInfo}`` for every ufunc in the ``numpy`` namespace,
#: aliases included (``abs``, ``conj``, ``mod``, ``true_divide``...).
ALL_UFUNCS = _all_ufuncs()

_WEAK = (int, float, complex)
_COMPARISONS = frozenset([np.equal, np.not_equal, np.less, np.less_equal, np.greater,
                          np.greater_equal])


def operand_dtype(x):
    """What ``resolve_dtypes`` sees for operand ``x``: its ``np.dtype``, or
    the type ``int``/``float``/``complex`` for a Python scalar (NEP 50 weak).

    ``x`` may also be a dtype already (``np.dtype``, a scalar type, a dtype
    string) or one of the Python types themselves."""
    if isinstance(x, np.dtype):
        return x
    if isinstance(x, type):
        if x in _WEAK:
            return x
        return np.dtype(x)
    if isinstance(x, str):
        return np.dtype(x)
    if isinstance(x, np.generic):
        return x.dtype
    if isinstance(x, bool):
        return np.dtype(bool)
    if type(x) in _WEAK:
        return type(x)
    if isinstance(x, _WEAK):          # subclasses of int/float/complex
        for t in _WEAK:
            if isinstance(x, t):
                return t
    dt = getattr(x, "dtype", None)
    if dt is not None:
        return np.dtype(dt)
    return np.asarray(x).dtype


def _key(in_dtypes):
    return tuple(operand_dtype(d) for d in in_dtypes)


@functools.lru_cache(maxsize=4096)
def _resolve_cached(ufunc, key):
    return tuple(ufunc.resolve_dtypes(key + (None,) * ufunc.nout))


def resolve(ufunc, in_dtypes):
    """NumPy's loop dtypes for ``ufunc`` on inputs of ``in_dtypes``: a tuple
    of ``nin + nout`` dtypes (inputs first).  Raises NumPy's own errors
    (``UFuncTypeError``... a TypeError) for unsupported combinations."""
    key = _key(in_dtypes)
    if len(key) != ufunc.nin:
        raise TypeError("ufunc %r takes %d inputs, got %d" % (ufunc.__name__, ufunc.nin,
                                                              len(key)))
    return _resolve_cached(ufunc, key)


def result_dtype(ufunc, *args):
    """dtype of ``ufunc(*args)`` (a tuple of dtypes for several outputs).

    ``args`` are operands (arrays, cdask arrays, NumPy or Python scalars) or
    dtypes; Python int/float/complex scalars are NEP 50 weak."""
    loop = resolve(ufunc, args)
    outs = loop[ufunc.nin:]
    return outs[0] if ufunc.nout == 1 else tuple(outs)


@functools.lru_cache(maxsize=4096)
def _task_cached(ufunc, key):
    if ufunc in _COMPARISONS and any(
            k is int and lt.kind in "iu" for k, lt in zip(key, _resolve_cached(ufunc, key))):
        # NumPy compares Python ints by value, even out of the loop's range
        return ufunc
    try:
        return _core.ufunc_kernel(ufunc, key)
    except NotImplementedError:
        return ufunc


def ufunc_task(ufunc, in_dtypes):
    """The callable of a task computing ``ufunc`` on one block per operand.

    A C Kernel running NumPy's inner loop when one exists for the resolved
    dtypes, else the NumPy ufunc itself (a module-level, picklable callable).
    Cached per (ufunc, dtypes).  Raises NumPy's TypeError when the ufunc does
    not support the dtypes at all."""
    key = _key(in_dtypes)
    resolve(ufunc, key)          # NumPy's error for unsupported dtypes, early
    return _task_cached(ufunc, key)


def pow_rewrite(base_dtype, exponent):
    """The one-argument ufunc ``ndarray.__pow__`` applies for ``x ** exponent``,
    or None when NumPy calls ``power(x, exponent)`` itself.

    NumPy 2 rewrites ``x ** 2`` to ``square(x)`` for any numeric ``x``
    (``bool ** 2`` is therefore int8, where ``power`` would give int64), and
    ``x ** -1`` to ``reciprocal(x)`` and ``x ** 0.5`` to ``sqrt(x)`` when
    ``x`` is a floating or complex array - exponents that are exactly a
    Python int (not a bool or NumPy integer) or exactly a Python float.  For
    complex ``x`` the rewritten results differ in the last bits from
    ``power``.  Use ``ufunc_task(pow_rewrite(dt, e), (dt,))`` for the block task.
    """
    kind = np.dtype(base_dtype).kind
    if type(exponent) is int and exponent == 2 and kind in "biufc":
        return np.square         # for bool too: bool ** 2 is int8, power's is int64
    if kind not in "fc":
        return None
    if type(exponent) is int and exponent == -1:
        return np.reciprocal
    if type(exponent) is float and exponent == 0.5:
        return np.sqrt
    return None
