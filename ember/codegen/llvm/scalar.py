"""Scalar semantics of the kernel IR's body ops in LLVM IR: one function per op family.

Every op computes what the eager kernel (`ember.runtime.eager_kernels`, numpy) computes for its
dtype, bit for bit where numpy is exact and within the math library's rounding where it calls
one. Key decisions:

- **Registers.** A value of dtype float16 or bfloat16 lives in a ``float`` register holding a
  number exactly representable in that dtype; float32 is ``float``, float64 ``double``, bool
  ``i1``, integers ``iN``. In memory, float16 is ``half``, bfloat16 ``i16`` (llvmlite has no
  ``bfloat`` type: conversion is done on the bits) and bool ``i8`` holding 0/1.
- **Low-precision arithmetic** is computed in float32 and rounded to the dtype after each op
  (numpy's float16 loops and ml_dtypes' bfloat16 loops do the same; for + - * / sqrt the result
  equals the correctly rounded one). Ops with exact results (neg, abs, floor, maximum...) skip
  the rounding.
- **Rounding to bfloat16** is round-to-nearest-even on the float32 bits, NaN becomes the quiet
  NaN ``0x7fc0`` with its sign, as ml_dtypes does. float64 goes to float16/bfloat16 in one
  correct rounding (as numpy and ml_dtypes do): first to float32 rounding to odd, then to the
  target rounding to nearest even (24 bits are more than 2 + 11, so no double rounding).
- **Integers** follow numpy: wrapping arithmetic, floor division and Python-sign remainder
  with ``x // 0 == x % 0 == 0`` and ``MIN // -1 == MIN`` (no trap: the divisor is replaced by
  1 before the division), shifts by counts outside ``[0, bits)`` give 0 (or -1 for a negative
  number shifted right), power by repeated squaring (a loop: the only op that branches);
  a negative exponent gives the truncated result (0, or +-1 for a base of +-1) where numpy
  raises.
- **Floats** follow numpy: ``maximum``/``minimum`` propagate NaN and return the second operand
  on ties (``-0.0`` vs ``0.0``), the first for float16, as numpy's loops do; ``remainder``
  and ``floordiv`` are numpy's ``npy_divmod`` written branch-free; ``round`` is half to even;
  ``sign`` of NaN is 0 (PyTorch's rule, which the eager kernel uses).
- **Conversions** follow ``astype``: float to an integer narrower than 32 bits goes through
  int64 and wraps (the eager kernel's rule); float to int uses ``fptosi`` (out of range is
  undefined in numpy too); integers to bfloat16 go through float64 (ml_dtypes' path).
- **Transcendentals** all go through `_math` (LLVM intrinsics, libm for tanh, erf, log1p and
  expm1): the one place a polynomial vector-math library replaces them. ``philox`` goes
  through `_philox`.

Dtype/op pairs numpy rejects (negation of bool, bitwise ops on floats, division of integers,
transcendentals of integers, shifts and floor division of bools) raise `DTypeError` when the
kernel is emitted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from llvmlite import ir

from ...ir import dtypes as D
from ...ir.dtypes import DType
from ...ir.errors import DTypeError
from . import vmath
from .philox import emit_philox_uniform

__all__ = [
    "I1",
    "I8",
    "I16",
    "I32",
    "I64",
    "F16",
    "F32",
    "F64",
    "reg_type",
    "mem_type",
    "constant",
    "identity",
    "load_value",
    "store_value",
    "convert",
    "round_to",
    "emit_op",
    "truthy",
    "intrinsic",
]

I1, I8, I16, I32, I64 = (ir.IntType(n) for n in (1, 8, 16, 32, 64))
F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()

_LOW = (D.float16, D.bfloat16)
_MATH_UNARY = ("exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf", "log1p",
               "expm1")  # fmt: skip
_INTRINSICS = {"exp": "llvm.exp", "log": "llvm.log", "sqrt": "llvm.sqrt", "sin": "llvm.sin",
               "cos": "llvm.cos", "pow": "llvm.pow"}  # fmt: skip
_LIBM = ("tanh", "erf", "log1p", "expm1")


# -- types and constants -------------------------------------------------------------------


def reg_type(dt: DType) -> ir.Type:
    """The register type of a value of ``dt`` (see the module docstring)."""
    if dt is D.float64:
        return F64
    if dt.is_floating_point:
        return F32
    if dt is D.bool_:
        return I1
    return ir.IntType(8 * dt.itemsize)


def mem_type(dt: DType) -> ir.Type:
    """The type of one element of ``dt`` in memory."""
    if dt is D.float16:
        return F16
    if dt is D.bfloat16:
        return I16
    if dt is D.bool_:
        return I8
    return reg_type(dt)


def _is_signed_int(dt: DType) -> bool:
    return dt.category == D.INTEGER and dt.is_signed


def constant(dt: DType, value) -> ir.Constant:
    """``value`` as a register constant of ``dt`` (rounded or wrapped as ``astype`` would)."""
    if dt.is_floating_point:
        with np.errstate(over="ignore"):  # out of range rounds to inf, as astype does
            rounded = np.asarray(value, dtype=np.float64).astype(dt.np)
        return ir.Constant(reg_type(dt), float(rounded))
    if dt is D.bool_:
        return ir.Constant(I1, int(bool(value)))
    bits = 8 * dt.itemsize
    v = int(value) & ((1 << bits) - 1)
    return ir.Constant(reg_type(dt), v)


def identity(dt: DType, kind: str) -> ir.Constant:
    """The identity of reduction ``kind`` over values of ``dt``."""
    if kind in ("sum",):
        return constant(dt, 0)
    if kind == "prod":
        return constant(dt, 1)
    high = kind in ("min", "argmin")
    if dt.is_floating_point:
        return ir.Constant(reg_type(dt), float("inf") if high else float("-inf"))
    if dt is D.bool_:
        return ir.Constant(I1, int(high))
    info = np.iinfo(dt.np)
    return constant(dt, info.max if high else info.min)


def intrinsic(builder: ir.IRBuilder, name: str, args: Sequence[ir.Value]) -> ir.Value:
    """Call the overloaded LLVM intrinsic ``name`` on ``args`` (all of one type)."""
    ty = args[0].type
    suffix = {F32: "f32", F64: "f64"}.get(ty) or f"i{ty.width}"
    full = f"{name}.{suffix}"
    module = builder.module
    fn = module.globals.get(full)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ty, [a.type for a in args]), full)
    return builder.call(fn, args)


def _libm(builder: ir.IRBuilder, name: str, x: ir.Value) -> ir.Value:
    full = name + ("f" if x.type == F32 else "")
    module = builder.module
    fn = module.globals.get(full)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(x.type, [x.type]), full)
        fn.attributes.add("nounwind")
    return builder.call(fn, [x])


def _math(builder: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    """Every transcendental function of a float or double: ``exp``, ``log``, ``sqrt``,
    ``rsqrt``, ``sin``, ``cos``, ``tanh``, ``sigmoid``, ``erf``, ``log1p``, ``expm1`` (one
    argument) and ``pow`` (two)."""
    x = args[0]
    one = ir.Constant(x.type, 1.0)
    if name == "sigmoid":  # 1 / (1 + exp(-x)), the eager kernel's formula
        return builder.fdiv(one, builder.fadd(one, _math(builder, "exp", builder.fneg(x))))
    if name == "rsqrt":  # 1 / sqrt(x), as the eager kernel
        return builder.fdiv(one, _math(builder, "sqrt", x))
    if name == "pow":
        return vmath.emit_binary(builder, "pow", *args)
    if name in vmath.UNARY and name != "sqrt":  # polynomial IR, vectorizable (vmath.py)
        return vmath.emit_unary(builder, name, x)
    if name in _INTRINSICS:
        return intrinsic(builder, _INTRINSICS[name], args)
    if name in _LIBM:
        return _libm(builder, name, x)
    raise ValueError(f"no math function {name!r}")


def _philox(builder: ir.IRBuilder, seed: ir.Value, offset: ir.Value, index: ir.Value,
            dtype: DType) -> ir.Value:  # fmt: skip
    """A uniform draw in [0, 1) of ``dtype`` for element ``index`` of stream (seed, offset),
    bit-identical to the eager kernel (`ember.codegen.llvm.philox`), in register form."""
    raw = emit_philox_uniform(builder, seed, offset, index, dtype.short)
    if dtype is D.float16:
        return builder.fpext(raw, F32)
    if dtype is D.bfloat16:  # the bfloat16 bits, widened to the float32 they stand for
        return builder.bitcast(builder.shl(builder.zext(raw, I32), ir.Constant(I32, 16)), F32)
    return raw


# -- memory --------------------------------------------------------------------------------


def load_value(builder: ir.IRBuilder, ptr: ir.Value, dt: DType) -> ir.Value:
    """Load one element of ``dt`` at ``ptr`` into its register form."""
    raw = builder.load(ptr, typ=mem_type(dt), align=dt.itemsize)
    if dt is D.float16:
        return builder.fpext(raw, F32)
    if dt is D.bfloat16:
        return builder.bitcast(builder.shl(builder.zext(raw, I32), ir.Constant(I32, 16)), F32)
    if dt is D.bool_:
        return builder.icmp_unsigned("!=", raw, ir.Constant(I8, 0))
    return raw


def store_value(builder: ir.IRBuilder, value: ir.Value, ptr: ir.Value, dt: DType) -> None:
    """Store register ``value`` of ``dt`` (already representable in ``dt``) at ``ptr``."""
    if dt is D.float16:
        value = builder.fptrunc(value, F16)
    elif dt is D.bfloat16:
        bits = builder.lshr(builder.bitcast(value, I32), ir.Constant(I32, 16))
        value = builder.trunc(bits, I16)
    elif dt is D.bool_:
        value = builder.zext(value, I8)
    builder.store(value, ptr, align=dt.itemsize)


# -- rounding and conversion ---------------------------------------------------------------


def _round_bf16(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """The float nearest to float ``x`` (ties to even) that bfloat16 represents."""
    bits = builder.bitcast(x, I32)
    c = lambda v: ir.Constant(I32, v)  # noqa: E731
    lsb = builder.and_(builder.lshr(bits, c(16)), c(1))
    rounded = builder.and_(builder.add(bits, builder.add(lsb, c(0x7FFF))), c(0xFFFF0000))
    quiet = builder.or_(builder.and_(bits, c(0x80000000)), c(0x7FC00000))
    isnan = builder.fcmp_unordered("uno", x, x)
    return builder.bitcast(builder.select(isnan, quiet, rounded), F32)


def round_to(builder: ir.IRBuilder, x: ir.Value, dt: DType) -> ir.Value:
    """Float register ``x`` rounded to the nearest value of float dtype ``dt``."""
    if dt is D.float16:
        return builder.fpext(builder.fptrunc(x, F16), F32)
    if dt is D.bfloat16:
        return _round_bf16(builder, x)
    return x


def _to_float_odd(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Double ``x`` rounded to float to odd: exact results stay, inexact ones truncate toward
    zero and set the last bit (so a second rounding to a narrower type is correct)."""
    t = builder.fptrunc(x, F32)
    back = builder.fpext(t, F64)
    inexact = builder.fcmp_ordered("!=", back, x)
    bits = builder.bitcast(t, I32)
    over = builder.fcmp_ordered(
        ">", intrinsic(builder, "llvm.fabs", [back]), intrinsic(builder, "llvm.fabs", [x])
    )
    bits = builder.select(over, builder.sub(bits, ir.Constant(I32, 1)), bits)
    odd = builder.or_(bits, ir.Constant(I32, 1))
    return builder.bitcast(builder.select(inexact, odd, bits), F32)


def truthy(builder: ir.IRBuilder, x: ir.Value, dt: DType) -> ir.Value:
    """``x != 0`` as an i1 (NaN is true)."""
    if dt is D.bool_:
        return x
    if dt.is_floating_point:
        return builder.fcmp_unordered("!=", x, ir.Constant(x.type, 0.0))
    return builder.icmp_unsigned("!=", x, ir.Constant(x.type, 0))


def convert(builder: ir.IRBuilder, x: ir.Value, src: DType, dst: DType) -> ir.Value:
    """``x.astype(dst)`` for a register ``x`` of ``src`` (see the module docstring)."""
    if src is dst:
        return x
    if dst is D.bool_:
        return truthy(builder, x, src)
    if dst.is_floating_point:
        return _to_float(builder, x, src, dst)
    target = reg_type(dst)
    if src.is_floating_point:
        if dst.itemsize < 4:
            return builder.trunc(builder.fptosi(x, I64), target)
        return builder.fptosi(x, target)
    width, src_width = target.width, x.type.width
    if width == src_width:
        return x
    if width < src_width:
        return builder.trunc(x, target)
    return builder.sext(x, target) if _is_signed_int(src) else builder.zext(x, target)


def _to_float(builder: ir.IRBuilder, x: ir.Value, src: DType, dst: DType) -> ir.Value:
    if not src.is_floating_point:
        signed = _is_signed_int(src)
        via = F64 if dst in (D.float64, D.bfloat16) else F32
        x = builder.sitofp(x, via) if signed else builder.uitofp(x, via)
        src = D.float64 if via == F64 else D.float32
        if src is dst:
            return x
    if src is D.float64:
        if dst is D.float32:
            return builder.fptrunc(x, F32)
        return round_to(builder, _to_float_odd(builder, x), dst)
    if dst is D.float64:
        return builder.fpext(x, F64)
    return round_to(builder, x, dst)  # between float registers: float16, bfloat16, float32


# -- ops -----------------------------------------------------------------------------------


def _unsupported(op: str, dt: DType) -> DTypeError:
    return DTypeError(op, f"not defined for {dt.short} operands", None)


def emit_op(builder: ir.IRBuilder, op: str, args: Sequence[ir.Value],
            arg_dtypes: Sequence[DType], dtype: DType) -> ir.Value:  # fmt: skip
    """The register value of elementwise ``op`` (a name in ``kernel.ELEMENTWISE``) applied to
    ``args`` of ``arg_dtypes``, with result dtype ``dtype``."""
    if op == "convert":
        return convert(builder, args[0], arg_dtypes[0], dtype)
    if op == "where":
        return builder.select(args[0], args[1], args[2])
    dt = arg_dtypes[0]
    if len(args) == 1:
        return _unary(builder, op, args[0], dt)
    if op in _COMPARE:
        return _compare(builder, op, args[0], args[1], dt)
    if op in _LOGICAL:
        a, b = truthy(builder, args[0], dt), truthy(builder, args[1], dt)
        return getattr(builder, _LOGICAL[op])(a, b)
    if dt.is_floating_point:
        return _float_binary(builder, op, args[0], args[1], dt)
    if dt is D.bool_:
        return _bool_binary(builder, op, args[0], args[1])
    return _int_binary(builder, op, args[0], args[1], dt)


# unary --------------------------------------------------------------------------------------

_INTEGRAL_IDENTITY = ("floor", "ceil", "round", "trunc")
_ROUNDING = {"floor": "llvm.floor", "ceil": "llvm.ceil", "round": "llvm.roundeven",
             "trunc": "llvm.trunc"}  # fmt: skip


def _unary(builder: ir.IRBuilder, op: str, x: ir.Value, dt: DType) -> ir.Value:
    if op == "logical_not":
        return builder.not_(truthy(builder, x, dt))
    if dt.is_floating_point:
        return _float_unary(builder, op, x, dt)
    if op in _INTEGRAL_IDENTITY:
        return x
    if op == "bitwise_not":
        return builder.not_(x)
    zero = ir.Constant(x.type, 0)
    if dt is D.bool_:
        if op in ("abs", "sign"):
            return x
        raise _unsupported(op, dt)
    if op == "neg":
        return builder.sub(zero, x)
    signed = _is_signed_int(dt)
    if op == "abs":
        return builder.select(builder.icmp_signed("<", x, zero), builder.sub(zero, x), x) \
            if signed else x  # fmt: skip
    if op == "sign":
        pos = builder.zext(builder.icmp_signed(">", x, zero) if signed
                           else builder.icmp_unsigned("!=", x, zero), x.type)  # fmt: skip
        if not signed:
            return pos
        return builder.sub(pos, builder.zext(builder.icmp_signed("<", x, zero), x.type))
    raise _unsupported(op, dt)


def _float_unary(builder: ir.IRBuilder, op: str, x: ir.Value, dt: DType) -> ir.Value:
    zero = ir.Constant(x.type, 0.0)
    if op == "neg":
        return builder.fneg(x)
    if op == "abs":
        return intrinsic(builder, "llvm.fabs", [x])
    if op == "sign":
        pos = builder.uitofp(builder.fcmp_ordered(">", x, zero), x.type)
        neg = builder.uitofp(builder.fcmp_ordered("<", x, zero), x.type)
        return builder.fsub(pos, neg)
    if op in _ROUNDING:
        return intrinsic(builder, _ROUNDING[op], [x])
    if op in _MATH_UNARY:
        return round_to(builder, _math(builder, op, x), dt)
    raise _unsupported(op, dt)


# binary -------------------------------------------------------------------------------------

_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_LOGICAL = {"logical_and": "and_", "logical_or": "or_", "logical_xor": "xor"}
_BITWISE = {"bitwise_and": "and_", "bitwise_or": "or_", "bitwise_xor": "xor"}


def _compare(builder: ir.IRBuilder, op: str, a: ir.Value, b: ir.Value, dt: DType) -> ir.Value:
    pred = _COMPARE[op]
    if dt.is_floating_point:  # NaN: every comparison false, except ne
        if op == "ne":
            return builder.fcmp_unordered(pred, a, b)
        return builder.fcmp_ordered(pred, a, b)
    if _is_signed_int(dt):
        return builder.icmp_signed(pred, a, b)
    return builder.icmp_unsigned(pred, a, b)


def _float_binary(builder: ir.IRBuilder, op: str, a: ir.Value, b: ir.Value,
                  dt: DType) -> ir.Value:  # fmt: skip
    if op in ("maximum", "minimum"):
        # numpy: (a > b || isnan(a)) ? a : b, with >= for float16 (ties keep a there)
        pred = (">" if op == "maximum" else "<") + ("=" if dt is D.float16 else "")
        keep = builder.or_(builder.fcmp_ordered(pred, a, b), builder.fcmp_unordered("uno", a, a))
        return builder.select(keep, a, b)
    if op in ("add", "sub", "mul", "div"):
        name = {"add": "fadd", "sub": "fsub", "mul": "fmul", "div": "fdiv"}[op]
        out = getattr(builder, name)(a, b)
    elif op == "pow":
        out = _math(builder, "pow", a, b)
    elif op == "remainder":
        out = _float_remainder(builder, a, b)
    elif op == "floordiv":
        out = _float_floordiv(builder, a, b)
    else:
        raise _unsupported(op, dt)
    return round_to(builder, out, dt)


def _copysign(builder: ir.IRBuilder, mag: ir.Value, sign: ir.Value) -> ir.Value:
    return intrinsic(builder, "llvm.copysign", [mag, sign])


def _float_remainder(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    """numpy's ``npy_remainder``: fmod, moved to the divisor's sign; ``x % 0`` is NaN."""
    zero = ir.Constant(a.type, 0.0)
    mod = builder.frem(a, b)
    differ = builder.xor(builder.fcmp_ordered("<", b, zero), builder.fcmp_ordered("<", mod, zero))
    adjusted = builder.select(differ, builder.fadd(mod, b), mod)
    nonzero = builder.fcmp_unordered("!=", mod, zero)
    out = builder.select(nonzero, adjusted, _copysign(builder, zero, b))
    return builder.select(builder.fcmp_ordered("==", b, zero), mod, out)


def _float_floordiv(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    """numpy's ``npy_floor_divide``: ``(a - fmod(a, b)) / b`` corrected and snapped to an
    integer; ``x // 0`` is ``x / 0``."""
    zero = ir.Constant(a.type, 0.0)
    one = ir.Constant(a.type, 1.0)
    mod = builder.frem(a, b)
    div = builder.fdiv(builder.fsub(a, mod), b)
    differ = builder.xor(builder.fcmp_ordered("<", b, zero), builder.fcmp_ordered("<", mod, zero))
    adjust = builder.and_(builder.fcmp_unordered("!=", mod, zero), differ)
    div = builder.select(adjust, builder.fsub(div, one), div)
    floor = intrinsic(builder, "llvm.floor", [div])
    up = builder.fcmp_ordered(">", builder.fsub(div, floor), ir.Constant(a.type, 0.5))
    floor = builder.select(up, builder.fadd(floor, one), floor)
    quotient = builder.fdiv(a, b)
    out = builder.select(
        builder.fcmp_unordered("!=", div, zero), floor, _copysign(builder, zero, quotient)
    )
    return builder.select(builder.fcmp_ordered("==", b, zero), quotient, out)


def _bool_binary(builder: ir.IRBuilder, op: str, a: ir.Value, b: ir.Value) -> ir.Value:
    if op in ("add", "maximum", "bitwise_or"):
        return builder.or_(a, b)
    if op in ("mul", "minimum", "bitwise_and"):
        return builder.and_(a, b)
    if op == "bitwise_xor":
        return builder.xor(a, b)
    if op == "pow":  # numpy computes it in int8: a ** 0 == 1, else a
        return builder.or_(a, builder.not_(b))
    raise _unsupported(op, D.bool_)


def _int_binary(builder: ir.IRBuilder, op: str, a: ir.Value, b: ir.Value,
                dt: DType) -> ir.Value:  # fmt: skip
    signed = _is_signed_int(dt)
    if op in ("add", "sub", "mul"):
        return getattr(builder, op)(a, b)
    if op in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        return getattr(builder, _BITWISE[op])(a, b)
    if op in ("maximum", "minimum"):
        cmp = builder.icmp_signed if signed else builder.icmp_unsigned
        return builder.select(cmp(">" if op == "maximum" else "<", a, b), a, b)
    if op in ("floordiv", "remainder"):
        return _int_divmod(builder, op, a, b, signed)
    if op in ("lshift", "rshift"):
        return _shift(builder, op, a, b, signed)
    if op == "pow":
        return _int_pow(builder, a, b, signed)
    raise _unsupported(op, dt)


def _int_divmod(builder: ir.IRBuilder, op: str, a: ir.Value, b: ir.Value,
                signed: bool) -> ir.Value:  # fmt: skip
    """Floor division or remainder with numpy's results for ``b == 0`` (0) and, signed,
    ``MIN // -1`` (MIN, wrapped) and ``MIN % -1`` (0); never traps."""
    ty = a.type
    zero, one = ir.Constant(ty, 0), ir.Constant(ty, 1)
    is_zero = builder.icmp_unsigned("==", b, zero)
    if not signed:
        safe = builder.select(is_zero, one, b)
        out = builder.udiv(a, safe) if op == "floordiv" else builder.urem(a, safe)
        return builder.select(is_zero, zero, out)
    minus_one = builder.icmp_signed("==", b, ir.Constant(ty, -1))
    special = builder.or_(is_zero, minus_one)
    safe = builder.select(special, one, b)
    rem = builder.srem(a, safe)  # 0 for the special divisors
    # floor semantics: a nonzero remainder whose sign differs from the divisor's moves down
    fix = builder.and_(
        builder.icmp_unsigned("!=", rem, zero),
        builder.icmp_signed("<", builder.xor(rem, b), zero),
    )
    if op == "remainder":
        return builder.select(fix, builder.add(rem, b), rem)
    quotient = builder.sdiv(a, safe)
    quotient = builder.select(fix, builder.sub(quotient, one), quotient)
    quotient = builder.select(minus_one, builder.sub(zero, a), quotient)
    return builder.select(is_zero, zero, quotient)


def _shift(builder: ir.IRBuilder, op: str, a: ir.Value, b: ir.Value, signed: bool) -> ir.Value:
    """numpy's shifts: a count outside [0, bits) (negative counts included) shifts every bit
    out (0, or -1 for a negative number shifted right)."""
    ty = a.type
    bits = ir.Constant(ty, ty.width)
    in_range = builder.icmp_unsigned("<", b, bits)
    if op == "rshift" and signed:
        return builder.ashr(a, builder.select(in_range, b, ir.Constant(ty, ty.width - 1)))
    count = builder.select(in_range, b, ir.Constant(ty, 0))
    shifted = builder.shl(a, count) if op == "lshift" else builder.lshr(a, count)
    return builder.select(in_range, shifted, ir.Constant(ty, 0))


def _int_pow(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, signed: bool) -> ir.Value:
    """``a ** b`` wrapping, by repeated squaring over the bits of ``b``."""
    ty = a.type
    zero, one = ir.Constant(ty, 0), ir.Constant(ty, 1)
    pre = builder.block
    head = builder.append_basic_block("pow.head")
    body = builder.append_basic_block("pow.body")
    done = builder.append_basic_block("pow.done")
    builder.branch(head)
    builder.position_at_end(head)
    result = builder.phi(ty, "pow.result")
    base = builder.phi(ty, "pow.base")
    exp = builder.phi(ty, "pow.exp")
    result.add_incoming(one, pre)
    base.add_incoming(a, pre)
    exp.add_incoming(b, pre)
    more = builder.icmp_signed(">", exp, zero) if signed else builder.icmp_unsigned("!=", exp, zero)
    builder.cbranch(more, body, done)
    builder.position_at_end(body)
    odd = builder.trunc(exp, I1)
    result.add_incoming(builder.select(odd, builder.mul(result, base), result), body)
    base.add_incoming(builder.mul(base, base), body)
    exp.add_incoming(builder.lshr(exp, one), body)
    builder.branch(head)
    builder.position_at_end(done)
    if not signed:
        return result
    # a negative exponent: the truncated value 1 / a**|b| (0 unless a is 1 or -1)
    minus_one = ir.Constant(ty, -1)
    odd_b = builder.trunc(b, I1)
    unit = builder.select(
        builder.icmp_signed("==", a, minus_one), builder.select(odd_b, minus_one, one), zero
    )
    unit = builder.select(builder.icmp_signed("==", a, one), one, unit)
    return builder.select(builder.icmp_signed("<", b, zero), unit, result)
