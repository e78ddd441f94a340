"""The methods and operators of ``cdask.Array`` that come from the layers above the class.

``core.py`` defines the class with what needs only the graph (metadata, the
dask protocol, ``astype``, ``transpose``, ``.blocks``).  Everything else a
NumPy or dask user calls on an Array - operators, ``x[...]``, reductions,
``compute`` - is implemented in the module of its kind and set on the class
here, once, when ``cdask.array`` is imported.  This is the only module that
adds to the class, and no module imports it but ``cdask/array/__init__.py``:
so the modules below it never import each other in a circle.
"""

import numbers

import numpy as np

from . import compute as _compute
from . import contraction, indexing, mapping, numpy_api, overlap, reductions
from . import reshape as _reshape
from . import percentiles, routines, store, triangles
from . import interop
from . import rearranging
from . import drawing, report
from .core import Array
from .elemwise import elemwise, is_operand, power
from .rechunk import rechunk as _rechunk

__all__ = []


def _set(name, f, doc_from=None):
    f.__name__ = name
    f.__qualname__ = "Array." + name
    if doc_from is not None and f.__doc__ is None:
        f.__doc__ = doc_from.__doc__
    setattr(Array, name, f)


# ---------------------------------------------------------------- computing

def _compute_method(self, **kwargs):
    """Run the graph and return a NumPy array (a NumPy scalar for 0-d)."""
    (r,) = _compute.compute(self, **kwargs)
    return r


def _persist_method(self, **kwargs):
    """Compute every block and return an Array whose graph holds them."""
    (r,) = _compute.persist(self, **kwargs)
    return r


def _a_property(self):
    """The array itself (dask's ``Array.A``, as ``numpy.matrix.A``)."""
    return self


_set("compute", _compute_method)
Array.A = property(_a_property)
_set("persist", _persist_method)
# dask's schedulers run the graph compute() would run (fused on the layers)
Array.__dask_optimize__ = staticmethod(_compute.dask_optimize)


# ---------------------------------------------------------------- operators

def _binary(ufunc):
    def fwd(self, other):
        if not is_operand(other):
            return NotImplemented
        return elemwise(ufunc, self, other)

    def rev(self, other):
        if not is_operand(other):
            return NotImplemented
        return elemwise(ufunc, other, self)

    return fwd, rev


for _op, _uf in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                 ("truediv", np.true_divide), ("floordiv", np.floor_divide),
                 ("mod", np.remainder), ("and", np.bitwise_and), ("or", np.bitwise_or),
                 ("xor", np.bitwise_xor), ("lshift", np.left_shift),
                 ("rshift", np.right_shift)]:
    _f, _r = _binary(_uf)
    _set("__%s__" % _op, _f)
    _set("__r%s__" % _op, _r)

for _op, _uf in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less),
                 ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal)]:
    _set("__%s__" % _op, _binary(_uf)[0])
del _op, _uf, _f, _r

# defining __eq__ drops the inherited hash; Arrays hash by identity
Array.__hash__ = object.__hash__


def _pow(self, other, mod=None):
    if mod is not None or not is_operand(other):
        return NotImplemented
    return power(self, other)


def _rpow(self, other):
    if not is_operand(other):
        return NotImplemented
    return elemwise(np.power, other, self)


def _divmod(self, other):
    if not is_operand(other):
        return NotImplemented
    return elemwise(np.floor_divide, self, other), elemwise(np.remainder, self, other)


def _rdivmod(self, other):
    if not is_operand(other):
        return NotImplemented
    return elemwise(np.floor_divide, other, self), elemwise(np.remainder, other, self)


def _matmul(self, other):
    if not is_operand(other):
        return NotImplemented
    return contraction.matmul(self, other)   # a scalar raises ValueError, as NumPy


def _rmatmul(self, other):
    if not is_operand(other):
        return NotImplemented
    return contraction.matmul(other, self)


_set("__pow__", _pow)
_set("__rpow__", _rpow)
_set("__divmod__", _divmod)
_set("__rdivmod__", _rdivmod)
_set("__matmul__", _matmul)
_set("__rmatmul__", _rmatmul)
_set("__neg__", lambda self: elemwise(np.negative, self))
_set("__pos__", lambda self: elemwise(np.positive, self))
_set("__abs__", lambda self: elemwise(np.absolute, self))
_set("__invert__", lambda self: elemwise(np.invert, self))


def _inplace(op):
    """``x op= y``: ``x`` itself becomes ``x op y`` (still lazy) when that keeps
    x's dtype and shape, as the array API standard has it; otherwise (a
    promoted dtype or a broadcast shape, which the standard leaves
    unspecified) the new Array is returned and bound to the name, as dask does."""
    def f(self, other):
        r = getattr(self, "__%s__" % op)(other)
        if r is NotImplemented or r.shape != self.shape or r.dtype != self.dtype:
            return r
        self._become(r)
        return self
    return f


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor",
            "lshift", "rshift", "matmul"):
    _set("__i%s__" % _op, _inplace(_op))
del _op


def _conj(self):
    return elemwise(np.conjugate, self)


def _round(self, decimals=0):
    """See :func:`cdask.around`."""
    return routines.around(self, decimals=decimals)


def _real(self):
    return elemwise(np.real, self) if self.dtype.kind == "c" else self


def _imag(self):
    if self.dtype.kind == "c":
        return elemwise(np.imag, self)
    return elemwise(np.zeros_like, self)


_set("conj", _conj)
Array.conjugate = Array.conj
_set("round", _round)
Array.real = property(_real)
Array.imag = property(_imag)


# ---------------------------------------------------------------- NumPy protocols

def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    return numpy_api.array_ufunc(ufunc, method, inputs, kwargs)


def _array_function(self, func, types, args, kwargs):
    return numpy_api.array_function(func, types, args, kwargs)


_set("__array_ufunc__", _array_ufunc)
_set("__array_function__", _array_function)


# ---------------------------------------------------------------- indexing, chunks

def _getitem(self, index):
    return indexing.getitem(self, index)


def _setitem(self, index, value):
    self._become(indexing.setitem(self, index, value))


def _vindex(self):
    return indexing.VIndex(self)


def _rechunk_method(self, chunks="auto", threshold=None, block_size_limit=None, balance=False,
                    method=None):
    return _rechunk(self, chunks, threshold=threshold, block_size_limit=block_size_limit,
                    balance=balance, method=method)


def _reshape_method(self, *shape, merge_chunks=True, limit=None, order="C"):
    """``x.reshape(shape)`` or ``x.reshape(*shape)``; see ``cdask.array.reshape.reshape``."""
    if len(shape) == 1 and not isinstance(shape[0], (numbers.Integral, np.integer)):
        shape = shape[0]
    return _reshape.reshape(self, shape, merge_chunks=merge_chunks, limit=limit, order=order)


_set("__getitem__", _getitem)
_set("__setitem__", _setitem)
Array.vindex = property(_vindex)
_set("rechunk", _rechunk_method, _rechunk)
_set("reshape", _reshape_method)


# ---------------------------------------------------------------- storing, mapping

def _to_npy(self, path, **kwargs):
    """Compute into a ``.npy`` file, block by block (see cdask.array.store)."""
    return store.to_npy(self, path, **kwargs)


def _store(self, target, **kwargs):
    return store.store(self, target, **kwargs)


def _map_blocks(self, func, *args, **kwargs):
    return mapping.map_blocks(func, self, *args, **kwargs)


def _map_overlap(self, func, depth, boundary=None, trim=True, **kwargs):
    """See :func:`cdask.map_overlap`."""
    return overlap.map_overlap(func, self, depth=depth, boundary=boundary, trim=trim, **kwargs)


def _to_delayed(self, optimize_graph=True):
    return _compute.to_delayed(self, optimize_graph=optimize_graph)


_set("to_npy", _to_npy)
_set("to_delayed", _to_delayed, _compute.to_delayed)


def _visualize_method(self, filename=None, format=None, optimize_graph=False, color=None,
                      **kwargs):
    """Draw the task graph (see :func:`cdask.visualize`)."""
    return drawing.visualize(self, filename=filename, format=format,
                             optimize_graph=optimize_graph, color=color, **kwargs)


def _explain_method(self, print=True, **kwargs):
    """Report how compute() would run, without running it (see :func:`cdask.explain`)."""
    return report.explain(self, print=print, **kwargs)


_set("visualize", _visualize_method)
_set("explain", _explain_method)
_set("store", _store, store.store)
_set("map_blocks", _map_blocks, mapping.map_blocks)
_set("map_overlap", _map_overlap)
Array.to_zarr = store.to_zarr


# ---------------------------------------------------------------- interop (interop.py)

def _to_hdf5(self, filename, datapath, **kwargs):
    """Store into the dataset ``datapath`` of an HDF5 file (see :func:`cdask.to_hdf5`)."""
    return interop.to_hdf5(filename, datapath, self, **kwargs)


def _to_tiledb(self, uri, *args, **kwargs):
    return interop.to_tiledb(self, uri, *args, **kwargs)


_set("to_hdf5", _to_hdf5)
_set("to_tiledb", _to_tiledb, interop.to_tiledb)
Array.view = interop.view
Array.to_backend = interop.to_backend
Array.to_dask_dataframe = interop.to_dask_dataframe


def _to_dask(self):
    return interop.as_dask_array(self)


_set("to_dask", _to_dask, interop.as_dask_array)
Array.to_dask_array = Array.to_dask


# ---------------------------------------------------------------- functions as methods
# ``x.sum(axis)`` is ``reductions.sum(x, axis)``: the function itself, its
# first parameter bound to the Array.

for _mod, _names in [
        (reductions, ("sum", "prod", "mean", "std", "var", "min", "max", "any", "all",
                      "argmin", "argmax", "nansum", "nanmean", "nanmin", "nanmax", "moment",
                      "cumsum", "cumprod")),
        (routines, ("clip", "compute_chunk_sizes", "nonzero", "repeat", "view", "topk")),
        (_reshape, ("ravel", "flatten", "squeeze", "swapaxes")),
        (contraction, ("dot",)),
        (triangles, ("trace",)),
        (percentiles, ("topk", "argtopk")),
        (rearranging, ("repeat", "shuffle")),
        (routines, ("choose",))]:
    for _name in _names:
        if hasattr(_mod, _name) and _name not in Array.__dict__:
            setattr(Array, _name, getattr(_mod, _name))
del _mod, _names, _name
