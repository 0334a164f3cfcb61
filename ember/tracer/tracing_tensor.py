"""Tracing tensors: tensors that carry a graph value, a shape and a dtype, and no numbers.

A `TracingTensor` is a `Tensor` whose ``_data`` is a *fake* array: the right shape and dtype,
every stride 0, one element of memory. Frontend code that reads only metadata (``shape``,
``dtype``, ``ndim``, ``numel``) runs on it unchanged; every primitive it calls appends a node
to the trace's graph (`ember.tracer.trace`). Its graph value is ``_tv``, and ``_tver`` is the
version of the storage that value describes (views re-read their base after an in-place write).

Reading its numbers in Python (``item``, ``bool``, ``tolist``, ``numpy``, printing) cannot be
answered while tracing: each raises a graph break naming the user's line.

Tensors that existed before the trace (parameters, optimizer state, arguments) become tracing
tensors *in place* while the trace runs: the object keeps its identity (dicts keyed by
parameters keep working) and its class becomes the tracing variant of its class. The trace
restores every such object when it ends.
"""

from __future__ import annotations

import numpy as np

from ..frontend import trace_state
from ..frontend.tensor import Tensor
from ..ir.types import format_shape

__all__ = ["TracingTensor", "fake_array", "tracing_class", "new_tracing"]


def fake_array(shape, dtype) -> np.ndarray:
    """An array of ``shape`` and ``dtype`` whose elements all share one zero (O(1) memory)."""
    root = np.zeros(1, dtype=dtype)
    return np.lib.stride_tricks.as_strided(root, tuple(shape), (0,) * len(shape))


def _break(t: Tensor, what: str):
    return trace_state.graph_break(f"{what} reads the value of a traced tensor {_describe(t)}")


def _describe(t: Tensor) -> str:
    return format_shape(tuple(t._data.shape), t.dtype)


class TracingTensor(Tensor):
    """A tensor inside a trace: a graph value with a shape and a dtype (see module docs)."""

    __slots__ = ()
    _traced = True

    # ---- values that a trace cannot know -----------------------------------------------

    def item(self):
        raise _break(self, "item()")

    def tolist(self):
        raise _break(self, "tolist()")

    def numpy(self, *, force: bool = False):
        raise _break(self, "numpy()")

    def __array__(self, dtype=None, copy=None):
        raise _break(self, "converting to a numpy array")

    def __bool__(self) -> bool:
        raise _break(self, "bool() (Python control flow on a tensor)")

    def __float__(self) -> float:
        raise _break(self, "float()")

    def __int__(self) -> int:
        raise _break(self, "int()")

    def __index__(self) -> int:
        raise _break(self, "using a tensor as a Python index")

    def __repr__(self) -> str:
        raise _break(self, "printing")

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        raise _break(self, "formatting")

    def __reduce_ex__(self, protocol):
        raise _break(self, "pickling")

    def __deepcopy__(self, memo):
        raise _break(self, "deepcopy")

    # ---- copies and aliases keep the graph value ---------------------------------------

    def _alias(self) -> Tensor:
        out = new_tracing(self.__dict__["_tv"], self._data)
        out._vc = self._vc
        out.__dict__["_tver"] = self.__dict__["_tver"]
        return out

    def _value_copy(self) -> Tensor:
        return new_tracing(self.__dict__["_tv"], fake_array(self._data.shape, self._data.dtype))

    def detach(self) -> Tensor:
        out = self._alias()
        if self._requires_grad:  # the graph must show where gradients stop (autodiff pass)
            out.__dict__["_tv"] = trace_state.ACTIVE.stop_gradient(self)
            out.__dict__["_alias_of"] = self
        return out

    @property
    def data(self) -> Tensor:
        out = new_tracing(self.__dict__["_tv"], self._data)
        if self._requires_grad:
            out.__dict__["_tv"] = trace_state.ACTIVE.stop_gradient(self)
        return out

    @data.setter
    def data(self, value: Tensor) -> None:
        raise trace_state.graph_break("assigning .data inside a compiled function")


_CLASSES: dict[type, type] = {Tensor: TracingTensor}
_MAKE = Tensor.__dict__["_make"].__func__  # (a trace patches Tensor._make to mark constants)


def tracing_class(cls: type) -> type:
    """The tracing variant of a tensor class (``Parameter`` -> a tracing ``Parameter``)."""
    out = _CLASSES.get(cls)
    if out is None:
        out = type(cls.__name__, (TracingTensor, cls), {"__slots__": (), "__module__": __name__})
        _CLASSES[cls] = out
    return out


def new_tracing(value, data: np.ndarray) -> TracingTensor:
    """A fresh tracing tensor for graph value ``value`` (``data``: its fake array)."""
    t = _MAKE(TracingTensor, data)
    d = t.__dict__
    d["_tv"] = value
    d["_tver"] = 0
    return t
