"""The built-in C kernels, as attributes: ``cdask.kernels.add``, ``cdask.kernels.sum``...

Each attribute is a :class:`cdask.Kernel`; the table comes from the C core
(``cdask._core.kernels``, a dict name -> Kernel), so this module lists
exactly the kernels compiled into the extension.
"""

from . import _core

_table = dict(_core.kernels)

globals().update(_table)

__all__ = sorted(_table)


def __dir__():
    return sorted(set(globals()) | set(_table))
