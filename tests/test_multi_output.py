"""Ufuncs with several outputs (divmod, frexp, modf, ...): tuples of lazy
Arrays from cdask.<name> and np.<name>, NumPy's bits, out= tuples (issue 16, part 3)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdask as da
from cdask.array.dtypes import SUPPORTED_DTYPES
from blockcheck import DTYPES, check, chunkings, sample

MULTI = sorted((u for u in vars(np).values() if isinstance(u, np.ufunc) and u.nout > 1),
               key=lambda u: u.__name__)


def test_every_multi_output_ufunc_is_covered():
    assert {u.__name__ for u in MULTI} >= {"divmod", "frexp", "modf"}
    for u in MULTI:
        assert getattr(da, u.__name__).nout == u.nout


def _supported(u, dt):
    # NumPy has a loop, and cdask holds its output dtypes (frexp of int8 is
    # float16, which cdask holds once it supports float16)
    try:
        loop = u.resolve_dtypes((np.dtype(dt),) * u.nin + (None,) * u.nout)
    except TypeError:
        return False
    return all(d in SUPPORTED_DTYPES for d in loop[u.nin:])


@st.composite
def _case(draw):
    u = draw(st.sampled_from(MULTI))
    dt = draw(st.sampled_from([d for d in DTYPES if _supported(u, d)]))
    shape = tuple(draw(st.lists(st.integers(0, 7), min_size=0, max_size=3)))
    chunks = chunkings(draw, st, shape)
    seed = draw(st.integers(0, 2 ** 16))
    how = draw(st.sampled_from(["cdask", "numpy"]))
    second = draw(st.sampled_from(["array", "scalar", "row"])) if u.nin == 2 else None
    return u, dt, shape, chunks, seed, how, second


@settings(max_examples=80, deadline=None)
@given(_case())
def test_multi_output_matches_numpy(case):
    u, dt, shape, chunks, seed, how, second = case
    a = sample(shape, dt, seed)
    x = da.from_array(a, chunks=chunks)
    args, nargs = [x], [a]
    if second == "array":
        b = sample(shape, dt, seed + 1)
        args.append(da.from_array(b, chunks=chunks))
        nargs.append(b)
    elif second == "scalar":
        args.append(3)
        nargs.append(3)
    elif second == "row":
        b = sample(shape[-1:], dt, seed + 2)
        args.append(b)          # a NumPy operand broadcast against the cdask one
        nargs.append(b)
    f = getattr(da, u.__name__) if how == "cdask" else u
    with np.errstate(all="ignore"):
        got = f(*args)
        want = u(*nargs)
        assert isinstance(got, tuple) and len(got) == u.nout
        for g, w in zip(got, want):
            assert isinstance(g, da.Array)
            check(g, w)


def test_unknown_chunk_sizes():
    a = np.linspace(-5, 5, 23)
    x = da.from_array(a, chunks=5)
    sel = x[x > 0]
    for g, w in zip(da.modf(sel), np.modf(a[a > 0])):
        np.testing.assert_array_equal(g.compute(), w, strict=True)
    m, e = np.frexp(sel)
    np.testing.assert_array_equal(m.compute(), np.frexp(a[a > 0])[0], strict=True)
    np.testing.assert_array_equal(e.compute(), np.frexp(a[a > 0])[1], strict=True)


def test_out_tuples():
    a = np.arange(-10, 14).reshape(4, 6)
    x = da.from_array(a, chunks=(3, 4))
    q = da.zeros((4, 6), dtype=np.int64, chunks=2)
    r = da.zeros((4, 6), dtype=np.float64, chunks=2)
    got = da.divmod(x, 4, out=(q, r))
    assert got[0] is q and got[1] is r
    np.testing.assert_array_equal(q.compute(), a // 4)
    np.testing.assert_array_equal(r.compute(), (a % 4).astype(np.float64))
    # through NumPy's protocol, with None for an output left to the ufunc
    q2 = da.zeros((4, 6), dtype=np.int64, chunks=3)
    got = np.divmod(x, 5, out=(q2, None))
    assert got[0] is q2 and isinstance(got[1], da.Array)
    np.testing.assert_array_equal(q2.compute(), a // 5)
    np.testing.assert_array_equal(got[1].compute(), a % 5)
    f = da.zeros((4, 6), chunks=2)
    m, e = da.frexp(x.astype(float), out=(f, None))
    assert m is f
    np.testing.assert_array_equal(f.compute(), np.frexp(a.astype(float))[0])


def test_bad_out():
    x = da.arange(6, chunks=2)
    with pytest.raises(ValueError):
        da.divmod(x, 2, out=(da.zeros(6, dtype=int, chunks=2),))
    with pytest.raises(TypeError):
        da.divmod(x, 2, out=(np.zeros(6, dtype=int), None))
    with pytest.raises(TypeError):
        # float64 results into an int array: NumPy's same_kind rule
        da.modf(x * 0.5, out=(da.zeros(6, dtype=int, chunks=2), None))
    with pytest.raises(ValueError):
        da.divmod(x, 2, out=(da.zeros(5, dtype=int, chunks=2), None))


def test_numpy_inputs_give_numpy_results():
    got = da.divmod(np.arange(5), 2)
    assert all(isinstance(g, np.ndarray) for g in got)
    np.testing.assert_array_equal(got[0], np.arange(5) // 2)


def test_lazy_and_dtypes():
    x = da.from_array(np.linspace(0.5, 9, 12, dtype=np.float32), chunks=5)
    m, e = da.frexp(x)
    nm, ne = np.frexp(np.linspace(0.5, 9, 12, dtype=np.float32))
    assert (m.dtype, e.dtype) == (nm.dtype, ne.dtype)
    assert m.chunks == x.chunks and e.chunks == x.chunks
    with pytest.raises(TypeError):
        da.frexp(da.arange(4, chunks=2) + 1j)     # no complex loop, NumPy's TypeError


def test_the_ufunc_runs_once_for_all_outputs():
    a = np.linspace(-4, 4, 17)
    x = da.from_array(a, chunks=5)
    q, r = da.divmod(x, 1.5)
    assert set(q._layers) & set(r._layers) >= {n for n in q._layers if "-outputs-" in n}
    shared = [n for n in q._layers if "-outputs-" in n]
    assert len(shared) == 1 and shared[0] in r._layers
    gq, gr = da.compute(q, r)
    wq, wr = np.divmod(a, 1.5)
    np.testing.assert_array_equal(gq, wq, strict=True)
    np.testing.assert_array_equal(gr, wr, strict=True)
    # what follows the outputs is lazy as for any Array
    np.testing.assert_array_equal((q * 1.5 + r).compute(), wq * 1.5 + wr)
