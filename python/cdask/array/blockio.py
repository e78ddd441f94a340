"""Reading and writing blocks: the task callables that move data between
source or target arrays (ndarrays, ``np.memmap`` files, zarr/h5py datasets)
and the blocks the scheduler holds.

* :func:`getter` - the task of ``from_array``: one block of an array-like.
* :func:`store_block` - the task that writes one computed block into the
  result of ``compute`` or a ``store`` target.

Thin slabs of memory-mapped files (column blocks of C-ordered matrices) are
read with pread and written with pwrite rather than through the mapping
(:func:`file_offset` says why).  Imports only the C core.
"""

import mmap

import numpy as np

from .._core import drop_pages
from .._core import pread_region
from .._core import pwrite_region

__all__ = ["getter", "store_block", "thin_slab", "file_offset"]


def store_block(out, block, slices):
    """Write one computed block into the preallocated result."""
    if len(getattr(out, "shape", ())) == 0:
        out[()] = block
    elif isinstance(out, np.memmap):
        store_mapped(out, out[slices], block)
    else:
        out[slices] = block
    if isinstance(block, np.ndarray):
        drop_pages(block)          # a block read from a memmap: its pages go too
    return None


_STORE_SPAN = 8 << 20


def thin_slab(v):
    """Is the ndarray view v a thin slab across a file's rows - a column
    block of a C-ordered matrix, say: over 256 KiB, in contiguous rows,
    spanning more than 4 times its bytes?"""
    if v.ndim < 2 or v.nbytes < (256 << 10) or v.strides[-1] != v.itemsize:
        return False
    if any(s < 0 for s in v.strides):
        return False
    span = sum((n - 1) * s for n, s in zip(v.shape, v.strides)) + v.itemsize
    return span > 4 * v.nbytes


def file_offset(x, v):
    """The byte offset in the file of np.memmap x of the first element of v,
    a view of x; None unless x is a shared mapping ('r', 'r+', 'w+': the
    file and the mapping hold the same bytes, which the changes of a
    copy-on-write 'c' memmap would not) with a known file.

    Thin slabs (thin_slab) of memory-mapped files are read and written with
    pread/pwrite, a row at a time, rather than through the mapping: every
    row touched through a mapping maps a page into the process - on Linux
    6.x the whole large folio of the page cache around it: writing a
    column block of a 512 MB file mapped 400 MB - and dropping the pages
    afterwards (to keep resident memory bounded) costs a fault per row
    the next time.  Measured, a 16000 x 16000 row-to-column rechunk stored
    to .npy: 12.8 s through mappings, 3.9 s with pread/pwrite (page-cached)."""
    m = getattr(x, "_mmap", None)
    if m is None or getattr(x, "filename", None) is None or \
            getattr(x, "mode", None) not in ("r", "r+", "w+"):
        return None
    try:
        base = np.frombuffer(m, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError, BufferError):
        return None
    start = x.offset - x.offset % mmap.ALLOCATIONGRANULARITY
    return v.ctypes.data - base + start


def store_mapped(out, region, block):
    """Write ``block`` into ``region``, a view of the memory-mapped target
    ``out``, and drop the written pages from the process (they stay in the
    page cache until written back, so nothing is lost): resident memory
    stays bounded however large the target.  A thin region (thin_slab) is
    written with pwrite (file_offset says why); other regions spanning
    more than 8 MB are written a band of rows at a time, each band's pages
    dropped before the next is touched."""
    if region.ndim == 0 or region.size == 0:
        region[...] = block
        return
    if thin_slab(region):
        off = file_offset(out, region)
        if off is not None:
            src = np.ascontiguousarray(np.broadcast_to(np.asarray(block), region.shape)
                                       .astype(region.dtype, copy=False))
            pwrite_region(out.filename, off, region.strides, src)
            return
    span = sum((n - 1) * abs(st) for n, st in zip(region.shape, region.strides))
    span += region.itemsize
    step = abs(region.strides[0]) or 1
    if span <= max(2 * region.nbytes, _STORE_SPAN) or region.shape[0] == 1:
        region[...] = block
        drop_pages(region)
        return
    src = np.broadcast_to(np.asarray(block), region.shape)
    rows = max(1, _STORE_SPAN // step)
    for r0 in range(0, region.shape[0], rows):
        band = region[r0:r0 + rows]
        band[...] = src[r0:r0 + rows]
        drop_pages(band)


def getter(x, slices):
    """One block of an array-like: ``np.asarray(x[slices])``.  For a memmap
    this is a view of the mapped file (pages are read on use), except for a
    thin slab across the file's rows, which is read with pread."""
    b = x[slices]
    if isinstance(b, np.memmap):
        v = b.view(np.ndarray)
        if thin_slab(v):
            r = _pread_copy(x, v)
            if r is not None:
                return r
        return v
    return np.asarray(b)


def _pread_copy(x, v):
    """The elements of v (a view of the memmap x) read from x's file with
    pread, into a new array; None where that cannot be done (see
    file_offset: through the mapping every row would map pages into
    the process, which pread does not)."""
    off = file_offset(x, v)
    if off is None:
        return None
    out = np.empty(v.shape, dtype=v.dtype)
    pread_region(x.filename, off, v.strides, out)
    return out
