"""float16 elementwise chains: cdask's fused C kernels against NumPy, dask and
cdask's own float32 path, side by side (issue 16).

    python benchmarks/bench_float16.py            # 1e8 elements
    python benchmarks/bench_float16.py --quick    # 1e7 elements, fewer repeats

``((x + 1) * 2) ** 3`` on 100,000,000 float16 held in memory (200 MB), and the
memory-bound ``(x + 1) * 2``.  Targets: faster than NumPy, at least as fast as
cdask's float32 path on the same values, and bit-identical to NumPy.  NumPy's
float16 loops compute each element in float32 and round it to float16;
cdask runs a chain of float16 steps that reads one float16 array (and
constants) as one lookup per element in a table of the chain's results for
all 65536 float16 values, built once with the same loops (src/kernels/fused.c,
"float16 chains as tables").  The row "step by step" switches the tables off:
each step is then a float32 loop between F16C conversions (src/kernels/half.c).
The row "F16C off" is what a CPU without F16C runs: the tables, built with
NumPy's own float16 loops.

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
    from cdask import _core

    dda = H.dask_array(a.no_dask)
    n = 10_000_000 if a.quick else 100_000_000
    repeat = a.repeat or (2 if a.quick else 3)
    workers = int(cdask.config.get("num_workers"))
    x16 = (np.random.default_rng(0).standard_normal(n) * 2).astype(np.float16)
    x32 = x16.astype(np.float32)

    chains = {"((x + 1) * 2) ** 3": lambda v: ((v + 1) * 2) ** 3,
              "(x + 1) * 2": lambda v: (v + 1) * 2}
    X16, X32 = cdask.from_array(x16), cdask.from_array(x32)
    hw = bool(_core._half_hw())

    def no_f16c(fn):
        def run():
            _core._half_hw(False)
            try:
                return fn()
            finally:
                _core._half_hw(hw)
        return run

    def no_tables(fn):
        def run():
            on = _core._half_tables()[0]
            _core._half_tables(False)
            try:
                return fn()
            finally:
                _core._half_tables(on)
        return run

    times, same, rows = {}, {}, []
    with np.errstate(all="ignore"):
        for title, chain in chains.items():
            expect = chain(x16)
            contenders = {
                "cdask float16": lambda: chain(X16).compute(),
                "cdask float16, step by step": no_tables(lambda: chain(X16).compute()),
                "cdask float16, F16C off": no_f16c(lambda: chain(X16).compute()),
                "cdask float32 (same values)": lambda: chain(X32).compute(),
                "NumPy float16": lambda: chain(x16),
            }
            if dda is not None:
                D16 = dda.from_array(x16)
                contenders["dask float16"] = lambda: chain(D16).compute(scheduler="threads")
            H.log(f"{title} on {n:,} float16")
            t = {}
            for name, fn in contenders.items():
                r = H.best_of(fn, 1 if name.startswith(("NumPy", "dask")) else repeat,
                              log=H.log, label=name)
                t[name] = r.best
                if name.startswith("cdask float16"):
                    same[f"{title}: {name}"] = bool(np.array_equal(
                        r.result.view(np.uint16), expect.view(np.uint16)))
            times[title] = t
            for name, v in t.items():
                rows.append([f"`{title}`", name, H.fmt_s(v),
                             H.fmt_ratio(H.ratio(t["NumPy float16"], v)),
                             H.fmt_ratio(H.ratio(t["cdask float32 (same values)"], v))])
    out = ["## float16 chains (`benchmarks/bench_float16.py`)", ""]
    if a.quick:
        out += ["_Quick mode: 1e7 elements._", ""]
    out += [f"{n:,} float16 in memory; cdask with {workers} workers, default chunks, fusion "
            f"on; F16C {'in use' if hw else 'not available'}.  Best of {repeat} for cdask, "
            "of 1 for NumPy and dask.", "",
            H.markdown_table(["chain", "", "time", "speed-up over NumPy",
                              "speed-up over cdask float32"], rows), "",
            f"- cdask float16 bit-identical to NumPy (as uint16): {H.yes_no(all(same.values()))}"
            + ("" if all(same.values()) else
               " (not: " + ", ".join(k for k, v in same.items() if not v) + ")") + ".",
            f"- Machine: {H.machine_line()}"]
    ok = all(same.values())
    H.emit(out, a.json, {"seconds": times, "bit_identical": same, "n": n, "f16c": hw},
           dda is not None)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
