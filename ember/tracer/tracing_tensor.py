"""Tracing tensors: tensors that carry a graph value, a shape and a dtype, and no numbers.

A `TracingTensor` is a `Tensor` whose ``_data`` is a *fake* array: the right shape and dtype,
every stride 0, one element of memory. Frontend code that reads only metadata (``shape``,
``dtype``, ``ndim``, ``numel``) runs on it unchanged; every primitive it calls appends a node
to the trace's graph (`ember.tracer.trace`). Its graph value is ``_tv``, and ``_tver`` is the
version of the storage that value describes (views re-read their base after an in-place write).

Reading its numbers in Python (``item``, ``bool``, ``tolist``, ``numpy``, printing) cannot be
answered while tracing: each raises a graph break naming the user's line. ``ember.explain``
traces with the actual values alongside (``_cv``), records each break and goes on.

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

__all__ = ["TracingTensor", "fake_array", "tracing_class", "new_tracing", "original_class"]


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

    def _value(self, what: str) -> Tensor:
        """A graph break; while ``ember.explain`` traces with values alongside, the break is
        recorded and an eager tensor with this tensor's values lets the function go on.

        In another thread than the tracing one, this tensor is a shared tensor that the trace
        lifted: wait until the trace restored it, and read it as it is."""
        trace = trace_state.active()
        if trace is None:
            if trace_state.BUSY:
                trace_state.wait_for_trace()
                if not self._traced:
                    return self
            raise _break(self, what)
        return Tensor._make(trace.on_break(_break(self, what), self))

    def item(self):
        return self._value("item()").item()

    def tolist(self):
        return self._value("tolist()").tolist()

    def numpy(self, *, force: bool = False):
        return self._value("numpy()").numpy(force=True)

    def __array__(self, dtype=None, copy=None):
        return self._value("converting to a numpy array").__array__(dtype)

    def __bool__(self) -> bool:
        return bool(self._value("bool() (Python control flow on a tensor)"))

    def __float__(self) -> float:
        return float(self._value("float()"))

    def __int__(self) -> int:
        return int(self._value("int()"))

    def __index__(self) -> int:
        return self._value("using a tensor as a Python index").__index__()

    def __repr__(self) -> str:
        return repr(self._value("printing"))

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(self._value("formatting"), spec)

    def __reduce_ex__(self, protocol):
        raise _break(self, "pickling")

    def __deepcopy__(self, memo):
        raise _break(self, "deepcopy")

    # ---- copies and aliases keep the graph value ---------------------------------------

    def _alias(self) -> Tensor:
        d = self.__dict__
        out = new_tracing(d["_tv"], self._data, d.get("_cv"))
        out._vc = self._vc
        out.__dict__["_tver"] = d["_tver"]
        return out

    def _value_copy(self) -> Tensor:
        fake = fake_array(self._data.shape, self._data.dtype)
        return new_tracing(self.__dict__["_tv"], fake, self.__dict__.get("_cv"))

    def detach(self) -> Tensor:
        out = self._alias()
        if self._requires_grad:  # the graph must show where gradients stop (autodiff pass)
            d = out.__dict__
            d["_tv"] = trace_state.active().stop_gradient(self)
            d["_tver"] = self._vc[0]  # (stop_gradient read this tensor's current value)
            d["_alias_of"] = self
            d["_detached"] = True
        return out

    @property
    def data(self) -> Tensor:
        out = new_tracing(self.__dict__["_tv"], self._data, self.__dict__.get("_cv"))
        d = out.__dict__
        if self._requires_grad:
            d["_tv"] = trace_state.active().stop_gradient(self)
            d["_detached"] = True
        d["_tver"] = self._vc[0]
        d["_alias_of"] = self  # writes through .data change this tensor
        d["_data_alias"] = True
        return out

    @data.setter
    def data(self, value: Tensor) -> None:
        raise trace_state.graph_break("assigning .data inside a compiled function")


_CLASSES: dict[type, type] = {Tensor: TracingTensor}
_ORIGINAL: dict[type, type] = {}
_MAKE = Tensor.__dict__["_make"].__func__  # (a trace patches Tensor._make to mark constants)


def tracing_class(cls: type) -> type:
    """The tracing variant of a tensor class (``Parameter`` -> a tracing ``Parameter``)."""
    out = _CLASSES.get(cls)
    if out is None:
        out = type(cls.__name__, (TracingTensor, cls), {"__slots__": (), "__module__": __name__})
        _CLASSES[cls] = out
        _ORIGINAL[out] = cls
    return out


def original_class(cls: type) -> type:
    """The class a tensor had before a trace lifted it (``cls`` itself if not lifted)."""
    return _ORIGINAL.get(cls, cls)


def new_tracing(value, data: np.ndarray, concrete: np.ndarray | None = None) -> TracingTensor:
    """A fresh tracing tensor for graph value ``value`` (``data``: its fake array;
    ``concrete``: its actual values, when ``ember.explain`` traces with values alongside)."""
    t = _MAKE(TracingTensor, data)
    d = t.__dict__
    d["_tv"] = value
    d["_tver"] = 0
    if concrete is not None:
        d["_cv"] = concrete
    return t
