"""Operand preparation shared by the op functions: promotion, broadcasting, literals.

PyTorch's ops accept mixed dtypes and broadcastable shapes; primitives take operands of one
dtype and one shape. The helpers here bridge the two: they compute the result dtype with
PyTorch's promotion rules, insert ``convert`` and ``broadcast_to`` where needed, and turn
Python scalars into literals of the right kind, raising errors that name the user's op.
"""

from __future__ import annotations

import warnings

import numpy as np

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import DTypeError, IndexOutOfRange, ShapeError, user_location
from ...ir.types import format_shape
from ..tensor import Tensor

__all__ = [
    "check_index_values",
    "as_tensor_operand",
    "cast",
    "broadcast_shapes",
    "broadcast_to",
    "prepare",
    "literal",
    "describe",
    "to_float",
    "warn_at_user",
]


def describe(x) -> str:
    if isinstance(x, Tensor):
        return format_shape(x._data.shape, x.dtype)
    return repr(x)


def as_tensor_operand(x, op: str):
    """Tensors and Python numbers pass; numpy arrays and sequences become tensors."""
    if isinstance(x, Tensor | bool | int | float):
        return x
    if isinstance(x, np.ndarray | np.generic):
        arr = np.asarray(x)
        return Tensor._make(arr.astype(D.from_numpy(arr.dtype).np, copy=False))
    if isinstance(x, list | tuple):
        return Tensor._make(np.array(x, dtype=_infer_np_dtype(x)))
    raise TypeError(f"{op}: unsupported operand type {type(x).__name__}")


def _infer_np_dtype(data) -> np.dtype:
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return D.get_default_dtype().np
    if arr.dtype.kind in "iu":
        return np.dtype(np.int64)
    return arr.dtype


def cast(x, dtype: D.DType):
    """``x`` as ``dtype`` (no node when it already is)."""
    if x.dtype is dtype:
        return x
    return P.convert(x, dtype=dtype)


def to_float(x, op: str):
    """Integer and bool tensors become the default float dtype (``exp(int_tensor)`` is float)."""
    if x.dtype.is_floating_point:
        return x
    return P.convert(x, dtype=D.get_default_dtype())


def broadcast_shapes(op: str, *shapes, operands=None) -> tuple[int, ...]:
    """NumPy/PyTorch broadcasting of ``shapes``, or an error naming ``op`` and the operands
    (``operands``, when given, are described with their dtypes: ``f32[3,4]``)."""
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for s in shapes:
        off = ndim - len(s)
        for i, n in enumerate(s):
            cur = out[off + i]
            if n != cur:
                if cur == 1:
                    out[off + i] = n
                elif n != 1:
                    what = (
                        " and ".join(describe(t) for t in operands)
                        if operands is not None
                        else " and ".join(str(list(t)) for t in shapes)
                    )
                    raise ShapeError(
                        op,
                        f"operands {what} cannot be broadcast: size {cur} must match size {n} "
                        f"at non-singleton dimension {off + i}",
                    )
    return tuple(out)


def broadcast_to(x, shape: tuple[int, ...]):
    if tuple(x.shape) == shape:
        return x
    return P.broadcast_to(x, shape=shape)


def literal(value, dtype: D.DType):
    """A Python scalar as a literal of ``dtype``'s kind (ints wrap like PyTorch's)."""
    if dtype.is_floating_point:
        return float(value)
    if dtype is D.bool_:
        return bool(value)
    value = int(value)
    bits = dtype.itemsize * 8
    lo, span = (-(1 << (bits - 1)) if dtype.is_signed else 0), 1 << bits
    if not lo <= value < lo + span:
        value = (value - lo) % span + lo
    return value


def prepare(op: str, *operands, dtype: D.DType | None = None, shape: bool = True):
    """Promote ``operands`` to one dtype (``dtype`` forces it) and broadcast them to one shape.

    Returns the prepared operands: tensors of equal dtype and shape, and literals for Python
    scalars (kept as literals so ``x + 1`` stays one node).
    """
    ops = [as_tensor_operand(x, op) for x in operands]
    tensors = [x for x in ops if isinstance(x, Tensor)]
    if not tensors:
        raise TypeError(f"{op}: expected at least one tensor operand")
    target = dtype or D.result_type(*ops)
    out_shape = None
    if shape and len(tensors) > 1:
        first = tensors[0]._data.shape
        if any(t._data.shape != first for t in tensors[1:]):
            out_shape = broadcast_shapes(op, *(t._data.shape for t in tensors), operands=tensors)
    result = []
    for x in ops:
        if isinstance(x, Tensor):
            x = cast(x, target)
            if out_shape is not None:
                x = broadcast_to(x, out_shape)
            result.append(x)
        else:
            result.append(literal(x, target))
    return result


def check_dtype(op: str, x, ok: bool, what: str) -> None:
    if not ok:
        raise DTypeError(op, f"expects {what}, got {describe(x)}")


def check_index_values(op: str, index, low: int, high: int, message: str, ignore=None) -> None:
    """An error when a value of ``index`` is outside ``[low, high)`` and not ``ignore``:
    ``IndexOutOfRange(op, message)`` with ``{value}`` the first such value. Inside a trace the
    check is a graph node (``check_index``), so the compiled program raises as eager does."""
    if index._traced:
        ignored = () if ignore is None else (int(ignore),)
        P.check_index(index, low=low, high=high, ignore=ignored, op=op, message=message)
        return
    data = index._data
    if data.size == 0:
        return
    bad = (data < low) | (data >= high)
    if ignore is not None:
        bad &= data != ignore
    if bad.any():
        raise IndexOutOfRange(op, message.format(value=data[bad].flat[0]))


def warn_at_user(message: str, category=UserWarning) -> None:
    """Warn at the user's line (the innermost frame outside ember), as PyTorch's warnings do."""
    loc = user_location(2)
    if loc is None:
        warnings.warn(message, category, stacklevel=2)
    else:
        warnings.warn_explicit(message, category, loc.file, loc.line)
