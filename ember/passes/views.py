"""Views as index maps: where a value's element at an index comes from.

Fusion and lowering never materialize a view (reshape, broadcast_to, permute, slice,
stop_gradient, and the identities check_range and copy-of-a-view that only name a value). They
follow the chain of views from the value a node reads back to its *root*: a graph input or a
node that computes something, and rewrite the index on the way (DESIGN.md section 3, "views are
index maps"). `resolve` does that walk; the op table's view rows are the `INDEX_MAPS` here.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir.graph import Node, Value
from ..ir.index import Expr, ravel, unravel, var

__all__ = ["INDEX_MAPS", "VIEW_OPS", "resolve", "root_of", "group_vars"]


def _reshape(node: Node, index: tuple[Expr, ...]) -> tuple[Expr, ...]:
    src = node.inputs[0].type.shape
    return unravel(ravel(index, node.output.type.shape), src)


def _broadcast(node: Node, index: tuple[Expr, ...]) -> tuple[Expr, ...]:
    src = node.inputs[0].type.shape
    lead = len(index) - len(src)
    return tuple(Expr() if n == 1 else index[lead + d] for d, n in enumerate(src))


def _permute(node: Node, index: tuple[Expr, ...]) -> tuple[Expr, ...]:
    dims = node.attrs["dims"]
    out: list[Expr] = [Expr()] * len(dims)
    for k, d in enumerate(dims):
        out[d] = index[k]
    return tuple(out)


def _slice(node: Node, index: tuple[Expr, ...]) -> tuple[Expr, ...]:
    a = node.attrs
    return tuple(e * st + lo for e, lo, st in zip(index, a["starts"], a["steps"]))


def _identity(node: Node, index: tuple[Expr, ...]) -> tuple[Expr, ...]:
    return index


#: For each view op: the operand's index as a function of the view's index.
INDEX_MAPS: dict[str, Callable[[Node, tuple[Expr, ...]], tuple[Expr, ...]]] = {
    "reshape": _reshape,
    "broadcast_to": _broadcast,
    "permute": _permute,
    "slice": _slice,
    "stop_gradient": _identity,
    "check_range": _identity,
}
VIEW_OPS = frozenset(INDEX_MAPS)


def resolve(value: Value, index: tuple[Expr, ...]) -> tuple[Value, tuple[Expr, ...]]:
    """``(root, root_index)``: the root value whose element ``root_index`` is ``value[index]``."""
    node = value.producer
    while node is not None and node.op in VIEW_OPS:
        index = INDEX_MAPS[node.op](node, index)
        value = node.inputs[0]
        node = value.producer
    return value, index


def root_of(value: Value) -> Value:
    node = value.producer
    while node is not None and node.op in VIEW_OPS:
        value = node.inputs[0]
        node = value.producer
    return value


def group_vars(prefix: str, extents: tuple[int, ...]) -> tuple[Expr, ...]:
    """The loop variables ``prefix0, prefix1, ...`` of ``extents`` as index expressions."""
    return tuple(var(f"{prefix}{k}", n) for k, n in enumerate(extents))
