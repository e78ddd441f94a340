"""The text and HTML reprs of an Array and its SVG chunk grid (``to_svg``):
well-formed markup for 0-d to 5-d arrays and for unknown chunk sizes, the
facts they show, and that they cost nothing like a task graph - arrays of
ten million chunks are drawn without one task being made."""

import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest

import cdask
import cdask as da
from cdask.array.layers import Blockwise
from cdask.array.svg import svg

SVG_NS = "{http://www.w3.org/2000/svg}"


class _Checker(HTMLParser):
    """Parses HTML, recording the rows of cells of every (nested) table and
    any tag that does not balance."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.rows = [], [], []
        self._rows, self._cells = [], []      # open rows, open cells (innermost last)

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cells.append([])

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes %s" % (tag, self.stack[-1:] or "nothing"))
            return
        self.stack.pop()
        if tag == "tr":
            self.rows.append(self._rows.pop())
        elif tag in ("td", "th"):
            self._rows[-1].append("".join(self._cells.pop()).strip())

    def handle_data(self, data):
        if self._cells:
            self._cells[-1].append(data)


def parse_html(text):
    """The rows of the facts table ({header: [cells]}) and the SVG root (or
    None); fails unless the HTML balances and the SVG is XML."""
    p = _Checker()
    p.feed(text)
    p.close()
    assert p.errors == []
    assert p.stack == []
    facts = {r[0]: r[1:] for r in p.rows if r and r[0] in
             ("Bytes", "Shape", "Chunks", "Graph", "Type")}
    found = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(found) <= 1
    return facts, (parse_svg(found[0]) if found else None)


def parse_svg(text):
    root = ET.fromstring(text)
    assert root.tag == SVG_NS + "svg"
    assert float(root.get("width")) > 0 and float(root.get("height")) > 0
    return root


def lines(root):
    return root.findall(".//%sline" % SVG_NS)


def texts(root):
    return [t.text for t in root.iter(SVG_NS + "text")]


def blockwise_layers(x):
    out = [layer for layer in x._layers.values() if isinstance(layer, Blockwise)]
    assert out
    return out


# ---------------------------------------------------------------------------
# well-formed for every number of dimensions


@pytest.mark.parametrize("shape,chunks", [
    ((), ()),
    ((10,), 3),
    ((10, 4), (5, 2)),
    ((6, 8, 4), (2, 3, 4)),
    ((4, 5, 6, 7), (2, 5, 3, 7)),
    ((3, 4, 5, 6, 7), (1, 2, 5, 3, 4)),
])
def test_html_and_svg_are_well_formed(shape, chunks):
    x = da.ones(shape, chunks=chunks)
    facts, root = parse_html(x._repr_html_())
    assert facts["Shape"] == [str(shape), str(tuple(x.chunksize))]
    assert facts["Chunks"][0].startswith("%d chunk" % x.npartitions)
    if not shape:
        assert root is None
        with pytest.raises(NotImplementedError, match="0-d"):
            x.to_svg()
        return
    assert root is not None
    root = parse_svg(x.to_svg())
    # every axis length is written on the drawing
    for n in shape:
        assert str(n) in texts(root)


def test_facts_2d():
    x = da.ones((10, 4), chunks=(5, 2))
    facts, _ = parse_html(x._repr_html_())
    assert facts["Bytes"] == ["320 B", "80 B"]
    assert facts["Shape"] == ["(10, 4)", "(5, 2)"]
    assert facts["Chunks"] == ["4 chunks (2 \u00d7 2)"]
    assert facts["Graph"] == ["4 tasks in 1 graph layer"]
    assert facts["Type"] == ["float64", "numpy.ndarray"]
    y = (x + 1).astype(np.int32)
    facts, _ = parse_html(y._repr_html_())
    assert facts["Graph"] == ["12 tasks in 3 graph layers"]
    assert facts["Type"] == ["int32", "numpy.ndarray"]
    assert facts["Bytes"] == ["160 B", "40 B"]


def test_facts_0d_and_1d():
    facts, root = parse_html(da.ones((), dtype=np.int8)._repr_html_())
    assert root is None
    assert facts["Bytes"] == ["1 B", "1 B"]
    assert facts["Chunks"] == ["1 chunk"]
    assert facts["Graph"] == ["1 task in 1 graph layer"]
    facts, _ = parse_html(da.arange(10, chunks=3)._repr_html_())
    assert facts["Shape"] == ["(10,)", "(3,)"]
    assert facts["Chunks"] == ["4 chunks"]
    assert facts["Bytes"] == ["80 B", "24 B"]


def test_repr_one_line():
    x = da.ones((10, 4), chunks=(5, 2))
    assert repr(x) == ("cdask.Array<ones, shape=(10, 4), dtype=float64, chunksize=(5, 2), "
                       "chunktype=numpy.ndarray>")
    assert repr(da.ones((), dtype=np.int8)) == (
        "cdask.Array<ones, shape=(), dtype=int8, chunksize=(), chunktype=numpy.ndarray>")
    assert "\n" not in repr(x + 1)


def test_svg_size_config():
    x = da.ones((10, 4), chunks=(5, 2))
    small = parse_svg(x.to_svg(size=100))
    big = parse_svg(x.to_svg(size=500))
    assert float(big.get("height")) > 3 * float(small.get("height"))
    assert x.to_svg() == x.to_svg(size=500)      # dask's default
    with cdask.config.set({"array.svg.size": 400}):
        _, root = parse_html(x._repr_html_())
    _, default = parse_html(x._repr_html_())
    assert float(root.get("height")) > 2 * float(default.get("height"))


# ---------------------------------------------------------------------------
# the grid


def test_grid_lines_at_chunk_boundaries():
    root = parse_svg(svg(((3, 3, 3, 1),), size=100))
    vertical = sorted(float(e.get("x1")) for e in lines(root) if e.get("x1") == e.get("x2"))
    assert vertical == [0, 30, 60, 90, 100]
    root = parse_svg(svg(((5, 5), (1, 3)), size=100))
    horizontal = sorted(float(e.get("y1")) for e in lines(root) if e.get("y1") == e.get("y2"))
    vertical = sorted(float(e.get("x1")) for e in lines(root) if e.get("x1") == e.get("x2"))
    assert horizontal == [0, 50, 100]
    assert len(vertical) == 3 and vertical[0] == 0
    assert vertical[1] == pytest.approx(vertical[2] / 4, abs=0.1)
    # the outer lines are the thick ones
    assert sum(e.get("stroke-width") == "2" for e in lines(root)) == 4


def test_3d_draws_three_faces_and_labels():
    root = parse_svg(da.ones((6, 8, 4), chunks=(2, 4, 2)).to_svg(size=200))
    assert len(root.findall(".//%spolygon" % SVG_NS)) == 3
    # top: 4 + 3 lines, left: 4 + 3, front: 3 + 3
    assert len(lines(root)) == 20
    assert sorted(texts(root)) == ["4", "6", "8"]


def test_more_than_3_axes_are_drawn_in_groups():
    root = parse_svg(da.ones((4, 5, 6, 7), chunks=2).to_svg())
    assert {"axis 0", "axes 1-3"} <= set(texts(root))
    root = parse_svg(da.ones((3, 4, 5, 6, 7), chunks=2).to_svg())
    assert {"axes 0-1", "axes 2-4"} <= set(texts(root))
    root = parse_svg(da.ones((2,) * 7, chunks=1).to_svg())
    assert {"axis 0", "axes 1-3", "axes 4-6"} <= set(texts(root))


def test_zero_length_axis():
    x = da.ones((0, 3), chunks=2)
    facts, root = parse_html(x._repr_html_())
    assert facts["Bytes"][0] == "0 B"
    assert "0" in texts(root)


def test_many_blocks_give_few_lines_and_a_dark_fill():
    few = parse_svg(svg(((1,) * 10,), size=120))
    many = parse_svg(svg(((1,) * 100_000,), size=120))
    assert len(lines(few)) == 11 + 2
    assert 2 < len(lines(many)) <= 120 // 6 + 2
    fill = {p.get("fill") for p in few.iter(SVG_NS + "polygon")}
    fill_many = {p.get("fill") for p in many.iter(SVG_NS + "polygon")}
    assert fill != fill_many


def test_many_irregular_blocks_lines_in_order():
    # not all equal but the last: the boundaries come from sums of runs
    chunks = ((5,) + (1,) * 99_999 + (7,),)
    root = parse_svg(svg(chunks, size=200))
    xs = [float(e.get("x1")) for e in lines(root) if e.get("x1") == e.get("x2")]
    assert xs == sorted(xs)
    assert xs[0] == 0 and xs[-1] == 200
    assert 10 < len(xs) < 40
    # the second boundary drawn: block ~3000 of 100001 starts near 3% of the way
    total = 5 + 99_999 + 7
    n = len(chunks[0])
    i = round(n / (len(xs) - 1))
    assert xs[1] == pytest.approx(200 * (5 + i - 1) / total, abs=0.1)


# ---------------------------------------------------------------------------
# unknown sizes


def test_unknown_chunks_repr():
    x = da.arange(10, chunks=3)
    m = x[x > 0]
    assert repr(m) == ("cdask.Array<getitem-mask, shape=(unknown,), dtype=int64, "
                       "chunksize=(unknown,), chunktype=numpy.ndarray>")
    assert all(math.isnan(c) for c in m.chunks[0])       # .chunks keeps nan
    assert math.isnan(m.shape[0])
    facts, root = parse_html(m._repr_html_())
    assert facts["Bytes"] == ["unknown", "unknown"]
    assert facts["Shape"] == ["(unknown,)", "(unknown,)"]
    assert facts["Chunks"] == ["4 chunks"]
    assert facts["Graph"] == ["12 tasks in 3 graph layers"]
    html = m._repr_html_()
    assert not re.search(r"\bnan\b", html)
    assert "compute_chunk_sizes()" in html
    assert "unknown" in texts(root)
    assert all(e.get("stroke-dasharray") for e in lines(root)
               if e.get("x1") == e.get("x2"))      # the boundaries are dashed
    m.compute_chunk_sizes()
    assert repr(m) == ("cdask.Array<getitem-mask, shape=(9,), dtype=int64, chunksize=(3,), "
                       "chunktype=numpy.ndarray>")
    facts, root = parse_html(m._repr_html_())
    assert facts["Shape"] == ["(9,)", "(3,)"]
    assert not any(e.get("stroke-dasharray") for e in lines(root))


def test_partly_unknown_2d():
    a = da.ones((10, 4), chunks=(3, 2))
    u = a[a[:, 0] > 0]
    assert "shape=(unknown, 4)" in repr(u)
    assert "chunksize=(unknown, 2)" in repr(u)
    facts, root = parse_html(u._repr_html_())
    assert facts["Shape"] == ["(unknown, 4)", "(unknown, 2)"]
    assert facts["Bytes"] == ["unknown", "unknown"]
    assert {"unknown", "4"} <= set(texts(root))
    dashed = [e for e in lines(root) if e.get("stroke-dasharray")]
    # the row boundaries (horizontal) are dashed; the column boundaries not
    assert dashed and all(e.get("y1") == e.get("y2") for e in dashed)
    assert len(dashed) == 5


@pytest.mark.parametrize("ndim", [3, 4, 5])
def test_unknown_nd(ndim):
    a = da.ones((4,) * ndim, chunks=2)
    u = a[a > 0]                          # n-d mask: 1-d result, unknown
    parse_html(u._repr_html_())
    b = da.ones((6,) + (3,) * (ndim - 1), chunks=3)
    v = b[b[(slice(None),) + (0,) * (ndim - 1)] > 0]
    facts, root = parse_html(v._repr_html_())
    assert facts["Shape"][0].startswith("(unknown, 3")
    assert "unknown" in texts(root)


def test_chunksize():
    x = da.from_array(np.arange(10), chunks=((2, 5, 3),))
    assert x.chunksize == (5,)
    assert da.ones(10, chunks=3).chunksize == (3,)
    assert da.ones((7, 0), chunks=3).chunksize == (3, 0)
    m = x[x > 0]
    assert math.isnan(m.chunksize[0])


# ---------------------------------------------------------------------------
# ten million chunks: no task is made


def test_ten_million_chunks_make_no_task():
    x = da.ones((10_000_000,), chunks=1)
    y = x + 1
    layers = blockwise_layers(y)
    assert len(layers) == 2
    html = y._repr_html_()
    text = repr(y)
    drawing = y.to_svg()
    assert all(layer._tasks is None for layer in layers)
    facts, root = parse_html(html)
    assert facts["Chunks"] == ["10000000 chunks"]
    assert facts["Graph"] == ["20000000 tasks in 2 graph layers"]
    assert facts["Bytes"] == ["76.29 MiB", "8 B"]
    assert facts["Type"] == ["float64", "numpy.ndarray"]
    assert text == ("cdask.Array<add, shape=(10000000,), dtype=float64, chunksize=(1,), "
                    "chunktype=numpy.ndarray>")
    assert len(lines(parse_svg(drawing))) < 200
    assert len(lines(root)) < 60


def test_ten_million_chunks_2d_make_no_task():
    x = da.ones((10_000, 1_000), chunks=1, dtype=np.float32)
    y = x * 2
    layers = blockwise_layers(y)
    html = y._repr_html_()
    repr(y)
    y.to_svg()
    assert all(layer._tasks is None for layer in layers)
    facts, _ = parse_html(html)
    assert facts["Chunks"] == ["10000000 chunks (10000 \u00d7 1000)"]
    assert facts["Graph"] == ["20000000 tasks in 2 graph layers"]
    assert facts["Bytes"] == ["38.15 MiB", "4 B"]


def test_many_unknown_chunks_make_no_task():
    x = da.ones((1_000_000,), chunks=1)
    m = x[x > 0]
    layers = blockwise_layers(m)
    facts, root = parse_html(m._repr_html_())
    assert all(layer._tasks is None for layer in layers)
    assert facts["Chunks"] == ["1000000 chunks"]
    assert "unknown" in texts(root)


# ---------------------------------------------------------------------------
# errors that need sizes say they are unknown


def test_mask_of_unknown_chunks_on_a_known_array():
    x = da.arange(10, chunks=3)
    m = x[x > 0]
    with pytest.raises(ValueError, match=r"unknown \(nan\) chunk sizes.*compute_chunk_sizes"):
        x[m > 0]
    with pytest.raises(ValueError, match="the array has unknown"):
        m[da.arange(9, chunks=4) > 0]
    # a mask of the same unknown chunks still selects
    np.testing.assert_array_equal(m[m > 2].compute(), np.arange(3, 10))


def test_like_of_unknown_shape():
    x = da.arange(10, chunks=3)
    m = x[x > 0]
    for f in (da.ones_like, da.zeros_like, da.empty_like):
        with pytest.raises(ValueError, match=r"%s: .*unknown.*compute_chunk_sizes" % f.__name__):
            f(m)
    with pytest.raises(ValueError, match="full_like: .*unknown"):
        da.full_like(m, 3)
    assert da.ones_like(m, shape=(3,)).compute().tolist() == [1, 1, 1]


def test_square_check_of_unknown_sizes():
    x = da.arange(10, chunks=3)
    m = x[x > 0].astype(float)
    a = m[:, None] * m[None, :]
    for f in (da.linalg.inv, da.linalg.cholesky, da.linalg.lu):
        with pytest.raises(ValueError, match="unknown.*compute_chunk_sizes"):
            f(a)
    with pytest.raises(ValueError, match="unknown.*compute_chunk_sizes"):
        da.linalg.solve(a, m)
