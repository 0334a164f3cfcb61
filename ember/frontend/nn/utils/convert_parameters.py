"""nn.utils.parameters_to_vector and nn.utils.vector_to_parameters."""

from __future__ import annotations

from ...ops.shape import cat, reshape
from ...tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """All of ``parameters`` flattened and concatenated into one 1-d tensor."""
    vec = [reshape(p, (-1,)) for p in parameters]
    return cat(vec)


def vector_to_parameters(vec, parameters) -> None:
    """Copy consecutive slices of the 1-d ``vec`` into ``parameters``' data (sharing storage,
    as PyTorch's ``param.data = ...``)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected ember.Tensor, but got: {type(vec).__name__}")
    pointer = 0
    for param in parameters:
        num_param = param.numel()
        param.data = vec[pointer : pointer + num_param].view_as(param).data
        pointer += num_param
