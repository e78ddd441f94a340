"""Sets and sorted search: ``unique``, ``union1d``, ``isin``, ``searchsorted``.

``unique`` runs ``np.unique`` on every block of the flattened array (for
integers spanning a range not much wider than the block, a count by
``np.bincount`` instead: no sort, one pass) and
merges the partial results in a tree, runs of neighbouring blocks at a time
(so first indices stay in order): a partial is the block's distinct values
with, when asked for, the first flat index of each (shifted by the number
of elements before the block, carried in the partial, so unknown chunk
sizes are fine) and its count.  The inverse is a second pass: each block
looks its values up in the final distinct values (``np.searchsorted``), an
array of the input's chunks.  NaNs compare equal, as in NumPy 2.

``isin`` is ``np.isin`` per block, the test values (one block) given to every
task.  ``searchsorted`` adds up, over the blocks of the sorted array ``a``,
``np.searchsorted(a_block, v_block)``: how many elements of each block come
before each value, which summed over the blocks is the position in the whole
of ``a`` (so ``a``'s chunk sizes need not be known either).
"""

import math

import numpy as np

from .core import Array
from .creation import asarray
from .joining import concatenate
from .reshape import ravel
from .statistics import merge_tree, one_block
from .tokenize import tokenize
from .utils import isnan, merge_layers

__all__ = ["unique", "union1d", "isin", "searchsorted"]


# ---------------------------------------------------------------------------
# unique
# ---------------------------------------------------------------------------
def dense_unique(b):
    """(values, counts) of an integer block whose values span a range not much
    larger than the block, by counting (``np.bincount``, no sort); None when
    the span is too wide (or the block is empty)."""
    if b.dtype.kind not in "iu" or b.size == 0:
        return None
    lo, hi = b.min(), b.max()
    span = int(hi) - int(lo)
    if span > 2 * b.size + 4096:
        return None
    # b - lo fits in [0, span]: exact in 64-bit arithmetic (wrapping if need be)
    d = np.subtract(b, lo, dtype=np.int64 if b.dtype.kind == "i" else np.uint64)
    counts = np.bincount(d.astype(np.intp, copy=False), minlength=span + 1)
    nz = np.flatnonzero(counts)
    # back in the block's dtype: lo + offset wraps back to the exact value
    vals = nz.astype(b.dtype) + lo
    return vals.astype(b.dtype, copy=False), counts[nz].astype(np.intp, copy=False)


def _unique_values_block(b, equal_nan=True):
    b = np.asarray(b).reshape(-1)
    dense = dense_unique(b)
    if dense is not None:
        return dense[0]
    return np.unique(b, equal_nan=equal_nan)


def _unique_values_merge(parts, equal_nan=True):
    return _unique_values_block(np.concatenate(parts), equal_nan)


def _unique_block(b, want_index, want_counts, equal_nan=True):
    """(values, first indices or None, counts or None, number of elements)."""
    b = np.asarray(b).reshape(-1)
    dense = None if want_index else dense_unique(b)
    if dense is not None:
        return dense[0], None, dense[1] if want_counts else None, b.size
    r = np.unique(b, return_index=want_index, return_counts=want_counts, equal_nan=equal_nan)
    if not isinstance(r, tuple):
        r = (r,)
    it = iter(r[1:])
    idx = next(it).astype(np.intp) if want_index else None
    cnt = next(it).astype(np.intp) if want_counts else None
    return r[0], idx, cnt, b.size


def _unique_merge(parts, equal_nan=True):
    vals = np.concatenate([p[0] for p in parts])
    want_index = parts[0][1] is not None
    want_counts = parts[0][2] is not None
    u, inv = np.unique(vals, return_inverse=True, equal_nan=equal_nan)
    inv = inv.reshape(-1)
    idx = cnt = None
    if want_index:
        shifted, off = [], 0
        for p in parts:
            shifted.append(p[1] + off)
            off += p[3]
        idx = np.full(u.shape, np.iinfo(np.intp).max, dtype=np.intp)
        np.minimum.at(idx, inv, np.concatenate(shifted))
    if want_counts:
        cnt = np.zeros(u.shape, dtype=np.intp)
        np.add.at(cnt, inv, np.concatenate([p[2] for p in parts]))
    return u, idx, cnt, sum(p[3] for p in parts)


def _field(r, i):
    return r[i]


def _inverse_block(b, u):
    return np.searchsorted(u, b).astype(np.intp, copy=False)


def _inverse_shape():
    """Does NumPy's inverse of ``unique`` (no axis) keep the input's shape?"""
    return np.unique(np.zeros((2, 2)), return_inverse=True)[1].shape == (2, 2)


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None,
           *, equal_nan=True, sorted=True, split_every=None):
    """``np.unique`` of the flattened array: the sorted distinct values, and
    as asked the first index of each, the inverse (the index in the values of
    every element, of the input's shape as in NumPy 2) and the counts.  The
    values, indices and counts have unknown (nan) length; the inverse has the
    input's chunks.  ``axis`` must be None (unique rows are not supported);
    ``equal_nan=False`` keeps every NaN (not with ``return_inverse``); the
    values are sorted whatever ``sorted`` says (NumPy allows either)."""
    if axis is not None:
        raise NotImplementedError("cdask unique: axis=%r is not supported (only the "
                                  "flattened array, axis=None)" % (axis,))
    equal_nan = bool(equal_nan)
    if return_inverse and not equal_nan:
        raise NotImplementedError("cdask unique: return_inverse with equal_nan=False")
    ar = asarray(ar)
    flat = ar if ar.ndim == 1 else ravel(ar)
    token = tokenize("unique", ar.name, return_index, return_counts, equal_nan, split_every)
    layers = merge_layers(flat)
    keys = flat._keys_flat()
    pname = "unique-chunk-" + token
    oname = "unique-merged-" + token
    if not (return_index or return_counts):
        layers[pname] = {(pname, i): (_unique_values_block, k, equal_nan)
                         for i, k in enumerate(keys)}
        vname = "unique-" + token
        merge_tree(layers, "unique", token, [(pname, i) for i in range(len(keys))],
                   _unique_values_merge, _unique_values_merge, (vname, 0), split_every,
                   combine_args=(equal_nan,), final_args=(equal_nan,))
        values = Array(layers, vname, ((math.nan,),), ar.dtype)
        fields = {}
    else:
        layers[pname] = {(pname, i): (_unique_block, k, bool(return_index), bool(return_counts),
                                      equal_nan) for i, k in enumerate(keys)}
        merge_tree(layers, "unique", token, [(pname, i) for i in range(len(keys))],
                   _unique_merge, _unique_merge, (oname, 0), split_every,
                   combine_args=(equal_nan,), final_args=(equal_nan,))
        fields = {}
        for i, (f, dt) in enumerate((("values", ar.dtype), ("index", np.intp),
                                     ("inverse", None), ("counts", np.intp))):
            if dt is None:
                continue
            name = "unique-%s-%s" % (f, token)
            fl = dict(layers)
            fl[name] = {(name, 0): (_field, (oname, 0), 0 if i == 0 else (1 if i == 1 else 2))}
            fields[f] = Array(fl, name, ((math.nan,),), dt)
        values = fields["values"]
    out = [values]
    if return_index:
        out.append(fields["index"])
    if return_inverse:
        src = ar if _inverse_shape() else flat
        uk = values._keys_flat()[0]
        name = "unique-inverse-" + tokenize(token, src.name)
        il = merge_layers(src, values)
        il[name] = {(name,) + k[1:]: (_inverse_block, k, uk) for k in src._keys_flat()}
        out.append(Array(il, name, src.chunks, np.intp))
    if return_counts:
        out.append(fields["counts"])
    return out[0] if len(out) == 1 else tuple(out)


def union1d(ar1, ar2):
    """``np.union1d``: the sorted distinct values of both arrays."""
    return unique(concatenate([ravel(asarray(ar1)), ravel(asarray(ar2))]))


# ---------------------------------------------------------------------------
# isin
# ---------------------------------------------------------------------------
def _isin_block(b, test, assume_unique, invert, kind):
    return np.isin(b, test, assume_unique=assume_unique, invert=invert, kind=kind)


# Largest range of test values looked up in a table (bytes of the table).
_TABLE_MAX = 1 << 26


def _lookup_table(dtype, test, invert):
    """For integer elements and test values: ``(table, lo, hi)`` with
    ``table[v - lo]`` the answer for ``v`` clipped to ``[lo, hi]``, the two
    ends sentinels for the values outside the test values' range; None when
    that does not fit (the range too wide, or its sentinels outside the
    elements' dtype)."""
    if dtype.kind not in "iu" or test.dtype.kind not in "iu" or test.size == 0:
        return None
    tmin, tmax = int(test.min()), int(test.max())
    info = np.iinfo(dtype)
    if tmax - tmin + 3 > _TABLE_MAX or tmin - 1 < info.min or tmax + 1 > info.max:
        return None
    table = np.full(tmax - tmin + 3, bool(invert))
    # test - tmin lies in [0, range]: exact in the test values' dtype (wrapping)
    t = test.reshape(-1)
    with np.errstate(over="ignore"):
        table[np.subtract(t, t.dtype.type(tmin)).astype(np.intp) + 1] = not invert
    return table, dtype.type(tmin - 1), dtype.type(tmax + 1)


def _isin_table_block(b, table, lo, hi):
    # two passes and a lookup (np.isin's own table method also compacts the
    # values in range and scatters them back)
    c = np.clip(b, lo, hi)
    return table[np.subtract(c, lo, dtype=np.intp)]


def isin(element, test_elements, assume_unique=False, invert=False, *, kind=None):
    """``np.isin``: whether each element is among ``test_elements`` (NumPy's
    per block; the test values, one block, go to every task).  Integers with
    integer test values of a range up to 64 MiB (unless ``kind="sort"``):
    a table of the answers made once, looked up per block."""
    element = asarray(element)
    if kind not in (None, "sort", "table"):
        raise ValueError("Invalid kind: '%s'. Please use None, 'sort' or 'table'." % (kind,))
    if isinstance(test_elements, Array):
        t = one_block(test_elements if test_elements.ndim == 1 else ravel(test_elements),
                      "isin")
        layers = merge_layers(element, t)
        test = t._keys_flat()[0]
        tname = t.name
        np.isin(np.zeros(1, element.dtype), np.zeros(1, t.dtype), kind=kind)
    else:
        test = np.asarray(test_elements)
        # NumPy's checks (kind="table" needs integers...) before any task runs
        np.isin(np.zeros(1, element.dtype), test, kind=kind)
        layers = merge_layers(element)
        tname = tokenize(test)
    name = "isin-" + tokenize(element.name, tname, assume_unique, invert, kind)
    fast = None if isinstance(test, tuple) or kind == "sort" else \
        _lookup_table(element.dtype, test, invert)
    if fast is not None:
        layers[name] = {(name,) + k[1:]: (_isin_table_block, k) + fast
                        for k in element._keys_flat()}
    else:
        layers[name] = {(name,) + k[1:]: (_isin_block, k, test, bool(assume_unique),
                                          bool(invert), kind) for k in element._keys_flat()}
    return Array(layers, name, element.chunks, bool)


# ---------------------------------------------------------------------------
# searchsorted
# ---------------------------------------------------------------------------
def _searchsorted_block(a, v, side):
    return np.asarray(np.searchsorted(a, v, side=side), dtype=np.intp)


def _sum_positions(parts):
    out = np.array(parts[0], dtype=np.intp, copy=True)
    for p in parts[1:]:
        out += p
    return out


def searchsorted(a, v, side="left", sorter=None):
    """``np.searchsorted``: where the values ``v`` would go in the sorted 1-d
    array ``a`` to keep it sorted (``sorter``: the indices that sort ``a``).
    The result has ``v``'s shape and chunks."""
    a = asarray(a)
    if a.ndim != 1:
        raise ValueError("Input array a must be one dimensional")
    if side not in ("left", "right"):
        raise ValueError("side must be 'left' or 'right' (got %r)" % (side,))
    if sorter is not None:
        sorter = asarray(sorter)
        if sorter.dtype.kind not in "iu":
            raise TypeError("sorter must only contain integers")
        if sorter.shape != a.shape and not isnan(sorter.shape[0] + a.shape[0]):
            raise ValueError("sorter.size must equal a.size")
        a = a[sorter]
    scalar = np.ndim(v) == 0 and not isinstance(v, Array)
    v = asarray(v)
    np.searchsorted(np.zeros(1, a.dtype), np.zeros(1, v.dtype))   # NumPy's dtype checks
    token = tokenize("searchsorted", a.name, v.name, side)
    layers = merge_layers(a, v)
    akeys = a._keys_flat()
    oname = "searchsorted-" + token
    for vk in v._keys_flat():
        idx = vk[1:]
        pname = "searchsorted-chunk-%s-%s" % ("-".join(map(str, idx)), token)
        layers[pname] = {(pname, i): (_searchsorted_block, ak, vk, side)
                         for i, ak in enumerate(akeys)}
        sub = {}
        merge_tree(sub, "searchsorted-%s" % "-".join(map(str, idx)), token,
                   [(pname, i) for i in range(len(akeys))], _sum_positions, _sum_positions,
                   (oname,) + idx)
        for n, layer in sub.items():
            layers.setdefault(n, {}).update(layer)
    r = Array(layers, oname, v.chunks, np.intp)
    return r.reshape(()) if scalar and r.ndim else r
