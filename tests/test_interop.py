"""I/O and interop: from_delayed, npy stacks (both ways with dask), to_hdf5,
TileDB, to_dask_dataframe, view, to_backend, backends, lib.stride_tricks,
array_expr_enabled, PerformanceWarning."""

import os
import pickle
import warnings

import dask
import dask.array as dda
import h5py
import numpy as np
import pandas as pd
import pytest
import tiledb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask
import cdask.backends
import cdask.lib.stride_tricks

DTYPES = ["bool", "int8", "uint16", "int32", "int64", "float32", "float64", "complex128"]
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.function_scoped_fixture])


@st.composite
def arrays(draw, min_ndim=1, max_ndim=3, dtypes=DTYPES):
    ndim = draw(st.integers(min_ndim, max_ndim))
    shape = tuple(draw(st.integers(0, 7)) for _ in range(ndim))
    dtype = draw(st.sampled_from(dtypes))
    chunks = tuple(draw(st.integers(1, max(s, 1))) for s in shape)
    seed = draw(st.integers(0, 2**32 - 1))
    xn = (np.random.default_rng(seed).standard_normal(shape) * 20).astype(dtype)
    return xn, chunks


# ---------------------------------------------------------------- from_delayed

def test_from_delayed():
    v = dask.delayed(np.arange)(6)
    x = cdask.from_delayed(v, (6,), dtype=np.int64)
    assert x.chunks == ((6,),) and x.dtype == np.int64
    assert (x.compute() == np.arange(6)).all()
    assert ((x + 1) * cdask.ones(6, chunks=2, dtype="i8")).sum().compute() == 21
    # a chain of delayed calls, and the same delayed used twice
    w = dask.delayed(np.multiply)(v, 2)
    y = cdask.from_delayed(w, shape=(6,), dtype=float, name="twice")
    assert y.name == "twice" and y.dtype == np.float64
    assert cdask.concatenate([x, y]).compute().tolist() == list(range(6)) + list(range(0, 12, 2))
    # dtype from meta, float64 by default (as dask)
    assert cdask.from_delayed(w, (6,), meta=np.empty(0, dtype="i4")).dtype == np.int32
    z = cdask.from_delayed(dask.delayed(np.ones)((2, 3)), (2, 3))
    assert z.dtype == np.float64 and z.compute().shape == (2, 3)
    s = cdask.from_delayed(dask.delayed(np.float64)(2.5), ())
    assert s.compute() == 2.5
    # the block is checked against the declared shape
    with pytest.raises(ValueError, match="declared"):
        cdask.from_delayed(v, (5,), dtype=int).compute()
    with pytest.raises(TypeError, match="delayed"):
        cdask.from_delayed(np.arange(3), (3,))
    with pytest.raises(ValueError, match="negative"):
        cdask.from_delayed(v, (-1,))


# ---------------------------------------------------------------- npy stacks

@settings(max_examples=25, **SETTINGS)
@given(arrays(), st.integers(-3, 2))
def test_npy_stack_round_trips_with_dask(tmp_path_factory, xc, axis):
    xn, chunks = xc
    axis = axis % xn.ndim
    d = tmp_path_factory.mktemp("stack")
    x = cdask.from_array(xn, chunks=chunks)
    cdask.to_npy_stack(d / "ours", x, axis=axis)
    theirs = dda.from_npy_stack(str(d / "ours"))
    assert theirs.chunks == tuple(c if i == axis else (sum(c),) for i, c in enumerate(x.chunks))
    assert theirs.compute().tobytes() == xn.tobytes()
    back = cdask.from_npy_stack(d / "ours")
    assert back.chunks == theirs.chunks and back.dtype == xn.dtype
    assert back.compute().tobytes() == xn.tobytes()
    dda.to_npy_stack(str(d / "dask"), dda.from_array(xn, chunks=chunks), axis=axis)
    y = cdask.from_npy_stack(str(d / "dask"), mmap_mode=None)
    assert y.chunks == theirs.chunks and y.compute().tobytes() == xn.tobytes()


def _fail(block):
    raise RuntimeError("boom")


def test_npy_stack_details(tmp_path):
    xn = np.arange(24.0).reshape(4, 6)
    x = cdask.from_array(xn, chunks=(3, 2))
    cdask.to_npy_stack(tmp_path / "s", (x * 2)[::-1], axis=-1)
    assert sorted(os.listdir(tmp_path / "s")) == ["0.npy", "1.npy", "2.npy", "info"]
    info = pickle.load(open(tmp_path / "s" / "info", "rb"))
    assert info == {"chunks": ((4,), (2, 2, 2)), "dtype": np.dtype("f8"), "axis": 1}
    assert (np.load(tmp_path / "s" / "1.npy") == (xn * 2)[::-1, 2:4]).all()
    y = cdask.from_npy_stack(tmp_path / "s")
    assert (y.compute() == (xn * 2)[::-1]).all()
    with pytest.raises(ValueError, match="mmap_mode"):
        cdask.from_npy_stack(tmp_path / "s", mmap_mode="w+")
    with pytest.raises(FileNotFoundError, match="info"):
        cdask.from_npy_stack(tmp_path)
    np.save(tmp_path / "s" / "1.npy", np.zeros((4, 3)))
    with pytest.raises(ValueError, match="info says"):
        cdask.from_npy_stack(tmp_path / "s")
    with pytest.raises(np.exceptions.AxisError):
        cdask.to_npy_stack(tmp_path / "t", x, axis=2)
    with pytest.raises(ValueError, match="unknown"):
        cdask.to_npy_stack(tmp_path / "t", x[x > 3])
    with pytest.raises(ValueError, match="dimension"):
        cdask.to_npy_stack(tmp_path / "t", x.sum())
    with pytest.raises(TypeError):
        cdask.to_npy_stack(tmp_path / "t", xn)
    # a stack written over another: while (and if) the write fails, no info file
    cdask.to_npy_stack(tmp_path / "s", x)
    with pytest.raises(RuntimeError, match="boom"):
        cdask.to_npy_stack(tmp_path / "s", x.map_blocks(_fail, dtype=x.dtype) + 1)
    assert not os.path.exists(tmp_path / "s" / "info")


# ---------------------------------------------------------------- HDF5

@settings(max_examples=20, **SETTINGS)
@given(arrays(min_ndim=0))
def test_to_hdf5_matches_dask(tmp_path_factory, xc):
    xn, chunks = xc
    d = tmp_path_factory.mktemp("h5")
    x = cdask.from_array(xn, chunks=chunks)
    cdask.to_hdf5(str(d / "ours.h5"), "/g/x", x)
    with h5py.File(d / "ours.h5", "r") as f:
        assert f["/g/x"].dtype == xn.dtype and f["/g/x"][()].tobytes() == xn.tobytes()
        if xn.ndim and xn.size:
            assert f["/g/x"].chunks == tuple(c[0] for c in x.chunks)


def test_to_hdf5_forms_and_errors(tmp_path):
    xn = np.arange(30.0).reshape(5, 6)
    x = cdask.from_array(xn, chunks=(2, 4))
    p = str(tmp_path / "f.h5")
    cdask.to_hdf5(p, {"/x": x, "/y": x.astype("i4") + 1}, chunks=None)
    x.T.to_hdf5(p, "/z", compression="gzip", chunks=(3, 3))
    dda.from_array(xn, chunks=(2, 4)).to_hdf5(str(tmp_path / "d.h5"), "/x")
    with h5py.File(p, "r") as f, h5py.File(tmp_path / "d.h5", "r") as g:
        assert (f["/x"][()] == xn).all() and f["/x"].chunks is None
        assert f["/y"].dtype == np.int32 and (f["/y"][()] == xn + 1).all()
        assert (f["/z"][()] == xn.T).all() and f["/z"].compression == "gzip"
        assert f["/z"].chunks == (3, 3)
        assert g["/x"][()].tobytes() == f["/x"][()].tobytes()
    # an existing dataset of the same shape and dtype is reused ("a" mode)
    cdask.to_hdf5(p, "/x", x + 100)
    with h5py.File(p, "r") as f:
        assert (f["/x"][()] == xn + 100).all()
    with pytest.raises(ValueError, match="datapath"):
        cdask.to_hdf5(p, x)
    with pytest.raises(ValueError, match="datapath"):
        cdask.to_hdf5(p, "/x", xn)
    with pytest.raises(TypeError, match="not a cdask Array"):
        cdask.to_hdf5(p, {"/w": xn})
    with pytest.raises(ValueError, match="unknown"):
        cdask.to_hdf5(p, "/w", x[x > 3])
    with pytest.raises(TypeError):      # h5py: the shape of /x differs
        cdask.to_hdf5(p, "/x", x.T)


# ---------------------------------------------------------------- TileDB

def test_tiledb_round_trips_with_dask(tmp_path):
    xn = np.random.default_rng(0).standard_normal((9, 8))
    x = cdask.from_array(xn, chunks=(4, 3))
    cdask.to_tiledb(x, str(tmp_path / "ours"))
    with tiledb.open(str(tmp_path / "ours")) as t:
        assert t[:].tobytes() == xn.tobytes()
        assert [t.schema.domain.dim(i).tile for i in range(2)] == [4, 3]
    y = cdask.from_tiledb(str(tmp_path / "ours"))
    assert y.chunks == ((4, 4, 1), (3, 3, 2)) and y.compute().tobytes() == xn.tobytes()
    assert dda.from_tiledb(str(tmp_path / "ours")).compute().tobytes() == xn.tobytes()
    dda.to_tiledb(dda.from_array(xn, chunks=(5, 8)), str(tmp_path / "dask"))
    z = cdask.from_tiledb(str(tmp_path / "dask"), chunks=(3, 3))
    assert z.chunks == ((3, 3, 3), (3, 3, 2)) and z.compute().tobytes() == xn.tobytes()
    # into an open writable array; return_stored
    with tiledb.open(str(tmp_path / "dask"), mode="w") as t:
        r = (x * 2).rechunk((5, 8)).to_tiledb(t, return_stored=True)
        assert isinstance(r, tuple)
    with tiledb.open(str(tmp_path / "dask")) as t:
        assert (t[:] == xn * 2).all()
        assert cdask.from_tiledb(t).compute().tobytes() == (xn * 2).tobytes()


def test_tiledb_errors(tmp_path):
    x = cdask.from_array(np.arange(10.0), chunks=((3, 4, 3),))
    with pytest.raises(ValueError, match="irregular"):
        cdask.to_tiledb(x, str(tmp_path / "a"))
    with pytest.raises(ValueError, match="uri"):
        cdask.to_tiledb(x.rechunk(5), 3)
    with pytest.raises(TypeError):
        cdask.to_tiledb(np.arange(3), str(tmp_path / "a"))
    cdask.to_tiledb(x.rechunk(5), str(tmp_path / "a"))
    with tiledb.open(str(tmp_path / "a"), mode="w") as t:
        with pytest.raises(ValueError, match="reading"):
            cdask.from_tiledb(t)
        with pytest.raises(ValueError, match="does not fit"):
            cdask.to_tiledb(x.astype("i4").rechunk(5), t)
    with tiledb.open(str(tmp_path / "a")) as t:
        with pytest.raises(ValueError, match="not open for writing"):
            cdask.to_tiledb(x.rechunk(5), t)
    dom = tiledb.Domain(tiledb.Dim(domain=(0, 3), tile=2, dtype=np.uint64))
    schema = tiledb.ArraySchema(domain=dom, attrs=[tiledb.Attr("a", dtype="f8"),
                                                   tiledb.Attr("b", dtype="i4")])
    tiledb.DenseArray.create(str(tmp_path / "two"), schema)
    with tiledb.open(str(tmp_path / "two"), mode="w") as t:
        t[:] = {"a": np.arange(4.0), "b": np.arange(4, dtype="i4") * 3}
    with pytest.raises(TypeError, match="attribute"):
        cdask.from_tiledb(str(tmp_path / "two"))
    b = cdask.from_tiledb(str(tmp_path / "two"), attribute="b")
    assert b.dtype == np.int32 and (b.compute() == [0, 3, 6, 9]).all()


# ---------------------------------------------------------------- dask DataFrames

def test_to_dask_dataframe_matches_dask():
    import dask.dataframe as dd

    xn = np.random.default_rng(1).standard_normal((23, 3))
    x = cdask.from_array(xn, chunks=(5, 3))
    ours = (x * 2).to_dask_dataframe(columns=["a", "b", "c"])
    theirs = dd.from_dask_array(dda.from_array(xn, chunks=(5, 3)) * 2, columns=["a", "b", "c"])
    assert isinstance(ours, dd.DataFrame)
    assert ours.npartitions == 5 and ours.divisions == theirs.divisions
    pd.testing.assert_frame_equal(ours.compute(), theirs.compute())
    assert ours.a.sum().compute() == pytest.approx((xn[:, 0] * 2).sum())
    s = cdask.arange(10, chunks=4).to_dask_dataframe()
    assert isinstance(s, dd.Series) and s.compute().tolist() == list(range(10))
    named = cdask.arange(10, chunks=4).to_dask_dataframe(columns="v")
    assert named.compute().name == "v"
    # unknown chunk sizes: divisions unknown, values right
    m = x[x[:, 0] > 0]
    df = m.to_dask_dataframe()
    assert not df.known_divisions
    assert (df.compute().values == xn[xn[:, 0] > 0]).all()
    # an index from another dask frame
    idx = dd.from_pandas(pd.Series(0, index=np.arange(100, 123)), npartitions=1).index
    with_index = cdask.from_array(xn, chunks=(23, 3)).to_dask_dataframe(index=idx)
    assert with_index.compute().index.tolist() == list(range(100, 123))
    pd.testing.assert_frame_equal(
        with_index.compute(), dd.from_dask_array(dda.from_array(xn, chunks=(23, 3)),
                                                 index=idx).compute())
    with pytest.raises(ValueError, match="2-dimensional"):
        cdask.ones((2, 2, 2)).to_dask_dataframe()


# ---------------------------------------------------------------- view

VIEW_DTYPES = ["int8", "uint8", "int16", "int32", "uint32", "int64", "float32", "float64",
               "complex64", "complex128"]


@settings(max_examples=60, **SETTINGS)
@given(arrays(dtypes=VIEW_DTYPES), st.sampled_from(VIEW_DTYPES), st.sampled_from("CF"))
def test_view_matches_numpy(xc, new, order):
    xn, chunks = xc
    x = cdask.from_array(xn, chunks=chunks)
    old, new = xn.dtype, np.dtype(new)
    axis = xn.ndim - 1 if order == "C" else 0
    fits = all(c * old.itemsize % new.itemsize == 0 for c in x.chunks[axis])
    if old.itemsize != new.itemsize and not fits:
        with pytest.raises(ValueError, match="whole"):
            x.view(new, order=order)
        return
    if order == "C":
        expect = np.ascontiguousarray(xn).view(new)
    else:
        expect = np.asfortranarray(xn).T.view(new).T
    v = x.view(new, order=order)
    assert v.dtype == new and v.shape == expect.shape
    assert v.compute().tobytes() == np.ascontiguousarray(expect).tobytes()


def test_view_details():
    xn = np.arange(12, dtype="i4").reshape(3, 4)
    x = cdask.from_array(xn, chunks=2)
    assert x.view() is x and x.view("i4") is x
    assert (x.view("u4").compute() == xn.view("u4")).all()
    assert x.view("i8").chunks == ((2, 1), (1, 1))
    assert x.view("i2").chunks == ((2, 1), (4, 4))
    with pytest.raises(ValueError, match="whole"):
        x.view("i8", order="F")                  # blocks of 2 and 1 rows
    with pytest.raises(ValueError, match="Order"):
        x.view("i2", order="K")
    with pytest.raises(ValueError, match="0d"):
        cdask.from_array(np.int32(3)).view("i2")
    with pytest.raises(TypeError):
        x.view("U4")
    with pytest.raises(ValueError, match="unknown"):
        x[x > 3].view("i2")


# ---------------------------------------------------------------- backends, lib, small names

def test_to_backend_and_backends():
    x = cdask.ones((3, 3), chunks=2)
    assert x.to_backend() is x and x.to_backend("numpy") is x
    with pytest.raises(ValueError, match="no array backend 'cupy'"):
        x.to_backend("cupy")
    with pytest.raises(TypeError, match="no options"):
        x.to_backend("numpy", device="gpu")
    entry = cdask.backends.get_backend("numpy")
    assert isinstance(entry, cdask.backends.ArrayBackendEntrypoint)
    assert entry.RandomState is np.random.RandomState
    assert entry.default_bit_generator is np.random.PCG64
    assert cdask.backends is cdask.array.backends
    with cdask.config.set({"array.backend": "sparse"}):
        with pytest.raises(ValueError, match="sparse"):
            x.to_backend()


@settings(max_examples=60, **SETTINGS)
@given(arrays(dtypes=["int32", "float64"]), st.data())
def test_sliding_window_view_matches_numpy(xc, data):
    xn, chunks = xc
    x = cdask.from_array(xn, chunks=chunks)
    naxes = data.draw(st.integers(1, 3))
    axis = tuple(data.draw(st.integers(-xn.ndim, xn.ndim - 1)) for _ in range(naxes))
    window = tuple(data.draw(st.integers(0, 8)) for _ in axis)
    if data.draw(st.booleans()) and len(set(a % xn.ndim for a in axis)) == xn.ndim == naxes:
        axis = None
    swv = cdask.lib.stride_tricks.sliding_window_view
    try:
        expect = np.lib.stride_tricks.sliding_window_view(xn, window, axis=axis)
    except ValueError as e:
        with pytest.raises(ValueError) as got:
            swv(x, window, axis=axis)
        assert str(got.value) == str(e)
        return
    r = swv(x, window, axis=axis)
    assert r.shape == expect.shape and r.dtype == expect.dtype
    assert r.compute().tobytes() == np.ascontiguousarray(expect).tobytes()


def test_sliding_window_view_names():
    from cdask.lib.stride_tricks import sliding_window_view

    x = cdask.arange(20, chunks=3)
    r = sliding_window_view(x, 5)
    assert all(c >= 1 for c in r.chunks[0]) and r.chunks[1] == (5,)
    assert (r.compute() == np.lib.stride_tricks.sliding_window_view(np.arange(20), 5)).all()
    assert (sliding_window_view(np.arange(6), 2).compute() ==
            np.lib.stride_tricks.sliding_window_view(np.arange(6), 2)).all()
    assert cdask.lib.stride_tricks is cdask.array.lib.stride_tricks


def test_array_expr_enabled_and_performance_warning():
    assert cdask.array_expr_enabled() is False
    assert issubclass(cdask.PerformanceWarning, Warning)
    from dask.array.core import PerformanceWarning as DaskPerformanceWarning

    assert cdask.PerformanceWarning is not DaskPerformanceWarning
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        warnings.warn("slow", cdask.PerformanceWarning)
    assert w[0].category is cdask.PerformanceWarning
