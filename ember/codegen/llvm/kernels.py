"""Kernels compiled one module each, cached in the process by what they compute.

LLVM's optimizer is superlinear in the size of a module: the 71 distinct kernels of an
unrolled LSTM training step took 30 s as one module and 6 s as 71 modules. So each kernel is
its own module, named after the sha256 of its kernel IR text (without its name and source
locations), and its function is made visible to later modules (the graph's driver) under that
name. Equal kernels (the steps of an unrolled loop, the same layer in two graphs, a recompile
for a new batch offset) are compiled once per process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading

from ...ir.kernel import GemmKernel, Kernel
from .emit import emit_module
from .target import JitModule, add_symbol, jit

__all__ = ["compile_kernel", "kernel_key", "cached_kernels"]

_LOCS = re.compile(r"  # [^\n]*")
_CACHE: dict[str, tuple[str, JitModule]] = {}
_LOCK = threading.Lock()


def kernel_key(kernel: Kernel | GemmKernel) -> str:
    """sha256 of the kernel's text without its name and source locations."""
    text = _LOCS.sub("", str(kernel)).replace(f"@{kernel.name}", "@_")
    return hashlib.sha256(text.encode()).hexdigest()


def _renamed(kernel: Kernel | GemmKernel, name: str):
    if isinstance(kernel, GemmKernel) and kernel.epilogue is not None:
        epilogue = dataclasses.replace(kernel.epilogue, name=f"{name}_epilogue")
        return dataclasses.replace(kernel, name=name, epilogue=epilogue)
    return dataclasses.replace(kernel, name=name)


def compile_kernel(kernel: Kernel | GemmKernel) -> tuple[str, str]:
    """The symbol of the native function that runs ``kernel`` (``void (ptr, i64, i64)``), and
    where it came from: ``"reused"`` (the process had compiled an equal kernel), ``"loaded"``
    (object code from the disk cache) or ``"compiled"`` (LLVM ran)."""
    key = kernel_key(kernel)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit[0], "reused"
        name = f"ember_k_{key[:24]}"
        module = emit_module([_renamed(kernel, name)], name)
        compiled = jit(str(module), name=name, cache=True)
        add_symbol(name, compiled.address(name))
        _CACHE[key] = (name, compiled)
        return name, "loaded" if compiled.from_cache else "compiled"


def cached_kernels() -> int:
    return len(_CACHE)
