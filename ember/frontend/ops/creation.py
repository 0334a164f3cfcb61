"""Tensor creation: tensor, as_tensor, from_numpy, zeros, ones, full, empty, arange, linspace,
eye, the ``*_like`` family, tril and triu. Computed values go through primitives (``full``,
``iota``), so a traced program records them as graph nodes."""

from __future__ import annotations

import math

import numpy as np

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import ShapeError
from ..tensor import Tensor
from .common import describe, literal

__all__ = [
    "tensor", "as_tensor", "asarray", "from_numpy", "zeros", "ones", "full", "empty", "arange",
    "linspace", "eye", "zeros_like", "ones_like", "full_like", "empty_like", "tril", "triu",
    "scalar_tensor",
]  # fmt: skip


def _size(size) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], list | tuple):
        size = tuple(size[0])
    for n in size:
        if not isinstance(n, int | np.integer) or n < 0:
            raise ShapeError("zeros", f"sizes must be non-negative integers, got {list(size)}")
    return tuple(int(n) for n in size)


def _finish(t: Tensor, requires_grad: bool) -> Tensor:
    if requires_grad:
        t.requires_grad_(True)
    return t


def _leaf(data: np.ndarray, requires_grad: bool) -> Tensor:
    return _finish(Tensor._make(data), requires_grad)


def _infer_dtype(data) -> D.DType:
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, np.ndarray | np.generic):
        return D.from_numpy(np.asarray(data).dtype)
    if isinstance(data, bool):
        return D.bool_
    if isinstance(data, int):
        return D.int64
    if isinstance(data, float):
        return D.get_default_dtype()
    if isinstance(data, list | tuple):
        kinds = [_infer_dtype(x) for x in data]
        if not kinds:
            return D.get_default_dtype()
        out = kinds[0]
        for k in kinds[1:]:
            out = D.promote_types(out, k)
        return out
    raise TypeError(f"tensor: could not infer dtype of {type(data).__name__}")


def _to_numpy(data):
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, list | tuple):
        return [_to_numpy(x) for x in data]
    return data


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists, arrays, tensors)."""
    dtype = dtype or _infer_dtype(data)
    arr = np.array(_to_numpy(data), dtype=dtype.np)
    return _leaf(arr, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor``, but shares memory with a numpy array or tensor of the same dtype."""
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype is dtype else P.convert(data, dtype=dtype)
    if (
        isinstance(data, np.ndarray)
        and (dtype is None or data.dtype == dtype.np)
        and data.dtype in {d.np for d in D.ALL_DTYPES}
    ):
        return Tensor._make(data)
    return tensor(data, dtype=dtype)


asarray = as_tensor


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (uint16/uint32 are widened: a copy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    dtype = D.from_numpy(array.dtype)
    if array.dtype != dtype.np:
        array = array.astype(dtype.np)
    return Tensor._make(array)


def scalar_tensor(value, *, dtype=None) -> Tensor:
    return tensor(value, dtype=dtype or D.get_default_dtype())


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    size = _size((size,) if isinstance(size, int) else tuple(size))
    if dtype is None:
        dtype = D.scalar_dtype(fill_value) if not isinstance(fill_value, Tensor) else (
            fill_value.dtype)  # fmt: skip
    value = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
    out = P.full(shape=size, value=literal(value, dtype), dtype=dtype)
    return _finish(out, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype = dtype or D.get_default_dtype()
    return _finish(P.full(shape=_size(size), value=literal(0, dtype), dtype=dtype), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype = dtype or D.get_default_dtype()
    return _finish(P.full(shape=_size(size), value=literal(1, dtype), dtype=dtype), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def _like(fn):
    def like(input, *args, dtype=None, device=None, requires_grad: bool = False, **kwargs):
        return fn(input.shape, *args, dtype=dtype or input.dtype, requires_grad=requires_grad)

    like.__name__ = fn.__name__ + "_like"
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad: bool = False):
    return full(input.shape, fill_value, dtype=dtype or input.dtype, requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False):
    if end is None:
        start, end = 0, start
    start, end, step = (x.item() if isinstance(x, Tensor) else x for x in (start, end, step))
    if step == 0:
        raise ShapeError("arange", "step must be nonzero")
    if (end - start) * step < 0:
        raise ShapeError(
            "arange",
            f"upper bound and larger bound inconsistent with step sign ({start}, {end}, {step})",
        )
    if dtype is None:
        is_float = any(isinstance(x, float) for x in (start, end, step))
        dtype = D.get_default_dtype() if is_float else D.int64
    n = max(0, math.ceil((end - start) / step))
    if not dtype.is_floating_point and not all(isinstance(x, int) for x in (start, end, step)):
        # PyTorch casts the bounds to the (integer) accumulate type first: the values are
        # int(start) + i * int(step); int64 also takes its length from the truncated bounds.
        start, end, step = int(start), int(end), int(step)
        if dtype is D.int64:
            if step == 0:
                raise ShapeError("arange", "step must be nonzero")
            if (end - start) * step < 0:
                raise ShapeError(
                    "arange",
                    f"upper bound and larger bound inconsistent with step sign ({start}, "
                    f"{end}, {step})",
                )
            num = end - start + step - (1 if step > 0 else -1)
            n = max(0, abs(num) // abs(step) * (1 if (num < 0) == (step < 0) else -1))
    work = D.float64 if dtype.is_floating_point else D.int64
    idx = P.iota(shape=(n,), axis=0, dtype=work)
    values = P.add(P.mul(idx, literal(step, work)), literal(start, work))
    out = values if work is dtype else P.convert(values, dtype=dtype)
    return _finish(out, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False):
    """PyTorch's linspace: the first half counts up from start, the second down from end."""
    dtype = dtype or D.get_default_dtype()
    if steps < 0:
        raise ShapeError("linspace", f"number of steps must be non-negative, got {steps}")
    start, end = float(start), float(end)
    if steps <= 1:
        return full((steps,), start, dtype=dtype, requires_grad=requires_grad)
    step = (end - start) / (steps - 1)
    i = P.iota(shape=(steps,), axis=0, dtype=D.float64)
    up = P.add(P.mul(i, step), start)
    down = P.sub(end, P.mul(P.sub(float(steps - 1), i), step))
    values = P.where(P.lt(i, float(steps // 2)), up, down)
    return _finish(P.convert(values, dtype=dtype), requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False):
    m = n if m is None else m
    dtype = dtype or D.get_default_dtype()
    rows = P.iota(shape=(n, m), axis=0, dtype=D.int64)
    cols = P.iota(shape=(n, m), axis=1, dtype=D.int64)
    return _finish(P.convert(P.eq(rows, cols), dtype=dtype), requires_grad)


def _triangle(op: str, input, diagonal: int, keep_upper: bool):
    if input.ndim < 2:
        raise ShapeError(op, f"input tensor must have at least 2 dimensions, got {describe(input)}")
    n, m = input.shape[-2:]
    rows = P.iota(shape=(n, m), axis=0, dtype=D.int64)
    cols = P.iota(shape=(n, m), axis=1, dtype=D.int64)
    offset = P.sub(cols, rows)
    keep = P.ge(offset, diagonal) if keep_upper else P.le(offset, diagonal)
    keep = P.broadcast_to(keep, shape=tuple(input.shape)) if input.ndim > 2 else keep
    return P.where(keep, input, literal(0, input.dtype))


def tril(input, diagonal: int = 0):
    return _triangle("tril", input, diagonal, keep_upper=False)


def triu(input, diagonal: int = 0):
    return _triangle("triu", input, diagonal, keep_upper=True)
