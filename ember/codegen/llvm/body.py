"""Emission of a kernel's stages inside one LLVM function: loops, index arithmetic, loads and
stores, reductions and scans (the scalar ops themselves are `ember.codegen.llvm.scalar`).

`define_kernel_function` makes the two functions every kernel has: ``K(ptr bufs, i64 lo,
i64 hi)``, which reads the buffer pointers from the array, and the internal ``K.body`` it calls
with one pointer parameter per buffer, so output pointers can carry ``noalias`` (inlining turns
it into scoped alias metadata, which is what lets loops vectorize without run-time overlap
checks). `Emitter` builds loops and stack slots in a function; `Body` emits a `Kernel`'s
stages at a point of its parallel domain given by ``Body.vars``.

Values that live across loop iterations (accumulators of reductions and scans) are stack slots
in the entry block, which mem2reg turns into phi nodes; a value defined inside a stage loop is
dropped when the loop ends (the kernel IR only lets reductions out). Reductions: float ``sum``
and ``prod`` carry ``reassoc`` (so they vectorize), float ``max``/``min`` use
``llvm.maximum``/``llvm.minimum`` (NaN propagates), float16/bfloat16 accumulate in float32 and
round once, argmax/argmin keep the first extreme position (the first NaN wins). Reading a
reduction inside its own loop is an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from llvmlite import ir

from ...ir import dtypes as D
from ...ir.dtypes import DType
from ...ir.errors import GraphError
from ...ir.index import Dyn, Expr, Var, _DivMod
from ...ir.kernel import Buffer, Kernel, KOp, Stage
from . import scalar as S

__all__ = ["Body", "Emitter", "define_kernel_function", "nest", "when"]

PTR = ir.PointerType()
VOID = ir.VoidType()


def define_kernel_function(module: ir.Module, name: str, buffers: Sequence[Buffer]) -> ir.Function:
    """``K`` (the entry: reads the pointer array) and the internal ``K.body`` it calls, whose
    buffer parameters are separate (``noalias`` for outputs). Returns ``K.body``."""
    body = ir.Function(
        module, ir.FunctionType(VOID, [PTR] * len(buffers) + [S.I64, S.I64]), name + ".body"
    )
    body.linkage = "internal"
    for arg, buf in zip(body.args, buffers):
        if buf.role == "out":
            arg.add_attribute("noalias")
    entry = ir.Function(module, ir.FunctionType(VOID, [PTR, S.I64, S.I64]), name)
    bufs, lo, hi = entry.args
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    ptrs = [
        b.load(b.gep(bufs, [ir.Constant(S.I64, i)], inbounds=True, source_etype=PTR), typ=PTR)
        for i in range(len(buffers))
    ]
    b.call(body, [*ptrs, lo, hi])
    b.ret_void()
    return body


class Emitter:
    """Loops, stack slots and unit unraveling inside one function (``b`` is its builder)."""

    def __init__(self, fn: ir.Function) -> None:
        self.fn = fn
        entry = fn.append_basic_block("entry")
        self.allocas = ir.IRBuilder(entry)
        self.b = ir.IRBuilder(fn.append_basic_block("start"))
        self.allocas.branch(self.b.block)
        self.allocas.position_at_start(entry)

    def i64(self, v: int) -> ir.Constant:
        return ir.Constant(S.I64, v)

    def slot(self, ty: ir.Type, name: str) -> ir.Value:
        """A stack slot in the entry block (mem2reg turns it into registers)."""
        ptr = self.allocas.alloca(ty, name=name)
        ptr.type = PTR
        return ptr

    @contextmanager
    def loop(
        self, start: ir.Value, stop: ir.Value, name: str, reverse: bool = False,
        unroll: bool = True,
    ) -> Iterator:  # fmt: skip
        """``for i in [start, stop)`` (from ``stop - 1`` down when ``reverse``); yields ``i``.

        ``unroll=False`` tells LLVM never to unroll it (``llvm.loop.unroll.disable``): an
        outer loop around a vectorized inner loop, which full unrolling multiplies into
        hundreds of kilobytes of IR and a tenth of a second of compile for nothing.
        """
        b = self.b
        pre = b.block
        head = b.append_basic_block(name + ".head")
        body = b.append_basic_block(name + ".body")
        done = b.append_basic_block(name + ".done")
        b.branch(head)
        b.position_at_end(head)
        k = b.phi(S.I64, name)
        k.add_incoming(stop if reverse else start, pre)
        if reverse:
            b.cbranch(b.icmp_signed(">", k, start), body, done)
            b.position_at_end(body)
            i = b.sub(k, self.i64(1), flags=["nsw"])
            yield i
            k.add_incoming(i, b.block)
        else:
            b.cbranch(b.icmp_signed("<", k, stop), body, done)
            b.position_at_end(body)
            yield k
            k.add_incoming(b.add(k, self.i64(1), flags=["nsw"]), b.block)
        back = b.branch(head)
        if not unroll:
            back.set_metadata("llvm.loop", self._no_unroll())
        b.position_at_end(done)

    def _no_unroll(self) -> ir.MDValue:
        """A loop ID (its first operand itself, as LLVM requires) asking for no unrolling."""
        module = self.fn.module
        option = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
        # a fresh node per loop (loop IDs are distinct), then made to point at itself
        loop_id = module.add_metadata([ir.MetaDataString(module, f"ember.{len(module.metadata)}")])
        loop_id.operands = (loop_id, option)
        return loop_id

    def unravel(self, flat: ir.Value, shape: Sequence[int]) -> list[ir.Value]:
        """The row-major multi-index of ``flat`` in ``shape``."""
        if not shape:
            return []
        out: list[ir.Value] = []
        rest = flat
        for n in reversed(shape[1:]):
            out.append(self.b.urem(rest, self.i64(n)) if n > 1 else self.i64(0))
            rest = self.b.udiv(rest, self.i64(n)) if n > 1 else rest
        out.append(rest)
        return out[::-1]


class Body:
    """The ops of one kernel's stages, emitted at a point given by ``vars``."""

    def __init__(self, em: Emitter, kernel: Kernel, ptrs: Sequence[ir.Value]) -> None:
        self.em = em
        self.kernel = kernel
        self.ptrs = [
            em.b.gep(p, [em.i64(buf.offset)], inbounds=True, source_etype=S.mem_type(buf.dtype))
            if buf.offset
            else p
            for p, buf in zip(ptrs, kernel.buffers)
        ]
        self.vars: dict[str, ir.Value] = {}
        self.values: dict[int, ir.Value] = {}
        self.dtypes: dict[int, DType] = {op.id: op.dtype for op in kernel.ops()}

    def fail(self, op: KOp, detail: str) -> GraphError:
        return GraphError(f"kernel @{self.kernel.name}", f"%{op.id} {op.op}: {detail}", None)

    # index expressions -------------------------------------------------------------------
    def expr(self, e: Expr) -> ir.Value:
        b = self.em.b
        acc: ir.Value | None = None
        for atom, coef in e.terms:
            v = self.atom(atom)
            if coef != 1:
                v = b.mul(v, self.em.i64(coef), flags=["nsw"])
            acc = v if acc is None else b.add(acc, v, flags=["nsw"])
        if acc is None:
            return self.em.i64(e.const)
        return b.add(acc, self.em.i64(e.const), flags=["nsw"]) if e.const else acc

    def atom(self, atom: Var | Dyn | _DivMod) -> ir.Value:
        if isinstance(atom, Var):
            return self.vars[atom.name]
        if isinstance(atom, _DivMod):
            inner, d = self.expr(atom.inner), self.em.i64(atom.d)
            return self.em.b.udiv(inner, d) if atom.kind == "div" else self.em.b.urem(inner, d)
        return S.convert(self.em.b, self.values[atom.ref], self.dtypes[atom.ref], D.int64)

    def address(self, op: KOp) -> tuple[ir.Value, Buffer]:
        index = op.attrs["buffer"]
        buf = self.kernel.buffers[index]
        linear = Expr()
        for e, stride in zip(op.attrs["index"], buf.strides):
            linear = linear + e * stride
        ptr = self.em.b.gep(
            self.ptrs[index], [self.expr(linear)], inbounds=True, source_etype=S.mem_type(buf.dtype)
        )
        return ptr, buf

    # ops ---------------------------------------------------------------------------------
    def set(self, op: KOp, value: ir.Value) -> None:
        self.values[op.id] = value

    def op(self, op: KOp) -> None:
        b = self.em.b
        name = op.op
        if name == "load":
            ptr, buf = self.address(op)
            self.set(op, S.load_value(b, ptr, buf.dtype))
        elif name == "store":
            ptr, buf = self.address(op)
            (a,) = op.args
            S.store_value(
                b, S.convert(b, self.values[a], self.dtypes[a], buf.dtype), ptr, buf.dtype
            )
        elif name == "const":
            self.set(op, S.constant(op.dtype, op.attrs["value"]))
        elif name == "index":
            self.set(op, S.convert(b, self.expr(op.attrs["expr"]), D.int64, op.dtype))
        elif name == "philox":
            seed, offset = (self.values[a] for a in op.args)
            index = self.expr(op.attrs["index"])
            self.set(op, S._philox(b, seed, offset, index, op.dtype))
        else:
            args = [self.values[a] for a in op.args]
            self.set(op, S.emit_op(b, name, args, [self.dtypes[a] for a in op.args], op.dtype))

    # stages ------------------------------------------------------------------------------
    def run(self, stages: Sequence[Stage]) -> None:
        for stage in stages:
            if stage.extents:
                self.loop_stage(stage)
            else:
                for op in stage.ops:
                    self.op(op)

    def loop_stage(self, stage: Stage) -> None:
        em = self.em
        reductions = {op.id: op for op in stage.ops if op.op in ("reduce", "scan")}
        accs = {i: self.init_acc(op) for i, op in reductions.items()}
        known = set(self.values)
        extents = stage.extents
        with nest(em, extents, stage.var_names(), stage.reverse) as ivs:
            self.vars.update(zip(stage.var_names(), ivs))
            for op in stage.ops:
                used = [a for a in op.args if a in reductions and reductions[a].op == "reduce"]
                if used:
                    raise self.fail(op, f"reads the reduction %{used[0]} inside its own loop")
                if op.op == "reduce":
                    self.update(op, accs[op.id], _flat(em, ivs, extents))
                elif op.op == "scan":
                    self.set(op, self.scan(op, accs[op.id]))
                else:
                    self.op(op)
        for name in stage.var_names():
            del self.vars[name]
        for key in set(self.values) - known:  # values of the loop body end with it
            del self.values[key]
        for i, op in reductions.items():
            if op.op == "reduce":
                self.set(op, self.finish(op, accs[i]))

    # column kernels: a block of points along the last parallel dim per unit ----------------
    def run_lanes(
        self, stages: Sequence[Stage], lane: str, base: ir.Value, count: ir.Value, width: int
    ) -> None:
        """The stages at the ``count`` (at most ``width``) points ``base, base + 1, ...`` of
        parallel variable ``lane``, with the lanes innermost: each stage loops over its extents
        and, inside, over the lanes, so loads that are contiguous along ``lane`` (a column
        reduction reading rows of a matrix) vectorize across it. Each lane's reductions run
        in its stage's loop order, as at a single point. Values a later stage reads (reduction
        results, once-per-point values) live in per-lane stack arrays."""
        em = self.em
        crossing: dict[int, ir.Value] = {}  # value id -> [width x T] slot

        def lanes():
            return _LaneScope(self, em.loop(em.i64(0), count, "lane"), lane, base, crossing)

        for stage in stages:
            if not stage.extents:
                with lanes():
                    for op in stage.ops:
                        self.op(op)
                        if op.op != "store":
                            self.keep_lane(op.id, crossing, width)
                continue
            reductions = {op.id: op for op in stage.ops if op.op in ("reduce", "scan")}
            accs = {i: self.lane_accs(op, width) for i, op in reductions.items()}
            with lanes() as j:
                for i, op in reductions.items():
                    self.init_lane(op, accs[i], j)
            extents = stage.extents
            with nest(em, extents, stage.var_names(), stage.reverse) as ivs:
                self.vars.update(zip(stage.var_names(), ivs))
                with lanes() as j:
                    for op in stage.ops:
                        if op.op == "reduce":
                            slots = self.lane_slots(accs[op.id], j)
                            self.update(op, slots, _flat(em, ivs, extents))
                        elif op.op == "scan":
                            self.set(op, self.scan(op, self.lane_slots(accs[op.id], j)))
                        else:
                            self.op(op)
            for name in stage.var_names():
                del self.vars[name]
            with lanes() as j:
                for i, op in reductions.items():
                    if op.op == "reduce":
                        self.set(op, self.finish(op, self.lane_slots(accs[i], j)))
                        self.keep_lane(op.id, crossing, width)

    def lane_array(self, ty: ir.Type, width: int, name: str) -> ir.Value:
        """A stack array of ``width`` values of ``ty``, one per lane."""
        slot = self.em.slot(ir.ArrayType(ty, width), name)
        slot.ety = ir.ArrayType(ty, width)
        return slot

    def lane_accs(self, op: KOp, width: int) -> tuple[ir.Value, ...]:
        accs = (self.lane_array(S.reg_type(self.acc_dtype(op)), width, f"acc{op.id}"),)
        if op.attrs["kind"] in ("argmax", "argmin"):
            accs += (self.lane_array(S.I64, width, f"pos{op.id}"),)
        return accs

    def lane_slots(self, arrays: tuple[ir.Value, ...], j: ir.Value) -> tuple[ir.Value, ...]:
        return tuple(self.lane_at(a, j) for a in arrays)

    def lane_at(self, array: ir.Value, j: ir.Value) -> ir.Value:
        return self.em.b.gep(array, [self.em.i64(0), j], inbounds=True, source_etype=array.ety)

    def init_lane(self, op: KOp, arrays: tuple[ir.Value, ...], j: ir.Value) -> None:
        slots = self.lane_slots(arrays, j)
        self.em.b.store(S.identity(self.acc_dtype(op), op.attrs["kind"]), slots[0])
        if len(slots) > 1:
            self.em.b.store(self.em.i64(0), slots[1])

    def keep_lane(self, op_id: int, crossing: dict, width: int) -> None:
        """Store value ``op_id`` of the current lane for later stages."""
        value = self.values[op_id]
        slot = crossing.get(op_id)
        if slot is None:
            slot = crossing[op_id] = self.lane_array(value.type, width, f"lane{op_id}")
        self.em.b.store(value, self.lane_at(slot, self._lane_j))

    def acc_dtype(self, op: KOp) -> DType:
        """The dtype a reduction or scan accumulates in (float32 for 16-bit floats)."""
        if op.attrs["kind"] in ("argmax", "argmin"):
            return self.dtypes[op.args[0]]
        return D.float32 if op.dtype in (D.float16, D.bfloat16) else op.dtype

    def init_acc(self, op: KOp) -> tuple[ir.Value, ...]:
        em = self.em
        kind = op.attrs["kind"]
        dt = self.acc_dtype(op)
        acc = em.slot(S.reg_type(dt), f"acc{op.id}")
        em.b.store(S.identity(dt, kind), acc)
        if kind not in ("argmax", "argmin"):
            return (acc,)
        pos = em.slot(S.I64, f"pos{op.id}")
        em.b.store(em.i64(0), pos)
        return acc, pos

    def operand(self, op: KOp, dt: DType) -> ir.Value:
        (a,) = op.args
        return S.convert(self.em.b, self.values[a], self.dtypes[a], dt)

    def update(self, op: KOp, slots: tuple[ir.Value, ...], position: ir.Value) -> None:
        b = self.em.b
        kind = op.attrs["kind"]
        dt = self.acc_dtype(op)
        x = self.operand(op, dt)
        acc = b.load(slots[0], typ=S.reg_type(dt))
        if kind in ("argmax", "argmin"):
            better = _better(b, kind, x, acc, dt)
            b.store(b.select(better, x, acc), slots[0])
            pos = b.load(slots[1], typ=S.I64)
            b.store(b.select(better, position, pos), slots[1])
            return
        b.store(_combine(b, kind, acc, x, dt), slots[0])

    def scan(self, op: KOp, slots: tuple[ir.Value, ...]) -> ir.Value:
        b = self.em.b
        dt = self.acc_dtype(op)
        x = self.operand(op, dt)
        acc = b.load(slots[0], typ=S.reg_type(dt))
        total = b.fadd(acc, x) if dt.is_floating_point else _combine(b, "sum", acc, x, dt)
        b.store(total, slots[0])
        return S.convert(b, total, dt, op.dtype)

    def finish(self, op: KOp, slots: tuple[ir.Value, ...]) -> ir.Value:
        b = self.em.b
        if op.attrs["kind"] in ("argmax", "argmin"):
            return S.convert(b, b.load(slots[1], typ=S.I64), D.int64, op.dtype)
        dt = self.acc_dtype(op)
        return S.convert(b, b.load(slots[0], typ=S.reg_type(dt)), dt, op.dtype)


class _LaneScope:
    """One loop over the lanes: inside it ``lane`` is ``base + j``, and the per-lane values of
    earlier stages are loaded; the values defined inside end with it."""

    def __init__(self, body: Body, loop, lane: str, base: ir.Value, crossing: dict) -> None:
        self.body, self.loop, self.lane, self.base, self.crossing = body, loop, lane, base, crossing

    def __enter__(self) -> ir.Value:
        body = self.body
        self.known = set(body.values)
        j = self.loop.__enter__()
        body._lane_j = j
        body.vars[self.lane] = body.em.b.add(self.base, j, flags=["nsw"])
        for op_id, slot in self.crossing.items():
            body.values[op_id] = body.em.b.load(body.lane_at(slot, j), typ=slot.ety.element)
        return j

    def __exit__(self, *exc) -> None:
        self.loop.__exit__(*exc)
        body = self.body
        del body.vars[self.lane]
        for key in set(body.values) - self.known:
            del body.values[key]
        for op_id in self.crossing:
            body.values.pop(op_id, None)


@contextmanager
def nest(em: Emitter, extents: Sequence[int], names: Sequence[str], reverse: bool) -> Iterator:
    """Nested loops over ``extents`` (row-major, outermost first); yields the variables."""
    if not extents:
        yield []
        return
    with (
        em.loop(em.i64(0), em.i64(extents[0]), names[0], reverse) as i,
        nest(em, extents[1:], names[1:], reverse) as rest,
    ):
        yield [i, *rest]


def _flat(em: Emitter, ivs: Sequence[ir.Value], extents: Sequence[int]) -> ir.Value:
    """The row-major position of ``ivs`` within ``extents``."""
    flat: ir.Value = em.i64(0)
    for i, n in zip(ivs, extents):
        flat = em.b.add(em.b.mul(flat, em.i64(n), flags=["nsw"]), i, flags=["nsw"])
    return flat


def _combine(b: ir.IRBuilder, kind: str, acc: ir.Value, x: ir.Value, dt: DType) -> ir.Value:
    """One step of reduction ``kind`` (sum, prod, max, min)."""
    if dt.is_floating_point:
        if kind == "sum":
            return b.fadd(acc, x, flags=("reassoc",))
        if kind == "prod":
            return b.fmul(acc, x, flags=("reassoc",))
        return S.intrinsic(b, "llvm.maximum" if kind == "max" else "llvm.minimum", [acc, x])
    if dt is D.bool_:
        return b.or_(acc, x) if kind in ("sum", "max") else b.and_(acc, x)
    if kind == "sum":
        return b.add(acc, x)
    if kind == "prod":
        return b.mul(acc, x)
    signed = dt.is_signed
    cmp = b.icmp_signed if signed else b.icmp_unsigned
    return b.select(cmp(">" if kind == "max" else "<", x, acc), x, acc)


def _better(b: ir.IRBuilder, kind: str, x: ir.Value, best: ir.Value, dt: DType) -> ir.Value:
    """Whether ``x`` replaces ``best`` in argmax/argmin (strictly better; the first NaN wins)."""
    pred = ">" if kind == "argmax" else "<"
    if dt.is_floating_point:
        first_nan = b.and_(b.fcmp_unordered("uno", x, x), b.fcmp_ordered("ord", best, best))
        return b.or_(b.fcmp_ordered(pred, x, best), first_nan)
    if dt.category == D.INTEGER and dt.is_signed:
        return b.icmp_signed(pred, x, best)
    return b.icmp_unsigned(pred, x, best)


@contextmanager
def when(em: Emitter, cond: ir.Value) -> Iterator:
    then = em.b.append_basic_block("then")
    done = em.b.append_basic_block("done")
    em.b.cbranch(cond, then, done)
    em.b.position_at_end(then)
    yield
    em.b.branch(done)
    em.b.position_at_end(done)
