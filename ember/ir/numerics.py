"""Where float16/bfloat16 values are computed in float32, written into the graph.

Every primitive computes in the dtype of its operands: a reduction of ``f16`` values adds
``f16`` values, a literal operand takes the tensor's dtype (``mul(%x: f16, 0.1)`` multiplies by
``f16(0.1)``). So a graph alone says what is computed, and every backend computes the same.

PyTorch computes some float16/bfloat16 ops in float32 and rounds once at the end, and ember's
eager mode does too. Those ops are written out as ``convert`` nodes around the op in float32,
at the moment the op is called (`Primitive.bind` asks `widened_dtype`), so eager execution,
traces and the backward graphs that autodiff records all hold the same explicit nodes:

- **accumulating ops** (`ACCUMULATING`: ``reduce_sum``, ``reduce_prod``, ``cumsum``,
  ``scatter_add``, ``matmul``) on float16/bfloat16 operands become
  ``convert(op(convert(x, f32), ...), f16)``;
- **a binary op with a Python literal** (`LITERAL_OPS`) on a float16/bfloat16 tensor becomes
  ``convert(op(convert(x, f32), literal), f16)`` when the literal is not exactly a value of
  the tensor's dtype (``x * 0.1``). With an exact literal (``x * 2``, ``maximum(x, 0)``) the op
  stays in the tensor's dtype: computing in float32 and rounding gives the same bits.

Not widened: ``reduce_max``/``reduce_min``/``argmax``/``argmin`` (exact in any dtype), ``where``
(a literal there is stored, not computed with), and two-tensor elementwise ops. Elementwise math
on float16/bfloat16 (``exp``, ``rsqrt``, ``sigmoid``...) is defined as the float32 result
rounded once to the tensor's dtype (for ``+ - * /`` and ``sqrt`` that is the correctly rounded
result); a backend may compute it in any way that gives those bits.
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
    docstring), or None when the call computes in its operands' dtype."""
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
