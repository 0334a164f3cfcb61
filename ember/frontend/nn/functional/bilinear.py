"""F.bilinear: ``y[..., o] = sum_ij x1[..., i] W[o, i, j] x2[..., j] + b[o]``.

Computed as one matmul of ``x1`` (rows flattened) with ``W`` laid out as (in1, out * in2),
then an elementwise product with ``x2`` and a sum over ``in2``: the cost of a Linear of size
in1 -> out * in2, with no (out, in1, in2)-sized intermediate per row.
"""

from __future__ import annotations

from ....ir import ops as P
from ....ir.errors import DTypeError, ShapeError
from ...ops.common import describe
from ...tensor import Tensor

__all__ = ["bilinear"]


def bilinear(input1, input2, weight, bias=None):
    """``x1^T A x2 + b`` over the last dims of ``input1`` (*, in1) and ``input2`` (*, in2)
    with ``weight`` (out, in1, in2) and ``bias`` (out,); the leading dims must be equal."""
    op = "bilinear"
    for name, t in (("input1", input1), ("input2", input2), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{op}(): argument 'bias' must be Tensor, not {type(bias).__name__}")
    tensors = [input1, input2, weight] + ([bias] if bias is not None else [])
    if not input1.dtype.is_floating_point or any(t.dtype is not input1.dtype for t in tensors):
        raise DTypeError(
            op,
            "expected input1, input2, weight and bias of one floating point dtype, got "
            + ", ".join(describe(t) for t in tensors),
        )
    if input1.ndim != input2.ndim:
        raise ShapeError(
            op, f"bilinear(): input dimensions do not match: got {input1.ndim} and {input2.ndim}"
        )
    if input1.ndim == 0:
        raise ShapeError(op, "bilinear(): expected inputs of at least one dimension")
    for i in range(input1.ndim - 1):
        if input1.shape[i] != input2.shape[i]:
            raise ShapeError(
                op,
                f"bilinear(): input batch dimensions do not match at dim {i}: got "
                f"{input1.shape[i]} and {input2.shape[i]}",
            )
    if weight.ndim != 3:
        raise ShapeError(op, f"bilinear(): expected a 3-D weight, got {describe(weight)}")
    out_f, in1, in2 = weight.shape
    if input1.shape[-1] != in1:
        raise ShapeError(
            op,
            f"bilinear(): input1 size does not match weight size: got {input1.shape[-1]} but "
            f"expected {in1}",
        )
    if input2.shape[-1] != in2:
        raise ShapeError(
            op,
            f"bilinear(): input2 size does not match weight size: got {input2.shape[-1]} but "
            f"expected {in2}",
        )
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != out_f):
        got = bias.shape[-1] if bias.ndim else bias.ndim
        raise ShapeError(
            op, f"bilinear(): bias size does not match weight size: got {got} but expected {out_f}"
        )
    lead = tuple(input1.shape[:-1])
    rows = 1
    for n in lead:
        rows *= n
    x1 = P.reshape(input1, shape=(rows, in1))
    x2 = P.reshape(input2, shape=(rows, 1, in2))
    w = P.reshape(P.permute(weight, dims=(1, 0, 2)), shape=(in1, out_f * in2))
    t = P.reshape(P.matmul(x1, w), shape=(rows, out_f, in2))
    y = P.reduce_sum(P.mul(t, P.broadcast_to(x2, shape=(rows, out_f, in2))), axes=(2,))
    if bias is not None:
        y = P.add(y, P.broadcast_to(P.reshape(bias, shape=(1, out_f)), shape=(rows, out_f)))
    return P.reshape(y, shape=(*lead, out_f))
