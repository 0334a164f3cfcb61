"""Every elementwise op of the kernel IR, over every dtype the eager kernel accepts, against the
eager kernels (`PRIMITIVES[name].impl`, numpy): bit for bit, except the transcendental functions
(a different math library: a few ulps for float32/float64, one ulp of float16/bfloat16).

Inputs mix random values with the edge cases: NaN, +-inf, -0.0, halves (rounding), subnormals,
integer minima and maxima, zero and -1 divisors, shift counts outside [0, bits), and equal
operands (maximum's ties).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import ember.runtime.eager_kernels  # noqa: F401  (fills the impl column)
from ember.codegen.llvm import target
from ember.codegen.llvm.emit import emit_module, work_units
from ember.ir import dtypes as D
from ember.ir.errors import DTypeError
from ember.ir.index import var
from ember.ir.kernel import BINARY, UNARY, Buffer, Kernel, KOp, Stage
from ember.ir.ops import PRIMITIVES

N = 301
DTYPES = D.ALL_DTYPES
MATH = {"exp", "log", "sin", "cos", "tanh", "sigmoid", "erf", "log1p", "expm1"}
TO_BOOL = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
           "logical_not"}  # fmt: skip
KERNEL_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


def elementwise_kernel(name: str, op: str, in_dtypes, out_dtype, n: int = N) -> Kernel:
    p0 = var("p0", n)
    ops = [KOp(i, "load", (), dt, {"buffer": i, "index": (p0,)}) for i, dt in enumerate(in_dtypes)]
    k = len(in_dtypes)
    ops.append(KOp(k, op, tuple(range(k)), out_dtype))
    ops.append(KOp(k + 1, "store", (k,), None, {"buffer": k, "index": (p0,)}))
    buffers = [Buffer(f"in{i}", dt, (n,), (1,)) for i, dt in enumerate(in_dtypes)]
    buffers.append(Buffer("out", out_dtype, (n,), (1,), 0, "out"))
    return Kernel(name, buffers, (n,), [Stage((), ops)])


def run(jm, kernel: Kernel, arrays) -> None:
    fn = KERNEL_FN(jm.address(kernel.name))
    ptrs = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    fn(ctypes.addressof(ptrs), 0, work_units(kernel)[0])


# -- inputs --------------------------------------------------------------------------------

FLOAT_EDGES = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.0,
               -3.0, 7.0, 1e-30, -1e-30, 1e-40, 65504.0, 70000.0, 1e30, -1e30, 0.1, 100.0]  # fmt: skip


def sample(dt: D.DType, rng: np.random.Generator, n: int = N) -> np.ndarray:
    if dt.is_floating_point:
        x = rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n)
        x[: len(FLOAT_EDGES)] = FLOAT_EDGES
        rng.shuffle(x)
        with np.errstate(over="ignore"):
            return x.astype(dt.np)
    if dt is D.bool_:
        return rng.random(n) < 0.5
    info = np.iinfo(dt.np)
    x = rng.integers(info.min, info.max, n, endpoint=True, dtype=np.int64)
    edges = [info.min, info.max, 0, 1, -1 if info.min < 0 else 2, 2, 3, info.min + 1]
    x[: len(edges)] = edges
    x[len(edges) : n // 2] = rng.integers(-20, 21, n // 2 - len(edges))
    rng.shuffle(x)
    return x.astype(dt.np)


def operands(op: str, dt: D.DType, rng: np.random.Generator) -> list[np.ndarray]:
    if op in UNARY:
        return [sample(dt, rng)]
    a, b = sample(dt, rng), sample(dt, rng)
    b[::7] = a[::7]  # ties
    if dt.is_floating_point:  # signed zeros and NaN on either side
        a[:4] = np.array([-0.0, 0.0, np.nan, 1.0]).astype(dt.np)
        b[:4] = np.array([0.0, -0.0, 1.0, np.nan]).astype(dt.np)
    if op in ("lshift", "rshift"):
        b = rng.integers(-3, 8 * dt.itemsize + 4, N).astype(dt.np)
    elif op == "pow" and not dt.is_floating_point and dt is not D.bool_:
        b = rng.integers(0, 13, N).astype(dt.np)  # numpy rejects negative integer exponents
        a[::3] = rng.integers(-3, 4, len(a[::3])).astype(dt.np)
    elif op in ("floordiv", "remainder") and not dt.is_floating_point:
        b[::5] = 0
        if dt.is_signed:
            b[1::5] = -1
    return [a, b]


def oracle(op: str, args: list[np.ndarray]) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op in ("floordiv", "remainder") and args[0].dtype.kind in "iu":
            return (np.floor_divide if op == "floordiv" else np.remainder)(*args)  # x // 0 == 0
        return PRIMITIVES[op].impl(*args)


def supported(op: str, dt: D.DType) -> bool:
    """Whether the eager kernel accepts ``op`` on ``dt`` and keeps the rule's result dtype."""
    n = 2 if op in BINARY else 1
    try:
        with np.errstate(all="ignore"):
            out = PRIMITIVES[op].impl(*[np.ones(3, dt.np)] * n)
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    return out.dtype == (np.bool_ if op in TO_BOOL else dt.np)


CASES = [(op, dt) for op in UNARY + BINARY for dt in DTYPES if supported(op, dt)]
REJECTED = [(op, dt) for op in UNARY + BINARY for dt in DTYPES if not supported(op, dt)]
CONVERTS = [(src, dst) for src in DTYPES for dst in DTYPES]


def case_kernel(op: str, dt: D.DType) -> Kernel:
    out = D.bool_ if op in TO_BOOL else dt
    ins = [dt] * (2 if op in BINARY else 1)
    return elementwise_kernel(f"{op}_{dt.short}", op, ins, out)


def convert_kernel(src: D.DType, dst: D.DType) -> Kernel:
    return elementwise_kernel(f"convert_{src.short}_{dst.short}", "convert", [src], dst)


def where_kernel(dt: D.DType) -> Kernel:
    return elementwise_kernel(f"where_{dt.short}", "where", [D.bool_, dt, dt], dt)


@pytest.fixture(scope="module")
def compiled():
    kernels = [case_kernel(op, dt) for op, dt in CASES]
    kernels += [convert_kernel(s, d) for s, d in CONVERTS]
    kernels += [where_kernel(dt) for dt in DTYPES]
    return target.jit(str(emit_module(kernels)), name="ops")


# -- comparison ----------------------------------------------------------------------------

_MANTISSA = {D.float16: 10, D.bfloat16: 7, D.float32: 23, D.float64: 52}


def assert_same(got: np.ndarray, want: np.ndarray, ulps: float = 0) -> None:
    """Equal values (NaN where NaN, the sign of zero included); within ``ulps`` units in the
    last place of the result dtype for inexact functions."""
    assert got.dtype == want.dtype
    if want.dtype.kind in "iub":
        np.testing.assert_array_equal(got, want)
        return
    dt = D.from_numpy(want.dtype)
    g, w = got.astype(np.float64), want.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
    ok = ~np.isnan(w)
    g, w = g[ok], w[ok]
    if ulps == 0:
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(np.signbit(g), np.signbit(w))
        return
    np.testing.assert_array_equal(np.isinf(g), np.isinf(w))
    np.testing.assert_array_equal(g[np.isinf(w)], w[np.isinf(w)])
    fin = np.isfinite(w)
    tiny = {D.float16: 6e-8, D.bfloat16: 1e-38, D.float32: 1e-38, D.float64: 1e-300}[dt]
    ulp = np.maximum(np.abs(w[fin]), tiny) * 2.0 ** -_MANTISSA[dt]
    err = np.abs(g[fin] - w[fin]) / ulp
    assert err.max(initial=0) <= ulps, f"{err.max()} ulps at {w[fin][np.argmax(err)]}"


def tolerance(op: str, dt: D.DType) -> float:
    if op not in MATH and not (op == "pow" and dt.is_floating_point):
        return 0
    return 1 if dt in (D.float16, D.bfloat16) else 4


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "dt"), CASES, ids=[f"{o}-{d.short}" for o, d in CASES])
def test_elementwise_matches_eager(compiled, op, dt):
    rng = np.random.default_rng(abs(hash((op, dt.name))) % 2**32)
    args = operands(op, dt, rng)
    want = oracle(op, args)
    kernel = case_kernel(op, dt)
    got = np.empty(N, want.dtype)
    run(compiled, kernel, [*args, got])
    assert_same(got, want, tolerance(op, dt))


def convert_input(src: D.DType, dst: D.DType, rng: np.random.Generator) -> np.ndarray:
    x = sample(src, rng)
    if src.is_floating_point and dst.category == D.INTEGER:
        # out-of-range float to int is undefined (in numpy too): stay inside the target, or
        # inside int64 for the narrow targets that wrap through it
        bound = 2.0**30 if dst is D.int32 else 2.0**62 if dst is D.int64 else 1e9
        x = x.astype(np.float64)
        x[~np.isfinite(x)] = 0.0
        x = np.clip(x * rng.uniform(0.5, 2e6, N), -bound, bound)
        x[:4] = [-2.5, 254.7, 40000.0, -0.0]
        with np.errstate(over="ignore"):
            x = x.astype(src.np)
    if src is D.float64:
        x[4:8] = [1 + 2.0**-11 + 2.0**-40, 1 + 2.0**-8 + 2.0**-30, 3.4e38, 1e-45]
    if src is D.int64:
        x[4:7] = [2**24 + 2**16 + 1, 2**33 + 2**25 + 1, -(2**40 + 2**32 + 1)]
    return x


@pytest.mark.parametrize(
    ("src", "dst"), CONVERTS, ids=[f"{s.short}-{d.short}" for s, d in CONVERTS]
)
def test_convert_matches_astype(compiled, src, dst):
    rng = np.random.default_rng(src.itemsize * 100 + dst.itemsize + src.category * 7)
    x = convert_input(src, dst, rng)
    with np.errstate(all="ignore"):
        want = PRIMITIVES["convert"].impl(x, dtype=dst)
    got = np.empty(N, dst.np)
    run(compiled, convert_kernel(src, dst), [x, got])
    assert_same(got, want)


@pytest.mark.parametrize("dt", DTYPES, ids=[d.short for d in DTYPES])
def test_where(compiled, dt):
    rng = np.random.default_rng(3)
    cond, a, b = rng.random(N) < 0.5, sample(dt, rng), sample(dt, rng)
    got = np.empty(N, dt.np)
    run(compiled, where_kernel(dt), [cond, a, b, got])
    assert_same(got, PRIMITIVES["where"].impl(cond, a, b))


def run_few(jm, kernel: Kernel, inputs: list[np.ndarray], out_dtype) -> np.ndarray:
    """Run a kernel compiled for N elements on fewer (inputs repeated to N)."""
    out = np.empty(N, out_dtype)
    run(jm, kernel, [np.resize(a, N) for a in inputs] + [out])
    return out[: inputs[0].size]


def test_integer_edge_cases_written_out(compiled):
    """The numpy results the brief names, spelled out (not only through the oracle)."""
    a = np.array([-(2**63), 7, -7, 7, -7, 5], np.int64)
    b = np.array([-1, 2, 2, -2, -2, 0], np.int64)
    fd = run_few(compiled, case_kernel("floordiv", D.int64), [a, b], np.int64)
    rm = run_few(compiled, case_kernel("remainder", D.int64), [a, b], np.int64)
    assert fd.tolist() == [-(2**63), 3, -4, -4, 3, 0]
    assert rm.tolist() == [0, 1, 1, -1, -1, 0]
    x = np.array([1, 1, 1, -100, -100, 100], np.int8)
    s = np.array([7, 8, -1, 3, 9, -1], np.int8)
    assert run_few(compiled, case_kernel("lshift", D.int8), [x, s], np.int8).tolist() == [
        -128, 0, 0, -32, 0, 0]  # fmt: skip
    assert run_few(compiled, case_kernel("rshift", D.int8), [x, s], np.int8).tolist() == [
        0, 0, 0, -13, -1, 0]  # fmt: skip
    f = np.array([-1.0, 1.0, 5.0, 0.0, -0.0, 1.0], np.float32)
    g = np.array([np.inf, -np.inf, -3.0, -2.0, 2.0, 0.0], np.float32)
    r = run_few(compiled, case_kernel("remainder", D.float32), [f, g], np.float32)
    np.testing.assert_array_equal(r, [np.inf, -np.inf, -1.0, -0.0, 0.0, np.nan])
    assert np.signbit(r[3]) and not np.signbit(r[4])


@pytest.mark.parametrize(("op", "dt"), REJECTED, ids=[f"{o}-{d.short}" for o, d in REJECTED])
def test_rejected_dtypes_raise(op, dt):
    out = D.bool_ if op in TO_BOOL else dt
    kernel = elementwise_kernel("bad", op, [dt] * (2 if op in BINARY else 1), out)
    with pytest.raises(DTypeError, match=op):
        emit_module([kernel])


def test_transcendentals_in_float16_round_once(compiled):
    """float16 exp is float32 exp rounded once: exp(11) = 59874.14 -> 59872 (not inf)."""
    x = np.array([11.0, -11.0, 0.5], np.float16)
    got = run_few(compiled, case_kernel("exp", D.float16), [x], np.float16)
    np.testing.assert_array_equal(got, np.exp(x.astype(np.float32)).astype(np.float16))
