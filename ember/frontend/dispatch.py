"""Eager execution of primitives on tensors, and autograd recording.

`eager_bind` is what a primitive call does when an operand is an eager `Tensor`: check the
operands with the primitive's shape rule, run its eager kernel, wrap the result and, when grad
mode is on and an operand requires grad, record a `PrimNode` holding the primitive's VJP rule.
The checking and the kernels come from the op table; nothing here knows about specific ops.
"""

from __future__ import annotations

import numpy as np

from ..ir import dtypes as D
from ..ir.errors import AutogradError, EmberError, OutOfMemoryError, user_location
from ..ir.ops import push_binder
from ..ir.shape_rules import describe
from ..ir.types import format_shape as describe_type
from ..ir.types import is_scalar
from ..runtime import eager_kernels  # noqa: F401  (fills the impl column)
from . import trace_state
from .autograd.grad_mode import STATE
from .autograd.graph import FREED_MESSAGE, Meta, Node, SavedTensor, refresh_view
from .tensor import Tensor

__all__ = ["eager_bind", "PrimNode", "KernelError"]

_FLOATING = frozenset(d.np for d in D.ALL_DTYPES if d.is_floating_point)


class KernelError(EmberError, RuntimeError):
    """A kernel refused valid-looking operands (an index out of range, division by zero...)."""


class PrimNode(Node):
    """Autograd node of one primitive application."""

    __slots__ = ("prim", "attrs", "rule", "saved", "out", "out_meta", "needs", "freed")

    def __init__(self, prim, attrs, args, result, needs, edges) -> None:
        super().__init__(_node_name(prim.name), edges, None)
        rule = prim.vjp
        self.prim = prim
        self.attrs = attrs
        self.rule = rule
        self.needs = needs
        saved = []
        for i, a in enumerate(args):
            if is_scalar(a):
                saved.append(a)
            elif rule.saves_input(i, needs):
                saved.append(SavedTensor(a))
            else:
                saved.append(Meta(a.shape, a.dtype))
        self.saved = saved
        self.out = SavedTensor(result._alias()) if rule.saves_output else None
        self.out_meta = Meta(result.shape, result.dtype)
        self.freed = False

    def apply(self, grad, retain_graph: bool, create_graph: bool) -> list:
        if self.freed:
            raise _freed(self)
        ins = [s.unpack(self) if type(s) is SavedTensor else s for s in self.saved]
        if self.out is not None:
            out = self.out.unpack(self)
            if create_graph:
                out = out._alias()
                out._grad_fn = self
                out._requires_grad = True
        else:
            out = self.out_meta
        grads = self.rule.fn(grad, ins, out, self.needs, **self.attrs)
        if not retain_graph:
            self.saved = self.out = None
            self.freed = True
        return grads


def _freed(node: Node) -> AutogradError:
    return AutogradError(node.name, FREED_MESSAGE, node.loc)


_NAMES: dict[str, str] = {}


def _node_name(prim_name: str) -> str:
    name = _NAMES.get(prim_name)
    if name is None:
        # ``reduce_sum`` -> ``SumBackward``: the name users know from ``x.sum()`` (and torch)
        words = prim_name.removeprefix("reduce_").split("_")
        name = "".join(p.capitalize() for p in words) + "Backward"
        _NAMES[prim_name] = name
    return name


def _fail(prim, args, attrs, exc: Exception):
    """Turn a kernel failure into an error that names the op, operands and the user's line."""
    prim.infer(list(args), attrs, user_location(3))  # raises the precise error for bad operands
    operands = ", ".join(describe(a) for a in args)
    detail = f"{exc} (operands {operands})" if operands else str(exc)
    return KernelError(prim.name, detail, user_location(3))


def _out_of_memory(prim, args, attrs) -> OutOfMemoryError:
    """numpy's MemoryError as an error naming the op, the result's type and its bytes."""
    shape, dtype = prim.infer(list(args), attrs, user_location(3))
    n = 1
    for d in shape:
        n *= d
    operands = ", ".join(describe(a) for a in args)
    return OutOfMemoryError(
        prim.name,
        f"not enough memory: you tried to allocate {n * dtype.itemsize} bytes for the result "
        f"{describe_type(shape, dtype)}" + (f" (operands {operands})" if operands else ""),
        user_location(3),
    )


def eager_bind(prim, args, attrs):
    """Run ``prim`` on eager tensors and Python scalars; record autograd when needed."""
    arrays = []
    requires = False
    for a in args:
        if isinstance(a, Tensor):
            if a._base_t is not None and a._hv is not None and a._hv != a._vc[0]:
                refresh_view(a)  # a view whose storage was written in place since
            arrays.append(a._data)
            requires = requires or a._requires_grad
        else:
            arrays.append(a)
    # Another thread may be tracing and lift (make tracing, with fake data) a tensor we read:
    # the values were read first, so an operand still untraced now gave its real values (a
    # trace changes the class before the data, and restores the data before the class).
    if trace_state.BUSY and any(isinstance(a, Tensor) and a._traced for a in args):
        trace_state.wait_for_trace()
        return eager_bind(prim, args, attrs)
    try:
        with np.errstate(all="ignore"):
            out = prim.impl(*arrays, **attrs)
    except (ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
        raise _fail(prim, args, attrs, exc) from None
    except MemoryError:
        raise _out_of_memory(prim, args, attrs) from None
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    result = Tensor._make(out)
    if requires and STATE.enabled and prim.vjp is not None and out.dtype in _FLOATING:
        _record(prim, args, attrs, result)
    return result


def _record(prim, args, attrs, result) -> None:
    needs = []
    edges = []
    for a in args:
        if isinstance(a, Tensor) and a._requires_grad:
            needs.append(True)
            edges.append(a._grad_fn if a._grad_fn is not None else a)
        else:
            needs.append(False)
            edges.append(None)
    node = PrimNode(prim, attrs, args, result, tuple(needs), edges)
    result._grad_fn = node
    result._requires_grad = True


def _eager_creation(prim, args, attrs):
    """Primitive calls without tensor operands (``full``, ``iota``) run eagerly by default."""
    return eager_bind(prim, args, attrs)


Tensor.__ember_bind__ = staticmethod(eager_bind)
push_binder(_eager_creation)
