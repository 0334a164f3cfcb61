"""The host target and the in-process JIT: LLVM IR text in, native function addresses out.

Everything the LLVM backend compiles goes through `jit(module_text)`:

- the target is the host CPU (``get_host_cpu_name`` + its features) with 512-bit vectors
  allowed (``-prefer-256-bit``: without it LLVM emits only ymm registers on AVX-512 machines);
- the module is parsed, verified and optimized by the new pass manager at O3 with loop and
  SLP vectorization, then emitted as object code and loaded into an MCJIT engine that lives as
  long as the returned `JitModule` (each engine owns, and deletes, its own target machine);
- symbols the runtime provides (the thread pool, BLAS) are made visible to every module with
  `add_symbol` before a module that uses them is compiled.

llvmlite serializes every LLVM call behind one lock, so there is nothing to gain from compiling
in several Python threads; ``_LOCK`` makes the sequence explicit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import llvmlite.binding as llvm

__all__ = ["JitModule", "add_symbol", "host_target", "jit", "optimize", "triple", "data_layout"]

_LOCK = threading.RLock()


@dataclass
class _Target:
    machine: llvm.TargetMachine
    cpu: str
    features: str


_target: _Target | None = None


def host_target() -> _Target:
    """The host's target machine, made once per process."""
    global _target
    with _LOCK:
        if _target is None:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            cpu = llvm.get_host_cpu_name()
            features = llvm.get_host_cpu_features().flatten()
            if "+avx512f" in features:
                features += ",-prefer-256-bit"
            _target = _Target(_create_machine(cpu, features), cpu, features)
        return _target


def _create_machine(cpu: str, features: str) -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu, features=features, opt=3, reloc="pic", codemodel="jitdefault", jit=True
    )


def triple() -> str:
    return host_target().machine.triple


def data_layout() -> str:
    return str(host_target().machine.target_data)


def add_symbol(name: str, address: int) -> None:
    """Make ``name`` resolve to ``address`` in every module compiled afterwards."""
    with _LOCK:
        llvm.add_symbol(name, address)


def optimize(module: llvm.ModuleRef, speed_level: int = 3) -> None:
    """Run the O``speed_level`` pipeline with loop and SLP vectorization on ``module``."""
    target = host_target()
    pto = llvm.create_pipeline_tuning_options(speed_level=speed_level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(target.machine, pto)
    pb.getModulePassManager().run(module, pb)


@dataclass
class JitModule:
    """A compiled, loaded module: ``address(name)`` of each function it defines.

    ``object_code`` is the emitted object file (what a disk cache stores); ``optimized_ir``
    the module's text after optimization. The engine is kept alive with this object: drop it
    and the code is freed.
    """

    engine: llvm.ExecutionEngine
    object_code: bytes
    optimized_ir: str
    _addresses: dict[str, int] = field(default_factory=dict)

    def address(self, name: str) -> int:
        addr = self._addresses.get(name)
        if addr is None:
            with _LOCK:
                addr = self.engine.get_function_address(name)
            if not addr:
                raise KeyError(f"the module defines no function {name!r}")
            self._addresses[name] = addr
        return addr


def jit(module_text: str, *, speed_level: int = 3, name: str = "ember") -> JitModule:
    """Parse, verify, optimize, emit and load ``module_text`` (textual LLVM IR)."""
    target = host_target()
    with _LOCK:
        module = llvm.parse_assembly(module_text)
        module.name = name
        module.triple = target.machine.triple
        module.data_layout = str(target.machine.target_data)
        module.verify()
        optimize(module, speed_level)
        optimized = str(module)
        obj = target.machine.emit_object(module)
        # The engine takes ownership of the machine it is given and deletes it with itself,
        # so each engine gets its own; the shared one must outlive every module.
        engine_machine = _create_machine(target.cpu, target.features)
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), engine_machine)
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        return JitModule(engine, obj, optimized)
