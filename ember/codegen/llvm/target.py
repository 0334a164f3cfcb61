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
in several Python threads; ``_LOCK`` makes the sequence explicit. The other core compiles in a
worker process instead: `prefetch` queues modules a compile is about to need, and `jit` takes
the worker's object code when it has it (`ember.codegen.llvm.prefetch`). The pipeline itself
is `llvm_compile`, shared with that worker.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm

from ... import ir as ir_package
from .. import disk_cache
from . import llvm_compile
from .prefetch import Prefetcher

__all__ = [
    "JitModule", "ObjectCode", "SOURCE_VERSION", "add_symbol", "cached_object", "compile_object",
    "host_target", "is_mapped", "jit", "jit_mapped", "load", "map_key", "mapped_object",
    "object_key", "optimize", "prefetch", "remember",
    "triple", "data_layout",
]  # fmt: skip

_LOCK = threading.RLock()


@dataclass
class _Target:
    machines: llvm_compile.Machines
    cpu: str
    features: str
    prefetcher: Prefetcher


_target: _Target | None = None
# the compile pipeline's own source (machine options, passes), part of every object key
_PIPELINE_SOURCE = hashlib.sha256(Path(llvm_compile.__file__).read_bytes()).hexdigest()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_target() -> _Target:
    """The host's target machine, made once per process."""
    global _target
    with _LOCK:
        if _target is None:
            llvm_compile.initialize()
            cpu = llvm.get_host_cpu_name()
            features = llvm.get_host_cpu_features().flatten()
            if "+avx512f" in features:
                features += ",-prefer-256-bit"
            workers = os.environ.get("EMBER_COMPILE_WORKER", "1").strip() not in ("0", "off")
            prefetcher = Prefetcher(cpu, features, enabled=workers and _cores() > 1)
            machines = llvm_compile.create_machines(cpu, features)
            _target = _Target(machines, cpu, features, prefetcher)
        return _target


def _after_fork_in_child() -> None:
    if _target is not None:
        _target.prefetcher.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def triple() -> str:
    return host_target().machines.optimizing.triple


def data_layout() -> str:
    return str(host_target().machines.optimizing.target_data)


def add_symbol(name: str, address: int) -> None:
    """Make ``name`` resolve to ``address`` in every module compiled afterwards."""
    with _LOCK:
        llvm.add_symbol(name, address)


def optimize(module: llvm.ModuleRef, speed_level: int = 3) -> None:
    """Run the O``speed_level`` pipeline with loop and SLP vectorization on ``module``."""
    llvm_compile.optimize(module, host_target().machines.optimizing, speed_level)


@dataclass
class JitModule:
    """A compiled, loaded module: ``address(name)`` of each function it defines.

    ``object_code`` is the emitted object file (what a disk cache stores); ``optimized_ir``
    the module's text after optimization (from the disk cache it stays compressed until it is
    read). The engine is kept alive with this object: drop it and the code is freed.
    """

    engine: llvm.ExecutionEngine
    object_code: bytes
    _optimized: str | bytes  # the text, or its zlib compression
    from_cache: bool = False  # loaded from the disk cache (LLVM did not run)
    _addresses: dict[str, int] = field(default_factory=dict)

    @property
    def optimized_ir(self) -> str:
        if isinstance(self._optimized, bytes):
            self._optimized = zlib.decompress(self._optimized).decode()
        return self._optimized

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
        _PIPELINE_SOURCE, speed_level, name, llvmlite.__version__, llvm.llvm_version_info,
        target.machines.optimizing.triple, target.cpu, target.features,
    ):  # fmt: skip
        h.update(f"{item}\0".encode())
    h.update(module_text.encode())
    return h.hexdigest()


def prefetch(modules: list[tuple[str, str, int]]) -> None:
    """Start compiling ``(text, name, speed_level)`` modules on the compile worker (modules a
    compile will ask `jit` for with ``cache=True`` shortly); those the disk cache holds are
    skipped. Does nothing without a worker."""
    prefetcher = host_target().prefetcher
    if not prefetcher.enabled:
        return
    todo = []
    for text, name, level in modules:
        key = object_key(text, level, name)
        if not disk_cache.contains("llvm", key):
            todo.append((key, name, text, level))
    if len(todo) > 1:  # (one module: this process compiles it as soon as the worker would)
        prefetcher.submit(todo)


@dataclass(frozen=True)
class ObjectCode:
    """A compiled module not loaded yet: its object code and optimized IR (the text, or its
    zlib compression), and whether it came from the disk cache."""

    object_code: bytes
    optimized: str | bytes
    from_cache: bool


def cached_object(key: str) -> ObjectCode | None:
    """The object code the disk cache holds under ``key`` (`object_key`), or None."""
    parts = disk_cache.get("llvm", key)
    if parts is None or not {"object", "optimized_ir"} <= parts.keys():
        return None
    return ObjectCode(parts["object"], parts["optimized_ir"], True)


def compile_object(
    module_text: str, *, speed_level: int = 3, name: str = "ember", cache: bool = False
) -> ObjectCode:
    """``module_text`` compiled to object code, not loaded (see `jit` for ``cache``)."""
    target = host_target()
    key = object_key(module_text, speed_level, name) if cache else None
    if key is not None:
        hit = cached_object(key)
        if hit is not None:
            target.prefetcher.discard(key)  # (another process stored it meanwhile)
            return hit
        done = target.prefetcher.take(key)
    else:
        done = None
    if done is not None:
        obj, optimized = done
    else:
        with _LOCK:
            obj, optimized = llvm_compile.compile_text(
                module_text, name, target.machines, speed_level
            )
    if key is not None:
        text = zlib.compress(optimized.encode())
        disk_cache.put("llvm", key, {"object": obj, "optimized_ir": text})
    return ObjectCode(obj, optimized, False)


def _source_hash() -> str:
    """sha256 of the source of this package (the code generator) and of `ember.ir`, as
    imported: read once, when this module is imported."""
    h = hashlib.sha256()
    for package in (Path(__file__).parent, Path(ir_package.__file__).parent):
        for path in sorted(package.glob("*.py")):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


SOURCE_VERSION = _source_hash()


def map_key(*inputs: object) -> str:
    """The disk cache key under which `remember` keeps which object code a module made from
    ``inputs`` (everything its text depends on besides the code generator's source, which is
    part of the key, as the target is): a warm process loads the module without making its
    text (`mapped_object`)."""
    return object_key("\0".join(map(str, (*inputs, SOURCE_VERSION))), 3, "map")


def remember(key: str, text: str, name: str, speed_level: int) -> None:
    """Map ``key`` (`map_key`) to the object code of ``text`` in the disk cache."""
    mapped = object_key(text, speed_level, name).encode()
    disk_cache.put("kmap", key, {"object_key": mapped})


def mapped_object(key: str) -> ObjectCode | None:
    """The object code `remember` mapped ``key`` to, from the disk cache, or None."""
    parts = disk_cache.get("kmap", key)
    if parts is None or "object_key" not in parts:
        return None
    return cached_object(parts["object_key"].decode())


def is_mapped(key: str) -> bool:
    """Whether the disk cache maps ``key`` (not checked, not counted as a hit)."""
    return disk_cache.contains("kmap", key)


def jit_mapped(
    key: str,
    make_text,
    *,
    name: str,
    speed_level: int = 3,
    symbols: dict[str, int] | None = None,
) -> JitModule:
    """The module `remember` mapped ``key`` to, loaded; else ``make_text()`` compiled (through
    the disk cache and the compile worker, as `jit` with ``cache=True``) and remembered.
    ``symbols`` as for `jit`."""
    compiled = mapped_object(key)
    if compiled is None:
        text = make_text()
        compiled = compile_object(text, name=name, cache=True, speed_level=speed_level)
        remember(key, text, name, speed_level)
    return load([compiled], symbols)[0]


def jit(
    module_text: str,
    *,
    speed_level: int = 3,
    name: str = "ember",
    cache: bool = False,
    symbols: dict[str, int] | None = None,
) -> JitModule:
    """Parse, verify, optimize, emit and load ``module_text`` (textual LLVM IR).

    With ``cache`` the object code is looked up in the disk cache first (`object_key`), then
    among the modules the compile worker was given (`prefetch`), and stored in the disk cache
    after a compile: only for text that holds no address of this process. ``symbols`` (name
    -> address) are made visible just before the object is loaded, so each load of the same
    object can bind them to addresses of its own.
    """
    compiled = compile_object(module_text, speed_level=speed_level, name=name, cache=cache)
    return load([compiled], symbols)[0]


def load(objects: list[ObjectCode], symbols: dict[str, int] | None = None) -> list[JitModule]:
    """Load each of ``objects`` into an MCJIT engine of its own and return its `JitModule`;
    ``symbols`` (name -> address) are made visible first.

    One engine for several objects would load them 20 times faster (0.05 ms an object
    against 0.9 ms), but code loaded that way crashed when it ran (MLP training step, llvmlite
    0.50): each object keeps its own engine."""
    target = host_target()
    out = []
    with _LOCK:
        for symbol, address in (symbols or {}).items():
            llvm.add_symbol(symbol, address)
        for o in objects:
            # An MCJIT engine owns (and frees) the target machine it is given: each engine
            # gets its own, so the shared one outlives every JitModule.
            engine_machine = llvm_compile.create_machine(target.cpu, target.features)
            engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), engine_machine)
            engine.add_object_file(llvm.ObjectFileRef.from_data(o.object_code))
            engine.finalize_object()
            out.append(JitModule(engine, o.object_code, o.optimized, o.from_cache))
    return out
