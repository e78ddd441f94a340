"""dask.array's public names, and how far cdask covers them (issue 15).

    python tools/dask_names.py            # both files below
    python tools/dask_names.py --names    # tests/data/dask_array_names.txt, from dask
    python tools/dask_names.py --docs     # docs/dask-api.md, from that file and cdask

The names file lists, from the installed dask (it must be the version pinned
in pyproject.toml's test extra, PIN below), one name a line:

* ``tril`` - every name of ``dask.array.__all__``;
* ``Array.A`` - every public attribute of ``dask.array.Array``;
* ``linalg.qr``, ``fft.fft2``, ``ma.filled``, ``random.beta`` - the public
  functions and classes of those submodules (they have no ``__all__``: the
  names defined there, plus for ``ma`` the numpy.ma functions it re-exports;
  not the helpers they import from elsewhere).

``tests/test_dask_names.py`` fails when cdask lacks one of them that its
``NOT_YET`` set does not list, or has one it does list, and when the docs
page is not what this script writes.  The docs page gives each name's
status: "same as dask", "better: ..." (cdask does more), "same as dask,
except: ..." (a limit we know of), or "not yet: ..." (why not).
"""

import argparse
import importlib
import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES_FILE = os.path.join(ROOT, "tests", "data", "dask_array_names.txt")
DOCS_FILE = os.path.join(ROOT, "docs", "dask-api.md")
PIN = "2026.8.0"
SUBMODULES = ("linalg", "fft", "ma", "random")

# What we know of names cdask has that differ from dask's.
NOTES = {
    "tril_indices": "better: known chunk sizes (dask's come from `nonzero` and are unknown)",
    "triu_indices": "better: known chunk sizes (dask's come from `nonzero` and are unknown)",
    "tril_indices_from": "better: known chunk sizes, one block per band of the array's rows",
    "triu_indices_from": "better: known chunk sizes, one block per band of the array's rows",
    "tril": "better: 1-d input as NumPy (dask raises); blocks outside the triangle read "
            "nothing",
    "triu": "better: 1-d input as NumPy (dask raises); blocks outside the triangle read "
            "nothing",
    "choose": "better: NumPy's `mode=` too",
    "Array.choose": "better: NumPy's `mode=` too",
    "meshgrid": "better: NumPy's `copy=` accepted (dask raises NotImplementedError)",
    "indices": "better: NumPy's `sparse=` too",
    "ptp": "better: NumPy's `keepdims=` too",
    "around": "better: a fused C kernel chain, bit-identical to NumPy",
    "round": "better: a fused C kernel chain, bit-identical to NumPy",
    "nan_to_num": "better: a fused C kernel chain for real dtypes, bit-identical to NumPy",
    "fix": "better: a fused C kernel chain, bit-identical to NumPy",
    "isnull": "same as dask, except: numeric dtypes only (no pandas; cdask has no "
              "object or datetime dtypes)",
    "notnull": "same as dask, except: numeric dtypes only (no pandas; cdask has no "
               "object or datetime dtypes)",
    "register_chunk_type": "same as dask, except: cdask's blocks stay NumPy arrays; a "
                           "registered type is only one cdask does not defer to",
    "assert_eq": "same as dask, except: `check_meta` is accepted and ignored (blocks are "
                 "NumPy arrays)",
    "Array.to_delayed": "same as dask (needs dask installed)",
    "flatnonzero": "same as dask, except: N-d input raises NotImplementedError (ravel first)",
    "argwhere": "same as dask, except: a 0-d array raises NotImplementedError",
    "einsum": "same as dask, except: only the subscripts-string form; no `out=`",
    "dot": "same as dask, except: no `out=`",
    "matmul": "same as dask, except: no `out=`",
    "outer": "same as dask, except: no `out=`",
    "store": "same as dask, except: `compute=False` raises NotImplementedError "
             "(cdask stores at once)",
    "to_zarr": "same as dask, except: `compute=False` raises NotImplementedError",
    "Array.store": "same as dask, except: `compute=False` raises NotImplementedError",
    "Array.to_zarr": "same as dask, except: `compute=False` raises NotImplementedError",
    "linalg.norm": "better: every `ord` and `axis` numpy.linalg.norm takes, the SVD norms of "
                   "stacks of matrices (N-d arrays) included",
    "from_delayed": "better: the block is checked against the declared shape",
    "to_backend": "same as dask, except: NumPy's backend only",
    "Array.to_backend": "same as dask, except: NumPy's backend only",
    "backends": "same as dask, except: NumPy's backend only",
    "random.multinomial": "better: an ndarray `pvals` works (dask raises)",
    "linalg.svd": "same as dask, except: `full_matrices=True` raises NotImplementedError",
    "reduction": "same as dask, except: `weights=` raises NotImplementedError",
    "take": "better: NumPy's `mode=` and `axis=None` too; each output block reads only the "
            "blocks its indices fall in",
    "insert": "better: `axis` optional (None: flattened, as NumPy); `obj` in any order (dask: "
              "monotonic only)",
    "delete": "better: `axis` optional (None: flattened, as NumPy)",
    "repeat": "better: NumPy's per-element `repeats` and `axis=None` of N-d arrays (dask raises "
              "NotImplementedError); one task per block",
    "Array.repeat": "better: NumPy's per-element `repeats` and `axis=None` of N-d arrays (dask "
                    "raises NotImplementedError)",
    "pad": "better: every NumPy mode - `median`, `reflect_type='odd'` (dask ignores it), "
           "reflect/symmetric/wrap pads wider than the axis (dask's have the wrong shape); "
           "odd reflections wider than the axis raise NotImplementedError",
    "push": "same as dask, except: no bottleneck needed; `n=0` fills nothing, as bottleneck's "
            "push (dask's code fills without limit)",
    "coarsen": "same as dask, except: block boundaries are moved down to multiples of the "
               "factors, so the output chunks may differ from dask's",
    "shuffle": "same as dask, except: the other axes are not split when a group is much "
               "larger than a block",
    "reshape_blockwise": "same as dask, except: merging axes of length 1 works (dask's keep "
                         "extra axes or fail)",
    "apply_along_axis": "same as dask, except: `dtype`/`shape` found by a call on a vector of "
                        "the axis' length (dask: of length 1)",
    "apply_gufunc": "same as dask; every block's shape is checked against the signature",
    "frompyfunc": "same as dask, except: cdask has no object arrays, so results are cast to "
                  "the dtype `func` gives for sample values (or `dtype=` of the call)",
    "fft.fftn": "better: split axes rechunked (dask raises); `s` without `axes` takes the "
                "last axes, as NumPy 2 (dask the first)",
    "fft.fftfreq": "same as dask, except: NumPy's values bit for bit",
    "fft.rfftfreq": "same as dask, except: NumPy's values bit for bit",
    "ma": "same as dask; masked blocks never go through C kernels; nan* reductions, "
          "moment and contractions of masked arrays raise NotImplementedError",
}
for _k in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2",
           "irfft2", "ifftn", "rfftn", "irfftn"):
    NOTES["fft." + _k] = ("better: transformed axes split over several chunks are "
                          "rechunked (a PerformanceWarning when the blocks get large; "
                          "dask raises)")

# Why a name cdask lacks is missing (the default: the rest of issue 15).
WHY_NOT = {}
DEFAULT_WHY_NOT = "not yet: the open work of issue 15"


# ---------------------------------------------------------------------------
# reading dask
# ---------------------------------------------------------------------------
def _defined_in(obj, modname):
    m = getattr(obj, "__module__", None)
    if m is None and hasattr(obj, "__self__"):      # bound methods of a module-level object
        m = type(obj.__self__).__module__
    return m == modname


def collect():
    """The public names of the installed dask.array, as the names file lists them."""
    import dask.array as dda

    names = sorted(dda.__all__)
    names += sorted("Array." + n for n in dir(dda.Array) if not n.startswith("_"))
    for sub in SUBMODULES:
        mod = importlib.import_module("dask.array." + sub)
        found = []
        for n in dir(mod):
            obj = getattr(mod, n)
            if n.startswith("_") or isinstance(obj, types.ModuleType):
                continue
            if _defined_in(obj, mod.__name__) or (
                    sub == "ma" and (getattr(obj, "__module__", "") or "").startswith("numpy.ma")):
                found.append(sub + "." + n)
        names += sorted(found)
    return names


def write_names(path=NAMES_FILE):
    import dask

    if dask.__version__ != PIN:
        raise SystemExit("dask %s is installed, but the list is made from the pinned dask %s "
                         "(pip install -e '.[test]')" % (dask.__version__, PIN))
    with open(path, "w") as f:
        f.write("# dask.array's public names, from dask %s (made by tools/dask_names.py)\n"
                % PIN)
        f.write("# name: dask.array.<name>; Array.<attr>; <submodule>.<name>\n")
        for n in collect():
            f.write(n + "\n")


def read_names(path=NAMES_FILE):
    """(dask version, [names]) of the names file."""
    version, names = None, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("# dask.array's public names, from dask "):
                version = line.split("from dask ")[1].split()[0]
            elif line and not line.startswith("#"):
                names.append(line)
    return version, names


# ---------------------------------------------------------------------------
# reading cdask
# ---------------------------------------------------------------------------
def cdask_has(name):
    """Does cdask have dask's ``name`` (a line of the names file)?"""
    import cdask

    ns, _, attr = name.rpartition(".")
    if not ns:
        return hasattr(cdask, name)
    if ns == "Array":
        x = cdask.ones((2, 2), chunks=1)
        return hasattr(type(x), attr) or attr in vars(x)
    try:
        mod = importlib.import_module("cdask." + ns)
    except ImportError:
        return False
    return hasattr(mod, attr)


def status(name, present):
    if present:
        return NOTES.get(name, "same as dask")
    return WHY_NOT.get(name, DEFAULT_WHY_NOT)


def render_docs(names, version):
    present = {n: cdask_has(n) for n in names}
    n_missing = sum(1 for v in present.values() if not v)
    out = ["# dask.array's API in cdask",
           "",
           "Every public name of `dask.array` %s (the pinned version), of `dask.array.Array` "
           "and of the submodules `linalg`, `fft`, `ma` and `random`, with its status in "
           "cdask.  Made by `tools/dask_names.py` from `tests/data/dask_array_names.txt`; "
           "`tests/test_dask_names.py` checks that it is current." % version,
           "",
           "- **same as dask**: cdask has the name, with dask's signature and dask's (and "
           "NumPy's) semantics;",
           "- **better: ...**: it does more than dask, as said;",
           "- **same as dask, except: ...**: a limit we know of;",
           "- **not yet: ...**: cdask lacks it, and why.",
           "",
           "%d of %d names are present; %d are not yet." % (len(names) - n_missing,
                                                          len(names), n_missing),
           ""]
    groups = [("`dask.array`", [n for n in names if "." not in n])]
    groups.append(("`dask.array.Array`", [n for n in names if n.startswith("Array.")]))
    for sub in SUBMODULES:
        groups.append(("`dask.array.%s`" % sub, [n for n in names if n.startswith(sub + ".")]))
    for title, group in groups:
        out += ["## " + title, "", "| name | status |", "|---|---|"]
        for n in group:
            out.append("| `%s` | %s |" % (n, status(n, present[n]).replace("|", "\\|")))
        out.append("")
    return "\n".join(out)


def write_docs(path=DOCS_FILE):
    version, names = read_names()
    with open(path, "w") as f:
        f.write(render_docs(names, version))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", action="store_true", help="write the names file from dask")
    p.add_argument("--docs", action="store_true", help="write docs/dask-api.md")
    args = p.parse_args(argv)
    both = not (args.names or args.docs)
    if args.names or both:
        write_names()
    if args.docs or both:
        write_docs()


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(ROOT, "python"))
    main()
