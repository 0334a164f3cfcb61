"""F.dropout: counter-based random masks, identical in eager and compiled code."""

from __future__ import annotations

from ....ir import ops as P
from ....ir.errors import DTypeError
from ...ops.common import describe
from ...ops.inplace import apply_inplace
from ...ops.random import rand
from ...tensor import Tensor

__all__ = ["dropout"]


def _check_p(p) -> float:
    p = float(p)
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return p


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The keep mask is ``rand(shape) < 1 - p`` drawn from ember's Philox generator, so the same
    seed gives the same mask in eager and compiled code. ``training=False`` or ``p == 0``
    returns ``input`` itself, as PyTorch does.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"dropout(): argument 'input' must be Tensor, not {type(input).__name__}")
    p = _check_p(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if not input.dtype.is_floating_point:
        raise DTypeError("dropout", f"expects a floating point input, got {describe(input)}")

    if p == 1.0:

        def fn(x):
            return P.mul(x, 0.0)

    else:
        keep = P.lt(rand(*input.shape, dtype=input.dtype), 1.0 - p)
        mask = P.mul(P.convert(keep, dtype=input.dtype), 1.0 / (1.0 - p))

        def fn(x):
            return P.mul(x, mask)

    if inplace:
        return apply_inplace(input, fn, "dropout_")
    return fn(input)
