"""Reductions with PyTorch's signatures: sum, mean, prod, max/min, amax/amin, argmax/argmin,
var/std, logsumexp, all/any, each with ``dim`` and ``keepdim``.

``max(x, dim)`` returns ``(values, indices)`` and sends the gradient to the selected index (a
``gather``), while ``amax`` and the full ``max()`` share it evenly among ties, as in PyTorch.
"""

from __future__ import annotations

from collections import namedtuple

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import DTypeError, ShapeError
from ..dims import normalize_dim, normalize_dims
from ..tensor import Tensor
from .common import cast, describe
from .elementwise import maximum, minimum

__all__ = [
    "sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "var", "std",
    "var_mean", "std_mean", "logsumexp", "all", "any", "count_nonzero", "norm", "cumsum",
]  # fmt: skip

MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _keep(y, shape, axes, keepdim: bool):
    if not keepdim or not axes:
        return y
    return P.reshape(y, shape=tuple(1 if i in axes else n for i, n in enumerate(shape)))


def _accumulating(x, dtype):
    """sum/prod of bool and integer tensors is int64, as in PyTorch."""
    if dtype is not None:
        return cast(x, dtype)
    if not x.dtype.is_floating_point:
        return cast(x, D.int64)
    return x


def _all_if_empty(dim):
    """``dim=()`` (or ``[]``) means every dim in sum, mean, var and std, as in PyTorch."""
    return None if isinstance(dim, tuple | list) and len(dim) == 0 else dim


def sum(input, dim=None, keepdim: bool = False, *, dtype=None):
    x = _accumulating(input, dtype)
    dim = _all_if_empty(dim)
    axes = normalize_dims(dim, x, "sum")
    return _keep(P.reduce_sum(x, axes=axes), x.shape, axes, keepdim)


def prod(input, dim=None, keepdim: bool = False, *, dtype=None):
    x = _accumulating(input, dtype)
    axes = normalize_dims(dim, x, "prod")
    return _keep(P.reduce_prod(x, axes=axes), x.shape, axes, keepdim)


def _count(shape, axes) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def mean(input, dim=None, keepdim: bool = False, *, dtype=None):
    x = cast(input, dtype) if dtype is not None else input
    if not x.dtype.is_floating_point:
        raise DTypeError(
            "mean",
            "could not infer output dtype; the input dtype must be floating point, got "
            f"{describe(input)}",
        )
    axes = normalize_dims(_all_if_empty(dim), x, "mean")
    acc = _compute(x)
    total = P.reduce_sum(acc, axes=axes)
    out = cast(P.div(total, float(_count(x.shape, axes))), x.dtype)
    return _keep(out, x.shape, axes, keepdim)


def _compute(x):
    """float16/bfloat16 computed in float32 and rounded once at the end, as PyTorch does (a
    float16 sum of in-range values can overflow before the division brings it back)."""
    return cast(x, D.float32) if x.dtype in (D.float16, D.bfloat16) else x


def _check_nonempty(op, x, axes):
    for a in axes:
        if x.shape[a] == 0:
            raise ShapeError(
                op,
                f"expected reduction dim {a} of {describe(x)} to have non-zero size; "
                "specify a dim with non-zero size",
            )


def amax(input, dim=(), keepdim: bool = False):
    axes = normalize_dims(dim if dim != () else None, input, "amax")
    _check_nonempty("amax", input, axes)
    return _keep(P.reduce_max(input, axes=axes), input.shape, axes, keepdim)


def amin(input, dim=(), keepdim: bool = False):
    axes = normalize_dims(dim if dim != () else None, input, "amin")
    _check_nonempty("amin", input, axes)
    return _keep(P.reduce_min(input, axes=axes), input.shape, axes, keepdim)


def _select(op, arg_prim, input, dim, keepdim, result_type):
    axis = normalize_dim(dim, input, op)
    if input.ndim == 0:
        zero = P.full(shape=(), value=0, dtype=D.int64)
        return result_type(input, zero)
    _check_nonempty(op, input, (axis,))
    idx = arg_prim(input, axis=axis)
    kept = tuple(1 if i == axis else n for i, n in enumerate(input.shape))
    idx_kept = P.reshape(idx, shape=kept)
    values = P.gather(input, idx_kept, axis=axis)
    if keepdim:
        return result_type(values, idx_kept)
    return result_type(P.reshape(values, shape=tuple(idx.shape)), idx)


def max(input, dim=None, keepdim: bool = False, *, other=None):
    """``max(x)``; ``max(x, dim)`` -> (values, indices); ``max(x, other_tensor)``."""
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    if dim is None:
        return amax(input)
    return _select("max", P.argmax, input, dim, keepdim, MaxResult)


def min(input, dim=None, keepdim: bool = False):
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    if dim is None:
        return amin(input)
    return _select("min", P.argmin, input, dim, keepdim, MinResult)


def _arg(op, prim, input, dim, keepdim):
    if dim is None:
        flat = P.reshape(input, shape=(input.numel(),))
        _check_nonempty(op, flat, (0,))
        out = prim(flat, axis=0)
        return P.reshape(out, shape=(1,) * input.ndim) if keepdim else out
    axis = normalize_dim(dim, input, op)
    if input.ndim == 0:
        return P.full(shape=(), value=0, dtype=D.int64)
    _check_nonempty(op, input, (axis,))
    return _keep(prim(input, axis=axis), input.shape, (axis,), keepdim)


def argmax(input, dim=None, keepdim: bool = False):
    return _arg("argmax", P.argmax, input, dim, keepdim)


def argmin(input, dim=None, keepdim: bool = False):
    return _arg("argmin", P.argmin, input, dim, keepdim)


def _correction(unbiased, correction) -> float:
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def _var(op, input, dim, unbiased, keepdim, correction):
    """The variance in the compute dtype (float32 for float16/bfloat16 inputs)."""
    if isinstance(dim, bool):  # var(x, False): the old unbiased-only signature
        dim, unbiased = None, dim
    if not input.dtype.is_floating_point:
        raise DTypeError(op, f"expects a floating point input, got {describe(input)}")
    x = _compute(input)
    axes = normalize_dims(_all_if_empty(dim), x, op)
    n = _count(x.shape, axes)
    centered = P.sub(x, _keep_all(mean(x, axes, True), x.shape))
    sq = P.reduce_sum(P.mul(centered, centered), axes=axes)
    denom = float(n) - _correction(unbiased, correction)
    out = P.div(sq, denom if denom > 0 else 0.0)
    return _keep(out, x.shape, axes, keepdim)


def var(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return cast(_var("var", input, dim, unbiased, keepdim, correction), input.dtype)


def _keep_all(y, shape):
    return P.broadcast_to(y, shape=tuple(shape)) if tuple(y.shape) != tuple(shape) else y


def std(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return cast(P.sqrt(_var("std", input, dim, unbiased, keepdim, correction)), input.dtype)


def var_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))  # fmt: skip


def std_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))  # fmt: skip


def logsumexp(input, dim=None, keepdim: bool = False):
    x = input if input.dtype.is_floating_point else cast(input, D.get_default_dtype())
    axes = normalize_dims(dim, x, "logsumexp")
    if not axes and x.ndim:
        return x
    m = P.reduce_max(x, axes=axes) if x.numel() else P.full(shape=(), value=0.0, dtype=x.dtype)
    m = P.where(P.eq(P.abs(m), float("inf")), 0.0, m)
    m_kept = _keep(m, x.shape, axes, True)
    shifted = P.sub(x, _keep_all(m_kept, x.shape))
    out = P.add(P.log(P.reduce_sum(P.exp(shifted), axes=axes)), m)
    return _keep(out, x.shape, axes, keepdim)


def _truth_result(input, out):
    """all/any of a uint8 tensor is uint8 (0 or 1), as in PyTorch; of any other, bool."""
    return cast(out, D.uint8) if input.dtype is D.uint8 else out


def all(input, dim=None, keepdim: bool = False):
    out = P.logical_not(_any(P.logical_not(cast(input, D.bool_)), dim, keepdim))
    return _truth_result(input, out)


def any(input, dim=None, keepdim: bool = False):
    return _truth_result(input, _any(cast(input, D.bool_), dim, keepdim))


def _any(x, dim, keepdim: bool):
    axes = normalize_dims(dim, x, "any")
    if _count(x.shape, axes) == 0:
        return _keep(P.full(shape=_out_shape(x.shape, axes), value=False, dtype=D.bool_),
                     x.shape, axes, keepdim)  # fmt: skip
    return _keep(P.reduce_max(x, axes=axes), x.shape, axes, keepdim)


def _out_shape(shape, axes):
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def count_nonzero(input, dim=None):
    return sum(P.ne(input, 0 if not input.dtype.is_floating_point else 0.0), dim)


def norm(input, p=2, dim=None, keepdim: bool = False):
    """Vector p-norm over ``dim`` (all elements by default)."""
    x = input if input.dtype.is_floating_point else cast(input, D.get_default_dtype())
    if p == 1:
        return sum(P.abs(x), dim, keepdim)
    if p == float("inf"):
        return amax(P.abs(x), dim if dim is not None else (), keepdim)
    if p == -float("inf"):
        return amin(P.abs(x), dim if dim is not None else (), keepdim)
    if p == 0:
        return sum(P.convert(P.ne(x, 0.0), dtype=x.dtype), dim, keepdim)
    if p == 2 or p == "fro":
        return _root_of_nonnegative(sum(P.mul(x, x), dim, keepdim), P.sqrt)
    return _root_of_nonnegative(
        sum(P.pow(P.abs(x), float(p)), dim, keepdim), lambda s: P.pow(s, 1.0 / p)
    )


def _root_of_nonnegative(total, root):
    """``root(total)`` whose gradient is 0 where ``total`` is 0 (PyTorch's norm backward),
    instead of the 0/0 that differentiating the root there would give."""
    zero = P.eq(total, 0.0)
    return P.where(zero, 0.0, root(P.where(zero, 1.0, total)))


def cumsum(input, dim: int, *, dtype=None):
    """Running sum along ``dim`` (bool and integer inputs accumulate in int64, as in PyTorch)."""
    x = _accumulating(input, dtype)
    if x.ndim == 0:
        return P.copy(x)
    return P.cumsum(x, axis=normalize_dim(dim, x, "cumsum"), reverse=False)
