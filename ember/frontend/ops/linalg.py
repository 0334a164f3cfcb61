"""Matrix products with PyTorch's rules: ``matmul`` (1-d, 2-d and broadcast batches), ``mm``,
``bmm``, ``mv``, ``dot``, ``outer``; all lower to the batched ``matmul`` primitive."""

from __future__ import annotations

from ...ir import ops as P
from ...ir.errors import DTypeError, ShapeError
from .common import broadcast_shapes, broadcast_to, describe

__all__ = ["matmul", "mm", "bmm", "mv", "dot", "outer", "inner"]


def _check(op: str, a, b, ka: int, kb: int) -> None:
    if a.dtype is not b.dtype:
        raise DTypeError(
            op,
            f"expected both operands to have the same dtype, got {describe(a)} and {describe(b)}",
        )
    if ka != kb:
        raise ShapeError(op, f"shapes {describe(a)} and {describe(b)} do not match ({ka} != {kb})")


def matmul(input, other):
    a, b = input, other
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(
            "matmul",
            f"both arguments need at least 1 dimension, got {describe(a)} and {describe(b)}",
        )
    _check("matmul", a, b, a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0])
    x = P.reshape(a, shape=(1, a.shape[0])) if a.ndim == 1 else a
    y = P.reshape(b, shape=(b.shape[0], 1)) if b.ndim == 1 else b
    batch = broadcast_shapes("matmul", x.shape[:-2], y.shape[:-2])
    x = broadcast_to(x, (*batch, *x.shape[-2:]))
    y = broadcast_to(y, (*batch, *y.shape[-2:]))
    out = P.matmul(x, y)
    shape = list(out.shape)
    if b.ndim == 1:
        shape.pop(-1)
    if a.ndim == 1:
        shape.pop(-2 if b.ndim > 1 else -1)
    return P.reshape(out, shape=tuple(shape)) if tuple(shape) != tuple(out.shape) else out


def mm(input, mat2):
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError("mm", f"expects 2-d tensors, got {describe(input)} and {describe(mat2)}")
    return matmul(input, mat2)


def bmm(input, mat2):
    if input.ndim != 3 or mat2.ndim != 3:
        raise ShapeError("bmm", f"expects 3-d tensors, got {describe(input)} and {describe(mat2)}")
    if input.shape[0] != mat2.shape[0]:
        raise ShapeError("bmm", f"batch sizes of {describe(input)} and {describe(mat2)} differ")
    _check("bmm", input, mat2, input.shape[2], mat2.shape[1])
    return P.matmul(input, mat2)


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise ShapeError(
            "mv", f"expects a matrix and a vector, got {describe(input)}, {describe(vec)}"
        )
    return matmul(input, vec)


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError("dot", f"expects 1-d tensors, got {describe(input)} and {describe(other)}")
    if input.shape[0] != other.shape[0]:
        raise ShapeError(
            "dot",
            f"inconsistent tensor size: {describe(input)} and {describe(other)} must have the "
            f"same number of elements ({input.shape[0]} != {other.shape[0]})",
        )
    if input.dtype is not other.dtype:
        raise DTypeError(
            "dot",
            f"expected both vectors to have same dtype, got {describe(input)} and "
            f"{describe(other)}",
        )
    return matmul(input, other)


inner = dot


def outer(input, vec2):
    return matmul(
        P.reshape(input, shape=(input.shape[0], 1)), P.reshape(vec2, shape=(1, vec2.shape[0]))
    )
