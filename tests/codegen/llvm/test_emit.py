"""Kernels of the kernel IR compiled to native code, against numpy (float64 where it rounds).

Layouts (strided, offset, broadcast, reshape as div/mod, gather through a computed index),
reductions of every kind (NaN, ties, empty loops), multi-stage softmax and layer norm, scans in
both directions, 0-d and empty buffers, GemmKernels with epilogues, and the unit contract:
any split of [0, units) gives the same bits as one call. The per-op semantics are in
test_emit_ops.py.
"""

from __future__ import annotations

import ctypes
import math
import re

import numpy as np
import pytest

import ember.runtime.eager_kernels  # noqa: F401  (fills the impl column)
from ember.codegen.llvm import target
from ember.codegen.llvm.emit import BLOCK, emit_module, work_units
from ember.ir import dtypes as D
from ember.ir.errors import GraphError
from ember.ir.index import Dyn, Expr, unravel, var
from ember.ir.kernel import Buffer, Kernel, KOp, Stage, verify_kernel
from ember.ir.ops import PRIMITIVES
from ember.runtime import philox

F32, F64 = D.float32, D.float64
KERNEL_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


# -- helpers -------------------------------------------------------------------------------


def buf(name: str, view: np.ndarray, base: np.ndarray | None = None, role: str = "in") -> Buffer:
    """A Buffer describing ``view`` inside ``base`` (its storage) in elements."""
    base = view if base is None else base
    item = view.dtype.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    strides = tuple(s // item for s in view.strides)
    return Buffer(name, D.from_numpy(view.dtype), view.shape, strides, offset, role)


class KB:
    """Builds a Kernel's stages with fresh op ids: ``kb.op("load", dtype=F32, buffer=0, ...)``."""

    def __init__(self) -> None:
        self.stages: list[Stage] = []
        self.next = 0

    def stage(self, *extents: int, reverse: bool = False) -> KB:
        self.stages.append(Stage(tuple(extents), [], reverse))
        return self

    def op(self, name: str, *args: int, dtype=None, **attrs) -> int:
        i = self.next
        self.next += 1
        self.stages[-1].ops.append(KOp(i, name, tuple(args), dtype, attrs))
        return i

    def kernel(self, name: str, buffers: list[Buffer], parallel: tuple[int, ...]) -> Kernel:
        k = Kernel(name, buffers, parallel, self.stages)
        verify_kernel(k)
        return k


_LOADED: list[target.JitModule] = []


def compile_kernels(*kernels) -> target.JitModule:
    # kept loaded for the whole session: freeing an MCJIT engine also frees the target machine
    # it was given, which target.jit on main still shares between engines
    jm = target.jit(str(emit_module(kernels)))
    _LOADED.append(jm)
    return jm


def call(jm, kernel, bases: list[np.ndarray], lo: int = 0, hi: int | None = None) -> None:
    fn = KERNEL_FN(jm.address(kernel.name))
    ptrs = (ctypes.c_void_p * len(bases))(*[a.ctypes.data for a in bases])
    fn(ctypes.addressof(ptrs), lo, work_units(kernel)[0] if hi is None else hi)


def run(kernel, bases: list[np.ndarray]) -> None:
    call(compile_kernels(kernel), kernel, bases)


def _fresh(o: np.ndarray) -> np.ndarray:
    a = np.empty_like(o)
    a.view(np.uint8).fill(0xAB)  # a byte pattern no test writes
    return a


def _written(a: np.ndarray) -> np.ndarray:
    return (a.view(np.uint8).reshape(a.size, a.dtype.itemsize) != 0xAB).any(axis=1)


def assert_splits_agree(kernel, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    """Units [0, k) and [k, n) (several k) write disjoint parts of the outputs that together
    are the bits of [0, n) in one call."""
    jm = compile_kernels(kernel)
    units = work_units(kernel)[0]
    whole = [_fresh(o) for o in outputs]
    call(jm, kernel, inputs + whole)
    for k in sorted({1, units // 3, units // 2, units - 1}):
        if not 0 < k < units:
            continue
        first, second = [_fresh(o) for o in outputs], [_fresh(o) for o in outputs]
        call(jm, kernel, inputs + first, 0, k)
        call(jm, kernel, inputs + second, k, units)
        for a, b, w in zip(first, second, whole):
            wa, wb = _written(a), _written(b)
            assert not (wa & wb).any() and (wa | wb).all()
            merged = np.where(wa.reshape(a.shape), a, b)
            assert merged.tobytes() == w.tobytes()


def rowwise(name, x: np.ndarray, out: np.ndarray, body, extents=None) -> Kernel:
    """A kernel over the rows of 2-d ``x``: ``body(kb, p0, r0)`` fills the stages."""
    rows, cols = x.shape
    kb = KB()
    body(kb, var("p0", rows), var("r0", cols if extents is None else extents))
    return kb.kernel(name, [buf("x", x), buf("out", out, role="out")], (rows,))


# -- layouts -------------------------------------------------------------------------------


def test_strided_offset_and_broadcast_buffers():
    rng = np.random.default_rng(0)
    rows, cols = 37, 50
    a_base = rng.standard_normal((cols, rows)).astype(np.float32)
    a = a_base.T  # strides (1, rows)
    b_base = rng.standard_normal(cols + 3).astype(np.float32)
    b = np.broadcast_to(b_base[3:], (rows, cols))  # stride 0 rows, offset 3
    c_base = rng.standard_normal((rows + 4, cols + 2)).astype(np.float32)
    c = c_base[2 : 2 + rows, 1 : 1 + cols]  # offset 2 * (cols + 2) + 1
    out = np.zeros((rows, cols), np.float32)
    p = (var("p0", rows), var("p1", cols))
    kb = KB().stage()
    x = [kb.op("load", dtype=F32, buffer=i, index=p) for i in range(3)]
    s = kb.op("mul", kb.op("add", x[0], x[1], dtype=F32), x[2], dtype=F32)
    kb.op("store", s, buffer=3, index=p)
    buffers = [
        buf("a", a, a_base),
        buf("b", b, b_base),
        buf("c", c, c_base),
        buf("o", out, role="out"),
    ]
    assert buffers[1].strides == (0, 1) and buffers[1].offset == 3
    k = kb.kernel("layouts", buffers, (rows, cols))
    run(k, [a_base, b_base, c_base, out])
    np.testing.assert_array_equal(out, (a + b) * c)
    assert_splits_agree(k, [a_base, b_base, c_base], [out])


def test_reshape_reads_through_div_and_mod():
    """[4, 6] read as [3, 8] and transposed: out[p0, p1] = x.reshape(3, 8).T[p0, p1] + 1."""
    x = np.arange(24, dtype=np.int32).reshape(4, 6)
    out = np.zeros((8, 3), np.int32)
    p0, p1 = var("p0", 8), var("p1", 3)
    index = unravel(p1 * 8 + p0, (4, 6))
    assert "//" in str(index[0]) and "%" in str(index[1])
    kb = KB().stage()
    v = kb.op("load", dtype=D.int32, buffer=0, index=index)
    one = kb.op("const", dtype=D.int32, value=1)
    kb.op("store", kb.op("add", v, one, dtype=D.int32), buffer=1, index=(p0, p1))
    run(kb.kernel("reshape", [buf("x", x), buf("o", out, role="out")], (8, 3)), [x, out])
    np.testing.assert_array_equal(out, x.reshape(3, 8).T + 1)


@pytest.mark.parametrize("index_dtype", [D.int64, D.int32, D.uint8])
def test_gather_through_a_computed_index(index_dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 7)).astype(np.float64)
    idx = rng.integers(0, 5, (4, 7)).astype(index_dtype.np)
    out = np.zeros((4, 7), np.float64)
    p0, p1 = var("p0", 4), var("p1", 7)
    kb = KB().stage()
    i = kb.op("load", dtype=index_dtype, buffer=1, index=(p0, p1))
    v = kb.op("load", dtype=F64, buffer=0, index=(Expr(((Dyn(i, 0, 4), 1),)), p1))
    kb.op("store", v, buffer=2, index=(p0, p1))
    k = kb.kernel("gather", [buf("x", x), buf("i", idx), buf("o", out, role="out")], (4, 7))
    run(k, [x, idx, out])
    np.testing.assert_array_equal(out, PRIMITIVES["gather"].impl(x, idx.astype(np.int64), axis=0))


def test_index_op_gives_positions():
    out = np.zeros((3, 5), np.float32)
    p0, p1 = var("p0", 3), var("p1", 5)
    kb = KB().stage()
    v = kb.op("index", dtype=F32, expr=p0 * 10 + p1)
    kb.op("store", v, buffer=0, index=(p0, p1))
    run(kb.kernel("iota", [buf("o", out, role="out")], (3, 5)), [out])
    np.testing.assert_array_equal(out, np.arange(3)[:, None] * 10 + np.arange(5))


CONSTANTS = [(D.float16, 0.1), (D.bfloat16, 0.1), (F32, 0.1), (F64, 0.1), (F32, -np.inf),
             (F64, np.nan), (D.uint8, 300), (D.uint8, -1), (D.int8, 200), (D.int64, -(2**63)),
             (D.bool_, 2), (D.float16, 1e6)]  # fmt: skip


def test_constants_take_their_dtype():
    """A constant is rounded or wrapped to its dtype as numpy's astype does."""
    outs = [np.zeros(3, dt.np) for dt, _ in CONSTANTS]
    kb = KB().stage()
    p = (var("p0", 3),)
    for i, (dt, value) in enumerate(CONSTANTS):
        kb.op("store", kb.op("const", dtype=dt, value=value), buffer=i, index=p)
    buffers = [buf(f"o{i}", o, role="out") for i, o in enumerate(outs)]
    run(kb.kernel("constants", buffers, (3,)), outs)
    for (dt, value), out in zip(CONSTANTS, outs):
        with np.errstate(all="ignore"):
            want = np.full(3, np.asarray(value, np.float64 if isinstance(value, float) else
                                         np.int64)).astype(dt.np)  # fmt: skip
        np.testing.assert_array_equal(out, want, err_msg=f"{dt} {value}")


def test_zero_d_buffers():
    x = np.array(2.5, np.float32)
    out = np.zeros((), np.float32)
    kb = KB().stage()
    v = kb.op("load", dtype=F32, buffer=0, index=())
    kb.op("store", kb.op("mul", v, v, dtype=F32), buffer=1, index=())
    k = kb.kernel("scalar", [buf("x", x), buf("o", out, role="out")], ())
    assert work_units(k)[0] == 1
    run(k, [x, out])
    assert out == 6.25


def test_whole_array_reduction_into_a_zero_d_buffer():
    x = np.arange(1, 101, dtype=np.int64)
    out = np.zeros((), np.int64)
    kb = KB().stage(100)
    s = kb.op("reduce", kb.op("load", dtype=D.int64, buffer=0, index=(var("r0", 100),)),
              dtype=D.int64, kind="sum")  # fmt: skip
    kb.stage().op("store", s, buffer=1, index=())
    run(kb.kernel("total", [buf("x", x), buf("o", out, role="out")], ()), [x, out])
    assert out == 5050


def test_empty_pointwise_kernel_has_no_units():
    x = np.zeros(0, np.float32)
    out = np.zeros(0, np.float32)
    p0 = var("p0", 0)
    kb = KB().stage()
    kb.op("store", kb.op("neg", kb.op("load", dtype=F32, buffer=0, index=(p0,)), dtype=F32),
          buffer=1, index=(p0,))  # fmt: skip
    k = kb.kernel("empty", [buf("x", x), buf("o", out, role="out")], (0,))
    assert work_units(k)[0] == 0
    run(k, [x, out])


# -- reductions ----------------------------------------------------------------------------


def reduce_kernel(name: str, x: np.ndarray, kind: str, out_dtype) -> Kernel:
    rows, cols = x.shape
    dt = D.from_numpy(x.dtype)
    out = np.zeros(rows, out_dtype.np)

    def body(kb, p0, r0):
        v = kb.stage(cols).op("load", dtype=dt, buffer=0, index=(p0, r0))
        r = kb.op("reduce", v, dtype=out_dtype, kind=kind)
        kb.stage().op("store", r, buffer=1, index=(p0,))

    return rowwise(name, x, out, body)


def reduce_input(dt: D.DType, rng, rows: int = 9, cols: int = 203) -> np.ndarray:
    if dt.is_floating_point:
        x = rng.standard_normal((rows, cols)).astype(dt.np)
        x[1, 17] = np.nan  # one NaN
        x[2, [5, 150]] = np.nan  # two NaN: argmax takes the first
        x[3, :] = 1.0  # all tied
        x[4, [3, 90]] = 50.0  # tied maximum
        x[4, [4, 91]] = -50.0
        x[5, :] = -np.inf
        return x
    if dt is D.bool_:
        x = rng.random((rows, cols)) < 0.5
        x[3, :] = True
        x[4, :] = False
        return x
    x = rng.integers(-100, 101, (rows, cols)).astype(dt.np)
    x[3, :] = 7
    x[4, [3, 90]] = 127
    return x


REDUCE_CASES = [(kind, dt) for kind in ("sum", "prod", "max", "min", "argmax", "argmin")
                for dt in (F32, F64, D.float16, D.bfloat16, D.int32, D.int8, D.uint8, D.int64,
                           D.bool_)]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "dt"), REDUCE_CASES, ids=[f"{k}-{d.short}" for k, d in REDUCE_CASES]
)
def test_reduction_matches_eager(kind, dt):
    rng = np.random.default_rng(7)
    x = reduce_input(dt, rng)
    if kind == "prod" and dt.is_floating_point:
        x = np.where(np.isnan(x.astype(np.float64)), x, (1 + x.astype(np.float64) / 100)).astype(
            dt.np
        )
    out_dtype = D.int64 if kind.startswith("arg") else dt
    k = reduce_kernel(f"reduce_{kind}_{dt.short}", x, kind, out_dtype)
    out = np.zeros(x.shape[0], out_dtype.np)
    run(k, [x, out])
    with np.errstate(all="ignore"):
        if kind.startswith("arg"):
            want = PRIMITIVES[kind].impl(x, axis=1)
        else:
            want = PRIMITIVES[f"reduce_{kind}"].impl(x, axes=(1,))
    if kind in ("sum", "prod") and dt.is_floating_point:  # reassociated: compare in float64
        rtol = {F32: 1e-5, F64: 1e-13}.get(dt, 2.0**-7 if dt is D.bfloat16 else 2.0**-10)
        np.testing.assert_allclose(out.astype(np.float64), want.astype(np.float64), rtol=rtol)
    else:
        np.testing.assert_array_equal(out, want)
    assert_splits_agree(k, [x], [out])


def test_reduction_over_two_dims_and_argmax_position():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 5, 9)).astype(np.float32)
    x[2, 1, 3] = x[2, 4, 0] = 9.0  # tie: the first in row-major order wins
    outs = [np.zeros(6, np.float32), np.zeros(6, np.int64)]
    p0, r0, r1 = var("p0", 6), var("r0", 5), var("r1", 9)
    kb = KB().stage(5, 9)
    v = kb.op("load", dtype=F32, buffer=0, index=(p0, r0, r1))
    m = kb.op("reduce", v, dtype=F32, kind="max")
    a = kb.op("reduce", v, dtype=D.int64, kind="argmax")
    kb.stage()
    kb.op("store", m, buffer=1, index=(p0,))
    kb.op("store", a, buffer=2, index=(p0,))
    bufs = [buf("x", x), buf("m", outs[0], role="out"), buf("a", outs[1], role="out")]
    run(kb.kernel("max2d", bufs, (6,)), [x, *outs])
    np.testing.assert_array_equal(outs[0], x.max(axis=(1, 2)))
    np.testing.assert_array_equal(outs[1], np.argmax(x.reshape(6, -1), axis=1))
    assert outs[1][2] == 1 * 9 + 3


@pytest.mark.parametrize("kind", ["sum", "prod", "max", "min", "argmax", "argmin"])
def test_reduction_over_an_empty_loop_gives_the_identity(kind):
    x = np.zeros((3, 0), np.float32)
    out_dtype = D.int64 if kind.startswith("arg") else F32
    out = np.full(3, 123, out_dtype.np)
    run(reduce_kernel(f"empty_{kind}", x, kind, out_dtype), [x, out])
    want = {"sum": 0.0, "prod": 1.0, "max": -np.inf, "min": np.inf, "argmax": 0, "argmin": 0}
    np.testing.assert_array_equal(out, np.full(3, want[kind], out_dtype.np))


# -- multi-stage kernels -------------------------------------------------------------------


def softmax_kernel(x: np.ndarray, out: np.ndarray, name: str = "softmax") -> Kernel:
    def body(kb, p0, r0):
        m = kb.stage(x.shape[1]).op("reduce", load(kb, p0, r0), dtype=F32, kind="max")
        s = kb.stage(x.shape[1]).op("reduce", exp_shift(kb, p0, r0, m), dtype=F32, kind="sum")
        kb.stage(x.shape[1])
        y = kb.op("div", exp_shift(kb, p0, r0, m), s, dtype=F32)
        kb.op("store", y, buffer=1, index=(p0, r0))

    def load(kb, p0, r0):
        return kb.op("load", dtype=F32, buffer=0, index=(p0, r0))

    def exp_shift(kb, p0, r0, m):
        return kb.op("exp", kb.op("sub", load(kb, p0, r0), m, dtype=F32), dtype=F32)

    return rowwise(name, x, out, body)


def test_softmax_against_float64():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((64, 1000)) * 5).astype(np.float32)
    out = np.zeros_like(x)
    k = softmax_kernel(x, out)
    run(k, [x, out])
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=2e-6, atol=1e-12)
    assert_splits_agree(k, [x], [out])


def layer_norm_kernel(x, w, b, out, mean, rstd, eps: float = 1e-5) -> Kernel:
    rows, cols = x.shape
    p0, r0 = var("p0", rows), var("r0", cols)
    kb = KB()

    def load_x():
        return kb.op("load", dtype=F32, buffer=0, index=(p0, r0))

    s = kb.stage(cols).op("reduce", load_x(), dtype=F32, kind="sum")
    mu = kb.stage().op("div", s, kb.op("const", dtype=F32, value=float(cols)), dtype=F32)
    kb.stage(cols)
    d = kb.op("sub", load_x(), mu, dtype=F32)
    v = kb.op("reduce", kb.op("mul", d, d, dtype=F32), dtype=F32, kind="sum")
    kb.stage()
    var_ = kb.op("div", v, kb.op("const", dtype=F32, value=float(cols)), dtype=F32)
    r = kb.op("rsqrt", kb.op("add", var_, kb.op("const", dtype=F32, value=eps), dtype=F32),
              dtype=F32)  # fmt: skip
    kb.op("store", mu, buffer=4, index=(p0,))
    kb.op("store", r, buffer=5, index=(p0,))
    kb.stage(cols)
    y = kb.op("mul", kb.op("sub", load_x(), mu, dtype=F32), r, dtype=F32)
    y = kb.op("mul", y, kb.op("load", dtype=F32, buffer=1, index=(r0,)), dtype=F32)
    y = kb.op("add", y, kb.op("load", dtype=F32, buffer=2, index=(r0,)), dtype=F32)
    kb.op("store", y, buffer=3, index=(p0, r0))
    buffers = [buf("x", x), buf("w", w), buf("b", b), buf("y", out, role="out"),
               buf("mean", mean, role="out"), buf("rstd", rstd, role="out")]  # fmt: skip
    return kb.kernel("layer_norm", buffers, (rows,))


def test_layer_norm_against_float64():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((33, 768)) * 3 + 1).astype(np.float32)
    w, b = rng.standard_normal(768).astype(np.float32), rng.standard_normal(768).astype(np.float32)
    out, mean, rstd = np.zeros_like(x), np.zeros(33, np.float32), np.zeros(33, np.float32)
    k = layer_norm_kernel(x, w, b, out, mean, rstd)
    run(k, [x, w, b, out, mean, rstd])
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=1, keepdims=True)
    r = 1 / np.sqrt(((x64 - mu) ** 2).mean(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(mean, mu[:, 0], rtol=1e-5)
    np.testing.assert_allclose(rstd, r[:, 0], rtol=1e-5)
    np.testing.assert_allclose(out, (x64 - mu) * r * w + b, rtol=1e-4, atol=1e-5)
    assert_splits_agree(k, [x, w, b], [out, mean, rstd])


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dt", [F32, D.float16, D.int32, F64], ids=lambda d: d.short)
def test_scan_matches_cumsum(dt, reverse):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((7, 300)) * 4).astype(dt.np)
    out = np.zeros_like(x)

    def body(kb, p0, r0):
        kb.stage(x.shape[1], reverse=reverse)
        s = kb.op("scan", kb.op("load", dtype=dt, buffer=0, index=(p0, r0)), dtype=dt, kind="sum")
        kb.op("store", s, buffer=1, index=(p0, r0))

    k = rowwise(f"cumsum_{dt.short}_{int(reverse)}", x, out, body)
    run(k, [x, out])
    np.testing.assert_array_equal(out, PRIMITIVES["cumsum"].impl(x, axis=1, reverse=reverse))


# -- the unit contract and vectorization ---------------------------------------------------


def gelu_tanh_kernel(n: int, shape=None) -> Kernel:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) over a contiguous f32 array."""
    shape = shape or (n,)
    p = tuple(var(f"p{i}", s) for i, s in enumerate(shape))
    kb = KB().stage()

    def c(v):
        return kb.op("const", dtype=F32, value=v)

    x = kb.op("load", dtype=F32, buffer=0, index=p)
    x3 = kb.op("mul", kb.op("mul", x, x, dtype=F32), x, dtype=F32)
    inner = kb.op("add", x, kb.op("mul", c(0.044715), x3, dtype=F32), dtype=F32)
    t = kb.op("tanh", kb.op("mul", c(math.sqrt(2 / math.pi)), inner, dtype=F32), dtype=F32)
    y = kb.op("mul", kb.op("mul", c(0.5), x, dtype=F32), kb.op("add", c(1.0), t, dtype=F32),
              dtype=F32)  # fmt: skip
    kb.op("store", y, buffer=1, index=p)
    strides = tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))
    buffers = [Buffer("x", F32, shape, strides), Buffer("y", F32, shape, strides, 0, "out")]
    return kb.kernel("gelu_tanh", buffers, shape)


@pytest.mark.parametrize("shape", [(3 * BLOCK + 5,), (17, 301), (2, 3, 130)])
def test_pointwise_units_split_and_match(shape):
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    k = gelu_tanh_kernel(x.size, shape)
    want_units = -(-x.size // BLOCK) if len(shape) == 1 else math.prod(shape[:-1])
    assert work_units(k)[0] == want_units
    out = np.zeros_like(x)
    run(k, [x, out])
    x64 = x.astype(np.float64)
    want = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)))
    # (where 1 + tanh cancels, a few ulp of tanh are a large relative error of a tiny value:
    # the absolute error stays at float32's resolution of the inputs)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    assert_splits_agree(k, [x], [out])


VECTOR = re.compile(r"<(4|8|16) x float>")


def affine_kernel(n: int) -> Kernel:
    """max(x * 1.5 + y, 0) over contiguous f32 arrays."""
    p = (var("p0", n),)
    kb = KB().stage()
    x, y = (kb.op("load", dtype=F32, buffer=i, index=p) for i in range(2))
    v = kb.op("add", kb.op("mul", x, kb.op("const", dtype=F32, value=1.5), dtype=F32), y, dtype=F32)
    v = kb.op("maximum", v, kb.op("const", dtype=F32, value=0.0), dtype=F32)
    kb.op("store", v, buffer=2, index=p)
    buffers = [Buffer("x", F32, (n,), (1,)), Buffer("y", F32, (n,), (1,)),
               Buffer("o", F32, (n,), (1,), 0, "out")]  # fmt: skip
    return kb.kernel("affine", buffers, (n,))


def test_inner_loops_vectorize():
    """Contiguous f32 pointwise loops and sum/max reductions use vector registers (calls into
    the math library, such as tanhf, keep a loop scalar until polynomial math replaces them)."""
    x = np.zeros((8, 1024), np.float32)
    kernels = [affine_kernel(1 << 16), softmax_kernel(x, np.zeros_like(x), "vec_softmax")]
    kernels += [reduce_kernel(f"vec_{kind}", x, kind, F32) for kind in ("sum", "max")]
    for k in kernels:
        ir = compile_kernels(k).optimized_ir
        assert VECTOR.search(ir), k.name


def test_cost_model_sizes_units():
    """Units follow the rules of emit.py; a unit's cost grows with the work in it."""

    def softmax_cost(rows, cols):
        x = np.broadcast_to(np.zeros(1, np.float32), (rows, cols))  # shapes only: no storage
        return work_units(softmax_kernel(x, x))

    (units, cost), (_, double) = softmax_cost(4096, 1024), softmax_cost(4096, 2048)
    assert units == 4096 and 1.9 < double / cost < 2.1
    assert work_units(gelu_tanh_kernel(1 << 22))[0] == (1 << 22) // BLOCK
    assert work_units(gelu_tanh_kernel(0, (64, 3, 500)))[0] == 64 * 3
    assert work_units(gelu_tanh_kernel(1 << 12))[1] > work_units(affine_kernel(1 << 12))[1]


def test_reading_a_reduction_inside_its_own_loop_is_rejected():
    x = np.zeros((2, 8), np.float32)

    def body(kb, p0, r0):
        kb.stage(8)
        s = kb.op(
            "reduce", kb.op("load", dtype=F32, buffer=0, index=(p0, r0)), dtype=F32, kind="sum"
        )
        kb.op("store", kb.op("neg", s, dtype=F32), buffer=1, index=(p0, r0))

    with pytest.raises(GraphError, match="own loop"):
        emit_module([rowwise("bad", x, np.zeros_like(x), body)])


def test_philox_draws_match_the_eager_generator():
    kb = KB().stage()
    seed = kb.op("const", dtype=D.int64, value=1234)
    offset = kb.op("const", dtype=D.int64, value=7)
    r = kb.op("philox", seed, offset, dtype=F32, index=var("p0", 64))
    kb.op("store", r, buffer=0, index=(var("p0", 64),))
    k = kb.kernel("rand", [Buffer("o", F32, (64,), (1,), 0, "out")], (64,))
    out = np.empty(64, np.float32)
    run(k, [out])
    np.testing.assert_array_equal(out, philox.uniform(1234, 7, (64,), np.float32))
