"""Array.visualize and cdask.visualize: the task graph drawn before and after
fusion (a box per key, a circle per task), colours by the scheduler's
order, PNG/SVG files that open with image tools, inline images for Jupyter,
the size limit, and errors."""
import io
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from IPython.display import SVG, Image
from PIL import Image as PILImage

import cdask
import cdask as da
from cdask.array import drawing as vis

SVG_NS = "{http://www.w3.org/2000/svg}"


def _nodes(svg_bytes):
    """(boxes, circles, fills by node id) of a Graphviz SVG: each node is a
    <g class="node"> holding a polygon (box) or an ellipse (circle)."""
    root = ET.fromstring(svg_bytes)
    boxes, circles, fills = [], [], {}
    for g in root.iter(SVG_NS + "g"):
        if g.get("class") != "node":
            continue
        title = g.find(SVG_NS + "title").text
        shape = next(g.iter(SVG_NS + "polygon"), None)    # under the tooltip's <a>
        if shape is not None:
            boxes.append(title)
        else:
            shape = next(g.iter(SVG_NS + "ellipse"), None)
            assert shape is not None, title
            circles.append(title)
        fills[title] = shape.get("fill")
    return boxes, circles, fills


def _ntasks(g):
    deps = g.dependencies()
    return sum(1 for k, v in g.items()
               if (type(v) is tuple and v and callable(v[0])) or deps[k])


def _talk_b(n=8, c=4):
    b = da.random.random((n, n), chunks=c)
    return (b - b.mean(axis=0)) + (b.T / b.std())


@pytest.mark.parametrize("make", [
    lambda: ((da.ones((8, 8), chunks=4) + 1) * 2) ** 3,
    _talk_b,
    lambda: da.from_array(np.arange(36.0).reshape(6, 6), chunks=3).T.dot(
        da.ones((6, 6), chunks=3)) - da.ones((6, 6), chunks=3).mean(axis=0),
    lambda: (lambda x: x[x > 0].mean())(da.random.default_rng(0).standard_normal(40, chunks=10)),
])
def test_as_many_nodes_as_the_graph_before_and_after_fusion(make):
    x = make()
    before = x.__dask_graph__()
    (opt,) = da.optimize(x)
    after = opt.__dask_graph__()
    assert len(after) < len(before)                 # fusion did something
    for optimize_graph, g in ((False, before), (True, after)):
        img = x.visualize(format="svg", optimize_graph=optimize_graph)
        assert isinstance(img, SVG)
        boxes, circles, _ = _nodes(img.data.encode())
        assert len(boxes) == len(g)                 # a box per key
        assert len(circles) == _ntasks(g)           # a circle per task
        assert len(circles) > 0


def test_circles_name_the_operations_before_and_after_fusion():
    x = ((da.ones((4, 4), chunks=2) + 1) * 2) ** 3
    plain = x.visualize(format="dot").decode()
    for op in ("add", "multiply", "power"):
        assert 'label=%s' % op in plain
    assert "fused" not in plain
    fused = x.visualize(format="dot", optimize_graph=True).decode()
    assert "fused(power," in fused and "label=add" not in fused


def test_png_and_svg_files_open_with_image_tools(tmp_path):
    x = _talk_b()
    png = tmp_path / "graph.png"
    img = x.visualize(png)
    assert isinstance(img, Image)
    with PILImage.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
    assert open(png, "rb").read() == img.data       # the same picture, inline and on disk
    svg = tmp_path / "graph.svg"
    x.visualize(str(svg), optimize_graph=True)
    root = ET.parse(svg).getroot()
    assert root.tag == SVG_NS + "svg"
    boxes, _, _ = _nodes(svg.read_bytes())
    assert len(boxes) == len(da.optimize(x)[0].__dask_graph__())


def test_format_from_the_extension_or_format_keyword(tmp_path):
    x = da.ones((4, 4), chunks=2) + 1
    x.visualize(tmp_path / "a", format="svg")              # no extension: format's
    assert ET.parse(tmp_path / "a.svg").getroot().tag == SVG_NS + "svg"
    x.visualize(str(tmp_path / "b"))                        # nothing said: PNG, as dask
    with PILImage.open(tmp_path / "b.png") as im:
        assert im.format == "PNG"
    x.visualize(str(tmp_path / "c.PNG"))
    with PILImage.open(tmp_path / "c.PNG") as im:
        assert im.format == "PNG"
    x.visualize(str(tmp_path / "d.svg"), format="png")      # format= wins
    with PILImage.open(tmp_path / "d.svg.png") as im:
        assert im.format == "PNG"
    with pytest.raises(ValueError, match="format must be one of"):
        x.visualize(format="bmp-ish")


def test_inline_images_without_a_file():
    x = da.ones((4, 4), chunks=2).sum()
    png = x.visualize()
    assert isinstance(png, Image) and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert PILImage.open(io.BytesIO(png.data)).size[0] > 10
    svg = x.visualize(format="svg")
    assert isinstance(svg, SVG) and "<svg" in svg.data
    assert svg._repr_svg_() and png._repr_png_()           # what Jupyter shows


def test_color_by_the_schedulers_order():
    x = _talk_b()
    g = da.optimize(x)[0].__dask_graph__()
    order = g.order()
    img = x.visualize(format="svg", optimize_graph=True, color="order")
    boxes, circles, fills = _nodes(img.data.encode())
    keys = list(g)                                  # box d<i> is the i-th key
    first = min(keys, key=order.get)
    last = max(keys, key=order.get)
    assert fills["d%d" % keys.index(first)] == vis._order_colour(0.0) == "#ffffcc"
    assert fills["d%d" % keys.index(last)] == vis._order_colour(1.0)
    # every node filled, colours ordered like the tasks: a key's fill is its order's
    for i, k in enumerate(keys):
        assert fills["d%d" % i] == vis._order_colour(order[k] / (len(g) - 1))
    assert len(set(fills.values())) > 5
    plain = x.visualize(format="svg", optimize_graph=True)
    assert set(_nodes(plain.data.encode())[2].values()) <= {"none", None}
    with pytest.raises(ValueError, match="color must be None or 'order'"):
        x.visualize(color="rainbow")


def test_several_arrays_and_a_graph():
    x = da.ones((4, 4), chunks=2) + 1
    y = x * 2
    z = x - 3
    img = cdask.visualize(y, z, format="svg")
    merged = cdask.merge(y.__dask_graph__(), z.__dask_graph__())
    assert len(_nodes(img.data.encode())[0]) == len(merged)
    dsk = {"a": 1, "b": (np.add, "a", 1), "c": "b"}
    boxes, circles, _ = _nodes(cdask.visualize(dsk, format="svg").data.encode())
    assert len(boxes) == 3 and len(circles) == 2           # a value, a task, an alias


def test_graphs_over_the_limit_are_refused():
    x = da.ones((100, 100), chunks=2) + 1                  # 2 x 2500 tasks
    with pytest.raises(ValueError, match="optimize_graph=True") as e:
        x.visualize()
    assert "2000" in str(e.value)
    # fused, one task a block: still 2500 keys (and no fusion hint any more)
    with pytest.raises(ValueError, match="smaller array") as e:
        x.visualize(optimize_graph=True)
    assert "optimize_graph=True" not in str(e.value)
    # a chain that fuses under the limit draws after fusion
    y = da.ones((28, 28), chunks=2)
    for i in range(10):
        y = y + i                                          # 11 x 196 tasks, 392 fused
    with pytest.raises(ValueError):
        y.visualize()
    boxes, _, _ = _nodes(y.visualize(format="svg", optimize_graph=True).data.encode())
    assert len(boxes) == len(da.optimize(y)[0].__dask_graph__()) <= vis.MAX_NODES


def test_bad_arguments():
    x = da.ones((4, 4), chunks=2)
    with pytest.raises(TypeError, match="cdask Arrays"):
        cdask.visualize(np.ones(3))
    with pytest.raises(TypeError):
        cdask.visualize()
    with pytest.raises(ValueError, match="engine"):
        x.visualize(engine="cytoscape")


def test_graph_attributes_pass_through():
    x = da.ones((4, 4), chunks=2) + 1
    dot = x.visualize(format="dot", rankdir="LR", size="3,3").decode()
    assert "rankdir=LR" in dot and 'size="3,3"' in dot


def test_nothing_is_computed():
    calls = []

    def f(b):
        calls.append(1)
        return b

    x = da.ones((4, 4), chunks=2).map_blocks(f, dtype=float)
    x.visualize()
    x.visualize(optimize_graph=True, color="order")
    assert calls == []


def test_import_error_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['pygraphviz'] = None\n"
            "import cdask as da\n"
            "try:\n"
            "    da.ones((4, 4), chunks=2).visualize('g.png')\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "pygraphviz" in r.stdout and "cdask[diagnostics]" in r.stdout
    assert not os.path.exists(tmp_path / "g.png")
