"""cdask as xarray's chunk manager (issue 19), on files the tests write.

A small daily (time, lat, lon) dataset with NaNs is written as netCDF4
(h5netcdf) and zarr; it is opened three ways - ``open_dataset(...,
chunked_array_type="cdask")``, ``open_zarr(..., chunked_array_type="cdask")``
and ``ds.chunk(..., chunked_array_type="cdask")`` - and every workflow is
built with computing refused (the scheduler's entry point raises), then
computed and compared with xarray on the NumPy data.  Then: writes
(to_zarr, to_netcdf) read back, compute/load/persist, the chunk errors
naming the dimension, the cdask functions xarray reaches (cumreduction,
isnan(dtype=), vindex by a lazy index) against dask's, and the memory budget
holding in a child process reducing a netCDF file four times its size.
The notebook examples/xarray.ipynb runs in a Jupyter kernel (nbclient).
"""

import contextlib
import importlib
import json
import os
import subprocess
import sys

import dask.array
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xarray.namedarray.parallelcompat import get_chunked_array_type, list_chunkmanagers

import cdask
from cdask.array.chunkmanager import CdaskManager
from cdask.array.reductions import cumreduction

DAYS = 730
# the module (cdask.array.compute is also the name of the function)
cdask_compute = importlib.import_module("cdask.array.compute")


def _dataset():
    rng = np.random.default_rng(19)
    time = pd.date_range("2001-01-01", periods=DAYS, freq="D")
    season = np.cos(2 * np.pi * time.day_of_year.values / 365.25)[:, None, None]
    v = 10 * season + rng.standard_normal((DAYS, 6, 8))
    v[rng.random(v.shape) < 0.02] = np.nan
    return xr.Dataset(
        {"v": (("time", "lat", "lon"), v, {"units": "K"}),
         "w": (("lat", "lon"), rng.standard_normal((6, 8)))},
        coords={"time": time, "lat": np.linspace(-50, 50, 6), "lon": np.arange(8) * 45.0})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("xr")
    ds = _dataset()
    nc, zr = str(d / "t.nc"), str(d / "t.zarr")
    ds.to_netcdf(nc, engine="h5netcdf")
    ds.to_zarr(zr, encoding={"v": {"chunks": (30, 6, 8)}}, consolidated=False)
    return ds, nc, zr


OPENERS = {
    "open_dataset": lambda ds, nc, zr: xr.open_dataset(
        nc, engine="h5netcdf", chunks={"time": 30}, chunked_array_type="cdask"),
    "open_zarr": lambda ds, nc, zr: xr.open_zarr(zr, chunked_array_type="cdask",
                                                 consolidated=False),
    "chunk": lambda ds, nc, zr: ds.chunk({"time": 30}, chunked_array_type="cdask"),
}


@pytest.fixture(params=sorted(OPENERS))
def opened(request, files):
    ds, nc, zr = files
    return OPENERS[request.param](ds, nc, zr), ds


@contextlib.contextmanager
def refusing_compute():
    """Computing inside the block fails the test: every cdask compute,
    persist and store reaches the scheduler through get_with_progress."""
    def refuse(*args, **kwargs):
        raise AssertionError("computed while the graph was being built")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cdask_compute, "get_with_progress", refuse)
        yield


def _lazy(obj):
    objs = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    for o in objs:
        if o.ndim:
            assert type(o.data) is cdask.Array, type(o.data)


# ---------------------------------------------------------------------------
# the manager
# ---------------------------------------------------------------------------
def test_registered_and_recognises_only_cdask_arrays():
    managers = list_chunkmanagers()
    assert isinstance(managers["cdask"], CdaskManager)
    m = managers["cdask"]
    x = cdask.ones((4, 4), chunks=2)
    d = dask.array.ones((4, 4), chunks=2)
    assert m.is_chunked_array(x)
    assert not m.is_chunked_array(d) and not m.is_chunked_array(np.ones(3))
    assert m.array_cls is cdask.Array
    # one manager per array: xarray's dask manager leaves cdask Arrays alone
    assert get_chunked_array_type(x) is m
    assert get_chunked_array_type(d) is managers["dask"]
    assert not managers["dask"].is_chunked_array(x) and managers["dask"].is_chunked_array(d)
    assert m.chunks(x) == ((2, 2), (2, 2))
    assert m.normalize_chunks((2, -1), shape=(5, 3)) == ((2, 2, 1), (3,))
    assert m.get_auto_chunk_size() == cdask.array.chunks.default_chunk_bytes()
    assert m.array_api.full is not None and m.array_api.sliding_window_view is not None


def test_dask_still_works_beside_cdask(files):
    ds, nc, _ = files
    d = xr.open_dataset(nc, engine="h5netcdf", chunks={"time": 100})
    assert isinstance(d.v.data, dask.array.Array)
    xr.testing.assert_allclose(d.v.mean("time").compute(), ds.v.mean("time"))


def test_opening_is_lazy(opened):
    c, ds = opened
    _lazy(c)
    assert c.v.chunks[0][:3] == (30, 30, 30) and sum(c.v.chunks[0]) == DAYS
    assert c.v.shape == ds.v.shape and c.v.dtype == ds.v.dtype
    assert c.v.attrs["units"] == "K"


def _clim(d):
    return d.groupby("time.month").mean()


WORKFLOWS = {
    "arithmetic": lambda d: (d.v * 2 - d.w) / 3 + 1,
    "reductions": lambda d: xr.Dataset({"m": d.v.mean("time"), "s": d.v.std(("lat", "lon")),
                                        "x": d.v.max("lon"), "n": d.v.sum(("time", "lat"))}),
    "climatology": lambda d: _clim(d).v,
    "anomaly": lambda d: (d.groupby("time.month") - _clim(d)).v,
    "anomaly_std": lambda d: (d.groupby("time.month") - _clim(d)).v.std("time"),
    "rolling": lambda d: d.v.rolling(time=3).mean(),
    "apply_ufunc": lambda d: xr.apply_ufunc(lambda a: np.sqrt(np.abs(a)) + 1, d.v,
                                            dask="parallelized", output_dtypes=[float]),
    "apply_ufunc_core": lambda d: xr.apply_ufunc(
        lambda a: np.nanmedian(a, axis=-1), d.v.chunk({"lon": -1}), input_core_dims=[["lon"]],
        dask="parallelized", output_dtypes=[float]),
}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_workflow_lazy_and_matches_numpy(opened, name):
    c, ds = opened
    f = WORKFLOWS[name]
    with refusing_compute():
        r = f(c)
        _lazy(r)
    xr.testing.assert_allclose(r.compute(), f(ds))


def test_climatology_labels(opened):
    c, ds = opened
    clim = _clim(c)
    assert list(clim.month.values) == list(range(1, 13))
    assert type(clim.v.data) is cdask.Array


def test_more_of_xarray(files):
    # paths through the manager's scan, reduction, shuffle and vindex
    ds, nc, _ = files
    c = xr.open_dataset(nc, engine="h5netcdf", chunks={"time": 30}, chunked_array_type="cdask")
    cases = {
        "ffill": lambda d: d.v.ffill("time"),
        "ffill_limit": lambda d: d.v.bfill("time", limit=1),
        "first": lambda d: d.v.resample(time="MS").first(),
        "idxmax": lambda d: d.v.fillna(0).idxmax("time"),
        "quantile": lambda d: d.v.quantile(0.25, dim="lat"),
        "weighted": lambda d: d.v.weighted(np.cos(np.deg2rad(d.lat))).mean(("lat", "lon")),
        "cumsum": lambda d: d.v.cumsum("time"),
        "full_like": lambda d: xr.full_like(d.v, 3.5),
        "season_map": lambda d: d.v.groupby("time.season").map(lambda g: g - g.mean("time")),
    }
    for name, f in cases.items():
        with refusing_compute():
            r = f(c)
            _lazy(r)
        xr.testing.assert_allclose(r.compute(), f(ds)), name


def test_interp_with_cdask_the_default_manager(files):
    # interp chunks its coordinates with xarray's default manager
    ds, nc, _ = files
    c = xr.open_dataset(nc, engine="h5netcdf", chunks={"time": 30}, chunked_array_type="cdask")
    with xr.set_options(chunk_manager="cdask"):
        r = c.v.interp(lat=[-45.0, 12.5])
        _lazy(r)
        xr.testing.assert_allclose(r.compute(), ds.v.interp(lat=[-45.0, 12.5]))


# ---------------------------------------------------------------------------
# writing, computing
# ---------------------------------------------------------------------------
def test_to_zarr_round_trip(opened, tmp_path):
    c, ds = opened
    out = str(tmp_path / "out.zarr")
    (c * 2 + 1).to_zarr(out, consolidated=False)
    back = xr.open_zarr(out, chunked_array_type="cdask", consolidated=False)
    _lazy(back)
    assert back.v.chunks[0][0] == 30
    xr.testing.assert_allclose(back.compute(), ds * 2 + 1)


def test_to_netcdf_round_trip(opened, tmp_path):
    c, ds = opened
    out = str(tmp_path / "out.nc")
    (c - c.mean("time")).to_netcdf(out, engine="h5netcdf")
    back = xr.open_dataset(out, engine="h5netcdf", chunks={"time": 100},
                           chunked_array_type="cdask")
    _lazy(back)
    xr.testing.assert_allclose(back.compute(), ds - ds.mean("time"))
    back.close()


def test_to_zarr_compute_false_is_refused_by_name(files, tmp_path):
    ds, _, zr = files
    c = xr.open_zarr(zr, chunked_array_type="cdask", consolidated=False)
    with pytest.raises(NotImplementedError, match="compute=False"):
        c.to_zarr(str(tmp_path / "o.zarr"), compute=False, consolidated=False)


def test_compute_load_persist(files):
    ds, nc, _ = files
    c = xr.open_dataset(nc, engine="h5netcdf", chunks={"time": 30}, chunked_array_type="cdask")
    r = c.compute()
    assert type(r.v.data) is np.ndarray and type(c.v.data) is cdask.Array
    xr.testing.assert_identical(r, ds)
    p = c.persist()
    assert type(p.v.data) is cdask.Array
    xr.testing.assert_identical(p.compute(), ds)
    c.load()
    assert type(c.v.data) is np.ndarray
    xr.testing.assert_identical(c, ds)
    assert float(xr.DataArray(cdask.ones(3, chunks=2)).sum()) == 3.0


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("chunks", [{"time": 0}, {"time": -5}, {"time": 2.5}, {"time": (10, 10)},
                                    {"time": "lots"}, {"time": True}])
def test_chunks_cdask_cannot_honour_name_the_dimension(files, chunks):
    ds, nc, _ = files
    with pytest.raises(ValueError, match="dimension 'time'"):
        ds.chunk(chunks, chunked_array_type="cdask")
    if chunks["time"] != 0:     # open_dataset reads time=0 as "no chunks"
        with pytest.raises(ValueError, match="dimension 'time'"):
            xr.open_dataset(nc, engine="h5netcdf", chunks=chunks, chunked_array_type="cdask")
    c = ds.chunk({"time": 30}, chunked_array_type="cdask")
    with pytest.raises(ValueError, match="dimension 'time'"):
        c.chunk(chunks)


def test_a_name_cdask_lacks_is_not_implemented_by_name():
    # xarray's dispatch to the chunk manager's namespace
    from xarray.core import duck_array_ops

    f = duck_array_ops._dask_or_eager_func("no_such_function")
    with pytest.raises(NotImplementedError, match="no_such_function"):
        f(cdask.ones(3, chunks=2))


# ---------------------------------------------------------------------------
# cdask functions xarray needs, against dask's
# ---------------------------------------------------------------------------
def _fill(a, b):
    return np.where(np.isnan(b), a, b)


def _nanlast(a, axis, keepdims=False):
    from xarray.core.nputils import nanlast

    return nanlast(a, axis, keepdims=keepdims)


def _push(a, axis, dtype=None):
    from xarray.core.duck_array_ops import _push

    return _push(a, axis=axis)


@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_cumreduction_matches_dask(axis):
    from dask.array.reductions import cumreduction as dask_cumreduction

    x = np.random.default_rng(1).standard_normal((9, 7))
    x[x > 0.8] = np.nan
    c, d = cdask.from_array(x, chunks=(4, 3)), dask.array.from_array(x, chunks=(4, 3))
    for args in [(np.cumsum, np.add, 0), (np.nancumprod, np.multiply, 1)]:
        got = cumreduction(*args, c, axis=axis)
        assert type(got) is cdask.Array
        np.testing.assert_allclose(got.compute(), dask_cumreduction(*args, d, axis=axis).compute())
    if axis is not None:
        kw = dict(axis=axis, dtype=x.dtype, method="blelloch", preop=_nanlast)
        got = cumreduction(_push, _fill, np.nan, c, **kw).compute()
        np.testing.assert_array_equal(got, dask_cumreduction(_push, _fill, np.nan, d, **kw)
                                      .compute())
    with pytest.raises(ValueError, match="method"):
        cumreduction(np.cumsum, np.add, 0, c, method="parallel")
    with pytest.raises(TypeError, match="preop"):
        cumreduction(np.cumsum, np.add, 0, c, method="blelloch")


def test_isnan_dtype_as_dask():
    x = np.array([1.0, np.nan, np.inf, -2.0])
    c, d = cdask.from_array(x, chunks=2), dask.array.from_array(x, chunks=2)
    for f in ("isnan", "isfinite", "isinf"):
        got = getattr(cdask, f)(c, dtype=int)
        assert got.dtype == np.dtype(int)
        np.testing.assert_array_equal(got.compute(), getattr(dask.array, f)(d, dtype=int)
                                      .compute())
        assert getattr(cdask, f)(c).dtype == bool


def test_vindex_by_a_lazy_integer_array():
    x = np.arange(60).reshape(3, 4, 5)
    c = cdask.from_array(x, chunks=2)
    i = np.array([[1, 2], [2, 0]])
    ci = cdask.from_array(i, chunks=1)
    d = dask.array.from_array(x, chunks=2)
    S = slice(None)
    for idx in [(ci,), (S, ci), (1, ci), (S, ci, 2), (S, slice(1, 3), ci), (2, S, ci),
                (slice(0, 2), ci, slice(None, None, 2))]:
        got = c.vindex[idx]
        assert type(got) is cdask.Array
        want = d.vindex[tuple(i if a is ci else a for a in idx)].compute()
        np.testing.assert_array_equal(got.compute(), want)
    with pytest.raises(NotImplementedError, match="one integer cdask Array"):
        c.vindex[ci, ci]
    with pytest.raises(IndexError, match="out of bounds"):
        c.vindex[cdask.from_array(np.array([7]), chunks=1)].compute()


# ---------------------------------------------------------------------------
# the memory budget inside xarray
# ---------------------------------------------------------------------------
_WRITE = """
import sys, h5netcdf, numpy as np
path, nt, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with h5netcdf.File(path, "w") as f:
    f.dimensions = {"time": nt, "lat": n, "lon": n}
    f.create_variable("time", ("time",), "f8")[:] = np.arange(nt)
    v = f.create_variable("v", ("time", "lat", "lon"), "f8")
    rng = np.random.default_rng(0)
    for t in range(0, nt, 50):
        v[t:t + 50] = rng.standard_normal((min(50, nt - t), n, n)) + 1.0
"""

_REDUCE = """
import json, sys, numpy as np, xarray as xr, cdask
cdask.config.set(memory_limit=int(sys.argv[2]))
ds = xr.open_dataset(sys.argv[1], engine="h5netcdf", chunks={"time": 30},
                     chunked_array_type="cdask")
r = ds.v.std("time")
out = r.compute()
print(json.dumps({"type": type(r.data).__name__, "mean": float(out.mean())}))
"""

_LAUNCHER = """
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)
out = p.stdout.read()
_, status, ru = os.wait4(p.pid, 0)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "maxrss": ru.ru_maxrss, "out": out}))
"""


def test_reduction_of_a_file_four_times_the_budget(tmp_path):
    budget = 100 * 2 ** 20
    nt, n = 1800, 180                      # 466 MB of float64
    path = str(tmp_path / "big.nc")
    subprocess.run([sys.executable, "-c", _WRITE, path, str(nt), str(n)], check=True,
                   timeout=300)
    assert os.path.getsize(path) > 4 * budget
    # measured from a launcher: Linux's ru_maxrss of a child counts the
    # resident size of the process it was forked from (pytest's, here)
    r = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-c", _REDUCE, path,
                        str(budget)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["rc"] == 0, res
    out = json.loads(res["out"])
    assert out["type"] == "Array"
    assert abs(out["mean"] - 1.0) < 0.01
    peak = res["maxrss"] * 1024
    assert peak < budget + 300 * 2 ** 20, "peak RSS %d MB" % (peak // 2 ** 20)


def test_pieces_of_stored_chunks_are_cut_from_one_read(no_skip_rechunk):
    # a source with storage chunks (zarr, chunked HDF5, xarray's backend
    # arrays as the manager wraps them) is read a chunk at a time: a rechunk
    # into smaller blocks slices each read block, it does not read a piece of
    # a chunk per block (which decodes the chunk again for every piece)
    a = np.arange(60.0 * 4).reshape(60, 4)
    seen = []

    class Stored:
        shape, dtype, ndim = a.shape, a.dtype, 2

        def __init__(self, chunks):
            self.chunks = chunks

        def __getitem__(self, index):
            seen.append(index)
            return a[index]

    for chunks, reads in [((30, 4), 2), (None, 60)]:     # None: contiguous storage
        seen.clear()
        y = cdask.from_array(Stored(chunks), chunks=(30, 4)).rechunk((1, 4))
        np.testing.assert_array_equal(y.compute(), a)
        assert len(seen) == reads, (chunks, len(seen))
    # a block cut into pieces is read for the rechunk alone: another reader
    # of the block (a climatology before the anomaly) need not hold it, the
    # file is read again instead; with no other reader, once
    seen.clear()
    x = cdask.from_array(Stored((30, 4)), chunks=(30, 4))
    y = x.rechunk((1, 4))
    np.testing.assert_allclose((x.mean(axis=0) + y.std(axis=0)).compute(),
                               a.mean(axis=0) + a.std(axis=0))
    assert len(seen) == 4
    seen.clear()
    np.testing.assert_array_equal((y + 1).compute(), a + 1)
    assert len(seen) == 2
    # along chunk boundaries the reads are still composed: only what is asked
    seen.clear()
    x = cdask.from_array(Stored((10, 4)), chunks=(30, 4))
    np.testing.assert_array_equal(x[10:20].compute(), a[10:20])
    assert [(s[0].start, s[0].stop) for s in seen] == [(10, 20)]


# ---------------------------------------------------------------------------
# the example notebook
# ---------------------------------------------------------------------------
NB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                  "xarray.ipynb")


def _text(nb):
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))


def test_the_notebook_runs_in_a_kernel(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    saved = nbformat.read(NB, as_version=4)
    nbformat.validate(saved)
    assert _text(saved).count("same as NumPy: True") == 2      # committed with its outputs
    # a kernelspec of its own for this interpreter (as test_talk_notebook.py)
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    for c in saved.cells:
        if c.cell_type == "code":
            c.outputs = []
    NotebookClient(saved, kernel_name="python3", timeout=50,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = _text(saved)
    assert out.count("same as NumPy: True") == 2, out
    assert out.count("cdask.array.core.Array") >= 4, out
    assert "temporary folder removed: True" in out
