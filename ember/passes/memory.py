"""Memory planning: where each buffer of a lowered program lives.

Graph inputs live in the caller's arrays and graph outputs in arrays made for each call (the
caller owns its results; they never alias anything the program keeps). Every other stored
value gets a slice of one *arena*, allocated once per compiled graph and reused by every call.
Slices are assigned by liveness: a value lives from the kernel that writes it to the last
kernel that reads it (both included, so a kernel never writes over its own operands), and a
slice whose value is dead is reused, first fit, 64-byte aligned. ``peak_bytes`` is the arena's
size: the most intermediate memory one call holds at once, reported after each compile.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph, Value
from .lower import LoweredProgram

__all__ = ["MemoryPlan", "Slot", "plan_memory", "ALIGN"]

ALIGN = 64


@dataclass(frozen=True)
class Slot:
    kind: str  # "input" | "output" | "arena"
    index: int  # the input's or output's position, or the byte offset in the arena


@dataclass
class MemoryPlan:
    slots: dict[Value, Slot]
    arena_bytes: int
    intermediates: int  # how many values live in the arena

    @property
    def peak_bytes(self) -> int:
        return self.arena_bytes

    def describe(self) -> str:
        return f"arena {self.arena_bytes} bytes for {self.intermediates} intermediate buffers"


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(graph: Graph, program: LoweredProgram) -> MemoryPlan:
    slots: dict[Value, Slot] = {v: Slot("input", i) for i, v in enumerate(graph.inputs)}
    for i, v in enumerate(graph.outputs):
        if v not in slots:
            slots[v] = Slot("output", i)
    first: dict[Value, int] = {}
    last: dict[Value, int] = {}
    for k, values in enumerate(program.bindings):
        for v in values:
            if v in slots:
                continue
            first.setdefault(v, k)
            last[v] = k
    live: list[tuple[int, int, int]] = []  # (offset, size, last kernel) of assigned slices
    arena = 0
    for v in sorted(first, key=lambda x: (first[x], -x.type.nbytes)):
        size = _align(max(v.type.nbytes, 1))
        start = first[v]
        busy = sorted((off, sz) for off, sz, end in live if end >= start)
        offset = 0
        for off, sz in busy:
            if offset + size <= off:
                break
            offset = max(offset, off + sz)
        live.append((offset, size, last[v]))
        slots[v] = Slot("arena", offset)
        arena = max(arena, offset + size)
    return MemoryPlan(slots, arena, len(first))
