"""Creating cdask Arrays: from existing data and from scratch.

Every function builds one task per block that makes only that block.
``from_array`` never copies its source: each task slices its own block out of
it (for ``np.memmap`` and other lazy array-likes that means only that block
is read).
"""

import itertools
import math
import numbers
import operator
import os
import uuid

import numpy as np

from .chunks import normalize_chunks, chunk_offsets
from .._core import npy_header
from .blockio import SharedMap, getter
from .chunk_types import note_masked
from .core import Array
from .dtypes import check_dtype
from .layers import Blockwise
from .utils import is_scalar
from .tokenize import tokenize

__all__ = ["from_array", "from_npy", "ones", "zeros", "full", "empty", "ones_like",
           "zeros_like", "full_like", "empty_like", "arange", "linspace", "eye",
           "asarray", "array"]


# ---------------------------------------------------------------------------
# task functions

def _full_block(shape, dtype, value):
    if value is None:
        return np.empty(shape, dtype=dtype)
    return np.full(shape, value, dtype=dtype)


def _arange_block(lo, hi, v0, v1, dtype):
    """Elements lo..hi-1 of np.arange, with NumPy's own fill rule
    (``v0 + i * (v1 - v0)`` in the result dtype)."""
    n = hi - lo
    if n <= 0:
        return np.empty(0, dtype=dtype)
    v0 = np.asarray(v0, dtype=dtype)
    v1 = np.asarray(v1, dtype=dtype)
    if dtype.kind == "b":
        out = np.arange(lo, hi) * (v1.astype(np.int64) - v0.astype(np.int64)) + int(v0)
        return out.astype(dtype)
    delta = v1 - v0
    i = np.arange(lo, hi)
    if dtype.kind in "mM":      # datetimes, timedeltas: v0 + i steps, in integers of the unit
        return (v0 + i * delta).astype(dtype, copy=False)
    with np.errstate(all="ignore"):
        out = v0 + i.astype(dtype) * delta
    out = np.asarray(out, dtype=dtype)
    if lo == 0:
        out[0] = v0
    if lo <= 1 < hi:
        out[1 - lo] = v1
    return out


def _linspace_block(lo, hi, num, start, stop, step, calc_dtype, endpoint, dtype, div):
    y = np.arange(lo, hi, dtype=calc_dtype)
    if div > 0:
        if step == 0:
            y = y / div
            y = y * (stop - start)
        else:
            y = y * step
    else:
        # num == 1 (or 0): NumPy computes NaN step; the value is start
        y = y * (stop - start)
    y += start
    if endpoint and num > 1 and lo <= num - 1 < hi:
        y[num - 1 - lo] = stop
    if dtype.kind in "iu":
        np.floor(y, out=y)
    return y.astype(dtype, copy=False)


def _eye_block(rows, cols, k, dtype):
    return np.eye(rows, cols, k=k, dtype=dtype)


# ---------------------------------------------------------------------------

def _grid(chunks):
    offs = [chunk_offsets(c) for c in chunks]
    for idx in itertools.product(*[range(len(c)) for c in chunks]):
        yield idx, tuple(slice(offs[d][i], offs[d][i + 1]) for d, i in enumerate(idx)), \
            tuple(chunks[d][i] for d, i in enumerate(idx))


def from_array(x, chunks="auto", name=None, lock=False, asarray=None, fancy=True,
               getitem=None, meta=None, inline_array=False):
    """Wrap an array-like (ndarray, np.memmap, h5py/zarr datasets: anything
    with ``shape``, ``dtype`` and ``__getitem__``) as a chunked cdask Array.

    The source is never copied: each block's task slices only that block.
    ``name``: the layer name (default: deterministic from the source)."""
    if isinstance(x, Array):
        return x if chunks in ("auto", None) else x.rechunk(chunks)
    if not (hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")):
        if isinstance(x, (list, tuple, numbers.Number, np.generic)) or hasattr(x, "__array__"):
            x = np.asarray(x)
        else:
            raise TypeError("from_array needs an array-like with shape, dtype and "
                            "__getitem__, got %s" % type(x).__name__)
    dtype = check_dtype(x.dtype)
    shape = tuple(int(s) for s in x.shape)
    prev = getattr(x, "chunks", None)
    if prev is not None and not (isinstance(prev, tuple) and len(prev) == len(shape)):
        prev = None
    chunks = normalize_chunks(chunks, shape, dtype=dtype, previous_chunks=prev)
    if name is None or name is True:
        name = "array-" + tokenize(x, chunks)
    elif name is False:
        name = "array-" + uuid.uuid4().hex
    layer = {}
    if type(x) is np.ndarray:
        # in-memory: each block is a view made now (no task to run)
        if not shape:
            layer[(name,)] = x
        else:
            for idx, sl, _ in _grid(chunks):
                layer[(name,) + idx] = x[sl]
    else:
        # each task slices its block out of the source (a memmap reads only it)
        layer = Blockwise(name, tuple(len(c) for c in chunks),
                          getter if getitem is None else getitem,
                          [("const", x), ("slices", chunks)])
        if isinstance(x, np.ma.MaskedArray):
            note_masked(name)
    return Array({name: layer}, name, chunks, dtype)


def asarray(x, dtype=None, chunks=None, **kwargs):
    """Like ``np.asarray`` but returns a cdask Array (Arrays pass through)."""
    if isinstance(x, Array):
        return x if dtype is None or np.dtype(dtype) == x.dtype else x.astype(dtype)
    if isinstance(x, np.ma.MaskedArray):
        x = x if dtype is None else x.astype(dtype)     # the mask kept
    elif not (hasattr(x, "shape") and hasattr(x, "dtype")) or dtype is not None:
        x = np.asarray(x, dtype=dtype)
    return from_array(x, chunks="auto" if chunks is None else chunks)


def array(x, dtype=None, copy=None, chunks=None, **kwargs):
    return asarray(x, dtype=dtype, chunks=chunks)


def from_npy(path, chunks="auto", name=None):
    """Memory-map a ``.npy`` file as a cdask Array (the file is never read
    whole; each task reads only its block).

    Missing file -> FileNotFoundError naming it; a truncated or corrupt file
    -> ValueError naming the file and the problem."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError("from_npy: no such file: %r" % path)
    if os.path.isdir(path):
        raise IsADirectoryError("from_npy: %r is a directory, not a .npy file" % path)

    # the header is parsed and validated in C (nothing is evaluated): a
    # malformed file raises ValueError naming it and the problem
    descr, fortran, shape, offset, size = npy_header(path)
    try:
        dtype = np.dtype(descr)
    except TypeError:
        raise ValueError("from_npy: %r has a corrupt .npy header ('descr' %r is not a dtype)"
                         % (path, descr)) from None
    if dtype.hasobject:
        raise TypeError("from_npy: %r holds an object array, which cannot be memory-mapped; "
                        "cdask supports: bool, int8, int16, int32, int64, uint8, uint16, "
                        "uint32, uint64, float32, float64, complex64, complex128" % path)
    check_dtype(dtype)
    n = 1
    for s in shape:
        n *= s
    need = offset + n * dtype.itemsize
    if size < need:
        raise ValueError("from_npy: %r is truncated: the header describes shape %s of %s "
                         "(%d data bytes) but the file has only %d bytes of data"
                         % (path, shape, dtype, n * dtype.itemsize, max(size - offset, 0)))
    if n == 0:
        data = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        if name is None:
            name = "from-npy-" + tokenize(path, shape, dtype, size,
                                          os.stat(path).st_mtime_ns, chunks)
        return from_array(data, chunks=chunks, name=name)
    try:
        mm = SharedMap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                       order="F" if fortran else "C")
    except (ValueError, OSError) as e:
        raise ValueError("from_npy: cannot memory-map %r (%s)" % (path, e)) from None
    return from_array(mm, chunks=chunks, name=name)


# ---------------------------------------------------------------------------
# constructors

def _shape_tuple(shape):
    if isinstance(shape, (numbers.Integral, np.integer)):
        shape = (int(shape),)
    shape = tuple(operator.index(s) for s in shape)
    for i, s in enumerate(shape):
        if s < 0:
            raise ValueError("negative dimensions are not allowed (axis %d has length %d)"
                             % (i, s))
    return shape


def _filled(kind, shape, dtype, value, chunks, name):
    shape = _shape_tuple(shape)
    dtype = check_dtype(dtype)
    chunks = normalize_chunks(chunks, shape, dtype=dtype)
    if name is None:
        name = "%s-%s" % (kind, tokenize(kind, shape, dtype, value, chunks))
    layer = Blockwise(name, tuple(len(c) for c in chunks), _full_block,
                      [("shape", chunks), ("const", dtype), ("const", value)])
    return Array({name: layer}, name, chunks, dtype)


def _like_args(a, dtype, chunks, shape, what):
    if shape is None:
        shape = a.shape
        if any(isinstance(s, float) and math.isnan(s) for s in shape):
            raise ValueError("%s: the array has unknown (nan) chunk sizes, so the shape to "
                             "fill is unknown; call x.compute_chunk_sizes() first, or pass "
                             "shape=(...)" % what)
        if chunks is None and isinstance(a, Array):
            chunks = a.chunks
    if dtype is None:
        dtype = a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype
    if chunks is None:
        chunks = "auto"
    return shape, dtype, chunks


def ones(shape, dtype=float, chunks="auto", name=None, **kwargs):
    """An Array of ones."""
    return _filled("ones", shape, dtype, 1, chunks, name)


def zeros(shape, dtype=float, chunks="auto", name=None, **kwargs):
    """An Array of zeros."""
    return _filled("zeros", shape, dtype, 0, chunks, name)


def empty(shape, dtype=float, chunks="auto", name=None, **kwargs):
    """An Array of uninitialized values."""
    return _filled("empty", shape, dtype, None, chunks, name)


def full(shape, fill_value, dtype=None, chunks="auto", name=None, **kwargs):
    """An Array filled with ``fill_value``."""
    if not is_scalar(fill_value):
        raise ValueError("fill_value must be a scalar, got %s" % type(fill_value).__name__)
    if dtype is None:
        dtype = np.array(fill_value).dtype
    dtype = check_dtype(dtype)
    v = np.asarray(fill_value)
    if v.dtype != dtype:
        v = v.astype(dtype)  # cast like NumPy does when filling
    return _filled("full", shape, dtype, v[()], chunks, name)


def ones_like(a, dtype=None, chunks=None, shape=None, name=None, **kwargs):
    shape, dtype, chunks = _like_args(a, dtype, chunks, shape, "ones_like")
    return ones(shape, dtype=dtype, chunks=chunks, name=name)


def zeros_like(a, dtype=None, chunks=None, shape=None, name=None, **kwargs):
    shape, dtype, chunks = _like_args(a, dtype, chunks, shape, "zeros_like")
    return zeros(shape, dtype=dtype, chunks=chunks, name=name)


def empty_like(a, dtype=None, chunks=None, shape=None, name=None, **kwargs):
    shape, dtype, chunks = _like_args(a, dtype, chunks, shape, "empty_like")
    return empty(shape, dtype=dtype, chunks=chunks, name=name)


def full_like(a, fill_value, dtype=None, chunks=None, shape=None, name=None, **kwargs):
    shape, dtype, chunks = _like_args(a, dtype, chunks, shape, "full_like")
    return full(shape, fill_value, dtype=dtype, chunks=chunks, name=name)


def arange(start=None, stop=None, step=None, *args, chunks="auto", dtype=None, like=None,
           **kwargs):
    """Like ``np.arange`` (same values, bit for bit), chunked.

    ``arange(stop)``, ``arange(start, stop[, step])``."""
    if args:
        raise TypeError("arange takes at most 3 positional arguments")
    if start is None:
        raise TypeError("arange() requires stop to be specified")
    if stop is None:
        start, stop = 0, start
    if step is None:
        step = 1
    if step == 0:
        raise ValueError("arange: step must not be zero (maximum allowed step is nonzero)")
    # the length and dtype NumPy gives
    if any(np.asarray(v).dtype.kind in "mM" for v in (start, stop, step)):
        # datetime64/timedelta64 ranges: the count in integers of the result's unit
        tdt = np.arange(start, start + step, step, dtype=dtype).dtype
        udt = np.dtype("m8[%s]" % np.datetime_data(tdt)[0])
        base = tdt if tdt.kind == "m" else udt
        span = (np.asarray(stop).astype(tdt) - np.asarray(start).astype(tdt)).astype(udt)
        st = np.asarray(step)
        st = st.astype(udt) if st.dtype.kind == "m" else st.astype(np.int64).astype(base)
        num, den = int(span.astype(np.int64)), int(st.astype(udt).astype(np.int64))
        n = max(-(-num // den), 0)
    elif all(isinstance(v, (numbers.Integral, np.integer)) for v in (start, stop, step)):
        n = len(range(int(start), int(stop), int(step)))
    else:
        n = int(max(math.ceil((stop - start) / step), 0))
    if n <= 2:
        probe = np.arange(start, stop, step, dtype=dtype)
        n = probe.size
    else:
        # two values; the stop in stop's own type, which NumPy's dtype
        # depends on too (arange(10.) is float64)
        pstop = start + 2 * step
        if dtype is None and isinstance(stop, (float, np.generic)):
            pstop = np.asarray(stop).dtype.type(pstop)
        probe = np.arange(start, pstop, step, dtype=dtype)[:2]
    dt = check_dtype(probe.dtype)
    chunks = normalize_chunks(chunks, (n,), dtype=dt)
    v0 = probe[0] if probe.size > 0 else np.asarray(start).astype(dt)
    v1 = probe[1] if probe.size > 1 else np.asarray(start + step).astype(dt)
    name = "arange-" + tokenize(start, stop, step, dt, chunks)
    layer = Blockwise(name, (len(chunks[0]),), _arange_block,
                      [("lo", 0, chunks), ("hi", 0, chunks), ("const", v0), ("const", v1),
                       ("const", dt)])
    return Array({name: layer}, name, chunks, dt)


def linspace(start, stop, num=50, endpoint=True, retstep=False, chunks="auto", dtype=None,
             **kwargs):
    """Like ``np.linspace`` (same values), chunked."""
    num = operator.index(num)
    if num < 0:
        raise ValueError("Number of samples, %d, must be non-negative." % num)
    div = (num - 1) if endpoint else num
    calc_dtype = np.result_type(start, stop, float(num))
    if dtype is None:
        dtype = calc_dtype
    dtype = check_dtype(dtype)
    start_ = np.asarray(start, dtype=calc_dtype)[()]
    stop_ = np.asarray(stop, dtype=calc_dtype)[()]
    delta = stop_ - start_
    if div > 0:
        with np.errstate(all="ignore"):
            step = delta / div
    else:
        step = np.nan
    chunks = normalize_chunks(chunks, (num,), dtype=dtype)
    name = "linspace-" + tokenize(start, stop, num, endpoint, dtype, chunks)
    layer = {}
    offs = chunk_offsets(chunks[0])
    for i in range(len(chunks[0])):
        layer[(name, i)] = (_linspace_block, offs[i], offs[i + 1], num, start_, stop_,
                            step, calc_dtype, endpoint, dtype, div)
    x = Array({name: layer}, name, chunks, dtype)
    if retstep:
        return x, step
    return x


def eye(N, chunks="auto", M=None, k=0, dtype=float, **kwargs):
    """A 2-d Array with ones on the k-th diagonal."""
    N = operator.index(N)
    M = N if M is None else operator.index(M)
    k = operator.index(k)
    dtype = check_dtype(dtype)
    chunks = normalize_chunks(chunks, (N, M), dtype=dtype)
    name = "eye-" + tokenize(N, M, k, dtype, chunks)
    ro = chunk_offsets(chunks[0])
    co = chunk_offsets(chunks[1])
    layer = {}
    for i in range(len(chunks[0])):
        for j in range(len(chunks[1])):
            layer[(name, i, j)] = (_eye_block, chunks[0][i], chunks[1][j],
                                   k + ro[i] - co[j], dtype)
    return Array({name: layer}, name, chunks, dtype)
