"""Task graphs drawn as the talk draws them: ``Array.visualize`` and
``cdask.visualize``.

    x = cdask.ones((4, 4), chunks=2)
    y = ((x + 1) * 2) ** 3
    y.visualize()                        # the graph as built: add, multiply, power
    y.visualize(optimize_graph=True)     # as it runs: one fused(...) task a block
    y.visualize("graph.svg", color="order")

Drawn in dask's style, with Graphviz's ``dot`` layout, inputs at the bottom
and results at the top (``rankdir="BT"``, dask's default): every task is a circle
labelled with its operation (as a ``Profiler`` names it: ``add``, ``gemm``,
``fused(add, multiply, power)``), every key a box labelled with its block
index; an edge runs from each box to the circles of the tasks that read it,
and from each circle to its own box.  A key whose value is data, not a task,
is a box alone.  So a drawing has one box per key of the graph and one circle
per task.

``optimize_graph=False`` draws the graph the arrays were built as (every
layer's tasks); ``True`` draws ``cdask.optimize``'s graph, the one
``compute()`` runs but for the tasks that write the result: culled,
elementwise chains, masks and reductions fused, blocks read in place.
``color="order"`` fills the nodes by the order the C scheduler gives the
tasks (``Graph.order()``: pale first, dark last), the order the workers
take them when they have the choice.

The result: an ``IPython.display.Image`` (PNG, JPEG, GIF) or
``IPython.display.SVG`` that shows itself in Jupyter; the image's bytes
where IPython is not installed, and for PDF and dot's own text format.
With ``filename`` the image is also written there, in the format its
extension names (``format=`` overrides; a name without a known extension
gets ``.png``, as in dask).  Other keyword
arguments are Graphviz graph attributes (``rankdir="LR"``, ``size="8,8"``...).

Graphs of over ``MAX_NODES`` keys are refused (ValueError): dot takes
minutes on them and the picture shows nothing.  Needs pygraphviz, whose
wheels bundle Graphviz: ``pip install "cdask[diagnostics]"``.
"""

import os
from collections.abc import Mapping

from ..diagnostics import task_operation
from ..graph import Graph
from .compute import fused_graph
from .core import Array
from .layers import layer_tasks
from .utils import key_split

__all__ = ["visualize", "to_graphviz", "MAX_NODES"]

MAX_NODES = 2000
# optimize_graph=True fuses the graph first: past this many tasks as built,
# fusing it only to refuse to draw it would take longer than the user waits
_MAX_BEFORE_FUSION = 50 * MAX_NODES

IMAGE_FORMATS = ("png", "svg", "jpeg", "jpg", "gif", "pdf", "dot")

# order colours, first to last: pale yellow through orange to dark red
_ORDER_STOPS = [(0xff, 0xff, 0xcc), (0xfe, 0xd9, 0x76), (0xfd, 0x8d, 0x3c),
                (0xe3, 0x1a, 0x1c), (0x80, 0x00, 0x26)]


def _pygraphviz(what):
    try:
        import pygraphviz
    except ImportError as e:
        raise ImportError('%s needs pygraphviz (its wheels bundle Graphviz): '
                          'pip install "cdask[diagnostics]"' % what) from e
    return pygraphviz


def _too_big(n, optimized):
    hint = ("draw it after fusion, with optimize_graph=True, or " if not optimized else "")
    return ValueError(
        "cdask.visualize: the graph has %d %s, too many to draw (at most %d): %sdraw a "
        "smaller array or one with fewer, larger chunks"
        % (n, "keys" if optimized else "tasks", MAX_NODES, hint))


def _graph_of(args, optimize_graph):
    """The graph to draw for ``args`` (cdask Arrays, or task-graph mappings
    drawn as they are), refusing one too big to draw before making it."""
    arrays = [a for a in args if isinstance(a, Array)]
    for a in args:
        if not isinstance(a, (Array, Mapping)):
            raise TypeError("cdask.visualize draws cdask Arrays and task graphs (mappings of "
                            "key -> task), not %s" % type(a).__name__)
    if not args:
        raise TypeError("cdask.visualize needs an Array (or a graph) to draw")
    layers = {}
    for a in arrays:
        layers.update(a._layers)
    ntasks = sum(len(layer) for layer in layers.values()) + \
        sum(len(a) for a in args if not isinstance(a, Array))
    if not optimize_graph and ntasks > MAX_NODES:
        raise _too_big(ntasks, False)
    if optimize_graph and ntasks > _MAX_BEFORE_FUSION:
        raise _too_big(ntasks, False)
    g = Graph()
    if arrays and optimize_graph:
        keys = [k for a in arrays for k in a._keys_flat()]
        g.update(fused_graph(layers, {a.name for a in arrays}, keys))
    else:
        for layer in layers.values():
            g.update(layer_tasks(layer))
    for a in args:
        if not isinstance(a, Array):
            g.update(a)
    if len(g) > MAX_NODES:
        raise _too_big(len(g), True)
    return g


def _is_task(v):
    return type(v) is tuple and bool(v) and callable(v[0])


def _key_label(k):
    """A box's label: the block index of a block key, else the layer's op."""
    if type(k) is tuple and len(k) > 1 and all(type(i) is int for i in k[1:]):
        return ", ".join(map(str, k[1:]))
    name = k[0] if type(k) is tuple and k else k
    return key_split(str(name))


def _wrap(label, width=16):
    """A long label (a fused kernel's operations) over several lines, broken
    after its commas, so that its circle stays small."""
    lines, line = [], ""
    for part in label.split(" "):
        if line and len(line) + 1 + len(part) > width:
            lines.append(line)
            line = part
        else:
            line = line + " " + part if line else part
    lines.append(line)
    return "\n".join(lines)


def _order_colour(t):
    """The colour at t in [0, 1] of the order gradient, as #rrggbb."""
    t = min(max(t, 0.0), 1.0) * (len(_ORDER_STOPS) - 1)
    i = min(int(t), len(_ORDER_STOPS) - 2)
    f = t - i
    a, b = _ORDER_STOPS[i], _ORDER_STOPS[i + 1]
    return "#%02x%02x%02x" % tuple(round(x + (y - x) * f) for x, y in zip(a, b))


def to_graphviz(g, color=None, rankdir="BT", **graph_attr):
    """A ``pygraphviz.AGraph`` of the task graph ``g`` (see the module
    docstring): a box per key, a circle per task; ``color="order"`` fills
    them by the scheduler's order."""
    if color not in (None, "order"):
        raise ValueError("cdask.visualize: color must be None or 'order', got %r" % (color,))
    pgv = _pygraphviz("cdask.visualize")
    if not isinstance(g, Graph):
        gg = Graph()
        gg.update(g)
        g = gg
    deps = g.dependencies()
    order = g.order() if color == "order" else None
    last = max(1, len(g) - 1)
    ag = pgv.AGraph(directed=True, strict=False, rankdir=rankdir,
                    **{k: str(v) for k, v in graph_attr.items()})
    ag.node_attr.update(fontname="Helvetica", fontsize="10")
    ag.edge_attr.update(arrowsize="0.6", color="#555555")
    ids = {k: i for i, k in enumerate(g)}
    for k, i in ids.items():
        v = g[k]
        style = {}
        if order is not None:
            t = order[k] / last
            style = {"style": "filled", "fillcolor": _order_colour(t),
                     "fontcolor": "white" if t > 0.7 else "black"}
        where = str(k) + ("  (order %d)" % order[k] if order is not None else "")
        ag.add_node("d%d" % i, label=_key_label(k), shape="box", tooltip=where, **style)
        if _is_task(v) or deps[k]:
            ag.add_node("t%d" % i, label=_wrap(task_operation(v) or "alias"), shape="circle",
                        tooltip=where, **style)
            ag.add_edge("t%d" % i, "d%d" % i)
            for d in deps[k]:
                ag.add_edge("d%d" % ids[d], "t%d" % i)
    return ag


def _target(filename, format):
    """(path or None, format) as dask picks them."""
    if format is not None:
        format = str(format).lower()
    if filename is None:
        fmt, path = format or "png", None
    else:
        path = os.fspath(filename)
        ext = os.path.splitext(path)[1][1:].lower()
        if format is None:
            fmt = ext if ext in IMAGE_FORMATS else "png"
            if ext != fmt:
                path = "%s.%s" % (path, fmt)
        else:
            fmt = format
            if ext != fmt:
                path = "%s.%s" % (path, fmt)
    if fmt not in IMAGE_FORMATS:
        raise ValueError("cdask.visualize: format must be one of %s, got %r"
                         % (", ".join(IMAGE_FORMATS), fmt))
    return path, fmt


def _shown(data, fmt):
    """The image as IPython shows it inline, or its bytes without IPython."""
    try:
        from IPython.display import SVG, Image
    except ImportError:
        return data
    if fmt == "svg":
        return SVG(data=data)
    if fmt in ("png", "jpeg", "jpg", "gif"):
        return Image(data=data, format="jpeg" if fmt == "jpg" else fmt)
    return data


def visualize(*args, filename=None, format=None, optimize_graph=False, color=None,
              engine=None, **kwargs):
    """Draw the task graph of one or more Arrays (see the module docstring):
    before fusion, or with ``optimize_graph=True`` as compute() would run
    it; ``color="order"`` colours the nodes by the scheduler's order.
    Returns an IPython Image/SVG (the image's bytes without IPython); with
    ``filename``, writes the image too.  Other keywords are Graphviz graph
    attributes."""
    if engine not in (None, "graphviz", "pygraphviz"):
        raise ValueError("cdask.visualize draws with Graphviz (pygraphviz); engine=%r is "
                         "not available" % (engine,))
    path, fmt = _target(filename, format)
    _pygraphviz("cdask.visualize")
    ag = to_graphviz(_graph_of(args, optimize_graph), color=color, **kwargs)
    data = ag.draw(format="jpeg" if fmt == "jpg" else fmt, prog="dot")
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return _shown(data, fmt)
