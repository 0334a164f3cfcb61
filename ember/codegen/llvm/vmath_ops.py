"""The building blocks of ember's vector math: float formats, exact constants, and `Ops`.

`vmath.py` writes each transcendental function as straight-line LLVM IR: arithmetic, `select`,
integer bit tricks and the LLVM intrinsics that lower to single instructions (`llvm.fma`,
`llvm.fabs`, `llvm.rint`, `llvm.floor`, `llvm.sqrt`, `llvm.copysign`). This module holds what
those formulas are built from:

- `Format`: the bit layout of float (``F32``) and double (``F64``): mantissa width, exponent
  bias, the integer type of the same width;
- exact constants: ln 2, pi and 2/pi come from integer arithmetic (Machin's formula), and every
  constant split into a high part with trailing zero bits and a low part (ln 2 for Cody-Waite
  range reduction, pi/2) is split exactly, in `fractions.Fraction`;
- `Ops`: a thin layer over `llvmlite.ir.IRBuilder` that turns Python floats into constants of
  the operand's type, declares intrinsics once per module, and offers the few composite steps the
  formulas share (Horner evaluation, the error-free sum, scaling by 2^n through the exponent
  bits, NaN-preserving clamps).

Nothing here carries fast-math flags: every operation rounds as IEEE 754 says, which is what the
accuracy bounds in `vmath.MAX_ULP` were measured with. `llvm.fma` is a single instruction on
every x86-64 CPU with AVX2 (and on AArch64); on a CPU without FMA it becomes a libm call, which
is still correct but slow.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

import llvmlite.ir as ir

__all__ = [
    "F32",
    "F64",
    "LN2",
    "PI",
    "TWO_OVER_PI_BITS",
    "Format",
    "Ops",
    "f32",
    "f64",
    "format_of",
    "split",
]


@dataclass(frozen=True)
class Format:
    """A binary floating-point format: its LLVM types and its bit layout."""

    name: str  # "f32" | "f64"
    ty: ir.Type
    ity: ir.IntType
    mant: int  # explicit mantissa bits
    bias: int

    @property
    def bits(self) -> int:
        return self.ity.width

    @property
    def mant_mask(self) -> int:
        return (1 << self.mant) - 1

    def to_bits(self, value: float) -> int:
        code = "<f" if self.name == "f32" else "<d"
        return int.from_bytes(struct.pack(code, value), "little")

    def round(self, value: Fraction | float) -> float:
        return f32(value) if self.name == "f32" else f64(value)


F32 = Format("f32", ir.FloatType(), ir.IntType(32), 23, 127)
F64 = Format("f64", ir.DoubleType(), ir.IntType(64), 52, 1023)


def f64(value: Fraction | float) -> float:
    """The double nearest to ``value`` (Fraction -> float rounds correctly)."""
    return float(value)


def f32(value: Fraction | float) -> float:
    """The float nearest to ``value`` (through double; exact for the constants used here)."""
    return struct.unpack("<f", struct.pack("<f", float(value)))[0]


def split(value: Fraction, hi_bits: int, fmt: Format) -> tuple[float, float]:
    """``value`` as hi + lo: hi keeps ``hi_bits`` significant bits (trailing zeros below), lo
    is the rest rounded to ``fmt``. Products of hi with small integers are then exact."""
    exponent = 0
    while value >= 1:
        value, exponent = value / 2, exponent + 1
    while value < Fraction(1, 2):
        value, exponent = value * 2, exponent - 1
    scaled = Fraction(int(value * (1 << hi_bits)), 1 << hi_bits)
    hi = scaled * Fraction(2) ** exponent
    lo = (value - scaled) * Fraction(2) ** exponent
    return float(hi), fmt.round(lo)


def _arctan_inv(n: int, one: int) -> int:
    """arctan(1/n) * one, by the alternating Taylor series in integers."""
    total = term = one // n
    n2, k, sign = n * n, 3, -1
    while term:
        term //= n2
        total += sign * (term // k)
        k, sign = k + 2, -sign
    return total


_PREC = 320  # bits of the integer computation; 2/pi is needed to 200 bits
_ONE = 1 << _PREC
_PI_INT = 4 * (4 * _arctan_inv(5, _ONE) - _arctan_inv(239, _ONE))
PI = Fraction(_PI_INT, _ONE)
# floor(2/pi * 2^256): the bits of 2/pi after the binary point, most significant first.
TWO_OVER_PI_BITS = (2 << (256 + _PREC)) // _PI_INT
LN2 = Fraction("0.69314718055994530941723212145817656807550013436025525412068000949339362196969")


class Ops:
    """IR construction for one helper function: constants follow the operand's type."""

    def __init__(self, builder: ir.IRBuilder, fmt: Format):
        self.b = builder
        self.fmt = fmt

    # -- constants --------------------------------------------------------------------------
    def k(self, value: float, like: ir.Value | ir.Type | None = None) -> ir.Constant:
        """A float constant of ``like``'s type (default: this function's format)."""
        ty = self._ty(like)
        if isinstance(ty, ir.IntType):
            return ir.Constant(ty, int(value))
        return ir.Constant(ty, float(value))

    def _ty(self, like: ir.Value | ir.Type | None) -> ir.Type:
        if like is None:
            return self.fmt.ty
        return like if isinstance(like, ir.Type) else like.type

    def _val(self, v: ir.Value | float, like: ir.Value | None) -> ir.Value:
        return v if isinstance(v, ir.Value) else self.k(v, like)

    # -- float arithmetic (no fast-math flags) ----------------------------------------------
    def add(self, a, b):
        return self.b.fadd(a, self._val(b, a))

    def sub(self, a, b):
        if not isinstance(a, ir.Value):
            a = self.k(a, b)
        return self.b.fsub(a, self._val(b, a))

    def mul(self, a, b):
        return self.b.fmul(a, self._val(b, a))

    def div(self, a, b):
        if not isinstance(a, ir.Value):
            a = self.k(a, b)
        return self.b.fdiv(a, self._val(b, a))

    def neg(self, a):
        return self.b.fneg(a)

    def fma(self, a, b, c):
        return self.intrinsic("llvm.fma", a, self._val(b, a), self._val(c, a))

    def fabs(self, a):
        return self.intrinsic("llvm.fabs", a)

    def rint(self, a):
        return self.intrinsic("llvm.rint", a)

    def floor(self, a):
        return self.intrinsic("llvm.floor", a)

    def sqrt(self, a):
        return self.intrinsic("llvm.sqrt", a)

    def copysign(self, mag, sign):
        return self.intrinsic("llvm.copysign", mag, sign)

    def intrinsic(self, name: str, *args: ir.Value) -> ir.Value:
        """Call ``name`` overloaded on the first argument's type, declared once per module."""
        ty = args[0].type
        full = f"{name}.{'f32' if ty == ir.FloatType() else 'f64'}"
        module = self.b.module
        fn = module.globals.get(full)
        if fn is None:
            fn = ir.Function(module, ir.FunctionType(ty, [a.type for a in args]), full)
        return self.b.call(fn, list(args))

    # -- comparisons and selection ------------------------------------------------------------
    def cmp(self, op: str, a, b):
        """Ordered comparison: false when either side is NaN."""
        return self.b.fcmp_ordered(op, a, self._val(b, a))

    def sel(self, cond, a, b):
        like = a if isinstance(a, ir.Value) else b if isinstance(b, ir.Value) else None
        return self.b.select(cond, self._val(a, like), self._val(b, like))

    def clamp(self, x, lo: float, hi: float):
        """min(max(x, lo), hi) that lets NaN through."""
        x = self.sel(self.cmp(">", x, hi), hi, x)
        return self.sel(self.cmp("<", x, lo), lo, x)

    def isfinite(self, x):
        return self.cmp("<", self.fabs(x), float("inf"))

    # -- integers and bits --------------------------------------------------------------------
    def bits(self, x) -> ir.Value:
        return self.b.bitcast(x, _int_of(x.type))

    def from_bits(self, i) -> ir.Value:
        return self.b.bitcast(i, _float_of(i.type))

    def iconst(self, value: int, like) -> ir.Constant:
        return ir.Constant(self._ty(like), value)

    # -- composite steps ----------------------------------------------------------------------
    def poly(self, x, coeffs):
        """sum(coeffs[i] * x**i) by Horner's rule with fma; coefficients may be IR values."""
        acc = self._val(coeffs[-1], x)
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self._val(c, x))
        return acc

    def two_sum(self, a, b):
        """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth, any magnitudes)."""
        s = self.add(a, b)
        bb = self.sub(s, a)
        e = self.add(self.sub(a, self.sub(s, bb)), self.sub(b, bb))
        return s, e

    def magic_round(self, x, scale: float):
        """(k, n): k = rint(x * scale) as a float and n the same as an integer.

        The rounding happens in one fma against 1.5 * 2^mant, whose last bit is the units
        place, so no float-to-int conversion is needed (and a NaN gives a harmless integer).
        Valid for |x * scale| < 2^(mant - 1).
        """
        fmt = format_of(x.type)
        magic = 1.5 * 2.0**fmt.mant
        kf = self.fma(x, scale, magic)
        k = self.sub(kf, magic)
        n = self.b.sub(self.bits(kf), self.iconst(fmt.to_bits(magic), fmt.ity))
        return k, n

    def small_int_to_double(self, i):
        """An i64 in [0, 2^52) as a double, exactly: its bits under 2^52's exponent, minus 2^52.
        (AVX2 has no 64-bit integer to double conversion; this is two instructions.)"""
        magic = self.iconst(F64.to_bits(2.0**52), i.type)
        return self.sub(self.from_bits(self.b.or_(i, magic)), 2.0**52)

    def pow2(self, n, fmt: Format):
        """2^n for an integer n within the normal exponent range of ``fmt``."""
        biased = self.b.add(n, self.iconst(fmt.bias, n.type))
        return self.from_bits(self.b.shl(biased, self.iconst(fmt.mant, n.type)))

    def scale2(self, p, n, fmt: Format):
        """p * 2^n in two exact steps, so results that end up subnormal round only once."""
        half = self.b.ashr(n, self.iconst(1, n.type))
        rest = self.b.sub(n, half)
        return self.mul(self.mul(p, self.pow2(half, fmt)), self.pow2(rest, fmt))


def _int_of(ty: ir.Type) -> ir.IntType:
    return ir.IntType(32) if ty == ir.FloatType() else ir.IntType(64)


def _float_of(ty: ir.IntType) -> ir.Type:
    return ir.FloatType() if ty.width == 32 else ir.DoubleType()


def format_of(ty: ir.Type) -> Format:
    return F32 if ty == ir.FloatType() else F64
