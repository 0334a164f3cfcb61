"""A compiled trace, ready to call: feed its inputs, run it, write back, wire up autograd.

`CompiledProgram` takes a `Traced` and a backend. When the traced function returned results
that require grad and did not run backward itself, the program is differentiated: the
autodiff pass builds the joint forward+backward graph and the partition pass splits it (min
cut by default), so a call runs the forward graph and returns outputs whose ``grad_fn`` is a
`CompiledBackward` node; ``loss.backward()`` then runs the backward graph on the saved
residuals. Otherwise (inference, or a whole training step that ran ``backward()`` and the
optimizer inside) the traced graph runs as it is.

After the graph runs, the extra outputs are written back: new values into the storage of
parameters, buffers, optimizer state and in-place-updated arguments, new ``.grad`` tensors;
then the Python writes of the traced function are repeated (`Store`: a tensor kept in a dict
or an attribute, new optimizer state entries, a counter, a list appended to), each generator's
offset moves past the numbers drawn, and deferred calls (``LRScheduler.step``) run.
"""

from __future__ import annotations

import re
import time

import numpy as np

from ..codegen.backend import CompiledGraph
from ..frontend import trace_state
from ..frontend.autograd.function import _OutputNode
from ..frontend.autograd.grad_mode import STATE
from ..frontend.autograd.graph import FREED_MESSAGE, Node
from ..frontend.tensor import Tensor
from ..ir.errors import AutogradError
from ..ir.graph import Graph, Value
from ..passes.autodiff import build_joint
from ..passes.partition import Partition, partition
from . import pytree
from .plan import Traced, build, input_array, tensor_of
from .sources import MISSING, CallContext

__all__ = ["CompiledProgram", "CompiledBackward", "fingerprint"]


class CompiledBackward(Node):
    """The autograd node of a compiled forward: runs the compiled backward graph."""

    __slots__ = ("program", "saved", "metas", "freed")

    def __init__(self, program: CompiledProgram, saved: list, edges: list, metas: list) -> None:
        super().__init__("CompiledFunctionBackward", edges)
        self.program = program
        self.saved = saved
        self.metas = metas
        self.freed = False

    def apply(self, grad, retain_graph: bool, create_graph: bool) -> list:
        if create_graph:
            raise AutogradError(
                self.name,
                "create_graph=True (double backward) through a compiled function is not "
                "supported; call the function without ember.compile for higher-order gradients",
            )
        if self.freed:
            raise AutogradError(self.name, FREED_MESSAGE)
        grads = list(grad) if isinstance(grad, tuple) else [grad]
        cotangents = [
            np.zeros(shape, dtype) if g is None else np.asarray(g._data, dtype=dtype)
            for g, (shape, dtype) in zip(grads, self.metas)
        ]
        outs = self.program.backward.run([*self.saved, *cotangents])
        if not retain_graph:
            self.saved = None
            self.freed = True
        return [Tensor._make(o) for o in outs]


class CompiledProgram:
    """One cache entry's executable: see the module docstring."""

    def __init__(self, traced: Traced, backend, policy: str = "min_cut") -> None:
        self.traced = traced
        self.partition: Partition | None = None
        self.backward: CompiledGraph | None = None
        graph = traced.graph
        self.autodiff_seconds = 0.0
        if traced.grad_outputs and traced.requires_grad_inputs and not traced.backward_ran:
            start = time.perf_counter()
            graph = _stop_gradients(graph, traced.no_grad_values)
            joint = build_joint(graph, traced.requires_grad_inputs, traced.grad_outputs)
            self.partition = partition(joint, policy)
            self.autodiff_seconds = time.perf_counter() - start
            self.forward_graph: Graph = self.partition.forward
            self.backward_graph: Graph | None = self.partition.backward
            self.backward = backend.compile(self.backward_graph)
        else:
            self.forward_graph = graph
            self.backward_graph = None
        self.forward = backend.compile(self.forward_graph)
        self.fingerprint = fingerprint(traced)
        # inputs read through module attributes change only when trace_state.EPOCH moves
        # (module attribute writes, tensor metadata changes): they are looked up once per
        # epoch and root objects, so a call does not walk every layer's path
        gated = {g.source.name for g in traced.guards if g.kind == "tensor" and g.gated}
        self._gated = [
            i for i, src in enumerate(traced.sources)
            if src.kind == "tensor" and src.obj.root != "arg" and src.obj.name in gated
        ]  # fmt: skip
        roots = {}
        for i in self._gated:
            src = traced.sources[i].obj
            roots.setdefault((src.root, id(src.key) if src.root == "global" else src.key), src)
        self._roots = list(roots.values())
        self._memo: tuple | None = None  # (epoch, root objects, {input: tensor})
        outs = graph.outputs
        self.metas = [(outs[i].type.shape, outs[i].type.dtype.np) for i in traced.grad_outputs]

    def compile_report(self, trace_seconds: float, total_seconds: float) -> str:
        """Where this compile's time went, with a hint where one helps
        (``EMBER_LOGS=perf_hints``)."""
        lines = [f"  trace {trace_seconds:.3f} s"]
        if self.partition is not None:
            lines.append(f"  autodiff + partition {self.autodiff_seconds:.3f} s")
        graphs = [("forward", self.forward), ("backward", self.backward)]
        llvm = 0.0
        for name, compiled in graphs:
            if compiled is not None:
                lines.append(
                    f"  {name} graph, {compiled.compile_seconds:.3f} s: {compiled.compile_report()}"
                )
                if getattr(compiled, "kernels_compiled", 0):
                    llvm += compiled.stage_seconds["kernels"]
        if llvm > 0.5 * total_seconds:
            lines.append(
                "  hint: most of it is LLVM compiling kernels; a new process loads them from "
                "the disk cache (ember.compiler.cache_info())"
            )
        return "\n".join(lines)

    def _tensors(self, ctx: CallContext) -> list:
        """The tensor each graph input reads in this call (None for other kinds)."""
        sources = self.traced.sources
        if not self._gated:
            return [tensor_of(src, ctx) for src in sources]
        roots = tuple(src.root_value(ctx) for src in self._roots)
        memo = self._memo
        if (
            memo is None
            or memo[0] != trace_state.EPOCH[0]
            or any(a is not b for a, b in zip(memo[1], roots))
        ):
            found = {i: tensor_of(sources[i], ctx) for i in self._gated}
            self._memo = memo = (trace_state.EPOCH[0], roots, found)
        found = memo[2]
        return [found[i] if i in found else tensor_of(src, ctx) for i, src in enumerate(sources)]

    def __call__(self, ctx: CallContext):
        t = self.traced
        tensors = self._tensors(ctx)
        arrays = [input_array(src, x) for src, x in zip(t.sources, tensors)]
        given = _targets(t, tensors) if getattr(self.forward, "accepts_out", False) else None
        outs = self.forward.run(arrays, given) if given else self.forward.run(arrays)
        for wb in t.writebacks:
            target = tensors[wb.input]
            if wb.kind == "data":
                if outs[wb.output] is not target._data:  # (else written in place by the run)
                    target._data[...] = outs[wb.output]
                target._vc[0] += 1
            else:
                _write_grad(target, None if wb.output < 0 else outs[wb.output])
        for gen, count in t.rng:
            gen._offset += count
        user = [Tensor._make(outs[i]) for i in range(t.num_user_outputs)]
        if self.backward is not None and STATE.enabled:
            self._connect(user, outs[len(t.graph.outputs) :], tensors)
        for st in t.stores:  # (after the results exist: a stored result is that tensor)
            if st.template is MISSING:
                st.source.delete(ctx)
            elif st.whole:
                st.source.get(ctx)[:] = build(st.template, outs, tensors, user)
            else:
                st.source.store(ctx, build(st.template, outs, tensors, user))
        for d in t.deferred:
            args, kwargs = build(d.template, outs, tensors, user)
            d.fn(d.obj, *args, **kwargs)
        results = [_result(x, user, tensors) for x in t.out_leaves]
        return pytree.unflatten(t.out_spec, results)

    def _connect(self, user: list, saved: list, tensors: list) -> None:
        t = self.traced
        edges = []
        for i in t.requires_grad_inputs:
            x = tensors[i]
            edges.append(
                (x._grad_fn if x._grad_fn is not None else x) if x._requires_grad else None
            )
        node = CompiledBackward(self, saved, edges, self.metas)
        n = len(t.grad_outputs)
        for k, index in enumerate(t.grad_outputs):
            out = user[index]
            out._grad_fn = _OutputNode(node, k, n)
            out._requires_grad = True


def _result(leaf, user: list, tensors: list):
    """One result of a call: a user output (an index), an input tensor itself (``("in",
    i)``) or a value that is not a tensor (``("static", v)``)."""
    if isinstance(leaf, int):
        return user[leaf]
    return tensors[leaf[1]] if leaf[0] == "in" else leaf[1]


def _stop_gradients(graph: Graph, values: set) -> Graph:
    """``graph`` with a ``stop_gradient`` after each of ``values`` (computed under no_grad),
    so the autodiff pass sends no gradient through them, as eager autograd does not."""
    if not values:
        return graph
    out = Graph(graph.name)
    env = {v: out.add_input(v.type, v.name) for v in graph.inputs}
    for node in graph.nodes:
        ins = [env.get(x, x) if isinstance(x, Value) else x for x in node.inputs]
        v = out.add(node.op, ins, dict(node.attrs), node.loc)
        if node.output in values:
            v = out.add("stop_gradient", [v], {}, node.loc)
        env[node.output] = v
    out.set_outputs([env[v] for v in graph.outputs])
    return out


def _targets(t: Traced, tensors: list) -> dict[int, np.ndarray]:
    """The arrays each write-back output would be copied into: a backend may write the
    output there directly (a parameter's storage, an existing ``.grad``)."""
    out = {}
    for wb in t.writebacks:
        if wb.output < 0:
            continue
        target = tensors[wb.input]
        if wb.kind != "data":
            target = target._grad
        if target is not None:
            out[wb.output] = target._data
    return out


def _write_grad(target: Tensor, value: np.ndarray | None) -> None:
    """Set ``target.grad``: into the existing gradient's storage when it fits (as eager
    accumulation does, so the gradient keeps its identity), else as a new tensor."""
    grad = target._grad
    if value is None:
        target._grad = None
    elif grad is not None and value is grad._data:  # the run wrote it in place
        grad._vc[0] += 1
    elif grad is not None and grad._data.shape == value.shape and grad._data.dtype == value.dtype:
        grad._data[...] = value
        grad._vc[0] += 1
    else:
        target._grad = Tensor._make(value)


_LOCATION = re.compile(r"\s+#[^\n]*")


def fingerprint(t: Traced) -> tuple:
    """What a trace computes and does, without source locations: the graph's text, where each
    input comes from, every write-back, store and deferred call (check mode compares them)."""
    sources = []
    for src in t.sources:
        if src.kind == "tensor":
            sources.append(("tensor", src.obj.name))
        elif src.kind == "const":
            sources.append(("const", src.obj.shape, str(src.obj.dtype), src.obj.tobytes()))
        elif src.kind == "hyper":
            sources.append(("hyper", id(src.obj[0]), src.obj[1], src.obj[2]))
        else:
            sources.append((src.kind, id(src.obj)))
    stores = [(st.source.name, _template_key(st.template), st.whole) for st in t.stores]
    deferred = [(id(d.obj), d.fn.__qualname__, _template_key(d.template)) for d in t.deferred]
    return (
        _LOCATION.sub("", str(t.graph)),
        tuple(sources),
        tuple(t.writebacks),
        tuple(stores),
        tuple(deferred),
        tuple((id(gen), count) for gen, count in t.rng),
        tuple(
            leaf if isinstance(leaf, int) or leaf[0] == "in" else ("static", repr(leaf[1]))
            for leaf in t.out_leaves
        ),
    )


def _template_key(template) -> tuple:
    if template is MISSING:
        return ("deleted",)
    spec, leaves = template
    return (repr(spec), tuple((k, x if k != "const" else _const_key(x)) for k, x in leaves))


def _const_key(x):
    return repr(x) if isinstance(x, int | float | str | bool | type(None) | tuple) else id(x)
