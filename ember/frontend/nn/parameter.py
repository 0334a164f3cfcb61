"""``nn.Parameter``: a leaf tensor that a Module registers as a learnable parameter."""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as D
from ..tensor import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A tensor that ``Module.__setattr__`` registers in ``_parameters``; requires grad by default.

    ``Parameter(t)`` shares ``t``'s storage, as in PyTorch.
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            data = Tensor._make(np.zeros((0,), dtype=D.get_default_dtype().np))
        self = cls._make(data._data)
        self._vc = data._vc
        if requires_grad:
            self.requires_grad_(True)
        return self

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        out = Parameter(Tensor._make(self._data.copy()), self._requires_grad)
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (self._data.copy(), self._requires_grad))


def _rebuild_parameter(data, requires_grad):
    return Parameter(Tensor._make(data), requires_grad)
