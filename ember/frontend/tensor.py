"""`Tensor`: an n-dimensional array on numpy storage with autograd state.

This file holds the tensor's state and metadata (shape, dtype, device, strides, version
counter, grad, grad_fn, view base) and conversions out of ember (``numpy``, ``item``,
``tolist``). The math lives in `ember.frontend.ops` and is attached as methods and operators by
`ember.frontend.tensor_methods`, so this module imports no op.
"""

from __future__ import annotations

import numpy as np

from ..ir import dtypes as D
from ..ir.errors import (
    AutogradError,
    ConversionError,
    DeviceError,
    DTypeError,
    ShapeError,
    TensorTypeError,
)
from ..ir.types import format_shape
from . import trace_state
from .dims import normalize_dim
from .printing import format_tensor

__all__ = ["Tensor", "Size", "device", "DeviceError", "ConversionError", "TensorTypeError"]


class Size(tuple):
    """A tensor's shape: a tuple of ints (``torch.Size``)."""

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n

    def __repr__(self) -> str:
        return f"ember.Size([{', '.join(str(d) for d in self)}])"

    def __getitem__(self, item):
        out = tuple.__getitem__(self, item)
        return Size(out) if isinstance(item, slice) else out


class device:  # noqa: N801 (PyTorch's name)
    """Where a tensor lives: ``device('cpu')``. Compares equal to its string form."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | device = "cpu", index: int | None = None) -> None:
        if isinstance(type, device):
            type, index = type.type, type.index
        if ":" in type:
            type, idx = type.split(":", 1)
            index = int(idx)
        if type not in ("cpu", "cuda"):
            raise DeviceError("device", f"expected 'cpu' or 'cuda', got {type!r}")
        self.type = type
        self.index = index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return (
            f"device(type='{self.type}')"
            if self.index is None
            else (f"device(type='{self.type}', index={self.index})")
        )

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")
_NP_TO_DTYPE = {d.np: d for d in D.ALL_DTYPES}


class Tensor:
    """An eager tensor. Create one with `ember.tensor`, `ember.zeros`, ... or ``Tensor(data)``."""

    __slots__ = (
        "_data",
        "_requires_grad",
        "_grad",
        "_grad_fn",
        "_vc",
        "_base_t",
        "_hv",
        "_view_fn",
        "_retains_grad",
        "__weakref__",
        "__dict__",
    )
    __array_priority__ = 1000  # numpy defers to our operators: ndarray + Tensor -> Tensor
    _traced = False  # True for the tracing tensors of `ember.tracer` (shape and dtype only)

    def __new__(cls, *args, **kwargs):
        if cls is Tensor and args and not kwargs:
            data = args[0] if len(args) == 1 else args
            if isinstance(data, int) and len(args) == 1:
                data = (data,)
            if isinstance(data, tuple) and all(isinstance(d, int) for d in data):
                return cls._make(np.zeros(data, dtype=D.get_default_dtype().np))
            return cls._make(np.array(data, dtype=D.get_default_dtype().np))
        return cls._make(np.zeros((0,), dtype=D.get_default_dtype().np))

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Wrap a numpy array (no copy). The fast path every op result takes."""
        self = object.__new__(cls)
        self._data = data
        self._requires_grad = requires_grad
        self._grad = None
        self._grad_fn = None
        self._vc = [0]
        self._base_t = None
        self._hv = 0
        self._view_fn = None
        self._retains_grad = False
        return self

    @property
    def _base(self) -> Tensor | None:
        """The tensor whose storage this view shares (None unless this is a view)."""
        return self._base_t

    @_base.setter
    def _base(self, base: Tensor | None) -> None:
        # A view's autograd history is valid for the version its storage has now: when the
        # base or another view of it is later written in place, the version moves on and the
        # view's history is rebuilt from the base's (`autograd.graph.refresh_view`).
        # A view made with grad mode off (or inside a custom Function's forward) has no
        # history to follow: it is never rebuilt (`_hv` None).
        self._base_t = base
        self._hv = self._vc[0] if _grad_mode().enabled else None

    def _value_copy(self) -> Tensor:
        """A new tensor with this one's values (its own storage and version counter)."""
        if self._lifted():
            return self._value_copy()  # now a tracing tensor: a copy of its graph value
        return Tensor._make(self._data.copy())

    def _alias(self) -> Tensor:
        """A detached tensor sharing this one's storage and version counter."""
        if self._lifted():
            return self._alias()
        out = Tensor._make(self._data)
        out._vc = self._vc
        return out

    # ---- metadata ----------------------------------------------------------------------

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[self._dim(dim, "size")]

    @property
    def dtype(self) -> D.DType:
        return _NP_TO_DTYPE[self._data.dtype]

    @property
    def device(self) -> device:
        return CPU

    @property
    def is_cuda(self) -> bool:
        return False

    @property
    def is_cpu(self) -> bool:
        return True

    @property
    def is_xpu(self) -> bool:
        return False

    @property
    def is_mps(self) -> bool:
        return False

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def ndimension(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def nelement(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)

    def stride(self, dim: int | None = None):
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[self._dim(dim, "stride")]

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def data_ptr(self) -> int:
        return int(self._data.__array_interface__["data"][0])

    @property
    def _version(self) -> int:
        return self._vc[0]

    def _describe(self) -> str:
        """``f32[3,4]``: how a tensor appears in error messages."""
        return format_shape(self._data.shape, self.dtype)

    def _dim(self, dim: int, op: str) -> int:
        return normalize_dim(dim, self, op)

    # ---- autograd state ----------------------------------------------------------------

    def _refresh(self) -> None:
        """Bring a view's history up to date after an in-place write to its storage."""
        if self._base_t is not None and self._hv is not None and self._hv != self._vc[0]:
            from .autograd.graph import refresh_view  # (autograd imports this module)

            refresh_view(self)

    @property
    def requires_grad(self) -> bool:
        self._refresh()
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self._touch()
        if self._grad_fn is not None and not requires_grad:
            raise AutogradError(
                "requires_grad_",
                "you can only change requires_grad flags of leaf tensors, and this "
                f"{self._describe()} tensor is the output of {self._grad_fn.name}; use detach() "
                "to get a tensor that does not require grad",
            )
        if requires_grad and not self.dtype.is_floating_point:
            raise DTypeError(
                "requires_grad_",
                "only tensors of floating point dtype can require gradients, got "
                f"{self._describe()}",
            )
        if self._requires_grad != bool(requires_grad):
            trace_state.bump()
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad(self) -> Tensor | None:
        trace = trace_state.active()
        if trace is not None:  # a compiled entry guards whether it is None
            trace.note_grad_read(self)
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        self._touch()
        if value is not None and not isinstance(value, Tensor):
            raise TensorTypeError(
                "grad",
                "assigned grad expected to be a Tensor or None but got grad of type "
                f"{type(value).__name__} (tensor {self._describe()})",
            )
        if value is self:
            raise AutogradError(
                "grad", f"can't assign a tensor as its own grad ({self._describe()})"
            )
        if value is not None and tuple(value.shape) != tuple(self.shape):
            raise ShapeError(
                "grad",
                f"assigned grad {value._describe()} does not match the tensor's shape: "
                f"{self._describe()}",
            )
        if value is not None and value.dtype is not self.dtype:
            raise DTypeError(
                "grad",
                f"assigned grad {value._describe()} does not match the tensor's dtype: "
                f"{self._describe()}",
            )
        self._grad = value
        if (trace := trace_state.active()) is not None:
            trace.note_grad_write(self)

    @property
    def grad_fn(self):
        self._refresh()
        return self._grad_fn

    @property
    def is_leaf(self) -> bool:
        self._refresh()
        return self._grad_fn is None

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        self._refresh()
        if not self._requires_grad:
            raise AutogradError(
                "retain_grad",
                f"can't retain_grad on a tensor that does not require grad ({self._describe()})",
            )
        if self._grad_fn is None or self._retains_grad:
            return
        node = self._grad_fn
        node.retained = (node.retained or []) + [self]
        self._retains_grad = True

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a result replaces it."""
        self._refresh()
        if not self._requires_grad:
            raise AutogradError(
                "register_hook",
                f"can't register a hook on a tensor that does not require grad "
                f"({self._describe()})",
            )
        if self._grad_fn is not None:
            node = self._grad_fn
            node.hooks = (node.hooks or []) + [hook]
        else:
            self.__dict__.setdefault("_leaf_hooks", []).append(hook)
        return _HookHandle(self, hook)

    def detach(self) -> Tensor:
        """A tensor sharing storage with this one, cut off from the autograd graph."""
        return self._alias()

    def detach_(self) -> Tensor:
        self._touch()
        if self._requires_grad:
            trace_state.bump()
        self._grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        """The values as a detached tensor sharing storage but, as in PyTorch, not the version
        counter: changes made through ``.data`` are invisible to autograd."""
        if self._lifted():
            return self.data
        return Tensor._make(self._data)

    @data.setter
    def data(self, value: Tensor) -> None:
        trace_state.bump()
        self._data = value._data

    # ---- leaving ember -----------------------------------------------------------------

    def _lifted(self) -> bool:
        """Inside a trace, whether this tensor from outside just became a tracing tensor
        (then its own methods answer: call the method again)."""
        trace = trace_state.active()
        return trace is not None and trace.lift_outside(self)

    def _touch(self) -> None:
        """Inside a trace, a tensor from outside is lifted before its state changes, so the
        trace can restore it and the compiled program can repeat the change."""
        if (trace := trace_state.active()) is not None:
            trace.lift(self)

    def _read(self, what: str) -> None:
        """Inside a trace, reading an outside tensor's value is a graph break (its value can
        change between calls); the tracer decides."""
        if (trace := trace_state.active()) is not None:
            trace.eager_read(self, what)

    def numpy(self, *, force: bool = False) -> np.ndarray:
        self._read("numpy()")
        if self._requires_grad and not force:
            raise AutogradError(
                "numpy",
                f"can't call numpy() on a tensor that requires grad ({self._describe()}); use "
                "tensor.detach().numpy()",
            )
        return self._data

    def __array__(self, dtype=None, copy=None):
        arr = self._data
        return arr if dtype is None else arr.astype(dtype)

    def item(self):
        self._read("item()")
        if self._data.size != 1:
            raise ShapeError(
                "item",
                f"a tensor with {self._data.size} elements ({self._describe()}) cannot be "
                "converted to a Python number",
            )
        return (
            self._data.reshape(()).item()
            if self.dtype is not D.bfloat16
            else float(self._data.reshape(()).astype(np.float32))
        )

    def tolist(self):
        self._read("tolist()")
        arr = self._data.astype(np.float32) if self.dtype is D.bfloat16 else self._data
        return arr.tolist()

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TensorTypeError("len", f"len() of a 0-d tensor ({self._describe()})")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TensorTypeError("iter", f"iteration over a 0-d tensor ({self._describe()})")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        self._read("bool()")
        if self._data.size != 1:
            raise ShapeError(
                "bool",
                f"the truth value of a tensor with {self._data.size} elements "
                f"({self._describe()}) is ambiguous; use .any() or .all()",
            )
        return bool(self._data.reshape(()))

    def _scalar(self, op: str):
        if self._data.size != 1:
            raise ConversionError(
                op,
                f"only one element tensors can be converted to Python scalars, got "
                f"{self._describe()}",
            )
        return self.item()

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self._data.size != 1:
            raise TensorTypeError(
                "index",
                "only integer tensors of a single element can be used as an index, got "
                f"{self._describe()}",
            )
        return int(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats like its number (``f"{loss:.4f}"``), as in PyTorch."""
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __repr__(self) -> str:
        return format_tensor(self)

    def __reduce_ex__(self, protocol):
        return (_rebuild, (self._data.copy(), self._requires_grad))

    def __deepcopy__(self, memo):
        out = type(self)._make(self._data.copy(), self._requires_grad)
        memo[id(self)] = out
        return out


_GRAD_MODE = []


def _grad_mode():
    """The grad-mode state (imported on first use: the autograd package imports this module)."""
    if not _GRAD_MODE:
        from .autograd.grad_mode import STATE

        _GRAD_MODE.append(STATE)
    return _GRAD_MODE[0]


def _rebuild(data, requires_grad):
    return Tensor._make(data, requires_grad)


class _HookHandle:
    """``handle.remove()`` takes a hook off again."""

    def __init__(self, tensor: Tensor, hook) -> None:
        self._tensor = tensor
        self._hook = hook

    def remove(self) -> None:
        t = self._tensor
        holder = t._grad_fn.hooks if t._grad_fn is not None else t.__dict__.get("_leaf_hooks")
        if holder and self._hook in holder:
            holder.remove(self._hook)
