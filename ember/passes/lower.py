"""Lowering: fused groups become kernel IR (`ember.ir.kernel`).

`lower(plan)` turns each `ember.passes.fusion.Group` into a `Kernel` (or a `GemmKernel` with
its epilogue) and returns a `LoweredProgram`: the kernels in run order and, for each kernel
buffer, the graph value whose storage it is (a graph input, a graph output or an
intermediate, all row-major and contiguous; a buffer may view its value's storage with other
strides, as a transposed matmul operand does).

Every group member is computed where its `Place` says. A value is *stored* when a later kernel
or the caller reads it; a member read only inside its group lives in registers and, when a
later stage needs it again, is computed again there from its loads. Operands are read through
their views (`ember.passes.views.resolve`), creation ops (``full``, ``iota``,
``philox_uniform``) are computed at the index they are read at, and ``gather``, ``pad``,
``concat`` and ``slice_scatter`` compute the position they read (clamped, so the load is in
bounds, and selected away where it does not apply).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import dtypes as D
from ..ir.graph import Graph, Node, Value
from ..ir.index import Dyn, Expr, ravel, var
from ..ir.kernel import Buffer, GemmKernel, Kernel, KOp, Stage
from ..ir.types import is_scalar
from .fusion import REDUCE_KINDS, FusionPlan, Group
from .prepare import gemm_layout
from .views import resolve, root_of

__all__ = ["LoweredProgram", "lower"]


@dataclass
class LoweredProgram:
    graph: Graph  # the graph the kernels compute (after preparation)
    kernels: list[Kernel | GemmKernel]
    bindings: list[list[Value]]  # per kernel, per buffer: the value whose storage it is
    decisions: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n\n".join(str(k) for k in self.kernels)


def _contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, s = [], 1
    for n in reversed(shape):
        strides.append(s)
        s *= max(n, 1)
    return tuple(reversed(strides))


def _readers(plan: FusionPlan) -> dict[Value, set]:
    """For each root value, the groups (or "out"/"gen") that read it."""
    readers: dict[Value, set] = {}
    for node in plan.graph.nodes:
        if node not in plan.group_of and node not in plan.inline:
            continue  # a view: its readers read its root
        who = plan.group_of.get(node, "gen")
        for v in node.inputs:
            if isinstance(v, Value):
                readers.setdefault(root_of(v), set()).add(who)
    for v in plan.graph.outputs:
        readers.setdefault(root_of(v), set()).add("out")
    return readers


class _Builder:
    """Builds one kernel: buffers, stages and ops."""

    def __init__(self, g: Group, stored: set[Value], loc_list: list[str], inline) -> None:
        self.g = g
        self.inline = inline
        self.stored = stored
        self.buffers: list[Buffer] = []
        self.bindings: list[Value] = []
        self.buf_of: dict[tuple, int] = {}
        self.next_id = 0
        self.stage: Stage | None = None
        self.memo: dict = {}
        self.row_memo: dict[Node, int] = {}
        self.locs = loc_list

    # -- buffers and ops -----------------------------------------------------------------
    def buffer(self, value: Value, role: str, view: tuple | None = None) -> int:
        key = (value, role, view)
        if key not in self.buf_of:
            t = value.type
            if view is None:
                shape, strides, offset = t.shape, _contiguous(t.shape), 0
            else:
                shape, strides, offset = view
            name = f"{'in' if role == 'in' else 'out'}{len(self.buffers)}"
            self.buffers.append(Buffer(name, t.dtype, shape, strides, offset, role))
            self.bindings.append(value)
            self.buf_of[key] = len(self.buffers) - 1
        return self.buf_of[key]

    def emit(self, op: str, args=(), dtype=None, **attrs) -> int:
        k = KOp(self.next_id, op, tuple(args), dtype, attrs)
        self.next_id += 1
        self.stage.ops.append(k)
        return k.id

    def const(self, value, dtype) -> int:
        key = ("const", repr(value), dtype.name)
        if key not in self.memo:
            self.memo[key] = self.emit("const", (), dtype, value=value)
        return self.memo[key]

    def index(self, expr: Expr) -> int:
        key = ("index", expr)
        if key not in self.memo:
            self.memo[key] = self.emit("index", (), D.int64, expr=expr)
        return self.memo[key]

    def load(self, value: Value, index: tuple[Expr, ...]) -> int:
        b = self.buffer(value, "in")
        key = ("load", b, index)
        if key not in self.memo:
            self.memo[key] = self.emit("load", (), value.type.dtype, buffer=b, index=index)
        return self.memo[key]

    def store(self, value: Value, index: tuple[Expr, ...], ref: int) -> None:
        b = self.buffer(value, "out")
        self.emit("store", (ref,), None, buffer=b, index=index)

    def new_stage(self, extents: tuple[int, ...], reverse: bool = False) -> Stage:
        self.stage = Stage(extents, [], reverse)
        self.memo = {}
        return self.stage

    # -- values --------------------------------------------------------------------------
    def read(self, v: Value | bool | int | float, index: tuple[Expr, ...], dtype=None) -> int:
        """The value of operand ``v`` at ``index`` (in ``v``'s own shape)."""
        if is_scalar(v):
            return self.const(v, dtype)
        root, idx = resolve(v, index)
        node = root.producer
        if node is not None:
            place = self.g.place.get(node)
            if place is not None and idx == place.index:
                if node.op == "matmul":  # the gemm's product, in its buffer
                    return self.load_own(root, idx)
                if place.level == "row":
                    return self.row_memo[node]
                return self.member(node)
            if place is not None and place.level == "full" and node.op != "matmul":
                return self.compute(node, idx)  # the same row, elsewhere (fusion.same_row)
            if node in self.inline:
                key = ("inline", node, idx)
                if key not in self.memo:
                    self.memo[key] = self.compute(node, idx)
                return self.memo[key]
        return self.load(root, idx)

    def load_own(self, value: Value, index) -> int:
        b = self.buffer(value, "out")
        key = ("load", b, index)
        if key not in self.memo:
            self.memo[key] = self.emit("load", (), value.type.dtype, buffer=b, index=index)
        return self.memo[key]

    def member(self, node: Node) -> int:
        key = ("member", node)
        if key not in self.memo:
            self.memo[key] = self.compute(node, self.g.place[node].index)
        return self.memo[key]

    def note(self, node: Node) -> None:
        """Record ``node``'s source line among the kernel's."""
        if node.loc is not None and str(node.loc) not in self.locs:
            self.locs.append(str(node.loc))

    def compute(self, node: Node, index: tuple[Expr, ...]) -> int:
        """Emit ``node``'s op at ``index`` (its output index) and return the value."""
        self.note(node)
        op, attrs, out_t = node.op, node.attrs, node.output.type
        if op in _SPECIAL:
            return _SPECIAL[op](self, node, index)
        values = [x for x in node.inputs if isinstance(x, Value)]
        lit_dtype = values[-1].type.dtype if values else out_t.dtype
        if op == "where" and values[1:]:
            lit_dtype = out_t.dtype
        args = [self.read(x, index, lit_dtype) for x in node.inputs]
        if op in ("copy", "stop_gradient", "check_range"):
            return args[0]
        if op == "convert":
            return self.emit("convert", args, attrs["dtype"])
        return self.emit(op, args, out_t.dtype)


# -- ops that read off-point or create values ------------------------------------------------


def _clamp(b: _Builder, ref: int, n: int) -> int:
    i64 = D.int64
    lo = b.emit("maximum", (ref, b.const(0, i64)), i64)
    return b.emit("minimum", (lo, b.const(max(n - 1, 0), i64)), i64)


def _and(b: _Builder, conds: list[int]) -> int | None:
    out = None
    for c in conds:
        out = c if out is None else b.emit("logical_and", (out, c), D.bool_)
    return out


def _window(b: _Builder, pos: int, start: int, step: int, size: int):
    """(in-window condition, clamped source position) of ``pos`` in a strided window."""
    i64 = D.int64
    j = b.emit("sub", (pos, b.const(start, i64)), i64)
    conds = [b.emit("ge", (j, b.const(0, i64)), D.bool_)]
    if step != 1:
        q = b.emit("floordiv", (j, b.const(step, i64)), i64)
        r = b.emit("remainder", (j, b.const(step, i64)), i64)
        conds.append(b.emit("eq", (r, b.const(0, i64)), D.bool_))
        j = q
    conds.append(b.emit("lt", (j, b.const(size, i64)), D.bool_))
    return _and(b, conds), _clamp(b, j, size)


def _at_index(b: _Builder, idx: Value, index, axis: int, n: int, where) -> tuple:
    """``where`` with its ``axis`` position replaced by the index value ``idx[index]`` (an
    int64, negative values counted from the end of the ``n`` positions)."""
    k = b.read(idx, index)
    i64 = D.int64
    if idx.type.dtype is not i64:
        k = b.emit("convert", (k,), i64)
    neg = b.emit("lt", (k, b.const(0, i64)), D.bool_)
    k = b.emit("where", (neg, b.emit("add", (k, b.const(n, i64)), i64), k), i64)
    out = list(where)
    out[axis] = Expr(((Dyn(k, 0, n - 1), 1),))
    return tuple(out)


def _gather(b: _Builder, node: Node, index):
    x, idx = node.inputs
    axis = node.attrs["axis"]
    return b.read(x, _at_index(b, idx, index, axis, x.type.shape[axis], index))


def _pad(b: _Builder, node: Node, index):
    (x,) = node.inputs
    a = node.attrs
    conds, src = [], []
    for d, size in enumerate(x.type.shape):
        lo, it = a["low"][d], a["interior"][d]
        if lo == 0 and a["high"][d] == 0 and it == 0:
            src.append(index[d])
            continue
        cond, j = _window(b, b.index(index[d]), lo, it + 1, size)
        conds.append(cond)
        src.append(Expr(((Dyn(j, 0, size - 1), 1),)))
    loaded = b.read(x, tuple(src))
    cond = _and(b, conds)
    if cond is None:
        return loaded
    fill = b.const(a["value"], x.type.dtype)
    return b.emit("where", (cond, loaded, fill), x.type.dtype)


def _concat(b: _Builder, node: Node, index):
    axis = node.attrs["axis"]
    dtype = node.output.type.dtype
    parts = [(v, v.type.shape[axis]) for v in node.inputs if v.type.shape[axis] > 0]
    pos = b.index(index[axis])
    offsets, off = [], 0
    for _, n in parts:
        offsets.append(off)
        off += n
    result = None
    for (v, n), start in reversed(list(zip(parts, offsets))):
        j = b.emit("sub", (pos, b.const(start, D.int64)), D.int64)
        src = list(index)
        src[axis] = Expr(((Dyn(_clamp(b, j, n), 0, n - 1), 1),))
        value = b.read(v, tuple(src))
        if result is None:
            result = value
        else:
            cond = b.emit("lt", (j, b.const(n, D.int64)), D.bool_)
            result = b.emit("where", (cond, value, result), dtype)
    return result


def _slice_scatter(b: _Builder, node: Node, index):
    base, update = node.inputs
    a = node.attrs
    conds, src = [], []
    for d, size in enumerate(update.type.shape):
        cond, j = _window(b, b.index(index[d]), a["starts"][d], a["steps"][d], size)
        conds.append(cond)
        src.append(Expr(((Dyn(j, 0, size - 1), 1),)))
    old = b.read(base, index)
    if not conds:
        return b.read(update, tuple(src))
    new = b.read(update, tuple(src))
    return b.emit("where", (_and(b, conds), new, old), node.output.type.dtype)


def _full(b: _Builder, node: Node, index):
    return b.const(node.attrs["value"], node.attrs["dtype"])


def _iota(b: _Builder, node: Node, index):
    i = b.index(index[node.attrs["axis"]])
    dtype = node.attrs["dtype"]
    return i if dtype is D.int64 else b.emit("convert", (i,), dtype)


def _philox(b: _Builder, node: Node, index):
    seed, offset = (b.read(v, ()) for v in node.inputs)
    position = ravel(index, node.output.type.shape)
    return b.emit("philox", (seed, offset), node.attrs["dtype"], index=position)


_SPECIAL = {
    "gather": _gather,
    "pad": _pad,
    "concat": _concat,
    "slice_scatter": _slice_scatter,
    "full": _full,
    "iota": _iota,
    "philox_uniform": _philox,
}


# -- kernels ---------------------------------------------------------------------------------


def _loop_kernel(g: Group, stored: set[Value], inline) -> tuple[Kernel, list[Value]]:
    locs: list[str] = []
    b = _Builder(g, stored, locs, inline)
    stages: list[Stage] = []
    reductions = [n for n in g.nodes if n in g.reduce_stage]
    rows = [n for n in g.nodes if g.place[n].level == "row" and n not in g.reduce_stage]
    full = [n for n in g.nodes if g.place[n].level == "full"]
    if not g.R:
        stages.append(b.new_stage(()))
        for n in g.nodes:
            if n.output in stored:
                b.store(n.output, g.place[n].index, b.member(n))
        return _finish(g, b, stages, locs)
    last = max([g.reduce_stage[n] for n in reductions] + [g.place[n].stage for n in full] + [0])
    done_rows: set[Node] = set()
    for s in range(last + 2):
        scalar = b.new_stage(())
        for n in reductions:
            if g.reduce_stage[n] == s - 1 and n.output in stored:
                b.store(n.output, g.place[n].index, b.row_memo[n])
        for n in rows:
            if n not in done_rows and g.place[n].stage <= s:
                done_rows.add(n)
                b.row_memo[n] = b.compute(n, g.place[n].index)
                if n.output in stored:
                    b.store(n.output, g.place[n].index, b.row_memo[n])
        if scalar.ops:
            stages.append(scalar)
        if s > last:
            break
        loop = b.new_stage(g.R)
        for n in reductions:
            if g.reduce_stage[n] == s:
                operand = n.inputs[0]
                x = b.read(operand, g.full_place(operand.type.shape))
                kind = REDUCE_KINDS[n.op]
                b.note(n)
                b.row_memo[n] = b.emit("reduce", (x,), n.output.type.dtype, kind=kind)
        for n in full:
            if g.place[n].stage == s and n.output in stored:
                b.store(n.output, g.place[n].index, b.member(n))
        if loop.ops:
            stages.append(loop)
    return _finish(g, b, stages, locs)


def _finish(g: Group, b: _Builder, stages: list[Stage], locs: list[str]):
    ops = tuple(dict.fromkeys(n.op for n in g.nodes))
    k = Kernel(g.name, b.buffers, g.P, stages, tuple(locs), ops)
    return k, b.bindings


def _closed_kernel(g: Group, inline) -> tuple[Kernel, list[Value]]:
    (node,) = g.nodes
    locs = [str(node.loc)] if node.loc is not None else []
    b = _Builder(g, set(), locs, inline)
    x = node.inputs[0]
    shape = x.type.shape
    out = node.output
    if node.op == "cumsum":
        axis = node.attrs["axis"]
        P = tuple(n for d, n in enumerate(shape) if d != axis)
        pv = [var(f"p{k}", n) for k, n in enumerate(P)]
        idx = tuple(pv[:axis]) + (var("r0", shape[axis]),) + tuple(pv[axis:])
        stage = b.new_stage((shape[axis],), node.attrs["reverse"])
        v = b.read(x, idx)
        if x.type.dtype is not out.type.dtype:
            v = b.emit("convert", (v,), out.type.dtype)
        b.store(out, idx, b.emit("scan", (v,), out.type.dtype, kind="sum"))
        return Kernel(g.name, b.buffers, P, [stage], tuple(locs), ("cumsum",)), b.bindings
    if node.op == "argsort":
        return _argsort(g, b, node, locs)
    return _scatter_add(g, b, node, locs)


def _argsort(g: Group, b: _Builder, node: Node, locs):
    x = node.inputs[0]
    shape = x.type.shape
    axis, desc = node.attrs["axis"], node.attrs["descending"]
    pv = tuple(var(f"p{k}", n) for k, n in enumerate(shape))
    i64, bool_ = D.int64, D.bool_
    first = b.new_stage(())
    xi = b.read(x, pv)
    i = b.index(pv[axis])
    loop = b.new_stage((shape[axis],))
    at = list(pv)
    at[axis] = var("r0", shape[axis])
    xr = b.read(x, tuple(at))
    j = b.index(at[axis])
    xi_l = xi
    nan_r = b.emit("ne", (xr, xr), bool_)
    nan_i = b.emit("ne", (xi_l, xi_l), bool_)
    if desc:
        strict = b.emit("gt", (xr, xi_l), bool_)
        nan_first = b.emit("logical_and", (nan_r, b.emit("logical_not", (nan_i,), bool_)), bool_)
    else:
        strict = b.emit("lt", (xr, xi_l), bool_)
        nan_first = b.emit("logical_and", (nan_i, b.emit("logical_not", (nan_r,), bool_)), bool_)
    before = b.emit("logical_or", (strict, nan_first), bool_)
    same = b.emit(
        "logical_or",
        (b.emit("eq", (xr, xi_l), bool_), b.emit("logical_and", (nan_r, nan_i), bool_)),
        bool_,
    )
    tie = b.emit("logical_and", (same, b.emit("lt", (j, i), bool_)), bool_)
    count = b.emit("convert", (b.emit("logical_or", (before, tie), bool_),), i64)
    rank = b.emit("reduce", (count,), i64, kind="sum")
    last = b.new_stage(())
    dst = list(pv)
    dst[axis] = Expr(((Dyn(rank, 0, shape[axis] - 1), 1),))
    b.store(node.output, tuple(dst), i)
    stages = [first, loop, last]
    return Kernel(g.name, b.buffers, shape, stages, tuple(locs), ("argsort",)), b.bindings


def _scatter_add(g: Group, b: _Builder, node: Node, locs):
    x, idx, src = node.inputs
    axis = node.attrs["axis"]
    out = node.output
    rx = tuple(var(f"r{k}", n) for k, n in enumerate(x.type.shape))
    copy = b.new_stage(x.type.shape)
    b.store(out, rx, b.read(x, rx))
    rs = tuple(var(f"r{k}", n) for k, n in enumerate(src.type.shape))
    add = b.new_stage(src.type.shape)
    dst = _at_index(b, idx, rs, axis, x.type.shape[axis], rs)
    cur = b.load_own(out, dst)
    b.memo.pop(("load", b.buffer(out, "out"), dst), None)
    total = b.emit("add", (cur, b.read(src, rs)), out.type.dtype)
    b.store(out, dst, total)
    stages = [copy, add]
    return Kernel(g.name, b.buffers, (), stages, tuple(locs), ("scatter_add",)), b.bindings


def _gemm_kernel(g: Group, stored: set[Value], inline) -> tuple[GemmKernel, list[Value]]:
    mm = next(n for n in g.nodes if n.op == "matmul")
    locs: list[str] = [str(mm.loc)] if mm.loc is not None else []
    b = _Builder(g, stored, locs, inline)
    a_v, b_v = mm.inputs
    *batch_shape, m, k = a_v.type.shape
    n = b_v.type.shape[-1]
    nb = 1
    for d in batch_shape:
        nb *= d
    ia = _operand(b, a_v)
    ib = _operand(b, b_v)
    out = b.buffer(mm.output, "out")
    epilogue = None
    others = [x for x in g.nodes if x is not mm]
    if others:
        b.new_stage(())
        stage = b.stage
        for x in others:
            if x.output in stored:
                b.store(x.output, g.place[x].index, b.member(x))
        epilogue = Kernel(f"{g.name}_epilogue", b.buffers, g.P, [stage], tuple(locs), ())
    ops = tuple(dict.fromkeys(x.op for x in g.nodes))
    kernel = GemmKernel(
        g.name, b.buffers, ia, ib, out, nb, m, n, k, False, False, epilogue, tuple(locs), ops
    )
    return kernel, b.bindings


def _operand(b: _Builder, value: Value) -> int:
    layout = gemm_layout(value)
    if layout is None:
        raise AssertionError(f"matmul operand {value} was not prepared")
    root, strides, offset = layout
    return b.buffer(root, "in", (value.type.shape, strides, offset))


def lower(plan: FusionPlan) -> LoweredProgram:
    """Kernel IR for every group of ``plan``, in its run order."""
    readers = _readers(plan)
    stored: set[Value] = set()
    for g in plan.groups:
        for n in g.nodes:
            who = readers.get(n.output, set())
            if n.op == "matmul" or any(w is not g for w in who):
                stored.add(n.output)
    kernels, bindings = [], []
    for g in plan.groups:
        if g.kind == "gemm":
            k, binds = _gemm_kernel(g, stored, plan.inline)
        elif g.kind == "closed":
            k, binds = _closed_kernel(g, plan.inline)
        else:
            k, binds = _loop_kernel(g, stored, plan.inline)
        kernels.append(k)
        bindings.append(binds)
    return LoweredProgram(plan.graph, kernels, bindings, plan.decisions)
