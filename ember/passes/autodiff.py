"""Reverse-mode autodiff of a graph: a forward graph in, a joint forward+backward graph out.

`build_joint` copies the forward nodes into a new graph and then walks them in reverse, calling
each primitive's VJP rule (the ``vjp`` column of the op table, `ember.passes.vjp_rules`) on the
new graph's `Value`s inside a `GraphBuilder`. The rules are the very functions eager autograd
calls on tensors (`ember.frontend.dispatch.PrimNode.apply`), so a compiled backward computes
what ``loss.backward()`` computes, node for node; nothing about an op's derivative is written
twice.

The joint graph's signature::

    inputs:  forward inputs..., one cotangent per differentiated output (``grad_<name>`` /
             ``grad_out<i>``, typed like that output)
    outputs: forward outputs..., one gradient per ``wrt`` input

`partition` (`ember.passes.partition`) then splits it into a forward and a backward graph.

Note: which operands get gradients. An operand "needs" a gradient when it is a floating value
that depends on a ``wrt`` input through differentiable primitives; this is eager autograd's
``requires_grad`` propagation, done statically. Cotangents only flow into nodes whose output
received one, so nodes off every path from ``wrt`` to a differentiated output, integer and
bool values, and non-differentiable primitives (comparisons, ``argmax``, ``philox_uniform``...)
never reach a rule. Cotangents that meet at a value are summed with ``add``. A ``wrt`` input
that no differentiated output depends on gets zeros (``full`` + ``broadcast_to``), like
PyTorch's ``autograd.grad(..., materialize_grads=True)``.

Every backward node is built under ``builder.at(node.loc)`` of the forward node it
differentiates, so the backward graph, its kernels and its errors point at the user's line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..ir import ops as P
from ..ir.builder import GraphBuilder
from ..ir.errors import GraphError
from ..ir.graph import Graph, Node, Value
from ..ir.ops import PRIMITIVES
from ..ir.shape_rules import describe
from ..ir.verifier import verify
from ..ir.work import WORK
from . import vjp_rules  # noqa: F401  (fills the vjp column of the op table)
from .gc_pause import gc_paused
from .vjp_rules import zeros

__all__ = ["JointGraph", "build_joint", "grad_graph"]


@dataclass(frozen=True, eq=False)
class JointGraph:
    """A forward graph and its backward in one graph, with the bookkeeping to split them.

    ``graph.inputs`` are the ``num_forward_inputs`` forward inputs, then one cotangent per
    index in ``differentiate``; ``graph.outputs`` are the ``num_forward_outputs`` forward
    outputs, then one gradient per index in ``wrt``. ``forward_nodes`` are the copies of the
    forward graph's nodes; every other node was made by a VJP rule (the backward computation).
    """

    graph: Graph
    num_forward_inputs: int
    num_forward_outputs: int
    wrt: tuple[int, ...]
    differentiate: tuple[int, ...]
    forward_nodes: frozenset[Node]

    @property
    def primal_inputs(self) -> list[Value]:
        return self.graph.inputs[: self.num_forward_inputs]

    @property
    def cotangent_inputs(self) -> list[Value]:
        return self.graph.inputs[self.num_forward_inputs :]

    @property
    def forward_outputs(self) -> list[Value]:
        return self.graph.outputs[: self.num_forward_outputs]

    @property
    def gradients(self) -> list[Value]:
        return self.graph.outputs[self.num_forward_outputs :]

    def is_forward(self, node: Node) -> bool:
        """Whether ``node`` belongs to the forward computation (else: made by a VJP rule)."""
        return node in self.forward_nodes

    @property
    def backward_nodes(self) -> list[Node]:
        WORK.add("autodiff.backward_nodes", len(self.graph.nodes))
        return [n for n in self.graph.nodes if n not in self.forward_nodes]


@gc_paused()
def build_joint(
    forward: Graph, wrt: Sequence[int], differentiate: Sequence[int] | None = None
) -> JointGraph:
    """Differentiate ``forward`` with respect to the inputs ``wrt``.

    ``differentiate`` lists the forward outputs that receive a cotangent (default: every
    floating-point output). Returns the joint graph described in the module docstring.
    """
    verify(forward)
    wrt = _check_wrt(forward, wrt)
    diff = _check_differentiate(forward, differentiate)
    joint = Graph(f"{forward.name}_joint")
    env = {v: joint.add_input(v.type, v.name) for v in forward.inputs}
    cotangents = [
        joint.add_input(forward.outputs[i].type, _cotangent_name(forward, i)) for i in diff
    ]
    with GraphBuilder(joint) as builder:
        _copy_nodes(forward, joint, env)
        forward_nodes = frozenset(joint.nodes)
        grads = _backward(builder, forward, env, wrt, diff, cotangents)
    joint.set_outputs([env[v] for v in forward.outputs] + grads)
    return JointGraph(joint, len(forward.inputs), len(forward.outputs), wrt, diff, forward_nodes)


@gc_paused()
def grad_graph(forward: Graph, wrt: Sequence[int]) -> Graph:
    """A graph computing ``(outputs..., grads...)``: the gradients of output 0, a one-element
    floating tensor (a loss), with respect to the inputs ``wrt``, its cotangent fixed to 1.0.

    Further outputs are passed through undifferentiated (auxiliary values).
    """
    verify(forward)
    wrt = _check_wrt(forward, wrt)
    if not forward.outputs:
        raise GraphError("grad_graph", f"@{forward.name} has no output to differentiate", None)
    loss = forward.outputs[0]
    if loss.type.numel != 1 or not loss.dtype.is_floating_point:
        raise GraphError(
            "grad_graph",
            f"output 0 of @{forward.name} must be a one-element floating tensor (a loss), "
            f"got {loss.type}",
            loss.producer.loc if loss.producer is not None else None,
        )
    graph = Graph(f"{forward.name}_grad")
    env = {v: graph.add_input(v.type, v.name) for v in forward.inputs}
    with GraphBuilder(graph) as builder:
        _copy_nodes(forward, graph, env)
        with builder.at(loss.producer.loc if loss.producer is not None else None):
            seed = P.full(shape=loss.shape, value=1.0, dtype=loss.dtype)
        grads = _backward(builder, forward, env, wrt, (0,), [seed])
    graph.set_outputs([env[v] for v in forward.outputs] + grads)
    return graph


# ---- the pass ----------------------------------------------------------------------------


def _copy_nodes(forward: Graph, target: Graph, env: dict[Value, Value]) -> None:
    """Copy every node of ``forward`` into ``target`` (types kept: ``env`` maps each value to
    one of the same type)."""
    WORK.add("autodiff.copy", len(forward.nodes))
    for node in forward.nodes:
        inputs = [env[x] if isinstance(x, Value) else x for x in node.inputs]
        env[node.output] = target.add_copy(node, inputs)


def _active_values(forward: Graph, wrt: tuple[int, ...]) -> set[Value]:
    """Forward values that need a gradient: floating, and reached from a ``wrt`` input through
    differentiable primitives (eager autograd's ``requires_grad``)."""
    active = {forward.inputs[i] for i in wrt}
    WORK.add("autodiff.active", len(forward.nodes))
    for node in forward.nodes:
        if not node.output.dtype.is_floating_point:
            continue
        if not any(isinstance(x, Value) and x in active for x in node.inputs):
            continue
        prim = PRIMITIVES[node.op]
        if prim.nondiff_reason is not None:
            continue
        if prim.vjp is None:
            raise GraphError(node.op, "has no VJP rule registered, cannot differentiate", node.loc)
        active.add(node.output)
    return active


def _backward(
    builder: GraphBuilder,
    forward: Graph,
    env: dict[Value, Value],
    wrt: tuple[int, ...],
    diff: Sequence[int],
    cotangents: Sequence[Value],
) -> list[Value]:
    """Append the backward nodes to ``builder.graph``; return one gradient per ``wrt`` input.

    ``env`` maps forward values to their copies in the builder's graph; cotangents are kept
    per forward value (``cot``), summed where several consumers contribute.
    """
    active = _active_values(forward, wrt)
    cot: dict[Value, Value] = {}

    def accumulate(value: Value, g: Value) -> None:
        prev = cot.get(value)
        cot[value] = g if prev is None else P.add(prev, g)

    for i, c in zip(diff, cotangents):
        out = forward.outputs[i]
        if out in active:
            with builder.at(out.producer.loc if out.producer is not None else None):
                accumulate(out, c)

    WORK.add("autodiff.backward", len(forward.nodes))
    for node in reversed(forward.nodes):
        g = cot.pop(node.output, None)
        if g is None:
            continue  # off every path to a differentiated output, or not differentiable
        needs = tuple(isinstance(x, Value) and x in active for x in node.inputs)
        ins = [env[x] if isinstance(x, Value) else x for x in node.inputs]
        rule = PRIMITIVES[node.op].vjp
        with builder.at(node.loc):
            grads = rule.fn(g, ins, env[node.output], needs, **node.attrs)
            if len(grads) != len(ins):
                raise GraphError(
                    node.op,
                    f"VJP rule returned {len(grads)} gradients for {len(ins)} operands",
                    node.loc,
                )
            for k, (x, need, gx) in enumerate(zip(node.inputs, needs, grads)):
                if not need or gx is None:
                    continue
                if not isinstance(gx, Value) or gx.type != env[x].type:
                    raise GraphError(
                        node.op,
                        f"VJP rule returned {describe(gx)} as the gradient of operand {k}, "
                        f"which is {env[x].type}",
                        node.loc,
                    )
                accumulate(x, gx)

    grads = []
    with builder.at(None):
        for i in wrt:
            x = forward.inputs[i]
            g = cot.get(x)
            grads.append(g if g is not None else zeros(x.shape, x.dtype))
    return grads


# ---- argument checks ---------------------------------------------------------------------


def _check_wrt(forward: Graph, wrt: Sequence[int]) -> tuple[int, ...]:
    result = []
    for i in wrt:
        if not isinstance(i, int) or not 0 <= i < len(forward.inputs):
            raise GraphError(
                "autodiff",
                f"wrt index {i!r} is not an input of @{forward.name} "
                f"({len(forward.inputs)} inputs)",
                None,
            )
        x = forward.inputs[i]
        if not x.dtype.is_floating_point:
            raise GraphError(
                "autodiff",
                f"cannot differentiate with respect to input {i} ({x.name or '?'}: {x.type}): "
                "only floating point inputs have gradients",
                None,
            )
        result.append(i)
    return tuple(result)


def _check_differentiate(forward: Graph, differentiate: Sequence[int] | None) -> tuple[int, ...]:
    outputs = forward.outputs
    if differentiate is None:
        return tuple(i for i, v in enumerate(outputs) if v.dtype.is_floating_point)
    result = []
    for i in differentiate:
        if not isinstance(i, int) or not 0 <= i < len(outputs):
            raise GraphError(
                "autodiff",
                f"differentiate index {i!r} is not an output of @{forward.name} "
                f"({len(outputs)} outputs)",
                None,
            )
        if not outputs[i].dtype.is_floating_point:
            raise GraphError(
                "autodiff",
                f"output {i} ({outputs[i].type}) is not floating point and has no cotangent",
                outputs[i].producer.loc if outputs[i].producer is not None else None,
            )
        result.append(i)
    return tuple(result)


def _cotangent_name(forward: Graph, i: int) -> str:
    name = forward.outputs[i].name
    return f"grad_{name}" if name else f"grad_out{i}"
