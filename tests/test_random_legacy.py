"""cdask.random's legacy names: RandomState, the distributions as its methods, as
Generator methods and as module-level functions; choice, permutation.

RandomState draws as dask's does (one MT19937 state per block from
``np.random.RandomState(seed)``), so for a seed and chunks its values are
dask's, which the tests check bit for bit; Generator methods are checked for
reproducibility and for their means over large samples.
"""

import math

import dask.array as dda
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask
import cdask.random as cr

# NumPy's RandomState.random_integers warns that it is deprecated (so does dask's)
pytestmark = pytest.mark.filterwarnings("ignore:This function is deprecated:DeprecationWarning")

# (name, parameters, mean) - the mean of the distribution with those parameters
ZETA = {3: 1.2020569031595942, 4: 1.0823232337111381}
CASES = [
    ("beta", (2.0, 3.0), 0.4),
    ("binomial", (10, 0.3), 3.0),
    ("chisquare", (4.0,), 4.0),
    ("exponential", (2.0,), 2.0),
    ("f", (5.0, 10.0), 10 / 8),
    ("gamma", (2.0, 3.0), 6.0),
    ("geometric", (0.25,), 4.0),
    ("gumbel", (1.0, 2.0), 1 + 2 * np.euler_gamma),
    ("hypergeometric", (10, 5, 6), 4.0),
    ("laplace", (1.0, 2.0), 1.0),
    ("logistic", (1.0, 2.0), 1.0),
    ("lognormal", (0.0, 0.5), math.exp(0.125)),
    ("logseries", (0.5,), 1 / math.log(2)),
    ("negative_binomial", (5, 0.5), 5.0),
    ("noncentral_chisquare", (3.0, 2.0), 5.0),
    ("noncentral_f", (5.0, 10.0, 2.0), 10 * 7 / (5 * 8)),
    ("pareto", (3.0,), 0.5),
    ("poisson", (4.0,), 4.0),
    ("power", (3.0,), 0.75),
    ("rayleigh", (2.0,), 2 * math.sqrt(math.pi / 2)),
    ("standard_exponential", (), 1.0),
    ("standard_gamma", (3.0,), 3.0),
    ("standard_t", (5.0,), 0.0),
    ("triangular", (0.0, 1.0, 3.0), 4 / 3),
    ("vonmises", (0.0, 4.0), 0.0),
    ("wald", (2.0, 3.0), 2.0),
    ("weibull", (2.0,), math.gamma(1.5)),
    ("zipf", (4.0,), ZETA[3] / ZETA[4]),
]
NAMES = [c[0] for c in CASES] + ["standard_cauchy", "multinomial", "choice", "permutation"]
RS_ONLY = [("random_integers", (1, 6), 3.5), ("randint", (0, 10), 4.5),
           ("random_sample", (), 0.5), ("normal", (1.0, 2.0), 1.0),
           ("uniform", (1.0, 3.0), 2.0), ("standard_normal", (), 0.0)]


def _check_mean(name, x, mean):
    v = np.asarray(x.compute(), dtype=np.float64)
    tol = 6 * v.std() / math.sqrt(v.size) + 1e-12
    assert abs(v.mean() - mean) < tol, (name, v.mean(), mean, tol)


@pytest.mark.parametrize("name,params,mean", CASES + RS_ONLY, ids=lambda v: str(v))
def test_randomstate_draws_what_dask_draws(name, params, mean):
    ours = getattr(cr.RandomState(1234), name)(*params, size=(30, 7), chunks=(8, 4))
    theirs = getattr(dda.random.RandomState(1234), name)(*params, size=(30, 7),
                                                          chunks=(8, 4))
    assert ours.chunks == theirs.chunks and ours.shape == (30, 7)
    a, b = ours.compute(), theirs.compute()
    assert ours.dtype == a.dtype == b.dtype
    assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("name,params,mean", CASES, ids=lambda v: str(v))
def test_generator_means(name, params, mean):
    x = getattr(cdask.random.default_rng(7), name)(*params, size=200_000, chunks=30_000)
    assert x.numblocks == (7,)
    _check_mean(name, x, mean)


@pytest.mark.parametrize("name,params,mean", CASES + RS_ONLY, ids=lambda v: str(v))
def test_module_functions_and_randomstate_means(name, params, mean):
    x = getattr(cr.RandomState(11), name)(*params, size=(400, 500), chunks=(100, 250))
    _check_mean(name, x, mean)
    if hasattr(cr, name) and name not in ("random_sample", "normal", "uniform",
                                          "standard_normal", "randint"):
        cr.seed(3)
        y = getattr(cr, name)(*params, size=200_000, chunks=50_000)
        _check_mean(name, y, mean)
        cr.seed(3)
        assert getattr(cr, name)(*params, size=200_000, chunks=50_000).compute().tobytes() == \
            y.compute().tobytes()


def test_cauchy_median_and_multinomial():
    g = cdask.random.default_rng(5)
    c = g.standard_cauchy(size=100_000, chunks=20_000).compute()
    assert abs(np.median(c)) < 0.03
    m = g.multinomial(20, [0.2, 0.3, 0.5], size=(5000, 2), chunks=(1000, 1))
    assert m.shape == (5000, 2, 3) and m.chunks == ((1000,) * 5, (1, 1), (3,))
    v = m.compute()
    assert v.dtype == np.int64 and (v.sum(axis=-1) == 20).all()
    assert np.allclose(v.mean(axis=(0, 1)), [4, 6, 10], atol=0.15)
    ours = cr.RandomState(2).multinomial(20, [0.2, 0.3, 0.5], size=10, chunks=3).compute()
    theirs = dda.random.RandomState(2).multinomial(20, [0.2, 0.3, 0.5], size=10,
                                                   chunks=3).compute()
    assert ours.tobytes() == theirs.tobytes()
    # pvals as an ndarray is passed whole (dask's multinomial raises on one)
    nd = cr.RandomState(2).multinomial(20, np.array([0.2, 0.3, 0.5]), size=10, chunks=3)
    assert nd.compute().tobytes() == theirs.tobytes()


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(CASES), st.integers(0, 2**32 - 1), st.integers(1, 40),
       st.integers(1, 15))
def test_values_depend_on_the_seed_and_the_chunks_only(case, seed, n, c):
    name, params, _ = case
    for make in (cdask.random.default_rng, cr.RandomState):
        a = getattr(make(seed), name)(*params, size=n, chunks=c)
        b = getattr(make(seed), name)(*params, size=n, chunks=c)
        va = a.compute()
        assert a.name == b.name
        assert va.tobytes() == b.compute(num_workers=1).tobytes() == a.compute().tobytes()
        assert va.shape == (n,) and va.dtype == a.dtype
    # each call of a Generator draws new values
    g = cdask.random.default_rng(seed)
    x, y = getattr(g, name)(*params, size=64, chunks=16), getattr(g, name)(*params, size=64,
                                                                            chunks=16)
    assert x.name != y.name


def test_array_parameters_broadcast():
    lam = np.arange(1, 7.0).reshape(2, 3)
    ours = cr.RandomState(5).poisson(lam, size=(4, 2, 3), chunks=(2, 1, 2))
    theirs = dda.random.RandomState(5).poisson(lam, size=(4, 2, 3), chunks=(2, 1, 2))
    assert ours.compute().tobytes() == theirs.compute().tobytes()
    # no size: the parameters' broadcast shape
    x = cr.RandomState(1).normal(np.zeros((3, 1)), np.ones(4), chunks=2)
    assert x.shape == (3, 4) and x.compute().shape == (3, 4)
    # a list is an array parameter too
    assert cr.RandomState(0).binomial([1, 2, 3], 0.5).compute().shape == (3,)
    # cdask Array parameters: the blocks line up; chunks default to theirs
    big = np.array([10.0, 1000.0, 100_000.0])
    p = cdask.from_array(np.repeat(big[None, :], 3000, axis=0), chunks=(1000, 1))
    y = cdask.random.default_rng(2).poisson(p)
    assert y.chunks == p.chunks and y.dtype == np.int64
    means = y.compute().mean(axis=0)
    assert np.allclose(means, big, rtol=0.05)
    z = cdask.random.default_rng(2).laplace(cdask.from_array(big, chunks=1), 1.0, size=(50, 3))
    assert z.chunks == ((50,), (1, 1, 1))
    assert (np.abs(z.compute().mean(axis=0) - big) < 1.5).all()
    with pytest.raises(ValueError, match="line up"):
        cdask.random.default_rng(2).poisson(p, chunks=(500, 3)).compute()


def test_bad_parameters_raise_numpys_errors():
    rs, g = cr.RandomState(0), cdask.random.default_rng(0)
    with pytest.raises(ValueError, match="a <= 0"):
        rs.beta(-1, 2, size=10)
    with pytest.raises(ValueError, match="a <= 0"):
        g.beta(np.array([1.0, -1.0]), 2, size=(5, 2))
    with pytest.raises(ValueError, match="left == right"):
        g.triangular(1, 1, 1, size=3)
    with pytest.raises(ValueError, match="nsample"):
        g.hypergeometric(1, 1, 5, size=3)
    with pytest.raises(ValueError, match="shape mismatch"):
        rs.poisson(np.ones(3), size=(4, 2))
    with pytest.raises(ValueError, match="negative"):
        rs.poisson(1.0, size=-1)
    with pytest.raises(TypeError):
        rs.beta(2.0)                      # b is required
    with pytest.raises(TypeError):
        g.poisson(1.0, no_such_keyword=3, size=3)
    with pytest.raises(ValueError, match="1-d"):
        g.multinomial(3, [[0.5, 0.5]], size=2)


def test_dtype_keywords_pass_to_numpy():
    g = cdask.random.default_rng(4)
    x = g.standard_exponential(size=100, chunks=30, dtype=np.float32)
    assert x.dtype == np.float32 and x.compute().dtype == np.float32
    r = cr.RandomState(4).randint(0, 100, size=50, chunks=20, dtype=np.int16)
    v = r.compute()
    assert r.dtype == v.dtype == np.int16 and v.min() >= 0 and v.max() < 100
    assert v.tobytes() == dda.random.RandomState(4).randint(0, 100, size=50, chunks=20,
                                                            dtype=np.int16).compute().tobytes()


def test_choice():
    a = np.array([1.5, 2.5, 7.0, 9.0])
    p = [0.1, 0.2, 0.3, 0.4]
    for args, kw in [((10,), {"size": 25, "chunks": 7}),
                     ((a,), {"size": (6, 5), "chunks": (4, 2), "p": p}),
                     ((10,), {"size": 6, "replace": False})]:
        ours = cr.RandomState(9).choice(*args, **kw)
        theirs = dda.random.RandomState(9).choice(*args, **kw)
        assert ours.dtype == theirs.dtype
        assert ours.compute().tobytes() == theirs.compute().tobytes()
    g = cdask.random.default_rng(1)
    v = g.choice(cdask.from_array(a, chunks=2), size=20_000, p=cdask.from_array(
        np.array(p), chunks=3), chunks=5000).compute()
    assert set(np.unique(v)) <= set(a)
    assert abs((v == 9.0).mean() - 0.4) < 0.02
    w = g.choice(5, size=5, replace=False).compute()
    assert sorted(w) == [0, 1, 2, 3, 4]
    assert cr.choice(3, size=4).compute().max() < 3
    with pytest.raises(NotImplementedError):
        g.choice(10, size=6, replace=False, chunks=3)
    with pytest.raises(ValueError, match="larger sample"):
        g.choice(3, size=6, replace=False)
    with pytest.raises(ValueError, match="sum to 1"):
        g.choice(3, size=6, p=[0.5, 0.6, 0.1])
    with pytest.raises(ValueError, match="same size"):
        g.choice(3, size=6, p=[0.5, 0.5])
    with pytest.raises(ValueError, match="one dimensional"):
        g.choice(np.ones((2, 2)), size=3)
    with pytest.raises(ValueError):
        g.choice(-1, size=3)


def test_permutation():
    ours = cr.RandomState(3).permutation(25)
    theirs = dda.random.RandomState(3).permutation(25)
    assert ours.compute().tobytes() == theirs.compute().tobytes()
    xn = np.arange(60).reshape(12, 5)
    x = cdask.from_array(xn, chunks=(5, 2))
    ours = cr.RandomState(8).permutation(x)
    theirs = dda.random.RandomState(8).permutation(dda.from_array(xn, chunks=(5, 2)))
    assert ours.chunks == x.chunks
    assert ours.compute().tobytes() == theirs.compute().tobytes()
    g = cdask.random.default_rng(0)
    p = g.permutation(x, axis=1).compute()
    assert sorted(map(tuple, p.T)) == sorted(map(tuple, xn.T))
    q = g.permutation(xn).compute()
    assert sorted(map(tuple, q)) == sorted(map(tuple, xn)) and not (q == xn).all()
    assert sorted(cr.permutation(10).compute()) == list(range(10))
    with pytest.raises(ValueError):
        g.permutation(cdask.from_array(np.float64(3.0)))
    with pytest.raises(np.exceptions.AxisError):
        g.permutation(x, axis=2)


def test_names_and_signatures():
    import inspect

    for name in NAMES:
        assert callable(getattr(cr, name)), name
        assert callable(getattr(cr.RandomState, name)), name
        assert callable(getattr(cdask.random.Generator, name)), name
    assert callable(cr.random_integers) and not hasattr(cdask.random.Generator,
                                                        "random_integers")
    sig = inspect.signature(cr.RandomState.gamma)
    assert list(sig.parameters) == ["self", "shape", "scale", "size", "chunks", "kwargs"]
    assert sig.parameters["scale"].default == 1.0
    assert list(inspect.signature(cr.beta).parameters)[:4] == ["a", "b", "size", "chunks"]
    # size may come by position, as in dask
    assert cr.RandomState(0).beta(2, 3, 7).shape == (7,)
    assert cr.RandomState(0).random(5).compute().shape == (5,)
