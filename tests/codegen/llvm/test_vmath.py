"""ember's vector math (ember.codegen.llvm.vmath): accuracy, special values, vectorization.

Each function is compiled into a loop ``void k(ptr x, [ptr x2,] ptr y, i64 n)`` that computes
``y[i] = f(x[i])`` and is called with ctypes on numpy arrays. Oracles are independent of ember:
numpy float64 for float32 results, numpy's float80 long double for float64 results, torch's
float64 erf for float32 erf and mpmath for float64 erf.

- float32: a sweep over every 509th of all 2^32 bit patterns (about 8.4M values, every exponent
  and both signs, NaNs included) plus special values, measured in ulp of the float32 result;
- float64: random bit patterns plus dense samples where the functions bend;
- where the oracle gives NaN, an infinity or an exact zero, the result must be the same value
  (sign of zero included); special inputs must give what numpy's own float32/float64 functions
  give when that is NaN, an infinity or a zero.
"""

from __future__ import annotations

import ctypes
import math
import re

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np
import pytest
import torch

from ember.codegen.llvm import vmath
from ember.codegen.llvm.target import host_target, jit
from ember.codegen.llvm.vmath_ops import TWO_OVER_PI_BITS

L = np.longdouble
NAMES = sorted(vmath.UNARY)
_KERNELS: dict[tuple[str, str], object] = {}  # compiled once per session, kept alive


def loop_module(name: str, dtype: type, arity: int) -> ir.Module:
    """``void k(ptr x, [ptr x2,] ptr y, i64 n)``: for i < n, y[i] = name(x[i] [, x2[i]])."""
    fty = ir.FloatType() if dtype == np.float32 else ir.DoubleType()
    return vmath.loop_module(name, fty, arity)


class _Kernel:
    def __init__(self, name: str, dtype: type, arity: int):
        self.jit = jit(str(loop_module(name, dtype, arity)))
        self.dtype = dtype
        proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (arity + 1)), ctypes.c_int64)
        self._fn = proto(self.jit.address("k"))

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        arrays = [np.ascontiguousarray(a, dtype=self.dtype) for a in arrays]
        out = np.empty_like(arrays[0])
        self._fn(*[a.ctypes.data for a in arrays], out.ctypes.data, out.size)
        return out


def kernel(name: str, dtype: type = np.float32, arity: int = 1) -> _Kernel:
    key = (name, np.dtype(dtype).name)
    if key not in _KERNELS:
        _KERNELS[key] = _Kernel(name, dtype, arity)
    return _KERNELS[key]


# -- error measures --------------------------------------------------------------------------
def ulp_error(y: np.ndarray, ref: np.ndarray, fmt: str) -> np.ndarray:
    """|y - ref| in ulp of the result format at ref; inf/NaN must match exactly.

    A result of +-inf counts as +-2^(emax+1) while the reference is finite and below that
    (the rounding boundary), and a reference at or past 2^(emax+1) requires +-inf.
    """
    # float32 errors are measured in double (exact enough), float64 ones in long double
    wide = np.float64 if fmt == "f32" else L
    top, mant, emin = (2.0**128, 24, -125) if fmt == "f32" else (L(2.0) ** 1024, 53, -1021)
    refl = ref.astype(wide)
    finite = np.isfinite(refl)
    with np.errstate(over="ignore", invalid="ignore"):
        y_as = np.where(np.isinf(y), np.sign(y) * top, y.astype(wide))
        exponent = np.frexp(np.where(finite, refl, wide(1.0)))[1]
        ulp = np.ldexp(wide(1.0), np.maximum(exponent, emin) - mant)
        err = (np.abs(y_as - refl) / ulp).astype(np.float64)
    err = np.where(~finite, np.where(_same(y, ref), 0.0, np.inf), err)
    err = np.where(finite & (np.abs(refl) >= top), np.where(np.isinf(y), 0.0, np.inf), err)
    return np.where(np.isnan(err), np.inf, err)


def _same(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Equal as values, NaN equal to NaN, and zeros of the same sign."""
    both_nan = np.isnan(y) & np.isnan(ref)
    return both_nan | ((y == ref) & (np.signbit(y) == np.signbit(ref)))


def assert_exact_where_special(x: np.ndarray, y: np.ndarray, ref: np.ndarray) -> None:
    """Where the reference is NaN, +-inf or an exact zero, the result is the same value."""
    special = ~np.isfinite(ref) | (ref == 0)
    bad = special & ~_same(y, ref)
    assert not bad.any(), f"x={x[bad][:5]} gave {y[bad][:5]}, expected {ref[bad][:5]}"


def assert_within(name: str, fmt: str, x, y, ref) -> float:
    err = ulp_error(y, ref, fmt)
    worst = int(np.argmax(err))
    bound = vmath.MAX_ULP[(name, fmt)]
    assert err[worst] <= bound, (
        f"{name} {fmt}: {err[worst]:.3f} ulp > {bound} at x={x[worst]!r}: "
        f"{y[worst]!r} vs {ref[worst]!r}"
    )
    return float(err[worst])


# -- references ------------------------------------------------------------------------------
def _sigmoid(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x < 0, np.exp(x) / (1 + np.exp(x)), 1 / (1 + np.exp(-x)))


def _erf_torch(x: np.ndarray) -> np.ndarray:
    return torch.special.erf(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


def _erf_mpmath(x: np.ndarray) -> np.ndarray:
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(40):
        return np.array(
            [
                L(str(mpmath.erf(mpmath.mpf(float(v)))))
                if np.isfinite(v) and v != 0
                else L(math.erf(v))
                for v in x
            ],
            dtype=L,
        )


REFERENCE = {  # float64 / long double oracles (the same code serves both precisions)
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x),
    "sigmoid": _sigmoid,
}

# float32 results numpy gives for the special inputs: numpy's own float32 functions, and for
# the functions numpy lacks, the float64 formula rounded once (math.erf for erf).
NUMPY_F32 = {
    **{name: REFERENCE[name] for name in ("exp", "log", "log1p", "expm1", "tanh", "sin", "cos")},
    "sqrt": np.sqrt,
    "rsqrt": lambda x: np.float32(1) / np.sqrt(x),
    "sigmoid": lambda x: _sigmoid(x.astype(np.float64)).astype(np.float32),
    "erf": lambda x: np.array([math.erf(v) for v in x.astype(np.float64)], dtype=np.float32),
}


def _specials(dtype: type) -> np.ndarray:
    info = np.finfo(dtype)
    values = [0.0, np.inf, np.nan, info.smallest_subnormal, info.smallest_normal, info.max, 1.0]
    values += [0.5, 2.0, 3.9, 4.0, 6.0, 9.0109, 10.0, 20.0, 100.0, 1e10, 1e30, 2.0**24, 2.0**100]
    values += [1.5707964, 3.1415927, 1.0000001, 0.99999994, 16.635532, 17.32868]
    if dtype == np.float32:  # exp's overflow / underflow edges and their neighbours
        values += [88.72283, 88.72284, 89.0, 87.33654, 103.27893, 103.97208, 104.0, 150.0]
    else:
        values += [709.782712893384, 709.7827128933841, 708.3964185322641, 745.1332191019411]
        values += [745.1332191019412, 746.0, 1e300]
    v = np.array(values, dtype=dtype)
    v = np.concatenate([v, -v])
    with np.errstate(over="ignore", invalid="ignore"):
        return np.concatenate([v, np.nextafter(v, dtype(np.inf)), np.nextafter(v, dtype(-np.inf))])


@pytest.fixture(scope="module")
def sweep_f32() -> np.ndarray:
    patterns = np.arange(0, 2**32, 509, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([patterns.view(np.float32), _specials(np.float32)])


@pytest.fixture(scope="module")
def sample_f64() -> np.ndarray:
    rng = np.random.default_rng(2024)
    return np.concatenate(
        [
            rng.integers(0, 2**64, 1_000_000, dtype=np.uint64).view(np.float64),
            rng.uniform(-40, 40, 300_000),
            rng.uniform(-1, 1, 300_000),
            np.exp(rng.uniform(-40, 40, 200_000)),
            _specials(np.float64),
        ]
    )


# -- tests -----------------------------------------------------------------------------------
def test_bounds_cover_every_function_and_format():
    names = vmath.UNARY | vmath.BINARY
    assert set(vmath.MAX_ULP) == {(n, f) for n in names for f in ("f32", "f64")}
    assert set(vmath.UNARY) == {
        "exp", "log", "tanh", "erf", "sigmoid", "log1p", "expm1", "sin", "cos", "sqrt", "rsqrt"
    }  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_f32_sweep_is_within_its_ulp_bound(name, sweep_f32):
    x = sweep_f32
    y = kernel(name)(x)
    with np.errstate(all="ignore"):
        ref = _erf_torch(x) if name == "erf" else REFERENCE[name](x.astype(np.float64))
    assert_exact_where_special(x, y, ref)
    assert_within(name, "f32", x, y, ref)


@pytest.mark.parametrize("name", NAMES)
def test_f32_special_values_match_numpy(name):
    x = _specials(np.float32)
    y = kernel(name)(x)
    with np.errstate(all="ignore"):
        expected = NUMPY_F32[name](x)
    special = ~np.isfinite(expected) | (expected == 0) | ~np.isfinite(y) | (y == 0)
    bad = special & ~_same(y, expected)
    assert not bad.any(), f"{name}({x[bad]}) = {y[bad]}, numpy gives {expected[bad]}"


@pytest.mark.parametrize("name", NAMES)
def test_f64_samples_are_within_their_ulp_bound(name, sample_f64):
    x = sample_f64
    if name == "erf":  # mpmath is slow: a smaller sample, dense where erf bends
        rng = np.random.default_rng(7)
        x = np.concatenate([x[:4000], rng.uniform(-7, 7, 12000), rng.uniform(-1, 1, 4000)])
        x = np.concatenate([x, _specials(np.float64)])
    y = kernel(name, np.float64)(x)
    with np.errstate(all="ignore"):
        ref = _erf_mpmath(x) if name == "erf" else REFERENCE[name](x.astype(L))
        expected = np.array([math.erf(v) for v in x]) if name == "erf" else REFERENCE[name](x)
    assert_exact_where_special(x, y, ref)
    special = ~np.isfinite(expected) | (expected == 0)
    assert not (special & ~_same(y, expected)).any()
    assert_within(name, "f64", x, y, ref)


def _pow_pairs(dtype: type, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Bases of every magnitude with exponents that keep x^y mostly finite and nonzero; a third
    of the exponents integral (odd and even), so negative bases give numbers, not NaN."""
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2 ** (8 * np.dtype(dtype).itemsize), n, dtype=np.uint64)
    x = bits.astype(np.uint32).view(np.float32) if dtype == np.float32 else bits.view(np.float64)
    x = x[np.isfinite(x)]
    top = 150.0 if dtype == np.float32 else 1000.0
    with np.errstate(divide="ignore"):
        span = top / np.maximum(np.abs(np.log2(np.abs(x.astype(np.float64)))), 1e-3)
    y = rng.uniform(-1, 1, x.size) * span
    y = np.where(rng.uniform(size=x.size) < 0.33, np.round(y), y)
    return x, y.astype(dtype)


def _special_pairs(dtype: type) -> tuple[np.ndarray, np.ndarray]:
    s = [0.0, 1.0, 0.5, 2.0, 3.0, 0.25, 1.5, 7.0, np.inf, np.nan, 2.0**24, 2.0**24 + 2]
    s += [2.0**24 - 1, 2.0**53 - 1, 1e30, 1e-30]
    s += [np.finfo(dtype).smallest_subnormal, np.finfo(dtype).max]
    v = np.array(s, dtype=dtype)
    v = np.concatenate([v, -v])
    xs, ys = np.meshgrid(v, v, indexing="ij")
    return xs.ravel(), ys.ravel()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_pow_is_within_its_ulp_bound(dtype):
    fmt = "f32" if dtype == np.float32 else "f64"
    x, y = _pow_pairs(dtype, 2_000_000)
    r = kernel("pow", dtype, 2)(x, y)
    with np.errstate(all="ignore"):
        if dtype == np.float32:
            ref = np.power(x.astype(np.float64), y.astype(np.float64))
        else:
            ref = np.power(x.astype(L), y.astype(L))
    assert_exact_where_special(x, r, ref)
    assert_within("pow", fmt, x, r, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_pow_special_cases_match_numpy(dtype):
    x, y = _special_pairs(dtype)
    r = kernel("pow", dtype, 2)(x, y)
    with np.errstate(all="ignore"):
        expected = np.power(x, y)
    bad = ~_same(r, expected) & (~np.isfinite(expected) | (expected == 0) | (expected == 1))
    assert not bad.any(), list(zip(x[bad], y[bad], r[bad], expected[bad], strict=True))[:8]
    # the rest are ordinary values: within the bound of the reference
    wide = np.float64 if dtype == np.float32 else L
    with np.errstate(all="ignore"):
        ref = np.power(x.astype(wide), y.astype(wide))
    assert_within("pow", "f32" if dtype == np.float32 else "f64", x, r, ref)


def test_pow_sign_and_nan_rules():
    p = kernel("pow", np.float32, 2)
    x = np.array([-8, -8, -2, -0.0, -0.0, -0.0, np.nan, 1, -1, -1, -np.inf, -np.inf], np.float32)
    y = np.array([1 / 3, 3, -3, 3, -3, 0.5, 0, np.nan, np.inf, -np.inf, 3, 0.5], np.float32)
    want = np.array([np.nan, -512, -0.125, -0.0, -np.inf, 0.0, 1, 1, 1, 1, -np.inf, np.inf])
    assert _same(p(x, y), want.astype(np.float32)).all(), p(x, y)


def test_sigmoid_is_exact_at_its_ends():
    for dtype in (np.float32, np.float64):
        s = kernel("sigmoid", dtype)
        x = np.array([-np.inf, np.inf, -1e30, 1e30, -90.0, -0.0], dtype)
        y = s(x)
        assert y[0] == 0 and y[1] == 1 and y[2] == 0 and y[3] == 1 and y[5] == 0.5
        assert 0 < y[4] < 1e-38  # e^-90, not 0: no 1/(1+e^90) overflow


@pytest.mark.parametrize("name", sorted(vmath.UNARY | vmath.BINARY))
def test_f32_loop_is_vectorized_without_calls(name):
    k = kernel(name, np.float32, 2 if name in vmath.BINARY else 1)
    text = k.jit.optimized_ir
    assert re.search(r"<(8|16) x float>", text), f"{name}: the loop was not vectorized"
    calls = set(re.findall(r"call [^@]*@([\w.]+)", text))
    assert all(c.startswith("llvm.") for c in calls), f"{name} calls {calls}"


@pytest.mark.parametrize("cpu", ["skylake-avx512", "znver4"])
def test_f32_loops_vectorize_for_avx512_hosts(cpu):
    """Compiled (not run) for an AVX-512 CPU: 512-bit vectors, object code emitted."""
    host_target()  # initializes LLVM's native target
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu, features="-prefer-256-bit", opt=3
    )
    for name in sorted(vmath.UNARY | vmath.BINARY):
        module = llvm.parse_assembly(str(loop_module(name, np.float32, 1 + (name in vmath.BINARY))))
        module.triple, module.data_layout = machine.triple, str(machine.target_data)
        options = llvm.create_pipeline_tuning_options(speed_level=3)
        options.loop_vectorization = options.slp_vectorization = True
        builder = llvm.create_pass_builder(machine, options)
        builder.getModulePassManager().run(module, builder)
        assert machine.emit_object(module)
        text = str(module)
        assert re.search(r"<(8|16) x float>", text), f"{name}: not vectorized for {cpu}"
        if name not in vmath.BINARY:
            assert "<16 x float>" in text, f"{name}: not 512 bits wide for {cpu}"


@pytest.mark.parametrize("name", sorted(vmath.UNARY - {"sin", "cos"}))
def test_f64_loop_is_vectorized_without_calls(name):
    text = kernel(name, np.float64).jit.optimized_ir
    assert re.search(r"<(4|8) x double>", text), f"{name}: the loop was not vectorized"
    assert all(c.startswith("llvm.") for c in re.findall(r"call [^@]*@([\w.]+)", text))


@pytest.mark.parametrize("name", sorted(vmath.UNARY))
def test_helpers_are_straight_line_and_made_once_per_module(name):
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.FloatType(), [ir.FloatType()] * 2), "f")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    r = vmath.emit_unary(b, name, vmath.emit_unary(b, name, fn.args[0]))
    b.ret(b.fadd(r, vmath.emit_unary(b, name, fn.args[1])))
    helpers = [g for g in module.functions if g.name.startswith("ember.vmath.")]
    assert [h.name for h in helpers] == [f"ember.vmath.{name}.f32"]
    assert len(helpers[0].blocks) == 1 and "alwaysinline" in helpers[0].attributes
    assert helpers[0].linkage == "internal"


def test_rejects_unknown_names_and_types():
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.FloatType(), ir.IntType(32)]), "f")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    with pytest.raises(KeyError, match="atan"):
        vmath.emit_unary(b, "atan", fn.args[0])
    with pytest.raises(KeyError, match="exp"):
        vmath.emit_binary(b, "exp", fn.args[0], fn.args[0])
    with pytest.raises(TypeError, match="i32"):
        vmath.emit_unary(b, "exp", fn.args[1])


def test_two_over_pi_bits_are_right():
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(120):
        assert int(mpmath.floor(2 / mpmath.pi * mpmath.mpf(2) ** 256)) == TWO_OVER_PI_BITS


def test_sin_cos_reduce_huge_arguments_exactly():
    """Arguments whose distance to a multiple of pi/2 is tiny, where a short reduction fails."""
    x = np.array([16367173 * 2.0**72, 13176795.0, 1.0e22, 3.4028235e38, 6.2831855, 1.5707964])
    x = np.concatenate([x, -x]).astype(np.float32)
    for name in ("sin", "cos"):
        y = kernel(name)(x)
        assert_within(name, "f32", x, y, REFERENCE[name](x.astype(np.float64)))
