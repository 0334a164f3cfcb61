"""F.batch_norm, F.layer_norm, F.group_norm."""

from __future__ import annotations

from ....ir import ops as P
from ....ir.errors import DTypeError, ShapeError
from ...autograd.grad_mode import no_grad
from ...ops.common import describe
from ...tensor import Tensor

__all__ = ["batch_norm", "layer_norm", "group_norm"]


def _kept(shape, axes) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _bcast(t, shape):
    return P.broadcast_to(t, shape=tuple(shape)) if tuple(t.shape) != tuple(shape) else t


def _moments(x, axes):
    """Mean and biased variance of ``x`` over ``axes``, with those dims kept as size 1."""
    n = 1
    for a in axes:
        n *= x.shape[a]
    kept = _kept(x.shape, axes)
    mean = P.reshape(P.div(P.reduce_sum(x, axes=axes), float(n)), shape=kept)
    centered = P.sub(x, _bcast(mean, x.shape))
    var = P.reshape(P.div(P.reduce_sum(P.mul(centered, centered), axes=axes), float(n)),
                    shape=kept)  # fmt: skip
    return mean, var, centered, n


def _check_float(op: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise DTypeError(op, f"expects a floating point input, got {describe(x)}")


def _check_vector(op: str, name: str, t, c: int, input) -> None:
    if t is not None and (t.numel() != c):
        raise ShapeError(
            op,
            f"expected {name} to have {c} elements (one per channel), got {describe(t)} for "
            f"input {describe(input)}",
        )


def _channel_shaped(t, ndim: int, c: int):
    """A per-channel ``(C,)`` tensor reshaped to ``(1, C, 1, ...)`` for an input of ``ndim``."""
    return P.reshape(t, shape=(1, c) + (1,) * (ndim - 2))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5):  # fmt: skip
    """Normalize each channel (dim 1) over the batch and spatial dims.

    In training mode the batch statistics are used and, when given, ``running_mean`` and
    ``running_var`` are updated in place (under no_grad) as PyTorch does:
    ``running = (1 - momentum) * running + momentum * batch_stat``, with the *unbiased* batch
    variance; the normalization itself uses the biased one. In eval mode the running
    statistics are used.
    """
    _check_float("batch_norm", input)
    if input.ndim < 2:
        raise ShapeError(
            "batch_norm", f"expected an input of rank >= 2 (N, C, *), got {describe(input)}"
        )
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):  # fmt: skip
        _check_vector("batch_norm", name, t, c, input)
    shape = tuple(input.shape)
    axes = (0, *range(2, input.ndim))
    if training:
        count = shape[0]
        for n in shape[2:]:
            count *= n
        if count == 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{input.shape}"
            )
        mean, var, centered, n = _moments(input, axes)
        if running_mean is not None or running_var is not None:
            with no_grad():
                m = float(momentum)
                if running_mean is not None:
                    new = P.add(P.mul(running_mean.detach(), 1.0 - m),
                                P.mul(P.reshape(mean.detach(), shape=(c,)), m))  # fmt: skip
                    running_mean.copy_(new)
                if running_var is not None:
                    unbiased = P.mul(P.reshape(var.detach(), shape=(c,)),
                                     float(n) / float(n - 1))  # fmt: skip
                    new = P.add(P.mul(running_var.detach(), 1.0 - m), P.mul(unbiased, m))
                    running_var.copy_(new)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var must be defined in "
                             "evaluation mode (training=False)")  # fmt: skip
        mean = _channel_shaped(P.convert(running_mean, dtype=input.dtype)
                               if running_mean.dtype is not input.dtype else running_mean,
                               input.ndim, c)  # fmt: skip
        var = _channel_shaped(P.convert(running_var, dtype=input.dtype)
                              if running_var.dtype is not input.dtype else running_var,
                              input.ndim, c)  # fmt: skip
        centered = P.sub(input, _bcast(mean, shape))
    out = P.mul(centered, _bcast(P.rsqrt(P.add(var, float(eps))), shape))
    if weight is not None:
        out = P.mul(out, _bcast(_channel_shaped(weight, input.ndim, c), shape))
    if bias is not None:
        out = P.add(out, _bcast(_channel_shaped(bias, input.ndim, c), shape))
    return out


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalize over the last ``len(normalized_shape)`` dims, then scale and shift."""
    _check_float("layer_norm", input)
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(n) for n in normalized_shape)
    k = len(normalized_shape)
    shape = tuple(input.shape)
    if k == 0 or input.ndim < k or shape[input.ndim - k :] != normalized_shape:
        raise ShapeError(
            "layer_norm",
            f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
            f"[*, {', '.join(str(n) for n in normalized_shape)}], but got input of size"
            f"{list(shape)}",
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != normalized_shape:
            raise ShapeError(
                "layer_norm",
                f"expected {name} of shape {list(normalized_shape)}, got {describe(t)}",
            )
    axes = tuple(range(input.ndim - k, input.ndim))
    _, var, centered, _ = _moments(input, axes)
    out = P.mul(centered, _bcast(P.rsqrt(P.add(var, float(eps))), shape))
    if weight is not None:
        out = P.mul(out, _bcast(weight, shape))
    if bias is not None:
        out = P.add(out, _bcast(bias, shape))
    return out


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Normalize each group of ``C // num_groups`` channels over its channels and spatial dims,
    then scale and shift per channel."""
    _check_float("group_norm", input)
    if input.ndim < 2:
        raise ShapeError(
            "group_norm", f"Expected at least 2 dimensions for input tensor but received "
            f"{input.ndim}: input {describe(input)}",
        )  # fmt: skip
    shape = tuple(input.shape)
    n, c = shape[0], shape[1]
    if num_groups <= 0 or c % num_groups != 0:
        raise ShapeError(
            "group_norm",
            "Expected number of channels in input to be divisible by num_groups, but got input "
            f"of shape {list(shape)} and num_groups={num_groups}",
        )
    _check_vector("group_norm", "weight", weight, c, input)
    _check_vector("group_norm", "bias", bias, c, input)
    rest = 1
    for s in shape[1:]:
        rest *= s
    grouped = P.reshape(input, shape=(n, num_groups, rest // num_groups))
    _, var, centered, _ = _moments(grouped, (2,))
    out = P.mul(centered, _bcast(P.rsqrt(P.add(var, float(eps))), grouped.shape))
    out = P.reshape(out, shape=shape)
    if weight is not None:
        out = P.mul(out, _bcast(_channel_shaped(weight, input.ndim, c), shape))
    if bias is not None:
        out = P.add(out, _bcast(_channel_shaped(bias, input.ndim, c), shape))
    return out
