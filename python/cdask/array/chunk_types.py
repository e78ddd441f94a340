"""The registry of block types cdask treats as its own (dask's
``register_chunk_type``).

cdask's blocks are NumPy arrays.  A type registered here is one cdask does not
defer to: ``np.<function>(cdask_array, obj)`` with ``obj`` of a registered
type is handled by cdask (``numpy_api``) instead of returning NotImplemented
for that type to handle.

Masked blocks.  Blocks may be ``np.ma.MaskedArray`` (``cdask.ma``).  cdask's
C kernels read raw buffers and would drop a mask, so the layers whose blocks
may be masked are recorded here (:func:`note_masked`, by layer name: names
are tokens of what a layer computes, so an entry never goes stale), and an
Array is *maybe masked* when one of its layers - its own or an input's - is
one of them (:func:`maybe_masked`).  Such arrays are built from Python tasks
that look at each block's type when they run (``np.ma`` for masked blocks,
NumPy otherwise) and run unfused; the helpers below are those tasks' parts.
Imports nothing of cdask.
"""

import builtins

import numpy as np

__all__ = ["register_chunk_type", "is_valid_chunk_type", "HANDLED_CHUNK_TYPES",
           "MASKED_LAYERS", "note_masked", "maybe_masked", "is_masked_block", "keep_block",
           "new_block", "concatenate_blocks", "MaskedResult"]

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


# ---- masked blocks -----------------------------------------------------------
MASKED_LAYERS = set()


def note_masked(name):
    """Record that the blocks of layer ``name`` may be masked arrays."""
    MASKED_LAYERS.add(name)
    return name


def maybe_masked(layers):
    """May some block of the array with these layers (a dict name -> layer,
    an Array's ``_layers``, or any iterable of layer names) be a masked
    array?  True when one of the layers was noted as making masked blocks;
    ``layers`` is not even read when none ever was."""
    return bool(MASKED_LAYERS) and not MASKED_LAYERS.isdisjoint(layers)


def is_masked_block(b):
    return isinstance(b, np.ma.MaskedArray)


def keep_block(b):
    """``np.asarray(b)``, except that a masked array stays one."""
    return b if isinstance(b, np.ma.MaskedArray) else np.asarray(b)


def _common_fill(blocks):
    """The fill value the masked ``blocks`` share, or None (np.ma's default)
    when they differ - as dask joins masked blocks."""
    fv = None
    for b in blocks:
        if isinstance(b, np.ma.MaskedArray):
            if fv is None:
                fv = b.fill_value
            elif not np.array_equal(fv, b.fill_value):
                return None
    return fv


def new_block(shape, dtype, blocks):
    """An empty block to assemble ``blocks`` into (``out[sl] = block``): a
    masked array (nothing masked yet; the blocks' fill value, if they share
    one) when one of them is masked, else an ndarray."""
    data = np.empty(shape, dtype=dtype)
    if not any(isinstance(b, np.ma.MaskedArray) for b in blocks):
        return data
    out = np.ma.MaskedArray(data, mask=np.zeros(shape, dtype=bool))
    fv = _common_fill(blocks)
    if fv is not None:
        out.fill_value = fv
    return out


def concatenate_blocks(blocks, axis=0):
    """``np.concatenate``, keeping masks (``np.ma.concatenate``, with the
    blocks' fill value if they share one) when a block is masked."""
    if not any(isinstance(b, np.ma.MaskedArray) for b in blocks):
        return np.concatenate(blocks, axis=axis)
    out = np.ma.concatenate(blocks, axis=axis)
    fv = _common_fill(blocks)
    if fv is not None:
        out.fill_value = fv
    return out


class MaskedResult:
    """The output of a compute whose blocks may be masked: ``out[sl] =
    block`` writes the data into an ndarray and, from the first masked
    block on, the mask into a boolean array of the same shape.  ``result()``
    is the ndarray when no block was masked, else a masked array with the
    masked blocks' fill value if they share one (np.ma's default if not)."""

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.data = np.empty(self.shape, dtype=self.dtype)
        self.mask = None
        self.fills = []

    def __setitem__(self, sl, block):
        self.data[sl] = np.ma.getdata(block)
        if isinstance(block, np.ma.MaskedArray):
            if self.mask is None:
                self.mask = np.zeros(self.shape, dtype=bool)
            self.mask[sl] = np.ma.getmaskarray(block)
            if len(self.fills) < 2 and not any(np.array_equal(f, block.fill_value)
                                                for f in self.fills):
                self.fills.append(block.fill_value)

    def result(self):
        if self.mask is None:
            return self.data
        out = np.ma.MaskedArray(self.data, mask=self.mask)
        if len(self.fills) == 1:
            out.fill_value = self.fills[0]
        return out
