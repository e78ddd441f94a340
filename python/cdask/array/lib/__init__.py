"""``cdask.lib``: as ``dask.array.lib``, the namespace of ``stride_tricks``."""

from . import stride_tricks  # noqa: F401

__all__ = ["stride_tricks"]
