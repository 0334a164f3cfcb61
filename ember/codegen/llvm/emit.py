"""LLVM code generation from the kernel IR: one native function per `Kernel` or `GemmKernel`.

For a kernel named ``K`` the module defines ``void K(ptr bufs, i64 lo, i64 hi)``: ``bufs``
points to one pointer per entry of ``kernel.buffers`` (the address of the buffer's element 0;
the kernel adds ``Buffer.offset`` and walks ``Buffer.strides``, in elements), and the call
computes the *units* ``[lo, hi)`` of the kernel's work. `work_units` says how many units there
are and what one costs, so the runtime can cut them into tasks. Units are independent and each
one's result does not depend on how ``[0, units)`` is split, so any split over threads gives
bitwise-identical results.

Units (the simple rule; ``n`` is the parallel domain):

- no parallel dims: 1 unit, the whole kernel;
- pointwise kernels (no stage has extents): the last parallel dim is the inner loop (so it
  vectorizes) and a unit is one point of the other dims; a 1-d domain is cut into blocks of
  `BLOCK` elements instead (``ceil(n0 / BLOCK)`` units, the range ``[lo, hi)`` of blocks runs
  as one loop);
- kernels with a stage loop: a unit is one point of the parallel domain; its stages run in
  order, each stage with extents as a loop nest over its extents (row-major, or from the end
  when ``stage.reverse``);
- *column* kernels (stage loops whose memory accesses step along the last parallel dim, not
  along the loop: the bias gradient ``dy.sum(0)`` of a ``[rows, cols]`` matrix): a unit is a
  block of `LANES` consecutive points of the last parallel dim, and each stage loops over the
  block innermost (`Body.run_lanes`), so the loads are contiguous and vectorize;
- a `GemmKernel`: ``batch * ceil(m / rows)`` row panels (`panel_rows`: at most `PANEL` rows,
  and for one matrix as many panels as a multiple of the cores, so two cores get the same
  number of rows: 784 rows are 4 panels of 200, 200, 200 and 184, not 256, 256, 256 and 16);
  each calls ``ember_sgemm`` or ``ember_dgemm`` on its rows, then runs the epilogue over the
  same rows while they are in cache. The split depends on the machine's cores, never on the
  thread count, so results do not either.

Reductions run sequentially over their stage's loop. Float ``sum`` and ``prod`` carry the
``reassoc`` flag so the loop vectorizes: the result then depends on the vector width of the
host (AVX2 and AVX-512 machines may differ in the last bits), never on threads. A column
kernel vectorizes across its points instead, so each point's reduction runs in loop order (a
column sum adds row after row, as numpy's ``sum(0)`` does, with the same bits). How stages,
reductions and scans are emitted is `ember.codegen.llvm.body`; scalar op semantics are
`ember.codegen.llvm.scalar`.

Aliasing assumption: an output buffer's memory is never reached through another buffer
parameter of the same kernel (ember's memory plans keep outputs apart from inputs and from each
other; an in-place update is one buffer that the kernel both loads and stores). Output pointers
are therefore ``noalias``; input pointers are not (inputs may overlap each other).

GemmKernel layout: the trans flags and leading dimensions of ``a``, ``b`` and ``out`` are
derived from their strides (``trans_a``/``trans_b`` are not read): an operand ``[.., r, c]``
with column stride 1 is passed as is (leading dimension = its row stride), one with row stride
1 as transposed (leading dimension = its column stride). Other layouts are rejected. A batch
dim of stride 0 (or size 1) broadcasts. The epilogue's buffers are matched to the gemm's by
name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llvmlite import ir

from ...ir import dtypes as D
from ...ir.errors import GraphError
from ...ir.index import Expr, Var
from ...ir.kernel import Buffer, GemmKernel, Kernel, KOp
from . import scalar as S
from .body import PTR, VOID, Body, Emitter, define_kernel_function, when
from .pool import core_count

__all__ = ["BLOCK", "PANEL", "emit_module", "panel_rows", "work_units"]

BLOCK = 4096  # elements per unit of a 1-d pointwise kernel
# rows per unit of a GemmKernel: against one whole sgemm call (OpenBLAS, 1 thread, 2048x1024x1024
# with a bias+relu epilogue) panels of 64/128/256/512 rows cost +20/+5/+3/+9%
PANEL = 256
MIN_PANEL = 64  # fewer rows per panel than this are not worth a BLAS call of their own
LANES = 64  # points of the last parallel dim per unit of a column kernel

_GEMM = {D.float32: ("ember_sgemm", S.F32), D.float64: ("ember_dgemm", S.F64)}


def emit_module(kernels: Sequence[Kernel | GemmKernel], module_name: str = "ember") -> ir.Module:
    """An LLVM module defining ``void K(ptr bufs, i64 lo, i64 hi)`` for each kernel ``K``."""
    module = ir.Module(name=module_name)
    for kernel in kernels:
        if isinstance(kernel, GemmKernel):
            _emit_gemm(module, kernel)
        else:
            _emit_kernel(module, kernel)
    return module


# -- units and their cost ------------------------------------------------------------------


def _has_loops(kernel: Kernel) -> bool:
    return any(stage.extents for stage in kernel.stages)


def panel_rows(kernel: GemmKernel) -> int:
    """Rows per panel of ``kernel`` (see the module docstring)."""
    m = kernel.m
    panels = -(-m // PANEL)
    cores = core_count()
    if kernel.batch == 1 and m > 0:
        even = -(-panels // cores) * cores
        share = -(-m // even)
        rows = -(-share // 8) * 8  # rounded up to 8 rows
        if rows >= MIN_PANEL:
            return rows
    return min(PANEL, max(m, 1))


def _coefficient(linear: Expr, name: str) -> int | None:
    """The coefficient of variable ``name`` in ``linear`` (0: absent; None: inside a
    division or modulo, so not a plain stride)."""
    coef = 0
    for atom, c in linear.terms:
        if isinstance(atom, Var) and atom.name == name:
            coef = c
        elif not isinstance(atom, Var) and name in Expr(((atom, 1),)).vars():
            return None
    return coef


def _column_kernel(kernel: Kernel) -> bool:
    """Whether ``kernel``'s stage loops step through memory along its last parallel dim
    rather than along the loop (see the module docstring)."""
    if not kernel.parallel or kernel.parallel[-1] < 8 or not _has_loops(kernel):
        return False
    lane = kernel.var_names()[-1]
    column = False
    for stage in kernel.stages:
        if not stage.extents:
            continue
        inner = stage.var_names()[-1]
        for op in stage.ops:
            if op.op not in ("load", "store"):
                continue
            buf = kernel.buffers[op.attrs["buffer"]]
            linear = Expr()
            for e, stride in zip(op.attrs["index"], buf.strides):
                linear = linear + e * stride
            along_loop = _coefficient(linear, inner)
            if along_loop is None or abs(along_loop) == 1 and stage.extents[-1] > 1:
                return False  # the loop reads along memory: one point per unit is better
            if _coefficient(linear, lane) == 1:
                column = True
    return column


def _num_units(kernel: Kernel | GemmKernel) -> int:
    if isinstance(kernel, GemmKernel):
        if 0 in (kernel.m, kernel.n):
            return 0
        return kernel.batch * -(-kernel.m // panel_rows(kernel))
    par = kernel.parallel
    if not par:
        return 1
    if _column_kernel(kernel):
        return math.prod(par[:-1]) * -(-par[-1] // LANES)
    if _has_loops(kernel):
        return math.prod(par)
    if len(par) == 1:
        return -(-par[0] // BLOCK)
    return math.prod(par[:-1])


# ns per element of each op on one core (this 2-core znver3 host, float32, 1M-element loops):
# memory ops, plain arithmetic, divisions, and the math library behind `scalar._math` (glibc:
# scalar calls that keep a loop from vectorizing; polynomial vector math will lower these).
_OP_COST = {"load": 0.08, "store": 0.08, "const": 0.0, "index": 0.01, "reduce": 0.03,
            "scan": 0.3, "div": 0.1, "sqrt": 0.1, "rsqrt": 0.2, "remainder": 2.7,
            "floordiv": 2.7, "pow": 9.8, "philox": 1.0, "exp": 2.4, "sigmoid": 2.8, "log": 4.5,
            "sin": 8.2, "cos": 8.2, "tanh": 18.6, "erf": 12.0, "log1p": 15.0,
            "expm1": 14.0}  # fmt: skip
_ARITH_COST = 0.02
_UNIT_OVERHEAD = 5.0  # ns to start a unit (unravel its point, loop set-up)
_GEMM_NS_PER_FLOP = 0.02


def _op_cost(op: KOp) -> float:
    return _OP_COST.get(op.op, _ARITH_COST)


def _stages_cost(kernel: Kernel, points: int) -> float:
    """ns to run ``kernel``'s stages at ``points`` points of its parallel domain."""
    total = 0.0
    for stage in kernel.stages:
        iterations = math.prod(stage.extents) if stage.extents else 1
        total += points * iterations * sum(_op_cost(op) for op in stage.ops)
    return total


def work_units(kernel: Kernel | GemmKernel) -> tuple[int, float]:
    """``(units, cost of one unit in ns, roughly)`` of ``kernel``'s function."""
    units = _num_units(kernel)
    if isinstance(kernel, GemmKernel):
        rows = min(panel_rows(kernel), kernel.m)
        cost = 2.0 * rows * kernel.n * kernel.k * _GEMM_NS_PER_FLOP
        if kernel.epilogue is not None:
            cost += _stages_cost(kernel.epilogue, rows * kernel.n)
        return units, _UNIT_OVERHEAD + cost
    par = kernel.parallel
    if _column_kernel(kernel):
        points = min(LANES, par[-1])
    elif not par or _has_loops(kernel):
        points = 1
    elif len(par) == 1:
        points = min(BLOCK, par[0])
    else:
        points = par[-1]
    return units, _UNIT_OVERHEAD + _stages_cost(kernel, points)


# -- loop kernels --------------------------------------------------------------------------


def _emit_kernel(module: ir.Module, kernel: Kernel) -> None:
    fn = define_kernel_function(module, kernel.name, kernel.buffers)
    em = Emitter(fn)
    *ptrs, lo, hi = fn.args
    body = Body(em, kernel, ptrs)
    par = kernel.parallel
    names = kernel.var_names()
    b = em.b
    if not par:
        with when(em, b.icmp_signed("<", lo, hi)):
            body.run(kernel.stages)
    elif _column_kernel(kernel):
        blocks = em.i64(-(-par[-1] // LANES))
        with em.loop(lo, hi, "unit") as u:
            body.vars.update(zip(names[:-1], em.unravel(b.udiv(u, blocks), par[:-1])))
            base = b.mul(b.urem(u, blocks), em.i64(LANES), flags=["nsw"])
            left = b.sub(em.i64(par[-1]), base, flags=["nsw"])
            count = b.select(b.icmp_signed("<", left, em.i64(LANES)), left, em.i64(LANES))
            body.run_lanes(kernel.stages, names[-1], base, count, LANES)
    elif _has_loops(kernel):
        with em.loop(lo, hi, "unit") as u:
            body.vars.update(zip(names, em.unravel(u, par)))
            body.run(kernel.stages)
    elif len(par) == 1:
        start = b.mul(lo, em.i64(BLOCK), flags=["nsw"])
        stop = b.mul(hi, em.i64(BLOCK), flags=["nsw"])
        n = em.i64(par[0])
        stop = b.select(b.icmp_signed("<", stop, n), stop, n)
        with em.loop(start, stop, names[0]) as i:
            body.vars[names[0]] = i
            body.run(kernel.stages)
    else:
        with em.loop(lo, hi, "unit") as u:
            body.vars.update(zip(names, em.unravel(u, par[:-1])))
            _pointwise_row(em, body, names[-1], em.i64(0), em.i64(par[-1]))
    em.b.ret_void()


def _pointwise_row(em: Emitter, body: Body, name: str, start: ir.Value, stop: ir.Value) -> None:
    """The stages (none with extents) at each point of the innermost parallel dim."""
    with em.loop(start, stop, name) as i:
        body.vars[name] = i
        body.run(body.kernel.stages)


# -- gemm ----------------------------------------------------------------------------------


def _operand_layout(kernel: GemmKernel, buf: Buffer) -> tuple[int, int]:
    """``(trans, leading dimension)`` of a row-major BLAS operand ``[.., r, c]``."""
    (r, c), (sr, sc) = buf.shape[-2:], buf.strides[-2:]
    if r == 0 or c == 0:  # nothing is read: any valid leading dimension
        return 0, max(c, 1)
    if (sc == 1 or c <= 1) and (r <= 1 or sr >= max(c, 1)):
        return 0, sr if r > 1 else max(c, 1)
    if (sr == 1 or r <= 1) and (c <= 1 or sc >= max(r, 1)):
        return 1, sc if c > 1 else max(r, 1)
    raise GraphError(
        f"gemm @{kernel.name}",
        f"buffer {buf.name} with strides {buf.strides} is neither row- nor column-contiguous",
        None,
    )


def _batch_offset(em: Emitter, idx: Sequence[ir.Value], buf: Buffer) -> ir.Value:
    """Element offset of batch multi-index ``idx`` in ``buf`` (aligned right, size 1 broadcast)."""
    dims = list(zip(buf.shape[:-2], buf.strides[:-2]))
    off: ir.Value = em.i64(0)
    for i, (n, s) in zip(idx[len(idx) - len(dims) :], dims):
        if n > 1 and s:
            off = em.b.add(off, em.b.mul(i, em.i64(s), flags=["nsw"]), flags=["nsw"])
    return off


def _epilogue_ptrs(kernel: GemmKernel, ptrs: Sequence[ir.Value]) -> list[ir.Value]:
    epi = kernel.epilogue
    if epi.buffers == kernel.buffers:
        return list(ptrs)
    by_name = {buf.name: i for i, buf in enumerate(kernel.buffers)}
    out = []
    for buf in epi.buffers:
        i = by_name.get(buf.name)
        if i is None or kernel.buffers[i] != buf:
            raise GraphError(
                f"gemm @{kernel.name}", f"epilogue buffer {buf} is not the gemm's", None
            )
        out.append(ptrs[i])
    return out


def _check_gemm(kernel: GemmKernel) -> tuple[int, int, int, int, int]:
    """``(trans_a, lda, trans_b, ldb, ldc)`` from the buffers' strides, or a `GraphError`."""
    bufs = kernel.buffers
    out = bufs[kernel.out]
    where = f"gemm @{kernel.name}"
    if out.dtype not in _GEMM:
        raise GraphError(where, f"no BLAS for {out.dtype.short}", None)
    ta, lda = _operand_layout(kernel, bufs[kernel.a])
    tb, ldb = _operand_layout(kernel, bufs[kernel.b])
    tc, ldc = _operand_layout(kernel, out)
    if tc:
        raise GraphError(where, f"output {out.name} is not row-major", None)
    epi = kernel.epilogue
    if epi is not None and (_has_loops(epi) or epi.parallel != tuple(out.shape)):
        raise GraphError(where, "the epilogue is not pointwise over the output", None)
    return ta, lda, tb, ldb, ldc


def _declare_gemm(module: ir.Module, dtype: D.DType) -> ir.Function:
    name, fty = _GEMM[dtype]
    fn = module.globals.get(name)
    if fn is None:
        params = [S.I64] * 5 + [fty, PTR, S.I64, PTR, S.I64, fty, PTR, S.I64]
        fn = ir.Function(module, ir.FunctionType(VOID, params), name)
    return fn


def _emit_gemm(module: ir.Module, kernel: GemmKernel) -> None:
    ta, lda, tb, ldb, ldc = _check_gemm(kernel)
    bufs = kernel.buffers
    out = bufs[kernel.out]
    gemm = _declare_gemm(module, out.dtype)
    fn = define_kernel_function(module, kernel.name, bufs)
    em = Emitter(fn)
    *ptrs, lo, hi = fn.args
    b = em.b
    epi = kernel.epilogue
    body = Body(em, epi, _epilogue_ptrs(kernel, ptrs)) if epi is not None else None
    fty = _GEMM[out.dtype][1]
    panel = panel_rows(kernel)
    panels = -(-kernel.m // panel) if kernel.m else 1

    def at(i: int, idx: list[ir.Value], row0: ir.Value | None) -> ir.Value:
        """Address of buffer ``i`` at batch ``idx`` and (for a and out) row ``row0``."""
        buf = bufs[i]
        off = b.add(_batch_offset(em, idx, buf), em.i64(buf.offset), flags=["nsw"])
        if row0 is not None:
            off = b.add(off, b.mul(row0, em.i64(buf.strides[-2]), flags=["nsw"]), flags=["nsw"])
        return b.gep(ptrs[i], [off], inbounds=True, source_etype=S.mem_type(buf.dtype))

    if _num_units(kernel):
        with em.loop(lo, hi, "unit") as u:
            idx = em.unravel(b.udiv(u, em.i64(panels)), out.shape[:-2])
            row0 = b.mul(b.urem(u, em.i64(panels)), em.i64(panel), flags=["nsw"])
            rows = b.sub(em.i64(kernel.m), row0)
            rows = b.select(b.icmp_signed("<", rows, em.i64(panel)), rows, em.i64(panel))
            args = [em.i64(ta), em.i64(tb), rows, em.i64(kernel.n), em.i64(kernel.k),
                    ir.Constant(fty, 1.0), at(kernel.a, idx, row0), em.i64(lda),
                    at(kernel.b, idx, None), em.i64(ldb), ir.Constant(fty, 0.0),
                    at(kernel.out, idx, row0), em.i64(ldc)]  # fmt: skip
            b.call(gemm, args)
            if body is not None:  # the epilogue over the panel's rows, still in cache
                names = epi.var_names()
                body.vars.update(zip(names, idx))
                stop = b.add(row0, rows, flags=["nsw"])
                with em.loop(row0, stop, names[-2], unroll=False) as r:
                    body.vars[names[-2]] = r
                    _pointwise_row(em, body, names[-1], em.i64(0), em.i64(kernel.n))
    b.ret_void()
