"""An example ember backend plugin: the "tracing" backend.

It runs graphs with ember's reference (numpy) backend and records which ops ran, which is
handy to see what a compiled function really executes. `BaseBackend` does the rest: checking
that a graph is supported, timing the compile, and checking every call's inputs and outputs.
The entry point in ``pyproject.toml`` names the module-level ``backend`` instance.
"""

from collections import Counter

import numpy as np

from ember.codegen.backend import BaseBackend
from ember.codegen.reference import ReferenceBackend
from ember.ir import Graph, Node

__all__ = ["TracingBackend", "backend"]


class TracingBackend(BaseBackend):
    """Runs graphs with numpy; ``ops_run`` counts the ops executed over all calls."""

    name = "tracing"
    devices = ("cpu",)

    def __init__(self) -> None:
        self.ops_run: Counter[str] = Counter()
        self._reference = ReferenceBackend()

    def supports_node(self, node: Node) -> bool | str:
        return self._reference.supports_node(node)

    def build(self, graph: Graph):
        inner = self._reference.compile(graph)
        ops = Counter(node.op for node in graph.nodes)

        def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
            outputs = inner.run(inputs)  # inputs are already checked: skip inner's checks
            self.ops_run.update(ops)
            return outputs

        return run


backend = TracingBackend()
