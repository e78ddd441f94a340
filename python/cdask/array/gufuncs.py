"""Generalized ufuncs: ``apply_gufunc``, the ``gufunc`` class and its
decorator ``as_gufunc``, and ``frompyfunc``, with dask's semantics.

``apply_gufunc(func, "(i,j),(j)->(i)", *arrays)``: the core dimensions of
the signature are the last axes of each argument (or those ``axes`` /
``axis`` name); every other axis is a loop axis, broadcast across the
arguments from the right as NumPy's gufuncs do.  One task per block of the
loop axes calls ``func`` on the arguments' blocks, each holding its core
axes whole (a core axis in several blocks is an error unless
``allow_rechunk``).  A function with several outputs (``"->(),()"``) gives a
tuple of Arrays, each reading its item of the shared tasks' results.

``frompyfunc(func, nin, nout)``: NumPy's object ufunc over cdask Arrays,
block by block.  cdask has no object arrays, so the results are cast to the
dtype ``func`` returns for sample values (or ``dtype=`` given to the call).
"""

import itertools
import operator
import re

import numpy as np

from .core import Array, transpose
from .creation import asarray
from .dtypes import check_dtype
from .mapping import Literal, func_token, map_blocks
from .tokenize import tokenize
from .utils import common_chunks, isnan, merge_layers

__all__ = ["apply_gufunc", "gufunc", "as_gufunc", "frompyfunc"]

_DIM = r"\w+"
_ARG = r"\((?:%s(?:,%s)*)?\)" % (_DIM, _DIM)
_ARGS = r"(?:%s(?:,%s)*,?)?" % (_ARG, _ARG)
_SIGNATURE = r"^%s->%s$" % (_ARGS, _ARGS)


def parse_signature(signature):
    """``"(i,j),(j)->(i)"`` -> ([('i', 'j'), ('j',)], ('i',)); several
    outputs (or a trailing comma) give a list of output tuples."""
    if not isinstance(signature, str):
        raise TypeError("`signature` has to be of type string")
    signature = re.sub(r"\s+", "", signature)
    if not re.match(_SIGNATURE, signature):
        raise ValueError("Not a valid gufunc signature: %s" % signature)
    ins_txt, outs_txt = signature.split("->")
    ins = [tuple(re.findall(_DIM, a)) for a in re.findall(_ARG, ins_txt)]
    outs = [tuple(re.findall(_DIM, a)) for a in re.findall(_ARG, outs_txt)]
    if len(outs) == 1 and not outs_txt.endswith(","):
        return ins, outs[0]
    return ins, outs


def _normalize_axes(axes, axis, keepdims, in_core, out_core):
    """Per input and per output, the positions of its core axes (NumPy's
    rules for ``axes``, ``axis`` and ``keepdims``)."""
    nin = len(in_core)
    multi = isinstance(out_core, list)
    out_core = out_core if multi else [out_core]
    nout = len(out_core)
    if axes is not None and axis is not None:
        raise ValueError("Only one of `axis` or `axes` keyword arguments should be given")
    if axes is not None and not isinstance(axes, list):
        raise ValueError("`axes` has to be of type list")
    with_core = [c for c in in_core if c]
    outs_with_core = sum(1 for c in out_core if c)
    if keepdims:
        if outs_with_core:
            raise ValueError("`keepdims` can only be used for scalar outputs")
        out_core = [with_core[0] if with_core else ()] * nout
    if axis is not None:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError("`axis` argument has to be an integer value")
        if with_core:
            if len(with_core[0]) != 1:
                raise ValueError("`axis` can be used only, if one core dimension is present")
            if any(c != with_core[0] for c in with_core):
                raise ValueError("To use `axis`, all core dimensions have to be equal")
        axes = [(axis,) if c else () for c in in_core + out_core]
    elif axes is None:
        axes = [tuple(range(-len(c), 0)) for c in in_core + out_core]
    axes = [(a,) if isinstance(a, (int, np.integer)) else tuple(a) for a in axes]
    if (outs_with_core == 0 and len(axes) not in (nin, nin + nout)) or \
            (outs_with_core and len(axes) != nin + nout):
        raise ValueError("The number of `axes` entries is not equal the number of input and "
                         "output arguments")
    in_axes = axes[:nin]
    out_axes = axes[nin:] or [tuple(range(-len(c), 0)) for c in out_core]
    for k, (a, c) in enumerate(zip(in_axes, in_core)):
        if len(a) != len(c):
            raise ValueError("The number of `axes` entries for argument #%d is not equal the "
                             "number of respective input core dimensions in signature" % k)
    if not keepdims:
        for k, (a, c) in enumerate(zip(out_axes, out_core)):
            if len(a) != len(c):
                raise ValueError("The number of `axes` entries for argument #%d is not equal "
                                 "the number of respective output core dimensions in "
                                 "signature" % k)
    elif in_core:
        if any(c != in_core[0] for c in in_core):
            raise ValueError("To use `keepdims`, all core dimensions have to be equal")
        out_axes = [in_axes[0]] * nout
    return in_axes, out_axes


class _GufuncTask:
    """The per-block call: ``func(*blocks, **kwargs)``, each output cast to its
    dtype (a tuple for several outputs)."""

    __slots__ = ("func", "kwargs", "dtypes", "multi")

    def __init__(self, func, kwargs, dtypes, multi):
        self.func, self.kwargs, self.dtypes, self.multi = func, tuple(kwargs), dtypes, multi

    @property
    def __name__(self):
        return getattr(self.func, "__name__", "gufunc")

    def __reduce__(self):
        return (_GufuncTask, (self.func, self.kwargs, self.dtypes, self.multi))

    def __call__(self, shapes, *blocks):
        r = self.func(*blocks, **dict(self.kwargs))
        if not self.multi:
            r = (r,)
        elif not isinstance(r, (tuple, list)) or len(r) != len(self.dtypes):
            raise ValueError("apply_gufunc: %s returned %s, not a tuple of %d outputs"
                             % (self.__name__, type(r).__name__, len(self.dtypes)))
        out = []
        for k, (v, d, shape) in enumerate(zip(r, self.dtypes, shapes.value)):
            v = np.asarray(v)
            if len(v.shape) != len(shape) or any(g != w for g, w in zip(v.shape, shape)
                                                 if not isnan(w)):
                raise ValueError("apply_gufunc: %s returned a block of shape %s for output %d, "
                                 "but the signature and the arguments' blocks give %s (func "
                                 "must work on the last axes, the core dimensions, and "
                                 "broadcast over the others)" % (self.__name__, v.shape, k,
                                                                 shape))
            out.append(v.astype(d, copy=False))
        return tuple(out) if self.multi else out[0]


def _item(t, i):
    return t[i]


def _dtypes_of(output_dtypes, meta, nout):
    if meta is not None:
        output_dtypes = [m.dtype for m in meta] if isinstance(meta, (tuple, list)) \
            else meta.dtype
    if nout is None:
        if isinstance(output_dtypes, (tuple, list)):
            if len(output_dtypes) != 1:
                raise ValueError("For a function with one output, must give a single item "
                                 "for `output_dtypes`/`meta`, not a tuple or list.")
            output_dtypes = output_dtypes[0]
        return [check_dtype(output_dtypes)]
    if not isinstance(output_dtypes, (tuple, list)):
        raise ValueError("For a function with %d outputs, must give a tuple or list for "
                         "`output_dtypes`/`meta`, not a single item." % nout)
    if len(output_dtypes) != nout:
        raise ValueError("For a function with %d outputs, must give a tuple or list of %d "
                         "items for `output_dtypes`/`meta`, not %d."
                         % (nout, nout, len(output_dtypes)))
    return [check_dtype(d) for d in output_dtypes]


def apply_gufunc(func, signature, *args, axes=None, axis=None, keepdims=False,
                 output_dtypes=None, output_sizes=None, vectorize=None, allow_rechunk=False,
                 meta=None, **kwargs):
    """Apply ``func``, a generalized ufunc of ``signature``, to the arrays
    ``args``; see the module docstring.  Returns an Array, or a tuple of
    Arrays for a signature with several outputs."""
    in_core, out_core = parse_signature(signature)
    nout = len(out_core) if isinstance(out_core, list) else None
    if meta is not None and output_dtypes is not None:
        raise ValueError("Only one of `meta` and `output_dtypes` should be given (`meta` is "
                         "preferred).")
    in_axes, out_axes = _normalize_axes(axes, axis, keepdims, in_core, out_core)
    arrays = [asarray(a) for a in args]
    if len(in_core) != len(arrays):
        raise ValueError("According to `signature`, `func` requires %d arguments, but %d "
                         "given" % (len(in_core), len(arrays)))
    # the core axes last
    moved = []
    for a, iax, core in zip(arrays, in_axes, in_core):
        if len(core) > a.ndim:
            raise ValueError("apply_gufunc: an argument of %d dimension(s) cannot hold the "
                             "%d core dimension(s) %s" % (a.ndim, len(core), core))
        iax = tuple(operator.index(i) % a.ndim if a.ndim else 0 for i in iax)
        perm = [d for d in range(a.ndim) if d not in iax] + list(iax)
        moved.append(transpose(a, perm) if perm != list(range(a.ndim)) else a)
    arrays = moved
    nloop = [a.ndim - len(c) for a, c in zip(arrays, in_core)]
    max_loop = max(nloop, default=0)
    dims_of = [tuple("__loop%d__" % d for d in range(max_loop - n, max_loop)) + c
               for n, c in zip(nloop, in_core)]
    loop_dims = tuple("__loop%d__" % d for d in range(max_loop))
    sizes, chunkss = {}, {}
    for a, dims in zip(arrays, dims_of):
        for d, s, c in zip(dims, a.shape, a.chunks):
            sizes.setdefault(d, []).append(s)
            chunkss.setdefault(d, []).append(c)
    core_sizes = {}
    for d, ss in sizes.items():
        known = {s for s in ss if not isnan(s)}
        if len(known - {1}) > 1:
            raise ValueError("Dimension `'%s'` with different lengths in arrays" % d)
        if d not in loop_dims:
            if len(known) > 1:
                raise ValueError("Dimension `'%s'` with different lengths in arrays" % d)
            if not known:
                raise ValueError("Core dimension `'%s'` has an unknown (nan) length; call "
                                 "compute_chunk_sizes() first" % d)
            core_sizes[d] = known.pop()
    core_sizes.update(output_sizes or {})
    # core axes in one block; loop axes of length > 1 on common blocks
    loop_chunks = {}
    for d in loop_dims:
        real = [c for s, c in zip(sizes[d], chunkss[d]) if not s == 1]
        if not real:
            loop_chunks[d] = (1,)
        elif all(c == real[0] for c in real):
            loop_chunks[d] = real[0]
        elif allow_rechunk:
            loop_chunks[d] = common_chunks(real)
        else:
            raise ValueError("Dimension `'%s'` with different chunksize present" % d)
    fixed = []
    for a, dims in zip(arrays, dims_of):
        want = {}
        for k, d in enumerate(dims):
            if d in loop_dims:
                if a.shape[k] != 1 and a.chunks[k] != loop_chunks[d]:
                    want[k] = loop_chunks[d]
            elif len(a.chunks[k]) > 1:
                if not allow_rechunk:
                    raise ValueError(
                        "Core dimension `'%s'` consists of multiple chunks. To fix, rechunk "
                        "into a single chunk along this dimension or set `allow_rechunk=True`"
                        ", but beware that this may increase memory usage significantly." % d)
                want[k] = -1
        fixed.append(a.rechunk(want) if want else a)
    arrays = fixed
    outs = out_core if nout is not None else [out_core]
    for oc in outs:
        for d in oc:
            if d not in core_sizes:
                raise ValueError("Core dimension `'%s'` of an output is in no input: give its "
                                 "length in `output_sizes`" % d)
    if output_dtypes is None and meta is None:
        tempfunc = np.vectorize(func, signature=signature) if vectorize else func
        samples = [np.ones(tuple(1 if d in loop_dims else int(s)
                                 for d, s in zip(dims, a.shape)), dtype=a.dtype)
                   for a, dims in zip(arrays, dims_of)]
        try:
            with np.errstate(all="ignore"):
                r = tempfunc(*samples, **kwargs)
        except Exception as e:
            raise ValueError("`dtype` inference failed in `apply_gufunc` (%s: %s). Please "
                             "specify the dtype explicitly using the `output_dtypes` kwarg."
                             % (type(e).__name__, e)) from e
        output_dtypes = [np.asarray(v).dtype for v in r] if nout is not None \
            else np.asarray(r).dtype
    dtypes = _dtypes_of(output_dtypes, meta, nout)
    if vectorize:
        func = np.vectorize(func, signature=signature, otypes=dtypes)

    # one task per block of the loop axes
    fn = _GufuncTask(func, sorted(kwargs.items()), dtypes, nout is not None)
    token = tokenize(func_token(func), signature, [a.name for a in arrays],
                     sorted(kwargs.items()), [str(d) for d in dtypes], loop_chunks,
                     sorted(core_sizes.items()))
    prefix = getattr(func, "__name__", "apply_gufunc")
    if not isinstance(prefix, str) or not prefix.isidentifier():
        prefix = "apply_gufunc"
    name = "%s-%s" % (prefix, token)
    lchunks = tuple(loop_chunks[d] for d in loop_dims)
    layer = {}
    for oidx in itertools.product(*map(range, map(len, lchunks))):
        where = dict(zip(loop_dims, oidx))
        keys = []
        for a, dims in zip(arrays, dims_of):
            keys.append((a.name,) + tuple(
                (0 if a.numblocks[k] == 1 else where[d]) if d in loop_dims else 0
                for k, d in enumerate(dims)))
        loop_shape = tuple(c[i] for c, i in zip(lchunks, oidx))
        shapes = Literal(tuple(loop_shape + tuple(int(core_sizes[d]) for d in oc)
                               for oc in outs))
        layer[(name,) + oidx] = (fn, shapes) + tuple(keys)
    layers = merge_layers(*arrays)
    results = []
    for i, (oc, oax, dt) in enumerate(zip(outs, out_axes, dtypes)):
        core_shape = tuple(int(core_sizes[d]) for d in oc)
        chunks = lchunks + tuple((s,) for s in core_shape)
        if nout is None:
            lname, olayer = name, {}
            for k, v in layer.items():
                olayer[k + (0,) * len(oc)] = v
        else:
            lname = "%s_%d-%s" % (prefix, i, token)
            olayer = {(lname,) + k[1:] + (0,) * len(oc): (_item, k, i) for k in layer}
            layers[name] = layer
        d = dict(layers)
        d[lname] = olayer
        r = Array(d, lname, chunks, dt)
        if keepdims:
            r = r[(slice(None),) * r.ndim + (None,) * len(oax)]
        if oax:
            nd = r.ndim
            perm = [None] * nd
            for src, dst in zip(range(nd - len(oax), nd), oax):
                dst = operator.index(dst)
                if not -nd <= dst < nd or perm[dst % nd] is not None:
                    raise ValueError("apply_gufunc: output axes %s do not fit an output of %d "
                                     "dimensions" % (oax, nd))
                perm[dst % nd] = src
            rest = iter(range(nd - len(oax)))
            perm = [next(rest) if p is None else p for p in perm]
            if perm != list(range(nd)):
                r = transpose(r, perm)
        results.append(r)
    return tuple(results) if nout is not None else results[0]


class gufunc:
    """dask's ``gufunc``: ``pyfunc`` bound to a signature and the options of
    :func:`apply_gufunc`; calling it applies it to arrays."""

    def __init__(self, pyfunc, *, signature=None, vectorize=False, axes=None, axis=None,
                 keepdims=False, output_sizes=None, output_dtypes=None, allow_rechunk=False,
                 meta=None):
        self.pyfunc = pyfunc
        self.signature = signature
        self.vectorize = vectorize
        self.axes = axes
        self.axis = axis
        self.keepdims = keepdims
        self.output_sizes = output_sizes
        self.output_dtypes = output_dtypes
        self.allow_rechunk = allow_rechunk
        self.meta = meta
        self.__doc__ = "Bound cdask.gufunc of %r, signature %r" % (pyfunc, signature)

    def __call__(self, *args, allow_rechunk=False, **kwargs):
        return apply_gufunc(self.pyfunc, self.signature, *args, vectorize=self.vectorize,
                            axes=self.axes, axis=self.axis, keepdims=self.keepdims,
                            output_sizes=self.output_sizes, output_dtypes=self.output_dtypes,
                            allow_rechunk=self.allow_rechunk or allow_rechunk, meta=self.meta,
                            **kwargs)


_GUFUNC_KEYS = {"vectorize", "axes", "axis", "keepdims", "output_sizes", "output_dtypes",
                "allow_rechunk", "meta"}


def as_gufunc(signature=None, **kwargs):
    """Decorator: ``@as_gufunc("(i)->()")`` makes a :class:`gufunc` of the
    function it decorates."""
    unknown = set(kwargs) - _GUFUNC_KEYS
    if unknown:
        raise TypeError("Unsupported keyword argument(s) provided: %s"
                        % ", ".join(sorted(unknown)))

    def decorator(pyfunc):
        return gufunc(pyfunc, signature=signature, **kwargs)

    return decorator


# ---------------------------------------------------------------------------
# frompyfunc
# ---------------------------------------------------------------------------
def _pyfunc_block(*blocks, npfunc):
    return npfunc(*blocks)          # an object array, cast by map_blocks


class frompyfunc:
    """``np.frompyfunc(func, nin, nout)`` over cdask Arrays (one output, as
    dask): applied block by block with NumPy's broadcasting; the results are
    cast to ``dtype=`` (a keyword of the call) or to the dtype of ``func``'s
    result for sample values, since cdask has no object arrays.  On NumPy
    arguments it is NumPy's object ufunc."""

    def __init__(self, func, nin, nout):
        nin, nout = operator.index(nin), operator.index(nout)
        if nout > 1:
            raise NotImplementedError("frompyfunc with more than one output")
        self.func = func
        self._ufunc = np.frompyfunc(func, nin, nout)
        self.nin, self.nout = nin, nout
        self.nargs = nin + nout
        self.__name__ = getattr(func, "__name__", "frompyfunc")

    def __repr__(self):
        return "cdask.frompyfunc(%r, %d, %d)" % (self.func, self.nin, self.nout)

    def __dask_tokenize__(self):
        return ("frompyfunc", func_token(self.func), self.nin, self.nout)

    def _dtype(self, args, dtype):
        if dtype is not None:
            return check_dtype(dtype)
        # the object loop hands func Python objects (int, float, complex)
        samples = [np.ones((), dtype=a.dtype).item() if isinstance(a, Array) else
                   (np.asarray(a).reshape(-1)[0].item() if np.size(a) else
                    np.ones((), np.asarray(a).dtype).item()) for a in args]
        r = np.asarray(self.func(*samples))
        if r.dtype == object:
            raise TypeError("frompyfunc: %s returns %s values, which cdask Arrays cannot hold; "
                            "pass dtype= to the call" % (self.__name__, type(r.item()).__name__))
        return check_dtype(r.dtype)

    def __call__(self, *args, dtype=None, **kwargs):
        if len(args) != self.nin:
            raise TypeError("%s takes %d arguments, got %d" % (self.__name__, self.nin,
                                                               len(args)))
        if not any(isinstance(a, Array) for a in args):
            return self._ufunc(*args, **kwargs)
        if kwargs:
            raise NotImplementedError("frompyfunc on cdask Arrays takes no keyword arguments "
                                      "but dtype (got %s)" % ", ".join(sorted(kwargs)))
        dt = self._dtype(args, dtype)
        arrays = [a if isinstance(a, Array) else asarray(np.asarray(a)) for a in args]
        name = "frompyfunc-" + tokenize(func_token(self.func), [a.name for a in arrays], str(dt))
        return map_blocks(_pyfunc_block, *arrays, dtype=dt, npfunc=self._ufunc, name=name)

    def outer(self, A, B, **kwargs):
        if self.nin != 2:
            raise ValueError("outer product only supported for binary functions")
        if not isinstance(A, Array) and not isinstance(B, Array):
            return self._ufunc.outer(A, B, **kwargs)
        A, B = asarray(A), asarray(B)
        return self(A[(Ellipsis,) + (None,) * B.ndim], B, **kwargs)
