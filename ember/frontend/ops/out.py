"""``out=`` on the op functions (``ember.add(a, b, out=c)``), written once for every op.

`with_out` wraps an op function: without ``out`` it is the op itself; with ``out`` the op
computes its result functionally and the result is written into ``out``'s storage through the
in-place machinery (`inplace.commit`), so ``out``'s version counter moves, views of it see the
values, a compiled program writes them back, and the call returns ``out`` itself. PyTorch's
rules:

- autograd does not go through ``out=``: with grad mode on, an operand or ``out`` that
  requires grad is an error;
- an ``out`` of the wrong shape is resized (with PyTorch's deprecation warning unless it was
  empty); ember cannot resize a view, which PyTorch allows when its storage is large enough;
- dtypes, by the op's kind (`OutKind`): elementwise ops, cat/stack and full reductions cast
  their result into ``out`` when the cast keeps the category (no float into an integer, no
  number into bool); matmul, where, clamp, abs, neg, argmax and ``max(x, dim)`` want exactly
  the result's dtype; sum, mean and cumsum compute in ``out``'s dtype (their ``dtype=``);
  factories (zeros, arange, randn...) take ``out``'s dtype, and a different ``dtype=`` is an
  error.

The public functions with ``out=`` are listed at the bottom; ``ember/__init__.py`` exports
them. Internal callers keep calling the plain op functions, which cost no wrapper.
"""

from __future__ import annotations

import enum
import functools

import numpy as np

from ...ir.errors import AutogradError, DTypeError, ShapeError
from .. import trace_state
from ..autograd.grad_mode import STATE
from ..tensor import Tensor
from . import creation, linalg, random
from . import elementwise as E
from . import reduction as R
from . import shape as S
from .common import describe, warn_at_user
from .inplace import commit

__all__ = ["OutKind", "with_out", "write_out"]


class OutKind(enum.Enum):
    CAST = "cast"  # the result is cast into out when the category allows it
    EXACT = "exact"  # out must have the result's dtype
    DTYPE = "dtype"  # out's dtype is the op's ``dtype=`` (sum, mean, cumsum)
    FACTORY = "factory"  # out's dtype is the created tensor's dtype


class OutDTypeError(DTypeError, TypeError):
    """cat/stack results that cannot be cast to ``out`` (PyTorch raises TypeError there)."""


RESIZE_WARNING = (
    "An output with one or more elements was resized since it had shape {old}, which does not "
    "match the required output shape {new}. This behavior is deprecated, and in a future "
    "release outputs will not be resized unless they have zero elements. You can explicitly "
    "reuse an out tensor t by resizing it, inplace, to zero elements with t.resize_(0)."
)


def _requires_grad(value) -> bool:
    if isinstance(value, Tensor):
        return value._requires_grad
    if isinstance(value, list | tuple):
        return any(_requires_grad(v) for v in value)
    return False


def _outs(op: str, out, multi: bool) -> tuple:
    outs = tuple(out) if multi and isinstance(out, list | tuple) else (out,)
    for o in outs:
        if not isinstance(o, Tensor):
            what = "a tuple of tensors" if multi else "a Tensor"
            raise TypeError(f"{op}(): argument 'out' must be {what}, not {type(out).__name__}")
    return outs


def _check_dtype(op: str, result: Tensor, o: Tensor, kind: OutKind) -> None:
    if result.dtype is o.dtype:
        return
    if kind is OutKind.EXACT:
        raise DTypeError(
            op, f"expected out tensor to have dtype {result.dtype.name}, but got {describe(o)}"
        )
    if result.dtype.category > o.dtype.category:  # PyTorch's canCast (ember has no complex)
        error = OutDTypeError if op in ("cat", "stack") else DTypeError
        raise error(
            op,
            f"result type {result.dtype.name} can't be cast to the desired output type "
            f"{o.dtype.name} of out {describe(o)}",
        )


def _resize(op: str, o: Tensor, shape: tuple) -> None:
    if tuple(o._data.shape) == shape:
        return
    if o._base_t is not None:
        raise ShapeError(
            op,
            f"out {describe(o)} is a view and cannot be resized to {list(shape)}; pass an out "
            "of that shape",
        )
    if trace_state.active() is not None:
        raise ShapeError(
            op,
            f"out {describe(o)} cannot be resized to {list(shape)} inside ember.compile; pass "
            "an out of that shape",
        )
    if o._data.size:
        warn_at_user(RESIZE_WARNING.format(old=list(o._data.shape), new=list(shape)))
    trace_state.bump()  # (a tensor's shape changed: compiled entries re-check their guards)
    o._data = np.zeros(shape, dtype=o._data.dtype)
    o._vc[0] += 1


def write_out(op: str, result, out, kind: OutKind):
    """Write ``result`` (a tensor, or a tuple of them) into ``out``; return ``out``."""
    multi = isinstance(result, tuple)
    outs = _outs(op, out, multi)
    results = result if multi else (result,)
    if len(outs) != len(results):
        raise TypeError(
            f"{op}(): argument 'out' must be a tuple of {len(results)} tensors, got {len(outs)}"
        )
    for r, o in zip(results, outs):
        _check_dtype(op, r, o, kind)
    for r, o in zip(results, outs):
        _resize(op, o, tuple(r._data.shape))
        commit(o, r, op)
    if not multi:
        return outs[0]
    return type(result)(*outs) if hasattr(result, "_fields") else outs


def _no_autograd(op: str, args, kwargs, out) -> None:
    if STATE.enabled and (
        _requires_grad(args) or _requires_grad(tuple(kwargs.values())) or _requires_grad(out)
    ):
        raise AutogradError(
            op,
            "functions with out=... arguments don't support automatic differentiation, but one "
            "of the arguments requires grad",
        )


def _dtype_from_out(op: str, kind: OutKind, args, kwargs, out) -> dict:
    if kind is OutKind.FACTORY:
        given = kwargs.get("dtype")
        if given is not None and given is not out.dtype:
            raise DTypeError(
                op, f"dtype {given.name} does not match dtype of out parameter ({out.dtype.name})"
            )
        return {**kwargs, "dtype": out.dtype}
    if kind is OutKind.DTYPE and kwargs.get("dtype") is None:
        first = args[0] if args else kwargs.get("input")
        if op != "mean" or (isinstance(first, Tensor) and first.dtype.is_floating_point):
            return {**kwargs, "dtype": out.dtype}  # (mean of integers stays an error)
    return kwargs


def with_out(fn, kind: OutKind = OutKind.CAST, name: str | None = None):
    """``fn`` taking PyTorch's keyword ``out=`` (see the module docstring)."""
    op = name or fn.__name__

    @functools.wraps(fn)
    def op_with_out(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        _no_autograd(op, args, kwargs, out)
        if isinstance(out, Tensor):
            kwargs = _dtype_from_out(op, kind, args, kwargs, out)
        return write_out(op, fn(*args, **kwargs), out, kind)

    return op_with_out


def _max_min(fn, name: str):
    """``max(x)`` casts into out; ``max(x, dim)`` wants (values, indices) of exact dtypes."""
    cast, exact = with_out(fn, OutKind.CAST, name), with_out(fn, OutKind.EXACT, name)

    def op_with_out(input, *args, out=None, **kwargs):
        if out is None:
            return fn(input, *args, **kwargs)
        reduces_dim = (args and not isinstance(args[0], Tensor)) or "dim" in kwargs
        return (exact if reduces_dim else cast)(input, *args, out=out, **kwargs)

    return functools.wraps(fn)(op_with_out)


C, X, T, F = OutKind.CAST, OutKind.EXACT, OutKind.DTYPE, OutKind.FACTORY

add, sub, mul, div = (with_out(f, C, n) for f, n in
                      ((E.add, "add"), (E.sub, "sub"), (E.mul, "mul"), (E.div, "div")))  # fmt: skip
# aliases speak their own names (the argument-checked E.subtract... name themselves too)
subtract, multiply = with_out(E.subtract, C, "subtract"), with_out(E.multiply, C, "multiply")
divide, true_divide = with_out(E.divide, C, "divide"), with_out(E.true_divide, C, "true_divide")
pow = with_out(E.pow, C, "pow")  # noqa: A001 (PyTorch's name)
exp, log, sqrt = with_out(E.exp, C), with_out(E.log, C), with_out(E.sqrt, C)
sigmoid, tanh = with_out(E.sigmoid, C), with_out(E.tanh, C)
abs, neg = with_out(E.abs, X, "abs"), with_out(E.neg, X, "neg")  # noqa: A001
negative = with_out(E.negative, X, "negative")
clamp, clip = with_out(E.clamp, X, "clamp"), with_out(E.clip, X, "clip")
where = with_out(E.where, X, "where")
matmul, mm, bmm = with_out(linalg.matmul, X), with_out(linalg.mm, X), with_out(linalg.bmm, X)
cat, stack = with_out(S.cat, C, "cat"), with_out(S.stack, C, "stack")
concat, concatenate = with_out(S.concat, C, "concat"), with_out(S.concatenate, C, "concatenate")
sum, mean, cumsum = with_out(R.sum, T), with_out(R.mean, T), with_out(R.cumsum, T)  # noqa: A001
max, min = _max_min(R.max, "max"), _max_min(R.min, "min")  # noqa: A001
argmax, argmin = with_out(R.argmax, X), with_out(R.argmin, X)
zeros, ones = with_out(creation.zeros, F), with_out(creation.ones, F)
arange, linspace = with_out(creation.arange, F), with_out(creation.linspace, F)
rand, randn = with_out(random.rand, F), with_out(random.randn, F)

PUBLIC = (
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "pow", "exp",
    "log", "sqrt", "sigmoid", "tanh", "abs", "neg", "negative", "clamp", "clip", "where",
    "matmul", "mm", "bmm", "cat", "concat", "concatenate", "stack", "sum", "mean", "cumsum",
    "max", "min", "argmax", "argmin", "zeros", "ones", "arange", "linspace", "rand", "randn",
)  # fmt: skip
