"""Running a Python function on tracing tensors and recording the graph it computes.

`trace_function(fn, args, kwargs)` runs ``fn`` once with every primitive call recorded into an
`ir.Graph` (one node per call, carrying the caller's file:line), and returns a `Traced`: the
graph and a plan of where each graph input comes from and where each output goes.

- **Inputs.** Tensor arguments, and every tensor that existed before the call and that the
  function touches (parameters, buffers, optimizer state, closures, globals), become graph
  inputs. They are read *by reference* at every call of the compiled program, never baked in.
  Tensors made during the trace from Python data (``tensor(0.0)``, index arrays) are
  constants: operations on constants alone run eagerly at trace time (constant folding), and a
  constant that meets a traced value becomes a ``full`` node or a constant input.
- **In-place updates** are functional inside the trace (`ember.frontend.trace_state`): the
  tensor takes a new graph value and the compiled program returns its final value as an extra
  output, which the runtime writes back. The same holds for ``.grad`` (assigned, accumulated
  or set to None) and for tensors an optimizer creates in its state during the step.
- **Random draws** read the generator's seed and offset as graph inputs; the runtime advances
  the generator by what the trace drew, so compiled and eager draws are the same numbers.
- **Python state** (`ember.tracer.watch`): what the trace read is guarded along its source;
  tensors reached by a source are read through it at every call; what it wrote (a tensor
  stored in a dict or an attribute, a counter, a list it appended to) becomes a `Store` that
  the compiled program repeats after each run, and an ``LRScheduler.step()`` is deferred to
  run after the graph.
- **Graph breaks.** Reading a traced value in Python raises `GraphBreakError`; the trace ends.

Every object the trace changed, tensors and Python state, is restored when it ends, with or
without an error: a trace has no side effects of its own, and the compiled program (or the
eager fallback, after a break) makes the call's effects once.
"""

from __future__ import annotations

import re
import sys
import threading

import numpy as np

from ..frontend import trace_state
from ..frontend.autograd.grad_mode import STATE
from ..frontend.autograd.graph import Node, read_view
from ..frontend.dispatch import _record, eager_bind
from ..frontend.tensor import Tensor
from ..ir import dtypes as D
from ..ir import ops as P
from ..ir.errors import GraphBreakError, user_location
from ..ir.graph import Graph, Value
from ..ir.types import TensorType
from . import pytree
from .arguments import arg_labels
from .plan import Deferred, InputSource, Store, Traced, WriteBack, input_array, input_name
from .sources import MISSING, Source
from .tracing_tensor import fake_array, new_tracing, tracing_class
from .watch import (
    STATEFUL,
    Guard,
    Watcher,
    nonzero,
    recording_getattribute,
    recording_setattr,
)

__all__ = ["Trace", "trace_function"]

_NAME = re.compile(r"[^0-9A-Za-z_]")
_MAKE = Tensor.__dict__["_make"].__func__


class _Lifted:
    """A tensor from outside, made a graph input: its input value and index, its `Source`,
    and the state the trace restores (``saved``: class, data, grad, grad_fn, requires_grad,
    version...)."""

    __slots__ = ("obj", "value", "index", "source", "saved")

    def __init__(self, obj, value, index, source, saved) -> None:
        self.obj = obj
        self.value = value
        self.index = index
        self.source = source
        self.saved = saved


_PATCHED = ("__getattribute__", "__setattr__")


class Trace:
    """The state of one trace; this thread's ``trace_state.active()`` while ``fn`` runs."""

    def __init__(self, name: str, labels: dict[int, str], concrete: bool = False) -> None:
        self.concrete = concrete  # ember.explain: carry actual values, record breaks, go on
        self.breaks: list[tuple] = []
        self.graph = Graph(_NAME.sub("_", name) or "main")
        self.sources: list[InputSource] = []
        self.lifted: dict[int, _Lifted] = {}
        self.labels = labels  # argument leaf index -> its name
        self.born: dict[int, Tensor] = {}
        self.consts: dict[int, Value] = {}
        self.rng: dict[int, list] = {}
        self.backward_ran = False
        self.no_grad_values: set[Value] = set()
        self.functions: list = []
        self.no_grad_writes: list = []
        self.hypers: dict = {}
        self.grad_read: dict[int, tuple] = {}  # id -> (tensor, whether .grad was None)
        self.grad_assigned: set[int] = set()  # .grad assigned before any read
        self.deferred: list[tuple] = []  # (object, function, args, kwargs)
        self.checks: list[Value] = []  # check_range nodes: extra outputs nothing reads
        self.watcher = Watcher()
        self.watcher.on_deferred_read = self._deferred_read
        self._installed: list = []

    # ---- installing ---------------------------------------------------------------------

    def __enter__(self) -> Trace:
        born = self.born
        me = threading.get_ident()

        def make(cls, data, requires_grad=False):
            t = _MAKE(cls, data, requires_grad)
            if threading.get_ident() == me:
                born[id(t)] = t
            return t

        Tensor._make = classmethod(make)
        P.push_override(self.bind)
        for cls in STATEFUL:
            for name, hook in zip(_PATCHED, (recording_getattribute, recording_setattr)):
                if name == "__setattr__" and "__setattr__" in cls.__dict__:
                    continue  # Module records its writes itself
                self._installed.append((cls, name, cls.__dict__.get(name)))
                setattr(cls, name, hook)
        trace_state.set_active(self)
        return self

    def __exit__(self, *exc) -> None:
        for cls, name, old in reversed(self._installed):
            if old is None:
                delattr(cls, name)
            else:
                setattr(cls, name, old)
        P.pop_override()
        Tensor._make = classmethod(_MAKE)
        try:
            self.restore()
        finally:  # (only now: other threads wait on lifted tensors while BUSY is set)
            trace_state.set_active(None)

    # ---- values -------------------------------------------------------------------------

    def is_const(self, t: Tensor) -> bool:
        return not t._traced and id(t) in self.born

    def bind(self, prim, args, attrs):
        """Every primitive call while tracing: fold constants, record everything else."""
        if not any(isinstance(a, Tensor) and not self.is_const(a) for a in args):
            return eager_bind(prim, args, attrs)
        ins = [self.value_of(a) if isinstance(a, Tensor) else _literal(a) for a in args]
        self.watcher.visit_stack(sys._getframe(2))  # (the user functions computing this)
        out = self.graph.add(prim.name, ins, dict(attrs), user_location())
        cv = None
        if self.concrete:
            with np.errstate(all="ignore"):
                cv = np.asarray(prim.impl(*(self.cv_of(a) for a in args), **attrs))
        if prim.category == "layout":  # a view of the operand's fake array: as_view sees it
            fake = prim.impl(*(a._data if isinstance(a, Tensor) else a for a in args), **attrs)
        else:
            fake = fake_array(out.type.shape, out.type.dtype.np)
        result = new_tracing(out, fake, cv)
        if prim.category == "check":  # kept alive as an output: it raises where eager raises
            self.checks.append(out)
        if any(isinstance(a, Tensor) and a._requires_grad for a in args):
            if not STATE.enabled:  # no gradient flows here (autodiff must know: `no_grad`)
                self.no_grad_values.add(out)
            elif prim.vjp is not None and out.type.dtype.is_floating_point:
                _record(prim, args, attrs, result)
        return result

    def stop_gradient(self, t: Tensor) -> Value:
        """A graph value equal to ``t``'s through which no gradient flows (``detach``)."""
        return self.graph.add("stop_gradient", [self.value_of(t)], {}, user_location())

    def cv_of(self, a):
        """The actual values of operand ``a`` (``concrete`` traces only)."""
        if not isinstance(a, Tensor):
            return a
        if a._traced:
            self.value_of(a)
            return a.__dict__["_cv"]
        return a._data

    def on_break(self, exc, t: Tensor | None = None):
        """A graph break (``t``: the tensor whose value Python reads, if any). Raised; but a
        concrete trace (``ember.explain``) records it and hands out ``t``'s actual values."""
        if not self.concrete:
            raise exc
        value = None if t is None else self.value_of(t)
        self.breaks.append((exc.loc, exc.reason, len(self.graph.nodes), value))
        return None if t is None else self.cv_of(t)

    def value_of(self, t: Tensor) -> Value:
        """The graph value of tensor ``t`` now (lifting it if it came from outside)."""
        if t._traced:
            d = t.__dict__
            if d["_tver"] != t._vc[0]:
                self._refresh(t)
            return d["_tv"]
        if id(t) in self.born:
            return self.const_value(t)
        return self.lift(t).__dict__["_tv"]

    def const_value(self, t: Tensor) -> Value:
        v = self.consts.get(id(t))
        if v is None:
            arr = t._data
            flat = arr.reshape(-1)
            if flat.size and np.array_equal(flat, np.broadcast_to(flat[0], flat.shape), True):
                attrs = {"shape": arr.shape, "value": flat[0].item(), "dtype": t.dtype}
                v = self.graph.add("full", [], attrs, None)
            else:
                v = self._add_input(t, InputSource("const", obj=np.array(arr)), "const")
            self.consts[id(t)] = v
        return v

    def _add_input(self, t: Tensor, source: InputSource, name: str) -> Value:
        v = self.graph.add_input(TensorType(tuple(t._data.shape), t.dtype), name)
        self.sources.append(source)
        return v

    def lift_outside(self, t: Tensor) -> bool:
        """Lift ``t`` if it came from outside the trace; whether it did (then it is traced)."""
        if t._traced or id(t) in self.born:
            return False
        self.lift(t)
        return True

    def source_of(self, t: Tensor) -> Source:
        """How the compiled program finds ``t`` at each call: the path the trace reached it
        by, a view's base through the view, else ``t`` itself (pinned)."""
        found = self.watcher.source_of(t)
        if found is not None:
            return found
        return Source.pinned(t)

    def lift(self, t: Tensor, source: Source | None = None):
        """Make ``t`` a tracing tensor in place (a graph input read by reference)."""
        if t._traced:
            return t
        if id(t) in self.born:  # a constant written in place: it becomes a traced value
            value = self.const_value(t)
            saved = None
        else:
            if source is None:
                source = self.source_of(t)
            base = t._base_t
            if base is not None and not base._traced and id(base) not in self.born:
                if self.watcher.source_of(base) is None:  # found through the view, each call
                    base_source = source.attr("_base_t")
                    self.watcher.paths[id(base)] = (base, base_source)
                    self.watcher.visit(base_source, base)
                self.lift(base)
            value = self._add_input(t, InputSource("tensor", source), input_name(source))
            saved = (
                t.__class__, t._data, t._grad, t._grad_fn, t._requires_grad, t._vc[0], t._hv,
                t._retains_grad,
            )  # fmt: skip
            self.lifted[id(t)] = _Lifted(t, value, len(self.sources) - 1, source, saved)
        data = fake_array(t._data.shape, t._data.dtype)
        real = t._data
        t.__class__ = tracing_class(t.__class__)
        t._data = data
        d = t.__dict__
        if self.concrete:
            d["_cv"] = real
        d["_tv"] = value
        d["_tver"] = t._vc[0]
        return t

    def _refresh(self, t: Tensor) -> None:
        """``t`` shares storage that was written since ``t`` got its value: re-read it."""
        d = t.__dict__
        base = t._base_t
        target = d.get("_alias_of")
        if base is not None:
            rebuilt = read_view(t, base)
            d["_tv"] = rebuilt.__dict__["_tv"]
            if self.concrete:
                d["_cv"] = rebuilt.__dict__["_cv"]
            if rebuilt._requires_grad:
                t._grad_fn, t._requires_grad = rebuilt._grad_fn, True
        elif target is not None:
            value = self.value_of(target)
            if d.get("_detached") and target._requires_grad:  # detach() and .data stay cut
                value = self.graph.add("stop_gradient", [value], {}, user_location())
            d["_tv"] = value
            if self.concrete:
                d["_cv"] = target.__dict__["_cv"]
        d["_tver"] = t._vc[0]

    # ---- hooks the frontend calls (`ember.frontend.trace_state`) ------------------------

    def rebind(self, x: Tensor, new: Tensor, base: Tensor | None, rebased: Tensor | None):
        """``x`` was written in place with ``new`` (and its base became ``rebased``)."""
        d = x.__dict__
        target = d.get("_alias_of")
        bypass = not STATE.enabled or d.get("_data_alias", False)
        if bypass and (x._requires_grad or (target is not None and target._requires_grad)):
            self.no_grad_writes.append(user_location())  # its gradient skips the new value
        value = self.value_of(new)
        cv = self.cv_of(new) if self.concrete else None
        d["_tv"], d["_tver"], d["_cv"] = value, x._vc[0], cv
        if base is not None:
            self.lift(base)
            bd = base.__dict__
            bd["_tv"], bd["_tver"] = self.value_of(rebased), base._vc[0]
            bd["_cv"] = self.cv_of(rebased) if self.concrete else None
        while target is not None:
            self.lift(target)
            td = target.__dict__
            td["_tv"], td["_tver"], td["_cv"] = value, target._vc[0], cv
            target = td.get("_alias_of")

    def eager_read(self, t: Tensor, what: str) -> None:
        if id(t) in self.born:
            return
        self.on_break(
            trace_state.graph_break(
                f"{what} reads the value of a tensor from outside the compiled function "
                f"({t.dtype.name}{list(t.shape)}), which can change between calls"
            )
        )

    def random_operands(self, gen, count: int):
        rec = self.rng.get(id(gen))
        if rec is None:
            seed = self.graph.add_input(TensorType((), D.int64), "rng_seed")
            self.sources.append(InputSource("seed", obj=gen))
            offset = self.graph.add_input(TensorType((), D.int64), "rng_offset")
            self.sources.append(InputSource("offset", obj=gen))
            rec = self.rng[id(gen)] = [gen, seed, offset, 0]
        seed_cv, offset_cv = gen.operand_arrays() if self.concrete else (None, None)
        seed_t = new_tracing(rec[1], fake_array((), np.int64), seed_cv)
        offset_t = new_tracing(rec[2], fake_array((), np.int64), offset_cv)
        if rec[3]:
            offset_t = P.add(offset_t, rec[3])
        rec[3] += count
        return seed_t, offset_t

    def hyperparameter(self, group: dict, key: str, index: int | None = None) -> Tensor:
        """``group[key]`` (or its ``index``-th item): an optimizer hyperparameter as a float64
        graph input, read from the param group at every call."""
        if self.deferred:
            self.on_break(
                trace_state.graph_break(
                    f"the optimizer reads its {key!r} after a scheduler's step() in the same "
                    "compiled function (the step runs after the graph): call "
                    "optimizer.step() before scheduler.step()"
                )
            )
        found = self.hypers.get((id(group), key, index))
        if found is None:
            name = key if index is None else f"{key}{index}"
            found = self.graph.add_input(TensorType((), D.float64), name)
            self.sources.append(InputSource("hyper", obj=(group, key, index)))
            self.hypers[(id(group), key, index)] = found
        cv = input_array(InputSource("hyper", obj=(group, key, index))) if self.concrete else None
        return new_tracing(found, fake_array((), np.float64), cv)

    def note_backward(self) -> None:
        self.backward_ran = True

    def note_function(self, cls) -> None:
        """A custom ``autograd.Function`` ran: its backward is Python, not graph ops."""
        self.functions.append((cls.__name__, user_location()))

    def note_grad_write(self, t: Tensor) -> None:
        """``t.grad`` was assigned: from now on what it was at the call does not matter (a
        ``zero_grad()`` at the top of a step: the step is one program whether or not the
        gradients exist when it is called)."""
        if id(t) not in self.grad_read:
            self.grad_assigned.add(id(t))

    def note_grad_read(self, t: Tensor) -> None:
        """``t.grad`` was read: a compiled entry guards whether it is None (unless the trace
        assigned it first)."""
        if id(t) in self.grad_assigned:
            return
        if id(t) not in self.born and id(t) not in self.grad_read:
            rec = self.lifted.get(id(t))
            was_none = rec.saved[2] is None if rec is not None else t._grad is None
            self.grad_read[id(t)] = (t, was_none)

    def note_setattr(self, obj, name: str) -> None:
        self.watcher.on_setattr(obj, name)

    def note_new(self, obj) -> None:
        self.watcher.on_new(obj)

    def defer(self, obj, fn, args: tuple, kwargs: dict) -> None:
        """``fn(obj, *args, **kwargs)`` (a scheduler's step) runs after the graph instead."""
        if id(obj) in self.watcher.born:
            return fn(obj, *args, **kwargs)
        self.deferred.append((obj, fn, args, kwargs))
        self.watcher.deferred.add(id(obj))
        return None

    def _deferred_read(self, obj, name: str) -> None:
        self.on_break(
            trace_state.graph_break(
                f"reading {type(obj).__name__}.{name} after its step() in the same compiled "
                "function (the step runs after the graph)"
            )
        )

    # ---- finishing ----------------------------------------------------------------------

    def finish(self, result) -> Traced:
        """Set the graph's outputs: the results, then the values to write back and store."""
        leaves, spec = pytree.flatten(result)
        outputs: list[Value] = []
        out_leaves: list = []
        grad_outputs = []
        for leaf in leaves:
            rec = self.lifted.get(id(leaf)) if isinstance(leaf, Tensor) else None
            current = self.value_of(leaf) if rec is not None else None  # (refreshes a view)
            if rec is not None and (not leaf._requires_grad or current is rec.value):
                # an input returned as it is (``dst.copy_(src)`` returns ``dst``): the result
                # is that tensor, as in eager, and its new value is only written back
                out_leaves.append(("in", rec.index))
            elif isinstance(leaf, Tensor):
                if leaf._traced and leaf._requires_grad and leaf.dtype.is_floating_point:
                    grad_outputs.append(len(outputs))
                out_leaves.append(len(outputs))
                outputs.append(self.value_of(leaf))
            else:
                out_leaves.append(("static", leaf))
        num_user = len(outputs)
        user = {id(x): out_leaves[i] for i, x in enumerate(leaves) if isinstance(x, Tensor)}
        mutations = self.watcher.mutations()
        stores = [
            Store(m.source, self._template(m.value, outputs, user), m.whole)
            if m.value is not MISSING
            else Store(m.source, MISSING)
            for m in mutations
        ]
        deferred = [
            Deferred(obj, fn, self._template((args, kwargs), outputs))
            for obj, fn, args, kwargs in self.deferred
        ]
        writebacks: list[WriteBack] = []
        guards = list(self.watcher.guards)
        for rec in list(self.lifted.values()):
            t = rec.obj
            current = self.value_of(t)
            if current is not rec.value:
                writebacks.append(WriteBack("data", len(outputs), rec.index))
                outputs.append(current)
            g = t._grad
            # (a .grad the function assigned is written back even when it ends as it began:
            # the program then sets it at every call, whatever it is at that call)
            if g is not rec.saved[2] or id(t) in self.grad_assigned:
                if g is None:
                    writebacks.append(WriteBack("grad", -1, rec.index))
                else:
                    writebacks.append(WriteBack("grad", len(outputs), rec.index))
                    outputs.append(self.value_of(g))
            changed = g is not rec.saved[2] and id(t) not in self.grad_assigned
            if changed and id(t) not in self.grad_read:
                self.grad_read[id(t)] = (t, rec.saved[2] is None)
            if rec.source.root == "pinned":
                meta = (rec.saved[0], rec.saved[1].shape, rec.saved[1].dtype, rec.saved[4])
                guards.append(Guard("tensor", rec.source, meta))
        for t, was_none in self.grad_read.values():
            rec = self.lifted.get(id(t))
            guards.append(Guard("grad", rec.source if rec else self.source_of(t), was_none))
        self.graph.set_outputs(outputs + self.checks)
        if grad_outputs and STATE.enabled and not self.backward_ran:
            self._check_differentiable()
        return Traced(
            graph=self.graph,
            sources=list(self.sources),
            out_spec=spec,
            out_leaves=out_leaves,
            num_user_outputs=num_user,
            writebacks=writebacks,
            stores=stores,
            deferred=deferred,
            rng=[(rec[0], rec[3]) for rec in self.rng.values()],
            guards=_without_inputs(guards, self.hypers),
            aliasing=self._aliasing(guards),
            requires_grad_inputs=self._reached_inputs(leaves),
            grad_outputs=grad_outputs,
            backward_ran=self.backward_ran,
            no_grad_values=self.no_grad_values,
            breaks=self.breaks,
        )

    def _template(self, value, outputs: list, user: dict | None = None) -> tuple:
        """A store's value as ``(structure, leaves)`` for `build` (see there). ``user``: id of
        each result tensor -> its output index (a result that is also stored is the same
        tensor object in both places)."""
        leaves, spec = pytree.flatten(value)
        out = []
        for leaf in leaves:
            rec = self.lifted.get(id(leaf)) if isinstance(leaf, Tensor) else None
            if rec is not None:
                out.append(("in", rec.index))
            elif isinstance(leaf, Tensor) and (leaf._traced or id(leaf) in self.born):
                if user is not None and id(leaf) in user:
                    out.append(("user", user[id(leaf)]))
                    continue
                if leaf._requires_grad and STATE.enabled:
                    raise trace_state.graph_break(
                        "a tensor that requires grad, computed in the compiled function, is "
                        "stored in Python state: its autograd history would be lost (store "
                        "y.detach(), or return it)"
                    )
                out.append(("out", len(outputs)))
                outputs.append(self.value_of(leaf))
            else:
                _check_storable(leaf)
                out.append(("const", leaf))
        return spec, out

    def _aliasing(self, guards: list[Guard]) -> tuple | None:
        """The storage pattern of the tensors read by reference (see `guards.Aliasing`)."""
        recs = [r for r in self.lifted.values() if r.saved is not None]
        if len(recs) < 2:
            return None
        gated = {g.source.name for g in guards if g.kind == "tensor" and g.gated}
        first: dict[int, int] = {}
        pattern = []
        for i, rec in enumerate(recs):
            data = rec.saved[1]
            pattern.append(first.setdefault(id(data.base if data.base is not None else data), i))
        flags = tuple(r.source.name in gated for r in recs)
        return [r.source for r in recs], tuple(pattern), flags

    def _reached_inputs(self, leaves: list) -> list[int]:
        """The inputs eager autograd would send a gradient to from the results: the lifted
        tensors that require grad and that the results' autograd graph reaches."""
        reached: set[int] = set()
        stack = [leaf._grad_fn for leaf in leaves if isinstance(leaf, Tensor) and leaf._traced]
        seen: set[int] = set()
        for leaf in leaves:
            if isinstance(leaf, Tensor) and id(leaf) in self.lifted and leaf._grad_fn is None:
                reached.add(id(leaf))
        owner = {  # a lifted non-leaf is reached through its grad_fn from before the trace
            id(rec.saved[3]): id(rec.obj)
            for rec in self.lifted.values()
            if rec.saved is not None and rec.saved[3] is not None
        }
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if id(node) in owner:
                reached.add(owner[id(node)])
                continue
            for e in getattr(node, "edges", ()):
                if isinstance(e, Node):
                    stack.append(e)
                elif isinstance(e, Tensor):
                    reached.add(id(e))
        return sorted(
            rec.index
            for rec in self.lifted.values()
            if rec.saved is not None
            and rec.saved[4]
            and rec.obj.dtype.is_floating_point
            and id(rec.obj) in reached
        )

    def _check_differentiable(self) -> None:
        """What a compiled backward graph cannot express is a graph break (eager runs it)."""
        problems = [
            (loc, f"custom autograd.Function {name}: its Python backward cannot be part of a "
             "compiled backward graph (call backward() inside the compiled function, or "
             "compile without it)")
            for name, loc in self.functions
        ] + [
            (loc, "an in-place update under no_grad of a tensor that requires grad: its "
             "gradient bypasses the new values, which a compiled backward graph cannot express")
            for loc in self.no_grad_writes
        ]  # fmt: skip
        for loc, reason in problems[:1]:
            self.on_break(GraphBreakError("compile", reason, loc))

    def restore(self) -> None:
        """Give every object the trace changed its state from before the trace."""
        for rec in self.lifted.values():
            t = rec.obj
            (cls, data, grad, grad_fn, req, version, hv, retains) = rec.saved
            t._data = data  # (data first, class second: see `frontend.dispatch.eager_bind`)
            t.__class__ = cls
            t._grad, t._grad_fn, t._requires_grad = grad, grad_fn, req
            t._vc[0], t._hv, t._retains_grad = version, hv, retains
            for key in ("_tv", "_tver", "_alias_of", "_cv"):
                t.__dict__.pop(key, None)
        self.watcher.restore()


def _without_inputs(guards: list[Guard], hypers: dict) -> list[Guard]:
    """Drop the value guards on hyperparameters the graph takes as inputs (the learning
    rate...), keeping whether momentum is zero (SGD branches on ``momentum != 0``)."""
    taken = {(group_id, key) for group_id, key, _ in hypers}
    out = []
    for g in guards:
        if g.kind == "eq" and (g.holder, g.key) in taken:
            if g.key == "momentum":
                out.append(Guard("nonzero", g.source, nonzero(g.expected), g.gated))
        else:
            out.append(g)
    return out


def _check_storable(leaf) -> None:
    """A stored object holding tensors of the trace would keep them past it: a break."""
    attrs = getattr(leaf, "__dict__", None)
    if type(attrs) is dict and not isinstance(leaf, (*STATEFUL, type)):
        for v in attrs.values():
            if isinstance(v, Tensor) and v._traced:
                raise trace_state.graph_break(
                    f"a {type(leaf).__name__} object holding a tensor computed in the compiled "
                    "function is stored in Python state (store the tensor itself, or a tuple, "
                    "list or dict of tensors)"
                )


def _literal(a):
    if isinstance(a, np.generic):
        return a.item()
    return a


def trace_function(
    fn, args: tuple, kwargs: dict, name: str, self_obj=None, concrete: bool = False
) -> Traced:
    """Trace ``fn(*args, **kwargs)`` (see the module docstring). Raises what ``fn`` raises,
    and `GraphBreakError` at a read of a traced value; every object is restored either way.
    ``self_obj``: the compiled module or bound object (the root ``L['self']``)."""
    leaves, _ = pytree.flatten((args, kwargs))
    labels = arg_labels(fn, args, kwargs)
    names = [labels.get(i, f"arg{i}") for i in range(len(leaves))]
    with trace_state.TRACE_LOCK, Trace(name, labels, concrete) as trace:
        trace.watcher.visit_roots(fn, names, leaves, self_obj)
        trace.watcher.stop_frame = sys._getframe()
        for i, leaf in enumerate(leaves):
            if isinstance(leaf, Tensor):
                if leaf._traced or id(leaf) in trace.lifted:
                    continue
                trace.lift(leaf, Source.arg(i, names[i]))
        try:
            return trace.finish(fn(*args, **kwargs))
        except GraphBreakError as exc:
            exc.partial_graph = trace.graph  # what was traced before the break (explain)
            exc.guards = list(trace.watcher.guards)  # what it had read until then
            raise
