"""Fusion: which graph nodes run together in one kernel (DESIGN.md section 4).

`fuse(graph)` walks the nodes in order and puts each computing node into a `Group`: a
future kernel. A group iterates a *parallel domain* ``P`` (variables ``p0, p1, ...``) and, if
it holds reductions, a *reduced domain* ``R`` (``r0, ...``). Every member has a `Place`:

- ``full`` members are computed at each point of ``P x R`` (each point of ``P`` when ``R`` is
  empty), in loop stage ``stage``;
- ``row`` members are computed once per point of ``P`` (a reduction's result and what is
  computed from it), available from stage ``stage`` on.

and the index function ``index``: its own element index as an expression of the group's
variables. Views are not members: `ember.passes.views.resolve` turns them into index maps.

The rules (each decision is logged under ``EMBER_LOGS=fusion`` with its reason):

- **Exact index match.** A node joins the group of an operand's root only if, at the place it
  would take, it reads that operand at exactly the element the root computes there (the
  resolved index equals the root's index function). Reading a member anywhere else (a gather,
  a pad, a shifted slice) would read a value another thread may not have written yet, so such
  a reader starts its own kernel.
- **Pointwise chains fuse** (same number of elements: reshapes are free); a pointwise node of
  ``P``'s size joins a row group at the row level (``sum / n``).
- **Reductions absorb their pointwise producers**: a reduction over a pointwise group turns it
  into a row group (its domain becomes rows x reduced dims); a reduction over the same rows of
  a row group joins it as a new stage. Pointwise consumers of the rows join at the next stage,
  so softmax, log_softmax and layer_norm (forward and backward) are one kernel each.
- **Matmul takes a pointwise epilogue** (bias, activation, residual) over its output.
- **No cycles**: a node never joins a group that depends on a group the node reads.
- ``cumsum``, ``argsort`` and ``scatter_add`` keep a kernel of their own; creation ops
  (``full``, ``iota``, ``philox_uniform``) are recomputed wherever they are read, and get a
  kernel only when a matmul, one of those three or the graph's outputs need them in memory.

Not done (yet): horizontal fusion of sibling reductions over the same data that do not depend
on each other, and a peak-memory check (fusion here only ever removes buffers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import Graph, Node, Value
from ..ir.index import Expr, ravel, unravel, var
from ..ir.kernel import ELEMENTWISE
from . import logs
from .views import VIEW_OPS, group_vars, resolve, root_of

__all__ = [
    "CLOSED_OPS",
    "FusionPlan",
    "GENERATOR_OPS",
    "Group",
    "INDEXED_OPS",
    "POINTWISE_OPS",
    "Place",
    "REDUCE_KINDS",
    "fuse",
    "off_point_operands",
]

POINTWISE_OPS = ELEMENTWISE | {"copy"}
GENERATOR_OPS = frozenset(("full", "iota", "philox_uniform"))
REDUCE_KINDS = {
    "reduce_sum": "sum",
    "reduce_prod": "prod",
    "reduce_max": "max",
    "reduce_min": "min",
    "argmax": "argmax",
    "argmin": "argmin",
}
# pointwise over their output, but reading some operands elsewhere than at their own index
INDEXED_OPS = {"gather": (0,), "pad": (0,), "concat": None, "slice_scatter": (1,)}
CLOSED_OPS = frozenset(("cumsum", "argsort", "scatter_add"))
MAX_MEMBERS = 96  # (kernels stay small to compile; lowering recurses along chains)
MAX_LEAF_DEPTH = 12


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def off_point_operands(node: Node) -> tuple[int, ...]:
    """Positions of the operands ``node`` reads elsewhere than at its own index."""
    n = len(node.inputs)
    if node.op in INDEXED_OPS:
        spec = INDEXED_OPS[node.op]
        return tuple(range(n)) if spec is None else spec
    if node.op in CLOSED_OPS or node.op in GENERATOR_OPS or node.op == "matmul":
        return tuple(range(n))
    return ()


@dataclass
class Place:
    level: str  # "full" | "row"
    index: tuple[Expr, ...]
    stage: int  # full: its loop stage; row: the first stage that can read it


@dataclass(eq=False)
class Group:
    """A future kernel; see the module docstring."""

    id: int
    kind: str  # "loop" | "gemm" | "closed"
    P: tuple[int, ...]
    R: tuple[int, ...]
    full_shape: tuple[int, ...]
    full_index: tuple[Expr, ...]
    nodes: list[Node] = field(default_factory=list)
    place: dict[Node, Place] = field(default_factory=dict)
    reduce_stage: dict[Node, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"k{self.id}"

    @property
    def pvars(self) -> tuple[Expr, ...]:
        return group_vars("p", self.P)

    @property
    def rvars(self) -> tuple[Expr, ...]:
        return group_vars("r", self.R)

    def full_place(self, shape: tuple[int, ...]) -> tuple[Expr, ...]:
        return unravel(ravel(self.full_index, self.full_shape), shape)

    def row_place(self, shape: tuple[int, ...]) -> tuple[Expr, ...]:
        return unravel(ravel(self.pvars, self.P), shape)

    def add(self, node: Node, place: Place) -> None:
        self.nodes.append(node)
        self.place[node] = place


@dataclass
class FusionPlan:
    """The groups in a valid run order, and the log of decisions."""

    graph: Graph
    groups: list[Group]
    group_of: dict[Node, Group]
    decisions: list[str]
    inline: set[Node]  # computed wherever read: creation ops and nodes that read only inputs

    def kernel_count(self) -> int:
        return len(self.groups)


def _row_layout(shape: tuple[int, ...], axes: tuple[int, ...]):
    P = tuple(n for d, n in enumerate(shape) if d not in axes)
    R = tuple(shape[d] for d in axes)
    pv, rv = group_vars("p", P), group_vars("r", R)
    full, kp, kr = [], 0, 0
    for d in range(len(shape)):
        if d in axes:
            full.append(rv[axes.index(d)])
            kr += 1
        else:
            full.append(pv[kp])
            kp += 1
    return P, R, tuple(full)


def _where(node: Node) -> str:
    return f"{node.op}" + (f" at {node.loc}" if node.loc else "")


class _Fuser:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.groups: list[Group] = []
        self.group_of: dict[Node, Group] = {}
        self.anc: dict[int, set[int]] = {}
        self.decisions: list[str] = []
        self.inline: set[Node] = set()
        self.leaf_depth: dict[Node, int] = {}
        self.needs_memory = self._needs_memory()

    def _needs_memory(self) -> set[Node]:
        """Nodes whose values a matmul, a closed op or the caller read from memory."""
        out = set()
        for n in self.graph.nodes:
            if n.op == "matmul" or n.op in CLOSED_OPS:
                for v in n.inputs:
                    if isinstance(v, Value) and root_of(v).producer is not None:
                        out.add(root_of(v).producer)
        for v in self.graph.outputs:
            if root_of(v).producer is not None:
                out.add(root_of(v).producer)
        return out

    def is_leaf(self, node: Node) -> bool:
        """Whether ``node`` only reads graph inputs, creation ops and other leaves: it is then
        computed wherever it is read (inlined), which costs arithmetic but never a trip
        through memory; LLVM hoists what a loop does not change."""
        if node in self.needs_memory:
            return False
        depth = 0
        for v in node.inputs:
            if isinstance(v, Value):
                r = root_of(v).producer
                if r is not None and r not in self.inline:
                    return False
                if r is not None:
                    depth = max(depth, self.leaf_depth.get(r, 0))
        if depth >= MAX_LEAF_DEPTH:  # a long chain: computed once, in a kernel
            return False
        self.leaf_depth[node] = depth + 1
        return True

    # -- bookkeeping ---------------------------------------------------------------------
    def log(self, text: str) -> None:
        self.decisions.append(text)

    def new_group(self, kind, P, R, full_shape, full_index) -> Group:
        g = Group(len(self.groups), kind, P, R, full_shape, full_index)
        self.groups.append(g)
        self.anc[g.id] = set()
        return g

    def deps(self, node: Node) -> set[int]:
        """The groups ``node`` reads (through views and inlined creation ops)."""
        out: set[int] = set()
        stack = [v for v in node.inputs if isinstance(v, Value)]
        while stack:
            r = root_of(stack.pop()).producer
            if r is None:
                continue
            g = self.group_of.get(r)
            if g is not None:
                out.add(g.id)
            elif r in self.inline:
                stack.extend(v for v in r.inputs if isinstance(v, Value))
        return out

    def creates_cycle(self, g: Group, node: Node) -> bool:
        return any(g.id in self.anc[h] for h in self.deps(node) if h != g.id)

    def attach(self, g: Group, node: Node, place: Place) -> None:
        g.add(node, place)
        self.group_of[node] = g
        new = set()
        for h in self.deps(node):
            if h != g.id:
                new.add(h)
                new |= self.anc[h]
        if new - self.anc[g.id]:
            self.anc[g.id] |= new
            for a in self.anc.values():
                if g.id in a:
                    a |= self.anc[g.id]

    # -- the walk ------------------------------------------------------------------------
    def run(self) -> FusionPlan:
        for node in self.graph.nodes:
            op = node.op
            if op in VIEW_OPS:
                continue
            if (
                op in GENERATOR_OPS
                or (op in POINTWISE_OPS or op in INDEXED_OPS)
                and self.is_leaf(node)
            ):
                if node in self.needs_memory:
                    self.start_pointwise(node, "a creation op needed in memory")
                else:
                    self.inline.add(node)
                    self.log(f"{_where(node)} reads only inputs: computed where it is read")
                continue
            if op == "matmul":
                shape = node.output.type.shape
                g = self.new_group("gemm", shape, (), shape, group_vars("p", shape))
                self.attach(g, node, Place("full", g.pvars, 0))
                self.log(f"{g.name}: {_where(node)} starts a gemm kernel")
            elif op in CLOSED_OPS:
                self.start_closed(node)
            elif op in REDUCE_KINDS:
                self.place_reduction(node)
            else:
                self.place_pointwise(node)
        return FusionPlan(self.graph, self.order(), self.group_of, self.decisions, self.inline)

    def start_pointwise(self, node: Node, why: str) -> None:
        shape = node.output.type.shape
        g = self.new_group("loop", shape, (), shape, group_vars("p", shape))
        self.attach(g, node, Place("full", g.pvars, 0))
        self.log(f"{g.name}: {_where(node)} starts a kernel ({why})")

    def start_closed(self, node: Node) -> None:
        shape = node.inputs[0].type.shape
        g = self.new_group("closed", (), (), shape, ())
        self.attach(g, node, Place("full", (), 0))
        self.log(f"{g.name}: {_where(node)} runs as a kernel of its own")

    def reads_ok(self, g: Group, node: Node, place: Place) -> tuple[int, str | None]:
        """The stage ``node`` needs in ``g`` at ``place``, or a reason it cannot join."""
        off = off_point_operands(node)
        stage = 0
        for pos, v in enumerate(node.inputs):
            if not isinstance(v, Value):
                continue
            root = root_of(v).producer
            member = g.place.get(root) if root is not None else None
            if member is None:
                continue
            if pos in off:
                if not self.same_row(g, node, place, v, member):
                    return 0, f"reads {_where(root)} of {g.name} at another index"
                stage = max(stage, member.stage)
                continue
            _, idx = resolve(v, place.index)
            if idx != member.index:
                return 0, f"reads {_where(root)} of {g.name} at another index"
            if place.level == "row" and member.level == "full":
                return 0, f"needs all of a row of {_where(root)}"
            stage = max(stage, member.stage)
        return stage, None

    def same_row(self, g: Group, node: Node, place: Place, v: Value, member: Place) -> bool:
        """Whether a row-level ``gather`` reads full member ``v`` only within its own row:
        it is then computed again at the gathered element (the loads move, the row's values
        stay), as cross_entropy's pick of the target's log-probability is."""
        if node.op != "gather" or place.level != "row" or member.level != "full":
            return False
        axis = node.attrs["axis"]
        read = list(place.index)
        read[axis] = var("q", v.type.shape[axis])
        _, idx = resolve(v, tuple(read))
        rnames = {f"r{k}" for k in range(len(g.R))}
        for want, got in zip(member.index, idx):
            names = want.vars()
            if not names & rnames:
                if want != got:
                    return False
            elif not (len(want.terms) == 1 and want.terms[0][1] == 1 and not want.const):
                return False
        return True

    def candidates(self, node: Node) -> list[Group]:
        seen: list[Group] = []
        for v in node.inputs:
            if isinstance(v, Value):
                root = root_of(v).producer
                g = self.group_of.get(root) if root is not None else None
                if g is not None and g not in seen:
                    seen.append(g)
        return seen

    def place_pointwise(self, node: Node) -> None:
        shape = node.output.type.shape
        reasons = []
        for g in self.candidates(node):
            if g.kind == "closed":
                reasons.append(f"{g.name} is closed")
                continue
            if len(g.nodes) >= MAX_MEMBERS:
                reasons.append(f"{g.name} is full")
                continue
            if numel(shape) == numel(g.full_shape):
                place = Place("full", g.full_place(shape), 0)
            elif g.R and numel(shape) == numel(g.P):
                place = Place("row", g.row_place(shape), 0)
            else:
                reasons.append(f"{g.name} iterates another number of elements")
                continue
            stage, why = self.reads_ok(g, node, place)
            if why is None and self.creates_cycle(g, node):
                why = f"joining {g.name} would make a cycle"
            if why is not None:
                reasons.append(why)
                continue
            place.stage = stage
            self.attach(g, node, place)
            self.log(f"{g.name}: {_where(node)} joins at the {place.level} level, stage {stage}")
            return
        self.start_pointwise(node, "; ".join(reasons) or "no producer to join")

    def place_reduction(self, node: Node) -> None:
        operand = node.inputs[0]
        shape = operand.type.shape
        axes = tuple(node.attrs["axes"]) if "axes" in node.attrs else (node.attrs["axis"],)
        P, R, full_index = _row_layout(shape, axes)
        root = root_of(operand).producer
        g = self.group_of.get(root) if root is not None else None
        why = "its operand is not computed in a kernel it can join"
        if g is not None and g.kind == "loop" and len(g.nodes) < MAX_MEMBERS:
            if not g.R and numel(shape) == numel(g.full_shape) and (P or numel(shape) <= 65536):
                why = self.rerow(g, node, operand, P, R, shape, full_index)
                if why is None:
                    return
            elif g.R and g.P == P and g.R == R and numel(shape) == numel(g.full_shape):
                why = self.join_rows(g, node, operand, axes)
                if why is None:
                    return
            else:
                why = f"{g.name} iterates other rows"
        if g is None:
            for h in reversed(self.groups[-8:]):
                same = h.kind == "loop" and h.R and (h.P, h.R, h.full_shape) == (P, R, shape)
                if same and self.join_rows(h, node, operand, axes, sibling=True) is None:
                    return
        g = self.new_group("loop", P, R, shape, full_index)
        self.attach(g, node, Place("row", g.pvars, 1))
        g.reduce_stage[node] = 0
        self.log(f"{g.name}: {_where(node)} starts a row kernel ({why})")

    def rerow(self, g, node, operand, P, R, shape, full_index) -> str | None:
        """Turn pointwise group ``g`` into rows ``P`` x ``R`` and add reduction ``node``."""
        lin = ravel(full_index, shape)
        new_index = {m: unravel(lin, m.output.type.shape) for m in g.nodes}
        root = root_of(operand).producer
        _, idx = resolve(operand, full_index)
        if idx != new_index[root]:
            return f"reads {_where(root)} of {g.name} at another index"
        if self.creates_cycle(g, node):
            return f"joining {g.name} would make a cycle"
        g.P, g.R, g.full_shape, g.full_index = P, R, shape, full_index
        for m in g.nodes:
            g.place[m].index = new_index[m]
        self.attach(g, node, Place("row", g.pvars, 1))
        g.reduce_stage[node] = 0
        self.log(f"{g.name}: {_where(node)} turns it into rows {list(P)} x {list(R)}")
        return None

    def join_rows(self, g, node, operand, axes, sibling: bool = False) -> str | None:
        shape = operand.type.shape
        f = g.full_place(shape)
        kept = tuple(e for d, e in enumerate(f) if d not in axes)
        red = tuple(f[d] for d in axes)
        if ravel(kept, g.P) != ravel(g.pvars, g.P) or ravel(red, g.R) != ravel(g.rvars, g.R):
            return f"{g.name} reduces other dims"
        if sibling:  # reads no member: a sibling reduction over the same rows
            s = 0
        else:
            root = root_of(operand).producer
            member = g.place[root]
            _, idx = resolve(operand, f)
            if member.level != "full" or idx != member.index:
                return f"reads {_where(root)} of {g.name} at another index"
            s = member.stage
        if self.creates_cycle(g, node):
            return f"joining {g.name} would make a cycle"
        self.attach(g, node, Place("row", g.pvars, s + 1))
        g.reduce_stage[node] = s
        how = "a sibling reduction over its rows" if sibling else "its rows"
        self.log(f"{g.name}: {_where(node)} joins {how}, stage {s}")
        return None

    def order(self) -> list[Group]:
        """The groups in an order where each runs after every group it reads."""
        preds: dict[int, set[int]] = {g.id: set() for g in self.groups}
        for g in self.groups:
            for node in g.nodes:
                preds[g.id] |= self.deps(node) - {g.id}
        done: set[int] = set()
        out: list[Group] = []
        pending = list(self.groups)
        while pending:
            for i, g in enumerate(pending):
                if preds[g.id] <= done:
                    out.append(g)
                    done.add(g.id)
                    del pending[i]
                    break
            else:
                raise AssertionError("fusion made a cycle")
        return out


def fuse(graph: Graph) -> FusionPlan:
    """Group ``graph``'s nodes into kernels; see the module docstring."""
    plan = _Fuser(graph).run()
    if plan.decisions:
        logs.log("fusion", f"fusion of @{graph.name}:\n  " + "\n  ".join(plan.decisions))
    return plan
