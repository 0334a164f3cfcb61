"""What every ``ember.linalg`` function shares: operand checks with PyTorch's messages,
`LinAlgError`, and the bridge between tensors and the numpy arrays the factorizations run on.

Note: the factorizations (``inv``, ``solve``, ``cholesky``, ``qr``, ``svd``, ``eigh``...) are
custom `autograd.Function`s whose forward calls ``numpy.linalg`` on the operands' values and
whose backward is PyTorch's formula written with ember ops, so gradients of gradients work
(the backward builds a graph when ``create_graph=True``). Reading values makes them eager-only:
inside ``ember.compile`` they are a graph break, like ``nonzero``. Batch dimensions are
broadcast with ember ops *before* a Function runs, so the Functions see operands of one batch
shape and broadcasting's gradient (a sum over the broadcast dims) comes from autograd.
"""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as D
from ...ir.errors import DTypeError, EmberError, ShapeError
from .. import trace_state
from ..ops.common import broadcast_shapes
from ..ops.shape import expand
from ..tensor import Tensor

__all__ = [
    "LinAlgError",
    "check_matrix",
    "check_square",
    "check_same_dtype",
    "check_float",
    "check_floating",
    "values",
    "wrap",
    "broadcast_batch",
    "torch_dtype_name",
]

_TORCH_NAMES = {
    "float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double",
    "int8": "Char", "int32": "Int", "int64": "Long", "bool": "Bool",
}  # fmt: skip


class LinAlgError(EmberError, RuntimeError):
    """A factorization that cannot be completed: a singular or non-positive-definite input
    (``torch.linalg.LinAlgError``)."""


def torch_dtype_name(dtype: D.DType) -> str:
    """PyTorch's scalar type name (``Float``, ``Long``), as its linalg messages spell it."""
    return _TORCH_NAMES[dtype.name]


def check_matrix(op: str, A, name: str = "A", *, low_precision: bool = False) -> Tensor:
    """``A`` is a float32/float64 tensor (any float with ``low_precision``) with at least 2
    dims (PyTorch's checks and words)."""
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: expected a Tensor for {name}, got {type(A).__name__}")
    if A.ndim < 2:
        raise ShapeError(op, f"The input tensor {name} must have at least 2 dimensions.")
    (check_floating if low_precision else check_float)(op, A)
    return A


def check_floating(op: str, A) -> None:
    """``A`` has a floating dtype (the norms accept float16 and bfloat16 too)."""
    if not A.dtype.is_floating_point:
        raise DTypeError(
            op,
            "Expected a floating point or complex tensor as input. "
            f"Got {torch_dtype_name(A.dtype)}",
        )


def check_float(op: str, A) -> None:
    """``A`` is float32 or float64, the dtypes LAPACK factorizes."""
    check_floating(op, A)
    if A.dtype.itemsize < 4:
        raise DTypeError(op, f"Low precision dtypes not supported. Got {torch_dtype_name(A.dtype)}")


def check_square(op: str, A, name: str = "A") -> Tensor:
    check_matrix(op, A, name)
    if A.shape[-1] != A.shape[-2]:
        raise ShapeError(
            op,
            f"{name} must be batches of square matrices, but they are "
            f"{A.shape[-2]} by {A.shape[-1]} matrices",
        )
    return A


def check_same_dtype(op: str, A, B) -> None:
    if A.dtype is not B.dtype:
        raise DTypeError(
            op,
            "Expected A and B to have the same dtype, but found A of type "
            f"{torch_dtype_name(A.dtype)} and B of type {torch_dtype_name(B.dtype)} instead",
        )


def values(t: Tensor, op: str) -> np.ndarray:
    """The numpy values of ``t`` (a graph break inside ``ember.compile``)."""
    return trace_state.concrete(t, op)


def wrap(arr: np.ndarray, dtype: D.DType) -> Tensor:
    """A fresh tensor holding ``arr`` as ``dtype`` (numpy's results can be wider)."""
    return Tensor._make(np.array(arr, dtype=dtype.np, order="C"))


def broadcast_batch(op: str, A, B, b_tail: int = 2) -> tuple:
    """``A`` (*, m, n) and ``B`` (*, ..., with ``b_tail`` trailing matrix dims) expanded to one
    batch shape."""
    batch = broadcast_shapes(op, tuple(A.shape[:-2]), tuple(B.shape[: B.ndim - b_tail]))
    A = expand(A, *batch, *A.shape[-2:]) if tuple(A.shape[:-2]) != batch else A
    tail = tuple(B.shape[B.ndim - b_tail :])
    B = expand(B, *batch, *tail) if tuple(B.shape[: B.ndim - b_tail]) != batch else B
    return A, B
