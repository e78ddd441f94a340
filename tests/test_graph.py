"""cdask.Graph (docs/api-core.md, "Graph").

Covers: the Mapping interface (isinstance, lookups, views, get, ==),
mutation (set, del, update) and that analyses follow mutations, merge and
cdask.merge, cull, dependencies, dependents, toposort, order and find_cycle
checked against straightforward Python implementations (tests/reference.py,
which follows dask's rules: a tuple with a callable first is a task, a list is
recursed into, a hashable value that is a key is a dependency) on
hand-written and random graphs, comparison with dask.core.get_dependencies
and dask.order.order where meaningful, large graphs (1e5-node chain) and
cdask.get running a Graph.

All tests need the real cdask.Graph: they are skipped in oracle mode.
"""
import collections.abc
import functools
import operator
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdask
import reference

pytestmark = pytest.mark.cdask_only


def inc(x):
    return x + 1


def add(*xs):
    return sum(xs)


def identity(x):
    return x


SAMPLE = {
    "a": 1,
    "b": (inc, "a"),
    ("c", 0): (add, "a", "b"),
    ("c", 1): (add, [("c", 0), ["b", 5]], (inc, "a")),
    7: (inc, ("c", 1)),
    2.5: 7,  # alias of the int key 7
    "lit": "not-a-key",
    "arr": np.arange(3),
    "d": {"p": 1},  # dict literal (no keys inside)
    "tup": (1, 2, 3),  # tuple literal, not a task
}

SAMPLE_DEPS = {
    "a": set(), "b": {"a"}, ("c", 0): {"a", "b"}, ("c", 1): {("c", 0), "b", "a"},
    7: {("c", 1)}, 2.5: {7}, "lit": set(), "arr": set(), "d": set(), "tup": set(),
}


def check_topological(order_keys, dsk):
    """Every key once, each after its dependencies."""
    assert len(order_keys) == len(dsk)
    assert set(order_keys) == set(dsk)
    pos = {k: i for i, k in enumerate(order_keys)}
    for k, deps in reference.dependencies(dsk).items():
        for d in deps:
            assert pos[d] < pos[k], (d, k)


def check_priorities(prio, dsk):
    assert set(prio) == set(dsk)
    assert all(type(v) is int and v >= 0 for v in prio.values())
    if dsk:
        assert min(prio.values()) == 0
    for k, deps in reference.dependencies(dsk).items():
        for d in deps:
            assert prio[d] < prio[k], (d, k, prio[d], prio[k])


def check_cycle(cycle, dsk):
    assert isinstance(cycle, list) and cycle
    deps = reference.dependencies(dsk)
    assert len(set(cycle)) == len(cycle)
    for i, k in enumerate(cycle):
        nxt = cycle[(i + 1) % len(cycle)]
        assert nxt in deps[k], (k, nxt)


# ---------------------------------------------------------------- Mapping


def test_is_a_mapping():
    g = cdask.Graph(SAMPLE)
    assert isinstance(g, collections.abc.Mapping)
    assert isinstance(cdask.Graph(), collections.abc.Mapping)
    assert not isinstance(g, dict)


def test_constructors():
    assert len(cdask.Graph()) == 0
    assert len(cdask.Graph(None)) == 0
    assert cdask.Graph({}) == {}
    g = cdask.Graph(SAMPLE)
    assert cdask.Graph(g) == SAMPLE
    assert type(cdask.Graph(g)) is type(g)


def test_lookups_and_views():
    g = cdask.Graph(SAMPLE)
    assert len(g) == len(SAMPLE)
    assert set(iter(g)) == set(SAMPLE)
    for k, v in SAMPLE.items():
        assert k in g
        assert g[k] is v
        assert g.get(k) is v
    assert "missing" not in g
    assert ("c", 2) not in g
    with pytest.raises(KeyError):
        g["missing"]
    assert g.get("missing") is None
    assert g.get("missing", 42) == 42
    assert set(g.keys()) == set(SAMPLE)
    assert len(g.keys()) == len(SAMPLE)
    items = list(g.items())
    assert len(items) == len(SAMPLE)
    assert all(SAMPLE[k] is v for k, v in items)
    values = list(g.values())
    assert len(values) == len(SAMPLE)
    assert {id(v) for v in values} == {id(v) for v in SAMPLE.values()}
    assert dict(g) == SAMPLE or all(dict(g)[k] is SAMPLE[k] for k in SAMPLE)


def test_equality():
    d = {"a": 1, "b": (inc, "a"), ("x", 1): "a"}
    g = cdask.Graph(d)
    assert g == d
    assert d == g
    assert g == cdask.Graph(d)
    assert not (g != d)
    assert g != {"a": 1}
    assert g != {"a": 2, "b": (inc, "a"), ("x", 1): "a"}
    assert g != dict(d, extra=1)
    assert g != cdask.Graph()
    assert g != [("a", 1)]


def test_mutation():
    g = cdask.Graph({"a": 1})
    g["b"] = (inc, "a")
    g[("t", 1)] = (inc, "b")
    assert len(g) == 3 and g["b"] == (inc, "a")
    assert g.dependencies(("t", 1)) == {"b"}
    del g["b"]
    assert "b" not in g and len(g) == 2
    with pytest.raises(KeyError):
        del g["b"]
    g.update({"b": 10, "c": (add, "a", "b")})
    assert g == {"a": 1, "b": 10, ("t", 1): (inc, "b"), "c": (add, "a", "b")}
    g.update(cdask.Graph({"z": "c"}))
    assert g["z"] == "c"
    with pytest.raises(TypeError):
        g[["unhashable"]] = 1


def test_analysis_follows_mutation():
    g = cdask.Graph({"a": 1, "b": (inc, "a"), "c": (inc, "b")})
    assert g.dependencies("c") == {"b"}
    assert g.dependents()["a"] == {"b"}
    assert g.toposort() == ["a", "b", "c"]
    assert g.find_cycle() is None
    g["c"] = (add, "a", "b")
    assert g.dependencies("c") == {"a", "b"}
    assert g.dependents()["a"] == {"b", "c"}
    g["a"] = (inc, "c")  # now a cycle a -> c -> a
    cyc = g.find_cycle()
    assert cyc is not None and set(cyc) <= {"a", "b", "c"} and "a" in cyc
    check_cycle(cyc, dict(g))
    with pytest.raises(ValueError):
        g.toposort()
    del g["a"]
    g["a"] = 5
    assert g.find_cycle() is None
    check_topological(g.toposort(), dict(g))
    assert cdask.get(g, "c") == 5 + 6
    g.update({"a": 10})
    assert cdask.get(g, "c") == 10 + 11


# ---------------------------------------------------------------- merge


def test_merge_method():
    g1 = cdask.Graph({"a": 1, "b": (inc, "a")})
    d2 = {"b": 20, "c": (inc, "b")}
    g3 = cdask.Graph({"c": 300})
    m = g1.merge(d2, g3)
    assert type(m) is type(g1)
    assert m == {"a": 1, "b": 20, "c": 300}
    assert g1 == {"a": 1, "b": (inc, "a")}  # unchanged
    assert m is not g1
    assert g1.merge() == g1 and g1.merge() is not g1


def test_merge_function():
    a = {"a": 1}
    b = cdask.Graph({"b": (inc, "a")})
    c = {"a": 2}
    m = cdask.merge(a, b, c)
    assert isinstance(m, cdask.Graph)
    assert m == {"a": 2, "b": (inc, "a")}
    assert cdask.get(m, "b") == 3
    assert cdask.merge() == {}
    assert cdask.merge(a) == a and isinstance(cdask.merge(a), cdask.Graph)


def test_merge_is_independent_of_inputs():
    g = cdask.Graph({"a": 1})
    m = cdask.merge(g, {"b": 2})
    m["c"] = 3
    g["z"] = 0
    assert "c" not in g and "z" not in m


# ---------------------------------------------------------------- dependencies etc.


def test_sample_dependencies():
    g = cdask.Graph(SAMPLE)
    assert g.dependencies() == SAMPLE_DEPS
    for k in SAMPLE:
        assert g.dependencies(k) == SAMPLE_DEPS[k], k
    assert reference.dependencies(SAMPLE) == SAMPLE_DEPS
    with pytest.raises(KeyError):
        g.dependencies("missing")


def test_sample_dependents():
    g = cdask.Graph(SAMPLE)
    dep = g.dependents()
    assert set(dep) == set(SAMPLE)
    assert dep["a"] == {"b", ("c", 0), ("c", 1)}
    assert dep[7] == {2.5}
    assert dep[2.5] == set()
    assert dep == reference.dependents(SAMPLE)


def test_sample_toposort_order():
    g = cdask.Graph(SAMPLE)
    check_topological(g.toposort(), SAMPLE)
    prio = g.order()
    check_priorities(prio, SAMPLE)
    assert g.find_cycle() is None


def test_key_rules():
    # int/float/tuple/str keys; an int literal equal to a key is a dependency;
    # lists are walked, unhashable literals are skipped, strings that are not
    # keys are literals; a tuple whose first element is not callable is a
    # literal, unless it is a key itself.
    dsk = {
        1: 0,
        1.5: 0,
        ("t", 1): 0,
        "s": 0,
        "t1": (add, 1, 2, 3),  # 1 is a key, 2 and 3 are not
        "t2": (identity, [[1.5], ("t", 1), "nope", np.ones(2), {"s": "zz"}, {7, 8}]),
        "t3": (identity, (2, 3)),  # tuple literal, not a key
        "t4": ["s", (inc, "s")],
        "t5": ("t", 1),  # alias
        "t6": (functools.partial(add, 1), "s"),
        "t7": (identity, (inc, (inc, [1, [("t", 1)]]))),
    }
    g = cdask.Graph(dsk)
    expect = {1: set(), 1.5: set(), ("t", 1): set(), "s": set(), "t1": {1},
              "t2": {1.5, ("t", 1)}, "t3": set(), "t4": {"s"}, "t5": {("t", 1)},
              "t6": {"s"}, "t7": {1, ("t", 1)}}
    assert reference.dependencies(dsk) == expect
    assert g.dependencies() == expect


def test_dependencies_match_dask():
    from dask.core import get_dependencies
    g = cdask.Graph(SAMPLE)
    for k in SAMPLE:
        assert g.dependencies(k) == set(get_dependencies(SAMPLE, k)), k


def test_toposort_and_order_valid_like_dask():
    from dask.order import order as dask_order
    rng = random.Random(3)
    dsk = random_structure(rng, 150)
    g = cdask.Graph(dsk)
    check_topological(g.toposort(), dsk)
    check_priorities(g.order(), dsk)
    dprio = dask_order(dsk)
    check_priorities(dprio, dsk)  # the same validity dask's own order has


@pytest.mark.parametrize("dsk, members", [
    ({"a": (inc, "a")}, {"a"}),
    ({"a": "b", "b": "a"}, {"a", "b"}),
    ({"x": 1, "a": (inc, "b"), "b": (add, "x", ["c"]), "c": (inc, (inc, "a")), "d": (inc, "c")},
     {"a", "b", "c"}),
    ({("k", 0): (inc, ("k", 1)), ("k", 1): (inc, ("k", 2)), ("k", 2): [("k", 0)], 9: 1},
     {("k", 0), ("k", 1), ("k", 2)}),
    ({1: (inc, 2), 2: (inc, 1)}, {1, 2}),
])
def test_find_cycle(dsk, members):
    g = cdask.Graph(dsk)
    cyc = g.find_cycle()
    assert cyc is not None
    assert set(cyc) <= members
    check_cycle(cyc, dsk)
    for method in (g.toposort, g.order):
        with pytest.raises(ValueError) as ei:
            method()
        assert any(repr(k) in str(ei.value) or str(k) in str(ei.value) for k in members)
    with pytest.raises(ValueError):
        cdask.get(g, next(iter(members)))


def test_self_cycle_is_one_key():
    assert cdask.Graph({"a": 1, "b": (inc, "b")}).find_cycle() == ["b"]


# ---------------------------------------------------------------- cull


def test_cull():
    g = cdask.Graph(SAMPLE)
    c = g.cull(7)
    assert isinstance(c, cdask.Graph)
    assert set(c) == {7, ("c", 1), ("c", 0), "b", "a"}
    assert all(c[k] is SAMPLE[k] for k in c)
    assert set(g.cull([2.5, ["lit"]])) == {2.5, 7, ("c", 1), ("c", 0), "b", "a", "lit"}
    assert set(g.cull("a")) == {"a"}
    assert set(g.cull(("c", 0))) == {("c", 0), "a", "b"}
    assert set(g.cull([])) == set()
    assert g == SAMPLE  # unchanged
    with pytest.raises(KeyError):
        g.cull("missing")
    with pytest.raises(KeyError):
        g.cull(["a", ["missing"]])


def test_cull_result_runs():
    g = cdask.Graph({"a": 1, "b": (inc, "a"), "boom": (operator.truediv, 1, 0)})
    c = g.cull("b")
    assert set(c) == {"a", "b"}
    assert cdask.get(c, "b") == 2


@pytest.mark.slow
def test_large_chain_cull_toposort():
    n = 100_000
    dsk = {("c", 0): 0}
    for i in range(1, n):
        dsk[("c", i)] = (inc, ("c", i - 1))
    for i in range(n):
        dsk[("side", i)] = (inc, ("c", i))
    g = cdask.Graph(dsk)
    c = g.cull(("c", n - 1))
    assert len(c) == n
    assert ("side", 0) not in c
    half = g.cull([("c", n // 2), [("side", 10)]])
    assert len(half) == n // 2 + 2
    topo = c.toposort()
    assert topo[0] == ("c", 0) and topo[-1] == ("c", n - 1)
    deps = g.dependencies()
    assert deps[("c", n - 1)] == {("c", n - 2)}
    assert len(g.dependents()[("c", 5)]) == 2
    prio = c.order()
    assert prio[("c", 0)] == 0 and prio[("c", n - 1)] == max(prio.values())
    assert g.find_cycle() is None
    assert cdask.get(c, ("c", n - 1)) == n - 1


# ---------------------------------------------------------------- random graphs


def random_structure(rng, n, cycle=False):
    """Random graph structure (not meant to run) using every kind of value.

    Values refer only to earlier keys, so the graph is a DAG, unless cycle is
    true: then one key is made to refer to a later key that depends on it.
    """
    keys = []
    dsk = {}

    def element(depth):
        r = rng.random()
        if keys and r < 0.35:
            return rng.choice(keys)
        if depth < 3 and r < 0.55:
            return (rng.choice([add, identity, inc]),) + tuple(
                element(depth + 1) for _ in range(rng.randint(0, 3)))
        if depth < 3 and r < 0.7:
            return [element(depth + 1) for _ in range(rng.randint(0, 3))]
        return rng.choice([
            lambda: rng.randrange(50),  # ints below every int key
            lambda: "lit-%d" % rng.randrange(5),
            lambda: None,
            lambda: np.arange(2),
            lambda: {"p": rng.randrange(3)},
            lambda: {1, 2},
            lambda: (rng.randrange(50), rng.randrange(50)),
            lambda: frozenset([1]),
            lambda: 0.5,
        ])()

    for i in range(n):
        kind = rng.randrange(4)
        key = ["k%d" % i, ("k", i), 1000 + i, 1000.5 + i][kind]
        dsk[key] = element(0)
        keys.append(key)
    if cycle and n >= 2:
        i = rng.randrange(n - 1)
        j = rng.randrange(i + 1, n)
        # make keys[j] depend on keys[i] and keys[i] depend on keys[j]
        dsk[keys[j]] = (add, keys[i], dsk[keys[j]])
        dsk[keys[i]] = (add, keys[j], dsk[keys[i]])
    return dsk


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 120), seed=st.integers(0, 2 ** 32 - 1))
def test_random_graph_analyses(n, seed):
    from dask.core import get_dependencies
    rng = random.Random(seed)
    dsk = random_structure(rng, n)
    g = cdask.Graph(dsk)
    deps = reference.dependencies(dsk)
    assert g.dependencies() == deps
    for k in rng.sample(list(dsk), min(n, 10)):
        assert g.dependencies(k) == deps[k]
        assert deps[k] == set(get_dependencies(dsk, k))
    assert g.dependents() == reference.dependents(dsk)
    assert g.find_cycle() is None
    check_topological(g.toposort(), dsk)
    check_priorities(g.order(), dsk)
    if n:
        want = rng.sample(list(dsk), rng.randint(1, min(n, 5)))
        culled = g.cull(want)
        assert set(culled) == set(reference.toposort(dsk, want))
        assert all(culled[k] is dsk[k] for k in culled)
        # a nested request culls the same
        assert set(g.cull([want[:1], [want[1:]]])) == set(culled)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 80), seed=st.integers(0, 2 ** 32 - 1))
def test_random_graph_cycles(n, seed):
    rng = random.Random(seed)
    dsk = random_structure(rng, n, cycle=True)
    assert reference.find_cycle(dsk) is not None
    g = cdask.Graph(dsk)
    cyc = g.find_cycle()
    assert cyc is not None
    check_cycle(cyc, dsk)
    with pytest.raises(ValueError):
        g.toposort()


# ---------------------------------------------------------------- get with a Graph


def test_get_accepts_graph():
    d = {"a": 1, "b": (inc, "a"), ("c", 1): (add, "a", "b", (inc, "b")), "al": ("c", 1),
         "k": (cdask.kernels.ones, 3), "s": (cdask.kernels.sum, ["k", "k"])}
    g = cdask.Graph(d)
    keys = ["al", ["b", "s"], ("c", 1)]
    got = cdask.get(g, keys, num_workers=2)
    exp = reference.get(d, keys)
    assert got[0] == exp[0] == 6
    assert list(got[1]) == [2, 6.0]
    assert got[2] == 6
    assert cdask.get(g, "s") == 6.0
    assert g == d  # not mutated


def test_get_graph_twice_and_after_merge():
    g = cdask.Graph({("x", i): (inc, i) for i in range(50)})
    g["total"] = (add, *[("x", i) for i in range(50)])
    assert cdask.get(g, "total") == sum(range(1, 51))
    assert cdask.get(g, "total", num_workers=3) == sum(range(1, 51))
    m = g.merge({("x", 0): 100})
    assert cdask.get(m, "total") == sum(range(1, 51)) - 1 + 100
    assert cdask.get(g, "total") == sum(range(1, 51))


def test_graph_runs_under_dask():
    import dask.threaded
    from dask.core import get_dependencies
    g = cdask.Graph({"a": 1, "b": (inc, "a"), "c": (add, "a", "b")})
    assert dask.threaded.get(g, "c") == 3
    assert get_dependencies(g, "c") == {"a", "b"}
