"""Writing arrays out block by block, and reading raw binary files.

* ``store(sources, targets)``: each block of each source is written into its
  place in the target (anything with NumPy's ``__setitem__``: an ndarray, an
  ``np.memmap``, a zarr or h5py array); the result is never held whole.
  C-contiguous ndarray and memmap targets are written straight by the fused
  C tasks that compute the blocks (no block-sized chunk in between).
* ``Array.to_npy(path)`` / ``to_npy(x, path)``: a ``.npy`` file written through
  a memory mapping.  The file is made under a temporary name in the target's
  directory, its whole size is reserved first (``posix_fallocate``: a full
  disk under a mapping would kill the process with SIGBUS instead of
  raising), and it is renamed onto ``path`` only once every block is in:
  a failed compute leaves no file that looks complete, and no temporary.
  When ``to_npy`` returns the file is durable: its data was synced before
  the rename (``msync`` with ``MS_SYNC``, which on Linux writes back and
  waits for every dirty page of the range, direct writes included), and the
  directory after it (``fsync``), so a crash after the return loses neither.
* ``from_raw(path, dtype, shape, offset=0, order="C")``: a raw binary file,
  memory-mapped and checked to hold the data before it is mapped.
"""

import os
import uuid

import numpy as np

from .blockio import SharedMap, release_buffers
from .compute import run
from .core import Array
from .creation import from_array
from .dtypes import check_dtype
from .tokenize import tokenize
from .utils import chunks_known

__all__ = ["store", "to_npy", "from_raw", "from_zarr", "to_zarr"]


def _check_source(a):
    if not isinstance(a, Array):
        raise TypeError("store: sources must be cdask Arrays, got %s" % type(a).__name__)
    if not chunks_known(a):
        raise ValueError("store: %s has unknown chunk sizes; call x.compute_chunk_sizes() "
                         "first" % a.name)


def store(sources, targets, lock=True, regions=None, compute=True, return_stored=False,
          **kwargs):
    """Write each source Array into its target, block by block (dask's
    ``store``).  ``regions``: per target, the index (tuple of slices) of the
    target the source goes to.  Computes at once (``compute=False`` is not
    supported: cdask has no delayed objects)."""
    if isinstance(sources, Array):
        sources, targets = [sources], [targets]
        if regions is not None and not isinstance(regions, list):
            regions = [regions]
    sources, targets = list(sources), list(targets)
    if len(sources) != len(targets):
        raise ValueError("store: %d sources and %d targets" % (len(sources), len(targets)))
    if not compute:
        raise NotImplementedError("store(compute=False): cdask computes stores at once")
    if regions is None:
        regions = [None] * len(sources)
    outs = []
    for a, t, r in zip(sources, targets, regions):
        _check_source(a)
        if not hasattr(t, "__setitem__"):
            raise TypeError("store: target %r has no __setitem__" % (t,))
        if r is not None:
            if isinstance(t, np.ndarray):
                t = t[r]
                if not np.shares_memory(t, targets[len(outs)]) and t.size:
                    raise ValueError("store: region %r of the target is not a view" % (r,))
            else:
                t = _Region(t, r)
        shape = tuple(getattr(t, "shape", ()))
        if shape != a.shape:
            raise ValueError("store: source shape %s does not match target shape %s"
                             % (a.shape, shape))
        outs.append(t)
    run(sources, outs, kwargs)
    if return_stored:
        return tuple(sources)
    return None


class _Region:
    """A target's region: writes into ``target[region][index]``."""

    def __init__(self, target, region):
        self.target = target
        self.region = tuple(region) if isinstance(region, tuple) else (region,)
        full = tuple(getattr(target, "shape", ()))
        self.shape = tuple(len(range(*s.indices(n))) if isinstance(s, slice) else 1
                           for s, n in zip(self.region, full)) + full[len(self.region):]
        self.ndim = len(self.shape)

    def __setitem__(self, index, value):
        if not isinstance(index, tuple):
            index = (index,)
        full = tuple(getattr(self.target, "shape", ()))
        idx = []
        for k, reg in enumerate(self.region):
            lo, _, step = reg.indices(full[k])
            sub = index[k] if k < len(index) else slice(None)
            a, b, _ = sub.indices(self.shape[k])
            idx.append(slice(lo + a * step, lo + b * step, step))
        idx += list(index[len(self.region):])
        self.target[tuple(idx)] = value


def _check_dir(path):
    d = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(d):
        raise FileNotFoundError("to_npy: the directory of %r does not exist" % path)
    if not os.access(d, os.W_OK | os.X_OK):
        raise PermissionError("to_npy: cannot write in the directory of %r" % path)
    if os.path.isdir(path):
        raise IsADirectoryError("to_npy: %r is a directory" % path)
    return d


def to_npy(x, path, **kwargs):
    """Compute the Array ``x`` into a ``.npy`` file at ``path`` (see the module
    docstring: temporary name, space reserved first, renamed on success)."""
    _check_source(x)
    path = os.fspath(path)
    d = _check_dir(path)
    tmp = os.path.join(d, ".%s.cdask-%s.tmp" % (os.path.basename(path), uuid.uuid4().hex[:12]))
    fmt = np.lib.format
    header = {"descr": fmt.dtype_to_descr(x.dtype), "fortran_order": False,
              "shape": tuple(int(s) for s in x.shape)}
    nbytes = int(np.prod(x.shape, dtype=np.int64)) * x.dtype.itemsize
    try:
        with open(tmp, "wb") as f:
            try:
                fmt.write_array_header_1_0(f, header)
            except ValueError:
                fmt.write_array_header_2_0(f, header)
            offset = f.tell()
            f.flush()
            try:
                os.posix_fallocate(f.fileno(), 0, offset + nbytes)
            except OSError as e:
                raise OSError(e.errno, "to_npy: cannot reserve %d bytes for %r (%s)"
                              % (offset + nbytes, path, e.strerror), path) from None
            except AttributeError:          # pragma: no cover - no posix_fallocate
                f.truncate(offset + nbytes)
        if nbytes:
            mm = np.memmap(tmp, dtype=x.dtype, mode="r+", offset=offset, shape=x.shape,
                           order="C")
            try:
                run([x], [mm], kwargs)
                mm.flush()
            finally:
                del mm
                release_buffers()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_dir(d)
    return path


def _sync_dir(d):
    """fsync the directory ``d``, so that a rename into it survives a crash
    (the file's own data was synced before: msync with MS_SYNC).  Where a
    directory cannot be opened or synced (some platforms and filesystems),
    nothing."""
    try:
        fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def from_raw(path, dtype, shape, offset=0, order="C", chunks="auto", name=None):
    """Memory-map a raw binary file of ``dtype`` elements (``shape``, C or
    Fortran ``order``, starting ``offset`` bytes in) as a cdask Array.  A
    file too short for the data raises ValueError naming it, before mapping."""

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError("from_raw: no such file: %r" % path)
    dtype = np.dtype(dtype)
    check_dtype(dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype)
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError("from_raw: negative dimension in shape %s" % (shape,))
    if order not in ("C", "F"):
        raise ValueError("from_raw: order must be 'C' or 'F', got %r" % (order,))
    offset = int(offset)
    if offset < 0:
        raise ValueError("from_raw: offset must be >= 0, got %d" % offset)
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = os.path.getsize(path)
    if size < offset + n:
        raise ValueError("from_raw: %r holds %d bytes, fewer than offset %d + %d bytes of "
                         "%s %s" % (path, size, offset, n, shape, dtype))
    if n == 0:
        return from_array(np.empty(shape, dtype=dtype, order=order), chunks=chunks, name=name)
    mm = SharedMap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
    return from_array(mm, chunks=chunks, name=name)


def _zarr():
    try:
        import zarr
    except ImportError:
        raise ImportError("cdask: zarr is needed for this (pip install zarr)") from None
    return zarr


def from_zarr(url, component=None, chunks=None, name=None, **kwargs):
    """A zarr array (an open ``zarr.Array``, or a store path/URL with an
    optional ``component`` path inside it) as a cdask Array; its blocks are
    read by tasks, in the zarr array's own chunks unless ``chunks`` is given."""

    zarr = _zarr()
    if isinstance(url, (str, os.PathLike)):
        z = zarr.open_array(os.fspath(url) if isinstance(url, os.PathLike) else url,
                            mode="r", path=component, **kwargs)
        if name is None:
            name = "from-zarr-" + tokenize(os.fspath(url), component, z.shape, str(z.dtype),
                                           chunks)
    else:
        z = url
    return from_array(z, chunks=chunks if chunks is not None else z.chunks, name=name)


def to_zarr(x, url, component=None, overwrite=False, compute=True, **kwargs):
    """Write the Array ``x`` to a new zarr array at ``url`` (a path or store;
    ``component`` a path inside it), zarr chunks = x's blocks (irregular
    blocks are first rechunked to regular ones, so no two tasks ever write
    one zarr chunk), or into an existing ``zarr.Array`` of x's shape."""
    zarr = _zarr()
    _check_source(x)
    if not compute:
        raise NotImplementedError("to_zarr(compute=False): cdask computes stores at once")
    regular = all(len(set(c[:-1])) <= 1 and (len(c) < 2 or c[-1] <= c[0]) for c in x.chunks)
    if not regular:
        x = x.rechunk(tuple(max(c) if c else 0 for c in x.chunks))
    if isinstance(url, zarr.Array):
        z = url
    else:
        z = zarr.open_array(os.fspath(url) if isinstance(url, os.PathLike) else url,
                            mode="w" if overwrite else "w-", path=component, shape=x.shape,
                            dtype=x.dtype, chunks=tuple(max(c[0], 1) if c else 1
                                                        for c in x.chunks), **kwargs)
    store(x, z)
    return z
