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
- **Graph breaks.** Reading a traced value in Python raises `GraphBreakError`; the trace ends.

Every object the trace changed is restored when it ends, with or without an error.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..frontend import trace_state
from ..frontend.autograd.grad_mode import STATE
from ..frontend.autograd.graph import gather_view
from ..frontend.dispatch import _record, eager_bind
from ..frontend.optim.optimizer import hyperparameter_value
from ..frontend.tensor import Tensor
from ..ir import dtypes as D
from ..ir import ops as P
from ..ir.errors import GraphBreakError, user_location
from ..ir.graph import Graph, Value
from ..ir.types import TensorType
from . import pytree
from .tracing_tensor import TracingTensor, fake_array, new_tracing, tracing_class

__all__ = ["Traced", "InputSource", "WriteBack", "trace_function", "input_array"]

_NAME = re.compile(r"[^0-9A-Za-z_]")
_MAKE = Tensor.__dict__["_make"].__func__


@dataclass(frozen=True)
class InputSource:
    """Where a graph input's array comes from at call time.

    ``kind``: ``"arg"`` (the ``index``-th tensor leaf of the call's arguments), ``"ref"`` (the
    current values of tensor ``obj``), ``"const"`` (``obj`` is a numpy array captured at trace
    time), ``"seed"``/``"offset"`` (the state of generator ``obj``), ``"hyper"`` (``obj`` is
    ``(param_group, key, index)``: an optimizer hyperparameter such as the learning rate).
    """

    kind: str
    index: int = -1
    obj: Any = None


def input_array(src: InputSource, leaves: list = ()) -> np.ndarray:
    """The array graph input ``src`` takes now (``leaves``: the call's argument leaves)."""
    kind = src.kind
    if kind == "arg":
        return leaves[src.index]._data
    if kind == "ref":
        return src.obj._data
    if kind == "const":
        return src.obj
    if kind == "hyper":
        return np.array(hyperparameter_value(*src.obj), dtype=np.float64)
    return src.obj.operand_arrays()[0 if kind == "seed" else 1]


@dataclass(frozen=True)
class WriteBack:
    """What the runtime does with an extra graph output.

    ``kind``: ``"data"`` (write into the storage of input ``source``), ``"grad"`` (set the
    ``.grad`` of input ``source``; ``output`` -1 means None), ``"state"`` (store a tensor, or
    the Python value ``value``, as ``optimizer.state[param][key]``).
    """

    kind: str
    output: int
    source: InputSource | None = None
    optimizer: Any = None
    param: Any = None
    key: Any = None
    value: Any = None


@dataclass(eq=False)
class Traced:
    """One trace: the graph and how to feed it and use its results (see module docs)."""

    graph: Graph
    sources: list[InputSource]
    out_spec: Any
    out_leaves: list  # per output leaf: an output index (int) or ("static", value)
    num_user_outputs: int
    writebacks: list[WriteBack]
    rng: list[tuple[Any, int]]  # (generator, counters drawn per call)
    # tensors read by reference, in input order: (tensor, (shape, dtype, requires_grad,
    # grad is None) when traced, graph input name)
    lifted: list[tuple[Tensor, tuple, str]]
    optimizers: list[Any]
    requires_grad_inputs: list[int]  # graph inputs that required grad while tracing
    grad_outputs: list[int]  # user outputs that required grad (differentiable) while tracing
    backward_ran: bool
    no_grad_values: set = field(default_factory=set)  # computed under no_grad from grad inputs
    # explain's traces: (loc, reason, node index, the value Python read or None)
    breaks: list = field(default_factory=list)


class _Lifted:
    """A tensor from outside, made a graph input: its input value and index, and the state
    the trace restores (``saved``: class, data, grad, grad_fn, requires_grad, version...)."""

    __slots__ = ("obj", "value", "index", "source", "saved")

    def __init__(self, obj, value, index, source, saved) -> None:
        self.obj = obj
        self.value = value
        self.index = index
        self.source = source
        self.saved = saved


class Trace:
    """The state of one trace; installed as ``trace_state.ACTIVE`` while ``fn`` runs."""

    def __init__(self, name: str, names: dict[int, str], concrete: bool = False) -> None:
        self.concrete = concrete  # ember.explain: carry actual values, record breaks, go on
        self.breaks: list[tuple] = []
        self.graph = Graph(_NAME.sub("_", name) or "main")
        self.sources: list[InputSource] = []
        self.lifted: dict[int, _Lifted] = {}
        self.names = names
        self.born: dict[int, Tensor] = {}
        self.consts: dict[int, Value] = {}
        self.rng: dict[int, list] = {}
        self.optimizers: dict[int, tuple] = {}
        self.backward_ran = False
        self.no_grad_values: set[Value] = set()
        self.functions: list = []
        self.no_grad_writes: list = []
        self.hypers: dict = {}

    # ---- installing ---------------------------------------------------------------------

    def __enter__(self) -> Trace:
        born = self.born

        def make(cls, data, requires_grad=False):
            t = _MAKE(cls, data, requires_grad)
            born[id(t)] = t
            return t

        Tensor._make = classmethod(make)
        P.push_override(self.bind)
        trace_state.ACTIVE = self
        return self

    def __exit__(self, *exc) -> None:
        trace_state.ACTIVE = None
        P.pop_override()
        Tensor._make = classmethod(_MAKE)
        self.restore()

    # ---- values -------------------------------------------------------------------------

    def is_const(self, t: Tensor) -> bool:
        return not t._traced and id(t) in self.born

    def bind(self, prim, args, attrs):
        """Every primitive call while tracing: fold constants, record everything else."""
        if not any(isinstance(a, Tensor) and not self.is_const(a) for a in args):
            return eager_bind(prim, args, attrs)
        ins = [self.value_of(a) if isinstance(a, Tensor) else _literal(a) for a in args]
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

    def lift(self, t: Tensor, source: InputSource | None = None, name: str | None = None):
        """Make ``t`` a tracing tensor in place (a graph input read by reference)."""
        if t._traced:
            return t
        if id(t) in self.born:  # a constant written in place: it becomes a traced value
            value = self.const_value(t)
            saved = None
        else:
            if t._base_t is not None:
                self.lift(t._base_t)
            if source is None:
                source = InputSource("ref", obj=t)
            if name is None:
                name = self.names.get(id(t)) or f"t{len(self.lifted)}"
            value = self._add_input(t, source, _NAME.sub("_", name))
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
            rebuilt = gather_view(t, base)
            d["_tv"] = rebuilt.__dict__["_tv"]
            if self.concrete:
                d["_cv"] = rebuilt.__dict__["_cv"]
            if rebuilt._requires_grad:
                t._grad_fn, t._requires_grad = rebuilt._grad_fn, True
        elif target is not None:
            d["_tv"] = self.value_of(target)
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
        found = self.hypers.get((id(group), key, index))
        if found is None:
            name = key if index is None else f"{key}{index}"
            found = self.graph.add_input(TensorType((), D.float64), name)
            self.sources.append(InputSource("hyper", obj=(group, key, index)))
            self.hypers[(id(group), key, index)] = found
        cv = input_array(InputSource("hyper", obj=(group, key, index))) if self.concrete else None
        return new_tracing(found, fake_array((), np.float64), cv)

    def touch_optimizer(self, opt) -> None:
        if id(opt) not in self.optimizers:
            snapshot = {p: dict(st) for p, st in opt.state.items()}
            self.optimizers[id(opt)] = (opt, snapshot)

    def note_backward(self) -> None:
        self.backward_ran = True

    def note_function(self, cls) -> None:
        """A custom ``autograd.Function`` ran: its backward is Python, not graph ops."""
        self.functions.append((cls.__name__, user_location()))

    # ---- finishing ----------------------------------------------------------------------

    def finish(self, result) -> Traced:
        """Set the graph's outputs: the results, then the values to write back."""
        leaves, spec = pytree.flatten(result)
        outputs: list[Value] = []
        out_leaves: list = []
        grad_outputs = []
        for leaf in leaves:
            if isinstance(leaf, Tensor):
                if leaf._traced and leaf._requires_grad and leaf.dtype.is_floating_point:
                    grad_outputs.append(len(outputs))
                out_leaves.append(len(outputs))
                outputs.append(self.value_of(leaf))
            else:
                out_leaves.append(("static", leaf))
        num_user = len(outputs)
        writebacks: list[WriteBack] = []
        for rec in list(self.lifted.values()):
            t = rec.obj
            current = self.value_of(t)
            if current is not rec.value:
                writebacks.append(WriteBack("data", len(outputs), rec.source))
                outputs.append(current)
            g = t._grad
            if g is not rec.saved[2]:
                if g is None:
                    writebacks.append(WriteBack("grad", -1, rec.source))
                else:
                    writebacks.append(WriteBack("grad", len(outputs), rec.source))
                    outputs.append(self.value_of(g))
        for opt, snapshot in self.optimizers.values():
            for p, st in opt.state.items():
                old = snapshot.get(p, {})
                for k, v in st.items():
                    if k in old and old[k] is v:
                        continue
                    if isinstance(v, Tensor):
                        writebacks.append(WriteBack("state", len(outputs), None, opt, p, k))
                        outputs.append(self.value_of(v))
                    else:
                        writebacks.append(WriteBack("state", -1, None, opt, p, k, value=v))
        self.graph.set_outputs(outputs)
        if grad_outputs and STATE.enabled and not self.backward_ran:
            self._check_differentiable()
        requires = sorted(
            rec.index
            for rec in self.lifted.values()
            if rec.saved[4] and rec.obj.dtype.is_floating_point
        )
        lifted = [
            (rec.obj, _lifted_state(rec), rec.value.name)
            for rec in self.lifted.values()
            if rec.source.kind == "ref"
        ]
        return Traced(
            graph=self.graph,
            sources=list(self.sources),
            out_spec=spec,
            out_leaves=out_leaves,
            num_user_outputs=num_user,
            writebacks=writebacks,
            rng=[(rec[0], rec[3]) for rec in self.rng.values()],
            lifted=lifted,
            optimizers=[opt for opt, _ in self.optimizers.values()],
            requires_grad_inputs=requires,
            grad_outputs=grad_outputs,
            backward_ran=self.backward_ran,
            no_grad_values=self.no_grad_values,
            breaks=self.breaks,
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
            t.__class__ = cls
            t._data, t._grad, t._grad_fn, t._requires_grad = data, grad, grad_fn, req
            t._vc[0], t._hv, t._retains_grad = version, hv, retains
            for key in ("_tv", "_tver", "_alias_of", "_cv"):
                t.__dict__.pop(key, None)
        for opt, snapshot in self.optimizers.values():
            for p in [p for p in opt.state if p not in snapshot]:
                del opt.state[p]
            for p, content in snapshot.items():
                st = opt.state[p]
                st.clear()
                st.update(content)


def _lifted_state(rec: _Lifted) -> tuple:
    cls, data, grad, _, req, *_ = rec.saved
    return (data.shape, data.dtype, req, grad is None)


def _literal(a):
    if isinstance(a, np.generic):
        return a.item()
    return a


def trace_function(
    fn, args: tuple, kwargs: dict, name: str, names: dict[int, str], concrete: bool = False
) -> Traced:
    """Trace ``fn(*args, **kwargs)`` (see the module docstring). Raises what ``fn`` raises,
    and `GraphBreakError` at a read of a traced value; every object is restored either way."""
    leaves, _ = pytree.flatten((args, kwargs))
    labels = _arg_labels(fn, args, kwargs)
    with Trace(name, names, concrete) as trace:
        for i, leaf in enumerate(leaves):
            if isinstance(leaf, Tensor):
                if leaf._traced or id(leaf) in trace.lifted:
                    continue
                trace.lift(leaf, InputSource("arg", index=i), labels.get(i, f"arg{i}"))
        try:
            result = fn(*args, **kwargs)
        except GraphBreakError as exc:
            exc.partial_graph = trace.graph  # what was traced before the break (explain)
            raise
        return trace.finish(result)


def _arg_labels(fn, args, kwargs) -> dict[int, str]:
    """Leaf index -> a readable name (``x``, ``batch_0``...) for the graph's inputs."""
    if isinstance(fn, functools.partial) and fn.args and hasattr(fn.args[0], "forward"):
        fn = fn.args[0].forward  # a compiled module: name the arguments after forward's
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
        named = list(bound.arguments.items())
    except (TypeError, ValueError):
        named = [(f"arg{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
    labels: dict[int, str] = {}
    index = 0
    for pname, value in named:
        sub, _ = pytree.flatten(value)
        for j in range(len(sub)):
            labels[index] = pname if len(sub) == 1 else f"{pname}_{j}"
            index += 1
    return labels


__all__ += ["Trace", "TracingTensor"]
