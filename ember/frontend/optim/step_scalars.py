"""Scalars inside an optimizer's update rule: Python numbers eagerly, graph values when compiled.

PyTorch's single-tensor optimizers compute their step sizes and bias corrections as Python
floats (float64) from hyperparameters and from 0-d state tensors read with ``.item()``, and a
float applied to a tensor is rounded to the tensor's dtype. Inside ``ember.compile`` the
hyperparameters (`optimizer.hyperparameter`) and the state tensors are graph values, so the same
arithmetic runs on float64 0-d tensors. These helpers keep the two paths numerically equal: a
traced float64 scalar is rounded to the dtype it is applied to, as the number would be.

A value is a graph value exactly when it is a tracing tensor (``_traced``), as in `adam`.
"""

from __future__ import annotations

from ...ir import dtypes as D
from ..ops.creation import full_like, tensor
from ..tensor import Tensor

__all__ = ["state_number", "in_dtype", "scalar_dtype", "scalar_state", "filled_like"]


def state_number(t: Tensor):
    """The value of 0-d state tensor ``t``: a Python number (PyTorch's ``.item()``), or inside
    ``ember.compile`` a float64 graph value (the clone is an op, so the state becomes a graph
    input there, never read)."""
    value = t.clone().double()
    return value if value._traced else value.item()


def in_dtype(value, like: Tensor):
    """``value`` (a number, or a float64 graph value) as it acts on tensor ``like``: numbers
    pass through (the op rounds them), graph values are rounded to ``like``'s dtype."""
    return value.to(like.dtype) if isinstance(value, Tensor) else value


def scalar_dtype() -> D.DType:
    """The dtype of 0-d optimizer state such as ``step`` (PyTorch's ``_get_scalar_dtype``)."""
    return D.float64 if D.get_default_dtype() is D.float64 else D.float32


def scalar_state(value, dtype: D.DType | None = None) -> Tensor:
    """A new 0-d tensor of ``dtype`` (default `scalar_dtype`) holding ``value``, a number or a
    graph value (``torch.as_tensor(number)`` rounds through the default float dtype the same
    way)."""
    dtype = dtype or scalar_dtype()
    if isinstance(value, Tensor):
        return value.to(dtype).clone()
    return tensor(value, dtype=dtype)


def filled_like(p: Tensor, value) -> Tensor:
    """A new tensor shaped like ``p`` with every element ``value`` (a number or a 0-d graph
    value, rounded to ``p``'s dtype)."""
    if isinstance(value, Tensor):
        return full_like(p, 0).add_(value.to(p.dtype))
    return full_like(p, value)
