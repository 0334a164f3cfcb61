"""Kernels compiled one module each, cached in the process by what they compute.

LLVM's optimizer is superlinear in the size of a module: the 71 distinct kernels of an
unrolled LSTM training step took 30 s as one module and 6 s as 71 modules. So each kernel is
its own module, named after the sha256 of its kernel IR text (without its name and source
locations), and its function is made visible to later modules (the graph's driver) under that
name. Equal kernels (the steps of an unrolled loop, the same layer in two graphs, a recompile
for a new batch offset) are compiled once per process.

Across processes the disk cache keeps each kernel's object code (`target.jit`, keyed by its
LLVM IR text) and, under the kernel's own key (its kernel IR, a hash of the code generator's
source and the target), which object that is: a warm process loads a kernel without even
emitting its LLVM IR.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading

from ...ir.kernel import GemmKernel, Kernel
from .emit import emit_module
from .pool import core_count
from .target import (
    JitModule,
    ObjectCode,
    add_symbol,
    compile_object,
    is_mapped,
    load,
    map_key,
    mapped_object,
    remember,
)  # fmt: skip

__all__ = [
    "compile_kernels", "kernel_key", "kernel_symbol", "key_symbol", "load_kernels",
    "pending_module", "cached_kernels",
]  # fmt: skip

_LOCS = re.compile(r"  # [^\n]*")
_CACHE: dict[str, tuple[str, JitModule]] = {}
_TEXTS: dict[str, tuple[str, str]] = {}  # emitted for `target.prefetch`, not compiled yet
_LOCK = threading.RLock()


def kernel_key(kernel: Kernel | GemmKernel) -> str:
    """sha256 of the kernel's text without its name and source locations."""
    text = _LOCS.sub("", str(kernel)).replace(f"@{kernel.name}", "@_")
    return hashlib.sha256(text.encode()).hexdigest()


def _renamed(kernel: Kernel | GemmKernel, name: str):
    if isinstance(kernel, GemmKernel) and kernel.epilogue is not None:
        epilogue = dataclasses.replace(kernel.epilogue, name=f"{name}_epilogue")
        return dataclasses.replace(kernel, name=name, epilogue=epilogue)
    return dataclasses.replace(kernel, name=name)


def _symbol(key: str) -> str:
    return f"ember_k_{key[:24]}"


def _text(kernel: Kernel | GemmKernel, name: str) -> str:
    """The LLVM IR text of ``kernel``'s module, its function named ``name``."""
    return str(emit_module([_renamed(kernel, name)], name))


def kernel_symbol(kernel: Kernel | GemmKernel) -> str:
    """The symbol `compile_kernels` gives ``kernel``'s native function."""
    return _symbol(kernel_key(kernel))


def key_symbol(key: str) -> str:
    """The symbol of the kernel whose `kernel_key` is ``key``."""
    return _symbol(key)


def _map_key(key: str) -> str:
    """Where the disk cache maps a kernel to its object code: its kernel IR and the cores
    GEMM panels are cut for (`emit.panel_rows`), with the code generator and the target
    (`target.map_key`), so a warm process loads it without emitting LLVM IR."""
    return map_key("kernel", key, core_count())


def pending_module(kernel: Kernel | GemmKernel) -> tuple[str, str, int] | None:
    """``kernel``'s module as ``(text, name, level)`` unless this process has compiled an
    equal kernel or the disk cache maps it to object code (for `target.prefetch`);
    `compile_kernels` reuses the text."""
    key = kernel_key(kernel)
    with _LOCK:
        if key in _CACHE or is_mapped(_map_key(key)):
            return None
        if key not in _TEXTS:
            _TEXTS[key] = (_symbol(key), _text(kernel, _symbol(key)))
        name, text = _TEXTS[key]
        return text, name, 3


def compile_kernels(kernels: list[Kernel | GemmKernel]) -> list[tuple[str, str]]:
    """The symbol of the native function that runs each of ``kernels`` (``void (ptr, i64,
    i64)``), and where it came from: ``"reused"`` (the process had compiled an equal kernel),
    ``"loaded"`` (object code from the disk cache) or ``"compiled"`` (LLVM ran, here or in
    the compile worker)."""

    def compile_missing(key: str, name: str, kernel: Kernel | GemmKernel) -> ObjectCode:
        _, text = _TEXTS.pop(key, (None, None))
        if text is None:
            text = _text(kernel, name)
        compiled = compile_object(text, name=name, cache=True, speed_level=3)
        remember(_map_key(key), text, name, 3)
        return compiled

    return _load([kernel_key(k) for k in kernels], kernels, compile_missing)


def load_kernels(keys: list[str]) -> list[tuple[str, str]] | None:
    """As `compile_kernels`, for kernels known by their `kernel_key` only: each must be in
    this process already or in the disk cache; None (nothing loaded) when one is not."""
    with _LOCK:
        if not all(key in _CACHE or is_mapped(_map_key(key)) for key in keys):
            return None
        try:
            return _load(keys, keys, None)
        except _Missing:
            return None


class _Missing(Exception):
    """A kernel the disk cache was thought to hold is not there (evicted, or damaged)."""


def _load(keys: list[str], kernels: list, compile_missing) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    with _LOCK:
        fresh: dict[str, tuple[str, ObjectCode]] = {}
        for key, kernel in zip(keys, kernels):
            name = _symbol(key)
            if key in _CACHE or key in fresh:
                out.append((name, "reused"))
                continue
            compiled = mapped_object(_map_key(key))
            if compiled is None:
                if compile_missing is None:
                    raise _Missing(key)
                compiled = compile_missing(key, name, kernel)
            fresh[key] = (name, compiled)
            out.append((name, "loaded" if compiled.from_cache else "compiled"))
        if fresh:
            modules = load([compiled for _, compiled in fresh.values()])
            for (key, (name, _)), module in zip(fresh.items(), modules):
                add_symbol(name, module.address(name))
                _CACHE[key] = (name, module)
    return out


def cached_kernels() -> int:
    return len(_CACHE)
