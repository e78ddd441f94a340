"""``cdask.backends``: the array backends (dask's ``dask.array.backends``).

cdask's blocks are NumPy arrays, so it has one backend, ``"numpy"``.  Its
entry point says what dask's does - how to move an Array onto it
(``to_backend``: an Array of NumPy blocks is already there) and which
random state classes it uses - and ``get_backend(name)`` looks it up by
name (ValueError naming the backends there are for any other).
"""

import numpy as np

__all__ = ["ArrayBackendEntrypoint", "NumpyBackendEntrypoint", "BACKENDS", "get_backend"]


class ArrayBackendEntrypoint:
    """What a backend provides (dask's ``ArrayBackendEntrypoint``)."""

    @classmethod
    def to_backend(cls, data, **kwargs):
        raise NotImplementedError

    @property
    def RandomState(self):
        raise NotImplementedError

    @property
    def default_bit_generator(self):
        raise NotImplementedError


class NumpyBackendEntrypoint(ArrayBackendEntrypoint):
    """NumPy's backend: blocks are ``numpy.ndarray``."""

    @classmethod
    def to_backend(cls, data, **kwargs):
        if kwargs:
            raise TypeError("to_backend('numpy') takes no options, got %s"
                            % ", ".join(sorted(kwargs)))
        return data

    @property
    def RandomState(self):
        return np.random.RandomState

    @property
    def default_bit_generator(self):
        return np.random.PCG64


BACKENDS = {"numpy": NumpyBackendEntrypoint()}


def get_backend(name):
    """The entry point of the backend ``name``."""
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        raise ValueError("cdask has no array backend %r; it has: %s"
                         % (name, ", ".join(sorted(BACKENDS)))) from None
