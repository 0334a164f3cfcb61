"""``nonzero``: indices of the true elements, a data-dependent shape (eager only)."""

from __future__ import annotations

import numpy as np

from .. import trace_state
from ..tensor import Tensor

__all__ = ["nonzero", "argwhere"]


def nonzero(input, *, as_tuple: bool = False):
    """Indices of non-zero elements: ``[n, ndim]`` int64, or a tuple of ``ndim`` 1-d tensors."""
    arr = trace_state.concrete(input, "nonzero (a result shape that depends on values)")
    idx = np.nonzero(arr) if arr.ndim else np.nonzero(arr.reshape(1))
    if as_tuple:
        return tuple(Tensor._make(i.astype(np.int64)) for i in idx)
    return Tensor._make(np.stack(idx, axis=1).astype(np.int64) if idx else
                        np.zeros((int(bool(arr)), 0), np.int64))  # fmt: skip


def argwhere(input):
    return nonzero(input)
