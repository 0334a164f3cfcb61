"""Shape and dtype rules of the primitives (the ``rule`` column of the op table).

A rule takes the op name, the operands (anything with ``shape`` and ``dtype``, or a Python
scalar literal for elementwise ops) and the attributes, and returns the output's
``(shape, dtype)``, or raises an `EmberError` that names the op and the operand types.
The same rules type graph nodes, check eager calls and drive the verifier.
"""

from __future__ import annotations

from . import dtypes as D
from .errors import DimError, DTypeError, GraphError, ShapeError, SourceLoc
from .types import format_shape, is_scalar


def graph_error(op: str, detail: str, loc: SourceLoc | None) -> GraphError:
    return GraphError(op, detail, loc)


def describe(x) -> str:
    """``f32[2,3]`` for a tensor-like operand, ``2.5`` for a literal."""
    if is_scalar(x):
        return repr(x)
    return format_shape(tuple(x.shape), x.dtype)


def _tensors(op, inputs, count, loc):
    if len(inputs) != count:
        raise graph_error(op, f"expects {count} operands, got {len(inputs)}", loc)
    return inputs


def _elementwise(op, inputs, loc):
    """Common shape and dtype of elementwise operands; literals adopt the tensors' dtype."""
    tensors = [x for x in inputs if not is_scalar(x)]
    if not tensors:
        raise graph_error(op, "needs at least one tensor operand", loc)
    first = tensors[0]
    for t in tensors[1:]:
        if tuple(t.shape) != tuple(first.shape):
            raise ShapeError(
                op, f"operands {', '.join(describe(x) for x in inputs)} differ in shape", loc
            )
        if t.dtype is not first.dtype:
            raise DTypeError(
                op, f"operands {', '.join(describe(x) for x in inputs)} differ in dtype", loc
            )
    return tuple(first.shape), first.dtype


def _require(op, inputs, dtype, ok: bool, what: str, loc):
    if not ok:
        raise DTypeError(
            op, f"expects {what} operands, got {', '.join(describe(x) for x in inputs)}", loc
        )


def unary_numeric(op, inputs, attrs, loc):
    shape, dtype = _elementwise(op, _tensors(op, inputs, 1, loc), loc)
    return shape, dtype


def unary_floating(op, inputs, attrs, loc):
    shape, dtype = _elementwise(op, _tensors(op, inputs, 1, loc), loc)
    _require(op, inputs, dtype, dtype.is_floating_point, "floating point", loc)
    return shape, dtype


def unary_integral(op, inputs, attrs, loc):
    shape, dtype = _elementwise(op, _tensors(op, inputs, 1, loc), loc)
    _require(op, inputs, dtype, not dtype.is_floating_point, "integer or bool", loc)
    return shape, dtype


def unary_to_bool(op, inputs, attrs, loc):
    shape, _ = _elementwise(op, _tensors(op, inputs, 1, loc), loc)
    return shape, D.bool_


def binary_numeric(op, inputs, attrs, loc):
    return _elementwise(op, _tensors(op, inputs, 2, loc), loc)


def binary_floating(op, inputs, attrs, loc):
    shape, dtype = _elementwise(op, _tensors(op, inputs, 2, loc), loc)
    _require(op, inputs, dtype, dtype.is_floating_point, "floating point", loc)
    return shape, dtype


def binary_integral(op, inputs, attrs, loc):
    shape, dtype = _elementwise(op, _tensors(op, inputs, 2, loc), loc)
    _require(op, inputs, dtype, not dtype.is_floating_point, "integer or bool", loc)
    return shape, dtype


def binary_to_bool(op, inputs, attrs, loc):
    shape, _ = _elementwise(op, _tensors(op, inputs, 2, loc), loc)
    return shape, D.bool_


def where(op, inputs, attrs, loc):
    cond, a, b = _tensors(op, inputs, 3, loc)
    if is_scalar(cond) or cond.dtype is not D.bool_:
        raise DTypeError(op, f"condition must be a bool tensor, got {describe(cond)}", loc)
    shape, dtype = _elementwise(op, [a, b], loc)
    if tuple(cond.shape) != shape:
        raise ShapeError(op, f"condition {describe(cond)} and values {describe(a)} differ", loc)
    return shape, dtype


def convert(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    if not isinstance(attrs["dtype"], D.DType):
        raise graph_error(op, f"dtype attribute must be a DType, got {attrs['dtype']!r}", loc)
    return tuple(x.shape), attrs["dtype"]


def check_axes(op, axes, ndim, loc) -> tuple[int, ...]:
    """Axes must be normalized (non-negative), unique and in range."""
    for a in axes:
        if not isinstance(a, int) or not 0 <= a < ndim:
            raise DimError(op, f"axis {a} is out of range for a tensor of rank {ndim}", loc)
    if len(set(axes)) != len(axes):
        raise DimError(op, f"axes {list(axes)} repeat a dimension", loc)
    return tuple(axes)


def reduce(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    axes = check_axes(op, attrs["axes"], len(x.shape), loc)
    if op in ("reduce_max", "reduce_min"):
        for a in axes:
            if x.shape[a] == 0:
                raise ShapeError(op, f"cannot reduce empty axis {a} of {describe(x)}", loc)
    return tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype


def arg_reduce(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    (axis,) = check_axes(op, (attrs["axis"],), len(x.shape), loc)
    if x.shape[axis] == 0:
        raise ShapeError(op, f"cannot reduce empty axis {axis} of {describe(x)}", loc)
    return tuple(d for i, d in enumerate(x.shape) if i != axis), D.int64


def scan(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    check_axes(op, (attrs["axis"],), len(x.shape), loc)
    if not isinstance(attrs["reverse"], bool):
        raise graph_error(op, f"reverse must be true or false, got {attrs['reverse']!r}", loc)
    if x.dtype is D.bool_:
        raise DTypeError(op, f"does not accumulate bool operands {describe(x)}", loc)
    return tuple(x.shape), x.dtype


def sort_rule(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    if is_scalar(x):
        raise graph_error(op, f"expects a tensor operand, got {describe(x)}", loc)
    check_axes(op, (attrs["axis"],), len(x.shape), loc)
    for flag in ("descending", "stable"):
        if not isinstance(attrs[flag], bool):
            raise graph_error(op, f"{flag} must be true or false, got {attrs[flag]!r}", loc)
    return tuple(x.shape), D.int64


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def reshape(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    shape = tuple(attrs["shape"])
    if any(d < 0 for d in shape) or _numel(shape) != _numel(x.shape):
        raise ShapeError(op, f"cannot reshape {describe(x)} to {list(shape)}", loc)
    return shape, x.dtype


def broadcast_to(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    shape = tuple(attrs["shape"])
    src = tuple(x.shape)
    ok = (
        len(src) <= len(shape)
        and all(d >= 0 for d in shape)
        and all(s == d or s == 1 for s, d in zip(src, shape[len(shape) - len(src) :]))
    )
    if not ok:
        raise ShapeError(op, f"cannot broadcast {describe(x)} to {list(shape)}", loc)
    return shape, x.dtype


def permute(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    dims = tuple(attrs["dims"])
    if sorted(dims) != list(range(len(x.shape))):
        raise DimError(op, f"dims {list(dims)} are not a permutation for {describe(x)}", loc)
    return tuple(x.shape[d] for d in dims), x.dtype


def _window(op, x, attrs, loc) -> tuple[int, ...]:
    """The shape of the strided window ``x[starts:stops:steps]`` (one triple per dim)."""
    starts, stops, steps = attrs["starts"], attrs["stops"], attrs["steps"]
    n = len(x.shape)
    if not len(starts) == len(stops) == len(steps) == n:
        raise graph_error(op, f"needs starts/stops/steps for all {n} dims of {describe(x)}", loc)
    shape = []
    for size, lo, hi, st in zip(x.shape, starts, stops, steps):
        if st <= 0 or not 0 <= lo <= size or not 0 <= hi <= size:
            raise ShapeError(op, f"bad slice {lo}:{hi}:{st} of a dim of size {size}", loc)
        shape.append(max(0, (hi - lo + st - 1) // st))
    return tuple(shape)


def slice_(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    if is_scalar(x):
        raise graph_error(op, f"expects a tensor operand, got {describe(x)}", loc)
    return _window(op, x, attrs, loc), x.dtype


def slice_scatter(op, inputs, attrs, loc):
    """``base`` with its window ``base[starts:stops:steps]`` replaced by ``update``."""
    base, update = _tensors(op, inputs, 2, loc)
    if is_scalar(base) or is_scalar(update):
        raise graph_error(op, f"expects two tensor operands, got {describe(base)}, "
                          f"{describe(update)}", loc)  # fmt: skip
    window = _window(op, base, attrs, loc)
    if tuple(update.shape) != window:
        raise ShapeError(
            op,
            f"update {describe(update)} must have the window's shape {list(window)} in "
            f"{describe(base)}",
            loc,
        )
    if update.dtype is not base.dtype:
        raise DTypeError(
            op, f"update {describe(update)} and base {describe(base)} differ in dtype", loc
        )
    return tuple(base.shape), base.dtype


def pad(op, inputs, attrs, loc):
    (x,) = _tensors(op, inputs, 1, loc)
    low, high, interior = attrs["low"], attrs["high"], attrs["interior"]
    n = len(x.shape)
    if not len(low) == len(high) == len(interior) == n:
        raise graph_error(op, f"needs low/high/interior for all {n} dims of {describe(x)}", loc)
    if not is_scalar(attrs["value"]):
        raise graph_error(op, f"value must be a number, got {attrs['value']!r}", loc)
    if any(p < 0 for p in (*low, *high, *interior)):
        raise ShapeError(op, "padding amounts must be non-negative", loc)
    shape = tuple(
        lo + hi + size + max(0, size - 1) * it
        for size, lo, hi, it in zip(x.shape, low, high, interior)
    )
    return shape, x.dtype


def concat(op, inputs, attrs, loc):
    if not inputs or any(is_scalar(x) for x in inputs):
        raise graph_error(op, "expects one or more tensor operands", loc)
    first = inputs[0]
    (axis,) = check_axes(op, (attrs["axis"],), len(first.shape), loc)
    total = 0
    for x in inputs:
        same = len(x.shape) == len(first.shape) and all(
            a == b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis
        )
        if not same:
            shapes = ", ".join(describe(t) for t in inputs)
            raise ShapeError(op, f"operands {shapes} differ outside axis {axis}", loc)
        if x.dtype is not first.dtype:
            raise DTypeError(op, f"operands {', '.join(describe(t) for t in inputs)} differ", loc)
        total += x.shape[axis]
    shape = list(first.shape)
    shape[axis] = total
    return tuple(shape), first.dtype


def _index_operand(op, x, idx, axis, loc):
    if is_scalar(idx) or idx.dtype is not D.int64:
        raise DTypeError(op, f"index must be an int64 tensor, got {describe(idx)}", loc)
    if len(idx.shape) != len(x.shape):
        raise ShapeError(op, f"index {describe(idx)} and input {describe(x)} differ in rank", loc)
    return check_axes(op, (axis,), len(x.shape), loc)[0]


def gather(op, inputs, attrs, loc):
    x, idx = _tensors(op, inputs, 2, loc)
    axis = _index_operand(op, x, idx, attrs["axis"], loc)
    for d, (n, m) in enumerate(zip(idx.shape, x.shape)):
        if d != axis and n > m:
            raise ShapeError(op, f"index {describe(idx)} is larger than {describe(x)}", loc)
    return tuple(idx.shape), x.dtype


def scatter_add(op, inputs, attrs, loc):
    x, idx, src = _tensors(op, inputs, 3, loc)
    axis = _index_operand(op, x, idx, attrs["axis"], loc)
    if tuple(src.shape) != tuple(idx.shape):
        raise ShapeError(op, f"source {describe(src)} must match index {describe(idx)}", loc)
    if src.dtype is not x.dtype:
        raise DTypeError(op, f"source {describe(src)} and input {describe(x)} differ in dtype", loc)
    for d, (n, m) in enumerate(zip(idx.shape, x.shape)):
        if d != axis and n > m:
            raise ShapeError(op, f"index {describe(idx)} is larger than {describe(x)}", loc)
    return tuple(x.shape), x.dtype


def matmul(op, inputs, attrs, loc):
    a, b = _tensors(op, inputs, 2, loc)
    if is_scalar(a) or is_scalar(b) or len(a.shape) < 2 or len(a.shape) != len(b.shape):
        raise ShapeError(op, f"expects two tensors of equal rank >= 2, got "
                         f"{describe(a)} and {describe(b)}", loc)  # fmt: skip
    if a.dtype is not b.dtype:
        raise DTypeError(op, f"operands {describe(a)} and {describe(b)} differ in dtype", loc)
    if a.dtype is D.bool_:
        raise DTypeError(op, f"does not support bool operands {describe(a)}", loc)
    if tuple(a.shape[:-2]) != tuple(b.shape[:-2]):
        raise ShapeError(op, f"batch dims of {describe(a)} and {describe(b)} differ", loc)
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(
            op,
            f"shapes {describe(a)} and {describe(b)} do not match ({a.shape[-1]} != {b.shape[-2]})",
            loc,
        )
    return (*a.shape[:-1], b.shape[-1]), a.dtype


def _creation(op, inputs, attrs, loc):
    _tensors(op, inputs, 0, loc)
    shape = tuple(attrs["shape"])
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise ShapeError(op, f"bad shape {list(shape)}", loc)
    if not isinstance(attrs["dtype"], D.DType):
        raise graph_error(op, f"dtype attribute must be a DType, got {attrs['dtype']!r}", loc)
    return shape, attrs["dtype"]


def full(op, inputs, attrs, loc):
    if not is_scalar(attrs["value"]):
        raise graph_error(op, f"value must be a number, got {attrs['value']!r}", loc)
    return _creation(op, inputs, attrs, loc)


def iota(op, inputs, attrs, loc):
    shape, dtype = _creation(op, inputs, attrs, loc)
    check_axes(op, (attrs["axis"],), len(shape), loc)
    return shape, dtype


def philox_uniform(op, inputs, attrs, loc):
    seed, offset = _tensors(op, inputs, 2, loc)
    for v in (seed, offset):
        if is_scalar(v) or tuple(v.shape) != () or v.dtype is not D.int64:
            raise DTypeError(op, f"seed and offset must be i64[] tensors, got {describe(v)}", loc)
    shape, dtype = _creation(op, [], attrs, loc)
    if not dtype.is_floating_point:
        raise DTypeError(op, f"draws floating point values, not {dtype.name}", loc)
    return shape, dtype
