"""Tests for ember.codegen.llvm.philox: JIT-compiled Philox draws against the eager generator.

Each kernel is ``y[i] = philox_uniform(seed, offset, i)`` for ``i < n``, compiled with the
backend's JIT (O3, loop vectorization), and its output is compared bit for bit with
``ember.runtime.philox.uniform``. The raw Philox rounds are also checked against Random123's
known-answer vectors, an oracle independent of the eager code.
"""

from __future__ import annotations

import ctypes
import re

import ml_dtypes
import numpy as np
import pytest
from llvmlite import ir

from ember.codegen.llvm import philox as lp
from ember.codegen.llvm.target import JitModule, jit
from ember.runtime import philox

N = 10007
M32 = 0xFFFFFFFF
SEEDS = [0, 42, 0xDEADBEEFCAFEBABE, 2**63 + 12345, 2**64 - 1]
OFFSETS = [0, 7, 2**32 - 5000, 2**40 + 3, 2**63 - N]
NP_DTYPES = {
    "f32": np.float32,
    "f64": np.float64,
    "f16": np.float16,
    "bf16": ml_dtypes.bfloat16,
}
BITS_VIEW = {"f32": np.uint32, "f64": np.uint64, "f16": np.uint16, "bf16": np.uint16}

I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()

DRAW_SIGNATURE = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64
)


def _as_int64(value: int) -> int:
    """The int64 holding ``value``'s uint64 bits (how the primitive passes a seed)."""
    return value - 2**64 if value >= 2**63 else value


def _build_loop_module(name: str, emit) -> ir.Module:
    """``void name(ptr y, i64 seed, i64 offset, i64 n)``: ``y[i] = emit(seed, offset, i)``."""
    module = ir.Module(name=name)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, I64, I64, I64]), name=name)
    y, seed, offset, n = fn.args
    entry, loop, done = (fn.append_basic_block(label) for label in ("entry", "loop", "done"))
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(I64, 0)), loop, done)

    builder.position_at_end(loop)
    i = builder.phi(I64, name="i")
    value = emit(builder, seed, offset, i)
    builder.store(value, builder.gep(y, [i], inbounds=True, source_etype=value.type))
    i_next = builder.add(i, ir.Constant(I64, 1), name="i.next")
    i.add_incoming(ir.Constant(I64, 0), entry)
    i.add_incoming(i_next, loop)
    builder.cbranch(builder.icmp_signed("<", i_next, n), loop, done)

    builder.position_at_end(done)
    builder.ret_void()
    return module


def _build_draw_module(dtype: str) -> ir.Module:
    """``draw(y, seed, offset, n)``: ``y[i] = philox_uniform(seed, offset, i)`` as ``dtype``."""

    def emit(builder, seed, offset, i):
        return lp.emit_philox_uniform(builder, seed, offset, i, dtype)

    return _build_loop_module("draw", emit)


_KERNELS: dict[str, JitModule] = {}


def _draw_kernel(dtype: str) -> JitModule:
    if dtype not in _KERNELS:
        _KERNELS[dtype] = jit(str(_build_draw_module(dtype)), name=f"philox_{dtype}")
    return _KERNELS[dtype]


def _draw(dtype: str, seed: int, offset: int, n: int) -> np.ndarray:
    kernel = _draw_kernel(dtype)
    out = np.empty(n, dtype=BITS_VIEW[dtype])
    out.fill(np.iinfo(out.dtype).max)  # a NaN pattern, so an unwritten slot shows
    draw = DRAW_SIGNATURE(kernel.address("draw"))
    draw(out.ctypes.data, _as_int64(seed), _as_int64(offset), n)
    return out


@pytest.mark.parametrize("dtype", lp.UNIFORM_DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("offset", OFFSETS)
def test_jit_draw_is_bit_identical_to_eager(dtype, seed, offset):
    got = _draw(dtype, seed, offset, N)
    expected = philox.uniform(seed, offset, (N,), NP_DTYPES[dtype])
    np.testing.assert_array_equal(got, expected.view(BITS_VIEW[dtype]))


@pytest.mark.parametrize("dtype", lp.UNIFORM_DTYPES)
def test_index_is_the_row_major_position(dtype):
    shape = (97, 103)
    seed, offset = 2**63 + 99, 123456789
    got = _draw(dtype, seed, offset, 97 * 103)
    expected = philox.uniform(seed, offset, shape, NP_DTYPES[dtype]).reshape(-1)
    np.testing.assert_array_equal(got, expected.view(BITS_VIEW[dtype]))


@pytest.mark.parametrize("dtype", lp.UNIFORM_DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 17, 64])
def test_short_draws_write_exactly_n_elements(dtype, n):
    kernel = _draw_kernel(dtype)
    view = BITS_VIEW[dtype]
    sentinel = np.iinfo(view).max
    buffer = np.full(n + 8, sentinel, dtype=view)
    DRAW_SIGNATURE(kernel.address("draw"))(buffer.ctypes.data, 5, 11, n)
    expected = philox.uniform(5, 11, (n,), NP_DTYPES[dtype]).view(view)
    np.testing.assert_array_equal(buffer[:n], expected)
    assert (buffer[n:] == sentinel).all()


def test_values_lie_in_unit_interval_and_f32_is_never_one():
    got = _draw("f32", 7, 0, N).view(np.float32)
    assert got.min() >= 0.0 and got.max() < 1.0
    assert np.unique(got).size > N * 0.99


@pytest.mark.parametrize("dtype", lp.UNIFORM_DTYPES)
def test_draw_loop_is_vectorized_and_calls_nothing(dtype):
    optimized = _draw_kernel(dtype).optimized_ir
    body = optimized[optimized.index("@draw(") :]
    assert re.search(r"<\d+ x (i16|i32|i64|float|double|half)>", body), body
    assert not re.search(r"call [^@]*@(?!llvm\.)", body), body


def test_emitted_code_is_straight_line():
    module = ir.Module(name="straight")
    fn = ir.Function(module, ir.FunctionType(ir.FloatType(), [I64, I64, I64]), name="one")
    block = fn.append_basic_block("entry")
    builder = ir.IRBuilder(block)
    value = lp.emit_philox_uniform(builder, *fn.args, "f32")
    builder.ret(value)
    assert fn.blocks == [block]
    assert not any(instr.opname in ("br", "call", "switch", "phi") for instr in block.instructions)


def test_bits_match_random_bits():
    words = []

    def emit(builder, seed, offset, i):
        words.append(lp.emit_philox_bits(builder, seed, offset, i))
        return words[-1]

    module = _build_loop_module("bits", emit)
    assert words[0].type == I32
    kernel = jit(str(module), name="philox_bits")
    seed, offset = 2**64 - 3, 2**32 - 500
    got = np.zeros(1000, dtype=np.uint32)
    DRAW_SIGNATURE(kernel.address("bits"))(got.ctypes.data, _as_int64(seed), offset, got.size)
    np.testing.assert_array_equal(got, philox.random_bits(seed, offset, got.size))


# Random123 kat_vectors, "philox4x32 10" lines: (counter, key, output).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32, M32, M32, M32), (M32, M32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.fixture(scope="module")
def rounds_kernel():
    """``void rounds(ptr in, ptr out)``: in = c0..c3, k0, k1 (i32); out = the 4 words."""
    module = ir.Module(name="rounds")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR]), name="rounds")
    src, dst = fn.args
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    words = [
        builder.load(builder.gep(src, [ir.Constant(I64, k)], source_etype=I32), typ=I32)
        for k in range(6)
    ]
    out = lp.emit_philox4x32(builder, tuple(words[:4]), (words[4], words[5]))
    for k, word in enumerate(out):
        builder.store(word, builder.gep(dst, [ir.Constant(I64, k)], source_etype=I32))
    builder.ret_void()
    kernel = jit(str(module), name="philox_rounds")
    call = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(kernel.address("rounds"))
    return kernel, call


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_rounds_match_known_answer_vectors(rounds_kernel, ctr, key, expected):
    _, call = rounds_kernel
    src = np.array([*ctr, *key], dtype=np.uint32)
    dst = np.zeros(4, dtype=np.uint32)
    call(src.ctypes.data, dst.ctypes.data)
    assert tuple(int(w) for w in dst) == expected


def test_constants_agree_with_the_runtime():
    assert lp.PHILOX_KEY_A == philox.PHILOX_KEY_A
    assert lp.PHILOX_KEY_B == philox.PHILOX_KEY_B
    assert lp.PHILOX_ROUND_A == philox.PHILOX_ROUND_A
    assert lp.PHILOX_ROUND_B == philox.PHILOX_ROUND_B
    assert lp.N_ROUNDS == philox.N_ROUNDS_DEFAULT


def test_uniform_types():
    assert lp.uniform_type("f32") == ir.FloatType()
    assert lp.uniform_type("f64") == ir.DoubleType()
    assert lp.uniform_type("f16") == ir.HalfType()
    assert lp.uniform_type("bf16") == ir.IntType(16)
    with pytest.raises(ValueError, match="i32"):
        lp.uniform_type("i32")
