"""The native driver of a compiled graph: one function that runs every kernel in order.

``void <name>(ptr io)`` takes one array of pointers: the graph's inputs, then its outputs,
then the arena base. For each kernel it fills the kernel's buffer table (inputs and outputs
from ``io``, intermediates at their arena offsets, `ember.passes.memory`) and runs the
kernel's units: on the calling thread when the work is small, else cut into tasks for the
thread pool (``ember_parallel_for``, `ember.codegen.llvm.pool`). Each task runs a contiguous
range of units; units are independent (`ember.codegen.llvm.emit.work_units`), so results do
not depend on how many tasks or threads there are.

Cost model: a kernel goes to the pool when its estimated work is at least ``PARALLEL_NS``
(about 30 µs of one core, against a dispatch of a few µs), cut into at most
``TASKS_PER_THREAD`` tasks per thread (for the larger of the pool's thread count and the cores
at compile time, so a later ``set_num_threads`` still spreads them; on one thread the pool runs
them inline) and never fewer units per task than one. Gemm
kernels go to the pool too, by row panels, each panel a single-threaded BLAS call (where the
BLAS can be told so per thread, `blas.has_local_threads`): OpenBLAS's own threads give
results that depend on their number. Otherwise they run on the calling thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from llvmlite import ir

from ...ir.graph import Value
from ...ir.kernel import GemmKernel, Kernel
from ...passes.memory import MemoryPlan
from .blas import LOCAL_THREADS_SYMBOL
from .emit import work_units

__all__ = ["KERNEL_FN", "driver_inputs", "emit_driver", "task_counts", "PARALLEL_NS"]

PARALLEL_NS = 30_000.0
TASKS_PER_THREAD = 4

_I64 = ir.IntType(64)
_PTR = ir.PointerType()
_TASK_FN = ir.FunctionType(ir.VoidType(), [_PTR, _I64])
KERNEL_FN = ir.FunctionType(ir.VoidType(), [_PTR, _I64, _I64])
_CTX = ir.LiteralStructType([_PTR, _I64, _I64])  # buffer table, units, tasks


def task_counts(
    kernels: Sequence[Kernel | GemmKernel], threads: int, gemm_tasks: bool = False
) -> list[tuple[int, int]]:
    """``(units, tasks)`` of each kernel under the cost model of the module docstring."""
    out = []
    for k in kernels:
        units, cost = work_units(k)
        if (
            isinstance(k, GemmKernel)
            and not gemm_tasks
            or threads <= 1
            or units <= 1
            or units * cost < PARALLEL_NS
        ):
            out.append((units, 1))
        else:
            out.append((units, max(1, min(units, threads * TASKS_PER_THREAD))))
    return out


def _task_fn(module: ir.Module, kernel_fn: ir.Function, one_blas_thread: bool) -> ir.Function:
    fn = ir.Function(module, _TASK_FN, name=f"{kernel_fn.name}_task")
    fn.linkage = "internal"
    ctx, task = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    zero = ir.Constant(ir.IntType(32), 0)
    table = b.load(b.gep(ctx, [zero, ir.Constant(ir.IntType(32), 0)], source_etype=_CTX), typ=_PTR)
    units = b.load(b.gep(ctx, [zero, ir.Constant(ir.IntType(32), 1)], source_etype=_CTX), typ=_I64)
    tasks = b.load(b.gep(ctx, [zero, ir.Constant(ir.IntType(32), 2)], source_etype=_CTX), typ=_I64)
    lo = b.udiv(b.mul(task, units), tasks)
    hi = b.udiv(b.mul(b.add(task, ir.Constant(_I64, 1)), units), tasks)
    if one_blas_thread:  # each panel on one thread: the product never depends on the split
        set_local = module.globals.get(LOCAL_THREADS_SYMBOL) or ir.Function(
            module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]), LOCAL_THREADS_SYMBOL
        )
        before = b.call(set_local, [ir.Constant(ir.IntType(32), 1)])
        b.call(kernel_fn, [table, lo, hi])
        b.call(set_local, [before])
    else:
        b.call(kernel_fn, [table, lo, hi])
    b.ret_void()
    return fn


def driver_inputs(
    kernels: Sequence[Kernel | GemmKernel],
    bindings: Sequence[Sequence[Value]],
    memory: MemoryPlan,
    n_inputs: int,
    n_outputs: int,
    threads: int,
    functions: Sequence[str],
    gemm_tasks: bool = False,
) -> str:
    """Everything `emit_driver` makes the driver from, as text (for `target.map_key`): per
    kernel its function, kind, units and tasks, and where each buffer of its table lives."""
    lines = [f"{n_inputs} {n_outputs} {threads} {gemm_tasks}"]
    plan = zip(kernels, bindings, task_counts(kernels, threads, gemm_tasks), functions)
    for kernel, values, (units, tasks), fn_name in plan:
        slots = " ".join(f"{memory.slots[v].kind}:{memory.slots[v].index}" for v in values)
        lines.append(f"{fn_name} {type(kernel).__name__} {units} {tasks} | {slots}")
    return "\n".join(lines)


def emit_driver(
    module: ir.Module,
    name: str,
    kernels: Sequence[Kernel | GemmKernel],
    bindings: Sequence[Sequence[Value]],
    memory: MemoryPlan,
    n_inputs: int,
    n_outputs: int,
    threads: int,
    functions: Sequence[str] | None = None,
    gemm_tasks: bool = False,
) -> ir.Function:
    """Add ``void name(ptr io)`` to ``module``, which already defines every kernel (or, with
    ``functions``, the function each kernel runs as: equal kernels share one)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR]), name=name)
    (io,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    pool = None
    arena_slot = ir.Constant(_I64, n_inputs + n_outputs)
    arena = b.load(b.gep(io, [arena_slot], source_etype=_PTR), typ=_PTR)
    functions = functions or [k.name for k in kernels]
    task_fns: dict[str, ir.Function] = {}
    plan = zip(kernels, bindings, task_counts(kernels, threads, gemm_tasks), functions)
    for kernel, values, (units, tasks), fn_name in plan:
        kernel_fn = module.get_global(fn_name)
        table_t = ir.ArrayType(_PTR, max(len(values), 1))
        table = b.alloca(table_t)
        table.type = _PTR  # (llvmlite types allocas as typed pointers)
        for j, v in enumerate(values):
            slot = memory.slots[v]
            if slot.kind == "arena":
                ptr = b.gep(arena, [ir.Constant(_I64, slot.index)], source_etype=ir.IntType(8))
            else:
                pos = slot.index if slot.kind == "input" else n_inputs + slot.index
                ptr = b.load(b.gep(io, [ir.Constant(_I64, pos)], source_etype=_PTR), typ=_PTR)
            slot_ptr = b.gep(
                table, [ir.Constant(_I64, 0), ir.Constant(_I64, j)], source_etype=table_t
            )
            b.store(ptr, slot_ptr)
        if tasks <= 1:
            b.call(kernel_fn, [table, ir.Constant(_I64, 0), ir.Constant(_I64, units)])
            continue
        if pool is None:
            pool = module.globals.get("ember_parallel_for") or ir.Function(
                module, ir.FunctionType(ir.VoidType(), [_PTR, _PTR, _I64]), "ember_parallel_for"
            )
        ctx = b.alloca(_CTX)
        ctx.type = _PTR
        zero = ir.Constant(ir.IntType(32), 0)
        fields = (table, ir.Constant(_I64, units), ir.Constant(_I64, tasks))
        for i, value in enumerate(fields):
            b.store(value, b.gep(ctx, [zero, ir.Constant(ir.IntType(32), i)], source_etype=_CTX))
        if fn_name not in task_fns:
            gemm = isinstance(kernel, GemmKernel)
            existing = module.globals.get(f"{fn_name}_task")
            task_fns[fn_name] = existing or _task_fn(module, kernel_fn, gemm)
        b.call(pool, [task_fns[fn_name], ctx, ir.Constant(_I64, tasks)])
    b.ret_void()
    return fn
