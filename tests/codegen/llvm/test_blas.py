"""ember_sgemm / ember_dgemm called from JIT-compiled IR, checked against numpy float64 matmul.

Each case builds an IR function that forwards its arguments to the gemm that ``declare_gemm``
declared, compiles it with ``target.jit`` and calls it through ctypes on numpy buffers. The
operands live in wider buffers (leading dimension > row length) whose padding is NaN for A and
B (a read of it would poison the result) and a sentinel for C (a write to it is detected).
The tolerance is the classical gemm error bound, (K + 2) * eps * (|alpha| |A| |B| + |beta C|).
"""

from __future__ import annotations

import ctypes
import glob
import os

import llvmlite.ir as ir
import numpy as np
import pytest

from ember.codegen.llvm import blas, target

NP_DTYPES = {"f32": np.float32, "f64": np.float64}
C_FLOATS = {"f32": ctypes.c_float, "f64": ctypes.c_double}
C_SENTINEL = 7777.0
I64 = ir.IntType(64)
PTR = ir.PointerType()


def gemm_ctypes(dtype: str, address: int):
    """A Python callable for a function of ember_?gemm's signature at ``address``."""
    f, i = C_FLOATS[dtype], ctypes.c_int64
    proto = ctypes.CFUNCTYPE(
        None, i, i, i, i, i, f, ctypes.c_void_p, i, ctypes.c_void_p, i, f, ctypes.c_void_p, i
    )
    return proto(address)


def build_forwarder(dtype: str):
    """JIT ``call_gemm``: an IR function with gemm's signature whose body calls ember_?gemm."""
    module = ir.Module(name=f"test_forward_{dtype}")
    gemm = blas.declare_gemm(module, dtype)
    fn = ir.Function(module, gemm.function_type, "call_gemm")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    builder.call(gemm, list(fn.args))
    builder.ret_void()
    jitted = target.jit(str(module))
    return jitted, gemm_ctypes(dtype, jitted.address("call_gemm"))


@pytest.fixture(scope="module")
def forwarders():
    built = {dtype: build_forwarder(dtype) for dtype in NP_DTYPES}
    yield {dtype: fn for dtype, (_, fn) in built.items()}


def stored(rng, rows: int, cols: int, pad: int, dtype, fill: float) -> tuple[np.ndarray, int]:
    """A random rows x cols block with ``fill`` around it, and its leading dimension cols + pad.

    The buffer has at least one element, so a gemm that wrongly writes to an empty C is seen;
    the leading dimension is the exact one, 0 for an unpadded empty row as a contiguous
    layout would give it.
    """
    buf = np.full((max(rows, 1), max(cols + pad, 1)), fill, dtype=dtype)
    buf[:rows, :cols] = rng.standard_normal((rows, cols))
    return buf, cols + pad


def run_case(call, dtype, ta, tb, m, n, k, alpha, beta, pad, seed=0):
    """Run one gemm through ``call`` and check it (and C's padding) against float64 numpy."""
    rng = np.random.default_rng(seed)
    np_dtype = NP_DTYPES[dtype]
    a, lda = stored(rng, *((k, m) if ta else (m, k)), pad, np_dtype, np.nan)
    b, ldb = stored(rng, *((n, k) if tb else (k, n)), pad + 1, np_dtype, np.nan)
    c, ldc = stored(rng, m, n, pad + 2, np_dtype, C_SENTINEL)
    if beta == 0.0:
        c[:m, :n] = np.nan  # beta == 0 must overwrite C without reading it
    a_log = a[: k if ta else m, : m if ta else k].astype(np.float64)
    b_log = b[: n if tb else k, : k if tb else n].astype(np.float64)
    op_a = a_log.T if ta else a_log
    op_b = b_log.T if tb else b_log
    c0 = c[:m, :n].astype(np.float64)
    beta_c = beta * c0 if beta != 0.0 else np.zeros_like(c0)
    ref = alpha * (op_a @ op_b) + beta_c
    bound = abs(alpha) * (np.abs(op_a) @ np.abs(op_b)) + np.abs(beta_c)

    call(ta, tb, m, n, k, alpha, a.ctypes.data, lda, b.ctypes.data, ldb,
         beta, c.ctypes.data, ldc)  # fmt: skip

    out = c[:m, :n].astype(np.float64)
    eps = np.finfo(np_dtype).eps
    err = np.abs(out - ref)
    assert np.all(np.isfinite(out))
    assert np.all(err <= (k + 2) * eps * bound + 1e-30), float(np.max(err - (k + 2) * eps * bound))
    outside = c.copy()
    outside[:m, :n] = C_SENTINEL
    assert np.all(outside == C_SENTINEL), "gemm wrote outside C's M x N block"


SHAPES = [(5, 7, 3), (1, 6, 4), (6, 1, 4), (5, 4, 1), (1, 1, 1), (33, 17, 65), (64, 48, 40)]


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("ta,tb", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("pad", [0, 3])
def test_gemm_matches_numpy(forwarders, dtype, ta, tb, m, n, k, beta, pad):
    run_case(forwarders[dtype], dtype, ta, tb, m, n, k, 0.75, beta, pad)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("m,n,k", [(0, 5, 3), (4, 0, 3), (0, 0, 0), (4, 5, 0), (1, 1, 0)])
@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 1)])
def test_gemm_empty_dims(forwarders, dtype, m, n, k, beta, ta, tb):
    """M or N = 0 leaves C alone; K = 0 gives C = beta * C (zeros when beta is 0)."""
    run_case(forwarders[dtype], dtype, ta, tb, m, n, k, 1.5, beta, pad=0)
    run_case(forwarders[dtype], dtype, ta, tb, m, n, k, 1.5, beta, pad=2)


def test_alpha_zero_and_negative(forwarders):
    run_case(forwarders["f64"], "f64", 0, 1, 7, 9, 5, 0.0, 1.0, pad=1)
    run_case(forwarders["f32"], "f32", 1, 0, 7, 9, 5, -2.0, 1.0, pad=1)


def build_batched(dtype: str, batch: int, m: int, n: int, k: int, trans_b: int):
    """JIT ``bmm(a, b, c)``: an IR loop over ``batch`` contiguous matrices calling ember_?gemm."""
    module = ir.Module(name=f"test_bmm_{dtype}")
    gemm = blas.declare_gemm(module, dtype)
    f = gemm.function_type.args[5]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, PTR]), "bmm")
    a, b, c = fn.args
    entry, body, done = (fn.append_basic_block(s) for s in ("entry", "body", "done"))
    builder = ir.IRBuilder(entry)
    builder.branch(body)
    builder.position_at_end(body)
    i = builder.phi(I64, name="i")
    i.add_incoming(ir.Constant(I64, 0), entry)

    def matrix(base, elements):
        offset = builder.mul(i, ir.Constant(I64, elements))
        return builder.gep(base, [offset], source_etype=f)

    ldb = k if trans_b else n
    consts = [ir.Constant(I64, v) for v in (0, trans_b, m, n, k)]
    args = [*consts, ir.Constant(f, 1.0), matrix(a, m * k), ir.Constant(I64, k)]
    args += [matrix(b, k * n), ir.Constant(I64, ldb), ir.Constant(f, 0.0)]
    args += [matrix(c, m * n), ir.Constant(I64, n)]
    builder.call(gemm, args)
    i_next = builder.add(i, ir.Constant(I64, 1))
    i.add_incoming(i_next, body)
    builder.cbranch(builder.icmp_signed("<", i_next, ir.Constant(I64, batch)), body, done)
    builder.position_at_end(done)
    builder.ret_void()
    jitted = target.jit(str(module))
    proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    return jitted, proto(jitted.address("bmm"))


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("trans_b", [0, 1])
def test_batched_loop_in_ir(dtype, trans_b):
    batch, m, n, k = 8, 13, 11, 29
    np_dtype = NP_DTYPES[dtype]
    rng = np.random.default_rng(1)
    a = rng.standard_normal((batch, m, k)).astype(np_dtype)
    b = rng.standard_normal((batch, n, k) if trans_b else (batch, k, n)).astype(np_dtype)
    c = np.full((batch, m, n), np.nan, dtype=np_dtype)
    _keep, bmm = build_batched(dtype, batch, m, n, k, trans_b)
    bmm(a.ctypes.data, b.ctypes.data, c.ctypes.data)
    b64 = b.astype(np.float64)
    op_b = np.swapaxes(b64, 1, 2) if trans_b else b64
    ref = np.matmul(a.astype(np.float64), op_b)
    bound = np.matmul(np.abs(a.astype(np.float64)), np.abs(op_b))
    assert np.all(np.abs(c - ref) <= (k + 2) * np.finfo(np_dtype).eps * bound)


def test_ensure_blas_is_idempotent_and_describes_the_library():
    info = blas.ensure_blas()
    assert blas.ensure_blas() is info
    assert os.path.isfile(info.path)
    assert info.int_bits in (32, 64)
    assert info.wrappers == ("ember_sgemm", "ember_dgemm")
    lib = ctypes.CDLL(info.path)
    assert hasattr(lib, info.sgemm) and hasattr(lib, info.dgemm)
    assert info.version


def test_uses_numpys_bundled_openblas_when_there_is_one():
    numpy_libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    bundled = glob.glob(os.path.join(numpy_libs, "*openblas*"))
    if not bundled:
        pytest.skip("this numpy has no bundled OpenBLAS")
    info = blas.ensure_blas()
    assert os.path.realpath(info.path) in {os.path.realpath(p) for p in bundled}
    if "64_" in os.path.basename(info.path):
        assert info.int_bits == 64 and info.sgemm.endswith("64_")


def test_declare_gemm_declares_once_with_the_contract_type():
    module = ir.Module(name="decl")
    s = blas.declare_gemm(module, "f32")
    assert blas.declare_gemm(module, "f32") is s
    d = blas.declare_gemm(module, "f64")
    assert s.name == "ember_sgemm" and d.name == "ember_dgemm"
    assert [str(t) for t in s.function_type.args] == (
        ["i64"] * 5 + ["float", "ptr", "i64", "ptr", "i64", "float", "ptr", "i64"]
    )
    assert str(d.function_type.args[5]) == "double" and str(d.function_type.return_type) == "void"


def test_declare_gemm_rejects_other_dtypes_and_conflicts():
    with pytest.raises(ValueError):
        blas.declare_gemm(ir.Module(name="bad"), "f16")
    module = ir.Module(name="conflict")
    ir.Function(module, ir.FunctionType(ir.VoidType(), []), "ember_sgemm")
    with pytest.raises(ValueError):
        blas.declare_gemm(module, "f32")


def test_blas_threads_roundtrip():
    before = blas.blas_threads()
    assert before >= 1
    try:
        blas.set_blas_threads(1)
        assert blas.blas_threads() == 1
        blas.set_blas_threads(2)
        assert blas.blas_threads() == 2
    finally:
        blas.set_blas_threads(before)
    assert blas.blas_threads() == before
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError):
            blas.set_blas_threads(bad)


def scipy_lp64_openblas() -> str | None:
    scipy = pytest.importorskip("scipy")
    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    found = glob.glob(os.path.join(libs, "libscipy_openblas-*"))
    return found[0] if found else None


def test_lp64_library_through_truncating_wrappers():
    """scipy's wheel bundles an LP64 OpenBLAS: the 32-bit wrapper path runs for real on it."""
    path = scipy_lp64_openblas()
    if path is None:
        pytest.skip("no LP64 OpenBLAS bundled with scipy here")
    library, info = blas._probe(path)
    assert info.int_bits == 32 and info.sgemm == "scipy_cblas_sgemm"
    names = {"f32": "lp64_check_sgemm", "f64": "lp64_check_dgemm"}
    jitted = blas._compile_wrappers(library, info, names)
    assert "trunc i64" in jitted.optimized_ir
    for dtype, name in names.items():
        call = gemm_ctypes(dtype, jitted.address(name))
        for ta, tb in [(0, 0), (1, 0), (0, 1), (1, 1)]:
            run_case(call, dtype, ta, tb, 9, 6, 7, 0.5, 1.0, pad=2)
        run_case(call, dtype, 0, 0, 3, 4, 0, 1.0, 0.0, pad=0)
