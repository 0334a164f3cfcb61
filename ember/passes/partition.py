"""Split a joint forward+backward graph into a forward graph and a backward graph.

`partition` takes the `JointGraph` that `ember.passes.autodiff.build_joint` made and returns a
`Partition`:

    forward:  (forward inputs...) -> (forward outputs..., saved residuals...)
    backward: (saved residuals..., cotangents...) -> (gradients...)

The residuals are what the forward keeps alive for the backward, so choosing them is choosing
the training step's activation memory. Two policies:

- ``"save_all"``: save every value of the forward computation that a backward node reads (what
  eager autograd does). The baseline.
- ``"min_cut"`` (default): PyTorch's min-cut rematerialization
  (``torch/_functorch/partitioners.py``, ``min_cut_rematerialization_partition``). Cheap ops
  that the backward needs are recomputed in the backward from fewer saved bytes.

Note: the flow graph. Each value that does not depend on a cotangent (a "primal" value: forward
values, and values that VJP rules compute from forward values alone, like ``cos(x)`` for
``sin``) and that the backward needs, directly or through other primal values, becomes an edge
``v_in -> v_out`` whose capacity is the cost of saving it (its bytes). Data dependencies are
infinite edges ``u_out -> v_in``; primal values that backward nodes read (or that are gradients
themselves) get ``v_out -> sink``. Forward inputs, and forward values whose op must not be
recomputed, get ``source -> v_in``: they exist only on the forward side. A minimum source/sink
cut then cuts the ``v_in -> v_out`` edges of the values to save; everything on the sink side
is computed in the backward. The ops that may be recomputed are the cheap ones: elementwise,
comparisons, ``where``, ``convert``, layout/broadcast and creation. ``matmul``,
``philox_uniform`` (a random draw must not be redrawn), indexing and (unless
``recompute_reductions=True``) reductions are never recomputed: they, or their consumers, are
saved. Values the forward never computes (made by VJP rules) may go either side freely.
Both graphs keep only the nodes their outputs need, in the joint graph's order, with their
source locations.

Capacities are ``bytes * M + d``, with ``M`` larger than any sum of the tie-breakers ``d``:
the cut minimises bytes first, so min_cut never saves more bytes than save_all (one of the
cuts it chooses among). Among cuts of equal bytes it prefers values the forward computes
anyway over values only VJP rules make (saving ``cos(x)`` would move work into the forward and
keep a buffer beside ``x``), then values close to the backward (``d`` counts the ops between a
value and its backward reader), i.e. recomputing less.

Note: the max-flow algorithm. The flow is networkx's Boykov-Kolmogorov: on these networks (a
chain of values per step, a sink edge per value the backward reads) its work grows linearly
with the graph, and it runs 2-4x faster than networkx's default preflow-push, whose time grew
about 8x per 4x more nodes. The cut does not depend on the algorithm: `nx.minimum_cut` puts
on the sink side exactly the nodes that reach the sink in the residual network, the same set
for every maximum flow. Every loop here adds its visits to `ember.ir.work.WORK`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import networkx as nx
from networkx.algorithms.flow import boykov_kolmogorov

from ..ir.errors import GraphError, SourceLoc
from ..ir.graph import Graph, Node, Value
from ..ir.ops import PRIMITIVES
from ..ir.types import TensorType
from ..ir.work import WORK
from .autodiff import JointGraph
from .gc_pause import gc_paused

__all__ = ["Partition", "partition", "POLICIES", "RECOMPUTABLE_CATEGORIES"]

POLICIES = ("min_cut", "save_all")
#: Op categories (``Primitive.category``) that min_cut may recompute in the backward.
RECOMPUTABLE_CATEGORIES = frozenset(
    {"unary", "binary", "compare", "select", "cast", "layout", "create"}
)
_REDUCTION_CATEGORIES = frozenset({"reduce", "scan"})
_NEVER_RECOMPUTE = frozenset({"matmul", "philox_uniform"})


@dataclass(eq=False)
class Partition:
    """A forward graph, a backward graph, and the residuals that pass between them.

    ``forward.outputs`` are the ``num_forward_outputs`` forward outputs followed by the saved
    residuals; ``backward.inputs`` are the saved residuals followed by the cotangents.
    ``saved`` names each residual with its type; ``recomputed`` lists the forward ops the
    backward computes again, as ``(op, loc)``.
    """

    forward: Graph
    backward: Graph
    saved: list[tuple[str, TensorType]]
    saved_bytes: int
    num_forward_outputs: int
    policy: str
    saved_sources: list[str] = field(default_factory=list)
    recomputed: list[tuple[str, SourceLoc | None]] = field(default_factory=list)

    def report(self) -> str:
        """The residuals the backward keeps alive: name, type, bytes, the line that made
        each, the total, and what the backward recomputes instead of saving."""
        header = ("name", "type", "bytes", "made at")
        rows = [
            (name, str(t), f"{t.nbytes:,}", src)
            for (name, t), src in zip(self.saved, self.saved_sources)
        ]
        rows.append(("total", "", f"{self.saved_bytes:,}", ""))
        w = [max(len(r[k]) for r in [header, *rows]) for k in range(3)]
        lines = [f"saved for backward ({self.policy}): {len(self.saved)} residuals"]
        for r in [header, *rows]:
            line = f"  {r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]}"
            lines.append(line.rstrip())
        lines.append(f"recomputed in backward: {_summarize(self.recomputed)}")
        return "\n".join(lines) + "\n"


def _summarize(ops: list[tuple[str, SourceLoc | None]], most: int = 6) -> str:
    """``exp (model.py:5), mul x2 (model.py:6)``; past ``most`` distinct (op, line) pairs,
    ``40 ops: mul x20, add x10, ...`` by op alone."""
    if not ops:
        return "nothing"
    groups = Counter(ops)
    if len(groups) <= most:
        return ", ".join(
            op + (f" x{n}" if n > 1 else "") + (f" ({loc})" if loc is not None else "")
            for (op, loc), n in groups.items()
        )
    by_op = Counter(op for op, _ in ops)
    return f"{len(ops)} ops: " + ", ".join(
        op + (f" x{n}" if n > 1 else "") for op, n in by_op.most_common()
    )


@gc_paused()
def partition(
    joint: JointGraph, policy: str = "min_cut", *, recompute_reductions: bool = False
) -> Partition:
    """Split ``joint`` into forward and backward graphs, saving what ``policy`` chooses.

    ``policy`` is ``"min_cut"`` (recompute cheap ops to save fewer bytes) or ``"save_all"``;
    ``recompute_reductions`` lets min_cut recompute reductions too.
    """
    if policy not in POLICIES:
        raise GraphError("partition", f"unknown policy {policy!r} (known: {', '.join(POLICIES)})")
    graph = joint.graph
    cotangents = set(joint.cotangent_inputs)
    grads = joint.gradients
    if policy == "save_all":
        fw_values = set(joint.primal_inputs) | {n.output for n in joint.forward_nodes}
        chosen = _closure(grads, lambda v: v in fw_values, cotangents)[1]
    else:
        chosen = _min_cut(joint, cotangents, recompute_reductions)
    # the backward: what computes the gradients from cotangents and chosen values (all of
    # which a valid cut makes reachable; those it does not read are not saved)
    bw_nodes, saved_set = _closure(grads, lambda v: v in chosen, cotangents)
    WORK.add("partition.order", len(graph.inputs) + 2 * len(graph.nodes))
    order = {v: i for i, v in enumerate(graph.inputs)}
    order.update({n.output: len(order) + i for i, n in enumerate(graph.nodes)})
    saved = sorted(saved_set, key=order.__getitem__)

    forward = Graph(f"{graph.name.removesuffix('_joint')}_forward")
    env = {v: forward.add_input(v.type, v.name) for v in joint.primal_inputs}
    fw_nodes = _ancestors([*joint.forward_outputs, *saved], set(joint.primal_inputs))
    _copy(graph, fw_nodes, forward, env)
    forward.set_outputs([env[v] for v in [*joint.forward_outputs, *saved]])

    index = {node.output: f"{node.op}_{i}" for i, node in enumerate(forward.nodes)}
    names, sources = [], []
    for v in saved:
        fv = env[v]
        if v.producer is None:
            names.append(v.name or "input")
            sources.append("input")
        else:
            names.append(index[fv])
            sources.append(str(v.producer.loc) if v.producer.loc is not None else "?")

    backward = Graph(f"{graph.name.removesuffix('_joint')}_backward")
    benv = {v: backward.add_input(v.type, n) for v, n in zip(saved, names)}
    benv.update({v: backward.add_input(v.type, v.name) for v in joint.cotangent_inputs})
    _copy(graph, bw_nodes, backward, benv)
    backward.set_outputs([benv[v] for v in grads])

    return Partition(
        forward=forward,
        backward=backward,
        saved=[(n, v.type) for n, v in zip(names, saved)],
        saved_bytes=sum(v.type.nbytes for v in saved),
        num_forward_outputs=joint.num_forward_outputs,
        policy=policy,
        saved_sources=sources,
        recomputed=[(n.op, n.loc) for n in graph.nodes if n in bw_nodes and joint.is_forward(n)],
    )


# ---- graph walks -------------------------------------------------------------------------


def _closure(
    roots: Iterable[Value], stop: Callable[[Value], bool], cotangents: set[Value]
) -> tuple[set[Node], set[Value]]:
    """The nodes that compute ``roots`` from cotangents and values where ``stop`` holds, and
    the set of those stopping values reached."""
    nodes: set[Node] = set()
    reached: set[Value] = set()
    seen: set[Value] = set()
    stack = list(roots)
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        WORK.add("partition.closure")
        if stop(v):
            reached.add(v)
        elif v in cotangents:
            continue
        elif v.producer is None:
            raise GraphError(
                "partition",
                f"the backward reads forward input {v.name or '?'} ({v.type}) that is not saved",
            )
        else:
            nodes.add(v.producer)
            stack.extend(v.producer.value_inputs())
    return nodes, reached


def _ancestors(roots: Iterable[Value], leaves: set[Value]) -> set[Node]:
    nodes: set[Node] = set()
    stack = [v for v in roots if v not in leaves]
    while stack:
        node = stack.pop().producer
        if node in nodes:
            continue
        nodes.add(node)
        WORK.add("partition.ancestors")
        stack.extend(v for v in node.value_inputs() if v not in leaves)
    return nodes


def _copy(source: Graph, keep: set[Node], target: Graph, env: dict[Value, Value]) -> None:
    """Copy the nodes of ``source`` that are in ``keep`` to ``target``, in order, with locs
    (and types: ``env`` maps each value to one of the same type)."""
    WORK.add("partition.copy", len(source.nodes))
    for node in source.nodes:
        if node in keep:
            inputs = [env[x] if isinstance(x, Value) else x for x in node.inputs]
            env[node.output] = target.add_copy(node, inputs)


def _tangent_values(graph: Graph, cotangents: set[Value]) -> set[Value]:
    """Values that depend on a cotangent: they can only be computed in the backward."""
    tangent = set(cotangents)
    WORK.add("partition.tangent", len(graph.nodes))
    for node in graph.nodes:
        if any(x in tangent for x in node.value_inputs()):
            tangent.add(node.output)
    return tangent


def _recomputable(node: Node, recompute_reductions: bool) -> bool:
    if node.op in _NEVER_RECOMPUTE:
        return False
    category = PRIMITIVES[node.op].category
    if category in _REDUCTION_CATEGORIES:
        return recompute_reductions
    return category in RECOMPUTABLE_CATEGORIES


# ---- the min cut -------------------------------------------------------------------------


def _min_cut(joint: JointGraph, cotangents: set[Value], recompute_reductions: bool) -> set[Value]:
    """The primal values to save: the minimum cut between the forward side and the values the
    backward reads (see the module docstring)."""
    graph = joint.graph
    tangent = _tangent_values(graph, cotangents)
    needed: set[Value] = {v for v in joint.gradients if v not in tangent}
    WORK.add("partition.needed", len(graph.nodes))
    for node in graph.nodes:
        if node.output in tangent:
            needed.update(x for x in node.value_inputs() if x not in tangent)
    if not needed:
        return set()
    primal_inputs = set(joint.primal_inputs)
    relevant = _ancestors(needed, primal_inputs)
    values = list(joint.primal_inputs) + [n.output for n in graph.nodes if n in relevant]
    WORK.add("partition.values", len(graph.nodes) + 3 * len(values))
    required_fw = _ancestors(joint.forward_outputs, primal_inputs)

    # distance of each value from the backward, for tie-breaking
    dist: dict[Value, int] = {}
    for v in reversed(values):
        if v in needed:
            dist[v] = 0
    for v in reversed(values):
        if v.producer is not None and v in dist:
            for u in v.producer.value_inputs():
                dist[u] = min(dist.get(u, dist[v] + 1), dist[v] + 1)
    values = [v for v in values if v in dist]  # drops inputs the backward does not reach
    # a value only VJP rules compute costs the forward extra work to save: it loses ties
    far = max(dist.values()) + 1
    for v in values:
        if v.producer is not None and not joint.is_forward(v.producer):
            dist[v] += far
    scale = 2 * far * (len(values) + 1)

    flow = nx.DiGraph()
    flow.add_nodes_from(["source", "sink"])
    ids = {v: i for i, v in enumerate(values)}
    for v, i in ids.items():
        flow.add_edge((i, "in"), (i, "out"), capacity=v.type.nbytes * scale + dist[v])
        node = v.producer
        if node is None:
            flow.add_edge("source", (i, "in"))  # no capacity: infinite
        else:
            if node in required_fw and not _recomputable(node, recompute_reductions):
                flow.add_edge("source", (i, "in"))
            for u in node.value_inputs():
                flow.add_edge((ids[u], "out"), (i, "in"))
        if v in needed:
            flow.add_edge((i, "out"), "sink")
    WORK.add("partition.flow", len(values))
    _, (source_side, _) = nx.minimum_cut(flow, "source", "sink", flow_func=boykov_kolmogorov)
    return {v for v, i in ids.items() if (i, "in") in source_side and (i, "out") not in source_side}
