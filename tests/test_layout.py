"""The package's imports form layers: no module imports another in a circle,
and none reaches into another module's private names.

Every import counts, at module level or inside a function, and so does an
attribute read through an imported module (``reductions._chunk_sum``): an
import inside a function is still a dependency, only a later one.  The one
exemption is ``cdask.array.methods``, which sets the Array's methods from
every layer; no module may import it but ``cdask.array`` (the package's
``__init__``), so it cannot close a circle.

Imports of names that are themselves modules (``from . import _core``) are
dependencies on those modules, not on the package that holds them.
"""

import ast
import os
import sys

import pytest

import cdask

PKG_DIR = os.path.dirname(cdask.__file__)
EXEMPT = {"cdask.array.methods"}


def _modules():
    mods = {}
    for dirpath, _, files in os.walk(PKG_DIR):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, os.path.dirname(PKG_DIR))[:-3].replace(os.sep, ".")
            if rel.endswith(".__init__"):
                rel = rel[: -len(".__init__")]
            mods[rel] = path
    # the C extension is a module too
    mods["cdask._core"] = None
    return mods


MODULES = _modules()


def _imports(mod, path):
    """(edges, private uses) of one module: edges as {target module}, private
    uses as [(target module, name, line)]."""
    tree = ast.parse(open(path).read(), path)
    is_pkg = path.endswith("__init__.py")
    pkg = mod if is_pkg else mod.rsplit(".", 1)[0]
    edges = set()
    private = []
    aliases = {}          # local name -> module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in MODULES:
                    edges.add(a.name)
                    if a.asname:
                        aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("cdask"):
                continue
            for a in node.names:
                sub = target + "." + a.name
                if sub in MODULES:
                    edges.add(sub)
                    aliases[a.asname or a.name] = sub
                    continue
                edges.add(target)
                if a.name.startswith("_") and not a.name.startswith("__") and target != mod:
                    private.append((target, a.name, node.lineno))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = aliases.get(node.value.id)
            if target and target != mod and node.attr.startswith("_") and \
                    not node.attr.startswith("__") and target + "." + node.attr not in MODULES:
                private.append((target, node.attr, node.lineno))
    edges.discard(mod)
    return edges, private


GRAPH = {}
PRIVATE = {}
for _m, _p in MODULES.items():
    if _p is not None:
        GRAPH[_m], PRIVATE[_m] = _imports(_m, _p)


def _cycles(graph):
    """The strongly connected components with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = {m: {t for t in e if t not in EXEMPT} for m, e in GRAPH.items() if m not in EXEMPT}
    assert _cycles(graph) == []


def test_only_the_package_imports_the_wiring_module():
    for m, e in GRAPH.items():
        for x in EXEMPT:
            if x in e:
                assert m == "cdask.array", "%s imports %s" % (m, x)


def test_no_private_names_across_modules():
    bad = ["%s:%d uses %s.%s" % (m, line, t, n)
           for m, uses in sorted(PRIVATE.items()) for t, n, line in uses]
    assert bad == []


def test_the_checks_see_a_circle_and_a_private_import():
    # the checks themselves can fail
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    src = "from .core import _hidden\nfrom . import reductions as r\nr._chunk\n"
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(src)
    try:
        _, priv = _imports("cdask.array.example", f.name)
    finally:
        os.unlink(f.name)
    assert ("cdask.array.core", "_hidden", 1) in priv
    assert ("cdask.array.reductions", "_chunk", 3) in priv


@pytest.mark.parametrize("mod", sorted(m for m, p in MODULES.items() if p is not None))
def test_every_module_imports_on_its_own(mod):
    # a fresh interpreter importing just this module (no earlier import that
    # happened to break a circle for it)
    import subprocess

    r = subprocess.run([sys.executable, "-c", "import %s" % mod], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
