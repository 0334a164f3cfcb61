"""Sorting, selection and index-based reads and writes with PyTorch's signatures.

``sort``/``argsort``/``topk``/``kthvalue``/``median`` are one ``argsort`` primitive (int64
indices, stable, NaN sorted as the largest value) followed by a ``gather`` of the values, so
gradients flow through ``gather`` to the selected elements, as in PyTorch. ``gather``,
``scatter``, ``scatter_add``, ``index_select``, ``index_add``, ``index_fill``, ``index_copy``
and ``take_along_dim`` are ``gather``/``scatter_add``/``where`` with an index laid out as the
primitive expects. ``masked_select`` has a data-dependent shape and runs eagerly.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import (
    DTypeError,
    IndexOutOfRange,
    InvalidValueError,
    ShapeError,
    TensorTypeError,
)
from .. import trace_state
from ..dims import normalize_dim
from ..tensor import Tensor
from .common import as_tensor_operand, broadcast_shapes, broadcast_to, cast, describe, literal

__all__ = [
    "sort", "argsort", "msort", "topk", "kthvalue", "median", "gather", "scatter",
    "scatter_add", "index_select", "take_along_dim", "masked_select", "index_add",
    "index_fill", "index_copy",
]  # fmt: skip

SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])
KthvalueResult = namedtuple("kthvalue", ["values", "indices"])
MedianResult = namedtuple("median", ["values", "indices"])


class IndexShapeError(ShapeError, IndexError):
    """An index of the wrong rank (PyTorch raises IndexError)."""


class VectorIndexOutOfRange(IndexOutOfRange, RuntimeError):
    """An index_select/index_add/index_fill/index_copy index out of range: PyTorch raises
    IndexError or RuntimeError for it, depending on the shapes (which kernel runs)."""


def _as_1d(x):
    """A 0-d tensor as ``[1]`` (PyTorch treats it as one element along dim 0/-1)."""
    return P.reshape(x, shape=(1,)) if x.ndim == 0 else x


def _sorted_indices(op, x, axis, descending, stable=True):
    return P.argsort(x, axis=axis, descending=bool(descending), stable=bool(stable))


def _slice_axis(x, axis, start, stop):
    starts = tuple(start if i == axis else 0 for i in range(x.ndim))
    stops = tuple(stop if i == axis else n for i, n in enumerate(x.shape))
    return P.slice(x, starts=starts, stops=stops, steps=(1,) * x.ndim)


def _drop(y, axis):
    return P.reshape(y, shape=tuple(n for i, n in enumerate(y.shape) if i != axis))


# ---------------------------------------------------------------------------------- sorting


def sort(input, dim=-1, descending: bool = False, *, stable: bool = False):
    """``(values, indices)`` sorted along ``dim``; NaN sorts as the largest value."""
    axis = normalize_dim(dim, input, "sort")
    if input.ndim == 0:
        return SortResult(P.copy(input), P.full(shape=(), value=0, dtype=D.int64))
    idx = _sorted_indices("sort", input, axis, descending, stable)
    return SortResult(P.gather(input, idx, axis=axis), idx)


def argsort(input, dim=-1, descending: bool = False, *, stable: bool = False):
    axis = normalize_dim(dim, input, "argsort")
    if input.ndim == 0:
        return P.full(shape=(), value=0, dtype=D.int64)
    return _sorted_indices("argsort", input, axis, descending, stable)


def msort(input):
    """``sort(input, dim=0).values``."""
    return sort(input, 0).values


def topk(input, k, dim=-1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The ``k`` largest (or smallest) elements along ``dim`` and their indices."""
    axis = normalize_dim(dim, input, "topk")
    x = _as_1d(input)
    n = x.shape[axis]
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TensorTypeError("topk", f"k must be an int, got {type(k).__name__}")
    k = int(k)
    if not 0 <= k <= n:
        raise InvalidValueError(
            "topk", f"selected index k out of range: k={k} for {describe(input)}"
        )
    idx = _slice_axis(_sorted_indices("topk", x, axis, largest), axis, 0, k)
    values = P.gather(x, idx, axis=axis)
    if input.ndim == 0:
        return TopkResult(P.reshape(values, shape=()), P.reshape(idx, shape=()))
    return TopkResult(values, idx)


def _pick(op, input, dim, keepdim, position, result_type):
    """Element at sorted ``position`` (an int, or an int64 tensor of the kept shape) along
    ``dim``: ``(values, indices)``."""
    axis = normalize_dim(dim, input, op)
    x = _as_1d(input)
    if x.shape[axis] == 0:
        raise IndexOutOfRange(
            op,
            f"cannot select from empty dim {axis} of {describe(input)} (expected a non-empty dim)",
        )
    order = _sorted_indices(op, x, axis, False)
    if isinstance(position, int):
        idx = _slice_axis(order, axis, position, position + 1)
    else:
        idx = P.gather(order, position, axis=axis)
    values = P.gather(x, idx, axis=axis)
    if input.ndim == 0:
        return result_type(P.reshape(values, shape=()), P.reshape(idx, shape=()))
    if keepdim:
        return result_type(values, idx)
    return result_type(_drop(values, axis), _drop(idx, axis))


def kthvalue(input, k, dim=-1, keepdim: bool = False):
    """The ``k``-th smallest element (1-based) along ``dim`` and its index."""
    axis = normalize_dim(dim, input, "kthvalue")
    n = 1 if input.ndim == 0 else input.shape[axis]
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TensorTypeError("kthvalue", f"k must be an int, got {type(k).__name__}")
    if not 1 <= k <= n:
        raise InvalidValueError(
            "kthvalue", f"selected number k out of range for dimension {dim}: k={k} with "
            f"{describe(input)}"
        )  # fmt: skip
    return _pick("kthvalue", input, dim, keepdim, int(k) - 1, KthvalueResult)


def _median_position(x, axis):
    """The lower median's sorted position; where the slice holds NaN, the first NaN's
    (PyTorch's ``median`` propagates NaN; ``nanmedian`` is the one that skips it)."""
    n = x.shape[axis]
    lower = (n - 1) // 2
    kept = tuple(1 if i == axis else m for i, m in enumerate(x.shape))
    if not x.dtype.is_floating_point:
        return P.full(shape=kept, value=lower, dtype=D.int64)
    nans = P.reduce_sum(P.convert(P.ne(x, x), dtype=D.int64), axes=(axis,))
    nans = P.reshape(nans, shape=kept)
    return P.where(P.gt(nans, 0), P.sub(n, nans), P.full(shape=kept, value=lower, dtype=D.int64))


def median(input, dim=None, keepdim: bool = False):
    """``median(x)``: the lower median of all elements; ``median(x, dim)`` -> (values,
    indices)."""
    if dim is None:
        flat = P.reshape(input, shape=(input.numel(),))
        if flat.shape[0] == 0:
            return P.full(shape=(), value=float("nan"), dtype=input.dtype)
        pos = P.reshape(_median_position(flat, 0), shape=(1,))
        return P.reshape(_pick("median", flat, 0, False, pos, MedianResult).values, shape=())
    axis = normalize_dim(dim, input, "median")
    x = _as_1d(input)
    if x.shape[axis] == 0:
        return _pick("median", input, dim, keepdim, 0, MedianResult)  # raises the error
    return _pick("median", input, dim, keepdim, _median_position(x, axis), MedianResult)


# ----------------------------------------------------------------------- index reads/writes


def _index(op, index, name="index"):
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(index).__name__}")
    if index.dtype is not D.int64:
        raise DTypeError(op, f"expected dtype int64 for {name}, got {describe(index)}")
    return index


def _check_rank(op, input, index, what="index"):
    if max(index.ndim, 1) != max(input.ndim, 1):
        raise ShapeError(
            op,
            f"{what} {describe(index)} and input {describe(input)} must have the same number "
            "of dimensions",
        )


def gather(input, dim, index, *, sparse_grad: bool = False):
    """``out[i][j] = input[index[i][j]][j]`` (dim 0): ``index`` may be smaller than ``input``
    in the other dims."""
    axis = normalize_dim(dim, input, "gather")
    index = _index("gather", index)
    _check_rank("gather", input, index)
    if input.ndim == 0 or index.ndim == 0:
        out = P.gather(_as_1d(input), _as_1d(index), axis=0)
        return P.reshape(out, shape=tuple(index.shape))
    return P.gather(input, index, axis=axis)


def _source(op, input, index, src, axis):
    """``src`` (a tensor at least as large as ``index``, or a number) as a tensor of
    ``index``'s shape in ``input``'s dtype."""
    if not isinstance(src, Tensor):
        value = P.full(shape=(), value=literal(src, input.dtype), dtype=input.dtype)
        return P.broadcast_to(value, shape=tuple(index.shape))
    if src.dtype is not input.dtype:
        raise DTypeError(
            op,
            f"expected self.dtype to be equal to src.dtype: {describe(input)} and {describe(src)}",
        )
    _check_rank(op, index, src, "src")
    if src.ndim == 0:
        return P.reshape(src, shape=tuple(index.shape))
    if any(s < i for s, i in zip(src.shape, index.shape)):
        raise ShapeError(
            op, f"expected index {describe(index)} to be no larger than src {describe(src)}"
        )
    if tuple(src.shape) == tuple(index.shape):
        return src
    return P.slice(src, starts=(0,) * src.ndim, stops=tuple(index.shape), steps=(1,) * src.ndim)


def _last_writes(op, input, index, axis) -> np.ndarray:
    """Bool mask over ``index``: the element that writes each target last (eager bookkeeping
    on the index values, so repeated targets get one value: the last, as ``x[i] = v``)."""
    idx = trace_state.concrete(index, op)
    n = input.shape[axis]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)].flat[0]
        raise IndexOutOfRange(
            op, f"index {bad} is out of bounds for dimension {axis} with size {n}"
        )
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = idx
    target = np.ravel_multi_index(tuple(np.broadcast_arrays(*grid)), input.shape).reshape(-1)
    keep = np.zeros(target.size, dtype=np.bool_)
    if target.size:
        rev_first = np.unique(target[::-1], return_index=True)[1]
        keep[target.size - 1 - rev_first] = True
    return keep.reshape(idx.shape)


def _scatter_set(op, input, axis, index, src):
    """``input`` with ``src`` written where ``index`` points along ``axis`` (no accumulation)."""
    if index.numel() == 0:
        return P.copy(input)
    keep = Tensor._make(_last_writes(op, input, index, axis))
    src = P.where(keep, src, literal(0, input.dtype))
    ones = P.broadcast_to(P.full(shape=(), value=1, dtype=D.int64), shape=tuple(index.shape))
    zeros = P.full(shape=tuple(input.shape), value=0, dtype=D.int64)
    written = P.gt(P.scatter_add(zeros, index, ones, axis=axis), 0)
    cleared = P.where(written, literal(0, input.dtype), input)
    return P.scatter_add(cleared, index, src, axis=axis)


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """``input`` with ``src`` (a tensor, or a number ``value``) written at ``index`` along
    ``dim``; ``reduce="add"`` accumulates like ``scatter_add``."""
    axis = normalize_dim(dim, input, "scatter")
    index = _index("scatter", index)
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter: expected a src tensor or a value")
    _check_rank("scatter", input, index)
    x, idx = _as_1d(input), _as_1d(index)
    s = _as_1d(src) if isinstance(src, Tensor) else src
    s = _source("scatter", x, idx, s, axis)
    if reduce is None:
        out = _scatter_set("scatter", x, axis, idx, s)
    elif reduce == "add":
        out = P.scatter_add(x, idx, s, axis=axis)
    else:
        raise NotImplementedError(f"scatter: reduce={reduce!r} is not supported (use 'add')")
    return P.reshape(out, shape=()) if input.ndim == 0 else out


def scatter_add(input, dim, index, src):
    """``input`` with ``src`` added at ``index`` along ``dim`` (repeated targets accumulate)."""
    axis = normalize_dim(dim, input, "scatter_add")
    index = _index("scatter_add", index)
    _check_rank("scatter_add", input, index)
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add: src must be a Tensor, got {type(src).__name__}")
    x, idx = _as_1d(input), _as_1d(index)
    s = _source("scatter_add", x, idx, _as_1d(src), axis)
    out = P.scatter_add(x, idx, s, axis=axis)
    return P.reshape(out, shape=()) if input.ndim == 0 else out


def _vector_index(op, input, index, axis):
    """A 1-d (or 0-d) int64/int32 index into dim ``axis`` of ``input``, checked in range."""
    if not isinstance(index, Tensor):
        index = as_tensor_operand(index, op)
    if index.dtype not in (D.int64, D.int32):
        raise DTypeError(op, f"expected index to have int64 or int32 dtype, got {describe(index)}")
    if index.ndim > 1:
        raise IndexShapeError(op, f"index {describe(index)} must be a vector (0-d or 1-d)")
    index = P.reshape(cast(index, D.int64), shape=(index.numel(),))
    data = index._data if isinstance(index, Tensor) and not index._traced else None
    n = 1 if input.ndim == 0 else input.shape[axis]
    if data is not None and data.size and (data.min() < -n or data.max() >= n):
        bad = data[(data < -n) | (data >= n)].flat[0]
        raise VectorIndexOutOfRange(
            op, f"index {bad} is out of bounds for dimension {axis} with size {n}"
        )
    if data is not None and data.size and data.min() < 0:  # negative indices wrap, as in torch
        index = P.remainder(index, n)
    return index


def _spread(index, axis, shape):
    """A 1-d index laid along ``axis`` and broadcast to ``shape``."""
    line = P.reshape(index, shape=tuple(n if i == axis else 1 for i, n in enumerate(shape)))
    return broadcast_to(line, tuple(shape))


def index_select(input, dim, index):
    """``input`` restricted to the positions ``index`` (1-d) of ``dim``."""
    axis = normalize_dim(dim, input, "index_select")
    idx = _vector_index("index_select", input, index, axis)
    x = _as_1d(input)
    shape = tuple(idx.shape[0] if i == axis else n for i, n in enumerate(x.shape))
    out = P.gather(x, _spread(idx, axis, shape), axis=axis)
    return P.reshape(out, shape=tuple(idx.shape) if index.ndim else ()) if input.ndim == 0 else out


def _index_source(op, x, axis, idx, source):
    expected = tuple(idx.shape[0] if i == axis else n for i, n in enumerate(x.shape))
    s = _as_1d(source)
    if tuple(s.shape) != expected:
        raise ShapeError(
            op,
            f"source {describe(source)} must have the shape of input {describe(x)} with dim "
            f"{axis} of size {idx.shape[0]} (the index length)",
        )
    return s, expected


def index_add(input, dim, index, source, *, alpha=1):
    """``input`` with ``alpha * source`` added at positions ``index`` of ``dim``."""
    axis = normalize_dim(dim, input, "index_add")
    idx = _vector_index("index_add", input, index, axis)
    x = _as_1d(input)
    if not isinstance(source, Tensor):
        raise TypeError(f"index_add: source must be a Tensor, got {type(source).__name__}")
    if source.dtype is not input.dtype:
        raise DTypeError(
            "index_add", f"source {describe(source)} and input {describe(input)} differ in dtype"
        )
    s, shape = _index_source("index_add", x, axis, idx, source)
    if alpha != 1:
        s = P.mul(s, literal(alpha, x.dtype))
    out = P.scatter_add(x, _spread(idx, axis, shape), s, axis=axis)
    return P.reshape(out, shape=()) if input.ndim == 0 else out


def index_copy(input, dim, index, source):
    """``input`` with the slices ``index`` of ``dim`` replaced by ``source``'s."""
    axis = normalize_dim(dim, input, "index_copy")
    idx = _vector_index("index_copy", input, index, axis)
    x = _as_1d(input)
    if not isinstance(source, Tensor) or source.dtype is not input.dtype:
        raise DTypeError(
            "index_copy",
            f"source {describe(source)} and input {describe(input)} must have the same dtype",
        )
    s, shape = _index_source("index_copy", x, axis, idx, source)
    out = _scatter_set("index_copy", x, axis, _spread(idx, axis, shape), s)
    return P.reshape(out, shape=()) if input.ndim == 0 else out


def index_fill(input, dim, index, value):
    """``input`` with the slices ``index`` of ``dim`` set to ``value`` (a number or 0-d
    tensor)."""
    axis = normalize_dim(dim, input, "index_fill")
    idx = _vector_index("index_fill", input, index, axis)
    x = _as_1d(input)
    n = x.shape[axis]
    counts = P.scatter_add(
        P.full(shape=(n,), value=0, dtype=D.int64),
        idx,
        P.broadcast_to(P.full(shape=(), value=1, dtype=D.int64), shape=tuple(idx.shape)),
        axis=0,
    )
    mask = P.reshape(P.gt(counts, 0), shape=tuple(n if i == axis else 1 for i in range(x.ndim)))
    mask = P.broadcast_to(mask, shape=tuple(x.shape))
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(
                "index_fill",
                f"only supports a 0-dimensional value tensor, but got {describe(value)}",
            )
        v = P.broadcast_to(cast(value, x.dtype), shape=tuple(x.shape))
    else:
        v = literal(value, x.dtype)
    out = P.where(mask, v, x)
    return P.reshape(out, shape=()) if input.ndim == 0 else out


def take_along_dim(input, indices, dim=None):
    """``gather`` with ``input`` and ``indices`` broadcast to each other outside ``dim``;
    ``dim=None`` indexes the flattened input."""
    indices = _index("take_along_dim", indices, "indices")
    if dim is None:
        flat = P.reshape(input, shape=(input.numel(),))
        return P.gather(flat, P.reshape(indices, shape=(indices.numel(),)), axis=0)
    axis = normalize_dim(dim, input, "take_along_dim")
    _check_rank("take_along_dim", input, indices, "indices")
    x, idx = _as_1d(input), _as_1d(indices)
    outer = broadcast_shapes(
        "take_along_dim",
        tuple(1 if i == axis else n for i, n in enumerate(x.shape)),
        tuple(1 if i == axis else n for i, n in enumerate(idx.shape)),
        operands=[input, indices],
    )
    xs = tuple(x.shape[axis] if i == axis else n for i, n in enumerate(outer))
    ids = tuple(idx.shape[axis] if i == axis else n for i, n in enumerate(outer))
    out = P.gather(broadcast_to(x, xs), broadcast_to(idx, ids), axis=axis)
    return P.reshape(out, shape=()) if input.ndim == 0 else out


def masked_select(input, mask):
    """The elements of ``input`` where the bool ``mask`` is true, as a 1-d tensor (both
    broadcast to one shape; the output size depends on the mask's values, so this is eager)."""
    if not isinstance(mask, Tensor) or mask.dtype is not D.bool_:
        raise DTypeError("masked_select", f"expected a bool mask, got {describe(mask)}")
    shape = broadcast_shapes(
        "masked_select", tuple(input.shape), tuple(mask.shape), operands=[input, mask]
    )
    x = broadcast_to(input, shape)
    m = np.broadcast_to(trace_state.concrete(mask, "masked_select"), shape).reshape(-1)
    picked = Tensor._make(np.flatnonzero(m).astype(np.int64))
    return P.gather(P.reshape(x, shape=(int(np.prod(shape, dtype=np.int64)),)), picked, axis=0)
