"""Chunk specifications: ``normalize_chunks`` and friends.

A normalized chunk spec is a tuple with one tuple of block sizes per axis,
e.g. ``((4, 4, 2), (5,))`` for a 10x5 array cut into 3 row blocks.  Sizes are
ints, or ``math.nan`` where a size is unknown (after boolean masking).

Accepted inputs (like dask.array):

* an int: the same block size on every axis;
* a tuple/list with one entry per axis, each an int block size, a tuple of
  explicit sizes, ``-1`` or ``None`` (the whole axis), ``"auto"`` or a byte
  string such as ``"64MiB"``;
* a dict ``{axis: spec}`` (missing axes: the whole axis; negative axes count
  from the end);
* ``"auto"`` or a byte string for every axis: blocks of about ``limit``
  bytes (default: config ``array.chunk-size``, 64 MiB).
"""

import math
import numbers

import numpy as np

from .. import config
from ..utils import isnan, parse_bytes

__all__ = ["normalize_chunks", "auto_chunks", "parse_bytes", "default_chunk_bytes",
           "blockdims_from_blockshape", "chunk_offsets"]

_DEFAULT_CHUNK_BYTES = 64 * 2**20

def default_chunk_bytes():
    """The target block size in bytes: config ``array.chunk-size`` (64 MiB),
    at most memory_limit / (4 x num_workers)."""
    v = config.get("array.chunk-size", None)
    n = _DEFAULT_CHUNK_BYTES if v is None else parse_bytes(v)
    # never more than the memory budget holds: each worker holds a few
    # blocks at once (its inputs and its output)
    budget = int(config.get("memory_limit"))
    workers = int(config.get("num_workers"))
    return min(n, max(budget // (4 * max(workers, 1)), 1 << 16))


def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _as_size(x, axis, what):
    """An int (or nan) from an int-like chunk entry, else ValueError."""
    if _is_int(x):
        return int(x)
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        if math.isnan(x):
            return math.nan
        if float(x).is_integer():
            return int(x)
    raise ValueError("chunks for axis %d: %s must be integers, got %r" % (axis, what, x))


def blockdims_from_blockshape(shape, blockshape):
    """``(10, 5), (4, 5)`` -> ``((4, 4, 2), (5,))``."""
    out = []
    for i, (s, b) in enumerate(zip(shape, blockshape)):
        out.append(_int_to_blocks(s, b, i))
    return tuple(out)


def _int_to_blocks(s, c, axis):
    if isnan(s):
        return (math.nan,)
    if c <= 0:
        if s == 0 and c == 0:
            return (0,)
        raise ValueError("chunks for axis %d: block size must be positive, got %d" % (axis, c))
    if s == 0:
        return (0,)
    n, r = divmod(s, c)
    return (c,) * n + ((r,) if r else ())


def chunk_offsets(chunks_1d):
    """Start offsets of the blocks along one axis: ``(4, 4, 2)`` -> ``[0, 4, 8, 10]``."""
    out = [0]
    t = 0
    for c in chunks_1d:
        t += c
        out.append(t)
    return out


def auto_chunks(chunks, shape, limit=None, dtype=None, previous_chunks=None):
    """Replace the ``"auto"`` entries of a per-axis spec by block sizes so that
    a block holds about ``limit`` bytes.  Other entries (ints, tuples) are
    kept; the largest block of a tuple entry counts toward the budget."""
    if limit is None:
        limit = default_chunk_bytes()
    limit = parse_bytes(limit)
    if dtype is None:
        itemsize = 8
    else:
        dtype = np.dtype(dtype)
        itemsize = max(dtype.itemsize, 1)
    chunks = list(chunks)
    auto_axes = [i for i, c in enumerate(chunks) if c == "auto"]
    if not auto_axes:
        return tuple(chunks)
    for i in auto_axes:
        if isnan(shape[i]):
            raise ValueError("chunks for axis %d: cannot choose 'auto' chunks for an axis of "
                             "unknown length" % i)
    fixed = 1
    for i, c in enumerate(chunks):
        if c == "auto":
            continue
        if isinstance(c, (tuple, list)):
            m = max([x for x in c if not isnan(x)] or [1])
        elif _is_int(c) and c > 0:
            m = min(c, shape[i]) if not isnan(shape[i]) else c
        else:
            m = shape[i] if not isnan(shape[i]) else 1
        fixed *= max(int(m), 1)
    budget = max(limit / (itemsize * fixed), 1.0)
    remaining = list(auto_axes)
    sizes = {}
    # Axes shorter than the ideal cube side take their whole length; the rest
    # share what is left of the budget evenly.
    while remaining:
        ideal = budget ** (1.0 / len(remaining))
        small = [i for i in remaining if shape[i] <= ideal]
        if not small:
            for i in remaining:
                c = max(int(ideal), 1)
                if previous_chunks is not None and i < len(previous_chunks):
                    # prefer a multiple of the previous (storage) block size
                    p = previous_chunks[i]
                    if isinstance(p, (tuple, list)):
                        p = max([x for x in p if not isnan(x)] or [0])
                    if _is_int(p) and 0 < p <= c:
                        c = (c // p) * p
                sizes[i] = c
            break
        for i in small:
            sizes[i] = max(int(shape[i]), 1)
            budget = max(budget / max(shape[i], 1), 1.0)
            remaining.remove(i)
    for i in auto_axes:
        chunks[i] = sizes[i]
    return tuple(chunks)


def normalize_chunks(chunks, shape=None, limit=None, dtype=None, previous_chunks=None):
    """Normalize a chunk spec to a tuple of tuples of block sizes.

    >>> normalize_chunks(4, (10, 5))
    ((4, 4, 2), (4, 1))
    >>> normalize_chunks({0: 3}, (6, 5))
    ((3, 3), (5,))
    >>> normalize_chunks(((2, 3),), (5,))
    ((2, 3),)

    Raises ValueError naming the axis when a spec is invalid.
    """
    if shape is not None:
        shape = tuple(math.nan if (isinstance(s, float) and math.isnan(s)) else int(s)
                      for s in shape)
    if chunks is None:
        if shape is None:
            raise ValueError("chunks=None needs a shape")
        chunks = -1
    if isinstance(chunks, np.ndarray):
        chunks = chunks.tolist()
    if isinstance(chunks, list):
        chunks = tuple(chunks)
    if isinstance(chunks, (numbers.Number, str)) and not isinstance(chunks, bool):
        if shape is None:
            raise ValueError("chunks=%r needs a shape" % (chunks,))
        chunks = (chunks,) * len(shape)
    elif isinstance(chunks, dict):
        if shape is None:
            raise ValueError("chunks given as a dict need a shape")
        nd = len(shape)
        d = {}
        for k, v in chunks.items():
            if not _is_int(k) or not -nd <= k < nd:
                raise ValueError("chunks dict: axis %r is out of range for an array with %d "
                                 "dimensions" % (k, nd))
            d[k % nd] = v
        chunks = tuple(d.get(i, -1) for i in range(nd))
    elif not isinstance(chunks, tuple):
        raise ValueError("chunks must be an int, a tuple, a dict, 'auto' or a byte string, "
                         "got %r" % (chunks,))

    if shape is not None and len(shape) == 0:
        if chunks and any(not (isinstance(c, tuple) and len(c) == 0) for c in chunks) and \
                any(isinstance(c, tuple) for c in chunks):
            pass
        return ()
    if not chunks and shape and all(s == 0 for s in shape):
        return ((0,),) * len(shape)

    # (2, 3) for a 1-d shape of length 5: explicit sizes of the single axis
    if (shape is not None and len(shape) == 1 and len(chunks) > 1
            and all(isinstance(c, numbers.Number) and not isinstance(c, bool) for c in chunks)):
        chunks = (chunks,)

    if shape is not None and len(chunks) != len(shape):
        raise ValueError("chunks has %d entries but the array has %d dimensions "
                         "(chunks=%r, shape=%r)" % (len(chunks), len(shape), chunks, shape))

    if shape is None:
        # must already be explicit
        out = []
        for i, c in enumerate(chunks):
            if not isinstance(c, (tuple, list)):
                raise ValueError("chunks for axis %d: %r needs a shape to be interpreted" % (i, c))
            out.append(_check_tuple(c, None, i))
        return tuple(out)

    # byte strings set the limit; they behave like "auto"
    spec = []
    for i, c in enumerate(chunks):
        if isinstance(c, str) and c != "auto":
            b = parse_bytes(c)
            if limit is None:
                limit = b
            elif parse_bytes(limit) != b:
                raise ValueError("chunks for axis %d: only one byte limit may be used, got %r "
                                 "and %r" % (i, c, limit))
            c = "auto"
        elif c is None or (_is_int(c) and c == -1):
            c = shape[i]
            if isnan(c):
                c = (math.nan,)
        elif isinstance(c, str):
            pass
        elif isinstance(c, (tuple, list)):
            c = tuple(c)
        elif isinstance(c, numbers.Real) and not isinstance(c, bool):
            c = _as_size(c, i, "block sizes")
        else:
            raise ValueError("chunks for axis %d: cannot interpret %r (use an int, a tuple of "
                             "ints, -1, None or 'auto')" % (i, c))
        spec.append(c)

    if any(c == "auto" for c in spec if isinstance(c, str)):
        spec = list(auto_chunks(spec, shape, limit, dtype, previous_chunks))

    out = []
    for i, (c, s) in enumerate(zip(spec, shape)):
        if isinstance(c, tuple):
            out.append(_check_tuple(c, s, i))
        else:
            if isnan(c):
                out.append((math.nan,))
                continue
            if c < 0:
                raise ValueError("chunks for axis %d: block size must be positive, got %d "
                                 "(use -1 or None for the whole axis)" % (i, c))
            out.append(_int_to_blocks(s, c, i))
    return tuple(out)


def _check_tuple(c, s, axis):
    c = tuple(c)
    if len(c) == 0:
        raise ValueError("chunks for axis %d: an empty tuple is not allowed; express a "
                         "zero-length axis as (0,)" % axis)
    vals = tuple(_as_size(x, axis, "block sizes") for x in c)
    for x in vals:
        if not isnan(x) and x < 0:
            raise ValueError("chunks for axis %d: block sizes must not be negative, got %r"
                             % (axis, c))
    if s is not None and not isnan(s) and not any(isnan(x) for x in vals):
        tot = sum(vals)
        if tot != s:
            raise ValueError("chunks for axis %d: block sizes %r add up to %d but the axis has "
                             "length %d" % (axis, c, tot, s))
    return vals
