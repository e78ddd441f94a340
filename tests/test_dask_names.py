"""dask.array's public names (issue 15): cdask has every one, but those NOT_YET lists.

``tests/data/dask_array_names.txt`` is made from the pinned dask by
``tools/dask_names.py`` (every name of ``dask.array.__all__``, every public
attribute of ``dask.array.Array``, the functions of ``dask.array.linalg``,
``fft``, ``ma`` and ``random``).  The tests fail when cdask lacks a name that
NOT_YET does not list, when it has one that NOT_YET lists (take it out: the
list shrinks to nothing as issue 15 is done), when the names file is not
what the installed (pinned) dask gives, and when docs/dask-api.md is not the
page the script writes from the file and cdask.
"""

import importlib.util
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script():
    spec = importlib.util.spec_from_file_location(
        "dask_names", os.path.join(ROOT, "tools", "dask_names.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


NAMES = _script()

# The open work of issue 15: dask names cdask does not have yet.
NOT_YET = set()

VERSION, ALL = NAMES.read_names()


def test_the_file_is_made_from_the_pinned_dask():
    import dask

    pyproject = open(os.path.join(ROOT, "pyproject.toml")).read()
    pins = re.findall(r'"dask(?:\[[^\]]*\])?==([^"]+)"', pyproject)
    assert pins and set(pins) == {NAMES.PIN}, pins
    assert VERSION == NAMES.PIN
    assert dask.__version__ == NAMES.PIN, (
        "the installed dask is %s, the pin %s: pip install -e '.[test]'"
        % (dask.__version__, NAMES.PIN))
    assert NAMES.collect() == ALL, "run python tools/dask_names.py to remake the list"
    assert len(ALL) == len(set(ALL)) > 400
    for must in ("tril", "Array.A", "Array.to_delayed", "linalg.qr", "fft.fft2", "ma.filled",
                 "random.default_rng", "float64", "newaxis"):
        assert must in ALL, must


def test_cdask_has_every_dask_name_but_not_yet():
    missing = sorted(n for n in ALL if not NAMES.cdask_has(n))
    unlisted = [n for n in missing if n not in NOT_YET]
    assert not unlisted, "cdask lacks these dask names: %s" % unlisted


def test_not_yet_lists_only_names_still_missing():
    stale = sorted(n for n in NOT_YET if n not in ALL)
    assert not stale, "NOT_YET names that dask does not have: %s" % stale
    present = sorted(n for n in NOT_YET if NAMES.cdask_has(n))
    assert not present, "cdask has these now: take them out of NOT_YET: %s" % present


def test_the_check_sees_what_it_checks():
    # the lookup answers both ways, for each kind of name
    for n in ("tril", "Array.trace", "Array.A", "linalg.norm", "random.default_rng",
              "Array.name", "Array.chunks"):
        assert NAMES.cdask_has(n), n
    for n in ("no_such_function", "Array.no_such_method", "fft.no_such_transform",
              "ma.no_such_function",
              "random.no_such_distribution", "linalg.no_such_function"):
        assert not NAMES.cdask_has(n), n


def test_docs_page_is_current():
    page = open(os.path.join(ROOT, "docs", "dask-api.md")).read()
    assert page == NAMES.render_docs(ALL, VERSION), \
        "docs/dask-api.md is stale: run python tools/dask_names.py --docs"
    for n in NOT_YET:
        row = [line for line in page.splitlines() if line.startswith("| `%s` |" % n)]
        assert len(row) == 1 and "not yet" in row[0], (n, row)
    assert "| `tril_indices` | better:" in page
