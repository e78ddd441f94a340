"""xarray on cdask against xarray on dask: a climatology and an anomaly std.

    python benchmarks/bench_xarray.py                 # 4 GB of float64 (the issue's size)
    python benchmarks/bench_xarray.py --size 1GB      # any size
    python benchmarks/bench_xarray.py --quick         # 0.5 GB

A daily (time, lat, lon) float64 dataset on a 180 x 360 grid, as many days
as the size holds, is written as zarr with 30 days per chunk (streamed by
cdask through ``to_zarr``; zarr's default codecs).  Then, in a child process
of its own for each contender, opened with ``xr.open_zarr`` (its chunks are
the zarr chunks; ``chunked_array_type="cdask"`` for cdask, xarray's default
dask manager and threaded scheduler for dask) and computed:

a. the climatology ``ds.t.groupby("time.month").mean()``;
b. the standard deviation of the anomalies against it,
   ``(ds.t.groupby("time.month") - clim).std("time")``.

Each figure is the wall time of the compute (the graph built inside the
timing), the CPU time of the child's threads meanwhile (user + system: on a
shared machine the steadier measure of the work done) and the peak resident
memory above the child's size after its imports (VmHWM reset there).  Target: cdask faster than dask with a lower
peak.  ``--memory-limit`` sets cdask's budget (default: its own, 60% of RAM).

stdout carries only the markdown report; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402

GRID = (180, 360)
DAYS_PER_CHUNK = 30

_MAKE = r"""
import sys, numpy as np, pandas as pd, xarray as xr, cdask
path, days = sys.argv[1], int(sys.argv[2])
lat, lon = %d, %d
t = pd.date_range("1980-01-01", periods=days, freq="D")
noise = cdask.random.default_rng(0).standard_normal((days, lat, lon), chunks=(%d, lat, lon))
season = cdask.from_array(np.cos(2 * np.pi * t.day_of_year.values / 365.25)[:, None, None],
                          chunks=(%d, 1, 1))
ds = xr.Dataset({"t": (("time", "lat", "lon"), 280 + 10 * season + noise)},
                coords={"time": t, "lat": np.linspace(-89.5, 89.5, lat),
                        "lon": np.linspace(0.5, 359.5, lon)})
ds.to_zarr(path, mode="w", consolidated=True)
""" % (GRID + (DAYS_PER_CHUNK, DAYS_PER_CHUNK))

_CHILD = r"""
import resource, sys, time, numpy as np, xarray as xr
who, task, path, limit = sys.argv[1:5]
if who == "cdask":
    import cdask
    if limit != "default":
        cdask.config.set(memory_limit=limit)
    open_kw = {"chunked_array_type": "cdask"}
else:
    import dask
    open_kw = {}
ds = xr.open_zarr(path, **open_kw)
assert ds.t.chunks[0][0] == %d, ds.t.chunks
base = rss_now()
reset_peak()
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0, t0 = cpu(), time.perf_counter()
clim = ds.t.groupby("time.month").mean()
if task == "climatology":
    r = clim.compute()
else:
    r = (ds.t.groupby("time.month") - clim).std("time").compute()
t = time.perf_counter() - t0
report(time=t, cpu=cpu() - c0, peak=peak_now(), base=base, kind=type(clim.data).__module__,
       checksum=float(np.nansum(r.values)))
""" % DAYS_PER_CHUNK


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="4GB", help="dataset size, e.g. 4GB (default)")
    ap.add_argument("--quick", action="store_true", help="0.5 GB dataset")
    ap.add_argument("--memory-limit", default="default", help="cdask's memory budget")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--only", default=None, help="cdask or dask: run one contender")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    from cdask.array.chunks import parse_bytes

    size = 5 * 10**8 if a.quick else parse_bytes(a.size)
    day = GRID[0] * GRID[1] * 8
    days = max(size // day, 2 * 365)
    workdir = tempfile.mkdtemp(prefix="cdask-xr-", dir=a.dir)
    path = os.path.join(workdir, "t.zarr")
    contenders = [a.only] if a.only else ["cdask", "dask"]
    results, res = {}, {"days": days, "bytes": days * day}
    try:
        H.log(f"writing {days} days x {GRID[0]} x {GRID[1]} float64 "
              f"({days * day / 1e9:.2f} GB) to {path}")
        t0 = time.perf_counter()
        r = H.run_child(_MAKE, prelude=False, args=[path, str(days)])
        if r.returncode != 0:
            H.log(r.stderr[-3000:])
            return 1
        res["write_s"] = time.perf_counter() - t0
        H.log(f"written in {res['write_s']:.1f} s")
        for task in ("climatology", "anomaly_std"):
            for who in contenders:
                H.log(f"{task}: {who}")
                c = H.run_child(_CHILD, args=[who, task, path, a.memory_limit])
                if not c.ok:
                    H.log(c.stderr[-3000:])
                results[(task, who)] = c.report if c.ok else None
        res["children"] = {f"{t}/{w}": v for (t, w), v in results.items()}
        rows = []
        for task in ("climatology", "anomaly_std"):
            got = {w: results.get((task, w)) for w in contenders}
            for who in contenders:
                rep = got[who]
                if rep is None:
                    rows.append([task, who, "failed", "", "", "", "", "", ""])
                    continue
                peak = rep["peak"] - rep["base"]
                other = got.get("dask") if who == "cdask" else None
                if other:
                    speed = H.fmt_ratio(H.ratio(other["time"], rep["time"]))
                    work = H.fmt_ratio(H.ratio(other["cpu"], rep["cpu"]))
                    mem = H.fmt_ratio(H.ratio(other["peak"] - other["base"], peak))
                    same = abs(rep["checksum"] - other["checksum"]) <= \
                        1e-9 * max(abs(other["checksum"]), 1.0)
                else:
                    speed = work = mem = same = ""
                rows.append([task, who, H.fmt_s(rep["time"]), H.fmt_s(rep["cpu"]),
                             H.fmt_mib(peak), speed, work, mem,
                             H.yes_no(same) if same != "" else ""])
        print(f"## xarray: climatology and anomaly std of {days * day / 1e9:.2f} GB of "
              f"float64 zarr ({days} days x {GRID[0]} x {GRID[1]}, {DAYS_PER_CHUNK} days per "
              f"chunk)\n")
        print(H.markdown_table(["task", "on", "time", "CPU", "peak RSS", "dask time / cdask",
                                "dask CPU / cdask", "dask peak / cdask", "same answer"], rows))
        print("\nTarget: cdask faster than dask (time ratio > 1) with a lower peak "
              "(peak ratio > 1).")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
