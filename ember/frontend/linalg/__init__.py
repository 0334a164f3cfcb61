"""``ember.linalg`` (PyTorch's ``torch.linalg``): norms, solves, determinants and
factorizations with batching and gradients. See `ember.frontend.linalg.core` for how the
factorizations are computed and differentiated."""

from ..ops.out import matmul  # (with out=, as torch.linalg.matmul)
from .core import LinAlgError
from .determinants import det, slogdet
from .norms import matrix_norm, norm, vector_norm
from .solvers import cholesky, inv, lstsq, pinv, solve, solve_triangular
from .spectral import eigh, eigvalsh, qr, svd, svdvals

__all__ = [
    "LinAlgError", "matmul", "vector_norm", "matrix_norm", "norm", "solve", "solve_triangular",
    "inv", "det", "slogdet", "cholesky", "qr", "svd", "svdvals", "eigh", "eigvalsh", "pinv",
    "lstsq",
]  # fmt: skip
