"""``cdask.linalg``: dask.array.linalg's namespace.

The decompositions and solvers (``qr``, ``svd``, ``lu``, ``cholesky``,
``solve``, ``lstsq``, ``norm``...) live in ``decompositions.py``; the
contractions (``dot``, ``tensordot``, ``matmul``...) in ``contraction.py``.
Only the contractions are in ``__all__``, which ``cdask.array`` re-exports at
the top level: dask.array has no top-level ``qr`` or ``solve`` either.
"""

from .contraction import (  # noqa: F401
    GEMM_LAYERS, blas_limits, dot, einsum, matmul, outer, tensordot, vdot)
from .contraction import __all__  # noqa: F401
from .decompositions import (  # noqa: F401
    tsqr, sfqr, qr, svd, compression_level, compression_matrix, svd_compressed, lu, cholesky,
    solve_triangular, solve, inv, lstsq, norm)
