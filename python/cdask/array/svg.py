"""SVG drawings of a chunk grid: ``Array.to_svg()`` and the picture in the HTML repr.

Interface: ``svg(chunks, size=500)`` -> an ``<svg>`` document (a string) of
the grid that ``chunks`` (a tuple of tuples of block sizes, ``math.nan``
where unknown) cuts an array into.  ``size`` is about the number of pixels
of the longest side.  A 0-d array has no grid: NotImplementedError, as in
dask (the HTML repr then shows its table alone).

What is drawn:

* 1-d: a bar; 2-d: a rectangle, rows down the first axis; 3-d: a box, the
  first axis going back from the front face; more axes: groups of three
  axes from the right (the leading one or two axes as a bar or rectangle),
  side by side, each captioned with the axes it stands for.
* A grid line at each block boundary, the outer ones thicker; the length of
  each axis written along it.  Lengths are drawn on a compressed scale - an
  axis 100 times shorter than another is not 100 times thinner - so that
  every axis stays visible.
* An axis with more blocks than its drawn length can show (about one line
  every six pixels) gets evenly spaced boundaries only, and the faces it
  spans are shaded darker: they stand for many blocks.
* An axis of unknown size (a nan in its chunks, as after ``x[x > 0]``) is
  drawn as long as the longest known axis, its blocks as equal, its grid
  lines dashed and its length written "unknown".

Cost: the drawing reads the chunks only - never the task graph - and each
axis once, at C speed (``sum``, ``tuple.count``, slices), so an axis of
millions of blocks takes milliseconds and the output holds a few hundred
lines whatever the number of blocks.

Imports nothing from the package but ``utils``.
"""

import itertools
import math
from html import escape

from .utils import isnan

__all__ = ["svg"]

_FONT_PX = 13            # label font size; a character is taken as ~0.6 of it wide
_PAD = 6                 # blank border around the whole drawing
_LINE_GAP_PX = 6         # at most one grid line per this many pixels of an axis
_DEPTH = 0.5             # the third dimension recedes by this much of its length, per x and y
_GROUP_SCALE = 0.75      # beyond 3 axes each group is drawn at this fraction of ``size``

_FILL = "#ecb172"        # faces whose every block boundary is drawn
_FILL_DENSE = "#8b4903"  # faces spanning an axis with more blocks than lines
_DASH = "4,3"            # boundary lines of an axis whose sizes are unknown


def svg(chunks, size=500):
    """The SVG drawing (a string) of the block grid ``chunks``; see the module
    docstring.  NotImplementedError for a 0-d array (no axes to draw)."""
    chunks = tuple(tuple(c) for c in chunks)
    if not chunks:
        raise NotImplementedError("a 0-d array has no chunk grid to draw")
    shape = tuple(_total(c) for c in chunks)
    pic = _draw(chunks, shape, size)
    return pic.document()


# ---------------------------------------------------------------------------
# axes: lengths in pixels, where the grid lines go


def _total(c):
    s = sum(c)
    return math.nan if isnan(s) else s


def _lengths(shape, size):
    """Pixels per axis.  An unknown length is drawn as the longest known one;
    the ratio of a longer axis to a shorter is kept up to 2 and grows only
    logarithmically beyond, to at most 5 (so a short axis stays visible)."""
    known = [s for s in shape if not isnan(s)]
    ref = max(known, default=1) or 1
    sizes = [ref if isnan(s) else s for s in shape]
    big = max(sizes) or 1
    return [size / _squash(big / s if s > 0 else math.inf) for s in sizes]


def _squash(q):
    """How many times shorter to draw an axis ``q`` times shorter than the longest."""
    return q if q <= 2 else min(2 + math.log2(q / 2), 5.0)


class _Axis:
    """One axis as drawn: ``fracs`` - where its grid lines go, as fractions of
    its length, 0 and 1 included; ``dense`` - only some boundaries are among
    them; ``unknown`` - its size is unknown; ``label`` - the text written along
    it (None: nothing written, for the made-up second axis of a 1-d bar)."""

    __slots__ = ("fracs", "dense", "unknown", "label")

    def __init__(self, fracs, dense=False, unknown=False, label=None):
        self.fracs = fracs
        self.dense = dense
        self.unknown = unknown
        self.label = label


def _axis(c, total, px):
    """The ``_Axis`` of one axis of blocks ``c`` (length ``total``), drawn
    ``px`` pixels long."""
    n = len(c)
    unknown = isnan(total)
    label = "unknown" if unknown else str(int(total))
    if n == 0:
        return _Axis([0.0, 1.0], unknown=unknown, label=label)
    most = max(2, int(px // _LINE_GAP_PX))
    dense = n + 1 > most
    if dense:
        idx = sorted({round(k * n / (most - 1)) for k in range(most)})
    else:
        idx = range(n + 1)
    if unknown or not total:
        # nothing to measure by: equal blocks
        fracs = [i / n for i in idx]
    elif dense:
        fracs = [o / total for o in _offsets_at(c, idx, total)]
    else:
        fracs = [o / total for o in itertools.accumulate(c, initial=0)]
    return _Axis(fracs, dense, unknown, label)


def _offsets_at(c, idx, total):
    """Where the blocks ``idx`` (sorted indices, ``len(c)`` for the end) of
    ``c`` start.  Regular chunks (all equal but the last) by multiplication,
    others by one pass of ``sum`` over consecutive slices."""
    n = len(c)
    first, last = c[0], c[-1]
    if c.count(first) == n - (first != last):
        return [i * first if i < n else total for i in idx]
    out = []
    pos, at = 0, 0
    for i in idx:
        pos += sum(c[at:i])
        at = i
        out.append(pos)
    return out


# ---------------------------------------------------------------------------
# the picture: SVG elements with their bounding box


def _num(v):
    return ("%.1f" % v).rstrip("0").rstrip(".")


class _Picture:
    """SVG elements in drawing coordinates and the box they cover."""

    def __init__(self):
        self.items = []
        self.box = [math.inf, math.inf, -math.inf, -math.inf]

    def cover(self, x, y):
        b = self.box
        b[0], b[1] = min(b[0], x), min(b[1], y)
        b[2], b[3] = max(b[2], x), max(b[3], y)

    def line(self, p, q, width=1, dash=False):
        self.cover(*p)
        self.cover(*q)
        extra = ""
        if width != 1:
            extra += ' stroke-width="%s"' % width
        if dash:
            extra += ' stroke-dasharray="%s"' % _DASH
        self.items.append('<line x1="%s" y1="%s" x2="%s" y2="%s"%s/>'
                          % (_num(p[0]), _num(p[1]), _num(q[0]), _num(q[1]), extra))

    def polygon(self, points, fill):
        for p in points:
            self.cover(*p)
        self.items.append('<polygon points="%s" fill="%s" fill-opacity="0.6" stroke="none"/>'
                          % (" ".join("%s,%s" % (_num(x), _num(y)) for x, y in points), fill))

    def text(self, x, y, s, rotate=0, size=_FONT_PX, color="black"):
        """``s`` centred at ``(x, y)`` (its middle, not its baseline), turned
        ``rotate`` degrees clockwise."""
        half = 0.3 * size * len(s)
        a = math.radians(rotate)
        dx, dy = abs(math.cos(a)) * half + 2, abs(math.sin(a)) * half + 2
        hx, hy = abs(math.sin(a)) * size / 2, abs(math.cos(a)) * size / 2
        self.cover(x - dx - hx, y - dy - hy)
        self.cover(x + dx + hx, y + dy + hy)
        turn = ' transform="rotate(%s %s %s)"' % (rotate, _num(x), _num(y)) if rotate else ""
        self.items.append('<text x="%s" y="%s" font-size="%dpx" fill="%s" stroke="none" '
                          'text-anchor="middle" dominant-baseline="central"%s>%s</text>'
                          % (_num(x), _num(y), size, color, turn, escape(s)))

    def place(self, other, dx, dy):
        """Draw ``other`` here, moved by ``(dx, dy)``."""
        x0, y0, x1, y1 = other.box
        self.cover(x0 + dx, y0 + dy)
        self.cover(x1 + dx, y1 + dy)
        self.items.append('<g transform="translate(%s %s)">' % (_num(dx), _num(dy)))
        self.items.extend(other.items)
        self.items.append("</g>")

    def document(self):
        x0, y0, x1, y1 = self.box
        w, h = x1 - x0 + 2 * _PAD, y1 - y0 + 2 * _PAD
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                'viewBox="%s %s %d %d">\n<g stroke="black" stroke-width="1">\n%s\n</g>\n</svg>'
                % (math.ceil(w), math.ceil(h), _num(x0 - _PAD), _num(y0 - _PAD),
                   math.ceil(w), math.ceil(h), "\n".join(self.items)))


def _face(pic, origin, u, v, a, b):
    """The parallelogram ``origin + s*u + t*v`` (``s, t`` in 0..1) with the
    grid of axis ``a`` along ``u`` and axis ``b`` along ``v``."""
    ox, oy = origin
    corners = [(ox, oy), (ox + u[0], oy + u[1]), (ox + u[0] + v[0], oy + u[1] + v[1]),
               (ox + v[0], oy + v[1])]
    pic.polygon(corners, _FILL_DENSE if a.dense or b.dense else _FILL)
    for axis, along, across in ((a, u, v), (b, v, u)):
        last = len(axis.fracs) - 1
        for i, f in enumerate(axis.fracs):
            p = (ox + f * along[0], oy + f * along[1])
            pic.line(p, (p[0] + across[0], p[1] + across[1]),
                     width=2 if i in (0, last) else 1, dash=axis.unknown)


def _side_label(pic, x, y, axis):
    """The label of a vertical axis, left-aligned at ``x`` beside its middle ``y``."""
    if axis.label is None:
        return
    if len(axis.label) > 3:
        pic.text(x + _FONT_PX * 0.6, y, axis.label, rotate=-90)
    else:
        pic.text(x + 0.3 * _FONT_PX * len(axis.label) + 2, y, axis.label)


def _picture_2d(rows, cols, h, w):
    pic = _Picture()
    _face(pic, (0, 0), (0, h), (w, 0), rows, cols)
    if cols.label is not None:
        pic.text(w / 2, h + _FONT_PX, cols.label)
    _side_label(pic, w + 4, h / 2, rows)
    return pic


def _picture_3d(depth, rows, cols, d, h, w):
    # the back face's top left corner at the origin, the front face down and
    # to the right of it: the top, left and front faces are the ones seen
    e = (_DEPTH * d, _DEPTH * d)
    pic = _Picture()
    _face(pic, (0, 0), e, (w, 0), depth, cols)      # top
    _face(pic, (0, 0), e, (0, h), depth, rows)      # left
    _face(pic, e, (0, h), (w, 0), rows, cols)       # front
    pic.text(e[0] + w / 2, e[1] + h + _FONT_PX, cols.label)
    _side_label(pic, e[0] + w + 4, e[1] + h / 2, rows)
    # along the lower left edge, below it
    off = _FONT_PX * 0.8
    pic.text(e[0] / 2 - off, h + e[1] / 2 + off, depth.label, rotate=45)
    return pic


def _picture(chunks, shape, px):
    """The picture of 1 to 3 axes of blocks ``chunks`` (lengths ``shape``),
    drawn ``px`` pixels long."""
    if len(chunks) == 1:
        # a bar, as thick as an axis of length 1 beside it would be drawn
        # (an unknown length as a long one)
        n = shape[0]
        thick = px[0] / _squash(math.inf if isnan(n) else max(n, 1))
        return _picture_2d(_Axis([0.0, 1.0]), _axis(chunks[0], n, px[0]), thick, px[0])
    if len(chunks) == 2:
        rows, cols = (_axis(c, s, p) for c, s, p in zip(chunks, shape, px))
        return _picture_2d(rows, cols, px[0], px[1])
    depth = _axis(chunks[0], shape[0], px[0] * _DEPTH * math.sqrt(2))
    rows, cols = (_axis(c, s, p) for c, s, p in zip(chunks[1:], shape[1:], px[1:]))
    return _picture_3d(depth, rows, cols, px[0], px[1], px[2])


def _draw(chunks, shape, size):
    nd = len(chunks)
    px = _lengths(shape, size)
    if nd <= 3:
        return _picture(chunks, shape, px)
    # groups of three axes from the right, the leading one or two on their
    # own; every group on the scale of the whole shape
    groups = []
    stop = nd
    while stop > 0:
        groups.append(range(max(0, stop - 3), stop))
        stop -= 3
    groups.reverse()
    out = _Picture()
    left = 0.0
    for g in groups:
        pic = _picture([chunks[i] for i in g], [shape[i] for i in g],
                       [px[i] * _GROUP_SCALE for i in g])
        x0, _, x1, y1 = pic.box
        caption = "axis %d" % g[0] if len(g) == 1 else "axes %d-%d" % (g[0], g[-1])
        pic.text((x0 + x1) / 2, y1 + _FONT_PX, caption, size=_FONT_PX - 2, color="#555555")
        out.place(pic, left - x0, 0)
        left += (x1 - x0) + 3 * _PAD
    return out
