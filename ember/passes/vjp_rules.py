"""Reverse-mode rules: the ``vjp`` column of the primitive table.

Each rule is written with primitives only (``P.mul(g, y)``), so it runs on whatever the
operands are: eager autograd calls it on concrete tensors, and the autodiff pass will call it on
traced values to record a backward graph. A rule receives the output cotangent ``g``, the
operands ``ins`` and output ``out`` (those it declared in ``saves``; the others arrive as
shape/dtype-only stand-ins), ``needs`` (which operand gradients are wanted) and the primitive's
attributes, and returns one gradient or None per operand.

Formulas follow PyTorch's ``derivatives.yaml`` where the choice matters (ties in max/min,
``pow`` at zero, ``prod`` with zeros), so gradients match PyTorch's, not just calculus.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..ir import dtypes as D
from ..ir import ops as P
from ..ir.ops import PRIMITIVES
from ..ir.types import is_scalar

__all__ = ["VJPRule", "register_all"]


class VJPRule:
    """A rule plus what it reads, so autograd saves (and version-checks) only that.

    ``read_by`` narrows ``saved_inputs``: ``{i: (j, ...)}`` says operand ``i`` is read only
    when the gradient of some operand ``j`` is needed (``mul`` reads ``b`` for ``a``'s gradient
    only), so ``h * 0.5`` does not save ``h`` and a later ``h.add_(1)`` is no error.
    """

    __slots__ = ("fn", "saved_inputs", "saves_output", "read_by")

    def __init__(
        self,
        fn: Callable,
        saved_inputs: tuple[int, ...],
        saves_output: bool,
        read_by: dict[int, tuple[int, ...]] | None = None,
    ):
        self.fn = fn
        self.saved_inputs = saved_inputs
        self.saves_output = saves_output
        self.read_by = read_by or {}

    def saves_input(self, i: int, needs) -> bool:
        """Whether operand ``i`` must be saved when the gradients ``needs`` are wanted."""
        if i not in self.saved_inputs:
            return False
        readers = self.read_by.get(i)
        return readers is None or any(needs[j] for j in readers)


_RULES: dict[str, VJPRule] = {}
_NONDIFF: dict[str, str] = {}


def _rule(*names: str, saves: tuple[int, ...] = (), out: bool = False, read_by=None):
    def register(fn):
        for name in names:
            _RULES[name] = VJPRule(fn, saves, out, read_by)
        return fn

    return register


def zeros(shape, dtype):
    return P.broadcast_to(P.full(shape=(), value=0, dtype=dtype), shape=tuple(shape))


def sum_to(g, shape: tuple[int, ...]):
    """Undo a broadcast: sum ``g`` down to ``shape``."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    return P.reshape(P.reduce_sum(g, axes=axes), shape=shape)


def _keepdims(shape, axes) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def expand_reduced(g, in_shape, axes):
    """Broadcast a reduction's cotangent back over the reduced axes."""
    return P.broadcast_to(P.reshape(g, shape=_keepdims(in_shape, axes)), shape=tuple(in_shape))


# ---- elementwise unary -------------------------------------------------------------------


@_rule("neg")
def _neg(g, ins, out, needs):
    return (P.neg(g),)


@_rule("abs", saves=(0,))
def _abs(g, ins, out, needs):
    return (P.mul(g, P.sign(ins[0])),)


@_rule("exp", out=True)
def _exp(g, ins, out, needs):
    return (P.mul(g, out),)


@_rule("log", saves=(0,))
def _log(g, ins, out, needs):
    return (P.div(g, ins[0]),)


@_rule("sqrt", out=True)
def _sqrt(g, ins, out, needs):
    return (P.div(g, P.mul(out, 2.0)),)


@_rule("rsqrt", out=True)
def _rsqrt(g, ins, out, needs):
    return (P.mul(P.mul(g, -0.5), P.mul(P.mul(out, out), out)),)


@_rule("sin", saves=(0,))
def _sin(g, ins, out, needs):
    return (P.mul(g, P.cos(ins[0])),)


@_rule("cos", saves=(0,))
def _cos(g, ins, out, needs):
    return (P.mul(g, P.neg(P.sin(ins[0]))),)


@_rule("tanh", out=True)
def _tanh(g, ins, out, needs):
    return (P.mul(g, P.sub(1.0, P.mul(out, out))),)


@_rule("sigmoid", out=True)
def _sigmoid(g, ins, out, needs):
    return (P.mul(P.mul(g, P.sub(1.0, out)), out),)


@_rule("erf", saves=(0,))
def _erf(g, ins, out, needs):
    x = ins[0]
    return (P.mul(g, P.mul(P.exp(P.neg(P.mul(x, x))), 2.0 / math.sqrt(math.pi))),)


@_rule("log1p", saves=(0,))
def _log1p(g, ins, out, needs):
    return (P.div(g, P.add(ins[0], 1.0)),)


@_rule("expm1", out=True)
def _expm1(g, ins, out, needs):
    return (P.mul(g, P.add(out, 1.0)),)


@_rule("sign", "floor", "ceil", "round", "trunc")
def _zero_grad(g, ins, out, needs):
    return (zeros(g.shape, g.dtype),)


# ---- elementwise binary ------------------------------------------------------------------


@_rule("copy")
def _copy(g, ins, out, needs):
    return (g,)


@_rule("add")
def _add(g, ins, out, needs):
    return g, g


@_rule("sub")
def _sub(g, ins, out, needs):
    return g, (P.neg(g) if needs[1] else None)


@_rule("mul", saves=(0, 1), read_by={0: (1,), 1: (0,)})
def _mul(g, ins, out, needs):
    a, b = ins
    return (P.mul(g, b) if needs[0] else None), (P.mul(g, a) if needs[1] else None)


@_rule("div", saves=(0, 1), read_by={0: (1,)})
def _div(g, ins, out, needs):
    a, b = ins
    ga = P.div(g, b) if needs[0] else None
    gb = P.div(P.mul(P.neg(g), a), P.mul(b, b)) if needs[1] else None
    return ga, gb


@_rule("pow", saves=(0, 1), out=True)
def _pow(g, ins, out, needs):
    a, b = ins
    ga = gb = None
    if needs[0]:
        if is_scalar(b):
            ga = P.mul(g, P.mul(P.pow(a, b - 1), b)) if b != 0 else zeros(g.shape, g.dtype)
        else:
            d = P.mul(P.pow(a, P.sub(b, 1.0)), b)
            ga = P.where(P.eq(b, 0.0), 0.0, P.mul(g, d))
    if needs[1]:
        if is_scalar(a):
            log_a = math.log(a) if a > 0 else (-math.inf if a == 0 else math.nan)
            zero_base = P.ge(b, 0.0) if a == 0 else None
        else:
            log_a = P.log(a)
            zero_base = P.logical_and(P.eq(a, 0.0), P.ge(b, 0.0))
        gb = P.mul(g, P.mul(out, log_a))
        if zero_base is not None:
            gb = P.where(zero_base, 0.0, gb)
    return ga, gb


def _select_ties(g, a, b, loses):
    """maximum/minimum: the winner gets g, a tie splits it in half, the loser gets 0. As in
    PyTorch, only a strict loss masks the gradient, so a NaN comparison keeps it."""
    half = P.where(P.eq(a, b), P.div(g, 2.0), g)
    return P.where(loses, 0.0, half)


@_rule("maximum", saves=(0, 1))
def _maximum(g, ins, out, needs):
    a, b = ins
    ga = _select_ties(g, a, b, P.lt(a, b)) if needs[0] else None
    gb = _select_ties(g, a, b, P.gt(a, b)) if needs[1] else None
    return ga, gb


@_rule("minimum", saves=(0, 1))
def _minimum(g, ins, out, needs):
    a, b = ins
    ga = _select_ties(g, a, b, P.gt(a, b)) if needs[0] else None
    gb = _select_ties(g, a, b, P.lt(a, b)) if needs[1] else None
    return ga, gb


@_rule("remainder", saves=(0, 1))
def _remainder(g, ins, out, needs):
    a, b = ins
    gb = P.mul(P.neg(g), P.floordiv(a, b)) if needs[1] else None
    return g, gb


@_rule("where", saves=(0,))
def _where(g, ins, out, needs):
    c = ins[0]
    ga = P.where(c, g, 0.0) if needs[1] else None
    gb = P.where(c, 0.0, g) if needs[2] else None
    return None, ga, gb


@_rule("convert", saves=())
def _convert(g, ins, out, needs, dtype):
    src = ins[0].dtype
    return (P.convert(g, dtype=src) if src.is_floating_point else None,)


# ---- reductions --------------------------------------------------------------------------


@_rule("reduce_sum")
def _reduce_sum(g, ins, out, needs, axes):
    return (expand_reduced(g, ins[0].shape, axes),)


@_rule("cumsum")
def _cumsum(g, ins, out, needs, axis, reverse):
    """Each input adds into every later output, so its gradient sums the later cotangents."""
    return (P.cumsum(g, axis=axis, reverse=not reverse),)


@_rule("reduce_max", "reduce_min", saves=(0,), out=True)
def _reduce_extreme(g, ins, out, needs, axes):
    """Ties share the gradient evenly (PyTorch's amax/amin)."""
    x = ins[0]
    hit = P.eq(x, expand_reduced(out, x.shape, axes))
    count = P.reduce_sum(P.convert(hit, dtype=g.dtype), axes=axes)
    return (P.where(hit, expand_reduced(P.div(g, count), x.shape, axes), 0.0),)


@_rule("reduce_prod", saves=(0,), out=True)
def _reduce_prod(g, ins, out, needs, axes):
    """d prod / d x_i = prod of the others, exact with zeros (one zero: only it gets a grad)."""
    x = ins[0]
    is_zero = P.eq(x, 0.0)
    zeros_in_row = P.reduce_sum(P.convert(is_zero, dtype=D.int64), axes=axes)
    nonzero_prod = P.reduce_prod(P.where(is_zero, 1.0, x), axes=axes)
    safe_x = P.where(is_zero, 1.0, x)
    no_zero = expand_reduced(P.eq(zeros_in_row, 0), x.shape, axes)
    one_zero = expand_reduced(P.eq(zeros_in_row, 1), x.shape, axes)
    g_full = expand_reduced(g, x.shape, axes)
    plain = P.div(P.mul(g_full, expand_reduced(out, x.shape, axes)), safe_x)
    at_zero = P.mul(g_full, expand_reduced(nonzero_prod, x.shape, axes))
    grad = P.where(no_zero, plain, P.where(P.logical_and(one_zero, is_zero), at_zero, 0.0))
    return (grad,)


# ---- layout and indexing -----------------------------------------------------------------


@_rule("reshape")
def _reshape(g, ins, out, needs, shape):
    return (P.reshape(g, shape=tuple(ins[0].shape)),)


@_rule("broadcast_to")
def _broadcast_to(g, ins, out, needs, shape):
    return (sum_to(g, tuple(ins[0].shape)),)


@_rule("permute")
def _permute(g, ins, out, needs, dims):
    inverse = [0] * len(dims)
    for i, d in enumerate(dims):
        inverse[d] = i
    return (P.permute(g, dims=tuple(inverse)),)


@_rule("slice")
def _slice(g, ins, out, needs, starts, stops, steps):
    shape = ins[0].shape
    low, high, interior = [], [], []
    for n, size, lo, st in zip(g.shape, shape, starts, steps):
        covered = lo + (n - 1) * st + 1 if n else lo
        low.append(lo)
        interior.append(st - 1 if n else 0)
        high.append(size - covered)
    return (P.pad(g, low=tuple(low), high=tuple(high), interior=tuple(interior), value=0),)


@_rule("slice_scatter")
def _slice_scatter(g, ins, out, needs, starts, stops, steps):
    """The window's cotangent goes to the update; the rest of it to the base."""
    window = dict(starts=starts, stops=stops, steps=steps)
    update = ins[1]
    g_base = P.slice_scatter(g, zeros(update.shape, g.dtype), **window) if needs[0] else None
    g_update = P.slice(g, **window) if needs[1] else None
    return g_base, g_update


@_rule("pad")
def _pad(g, ins, out, needs, low, high, interior, value):
    shape = ins[0].shape
    stops = tuple(
        lo + (n - 1) * (it + 1) + 1 if n else lo for n, lo, it in zip(shape, low, interior)
    )
    steps = tuple(it + 1 for it in interior)
    return (P.slice(g, starts=tuple(low), stops=stops, steps=steps),)


@_rule("concat")
def _concat(g, ins, out, needs, axis):
    grads, start = [], 0
    for x, need in zip(ins, needs):
        stop = start + x.shape[axis]
        if need:
            starts = tuple(start if i == axis else 0 for i in range(len(g.shape)))
            stops = tuple(stop if i == axis else n for i, n in enumerate(g.shape))
            grads.append(P.slice(g, starts=starts, stops=stops, steps=(1,) * len(g.shape)))
        else:
            grads.append(None)
        start = stop
    return tuple(grads)


@_rule("gather", saves=(1,))
def _gather(g, ins, out, needs, axis):
    x, idx = ins
    return P.scatter_add(zeros(x.shape, g.dtype), idx, g, axis=axis), None


@_rule("scatter_add", saves=(1,))
def _scatter_add(g, ins, out, needs, axis):
    idx = ins[1]
    return g, None, (P.gather(g, idx, axis=axis) if needs[2] else None)


# ---- matmul ------------------------------------------------------------------------------


def _transpose_last(x):
    n = len(x.shape)
    return P.permute(x, dims=(*range(n - 2), n - 1, n - 2))


@_rule("matmul", saves=(0, 1), read_by={0: (1,), 1: (0,)})
def _matmul(g, ins, out, needs):
    a, b = ins
    ga = P.matmul(g, _transpose_last(b)) if needs[0] else None
    gb = P.matmul(_transpose_last(a), g) if needs[1] else None
    return ga, gb


# ---- not differentiable ------------------------------------------------------------------

for _name in (
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "logical_not",
):  # fmt: skip
    _NONDIFF[_name] = "its output is bool"
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "lshift", "rshift"):
    _NONDIFF[_name] = "it is defined on integers only"
_NONDIFF["argmax"] = _NONDIFF["argmin"] = "its output is an integer index"
_NONDIFF["argsort"] = "its output is an integer index"
_NONDIFF["floordiv"] = "its output is piecewise constant (PyTorch: not differentiable)"
_NONDIFF["full"] = _NONDIFF["iota"] = "it has no tensor operands"
_NONDIFF["philox_uniform"] = "its operands are a seed and an offset"
_NONDIFF["stop_gradient"] = "it marks a value no gradient flows through (detach)"
_NONDIFF["check_range"] = "it only checks its operand's values (no gradient flows through a check)"


def register_all() -> None:
    """Fill the ``vjp`` column of the op table."""
    for name, rule in _RULES.items():
        PRIMITIVES[name].vjp = rule
    for name, reason in _NONDIFF.items():
        PRIMITIVES[name].nondiff_reason = reason


register_all()
