"""cdask.Array core: metadata, compute/persist, the dask collection protocol,
elementwise operations against NumPy (bit for bit), astype, repr, names."""

import math
import operator
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import cdask
import cdask as da
from cdask.array.core import Array
from cdask.array.elemwise import elemwise
from blockcheck import chunk_specs

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

NUM_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "float32", "float64", "complex64", "complex128"]


def sample(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "b":
        a = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "iu":
        a = rng.integers(1, 20, n).astype(dt)
    elif dt.kind == "c":
        a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
    else:
        a = rng.standard_normal(n).astype(dt)
    return a.reshape(shape)


@st.composite
def array_and_chunks(draw, max_ndim=3, max_side=7, shape=None):
    if shape is None:
        nd = draw(st.integers(0, max_ndim))
        shape = tuple(draw(st.integers(0, max_side)) for _ in range(nd))
    chunks = chunk_specs(draw, st, shape)
    return tuple(shape), tuple(chunks)


def same(result, expect):
    """Bit-for-bit equality including dtype and shape."""
    result = np.asarray(result)
    expect = np.asarray(expect)
    assert result.dtype == expect.dtype, (result.dtype, expect.dtype)
    assert result.shape == expect.shape, (result.shape, expect.shape)
    if expect.dtype.kind in "fc":
        np.testing.assert_array_equal(result, expect)
        assert np.array_equal(np.signbit(result.real), np.signbit(expect.real))
    else:
        assert result.tobytes() == expect.tobytes()


# ------------------------------------------------------------------ metadata

def test_metadata():
    a = np.arange(24.0).reshape(4, 6)
    x = da.from_array(a, chunks=(3, 4))
    assert isinstance(x, Array) and isinstance(x, cdask.Array)
    assert x.shape == (4, 6) and x.ndim == 2 and x.size == 24
    assert x.dtype == np.float64 and x.itemsize == 8 and x.nbytes == 192
    assert x.chunks == ((3, 1), (4, 2))
    assert x.numblocks == (2, 2) and x.npartitions == 4
    assert x.chunksize == (3, 4)
    assert len(x) == 4
    assert isinstance(x.dask, cdask.Graph)
    assert x.__dask_graph__() is x.__dask_graph__()
    assert x.__dask_keys__() == [[(x.name, 0, 0), (x.name, 0, 1)],
                                 [(x.name, 1, 0), (x.name, 1, 1)]]
    assert x.__dask_layers__() == (x.name,)
    assert x.__dask_tokenize__() == x.name
    assert x.__dask_scheduler__ is not None
    s = da.from_array(np.float64(3.0))
    assert s.shape == () and s.__dask_keys__() == [(s.name,)]
    with pytest.raises(TypeError):
        len(s)


def test_array_constructor_contract():
    layer = {("x", 0): np.arange(3.0), ("x", 1): np.arange(3.0, 5.0)}
    x = Array({"x": layer}, "x", ((3, 2),), "f8")
    np.testing.assert_array_equal(x.compute(), np.arange(5.0))
    # a flat graph is accepted as the array's single layer
    y = Array(layer, "x", ((3, 2),), np.float64)
    np.testing.assert_array_equal(y.compute(), np.arange(5.0))
    z = x + 1
    assert set(z._layers) == {"x", z.name}
    assert z._layers["x"] is layer


def test_repr():
    x = da.ones((10, 4), chunks=(5, 2))
    r = repr(x)
    assert r == ("cdask.Array<ones, shape=(10, 4), dtype=float64, chunksize=(5, 2), "
                 "chunktype=numpy.ndarray>")
    assert "add" in repr(x + x)
    assert "shape=(3,)" in repr(da.ones(3))
    assert "shape=()" in repr(da.ones(()))
    y = x[x > 0]
    assert "shape=(unknown,)" in repr(y)      # .chunks keeps nan; the repr says unknown
    assert "<table" in x._repr_html_()


def test_deterministic_names():
    a = np.arange(10.0)
    assert (da.from_array(a, chunks=3) + 1).name == (da.from_array(a, chunks=3) + 1).name
    assert (da.ones(5, chunks=2) * 2).name == (da.ones(5, chunks=2) * 2).name
    assert (da.ones(5, chunks=2) * 2).name != (da.ones(5, chunks=2) * 3).name
    assert da.ones(5).name != da.zeros(5).name
    assert da.ones(5)[1:3].name == da.ones(5)[1:3].name
    assert da.ones(5)[1:3].name != da.ones(5)[1:4].name
    assert np.exp(da.ones(5)).name == np.exp(da.ones(5)).name
    assert da.ones(5).astype("i4").name == da.ones(5).astype("i4").name


def test_tokenize():
    from cdask.array.tokenize import tokenize
    a = np.arange(10)
    assert tokenize(a) == tokenize(a.copy())
    assert tokenize(a) != tokenize(a + 1)
    assert tokenize(1, "x", (2, 3)) == tokenize(1, "x", (2, 3))
    assert tokenize(1) != tokenize(1.0)
    big = np.zeros(2**18)
    assert tokenize(big) == tokenize(big)
    assert tokenize(big) != tokenize(np.zeros(2**18))
    assert tokenize({"a": 1, "b": 2}) == tokenize({"b": 2, "a": 1})
    assert len(tokenize(np.float32(1))) == 32


def test_tokenize_memmap(tmp_path):
    from cdask.array.tokenize import tokenize
    fn = tmp_path / "m.dat"
    m = np.memmap(fn, dtype="f4", mode="w+", shape=(10,))
    m2 = np.memmap(fn, dtype="f4", mode="r", shape=(10,))
    m3 = np.memmap(fn, dtype="f4", mode="r", shape=(10,))
    assert tokenize(m2) == tokenize(m3)
    assert tokenize(m2) != tokenize(m2[1:])
    del m


# ------------------------------------------------------------------- compute

def test_compute_allocates_once(monkeypatch):
    a = np.arange(60.0).reshape(6, 10)
    x = da.from_array(a, chunks=(2, 3)) * 2

    def boom(*args, **kw):
        raise AssertionError("no concatenation chains")

    monkeypatch.setattr(np, "concatenate", boom)
    monkeypatch.setattr(np, "block", boom)
    np.testing.assert_array_equal(x.compute(), a * 2)


def test_compute_kwargs():
    x = da.ones(10, chunks=3) + 1
    np.testing.assert_array_equal(x.compute(num_workers=1), np.full(10, 2.0))
    np.testing.assert_array_equal(x.compute(scheduler="threads"), np.full(10, 2.0))
    st_ = cdask.Stats()
    x.compute(stats=st_)
    assert st_.done >= 4


def test_compute_many_shares_work():
    calls = []

    def count(b):
        calls.append(1)
        return b

    x = da.ones(10, chunks=5).map_blocks(count, dtype=float)
    y = x + 1
    z = x * 2
    r = da.compute(y, z, 5, "s")
    np.testing.assert_array_equal(r[0], np.full(10, 2.0))
    np.testing.assert_array_equal(r[1], np.full(10, 2.0))
    assert r[2] == 5 and r[3] == "s"
    assert len(calls) == 2
    assert cdask.compute(x)[0].shape == (10,)
    assert cdask.compute(1, 2) == (1, 2)


def test_compute_scalar_and_empty():
    s = da.ones((3,), chunks=2)[1]
    v = s.compute()
    assert v == 1.0 and np.ndim(v) == 0
    e = da.ones((0, 3), chunks=2)
    assert e.compute().shape == (0, 3)
    z = da.zeros((4, 0, 2))
    assert z.compute().shape == (4, 0, 2)


def test_persist():
    calls = []

    def count(b):
        calls.append(1)
        return b + 1

    x = da.ones(10, chunks=5).map_blocks(count, dtype=float)
    p = x.persist()
    assert len(calls) == 2
    assert p.name == x.name and p.chunks == x.chunks
    np.testing.assert_array_equal(p.compute(), np.full(10, 2.0))
    np.testing.assert_array_equal((p + 1).compute(), np.full(10, 3.0))
    assert len(calls) == 2
    (q, n) = da.persist(x, 3)
    assert n == 3


def test_array_protocol():
    a = np.arange(6).reshape(2, 3)
    x = da.from_array(a, chunks=2)
    np.testing.assert_array_equal(np.asarray(x), a)
    assert np.asarray(x, dtype="f4").dtype == np.float32
    np.testing.assert_array_equal(np.array(x), a)
    assert x.__array__(copy=True).shape == (2, 3)
    assert float(da.ones(1)) == 1.0 and int(da.ones((1, 1))) == 1
    with pytest.raises((ValueError, TypeError)):
        bool(da.ones(3))


def test_dask_compute():
    dask = pytest.importorskip("dask")
    a = np.arange(20.0).reshape(4, 5)
    x = da.from_array(a, chunks=(3, 2))
    y = np.sin(x) * 2 + 1
    (r,) = dask.compute(y)
    np.testing.assert_array_equal(r, np.sin(a) * 2 + 1)
    r1, r2 = dask.compute(y, x[1:3])
    np.testing.assert_array_equal(r2, a[1:3])
    (p,) = dask.persist(y)
    np.testing.assert_array_equal(p.compute(), np.sin(a) * 2 + 1)
    s = dask.compute(x[0, 0])[0]
    assert s == 0.0
    from dask.base import is_dask_collection, tokenize as dtok
    assert is_dask_collection(x)
    assert dtok(x) == dtok(da.from_array(a, chunks=(3, 2)))


def test_pickle():
    x = da.from_array(np.arange(10.0), chunks=3) + 1
    y = pickle.loads(pickle.dumps(x))
    np.testing.assert_array_equal(y.compute(), np.arange(10.0) + 1)


def test_blocks():
    a = np.arange(48).reshape(6, 8)
    x = da.from_array(a, chunks=(2, 3))
    np.testing.assert_array_equal(x.blocks[0, 1].compute(), a[:2, 3:6])
    np.testing.assert_array_equal(x.blocks[1].compute(), a[2:4])
    np.testing.assert_array_equal(x.blocks[:, -1].compute(), a[:, 6:])
    np.testing.assert_array_equal(x.blocks[[0, 2], 0].compute(), a[[0, 1, 4, 5], :3])
    np.testing.assert_array_equal(x.blocks[::-1, 0].compute(),
                                  np.concatenate([a[4:6, :3], a[2:4, :3], a[:2, :3]]))
    assert x.blocks.shape == (3, 3) and x.blocks.size == 9
    assert len(list(x.blocks.ravel())) == 9
    with pytest.raises(IndexError):
        x.blocks[3]


def test_copy_and_astype():
    a = np.array([1.7, -2.5, 300.0])
    x = da.from_array(a, chunks=2)
    assert x.copy().compute().tolist() == a.tolist()
    same(x.astype("i4").compute(), a.astype("i4"))
    same(x.astype("u1").compute(), a.astype("u1"))
    same(x.astype("c8").compute(), a.astype("c8"))
    assert x.astype("f8") is x
    with pytest.raises(TypeError) as ei:
        x.astype("i8", casting="safe")
    assert "safe" in str(ei.value)
    x.astype("f4", casting="same_kind")
    with pytest.raises(TypeError):
        x.astype(object)


@SETTINGS
@given(array_and_chunks(), st.sampled_from(NUM_DTYPES), st.sampled_from(NUM_DTYPES))
def test_astype_hypothesis(sc, d1, d2):
    shape, chunks = sc
    a = sample(shape, d1)
    x = da.from_array(a, chunks=chunks)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            same(x.astype(d2).compute(), a.astype(d2))


# ----------------------------------------------------------------- elementwise

BINOPS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
          operator.mod, operator.pow, operator.eq, operator.ne, operator.lt, operator.le,
          operator.gt, operator.ge, operator.and_, operator.or_, operator.xor]


def _np_or_error(f, *args):
    import warnings
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return f(*args), None
        except Exception as e:  # noqa: BLE001
            return None, type(e)


def _cd(f, *args):
    import warnings
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(f(*args).compute() if hasattr(f(*args), "compute") else f(*args))


@SETTINGS
@given(array_and_chunks(max_ndim=2), st.sampled_from(NUM_DTYPES), st.sampled_from(NUM_DTYPES),
       st.sampled_from(BINOPS), st.data())
def test_binops_bitwise(sc, d1, d2, op, data):
    shape, chunks = sc
    a = sample(shape, d1, 1)
    # second operand: same shape with other chunks, or a broadcastable shape
    kind = data.draw(st.sampled_from(["same", "bcast", "numpy", "pyscalar", "npscalar"]))
    b_np = sample(shape, d2, 2)
    x = da.from_array(a, chunks=chunks)
    if kind == "same":
        _, ch2 = data.draw(array_and_chunks(shape=shape))
        y = da.from_array(b_np, chunks=ch2)
    elif kind == "bcast":
        bshape = tuple(1 if data.draw(st.booleans()) else s for s in shape)
        bshape = bshape[data.draw(st.integers(0, len(bshape))):]
        b_np = sample(bshape, d2, 3)
        y = da.from_array(b_np, chunks=1 if bshape else ())
    elif kind == "numpy":
        y = b_np
    elif kind == "pyscalar":
        b_np = data.draw(st.sampled_from([2, 3, -1, 2.5, 0.5, True, 1j]))
        y = b_np
    else:
        b_np = np.array(3).astype(d2)[()]
        y = b_np
    expect, err = _np_or_error(op, a, b_np)
    if err is not None:
        with pytest.raises(Exception):
            import warnings
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                op(x, y).compute()
        return
    r = op(x, y)
    assert isinstance(r, Array)
    assert r.dtype == np.asarray(expect).dtype
    assert r.shape == np.shape(expect)
    with np.errstate(all="ignore"):
        got = r.compute()
    same(got, expect)
    # reflected
    expect2, err2 = _np_or_error(op, b_np, a)
    if err2 is None:
        with np.errstate(all="ignore"):
            same(op(y, x).compute(), expect2)


UNARY = [np.exp, np.sin, np.sqrt, np.negative, np.absolute, np.log1p, np.floor, np.isnan,
         np.sign, np.square, np.reciprocal, np.invert, np.logical_not, np.conjugate]


@SETTINGS
@given(array_and_chunks(), st.sampled_from(NUM_DTYPES), st.sampled_from(UNARY))
def test_unary_ufuncs_bitwise(sc, dt, uf):
    shape, chunks = sc
    a = sample(shape, dt, 4)
    expect, err = _np_or_error(uf, a)
    x = da.from_array(a, chunks=chunks)
    if err is not None:
        with pytest.raises(Exception):
            with np.errstate(all="ignore"):
                uf(x).compute()
        return
    r = uf(x)
    assert isinstance(r, Array)
    with np.errstate(all="ignore"):
        same(r.compute(), expect)


def test_operators():
    a = np.arange(1, 13, dtype="i8").reshape(3, 4)
    x = da.from_array(a, chunks=2)
    same((-x).compute(), -a)
    same((+x).compute(), +a)
    same(abs(-x).compute(), abs(-a))
    same((~x).compute(), ~a)
    same((x << 2).compute(), a << 2)
    same((x >> 1).compute(), a >> 1)
    same((2 ** x).compute(), 2 ** a)
    same((x ** 2).compute(), a ** 2)
    same((x ** 0.5).compute(), a ** 0.5)
    q, r = divmod(x, 5)
    same(q.compute(), a // 5)
    same(r.compute(), a % 5)
    q, r = divmod(17, x)
    same(q.compute(), 17 // a)
    same((x == x).compute(), a == a)
    same((1 - x).compute(), 1 - a)
    same((a - x).compute(), a - a)
    assert isinstance(a + x, Array)
    same((a.T[:, :1].T - x).compute(), a[:1] - a)


def test_broadcast_error_message():
    x = da.ones(3, chunks=2)
    y = da.ones(4, chunks=2)
    with pytest.raises(ValueError) as ei:
        x + y
    assert "operands could not be broadcast together with shapes (3,) (4,)" in str(ei.value)
    with pytest.raises(ValueError) as ei:
        da.ones((2, 3)) * np.ones((4,))
    assert "(2, 3) (4,)" in str(ei.value)


def test_broadcasting_and_chunk_alignment():
    a = np.arange(30.0).reshape(5, 6)
    b = np.arange(6.0)
    c = np.arange(5.0).reshape(5, 1)
    x = da.from_array(a, chunks=(2, 4))
    y = da.from_array(b, chunks=5)
    z = da.from_array(c, chunks=(3, 1))
    r = x + y + z
    same(r.compute(), a + b + c)
    assert r.shape == (5, 6)
    same((x + np.float32(2)).compute(), a + np.float32(2))
    same((da.from_array(a.astype("f4"), chunks=3) + 2.5).compute(), a.astype("f4") + 2.5)
    same((da.from_array(np.arange(3, dtype="i1"), chunks=2) + 1).compute(),
         np.arange(3, dtype="i1") + 1)
    s = da.from_array(np.float64(2.0))
    same((x * s).compute(), a * 2.0)


def test_int_scalar_overflow_like_numpy():
    x = da.from_array(np.arange(3, dtype="i1"), chunks=2)
    with pytest.raises(OverflowError):
        x + 1000
    same((x < 1000).compute(), np.arange(3, dtype="i1") < 1000)


def test_array_ufunc_lazy():
    a = np.linspace(0, 1, 10)
    x = da.from_array(a, chunks=4)
    e = np.exp(x)
    assert isinstance(e, Array)
    same(e.compute(), np.exp(a))
    same(np.add(x, 1).compute(), a + 1)
    same(np.add(a, x).compute(), a + a)
    m, ex = np.frexp(x)
    same(m.compute(), np.frexp(a)[0])
    same(ex.compute(), np.frexp(a)[1])
    # ufunc methods are lazy too (ufunc_methods.py)
    r = x.__array_ufunc__(np.add, "reduce", x)
    assert isinstance(r, Array)
    np.testing.assert_allclose(r.compute(), np.add.reduce(a))
    same(np.add(x, 1, dtype="f4").compute(), np.add(a, 1, dtype="f4"))


def test_elemwise_out_and_where():
    a = np.arange(10.0)
    x = da.from_array(a, chunks=3)
    out = da.zeros(10, chunks=4)
    r = np.add(x, 1, out=out)
    assert r is out
    same(out.compute(), a + 1)
    base = da.full(10, -1.0, chunks=5)
    r = elemwise(np.multiply, x, 2, where=x > 4, out=base)
    expect = np.full(10, -1.0)
    np.multiply(a, 2, where=a > 4, out=expect)
    same(r.compute(), expect)
    y = elemwise(np.add, x, x)
    same(y.compute(), a + a)
    with pytest.raises(ValueError):
        np.add(x, 1, out=da.zeros(3))


def test_elemwise_python_fallback(monkeypatch):
    # without C kernels and ufuncs.result_dtype: UfuncBlock tasks calling
    # NumPy, dtypes from ufunc.resolve_dtypes
    import cdask.array.ufuncs as ufuncs

    def no_dtype(*args):
        raise NotImplementedError

    monkeypatch.setattr(ufuncs, "ufunc_task", lambda ufunc, in_dtypes: None)
    monkeypatch.setattr(ufuncs, "result_dtype", no_dtype)
    a = np.arange(10, dtype="f4")
    x = da.from_array(a, chunks=3)
    same((x * 2 + 1).compute(), a * 2 + 1)
    same(np.hypot(x, x).compute(), np.hypot(a, a))


def test_elemwise_python_function():
    a = np.arange(6.0)
    x = da.from_array(a, chunks=4)
    r = elemwise(lambda u, v: u * v + 1, x, 3.0)
    same(r.compute(), a * 3.0 + 1)


def test_map_blocks():
    a = np.arange(12.0).reshape(3, 4)
    x = da.from_array(a, chunks=2)
    same(x.map_blocks(lambda b: b * 2).compute(), a * 2)
    same(da.map_blocks(np.add, x, x).compute(), a + a)
    ids = x.map_blocks(lambda b, block_id=None: np.full(b.shape, block_id[0] * 10 + block_id[1]),
                       dtype="i8").compute()
    assert ids[2, 3] == 11 and ids[0, 0] == 0
    s = x.map_blocks(lambda b: b.sum(axis=0), drop_axis=0, chunks=((2, 2),)) \
        if False else None  # drop_axis needs one block along the axis
    assert s is None
    y = da.from_array(a, chunks=(3, 2)).map_blocks(lambda b: b.sum(axis=0), drop_axis=0)
    same(y.compute(), a.sum(axis=0))


def test_transpose():
    a = np.arange(24).reshape(2, 3, 4)
    x = da.from_array(a, chunks=(1, 2, 3))
    same(x.T.compute(), a.T)
    same(x.transpose(1, 0, 2).compute(), a.transpose(1, 0, 2))
    same(x.transpose((2, 0, 1)).compute(), a.transpose((2, 0, 1)))


def test_rechunk(no_skip_rechunk):
    a = np.arange(100).reshape(10, 10)
    x = da.from_array(a, chunks=(3, 4))
    for ch in [(5, 5), ((1, 9), (10,)), 1, -1, {0: 2}, {1: (3, 3, 4)}, "auto"]:
        y = x.rechunk(ch)
        same(y.compute(), a)
    assert x.rechunk((5, 5)).chunks == ((5, 5), (5, 5))
    assert x.rechunk({0: 2}).chunks[1] == x.chunks[1]
    assert x.rechunk(x.chunks) is x
    with pytest.raises(ValueError):
        x.rechunk(((5, 4), (10,)))


@SETTINGS
@given(array_and_chunks(), st.data())
def test_rechunk_hypothesis(sc, data):
    shape, chunks = sc
    a = sample(shape, "i4", 5)
    x = da.from_array(a, chunks=chunks)
    _, ch2 = data.draw(array_and_chunks(shape=shape))
    y = da.rechunk(x, ch2)
    with da.config.set({"array.skip_rechunk": False}):
        same(y.compute(), a)
    assert y.shape == a.shape


def test_supported_dtype_errors():
    with pytest.raises(TypeError) as ei:
        da.from_array(np.array(["x"]))
    assert "supported dtypes" in str(ei.value)
    with pytest.raises(TypeError):
        da.ones(3).astype("U1")


def test_lambdas_and_closures_get_their_own_names():
    # two different lambdas (or closures over different values) must never
    # share a layer name: one would silently replace the other
    xn = np.arange(4.0)
    x = da.from_array(xn, chunks=2)
    assert np.array_equal((da.elemwise(lambda v: v + 1, x) + da.elemwise(lambda v: v + 2, x))
                          .compute(), 2 * xn + 3)

    def adder(c):
        return lambda v: v + c

    assert np.array_equal((da.elemwise(adder(1), x) + da.elemwise(adder(2), x)).compute(),
                          2 * xn + 3)
    assert da.tokenize(adder(1)) == da.tokenize(adder(1))
    assert da.tokenize(adder(1)) != da.tokenize(adder(2))

    def red(f):
        return da.reduction(x, lambda b, axis, keepdims: f(b, axis=axis, keepdims=keepdims),
                            lambda b, axis, keepdims: f(b, axis=axis, keepdims=keepdims),
                            dtype=float)

    assert (red(np.sum) + red(np.max)).compute() == xn.sum() + xn.max()
