"""Run every benchmarks/bench_*.py and write benchmarks/RESULTS.md.

    python benchmarks/run.py                 # full run, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick         # passes --quick to every benchmark
    python benchmarks/run.py --only scheduler --output /tmp/R.md
    python benchmarks/run.py -- --cdask-get dask.get   # anything after -- goes to every benchmark
    python benchmarks/run.py --only tiny --update      # rerun some, keep the other sections

Each benchmark prints its markdown report on stdout (progress on stderr, shown
live); run.py collects the reports, in file-name order, under a header giving
the date, the machine (nproc, RAM, CPU model) and the exact command used.  A new
benchmarks/bench_<name>.py joins automatically.  The exit status is non-zero if
any benchmark failed (its error is put in RESULTS.md instead of its table).
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _harness as H  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    passthrough = []
    if "--" in argv:
        i = argv.index("--")
        argv, passthrough = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    ap.add_argument("--only", default="",
                    help="comma list of benchmark names (bench_<name>.py) to run")
    ap.add_argument("--output", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--update", action="store_true",
                    help="replace only the sections of the benchmarks run in the existing "
                         "output (the header then says which were run again, when and how)")
    ap.add_argument("--json-dir", default=None,
                    help="also pass --json DIR/<name>.json to every benchmark")
    a = ap.parse_args(argv)

    scripts = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    if a.only:
        wanted = {w.strip() for w in a.only.split(",") if w.strip()}
        scripts = [s for s in scripts
                   if os.path.basename(s)[len("bench_"):-len(".py")] in wanted]
    if not scripts:
        print("no benchmarks to run", file=sys.stderr)
        return 2

    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    info = H.machine_info()
    sections = []
    failed = []
    t_all = time.perf_counter()
    for path in scripts:
        name = os.path.basename(path)[:-3]
        cmd = [sys.executable, path]
        if a.quick:
            cmd.append("--quick")
        if a.json_dir:
            os.makedirs(a.json_dir, exist_ok=True)
            cmd += ["--json", os.path.join(a.json_dir, name + ".json")]
        cmd += passthrough
        H.log(f"=== {name}: {' '.join(shlex.quote(c) for c in cmd)}")
        t0 = time.perf_counter()
        # stderr is inherited (live progress); stdout is the markdown report
        p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(HERE))
        dt = time.perf_counter() - t0
        H.log(f"=== {name}: exit {p.returncode} after {dt:.1f} s")
        body = p.stdout.strip()
        if p.returncode != 0:
            failed.append(name)
            body = (body + "\n\n" if body else "") + (
                f"**`{name}` FAILED** (exit status {p.returncode}); see its stderr.")
        sections.append((name, f"{body}\n\n_`{name}.py` took {dt:.0f} s._"))

    cmd_used = "python benchmarks/run.py" + "".join(" " + shlex.quote(x) for x in argv)
    if passthrough:
        cmd_used += " --" + "".join(" " + shlex.quote(x) for x in passthrough)
    ram = info.get("ram_bytes")
    header = [
        "# cdask benchmark results",
        "",
        "Written by `benchmarks/run.py`; do not edit by hand — rerun it.",
        "",
        f"- Date: {started}",
        f"- Machine: {info.get('nproc_affinity', info['nproc'])} CPUs (nproc), "
        f"{ram / 2 ** 30:.1f} GiB RAM, CPU: {info['cpu_model']}",
        f"- Python {info['python']} on {info['platform']}",
        f"- Versions: {versions()}",
        f"- Command: `{cmd_used}` (from the repository root)",
        f"- Benchmarks: {', '.join(os.path.basename(s) for s in scripts)}; "
        f"total {time.perf_counter() - t_all:.0f} s",
        "",
    ]
    if failed:
        header += [f"**Failed: {', '.join(failed)}**", ""]
    if a.update and os.path.exists(a.output):
        with open(a.output) as f:
            header, sections = _updated(f.read(), sections, header)
    text = "\n".join(header) + "\n" + "\n\n".join(body for _, body in sections) + "\n"
    with open(a.output, "w") as f:
        f.write(text)
    H.log(f"wrote {a.output}")
    return 1 if failed else 0


_TRAILER = re.compile(r"_`(bench_\w+)\.py` took \d+ s\._")


def _updated(old_text, new_sections, new_header):
    """(header, sections) of an earlier RESULTS.md with ``new_sections``
    replacing (or joining, in file-name order) the sections of the same
    benchmarks; the old header is kept, with a line saying what was rerun."""
    first = old_text.find("\n## ")
    if first < 0:
        return new_header, new_sections
    header = old_text[:first].rstrip("\n").split("\n")
    old, pos = {}, first + 1
    for m in _TRAILER.finditer(old_text):
        old[m.group(1)] = old_text[pos:m.end()].strip("\n")
        pos = m.end()
    for name, body in new_sections:
        old[name] = body
    date = next(x for x in new_header if x.startswith("- Date: "))[len("- Date: "):]
    cmd = next(x for x in new_header if x.startswith("- Command: "))[len("- Command: "):]
    header += [f"- Updated {date}: {', '.join(n + '.py' for n, _ in new_sections)} run again "
               f"by {cmd}; the other sections are from the run above", ""]
    return header, sorted(old.items())


def versions() -> str:
    out = []
    for mod in ("cdask", "dask", "numpy"):
        try:
            p = subprocess.run([sys.executable, "-c",
                                f"import {mod}; print(getattr({mod}, '__version__', '?'))"],
                               capture_output=True, text=True, timeout=60)
            v = p.stdout.strip() if p.returncode == 0 else "not importable"
        except Exception as e:  # pragma: no cover
            v = f"unknown ({e})"
        out.append(f"{mod} {v}")
    return ", ".join(out)


if __name__ == "__main__":
    sys.exit(main())
