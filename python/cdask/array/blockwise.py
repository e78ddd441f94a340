"""``blockwise`` (and its old name ``top``): block-level maps written in index
notation, dask's semantics.

``blockwise(func, out_ind, *arrays_and_indices, dtype=None, concatenate=None,
new_axes=None, adjust_chunks=None, align_arrays=True, **kwargs)``

* ``arrays_and_indices`` are pairs ``arg, ind``: ``ind`` a string (or tuple)
  with one letter per axis of ``arg``; ``ind=None`` passes ``arg`` unchanged
  to every call;
* a letter names one block axis: every array with that letter has its blocks
  along that axis paired with the others' (the arrays are first brought to a
  common chunking when ``align_arrays``); an array with a single block of
  length 1 along a letter that is longer elsewhere is broadcast, as is (when
  ``align_arrays=False``) any array with one block along it;
* a letter of the output (``out_ind``) gives one output block axis;
* a letter missing from the output is contracted: for each output block,
  ``func`` receives, for each array carrying that letter, the list of its
  blocks along it (nested lists for several such letters, in the order of
  the array's index) -- or, with ``concatenate=True``, those blocks
  concatenated along the axis;
* a letter repeated within one array's index (``'ii'``) pairs that array's
  axes like any others (same chunks after alignment); as an output letter
  it takes the diagonal blocks (block (k, k) for output block k), as a
  contracted letter it is listed along each axis separately (all block
  pairs) -- dask's behaviour in both cases;
* ``new_axes={letter: length or chunks}`` for output letters no input has;
* ``adjust_chunks={letter: f | int | tuple}`` changes the output chunks
  (``f`` maps each block length);
* ``dtype``: the output dtype; if missing, ``func`` is called once on small
  sample blocks to learn it.

Examples (the talk's)::
    top(lambda x: x + 1, 'ij', x, 'ij')
    top(np.transpose, 'ji', x, 'ij')
    top(dotmany, 'ik', x, 'ij', y, 'jk')   # dotmany(A, B) = sum(map(np.dot, A, B))
"""

import itertools
import math
import numbers
import warnings

import numpy as np

from .chunk_types import concatenate_blocks, note_masked
from .core import Array
from .creation import asarray
from .dtypes import check_dtype
from .mapping import Literal, MapBlocksTask, func_token
from .tokenize import tokenize
from .utils import common_chunks, isnan, merge_layers, with_layer

__all__ = ["blockwise", "top"]


def _concat_nested(nested, axes):
    """Concatenate a nested list of blocks: the outer level along ``axes[0]``."""
    if not axes:
        return nested
    if len(axes) == 1:
        return concatenate_blocks(nested, axis=axes[0])
    return concatenate_blocks([_concat_nested(n, axes[1:]) for n in nested], axis=axes[0])


def _index_tuple(ind, pos):
    if isinstance(ind, str):
        return tuple(ind)
    if isinstance(ind, (tuple, list)):
        return tuple(ind)
    raise TypeError("blockwise: the index of argument %d must be a string, a tuple of "
                    "labels or None, got %r" % (pos, ind))


def _common(label, lists):
    return common_chunks(lists, unknown_error=lambda: (
        "blockwise: index %r pairs axes with different unknown (nan) chunk sizes %s; call "
        "compute_chunk_sizes() on the arrays first" % (label, ", ".join(map(str, lists)))))


def _size(c):
    return math.nan if any(isnan(v) for v in c) else sum(c)


def blockwise(func, out_ind, *args, name=None, token=None, dtype=None, adjust_chunks=None,
              new_axes=None, align_arrays=True, concatenate=None, meta=None, **kwargs):
    """Block-level map in index notation; see the module docstring."""

    if not callable(func):
        raise TypeError("blockwise: func must be callable, got %r" % (func,))
    if len(args) % 2:
        raise ValueError("blockwise: arguments must come in (array, index) pairs; got an odd "
                         "number (%d) after out_ind" % len(args))
    out_ind = _index_tuple(out_ind, "out_ind") if out_ind is not None else ()
    if len(set(out_ind)) != len(out_ind):
        raise ValueError("blockwise: repeated index in out_ind %r" % (out_ind,))
    new_axes = dict(new_axes or {})
    pairs = []
    for k in range(0, len(args), 2):
        arg, ind = args[k], args[k + 1]
        if ind is None:
            pairs.append((arg, None))
            continue
        ind = _index_tuple(ind, k // 2)
        if not isinstance(arg, Array):
            arg = asarray(arg)
        if len(ind) != arg.ndim:
            raise ValueError("blockwise: index %r of argument %d has %d label(s) but the array "
                             "has %d dimension(s) (shape %s)"
                             % ("".join(map(str, ind)), k // 2, len(ind), arg.ndim,
                                arg.shape))
        pairs.append((arg, ind))
    arrays = [(a, ind) for a, ind in pairs if ind is not None]
    if not arrays:
        raise ValueError("blockwise needs at least one array argument with an index")
    labels = []
    for _, ind in arrays:
        for lab in ind:
            if lab not in labels:
                labels.append(lab)
    for lab in out_ind:
        if lab not in labels and lab not in new_axes:
            raise ValueError("blockwise: output index %r is not in any input index and not in "
                             "new_axes" % (lab,))
    for lab in new_axes:
        if lab in labels:
            raise ValueError("blockwise: new_axes label %r is already an input index" % (lab,))
        if lab not in out_ind:
            raise ValueError("blockwise: new_axes label %r is not in out_ind" % (lab,))

    # per label: the chunks, and which arrays broadcast along it
    chunks_of = {}
    for lab in labels:
        occ = [(j, a.chunks[d]) for j, (a, ind) in enumerate(arrays)
               for d, l in enumerate(ind) if l == lab]
        if align_arrays:
            sizes = {_size(c) for _, c in occ}
            real = [(j, c) for j, c in occ if not (_size(c) == 1 and len(sizes) > 1)]
            if not real:
                real = occ
            known = {_size(c) for _, c in real if not isnan(_size(c))}
            if len(known) > 1:
                raise ValueError("blockwise: index %r pairs axes of different lengths %s"
                                 % (lab, sorted(known)))
            chunks_of[lab] = _common(lab, [c for _, c in real])
        else:
            nbs = {len(c) for _, c in occ}
            many = [c for _, c in occ if len(c) > 1]
            if len(nbs - {1}) > 1:
                raise ValueError("blockwise: index %r has different block counts %s and "
                                 "align_arrays=False" % (lab, sorted(nbs)))
            chunks_of[lab] = many[0] if many else occ[0][1]
    if align_arrays:
        fixed = []
        for a, ind in arrays:
            want = {}
            for d, lab in enumerate(ind):
                c = a.chunks[d]
                if c == chunks_of[lab] or (_size(c) == 1 and _size(chunks_of[lab]) != 1):
                    continue
                want[d] = chunks_of[lab]
            fixed.append((a.rechunk(want) if want else a, ind))
        arrays = fixed
        it = iter(arrays)
        pairs = [next(it) if ind is not None else (a, ind) for a, ind in pairs]

    nblocks = {lab: len(c) for lab, c in chunks_of.items()}
    for lab, v in new_axes.items():
        if isinstance(v, (numbers.Integral, np.integer)):
            new_axes[lab] = (int(v),)
        else:
            new_axes[lab] = tuple(int(s) for s in v)
        nblocks[lab] = len(new_axes[lab])
    out_chunks = []
    for lab in out_ind:
        c = new_axes[lab] if lab in new_axes else chunks_of[lab]
        if adjust_chunks and lab in adjust_chunks:
            adj = adjust_chunks[lab]
            if callable(adj):
                c = tuple(adj(v) for v in c)
            elif isinstance(adj, (numbers.Integral, np.integer)):
                c = (int(adj),) * len(c)
            else:
                adj = tuple(adj)
                if len(adj) != len(c):
                    raise ValueError("blockwise: adjust_chunks for %r gives %d blocks, the "
                                     "output has %d" % (lab, len(adj), len(c)))
                c = adj
        out_chunks.append(tuple(c))
    out_chunks = tuple(out_chunks)
    contracted = [lab for lab in labels if lab not in out_ind]

    # dtype; blocks that may be masked arrays (cdask.ma): a masked meta, an np.ma function
    masked = isinstance(meta, np.ma.MaskedArray) or \
        str(getattr(func, "__module__", None) or "").startswith("numpy.ma")
    if dtype is None and meta is not None and hasattr(meta, "dtype"):
        dtype = meta.dtype
    if dtype is None:
        try:
            samples = []
            for a, ind in pairs:
                if ind is None:
                    samples.append(a)
                    continue
                s = np.ones((1,) * a.ndim, dtype=a.dtype)
                if not concatenate:
                    for lab in ind:
                        if lab in contracted:
                            s = [s]
                samples.append(s)
            with np.errstate(all="ignore"):
                r = func(*samples, **kwargs)
            masked = masked or isinstance(r, np.ma.MaskedArray)
            dtype = np.asarray(r).dtype
        except Exception as e:
            dtype = np.result_type(*[a.dtype for a, ind in arrays])
            warnings.warn("blockwise could not infer the output dtype of %s by calling it on "
                          "sample blocks (%s: %s); assuming %s, to which every block will be "
                          "cast. Pass dtype= to choose."
                          % (getattr(func, "__name__", func), type(e).__name__, e, dtype),
                          UserWarning, stacklevel=2)
    dtype = check_dtype(dtype)

    fn = MapBlocksTask(func, sorted(kwargs.items()), dtype)
    if name is None:
        prefix = token or getattr(func, "__name__", "blockwise")
        if not isinstance(prefix, str) or not prefix.isidentifier():
            prefix = "blockwise"
        name = "%s-%s" % (prefix, tokenize(func_token(func), out_ind,
                                           [(a.name, ind) if ind is not None else (a, None)
                                            for a, ind in pairs],
                                           dtype, out_chunks, sorted(kwargs.items()),
                                           concatenate, contracted))

    def block_of(a, d, i):
        # the block of ``a`` along its axis ``d`` paired with block ``i`` of its label
        return 0 if a.numblocks[d] == 1 else i

    def arg_for(a, ind, where):
        """Key, or nested list of keys over the axes of ``a`` with contracted
        labels.  As dask: a label repeated within one index takes the same
        block on each of its axes when it is an output label (the diagonal
        of blocks), and is listed along each axis separately (every block
        pair) when it is contracted."""
        mine = [d for d, lab in enumerate(ind) if lab in contracted]

        def rec(k, fixed):
            if k == len(mine):
                return (a.name,) + tuple(block_of(a, d, fixed[d] if d in fixed else
                                                  where.get(lab))
                                         for d, lab in enumerate(ind))
            d = mine[k]
            return [rec(k + 1, {**fixed, d: i}) for i in range(a.numblocks[d])]

        r = rec(0, {})
        if mine and concatenate:
            return (_concat_nested, r, mine)
        return r

    layer = {}
    for oidx in itertools.product(*[range(nblocks[lab]) for lab in out_ind]):
        where = dict(zip(out_ind, oidx))
        targs = []
        for a, ind in pairs:
            if ind is None:
                targs.append(Literal(a))
            else:
                targs.append(arg_for(a, ind, where))
        layer[(name,) + oidx] = (fn,) + tuple(targs)
    if masked:
        note_masked(name)
    return Array(with_layer(merge_layers(*[a for a, _ in arrays]), name, layer), name,
                 out_chunks, dtype)


def top(func, out_ind, *args, **kwargs):
    """The talk's name for :func:`blockwise` (same arguments)."""
    return blockwise(func, out_ind, *args, **kwargs)
