"""``map_blocks`` with dask's semantics.

``map_blocks(func, *args, dtype=None, chunks=None, drop_axis=None,
new_axis=None, name=None, token=None, meta=None, **kwargs)``:

* cdask Arrays among ``args`` are cut into aligned blocks (NumPy broadcasting
  from the right; differing chunkings are brought to a common one); every
  other argument is passed to each call unchanged;
* ``block_id=`` is passed when ``func``'s signature names it: the output
  block's index;
* ``block_info=`` is passed when ``func``'s signature names it: a dict with,
  for each Array argument (keyed by its position in ``args``), ``'shape'``,
  ``'num-chunks'``, ``'chunk-location'`` and ``'array-location'`` (a list of
  ``(start, stop)`` per axis), and under the key ``None`` the same for the
  output plus ``'chunk-shape'`` and ``'dtype'``;
* ``drop_axis``: axes of the (broadcast) input that ``func`` removes; an
  input with several blocks along a dropped axis is first rechunked to one
  block along it, so ``func`` sees the whole axis;
* ``new_axis``: positions (in the output) of axes ``func`` adds, one block of
  length 1 each unless ``chunks`` says otherwise;
* ``chunks``: the output chunks, per-axis tuples or one block shape (every
  block that shape);
* ``enforce_ndim=True``: a block with the wrong number of dimensions raises
  ValueError when it is computed;
* ``dtype``: the output dtype; when missing, ``func`` is called once on
  small sample blocks to find it (``meta.dtype`` is used when given).

Every block ``func`` returns is cast to the output dtype (cdask writes
blocks into a preallocated result).
"""

import inspect
import itertools
import math
import numbers
import warnings

import numpy as np

from .chunk_types import keep_block, note_masked
from .chunks import chunk_offsets
from .core import Array
from .dtypes import check_dtype
from .elemwise import unify_chunks_broadcast
from .tokenize import tokenize
from .utils import broadcast_shapes, isnan, merge_layers, with_layer

__all__ = ["map_blocks"]


class Literal:
    """A task argument passed through unchanged by every scheduler (dask's
    graph rules would read a tuple starting with a callable as a task, and a
    tuple equal to a key as that key's value)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (Literal, (self.value,))

    def __repr__(self):
        return "Literal(%r)" % (self.value,)


def _unwrap(v):
    return v.value if type(v) is Literal else v


class MapBlocksTask:
    """The per-block callable: ``func(*blocks_and_args, **kwargs)`` (plus
    ``block_id``/``block_info`` when asked), result cast to ``dtype``."""

    __slots__ = ("func", "kwargs", "dtype", "pass_id", "pass_info", "ndim")

    def __init__(self, func, kwargs, dtype, pass_id=False, pass_info=False, ndim=None):
        self.func = func
        self.kwargs = tuple(kwargs)
        self.dtype = dtype
        self.pass_id = pass_id
        self.pass_info = pass_info
        self.ndim = ndim

    @property
    def __name__(self):
        return getattr(self.func, "__name__", "map_blocks")

    def __reduce__(self):
        return (MapBlocksTask, (self.func, self.kwargs, self.dtype, self.pass_id,
                                self.pass_info, self.ndim))

    def __call__(self, *args):
        extra = dict(self.kwargs)
        args = list(args)
        if self.pass_info:
            # a fresh copy per call: func may change it, the graph may run again
            extra["block_info"] = {k: dict(v) for k, v in _unwrap(args.pop()).items()}
        if self.pass_id:
            extra["block_id"] = _unwrap(args.pop())
        r = self.func(*[_unwrap(a) for a in args], **extra)
        r = keep_block(r)
        if self.ndim is not None and r.ndim != self.ndim:
            raise ValueError("map_blocks: %s returned a block with %d dimension(s), but the "
                             "output has %d (enforce_ndim=True)"
                             % (self.__name__, r.ndim, self.ndim))
        if self.dtype is not None and r.dtype != self.dtype:
            r = r.astype(self.dtype)
        return r


def func_token(func):
    """What identifies ``func`` for a layer name.  ``tokenize`` alone tells
    lambdas and local functions apart by bytecode only, so ``lambda b: b + 1``
    and ``lambda b: b + 2`` (or two closures over different values) would get
    the same name and one would silently replace the other in a graph; the
    constants, defaults and closure values are added here."""
    parts = [func]
    code = getattr(func, "__code__", None)
    if code is not None:
        parts.append(repr(code.co_consts))
        parts.append(code.co_names)
        parts.append(getattr(func, "__defaults__", None))
        kwd = getattr(func, "__kwdefaults__", None)
        parts.append(sorted(kwd.items()) if kwd else None)
        cells = []
        for c in getattr(func, "__closure__", None) or ():
            try:
                v = c.cell_contents
            except ValueError:
                v = None
            cells.append(func_token(v) if callable(v) else v)
        parts.append(cells)
    return tokenize(*parts)


def _takes(func, name):
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def normalize_new_axes(v, nd, what):
    if v is None:
        return []
    vals = [v] if isinstance(v, (numbers.Integral, np.integer)) else list(v)
    out = []
    for a in vals:
        a = int(a)
        if not -nd <= a < nd:
            raise np.exceptions.AxisError(a, nd, msg_prefix=what)
        out.append(a % nd)
    if len(set(out)) != len(out):
        raise ValueError("map_blocks: repeated axis in %s" % what)
    return sorted(out)


def _location(chunks, idx):
    out = []
    for c, i in zip(chunks, idx):
        if any(isnan(v) for v in c[:i + 1]):
            out.append((math.nan, math.nan))
        else:
            o = chunk_offsets(c[:i + 1])
            out.append((o[i], o[i + 1]))
    return out


def _shape(chunks):
    return tuple(math.nan if any(isnan(v) for v in c) else int(sum(c)) for c in chunks)


def map_blocks(func, *args, dtype=None, chunks=None, drop_axis=None, new_axis=None,
               name=None, token=None, meta=None, enforce_ndim=False, **kwargs):
    """Apply ``func`` to every block; see the module docstring."""
    if not callable(func):
        raise TypeError("map_blocks: func must be callable, got %r (the function comes "
                        "first: map_blocks(func, *arrays))" % (func,))
    arrays = [a for a in args if isinstance(a, Array)]
    if not arrays:
        raise ValueError("map_blocks needs at least one cdask Array argument")
    out_shape = broadcast_shapes([a.shape for a in arrays])
    nd = len(out_shape)
    drop = normalize_new_axes(drop_axis, nd, "drop_axis")
    if drop:
        fixed = []
        for a in arrays:
            off = nd - a.ndim
            w = {d - off: -1 for d in drop if d >= off and len(a.chunks[d - off]) > 1}
            fixed.append(a.rechunk(w) if w else a)
        arrays = fixed
    arrays, in_chunks = unify_chunks_broadcast(arrays, out_shape)
    it = iter(arrays)
    args = [next(it) if isinstance(a, Array) else a for a in args]

    keep = [d for d in range(nd) if d not in drop]
    if chunks is not None and new_axis is None and not drop and len(tuple(chunks)) > nd:
        # as dask: chunks with more entries than the inputs have axes add
        # leading axes
        new_axis = list(range(len(tuple(chunks)) - nd))
    nd_out = len(keep) + (len([new_axis] if isinstance(new_axis, (numbers.Integral,
                                                                 np.integer))
                              else list(new_axis or ())))
    new = normalize_new_axes(new_axis, nd_out, "new_axis")
    out_chunks = []
    kit = iter(keep)
    for d in range(nd_out):
        out_chunks.append((1,) if d in new else in_chunks[next(kit)])
    if chunks is not None:
        chunks = tuple(chunks)
        if len(chunks) != nd_out:
            raise ValueError("map_blocks: chunks=%r has %d entries but the output has %d "
                             "dimensions" % (chunks, len(chunks), nd_out))
        fixed = []
        for d, (c, oc) in enumerate(zip(chunks, out_chunks)):
            if isinstance(c, (numbers.Integral, np.integer, float)):
                fixed.append((c,) * len(oc))
            else:
                c = tuple(c)
                if len(c) != len(oc):
                    raise ValueError("map_blocks: chunks along axis %d give %d blocks but "
                                     "the output has %d blocks there" % (d, len(c), len(oc)))
                fixed.append(c)
        out_chunks = fixed
    out_chunks = tuple(out_chunks)

    pass_id = _takes(func, "block_id")
    pass_info = _takes(func, "block_info")
    out_shape_final = _shape(out_chunks)
    out_nb = tuple(len(c) for c in out_chunks)

    def block_args(in_idx, dt):
        """(output block index, task arguments, block_info) for one input index."""
        oidx = [in_idx[d] for d in keep]
        for a in new:
            oidx.insert(a, 0)
        oidx = tuple(oidx)
        targs = []
        info = {}
        for pos, a in enumerate(args):
            if isinstance(a, Array):
                off = nd - a.ndim
                ki = tuple(0 if (a.shape[k] == 1 and out_shape[k + off] != 1)
                           else in_idx[k + off] for k in range(a.ndim))
                targs.append((a.name,) + ki)
                if pass_info:
                    info[pos] = {"shape": a.shape, "num-chunks": a.numblocks,
                                 "chunk-location": ki,
                                 "array-location": _location(a.chunks, ki)}
            else:
                targs.append(Literal(a))
        if pass_info:
            info[None] = {"shape": out_shape_final, "num-chunks": out_nb,
                          "chunk-location": oidx,
                          "array-location": _location(out_chunks, oidx),
                          "chunk-shape": tuple(c[i] for c, i in zip(out_chunks, oidx)),
                          "dtype": dt}
        return oidx, targs, info

    # blocks that may be masked arrays (cdask.ma): a masked meta, an np.ma function
    masked = isinstance(meta, np.ma.MaskedArray) or \
        str(getattr(func, "__module__", None) or "").startswith("numpy.ma")
    if dtype is None:
        if meta is not None and hasattr(meta, "dtype"):
            dtype = meta.dtype
        else:
            # one call on 1-element sample blocks, with the first block's
            # block_id/block_info
            oidx, _, info = block_args((0,) * nd, None)
            kw = dict(kwargs)
            if pass_id:
                kw["block_id"] = oidx
            if pass_info:
                kw["block_info"] = info
            samples = [np.ones((1,) * a.ndim, dtype=a.dtype) if isinstance(a, Array) else a
                       for a in args]
            try:
                with np.errstate(all="ignore"):
                    r = func(*samples, **kw)
                    masked = masked or isinstance(r, np.ma.MaskedArray)
                    dtype = np.asarray(r).dtype
            except Exception as e:
                dtype = arrays[0].dtype
                warnings.warn("map_blocks could not infer the output dtype of %s by calling it "
                              "on sample blocks (%s: %s); assuming %s (the dtype of the first "
                              "array), to which every block will be cast. Pass dtype= to "
                              "choose." % (getattr(func, "__name__", func), type(e).__name__,
                                           e, dtype), UserWarning, stacklevel=3)
    dtype = check_dtype(dtype)
    fn = MapBlocksTask(func, sorted(kwargs.items()), dtype, pass_id, pass_info,
                       nd_out if enforce_ndim else None)
    if name is None:
        fname = token or getattr(func, "__name__", "map_blocks")
        if not isinstance(fname, str) or not fname.isidentifier():
            fname = "map_blocks"
        name = "%s-%s" % (fname, tokenize(func_token(func),
                                          [a.name if isinstance(a, Array) else a for a in args],
                                          sorted(kwargs.items()), dtype, out_chunks, drop,
                                          new))
    layer = {}
    for in_idx in itertools.product(*map(range, (len(c) for c in in_chunks))):
        oidx, targs, info = block_args(in_idx, dtype)
        if pass_id:
            targs.append(Literal(oidx))
        if pass_info:
            targs.append(Literal(info))
        layer[(name,) + oidx] = (fn,) + tuple(targs)
    if masked:
        note_masked(name)
    return Array(with_layer(merge_layers(*arrays), name, layer), name, out_chunks, dtype)
