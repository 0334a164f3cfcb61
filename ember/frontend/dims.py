"""Dimension arguments: negative dims, dim lists, sizes, and the errors for bad ones."""

from __future__ import annotations

import operator

from ..ir.errors import DimError, ShapeError, TensorTypeError
from ..ir.types import format_shape

__all__ = ["normalize_dim", "normalize_dims", "int_sizes", "RepeatedDimError"]


class RepeatedDimError(ShapeError):
    """A dim listed twice (PyTorch raises RuntimeError, not the IndexError of a bad dim)."""


def int_sizes(sizes: tuple, op: str, name: str = "size") -> tuple[int, ...]:
    """Sizes given as ints (``zeros(2, 3)``) or one sequence (``zeros((2, 3))``) as a tuple of
    ints; anything else (None, a float, a str) is a TypeError naming ``op``, as in PyTorch.
    Whether a negative size is allowed is the caller's decision."""
    if len(sizes) == 1 and not isinstance(sizes[0], int):
        sizes = sizes[0]
        if not isinstance(sizes, list | tuple):
            try:
                return (operator.index(sizes),)
            except TypeError:
                raise TensorTypeError(
                    op,
                    f"argument '{name}' must be tuple of ints, not {type(sizes).__name__}",
                ) from None
    out = []
    for i, n in enumerate(sizes):
        try:
            out.append(operator.index(n))
        except TypeError:
            raise TensorTypeError(
                op,
                f"argument '{name}' must be tuple of ints, but found element of type "
                f"{type(n).__name__} at pos {i}",
            ) from None
    return tuple(out)


def _rank_and_name(ndim_or_tensor) -> tuple[int, str]:
    if isinstance(ndim_or_tensor, int):
        return ndim_or_tensor, ""
    t = ndim_or_tensor
    return len(t.shape), f" of {format_shape(tuple(t.shape), t.dtype)}"


def normalize_dim(dim: int, ndim, op: str) -> int:
    """``dim`` in ``[-ndim, ndim)`` as a non-negative index (a 0-d tensor accepts -1 and 0).

    ``ndim`` is a rank or the tensor itself; given the tensor, errors name it (``f32[3,4]``).
    """
    ndim, name = _rank_and_name(ndim)
    n = max(ndim, 1)
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    if not -n <= dim < n:
        raise DimError(
            op,
            f"dimension out of range (expected to be in range of [{-n}, {n - 1}], got {dim}){name}",
        )
    return dim % n


def normalize_dims(dims, ndim, op: str) -> tuple[int, ...]:
    """A dim, a sequence of dims, or None (all dims), as a sorted tuple without repeats."""
    tensor = ndim
    ndim, _ = _rank_and_name(ndim)
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    out = tuple(sorted({normalize_dim(d, tensor, op) for d in dims}))
    if len(out) != len(tuple(dims)):
        raise RepeatedDimError(op, f"dim {list(dims)} appears multiple times in the list of dims")
    return out if ndim else ()  # a 0-d tensor accepts dim 0/-1 and reduces nothing
