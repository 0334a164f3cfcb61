"""The backward engine: runs VJPs over the recorded graph in dependency order.

`run_backward` seeds the root cotangents, counts how many consumers each reachable node has,
and processes a node once all its consumers have contributed, summing cotangents that meet. It
accumulates into leaves' ``.grad`` (``Tensor.backward``) or captures the gradients of chosen
tensors (``autograd.grad``). With ``create_graph`` the VJPs themselves run with grad mode on,
so the gradients are differentiable again.
"""

from __future__ import annotations

import numpy as np

from ...ir import ops as P
from ...ir.errors import AutogradError, ShapeError, TensorTypeError
from ...ir.types import format_shape
from .. import trace_state
from ..tensor import Tensor
from . import anomaly
from .grad_mode import STATE
from .graph import Node, refresh_view

__all__ = ["run_backward", "backward", "grad"]


def _check_roots(tensors, grad_tensors, op: str) -> list:
    seeds = []
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        refresh_view(t)
        if not t._requires_grad:
            raise AutogradError(
                op,
                f"element {i} of tensors ({format_shape(t.shape, t.dtype)}) does not require "
                "grad and does not have a grad_fn",
            )
        if g is None:
            if t.numel() != 1:
                raise AutogradError(
                    op,
                    "grad can be implicitly created only for scalar outputs; pass a gradient "
                    f"of shape {list(t.shape)} for the {format_shape(t.shape, t.dtype)} output",
                )
            g = Tensor._make(np.ones(t._data.shape, dtype=t._data.dtype))
        elif not isinstance(g, Tensor):
            raise TensorTypeError(
                op, f"gradients can be either Tensors or None, but got {type(g).__name__}"
            )
        if tuple(g.shape) != tuple(t.shape):
            raise ShapeError(
                op,
                f"gradient {format_shape(g.shape, g.dtype)} does not match the output "
                f"{format_shape(t.shape, t.dtype)}",
            )
        if g.dtype is not t.dtype:  # PyTorch casts the seed to the output's dtype
            g = P.convert(g, dtype=t.dtype)
        seeds.append(g)
    return seeds


def _c_copy(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``arr`` (same rank, also for 0-d)."""
    return np.array(arr, copy=True, order="C")


def contiguous_grad(g: Tensor) -> Tensor:
    """``g`` as a leaf's ``.grad`` may hold it: C-contiguous, as PyTorch's AccumulateGrad stores
    it, so ``p.grad.view(-1)`` works although a VJP (``matmul``'s, through a transposed weight)
    produced a transposed layout. A copy node keeps a ``create_graph`` gradient differentiable;
    a traced gradient has no layout to fix."""
    if g._traced or g._data.flags.c_contiguous:
        return g
    return P.copy(g)


def _accumulate(store: dict, key, g) -> None:
    prev = store.get(key)
    if prev is None:
        store[key] = g
    elif isinstance(g, tuple):  # per-output slots of a multi-output custom Function
        store[key] = tuple(b if a is None else a if b is None else P.add(a, b)
                           for a, b in zip(prev, g))  # fmt: skip
    else:
        store[key] = P.add(prev, g)


def _run_hooks(hooks, g):
    for hook in hooks:
        new = hook(g)
        if new is not None:
            _check_hook_result(hook, g, new)
            g = new
    return g


def _check_hook_result(hook, g, new) -> None:
    """A hook may replace a gradient, but not by one of another kind, shape or dtype (PyTorch
    refuses too): ``.grad`` keeps the tensor's shape and dtype."""
    name = getattr(hook, "__name__", type(hook).__name__)
    if not isinstance(new, Tensor):
        raise TensorTypeError(
            "backward", f"expected a Tensor, but hook '{name}' returned {type(new).__name__}"
        )
    if tuple(new.shape) != tuple(g.shape) or new.dtype is not g.dtype:
        what = "size" if tuple(new.shape) != tuple(g.shape) else "type"
        raise AutogradError(
            "backward",
            f"hook '{name}' has changed the {what} of value (was "
            f"{format_shape(g.shape, g.dtype)}, got {format_shape(new.shape, new.dtype)})",
        )


def _reachable(roots) -> list:
    """The nodes reachable from ``roots``, each once."""
    stack = list(dict.fromkeys(roots))
    seen = set(stack)
    order = []
    while stack:
        node = stack.pop()
        order.append(node)
        for edge in node.edges:
            if isinstance(edge, Node) and edge not in seen:
                seen.add(edge)
                stack.append(edge)
    return order


def _needed(nodes, capture_nodes, capture_leaves) -> set:
    """The nodes with a path to a captured tensor (``autograd.grad``'s inputs): only those
    run, as in PyTorch, so no work is done (and no hook fires) below the inputs."""
    parents: dict = {}
    needed = set()
    for node in nodes:
        for edge in node.edges:
            if isinstance(edge, Node):
                parents.setdefault(edge, []).append(node)
            elif edge is not None and id(edge) in capture_leaves:
                needed.add(node)
    needed.update(n for n in nodes if n in capture_nodes)
    stack = list(needed)
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in needed:
                needed.add(parent)
                stack.append(parent)
    return needed


def run_backward(
    tensors,
    grad_tensors,
    retain_graph: bool,
    create_graph: bool,
    capture=None,
    op: str = "backward",
):
    """Propagate cotangents from ``tensors``. With ``capture`` (tensors), return their grads
    instead of accumulating into leaves, and run only the part of the graph leading to them."""
    seeds = _check_roots(tensors, grad_tensors, op)
    captured: dict = {}
    capture_nodes: dict = {}
    capture_leaves: dict = {}
    if capture is not None:
        for i, t in enumerate(capture):
            if t._grad_fn is not None:
                capture_nodes.setdefault(t._grad_fn, []).append(i)
            else:
                capture_leaves.setdefault(id(t), []).append(i)

    leaf_pending: dict = {}  # id(leaf) -> [leaf, summed gradient]
    # inside a trace (`ember.compile`), .grad is updated functionally, as for create_graph
    functional = create_graph or trace_state.active() is not None
    if (trace := trace_state.active()) is not None:
        trace.note_backward()

    def collect_leaf(leaf, g) -> None:
        # A leaf reached along several edges gets one delivery of the summed gradient (so its
        # hooks run once, on the total, like PyTorch's AccumulateGrad).
        entry = leaf_pending.get(id(leaf))
        if entry is None:
            leaf_pending[id(leaf)] = [leaf, g]
        else:
            entry[1] = P.add(entry[1], g)

    def deliver_leaf(leaf, g) -> None:
        if capture is not None and id(leaf) not in capture_leaves:
            return
        if leaf._traced and trace_state.active() is None:  # another thread traces it
            trace_state.wait_for_trace()
        hooks = leaf.__dict__.get("_leaf_hooks")
        if hooks:
            g = _run_hooks(hooks, g)
        if capture is not None:
            for i in capture_leaves[id(leaf)]:
                _accumulate(captured, i, g)
        elif leaf._grad is None:
            leaf._grad = contiguous_grad(g) if functional else Tensor._make(_c_copy(g._data))
        elif functional:
            leaf._grad = P.add(leaf._grad, g)
        else:
            np.add(leaf._grad._data, g._data, out=leaf._grad._data, casting="unsafe")
            leaf._grad._vc[0] += 1

    pending: dict = {}
    roots = []
    for t, g in zip(tensors, seeds):
        if t._grad_fn is None:
            collect_leaf(t, g)
        else:
            _accumulate(pending, t._grad_fn, g)
            roots.append(t._grad_fn)

    nodes = _reachable(roots)
    if capture is not None:
        keep = _needed(nodes, capture_nodes, capture_leaves)
        nodes = [n for n in nodes if n in keep]
    else:
        keep = None
    # a node runs once every consumer in the graph has run: count the consumers
    deps = dict.fromkeys(nodes, 0)
    for node in nodes:
        for edge in node.edges:
            if isinstance(edge, Node) and edge in deps:
                deps[edge] += 1

    def release(edge) -> None:
        deps[edge] -= 1
        if deps[edge] == 0:
            ready.append(edge)

    ready = [n for n in dict.fromkeys(roots) if n in deps and deps[n] == 0]
    prev_mode = STATE.enabled
    STATE.enabled = create_graph
    try:
        while ready:
            node = ready.pop()
            g = pending.pop(node, None)
            if g is None:  # no gradient reached this node: nothing flows on from it
                for edge in node.edges:
                    if isinstance(edge, Node) and edge in deps:
                        release(edge)
                continue
            if node.hooks:
                g = _run_hooks(node.hooks, g)
            if node.retained:
                for t in node.retained:
                    t._grad = g if t._grad is None else P.add(t._grad, g)
            for i in capture_nodes.get(node, ()):
                _accumulate(captured, i, g)
            edges = node.edges
            if keep is not None and not any(
                (e in deps) if isinstance(e, Node) else (e is not None and id(e) in capture_leaves)
                for e in edges
            ):
                continue  # a captured node with nothing to capture below it
            grads = node.apply(g, retain_graph, create_graph)
            if anomaly.is_anomaly_enabled() and anomaly.is_anomaly_check_nan_enabled():
                anomaly.check_nan(node, grads)
            for edge, eg in zip(edges, grads):
                if edge is None:
                    continue
                if isinstance(edge, Node):
                    if edge in deps:
                        if eg is not None:
                            _accumulate(pending, edge, eg)
                        release(edge)
                elif eg is not None:
                    collect_leaf(edge, eg)
        for leaf, g in leaf_pending.values():
            deliver_leaf(leaf, g)
    finally:
        STATE.enabled = prev_mode
    return captured


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """``ember.autograd.backward``: accumulate gradients of ``tensors`` into leaves."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        if not inputs:
            raise AutogradError("backward", "`inputs` argument to `backward()` cannot be empty")
        grads = run_backward(tensors, list(grad_tensors), retain_graph, create_graph, inputs)
        for i, t in enumerate(inputs):
            if i in grads and not t._retains_grad:  # (a retained grad was already stored)
                g = grads[i]
                t._grad = contiguous_grad(g) if t._grad is None else P.add(t._grad, g)
        return
    run_backward(tensors, list(grad_tensors), retain_graph, create_graph)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    allow_unused=None,
    materialize_grads=False,
):
    """``ember.autograd.grad``: gradients of ``outputs`` with respect to ``inputs``."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if retain_graph is None:
        retain_graph = create_graph
    for i, t in enumerate(inputs):
        if not t._requires_grad:
            raise AutogradError(
                "grad",
                f"one of the differentiated tensors (input {i}, {format_shape(t.shape, t.dtype)})"
                " does not require grad",
            )
    captured = run_backward(
        outputs, list(grad_outputs), retain_graph, create_graph, inputs, op="grad"
    )
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(i)
        if g is None:
            if materialize_grads:
                g = Tensor._make(np.zeros(t._data.shape, dtype=t._data.dtype))
            elif not allow_unused:
                raise AutogradError(
                    "grad",
                    f"input {i} ({format_shape(t.shape, t.dtype)}) was not used in the graph; "
                    "pass allow_unused=True if this is intended",
                )
        result.append(g)
    return tuple(result)
