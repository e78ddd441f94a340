"""float16 elementwise chains: cdask's fused C kernels on NumPy's float16 loops, against
NumPy, dask and cdask's own float32 path, side by side (issue 16).

    python benchmarks/bench_float16.py            # 1e8 elements
    python benchmarks/bench_float16.py --quick    # 1e7 elements, fewer repeats

``((x + 1) * 2) ** 3`` on 100,000,000 float16 held in memory (200 MB).  Targets: faster
than NumPy, about as fast as cdask's float32 path on the same values (float16's loops
convert every element to float and back, so its work per element is the float32 loop's
plus two conversions), and bit-identical to NumPy.

stdout carries only the markdown report (run.py collects it); progress goes to stderr.
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _harness as H  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-dask", action="store_true", help="leave dask out")
    a = ap.parse_args(argv)

    import numpy as np
    import cdask

    dda = H.dask_array(a.no_dask)
    n = 10_000_000 if a.quick else 100_000_000
    repeat = a.repeat or (2 if a.quick else 3)
    workers = int(cdask.config.get("num_workers"))
    x16 = (np.random.default_rng(0).standard_normal(n) * 2).astype(np.float16)
    x32 = x16.astype(np.float32)

    def chain(v):
        return ((v + 1) * 2) ** 3

    X16, X32 = cdask.from_array(x16), cdask.from_array(x32)
    contenders = {
        "cdask float16": lambda: chain(X16).compute(),
        "cdask float32 (same values)": lambda: chain(X32).compute(),
        "NumPy float16": lambda: chain(x16),
    }
    if dda is not None:
        D16 = dda.from_array(x16)
        contenders["dask float16"] = lambda: chain(D16).compute(scheduler="threads")
    H.log(f"float16 chain on {n:,} elements")
    times, same = {}, None
    with np.errstate(all="ignore"):
        expect = chain(x16)
        for name, fn in contenders.items():
            t = H.best_of(fn, 1 if name.startswith(("NumPy", "dask")) else repeat,
                          log=H.log, label=name)
            times[name] = t.best
            if name == "cdask float16":
                same = bool(np.array_equal(t.result.view(np.uint16), expect.view(np.uint16)))
    base = times["NumPy float16"]
    rows = [[k, H.fmt_s(v), H.fmt_ratio(H.ratio(base, v))] for k, v in times.items()]
    out = ["## float16 chains (`benchmarks/bench_float16.py`)", ""]
    if a.quick:
        out += ["_Quick mode: 1e7 elements._", ""]
    out += [f"`((x + 1) * 2) ** 3` on {n:,} float16 in memory; cdask with {workers} workers, "
            f"default chunks, fusion on.  Best of {repeat} for cdask, of 1 for NumPy and dask.",
            "", H.markdown_table(["", "time", "speed-up over NumPy"], rows), "",
            f"- cdask float16 bit-identical to NumPy (as uint16): {H.yes_no(same)}.",
            f"- Machine: {H.machine_line()}"]
    H.emit(out, a.json, {"seconds": times, "bit_identical": same, "n": n}, dda is not None)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
