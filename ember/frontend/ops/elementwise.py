"""Elementwise ops with PyTorch's names, promotion and broadcasting (``ember.add``, ...).

Each function prepares its operands (`common.prepare`) and applies primitives; composites
(``clamp``, ``div(rounding_mode=...)``, ``log2``, ``relu``...) are written once here in terms of
primitives, so their gradients come from the primitives' VJP rules.
"""

from __future__ import annotations

import math

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import DTypeError
from .. import trace_state
from ..tensor import Tensor
from .common import (
    as_tensor_operand,
    broadcast_shapes,
    broadcast_to,
    cast,
    describe,
    literal,
    prepare,
    to_float,
)
from .nonzero import nonzero

__all__ = [
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
    "remainder", "fmod", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge",
    "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
    "bitwise_xor", "bitwise_not", "bitwise_left_shift", "bitwise_right_shift", "neg", "negative",
    "abs", "exp", "exp2", "log", "log2", "log10", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh",
    "sigmoid", "erf", "log1p", "expm1", "floor", "ceil", "round", "trunc", "sign", "reciprocal",
    "square", "relu", "clamp", "clip", "where", "masked_fill", "isnan", "isinf", "isfinite",
    "lerp", "equal", "allclose", "isclose", "binary",
]  # fmt: skip


def binary(prim, a, b, op: str):
    """Apply a binary primitive after promotion and broadcasting (fast path: same type)."""
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a._data.dtype == b._data.dtype and a._data.shape == b._data.shape:
                return prim(a, b)
        elif type(b) is float and a.dtype.is_floating_point:
            return prim(a, b)
    x, y = prepare(op, a, b)
    return prim(x, y)


def _scaled(other, alpha):
    """``alpha * other`` for add/sub; a Python number stays a number (a literal)."""
    if not isinstance(alpha, Tensor) and alpha == 1:
        return other
    if isinstance(other, int | float) and not isinstance(other, Tensor):
        return other * alpha
    return mul(other, alpha)


def add(input, other, *, alpha=1):
    other = _scaled(other, alpha)
    return binary(P.add, input, other, "add")


def _is_bool(x) -> bool:
    return isinstance(x, bool) or (isinstance(x, Tensor) and x.dtype is D.bool_)


def _reject_bool_result(op: str, x, y, input, other) -> None:
    """PyTorch has no bool kernel for ``//``, ``%``, ``<<``, ``>>`` (and most of ``**``)."""
    if (x if isinstance(x, Tensor) else y).dtype is D.bool_:
        raise DTypeError(
            op, f"is not implemented for bool operands {describe(input)} and {describe(other)}"
        )


def sub(input, other, *, alpha=1):
    if _is_bool(input) or _is_bool(other):
        raise DTypeError(
            "sub",
            "subtraction with bool tensors is not supported; use ^ or logical_xor() instead "
            f"(operands {describe(input)}, {describe(other)})",
        )
    other = _scaled(other, alpha)
    return binary(P.sub, input, other, "sub")


subtract = sub


def mul(input, other):
    return binary(P.mul, input, other, "mul")


multiply = mul


def _float_operands(op, a, b):
    a, b = as_tensor_operand(a, op), as_tensor_operand(b, op)
    dtype = D.result_type(a, b)
    if not dtype.is_floating_point:
        dtype = D.get_default_dtype()
    return prepare(op, a, b, dtype=dtype)


def div(input, other, *, rounding_mode=None):
    if rounding_mode is None:
        return P.div(*_float_operands("div", input, other))
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        x, y = prepare("div", input, other)
        if x.dtype.is_floating_point if isinstance(x, Tensor) else y.dtype.is_floating_point:
            return P.trunc(P.div(x, y))
        q = P.floordiv(x, y)
        inexact = P.ne(P.remainder(x, y), 0)
        signs_differ = P.ne(P.lt(x, 0) if isinstance(x, Tensor) else x < 0,
                            P.lt(y, 0) if isinstance(y, Tensor) else y < 0)  # fmt: skip
        return P.where(P.logical_and(inexact, signs_differ), P.add(q, 1), q)
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


divide = div


def true_divide(input, other):
    return div(input, other)


def floor_divide(input, other):
    x, y = prepare("floor_divide", input, other)
    _reject_bool_result("floor_divide", x, y, input, other)
    return P.floordiv(x, y)


def remainder(input, other):
    x, y = prepare("remainder", input, other)
    _reject_bool_result("remainder", x, y, input, other)
    return P.remainder(x, y)


def fmod(input, other):
    """C-style remainder: the result has the sign of the dividend."""
    x, y = prepare("fmod", input, other)
    r = P.remainder(x, y)
    x_neg = P.lt(x, 0) if isinstance(x, Tensor) else x < 0
    adjust = P.logical_and(P.ne(r, 0), P.ne(x_neg, P.lt(r, 0)) if isinstance(x, Tensor) else
                           P.ne(P.lt(r, 0), x_neg))  # fmt: skip
    out = P.where(adjust, P.sub(r, y), r)
    if (x if isinstance(x, Tensor) else y).dtype.is_floating_point:
        # remainder(-2, inf) is inf, so the formula above gives inf - inf; fmod(x, ±inf) is x
        if isinstance(y, Tensor):
            keep = P.eq(P.abs(y), math.inf)
            if isinstance(x, Tensor):
                keep = P.logical_and(keep, P.ne(P.abs(x), math.inf))
            elif not math.isfinite(x):
                return out
        elif math.isinf(y):
            keep = P.ne(P.abs(x), math.inf)
        else:
            return out
        out = P.where(keep, x, out)
    return out


def pow(input, exponent):
    x, e = prepare("pow", input, exponent)
    if not isinstance(exponent, bool):  # bool_tensor ** True/False is the one bool pow
        _reject_bool_result("pow", x, e, input, exponent)
    base = x if isinstance(x, Tensor) else e
    if not base.dtype.is_floating_point and base.dtype is not D.bool_:
        # (a traced exponent is not checked: its values are unknown until the graph runs)
        negative = (e < 0) if not isinstance(e, Tensor) else bool((e._data < 0).any())
        negative = negative and not (isinstance(e, Tensor) and e._traced)
        if negative:
            raise DTypeError("pow", "integers to negative integer powers are not allowed "
                             f"(operands {describe(input)}, {describe(exponent)})")  # fmt: skip
    return P.pow(x, e)


def maximum(input, other):
    return binary(P.maximum, input, other, "maximum")


def minimum(input, other):
    return binary(P.minimum, input, other, "minimum")


def _compare(prim, op):
    def compare(input, other):
        return binary(prim, input, other, op)

    compare.__name__ = op
    return compare


eq, ne, lt, le, gt, ge = (
    _compare(P.eq, "eq"), _compare(P.ne, "ne"), _compare(P.lt, "lt"),
    _compare(P.le, "le"), _compare(P.gt, "gt"), _compare(P.ge, "ge"),
)  # fmt: skip
logical_and = _compare(P.logical_and, "logical_and")
logical_or = _compare(P.logical_or, "logical_or")
logical_xor = _compare(P.logical_xor, "logical_xor")


def _integral(prim, op):
    def fn(input, other):
        x, y = prepare(op, input, other)
        t = x if isinstance(x, Tensor) else y
        if t.dtype.is_floating_point:
            raise DTypeError(op, f"is only defined for integer and bool tensors, got "
                             f"{describe(input)} and {describe(other)}")  # fmt: skip
        if prim in (P.lshift, P.rshift):
            _reject_bool_result(op, x, y, input, other)
        return prim(x, y)

    fn.__name__ = op
    return fn


bitwise_and = _integral(P.bitwise_and, "bitwise_and")
bitwise_or = _integral(P.bitwise_or, "bitwise_or")
bitwise_xor = _integral(P.bitwise_xor, "bitwise_xor")
bitwise_left_shift = _integral(P.lshift, "bitwise_left_shift")
bitwise_right_shift = _integral(P.rshift, "bitwise_right_shift")


def bitwise_not(input):
    if input.dtype.is_floating_point:
        raise DTypeError("bitwise_not", f"is only defined for integer and bool tensors, got "
                         f"{describe(input)}")  # fmt: skip
    return P.bitwise_not(input)


def logical_not(input):
    return P.logical_not(input)


def neg(input):
    if input.dtype is D.bool_:
        raise DTypeError("neg", "negation, the `-` operator, on a bool tensor is not supported; "
                         "use `~` or logical_not() to invert a mask")  # fmt: skip
    return P.neg(input)


negative = neg


def abs(input):
    if input.dtype is D.bool_:
        raise DTypeError("abs", f"is not implemented for bool tensors, got {describe(input)}")
    return P.abs(input)


def _float_unary(prim, op):
    def fn(input):
        return prim(to_float(input, op))

    fn.__name__ = op
    return fn


exp = _float_unary(P.exp, "exp")
log = _float_unary(P.log, "log")
sqrt = _float_unary(P.sqrt, "sqrt")
rsqrt = _float_unary(P.rsqrt, "rsqrt")
sin = _float_unary(P.sin, "sin")
cos = _float_unary(P.cos, "cos")
tanh = _float_unary(P.tanh, "tanh")
sigmoid = _float_unary(P.sigmoid, "sigmoid")
erf = _float_unary(P.erf, "erf")
log1p = _float_unary(P.log1p, "log1p")
expm1 = _float_unary(P.expm1, "expm1")


def exp2(input):
    return P.exp(P.mul(to_float(input, "exp2"), math.log(2.0)))


def log2(input):
    return P.div(P.log(to_float(input, "log2")), math.log(2.0))


def log10(input):
    return P.div(P.log(to_float(input, "log10")), math.log(10.0))


def tan(input):
    x = to_float(input, "tan")
    return P.div(P.sin(x), P.cos(x))


def _keep_integral(prim):
    def fn(input, **kwargs):
        return prim(input)

    fn.__name__ = prim.name
    return fn


floor = _keep_integral(P.floor)
ceil = _keep_integral(P.ceil)
trunc = _keep_integral(P.trunc)
sign = _keep_integral(P.sign)


def round(input, *, decimals: int = 0):
    if decimals == 0:
        return P.round(input)
    scale = 10.0**decimals
    return P.div(P.round(P.mul(input, scale)), scale)


def reciprocal(input):
    return P.div(1.0, to_float(input, "reciprocal"))


def square(input):
    return mul(input, input)


def relu(input):
    # ``x <= 0`` is false for NaN, so NaN passes through (as in PyTorch); at 0 the gradient is 0
    return P.where(P.le(input, literal(0, input.dtype)), literal(0, input.dtype), input)


def clamp(input, min=None, max=None):
    """Values below ``min`` become ``min``; the gradient flows where min <= x <= max."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    operands = [input] + [b for b in (min, max) if b is not None]
    prepared = prepare("clamp", *operands)
    x, rest = prepared[0], prepared[1:]
    lo = rest.pop(0) if min is not None else None
    hi = rest.pop(0) if max is not None else None
    if lo is not None:
        x = P.where(P.lt(x, lo), lo, x) if isinstance(x, Tensor) else x
    if hi is not None:
        x = P.where(P.gt(x, hi), hi, x)
    return x


clip = clamp


def where(condition, input=None, other=None):
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    cond = as_tensor_operand(condition, "where")
    if cond.dtype is not D.bool_:
        raise DTypeError("where", f"condition must be a bool tensor, got {describe(cond)}")
    a, b = as_tensor_operand(input, "where"), as_tensor_operand(other, "where")
    dtype = D.result_type(a, b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = P.full(shape=(), value=literal(a, dtype), dtype=dtype)
    x, y = prepare("where", a, b, dtype=dtype, shape=False)
    tensors = [t for t in (cond, x, y) if isinstance(t, Tensor)]
    shape = broadcast_shapes("where", *(t._data.shape for t in tensors), operands=tensors)
    x, y = (broadcast_to(t, shape) if isinstance(t, Tensor) else t for t in (x, y))
    return P.where(broadcast_to(cond, shape), x, y)


def masked_fill(input, mask, value):
    """``input`` with ``value`` where ``mask`` is true; ``mask`` broadcasts to ``input``."""
    mask = as_tensor_operand(mask, "masked_fill")
    if mask.dtype is not D.bool_:
        raise DTypeError("masked_fill", f"mask must be a bool tensor, got {describe(mask)}")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(
            f"masked_fill: only supports a 0-dimensional value tensor, got {describe(value)}"
        )
    if broadcast_shapes("masked_fill", input._data.shape, mask._data.shape) != input._data.shape:
        raise RuntimeError(
            f"masked_fill: mask {describe(mask)} does not broadcast to input {describe(input)}"
        )
    value = cast(value, input.dtype) if isinstance(value, Tensor) else literal(value, input.dtype)
    return where(mask, value, input)


def isnan(input):
    return P.ne(input, input)


def isinf(input):
    if not input.dtype.is_floating_point:
        return P.ne(input, input)
    return P.eq(P.abs(input), math.inf)


def isfinite(input):
    if not input.dtype.is_floating_point:
        return P.eq(input, input)
    return P.logical_and(P.eq(input, input), P.ne(P.abs(input), math.inf))


def lerp(input, end, weight):
    """PyTorch's formula: ``input + w * (end - input)`` for ``|w| < 0.5``, else
    ``end - (end - input) * (1 - w)`` (exact at w = 1); float16/bfloat16 compute in float32."""
    operands = [as_tensor_operand(t, "lerp") for t in (input, end, weight)]
    tensors = [t for t in operands if isinstance(t, Tensor)]
    broadcast_shapes("lerp", *(t.shape for t in tensors), operands=tensors)
    dtype = D.result_type(*operands[:2])
    compute = D.float32 if dtype in (D.float16, D.bfloat16) else dtype
    x, y, w = (cast(t, compute) if isinstance(t, Tensor) else t for t in (input, end, weight))
    diff = sub(y, x)
    if isinstance(w, Tensor):
        out = where(P.lt(P.abs(w), 0.5), add(x, mul(w, diff)), sub(y, mul(diff, sub(1.0, w))))
    else:
        out = add(x, mul(w, diff)) if -0.5 < w < 0.5 else sub(y, mul(diff, 1.0 - w))
    return cast(out, dtype) if isinstance(out, Tensor) else out


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    x, y = prepare("isclose", input, other)
    close = P.le(P.abs(P.sub(x, y)), P.add(P.mul(P.abs(y), rtol), atol))
    close = P.logical_or(P.eq(x, y), close)
    if equal_nan:
        close = P.logical_or(close, P.logical_and(P.ne(x, x), P.ne(y, y)))
    return close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    return bool(
        trace_state.concrete(isclose(input, other, rtol, atol, equal_nan), "allclose").all()
    )


def equal(input, other) -> bool:
    if input.shape != other.shape:
        return False
    a, b = trace_state.concrete(input, "equal"), trace_state.concrete(other, "equal")
    return bool((a == b).all())
