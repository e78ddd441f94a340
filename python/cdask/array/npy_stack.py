"""dask's stacks of ``.npy`` files: ``to_npy_stack`` and ``from_npy_stack``.

The format is dask's own, so that each side reads what the other wrote: a
directory holding ``0.npy``, ``1.npy``, ... (the array cut along one axis by
its chunks along that axis, each file whole along the other axes) and
``info``, a pickle of ``{"chunks": ..., "dtype": ..., "axis": ...}``.

* ``to_npy_stack(dirname, x, axis=0)``: each file is made at its full size
  and memory-mapped, and the blocks are stored into it by one compute (no
  rechunk: a block goes to its place in its file).  ``info`` is written
  last, so a failed compute leaves no stack that reads as complete.
* ``from_npy_stack(dirname, mmap_mode="r")``: each file memory-mapped
  (``from_npy``, one block per file) and the blocks joined along the axis;
  the files are checked against ``info`` (shape, dtype) first.
"""

import os
import pickle

import numpy as np

from .core import Array
from .creation import from_npy
from .joining import concatenate
from .store import store
from .utils import chunks_known, normalize_axis_index

__all__ = ["to_npy_stack", "from_npy_stack"]


def to_npy_stack(dirname, x, axis=0):
    """Write the Array ``x`` into the directory ``dirname`` (made if missing)
    as one ``.npy`` file per chunk along ``axis`` plus an ``info`` file, in
    dask's format."""
    if not isinstance(x, Array):
        raise TypeError("to_npy_stack: x must be a cdask Array, got %s" % type(x).__name__)
    if x.ndim == 0:
        raise ValueError("to_npy_stack: x must have at least one dimension")
    if not chunks_known(x):
        raise ValueError("to_npy_stack: x has unknown chunk sizes; call "
                         "x.compute_chunk_sizes() first")
    axis = normalize_axis_index(axis, x.ndim)
    dirname = os.fspath(dirname)
    if not os.path.exists(dirname):
        os.mkdir(dirname)
    elif not os.path.isdir(dirname):
        raise NotADirectoryError("to_npy_stack: %r is not a directory" % dirname)
    info = os.path.join(dirname, "info")
    if os.path.exists(info):
        os.unlink(info)         # the stack there is being replaced: unreadable until done
    chunks = tuple(tuple(int(s) for s in c) if i == axis else (int(sum(c)),)
                   for i, c in enumerate(x.chunks))
    sources, targets = [], []
    lo = 0
    for i, n in enumerate(chunks[axis]):
        path = os.path.join(dirname, "%d.npy" % i)
        part = x[(slice(None),) * axis + (slice(lo, lo + n),)]
        lo += n
        if part.size == 0:
            np.save(path, np.empty(part.shape, dtype=x.dtype))
            continue
        sources.append(part)
        targets.append(np.lib.format.open_memmap(path, mode="w+", dtype=x.dtype,
                                                 shape=part.shape))
    try:
        if sources:
            store(sources, targets)
        for t in targets:
            t.flush()
    finally:
        del targets
    with open(info, "wb") as f:
        pickle.dump({"chunks": chunks, "dtype": x.dtype, "axis": axis}, f)


def from_npy_stack(dirname, mmap_mode="r"):
    """The stack of ``.npy`` files in ``dirname`` (dask's format, see the
    module docstring) as a cdask Array with the chunks ``info`` records.
    Blocks are read from the files when computed whatever ``mmap_mode``
    (None or "r")."""
    if mmap_mode not in (None, "r"):
        raise ValueError("from_npy_stack: mmap_mode must be None or 'r', got %r" % (mmap_mode,))
    dirname = os.fspath(dirname)
    info_path = os.path.join(dirname, "info")
    if not os.path.exists(info_path):
        raise FileNotFoundError("from_npy_stack: %r has no info file (not a stack written by "
                                "to_npy_stack)" % dirname)
    with open(info_path, "rb") as f:
        info = pickle.load(f)
    try:
        chunks = tuple(tuple(int(s) for s in c) for c in info["chunks"])
        dtype = np.dtype(info["dtype"])
        axis = int(info["axis"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError("from_npy_stack: %r is not a stack's info file (%s)"
                         % (info_path, e)) from None
    if not 0 <= axis < len(chunks):
        raise ValueError("from_npy_stack: %r records axis %d for %d dimensions"
                         % (info_path, axis, len(chunks)))
    parts = []
    for i, n in enumerate(chunks[axis]):
        path = os.path.join(dirname, "%d.npy" % i)
        want = tuple(n if d == axis else c[0] for d, c in enumerate(chunks))
        part = from_npy(path, chunks=tuple(max(s, 1) for s in want))
        if part.shape != want or part.dtype != dtype:
            raise ValueError("from_npy_stack: %r holds %s %s; the stack's info says %s %s"
                             % (path, part.shape, part.dtype, want, dtype))
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    return concatenate(parts, axis=axis)
