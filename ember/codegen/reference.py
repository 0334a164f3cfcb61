"""The reference backend: runs any graph node by node with the primitives' numpy kernels.

It is the oracle for every compiled path: slow, simple, and exact to the eager kernels (it
calls the same ``impl`` column of the op table). Intermediate arrays are dropped after their
last use, so peak memory follows the graph's liveness rather than its size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..ir.errors import GraphError, ShapeError
from ..ir.graph import Graph, Value
from ..ir.ops import get_primitive
from ..ir.types import format_shape

__all__ = ["run_graph"]


def _last_uses(graph: Graph) -> dict[int, list[Value]]:
    """For each node index, the values whose last reader it is (outputs are never dropped)."""
    last: dict[Value, int] = {}
    for i, node in enumerate(graph.nodes):
        for v in node.value_inputs():
            last[v] = i
    keep = set(graph.outputs)
    by_node: dict[int, list[Value]] = {}
    for v, i in last.items():
        if v not in keep:
            by_node.setdefault(i, []).append(v)
    return by_node


def run_graph(graph: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Evaluate ``graph`` on numpy arrays, one per graph input; returns the output arrays."""
    if len(inputs) != len(graph.inputs):
        raise GraphError(
            f"@{graph.name}", f"expects {len(graph.inputs)} inputs, got {len(inputs)}", None
        )
    env: dict[Value, np.ndarray] = {}
    for value, array in zip(graph.inputs, inputs):
        array = np.asarray(array)
        if array.shape != value.shape or array.dtype != value.dtype.np:
            raise ShapeError(
                f"@{graph.name}",
                f"input {value.name or '?'} expects {value.type}, got "
                f"{array.dtype}{list(array.shape)}",
                None,
            )
        env[value] = array
    drop = _last_uses(graph)
    with np.errstate(all="ignore"):
        for i, node in enumerate(graph.nodes):
            prim = get_primitive(node.op)
            if prim.impl is None:
                raise GraphError(node.op, "has no eager kernel registered", node.loc)
            args = [env[v] if isinstance(v, Value) else v for v in node.inputs]
            out = np.asarray(prim.impl(*args, **node.attrs))
            if out.shape != node.output.shape or out.dtype != node.output.dtype.np:
                raise GraphError(
                    node.op,
                    f"kernel returned {out.dtype}{list(out.shape)} where the graph says "
                    f"{format_shape(node.output.shape, node.output.dtype)}",
                    node.loc,
                )
            env[node.output] = out
            for v in drop.get(i, ()):
                env.pop(v, None)
    return [env[v] for v in graph.outputs]
