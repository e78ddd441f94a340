"""Deterministic names for graph layers.

``tokenize(*args, **kwargs)`` -> a 32-character hex string (sha1-based) that
depends only on the *values* of its arguments, so building the same
computation twice gives the same keys.

How values are hashed:

* str, bytes, int, float, complex, bool, None, slices, Ellipsis: by value.
* tuples, lists, dicts, sets: recursively (dicts and sets order-independent).
* ``np.dtype``: by its string form.
* ``np.memmap``: by file name, offset, shape, dtype, strides and the file's
  mtime and size (never reads the data).
* ``np.ndarray``: small ones (up to 1 MiB) by content; larger ones by
  identity (``id`` of the underlying buffer owner, data address, shape, dtype,
  strides), so hashing stays O(1) for big in-memory arrays.
* objects with ``__dask_tokenize__`` (cdask and dask collections): its result.
* functions, classes, ufuncs: by module and qualified name.
* anything else: by type and ``id`` (deterministic within a process only).
"""

import functools
import hashlib
import os
import types

import numpy as np

__all__ = ["tokenize"]

_SMALL_ARRAY_BYTES = 1 << 20


def _memmap_base(x):
    # The np.memmap object that owns the mapping (views keep .filename via
    # __array_finalize__, but the offset of a view is the base's).
    b = x
    while isinstance(getattr(b, "base", None), np.memmap):
        b = b.base
    return b


_FLAT = (int, float, bool)


def _normalize(obj, h, depth=0):
    if depth > 50:
        h.update(b"<deep>%d" % id(obj))
        return
    t = type(obj)
    if obj is None or obj is Ellipsis or t in (bool, int, float, complex, str, bytes):
        h.update(t.__name__.encode())
        h.update(repr(obj).encode())
        return
    if t in (tuple, list):
        if len(obj) > 8 and all(type(o) in _FLAT for o in obj):
            # long runs of plain numbers (chunk sizes): one repr, not a call each
            h.update(b"flat(" if t is tuple else b"flat[")
            h.update(repr(obj).encode())
            return
        h.update(b"(" if t is tuple else b"[")
        for o in obj:
            _normalize(o, h, depth + 1)
            h.update(b",")
        h.update(b")")
        return
    if t is slice:
        h.update(b"slice")
        _normalize((obj.start, obj.stop, obj.step), h, depth + 1)
        return
    if isinstance(obj, dict):
        h.update(b"{")
        items = sorted(((tokenize_one(k), v) for k, v in obj.items()), key=lambda kv: kv[0])
        for k, v in items:
            h.update(k.encode())
            h.update(b":")
            _normalize(v, h, depth + 1)
        h.update(b"}")
        return
    if isinstance(obj, (set, frozenset)):
        h.update(b"set")
        for k in sorted(tokenize_one(o) for o in obj):
            h.update(k.encode())
        return
    if isinstance(obj, np.dtype):
        h.update(b"dtype")
        h.update(obj.str.encode())
        h.update(str(obj).encode())
        return
    if isinstance(obj, np.generic):
        h.update(b"npscalar")
        h.update(obj.dtype.str.encode())
        h.update(np.asarray(obj).tobytes())
        return
    if isinstance(obj, np.memmap):
        base = _memmap_base(obj)
        fn = getattr(base, "filename", None) or getattr(obj, "filename", None)
        try:
            st = os.stat(fn) if fn else None
            stat = (st.st_mtime_ns, st.st_size) if st else None
        except OSError:
            stat = None
        try:
            addr = obj.__array_interface__["data"][0]
            baddr = base.__array_interface__["data"][0]
        except Exception:
            addr = baddr = 0
        _normalize(("memmap", str(fn), getattr(base, "offset", 0), addr - baddr,
                    obj.shape, obj.dtype, obj.strides, stat), h, depth + 1)
        return
    if isinstance(obj, np.ma.MaskedArray):
        # data, mask and fill value (two masks over one buffer differ)
        h.update(b"maskedarray")
        _normalize((obj.data, np.ma.getmaskarray(obj), np.asarray(obj.fill_value)), h,
                   depth + 1)
        return
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            h.update(b"objarray%d" % id(obj))
            _normalize((obj.shape, obj.dtype), h, depth + 1)
            return
        if obj.nbytes <= _SMALL_ARRAY_BYTES:
            h.update(b"ndarray")
            _normalize((obj.shape, obj.dtype), h, depth + 1)
            h.update(np.ascontiguousarray(obj).tobytes())
            return
        owner = obj
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        _normalize(("bigarray", id(owner), obj.__array_interface__["data"][0],
                    obj.shape, obj.dtype, obj.strides), h, depth + 1)
        return
    tok = getattr(obj, "__dask_tokenize__", None)
    if tok is not None and not isinstance(obj, type):
        try:
            v = tok()
        except TypeError:
            v = None
        if v is not None:
            h.update(b"dasktok")
            _normalize(v, h, depth + 1)
            return
    if isinstance(obj, np.ufunc):
        h.update(b"ufunc")
        h.update(obj.__name__.encode())
        return
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type,
                        types.MethodType)):
        mod = getattr(obj, "__module__", None) or ""
        qn = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "")
        h.update(b"func")
        h.update(("%s.%s" % (mod, qn)).encode())
        if "<lambda>" in qn or "<locals>" in qn:
            code = getattr(obj, "__code__", None)
            if code is None:
                h.update(b"%d" % id(obj))
            else:
                # the code, its constants and names, and what the function
                # closes over: `lambda v: v + 1` and `lambda v: v + 2` (or
                # closures over different values) must not share a name
                _normalize_code(code, h)
                _normalize((obj.__defaults__, obj.__kwdefaults__), h, depth + 1)
                cells = []
                for c in obj.__closure__ or ():
                    try:
                        cells.append(c.cell_contents)
                    except ValueError:          # empty cell
                        cells.append(None)
                _normalize(tuple(cells), h, depth + 1)
        if isinstance(obj, types.MethodType):
            _normalize(obj.__self__, h, depth + 1)
        return
    try:
        if isinstance(obj, functools.partial):
            h.update(b"partial")
            _normalize((obj.func, obj.args, obj.keywords), h, depth + 1)
            return
    except Exception:  # pragma: no cover
        pass
    h.update(b"object")
    h.update(("%s.%s" % (t.__module__, t.__qualname__)).encode())
    h.update(b"%d" % id(obj))


def _normalize_code(code, h):
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _normalize_code(c, h)
        else:
            h.update(type(c).__name__.encode())
            h.update(repr(c).encode())


def tokenize_one(obj):
    h = hashlib.sha1()
    _normalize(obj, h)
    return h.hexdigest()


def tokenize(*args, **kwargs):
    """A deterministic hex token for the arguments."""
    h = hashlib.sha1()
    _normalize(args, h)
    if kwargs:
        _normalize(kwargs, h)
    return h.hexdigest()[:32]
