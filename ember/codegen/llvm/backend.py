"""The LLVM backend: a graph in, one native program out (DESIGN.md sections 4, 6 and 7).

`LLVMBackend.compile(graph)` runs the pipeline

    simplify -> prepare (outputs, matmul operands, long reductions) -> fuse -> lower to
    kernel IR -> plan memory -> LLVM IR (kernels + driver) -> optimize -> object code -> load

and returns an `LLVMCompiledGraph`: calling it makes fresh output arrays and calls the graph's
native entry once (`ember.codegen.llvm.entry`, a METH_FASTCALL builtin compiled into the same
module as the driver): it checks every array's dtype, shape and layout in native code, fills
the pointer table and runs the driver (`ember.codegen.llvm.driver`) without the GIL, which
runs every kernel over the arena the graph keeps across calls. An input the entry refuses
(a strided view, say) is copied to a contiguous array and the call made again.
``check_range`` outputs (index checks a trace keeps alive) are checked after the run with
the eager kernel's own test, so a compiled program raises eager's error.

What a compile made stays inspectable on the compiled graph: ``kernels`` (kernel IR),
``fusion`` (the decisions), ``memory`` (the arena plan, ``peak_bytes``), ``llvm_ir`` and
``optimized_ir`` (of the driver; each kernel is its own module, compiled once per process:
`ember.codegen.llvm.kernels`), ``kernel_count`` and ``stage_seconds``. `EMBER_LOGS=kernels`
prints the kernel IR and ``llvm`` the optimized LLVM IR of each compile.
"""

from __future__ import annotations

import ctypes
import functools
import time

import numpy as np
from llvmlite import ir

from ...ir.graph import Graph, Value
from ...ir.kernel import GemmKernel
from ...ir.ops import PRIMITIVES
from ...passes import logs
from ...passes.lower import LoweredProgram
from ...passes.manager import PassManager, verify_enabled
from ...passes.memory import ALIGN, MemoryPlan, plan_memory
from ...passes.pipeline import KERNEL_PIPELINE
from ..backend import BaseBackend, CompiledGraph
from .blas import ensure_blas, has_local_threads
from .blas import pending_module as blas_module
from .driver import KERNEL_FN, driver_inputs, emit_driver
from .entry import ArgSpec, entry_module, make_entry
from .kernels import compile_kernels, kernel_key, key_symbol, load_kernels
from .kernels import pending_module as kernel_module
from .numpy_abi import abi
from .plan_cache import Plan, load_plan, plan_key, store_plan
from .pool import core_count, ensure_pool, pool_threads
from .pool import pending_module as pool_module
from .target import is_mapped, jit, map_key, prefetch

__all__ = ["LLVMBackend", "LLVMCompiledGraph"]

_DRIVER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

ENTRY_LEVEL = 0
"""The LLVM optimization level of a graph's entry and driver: straight-line code (argument
checks, then one call per kernel) that level 0 compiles in 9 ms against 55-80 ms at levels 1
to 3, with no difference in a call's time that a run of 300,000 calls could show (``x + 1`` on
16 floats, a compiled 8-layer ``Linear(4, 4)`` stack)."""


class LLVMCompiledGraph(CompiledGraph):
    """One graph compiled to native code; see the module docstring."""

    def __init__(self, graph: Graph, backend_name: str = "llvm") -> None:
        super().__init__(graph, backend_name)
        self.stage_seconds: dict[str, float] = {}
        self._clock = time.perf_counter()
        checks = [
            (i, dict(v.producer.attrs))
            for i, v in enumerate(graph.outputs)
            if v.producer is not None and v.producer.op == "check_range"
        ]
        # a check of a graph input (class targets, indices) reads the caller's array: the
        # program neither computes nor copies it
        inputs = {v: i for i, v in enumerate(graph.inputs)}
        self._through = {
            i: inputs[v.producer.inputs[0]]
            for i, v in enumerate(graph.outputs)
            if v.producer is not None
            and v.producer.op == "check_range"
            and v.producer.inputs[0] in inputs
        }
        self._kept = [i for i in range(len(graph.outputs)) if i not in self._through]
        computed = graph
        if self._through:
            computed = Graph(graph.name)
            computed.inputs, computed.nodes = graph.inputs, graph.nodes
            computed.outputs = [graph.outputs[i] for i in self._kept]
        self._computed, self._lowered_program = computed, None
        # a check of a graph input runs before the program (nothing is written if it fails);
        # a check of a computed value runs after it, so then nothing may be written in place
        self._pre_checks = [(self._through[i], a) for i, a in checks if i in self._through]
        self._checks = [(i, a) for i, a in checks if i not in self._through]
        self._outputs = [(v.type.shape, v.type.dtype.np) for v in computed.outputs]
        # Tasks for as many threads as may run them (a later set_num_threads with more
        # threads than at compile time still spreads the work): the pool runs any number of
        # tasks on however many threads it has, inline when it has one.
        self._threads = max(pool_threads(), core_count())
        self._driver_symbol, self._llvm_ir = f"ember_graph_{graph.name}", None
        specs = [ArgSpec(v.type.dtype.np, v.type.shape) for v in computed.inputs]
        specs += [ArgSpec(v.type.dtype.np, v.type.shape, True) for v in computed.outputs]
        self._specs = tuple(specs)
        key = plan_key(computed, self._threads, core_count(), has_local_threads())
        # (a run that asks to see or verify the passes runs them)
        watched = verify_enabled() or logs.enabled("passes") or logs.enabled("fusion")
        plan = None if watched else load_plan(key)
        self.plan_from_cache = plan is not None and self._load(plan)
        if not self.plan_from_cache:
            plan = self._compile()
            store_plan(key, plan)
        self.fusion = plan.decisions
        self.kernel_count = len(plan.kernels)
        self.donatable = {} if self._checks else {j: set(i) for j, i in plan.donatable.items()}
        # (each text is made only when its log is on: a warm compile should not print them)
        if logs.enabled("kernels"):
            logs.log("kernels", f"kernels of @{graph.name}:\n{self._lowered}")
        if logs.enabled("schedule"):
            logs.log("schedule", f"schedule of @{graph.name}: {self.schedule_text()}")
        if logs.enabled("llvm"):
            logs.log("llvm", f"optimized LLVM IR of @{graph.name}:\n{self.optimized_ir}")

    def _lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stage_seconds[name] = now - self._clock
        self._clock = now

    @property
    def _lowered(self) -> LoweredProgram:
        """The graph through the passes: run at compile time, or when first asked for after a
        warm start (`plan_cache`)."""
        if self._lowered_program is None:
            manager = PassManager(KERNEL_PIPELINE)
            self._lowered_program = manager.run(self._computed)
            self._memory_plan = plan_memory(self._lowered_program.graph, self._lowered_program)
            self._pass_seconds = manager.timings
        return self._lowered_program

    @property
    def kernels(self) -> list:
        """The kernel IR of each kernel, in run order."""
        return self._lowered.kernels

    @property
    def memory(self) -> MemoryPlan:
        """The arena plan of the graph's intermediates."""
        self._lowered  # noqa: B018 - (planned with the lowering)
        return self._memory_plan

    @functools.cached_property
    def _kernel_keys(self) -> list[str]:
        """`kernels.kernel_key` of each kernel, in run order (hashed once per graph)."""
        return [kernel_key(k) for k in self._lowered.kernels]

    @property
    def _driver_args(self) -> tuple:
        lowered, memory = self._lowered, self.memory
        n_in, n_out = len(lowered.graph.inputs), len(lowered.graph.outputs)
        functions = [key_symbol(key) for key in self._kernel_keys]
        return lowered, memory, n_in, n_out, self._threads, functions, self._gemm_tasks

    def _compile(self) -> Plan:
        """Run the passes, plan memory and compile (or load) every module: the full path."""
        lowered = self._lowered
        self.stage_seconds.update(self._pass_seconds)
        self._clock = time.perf_counter()
        prepared, memory = lowered.graph, self._memory_plan
        if [v.type for v in prepared.inputs + prepared.outputs] != [
            v.type for v in self._computed.inputs + self._computed.outputs
        ]:
            raise AssertionError(f"the passes changed the signature of @{self.graph.name}")
        self._lap("memory")
        gemm = any(isinstance(k, GemmKernel) for k in lowered.kernels)
        self._gemm_tasks = gemm and has_local_threads()
        # the graph's native door: checks the arrays, fills the pointer table, runs the
        # driver without the GIL. The disk cache maps what its text is made from to its
        # object code, so a warm process makes no text.
        _, _, n_in, n_out, threads, functions, _ = self._driver_args
        driven = driver_inputs(
            lowered.kernels, lowered.bindings, memory, n_in, n_out, threads, functions,
            self._gemm_tasks,
        )  # fmt: skip
        entry_key = map_key("entry", self.graph.name, self._arguments(), driven, abi())
        entry_pending = []
        if not is_mapped(entry_key):
            options = {"target_ir": self._driver_text(), "release_gil": True}
            symbol, entry_text = entry_module(*self._entry_args(), **options)
            entry_pending.append((entry_text, symbol, ENTRY_LEVEL))
        self._lap("llvm_ir")
        # every module this compile needs, to the compile worker (the other core) first
        runtime = [pool_module(), blas_module() if gemm else None]
        pending = [m for m in runtime if m is not None]
        pending += [m for k in lowered.kernels if (m := kernel_module(k)) is not None]
        prefetch([*dict.fromkeys(pending), *entry_pending])
        if gemm:
            ensure_blas()
        ensure_pool()
        self._finish(compile_kernels(lowered.kernels), memory.arena_bytes, entry_key)
        donatable = {} if self._checks else _donatable(lowered, prepared)
        return Plan(
            kernels=self._kernel_keys,
            entry_key=entry_key,
            arena_bytes=memory.arena_bytes,
            donatable={j: sorted(i) for j, i in donatable.items()},
            decisions=list(lowered.decisions),
            gemm=gemm,
        )

    def _load(self, plan: Plan) -> bool:
        """Load what ``plan`` names from this process and the disk cache, without the passes;
        False (nothing changed) when something is missing."""
        if not is_mapped(plan.entry_key):
            return False
        self._gemm_tasks = plan.gemm and has_local_threads()
        if plan.gemm:
            ensure_blas()
        ensure_pool()
        origins = load_kernels(plan.kernels)
        if origins is None:
            return False
        self._finish(origins, plan.arena_bytes, plan.entry_key)
        return True

    def _arguments(self) -> list:
        return [(a.dtype.name, a.dtype.str, a.shape, a.writable) for a in self._specs]

    def _entry_args(self) -> tuple:
        return self.graph.name, self._specs, self._driver_symbol, 1

    def _finish(self, origins: list[tuple[str, str]], arena_bytes: int, entry_key: str) -> None:
        """With the kernels loaded: the arena and the entry (loaded, or compiled when the disk
        cache lacks it, which runs the passes if they have not run)."""
        counts = {"compiled": 0, "loaded": 0, "reused": 0}
        for _, origin in origins:
            counts[origin] += 1
        self._lap("kernels")
        self.kernels_compiled = counts["compiled"]
        self.kernel_origins = counts
        self._arena = np.empty(arena_bytes + ALIGN, np.uint8)
        base = self._arena.ctypes.data
        self._arena_base = base + (-base % ALIGN)
        self._entry = make_entry(
            *self._entry_args()[:3], [self._arena_base], target_ir=self._driver_text,
            release_gil=True, speed_level=ENTRY_LEVEL, cache=True, map_key=entry_key,
        )  # fmt: skip
        self._native = self._entry.native
        self.driver_from_cache = self._entry.module.from_cache
        self._lap("llvm")

    def _kernels_module(self, name: str) -> ir.Module:
        """A new module declaring the function of each of the graph's kernels."""
        module = ir.Module(name)
        for symbol in dict.fromkeys(self._driver_args[5]):
            ir.Function(module, KERNEL_FN, symbol)
        return module

    def _driver_text(self) -> str:
        """The LLVM IR of the graph's driver (made when first asked for)."""
        if self._llvm_ir is None:
            lowered, memory, n_in, n_out, threads, functions, gemm_tasks = self._driver_args
            module = self._kernels_module(f"ember_{self.graph.name}")
            emit_driver(
                module, self._driver_symbol, lowered.kernels, lowered.bindings, memory, n_in,
                n_out, threads, functions, gemm_tasks,
            )  # fmt: skip
            self._llvm_ir = str(module)
        return self._llvm_ir

    @property
    def llvm_ir(self) -> str:
        """The LLVM IR of the graph's driver (the kernels are modules of their own)."""
        return self._driver_text()

    @property
    def optimized_ir(self) -> str:
        """The optimized LLVM IR of the graph's entry and driver."""
        return self._entry.module.optimized_ir

    def profile(self, inputs: list[np.ndarray], repeat: int = 10) -> list[tuple[str, float]]:
        """Seconds per call of each kernel (the best of ``repeat`` runs) with its name, ops
        and file:line, over ``inputs``: the run is made kernel by kernel."""
        lowered, memory, n_in, n_out, threads, functions, gemm_tasks = self._driver_args
        module = self._kernels_module(f"ember_profile_{self.graph.name}")
        names = []
        for i, k in enumerate(lowered.kernels):
            name = f"ember_step_{i}"
            emit_driver(
                module, name, [k], [lowered.bindings[i]], memory, n_in, n_out, threads,
                [functions[i]], gemm_tasks,
            )  # fmt: skip
            names.append(name)
        steps = jit(str(module), name="profile", speed_level=1)
        arrays = [np.ascontiguousarray(x) for x in inputs]
        arrays += [np.empty(shape, dtype) for shape, dtype in self._outputs]
        io = (ctypes.c_void_p * (len(arrays) + 1))(
            *(x.ctypes.data for x in arrays), self._arena_base
        )
        self.run(inputs)  # (a whole run first: the arena holds what each step reads)
        out = []
        for k, name in zip(lowered.kernels, names):
            fn = _DRIVER(steps.address(name))
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                fn(io)
                best = min(best, time.perf_counter() - start)
            where = ", ".join(k.locs[:2])
            out.append((f"{k.name} {'+'.join(k.nodes)} ({where})", best))
        return out

    def compile_report(self) -> str:
        """Where this graph's compile time went, in one line (``EMBER_LOGS=perf_hints``)."""
        o, st = self.kernel_origins, self.stage_seconds
        passes = sum(v for k, v in st.items() if k not in ("memory", "kernels", "llvm_ir", "llvm"))
        planned = (
            "passes skipped (plan from the disk cache)"
            if self.plan_from_cache
            else f"passes {passes:.3f} s"
        )
        driver = "loaded" if self.driver_from_cache else "compiled"
        return (
            f"{self.kernel_count} kernels ({o['compiled']} compiled by LLVM, {o['loaded']} "
            f"loaded from the disk cache, {o['reused']} reused in this process): {planned}, "
            f"kernels {st['kernels']:.3f} s, entry+driver {driver} "
            f"{st.get('llvm_ir', 0.0) + st['llvm']:.3f} s"
        )

    def schedule_text(self) -> str:
        names = ", ".join(k.name for k in self.kernels)
        return f"{self.kernel_count} kernels ({names}); {self.memory.describe()}"

    accepts_out = True

    def run(self, inputs: list[np.ndarray], out: dict | None = None) -> list[np.ndarray]:
        """Run the program. ``out`` may map output positions to arrays to write them into
        (a parameter's own storage, an existing ``.grad``): each is used when it has the
        output's type, is contiguous and writable, and either overlaps no input or is an input
        the program may overwrite in place (``donatable``); the caller sees which by identity.
        """
        check = PRIMITIVES["check_range"].impl
        for i, attrs in self._pre_checks:
            check(inputs[i], **attrs)
        outs = [np.empty(shape, dtype) for shape, dtype in self._outputs] if not out else []
        if out:
            for j, (shape, dtype) in enumerate(self._outputs):
                given = out.get(self._kept[j])
                if given is not None and self._may_write(j, given, shape, dtype, inputs):
                    outs.append(given)
                else:
                    outs.append(np.empty(shape, dtype))
        try:
            self._native(*inputs, *outs)
        except (TypeError, ValueError):
            # a view the entry refuses (strided, misaligned, an ndarray subclass): run on
            # plain contiguous copies; a second refusal is a real mismatch and is raised
            self._native(*(_plain(x) for x in inputs), *outs)
        if self._through:
            computed = iter(outs)
            outs = [
                inputs[self._through[i]] if i in self._through else next(computed)
                for i in range(len(self._through) + len(self._kept))
            ]
        for i, attrs in self._checks:
            check(outs[i], **attrs)
        return outs

    def fast_runner(self):
        """The native entry with fresh outputs (see `CompiledGraph.fast_runner`); None for a
        graph with index checks or outputs passed through from inputs."""
        if self._checks or self._pre_checks or self._through:
            return None
        native, metas, empty = self._native, self._outputs, np.empty

        def run(arrays: list[np.ndarray]) -> list[np.ndarray] | None:
            outs = [empty(shape, dtype) for shape, dtype in metas]
            try:
                native(*arrays, *outs)
            except (TypeError, ValueError):
                return None
            return outs

        return run

    def _may_write(self, j: int, given: np.ndarray, shape, dtype, inputs) -> bool:
        if type(given) is not np.ndarray or given.shape != shape or given.dtype != dtype:
            return False  # (the native entry takes plain arrays only)
        flags = given.flags
        if not (flags.c_contiguous and flags.writeable and flags.aligned):
            return False
        allowed = self.donatable.get(j, ())
        for i, x in enumerate(inputs):
            if np.may_share_memory(given, x) and not (i in allowed and given is x):
                return False
        return True


def _plain(x: np.ndarray) -> np.ndarray:
    """``x`` as an aligned, C-contiguous, exact ``numpy.ndarray`` (a copy unless it is one)."""
    if type(x) is np.ndarray and x.flags.c_contiguous and x.flags.aligned:
        return x
    return np.array(x, order="C", subok=False)


def _donatable(lowered, graph: Graph) -> dict[int, set[int]]:
    """For each output, the inputs whose storage it may be written into during the run: no
    kernel after its writer reads the input, and the writer reads it only at the element it
    writes, no later than it writes (a parameter update ``p - lr * g``). A GEMM's epilogue
    may write over an input that is not an operand of its matmul (the update ``w - lr * dw``
    fused after the weight gradient's GEMM): each panel's product reads only the operands."""
    kernels, bindings = lowered.kernels, lowered.bindings
    inputs = {v: i for i, v in enumerate(graph.inputs)}
    out: dict[int, set[int]] = {}
    for j, value in enumerate(graph.outputs):
        writer = next((k for k, vs in enumerate(bindings) if value in vs), None)
        if writer is None:
            continue
        kernel, binds = kernels[writer], bindings[writer]
        operands: tuple[Value, ...] = ()
        if isinstance(kernel, GemmKernel):
            if kernel.epilogue is None:
                continue
            operands = (binds[kernel.a], binds[kernel.b], binds[kernel.out])
            kernel = kernel.epilogue
        store = next(
            ((s, op) for s, st in enumerate(kernel.stages) for op in st.ops
             if op.op == "store" and binds[op.attrs["buffer"]] is value),
            None,
        )  # fmt: skip
        if store is None:
            continue
        s_store, op_store = store
        for v, i in inputs.items():
            if v.type != value.type or any(v in vs for vs in bindings[writer + 1 :]):
                continue
            if any(v is x for x in operands):
                continue
            ok = True
            for s, st in enumerate(kernel.stages):
                for op in st.ops:
                    if op.op == "load" and binds[op.attrs["buffer"]] is v:
                        same = op.attrs["index"] == op_store.attrs["index"]
                        ok = ok and same and s <= s_store
            if ok:
                out.setdefault(j, set()).add(i)
    return out


class LLVMBackend(BaseBackend):
    """Native CPU code through llvmlite; see the module docstring."""

    name = "llvm"
    devices = ("cpu",)

    def build(self, graph: Graph) -> LLVMCompiledGraph:
        return LLVMCompiledGraph(graph, self.name)
