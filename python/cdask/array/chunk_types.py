"""The registry of block types cdask treats as its own (dask's
``register_chunk_type``).

cdask's blocks are NumPy arrays.  A type registered here is one cdask does not
defer to: ``np.<function>(cdask_array, obj)`` with ``obj`` of a registered
type is handled by cdask (``numpy_api``) instead of returning NotImplemented
for that type to handle.  Imports nothing of cdask.
"""

import builtins

import numpy as np

__all__ = ["register_chunk_type", "is_valid_chunk_type", "HANDLED_CHUNK_TYPES"]

HANDLED_CHUNK_TYPES = [np.ndarray, np.ma.MaskedArray]


def register_chunk_type(type):
    """Record ``type`` as a block type cdask may hold and does not defer to
    (dask's function of the same name).  Registering a type twice records it once."""
    if not isinstance(type, builtins.type):
        raise TypeError("register_chunk_type needs a type (a class), got %r" % (type,))
    if type not in HANDLED_CHUNK_TYPES:
        HANDLED_CHUNK_TYPES.append(type)
    return type


def is_valid_chunk_type(type):
    """Is ``type`` (a subclass of) one of the registered block types?"""
    try:
        return issubclass(type, tuple(HANDLED_CHUNK_TYPES))
    except TypeError:
        return False
