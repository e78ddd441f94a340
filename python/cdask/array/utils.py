"""Graph-building helpers shared by the array modules.

Layer dictionaries, block grids and shapes: everything here works on plain
data (dicts, tuples, chunk specs) and on anything with ``_layers``/``chunks``
attributes, so that every module of ``cdask.array`` may import it.  Imports
only ``cdask.utils`` and ``chunks``.
"""

import math
import numbers
import operator

import numpy as np

from ..utils import format_bytes, isnan  # noqa: F401  (re-exported for the array modules)
from .chunks import chunk_offsets

__all__ = ["with_layer", "merge_layers", "key_split", "shape_str", "slices_from_chunks",
           "prod", "broadcast_shapes", "common_chunks", "is_scalar", "chunks_known",
           "isnan", "format_bytes", "normalize_axis", "normalize_axis_index",
           "unknown_chunks_error"]


def with_layer(layers, name, layer):
    """A new layers dict: ``layers`` plus ``{name: layer}`` (``layers`` is not
    changed; the layers themselves are shared, not copied)."""
    d = dict(layers)
    d[name] = layer
    return d


def merge_layers(*arrays):
    """One layers dict holding the layers of every Array in ``arrays``."""
    d = {}
    for a in arrays:
        d.update(a._layers)
    return d


def key_split(name):
    """``'add-3f2a...'`` -> ``'add'`` (the op part of a layer name)."""
    parts = name.split("-")
    while len(parts) > 1 and len(parts[-1]) >= 8 and all(c in "0123456789abcdef"
                                                         for c in parts[-1]):
        parts.pop()
    return "-".join(parts)


def shape_str(shape):
    """A shape as NumPy prints it, with ``nan`` for unknown sizes."""
    return "(" + ", ".join("nan" if isnan(s) else str(s) for s in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def slices_from_chunks(chunks):
    """Per block (in C order of the grid), the tuple of slices it covers."""
    per_axis = []
    for c in chunks:
        offs = chunk_offsets(c)
        per_axis.append([slice(offs[i], offs[i + 1]) for i in range(len(c))])
    return per_axis


def prod(t):
    """The product of the numbers in ``t`` (1 for none)."""
    p = 1
    for x in t:
        p *= x
    return p


def broadcast_shapes(shapes):
    """NumPy's broadcast of ``shapes``, where sizes may be unknown (NaN): an
    unknown size broadcasts only against 1 or another unknown size."""
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for ax in range(nd):
        sizes = []
        for s in shapes:
            k = ax - (nd - len(s))
            if k >= 0:
                sizes.append(s[k])
        known = {x for x in sizes if not isnan(x) and x != 1}
        has_nan = any(isnan(x) for x in sizes)
        if len(known) > 1 or (has_nan and known):
            if has_nan and len(known) <= 1:
                raise ValueError("operands could not be broadcast together with shapes %s: "
                                 "an axis has unknown chunk sizes; call compute_chunk_sizes() "
                                 "first" % " ".join(shape_str(s) for s in shapes))
            raise ValueError("operands could not be broadcast together with shapes %s "
                             % " ".join(shape_str(s) for s in shapes))
        if has_nan:
            out.append(math.nan)
        elif known:
            out.append(known.pop())
        else:
            out.append(1 if sizes else 1)
    return tuple(out)


def common_chunks(chunk_lists, size=None, unknown_error=None):
    """One chunking for an axis from the chunkings of the operands that span
    it: the same if they agree, else the common refinement.  Chunkings that
    differ and hold unknown sizes raise ValueError (``unknown_error``: a
    callable giving its message, else a generic one)."""
    first = chunk_lists[0]
    if all(c == first for c in chunk_lists[1:]):
        return first
    if any(isnan(x) for c in chunk_lists for x in c):
        raise ValueError(unknown_error() if unknown_error is not None else
                         "arrays with unknown chunk sizes along an axis can only be combined "
                         "when their chunks are identical (got %s); call compute_chunk_sizes() "
                         "first" % (", ".join(map(str, chunk_lists)),))
    bounds = set()
    for c in chunk_lists:
        bounds.update(chunk_offsets(c))
    b = sorted(bounds)
    return tuple(b[i + 1] - b[i] for i in range(len(b) - 1)) or (0,)


def is_scalar(x):
    """Is ``x`` a scalar operand (a Python or NumPy number, or a 0-d ndarray)?"""
    return isinstance(x, (numbers.Number, np.generic)) or (
        isinstance(x, np.ndarray) and x.ndim == 0)


def chunks_known(a):
    """Are all block sizes of the Array ``a`` known?"""
    return not any(isnan(c) for cc in a.chunks for c in cc)


# ---------------------------------------------------------------------------
# argument normalisation
# ---------------------------------------------------------------------------
def normalize_axis(axis, ndim):
    """axis (None, int, tuple) -> sorted tuple of non-negative ints, NumPy's errors."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (list, tuple)):
        axes = tuple(axis)
    else:
        axes = (axis,)
    out = []
    for a in axes:
        if not isinstance(a, numbers.Integral) or isinstance(a, bool):
            a_op = operator.index(a)  # TypeError like NumPy for floats, strings...
            a = a_op
        a = int(a)
        if a < -ndim or a >= ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim if ndim else a)
    if len(set(out)) != len(out):
        raise ValueError("duplicate value in 'axis'")
    return tuple(sorted(out))


def normalize_axis_index(axis, ndim):
    """One axis (an int, negative from the end) -> 0 <= axis < ndim, with
    NumPy's AxisError."""
    if isinstance(axis, bool) or not isinstance(axis, (numbers.Integral, np.integer)):
        axis = operator.index(axis)
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim)
    return axis % ndim


def unknown_chunks_error(what):
    """The ValueError of an operation ``what`` that needs known chunk sizes."""
    return ValueError("%s needs known chunk sizes, but this array has unknown (nan) chunk "
                      "sizes; call x.compute_chunk_sizes() first" % what)
