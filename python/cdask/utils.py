"""Small helpers with no cdask dependency: byte sizes and unknown sizes.

This is the lowest Python module of the package: ``config``, ``array.chunks``
and everything above may import it; it imports nothing of cdask.
"""

import math
import numbers
import re

__all__ = ["parse_bytes", "format_bytes", "isnan"]

_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12, "p": 10**15, "pb": 10**15,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30,
    "ti": 2**40, "tib": 2**40, "pi": 2**50, "pib": 2**50,
}

_BYTES_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(s):
    """``"64MiB"`` -> 67108864; ``"1GB"`` -> 10**9; ints pass through."""
    if isinstance(s, numbers.Integral) and not isinstance(s, bool):
        return int(s)
    if isinstance(s, float) and s.is_integer():
        return int(s)
    if not isinstance(s, str):
        raise TypeError("expected a byte size such as '64MiB' or an int, got %r" % (s,))
    m = _BYTES_RE.match(s)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError("could not parse byte size %r (use e.g. '64MiB', '1GB', '500kB')" % (s,))
    n = float(m.group(1)) * _UNITS[m.group(2).lower()]
    return int(n)


def format_bytes(n):
    """``3 * 2**20`` -> ``'3.00 MiB'``; an unknown (NaN) size -> ``'unknown'``."""
    if isnan(n):
        return "unknown"
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("kiB", 2**10)):
        if n >= div:
            return "%.2f %s" % (n / div, unit)
    return "%d B" % n


def isnan(x):
    """Is ``x`` the NaN that stands for an unknown size (a float NaN)?"""
    return isinstance(x, float) and math.isnan(x)
