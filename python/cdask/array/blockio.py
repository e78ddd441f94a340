"""Reading and writing blocks: the task callables that move data between
source or target arrays (ndarrays, ``np.memmap`` files, zarr/h5py datasets)
and the blocks the scheduler holds.

* :func:`getter` - the task of ``from_array``: one block of an array-like.
* :func:`store_block` - the task that writes one computed block into the
  result of ``compute`` or a ``store`` target.
* :class:`FileRegion` - a memory-mapped target as it travels to the workers
  of another process: the file's path and where the target lies in it.
* :class:`SharedMap` - the read-only mapping of ``from_npy``/``from_raw``,
  which pickles as its file and its place in it (a plain memmap pickles as
  a copy of its data: every task of a graph sent to a cluster would carry
  the whole file).

Thin slabs of memory-mapped files (column blocks of C-ordered matrices) are
read with pread and written with pwrite rather than through the mapping
(:func:`file_offset` says why).  Imports only the C core.
"""

import mmap
import os
import sys

import numpy as np

from .._core import drop_pages
from .._core import pread_region
from .._core import pwrite_region
from .chunk_types import keep_block

__all__ = ["getter", "store_block", "thin_slab", "file_offset", "FileRegion", "SharedMap",
           "tokenize_maps_for_dask"]


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


class SharedMap(np.memmap):
    """An ``np.memmap`` of a file that pickles as a reference to it: the
    file's path and the byte offset, shape and strides of the view, mapped
    again where it is unpickled (the file must be there: the same machine,
    or a filesystem a cluster's workers share).  Views that cannot be
    described so (empty, negative strides) pickle as a copy."""

    def __reduce__(self):
        off = file_offset(self, self)
        item = self.dtype.itemsize
        if off is None or self.size == 0 or any(s < 0 or s % item for s in self.strides):
            return np.array(self).__reduce__()
        return (map_again, (self.filename, self.dtype, off, self.shape, self.strides))


    def __dask_tokenize__(self):
        off = file_offset(self, self)
        try:
            st = os.stat(self.filename)
            stamp = (st.st_size, st.st_mtime_ns)
        except (OSError, TypeError):
            stamp = None
        return ("cdask-shared-map", self.filename, stamp, off, self.shape, self.strides,
                self.dtype.str)


_DASK_TOKENIZES_MAPS = []


def tokenize_maps_for_dask():
    """Make dask's tokenize name a SharedMap by its file and place, as
    cdask's does: dask hashes a memmap's whole data, and a distributed
    Client tokenizes every task it is given (16 tasks of a 200 MB .npy
    read 3.2 GB).  Does nothing until dask is imported; once after."""
    if _DASK_TOKENIZES_MAPS or "dask" not in sys.modules:
        return
    from dask.tokenize import normalize_token

    normalize_token.register(SharedMap)(SharedMap.__dask_tokenize__)
    _DASK_TOKENIZES_MAPS.append(True)


def map_again(path, dtype, offset, shape, strides):
    """Unpickle a SharedMap: its bytes mapped read-only, viewed with its
    shape and strides."""
    span = sum((n - 1) * s for n, s in zip(shape, strides)) + dtype.itemsize
    m = SharedMap(path, dtype=dtype, mode="r", offset=offset, shape=(span // dtype.itemsize,))
    return np.lib.stride_tricks.as_strided(m, shape, strides, subok=True, writeable=False)


class FileRegion:
    """A C-ordered ``np.memmap`` target for tasks run in other processes: a
    memmap pickles as a copy of its data, so writes into it would be lost.
    This pickles as the file's path and the target's place in it; each
    write maps the target, writes the block as ``store_block`` writes into
    a memmap, and flushes it to the file (which a cluster's workers must
    see: a local or shared filesystem)."""

    def __init__(self, path, offset, shape, dtype):
        self.path = path
        self.offset = int(offset)
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    def __setitem__(self, index, block):
        mm = np.memmap(self.path, dtype=self.dtype, mode="r+", offset=self.offset,
                       shape=self.shape)
        try:
            if not self.shape:
                mm[()] = block
            else:
                store_mapped(mm, mm[index], block)
            mm.flush()
        finally:
            del mm


def getter(x, slices):
    """One block of an array-like: ``np.asarray(x[slices])``.  For a memmap
    this is a view of the mapped file (pages are read on use), except for a
    thin slab across the file's rows, which is read with pread."""
    b = x[slices]
    if isinstance(b, np.memmap):
        check_mapped_size(x)
        v = b.view(np.ndarray)
        if thin_slab(v):
            r = _pread_copy(x, v)
            if r is not None:
                return r
        elif reads_direct(x) and (_forced() or not _resident(v)):
            # a block of a cold large file (fused tasks read theirs
            # themselves, into reused buffers: fuse._direct_source)
            r = _direct_read(x, v, pooled=False)
            if r is not None:
                return r[1]
        return v
    return keep_block(b)


def check_mapped_size(x):
    """Raise OSError naming the file if the file of the np.memmap ``x`` is
    now shorter than its mapping: reading past the file's end through the
    mapping would kill the process (SIGBUS).  C kernels reading mappings
    are guarded in C (src/core/fault.h); this check covers the NumPy code
    that copies blocks in Python tasks."""
    name = getattr(x, "filename", None)
    if name is None:
        return
    need = getattr(x, "offset", 0) + x.nbytes
    try:
        size = os.stat(name).st_size
    except OSError as e:
        raise OSError(e.errno, "cannot read the memory-mapped file %r: %s"
                      % (name, e.strerror), name) from None
    if size < need:
        raise OSError("cannot read the memory-mapped file %r: it is shorter than when it "
                      "was mapped (%d bytes, %d needed; truncated while in use?)"
                      % (name, size, need))


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


# -- blocks drawn straight into their target ---------------------------------

_PIECE = 1 << 20        # bytes a writer draws at a time: stays in L2


def sink_writers(g, stores, store_fn):
    """Rewrite, in the cdask Graph ``g``, the stores compute() adds -
    ``(store_fn, out, key, slices)`` - of blocks made by a Python task whose
    callable has a ``pieces`` attribute (``cdask.random``'s blocks) and that
    nothing else reads: the task draws its block a piece of about 1 MiB at a
    time straight into ``out`` (``write_pieces``), never holding the whole
    block.  Likewise a task whose callable has an ``into`` attribute,
    storing into an in-memory ndarray: ``into(region, *args)`` writes the
    block straight into its place in ``out`` (no block, no copy).  The
    stores keep their keys."""
    cand = []
    for sk in stores:
        t = g[sk] if sk in g else None
        if type(t) is not tuple or len(t) != 4 or t[0] is not store_fn:
            continue
        bk = t[2]
        try:
            bt = g[bk] if bk in g else None
        except TypeError:
            continue
        if type(bt) is tuple and bt and (
                getattr(bt[0], "pieces", None) is not None or
                (getattr(bt[0], "into", None) is not None and type(t[1]) is np.ndarray)):
            cand.append((sk, bk, t[1], t[3], bt))
    if not cand:
        return
    deps = g.dependents()
    for sk, bk, out, sl, bt in cand:
        if len(deps.get(bk, ())) == 1:
            del g[bk]
            if getattr(bt[0], "into", None) is not None:
                # (a list: the keys among the arguments are read as in the task)
                g[sk] = (write_into, out, sl, bt[0].into, list(bt[1:]))
            else:
                g[sk] = (write_pieces, out, sl, bt[0].pieces, bt[1:])


def write_into(out, slices, into, args):
    """``into(out[slices], *args)``: a block computed in its place in ``out``."""
    into(out[slices] if out.ndim else out, *args)
    return None


def write_pieces(out, slices, pieces, args):
    """Write into ``out[slices]`` the C-order pieces ``pieces(*args,
    step=...)`` yields (1-d arrays whose concatenation is the block).  Into
    a memory-mapped file, when the region is one contiguous run of it, the
    pieces are written with pwrite (no page of the mapping enters the
    process) and the kernel is told to start writing the run back as soon
    as it is complete, so the disk works while the next blocks are drawn."""
    region = out[slices] if len(getattr(out, "shape", ())) else out
    step = max(1, _PIECE // max(region.itemsize, 1))
    if region.ndim == 0 or region.size == 0 or not region.flags.c_contiguous:
        store_block(out, _whole(pieces, args, step, region), slices)
        return None
    off = file_offset(out, region) if isinstance(out, np.memmap) else None
    if off is None:
        flat = region.reshape(-1)
        i = 0
        for p in pieces(*args, step=step):
            flat[i:i + p.size] = p
            i += p.size
        return None
    fd = os.open(out.filename, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        dfd = _direct_fd(out.filename, fd)
        if dfd is not None:
            try:
                _write_direct(fd, dfd, off, region, pieces(*args, step=step))
            finally:
                os.close(dfd)
            return None
        at = off
        for p in pieces(*args, step=step):
            at = _pwrite_all(fd, np.ascontiguousarray(p, dtype=region.dtype), at)
        start_writeback(fd, off, at - off)
    finally:
        os.close(fd)
    return None


def _pwrite_all(fd, a, at):
    mv = memoryview(a).cast("B")
    while len(mv):
        n = os.pwrite(fd, mv, at)
        mv = mv[n:]
        at += n
    return at


_ALIGN = 4096                   # O_DIRECT: offsets, lengths and addresses
_STAGE = 8 << 20                # bytes a direct write sends at once
_direct_min = None


def _direct_fd(path, fd):
    """A second descriptor of the file opened with O_DIRECT, when the file
    is larger than a quarter of RAM (config ``array.direct_write_min``
    bytes, if set): written through the page cache, such a file would push
    everything else out of it and the writes would wait on reclaim, where
    direct writes go to the disk at its own speed.  None for smaller files,
    or where O_DIRECT is not supported (tmpfs, other systems)."""
    global _direct_min
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    from .. import config
    limit = config.get("array.direct_write_min", None)
    if limit is None:
        if _direct_min is None:
            _direct_min = config.machine_memory() // 4
        limit = _direct_min
    try:
        if os.fstat(fd).st_size < int(limit):
            return None
        return os.open(path, os.O_WRONLY | flag | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None


def _write_direct(fd, dfd, off, region, parts):
    """Write the pieces ``parts`` (1-d arrays, in order) at byte ``off`` of
    the file: the whole pages of the run with O_DIRECT (``dfd``) from two
    aligned staging buffers - one is written by a writer thread while the
    next pieces fill the other, so drawing and the disk overlap - and the
    partial first and last pages (shared with the header or the next
    block) through the page cache (``fd``)."""
    end = off + region.nbytes
    head = min(-(-off // _ALIGN) * _ALIGN, end)      # first page boundary
    stages = []
    for _ in range(2):
        raw = np.empty(_STAGE + _ALIGN, dtype=np.uint8)
        a0 = -raw.ctypes.data % _ALIGN
        stages.append(raw[a0:a0 + _STAGE])
    pending = [None, None]      # the write in flight from each stage
    cur = 0
    stage = stages[0]
    fill = 0                    # bytes in stage, which starts at file byte pos
    pos = head
    at = off                    # file byte the next piece's first byte goes to
    pool = _writer_pool()
    try:
        for p in parts:
            b = np.ascontiguousarray(p, dtype=region.dtype).reshape(-1).view(np.uint8)
            i = 0
            if at < head:
                k = min(head - at, b.size)
                _pwrite_all(fd, b[:k], at)
                i = k
                at += k
            while i < b.size:
                k = min(_STAGE - fill, b.size - i)
                stage[fill:fill + k] = b[i:i + k]
                fill += k
                i += k
                at += k
                if fill == _STAGE:
                    pending[cur] = pool.submit(_pwrite_all, dfd, stage, pos)
                    pos += fill
                    fill = 0
                    cur = 1 - cur
                    if pending[cur] is not None:
                        pending[cur].result()
                        pending[cur] = None
                    stage = stages[cur]
    finally:
        for f in pending:
            if f is not None:
                f.result()
    whole = fill // _ALIGN * _ALIGN
    if whole:
        _pwrite_all(dfd, stage[:whole], pos)
    if fill > whole:
        _pwrite_all(fd, stage[whole:fill], pos + whole)


_pool = None


def _writer_pool():
    global _pool
    if _pool is None:
        import concurrent.futures
        _pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="cdask-write")
    return _pool


def _whole(pieces, args, step, region):
    # the pieces may share one buffer: each is copied out before the next
    flat = np.empty(region.size, dtype=region.dtype)
    i = 0
    for p in pieces(*args, step=step):
        flat[i:i + p.size] = p
        i += p.size
    return flat.reshape(region.shape)


_sync_file_range = None


def start_writeback(fd, offset, nbytes):
    """Ask the kernel to start writing the dirty pages of a range of the
    file ``fd`` to disk, without waiting (Linux's sync_file_range with
    SYNC_FILE_RANGE_WRITE); elsewhere, nothing.  Left to itself the kernel
    holds a file's dirty pages until they pass a tenth of RAM or so, and the
    fsync at the end then writes them all while nothing else runs."""
    global _sync_file_range
    if _sync_file_range is None:
        _sync_file_range = False
        try:
            import ctypes
            f = ctypes.CDLL(None, use_errno=True).sync_file_range
            f.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
            f.restype = ctypes.c_int
            _sync_file_range = f
        except (OSError, AttributeError):
            pass
    if _sync_file_range and nbytes > 0:
        _sync_file_range(fd, offset, nbytes, 2)     # SYNC_FILE_RANGE_WRITE


# -- computed blocks written with direct I/O ---------------------------------

_DIRECT_BLOCK_MIN = 1 << 20     # smaller blocks go through the page cache
_spare = []                     # aligned buffers of finished direct stores
_spare_lock = None


def direct_target(out, sl):
    """(path, byte offset) when the block ``out[sl]`` of the np.memmap
    ``out`` should be written to its file with direct I/O (see
    ``direct_store``): a contiguous run of the file, at least 1 MiB, in a
    file too large for the page cache to hold comfortably (``_direct_fd``'s
    rule: over a quarter of RAM, or config ``array.direct_write_min``).
    None otherwise, and where O_DIRECT does not exist."""
    if not getattr(os, "O_DIRECT", 0) or not isinstance(out, np.memmap):
        return None
    region = out[sl]
    if (region.ndim == 0 or region.nbytes < _DIRECT_BLOCK_MIN
            or not region.flags.c_contiguous):
        return None
    off = file_offset(out, region)
    if off is None:
        return None
    try:
        if os.path.getsize(out.filename) < _direct_limit():
            return None
    except OSError:
        return None
    return out.filename, off


def _direct_limit():
    global _direct_min
    from .. import config
    limit = config.get("array.direct_write_min", None)
    if limit is None:
        if _direct_min is None:
            _direct_min = config.machine_memory() // 4
        limit = _direct_min
    return int(limit)


def _take_buffer(nbytes, phase):
    """An uint8 array of ``nbytes`` whose first byte sits ``phase`` bytes
    past a page boundary (so that the file's page boundaries fall on
    aligned addresses), from the spare buffers when one is big enough."""
    global _spare_lock
    if _spare_lock is None:
        import threading
        _spare_lock = threading.Lock()
    raw = None
    with _spare_lock:
        for i, r in enumerate(_spare):
            if r.size >= nbytes + 2 * _ALIGN:
                raw = _spare.pop(i)
                break
    if raw is None:
        raw = np.empty(nbytes + 2 * _ALIGN, dtype=np.uint8)
    a0 = (-raw.ctypes.data + phase) % _ALIGN
    return raw, raw[a0:a0 + nbytes]


def _give_buffer(raw):
    if _spare_lock is None:
        return                      # not a spare buffer (_direct_read, pooled=False)
    with _spare_lock:
        _spare.append(raw)


def release_buffers():
    """Free the spare buffers of direct stores (after a store)."""
    if _spare_lock is not None:
        with _spare_lock:
            del _spare[:]


def direct_store(kernel, out, sl, reads, *inputs):
    """The task of a stored fused-kernel block ``out[sl]`` of a large file
    (``direct_target``): the kernel computes the block into an aligned
    buffer (``kernel`` is the store kernel with its destination box at the
    origin), and the buffer is written to the file - its whole pages with
    O_DIRECT, straight from the buffer to the disk, the partial pages at
    either end (shared with the header or a neighbour) through the page
    cache.  Where the filesystem refuses O_DIRECT (EINVAL: tmpfs, some
    network and FUSE filesystems), everything goes through the page cache."""
    region = out[sl]
    path, off = out.filename, file_offset(out, region)
    shape, dtype, n = region.shape, region.dtype, region.nbytes
    del region
    args, taken = read_inputs(reads, inputs)
    raw, buf = _take_buffer(n, off % _ALIGN)
    taken.append(raw)
    try:
        kernel(*args, buf.view(dtype).reshape(shape))
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            end = off + n
            head = min(-(-off // _ALIGN) * _ALIGN, end)      # first page boundary
            tail = max(end // _ALIGN * _ALIGN, head)         # last one
            if head > off:
                _pwrite_all(fd, buf[:head - off], off)
            if tail > head and not _pwrite_direct(path, buf[head - off:tail - off], head):
                _pwrite_all(fd, buf[head - off:tail - off], head)
            if end > tail:
                _pwrite_all(fd, buf[tail - off:], tail)
        finally:
            os.close(fd)
    finally:
        for r in taken:
            _give_buffer(r)
    return None


def _pwrite_direct(path, body, at):
    """Write ``body`` (page-aligned address, length and offset ``at``) with
    O_DIRECT; False, having written nothing, where the filesystem refuses."""
    import errno
    try:
        dfd = os.open(path, os.O_WRONLY | os.O_DIRECT | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
            return False
        raise
    try:
        mv = memoryview(body)
        first = True
        while len(mv):
            try:
                k = os.pwrite(dfd, mv, at)
            except OSError as e:
                if first and e.errno == errno.EINVAL:
                    return False
                raise
            first = False
            mv = mv[k:]
            at += k
    finally:
        os.close(dfd)
    return True


# -- cold blocks read with direct I/O ----------------------------------------

_mincore = None
_cold_files = {}                # id(memmap) -> (time, memmap, reads_direct)


def _mincore_fn():
    global _mincore
    if _mincore is None:
        _mincore = False
        try:
            import ctypes
            f = ctypes.CDLL(None, use_errno=True).mincore
            f.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
            f.restype = ctypes.c_int
            _mincore = f
        except (OSError, AttributeError):
            pass
    return _mincore


def _resident_share(addr, nbytes, samples):
    """The share of ``samples`` pages spread over [addr, addr + nbytes) of a
    mapping that are in the page cache (mincore); 1.0 where that cannot be
    told, so that the mapping is read as before."""
    f = _mincore_fn()
    if not f or nbytes <= 0:
        return 1.0
    import ctypes
    vec = ctypes.create_string_buffer(1)
    lo = addr - addr % _ALIGN
    hits = n = 0
    for k in range(samples):
        a = lo + (nbytes * k // samples) // _ALIGN * _ALIGN
        if f(a, _ALIGN, vec) != 0:
            return 1.0
        hits += vec.raw[0] & 1
        n += 1
    return hits / n


def _resident(v):
    """Is most of the view v of a mapping in the page cache (16 pages sampled)?"""
    return _resident_share(v.ctypes.data, v.nbytes, 16) >= 0.5


def reads_direct(x):
    """Are blocks of the np.memmap ``x`` read with direct I/O (those not in
    the page cache, see ``getter``)?  Config ``array.direct_read``: True
    (every block, cached or not), False, or "auto" (the default): when the
    file is larger than a quarter of RAM (``array.direct_write_min``, as for
    writes) and most of a sample of its pages is not in the page cache.
    Decided at most once a second per array."""
    from .. import config
    mode = config.get("array.direct_read", "auto")
    if mode is False or not getattr(os, "O_DIRECT", 0) or file_offset(x, x) is None:
        return False
    if mode is True:
        return True
    import time
    now = time.monotonic()
    hit = _cold_files.get(id(x))
    if hit is not None and hit[1] is x and now - hit[0] < 1.0:
        return hit[2]
    try:
        big = os.path.getsize(x.filename) >= _direct_limit()
    except OSError:
        big = False
    r = big and _resident_share(x.ctypes.data, x.nbytes, 64) < 0.5
    if len(_cold_files) > 64:
        _cold_files.clear()
    _cold_files[id(x)] = (now, x, r)
    return r


def _forced():
    from .. import config
    return config.get("array.direct_read", "auto") is True


def read_inputs(reads, inputs):
    """The arguments of a fused task that reads some inputs itself:
    ``reads`` holds (i, slices) for each input i that is an np.memmap of a
    large file (``reads_direct``), whose block ``slices`` is read with
    O_DIRECT into an aligned buffer when it is not in the page cache, and is
    a view of the mapping otherwise.  Returns (args, buffers taken)."""
    args = list(inputs)
    taken = []
    try:
        for i, sl in reads:
            x = args[i]
            check_mapped_size(x)
            v = x[sl].view(np.ndarray)
            if _forced() or not _resident(v):
                r = _direct_read(x, v)
                if r is not None:
                    taken.append(r[0])
                    v = r[1]
            args[i] = v
    except BaseException:
        for r in taken:
            _give_buffer(r)
        raise
    return args, taken


def direct_call(kernel, reads, *inputs):
    """A fused task whose cold inputs are read with direct I/O (see
    ``read_inputs``) into buffers reused by the next tasks: each worker
    holds a block per input at a time, however far the reads could run
    ahead of the kernels."""
    args, taken = read_inputs(reads, inputs)
    try:
        r = kernel(*args)
    except BaseException:
        for b in taken:
            _give_buffer(b)
        raise
    for b in taken:
        if isinstance(r, np.ndarray) and np.shares_memory(r, b):
            continue                    # the result is the block itself: it keeps it
        _give_buffer(b)
    return r


def _direct_read(x, v, pooled=True):
    """The C-contiguous view v of the np.memmap x (at least 1 MiB), read
    from x's file with O_DIRECT into a spare buffer whose first byte sits at
    the file offset's place within a page (so every whole page is read
    straight into it by the disk, in one request of the block's size); the
    partial pages at either end are read through the page cache.  Returns
    (the buffer to give back, the block), or None where that cannot be done
    (not contiguous, small, O_DIRECT refused).  ``pooled=False``: a new
    buffer, which the block owns."""
    if not v.flags.c_contiguous or v.nbytes < _DIRECT_BLOCK_MIN:
        return None
    off = file_offset(x, v)
    if off is None:
        return None
    import errno
    n = v.nbytes
    if pooled:
        raw, buf = _take_buffer(n, off % _ALIGN)
    else:
        raw = np.empty(n + _ALIGN, dtype=np.uint8)
        a0 = (off - raw.ctypes.data) % _ALIGN
        buf = raw[a0:a0 + n]
    give = _give_buffer if pooled else (lambda r: None)
    end = off + n
    head = min(-(-off // _ALIGN) * _ALIGN, end)
    tail = max(end // _ALIGN * _ALIGN, head)
    try:
        try:
            dfd = os.open(x.filename, os.O_RDONLY | os.O_DIRECT | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                give(raw)
                return None
            raise
        try:
            _pread_into(dfd, buf[head - off:tail - off], head, x.filename)
        except OSError as e:
            if e.errno == errno.EINVAL:
                give(raw)
                return None
            raise
        finally:
            os.close(dfd)
        if head > off or end > tail:
            fd = os.open(x.filename, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                if head > off:
                    _pread_into(fd, buf[:head - off], off, x.filename)
                if end > tail:
                    _pread_into(fd, buf[tail - off:], tail, x.filename)
            finally:
                os.close(fd)
    except BaseException:
        give(raw)
        raise
    return raw, buf.view(v.dtype).reshape(v.shape)


def _pread_into(fd, mv, at, name):
    mv = memoryview(mv)
    while len(mv):
        k = os.preadv(fd, [mv], at)
        if k == 0:
            raise OSError("cannot read %r: it ends before byte %d (truncated while in use?)"
                          % (name, at + len(mv)))
        mv = mv[k:]
        at += k
