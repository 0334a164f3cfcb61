"""How far the LLVM fuzz test lets the LLVM backend's results be from the reference backend's:
an error bound per element of every graph value, propagated through the graph.

Given the reference values of every graph value (`llvm_fuzz_check.reference_values`),
`propagate` walks the nodes and gives each value a `Bound`: per element, how far a correct
compiled program may be from the reference, and whether the sign of a zero is free.

- ``b == 0``: bit for bit (the sign of zero included, unless ``z``); NaN where NaN.
- ``0 < b < inf``: ``|got - want| <= b``, NaN where NaN; an infinity compares as the next power
  of two past the dtype's largest finite value, so a rounding that overflows in one backend and
  not in the other is one ulp away.
- ``b`` infinite or NaN: not checked (the result is not determined by the graph: a comparison of
  two values within their bounds, the floor of a value that may cross an integer, ...).

Where the error comes from (each op family's own tolerance):

- transcendentals (exp, log, sin, cos, tanh, sigmoid, erf, log1p, expm1, pow of floats): a few
  ulp of the result, relative to max(|result|, smallest normal): 4 for float32/float64, 1 for
  float16/bfloat16 (computed in float32 and rounded once), as ``tests/codegen/llvm/test_emit_ops``;
- float sums (``reduce_sum``, ``cumsum``, ``matmul``, ``scatter_add``): ``2 n u * sum(|terms|)``
  plus one ulp of the result, ``u`` the unit roundoff of the accumulator (float32 for
  float16/bfloat16), ``n`` the number of terms: any two summation orders are within it. A sum
  whose finite terms could overflow in some order is not checked.
- float products (``reduce_prod``): ``2 n u |product|`` plus one ulp, unless a partial product
  in some order could leave the normal range (then not checked).
- everything else (integers, bools, + - * / sqrt rsqrt of floats, conversions, layout): exact.

An op that reads values with a nonzero bound propagates it (``add``: the sum of the bounds plus
one ulp of the result; ``mul``: ``|a| db + |b| da + da db`` plus one ulp; ...); an op that makes
a decision (compare, floor, argmax, conversion to an integer) is exact where the decision cannot
flip within the bounds and not checked where it can.

The sign of zero is free (``z``) where one of `ZERO_SIGN_FREE` returns zero, and wherever such a
zero flows; an op for which the sign of a zero matters in magnitude (a divisor, ``rsqrt``,
``pow``'s base) is not checked there. Those ops: ``reduce_max``/``reduce_min`` (``llvm.maximum``
orders -0.0 below 0.0, numpy's reduction returns whichever zero its order meets last),
``cumsum`` (the LLVM scan starts from +0.0, so a leading -0.0 becomes 0.0 as in PyTorch, where
numpy keeps -0.0) and ``matmul`` (BLAS kernels). ``reduce_sum`` and ``reduce_prod`` are strict:
an exactly zero sum is +0.0 in any order (numpy's too), and a product's sign is the product of
the signs.
"""

from __future__ import annotations

import numpy as np

import ember.runtime.eager_kernels  # noqa: F401  (fills the impl column)
from ember.ir import dtypes as D
from ember.ir.graph import Graph, Node, Value
from ember.ir.ops import PRIMITIVES

__all__ = [
    "Bound",
    "propagate",
    "ulp",
    "unit",
    "largest",
    "float_emax",
    "TRANSCENDENTAL",
    "ZERO_SIGN_FREE",
]

TRANSCENDENTAL = {"exp", "log", "sin", "cos", "tanh", "sigmoid", "erf", "log1p", "expm1"}
# float ops whose zero results may differ in sign (see the module docstring)
ZERO_SIGN_FREE = {"reduce_max", "reduce_min", "cumsum", "matmul"}
LAYOUT = {"reshape", "broadcast_to", "permute", "slice", "copy", "stop_gradient"}
_MANT = {D.float16: 10, D.bfloat16: 7, D.float32: 23, D.float64: 52}
_EMIN = {D.float16: -14, D.bfloat16: -126, D.float32: -126, D.float64: -1022}
_EMAX = {D.float16: 15, D.bfloat16: 127, D.float32: 127, D.float64: 1023}
INF = np.inf


class Bound:
    """Per element: ``b`` the allowed distance from the reference, ``z`` the sign of zero free."""

    __slots__ = ("b", "z")

    def __init__(self, b: np.ndarray, z: np.ndarray) -> None:
        self.b = np.asarray(b, np.float64)
        self.z = np.asarray(z, bool)

    @staticmethod
    def exact(shape) -> Bound:
        return Bound(np.zeros(shape), np.zeros(shape, bool))


# -- dtype arithmetic ------------------------------------------------------------------------


def _f64(x) -> np.ndarray:
    return np.asarray(x).astype(np.float64)


def float_emax(dt: D.DType) -> int:
    """The exponent of ``dt``'s largest finite value."""
    return _EMAX[dt]


def largest(dt: D.DType) -> float:
    return float(np.ldexp(2.0 - 2.0 ** -_MANT[dt], _EMAX[dt]))


def accumulator(dt: D.DType) -> D.DType:
    """The dtype sums and products of ``dt`` accumulate in (float32 for 16-bit floats)."""
    return D.float32 if dt in (D.float16, D.bfloat16) else dt


def unit(dt: D.DType) -> float:
    """The unit roundoff of arithmetic in ``dt``'s accumulator."""
    return 2.0 ** -(_MANT[accumulator(dt)] + 1)


def ulp(x, dt: D.DType) -> np.ndarray:
    """One unit in the last place of ``dt`` at |x| (at least the smallest normal's; the largest
    finite value's for infinities)."""
    a = np.abs(_f64(x))
    a = np.where(np.isinf(a), largest(dt), a)
    a = np.maximum(a, np.ldexp(1.0, _EMIN[dt]))
    _, e = np.frexp(a)
    return np.ldexp(1.0, e - 1 - _MANT[dt])


# -- propagation -----------------------------------------------------------------------------


class _Ctx:
    """One node being bounded: its operands' reference values and bounds, its own result."""

    def __init__(self, node: Node, values: dict, bounds: dict) -> None:
        self.node = node
        self.out = values[node.output]
        self.dt = node.output.type.dtype
        self.xs, self.bs, self.zs, self.dts = [], [], [], []
        for x in node.inputs:
            if isinstance(x, Value):
                self.xs.append(values[x])
                self.bs.append(bounds[x].b)
                self.zs.append(bounds[x].z)
                self.dts.append(x.type.dtype)
            else:  # a literal: exact, of the tensor operands' dtype
                self.xs.append(np.asarray(x))
                self.bs.append(np.zeros(()))
                self.zs.append(np.zeros((), bool))
                self.dts.append(None)
        self.shape = self.out.shape

    @property
    def inexact(self) -> bool:
        return any(bool(np.any(b != 0)) for b in self.bs)

    def any_b(self) -> np.ndarray:
        """Elementwise: inf where some operand is not exact."""
        b = np.zeros(self.shape)
        for x in self.bs:
            b = np.where(np.broadcast_to(x, self.shape) != 0, INF, b)
        return b

    def any_z(self) -> np.ndarray:
        z = np.zeros(self.shape, bool)
        for x in self.zs:
            z = z | np.broadcast_to(x, self.shape)
        return z

    def f(self, i: int) -> np.ndarray:
        return np.broadcast_to(_f64(self.xs[i]), self.shape)

    def b(self, i: int) -> np.ndarray:
        return np.broadcast_to(self.bs[i], self.shape)

    def z(self, i: int) -> np.ndarray:
        return np.broadcast_to(self.zs[i], self.shape)

    def rounded(self, b: np.ndarray) -> np.ndarray:
        """``b`` plus one ulp of the result where ``b`` is nonzero (both sides round)."""
        return np.where(b != 0, b + ulp(self.out, self.dt), 0.0)

    def poisoned(self, b: np.ndarray) -> np.ndarray:
        """Not checked where an inexact operand or the result is not finite."""
        bad = np.zeros(self.shape, bool)
        for i in range(len(self.xs)):
            bad |= (self.b(i) != 0) & ~np.isfinite(self.f(i))
        bad |= (b != 0) & ~np.isfinite(_f64(self.out))
        return np.where(bad | np.isnan(b), INF, b)


def _elementwise(ctx: _Ctx) -> Bound:
    op, dt = ctx.node.op, ctx.dt
    z = ctx.any_z()
    if not dt.is_floating_point and op != "convert":
        return Bound(ctx.any_b(), np.zeros(ctx.shape, bool))
    own = np.zeros(ctx.shape)
    if op in TRANSCENDENTAL or (op == "pow" and dt.is_floating_point):
        k = 1 if dt in (D.float16, D.bfloat16) else 4
        own = k * ulp(ctx.out, dt)
    if not ctx.inexact:
        return Bound(_zero_sign_hazards(ctx, own), z)
    rule = _INEXACT.get(op)
    b = rule(ctx) if rule is not None else ctx.any_b()
    b = np.where(ctx.any_b() != 0, b, 0.0)
    b = ctx.poisoned(ctx.rounded(b) + own)
    return Bound(_zero_sign_hazards(ctx, b), z)


def _zero_sign_hazards(ctx: _Ctx, b: np.ndarray) -> np.ndarray:
    """Not checked where a zero of free sign decides more than a zero's sign: a divisor
    (``x / -0.0`` is ``-inf``), ``rsqrt``'s operand and ``pow``'s base."""
    op = ctx.node.op
    if op in ("div", "floordiv", "remainder"):
        hazard = ctx.z(1) & (ctx.f(1) == 0)
    elif op in ("rsqrt", "pow"):
        hazard = ctx.z(0) & (ctx.f(0) == 0)
    else:
        return b
    return np.where(hazard, INF, b)


def _add(ctx):
    return ctx.b(0) + ctx.b(1)


def _mul(ctx):
    a, c = np.abs(ctx.f(0)), np.abs(ctx.f(1))
    return a * ctx.b(1) + c * ctx.b(0) + ctx.b(0) * ctx.b(1)


def _div(ctx):
    q = np.abs(_f64(ctx.out))
    room = np.abs(ctx.f(1)) - ctx.b(1)
    with np.errstate(all="ignore"):
        return np.where(room > 0, (ctx.b(0) + q * ctx.b(1)) / room, INF)


def _same(ctx):
    return np.maximum.reduce([ctx.b(i) for i in range(len(ctx.xs))])


def _lipschitz(k: float):
    return lambda ctx: k * ctx.b(0)


def _exp(ctx):
    with np.errstate(all="ignore"):
        return np.exp(ctx.f(0)) * np.expm1(ctx.b(0))


def _log(shift: float):
    def rule(ctx):
        x, b = ctx.f(0) + shift, ctx.b(0)
        with np.errstate(all="ignore"):
            return np.where(x - b > 0, b / (x - b), INF)

    return rule


def _sqrt(ctx):
    x, b = ctx.f(0), ctx.b(0)
    with np.errstate(all="ignore"):
        return np.where(x - b > 0, b / (np.sqrt(np.maximum(x - b, 0)) + np.sqrt(x)), INF)


def _decision(fn):
    """An op whose result is exact where ``fn`` of both ends of the interval agree."""

    def rule(ctx):
        x, b = ctx.f(0), ctx.b(0)
        with np.errstate(all="ignore"):
            lo, hi = fn(x - b), fn(x + b)
        return np.where((lo == hi) | (b == 0), 0.0, INF)

    return rule


def _compare(ctx):
    gap = np.abs(ctx.f(0) - ctx.f(1))
    return np.where(gap > ctx.b(0) + ctx.b(1), 0.0, INF)


def _where(ctx):
    return np.where(np.broadcast_to(ctx.xs[0], ctx.shape), ctx.b(1), ctx.b(2))


# how an elementwise op carries its operands' bounds (without its own rounding)
_INEXACT = {
    "add": _add, "sub": _add, "mul": _mul, "div": _div, "neg": _same, "abs": _same,
    "maximum": _same, "minimum": _same, "exp": _exp, "expm1": _exp, "log": _log(0.0),
    "log1p": _log(1.0), "sqrt": _sqrt, "sin": _lipschitz(1.0), "cos": _lipschitz(1.0),
    "tanh": _lipschitz(1.0), "sigmoid": _lipschitz(0.25), "erf": _lipschitz(1.13),
    "floor": _decision(np.floor), "ceil": _decision(np.ceil), "trunc": _decision(np.trunc),
    "round": _decision(np.round), "sign": _decision(np.sign),
}  # fmt: skip


def _compare_bound(ctx: _Ctx) -> Bound:
    b = ctx.any_b()
    if ctx.inexact and all(d is None or d.is_floating_point for d in ctx.dts):
        if ctx.node.op.startswith("logical_"):  # decided by x != 0
            flip = [(ctx.b(i) != 0) & (np.abs(ctx.f(i)) <= ctx.b(i)) for i in range(2)]
            b = np.where(flip[0] | flip[1], INF, 0.0)
        else:
            b = np.where(b != 0, _compare(ctx), 0.0)
        b = ctx.poisoned(b)
    return Bound(b, np.zeros(ctx.shape, bool))


def _where_bound(ctx: _Ctx) -> Bound:
    cond = np.broadcast_to(ctx.xs[0], ctx.shape)
    b = np.where(ctx.b(0) != 0, INF, _where(ctx))
    z = np.where(cond, ctx.z(1), ctx.z(2))
    return Bound(b, z)


def _convert_bound(ctx: _Ctx) -> Bound:
    src, dst = ctx.dts[0], ctx.dt
    if not ctx.inexact:
        return Bound(np.zeros(ctx.shape), ctx.z(0) & dst.is_floating_point)
    if dst.is_floating_point:
        b = ctx.poisoned(np.where(ctx.b(0) != 0, ctx.b(0) + ulp(ctx.out, dst), 0.0))
        return Bound(b, ctx.z(0))
    if src.is_floating_point:
        fn = (lambda v: v != 0) if dst is D.bool_ else np.trunc
        return Bound(ctx.poisoned(_decision(fn)(ctx)), np.zeros(ctx.shape, bool))
    return Bound(ctx.any_b(), np.zeros(ctx.shape, bool))


def _layout(ctx: _Ctx) -> Bound:
    node = ctx.node
    impl = PRIMITIVES[node.op].impl
    attrs = dict(node.attrs)
    if node.op == "pad":
        b = impl(ctx.bs[0], **{**attrs, "value": 0.0})
        z = impl(ctx.zs[0], **{**attrs, "value": False})
    elif node.op == "concat":
        b = impl(*ctx.bs, **attrs)
        z = impl(*ctx.zs, **attrs)
    elif node.op == "gather":
        b = impl(ctx.bs[0], ctx.xs[1], **attrs)
        z = impl(ctx.zs[0], ctx.xs[1], **attrs)
        b = np.where(ctx.bs[1] != 0, INF, b)
    else:
        b = impl(ctx.bs[0], **attrs)
        z = impl(ctx.zs[0], **attrs)
    return Bound(np.array(b, np.float64), np.array(z, bool))


def _reduce_bound(ctx: _Ctx) -> Bound:
    node, dt = ctx.node, ctx.dt
    axes = tuple(node.attrs["axes"])
    x, bx = ctx.xs[0], ctx.bs[0]
    if not dt.is_floating_point or node.op in ("reduce_max", "reduce_min"):
        b = np.max(np.broadcast_to(bx, x.shape), axis=axes, initial=0.0)
    elif node.op == "reduce_sum":
        b = _sum_bound(_f64(x), np.broadcast_to(bx, x.shape), axes, dt)
    else:
        b = _prod_bound(_f64(x), np.broadcast_to(bx, x.shape), axes, dt)
    b = np.array(b, np.float64).reshape(ctx.shape)
    z = _reduced_z(ctx, axes)
    return Bound(b, z)


def _reduced_z(ctx: _Ctx, axes: tuple) -> np.ndarray:
    if not ctx.dt.is_floating_point:
        return np.zeros(ctx.shape, bool)
    z = np.any(np.broadcast_to(ctx.zs[0], ctx.xs[0].shape), axis=axes).reshape(ctx.shape)
    return z | _free_zero(ctx)


def _free_zero(ctx: _Ctx) -> np.ndarray:
    """Where the result is a zero whose sign is free (`ZERO_SIGN_FREE`)."""
    if ctx.node.op not in ZERO_SIGN_FREE or not ctx.dt.is_floating_point:
        return np.zeros(ctx.shape, bool)
    return _f64(ctx.out) == 0


def _sum_bound(x: np.ndarray, bx: np.ndarray, axes, dt: D.DType) -> np.ndarray:
    n = max(1, int(np.prod([x.shape[a] for a in axes])))
    finite = np.where(np.isfinite(x), np.abs(x), 0.0)
    mag = np.sum(finite, axis=axes)
    total = np.sum(x, axis=axes)
    b = 2 * n * unit(dt) * mag + ulp(total, dt)
    acc = accumulator(dt)
    b = np.where(mag >= largest(acc) * (1 - 4 * n * unit(dt)), INF, b)
    b = np.where(np.isfinite(mag) & ~np.isfinite(total) & (b != INF), 0.0, b)  # inf/NaN terms
    with np.errstate(invalid="ignore"):
        carried = np.sum(np.where(bx != 0, bx + np.where(np.isfinite(x), 0, INF), 0), axis=axes)
    return b + carried


def _prod_bound(x: np.ndarray, bx: np.ndarray, axes, dt: D.DType) -> np.ndarray:
    n = max(1, int(np.prod([x.shape[a] for a in axes])))
    acc = accumulator(dt)
    a = np.abs(x)
    nz = (a != 0) & np.isfinite(a)
    with np.errstate(all="ignore"):
        big = np.prod(np.where(nz & (a > 1), a, 1.0), axis=axes)
        small = np.prod(np.where(nz & (a < 1), a, 1.0), axis=axes)
        hi = np.prod(np.where(np.isfinite(a), a + bx, INF), axis=axes)
        lo = np.prod(a, axis=axes)
        spread = np.where(np.any(bx != 0, axis=axes), hi - lo, 0.0)
    out_of_range = (big >= largest(acc) / 4) | (small <= np.ldexp(4.0, _EMIN[acc]))
    b = 2 * n * unit(dt) * lo + ulp(lo, dt) + spread
    b = np.where(np.isfinite(lo), b, 0.0)  # an inf or NaN term decides it
    return np.where(out_of_range | np.isnan(b), INF, b)


def _argreduce_bound(ctx: _Ctx) -> Bound:
    axis = ctx.node.attrs["axis"]
    x, bx = _f64(ctx.xs[0]), np.broadcast_to(ctx.bs[0], ctx.xs[0].shape)
    if not np.any(bx != 0):
        return Bound.exact(ctx.shape)
    sign = 1.0 if ctx.node.op == "argmax" else -1.0
    idx = np.expand_dims(ctx.out, axis)
    best = np.take_along_axis(sign * x, idx, axis)
    best_b = np.take_along_axis(bx, idx, axis)
    position = np.arange(x.shape[axis]).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
    with np.errstate(invalid="ignore"):
        # another position may win: within both bounds of the winner, one of them inexact
        rival = (position != idx) & (bx + best_b > 0) & (sign * x + bx >= best - best_b)
        close = np.any(rival | (np.isnan(x) & (bx != 0)) | (bx == INF), axis=axis)
        close |= np.isnan(best_b.squeeze(axis)) | np.isnan(best.squeeze(axis)) & (
            best_b.squeeze(axis) != 0
        )
    return Bound(np.where(close, INF, 0.0).reshape(ctx.shape), np.zeros(ctx.shape, bool))


def _cumsum_bound(ctx: _Ctx) -> Bound:
    axis, rev = ctx.node.attrs["axis"], ctx.node.attrs["reverse"]
    x, dt = _f64(ctx.xs[0]), ctx.dt
    bx = np.broadcast_to(ctx.bs[0], x.shape)
    if not dt.is_floating_point:
        b = np.where(_cum(bx, axis, rev, np.maximum.accumulate) != 0, INF, 0.0)
        return Bound(b, np.zeros(ctx.shape, bool))
    n = x.shape[axis]
    mag = _cum(np.where(np.isfinite(x), np.abs(x), 0.0), axis, rev, np.cumsum)
    carried = _cum(bx + np.where((bx != 0) & ~np.isfinite(x), INF, 0.0), axis, rev, np.cumsum)
    total = _f64(ctx.out)
    b = 2 * max(n, 1) * unit(dt) * mag + ulp(total, dt)
    acc = accumulator(dt)
    b = np.where(mag >= largest(acc) / 2, INF, b)
    b = np.where(np.isfinite(mag) & ~np.isfinite(total) & (b != INF), 0.0, b)
    z = np.asarray(_cum(np.broadcast_to(ctx.zs[0], x.shape), axis, rev, np.maximum.accumulate))
    return Bound(b + carried, z | _free_zero(ctx))


def _cum(x: np.ndarray, axis: int, reverse: bool, fn) -> np.ndarray:
    if reverse:
        return np.flip(fn(np.flip(x, axis), axis=axis), axis)
    return fn(x, axis=axis)


def _matmul_bound(ctx: _Ctx) -> Bound:
    a, b = _f64(ctx.xs[0]), _f64(ctx.xs[1])
    ba, bb = ctx.bs[0] + np.zeros(a.shape), ctx.bs[1] + np.zeros(b.shape)
    dt = ctx.dt
    with np.errstate(all="ignore"):
        carried = np.abs(a) @ bb + ba @ np.abs(b) + ba @ bb
        if not dt.is_floating_point:
            return Bound(np.where(carried != 0, INF, 0.0), np.zeros(ctx.shape, bool))
        fa, fb = np.where(np.isfinite(a), np.abs(a), 0), np.where(np.isfinite(b), np.abs(b), 0)
        mag = fa @ fb
        k = a.shape[-1]
        bound = 2 * max(k, 1) * unit(dt) * mag + ulp(ctx.out, dt) + carried
    acc = accumulator(dt)
    nonfinite = (~np.isfinite(a)).astype(float) @ np.ones(b.shape) + np.ones(a.shape) @ (
        ~np.isfinite(b)
    ).astype(float)
    decided = np.where((mag * k >= largest(acc) / 4) | (carried != 0), INF, 0.0)
    bound = np.where(nonfinite > 0, decided, bound)
    bound = np.where((mag >= largest(acc) / 4) | np.isnan(bound), INF, bound)
    z = _free_zero(ctx) | (ctx.zs[0].any() | ctx.zs[1].any())
    return Bound(bound, np.broadcast_to(z, ctx.shape))


def _scatter_bound(ctx: _Ctx) -> Bound:
    x, idx, src = ctx.xs
    axis, dt = ctx.node.attrs["axis"], ctx.dt
    impl = PRIMITIVES["scatter_add"].impl
    bx = np.broadcast_to(ctx.bs[0], x.shape)
    bsrc = np.broadcast_to(ctx.bs[2], src.shape)
    if np.any(ctx.bs[1] != 0):
        return Bound(np.full(ctx.shape, INF), np.zeros(ctx.shape, bool))
    carried = impl(bx.astype(np.float64), idx, bsrc.astype(np.float64), axis)
    if not dt.is_floating_point:
        return Bound(np.where(carried != 0, INF, 0.0), np.zeros(ctx.shape, bool))
    fx = np.where(np.isfinite(_f64(x)), np.abs(_f64(x)), 0.0)
    fs = np.where(np.isfinite(_f64(src)), np.abs(_f64(src)), 0.0)
    mag = impl(fx, idx, fs, axis)
    n = 1 + (idx.shape[axis] if idx.ndim else 1)
    out = _f64(ctx.out)
    b = 2 * n * unit(dt) * mag + ulp(out, dt) + carried
    acc = accumulator(dt)
    b = np.where(mag >= largest(acc) / 2, INF, b)
    b = np.where(~np.isfinite(out) & (b != INF) & (carried == 0), 0.0, b)
    z = impl(ctx.zs[0] | np.zeros(x.shape, bool), idx, ctx.zs[2] | np.zeros(src.shape, bool), axis)
    return Bound(b, np.asarray(z, bool))


def _whole(ctx: _Ctx) -> Bound:
    """Not checked at all when an operand is inexact (argsort of inexact values)."""
    b = np.full(ctx.shape, INF) if ctx.inexact else np.zeros(ctx.shape)
    return Bound(b, np.zeros(ctx.shape, bool))


_NODE_RULES = {
    "where": _where_bound, "convert": _convert_bound, "gather": _layout, "pad": _layout,
    "concat": _layout, "reduce_sum": _reduce_bound, "reduce_prod": _reduce_bound,
    "reduce_max": _reduce_bound, "reduce_min": _reduce_bound, "argmax": _argreduce_bound,
    "argmin": _argreduce_bound, "cumsum": _cumsum_bound, "matmul": _matmul_bound,
    "scatter_add": _scatter_bound, "argsort": _whole,
}  # fmt: skip


def node_bound(node: Node, values: dict, bounds: dict) -> Bound:
    ctx = _Ctx(node, values, bounds)
    op = node.op
    if op in ("full", "iota"):
        return Bound.exact(ctx.shape)
    if op in LAYOUT:
        return _layout(ctx)
    if op in _NODE_RULES:
        return _NODE_RULES[op](ctx)
    if PRIMITIVES[op].category == "compare":
        return _compare_bound(ctx)
    if PRIMITIVES[op].category in ("unary", "binary"):
        return _elementwise(ctx)
    return _whole(ctx)


def propagate(graph: Graph, values: dict[Value, np.ndarray]) -> dict[Value, Bound]:
    """The `Bound` of every value of ``graph`` (inputs are exact)."""
    bounds = {v: Bound.exact(v.type.shape) for v in graph.inputs}
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            bound = node_bound(node, values, bounds)
            assert bound.b.shape == node.output.type.shape, node.op
            bounds[node.output] = bound
    return bounds
