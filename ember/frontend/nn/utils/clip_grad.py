"""nn.utils.clip_grad: clip_grad_norm_, clip_grad_value_, get_total_norm, clip_grads_with_norm_."""

from __future__ import annotations

import math
import types
import warnings

from ....ir import ops as P
from ...autograd.grad_mode import no_grad
from ...ops import elementwise as E
from ...ops.creation import tensor as _tensor
from ...ops.reduction import amax
from ...ops.reduction import sum as _sum
from ...ops.shape import reshape, stack
from ...tensor import Tensor

__all__ = [
    "clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
    "clip_grads_with_norm_",
]  # fmt: skip


def _vector_norm(x, ord: float):
    """``torch.linalg.vector_norm(x, ord)`` over all elements (a 0-d tensor)."""
    x = x if x.dtype.is_floating_point else x.float()
    flat = reshape(x, (-1,))
    if ord == math.inf:
        return amax(E.abs(flat)) if flat.numel() else _sum(E.abs(flat))
    if ord == -math.inf:
        return P.reduce_min(E.abs(flat), axes=(0,))
    if ord == 0:
        return _sum(P.convert(E.ne(flat, 0.0), dtype=x.dtype))
    if ord == 1:
        return _sum(E.abs(flat))
    if ord == 2:
        return E.sqrt(_sum(E.mul(flat, flat)))
    return E.pow(_sum(E.pow(E.abs(flat), ord)), 1.0 / ord)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None):  # fmt: skip
    """The ``norm_type``-norm of the norms of ``tensors``: the norm of all their elements as one
    vector."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return _tensor(0.0)
    with no_grad():
        norms = [_vector_norm(t, norm_type) for t in tensors]
        dtype = norms[0].dtype
        total_norm = _vector_norm(stack([n.to(dtype) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(E.isfinite(total_norm)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from "
            "`parameters` is non-finite, so it cannot be clipped. To disable "
            "this error and scale the gradients by the non-finite norm anyway, "
            "set `error_if_nonfinite=False`"
        )
    return total_norm


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale the gradients by ``min(max_norm / (total_norm + 1e-6), 1)`` in place."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    max_norm = float(max_norm)
    if not grads:
        return
    with no_grad():
        clip_coef = E.div(max_norm, E.add(total_norm, 1e-6))
        clip_coef_clamped = E.clamp(clip_coef, max=1.0)
        for g in grads:
            g.mul_(clip_coef_clamped.to(g.dtype))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None):  # fmt: skip
    """Clip the gradient norm of ``parameters`` (all gradients as one vector) to ``max_norm``.

    Gradients are scaled in place by ``min(max_norm / (total_norm + 1e-6), 1)``; returns the
    total norm before clipping, as PyTorch does.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if is_generator and len(parameters) == 0:
            warnings.warn(
                "`parameters` is an empty generator, no gradient clipping will occur.",
                stacklevel=2,
            )
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach=None):  # fmt: skip
    """Deprecated alias of `clip_grad_norm_`."""
    warnings.warn(
        "`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
        "`torch.nn.utils.clip_grad_norm_`.",
        FutureWarning,
        stacklevel=2,
    )
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient of ``parameters`` to ``[-clip_value, clip_value]`` in place."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    clip_value = float(clip_value)
    with no_grad():
        for p in parameters:
            if p.grad is not None:
                p.grad.clamp_(min=-clip_value, max=clip_value)
