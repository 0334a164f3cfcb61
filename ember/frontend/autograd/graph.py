"""The autograd graph: `Node`s recorded by eager ops, and saved tensors checked by version.

A `Node` stands for one recorded op: the VJP to run, the tensors that VJP reads (saved with
their version counters, so a later in-place write is detected), and one edge per operand: the
operand's own `Node`, the leaf `Tensor` whose ``.grad`` accumulates, or None when no gradient
flows there. Primitive ops and custom `autograd.Function`s both produce Nodes; they differ only
in how ``apply`` computes the operand gradients.
"""

from __future__ import annotations

import numpy as np

from ...ir.errors import AutogradError
from ...ir.types import format_shape
from .grad_mode import STATE
from .windows import read_positions

__all__ = [
    "Node", "SavedTensor", "Meta", "FREED_MESSAGE", "refresh_view", "read_view",
    "view_positions",
]  # fmt: skip

FREED_MESSAGE = (
    "trying to backward through the graph a second time (or to read saved tensors after "
    "they were freed); pass retain_graph=True to the first backward() or autograd.grad() "
    "if you need to backward through the graph twice"
)


class Meta:
    """Shape and dtype of an operand the VJP does not read."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


class SavedTensor:
    """A tensor saved for backward and the version it had then."""

    __slots__ = ("tensor", "version")

    def __init__(self, tensor) -> None:
        self.tensor = tensor
        self.version = tensor._vc[0]

    def unpack(self, node: Node):
        t = self.tensor
        if t._vc[0] != self.version:
            raise AutogradError(
                node.name,
                "one of the tensors needed for gradient computation has been modified by an "
                f"in-place operation: a {format_shape(t.shape, t.dtype)} tensor is at version "
                f"{t._vc[0]}, expected version {self.version}; clone it before changing it in "
                "place, or change it after backward()",
                node.loc,
            )
        return t


class Node:
    """One op in the autograd graph (the tensor's ``grad_fn``)."""

    __slots__ = ("name", "edges", "loc", "retained", "hooks", "__weakref__")

    def __init__(self, name: str, edges: list, loc=None) -> None:
        self.name = name
        self.edges = edges
        self.loc = loc
        self.retained = None  # tensors whose retain_grad() asks for this node's cotangent
        self.hooks = None  # tensor.register_hook callbacks on this node's cotangent

    @property
    def next_functions(self) -> tuple:
        return tuple((e if isinstance(e, Node) else None, 0) for e in self.edges)

    def apply(self, grad, retain_graph: bool, create_graph: bool) -> list:
        """Operand gradients for output cotangent ``grad`` (one per edge)."""
        raise NotImplementedError  # each concrete node kind defines it

    def __repr__(self) -> str:
        return f"<{self.name} object>"


def view_positions(t, base) -> np.ndarray:
    """The flat positions in ``base``'s storage that view ``t`` reads, in ``t``'s shape."""
    return t._view_fn(np.arange(base._data.size).reshape(base._data.shape))


def read_view(t, base):
    """View ``t``'s values read afresh from ``base``, as primitives, so autograd and the tracer
    see where they come from: ``slice`` (+ ``permute``/``reshape``) when the view is a strided
    window of the base, else a ``gather`` over the flat base (`windows.read_positions`)."""
    return read_positions(base, view_positions(t, base))


def refresh_view(t) -> None:
    """Rebuild the history of view ``t`` if its storage was written in place since it got it.

    An in-place write (through the base or through any view of it) gives the base a new history
    but cannot reach the other views of the same storage, whose ``grad_fn`` still describe the
    old values. Such a view's history is rebuilt lazily, when it is next used with grad mode on,
    as its positions gathered from the base's current history (PyTorch regenerates the
    ``grad_fn`` of a view the same way).
    """
    base = t._base_t
    if base is None or t._hv is None or t._hv == t._vc[0] or not STATE.enabled:
        return
    t._hv = t._vc[0]
    if not base._requires_grad:
        return
    rebuilt = read_view(t, base)
    t._grad_fn = rebuilt._grad_fn
    t._requires_grad = True
    if t._retains_grad:
        rebuilt._grad_fn.retained = [t]
