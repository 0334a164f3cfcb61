"""Philox4x32-10 random numbers as LLVM IR, bit-identical with the eager generator.

`emit_philox_uniform` emits, at the builder's position, the value that
``ember.runtime.philox.uniform(seed, offset, shape, dtype).reshape(-1)[index]`` computes, so a
generated kernel for the primitive ``philox_uniform(seed, offset) {shape, dtype}`` draws the
same numbers as eager execution and as Triton's ``tl.rand``:

* key ``(k0, k1)`` = low/high 32 bits of the seed (an i64 holding the uint64 seed's bits);
* counter ``(c0, c1, 0, 0)`` = low/high 32 bits of ``offset + index`` (64-bit, wrapping);
* bits = first output word of 10 Philox rounds; value = ``(bits >> 8) * 2**-24`` in float32
  (exact, never 1.0), then converted to the stored type with round-to-nearest-even, as
  numpy's ``astype`` does.

Key decisions:

* Straight-line code, no branches and no calls: every 32x32->64 multiply is a ``zext`` +
  ``mul i64`` + ``lshr``/``trunc``, which the loop vectorizer turns into packed
  multiplies. The key schedule depends only on the seed, so LLVM hoists it out of loops.
* f32 and f64 are exact conversions (``uitofp`` of a 24-bit integer, ``fmul`` by a power of
  two, ``fpext``). f16 is ``fptrunc float -> half`` (one ``vcvtps2ph`` on x86 with F16C, which
  every AVX2 or AVX-512 host has).
* bf16: llvmlite.ir has no ``bfloat`` type and x86 without AVX512-BF16 lowers ``fptrunc`` to
  bfloat through a library call, so the value is returned as an **i16 holding the bfloat16
  bits**, rounded to nearest-even in integer arithmetic (the draws are finite and
  non-negative, so no NaN case is needed). Store it as a 16-bit integer.
"""

from __future__ import annotations

from llvmlite import ir

__all__ = [
    "PHILOX_KEY_A",
    "PHILOX_KEY_B",
    "PHILOX_ROUND_A",
    "PHILOX_ROUND_B",
    "UNIFORM_DTYPES",
    "emit_philox4x32",
    "emit_philox_bits",
    "emit_philox_uniform",
    "uniform_type",
]

# The constants of ember.runtime.philox (Random123 / Triton values), repeated here because
# codegen sits below the runtime layer; tests check that the two agree.
PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
N_ROUNDS = 10

I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F32 = ir.FloatType()

_UNIFORM_TYPES: dict[str, ir.Type] = {
    "f32": ir.FloatType(),
    "f64": ir.DoubleType(),
    "f16": ir.HalfType(),
    "bf16": ir.IntType(16),  # the bfloat16 bits; see the module docstring
}
UNIFORM_DTYPES = tuple(_UNIFORM_TYPES)

Words = tuple[ir.Value, ir.Value, ir.Value, ir.Value]


def uniform_type(dtype: str) -> ir.Type:
    """The IR type `emit_philox_uniform` returns for ``dtype`` (i16 for bf16)."""
    try:
        return _UNIFORM_TYPES[dtype]
    except KeyError:
        raise ValueError(
            f"philox_uniform draws floating types {UNIFORM_DTYPES}, got {dtype!r}"
        ) from None


def _i32(value: int) -> ir.Constant:
    return ir.Constant(I32, value & 0xFFFFFFFF)


def _split64(builder: ir.IRBuilder, value: ir.Value, name: str) -> tuple[ir.Value, ir.Value]:
    """Low and high 32-bit halves of the i64 ``value``."""
    lo = builder.trunc(value, I32, name=f"{name}.lo")
    hi = builder.trunc(builder.lshr(value, ir.Constant(I64, 32)), I32, name=f"{name}.hi")
    return lo, hi


def _mulhilo(builder: ir.IRBuilder, factor: int, word: ir.Value) -> tuple[ir.Value, ir.Value]:
    """High and low 32-bit halves of the 64-bit product ``factor * word``."""
    product = builder.mul(builder.zext(word, I64), ir.Constant(I64, factor))
    lo, hi = _split64(builder, product, "philox.prod")
    return hi, lo


def emit_philox4x32(
    builder: ir.IRBuilder,
    counter: Words,
    key: tuple[ir.Value, ir.Value],
    rounds: int = N_ROUNDS,
) -> Words:
    """Emit ``rounds`` Philox4x32 rounds on the i32 ``counter`` words with the i32 ``key``.

    Returns the four i32 output words. The round order is Random123's ``philox4x32_R``
    (and ``ember.runtime.philox.philox4x32``): the key is bumped after every round.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_index in range(rounds):
        hi_b, lo_b = _mulhilo(builder, PHILOX_ROUND_B, c2)
        hi_a, lo_a = _mulhilo(builder, PHILOX_ROUND_A, c0)
        c0 = builder.xor(builder.xor(hi_b, c1), k0)
        c1 = lo_b
        c2 = builder.xor(builder.xor(hi_a, c3), k1)
        c3 = lo_a
        if round_index + 1 < rounds:
            k0 = builder.add(k0, _i32(PHILOX_KEY_A))
            k1 = builder.add(k1, _i32(PHILOX_KEY_B))
    return c0, c1, c2, c3


def emit_philox_bits(
    builder: ir.IRBuilder, seed: ir.Value, offset: ir.Value, index: ir.Value
) -> ir.Value:
    """The i32 random word of element ``index``: ``random_bits(seed, offset, n)[index]``.

    ``seed``, ``offset`` and ``index`` are i64; the seed holds the uint64 seed's bits.
    """
    key = _split64(builder, seed, "philox.key")
    counter = builder.add(offset, index, name="philox.ctr")
    c0, c1 = _split64(builder, counter, "philox.ctr")
    zero = _i32(0)
    return emit_philox4x32(builder, (c0, c1, zero, zero), key)[0]


def _bfloat16_bits(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """The bfloat16 bits (i16) of the finite float ``value``, rounded to nearest-even."""
    bits = builder.bitcast(value, I32)
    lsb = builder.and_(builder.lshr(bits, _i32(16)), _i32(1))
    rounded = builder.add(builder.add(bits, _i32(0x7FFF)), lsb)
    return builder.trunc(builder.lshr(rounded, _i32(16)), I16, name="philox.bf16")


def emit_philox_uniform(
    builder: ir.IRBuilder, seed: ir.Value, offset: ir.Value, index: ir.Value, dtype: str
) -> ir.Value:
    """The uniform draw in ``[0, 1)`` of element ``index`` (its row-major position).

    Bit-identical to ``philox.uniform(seed, offset, shape, dtype).reshape(-1)[index]``.
    Returns a value of `uniform_type(dtype)`: float, double, half, or i16 (bfloat16 bits).
    """
    out_type = uniform_type(dtype)
    bits = emit_philox_bits(builder, seed, offset, index)
    mantissa = builder.uitofp(builder.lshr(bits, _i32(8)), F32)
    value = builder.fmul(mantissa, ir.Constant(F32, 2.0**-24), name="philox.u32")
    if dtype == "f32":
        return value
    if dtype == "f64":
        return builder.fpext(value, out_type, name="philox.u64")
    if dtype == "f16":
        return builder.fptrunc(value, out_type, name="philox.u16")
    return _bfloat16_bits(builder, value)
