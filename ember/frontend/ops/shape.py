"""Views and joins: view, reshape, permute, transpose, expand, squeeze, unsqueeze, flatten,
contiguous, split, chunk, cat, stack and friends.

Views share storage with their source, as in PyTorch: the eager kernels return numpy views,
and `as_view` records the root base, a shared version counter and a function that replays the
view on the base's array (used when an in-place op writes through a view).
"""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import IndexOutOfRange, ShapeError
from ..arguments import ArgumentValueError
from ..dims import int_sizes, normalize_dim
from ..tensor import Tensor
from .common import as_tensor_operand, broadcast_shapes, cast, describe

__all__ = [
    "as_view", "view", "reshape", "permute", "transpose", "swapaxes", "t", "expand",
    "broadcast_to", "squeeze", "unsqueeze", "flatten", "unflatten", "contiguous", "clone",
    "split", "chunk", "unbind", "narrow", "select", "cat", "concat", "concatenate", "stack",
    "hstack", "vstack", "repeat", "movedim", "flip", "broadcast_tensors", "tile",
]  # fmt: skip


def as_view(out: Tensor, src: Tensor, replay) -> Tensor:
    """Mark ``out`` as a view of ``src`` if their storage is shared."""
    if out is src or not np.may_share_memory(out._data, src._data):
        return out
    out._vc = src._vc
    base = src._base if src._base is not None else src
    out._base = base
    prev = src._view_fn
    out._view_fn = replay if prev is None else (lambda a: replay(prev(a)))
    return out


def _shape_args(shape, op: str = "reshape", name: str = "shape") -> tuple:
    return int_sizes(shape, op, name)


def infer_shape(op: str, x, shape) -> tuple[int, ...]:
    """Resolve one ``-1`` in ``shape`` against ``x``'s size."""
    numel = x.numel()
    unknown = [i for i, d in enumerate(shape) if d == -1]
    if len(unknown) > 1:
        raise ShapeError(op, f"only one dimension can be inferred, got {list(shape)}")
    known = 1
    for d in shape:
        if d != -1:
            if d < 0:
                raise ShapeError(op, f"invalid shape dimension {d} in {list(shape)}")
            known *= d
    if unknown:
        if known == 0 or numel % known:
            raise ShapeError(op, f"shape {list(shape)} is invalid for input {describe(x)}")
        shape = tuple(numel // known if d == -1 else d for d in shape)
    elif known != numel:
        raise ShapeError(op, f"shape {list(shape)} is invalid for input {describe(x)}")
    return tuple(shape)


def reshape(input, *shape):
    shape = infer_shape("reshape", input, _shape_args(shape, "reshape"))
    if shape == input._data.shape:
        return as_view(P.reshape(input, shape=shape), input, lambda a: a)
    return as_view(P.reshape(input, shape=shape), input, lambda a: a.reshape(shape))


def view(input, *shape):
    if len(shape) == 1 and isinstance(shape[0], D.DType):
        raise TypeError("view: reinterpreting a tensor as another dtype is not supported")
    shape = infer_shape("view", input, _shape_args(shape, "view"))
    try:
        np.reshape(input._data, shape, copy=False)
    except ValueError:
        raise ShapeError(
            "view",
            f"view size {list(shape)} is not compatible with input {describe(input)} of "
            f"strides {list(input.stride())} (at least one dimension spans across two "
            "contiguous subspaces); use .reshape(...) instead",
        ) from None
    return reshape(input, shape)


def permute(input, *dims):
    dims = _shape_args(dims, "permute", "dims")
    if len(dims) != input.ndim:
        raise ShapeError("permute", f"number of dims {list(dims)} does not match {describe(input)}")
    dims = tuple(normalize_dim(d, input, "permute") for d in dims)
    if len(set(dims)) != len(dims):
        raise ShapeError("permute", f"repeated dim in {list(dims)}")
    return as_view(P.permute(input, dims=dims), input, lambda a: a.transpose(dims))


def transpose(input, dim0: int, dim1: int):
    n = input.ndim
    if n == 0:
        return input
    d0, d1 = normalize_dim(dim0, input, "transpose"), normalize_dim(dim1, input, "transpose")
    dims = list(range(n))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(input, dims)


swapaxes = transpose


def t(input):
    if input.ndim > 2:
        raise ShapeError("t", f"expects a tensor with <= 2 dimensions, got {describe(input)}")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def expand(input, *sizes):
    sizes = _shape_args(sizes, "expand", "size")
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ShapeError(
            "expand",
            f"the number of sizes {list(sizes)} must be at least the rank of {describe(input)}",
        )
    shape = []
    for i, n in enumerate(sizes):
        if n == -1:
            if i < lead:
                raise ShapeError("expand", f"-1 is not allowed in a new leading dimension {i}")
            n = input.shape[i - lead]
        shape.append(n)
    shape = tuple(shape)
    for i, n in enumerate(input.shape):
        if n != 1 and n != shape[lead + i]:
            raise ShapeError(
                "expand",
                f"the expanded size {shape[lead + i]} must match the existing size {n} at "
                f"non-singleton dimension {lead + i} (target {list(shape)}, input "
                f"{describe(input)})",
            )
    if shape == input._data.shape:
        return input
    return as_view(P.broadcast_to(input, shape=shape), input,
                   lambda a: np.broadcast_to(a, shape))  # fmt: skip


def broadcast_to(input, shape):
    return expand(input, *tuple(shape))


def broadcast_tensors(*tensors):
    shape = broadcast_shapes(
        "broadcast_tensors", *(t._data.shape for t in tensors), operands=tensors
    )
    return tuple(expand(t, *shape) for t in tensors)


def squeeze(input, dim=None):
    if dim is None:
        dims = tuple(i for i, n in enumerate(input.shape) if n == 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = tuple(normalize_dim(d, input, "squeeze") for d in dims)
        dims = tuple(d for d in dims if input.ndim and input.shape[d] == 1)
    shape = tuple(n for i, n in enumerate(input.shape) if i not in dims)
    return reshape(input, shape)


def unsqueeze(input, dim: int):
    d = normalize_dim(dim, input.ndim + 1, "unsqueeze")
    shape = list(input.shape)
    shape.insert(d, 1)
    return reshape(input, tuple(shape))


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    if input.ndim == 0:
        return reshape(input, (1,))
    s = normalize_dim(start_dim, input, "flatten")
    e = normalize_dim(end_dim, input, "flatten")
    if s > e:
        raise ShapeError("flatten", f"start_dim {start_dim} cannot come after end_dim {end_dim}")
    shape = input.shape
    merged = 1
    for n in shape[s : e + 1]:
        merged *= n
    return reshape(input, (*shape[:s], merged, *shape[e + 1 :]))


def unflatten(input, dim: int, sizes):
    d = normalize_dim(dim, input, "unflatten")
    inner = infer_shape("unflatten", _Sized(input.shape[d]), tuple(sizes))
    return reshape(input, (*input.shape[:d], *inner, *input.shape[d + 1 :]))


class _Sized:
    """A stand-in with ``numel`` for resolving -1 inside one dimension."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.shape = (n,)
        self.dtype = D.int64

    def numel(self) -> int:
        return self.n


def contiguous(input, memory_format=None):
    if input._data.flags.c_contiguous:
        return input
    return P.copy(input)


def clone(input, *, memory_format=None):
    return P.copy(input)


def narrow(input, dim: int, start: int, length: int):
    d = normalize_dim(dim, input, "narrow")
    size = input.shape[d]
    if start < 0:
        start += size
    if not (0 <= start <= size and length >= 0 and start + length <= size):
        raise ShapeError("narrow", f"start {start} + length {length} exceeds dimension size {size}")
    return _slice_dim(input, d, start, start + length, 1)


def _slice_dim(input, d: int, start: int, stop: int, step: int):
    starts = tuple(start if i == d else 0 for i in range(input.ndim))
    stops = tuple(stop if i == d else n for i, n in enumerate(input.shape))
    steps = tuple(step if i == d else 1 for i in range(input.ndim))
    key = tuple(slice(start, stop, step) if i == d else slice(None) for i in range(input.ndim))
    return as_view(P.slice(input, starts=starts, stops=stops, steps=steps), input,
                   lambda a: a[key])  # fmt: skip


def select(input, dim: int, index: int):
    d = normalize_dim(dim, input, "select")
    size = input.shape[d]
    if not -size <= index < size:
        raise IndexOutOfRange(
            "select", f"index {index} is out of bounds for dimension {d} with size {size}"
        )
    index %= size
    part = _slice_dim(input, d, index, index + 1, 1)
    return squeeze(part, d)


def split(tensor, split_size_or_sections, dim: int = 0):
    d = normalize_dim(dim, tensor, "split")
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ShapeError("split", f"split_size must be positive, got {step}")
        sections = [min(step, size - i) for i in range(0, size, step)] or [0]
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != size:
            raise ShapeError(
                "split",
                f"split sizes {sections} do not sum to {size}, the size of dimension {d} of "
                f"{describe(tensor)}",
            )
    out, start = [], 0
    for n in sections:
        out.append(_slice_dim(tensor, d, start, start + n, 1))
        start += n
    return tuple(out)


def chunk(input, chunks: int, dim: int = 0):
    if chunks <= 0:
        raise ShapeError("chunk", f"number of chunks must be positive, got {chunks}")
    d = normalize_dim(dim, input, "chunk")
    size = input.shape[d]
    step = -(-size // chunks) if size else 1
    return split(input, step, d) if size else (input,)


def unbind(input, dim: int = 0):
    d = normalize_dim(dim, input, "unbind")
    return tuple(select(input, d, i) for i in range(input.shape[d]))


def cat(tensors, dim: int = 0):
    tensors = [as_tensor_operand(t, "cat") for t in tensors]
    if not tensors:
        raise ArgumentValueError("cat", "expected a non-empty list of Tensors")
    kept = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    dtype = kept[0].dtype
    for t in kept[1:]:
        dtype = D.promote_types(dtype, t.dtype)
    d = normalize_dim(dim, kept[0], "cat")
    for t in kept:
        if t.ndim != kept[0].ndim or any(
            a != b for i, (a, b) in enumerate(zip(t.shape, kept[0].shape)) if i != d
        ):
            shapes = ", ".join(describe(x) for x in tensors)
            raise ShapeError("cat", f"tensors {shapes} must match except in dimension {d}")
    kept = [cast(t, dtype) for t in kept]
    if len(kept) == 1:
        return P.copy(kept[0])
    return P.concat(*kept, axis=d)


concat = concatenate = cat


def stack(tensors, dim: int = 0):
    tensors = [as_tensor_operand(t, "stack") for t in tensors]
    if not tensors:
        raise ShapeError("stack", "expected a non-empty list of tensors")
    first = tensors[0].shape
    for t in tensors:
        if t.shape != first:
            shapes = ", ".join(describe(x) for x in tensors)
            raise ShapeError("stack", f"expects each tensor to be equal size, got {shapes}")
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def hstack(tensors):
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([t if t.ndim >= 2 else reshape(t, (1, -1)) for t in tensors], 0)


def repeat(input, *sizes):
    sizes = _shape_args(sizes, "repeat", "repeats")
    if len(sizes) < input.ndim:
        raise ShapeError(
            "repeat", f"number of repeat dims {list(sizes)} can not be smaller than {input.ndim}"
        )
    x = reshape(input, (1,) * (len(sizes) - input.ndim) + tuple(input.shape))
    inter = []
    for r, n in zip(sizes, x.shape):
        inter += [r, n]
    expanded = P.broadcast_to(
        P.reshape(x, shape=tuple(v for n in x.shape for v in (1, n))), shape=tuple(inter)
    )
    return P.reshape(expanded, shape=tuple(r * n for r, n in zip(sizes, x.shape)))


def tile(input, dims):
    dims = tuple(dims)
    return repeat(input, *((1,) * (input.ndim - len(dims)) + dims))


def movedim(input, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [normalize_dim(s, input, "movedim") for s in src]
    dst = [normalize_dim(s, input, "movedim") for s in dst]
    order = [i for i in range(input.ndim) if i not in src]
    for s, d in sorted(zip(dst, src)):
        order.insert(s, d)
    return permute(input, order)


def flip(input, dims):
    dims = [dims] if isinstance(dims, int) else list(dims)
    x = input
    for d in dims:
        d = normalize_dim(d, input, "flip")
        n = x.shape[d]
        rev = P.reshape(
            P.sub(n - 1, P.iota(shape=(n,), axis=0, dtype=D.int64)),
            shape=tuple(n if i == d else 1 for i in range(x.ndim)),
        )
        x = P.gather(x, P.broadcast_to(rev, shape=tuple(x.shape)), axis=d)
    return x
