"""Building graphs by calling primitives on graph values.

Inside ``with GraphBuilder(graph):`` a primitive call whose operands include a `Value` of that
graph appends a node (``ops.add(x, y)`` returns the new `Value`), and calls without tensor
operands (``ops.full(...)``) append too. This is what lets code written with primitives, above
all the VJP rules, run unchanged on graph values: the autodiff pass differentiates a graph by
calling the very rules eager autograd calls on tensors.

Each node gets the source location the builder is given (``loc=``), so nodes a pass creates on
behalf of a user's line keep pointing at it; ``at(loc)`` changes it for a stretch of building.
"""

from __future__ import annotations

from contextlib import contextmanager

from .errors import GraphError, SourceLoc
from .graph import Graph, Value
from .ops import pop_binder, push_binder
from .work import WORK

__all__ = ["GraphBuilder", "current_builder"]

_builders: list[GraphBuilder] = []


def current_builder() -> GraphBuilder | None:
    """The innermost active builder, or None."""
    return _builders[-1] if _builders else None


class GraphBuilder:
    """Appends primitive calls on `Value`s to ``graph`` while active (a context manager)."""

    def __init__(self, graph: Graph, loc: SourceLoc | None = None) -> None:
        self.graph = graph
        self.loc = loc

    def bind(self, prim, args, attrs) -> Value:
        graph = self.graph
        WORK.add("builder.operands", len(args))
        for a in args:
            # O(1) per operand: a value knows the graph that made it (``Value.graph``)
            if isinstance(a, Value) and a.graph is not graph:
                raise GraphError(
                    prim.name,
                    "operand belongs to another graph than the active builder's",
                    self.loc,
                )
        return graph.add(prim.name, list(args), dict(attrs), self.loc)

    @contextmanager
    def at(self, loc: SourceLoc | None):
        """Give the nodes built inside the block the source location ``loc``."""
        saved, self.loc = self.loc, loc
        try:
            yield self
        finally:
            self.loc = saved

    def __enter__(self) -> GraphBuilder:
        _builders.append(self)
        push_binder(self.bind)
        return self

    def __exit__(self, *exc) -> bool:
        pop_binder()
        _builders.pop()
        return False


def _bind_value(prim, args, attrs) -> Value:
    builder = current_builder()
    if builder is None:
        raise GraphError(
            prim.name, "primitive called on graph values outside a GraphBuilder block", None
        )
    return builder.bind(prim, args, attrs)


Value.__ember_bind__ = staticmethod(_bind_value)
