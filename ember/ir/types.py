"""`TensorType`: the static type of a graph value (shape, dtype, device)."""

from __future__ import annotations

from .dtypes import DType

__all__ = ["TensorType", "format_shape", "Scalar", "is_scalar"]

Scalar = bool | int | float


def is_scalar(x) -> bool:
    """Python numbers appear in the IR as literal operands of elementwise ops."""
    return isinstance(x, bool | int | float)


def format_shape(shape: tuple[int, ...], dtype: DType) -> str:
    """``f32[512,784]``: how shapes appear in the IR text and in error messages."""
    return f"{dtype.short}[{','.join(str(d) for d in shape)}]"


class TensorType:
    """Shape, dtype and device of a tensor-valued graph value. Immutable and hashable."""

    __slots__ = ("shape", "dtype", "device")

    def __init__(self, shape: tuple[int, ...], dtype: DType, device: str = "cpu") -> None:
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.device = device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, TensorType)
            and self.shape == other.shape
            and self.dtype is other.dtype
            and self.device == other.device
        )

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype.name, self.device))

    def __str__(self) -> str:
        text = format_shape(self.shape, self.dtype)
        return text if self.device == "cpu" else f"{text}@{self.device}"

    __repr__ = __str__
