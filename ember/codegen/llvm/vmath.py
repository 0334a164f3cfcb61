"""Vectorizable math: transcendental functions emitted as straight-line LLVM IR.

The LLVM backend calls `emit_unary(builder, name, x)` / `emit_binary(builder, "pow", a, b)`
for a scalar float or double and gets the result as IR. Each function is a polynomial formula
made of arithmetic, `select`, integer bit tricks and the intrinsics that are one instruction
(fma, fabs, rint, floor, sqrt, copysign): no branches and no libm calls, so LLVM's loop
vectorizer turns an element loop that uses them into SIMD code (`<8 x float>` on AVX2,
`<16 x float>` on AVX-512). The formulas live in internal ``alwaysinline`` functions named
``ember.vmath.<name>.<f32|f64>``, created once per module and inlined by the O3 pipeline.
The exceptions, all float64: sin, cos and pow call libm through ``llvm.sin.f64``,
``llvm.cos.f64`` and ``llvm.pow.f64`` (a double polynomial version was more work than it is
worth today); loops using them stay scalar. ``llvm.fma`` is one instruction on every AVX2 and
AVX-512 CPU; on a CPU without FMA it would become a libm call and the loops would not vectorize.

Accuracy, max error in ulp of the result (`MAX_ULP` holds the tested bounds):

=========  =======  =======  ==================================================================
function   f32      f64      method
=========  =======  =======  ==================================================================
exp        1.04     1.0      Cody-Waite reduction by ln 2, degree 6 / 12 polynomial, then 2^n
                             in two exact steps (subnormal results round once)
log        0.84     0.85     x = 2^k (1+f), 1+f in [sqrt(1/2), sqrt 2), s = f/(2+f), odd
                             series in s (fdlibm's form, refitted)
log1p      0.86     0.9      1 + x with its exact rounding error, log's formula, + error/(1+x)
expm1      1.5      1.9      exp's reduction, r + r^2 Q(r), 2^n p + (2^n - 1) in one fma
tanh       5.5      2.6      f32: x P(x^2) / Q(x^2) (degrees 13 and 6, the form Eigen and XLA
                             use), x itself below 4e-4, within [-1, 1], +-1 from 9.02
                             on; f64:
                             t = expm1(-2|x|), -t / (t + 2) with the sign of x (saturates)
sigmoid    2.41     2.4      e = exp(-|x|); 1/(1+e) for x >= 0, e/(1+e) below (never NaN)
erf        1.29     1.8      f32: x P(x^2) below 1, 1 - erfc polynomials on [1, 2] and
                             [2, 3.94]; f64: x P(x^2) below 0.75, above erfc = t exp(-x^2 +
                             G(t)), t = 2/(2+x), -x^2 carried exactly into exp
sin, cos   0.51     0.6      f32: reduction by pi/2 exact over the whole float range (Payne-Hanek
                             style: 96 bits of 2/pi chosen by the exponent, double-double sum),
                             double polynomials; f64: libm
sqrt       0.5      0.5      llvm.sqrt (correctly rounded)
rsqrt      1.5      1.5      1 / llvm.sqrt
pow        0.51     1.0      f32: 2^(y log2|x|) in double, numpy's (C99 powf) special cases by
                             select; f64: libm pow, numpy's own
=========  =======  =======  ==================================================================

The float32 bounds hold for every one of the 2^32 inputs (checked exhaustively against numpy
float64 once; pow on 2M pairs); the tests sweep every 509th bit pattern plus the special
values. The float64 bounds are the maxima over 30M samples (random bit patterns and dense
ranges; erf 270k against mpmath), rounded up. NaN in gives NaN out, and the special values
(NaN, +-inf, signed zeros, log(0) = -inf, log(-1) = NaN, exp over/underflow, saturation) are
numpy's exactly. Coefficients are minimax fits (Remez exchange in mpmath, rounded to the
working format) on the intervals named next to each table below.

Throughput, float32, one thread, 4M elements (benchmarks/vmath_throughput.py, best of 9, on a
2-core AMD EPYC znver3 (AVX2) VM shared with other jobs, so numbers are noisy), ns/element, with
numpy's float32 functions measured alongside: exp 0.60 (numpy 3.3), expm1 0.67 (20.5), log
0.82 (3.2), log1p 1.05 (18.3), tanh 1.05 (3.2; the float32 rational form: 0.75 where exp
measured 0.81 in the same run), sigmoid 0.71, erf 1.03, sin 5.0 (2.5), cos 4.8
(3.5), sqrt 0.43 (0.85), rsqrt 0.39, pow 4.96. sin/cos pay for the exact
reduction (double arithmetic at full width, 2x the instructions of float); pow works in double.
"""

from __future__ import annotations

from collections.abc import Callable

import llvmlite.ir as ir

from ember.codegen.llvm.vmath_ops import (
    F32,
    F64,
    LN2,
    PI,
    TWO_OVER_PI_BITS,
    Format,
    Ops,
    format_of,
    split,
)

__all__ = ["BINARY", "MAX_ULP", "UNARY", "emit_binary", "emit_unary", "loop_module"]

UNARY: frozenset[str] = frozenset(
    {"exp", "log", "tanh", "erf", "sigmoid", "log1p", "expm1", "sin", "cos", "sqrt", "rsqrt"}
)
BINARY: frozenset[str] = frozenset({"pow"})

# The tested bound of each function: max |error| in ulp of the result (see the module docstring).
MAX_ULP: dict[tuple[str, str], float] = {
    ("exp", "f32"): 1.04, ("exp", "f64"): 1.0,
    ("log", "f32"): 0.84, ("log", "f64"): 0.85,
    ("log1p", "f32"): 0.86, ("log1p", "f64"): 0.9,
    ("expm1", "f32"): 1.5, ("expm1", "f64"): 1.9,
    ("tanh", "f32"): 5.5, ("tanh", "f64"): 2.6,
    ("sigmoid", "f32"): 2.41, ("sigmoid", "f64"): 2.4,
    ("erf", "f32"): 1.29, ("erf", "f64"): 1.8,
    ("sin", "f32"): 0.51, ("sin", "f64"): 0.6,
    ("cos", "f32"): 0.51, ("cos", "f64"): 0.6,
    ("sqrt", "f32"): 0.5, ("sqrt", "f64"): 0.5,
    ("rsqrt", "f32"): 1.5, ("rsqrt", "f64"): 1.5,
    ("pow", "f32"): 0.51, ("pow", "f64"): 1.0,
}  # fmt: skip


def _coeffs(text: str) -> tuple[float, ...]:
    """Polynomial coefficients, lowest degree first, from whitespace-separated literals."""
    return tuple(float(word) for word in text.split())


_INF = float("inf")
_NAN = float("nan")
_LOG2E = {F32: F32.round(1 / LN2), F64: F64.round(1 / LN2)}
_LN2_SPLIT = {F32: split(LN2, 16, F32), F64: split(LN2, 42, F64)}
_PIO2_HI = F64.round(PI / 2)
_PIO2_LO = F64.round(PI / 2 - _PIO2_HI)

# e^r = 1 + r + r^2 P(r), |r| <= ln2/2 (relative error 4.6e-9 / 2.5e-19)
_EXP_P = {
    F32: _coeffs(
        """
    0.4999999403953552 0.16666515171527863 0.041668083518743515 0.008369863033294678
    0.0013846196234226227
    """
    ),
    F64: _coeffs(
        """
    0.5 0.16666666666666688 0.04166666666666683 0.008333333333313741 0.0013888888888767099
    0.00019841269904152342 2.480158758110322e-05 2.7557227634260455e-06
    2.7557065538152473e-07 2.5114350421875908e-08 2.0969572659666183e-09
    """
    ),
}
# log(1+f) = f - f^2/2 + s (f^2/2 + z P(z)), s = f/(2+f), z = s^2 <= 0.0295 (rel. 3e-7 / 4.8e-16)
_LOG_P = {
    F32: _coeffs(
        """
    0.6666668653488159 0.39988183975219727 0.29606497287750244
    """
    ),
    F64: _coeffs(
        """
    0.666666666666667 0.39999999999901215 0.28571428625575623 0.22222211162411246
    0.18182888867010105 0.15331690461525746 0.14617189497489283
    """
    ),
}
# expm1(r) = r + r^2 Q(r), |r| <= ln2/2 (relative error of Q 6.9e-8 / 8.1e-18)
_EXPM1_Q = {
    F32: _coeffs(
        """
    0.5 0.16666632890701294 0.04166655242443085 0.00834414828568697 0.0013928182888776064
    0.00013450936239678413
    """
    ),
    F64: _coeffs(
        """
    0.5 0.1666666666666667 0.04166666666666668 0.008333333333325896 0.0013888888888881545
    0.00019841269876128172 2.480158738320528e-05 2.7557253449283233e-06
    2.755715130541875e-07 2.5106044214833017e-08 2.0977237891640655e-09
    """
    ),
}
# 2^r = 1 + r P(r), |r| <= 1/2, double, for float pow (relative error 4.3e-12)
_EXP2_P = _coeffs(
    """
    0.6931471805412324 0.2402265069474266 0.055504109658724904 0.009618129593607085
    0.0013333418879530397 0.00015403020781692094 1.5319208093713736e-05
    1.3368175524272987e-06
    """
)

# sin a = a + a^3 S(a^2), cos a = 1 + a^2 C(a^2), |a| <= pi/4, double (abs. 2.8e-11 / 2.4e-13)
_SIN_S = _coeffs(
    """
    -0.16666666663856408 0.00833333187458924 -0.00019840086492542569 2.7249879070653745e-06
    """
)

_COS_C = _coeffs(
    """
    -0.4999999999948834 0.041666666553242804 -0.0013888880462965087 2.4798853673610577e-05
    -2.7162092957959476e-07
    """
)

# float erf: erf x = x C0 + x Q(x^2) on |x| < 1 (relative 1.2e-9); erfc x = B(x - center) on
# [1, 2] and [2, 3.9375] (absolute 1.8e-9, 7.0e-9)
_ERF_C0_F32 = 1.128379225730896
_ERF_Q_F32 = _coeffs(
    """
    -6.000416874485381e-08 -0.3761262595653534 0.11283586174249649 -0.026853837072849274
    0.005188348703086376 -0.0008010190213099122 7.85334559623152e-05
    """
)

_ERFC_B1_F32 = _coeffs(
    """
    0.0338948518037796 -0.11893028765916824 0.17839543521404266 -0.13875220715999603
    0.0445990152657032 0.014870827086269855 -0.019328592345118523 0.0047012437134981155
    0.0023798183538019657 -0.0015405536396428943 3.537837619660422e-05
    """
)

_ERFC_B2_F32 = _coeffs(
    """
    2.687610685825348e-05 -0.00016772829985711724 0.0004981198580935597
    -0.0009317483054473996 0.001215122640132904 -0.0011528250761330128 0.0008243985357694328
    -0.0004504295065999031 0.00014367948460858315 1.996147693716921e-05
    -2.5461211407673545e-05
    """
)

# double erf: erf x = x P(x^2) on |x| < 0.75 (relative 1.4e-17); for 0.75 <= x < 6,
# erfc x = t exp(-x^2 + G(t - 0.488875)), t = 2/(2+x) in [0.25, 0.7273] (absolute 5.7e-17)
_ERF_P_F64 = _coeffs(
    """
    1.1283791670955126 -0.37612638903183204 0.11283791670922666 -0.026866170637647922
    0.005223977537378251 -0.0008548321027484183 0.00012055081700446586
    -1.4919013542046113e-05 1.6352576819480928e-06 -1.5288240225207654e-07
    9.16024982464833e-09
    """
)

_ERF_G_CENTER = 0.488875
_ERF_G_F64 = _coeffs(
    """
    -0.6867364438001812 1.340934487600325 0.20177319156084925 -0.36778927588074534
    -0.17344801029506668 0.27410701647634145 0.13578488988282644 -0.29538107875872416
    -0.07242599447972528 0.3530871853758306 -0.05002103027176697 -0.39329599542049715
    0.24928393430854398 0.3377420186354466 -0.4865094904165573 -0.11847109414250172
    0.6248025933269757 -0.1483777444561099 -0.4624414592784086
    """
)


# -- exp, log and their relatives (one formula for float and double) -------------------------
_EXP_RANGE = {F32: (-104.0, 89.0), F64: (-746.0, 710.0)}  # beyond: 0 and inf after scaling
_EXPM1_RANGE = {F32: (-30.0, 89.0), F64: (-60.0, 710.0)}  # below: -1 after rounding


def _reduce_ln2(o: Ops, x, fmt: Format, around=None):
    """(r, n): x = n ln2 + r, |r| <= ln2/2 (n chosen from ``around`` when given)."""
    hi, lo = _LN2_SPLIT[fmt]
    k, n = o.magic_round(x if around is None else around, _LOG2E[fmt])
    r = o.fma(o.neg(k), hi, x)  # exact when k comes from x: k * hi has trailing zeros
    return o.fma(o.neg(k), lo, r), n


def _exp(o: Ops, x, lo=None):
    """e^(x + lo); ``lo`` is an optional low-order part of the argument."""
    fmt = o.fmt
    x = o.clamp(x, *_EXP_RANGE[fmt])
    r, n = _reduce_ln2(o, x, fmt, None if lo is None else o.add(x, lo))
    if lo is not None:
        r = o.add(r, lo)
    q = o.fma(o.mul(r, r), o.poly(r, _EXP_P[fmt]), r)
    return o.scale2(o.add(q, 1.0), n, fmt)


def _expm1(o: Ops, x):
    fmt = o.fmt
    xc = o.clamp(x, *_EXPM1_RANGE[fmt])
    r, n = _reduce_ln2(o, xc, fmt)
    p = o.fma(o.mul(r, r), o.poly(r, _EXPM1_Q[fmt]), r)
    # 2^n (1 + p) - 1 = 2^n p + (2^n - 1); at n = bias + 1, 2^n overflows: use 2^(n-1), double.
    top = o.b.icmp_signed("==", n, o.iconst(fmt.bias + 1, n.type))
    t = o.pow2(o.b.sub(n, o.b.zext(top, n.type)), fmt)
    y = o.fma(t, p, o.sub(t, 1.0))
    y = o.sel(top, o.mul(y, 2.0), y)
    return o.sel(o.cmp("==", x, 0.0), x, y)  # keeps the sign of zero


def _log_parts(o: Ops, x, fmt: Format):
    """(k, f) with x = 2^k (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), for positive normal x."""
    sqrt_half = fmt.to_bits(0.7071067811865476 if fmt is F64 else 0.70710677)
    ix = o.b.add(o.bits(x), o.iconst(fmt.to_bits(1.0) - sqrt_half, fmt.ity))
    k = o.b.sub(o.b.ashr(ix, o.iconst(fmt.mant, fmt.ity)), o.iconst(fmt.bias, fmt.ity))
    m = o.b.add(o.b.and_(ix, o.iconst(fmt.mant_mask, fmt.ity)), o.iconst(sqrt_half, fmt.ity))
    return k, o.sub(o.from_bits(m), 1.0)


def _log_tail(o: Ops, k, f, fmt: Format, corr=None):
    """k ln2 + log(1 + f) (+ corr, a small correction term), to about half an ulp."""
    hi, lo = _LN2_SPLIT[fmt]
    s = o.div(f, o.add(f, 2.0))
    z = o.mul(s, s)
    big_r = o.mul(z, o.poly(z, _LOG_P[fmt]))
    hfsq = o.mul(o.mul(f, f), 0.5)
    # |k| < 2^11: convert through i32 (AVX2 has no 64-bit integer to double instruction)
    kf = o.b.sitofp(o.b.trunc(k, ir.IntType(32)) if fmt is F64 else k, fmt.ty)
    low = o.mul(kf, lo) if corr is None else o.fma(kf, lo, corr)
    t = o.fma(s, o.add(hfsq, big_r), low)
    return o.fma(kf, hi, o.sub(f, o.sub(hfsq, t)))


def _log(o: Ops, x):
    fmt = o.fmt
    tiny = o.cmp("<", x, 2.0 ** (1 - fmt.bias))  # subnormal (or zero, or negative)
    xs = o.sel(tiny, o.mul(x, 2.0**fmt.mant), x)
    k, f = _log_parts(o, xs, fmt)
    k = o.b.sub(k, o.b.select(tiny, o.iconst(fmt.mant, fmt.ity), o.iconst(0, fmt.ity)))
    y = o.sel(o.cmp(">", x, 0.0), _log_tail(o, k, f, fmt), _NAN)
    y = o.sel(o.cmp("==", x, 0.0), -_INF, y)
    return o.sel(o.cmp("==", x, _INF), _INF, y)


def _log1p(o: Ops, x):
    fmt = o.fmt
    u, err = o.two_sum(o.k(1.0), x)  # u + err = 1 + x exactly
    k, f = _log_parts(o, u, fmt)
    y = _log_tail(o, k, f, fmt, o.div(err, u))
    y = o.sel(o.cmp(">", u, 0.0), y, _NAN)
    y = o.sel(o.cmp("==", u, 0.0), -_INF, y)
    y = o.sel(o.cmp("==", x, _INF), _INF, y)
    return o.sel(o.cmp("==", x, 0.0), x, y)


def _tanh(o: Ops, x):
    t = _expm1(o, o.mul(o.fabs(x), -2.0))
    return o.copysign(o.div(o.neg(t), o.add(t, 2.0)), x)


# float32 tanh as a rational function of x (odd degree 13 over even degree 6), exactly +-1
# where float32 tanh is: half the work of the expm1 form (gelu's tanh is its hot loop), at
# 5.5 ulp rather than 2.5 (5.46 measured over all 2^32 inputs, the worst near 8.48).
_TANH_CLAMP_F32 = 9.02  # (float32 tanh is 1 from 9.011 on)
_TANH_P_F32 = (
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
    -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16,
)  # fmt: skip
_TANH_Q_F32 = (
    4.89352518554385e-03,
    2.26843463243900e-03,
    1.18534705686654e-04,
    1.19825839466702e-06,
)


def _tanh_f32(o: Ops, x):
    c = o.clamp(x, -_TANH_CLAMP_F32, _TANH_CLAMP_F32)
    c2 = o.mul(c, c)
    y = o.div(o.mul(c, o.poly(c2, _TANH_P_F32)), o.poly(c2, _TANH_Q_F32))
    y = o.clamp(y, -1.0, 1.0)  # (the fit overshoots 1 by up to 2 ulp from 8.2 on)
    y = o.sel(o.cmp("<", o.fabs(x), 0.0004), x, y)
    # exactly +-1 where float32 tanh rounds to 1 (so 1 + tanh(x) is 0 there, as gelu needs)
    return o.sel(o.cmp(">=", o.fabs(x), _TANH_CLAMP_F32), o.copysign(o.k(1.0), x), y)


def _sigmoid(o: Ops, x):
    e = _exp(o, o.neg(o.fabs(x)))
    return o.div(o.sel(o.cmp("<", x, 0.0), e, 1.0), o.add(e, 1.0))


def _sqrt(o: Ops, x):
    return o.sqrt(x)


def _rsqrt(o: Ops, x):
    return o.div(1.0, o.sqrt(x))


# -- erf -------------------------------------------------------------------------------------
def _erf_f32(o: Ops, x):
    a = o.fabs(x)
    small = o.fma(a, _ERF_C0_F32, o.mul(a, o.poly(o.mul(a, a), _ERF_Q_F32)))
    first = o.cmp("<", a, 2.0)
    center = o.sel(first, 1.5, (2.0 + 3.9375) / 2)
    coeffs = [o.sel(first, c1, c2) for c1, c2 in zip(_ERFC_B1_F32, _ERFC_B2_F32, strict=True)]
    big = o.sub(1.0, o.poly(o.sub(a, center), coeffs))
    big = o.sel(o.cmp(">=", a, 3.9375), 1.0, big)
    return o.copysign(o.sel(o.cmp("<", a, 1.0), small, big), x)


def _erf_f64(o: Ops, x):
    a = o.fabs(x)
    u = o.mul(a, a)
    small = o.fma(a, _ERF_P_F64[0], o.mul(a, o.mul(u, o.poly(u, _ERF_P_F64[1:]))))
    t = o.div(2.0, o.add(a, 2.0))
    g = o.poly(o.sub(t, _ERF_G_CENTER), _ERF_G_F64)
    hi = o.neg(u)
    lo = o.fma(o.neg(a), a, u)  # -a^2 = hi + lo exactly
    erfc = o.mul(t, _exp(o, hi, o.add(lo, g)))
    big = o.sel(o.cmp(">=", a, 6.0), 1.0, o.sub(1.0, erfc))
    return o.copysign(o.sel(o.cmp("<", a, 0.75), small, big), x)


# -- sin and cos for float: exact reduction by pi/2 over the whole range ----------------------
# x = M 2^E (M < 2^24 an integer). Only the bits of 2/pi worth less than 4 / 2^E matter for
# x * 2/pi mod 4: 96 bits of 2/pi starting at bit max(1, E - 1) (bit 1 is the first after the
# point), taken as four 24-bit words. They come from four 64-bit constants by selects and
# variable shifts (a table lookup would be a gather, which keeps the vectorizer at half
# width). M times a 24-bit word is exact in double, and the sum is carried in double-double,
# which leaves the reduced argument accurate to about 2^-70 absolute.
_MAX_ROW = 102  # E - 2 for the largest float exponent, E = 104
_TWO_OVER_PI_WORDS = [(TWO_OVER_PI_BITS >> (256 - 64 * (i + 1))) & (2**64 - 1) for i in range(4)]


def _two_over_pi_words(o: Ops, row) -> list:
    """The four 24-bit words of 2/pi from bit row + 1 on, as i64 values."""
    b = o.b
    i64 = ir.IntType(64)

    def ic(v: int) -> ir.Constant:
        return ir.Constant(i64, v)

    second = b.icmp_unsigned(">", row, ic(63))
    shift = b.and_(row, ic(63))
    back = b.sub(ic(63), shift)
    words = [
        b.select(second, ic(_TWO_OVER_PI_WORDS[i + 1]), ic(_TWO_OVER_PI_WORDS[i])) for i in range(3)
    ]
    # 128 bits of 2/pi starting at bit row + 1 (the >> 1 >> (63 - s) avoids a shift by 64)
    top = [
        b.or_(b.shl(words[i], shift), b.lshr(b.lshr(words[i + 1], ic(1)), back)) for i in range(2)
    ]
    mask = ic(0xFFFFFF)
    return [
        b.lshr(top[0], ic(40)),
        b.and_(b.lshr(top[0], ic(16)), mask),
        b.or_(b.shl(b.and_(top[0], ic(0xFFFF)), ic(8)), b.lshr(top[1], ic(56))),
        b.and_(b.lshr(top[1], ic(32)), mask),
    ]


def _reduce_pio2_f32(o: Ops, x):
    """(a, q): |x| = (q + a / (pi/2)) * pi/2 with a a double in [-pi/4, pi/4], q an i32."""
    b = o.b
    i32, i64, dbl = ir.IntType(32), ir.IntType(64), F64.ty

    def ic(v: int) -> ir.Constant:
        return ir.Constant(i32, v)

    ix = o.bits(x)
    biased = b.and_(b.lshr(ix, ic(23)), ic(0xFF))
    normal = b.icmp_unsigned("!=", biased, ic(0))
    mant = b.or_(b.and_(ix, ic(0x7FFFFF)), b.select(normal, ic(1 << 23), ic(0)))
    biased = b.select(normal, biased, ic(1))
    row = b.select(b.icmp_signed(">", biased, ic(152)), b.sub(biased, ic(152)), ic(0))
    row = b.select(b.icmp_signed(">", row, ic(_MAX_ROW)), ic(_MAX_ROW), row)
    # weight of the last bit of word 0: 2^(E - 24) in row 0, 2^-22 in the others
    scale = o.pow2(b.sext(b.sub(b.sub(biased, ic(174)), row), i64), F64)
    # M times the weight of word 0's last bit: exact (M has 24 bits), as are the products
    # with the 24-bit words
    m = o.mul(b.sitofp(mant, dbl), scale)
    words = _two_over_pi_words(o, b.zext(row, i64))
    parts = [
        o.mul(o.small_int_to_double(w), o.mul(m, 2.0 ** (-24 * j))) for j, w in enumerate(words)
    ]
    k0 = o.rint(parts[0])
    s, e1 = o.two_sum(o.sub(parts[0], k0), parts[1])
    k1 = o.rint(s)
    h, e2 = o.two_sum(o.sub(s, k1), parts[2])
    lo = o.add(o.add(e1, e2), parts[3])
    a = o.fma(h, _PIO2_HI, o.fma(h, _PIO2_LO, o.mul(lo, _PIO2_HI)))
    q = b.add(b.fptosi(k0, i32), b.fptosi(k1, i32))
    return a, q


def _sincos_f32(o: Ops, x, cosine: bool):
    b = o.b
    i32 = ir.IntType(32)
    a, q = _reduce_pio2_f32(o, x)
    if cosine:
        q = b.add(q, ir.Constant(i32, 1))  # cos x = sin(x + pi/2)
    u = o.mul(a, a)
    sin_a = o.fma(o.mul(a, u), o.poly(u, _SIN_S), a)
    cos_a = o.fma(u, o.poly(u, _COS_C), 1.0)
    odd = b.icmp_unsigned("!=", b.and_(q, ir.Constant(i32, 1)), ir.Constant(i32, 0))
    flip = b.icmp_unsigned("!=", b.and_(q, ir.Constant(i32, 2)), ir.Constant(i32, 0))
    r = o.sel(odd, cos_a, sin_a)
    y = b.fptrunc(o.sel(flip, o.neg(r), r), F32.ty)
    if not cosine:  # sin is odd; the reduction worked on |x|
        y = o.sel(b.icmp_signed("<", o.bits(x), ir.Constant(i32, 0)), o.neg(y), y)
    return o.sel(o.isfinite(x), y, _NAN)


# -- pow -------------------------------------------------------------------------------------
def _pow_f32(o: Ops, x, y):
    """x^y as C99 powf / numpy: 2^(y log2|x|) in double, then the sign and special cases."""
    b = o.b
    i32 = ir.IntType(32)
    o64 = Ops(b, F64)
    ax = o.fabs(b.fpext(x, F64.ty))
    t = o.mul(b.fpext(y, F64.ty), o.mul(_log(o64, ax), _LOG2E[F64]))
    t = o.clamp(t, -160.0, 130.0)  # 2^-160 rounds to 0 and 2^130 to inf in float
    k, n = o.magic_round(t, 1.0)
    r = o.sub(t, k)
    p = o.fma(r, o.poly(r, _EXP2_P), 1.0)
    res = b.fptrunc(o.mul(p, o.pow2(n, F64)), F32.ty)
    ay = o.fabs(y)
    integral = o.cmp("==", o.floor(y), y)  # true for +-inf, false for NaN
    exact = o.cmp("<", ay, 2.0**24)  # above, every float is even
    yi = b.fptosi(o.sel(exact, y, 0.0), i32)
    odd_bit = b.icmp_unsigned("!=", b.and_(yi, ir.Constant(i32, 1)), ir.Constant(i32, 0))
    odd = b.and_(integral, b.and_(exact, odd_bit))
    negative = b.icmp_signed("<", o.bits(x), ir.Constant(i32, 0))  # includes -0
    res = o.sel(b.and_(negative, odd), o.neg(res), res)
    finite_negative = b.and_(o.cmp("<", x, 0.0), o.cmp(">", x, -_INF))
    res = o.sel(b.and_(finite_negative, b.not_(integral)), _NAN, res)
    one = b.or_(o.cmp("==", y, 0.0), o.cmp("==", x, 1.0))
    one = b.or_(one, b.and_(o.cmp("==", x, -1.0), o.cmp("==", ay, _INF)))
    return o.sel(one, 1.0, res)


def _pow_f64(o: Ops, x, y):
    return o.intrinsic("llvm.pow", x, y)


# -- dispatch --------------------------------------------------------------------------------
_Body = Callable[..., ir.Value]


def _both(fn: _Body) -> dict[Format, _Body]:
    return {F32: fn, F64: fn}


_UNARY_BODIES: dict[str, dict[Format, _Body]] = {
    "exp": _both(_exp),
    "log": _both(_log),
    "log1p": _both(_log1p),
    "expm1": _both(_expm1),
    "tanh": {F32: _tanh_f32, F64: _tanh},
    "sigmoid": _both(_sigmoid),
    "sqrt": _both(_sqrt),
    "rsqrt": _both(_rsqrt),
    "erf": {F32: _erf_f32, F64: _erf_f64},
    "sin": {
        F32: lambda o, x: _sincos_f32(o, x, cosine=False),
        F64: lambda o, x: o.intrinsic("llvm.sin", x),
    },
    "cos": {
        F32: lambda o, x: _sincos_f32(o, x, cosine=True),
        F64: lambda o, x: o.intrinsic("llvm.cos", x),
    },
}
_BINARY_BODIES: dict[str, dict[Format, _Body]] = {"pow": {F32: _pow_f32, F64: _pow_f64}}


def _format(value: ir.Value) -> Format:
    if value.type not in (ir.FloatType(), ir.DoubleType()):
        raise TypeError(f"vmath works on float and double scalars, not {value.type}")
    return format_of(value.type)


def _helper(module: ir.Module, name: str, fmt: Format, body: _Body, arity: int) -> ir.Function:
    """The internal always-inline function computing ``name`` in ``fmt``, made once."""
    fname = f"ember.vmath.{name}.{fmt.name}"
    fn = module.globals.get(fname)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(fmt.ty, [fmt.ty] * arity), fname)
        fn.linkage = "internal"
        fn.attributes.add("alwaysinline")
        fn.attributes.add("nounwind")
        builder = ir.IRBuilder(fn.append_basic_block("entry"))
        builder.ret(body(Ops(builder, fmt), *fn.args))
    return fn


def emit_unary(builder: ir.IRBuilder, name: str, x: ir.Value) -> ir.Value:
    """``name``(x) for a float or double ``x``; ``name`` is one of `UNARY`."""
    if name not in UNARY:
        raise KeyError(f"no vector math function {name!r}; known: {sorted(UNARY)}")
    fmt = _format(x)
    fn = _helper(builder.module, name, fmt, _UNARY_BODIES[name][fmt], 1)
    return builder.call(fn, [x])


def emit_binary(builder: ir.IRBuilder, name: str, a: ir.Value, b: ir.Value) -> ir.Value:
    """``name``(a, b) for two floats or two doubles; ``name`` is one of `BINARY`."""
    if name not in BINARY:
        raise KeyError(f"no vector math function {name!r}; known: {sorted(BINARY)}")
    fmt = _format(a)
    if b.type != a.type:
        raise TypeError(f"{name} needs operands of one type, got {a.type} and {b.type}")
    fn = _helper(builder.module, name, fmt, _BINARY_BODIES[name][fmt], 2)
    return builder.call(fn, [a, b])


def loop_module(name: str, fty: ir.Type, arity: int) -> ir.Module:
    """A module defining ``void k(ptr x, [ptr x2,] ptr y, i64 n)`` that computes
    ``y[i] = name(x[i] [, x2[i]])`` for i < n in ``fty`` (float or double): how the vector
    math is tested and timed on its own."""
    module = ir.Module()
    i64, ptr = ir.IntType(64), ir.PointerType()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr] * (arity + 1) + [i64]), "k")
    *inputs, out, n = fn.args
    entry, loop, done = (fn.append_basic_block(s) for s in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, i64(0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(i64)
    i.add_incoming(i64(0), entry)
    args = [b.load(b.gep(p, [i], source_etype=fty), typ=fty) for p in inputs]
    r = emit_unary(b, name, args[0]) if arity == 1 else emit_binary(b, name, *args)
    b.store(r, b.gep(out, [i], source_etype=fty))
    nxt = b.add(i, i64(1))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return module
