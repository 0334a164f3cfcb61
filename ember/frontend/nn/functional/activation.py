"""Activation functions (relu, gelu, silu, softmax, ...) as compositions of primitives."""

from __future__ import annotations

import math
import warnings

from ....ir import dtypes as D
from ....ir import ops as P
from ....ir.errors import DTypeError
from ...dims import normalize_dim
from ...ops.common import cast, describe, literal, to_float
from ...ops.inplace import apply_inplace
from ...tensor import Tensor

__all__ = [
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "gelu", "silu", "mish",
    "tanh", "sigmoid", "hardtanh", "hardtanh_", "softplus", "softmax", "log_softmax",
    "logsigmoid", "softmin",
]  # fmt: skip


# ---- softmax family ---------------------------------------------------------------------------


def _softmax_dim(op: str, ndim: int, stacklevel: int = 3) -> int:
    """PyTorch's legacy choice when ``dim`` is omitted (with its deprecation warning)."""
    warnings.warn(
        f"Implicit dimension choice for {op} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_input(op: str, input, dim, dtype):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(input).__name__}")
    x = cast(input, dtype) if dtype is not None else input
    if not x.dtype.is_floating_point:
        raise DTypeError(op, f"expects a floating point input, got {describe(x)}; pass dtype=")
    if dim is None:
        dim = _softmax_dim(op, x.ndim, stacklevel=4)
    axis = normalize_dim(dim, x.ndim, op)
    return x, axis


def _shift_by_max(x, axis: int):
    """``x - max(x, axis)`` with the max treated as a constant, and the kept-dim shape."""
    kept = tuple(1 if i == axis else n for i, n in enumerate(x.shape))
    m = P.reshape(P.reduce_max(x.detach(), axes=(axis,)), shape=kept)
    return P.sub(x, P.broadcast_to(m, shape=tuple(x.shape))), kept


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """``exp(x - max) / sum(exp(x - max))`` along ``dim``."""
    x, axis = _softmax_input("softmax", input, dim, dtype)
    if x.ndim == 0:
        x = P.reshape(x, shape=(1,))
        return P.reshape(softmax(x, 0), shape=())
    if x.numel() == 0:
        return P.mul(x, 1.0)
    shifted, kept = _shift_by_max(x, axis)
    e = P.exp(shifted)
    s = P.reshape(P.reduce_sum(e, axes=(axis,)), shape=kept)
    return P.div(e, P.broadcast_to(s, shape=tuple(x.shape)))


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """``(x - max) - log(sum(exp(x - max)))`` along ``dim``."""
    x, axis = _softmax_input("log_softmax", input, dim, dtype)
    if x.ndim == 0:
        x = P.reshape(x, shape=(1,))
        return P.reshape(log_softmax(x, 0), shape=())
    if x.numel() == 0:
        return P.mul(x, 1.0)
    shifted, kept = _shift_by_max(x, axis)
    lse = P.reshape(P.log(P.reduce_sum(P.exp(shifted), axes=(axis,))), shape=kept)
    return P.sub(shifted, P.broadcast_to(lse, shape=tuple(x.shape)))


def softmin(input, dim=None, _stacklevel: int = 3, dtype=None):
    x = cast(input, dtype) if dtype is not None else input
    if dim is None:
        dim = _softmax_dim("softmin", x.ndim)
    return softmax(P.neg(x), dim)


# ---- pointwise activations --------------------------------------------------------------------


def _float_input(op: str, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise DTypeError(op, f"expects a floating point input, got {describe(input)}")
    return input


def _maybe_inplace(input, fn, op: str, inplace: bool):
    if inplace:
        return apply_inplace(input, fn, op)
    return fn(input)


def relu(input, inplace: bool = False):
    def fn(x):
        # ``x <= 0`` is false for NaN: NaN passes through with gradient 1, as in PyTorch (a
        # diverging run stays visible); at 0 the gradient is 0
        return P.where(P.le(x, literal(0, x.dtype)), literal(0, x.dtype), x)

    if input.dtype is D.bool_:
        raise DTypeError("relu", f"is not implemented for bool tensors, got {describe(input)}")
    return _maybe_inplace(input, fn, "relu_", inplace)


def relu_(input):
    return relu(input, inplace=True)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    """``clamp(x, min_val, max_val)``; gradient 1 strictly inside (as PyTorch's hardtanh)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")

    return _maybe_inplace(input, _hardtanh_fn(min_val, max_val), "hardtanh_", inplace)


def _hardtanh_fn(min_val, max_val):
    def fn(x):
        lo, hi = literal(min_val, x.dtype), literal(max_val, x.dtype)
        # PyTorch's gradient is 1 strictly inside (min_val, max_val) and 0 elsewhere
        y = P.where(P.le(x, lo), lo, x)
        return P.where(P.ge(y, hi), hi, y)

    return fn


def hardtanh_(input, min_val: float = -1.0, max_val: float = 1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input, inplace: bool = False):
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    _float_input("leaky_relu", input)

    def fn(x):
        return P.where(P.gt(x, 0.0), x, P.mul(x, float(negative_slope)))

    return _maybe_inplace(input, fn, "leaky_relu_", inplace)


def leaky_relu_(input, negative_slope: float = 0.01):
    return leaky_relu(input, negative_slope, inplace=True)


def elu(input, alpha: float = 1.0, inplace: bool = False):
    _float_input("elu", input)

    def fn(x):
        positive = P.logical_not(P.le(x, 0.0))  # NaN counts as positive: it passes, gradient 1
        neg = P.mul(P.expm1(P.where(positive, 0.0, x)), float(alpha))
        return P.where(positive, x, neg)

    return _maybe_inplace(input, fn, "elu_", inplace)


def elu_(input, alpha: float = 1.0):
    return elu(input, alpha, inplace=True)


def gelu(input, approximate: str = "none"):
    """``x * Phi(x)`` with the exact normal CDF (erf), or the tanh approximation."""
    _float_input("gelu", input)
    x = input
    if approximate == "none":
        cdf = P.mul(P.add(P.erf(P.mul(x, 1.0 / math.sqrt(2.0))), 1.0), 0.5)
        return P.mul(x, cdf)
    if approximate == "tanh":
        inner = P.mul(P.add(x, P.mul(P.mul(P.mul(x, x), x), 0.044715)), math.sqrt(2.0 / math.pi))
        return P.mul(P.mul(x, 0.5), P.add(P.tanh(inner), 1.0))
    raise RuntimeError(
        f"gelu: approximate argument must be either none or tanh, got {approximate!r}"
    )


def silu(input, inplace: bool = False):
    _float_input("silu", input)
    return _maybe_inplace(input, lambda x: P.mul(x, P.sigmoid(x)), "silu_", inplace)


def _softplus_unit(x):
    """``log(1 + exp(x))`` computed stably: ``max(x, 0) + log1p(exp(-|x|))``."""
    return P.add(P.maximum(x, 0.0), P.log1p(P.exp(P.neg(P.abs(x)))))


def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    """``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold`` (as PyTorch)."""
    x = _float_input("softplus", input)
    bx = P.mul(x, float(beta)) if beta != 1 else x
    soft = _softplus_unit(bx)
    if beta != 1:
        soft = P.div(soft, float(beta))
    return P.where(P.gt(bx, float(threshold)), x, soft)


def mish(input, inplace: bool = False):
    _float_input("mish", input)
    return _maybe_inplace(input, lambda x: P.mul(x, P.tanh(_softplus_unit(x))), "mish_", inplace)


def tanh(input):
    return P.tanh(to_float(input, "tanh"))


def sigmoid(input):
    return P.sigmoid(to_float(input, "sigmoid"))


def logsigmoid(input):
    """``-softplus(-x)`` computed stably: ``min(x, 0) - log1p(exp(-|x|))``."""
    x = _float_input("logsigmoid", input)
    return P.sub(P.minimum(x, 0.0), P.log1p(P.exp(P.neg(P.abs(x)))))
