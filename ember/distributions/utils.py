"""Helpers the distributions share (``torch.distributions.utils``): broadcasting parameters,
converting between probabilities and logits, and lazily computed attributes."""

from __future__ import annotations

from numbers import Number

from ..frontend.api_extras import finfo
from ..frontend.autograd import enable_grad
from ..frontend.nn.functional.activation import softmax
from ..frontend.ops.creation import tensor
from ..frontend.ops.shape import broadcast_tensors
from ..frontend.tensor import Tensor
from ..ir import dtypes as D

__all__ = [
    "broadcast_all", "clamp_probs", "lazy_property", "logits_to_probs", "probs_to_logits",
    "sum_rightmost",
]  # fmt: skip


def broadcast_all(*values):
    """Tensors and numbers as tensors of one shape; numbers take the first tensor's dtype
    (the default dtype when there is none)."""
    if not all(isinstance(v, Tensor | Number) for v in values):
        raise ValueError(
            "Input arguments must all be instances of numbers.Number, ember.Tensor or objects "
            "implementing __torch_function__."
        )
    if not all(isinstance(v, Tensor) for v in values):
        dtype = next((v.dtype for v in values if isinstance(v, Tensor)), D.get_default_dtype())
        values = [v if isinstance(v, Tensor) else tensor(v, dtype=dtype) for v in values]
    return broadcast_tensors(*values)


def clamp_probs(probs: Tensor) -> Tensor:
    """``probs`` kept ``eps`` away from 0 and 1, so their logits are finite."""
    eps = float(finfo(probs.dtype).eps)
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    p = clamp_probs(probs)
    return p.log() - (-p).log1p() if is_binary else p.log()


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    return logits.sigmoid() if is_binary else softmax(logits, dim=-1)


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """``value`` summed over its ``dim`` rightmost dims."""
    if dim == 0:
        return value
    return value.reshape(*value.shape[: value.ndim - dim], -1).sum(-1)


class lazy_property:  # noqa: N801 (PyTorch's name)
    """An attribute computed on first access (with grad enabled) and then stored on the
    instance; ``Bernoulli(probs=p).logits`` is computed only when read."""

    def __init__(self, wrapped) -> None:
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        with enable_grad():
            value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value
