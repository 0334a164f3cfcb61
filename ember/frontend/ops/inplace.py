"""In-place ops (``add_``, ``copy_``, ``x[i] = v``...): functional update plus write-back.

An in-place op computes its result functionally (so autograd records ordinary primitive
nodes), writes it into the tensor's storage, bumps the shared version counter and makes the
tensor take the result's autograd history. When the tensor is a view, its base takes a new
history too: the base becomes "old base with the view's positions replaced", a
``slice_scatter`` when the view is a strided window of the base (slices, integer indices,
transposes, diagonals) and ``gather``/``where`` otherwise (repeated or irregular advanced
indices), so gradients through the base see the write. Saved tensors record
their version, so backward through a value that was later overwritten is an error.
"""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import AutogradError, DTypeError, EmberError, ShapeError
from .. import trace_state
from ..autograd.grad_mode import STATE, set_grad_enabled
from ..autograd.graph import Node, refresh_view, view_positions
from ..autograd.windows import write_positions
from ..tensor import Tensor
from .common import broadcast_to, describe

__all__ = ["apply_inplace", "check_inplace", "commit", "scatter_positions", "snapshot"]


def check_inplace(x: Tensor, op: str) -> None:
    if not STATE.enabled:
        return
    if x._requires_grad and x._grad_fn is None:
        raise AutogradError(
            op,
            f"a leaf tensor that requires grad ({describe(x)}) is being used in an in-place "
            "operation; wrap the update in `with ember.no_grad():` or work on a clone",
        )
    base = x._base
    if base is not None and base._requires_grad and base._grad_fn is None:
        raise AutogradError(
            op,
            f"a view ({describe(x)}) of a leaf tensor that requires grad ({describe(base)}) is "
            "being used in an in-place operation",
        )
    refresh_view(x)


def snapshot(x: Tensor) -> Tensor:
    """A copy of ``x``'s values that carries its autograd history (safe to save for backward)."""
    snap = x._value_copy()
    snap._grad_fn = x._grad_fn
    snap._requires_grad = x._requires_grad
    return snap


def scatter_positions(base: Tensor, positions: np.ndarray, values: Tensor) -> Tensor:
    """``base`` with the flat ``positions`` (any shape) set to ``values`` (same shape).

    A strided window of ``base`` becomes one ``slice_scatter``; other positions (repeated or
    irregular advanced indices) ``gather`` + ``where`` with constant index arrays,
    where a repeated position takes the last write and only it receives gradient
    (`ember.frontend.autograd.windows`).
    """
    return write_positions(base, positions, values)


def _fit(x: Tensor, new, op: str):
    if not isinstance(new, Tensor):
        return new
    if tuple(new.shape) != tuple(x.shape):
        raise ShapeError(
            op,
            f"output with shape {list(x.shape)} doesn't match the broadcast shape "
            f"{list(new.shape)}",
        )
    if new.dtype is not x.dtype:
        if new.dtype.category > x.dtype.category:
            raise DTypeError(
                op,
                f"result type {new.dtype.name} can't be cast to the desired output type "
                f"{x.dtype.name} of {describe(x)}",
            )
        new = P.convert(new, dtype=x.dtype)
    return new


class _OverwriteNode(Node):
    """History of a tensor overwritten with values that do not depend on it (``zero_``,
    ``fill_``, ``x[...] = 0``): its previous history receives a zero gradient."""

    __slots__ = ()

    def apply(self, grad, retain_graph: bool, create_graph: bool) -> list:
        return [Tensor._make(np.zeros(grad._data.shape, dtype=grad._data.dtype))]


def _overwritten(x: Tensor, new: Tensor, op: str) -> Tensor:
    name = "".join(p.capitalize() for p in op.strip("_").split("_")) + "Backward"
    node = _OverwriteNode(name, [x._grad_fn if x._requires_grad else None])
    out = new._value_copy()
    out._grad_fn, out._requires_grad = node, True
    return out


def commit(x: Tensor, new: Tensor, op: str) -> Tensor:
    """Write ``new`` into ``x``'s storage and give ``x`` its history.

    Inside a trace nothing is written: ``x`` (a tracing tensor from here on) takes ``new``'s
    value, and its base the base with the view's positions replaced; the compiled program
    writes the final values back (`ember.frontend.trace_state`).
    """
    new = _fit(x, new, op)
    trace = trace_state.active()
    if trace is not None:
        trace.lift(x)
    elif not x._data.flags.writeable:
        raise ShapeError(
            op,
            "unsupported operation: more than one element of the written-to tensor "
            f"{describe(x)} refers to a single memory location (an expanded view); clone() it "
            "first",
        )
    base = x._base
    track = STATE.enabled and (
        new._requires_grad or x._requires_grad or (base is not None and base._requires_grad)
    )
    if track:
        if not new._requires_grad:
            new = _overwritten(x, new, op)
        elif new._grad_fn is None:  # a leaf written as it is (``copy_(leaf)``): own node
            new = P.reshape(new, shape=tuple(new.shape))
    if trace is None:
        x._data[...] = new._data
    x._vc[0] += 1
    rebased = None
    if base is not None and (track or trace is not None):
        positions = view_positions(x, base)
        old = base._alias()
        old._grad_fn, old._requires_grad = base._grad_fn, base._requires_grad
        with set_grad_enabled(track):
            rebased = scatter_positions(old, positions, new)
        if track:
            base._grad_fn, base._requires_grad = rebased._grad_fn, True
    if trace is not None:
        trace.rebind(x, new, base, rebased)
    if track:
        x._grad_fn = new._grad_fn
        x._requires_grad = True
        x._hv = x._vc[0]
    return x


def _records_grad(x: Tensor, others) -> bool:
    if not STATE.enabled:
        return False
    return x._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in others)


def _renamed(exc: EmberError, op: str) -> EmberError:
    if exc.op == op:
        return exc
    try:
        return type(exc)(op, exc.detail, exc.loc)
    except TypeError:  # a subclass with another constructor: keep the original
        return exc


def apply_inplace(x: Tensor, fn, op: str, *others) -> Tensor:
    """Run ``fn(x_value, *others)`` functionally and write the result into ``x``."""
    check_inplace(x, op)
    records = _records_grad(x, others)
    src = snapshot(x) if records else x._alias()
    try:
        new = fn(src, *others)
    except EmberError as exc:  # name the in-place op the user called (``mul_``, not ``mul``)
        raise _renamed(exc, op) from None
    if records and any(new is o for o in others):
        # ``copy_(y)`` of an operand as it is: x gets a node of its own, not y's
        new = P.reshape(new, shape=tuple(new.shape))
    return commit(x, _fit(x, new, op), op)


def setitem_positions(x: Tensor, key) -> np.ndarray:
    return np.arange(x.numel()).reshape(x._data.shape)[key]


def fill_values(x: Tensor, value, shape, op: str):
    """``value`` (number or tensor) broadcast to ``shape`` in ``x``'s dtype."""
    if isinstance(value, Tensor):
        v = value if value.dtype is x.dtype else P.convert(value, dtype=x.dtype)
        return broadcast_to(v, tuple(shape))
    if x.dtype is D.bool_:
        value = bool(value)
    elif not x.dtype.is_floating_point:
        value = int(value)
    return P.broadcast_to(P.full(shape=(), value=value, dtype=x.dtype), shape=tuple(shape))
