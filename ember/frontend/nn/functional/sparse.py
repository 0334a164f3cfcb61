"""F.embedding (with padding_idx) and one_hot."""

from __future__ import annotations

from ....ir import dtypes as D
from ....ir import ops as P
from ....ir.errors import DTypeError, InvalidValueError, ShapeError
from ... import trace_state
from ...autograd.grad_mode import no_grad
from ...ops.common import check_values_in_range, describe
from ...ops.reduction import norm
from ...tensor import Tensor

__all__ = ["embedding", "one_hot"]


def _check_range_tensor(op: str, input) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'indices' must be Tensor, not {type(input).__name__}")
    if input.dtype not in (D.int64, D.int32):
        raise DTypeError(
            op,
            "Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {describe(input)} instead",
        )


def _check_bounds(op: str, input, n: int) -> None:
    """An index outside ``[0, n)`` is an error (``gather`` would wrap negative ones around)."""
    message = f"index {{value}} out of range in self (num_embeddings={n})"
    check_values_in_range(op, input, 0, n - 1, message)


def _flat_rows(weight, flat_idx):
    """``weight[flat_idx]`` for a 1-d index: a gather over dim 0."""
    n_idx, dim = flat_idx.shape[0], weight.shape[1]
    idx = P.broadcast_to(P.reshape(flat_idx, shape=(n_idx, 1)), shape=(n_idx, dim))
    return P.gather(weight, idx, axis=0)


def _renorm_(weight, flat_idx, max_norm: float, norm_type: float) -> None:
    """PyTorch's ``embedding_renorm_``: rows referenced by ``flat_idx`` whose ``norm_type``-norm
    exceeds ``max_norm`` are scaled in place to norm ``max_norm`` (under no_grad)."""
    with no_grad():
        n, k = weight.shape[0], flat_idx.shape[0]
        if k == 0:
            return
        rows = P.iota(shape=(k, n), axis=1, dtype=D.int64)
        hit = P.eq(P.broadcast_to(P.reshape(flat_idx, shape=(k, 1)), shape=(k, n)), rows)
        used = P.reduce_max(hit, axes=(0,))
        norms = norm(weight, p=norm_type, dim=1)
        scale = P.div(float(max_norm), P.add(norms, 1e-7))
        scale = P.where(P.logical_and(used, P.gt(norms, float(max_norm))), scale, 1.0)
        weight.mul_(P.broadcast_to(P.reshape(scale, shape=(n, 1)), shape=tuple(weight.shape)))


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False):  # fmt: skip
    """Rows of ``weight`` picked by the integer tensor ``input``: output ``(*input.shape, D)``.

    The gradient of ``weight`` accumulates over repeated indices and is zero at
    ``padding_idx``; ``scale_grad_by_freq`` divides it by each index's count in the batch;
    ``max_norm`` renormalizes the referenced rows of ``weight`` in place first.
    """
    _check_range_tensor("embedding", input)
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ShapeError("embedding", f"'weight' must be 2-D, got {describe(weight)}")
    n = weight.shape[0]
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= n:
                raise AssertionError("Padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -n:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = n + padding_idx
    _check_bounds("embedding", input, n)
    idx = input if input.dtype is D.int64 else P.convert(input, dtype=D.int64)
    flat = P.reshape(idx, shape=(idx.numel(),))
    if max_norm is not None:
        _renorm_(weight, flat, float(max_norm), float(norm_type))
    out = _flat_rows(weight, flat)
    out_shape = (*input.shape, weight.shape[1])
    if scale_grad_by_freq and weight.requires_grad and flat.shape[0]:
        with no_grad():
            ones = P.full(shape=(flat.shape[0],), value=1.0, dtype=weight.dtype)
            counts = P.scatter_add(P.full(shape=(n,), value=0.0, dtype=weight.dtype), flat, ones,
                                   axis=0)  # fmt: skip
            inv = P.div(1.0, P.gather(counts, flat, axis=0))
            inv = P.broadcast_to(P.reshape(inv, shape=(flat.shape[0], 1)), shape=tuple(out.shape))
        # same values; the gradient reaching ``weight`` is divided by the index's frequency
        frozen = out.detach()
        out = P.add(frozen, P.mul(P.sub(out, frozen), inv))
    if padding_idx is not None and weight.requires_grad:
        pad = P.broadcast_to(P.reshape(P.eq(flat, padding_idx), shape=(flat.shape[0], 1)),
                             shape=tuple(out.shape))  # fmt: skip
        out = P.where(pad, out.detach(), out)
    return P.reshape(out, shape=out_shape)


def one_hot(tensor, num_classes: int = -1):
    """``(*tensor.shape, num_classes)`` int64 tensor with a 1 at each index."""
    if not isinstance(tensor, Tensor) or tensor.dtype is not D.int64:
        got = describe(tensor) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise DTypeError(
            "one_hot", f"one_hot is only applicable to index tensor of type LongTensor, got {got}"
        )
    if num_classes == -1:
        data = trace_state.concrete(tensor, "one_hot(num_classes=-1)")
        if data.size == 0:
            raise ShapeError("one_hot", "Can not infer total number of classes from empty tensor.")
        num_classes = int(data.max()) + 1
    check_values_in_range(
        "one_hot",
        tensor,
        0,
        1 << 62,
        "Class values must be non-negative.",
        error=InvalidValueError,
    )
    check_values_in_range(
        "one_hot", tensor, -(1 << 62), num_classes - 1,
        "Class values must be smaller than num_classes.", error=InvalidValueError,
    )  # fmt: skip
    shape = (*tensor.shape, int(num_classes))
    classes = P.iota(shape=shape, axis=len(shape) - 1, dtype=D.int64)
    expanded = P.broadcast_to(P.reshape(tensor, shape=(*tensor.shape, 1)), shape=shape)
    return P.convert(P.eq(expanded, classes), dtype=D.int64)
