"""Linear solves: ``inv``, ``solve``, ``solve_triangular``, ``cholesky``, ``pinv``, ``lstsq``.

Each is a custom Function (see `ember.frontend.linalg.core`): numpy computes the forward, the
backward is PyTorch's formula (`torch/csrc/autograd/FunctionsManual.cpp`) in ember ops.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...ir.errors import InvalidValueError, ShapeError
from ..autograd.function import Function
from ..ops.misc import diag_embed
from ..tensor import Tensor
from .core import (
    LinAlgError,
    broadcast_batch,
    check_float,
    check_matrix,
    check_same_dtype,
    check_square,
    values,
    wrap,
)

__all__ = ["inv", "solve", "solve_triangular", "cholesky", "pinv", "lstsq"]

LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])


def _batch_prefix(a: np.ndarray, fails) -> str:
    """``(Batch element i): `` for the first batch element ``fails`` rejects (PyTorch's words)."""
    if a.ndim == 2:
        return ""
    flat = a.reshape(-1, *a.shape[-2:])
    for i, m in enumerate(flat):
        if fails(m):
            return f"(Batch element {i}): "
    return ""


def _raises(fn):
    def fails(m) -> bool:
        try:
            fn(m)
        except np.linalg.LinAlgError:
            return True
        return False

    return fails


# ---- inv, solve, solve_triangular ----------------------------------------------------------


class LinalgInv(Function):
    @staticmethod
    def forward(ctx, A):
        a = values(A, "linalg.inv")
        try:
            x = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            raise LinAlgError(
                "linalg.inv",
                _batch_prefix(a, _raises(np.linalg.inv)) + "the inversion could not be "
                "completed because the input matrix is singular.",
            ) from None
        X = wrap(x, A.dtype)
        ctx.save_for_backward(X)
        return X

    @staticmethod
    def backward(ctx, g):
        (X,) = ctx.saved_tensors
        Xt = X.mT
        return -(Xt @ (g @ Xt))


def inv(A):
    """The inverse of each square matrix in ``A`` (*, n, n)."""
    return LinalgInv.apply(check_square("linalg.inv", A))


class LinalgSolve(Function):
    @staticmethod
    def forward(ctx, A, B):
        a, b = values(A, "linalg.solve"), values(B, "linalg.solve")
        try:
            x = np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            raise LinAlgError(
                "linalg.solve", "The solver failed because the input matrix is singular."
            ) from None
        X = wrap(x, A.dtype)
        ctx.save_for_backward(A, X)
        return X

    @staticmethod
    def backward(ctx, g):
        A, X = ctx.saved_tensors
        gB = LinalgSolve.apply(A.mT, g)
        gA = -(gB @ X.mT) if ctx.needs_input_grad[0] else None
        return gA, gB


def _is_vector_rhs(A, B) -> bool:
    """PyTorch's rule: B is a (batch of) vector(s) when 1-d or shaped like A without its
    last dim."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def solve(A, B, *, left: bool = True):
    """The solution ``X`` of ``A X = B`` (``X A = B`` with ``left=False``)."""
    op = "linalg.solve"
    check_square(op, A)
    check_float(op, B)
    check_same_dtype(op, A, B)
    vector = _is_vector_rhs(A, B)
    if not left:
        if vector:
            raise ShapeError(
                op, "Vector broadcasting of the left hand side is not supported for left=False."
            )
        check_matrix(op, B, "B")
        return solve(A.mT, B.mT).mT
    Bm = B.unsqueeze(-1) if vector else B
    if Bm.shape[-2] != A.shape[-1]:
        raise ShapeError(
            op,
            f"Incompatible shapes of A and B for the equation AX = B "
            f"({A.shape[-2]}x{A.shape[-1]} and {Bm.shape[-2]}x{Bm.shape[-1]})",
        )
    A, Bm = broadcast_batch(op, A, Bm)
    X = LinalgSolve.apply(A, Bm)
    return X.squeeze(-1) if vector else X


def _triangle(x: Tensor, upper: bool, unitriangular: bool) -> Tensor:
    """The part of a gradient that lives on the triangle a triangular solve reads."""
    return x.triu(int(unitriangular)) if upper else x.tril(-int(unitriangular))


class LinalgSolveTriangular(Function):
    @staticmethod
    def forward(ctx, A, B, upper, unitriangular):
        a, b = values(A, "linalg.solve_triangular"), values(B, "linalg.solve_triangular")
        t = np.triu(a) if upper else np.tril(a)
        if unitriangular:
            n = a.shape[-1]
            t = t.copy()
            t[..., np.arange(n), np.arange(n)] = 1
        with np.errstate(all="ignore"):
            try:
                x = np.linalg.solve(t, b)
            except np.linalg.LinAlgError:  # a zero on the diagonal: LAPACK's trsm gives inf/nan
                x = np.linalg.pinv(t) @ b * np.inf
        X = wrap(x, A.dtype)
        ctx.upper, ctx.unitriangular = upper, unitriangular
        ctx.save_for_backward(A, X)
        return X

    @staticmethod
    def backward(ctx, g):
        A, X = ctx.saved_tensors
        upper, unit = ctx.upper, ctx.unitriangular
        gB = LinalgSolveTriangular.apply(A.mT, g, not upper, unit)
        gA = _triangle(-(gB @ X.mT), upper, unit) if ctx.needs_input_grad[0] else None
        return gA, gB, None, None


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False):
    """The solution of ``A X = B`` (``X A = B`` with ``left=False``) for triangular ``A``:
    only its upper (``upper=True``) or lower triangle is read."""
    op = "linalg.solve_triangular"
    check_square(op, A)
    check_matrix(op, B, "B")
    check_same_dtype(op, A, B)
    if not left:
        return solve_triangular(A.mT, B.mT, upper=not upper, unitriangular=unitriangular).mT
    if B.shape[-2] != A.shape[-1]:
        raise ShapeError(
            op,
            f"Incompatible shapes of A and B for the equation AX = B "
            f"({A.shape[-2]}x{A.shape[-1]} and {B.shape[-2]}x{B.shape[-1]})",
        )
    A, B = broadcast_batch(op, A, B)
    return LinalgSolveTriangular.apply(A, B, bool(upper), bool(unitriangular))


# ---- cholesky ----------------------------------------------------------------------------


def _not_positive_definite(a: np.ndarray) -> str:
    """PyTorch's message, naming the batch element and the first failing leading minor."""
    flat = a.reshape(-1, *a.shape[-2:])
    for i, m in enumerate(flat):
        for k in range(1, m.shape[-1] + 1):
            try:
                np.linalg.cholesky(m[:k, :k])
            except np.linalg.LinAlgError:
                prefix = f"(Batch element {i}): " if a.ndim > 2 else ""
                return (
                    f"{prefix}The factorization could not be completed because the input is "
                    f"not positive-definite (the leading minor of order {k} is not "
                    "positive-definite)."
                )
    return "The factorization could not be completed because the input is not positive-definite."


class LinalgCholesky(Function):
    @staticmethod
    def forward(ctx, A, upper):
        a = values(A, "linalg.cholesky")
        try:
            low = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise LinAlgError("linalg.cholesky", _not_positive_definite(a)) from None
        L = wrap(np.swapaxes(low, -1, -2) if upper else low, A.dtype)
        ctx.upper = upper
        ctx.save_for_backward(L)
        return L

    @staticmethod
    def backward(ctx, g):
        (L,) = ctx.saved_tensors
        if ctx.upper:
            L, g = L.mT, g.mT
        phi = L.mT @ g
        phi = phi.tril() - 0.5 * diag_embed(phi.diagonal(0, -2, -1))
        # L^{-T} phi L^{-1}, then symmetrized (A is symmetric)
        gA = solve_triangular(L, phi, upper=False, left=False)
        gA = solve_triangular(L.mT, gA, upper=True)
        return 0.5 * (gA + gA.mT), None


def cholesky(A, *, upper: bool = False):
    """The Cholesky factor ``L`` (lower) with ``A = L L^T``; ``upper=True`` gives ``L^T``."""
    return LinalgCholesky.apply(check_square("linalg.cholesky", A), bool(upper))


# ---- pinv, lstsq -------------------------------------------------------------------------


def _pinv_backward(grad: Tensor, pinvA: Tensor, A: Tensor) -> Tensor:
    """PyTorch's ``pinv_backward``, arranged to multiply the smallest matrices."""
    m, n = A.shape[-2], A.shape[-1]
    pinvAh, gradh = pinvA.mT, grad.mT
    if m <= n:
        K = gradh @ pinvA
        KpinvAh = K @ pinvAh
        return (
            -(pinvA @ K).mT + KpinvAh - (A @ pinvA) @ KpinvAh + (pinvAh @ pinvA) @ (gradh - K @ A)
        )
    K = pinvA @ gradh
    pinvAhK = pinvAh @ K
    return -(K @ pinvA).mT + (gradh - A @ K) @ pinvA @ pinvAh + pinvAhK - pinvAhK @ pinvA @ A


def _default_rtol(A) -> float:
    return float(np.finfo(A.dtype.np).eps) * max(A.shape[-2], A.shape[-1])


class LinalgPinv(Function):
    @staticmethod
    def forward(ctx, A, atol, rtol, hermitian):
        a = values(A, "linalg.pinv")
        with np.errstate(all="ignore"):
            if hermitian:
                w, v = np.linalg.eigh(a)
                tol = np.maximum(atol, rtol * np.abs(w).max(-1, keepdims=True))
                winv = np.where(np.abs(w) > tol, 1 / w, 0)
                p = (v * winv[..., None, :]) @ np.swapaxes(v, -1, -2)
            else:
                u, s, vh = np.linalg.svd(a, full_matrices=False)
                smax = s[..., :1] if s.shape[-1] else s
                tol = np.maximum(atol, rtol * smax)
                sinv = np.where(s > tol, 1 / s, 0)
                p = np.swapaxes(vh, -1, -2) @ (sinv[..., :, None] * np.swapaxes(u, -1, -2))
        P = wrap(p, A.dtype)
        ctx.save_for_backward(A, P)
        return P

    @staticmethod
    def backward(ctx, g):
        A, P = ctx.saved_tensors
        return _pinv_backward(g, P, A), None, None, None


def pinv(A, *, atol=None, rtol=None, hermitian: bool = False):
    """The Moore-Penrose pseudo-inverse; singular values below
    ``max(atol, rtol * largest)`` count as zero (PyTorch's defaults)."""
    check_matrix("linalg.pinv", A)
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else _default_rtol(A)
    return LinalgPinv.apply(A, float(atol or 0.0), float(rtol), bool(hermitian))


_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def _lstsq_arrays(a: np.ndarray, b: np.ndarray, rcond: float):
    """numpy's (batch-less) lstsq over every batch element: solution, rank, singular values."""
    batch = a.shape[:-2]
    fa = a.reshape(-1, *a.shape[-2:])
    fb = b.reshape(-1, *b.shape[-2:])
    xs, ranks, svals = [], [], []
    for ai, bi in zip(fa, fb):
        x, _, rank, s = np.linalg.lstsq(ai, bi, rcond=rcond)
        xs.append(x)
        ranks.append(rank)
        svals.append(s)
    n, k = a.shape[-1], b.shape[-1]
    x = np.array(xs).reshape(*batch, n, k)
    rank = np.array(ranks, dtype=np.int64).reshape(batch)
    s = np.array(svals).reshape(*batch, min(a.shape[-2:]))
    return x, rank, s


class LinalgLstsq(Function):
    """The solution ``x`` numpy computed (passed in), differentiable in ``A`` and ``B``."""

    @staticmethod
    def forward(ctx, A, B, x):
        ctx.save_for_backward(A, B)
        return wrap(x, A.dtype)

    @staticmethod
    def backward(ctx, g):
        A, B = ctx.saved_tensors
        pinvA = pinv(A)
        gA = _pinv_backward(g @ B.mT, pinvA, A) if ctx.needs_input_grad[0] else None
        gB = pinvA.mT @ g if ctx.needs_input_grad[1] else None
        return gA, gB, None


def lstsq(A, B, rcond=None, *, driver=None):
    """Least-squares solutions of ``A X = B``: ``(solution, residuals, rank, singular_values)``
    filled as PyTorch's CPU drivers fill them (default ``gelsy``: rank, no residuals)."""
    op = "linalg.lstsq"
    check_matrix(op, A)
    check_float(op, B)
    check_same_dtype(op, A, B)
    driver = driver or "gelsy"
    if driver not in _DRIVERS:
        raise InvalidValueError(
            op, f"parameter `driver` should be one of ({', '.join(_DRIVERS)}), got {driver!r}"
        )
    vector = _is_vector_rhs(A, B)
    Bm = B.unsqueeze(-1) if vector else B
    if Bm.ndim < 2:
        raise ShapeError(op, "The input tensor B must have at least 1 dimension.")
    if Bm.shape[-2] != A.shape[-2]:
        raise ShapeError(
            op,
            f"input.size(-2) should match other.size(-2), got {A.shape[-2]} and {Bm.shape[-2]}",
        )
    A, Bm = broadcast_batch(op, A, Bm)
    rcond = _default_rtol(A) if rcond is None else float(rcond)
    x, rank_arr, s_arr = _lstsq_arrays(values(A, op), values(Bm, op), rcond)
    X = LinalgLstsq.apply(A, Bm, x)
    m, n = A.shape[-2], A.shape[-1]
    dtype = A.dtype
    empty = Tensor._make(np.zeros((0,), dtype=dtype.np))
    if driver != "gelsy" and m > n and bool((rank_arr == n).all()):
        residuals = ((A @ X - Bm) ** 2).sum(-2)
        residuals = residuals.squeeze(-1) if vector else residuals
    else:
        residuals = empty
    rank = Tensor._make(rank_arr) if driver != "gels" else Tensor._make(np.zeros((0,), np.int64))
    singular_values = wrap(s_arr, dtype) if driver in ("gelsd", "gelss") else empty
    solution = X.squeeze(-1) if vector else X
    return LstsqResult(solution, residuals, rank, singular_values)
