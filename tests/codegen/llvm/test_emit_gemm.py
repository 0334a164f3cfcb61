"""GemmKernels compiled to native code: row panels calling ember_sgemm/ember_dgemm, the
epilogue over the same rows, layouts derived from strides, batches with a broadcast operand,
against numpy float64 matmul.

``ember_sgemm``/``ember_dgemm`` come from the runtime's BLAS module when the checkout has it,
else from a naive triple loop written here in LLVM IR.
"""

from __future__ import annotations

import ctypes
from string import Template

import numpy as np
import pytest

from ember.codegen.llvm import emit, target
from ember.codegen.llvm.emit import PANEL, emit_module, panel_rows, work_units
from ember.ir import dtypes as D
from ember.ir.errors import GraphError
from ember.ir.index import var
from ember.ir.kernel import Buffer, GemmKernel, Kernel, KOp, Stage, verify_kernel

try:  # the runtime's BLAS when it is there
    from ember.codegen.llvm.blas import ensure_blas
except ImportError:  # pragma: no cover - depends on the checkout
    ensure_blas = None

KERNEL_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
_LOADED: list[target.JitModule] = []  # engines stay loaded (see test_emit.py)

NAIVE_GEMM = Template("""
define void @$NAME(i64 %ta, i64 %tb, i64 %m, i64 %n, i64 %k, $T %alpha, ptr %a, i64 %lda,
                  ptr %b, i64 %ldb, $T %beta, ptr %c, i64 %ldc) {
entry:
  %trans.a = icmp ne i64 %ta, 0
  %trans.b = icmp ne i64 %tb, 0
  %beta.zero = fcmp oeq $T %beta, 0.0
  br label %i.head
i.head:
  %i = phi i64 [0, %entry], [%i.next, %j.done]
  %i.more = icmp slt i64 %i, %m
  br i1 %i.more, label %j.head, label %exit
j.head:
  %j = phi i64 [0, %i.head], [%j.next, %store]
  %j.more = icmp slt i64 %j, %n
  br i1 %j.more, label %p.head, label %j.done
p.head:
  %p = phi i64 [0, %j.head], [%p.next, %p.body]
  %acc = phi $T [0.0, %j.head], [%acc.next, %p.body]
  %p.more = icmp slt i64 %p, %k
  br i1 %p.more, label %p.body, label %p.done
p.body:
  %a.row = mul i64 %i, %lda
  %a.n = add i64 %a.row, %p
  %a.col = mul i64 %p, %lda
  %a.t = add i64 %a.col, %i
  %a.i = select i1 %trans.a, i64 %a.t, i64 %a.n
  %a.p = getelementptr $T, ptr %a, i64 %a.i
  %a.v = load $T, ptr %a.p
  %b.row = mul i64 %p, %ldb
  %b.n = add i64 %b.row, %j
  %b.col = mul i64 %j, %ldb
  %b.t = add i64 %b.col, %p
  %b.i = select i1 %trans.b, i64 %b.t, i64 %b.n
  %b.p = getelementptr $T, ptr %b, i64 %b.i
  %b.v = load $T, ptr %b.p
  %prod = fmul $T %a.v, %b.v
  %acc.next = fadd $T %acc, %prod
  %p.next = add i64 %p, 1
  br label %p.head
p.done:
  %c.row = mul i64 %i, %ldc
  %c.i = add i64 %c.row, %j
  %c.p = getelementptr $T, ptr %c, i64 %c.i
  %scaled = fmul $T %alpha, %acc
  br i1 %beta.zero, label %store, label %add.c
add.c:
  %c.v = load $T, ptr %c.p
  %c.s = fmul $T %beta, %c.v
  %with.c = fadd $T %scaled, %c.s
  br label %store
store:
  %r = phi $T [%scaled, %p.done], [%with.c, %add.c]
  store $T %r, ptr %c.p
  %j.next = add i64 %j, 1
  br label %j.head
j.done:
  %i.next = add i64 %i, 1
  br label %i.head
exit:
  ret void
}
""")


@pytest.fixture(scope="module", autouse=True)
def gemm_symbols():
    if ensure_blas is not None:
        ensure_blas()
        return
    text = "".join(
        NAIVE_GEMM.substitute(NAME=f"naive_{t}gemm", T=ty)
        for t, ty in (("s", "float"), ("d", "double"))
    )
    jm = target.jit(text, name="naive_gemm")
    _LOADED.append(jm)
    target.add_symbol("ember_sgemm", jm.address("naive_sgemm"))
    target.add_symbol("ember_dgemm", jm.address("naive_dgemm"))


def buf(name: str, view: np.ndarray, base: np.ndarray, role: str = "in") -> Buffer:
    item = view.dtype.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return Buffer(name, D.from_numpy(view.dtype), view.shape,
                  tuple(s // item for s in view.strides), offset, role)  # fmt: skip


def bias_relu_epilogue(out: Buffer, bias: Buffer, shape) -> Kernel:
    """out = max(out + bias[n], 0), in place."""
    p = tuple(var(f"p{i}", s) for i, s in enumerate(shape))
    dt = out.dtype
    ops = [
        KOp(0, "load", (), dt, {"buffer": 2, "index": p}),
        KOp(1, "load", (), dt, {"buffer": 3, "index": (p[-1],)}),
        KOp(2, "add", (0, 1), dt),
        KOp(3, "const", (), dt, {"value": 0.0}),
        KOp(4, "maximum", (2, 3), dt),
        KOp(5, "store", (4,), None, {"buffer": 2, "index": p}),
    ]
    return Kernel("epi", [Buffer("a0", dt, (1,), (1,)), Buffer("b0", dt, (1,), (1,)), out, bias],
                  tuple(shape), [Stage((), ops)])  # fmt: skip


def gemm_case(dt, batch_shape, m, n, k, *, trans_a=False, broadcast_b=False, epilogue=True,
              rng=None):  # fmt: skip
    """Arrays and a GemmKernel computing out = relu(a @ b + bias)."""
    rng = rng or np.random.default_rng(0)
    a_store = rng.standard_normal((*batch_shape, k, m) if trans_a else (*batch_shape, m, k))
    a_store = a_store.astype(dt.np)
    a = np.swapaxes(a_store, -1, -2) if trans_a else a_store
    b_store = rng.standard_normal((k, n) if broadcast_b else (*batch_shape, k, n)).astype(dt.np)
    b = np.broadcast_to(b_store, (*batch_shape, k, n))
    bias = rng.standard_normal(n).astype(dt.np)
    out = np.full((*batch_shape, m, n), np.nan, dt.np)
    bufs = [buf("a", a, a_store), buf("b", b, b_store), buf("out", out, out, "out"),
            buf("bias", bias, bias)]  # fmt: skip
    epi = bias_relu_epilogue(bufs[2], bufs[3], out.shape) if epilogue else None
    if epi is not None:
        epi.buffers = list(bufs)
        verify_kernel(epi)
    kernel = GemmKernel("mm", bufs, 0, 1, 2, int(np.prod(batch_shape)), m, n, k, epilogue=epi)
    verify_kernel(kernel)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    if epilogue:
        want = np.maximum(want + bias, 0)
    return kernel, [a_store, b_store, out, bias], out, want


def call(jm, kernel, arrays, lo=0, hi=None) -> None:
    fn = KERNEL_FN(jm.address(kernel.name))
    ptrs = (ctypes.c_void_p * len(arrays))(*[x.ctypes.data for x in arrays])
    fn(ctypes.addressof(ptrs), lo, work_units(kernel)[0] if hi is None else hi)


def compile_kernels(*kernels):
    jm = target.jit(str(emit_module(kernels)))
    _LOADED.append(jm)
    return jm


CASES = [
    dict(dt=D.float32, batch_shape=(), m=PANEL + 44, n=33, k=17),
    dict(dt=D.float32, batch_shape=(), m=3 * PANEL + 16, n=20, k=9),
    dict(dt=D.float32, batch_shape=(), m=70, n=40, k=25, trans_a=True),
    dict(dt=D.float32, batch_shape=(2, 3), m=9, n=12, k=5, broadcast_b=True),
    dict(dt=D.float64, batch_shape=(4,), m=PANEL + 1, n=8, k=30, trans_a=True),
    dict(dt=D.float32, batch_shape=(), m=5, n=6, k=7, epilogue=False),
    dict(dt=D.float64, batch_shape=(2,), m=3, n=4, k=0),
    dict(dt=D.float32, batch_shape=(), m=1, n=7, k=5, trans_a=True),
    dict(dt=D.float32, batch_shape=(3,), m=6, n=1, k=1),
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_gemm_with_epilogue_matches_numpy(case):
    kernel, arrays, out, want = gemm_case(**case)
    m, batch = case["m"], int(np.prod(case["batch_shape"]))
    assert work_units(kernel)[0] == batch * -(-m // panel_rows(kernel))
    jm = compile_kernels(kernel)
    call(jm, kernel, arrays)
    rtol = 1e-5 if case["dt"] is D.float32 else 1e-12
    np.testing.assert_allclose(out, want, rtol=rtol, atol=rtol * 10)
    units = work_units(kernel)[0]
    if units > 1:  # a split gives the same bits
        whole = out.copy()
        out[...] = np.nan
        call(jm, kernel, arrays, 0, units // 2)
        call(jm, kernel, arrays, units // 2, units)
        assert out.tobytes() == whole.tobytes()


def test_epilogue_buffers_are_matched_by_name():
    kernel, arrays, out, want = gemm_case(D.float32, (), 6, 5, 4)
    epi = kernel.epilogue
    by_name = {b.name: b for b in kernel.buffers}
    remap = {2: 0, 3: 1}  # the epilogue lists only out and bias
    ops = [KOp(op.id, op.op, op.args, op.dtype,
               {**op.attrs, "buffer": remap[op.attrs["buffer"]]} if "buffer" in op.attrs
               else op.attrs) for op in epi.stages[0].ops]  # fmt: skip
    kernel.epilogue = Kernel(
        "epi", [by_name["out"], by_name["bias"]], epi.parallel, [Stage((), ops)]
    )
    call(compile_kernels(kernel), kernel, arrays)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_gemm_rejects_an_operand_without_a_unit_stride():
    kernel, *_ = gemm_case(D.float32, (), 6, 5, 4, epilogue=False)
    a = kernel.buffers[0]
    kernel.buffers[0] = Buffer(a.name, a.dtype, a.shape, (8, 2), 0, "in")
    with pytest.raises(GraphError, match="neither row- nor column-contiguous"):
        emit_module([kernel])


@pytest.mark.parametrize(
    ("m", "cores", "panels"),
    [
        (784, 2, [200, 200, 200, 184]),  # not 256, 256, 256, 16: the cores get even shares
        (1024, 2, [256] * 4),
        (300, 2, [152, 148]),
        (100, 2, [100]),  # two panels of 50 rows are not worth two BLAS calls
        (0, 2, []),
        (784, 1, [200, 200, 200, 184]),
        (784, 3, [136] * 5 + [104]),
    ],
)
def test_panels_share_the_rows_evenly_between_cores(monkeypatch, m, cores, panels):
    monkeypatch.setattr(emit, "core_count", lambda: cores)
    kernel = GemmKernel("mm", [], 0, 1, 2, 1, m, 8, 8)
    rows = panel_rows(kernel)
    assert [min(rows, m - i * rows) for i in range(-(-m // rows))] == panels
    batched = GemmKernel("mm", [], 0, 1, 2, 3, m, 8, 8)
    assert panel_rows(batched) == min(PANEL, max(m, 1))


def test_the_epilogue_row_loop_is_never_unrolled():
    # 10 rows of 512 (a weight gradient feeding an update): fully unrolling the row loop
    # around the vectorized column loop made 180 KB of optimized IR and 0.3 s of compile
    kernel, arrays, out, want = gemm_case(D.float32, (), 10, 512, 64)
    text = str(emit_module([kernel]))
    assert "llvm.loop.unroll.disable" in text
    jm = compile_kernels(kernel)
    assert len(jm.optimized_ir) < 60_000
    call(jm, kernel, arrays)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)
