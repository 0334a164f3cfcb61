"""A compiled graph's plan kept on disk, so a warm process skips the graph passes.

What `LLVMCompiledGraph` needs to run a graph, once the passes have lowered it and the backend
has planned its memory, is small: the key of each kernel in run order (their object code is in
the disk cache under `kernels.kernel_key`), the map key of the graph's entry and driver, the
arena's size, which outputs may be written over which inputs, and whether the BLAS is needed.
`Plan` holds that as JSON in the disk cache (namespace ``plan``), under `plan_key`: the
graph's own key (`Graph.key`: what it computes, constants included) and name, the source of
the passes, of the code generator and of the IR (`target.map_key` adds the last two and the
target), and what the schedule depends on besides the graph (pool threads, cores, whether GEMM
panels run single-threaded BLAS). A warm process with the plan and every object it names
loads them without tracing through the passes; anything missing sends it down the full path.

The kernel IR, the fusion decisions' graph and the memory plan are not stored: a compiled
graph makes them again, by running the passes, only when asked for them (``kernels``,
``memory``, ``llvm_ir``, ``profile``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ... import passes as passes_package
from ...ir.graph import Graph
from .. import disk_cache
from .target import map_key

__all__ = ["PASSES_VERSION", "Plan", "load_plan", "plan_key", "store_plan"]

_NAMESPACE = "plan"


def _passes_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(passes_package.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


PASSES_VERSION = _passes_hash()
"""sha256 of the source of `ember.passes`, read once when this module is imported."""


@dataclass(frozen=True)
class Plan:
    """What a warm process needs to load and run a compiled graph (module docstring)."""

    kernels: list[str]  # `kernels.kernel_key` of each kernel, in run order
    entry_key: str  # the disk cache's map key of the entry and driver
    arena_bytes: int
    donatable: dict[int, list[int]]  # output -> inputs it may be written over
    decisions: list[str]  # the fusion decisions, as `ember.passes.fusion` words them
    gemm: bool  # a kernel calls the BLAS

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Plan:
        raw = json.loads(data)
        raw["donatable"] = {int(k): [int(i) for i in v] for k, v in raw["donatable"].items()}
        return cls(**raw)


def plan_key(graph: Graph, *schedule: object) -> str:
    """The disk cache key of ``graph``'s plan; ``schedule`` is what the plan depends on
    besides the graph and the sources (threads, cores, BLAS threading)."""
    return map_key("plan", graph.key(), graph.name, PASSES_VERSION, *schedule)


def load_plan(key: str) -> Plan | None:
    """The plan stored under ``key``, or None (absent, or written by an older layout)."""
    parts = disk_cache.get(_NAMESPACE, key)
    if parts is None or "plan" not in parts:
        return None
    try:
        return Plan.from_json(parts["plan"])
    except (ValueError, TypeError, KeyError):
        return None


def store_plan(key: str, plan: Plan) -> None:
    disk_cache.put(_NAMESPACE, key, {"plan": plan.to_json()})
