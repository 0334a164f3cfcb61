"""LLVM IR text to object code: the one compile pipeline, shared by this process and its compile
worker.

`compile_text` parses, verifies, optimizes (the new pass manager at O``level`` with loop and
SLP vectorization) and emits object code for a target machine of the host CPU (`create_machine`).
The module imports nothing but llvmlite and the standard library, so it also runs as a script:
``python llvm_compile.py CPU FEATURES`` is the compile worker (`ember.codegen.llvm.prefetch`),
which answers requests on its standard input with object code on its standard output.

Worker protocol: once it has started, the worker writes ``READY`` (so nothing is handed to a
worker that cannot start on it yet); then one request at a time:

    request:  b"<len(name)> <len(text)> <level>\\n" + name + text        (UTF-8)
    response: b"<status> <len(a)> <len(b)>\\n" + a + b
              status 0: a is the object code, b the optimized IR (UTF-8)
              status 1: a is empty, b the error message (UTF-8)

The worker exits when its standard input closes.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import llvmlite.binding as llvm

READY = b"ready\n"

__all__ = [
    "READY", "Machines", "compile_text", "create_machine", "create_machines", "initialize",
    "optimize", "serve",
]  # fmt: skip


def initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def create_machine(cpu: str, features: str, opt: int = 3) -> llvm.TargetMachine:
    """A target machine for the host triple with ``cpu`` and ``features``, for the JIT, whose
    code generator runs at O``opt``."""
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu, features=features, opt=opt, reloc="pic", codemodel="jitdefault", jit=True
    )


class Machines(NamedTuple):
    """The two code generators a compile picks from by optimization level: ``quick`` (O0:
    fast instruction selection and register allocation) for level 0, ``optimizing`` (O3)
    for every other level."""

    quick: llvm.TargetMachine
    optimizing: llvm.TargetMachine

    def for_level(self, speed_level: int) -> llvm.TargetMachine:
        return self.quick if speed_level == 0 else self.optimizing


def create_machines(cpu: str, features: str) -> Machines:
    return Machines(create_machine(cpu, features, 0), create_machine(cpu, features, 3))


def optimize(module: llvm.ModuleRef, machine: llvm.TargetMachine, speed_level: int = 3) -> None:
    """Run the O``speed_level`` pipeline with loop and SLP vectorization on ``module``."""
    pto = llvm.create_pipeline_tuning_options(speed_level=speed_level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(machine, pto)
    pb.getModulePassManager().run(module, pb)


def compile_text(text: str, name: str, machines: Machines, speed_level: int) -> tuple[bytes, str]:
    """The object code and the optimized IR of module ``text``. Level 0 runs no IR pass and
    the quick code generator: for code whose speed does not matter, 5 to 25 times faster to
    compile than any other level."""
    machine = machines.for_level(speed_level)
    module = llvm.parse_assembly(text)
    module.name = name
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    module.verify()
    if speed_level > 0:
        optimize(module, machine, speed_level)
    optimized = str(module)
    return machine.emit_object(module), optimized


def serve(cpu: str, features: str, stdin=None, stdout=None) -> None:
    """The compile worker's loop (see the module docstring)."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    initialize()
    machines = create_machines(cpu, features)
    stdout.write(READY)
    stdout.flush()
    while True:
        header = stdin.readline()
        if not header:
            return
        name_len, text_len, level = (int(x) for x in header.split())
        name = stdin.read(name_len).decode()
        text = stdin.read(text_len).decode()
        try:
            obj, optimized = compile_text(text, name, machines, level)
            status, a, b = 0, obj, optimized.encode()
        except Exception as exc:  # noqa: BLE001 - every failure goes back as a message
            status, a, b = 1, b"", f"{type(exc).__name__}: {exc}".encode()
        stdout.write(b"%d %d %d\n" % (status, len(a), len(b)))
        stdout.write(a)
        stdout.write(b)
        stdout.flush()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
