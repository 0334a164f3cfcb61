"""The reference backend: runs any graph node by node with the primitives' numpy kernels.

It is the oracle for every compiled path: slow, simple, and exact to the eager kernels (it
calls the same ``impl`` column of the op table, so a graph and the eager program that recorded
it give bit-identical results). ``compile`` does the bookkeeping once: each node becomes a step
holding its kernel, where its operands live (slots of a flat environment) and which
intermediates die after it (the last-use table). A call then only runs kernels.

Note: memory follows liveness. An intermediate is released right after its last reader runs
(a result nobody reads, right after it is computed), so a long chain holds two arrays at a
time, not the whole chain. After each call the compiled graph reports ``peak_live_bytes`` and
``peak_live_arrays``: the most intermediate bytes and arrays it held at once, counted as it
stores and releases them (graph inputs belong to the caller and are not counted; a view counts
its own size, the liveness model's view of memory).

Outputs own their memory: an output that is a view (of an input or of an intermediate) or a
graph input itself is copied, so callers may write to outputs without touching their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..ir.errors import EmberError, GraphError, IndexOutOfRange, InvalidValueError
from ..ir.graph import Graph, Node, Value
from ..ir.ops import PRIMITIVES
from ..ir.shape_rules import describe
from .backend import BaseBackend, CompiledGraph, describe_array

__all__ = ["ReferenceBackend", "ReferenceCompiledGraph", "run_graph", "last_uses"]

# Errors numpy kernels raise for operands that type-check but cannot be computed
# (an out-of-range gather index, an integer division by zero).
_KERNEL_ERRORS = (IndexError, ValueError, TypeError, ArithmeticError)


def last_uses(graph: Graph) -> list[list[Value]]:
    """For each node index, the node results that die after it: never read again, not outputs.

    A result nobody reads dies at its own node. Graph inputs never appear: the caller owns them.
    """
    last: dict[Value, int] = {}
    for index, node in enumerate(graph.nodes):
        last[node.output] = index
        for v in node.value_inputs():
            if v in last:
                last[v] = index
    keep = set(graph.outputs)
    by_node: list[list[Value]] = [[] for _ in graph.nodes]
    for value, index in last.items():
        if value not in keep:
            by_node[index].append(value)
    return by_node


class _Step:
    """One node, ready to run: kernel, operand slots or literals, attributes, result slot."""

    __slots__ = ("index", "node", "impl", "args", "attrs", "out", "shape", "dtype", "drops")

    def __init__(self, index: int, node: Node, args: tuple, out: int, drops: tuple) -> None:
        self.index = index
        self.node = node
        self.impl = PRIMITIVES[node.op].impl
        self.args = args  # (slot, None) for a value, (-1, literal) for a scalar literal
        self.attrs = dict(node.attrs)
        self.out = out
        self.shape = node.output.type.shape
        self.dtype = node.output.type.dtype.np
        self.drops = drops


class ReferenceCompiledGraph(CompiledGraph):
    """A graph scheduled for the numpy kernels; see the module docstring for the statistics."""

    def __init__(self, graph: Graph, backend_name: str = "reference") -> None:
        super().__init__(graph, backend_name)
        slots: dict[Value, int] = {v: i for i, v in enumerate(graph.inputs)}
        self._num_inputs = len(graph.inputs)
        dies_after = last_uses(graph)
        steps = []
        for index, node in enumerate(graph.nodes):
            args = []
            for k, x in enumerate(node.inputs):
                if not isinstance(x, Value):
                    args.append((-1, x))
                elif x in slots:
                    args.append((slots[x], None))
                else:
                    raise GraphError(
                        node.op,
                        f"operand {k} of node %{index} is not defined before it in @{graph.name}",
                        node.loc,
                    )
            slots[node.output] = out = len(slots)
            drops = tuple(slots[v] for v in dies_after[index])
            steps.append(_Step(index, node, tuple(args), out, drops))
        self._steps = steps
        self._num_slots = len(slots)
        outputs = []
        for i, v in enumerate(graph.outputs):
            if v not in slots:
                raise GraphError(f"@{graph.name}", f"output {i} ({v!r}) is not defined", None)
            outputs.append((slots[v], slots[v] < self._num_inputs))
        self._outputs = outputs
        self.peak_live_bytes = 0
        self.peak_live_arrays = 0

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        env: list = [None] * self._num_slots
        env[: self._num_inputs] = inputs
        live_bytes = peak_bytes = live_arrays = peak_arrays = 0
        with np.errstate(all="ignore"):
            for step in self._steps:
                args = [env[slot] if slot >= 0 else literal for slot, literal in step.args]
                try:
                    out = step.impl(*args, **step.attrs)
                except _KERNEL_ERRORS as exc:
                    raise _kernel_error(step, args, exc) from None
                if type(out) is not np.ndarray:
                    out = np.asarray(out)
                if out.shape != step.shape or out.dtype != step.dtype:
                    raise _mismatch(step, out)
                env[step.out] = out
                live_bytes += out.nbytes
                live_arrays += 1
                if live_bytes > peak_bytes:
                    peak_bytes = live_bytes
                if live_arrays > peak_arrays:
                    peak_arrays = live_arrays
                for slot in step.drops:
                    live_bytes -= env[slot].nbytes
                    live_arrays -= 1
                    env[slot] = None
        self.peak_live_bytes = peak_bytes
        self.peak_live_arrays = peak_arrays
        results = []
        for slot, is_input in self._outputs:
            array = env[slot]
            if is_input or array.base is not None:
                array = array.copy()
            results.append(array)
        return results


def _kernel_error(step: _Step, args: list, exc: Exception) -> EmberError:
    """A kernel refused operands that type-check: name the node, its operands and its line."""
    operands = ", ".join(
        describe_array(a) if isinstance(a, np.ndarray) else describe(a) for a in args
    )
    detail = f"{exc} (node %{step.index}, operands {operands})"
    cls = IndexOutOfRange if isinstance(exc, IndexError) else InvalidValueError
    return cls(step.node.op, detail, step.node.loc)


def _mismatch(step: _Step, out: np.ndarray) -> GraphError:
    return GraphError(
        step.node.op,
        f"kernel returned {describe_array(out)} for node %{step.index} where the graph says "
        f"{step.node.output.type}",
        step.node.loc,
    )


class ReferenceBackend(BaseBackend):
    """The numpy backend: runs every graph whose primitives have an eager kernel (``impl``).

    It runs graphs typed for any device on host arrays: it is the oracle for every backend.
    The kernels are registered by ``import ember`` (`ember.runtime.eager_kernels`).
    """

    name = "reference"
    devices = ("cpu",)
    checks_device = False

    def available(self) -> bool | str:
        missing = sorted(name for name, prim in PRIMITIVES.items() if prim.impl is None)
        if missing:
            return f"no numpy kernel registered for {', '.join(missing)} (import ember first)"
        return True

    def supports_node(self, node: Node) -> bool | str:
        if PRIMITIVES[node.op].impl is None:
            return "has no numpy kernel registered (import ember first)"
        return True

    def build(self, graph: Graph) -> ReferenceCompiledGraph:
        return ReferenceCompiledGraph(graph, self.name)


_BACKEND = ReferenceBackend()


def run_graph(graph: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Evaluate ``graph`` on numpy arrays, one per graph input; returns the output arrays."""
    return _BACKEND.compile(graph)(*inputs)
