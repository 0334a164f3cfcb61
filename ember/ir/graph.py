"""The graph IR: `Graph`, `Node` and `Value`, an ordered SSA structure.

A `Graph` has typed inputs, nodes in topological order and outputs. A `Node` applies one
primitive from the op table (`ember.ir.ops`) to input values (or scalar literals, which take the
dtype of the tensor operands), carries the primitive's attributes and the user's source location,
and defines one output `Value`. Output types come from the primitive's shape+dtype rule, so a
graph built through `Graph.add` is well typed by construction; `verify` re-checks graphs that
were edited or parsed. `Graph.key` is the graph's cache key: a hash of its canonical text
(no names, no source locations) and of its constants' bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import GraphError, SourceLoc
from .ops import get_primitive
from .printer import canonical_text, format_graph
from .types import Scalar, TensorType
from .work import WORK

__all__ = ["Value", "Node", "Graph", "operand_device", "freeze", "freeze_attrs"]


def operand_device(
    op: str,
    inputs: Sequence[Any],
    loc: SourceLoc | None,
    names: dict | None = None,
    node_name: str | None = None,
) -> str:
    """The device all tensor operands of one node share ("cpu" when there are none).

    Operands on two devices (``add(x@cuda, y@cpu)``) are a `GraphError` naming both operands'
    types (a CPU type is written with ``@cpu`` here) and the node's location; ``names`` maps
    values to their names in the text and ``node_name`` is the node's (``%3``), for the message.
    """
    device = None
    first = None
    for x in inputs:
        if not isinstance(x, Value):
            continue
        if device is None:
            device, first = x.type.device, x
        elif x.type.device != device:
            raise GraphError(
                op,
                f"operands{f' of {node_name}' if node_name else ''} on different devices: "
                f"{_typed(first, names)} and {_typed(x, names)}; "
                "move them to one device (.to(device)) first",
                loc,
            )
    return "cpu" if device is None else device


def freeze(value: Any) -> Any:
    """``value`` with every list (at any depth) made a tuple: node attributes are frozen."""
    if isinstance(value, list) or (
        isinstance(value, tuple) and any(isinstance(v, list | tuple) for v in value)
    ):
        return tuple(freeze(v) for v in value)
    return value


def freeze_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``attrs`` whose values hold tuples, never lists."""
    return {k: freeze(v) if isinstance(v, list | tuple) else v for k, v in attrs.items()}


def _typed(value: Value, names: dict | None) -> str:
    text = str(value.type)
    if value.type.device == "cpu":
        text += "@cpu"
    name = names.get(value) if names else None
    return f"{name} ({text})" if name else text


class Value:
    """An SSA value: a graph input or the output of a node.

    ``graph`` is the graph that made it (`Graph.add_input`, `Graph.add`), or None for a value
    made on its own; `ember.ir.builder.GraphBuilder` reads it to reject, in O(1), an operand
    from another graph.
    """

    __slots__ = ("type", "producer", "name", "graph")

    def __init__(
        self,
        type: TensorType,
        producer: Node | None = None,
        name: str | None = None,
        graph: Graph | None = None,
    ) -> None:
        self.type = type
        self.producer = producer
        self.name = name
        self.graph = graph

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return len(self.type.shape)

    def __repr__(self) -> str:
        return f"Value({self.name or '?'}: {self.type})"


class Node:
    """One primitive application: ``out = op(*inputs) {attrs}  # loc``.

    ``attrs`` values are frozen: lists given to the constructor are stored as tuples (the
    verifier rejects a list put there later), so attributes hash and compare by value.
    """

    __slots__ = ("op", "inputs", "attrs", "output", "loc")

    def __init__(
        self,
        op: str,
        inputs: Sequence[Value | Scalar],
        attrs: dict[str, Any],
        output: Value,
        loc: SourceLoc | None = None,
    ) -> None:
        self.op = op
        self.inputs = list(inputs)
        self.attrs = freeze_attrs(attrs)
        self.output = output
        self.loc = loc

    def value_inputs(self) -> list[Value]:
        return [v for v in self.inputs if isinstance(v, Value)]

    def __repr__(self) -> str:
        return f"Node({self.op}, {len(self.inputs)} inputs)"


class Graph:
    """An ordered SSA graph of primitive nodes."""

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []

    def add_input(self, type: TensorType, name: str | None = None) -> Value:
        value = Value(type, None, name, self)
        self.inputs.append(value)
        return value

    def add(
        self,
        op: str,
        inputs: Sequence[Value | Scalar] = (),
        attrs: dict[str, Any] | None = None,
        loc: SourceLoc | None = None,
    ) -> Value:
        """Append ``op(*inputs) {attrs}``; the output type comes from the op's shape rule."""
        attrs = attrs or {}  # (the node stores them frozen)
        prim = get_primitive(op)
        shape, dtype = prim.infer(list(inputs), attrs, loc)
        device = operand_device(op, inputs, loc)
        out = Value(TensorType(shape, dtype, device), None, None, self)
        node = Node(op, inputs, attrs, out, loc)
        out.producer = node
        self.nodes.append(node)
        WORK.add("graph.add")
        return out

    def add_copy(self, node: Node, inputs: Sequence[Value | Scalar]) -> Value:
        """Append a copy of ``node`` (from any graph) that reads ``inputs`` instead: the same
        op, attributes, source location and output type.

        For passes that copy nodes between graphs: the shape rule is not run again, so each
        of ``inputs`` must have the type of the operand it stands for (`verify` re-checks).
        """
        out = Value(node.output.type, None, None, self)
        copy = Node(node.op, inputs, node.attrs, out, node.loc)
        out.producer = copy
        self.nodes.append(copy)
        WORK.add("graph.add_copy")
        return out

    def set_outputs(self, outputs: Iterable[Value]) -> None:
        self.outputs = list(outputs)

    def users(self) -> dict[Value, list[Node]]:
        """Map each value to the nodes that read it."""
        result: dict[Value, list[Node]] = {v: [] for v in self.inputs}
        WORK.add("graph.users", len(self.nodes))
        for node in self.nodes:
            result.setdefault(node.output, [])
            for v in node.value_inputs():
                result.setdefault(v, []).append(node)
        return result

    def key(self) -> str:
        """The cache key: sha256 (hex) of what the graph computes.

        It hashes the canonical text (`printer.canonical_text`: no value or graph names, no
        source locations), then the dtype, shape and bytes of each array an attribute holds.
        Two graphs that differ only in names or locations share a key; a different op, type,
        literal, attribute or constant byte gives another.
        """
        text, constants = canonical_text(self)
        h = hashlib.sha256(text.encode())
        for array in constants:
            h.update(f"\0{array.dtype}{tuple(array.shape)}\0".encode())
            h.update(array.tobytes())
        return h.hexdigest()

    def __str__(self) -> str:
        return format_graph(self)

    def __repr__(self) -> str:
        return f"<Graph @{self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"
