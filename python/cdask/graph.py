"""Task graphs: :class:`Graph` and :func:`merge`.

``Graph`` is the C type ``cdask._core.Graph`` itself, not a Python subclass.
It holds a plain dict of ``key -> task`` (dask's graph format) and a compact
dependency analysis built on demand by the C plan compiler and dropped on
every mutation.  Lookups, ``len``, iteration, the views and ``==`` go straight
to the dict, so a Graph reads as fast as a dict, and ``cdask.get`` runs a
Graph without copying it.

Why registration instead of ``class Graph(_core.Graph, Mapping)``:
``collections.abc.Mapping.register`` (done by the C module at import, repeated
here so it holds however this module is reached) makes
``isinstance(g, Mapping)`` true for Graph and its subclasses while keeping
``type(g) is cdask._core.Graph``.  A Python subclass mixing in Mapping would
put an ABCMeta metaclass and Python-level mixin methods in front of the C
type, make the C code that creates Graphs (``merge``, ``cull``, ``copy``) go
through Python, and give every Graph a ``__dict__``; all the Mapping methods
(``keys``, ``values``, ``items``, ``get``, ``__contains__``, ``__eq__``) are
implemented in C anyway.

Methods beyond the Mapping interface (see docs/api-core.md, "Graph"):

* ``g[key] = task``, ``del g[key]``, ``g.update(mapping)``, ``g.copy()``
* ``g.merge(*others)`` and :func:`merge` -> a new Graph, later graphs win
* ``g.cull(keys)`` -> a new Graph with only what ``keys`` need
* ``g.dependencies(key=None)``, ``g.dependents()``
* ``g.toposort()``, ``g.order()``: the scheduler's priorities, a topological
  order; both raise ValueError naming a key on a cycle
* ``g.find_cycle()`` -> ``[k1, k2, ..., kn]`` where each key depends on the
  next and ``kn`` depends on ``k1`` (``[k]`` for a key that depends on
  itself), or None
* ``g.nbytes_overhead(analyze=False)``: bytes held beyond the keys and tasks
"""

from collections.abc import Mapping

from ._core import Graph, merge

Mapping.register(Graph)

__all__ = ["Graph", "merge"]
