"""Cleanup passes: dead code, common subexpressions, constant folding and algebraic identities.

Each pass is a pure function ``Graph -> Graph``: it builds a new graph (fresh inputs, nodes and
values) and never touches the one it is given. Nodes that survive keep their attributes and
source location (``loc``); a node that a rewrite creates takes the location of the node it
replaces, so errors and kernels still point at the user's line.

- `dce`: drop nodes whose outputs do not reach a graph output. Every primitive is pure (random
  numbers are counter-based functions of their seed and offset operands), so this is exact.
- `cse`: merge nodes that apply the same op to the same operands with the same attributes.
- `fold_constants`: evaluate what depends on no graph input and write uniform results as `full`.
- `simplify_algebra`: the identities listed in its docstring.
- `simplify`: the four above, repeated to a fixed point.

Note [exactness]: every rewrite keeps each element's value bit for bit, with one caveat that
IEEE arithmetic imposes: ``x * 1``, ``x / 1`` and ``x + -0.0`` turn a *signaling* NaN into a
quiet one, so dropping them can leave a signaling NaN that the original graph would have
quieted. No ember kernel produces signaling NaNs; they only come from input bit patterns made on
purpose. Rewrites that are *not* exact are not done at all: ``x + 0.0`` (``-0.0 + 0.0`` is
``+0.0``), ``x - -0.0`` (the same), commuting operands (x86 picks the first operand's payload
when both are NaN), and ``neg(neg(x))`` on bool tensors (whose negation is an error in the
kernels, which the rewrite would hide).

Note [layouts on the reference backend]: the IR has no memory layout, but the reference
backend's numpy kernels do: views (``permute``, ``slice``, most reshapes) keep strides,
while a ``reshape`` of a strided view copies into C order, and numpy's reductions add in an
order that follows the strides. So there ``reduce_sum(reshape(reshape(permute(x), [n]), s))``
and its rewrite ``reduce_sum(permute(x))`` can differ in the last bits, though every value fed
to the reduction is the same. A ``reduce_*`` kernel that made its operand contiguous first
would remove this (`tests/passes/test_simplify.py` keeps an xfail that shows it). For the same
reason `simplify_algebra` does not drop a ``pad`` by nothing, which also copies.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Hashable

import numpy as np

from ..ir import DType, Graph, GraphError, Node, TensorType, Value, format_graph
from ..ir import dtypes as D
from ..ir.ops import PRIMITIVES
from ..ir.work import WORK
from .manager import graph_pass

__all__ = [
    "dce",
    "cse",
    "fold_constants",
    "simplify_algebra",
    "simplify",
    "SIMPLIFY_PIPELINE",
    "NEVER_FOLD",
    "FOLD_MAX_ELEMENTS",
]

#: Ops `fold_constants` never evaluates: random draws stay draws, even from constant seeds.
NEVER_FOLD = frozenset({"philox_uniform"})
#: Constants with more elements than this are not evaluated at compile time.
FOLD_MAX_ELEMENTS = 1 << 20


class _Rebuilder:
    """Copies a graph into a fresh one node by node, mapping each old value to its new value."""

    def __init__(self, graph: Graph) -> None:
        self.old = graph
        self.new = Graph(graph.name)
        self.map: dict[Value, Value] = {v: self.new.add_input(v.type, v.name) for v in graph.inputs}

    def operands(self, node: Node) -> list:
        """``node``'s operands in the new graph (literals stay as they are)."""
        out = []
        for k, x in enumerate(node.inputs):
            if isinstance(x, Value):
                if x not in self.map:
                    raise GraphError(
                        node.op, f"operand {k} is not defined by an earlier node", node.loc
                    )
                x = self.map[x]
            out.append(x)
        return out

    def copy(self, node: Node, operands: list) -> Value:
        """Append ``node`` with new ``operands``; its type, attributes and loc are kept."""
        return self.new.add_copy(node, operands)

    def finish(self) -> Graph:
        for i, v in enumerate(self.old.outputs):
            if v not in self.map:
                raise GraphError("verify", f"graph output {i} is not defined in @{self.old.name}")
        self.new.set_outputs(self.map[v] for v in self.old.outputs)
        return self.new


Rewrite = Callable[[_Rebuilder, Node, list], "Value | None"]


def _rewrite_each(graph: Graph, rewrite: Rewrite, pass_name: str) -> Graph:
    """A new graph where each node is ``rewrite(rb, node, operands)`` or, if None, a copy."""
    rb = _Rebuilder(graph)
    WORK.add(pass_name, len(graph.nodes))
    for node in graph.nodes:
        operands = rb.operands(node)
        replacement = rewrite(rb, node, operands)
        if replacement is None:
            replacement = rb.copy(node, operands)
        elif replacement.type != node.output.type:
            raise GraphError(
                node.op,
                f"{pass_name} would replace {node.output.type} by {replacement.type}",
                node.loc,
            )
        rb.map[node.output] = replacement
    return rb.finish()


# ---------------------------------------------------------------------------------------------
# dce
# ---------------------------------------------------------------------------------------------


@graph_pass("dce")
def dce(graph: Graph) -> Graph:
    """Drop nodes whose outputs are not (transitively) used by the graph outputs."""
    live = set(graph.outputs)
    WORK.add("dce", 2 * len(graph.nodes))
    for node in reversed(graph.nodes):
        if node.output in live:
            live.update(node.value_inputs())
    rb = _Rebuilder(graph)
    for node in graph.nodes:
        if node.output in live:
            rb.map[node.output] = rb.copy(node, rb.operands(node))
    return rb.finish()


# ---------------------------------------------------------------------------------------------
# cse
# ---------------------------------------------------------------------------------------------


def _literal_key(x) -> tuple:
    """Literals are equal when their type and bits are: 1, 1.0 and True differ, so do 0.0 and
    -0.0, and two NaNs are equal only with the same payload."""
    if isinstance(x, bool):
        return ("bool", x)
    if isinstance(x, int):
        return ("int", x)
    return ("float", struct.pack("<d", x))


def _attr_key(value) -> Hashable:
    if isinstance(value, DType):
        return ("dtype", value.name)
    if isinstance(value, list | tuple):
        return ("seq", tuple(_attr_key(v) for v in value))
    if isinstance(value, bool | int | float):
        return _literal_key(value)
    if isinstance(value, str):
        return ("str", value)
    hash(value)  # raises TypeError for attributes that cannot be compared this way
    return ("obj", type(value).__qualname__, value)


def _cse_key(node: Node, operands: list) -> Hashable | None:
    try:
        attrs = tuple(sorted((k, _attr_key(v)) for k, v in node.attrs.items()))
    except TypeError:
        return None  # an unhashable attribute: never merge this node
    ins = tuple(("value", x) if isinstance(x, Value) else _literal_key(x) for x in operands)
    return (node.op, ins, attrs, node.output.type)


@graph_pass("cse")
def cse(graph: Graph) -> Graph:
    """Merge nodes with the same op, operands and attributes into the first of them.

    Operands match by identity (after earlier merges), literals by type and bits, attributes
    after normalizing lists to tuples and dtypes to their names. The kept node is the earliest,
    with its location. Operand order matters: ``add(a, b)`` and ``add(b, a)`` are not merged.
    """
    seen: dict[Hashable, Value] = {}

    def merge(rb: _Rebuilder, node: Node, operands: list) -> Value | None:
        key = _cse_key(node, operands)
        if key is None:
            return None
        if key in seen:
            return seen[key]
        seen[key] = rb.copy(node, operands)
        return seen[key]

    return _rewrite_each(graph, merge, "cse")


# ---------------------------------------------------------------------------------------------
# fold_constants
# ---------------------------------------------------------------------------------------------


def _evaluate(node: Node, constants: dict[Value, np.ndarray], max_elements: int):
    """``node``'s value if all its operands are known constants, else None."""
    prim = PRIMITIVES.get(node.op)
    if node.op in NEVER_FOLD or prim is None or prim.impl is None:
        return None
    if node.output.type.numel > max_elements:
        return None
    args = []
    for x in node.inputs:
        if isinstance(x, Value):
            if x not in constants:
                return None
            x = constants[x]
        args.append(x)
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(prim.impl(*args, **node.attrs))
    except Exception:  # e.g. an integer division by zero: leave it to fail at run time
        return None
    if out.shape != node.output.shape or out.dtype != node.output.dtype.np:
        return None
    return out


def _uniform_value(array: np.ndarray, dtype: DType) -> bool | int | float | None:
    """The literal ``v`` for which ``full(shape, v, dtype)`` is ``array`` bit for bit, or None
    if the elements differ (or the value cannot be written as an IR literal exactly)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.size == 0:
        first = 0
    else:
        bits = flat.view(f"u{flat.itemsize}")
        if not (bits == bits[0]).all():
            return None
        first = flat[0]
    if dtype is D.bool_:
        value: bool | int | float = bool(first)
    elif dtype.is_floating_point:
        value = float(first)
        if math.isnan(value):
            value = math.nan  # the IR writes every NaN as `nan`; other NaNs fail the check below
    else:
        value = int(first)
    full = PRIMITIVES["full"].impl or (lambda shape, value, dtype: np.full(shape, value, dtype.np))
    rebuilt = np.ascontiguousarray(full(array.shape, value, dtype))
    return value if rebuilt.tobytes() == flat.tobytes() else None


@graph_pass("fold_constants")
def fold_constants(graph: Graph, max_elements: int = FOLD_MAX_ELEMENTS) -> Graph:
    """Evaluate what depends on no graph input; write *uniform* results as one `full`.

    A node is constant when all its tensor operands are: `full` and `iota` are, and so is any
    op applied to constants, except `philox_uniform` (`NEVER_FOLD`), whose draws are never
    folded. Constants are computed with the primitives' ``impl`` kernels (the same as the
    reference backend), only up to ``max_elements`` elements each; a kernel that raises leaves
    its node alone, so the error still happens at run time.

    A constant whose elements are all bitwise equal becomes ``full(shape, value, dtype)`` at
    the node's location. Constants with differing elements (``iota`` with more than one
    element, for instance) are left as they are: the IR has no constant-tensor node that could
    hold them. Their consumers are still evaluated, and are folded when uniform (a sum over
    an ``iota``). Producers that a fold makes unused are left for `dce`.
    """
    constants: dict[Value, np.ndarray] = {}

    def fold(rb: _Rebuilder, node: Node, operands: list) -> Value | None:
        array = _evaluate(node, constants, max_elements)
        if array is None:
            return None
        constants[node.output] = array
        if node.op == "full":
            return None
        value = _uniform_value(array, node.output.dtype)
        if value is None:
            return None
        if node.output.type != TensorType(node.output.shape, node.output.dtype):
            return None  # a `full` has no operand to take another device from
        attrs = {"shape": node.output.shape, "value": value, "dtype": node.output.dtype}
        return rb.new.add("full", [], attrs, node.loc)

    return _rewrite_each(graph, fold, "fold_constants")


# ---------------------------------------------------------------------------------------------
# simplify_algebra
# ---------------------------------------------------------------------------------------------


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _literal_is(x, value: float, dtype: DType, *, negative_zero: bool | None = None) -> bool:
    """Is ``x`` a literal equal to ``value`` that the op applies in ``dtype`` unchanged?

    Float tensors take int or float literals; integer tensors only int literals (a float
    literal would promote in the kernels); bool tensors none. ``negative_zero`` also demands
    the sign of a zero literal.
    """
    if dtype is D.bool_ or not _is_number(x) or x != value:
        return False
    if not dtype.is_floating_point:
        return isinstance(x, int)
    if negative_zero is not None:
        return (math.copysign(1.0, x) < 0) == negative_zero
    return True


def _arith_identity(node: Node, a, b) -> Value | None:
    """``x + -0.0``, ``x + 0`` (ints), ``x - 0``, ``x * 1``, ``x / 1`` and mirrored forms."""
    dtype = node.output.dtype
    float_ = dtype.is_floating_point
    zero_sign = True if float_ else None  # float add: only -0.0 is an identity
    pairs = ((a, b), (b, a)) if node.op in ("add", "mul") else ((a, b),)
    for x, lit in pairs:
        if not isinstance(x, Value):
            continue
        if node.op == "add" and _literal_is(lit, 0, dtype, negative_zero=zero_sign):
            return x
        if node.op == "sub" and _literal_is(lit, 0, dtype, negative_zero=False if float_ else None):
            return x
        if node.op in ("mul", "div") and _literal_is(lit, 1, dtype):
            return x
    return None


def _producer(x, op: str) -> Node | None:
    """The node that defines ``x`` if it applies ``op``."""
    node = x.producer if isinstance(x, Value) else None
    return node if node is not None and node.op == op else None


def _algebra(rb: _Rebuilder, node: Node, operands: list) -> Value | None:
    op, attrs = node.op, node.attrs
    x = operands[0] if operands else None
    if op in ("add", "sub", "mul", "div"):
        return _arith_identity(node, *operands)
    if op == "neg" and x.dtype is not D.bool_ and (inner := _producer(x, "neg")) is not None:
        return inner.inputs[0]
    if op == "convert":
        return x if x.dtype is attrs["dtype"] else None
    if op in ("reshape", "broadcast_to"):
        shape = tuple(attrs["shape"])
        if x.shape == shape:
            return x
        inner = _producer(x, op)  # one reshape (broadcast) does what two did
        if inner is None:
            return None
        source = inner.inputs[0]
        if source.shape == shape:
            return source
        return rb.new.add(op, [source], {"shape": shape}, node.loc)
    if op == "permute":
        dims = tuple(attrs["dims"])
        inner = _producer(x, "permute")
        if inner is not None:  # permute(permute(s, p), q) == permute(s, [p[d] for d in q])
            x, dims = inner.inputs[0], tuple(inner.attrs["dims"][d] for d in dims)
        if dims == tuple(range(len(dims))):
            return x
        return rb.new.add("permute", [x], {"dims": dims}, node.loc) if inner is not None else None
    if op == "slice":
        # as long as its operand in every dim: so it starts at 0 and steps by 1 (or the dim has
        # one element), since a later start or a larger step would yield fewer elements
        return x if node.output.shape == x.shape else None
    if op == "slice_scatter":
        # a window as large as the base (by the same argument) is all of it: the update
        update = operands[1]
        return update if update.shape == x.shape else None
    return None


@graph_pass("simplify_algebra")
def simplify_algebra(graph: Graph) -> Graph:
    """Rewrite algebraic identities; each is exact (see the module's Note [exactness]).

    - ``x * 1``, ``1 * x``, ``x / 1``, ``x - 0`` -> ``x`` (numeric tensors; for floats the zero
      of ``x - 0`` must be ``+0``), ``x + 0``, ``0 + x`` -> ``x`` for integer tensors and, for
      floats, only with ``-0.0`` (``x + 0.0`` is kept: it maps ``-0.0`` to ``+0.0``);
    - ``neg(neg(x))`` -> ``x`` (not for bool);
    - ``convert`` to ``x``'s dtype, ``reshape``/``broadcast_to`` to ``x``'s shape, the identity
      ``permute`` and a ``slice`` that keeps everything -> ``x``; a ``slice_scatter`` whose
      window is the whole base -> the update;
    - ``reshape(reshape(x))``, ``broadcast_to(broadcast_to(x))`` and
      ``permute(permute(x))`` -> one node (or ``x`` when that one is an identity).

    Literal operands must fit the tensor: an int or float literal for float tensors, an int
    literal for integer tensors. Replaced nodes that become unused are left for `dce`.
    """
    return _rewrite_each(graph, _algebra, "simplify_algebra")


# ---------------------------------------------------------------------------------------------
# simplify
# ---------------------------------------------------------------------------------------------

#: The passes `simplify` repeats, in order.
SIMPLIFY_PIPELINE = (fold_constants, simplify_algebra, cse, dce)


@graph_pass("simplify")
def simplify(graph: Graph, max_iterations: int = 8) -> Graph:
    """Run `SIMPLIFY_PIPELINE` until the graph's text stops changing (at most
    ``max_iterations`` rounds). Always returns a new graph."""
    text = format_graph(graph)
    for _ in range(max_iterations):
        for p in SIMPLIFY_PIPELINE:
            graph = p(graph)
        new_text = format_graph(graph)
        if new_text == text:
            break
        text = new_text
    return graph
