"""The graph verifier: re-check the invariants that `Graph.add` establishes.

A graph built only through `Graph.add` is well formed by construction, but passes edit graphs
in place and the parser reads them from text. `verify` walks the graph once, in order, and
raises `GraphError` (naming the node's op and source location) for the first broken rule:

- every operand is a scalar literal, a graph input or the output of an *earlier* node;
- every value is defined once, and ``Value.producer`` is the node that defines it
  (``None`` for graph inputs);
- every op is a registered primitive, and a node's attributes are exactly its ``attr_names``,
  frozen (tuples, never lists);
- a node's tensor operands are on one device (``add(x@cuda, y@cpu)`` is an error that names
  the node, both operand types and the node's file:line);
- every node's output type is what the primitive's rule derives from its operands now
  (errors from the rule itself propagate with the node's location);
- every graph output is defined in the graph.
"""

from __future__ import annotations

from .errors import GraphError
from .graph import Graph, Node, Value, operand_device
from .ops import PRIMITIVES
from .printer import _value_names
from .types import TensorType, is_scalar
from .work import WORK

__all__ = ["verify"]


def _name(names: dict, value: Value) -> str:
    return names.get(value, f"a value of type {value.type}")


def _check_attrs(node: Node, attr_names: tuple[str, ...]) -> None:
    missing = [a for a in attr_names if a not in node.attrs]
    unknown = [a for a in node.attrs if a not in attr_names]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(unknown)}")
        expected = ", ".join(attr_names) if attr_names else "none"
        raise GraphError(
            node.op, f"attributes do not match (expected: {expected}; {'; '.join(parts)})", node.loc
        )


def _has_list(value) -> bool:
    return isinstance(value, list) or (
        isinstance(value, tuple) and any(_has_list(v) for v in value)
    )


def _check_node(node: Node, index: int, names: dict, defined: dict) -> None:
    prim = PRIMITIVES.get(node.op)
    if prim is None:
        raise GraphError(node.op, "unknown primitive", node.loc)
    _check_attrs(node, prim.attr_names)
    for key, value in node.attrs.items():
        if _has_list(value):
            raise GraphError(
                node.op,
                f"attribute {key} of %{index} holds a list ({value!r}); attributes are frozen: "
                "use tuples",
                node.loc,
            )
    for k, x in enumerate(node.inputs):
        if isinstance(x, Value):
            if x not in defined:
                raise GraphError(
                    node.op,
                    f"operand {k} ({_name(names, x)}) is not a graph input or defined by an "
                    f"earlier node",
                    node.loc,
                )
        elif not is_scalar(x):
            raise GraphError(
                node.op, f"operand {k} is neither a value nor a scalar literal: {x!r}", node.loc
            )
    device = operand_device(node.op, node.inputs, node.loc, names, f"%{index}")
    shape, dtype = prim.infer(list(node.inputs), node.attrs, node.loc)
    derived = TensorType(shape, dtype, device)
    out = node.output
    if not isinstance(out, Value):
        raise GraphError(node.op, f"output of node {index} is not a Value: {out!r}", node.loc)
    if out in defined:
        raise GraphError(node.op, f"output %{index} is already defined as {defined[out]}", node.loc)
    if out.type != derived:
        raise GraphError(
            node.op,
            f"output %{index} has type {out.type} but {node.op} derives {derived}",
            node.loc,
        )
    if out.producer is not node:
        raise GraphError(
            node.op,
            f"output %{index} has producer {out.producer!r}, not the node that defines it",
            node.loc,
        )


def verify(graph: Graph) -> None:
    """Raise `GraphError` for the first broken invariant of ``graph``; return None if sound."""
    names = _value_names(graph)
    WORK.add("verify", len(graph.inputs) + len(graph.nodes) + len(graph.outputs))
    defined: dict[Value, str] = {}  # value -> where it was defined, for messages
    for i, v in enumerate(graph.inputs):
        if v in defined:
            raise GraphError("verify", f"graph input {i} is already defined as {defined[v]}")
        if v.producer is not None:
            raise GraphError(
                "verify",
                f"graph input {i} ({names[v]}) has producer {v.producer!r}; inputs have none",
                v.producer.loc,
            )
        defined[v] = f"graph input {i}"
    for index, node in enumerate(graph.nodes):
        _check_node(node, index, names, defined)
        defined[node.output] = f"%{index}"
    for i, v in enumerate(graph.outputs):
        if not isinstance(v, Value) or v not in defined:
            what = f"a value of type {v.type}" if isinstance(v, Value) else repr(v)
            loc = v.producer.loc if isinstance(v, Value) and v.producer is not None else None
            raise GraphError(
                "verify", f"graph output {i} ({what}) is not defined in @{graph.name}", loc
            )
