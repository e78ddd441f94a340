"""Every elementwise NumPy ufunc as a cdask function: ``cdask.exp(x)``.

Each name of :data:`ufuncs.ALL_UFUNCS` whose ufunc is elementwise gets a
:class:`ufunc` wrapper.  Called with a cdask Array among its arguments it
returns a lazy Array (``core.elemwise``: one task per block, a C kernel running
NumPy's own loop where one exists); called with NumPy data only it is the
NumPy ufunc itself, so ``cdask.sin(0.5)`` is a plain number, as with dask.
"""


from .core import Array
from .elemwise import elemwise
from . import ufunc_methods
from .ufuncs import ALL_UFUNCS


class ufunc:
    # (no __slots__: each instance carries its own __doc__)

    def __init__(self, uf, name):
        self._ufunc = uf
        self.__name__ = name
        self.__doc__ = "cdask version of numpy.%s (lazy on cdask Arrays).\n\n%s" % (
            name, uf.__doc__ or "")

    def __call__(self, *args, **kwargs):
        out = kwargs.get("out")
        if any(isinstance(a, Array) for a in args + (out if isinstance(out, tuple) else (out,))):
            if self._ufunc.nout > 1:
                return ufunc_methods.call(self._ufunc, args, kwargs)
            return elemwise(self._ufunc, *args, **kwargs)
        return self._ufunc(*args, **kwargs)

    # NumPy's methods: lazy on cdask Arrays (outer always, as dask's)
    def reduce(self, array, *args, **kwargs):
        return self._method("reduce", array, *args, **kwargs)

    def accumulate(self, array, *args, **kwargs):
        return self._method("accumulate", array, *args, **kwargs)

    def reduceat(self, array, *args, **kwargs):
        return self._method("reduceat", array, *args, **kwargs)

    def outer(self, A, B, **kwargs):
        return ufunc_methods.outer(self._ufunc, A, B, **kwargs)

    def _method(self, name, array, *args, **kwargs):
        if isinstance(array, Array):
            return getattr(ufunc_methods, name)(self._ufunc, array, *args, **kwargs)
        return getattr(self._ufunc, name)(array, *args, **kwargs)

    def __getattr__(self, attr):
        # nin, nout, ntypes, types, identity, signature... come from NumPy's
        return getattr(self._ufunc, attr)

    def __repr__(self):
        return "<cdask ufunc %r>" % self.__name__

    def __reduce__(self):
        return (_by_name, (self.__name__,))


def _by_name(name):
    return globals()[name]


__all__ = []
for _name, _info in sorted(ALL_UFUNCS.items()):
    if _info.signature is None and _name.isidentifier():
        globals()[_name] = ufunc(_info.ufunc, _name)
        __all__.append(_name)
del _name, _info
