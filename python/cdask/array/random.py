"""Chunked random numbers: ``cdask.random.default_rng(seed)``.

Each block draws from its own ``np.random.Generator`` seeded by a child of
``np.random.SeedSequence(seed)``: every call of a method takes the next
child of the root sequence, and the blocks of that call spawn from it by
their position in the block grid.  The values depend only on the seed, the
sequence of calls, the shape and the chunks, never on the number of workers
or the order blocks run in.
"""

import functools
import inspect
import itertools
import numbers

import numpy as np

from .chunks import normalize_chunks
from .core import Array
from .creation import arange, asarray
from .dtypes import check_dtype
from .tokenize import tokenize
from .utils import isnan, merge_layers, with_layer

__all__ = ["default_rng", "Generator", "random", "standard_normal", "normal", "uniform",
           "integers", "randint", "random_sample"]


def _bit_generator(bitgen, seed_sequence):
    """The per-block ``np.random.Generator``: a ``bitgen`` (a BitGenerator
    class, PCG64 when None) seeded by ``seed_sequence``."""
    return np.random.Generator((bitgen or np.random.PCG64)(seed_sequence))


def _block(method, entropy, spawn_key, shape, dtype, args, kwargs, bitgen=None):
    ss = np.random.SeedSequence(entropy, spawn_key=spawn_key)
    g = _bit_generator(bitgen, ss)
    kw = dict(kwargs)
    if method in ("random", "standard_normal"):
        return getattr(g, method)(size=shape, dtype=dtype, **kw)
    if method == "integers":
        return g.integers(*args, size=shape, dtype=dtype, **kw)
    r = getattr(g, method)(*args, size=shape, **kw)
    if r.dtype != dtype:
        r = r.astype(dtype)
    return r


def _pieces(method, entropy, spawn_key, shape, dtype, args, kwargs, bitgen=None, step=1):
    """The block ``_block`` makes, as 1-d pieces of at most ``step`` values
    in C order: the generator draws each value in turn, so drawing a block
    in pieces gives the same values as drawing it whole."""
    ss = np.random.SeedSequence(entropy, spawn_key=spawn_key)
    g = _bit_generator(bitgen, ss)
    kw = dict(kwargs)
    n = 1
    for s in shape:
        n *= int(s)
    buf = None
    for i in range(0, n, step):
        m = min(step, n - i)
        if method in ("random", "standard_normal"):
            if buf is None:
                buf = np.empty(min(step, n), dtype=dtype)
            yield getattr(g, method)(out=buf[:m], dtype=dtype, **kw)
        elif method == "integers":
            yield g.integers(*args, size=m, dtype=dtype, **kw)
        else:
            r = getattr(g, method)(*args, size=m, **kw)
            yield r if r.dtype == dtype else r.astype(dtype)


# compute() draws stored blocks in pieces straight into their target
# (blockio.sink_writers)
_block.pieces = _pieces


def _shape(size):
    if size is None:
        return ()
    if isinstance(size, (numbers.Integral, np.integer)):
        return (int(size),)
    return tuple(int(s) for s in size)


class Generator:
    """A chunked counterpart of ``np.random.Generator``."""

    def __init__(self, seed=None):
        # the BitGenerator class of every block: PCG64, or the class of a
        # BitGenerator (or np.random.Generator) passed as the seed, as dask
        self._bitgen = None
        if isinstance(seed, Generator):
            self._bitgen = seed._bitgen
            seed = seed._root.spawn(1)[0]
        elif isinstance(seed, np.random.Generator):
            seed = seed.bit_generator
        if isinstance(seed, np.random.BitGenerator):
            self._bitgen = None if type(seed) is np.random.PCG64 else type(seed)
            ss = getattr(seed, "seed_seq", None)
            if not isinstance(ss, np.random.SeedSequence):
                # seeded the legacy way (MT19937(int) via RandomState): take
                # a seed from its stream
                ss = np.random.SeedSequence(seed.random_raw(4).tolist())
            seed = ss
        if isinstance(seed, np.random.SeedSequence):
            self._root = seed
        else:
            self._root = np.random.SeedSequence(seed)
        self._calls = 0

    def __repr__(self):
        bg = (self._bitgen or np.random.PCG64).__name__
        return "cdask.random.Generator(%s, entropy=%r)" % (bg, self._root.entropy)

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
        bitgen = self._bitgen
        name = "%s-%s" % (method, tokenize(method, entropy, base, shape, chunks, dtype,
                                           args, kwargs, bitgen and bitgen.__qualname__))
        layer = {}
        if not shape:
            layer[(name,)] = (_block, method, entropy, base + (0,), (), dtype, args, kwargs,
                              bitgen)
        else:
            grid = [range(len(c)) for c in chunks]
            for flat, idx in enumerate(itertools.product(*grid)):
                bshape = tuple(chunks[d][i] for d, i in enumerate(idx))
                layer[(name,) + idx] = (_block, method, entropy, base + (flat,), bshape,
                                        dtype, args, kwargs, bitgen)
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
        """``n`` independent Generators of the same BitGenerator class."""
        out = [Generator(s) for s in self._root.spawn(n)]
        for g in out:
            g._bitgen = self._bitgen
        return out


def _check_scalar(fn, **kw):
    for k, v in kw.items():
        if not isinstance(v, (numbers.Number, np.generic)) or np.ndim(v) != 0:
            raise NotImplementedError("%s: %s must be a scalar in cdask" % (fn, k))


def default_rng(seed=None):
    """A :class:`Generator` seeded by ``seed``: an int, a sequence of ints,
    a SeedSequence, another Generator, or None for fresh entropy.  A NumPy
    BitGenerator (``np.random.SFC64(7)``) or ``np.random.Generator`` gives
    its seed and its BitGenerator class: every block draws from a generator
    of that class (SFC64 draws normals about 30% faster than PCG64)."""
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
    """Reseed the module-level generator (and the RandomState the legacy
    functions draw from)."""
    global _global, _global_rs
    _global = Generator(s)
    _global_rs = RandomState(s)


# ---------------------------------------------------------------- every other distribution
# dask's legacy names: each distribution of NumPy's RandomState, as a method
# of RandomState and of Generator and as a module-level function (drawing
# from a default RandomState, as in dask).  One path makes them all: the
# parameters are scalars, NumPy arrays (broadcast against ``size``; each
# block gets its piece) or cdask Arrays (each block reads the block of the
# parameter it lines up with), and each block draws from its own generator.

# (name, parameters): a parameter is (name, default), or (name,) if required
_DISTRIBUTIONS = [
    ("beta", (("a",), ("b",))),
    ("binomial", (("n",), ("p",))),
    ("chisquare", (("df",),)),
    ("exponential", (("scale", 1.0),)),
    ("f", (("dfnum",), ("dfden",))),
    ("gamma", (("shape",), ("scale", 1.0))),
    ("geometric", (("p",),)),
    ("gumbel", (("loc", 0.0), ("scale", 1.0))),
    ("hypergeometric", (("ngood",), ("nbad",), ("nsample",))),
    ("laplace", (("loc", 0.0), ("scale", 1.0))),
    ("logistic", (("loc", 0.0), ("scale", 1.0))),
    ("lognormal", (("mean", 0.0), ("sigma", 1.0))),
    ("logseries", (("p",),)),
    ("multinomial", (("n",), ("pvals",))),
    ("negative_binomial", (("n",), ("p",))),
    ("noncentral_chisquare", (("df",), ("nonc",))),
    ("noncentral_f", (("dfnum",), ("dfden",), ("nonc",))),
    ("pareto", (("a",),)),
    ("poisson", (("lam", 1.0),)),
    ("power", (("a",),)),
    ("rayleigh", (("scale", 1.0),)),
    ("standard_cauchy", ()),
    ("standard_exponential", ()),
    ("standard_gamma", (("shape",),)),
    ("standard_t", (("df",),)),
    ("triangular", (("left",), ("mode",), ("right",))),
    ("vonmises", (("mu",), ("kappa",))),
    ("wald", (("mean",), ("scale",))),
    ("weibull", (("a",),)),
    ("zipf", (("a",),)),
]
# only RandomState has these (NumPy's Generator has integers/random instead)
_RANDOMSTATE_ONLY = [
    ("random_integers", (("low",), ("high", None))),
    ("randint", (("low",), ("high", None))),
    ("random_sample", ()),
    ("normal", (("loc", 0.0), ("scale", 1.0))),
    ("uniform", (("low", 0.0), ("high", 1.0))),
    ("standard_normal", ()),
]
# draws that are integers (int64 unless dtype= says otherwise); the rest are float64
_INTEGER_DRAWS = frozenset(["binomial", "geometric", "hypergeometric", "logseries", "multinomial",
                            "negative_binomial", "poisson", "zipf", "random_integers",
                            "randint"])
# parameters passed whole to every block, never broadcast against the output
_WHOLE = frozenset(["pvals"])


def pcg64_generator(seed_sequence):
    """The per-block generator of a PCG64 :class:`Generator` (as ``_block`` makes it)."""
    return np.random.Generator(np.random.PCG64(seed_sequence))


def _draw_block(make, seed, method, shape, names, *values):
    """One block: ``make(seed).method(*args, size=shape, **kw)``, the
    parameters being ``values`` (positional where ``names`` has None)."""
    rng = make(seed)
    args = [v for n, v in zip(names, values) if n is None]
    kw = {n: v for n, v in zip(names, values) if n is not None}
    return getattr(rng, method)(*args, size=shape, **kw)


def _param(name, v):
    """A parameter as the draw takes it: a cdask Array, an ndarray of 1 or
    more dimensions, or a scalar (or anything else, passed whole)."""
    if isinstance(v, Array) or name in _WHOLE:
        return v
    if isinstance(v, (list, tuple, np.ndarray)):
        v = np.asarray(v)
        if v.ndim == 0:
            return v[()]
    return v


def _out_chunks(chunks, shape, dtype, arrays):
    """The output chunks: ``chunks`` normalized; with "auto", the chunks of
    the cdask Array parameters along the axes they span."""
    nd = len(shape)
    if isinstance(chunks, str) and chunks == "auto" and arrays:
        spec = ["auto"] * nd
        for p in arrays:
            off = nd - p.ndim
            for k, c in enumerate(p.chunks):
                if p.shape[k] != 1 and spec[off + k] == "auto":
                    spec[off + k] = c
        chunks = tuple(spec)
    chunks = normalize_chunks(chunks, shape, dtype=dtype)
    for p in arrays:
        off = nd - p.ndim
        for k, c in enumerate(p.chunks):
            if p.shape[k] != 1 and c != chunks[off + k]:
                raise ValueError("random: a parameter's chunks %s do not line up with the "
                                 "output chunks %s; rechunk it (p.rechunk(...)) or pass "
                                 "chunks=" % (p.chunks, chunks))
    return chunks


def draw(source, method, names, values, npos, size, chunks, extra_chunks=()):
    """The Array of ``method`` drawn from ``source`` (a Generator or a
    RandomState); ``names``/``values`` the parameters, the first ``npos``
    passed by position; see above."""
    values = [_param(n, v) for n, v in zip(names, values)]
    # per parameter: a cdask Array, an ndarray broadcast against the output, or neither
    spread = [isinstance(v, Array) or (isinstance(v, np.ndarray) and v.ndim > 0 and
                                       n not in _WHOLE) for n, v in zip(names, values)]
    arrays = [v for v, s in zip(values, spread) if s]
    pshape = ()
    for v in arrays:
        if isinstance(v, Array) and not all(not isnan(s) for s in v.shape):
            raise ValueError("random.%s: a parameter has unknown chunk sizes; call "
                             "p.compute_chunk_sizes() first" % method)
        try:
            pshape = np.broadcast_shapes(pshape, v.shape)
        except ValueError:
            raise ValueError("random.%s: shape mismatch: the parameters' shapes cannot be "
                             "broadcast to a single shape" % method) from None
    if size is None:
        shape = tuple(int(s) for s in pshape)
    else:
        shape = _shape(size)
        if any(s < 0 for s in shape):
            raise ValueError("random.%s: negative dimensions are not allowed" % method)
        try:
            fits = np.broadcast_shapes(shape, pshape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError("random.%s: shape mismatch: parameters of shape %s cannot be "
                             "broadcast to size %s" % (method, pshape, shape))
    dtype = dict(zip(names, values)).get("dtype")
    names = (None,) * npos + tuple(names[npos:])
    if not any(isinstance(v, Array) for v in values):
        # NumPy checks the parameters (its exceptions, its messages) and
        # gives the result's dtype, drawing nothing
        probe = _draw_block(source.probe, 0, method, (0,) + tuple(pshape), names, *values)
        dtype = np.asarray(probe).dtype
    elif dtype is None:
        dtype = np.int64 if method in _INTEGER_DRAWS else np.float64
    dtype = check_dtype(np.dtype(dtype))
    block_arrays = [v for v in values if isinstance(v, Array)]
    chunks = _out_chunks(chunks, shape, dtype, block_arrays)
    nblocks = 1
    for c in chunks:
        nblocks *= len(c)
    make, seeds, token = source.block_seeds(nblocks)
    name = "%s-%s" % (method, tokenize(method, token, shape, chunks, names,
                                       [v.name if isinstance(v, Array) else v for v in values]))
    starts = [np.cumsum((0,) + c) for c in chunks]
    layer = {}
    extra = (0,) * len(extra_chunks)
    for flat, idx in enumerate(itertools.product(*[range(len(c)) for c in chunks])):
        bshape = tuple(chunks[d][i] for d, i in enumerate(idx))
        vals = []
        for v, s in zip(values, spread):
            if not s:
                vals.append(v)
            elif isinstance(v, Array):
                off = len(shape) - v.ndim
                vals.append((v.name,) + tuple(0 if v.shape[k] == 1 else idx[off + k]
                                              for k in range(v.ndim)))
            else:
                off = len(shape) - v.ndim
                sl = tuple(slice(None) if v.shape[k] == 1 else
                           slice(starts[off + k][idx[off + k]], starts[off + k][idx[off + k] + 1])
                           for k in range(v.ndim))
                vals.append(np.array(v[sl]))
        layer[(name,) + idx + extra] = (_draw_block, make, seeds[flat], method, bshape,
                                        names) + tuple(vals)
    layers = merge_layers(*block_arrays) if block_arrays else {}
    return Array(with_layer(layers, name, layer), name, chunks + tuple(extra_chunks), dtype)


def _distribution(method, params):
    """The method ``method(self, *params, size=None, chunks="auto", **kwargs)``
    of dask's signature, for Generator and RandomState."""
    P = inspect.Parameter
    sig = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD)] +
        [P(p[0], P.POSITIONAL_OR_KEYWORD, default=p[1] if len(p) > 1 else P.empty)
         for p in params] +
        [P("size", P.POSITIONAL_OR_KEYWORD, default=None),
         P("chunks", P.POSITIONAL_OR_KEYWORD, default="auto"), P("kwargs", P.VAR_KEYWORD)])

    def method_(self, *args, **kwargs):
        b = sig.bind(self, *args, **kwargs)
        b.apply_defaults()
        a = b.arguments
        kw = a["kwargs"]
        names = [p[0] for p in params] + list(kw)
        values = [a[p[0]] for p in params] + list(kw.values())
        if method == "multinomial":
            pvals = np.asarray(values[1], dtype=np.float64)
            if pvals.ndim != 1:
                raise ValueError("random.multinomial: pvals must be a 1-d sequence")
            return draw(_source(self), method, names, values, len(params), a["size"],
                        a["chunks"], extra_chunks=((len(pvals),),))
        return draw(_source(self), method, names, values, len(params), a["size"],
                    a["chunks"])

    method_.__name__ = method
    method_.__signature__ = sig
    method_.__doc__ = ("Samples of NumPy's ``%s`` (see ``numpy.random.RandomState.%s``), in "
                       "blocks of ``chunks``; each block is drawn by its own generator, so the "
                       "values depend only on the seed and the chunks." % (method, method))
    return method_


class _GeneratorSource:
    """A Generator's per-block seeds: children of its SeedSequence, as ``_wrap`` spawns them."""

    def __init__(self, gen):
        self.gen = gen

    def probe(self, seed):
        return np.random.default_rng(seed)

    def permutation_index(self, n):
        make, seeds, token = self.block_seeds(1)
        return make(seeds[0]).permutation(n), token

    def block_seeds(self, n):
        base = self.gen._next()
        entropy = self.gen._root.entropy
        seeds = [np.random.SeedSequence(entropy, spawn_key=base + (i,)) for i in range(n)]
        bitgen = self.gen._bitgen
        if bitgen is None:
            return pcg64_generator, seeds, (entropy, base)
        return functools.partial(_bit_generator, bitgen), seeds, (entropy, base,
                                                                  bitgen.__qualname__)


def _source(obj):
    return _GeneratorSource(obj) if isinstance(obj, Generator) else obj


class RandomState:
    """dask's legacy ``RandomState``: NumPy's ``RandomState`` methods, each
    taking ``chunks=``.  Every call draws one MT19937 state per block from
    ``np.random.RandomState(seed)``, as dask does, so for the same seed and
    chunks the values are dask's.  ``RandomState=``: the per-block state
    class (called with a 624-word state), NumPy's by default."""

    def __init__(self, seed=None, RandomState=None):
        self._numpy_state = np.random.RandomState(seed)
        self._RandomState = np.random.RandomState if RandomState is None else RandomState

    def __repr__(self):
        return "cdask.random.RandomState()"

    def seed(self, seed=None):
        self._numpy_state.seed(seed)

    def probe(self, seed):
        return np.random.RandomState(seed)

    def permutation_index(self, n):
        # as dask: a shuffle of arange(n) by the state itself
        index = self._numpy_state.permutation(n)
        return index, tokenize(index)

    def block_seeds(self, n):
        words = np.frombuffer(self._numpy_state.bytes(624 * 4 * n), dtype="<u4")
        seeds = list(words.reshape(n, 624))
        return self._RandomState, seeds, tokenize(words)

    def choice(self, a, size=None, replace=True, p=None, chunks="auto"):
        """Samples of ``a`` (an int n: ``arange(n)``; a 1-d array), with
        probabilities ``p``; ``replace=False`` only in one chunk (as dask)."""
        return choose(self, a, size, replace, p, chunks, {})

    def permutation(self, x):
        """``x`` (an int n: ``arange(n)``) with its first axis shuffled."""
        return permute(self, x, 0)


def choose(source, a, size, replace, p, chunks, extra):
    """``choice`` of Generator and RandomState: a one-block ``a`` and ``p``
    (cdask Arrays are gathered into one task), drawn per output block."""
    if isinstance(a, (numbers.Integral, np.integer)):
        n = int(a)
        if n < 0:
            raise ValueError("a must be greater than 0")
        sample_a = n
    else:
        if not isinstance(a, Array):
            a = np.asarray(a)
            check_dtype(a.dtype)
        if a.ndim != 1:
            raise ValueError("a must be one dimensional")
        n = a.shape[0]
        if isnan(n):
            raise ValueError("choice: a has unknown chunk sizes; call a.compute_chunk_sizes()")
        sample_a = a if isinstance(a, np.ndarray) else np.zeros(n, dtype=a.dtype)
    if p is not None:
        if not isinstance(p, Array):
            p = np.asarray(p, dtype=np.float64)
            if p.ndim == 1 and p.size and not np.isclose(p.sum(), 1, rtol=1e-7, atol=0):
                raise ValueError("probabilities do not sum to 1")
        if p.ndim != 1:
            raise ValueError("p must be one dimensional")
        if p.shape[0] != n:
            raise ValueError("a and p must have the same size")
    shape = _shape(size)
    chunks = normalize_chunks(chunks, shape, dtype=np.float64)
    if not replace and any(len(c) > 1 for c in chunks):
        raise NotImplementedError("replace=False is not supported by cdask's choice for "
                                  "output arrays of more than one chunk")
    if not replace and int(np.prod(shape)) > n:
        raise ValueError("Cannot take a larger sample than population when replace is False")
    probe_p = p if isinstance(p, np.ndarray) else (None if p is None else np.full(n, 1.0 / n))
    dtype = np.asarray(source.probe(0).choice(sample_a, size=(0,), replace=True, p=probe_p,
                                               **extra)).dtype
    dtype = check_dtype(dtype)
    args = []
    deps = []
    for v in (a, p):
        if isinstance(v, Array):
            deps.append(v)
            args.append((_join_1d, v.__dask_keys__()))
        else:
            args.append(v)
    nblocks = 1
    for c in chunks:
        nblocks *= len(c)
    make, seeds, token = source.block_seeds(nblocks)
    name = "choice-" + tokenize(token, shape, chunks, a.name if isinstance(a, Array) else a,
                                replace, p.name if isinstance(p, Array) else p, extra)
    kw = (("replace", bool(replace)),) + tuple(sorted(extra.items()))
    layer = {}
    for flat, idx in enumerate(itertools.product(*[range(len(c)) for c in chunks])):
        bshape = tuple(chunks[d][i] for d, i in enumerate(idx))
        layer[(name,) + idx] = (_choice_block, make, seeds[flat], bshape, kw, args[0], args[1])
    layers = merge_layers(*deps) if deps else {}
    return Array(with_layer(layers, name, layer), name, chunks, dtype)


def _join_1d(blocks):
    return np.concatenate(blocks) if len(blocks) != 1 else blocks[0]


def _choice_block(make, seed, shape, kw, a, p):
    return make(seed).choice(a, size=shape, p=p, **dict(kw))


def permute(source, x, axis):
    """``x`` with ``axis`` shuffled by the permutation ``source`` draws now
    (the index is held in the graph, as dask does); an int n stands for
    ``arange(n)``.  Each output block gathers its rows from the blocks of x."""
    if isinstance(x, (numbers.Integral, np.integer)):
        x = arange(int(x), chunks="auto")
    elif not isinstance(x, Array):
        x = asarray(x)
    if x.ndim == 0:
        raise ValueError("x must be an integer or at least 1-dimensional")
    if not -x.ndim <= axis < x.ndim:
        raise np.exceptions.AxisError(axis, x.ndim)
    axis %= x.ndim
    n = x.shape[axis]
    if isnan(n) or any(isnan(s) for s in x.shape):
        raise ValueError("permutation: x has unknown chunk sizes; call x.compute_chunk_sizes()")
    index, token = source.permutation_index(n)
    c = x.chunks[axis]
    starts = np.cumsum((0,) + c)
    owner = np.searchsorted(starts, index, side="right") - 1   # block of each source row
    name = "permutation-" + tokenize(x.name, axis, token)
    layer = {}
    other = [range(len(cc)) for cc in x.chunks]
    for i in range(len(c)):
        rows = index[starts[i]:starts[i + 1]]
        blocks = owner[starts[i]:starts[i + 1]]
        srcs = np.unique(blocks)
        order = np.argsort(np.argsort(blocks, kind="stable"), kind="stable")
        local = tuple((rows[blocks == s] - starts[s]) for s in srcs)
        other[axis] = [i]
        for idx in itertools.product(*other):
            keys = [(x.name,) + idx[:axis] + (int(s),) + idx[axis + 1:] for s in srcs]
            layer[(name,) + idx] = (_take_along, axis, local, order, keys)
    return Array(with_layer(x._layers, name, layer), name, x.chunks, x.dtype)


def _take_along(axis, local, order, blocks):
    parts = [np.take(b, r, axis=axis) for b, r in zip(blocks, local)]
    out = np.concatenate(parts, axis=axis) if len(parts) > 1 else parts[0]
    return np.take(out, order, axis=axis)


for _name, _params in _DISTRIBUTIONS + _RANDOMSTATE_ONLY:
    _m = _distribution(_name, _params)
    _m.__qualname__ = "RandomState." + _name
    setattr(RandomState, _name, _m)
    if (_name, _params) in _DISTRIBUTIONS:
        _m = _distribution(_name, _params)
        _m.__qualname__ = "Generator." + _name
        setattr(Generator, _name, _m)
RandomState.random = RandomState.random_sample


def _generator_choice(self, a, size=None, replace=True, p=None, axis=0, shuffle=True,
                      chunks="auto"):
    """Samples of ``a`` (an int n: ``arange(n)``; a 1-d array) with
    probabilities ``p``; ``replace=False`` only in one chunk (as dask)."""
    if axis != 0:
        raise ValueError("axis must be 0 since a is one dimensional")
    return choose(_GeneratorSource(self), a, size, replace, p, chunks, {"shuffle": shuffle})


def _generator_permutation(self, x, axis=0):
    """``x`` (an int n: ``arange(n)``) shuffled along ``axis``."""
    return permute(_GeneratorSource(self), x, axis)


Generator.choice = _generator_choice
Generator.permutation = _generator_permutation
_generator_choice.__qualname__ = "Generator.choice"
_generator_permutation.__qualname__ = "Generator.permutation"

_global_rs = None


def _rs():
    global _global_rs
    if _global_rs is None:
        _global_rs = RandomState()
    return _global_rs


def _module_function(name):
    method = getattr(RandomState, name)

    def f(*args, **kwargs):
        return getattr(_rs(), name)(*args, **kwargs)

    f.__name__ = name
    f.__doc__ = method.__doc__
    f.__signature__ = inspect.signature(method).replace(
        parameters=list(inspect.signature(method).parameters.values())[1:])
    return f


for _name in [n for n, _ in _DISTRIBUTIONS] + ["random_integers", "choice", "permutation"]:
    globals()[_name] = _module_function(_name)
    __all__.append(_name)
__all__.append("RandomState")
del _name, _params, _m
