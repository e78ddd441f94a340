"""cdask.get: the scheduler's Python contract (docs/api-core.md, "Scheduler").

Covers: graphs in dask's format (literals, nested tasks, lists of keys,
aliases, every kind of key, tuple/dict literals, classes, partials, lambdas),
result nesting, random DAGs against tests/reference.py for 1, 2 and 4
workers, Python tasks fed by C kernels and the reverse (including bad
values), error reporting (cycles, missing and unhashable keys, task
exceptions with their notes and tracebacks, stopping after a failure),
Stats (counts, bytes, records, callback, freeing intermediates) and
concurrency (several threads, nested get).

Run with CDASK_TEST_ORACLE=1 to check the tests against dask.threaded.get.
"""
import functools
import gc
import operator
import random
import threading
import time
import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask
import reference
from conftest import ORACLE, run_with_timeout

K = cdask.kernels
cdask_only = pytest.mark.cdask_only

# dask reports a cycle as RuntimeError; cdask's contract says ValueError.
CYCLE_ERROR = RuntimeError if ORACLE else ValueError


# ---------------------------------------------------------------- helpers


def same(got, expected, keys=None):
    """Assert ``got`` equals ``expected``.

    ``keys`` is the request: where it is a list the result may be a list or a
    tuple of the same length (dask returns tuples); elsewhere values must
    match exactly, arrays by dtype, shape and contents.
    """
    if type(keys) is list:
        assert isinstance(got, (list, tuple)), (got, keys)
        assert len(got) == len(keys), (got, keys)
        assert len(expected) == len(keys)
        for g, e, k in zip(got, expected, keys):
            same(g, e, k)
        return
    same_value(got, expected)


def same_value(got, expected):
    if isinstance(expected, np.ndarray) or isinstance(expected, np.generic):
        g = np.asarray(got)
        e = np.asarray(expected)
        assert g.dtype == e.dtype, (g.dtype, e.dtype)
        assert g.shape == e.shape, (g.shape, e.shape)
        np.testing.assert_array_equal(g, e)
        return
    assert type(got) is type(expected), (type(got), type(expected), got, expected)
    if isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            same_value(g, e)
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys()
        for k in expected:
            same_value(got[k], expected[k])
    else:
        assert got == expected, (got, expected)


def inc(x):
    return x + 1


def add3(a, b, c):
    return a + b + c


def nested_sum(x):
    if isinstance(x, (list, tuple)):
        return sum(nested_sum(v) for v in x)
    return x


def identity(x):
    return x


def kinds(x):
    """Describe the structure of x (to check what a task received)."""
    if isinstance(x, list):
        return [kinds(v) for v in x]
    return type(x).__name__


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)

    def __hash__(self):
        return hash((self.x, self.y))

    def __repr__(self):
        return "Point(%r, %r)" % (self.x, self.y)


class Adder:
    """A callable instance."""

    def __init__(self, n):
        self.n = n

    def __call__(self, x):
        return x + self.n


def keyword_task(a, b=0, *, c=0):
    return (a, b, c)


# ---------------------------------------------------------------- dask's spec

SPEC_CASES = {
    "literal": ({"x": 1}, "x", 1),
    "literal-none": ({"x": None}, "x", None),
    "literal-str-not-a-key": ({"x": "hello"}, "x", "hello"),
    "literal-big-int": ({"x": 10 ** 40}, "x", 10 ** 40),
    "task": ({"a": 1, "b": (inc, "a")}, "b", 2),
    "task-no-args": ({"a": (list,)}, "a", []),
    "task-str-literal-args": ({"a": (operator.add, "hel", "lo")}, "a", "hello"),
    "nested-tasks": ({"a": 2, "b": (operator.add, (operator.mul, "a", 10), (inc, (inc, "a")))},
                     "b", 24),
    "list-of-keys": ({"a": 1, "b": 2, "c": 3, "d": (sum, ["a", "b", "c"])}, "d", 6),
    "list-of-keys-and-literals": ({"a": 1, "d": (sum, ["a", 10, "a"])}, "d", 12),
    "nested-lists": ({"a": 1, "b": 2, "c": (identity, [["a", "b"], ["a", [3, "b"]], []])},
                     "c", [[1, 2], [1, [3, 2]], []]),
    "list-value": ({"a": 1, "b": ["a", "a", 5]}, "b", [1, 1, 5]),
    "list-value-with-tasks": ({"a": 1, "b": [(inc, "a"), ["a", (inc, 5)]]}, "b", [2, [1, 6]]),
    "keys-in-lists-in-nested-tasks": (
        {"a": 1, "b": 2, "c": (nested_sum, [(operator.add, "a", "b"), ["b", [(inc, "a")]]])},
        "c", 3 + 2 + 2),
    "alias": ({"a": 1, "b": "a"}, "b", 1),
    "alias-chain": ({"a": (inc, 1), "b": "a", "c": "b", "d": (inc, "c")}, ["c", "d"], [2, 3]),
    "alias-tuple-key": ({("x", 1): 5, "y": ("x", 1)}, "y", 5),
    "tuple-keys": ({("x", 0, 0): 1, ("x", 1, 0): (inc, ("x", 0, 0)),
                    ("y", 1): (operator.add, ("x", 0, 0), ("x", 1, 0))},
                   [("y", 1), ("x", 1, 0)], [3, 2]),
    "tuple-key-requested-alone": ({("x", 1): 7}, ("x", 1), 7),
    "int-keys": ({1: 10, 2: (inc, 1), 3: (operator.add, 1, 2)}, [3, 2], [21, 11]),
    "float-keys": ({1.5: 4, "b": (operator.mul, 1.5, 2)}, "b", 8),
    "unicode-str-keys": ({"ä-ключ": 3, "b": (inc, "ä-ключ")}, "b", 4),
    "tuple-literal-not-a-task": ({"a": (1, 2, 3)}, "a", (1, 2, 3)),
    "tuple-literal-arg": ({"a": (len, (1, 2, 3))}, "a", 3),
    "tuple-literal-of-strs": ({"a": (identity, ("p", "q"))}, "a", ("p", "q")),
    "dict-literal": ({"a": {"p": 1, "q": [1, 2]}}, "a", {"p": 1, "q": [1, 2]}),
    "dict-literal-arg": ({"a": (sorted, {"p": 1, "q": 2})}, "a", ["p", "q"]),
    "callable-class": ({"a": 1, "p": (Point, "a", 2)}, "p", Point(1, 2)),
    "builtin-type": ({"a": (int, "42"), "b": (float, "a")}, "b", 42.0),
    "callable-instance": ({"a": 1, "b": (Adder(10), "a")}, "b", 11),
    "partial": ({"a": 1, "b": (functools.partial(operator.add, 100), "a")}, "b", 101),
    "partial-kwargs": ({"a": 1, "b": (functools.partial(keyword_task, b=2, c=3), "a")},
                       "b", (1, 2, 3)),
    "lambda": ({"a": 3, "b": (lambda x, y: x * y, "a", "a")}, "b", 9),
    "task-receives-list-not-tuple": ({"a": 1, "b": (kinds, ["a", ["a"]])}, "b",
                                     ["int", ["int"]]),
    "request-nested": ({"a": 1, "b": 2, "c": 3}, [["a", "b"], ["c", ["a"]]],
                       [[1, 2], [3, [1]]]),
    "request-list-of-one": ({"a": 1}, ["a"], [1]),
    "request-same-key-twice": ({"a": (inc, 1)}, ["a", ["a"]], [2, [2]]),
    "request-empty-list": ({"a": 1}, [], []),
    "unneeded-keys-not-run": ({"a": 1, "boom": (operator.truediv, 1, 0)}, "a", 1),
}


@pytest.mark.parametrize("num_workers", [1, 3])
@pytest.mark.parametrize("case", list(SPEC_CASES), ids=list(SPEC_CASES))
def test_spec_graphs(get, case, num_workers):
    dsk, keys, expected = SPEC_CASES[case]
    got = get(dsk, keys, num_workers=num_workers)
    same(got, expected, keys)
    # the reference executor agrees with the hand-written expectation
    same(reference.get(dsk, keys), expected, keys)


def test_single_key_vs_list(get):
    dsk = {"a": (inc, 1), ("t", 1): 5}
    assert get(dsk, "a") == 2
    r = get(dsk, ["a"])
    assert isinstance(r, (list, tuple)) and list(r) == [2]
    # a tuple is a key, not a list of keys
    assert get(dsk, ("t", 1)) == 5
    r = get(dsk, [("t", 1), ["a"]])
    assert r[0] == 5 and list(r[1]) == [2]


def test_graph_not_mutated(get):
    task = (operator.add, "a", (inc, "a"))
    dsk = {"a": 1, "b": task, "c": ["a", "b"]}
    snapshot = dict(dsk)
    get(dsk, ["b", "c"])
    assert dsk == snapshot
    assert dsk["b"] is task


def test_unknown_keyword_arguments_ignored(get):
    dsk = {"a": 1, "b": (inc, "a")}
    assert get(dsk, "b", cache=None, optimize_graph=False, some_new_dask_option=1) == 2


def test_default_num_workers(get):
    dsk = {("x", i): (inc, i) for i in range(20)}
    dsk["s"] = (sum, list(dsk))
    assert get(dsk, "s") == sum(range(1, 21))


def test_task_results_are_not_copied(get):
    obj = Point(1, 2)
    dsk = {"a": (identity, obj), "b": (identity, "a"), "c": "b"}
    a, b, c = get(dsk, ["a", "b", "c"])
    assert a is obj and b is obj and c is obj


def test_literal_passed_by_identity(get):
    big = np.arange(10.0)
    dsk = {"a": big, "b": (identity, big), "c": (identity, "a")}
    a, b, c = get(dsk, ["a", "b", "c"])
    assert a is big and b is big and c is big


def test_wide_graph(get):
    n = 2000
    dsk = {("x", i): (operator.mul, i, 2) for i in range(n)}
    dsk["total"] = (sum, [("x", i) for i in range(n)])
    assert get(dsk, "total", num_workers=4) == n * (n - 1)


def test_long_chain(get):
    n = 5000
    dsk = {("c", 0): 0}
    for i in range(1, n):
        dsk[("c", i)] = (inc, ("c", i - 1))
    assert get(dsk, ("c", n - 1), num_workers=2) == n - 1


def test_long_alias_chain(get):
    n = 2000
    dsk = {"k0": 1}
    for i in range(1, n):
        dsk["k%d" % i] = "k%d" % (i - 1)
    assert get(dsk, "k%d" % (n - 1)) == 1


# ---------------------------------------------------------------- random DAGs

M = 1_000_003  # keep Python ints small enough for the kernels


def sum_mod(xs):
    return int(sum(int(x) for x in xs)) % M


def nested_sum_mod(xs):
    return int(nested_sum(xs)) % M


def make_pair(a, b):
    return (a, b)


def pair_total(t):
    return (int(t[0]) + int(t[1])) % M


def int_of(x):
    return int(round(float(x))) % M


def py_add_arr(a, b):
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
    return a + b


def py_shift(a, n):
    return a + float(n)


def random_graph(rng, n, max_fanin, p_kernel):
    """A random graph of n keys (ints, tuples of ints, float64 arrays).

    Values are ints < M, pairs of such ints, or float64 arrays of shape (3,).
    Keys are str, tuple, int and float (big enough not to collide with any
    literal used).
    """
    dsk = {}
    by_type = {"int": [], "pair": [], "arr": []}

    def pick(t, k=1):
        return [rng.choice(by_type[t]) for _ in range(k)]

    def fanin():
        return rng.randint(1, max_fanin)

    for i in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            key = "k%d" % i
        elif kind == 1:
            key = ("k", i) if rng.random() < 0.5 else ("k", i, rng.randrange(3))
        elif kind == 2:
            key = 10_000_000 + i
        else:
            key = 10_000_000.25 + i

        options = ["int-lit", "arr-lit", "arr-ones"]
        if by_type["int"]:
            options += ["int-add", "int-sumlist", "pair", "int-kernel-sum", "int-alias"]
        if by_type["pair"]:
            options += ["pair-total", "pair-alias"]
        if by_type["arr"]:
            options += ["arr-kadd", "arr-ksub", "arr-nested", "arr-pyadd", "arr-alias",
                        "int-of-ksum"]
            if by_type["int"]:
                options += ["arr-pyshift"]
        kernel_options = {"int-kernel-sum", "arr-kadd", "arr-ksub", "arr-nested",
                          "int-of-ksum", "arr-ones"}
        if rng.random() < p_kernel and kernel_options & set(options):
            options = sorted(kernel_options & set(options))
        choice = rng.choice(options)

        if choice == "int-lit":
            t, v = "int", rng.randrange(-100, 100)
        elif choice == "arr-lit":
            t, v = "arr", np.arange(3.0) + rng.randrange(10)
        elif choice == "arr-ones":
            t, v = "arr", (K.ones, 3)
        elif choice == "int-add":
            a, b = pick("int", 2)
            # nested task: (a + b) % M
            t, v = "int", (operator.mod, (operator.add, a, b), M)
        elif choice == "int-sumlist":
            deps = pick("int", fanin())
            if rng.random() < 0.5:
                # keys in nested lists, a literal, and a nested task in the list
                deps = [deps[: len(deps) // 2], [deps[len(deps) // 2:]], rng.randrange(5),
                        (inc, deps[0])]
                t, v = "int", (nested_sum_mod, deps)
            else:
                t, v = "int", (sum_mod, deps)
        elif choice == "pair":
            a, b = pick("int", 2)
            t, v = "pair", (make_pair, a, (operator.mod, (inc, b), M))
        elif choice == "int-kernel-sum":
            # a C kernel receiving Python ints; a Python task receiving its output
            t, v = "int", (int_of, (K.sum, pick("int", fanin())))
        elif choice == "int-alias":
            t, v = "int", pick("int")[0]
        elif choice == "pair-total":
            t, v = "int", (pair_total, pick("pair")[0])
        elif choice == "pair-alias":
            t, v = "pair", pick("pair")[0]
        elif choice == "arr-kadd":
            a, b = pick("arr", 2)
            t, v = "arr", (K.add, a, b)
        elif choice == "arr-ksub":
            a, b = pick("arr", 2)
            t, v = "arr", (K.sub, a, b)
        elif choice == "arr-nested":
            a, b, c = pick("arr", 3)
            t, v = "arr", (K.add, a, (K.sub, b, (K.add, c, 0.5)))
        elif choice == "arr-pyadd":
            a, b = pick("arr", 2)
            t, v = "arr", (py_add_arr, a, b)
        elif choice == "arr-pyshift":
            t, v = "arr", (py_shift, pick("arr")[0], pick("int")[0])
        elif choice == "arr-alias":
            t, v = "arr", pick("arr")[0]
        elif choice == "int-of-ksum":
            t, v = "int", (int_of, (K.sum, pick("arr", fanin())))
        else:  # pragma: no cover
            raise AssertionError(choice)
        dsk[key] = v
        by_type[t].append(key)
    return dsk


def random_request(rng, keys):
    if rng.random() < 0.2:
        return rng.choice(keys)
    sample = rng.sample(keys, rng.randint(1, min(len(keys), 30)))
    if rng.random() < 0.5:
        return sample
    # nest some of them
    out, i = [], 0
    while i < len(sample):
        j = i + rng.randint(1, 4)
        out.append(sample[i:j] if rng.random() < 0.5 else sample[i])
        i = j
    return out


def compare_loosely(got, expected, keys):
    """Values equal (arrays by contents and dtype; numpy scalars vs 0-d fine)."""
    if type(keys) is list:
        assert isinstance(got, (list, tuple)) and len(got) == len(keys)
        for g, e, k in zip(got, expected, keys):
            compare_loosely(g, e, k)
        return
    if isinstance(expected, (np.ndarray, np.generic)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
        assert np.asarray(got).dtype == np.asarray(expected).dtype
    else:
        assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("num_workers", [1, 2, 4])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(n=st.integers(1, 200), max_fanin=st.integers(1, 8),
       p_kernel=st.sampled_from([0.0, 0.3, 0.9]), seed=st.integers(0, 2 ** 32 - 1))
def test_random_dags_against_reference(num_workers, n, max_fanin, p_kernel, seed):
    from conftest import GET as get
    rng = random.Random(seed)
    dsk = random_graph(rng, n, max_fanin, p_kernel)
    keys = random_request(rng, list(dsk))
    expected = reference.get(dsk, keys)
    got = get(dsk, keys, num_workers=num_workers)
    compare_loosely(got, expected, keys)
    # every key at once, too
    allkeys = list(dsk)
    compare_loosely(get(dsk, allkeys, num_workers=num_workers),
                    reference.get(dsk, allkeys), allkeys)


# ---------------------------------------------------------------- Python <-> C kernels


def describe(x):
    return (type(x), np.asarray(x).dtype, np.shape(x), np.asarray(x).sum())


def test_python_task_gets_kernel_outputs(get):
    dsk = {
        "ones": (K.ones, 5),
        "twice": (K.add, "ones", "ones"),
        "total": (K.sum, "twice"),
        "d_arr": (describe, "twice"),
        "d_scalar": (describe, "total"),
        "py": (lambda a, s: a * s, "twice", "total"),
    }
    d_arr, d_scalar, py = get(dsk, ["d_arr", "d_scalar", "py"], num_workers=2)
    assert d_arr[0] is np.ndarray and d_arr[1] == np.float64 and d_arr[2] == (5,)
    assert d_arr[3] == 10.0
    assert d_scalar[1] == np.float64 and d_scalar[2] == () and d_scalar[3] == 10.0
    assert issubclass(d_scalar[0], (np.generic, np.ndarray))
    np.testing.assert_array_equal(py, np.full(5, 20.0))


def test_kernel_results_like_direct_calls(get):
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    dsk = {"a": a, "s": (K.sum, "a"), "m": (K.mul, "a", "a"), "d": (K.dot, np.ones(3), np.ones(3)),
           "z": (K.zeros, 4)}
    s, m, d, z = get(dsk, ["s", "m", "d", "z"])
    for got, direct in ((s, K.sum(a)), (m, K.mul(a, a)), (d, K.dot(np.ones(3), np.ones(3))),
                        (z, K.zeros(4))):
        assert type(got) is type(direct)
        same_value(got, direct)
    assert s == 15 and s.dtype == np.int64


def test_kernel_output_is_writeable_in_python_task(get):
    def bump(a):
        a[0] = 42.0
        return a

    r = get({"o": (K.ones, 3), "b": (bump, "o")}, "b")
    np.testing.assert_array_equal(r, [42.0, 1.0, 1.0])


def test_kernels_get_python_outputs(get):
    dsk = {
        "arr": (np.arange, 4.0),
        "view": (lambda a: a[::2], (np.arange, 8.0)),  # non-contiguous
        "i1": (int, "7"),
        "i2": (operator.add, 1, 2),
        "f": (float, "1.5"),
        "listy": (lambda: [np.ones(2), np.ones(3)],),
        "k_arr": (K.add, "arr", "arr"),
        "k_view": (K.mul, "view", "view"),
        "k_ints": (K.sum, "i1", "i2"),
        "k_int_list": (K.sum, ["i1", "i2", 5]),
        "k_float": (K.add, "f", 2.25),
        "k_broadcast": (K.add, "arr", "f"),
        "k_list": (K.sum, "listy"),
    }
    r = get(dsk, ["k_arr", "k_view", "k_ints", "k_int_list", "k_float", "k_broadcast",
                  "k_list"], num_workers=2)
    np.testing.assert_array_equal(r[0], np.arange(4.0) * 2)
    np.testing.assert_array_equal(r[1], np.arange(8.0)[::2] ** 2)
    assert r[2] == 10 and np.asarray(r[2]).dtype == np.int64
    assert r[3] == 15 and np.asarray(r[3]).dtype == np.int64
    assert r[4] == 3.75 and np.asarray(r[4]).dtype == np.float64
    np.testing.assert_array_equal(r[5], np.arange(4.0) + 1.5)
    assert r[6] == 5.0


@pytest.mark.parametrize("bad, word", [
    ("abc", "str"),
    (np.array([1, None], dtype=object), "object"),
    (None, "NoneType"),
])
@pytest.mark.parametrize("via", ["python-task", "literal"])
def test_kernel_bad_python_input_raises_typeerror(get, bad, word, via):
    if via == "python-task":
        dsk = {"x": (identity, bad), "k": (K.add, np.ones(2), "x")}
    else:
        if isinstance(bad, str):
            bad = "abc-not-a-key"
        dsk = {"k": (K.add, np.ones(2), bad)}
    with pytest.raises(TypeError) as ei:
        get(dsk, "k")
    assert "kernel 'add'" in str(ei.value)
    assert word in str(ei.value)
    if not ORACLE:
        assert any("'k'" in n for n in getattr(ei.value, "__notes__", []))


def test_kernel_mixed_dtypes_in_graph(get):
    dsk = {"i": (np.arange, 3), "f": (np.ones, 3), "k": (K.add, "f", "i")}
    with pytest.raises(TypeError, match="kernel 'add'"):
        get(dsk, "k")


def test_kernel_wrong_arity_in_graph(get):
    with pytest.raises(TypeError, match="kernel 'add' takes 2 inputs, got 3"):
        get({"k": (K.add, 1.0, 2.0, 3.0)}, "k")


def test_kernel_shape_mismatch_in_graph(get):
    with pytest.raises(ValueError, match="kernel 'add'"):
        get({"a": (K.ones, 3), "b": (K.ones, 4), "k": (K.add, "a", "b")}, "k")


# ---------------------------------------------------------------- errors before running

calls = []


def record_call(*args):
    calls.append(args)
    return len(args)


@pytest.mark.parametrize("dsk, cycle", [
    ({"a": (inc, "b"), "b": (inc, "a")}, {"a", "b"}),
    ({"a": (inc, "a")}, {"a"}),
    ({"a": "b", "b": "a"}, {"a", "b"}),
    ({"a": (sum, ["b", 1]), "b": (inc, (inc, "c")), "c": [1, "a"]}, {"a", "b", "c"}),
    ({("x", 1): (inc, ("x", 2)), ("x", 2): (inc, ("x", 1)), "top": (inc, ("x", 1))},
     {("x", 1), ("x", 2)}),
])
def test_cycle_raises_valueerror_naming_a_key(get, dsk, cycle):
    calls.clear()
    dsk = dict(dsk)
    dsk["side"] = (record_call, 1)
    first = next(iter(dsk))
    with pytest.raises(CYCLE_ERROR) as ei:
        get(dsk, [first, "side"], num_workers=2)
    msg = str(ei.value)
    assert any(str(k) in msg or repr(k) in msg for k in cycle), msg
    assert calls == [], "tasks ran although the graph has a cycle"
    assert reference.find_cycle(dsk) is not None


@pytest.mark.parametrize("keys", ["zz-missing", ["a", ["zz-missing"]], ("zz-missing", 3)])
def test_missing_key_raises_keyerror(get, keys):
    calls.clear()
    dsk = {"a": (record_call, 1)}
    with pytest.raises(KeyError) as ei:
        get(dsk, keys)
    assert "zz-missing" in str(ei.value)
    if not ORACLE:  # dask runs the rest first; cdask checks before running
        assert calls == []


def test_missing_dependency_is_a_literal(get):
    # dask's rule: a value that is not a key is a literal, even if it looks like one
    assert get({"a": (operator.add, "not-a-key", "!")}, "a") == "not-a-key!"


@pytest.mark.parametrize("keys", [{"a": 1}, {"a"}, ("x", [1]), ["a", {"b": 2}], [["a", {1}]]])
def test_unhashable_requested_key_raises_typeerror(get, keys):
    dsk = {"a": (record_call, 1), "b": 2}
    calls.clear()
    with pytest.raises(TypeError):
        get(dsk, keys)
    assert calls == []


@cdask_only
@pytest.mark.parametrize("bad", [0, -1])
def test_bad_num_workers(get, bad):
    with pytest.raises((ValueError, TypeError)):
        get({"a": 1}, "a", num_workers=bad)


# ---------------------------------------------------------------- task errors


def divide_by_zero_here(x):
    return x / 0


class CustomError(Exception):
    def __init__(self, msg, payload):
        super().__init__(msg)
        self.payload = payload


def raise_custom(x):
    raise CustomError("custom failure", payload=x)


def _notes(e):
    return getattr(e, "__notes__", None) or []


@pytest.mark.parametrize("num_workers", [1, 2])
@pytest.mark.parametrize("key", ["bad", ("bad", 3, 1), 12345])
def test_task_exception_reraised_with_note(get, key, num_workers):
    dsk = {"a": 1, key: (divide_by_zero_here, "a"), "c": (inc, key), "d": (inc, "a")}
    with pytest.raises(ZeroDivisionError) as ei:
        get(dsk, ["c", "d"], num_workers=num_workers)
    names = [f.name for f in traceback.extract_tb(ei.value.__traceback__)]
    assert "divide_by_zero_here" in names
    if not ORACLE:
        notes = _notes(ei.value)
        assert any(repr(key) in n or str(key) in n for n in notes), notes
    # the scheduler still works afterwards
    assert get({"a": 1, "b": (inc, "a")}, "b", num_workers=num_workers) == 2


def test_exception_from_nested_task(get):
    dsk = {"outer": (inc, (inc, (divide_by_zero_here, 1)))}
    with pytest.raises(ZeroDivisionError) as ei:
        get(dsk, "outer")
    if not ORACLE:
        assert any("outer" in n for n in _notes(ei.value))


def test_exception_type_and_attributes_preserved(get):
    with pytest.raises(CustomError) as ei:
        get({"x": (raise_custom, [1, 2])}, "x")
    assert ei.value.payload == [1, 2]
    assert str(ei.value) == "custom failure"
    assert "raise_custom" in [f.name for f in traceback.extract_tb(ei.value.__traceback__)]


def test_kernel_failure_raises_valueerror_with_note(get):
    dsk = {"a": (K.ones, 3), "f": (K.fail, "a"), "g": (K.sum, "f")}
    with pytest.raises(ValueError, match="cdask.kernels.fail was called") as ei:
        get(dsk, "g", num_workers=2)
    if not ORACLE:
        assert any("'f'" in n for n in _notes(ei.value)), _notes(ei.value)
    assert float(get(dsk, "a")[0]) == 1.0


started = []


def gate(seconds):
    time.sleep(seconds)
    return 0


def long_task(g, i):
    started.append(i)
    time.sleep(0.01)
    return i


def fail_now():
    raise ZeroDivisionError("fail now")


def test_no_new_tasks_after_failure(get):
    # 'gate' and 'bad' are the only ready tasks, so with two workers both
    # start at once; 'bad' fails immediately, 'gate' finishes later: none of
    # the tasks waiting for 'gate' may start after the failure.
    started.clear()
    dsk = {"gate": (gate, 0.3), "bad": (fail_now,)}
    for i in range(20):
        dsk[("long", i)] = (long_task, "gate", i)
    dsk["end"] = (sum, [("long", i) for i in range(20)])
    with pytest.raises(ZeroDivisionError):
        get(dsk, ["end", "bad"], num_workers=2)
    time.sleep(0.6)  # anything wrongly started would have recorded itself by now
    assert started == []
    assert get({"a": (inc, 1)}, "a", num_workers=2) == 2


def test_many_failures_in_a_row(get):
    for i in range(50):
        with pytest.raises(ZeroDivisionError):
            get({"a": i, "b": (divide_by_zero_here, "a")}, "b", num_workers=2)
    assert get({"a": 1, "b": (inc, "a")}, "b", num_workers=2) == 2


# ---------------------------------------------------------------- Stats


@cdask_only
def test_stats_counts():
    stats = cdask.Stats()
    dsk = {("x", i): (K.ones, 10) for i in range(8)}
    dsk["s"] = (K.sum, [("x", i) for i in range(8)])
    dsk["p"] = (float, "s")
    dsk["unused"] = (K.ones, 5)
    assert cdask.get(dsk, "p", stats=stats) == 80.0
    assert stats.total == 10  # 8 ones + sum + float; not 'unused'
    assert stats.done == stats.total
    for name in ("done", "total", "bytes_held", "peak_bytes"):
        assert type(getattr(stats, name)) is int, name
    assert isinstance(stats.elapsed, float) and stats.elapsed >= 0
    assert stats.records == []  # record=False


@cdask_only
def test_stats_reused_object_reflects_last_run():
    stats = cdask.Stats()
    cdask.get({("x", i): (inc, i) for i in range(5)}, [("x", i) for i in range(5)], stats=stats)
    assert stats.done == stats.total == 5
    cdask.get({"a": (inc, 1), "b": (inc, "a")}, "b", stats=stats)
    assert stats.done == stats.total == 2


@cdask_only
def test_stats_peak_bytes():
    stats = cdask.Stats()
    n = 100_000
    dsk = {"a": (K.ones, n), "b": (K.add, "a", "a"), "s": (K.sum, "b")}
    assert cdask.get(dsk, "s", stats=stats, num_workers=2) == 2.0 * n
    assert stats.peak_bytes >= 8 * n
    assert stats.bytes_held >= 0


@cdask_only
def test_stats_peak_bytes_shows_chain_is_freed():
    # a chain of 20 adds of 8 MB chunks: a scheduler that frees each chunk
    # once its last dependent ran never holds more than a few at a time
    n = 1_000_000
    nb = 8 * n
    dsk = {0: (K.ones, n)}
    for i in range(1, 20):
        dsk[i] = (K.add, i - 1, i - 1)
    dsk["s"] = (K.sum, 19)
    stats = cdask.Stats()
    assert cdask.get(dsk, "s", stats=stats, num_workers=2) == n * 2.0 ** 19
    assert stats.peak_bytes >= nb
    assert stats.peak_bytes <= 5 * nb, stats.peak_bytes


@cdask_only
@pytest.mark.parametrize("num_workers", [1, 3])
def test_stats_records(num_workers):
    stats = cdask.Stats()
    dsk = {"a": (K.ones, 1000), "b": (K.add, "a", "a"), "c": (describe, "b"),
           ("d", 1): (inc, 1), "e": (functools.partial(operator.add, 1), ("d", 1)),
           "alias": "e"}
    t0 = time.monotonic()
    cdask.get(dsk, ["c", "alias"], stats=stats, record=True, num_workers=num_workers)
    t1 = time.monotonic()
    recs = stats.records
    assert isinstance(recs, list)
    assert len(recs) == stats.done == stats.total
    by_key = {}
    for rec in recs:
        assert isinstance(rec, tuple) and len(rec) == 6, rec
        key, name, worker, start, end, nbytes = rec
        assert key in dsk
        assert key not in by_key, "a task recorded twice"
        by_key[key] = rec
        assert isinstance(name, str)
        # worker: the pool thread (its index in the pool), or -1 for the calling thread
        assert type(worker) is int and -1 <= worker < cdask._core.pool_info()["threads"]
        assert isinstance(start, float) and isinstance(end, float)
        assert t0 - 1e-3 <= start <= end <= t1 + 1e-3
        assert type(nbytes) is int and nbytes >= 0
    # num_workers bounds how many tasks run at once (any pool thread may take
    # a task, so more distinct threads than num_workers can show up)
    events = sorted([(r[3], 1) for r in recs] + [(r[4], -1) for r in recs],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, d in events:
        running += d
        peak = max(peak, running)
    assert peak <= num_workers
    assert {"a", "b", "c", ("d", 1), "e"} <= set(by_key)
    assert by_key["a"][1] == "ones" and by_key["b"][1] == "add"
    assert by_key["c"][1] == "describe" and by_key[("d", 1)][1] == "inc"
    assert by_key["a"][5] == 8000 and by_key["b"][5] == 8000
    # dependencies finish before their dependents start
    assert by_key["a"][4] <= by_key["b"][3] <= by_key["b"][4] <= by_key["c"][3]


@cdask_only
def test_callback_called_with_stats_on_calling_thread():
    seen = []
    stats = cdask.Stats()

    def cb(s):
        seen.append((s, threading.get_ident(), s.done, s.total))

    dsk = {"s": (K.spin, 0.3), "t": (K.spin, 0.3), "u": (operator.add, "s", "t")}
    cdask.get(dsk, "u", stats=stats, callback=cb, interval=0.02, num_workers=2)
    assert len(seen) >= 2
    assert all(s is stats for s, _, _, _ in seen)
    assert all(t == threading.get_ident() for _, t, _, _ in seen)
    # the last call is at the end of the run
    assert seen[-1][2] == seen[-1][3] == 3
    dones = [d for _, _, d, _ in seen]
    assert dones == sorted(dones)


@cdask_only
def test_callback_without_stats_argument():
    seen = []
    cdask.get({"a": (inc, 1)}, "a", callback=seen.append)
    assert len(seen) >= 1
    assert isinstance(seen[-1], cdask.Stats)
    assert seen[-1].done == seen[-1].total == 1


class Tracked:
    """Counts live instances; each holds a sizeable array."""
    live = 0
    lock = threading.Lock()

    def __init__(self, n=200_000):
        self.data = np.ones(n)
        with Tracked.lock:
            Tracked.live += 1

    def __del__(self):
        with Tracked.lock:
            Tracked.live -= 1


live_seen = []


def step(prev):
    gc.collect()  # nothing here is cyclic; this only rules out gc delays
    live_seen.append(Tracked.live)
    return Tracked()


@pytest.mark.parametrize("num_workers", [1, 2])
def test_intermediates_freed_during_run(get, num_workers):
    gc.collect()
    assert Tracked.live == 0
    live_seen.clear()
    n = 30
    dsk = {("t", 0): (Tracked,)}
    for i in range(1, n):
        dsk[("t", i)] = (step, ("t", i - 1))
    result = get(dsk, ("t", n - 1), num_workers=num_workers)
    assert isinstance(result, Tracked)
    assert len(live_seen) == n - 1
    # when step i starts, step i-1's output is live (its input), and maybe one
    # more not yet released; a scheduler holding every intermediate until the
    # end would see 1, 2, 3, ..., n-1
    assert max(live_seen) <= 3, live_seen
    gc.collect()
    assert Tracked.live == 1  # only the result
    del result
    gc.collect()
    assert Tracked.live == 0


def test_intermediates_freed_after_run(get):
    gc.collect()
    dsk = {("t", i): (Tracked, 10) for i in range(10)}
    dsk["n"] = (len, [("t", i) for i in range(10)])
    assert get(dsk, "n", num_workers=2) == 10
    gc.collect()
    assert Tracked.live == 0


# ---------------------------------------------------------------- concurrency


def test_threads_calling_get_at_once():
    from conftest import GET as get
    errors = []
    barrier = threading.Barrier(4)

    def worker(tid):
        try:
            barrier.wait(timeout=10)
            for rep in range(15):
                rng = random.Random(tid * 1000 + rep)
                dsk = random_graph(rng, 60, 4, 0.5)
                keys = list(dsk)
                compare_loosely(get(dsk, keys, num_workers=1 + rep % 3),
                                reference.get(dsk, keys), keys)
        except BaseException as e:  # noqa: BLE001
            errors.append((tid, e))

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread is stuck in get (deadlock?)"
    assert not errors, errors


def _inner_get(n, num_workers):
    from conftest import GET as get
    dsk = {("i", j): (operator.mul, j, n) for j in range(10)}
    dsk["s"] = (sum, [("i", j) for j in range(10)])
    return get(dsk, "s", num_workers=num_workers)


def _inner_kernel_get(n, num_workers):
    from conftest import GET as get
    return float(get({"o": (K.ones, n), "s": (K.sum, "o")}, "s", num_workers=num_workers))


@pytest.mark.parametrize("outer", [1, 2])
@pytest.mark.parametrize("inner", [1, 2])
def test_nested_get_does_not_deadlock(get, outer, inner):
    dsk = {("o", n): (_inner_get, n, inner) for n in range(6)}
    dsk.update({("k", n): (_inner_kernel_get, n, inner) for n in range(6)})
    dsk["total"] = (sum, [("o", n) for n in range(6)] + [("k", n) for n in range(6)])
    got = run_with_timeout(get, 30, dsk, "total", num_workers=outer)
    assert got == sum(45 * n for n in range(6)) + sum(range(6))


def _nested_twice(depth, num_workers):
    from conftest import GET as get
    if depth == 0:
        return 1
    dsk = {"a": (_nested_twice, depth - 1, num_workers),
           "b": (_nested_twice, depth - 1, num_workers),
           "c": (operator.add, "a", "b")}
    return get(dsk, "c", num_workers=num_workers)


@pytest.mark.parametrize("num_workers", [1, 2])
def test_deeply_nested_get(get, num_workers):
    assert run_with_timeout(_nested_twice, 30, 4, num_workers) == 16


def test_nested_get_error_propagates(get):
    def inner():
        from conftest import GET as g
        return g({"x": (divide_by_zero_here, 1)}, "x", num_workers=1)

    with pytest.raises(ZeroDivisionError):
        run_with_timeout(get, 30, {"outer": (inner,)}, "outer", num_workers=2)


# ---------------------------------------------------------------- workers and the GIL


def _workers_used(dsk, keys, **kw):
    """(number of distinct C workers used, stats); worker ids are not assumed
    to be below num_workers, only their number is bounded."""
    stats = cdask.Stats()
    cdask.get(dsk, keys, stats=stats, record=True, **kw)
    return len({rec[2] for rec in stats.records} - {-1}), stats


def _kernel_fanout(n=12):
    dsk = {("o", i): (K.spin, 0.002) for i in range(n)}
    dsk["s"] = (K.sum, [("o", i) for i in range(n)])
    return dsk, "s"


@cdask_only
def test_kernel_tasks_run_on_c_workers():
    dsk, key = _kernel_fanout()
    n, stats = _workers_used(dsk, key, num_workers=3)
    assert all(rec[2] >= 0 for rec in stats.records), stats.records
    assert 1 <= n <= 3


@cdask_only
def test_num_workers_default_from_config():
    dsk, key = _kernel_fanout()
    for _ in range(3):  # worker ids may vary from run to run; the count may not
        with cdask.config.set(num_workers=1):
            n, _ = _workers_used(dsk, key)
            assert n <= 1
        with cdask.config.set(num_workers=2):
            n, _ = _workers_used(dsk, key)
            assert n <= 2
    # an explicit argument wins over the configuration
    with cdask.config.set(num_workers=1):
        n, _ = _workers_used({("s", i): (K.spin, 0.05) for i in range(8)},
                             [("s", i) for i in range(8)], num_workers=4)
        assert n >= 2


@cdask_only
def test_num_workers_default_from_environment():
    import subprocess
    import sys
    code = ("import cdask\n"
            "s = cdask.Stats()\n"
            "d = {('o', i): (cdask.kernels.spin, 0.002) for i in range(12)}\n"
            "d['s'] = (cdask.kernels.sum, list(d))\n"
            "cdask.get(d, 's', stats=s, record=True)\n"
            "print(sorted({r[2] for r in s.records} - {-1}))\n")
    env = dict(__import__("os").environ, CDASK_NUM_WORKERS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert len(eval(r.stdout)) <= 1, r.stdout


@cdask_only
def test_kernels_in_a_run_release_the_gil():
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=count, daemon=True)
    t.start()
    try:
        time.sleep(0.01)
        before = counter[0]
        cdask.get({"a": (K.spin, 0.3), "b": (K.spin, 0.3), "c": (K.add, "a", "b")}, "c",
                  num_workers=2)
        after = counter[0]
    finally:
        stop.set()
        t.join(5)
    # a Python thread keeps running while the kernels spin on C workers
    assert after - before > 1000


@cdask_only
def test_kernels_run_in_parallel():
    stats = cdask.Stats()
    cdask.get({"a": (K.spin, 0.3), "b": (K.spin, 0.3), "c": (K.add, "a", "b")}, "c",
              num_workers=2, stats=stats, record=True)
    rec = {r[0]: r for r in stats.records}
    # the two spins overlap in time on two different workers
    assert rec["a"][2] != rec["b"][2]
    assert max(rec["a"][3], rec["b"][3]) < min(rec["a"][4], rec["b"][4])


def test_deeply_nested_task(get):
    task = "a"
    for _ in range(100):
        task = (operator.add, task, 1)
    assert get({"a": 0, "b": task}, "b") == 100


def fail_after(seconds):
    time.sleep(seconds)
    raise ZeroDivisionError("late failure")


@cdask_only
def test_failure_cancels_running_kernels():
    # spin polls cancellation: after another task fails, get does not wait
    # for the spinning kernel to finish its 8 s
    t0 = time.monotonic()
    with pytest.raises(ZeroDivisionError):
        cdask.get({"s": (K.spin, 8.0), "bad": (fail_after, 0.2),
                   "end": (operator.add, "s", "bad")}, "end", num_workers=2)
    assert time.monotonic() - t0 < 5.0
    assert float(cdask.get({"o": (K.ones, 2), "t": (K.sum, "o")}, "t")) == 2.0


@cdask_only
def test_block_shared_by_two_outputs_is_freed_once_read():
    # blocks read by two outputs' subtrees (a file's blocks that the days of two
    # months select from): the second consumer of each block is numbered right
    # after the block (graph.c: consumers pulled forward), so a block is not
    # held until the other output's turn
    n = 1_000_000
    nb, N = 8 * n, 20
    dsk = {("r", i): (K.ones, n) for i in range(N)}
    for g in ("a", "b"):
        for i in range(N):
            dsk[(g, i)] = (K.sum, ("r", i))
        dsk[g] = (K.sum, [(g, i) for i in range(N)])
    stats = cdask.Stats()
    assert list(cdask.get(dsk, ["a", "b"], stats=stats, num_workers=2)) == [N * n, N * n]
    assert stats.peak_bytes <= 6 * nb, stats.peak_bytes / nb
