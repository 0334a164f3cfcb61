"""Norms: ``vector_norm``, ``matrix_norm`` and ``norm``, composed of existing ops.

Entrywise norms are reductions (`ember.frontend.ops.reduction.norm`); the induced 1 and inf
norms are a sum then a max/min; the spectral (2, -2) and nuclear norms reduce ``svdvals``.
"""

from __future__ import annotations

import math

from ...ir.errors import InvalidValueError, ShapeError
from ..dims import normalize_dim
from ..ops import reduction as R
from ..ops.common import cast
from ..ops.elementwise import abs
from ..ops.shape import movedim
from ..tensor import Tensor
from .core import check_floating, check_matrix
from .spectral import svdvals

__all__ = ["vector_norm", "matrix_norm", "norm"]

_MATRIX_ORDS = ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2)


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None):
    """``sum(|x|^ord)^(1/ord)`` over ``dim`` (every element by default); ``ord`` may be
    ``inf``, ``-inf`` or ``0`` (the count of non-zeros)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"linalg.vector_norm: expected a Tensor, got {type(x).__name__}")
    check_floating("linalg.vector_norm", x)
    if dtype is not None:
        x = cast(x, dtype)
    if isinstance(dim, list):
        dim = tuple(dim)
    if x.ndim == 0:
        x = x.reshape(1)
        dim = None
    return R.norm(x, ord, dim, keepdim)


def _induced(A, ord, d0: int, d1: int, keepdim: bool):
    """The 1 (max column sum) and inf (max row sum) norms and their -1/-inf minima."""
    if abs_ord_is_inf(ord):
        d0, d1 = d1, d0
    sums = R.sum(abs(A), d0, keepdim)
    if not keepdim and d0 < d1:
        d1 -= 1
    pick = R.amax if ord > 0 else R.amin
    return pick(sums, d1, keepdim)


def abs_ord_is_inf(ord) -> bool:
    return ord in (math.inf, -math.inf)


def _spectral(A, ord, d0: int, d1: int, keepdim: bool):
    """Norms of the singular values: nuclear (their sum), 2 (largest), -2 (smallest)."""
    s = svdvals(movedim(A, (d0, d1), (-2, -1)))
    if ord == "nuc":
        out = R.sum(s, -1)
    else:
        out = (R.amax if ord == 2 else R.amin)(s, -1)
    if keepdim:
        for d in sorted((d0, d1)):
            out = out.unsqueeze(d)
    return out


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None):
    """The ``ord`` norm of the matrices in the ``dim`` planes of ``A``: ``"fro"``, ``"nuc"``,
    ``inf``, ``-inf``, ``1``, ``-1``, ``2``, ``-2``."""
    op = "linalg.matrix_norm"
    check_matrix(op, A, low_precision=True)
    if dtype is not None:
        A = cast(A, dtype)
    if ord not in _MATRIX_ORDS or isinstance(ord, bool):
        raise InvalidValueError(op, f"Order {ord} not supported.")
    if len(dim) != 2:
        raise ShapeError(op, f"dim must be a 2-tuple. Got {tuple(dim)}")
    d0, d1 = normalize_dim(dim[0], A, op), normalize_dim(dim[1], A, op)
    if d0 == d1:
        raise ShapeError(op, f"dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        return R.norm(A, 2, (d0, d1), keepdim)
    if ord == "nuc" or ord in (2, -2):
        return _spectral(A, ord, d0, d1, keepdim)
    return _induced(A, ord, d0, d1, keepdim)


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None):
    """A vector norm or a matrix norm, chosen as ``torch.linalg.norm`` chooses: by ``dim``'s
    length, else by ``A``'s dims when ``ord`` is given, else the 2-norm of all elements."""
    op = "linalg.norm"
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None:
        if len(dim) == 1:
            return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 2 or isinstance(ord, str):
        if A.ndim != 2:
            raise ShapeError(
                op,
                f"If dim is not specified but ord is, the input must be 1D or 2D. Got {A.ndim}D.",
            )
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    if A.ndim != 1:
        raise ShapeError(
            op, f"If dim is not specified but ord is, the input must be 1D or 2D. Got {A.ndim}D."
        )
    return vector_norm(A, ord, None, keepdim, dtype=dtype)
