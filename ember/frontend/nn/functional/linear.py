"""F.linear, F.bilinear-free core: affine maps."""

from __future__ import annotations

from ....ir import ops as P
from ....ir.errors import DTypeError, ShapeError
from ...ops.common import broadcast_shapes, describe
from ...ops.elementwise import add
from ...tensor import Tensor

__all__ = ["linear"]


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` over the last dim of ``input`` (any leading dims).

    ``weight`` is ``(out_features, in_features)`` (or ``(in_features,)`` for a scalar output per
    row) and ``bias`` is ``(out_features,)`` or anything that broadcasts to the output.
    """
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"linear(): argument '{name}' must be Tensor, not {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"linear(): argument 'bias' must be Tensor, not {type(bias).__name__}")
    if input.ndim == 0 or weight.ndim not in (1, 2):
        raise ShapeError(
            "linear",
            f"expected an input of rank >= 1 and a weight of rank 1 or 2, got {describe(input)} "
            f"and weight {describe(weight)}",
        )
    in_features = weight.shape[-1]
    if input.shape[-1] != in_features:
        lead = (input.numel() // input.shape[-1]) if input.shape[-1] else 0
        raise ShapeError(
            "linear",
            f"mat1 and mat2 shapes cannot be multiplied ({lead}x{input.shape[-1]} and "
            f"{in_features}x{weight.shape[0] if weight.ndim == 2 else 1}): input "
            f"{describe(input)}, weight {describe(weight)}",
        )
    if input.dtype is not weight.dtype or (bias is not None and bias.dtype is not input.dtype):
        raise DTypeError(
            "linear",
            f"expected input, weight and bias of one dtype, got {describe(input)}, weight "
            f"{describe(weight)}" + (f", bias {describe(bias)}" if bias is not None else ""),
        )
    lead_shape = tuple(input.shape[:-1])
    if bias is not None:  # checked before any work: the error names linear, not its add
        full = (*lead_shape, weight.shape[0]) if weight.ndim == 2 else lead_shape
        if broadcast_shapes("linear", full, tuple(bias.shape)) != full:
            raise ShapeError(
                "linear", f"bias {describe(bias)} does not broadcast to the output {list(full)}"
            )
    rows = 1
    for n in lead_shape:
        rows *= n
    x2 = P.reshape(input, shape=(rows, in_features)) if input.ndim != 2 else input
    if weight.ndim == 2:
        out_features = weight.shape[0]
        y = P.matmul(x2, P.permute(weight, dims=(1, 0)))
        out_shape = (*lead_shape, out_features)
    else:
        y = P.matmul(x2, P.reshape(weight, shape=(in_features, 1)))
        out_shape = lead_shape
    if bias is not None and weight.ndim == 2 and tuple(bias.shape) == (weight.shape[0],):
        y = P.add(y, P.broadcast_to(bias, shape=tuple(y.shape)))  # the common case: one add
        bias = None
    if tuple(y.shape) != out_shape:
        y = P.reshape(y, shape=out_shape)
    if bias is not None:
        y = add(y, bias)
        if tuple(y.shape) != out_shape:
            raise ShapeError(
                "linear", f"bias {describe(bias)} does not broadcast to the output {out_shape}"
            )
    return y
