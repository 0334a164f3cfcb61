"""The IR text format: a readable, stable rendering of a `Graph` that `parser` reads back.

    graph @mlp(%x: f32[512,784], %w: f32[128,784]) -> (f32[512,128]) {
      %0: f32[784,128] = permute(%w) {dims=[1,0]}                   # model.py:12
      %1: f32[512,128] = matmul(%x, %0)                             # model.py:12
      %2: f32[512,128] = maximum(%1, 0.0)                           # model.py:13
      return %2
    }

Inputs keep their names (made unique), node outputs are numbered in order, scalar literals
are written inline, attributes are sorted by the primitive's attribute order, and each line
ends with the user's file:line when the node has one.
"""

from __future__ import annotations

import math
import re

from .dtypes import DType
from .ops import PRIMITIVES
from .types import is_scalar
from .work import WORK

__all__ = ["format_graph", "canonical_text", "format_literal", "format_attr"]

_COMMENT_COLUMN = 62
_IDENT = re.compile(r"[^A-Za-z0-9_.]")


def format_literal(x) -> str:
    """A scalar as the IR writes it: ``true``, ``3``, ``2.5``, ``inf``, ``-inf``, ``nan``."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def format_attr(value) -> str:
    if isinstance(value, DType):
        return value.short
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_attr(v) for v in value) + "]"
    if is_scalar(value):
        return format_literal(value)
    raise TypeError(f"attribute value {value!r} has no IR text form")


def _value_names(graph) -> dict:
    names: dict = {}
    used: set[str] = set()
    # per base name, the suffix its next search starts at: names are only ever added to
    # `used`, so the first free ``base_k`` never moves back, and many inputs of one name
    # (the trace's ``const``) cost linear time, not quadratic
    next_suffix: dict[str, int] = {}
    probes = 0
    for i, v in enumerate(graph.inputs):
        base = _IDENT.sub("_", v.name) if v.name else f"arg{i}"
        if base[0].isdigit():
            base = "_" + base
        k = next_suffix.get(base, 0)
        name = f"{base}_{k}" if k else base
        while name in used:
            k += 1
            name = f"{base}_{k}"
            probes += 1
        next_suffix[base] = k
        used.add(name)
        names[v] = "%" + name
    for i, node in enumerate(graph.nodes):
        names[node.output] = f"%{i}"
    WORK.add("printer.names", len(graph.inputs) + probes + len(graph.nodes))
    return names


def _attrs_text(node, fmt) -> str:
    if not node.attrs:
        return ""
    prim = PRIMITIVES.get(node.op)
    order = prim.attr_names if prim is not None else ()
    keys = [k for k in order if k in node.attrs] + [k for k in node.attrs if k not in order]
    return " {" + ", ".join(f"{k}={fmt(node.attrs[k])}" for k in keys) + "}"


def _node_text(node, names: dict, fmt) -> str:
    def ref(x) -> str:
        if is_scalar(x):
            return format_literal(x)
        return names.get(x, "%<undefined>")

    text = f"  {names[node.output]}: {node.output.type} = {node.op}("
    return text + ", ".join(ref(x) for x in node.inputs) + ")" + _attrs_text(node, fmt)


def format_graph(graph) -> str:
    """Render ``graph`` in the IR text format."""
    names = _value_names(graph)
    params = ", ".join(f"{names[v]}: {v.type}" for v in graph.inputs)
    results = ", ".join(str(v.type) for v in graph.outputs)
    name = _IDENT.sub("_", graph.name) or "main"
    lines = [f"graph @{name}({params}) -> ({results}) {{"]
    for node in graph.nodes:
        text = _node_text(node, names, format_attr)
        if node.loc is not None:
            text = text.ljust(_COMMENT_COLUMN) + f"  # {node.loc}"
        lines.append(text)
    lines.append("  return " + ", ".join(names.get(v, "%<undefined>") for v in graph.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"


def canonical_text(graph) -> tuple[str, list]:
    """The graph's text with what does not change its meaning left out, and its constants.

    Graph inputs are numbered (``%in0``...), not named; the graph's name and the source
    locations are left out. An attribute that holds an array (anything with ``tobytes``, a
    captured constant) is written as ``const#k<dtype,shape>``: the arrays come back in that
    order, for the caller to hash their bytes (`Graph.key`).
    """
    names: dict = {v: f"%in{i}" for i, v in enumerate(graph.inputs)}
    names.update((node.output, f"%{i}") for i, node in enumerate(graph.nodes))
    constants: list = []

    def fmt(value) -> str:
        if hasattr(value, "tobytes") and hasattr(value, "shape"):
            constants.append(value)
            dims = ",".join(str(d) for d in value.shape)
            return f"const#{len(constants) - 1}<{value.dtype},{dims}>"
        if isinstance(value, list | tuple):
            return "[" + ",".join(fmt(v) for v in value) + "]"
        return format_attr(value)

    params = ", ".join(f"{names[v]}: {v.type}" for v in graph.inputs)
    results = ", ".join(str(v.type) for v in graph.outputs)
    lines = [f"graph ({params}) -> ({results}) {{"]
    lines.extend(_node_text(node, names, fmt) for node in graph.nodes)
    lines.append("  return " + ", ".join(names.get(v, "%<undefined>") for v in graph.outputs))
    lines.append("}")
    WORK.add("printer.canonical", len(graph.inputs) + len(graph.nodes))
    return "\n".join(lines) + "\n", constants
