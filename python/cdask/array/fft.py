"""``cdask.fft``: NumPy's discrete Fourier transforms, as ``dask.array.fft``.

A transform runs NumPy's own (pocketfft) on each block, so results are
NumPy's.  The transformed axes must each be one block: where one is split,
it is rechunked to one block (dask raises instead), with a
``PerformanceWarning`` when the blocks that makes are larger than the
block-size target (``array.chunk-size``, at most a quarter of the memory
budget per worker; ``chunks.default_chunk_bytes``).  Axes of unknown chunk
sizes cannot be transformed (ValueError).

``fft_wrap(func, kind)`` makes the same from any function with NumPy's
signature (``scipy.fft.fft``...).  ``fftfreq``/``rfftfreq`` are chunked
arrays (NumPy's values, bit for bit: integers times ``1 / (n * d)``);
``fftshift``/``ifftshift`` roll by slicing and concatenating, so their axes
may stay in several blocks.
"""

import numbers
import warnings

import numpy as np

from .chunks import default_chunk_bytes
from .core import PerformanceWarning, blockwise_simple
from .creation import arange, asarray
from .elemwise import elemwise
from .joining import concatenate
from .rechunk import rechunk
from .utils import format_bytes, isnan, normalize_axis_index, prod

__all__ = ["fft_wrap", "fft", "fft2", "fftn", "ifft", "ifft2", "ifftn", "rfft", "rfft2",
           "rfftn", "irfft", "irfft2", "irfftn", "hfft", "ihfft", "fftfreq", "rfftfreq",
           "fftshift", "ifftshift"]

_KINDS = ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft")


def _out_length(base, n_in, n):
    """Length of a transformed axis: ``n_in`` long in, ``n`` asked (None:
    the default); for the last axis of the real transforms by ``base``."""
    if base in ("fft", "ifft"):
        return n_in if n is None else n
    if base in ("rfft", "ihfft"):
        return (n_in if n is None else n) // 2 + 1
    return 2 * (n_in - 1) if n is None else n     # irfft, hfft


def _fft_block(b, func, one_d, s, axes, norm):
    if one_d:
        n = None if s is None else s[0]
        return func(b, n, axes[0]) if norm is None else func(b, n, axes[0], norm)
    return func(b, s, axes) if norm is None else func(b, s, axes, norm)


def _single_block_axes(a, axes, name):
    """``a`` with each axis of ``axes`` in one block (rechunked if needed;
    PerformanceWarning if its blocks then exceed the block-size target)."""
    for ax in axes:
        if any(isnan(c) for c in a.chunks[ax]):
            raise ValueError("cdask.fft.%s: axis %d has unknown chunk sizes; call "
                             "x.compute_chunk_sizes() first" % (name, ax))
    split = [ax for ax in axes if len(a.chunks[ax]) > 1]
    if not split:
        return a
    new = {ax: a.shape[ax] for ax in split}
    block = prod([a.shape[ax] if ax in new else max(c) if c else 0
                  for ax, c in enumerate(a.chunks)]) * a.dtype.itemsize
    target = default_chunk_bytes()
    if block > target:
        warnings.warn("cdask.fft.%s: %s %s split over several chunks, rechunked to one; "
                      "the blocks are then %s (over the %s target). Rechunk the other axes "
                      "smaller first to keep blocks small."
                      % (name, "axes" if len(split) > 1 else "axis",
                         ", ".join(map(str, split)) + (" are" if len(split) > 1 else " is"),
                         format_bytes(block), format_bytes(target)),
                      PerformanceWarning, stacklevel=3)
    return rechunk(a, new)


def fft_wrap(fft_func, kind=None, dtype=None, allow_fftpack=False):
    """A cdask version of ``fft_func``, a function with the signature of the
    ``numpy.fft`` function named ``kind`` (default: ``fft_func.__name__``):
    one of fft, ifft, rfft, irfft, hfft, ihfft, optionally ending in 2 or n.
    ``dtype``: the output dtype (default: from a small sample).  (``allow_fftpack``
    is accepted for dask's signature.)"""
    if kind is None:
        kind = getattr(fft_func, "__name__", "")
    base = kind.rstrip("2n")
    if base not in _KINDS or len(kind) - len(base) > 1:
        raise ValueError("Given unknown `kind` %s." % (kind,))
    one_d = kind == base
    two_d = kind.endswith("2")

    def transform(a, s, axes, norm):
        a = asarray(a)
        if axes is None:
            if one_d:
                axes = (-1,)
            elif s is None:         # (fft2 and friends too, as NumPy's with axes=None)
                axes = tuple(range(a.ndim))
            else:
                # NumPy 2: the last len(s) axes, with a DeprecationWarning
                warnings.warn("`axes` should not be `None` if `s` is not `None` (Deprecated "
                              "in NumPy 2.0)", DeprecationWarning, stacklevel=3)
                axes = tuple(range(-len(s), 0))
        axes = tuple(normalize_axis_index(int(ax), a.ndim) for ax in axes)
        if len(set(axes)) < len(axes):
            raise ValueError("Duplicate axes not allowed.")
        if s is not None:
            s = tuple(int(n) for n in s)
            if len(s) != len(axes):
                raise ValueError("Shape and axes have different lengths.")
            for n in s:
                if n < 1:
                    raise ValueError("Invalid number of FFT data points (%d) specified." % n)
        if not axes:
            raise ValueError("cdask.fft.%s: no axis to transform" % kind)
        if norm not in (None, "backward", "ortho", "forward"):
            raise ValueError('Invalid norm value %s; should be "backward", "ortho" or '
                             '"forward".' % (norm,))
        a = _single_block_axes(a, axes, kind)
        out_dtype = dtype
        if out_dtype is None:
            k = len(axes)
            sample = np.ones((8,) * k, dtype=a.dtype)
            out_dtype = (fft_func(sample) if one_d else
                         fft_func(sample, None, tuple(range(k)))).dtype
        chunks = list(a.chunks)
        for i, ax in enumerate(axes):
            n_in = a.shape[ax]
            n = None if s is None else s[i]
            last = i == len(axes) - 1
            if base in ("fft", "ifft") or not last:
                chunks[ax] = (n_in if n is None else n,)
            else:
                chunks[ax] = (_out_length(base, n_in, n),)
            if chunks[ax][0] < 1:
                raise ValueError("Invalid number of data points (%d) specified"
                                 % chunks[ax][0])
        return blockwise_simple(_fft_block, kind, a, dtype=out_dtype, chunks=tuple(chunks),
                                args=(fft_func, one_d, s, axes, norm))

    if one_d:
        def func(a, n=None, axis=None, norm=None):
            return transform(a, None if n is None else (n,),
                             None if axis is None else (axis,), norm)
    elif two_d:
        def func(a, s=None, axes=(-2, -1), norm=None):
            return transform(a, s, axes, norm)
    else:
        def func(a, s=None, axes=None, norm=None):
            return transform(a, s, axes, norm)

    name = getattr(fft_func, "__name__", kind)
    func.__name__ = func.__qualname__ = name
    func.__doc__ = ("``%s.%s`` on a cdask Array, block by block; the transformed axes are "
                    "rechunked to one block each when they are split."
                    % (getattr(fft_func, "__module__", "numpy.fft"), name))
    return func


fft = fft_wrap(np.fft.fft)
fft2 = fft_wrap(np.fft.fft2)
fftn = fft_wrap(np.fft.fftn)
ifft = fft_wrap(np.fft.ifft)
ifft2 = fft_wrap(np.fft.ifft2)
ifftn = fft_wrap(np.fft.ifftn)
rfft = fft_wrap(np.fft.rfft)
rfft2 = fft_wrap(np.fft.rfft2)
rfftn = fft_wrap(np.fft.rfftn)
irfft = fft_wrap(np.fft.irfft)
irfft2 = fft_wrap(np.fft.irfft2)
irfftn = fft_wrap(np.fft.irfftn)
hfft = fft_wrap(np.fft.hfft)
ihfft = fft_wrap(np.fft.ihfft)


def _check_n(n):
    if not isinstance(n, (numbers.Integral, np.integer)) or isinstance(n, bool):
        raise ValueError("n should be an integer")
    return int(n)


def fftfreq(n, d=1.0, chunks="auto"):
    """``np.fft.fftfreq``: the sample frequencies of an ``n``-point transform
    with sample spacing ``d``, as a chunked array (NumPy's values)."""
    n = _check_n(n)
    val = 1.0 / (n * d)
    k = arange(n, chunks=chunks, dtype=np.intp)
    k = elemwise(np.where, elemwise(np.less, k, (n - 1) // 2 + 1), k,
                 elemwise(np.subtract, k, n))
    return elemwise(np.multiply, k, val)


def rfftfreq(n, d=1.0, chunks="auto"):
    """``np.fft.rfftfreq``: the sample frequencies of ``rfft`` (non-negative
    ones), as a chunked array (NumPy's values)."""
    n = _check_n(n)
    val = 1.0 / (n * d)
    return elemwise(np.multiply, arange(n // 2 + 1, chunks=chunks, dtype=np.intp), val)


def _shift(x, axes, inverse):
    x = asarray(x)
    if axes is None:
        axes = tuple(range(x.ndim))
    elif isinstance(axes, (numbers.Integral, np.integer)):
        axes = (axes,)
    y = x
    for ax in axes:
        ax = normalize_axis_index(int(ax), x.ndim)
        n = y.shape[ax]
        if isnan(n):
            raise ValueError("cdask.fft.%s: axis %d has unknown chunk sizes; call "
                             "x.compute_chunk_sizes() first"
                             % ("ifftshift" if inverse else "fftshift", ax))
        cut = n // 2 if inverse else (n + 1) // 2
        if cut in (0, n):
            continue
        head = [slice(None)] * x.ndim
        tail = [slice(None)] * x.ndim
        head[ax] = slice(cut, None)
        tail[ax] = slice(None, cut)
        one = len(y.chunks[ax]) == 1
        y = concatenate([y[tuple(head)], y[tuple(tail)]], axis=ax)
        if one:
            y = rechunk(y, {ax: n})
    return y


def fftshift(x, axes=None):
    """``np.fft.fftshift``: the zero frequency moved to the centre of each of
    ``axes`` (all by default), by slicing and concatenating the blocks."""
    return _shift(x, axes, False)


def ifftshift(x, axes=None):
    """``np.fft.ifftshift``: the inverse of ``fftshift``."""
    return _shift(x, axes, True)
