"""The legacy typed constructors: ``ember.FloatTensor``, ``LongTensor``... as PyTorch's.

``LongTensor(2, 3)`` (or a ``Size``) makes a tensor of that shape (zeros, where PyTorch leaves
memory uninitialized), ``LongTensor([1, 2])`` one holding the data, ``LongTensor()`` an empty
one, and ``LongTensor(t)`` returns ``t`` when it already has that dtype. As in PyTorch the
classes are not subclasses of `Tensor`, but ``isinstance(t, ember.FloatTensor)`` asks whether
``t`` is a float32 tensor (a metaclass ``__instancecheck__``).
``ByteTensor`` is left out: ember has no uint8 dtype.
"""

from __future__ import annotations

import numpy as np

from ..ir import dtypes as D
from ..ir.errors import TensorTypeError
from .ops.creation import tensor
from .tensor import Size, Tensor

__all__ = [
    "FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "ByteTensor", "CharTensor",
    "ShortTensor", "IntTensor", "LongTensor", "BoolTensor",
]  # fmt: skip


class _LegacyTensorType(type):
    """The metaclass: calling the class constructs, ``isinstance`` compares dtypes."""

    dtype: D.DType

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype

    def __call__(cls, *args, device=None, **kwargs):
        if kwargs:
            raise TypeError(f"{cls.__name__}(): unexpected keyword arguments {sorted(kwargs)}")
        if not args:
            return Tensor._make(np.zeros((0,), dtype=cls.dtype.np))
        if all(isinstance(a, int) and not isinstance(a, bool) for a in args) or (
            len(args) == 1 and isinstance(args[0], Size)
        ):
            shape = tuple(args[0]) if isinstance(args[0], Size) else args
            return Tensor._make(np.zeros(shape, dtype=cls.dtype.np))
        if len(args) != 1:
            raise TypeError(
                f"{cls.__name__}(): expected sizes (ints) or one sequence of data, got "
                f"{', '.join(type(a).__name__ for a in args)}"
            )
        data = args[0]
        if isinstance(data, Tensor):
            if data.dtype is not cls.dtype:
                raise TensorTypeError(
                    cls.__name__,
                    f"expected a {cls.dtype.name} tensor, got {data.dtype.name}; use "
                    f"t.to(ember.{cls.dtype.name}) to convert",
                )
            return data
        return tensor(data, dtype=cls.dtype)

    def __repr__(cls) -> str:
        return f"<class 'ember.{cls.__name__}'>"


def _legacy(name: str, dtype: D.DType) -> type:
    return _LegacyTensorType(name, (), {"dtype": dtype, "__module__": "ember"})


FloatTensor = _legacy("FloatTensor", D.float32)
DoubleTensor = _legacy("DoubleTensor", D.float64)
HalfTensor = _legacy("HalfTensor", D.float16)
BFloat16Tensor = _legacy("BFloat16Tensor", D.bfloat16)
ByteTensor = _legacy("ByteTensor", D.uint8)
CharTensor = _legacy("CharTensor", D.int8)
ShortTensor = _legacy("ShortTensor", D.int16)
IntTensor = _legacy("IntTensor", D.int32)
LongTensor = _legacy("LongTensor", D.int64)
BoolTensor = _legacy("BoolTensor", D.bool_)

BY_DTYPE = {cls.dtype: cls for cls in (FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor,
                                       ByteTensor, CharTensor, ShortTensor, IntTensor,
                                       LongTensor, BoolTensor)}  # fmt: skip
