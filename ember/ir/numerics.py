"""Where float16/bfloat16 values are computed in float32, written into the graph.

The numerics of the primitives on float16/bfloat16 (the same for every backend):

- a literal operand takes the tensor's dtype: ``mul(%x: f16, 0.1)`` multiplies by ``f16(0.1)``;
- elementwise math is the float32 result rounded once to the tensor's dtype (for ``+ - * /``
  and ``sqrt`` that is the correctly rounded result);
- the accumulating primitives (`ACCUMULATING`: ``reduce_sum``, ``reduce_prod``, ``cumsum``,
  ``scatter_add``, ``matmul``) accumulate in float32 and round once at the end.

PyTorch computes these ops in float32, and so does ember's eager mode; the graph says so with
``convert`` nodes, written when the op is called (`Primitive.bind` asks `widened_dtype`), so
eager execution, traces and the backward graphs that autodiff records hold the same nodes:

- an accumulating op on float16/bfloat16 operands becomes
  ``convert(op(convert(x, f32), ...), f16)`` (what the op on ``f16`` computes anyway, now
  visible: a backend sees a float32 reduction and the two roundings);
- a binary op with a Python literal (`LITERAL_OPS`) on a float16/bfloat16 tensor becomes
  ``convert(op(convert(x, f32), literal), f16)`` when the literal is not exactly a value of
  the tensor's dtype (``x * 0.1``): here the graph differs from the plain op, whose literal
  would be rounded to ``f16`` first. With an exact literal (``x * 2``, ``maximum(x, 0)``) the
  op stays in the tensor's dtype: computing in float32 and rounding gives the same bits.

Not widened: ``reduce_max``/``reduce_min``/``argmax``/``argmin`` (exact in any dtype),
``where`` (a literal there is stored, not computed with) and two-tensor elementwise ops.
"""

from __future__ import annotations

import math

import numpy as np

from . import dtypes as D
from .types import is_scalar

__all__ = ["LOW_PRECISION", "ACCUMULATE", "ACCUMULATING", "LITERAL_OPS", "widened_dtype"]

#: Float dtypes computed in `ACCUMULATE` where an op accumulates or meets an inexact literal.
LOW_PRECISION = (D.float16, D.bfloat16)
ACCUMULATE = D.float32
ACCUMULATING = frozenset(("reduce_sum", "reduce_prod", "cumsum", "scatter_add", "matmul"))
LITERAL_OPS = frozenset(
    ("add", "sub", "mul", "div", "pow", "remainder", "floordiv", "maximum", "minimum")
)
WIDENING = ACCUMULATING | LITERAL_OPS


def exact_in(value, dtype: D.DType) -> bool:
    """Whether the Python number ``value`` is a value of ``dtype`` (NaN and infinities are)."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return True
    try:
        with np.errstate(over="ignore"):
            stored = dtype.np.type(value)
        return float(stored) == value
    except OverflowError:  # an int beyond any float
        return False


def widened_dtype(op: str, operands) -> D.DType | None:
    """The float16/bfloat16 dtype of a call that computes in float32 (see the module
    docstring), or None when the call needs no float32 nodes."""
    if op in ACCUMULATING:
        for x in operands:
            if not is_scalar(x) and x.dtype in LOW_PRECISION:
                return x.dtype
        return None
    if op not in LITERAL_OPS or len(operands) != 2:
        return None
    a, b = operands
    if is_scalar(a) == is_scalar(b):
        return None
    tensor, literal = (b, a) if is_scalar(a) else (a, b)
    if tensor.dtype in LOW_PRECISION and not exact_in(literal, tensor.dtype):
        return tensor.dtype
    return None
