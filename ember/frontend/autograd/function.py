"""``ember.autograd.Function``: user-defined ops with their own forward and backward.

``forward(ctx, *args)`` runs with grad mode off; ``ctx.save_for_backward`` keeps tensors
(version-checked like every saved tensor) and ``backward(ctx, *grads)`` returns one gradient
per forward argument. Several outputs are supported: each gets a small node that feeds its
cotangent into the right slot of the function's node.
"""

from __future__ import annotations

import numpy as np

from ...ir.errors import AutogradError
from .. import trace_state
from ..tensor import Tensor
from .grad_mode import STATE, no_grad
from .graph import FREED_MESSAGE, Node, SavedTensor, refresh_view

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The ``ctx`` passed to a custom Function's forward and backward."""

    def __init__(self) -> None:
        self._saved: list | None = []
        self.needs_input_grad: tuple[bool, ...] = ()
        self.materialize_grads = True
        self._non_differentiable: set[int] = set()
        self._node: Node | None = None

    def save_for_backward(self, *tensors) -> None:
        self._saved = [SavedTensor(t) if isinstance(t, Tensor) else t for t in tensors]

    @property
    def saved_tensors(self) -> tuple:
        if self._saved is None:
            raise AutogradError(self._node.name if self._node else "Function", FREED_MESSAGE)
        node = self._node
        return tuple(s.unpack(node) if isinstance(s, SavedTensor) else s for s in self._saved)

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value

    def mark_dirty(self, *tensors) -> None:
        """Accepted for compatibility; in-place writes are tracked by version counters."""


class _FunctionNode(Node):
    __slots__ = ("fn", "ctx", "outputs_meta", "freed")

    def __init__(self, fn, ctx, edges, outputs_meta) -> None:
        super().__init__(fn.__name__ + "Backward", edges)
        self.fn = fn
        self.ctx = ctx
        self.outputs_meta = outputs_meta
        self.freed = False

    def apply(self, grad, retain_graph, create_graph):
        if self.freed:
            raise AutogradError(self.name, FREED_MESSAGE, self.loc)
        grads = list(grad) if isinstance(grad, tuple) else [grad]
        if self.ctx.materialize_grads:
            grads = [
                g if g is not None else Tensor._make(np.zeros(shape, dtype=dtype.np))
                for g, (shape, dtype) in zip(grads, self.outputs_meta)
            ]
        result = self.fn.backward(self.ctx, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        if len(result) < len(self.edges):
            raise AutogradError(
                self.name,
                f"backward returned {len(result)} gradients, but forward took "
                f"{len(self.edges)} arguments",
            )
        if not retain_graph:
            self.ctx._saved = None
            self.freed = True
        return list(result[: len(self.edges)])


class _OutputNode(Node):
    """Routes the cotangent of output ``index`` into a tuple slot of the function's node."""

    __slots__ = ("index", "count")

    def __init__(self, parent: _FunctionNode, index: int, count: int) -> None:
        super().__init__(parent.name, [parent])
        self.index = index
        self.count = count

    def apply(self, grad, retain_graph, create_graph):
        slots = [None] * self.count
        slots[self.index] = grad
        return [tuple(slots)]


class Function:
    """Subclass with static ``forward(ctx, ...)`` and ``backward(ctx, *grads)``; call ``apply``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("subclasses of Function define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("subclasses of Function define backward(ctx, *grads)")

    @classmethod
    def apply(cls, *args, **kwargs):
        if (trace := trace_state.active()) is not None:
            trace.note_function(cls)
        ctx = FunctionCtx()
        for a in args:
            if isinstance(a, Tensor):
                refresh_view(a)
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        with no_grad():
            outputs = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = [outputs] if single else list(outputs)
        inputs = {id(a) for a in args if isinstance(a, Tensor)}
        outs = [o._alias() if isinstance(o, Tensor) and id(o) in inputs else o for o in outs]
        if STATE.enabled and any(ctx.needs_input_grad):
            edges = [
                (a._grad_fn if a._grad_fn is not None else a) if needs else None
                for a, needs in zip(args, ctx.needs_input_grad)
            ]
            meta = [(o.shape, o.dtype) if isinstance(o, Tensor) else ((), None) for o in outs]
            node = _FunctionNode(cls, ctx, edges, meta)
            ctx._node = node
            for i, o in enumerate(outs):
                if not isinstance(o, Tensor) or not o.dtype.is_floating_point:
                    continue
                if id(o) in ctx._non_differentiable:
                    continue
                o._grad_fn = node if single else _OutputNode(node, i, len(outs))
                o._requires_grad = True
        return outs[0] if single else tuple(outs)


def once_differentiable(fn):
    """Decorator kept for PyTorch compatibility: backward runs without building a graph."""

    def wrapper(ctx, *grads):
        with no_grad():
            return fn(ctx, *grads)

    wrapper.__name__ = fn.__name__
    return wrapper
