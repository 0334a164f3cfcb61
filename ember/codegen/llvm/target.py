"""The host target and the in-process JIT: LLVM IR text in, native function addresses out.

Everything the LLVM backend compiles goes through `jit(module_text)`:

- the target is the host CPU (``get_host_cpu_name`` + its features) with 512-bit vectors
  allowed (``-prefer-256-bit``: without it LLVM emits only ymm registers on AVX-512 machines);
- the module is parsed, verified and optimized by the new pass manager at O3 with loop and
  SLP vectorization, then emitted as object code and loaded into an MCJIT engine that lives as
  long as the returned `JitModule`;
- symbols the runtime provides (the thread pool, BLAS) are made visible to every module with
  `add_symbol` before a module that uses them is compiled.

An MCJIT engine takes ownership of the target machine it is created with and frees it with
the engine, so each engine gets a machine of its own (about 0.15 ms); the shared host machine
only optimizes and emits.

llvmlite serializes every LLVM call behind one lock, so there is nothing to gain from compiling
in several Python threads; ``_LOCK`` makes the sequence explicit.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from dataclasses import dataclass, field

import llvmlite
import llvmlite.binding as llvm

from .. import disk_cache

__all__ = [
    "JitModule", "add_symbol", "host_target", "jit", "object_key", "optimize", "triple",
    "data_layout",
]  # fmt: skip

_LOCK = threading.RLock()
# what `optimize` runs; part of every object's cache key (change it when the pipeline changes)
_PIPELINE = "new-pm O<level> loop+slp vectorization"


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
    from_cache: bool = False  # loaded from the disk cache (LLVM did not run)
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


def object_key(module_text: str, speed_level: int, name: str) -> str:
    """The disk cache key of a module's object code: sha256 of its text, name and optimization
    level, the pipeline, the llvmlite and LLVM versions and the target (triple, CPU,
    features)."""
    target = host_target()
    h = hashlib.sha256()
    for item in (
        _PIPELINE, speed_level, name, llvmlite.__version__, llvm.llvm_version_info,
        target.machine.triple, target.cpu, target.features,
    ):  # fmt: skip
        h.update(f"{item}\0".encode())
    h.update(module_text.encode())
    return h.hexdigest()


def jit(
    module_text: str,
    *,
    speed_level: int = 3,
    name: str = "ember",
    cache: bool = False,
    symbols: dict[str, int] | None = None,
) -> JitModule:
    """Parse, verify, optimize, emit and load ``module_text`` (textual LLVM IR).

    With ``cache`` the object code is looked up in the disk cache first (`object_key`) and
    stored there after a compile: only for text that holds no address of this process.
    ``symbols`` (name -> address) are made visible just before the object is loaded, so each
    load of the same object can bind them to addresses of its own.
    """
    key = object_key(module_text, speed_level, name) if cache else None
    if key is not None:
        parts = disk_cache.get("llvm", key)
        if parts is not None and {"object", "optimized_ir"} <= parts.keys():
            optimized = zlib.decompress(parts["optimized_ir"]).decode()
            return _load(parts["object"], optimized, symbols, from_cache=True)
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
    if key is not None:
        text = zlib.compress(optimized.encode())
        disk_cache.put("llvm", key, {"object": obj, "optimized_ir": text})
    return _load(obj, optimized, symbols)


def _load(
    obj: bytes, optimized: str, symbols: dict[str, int] | None, from_cache: bool = False
) -> JitModule:
    target = host_target()
    with _LOCK:
        for symbol, address in (symbols or {}).items():
            llvm.add_symbol(symbol, address)
        # An MCJIT engine owns (and frees) the target machine it is given: each engine gets
        # its own, so the shared one outlives every JitModule.
        engine_machine = _create_machine(target.cpu, target.features)
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), engine_machine)
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        return JitModule(engine, obj, optimized, from_cache)
