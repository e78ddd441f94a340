"""Chunked random numbers: ``cdask.random.default_rng(seed)``.

Each block draws from its own ``np.random.Generator`` seeded by a child of
``np.random.SeedSequence(seed)``: every call of a method takes the next
child of the root sequence, and the blocks of that call spawn from it by
their position in the block grid.  The values depend only on the seed, the
sequence of calls, the shape and the chunks, never on the number of workers
or the order blocks run in.
"""

import itertools
import numbers

import numpy as np

from .chunks import normalize_chunks
from .core import Array
from .dtypes import check_dtype
from .tokenize import tokenize

__all__ = ["default_rng", "Generator", "random", "standard_normal", "normal", "uniform",
           "integers", "randint", "random_sample"]


def _block(method, entropy, spawn_key, shape, dtype, args, kwargs):
    ss = np.random.SeedSequence(entropy, spawn_key=spawn_key)
    g = np.random.Generator(np.random.PCG64(ss))
    kw = dict(kwargs)
    if method in ("random", "standard_normal"):
        return getattr(g, method)(size=shape, dtype=dtype, **kw)
    if method == "integers":
        return g.integers(*args, size=shape, dtype=dtype, **kw)
    r = getattr(g, method)(*args, size=shape, **kw)
    if r.dtype != dtype:
        r = r.astype(dtype)
    return r


def _shape(size):
    if size is None:
        return ()
    if isinstance(size, (numbers.Integral, np.integer)):
        return (int(size),)
    return tuple(int(s) for s in size)


class Generator:
    """A chunked counterpart of ``np.random.Generator``."""

    def __init__(self, seed=None):
        if isinstance(seed, Generator):
            seed = seed._root.spawn(1)[0]
        if isinstance(seed, np.random.SeedSequence):
            self._root = seed
        else:
            self._root = np.random.SeedSequence(seed)
        self._calls = 0

    def __repr__(self):
        return "cdask.random.Generator(entropy=%r)" % (self._root.entropy,)

    def _next(self):
        child_key = tuple(self._root.spawn_key) + (self._calls,)
        self._calls += 1
        return child_key

    def _wrap(self, method, size, chunks, dtype, args=(), kwargs=()):
        shape = _shape(size)
        dtype = check_dtype(dtype)
        chunks = normalize_chunks(chunks, shape, dtype=dtype)
        base = self._next()
        entropy = self._root.entropy
        kwargs = tuple(sorted(kwargs))
        name = "%s-%s" % (method, tokenize(method, entropy, base, shape, chunks, dtype,
                                           args, kwargs))
        layer = {}
        if not shape:
            layer[(name,)] = (_block, method, entropy, base + (0,), (), dtype, args, kwargs)
        else:
            grid = [range(len(c)) for c in chunks]
            for flat, idx in enumerate(itertools.product(*grid)):
                bshape = tuple(chunks[d][i] for d, i in enumerate(idx))
                layer[(name,) + idx] = (_block, method, entropy, base + (flat,), bshape,
                                        dtype, args, kwargs)
        return Array({name: layer}, name, chunks, dtype)

    def random(self, size=None, dtype=np.float64, out=None, chunks="auto"):
        """Floats in [0, 1)."""
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype("float32"), np.dtype("float64")):
            raise TypeError("random: dtype must be float32 or float64, got %s" % dtype)
        return self._wrap("random", size, chunks, dtype)

    def standard_normal(self, size=None, dtype=np.float64, out=None, chunks="auto"):
        """Samples of N(0, 1)."""
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype("float32"), np.dtype("float64")):
            raise TypeError("standard_normal: dtype must be float32 or float64, got %s" % dtype)
        return self._wrap("standard_normal", size, chunks, dtype)

    def normal(self, loc=0.0, scale=1.0, size=None, chunks="auto", dtype=np.float64):
        """Samples of N(loc, scale**2)."""
        _check_scalar("normal", loc=loc, scale=scale)
        if scale < 0:
            raise ValueError("normal: scale < 0")
        return self._wrap("normal", size, chunks, np.dtype(dtype), (float(loc), float(scale)))

    def uniform(self, low=0.0, high=1.0, size=None, chunks="auto", dtype=np.float64):
        """Floats in [low, high)."""
        _check_scalar("uniform", low=low, high=high)
        return self._wrap("uniform", size, chunks, np.dtype(dtype), (float(low), float(high)))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False,
                 chunks="auto"):
        """Integers in [low, high) (or [low, high] with endpoint=True);
        ``integers(n)`` draws from [0, n)."""
        if high is None:
            low, high = 0, low
        _check_scalar("integers", low=low, high=high)
        low, high = int(low), int(high)
        if high - (0 if endpoint else 1) < low:
            raise ValueError("integers: low >= high" if not endpoint else "integers: low > high")
        dtype = np.dtype(dtype)
        if dtype.kind not in "iub":
            raise TypeError("integers: dtype must be an integer dtype, got %s" % dtype)
        # let NumPy validate the bounds for the dtype
        np.random.default_rng(0).integers(low, high, size=0, dtype=dtype, endpoint=endpoint)
        return self._wrap("integers", size, chunks, dtype, (low, high),
                          (("endpoint", bool(endpoint)),))

    def spawn(self, n):
        return [Generator(s) for s in self._root.spawn(n)]


def _check_scalar(fn, **kw):
    for k, v in kw.items():
        if not isinstance(v, (numbers.Number, np.generic)) or np.ndim(v) != 0:
            raise NotImplementedError("%s: %s must be a scalar in cdask" % (fn, k))


def default_rng(seed=None):
    """A :class:`Generator` seeded by ``seed`` (int, sequence of ints,
    SeedSequence, another Generator, or None for fresh entropy)."""
    return Generator(seed)


_global = None


def _g():
    global _global
    if _global is None:
        _global = Generator()
    return _global


def random(size=None, chunks="auto", dtype=np.float64):
    return _g().random(size, dtype=dtype, chunks=chunks)


random_sample = random


def standard_normal(size=None, chunks="auto", dtype=np.float64):
    return _g().standard_normal(size, dtype=dtype, chunks=chunks)


def normal(loc=0.0, scale=1.0, size=None, chunks="auto"):
    return _g().normal(loc, scale, size, chunks=chunks)


def uniform(low=0.0, high=1.0, size=None, chunks="auto"):
    return _g().uniform(low, high, size, chunks=chunks)


def integers(low, high=None, size=None, dtype=np.int64, chunks="auto"):
    return _g().integers(low, high, size, dtype=dtype, chunks=chunks)


def randint(low, high=None, size=None, dtype=np.int64, chunks="auto"):
    return _g().integers(low, high, size, dtype=dtype, chunks=chunks)


def seed(s=None):
    """Reseed the module-level generator."""
    global _global
    _global = Generator(s)
