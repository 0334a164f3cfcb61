"""Factorizations into orthogonal factors: ``qr``, ``svd``, ``svdvals``, ``eigh``,
``eigvalsh``.

Custom Functions as in `ember.frontend.linalg.core`: numpy's LAPACK routines compute the
forward (the same ones PyTorch's CPU build calls, so signs of vectors agree in practice); the
backward is PyTorch's (`linalg_qr_backward`, `svd_backward`, `linalg_eig_backward`), which
assumes distinct singular values / eigenvalues. ``svdvals`` and ``eigvalsh`` take only the
values of the full factorization, so their gradient needs no division by gaps.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...ir.errors import AutogradError, InvalidValueError
from ..autograd.function import Function
from ..ops.misc import diag_embed
from ..ops.shape import cat
from ..tensor import Tensor
from .core import check_matrix, check_square, values, wrap
from .solvers import solve_triangular

__all__ = ["qr", "svd", "svdvals", "eigh", "eigvalsh"]

QRResult = namedtuple("linalg_qr", ["Q", "R"])
SVDResult = namedtuple("linalg_svd", ["U", "S", "Vh"])
EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])

_QR_MODES = ("reduced", "complete", "r")


def _with_diagonal_zeroed(x: Tensor) -> Tensor:
    return x - diag_embed(x.diagonal(0, -2, -1))


# ---- qr ------------------------------------------------------------------------------------


class LinalgQr(Function):
    @staticmethod
    def forward(ctx, A, mode):
        a = values(A, "linalg.qr")
        if mode == "r":
            q, r = np.zeros((0,), a.dtype), np.linalg.qr(a, mode="r")
        else:
            q, r = np.linalg.qr(a, mode=mode)
        Q, R = wrap(q, A.dtype), wrap(r, A.dtype)
        ctx.mode = mode
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(Q, R)
        return Q, R

    @staticmethod
    def backward(ctx, gQ, gR):
        Q, R = ctx.saved_tensors
        if ctx.mode == "r":
            raise AutogradError(
                "linalg.qr",
                "The derivative of linalg.qr depends on Q, which is not computed when "
                "mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to "
                "differentiate through linalg.qr.",
            )
        m, n = Q.shape[-2], R.shape[-1]
        if ctx.mode == "complete" and m > n:
            raise AutogradError(
                "linalg.qr",
                "The QR decomposition is not differentiable when mode='complete' and "
                "nrows > ncols.",
            )
        if gQ is None and gR is None:
            return None, None
        if gQ is None:
            gA = gR @ R.mT
        elif gR is None:
            gA = -(Q.mT @ gQ)
        else:
            gA = gR @ R.mT - Q.mT @ gQ
        if m >= n:
            upper = gA.triu()
            gA = Q @ (upper + upper.mT - diag_embed(upper.diagonal(0, -2, -1)))
            if gQ is not None:
                gA = gA + gQ
            return solve_triangular(R.mT, gA, upper=False, left=False), None
        gA = Q @ (gA.mT - gA).tril()
        gA = solve_triangular(R[..., :m].mT, gA, upper=False, left=False)
        gA = cat([gA, gA.new_zeros(*gA.shape[:-1], n - m)], -1)
        if gR is not None:
            gA = gA + Q @ gR
        return gA, None


def qr(A, mode: str = "reduced"):
    """``(Q, R)`` with ``A = Q R``; ``mode`` is ``"reduced"``, ``"complete"`` or ``"r"`` (Q
    empty)."""
    if mode not in _QR_MODES:
        raise InvalidValueError(
            "linalg.qr",
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
            "'r', or 'complete'",
        )
    return QRResult(*LinalgQr.apply(check_matrix("linalg.qr", A), mode))


# ---- svd -----------------------------------------------------------------------------------


def _svd_backward(gU, gS, gVh, U, S, Vh) -> Tensor | None:
    """PyTorch's ``svd_backward`` for real matrices (reduced factors)."""
    if gU is None and gS is None and gVh is None:
        return None
    m, n = U.shape[-2], Vh.shape[-1]
    if gU is None and gVh is None:
        return U @ (gS.unsqueeze(-1) * Vh) if m >= n else (U * gS.unsqueeze(-2)) @ Vh
    UhgU = None if gU is None else U.mT @ gU
    UhgU = None if UhgU is None else UhgU - UhgU.mT
    VhgV = None if gVh is None else Vh @ gVh.mT
    VhgV = None if VhgV is None else VhgV - VhgV.mT
    S2 = S * S
    E = S2.unsqueeze(-2) - S2.unsqueeze(-1)
    E = E + diag_embed(S2 * 0 + 1)  # any nonzero diagonal: 0 / 1 below
    if UhgU is not None and VhgV is not None:
        gA = (UhgU * S.unsqueeze(-2) + S.unsqueeze(-1) * VhgV) / E
    elif UhgU is not None:
        gA = (UhgU / E) * S.unsqueeze(-2)
    else:
        gA = S.unsqueeze(-1) * (VhgV / E)
    if gS is not None:
        gA = gA + diag_embed(gS)
    if m > n and gU is not None:
        gA = U @ gA
        gUSinv = gU / S.unsqueeze(-2)
        gA = gA + gUSinv - U @ (U.mT @ gUSinv)
        return gA @ Vh
    if m < n and gVh is not None:
        gA = gA @ Vh
        SinvgVh = gVh / S.unsqueeze(-1)
        gA = gA + SinvgVh - (SinvgVh @ Vh.mT) @ Vh
        return U @ gA
    return U @ (gA @ Vh) if m >= n else (U @ gA) @ Vh


class LinalgSvd(Function):
    @staticmethod
    def forward(ctx, A, full_matrices):
        u, s, vh = np.linalg.svd(values(A, "linalg.svd"), full_matrices=full_matrices)
        U, S, Vh = wrap(u, A.dtype), wrap(s, A.dtype), wrap(vh, A.dtype)
        ctx.full_matrices = full_matrices
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(U, S, Vh)
        return U, S, Vh

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        U, S, Vh = ctx.saved_tensors
        if ctx.full_matrices:  # only the first k = min(m, n) vectors enter A = U S Vh
            k = S.shape[-1]
            U, Vh = U[..., :k], Vh[..., :k, :]
            gU = None if gU is None else gU[..., :k]
            gVh = None if gVh is None else gVh[..., :k, :]
        return _svd_backward(gU, gS, gVh, U, S, Vh), None


def svd(A, full_matrices: bool = True):
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` and ``S`` descending."""
    return SVDResult(*LinalgSvd.apply(check_matrix("linalg.svd", A), bool(full_matrices)))


def svdvals(A):
    """The singular values of ``A``, descending."""
    check_matrix("linalg.svdvals", A)
    return svd(A, full_matrices=False).S


# ---- eigh ----------------------------------------------------------------------------------


class LinalgEigh(Function):
    @staticmethod
    def forward(ctx, A, uplo):
        w, v = np.linalg.eigh(values(A, "linalg.eigh"), UPLO=uplo)
        L, V = wrap(w, A.dtype), wrap(v, A.dtype)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(L, V)
        return L, V

    @staticmethod
    def backward(ctx, gL, gV):
        L, V = ctx.saved_tensors
        if gV is None:
            if gL is None:
                return None, None
            return (V * gL.unsqueeze(-2)) @ V.mT, None
        VhgV = V.mT @ gV
        VhgV = 0.5 * (VhgV - VhgV.mT)
        E = L.unsqueeze(-2) - L.unsqueeze(-1)
        E = E + diag_embed(L * 0 + 1)
        gA = _with_diagonal_zeroed(VhgV / E)
        if gL is not None:
            gA = gA + diag_embed(gL)
        return V @ (gA @ V.mT), None


def _check_uplo(op: str, UPLO: str) -> str:
    if UPLO not in ("L", "U", "l", "u"):
        raise InvalidValueError(op, f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO.upper()


def eigh(A, UPLO: str = "L"):
    """``(eigenvalues, eigenvectors)`` of symmetric matrices (ascending eigenvalues); only the
    lower (``UPLO="L"``) or upper triangle is read."""
    uplo = _check_uplo("linalg.eigh", UPLO)
    return EighResult(*LinalgEigh.apply(check_square("linalg.eigh", A), uplo))


def eigvalsh(A, UPLO: str = "L"):
    """The eigenvalues of symmetric matrices, ascending."""
    uplo = _check_uplo("linalg.eigvalsh", UPLO)
    return LinalgEigh.apply(check_square("linalg.eigvalsh", A), uplo)[0]
