"""``cdask.lib.stride_tricks.sliding_window_view`` (as dask's, NumPy's results).

Along each windowed axis the blocks are first merged so that every block is
longer than the window's reach (its length minus one, summed over the
windows on that axis), then each block gets that many elements of the next
block appended (``overlap`` with depth ``(0, reach)``, nothing added at the
end), and NumPy's ``sliding_window_view`` of each extended block gives
exactly the windows that start in the block.
"""

import numpy as np

from ..core import Array
from ..creation import asarray, from_array
from ..overlap import overlap
from ..rechunk import rechunk
from ..tokenize import tokenize
from ..utils import chunks_known, with_layer

__all__ = ["sliding_window_view"]


def _windows(block, window_shape, axis):
    return np.lib.stride_tricks.sliding_window_view(block, window_shape, axis=axis)


def _at_least(chunks, n):
    """``chunks`` with neighbours merged until every block holds >= n."""
    out = []
    for c in chunks:
        if out and out[-1] < n:
            out[-1] += c
        else:
            out.append(c)
    if len(out) > 1 and out[-1] < n:
        last = out.pop()
        out[-1] += last
    return tuple(out)


def sliding_window_view(x, window_shape, axis=None, automatic_rechunk=True):
    """NumPy's ``sliding_window_view``: the windows of ``window_shape`` along
    ``axis`` (default: every axis) as new trailing axes.  Blocks are merged
    along the windowed axes where they are shorter than the window
    (``automatic_rechunk`` is accepted for dask's signature)."""
    if not isinstance(x, Array):
        x = asarray(x)
    if not chunks_known(x):
        raise ValueError("sliding_window_view: x has unknown chunk sizes; call "
                         "x.compute_chunk_sizes() first")
    # NumPy checks the arguments and gives the shape, on a view of no memory
    ghost = np.broadcast_to(np.zeros((), dtype=x.dtype), x.shape)
    out_shape = np.lib.stride_tricks.sliding_window_view(ghost, window_shape, axis=axis).shape
    window_shape = tuple(int(w) for w in np.atleast_1d(window_shape))
    if axis is None:
        axis = tuple(range(x.ndim))
    axis = np.lib.array_utils.normalize_axis_tuple(axis, x.ndim, allow_duplicate=True)
    if 0 in out_shape:
        return from_array(np.empty(out_shape, dtype=x.dtype))
    reach = [0] * x.ndim
    for ax, w in zip(axis, window_shape):
        reach[ax] += w - 1
    merged = tuple(_at_least(c, r + 1) if r else c for c, r in zip(x.chunks, reach))
    if merged != x.chunks:
        x = rechunk(x, merged)
    xo = overlap(x, {ax: (0, r) for ax, r in enumerate(reach)}, boundary="none")
    chunks = tuple(c[:-1] + (c[-1] - r,) for c, r in zip(x.chunks, reach)) + \
        tuple((w,) for w in window_shape)
    name = "sliding-window-view-" + tokenize(x.name, window_shape, axis)
    tail = (0,) * len(window_shape)
    layer = {(name,) + k[1:] + tail: (_windows, k, window_shape, axis) for k in xo._keys_flat()}
    return Array(with_layer(xo._layers, name, layer), name, chunks, x.dtype)
