"""Determinants: ``det`` and ``slogdet``, custom Functions as in `ember.frontend.linalg.core`.

``det``'s gradient is ``g * adj(A)^T``: ``g det(A) A^{-T}`` for invertible matrices, and for
matrices with ``|det| < 100 eps`` the adjugate computed from the SVD, the formula PyTorch uses
when it builds a differentiable backward (``linalg_det_backward``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd.function import Function
from ..ops import misc
from ..ops.creation import eye
from ..ops.elementwise import where
from ..ops.shape import cat, flip
from ..tensor import Tensor
from .core import check_square, values, wrap
from .solvers import inv
from .spectral import svd

__all__ = ["det", "slogdet"]

SlogdetResult = namedtuple("linalg_slogdet", ["sign", "logabsdet"])


def _exclusive_products(s: Tensor) -> Tensor:
    """``out[..., i] = prod_{j != i} s[..., j]`` without dividing (exact with zeros)."""
    one = s[..., :1] * 0 + 1
    before = cat([one, misc.cumprod(s, -1)[..., :-1]], -1)
    r = flip(s, (-1,))
    after = flip(cat([one, misc.cumprod(r, -1)[..., :-1]], -1), (-1,))
    return before * after


def _det_grad(A: Tensor, d: Tensor, g: Tensor) -> Tensor:
    """``g * adj(A)^T``: ``g det(A) A^{-T}`` for invertible matrices; for (nearly) singular
    ones the adjugate from the SVD, as PyTorch's double-differentiable path computes it."""
    eps = np.finfo(A.dtype.np).eps
    singular = np.abs(values(d, "linalg.det")) < 100 * eps
    scale = (g * d).unsqueeze(-1).unsqueeze(-1)
    if not singular.any():
        return scale * inv(A).mT
    mask = Tensor._make(singular.reshape(*singular.shape, 1, 1))
    n = A.shape[-1]
    identity = eye(n, dtype=A.dtype)
    regular = scale * inv(where(mask, identity, A)).mT
    from_svd = _adjugate_t(where(mask, A, identity), g)
    return where(mask, from_svd, regular)


def _adjugate_t(A: Tensor, g: Tensor) -> Tensor:
    """``g * adj(A)^T`` through ``A = U S V^T``: ``det(U) det(V) U diag(prod_{j!=i} S_j) V^T``."""
    U, S, Vh = svd(A)
    alpha = det(U) * det(Vh) * g
    D = alpha.unsqueeze(-1) * _exclusive_products(S)
    return (U * D.unsqueeze(-2)) @ Vh


class LinalgDet(Function):
    @staticmethod
    def forward(ctx, A):
        d = wrap(np.linalg.det(values(A, "linalg.det")), A.dtype)
        ctx.save_for_backward(A, d)
        return d

    @staticmethod
    def backward(ctx, g):
        A, d = ctx.saved_tensors
        return _det_grad(A, d, g)


def det(A):
    """The determinant of each square matrix in ``A``."""
    return LinalgDet.apply(check_square("linalg.det", A))


class LinalgSlogdet(Function):
    @staticmethod
    def forward(ctx, A):
        sign, logabs = np.linalg.slogdet(values(A, "linalg.slogdet"))
        sign, logabs = wrap(sign, A.dtype), wrap(logabs, A.dtype)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(A)
        return sign, logabs

    @staticmethod
    def backward(ctx, gsign, glogabs):
        if glogabs is None:
            return None
        (A,) = ctx.saved_tensors
        return glogabs.unsqueeze(-1).unsqueeze(-1) * inv(A).mT


def slogdet(A):
    """``(sign, logabsdet)`` of the determinant (the sign's gradient is zero, as in PyTorch)."""
    return SlogdetResult(*LinalgSlogdet.apply(check_square("linalg.slogdet", A)))
