"""Small pieces of PyTorch's top-level API: ``inference_mode``, ``finfo``/``iinfo``,
``is_tensor``, ``is_floating_point``, ``numel``, ``set_printoptions`` and anomaly mode.

* ``inference_mode`` disables gradient recording like ``no_grad`` and sets the flag
  ``is_inference_mode_enabled``. Tensors made inside are ordinary tensors (ember has no
  "inference tensor" kind), so using them later in autograd is allowed, unlike in PyTorch.
* ``set_detect_anomaly`` / ``detect_anomaly`` set the flags ``is_anomaly_enabled`` and
  ``is_anomaly_check_nan_enabled``. The backward engine does not consult them yet; `check_nan`
  is the check it would run on each node's operand gradients (see its docstring).
"""

from __future__ import annotations

import functools
import math
import threading

import ml_dtypes
import numpy as np

from ..ir import dtypes as D
from . import printing
from .autograd.anomaly import (  # noqa: F401 (re-exported)
    detect_anomaly,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    set_detect_anomaly,
)
from .autograd.grad_mode import STATE as _GRAD_STATE
from .tensor import Tensor

__all__ = [
    "inference_mode",
    "is_inference_mode_enabled",
    "finfo",
    "iinfo",
    "is_tensor",
    "is_floating_point",
    "numel",
    "set_printoptions",
    "set_detect_anomaly",
    "detect_anomaly",
    "is_anomaly_enabled",
    "is_anomaly_check_nan_enabled",
]


class _State(threading.local):
    inference = False


_STATE = _State()


# ---- inference mode ------------------------------------------------------------------------


def is_inference_mode_enabled() -> bool:
    return _STATE.inference


class inference_mode:  # noqa: N801 (PyTorch's name)
    """``with inference_mode():`` / ``@inference_mode()`` / ``@inference_mode``: no gradient
    recording inside. As in PyTorch, ``inference_mode(False)`` turns inference mode off and
    grad mode on inside (even within ``no_grad``)."""

    def __new__(cls, mode=True):
        self = object.__new__(cls)
        if callable(mode) and not isinstance(mode, bool):  # bare @inference_mode
            self.mode = True
            return self(mode)
        return self

    def __init__(self, mode: bool = True) -> None:
        if callable(mode) and not isinstance(mode, bool):
            return  # __new__ already returned the decorated function
        self.mode = bool(mode)
        self._saved = []

    def __enter__(self):
        self._saved.append((_STATE.inference, _GRAD_STATE.enabled))
        _STATE.inference = self.mode
        _GRAD_STATE.enabled = not self.mode
        return None

    def __exit__(self, *exc) -> bool:
        _STATE.inference, _GRAD_STATE.enabled = self._saved.pop()
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper

    def clone(self) -> inference_mode:
        return inference_mode(self.mode)


# ---- finfo / iinfo -------------------------------------------------------------------------


def _check_dtype(dtype, fn: str) -> D.DType:
    if not isinstance(dtype, D.DType):
        raise TypeError(f"{fn}(): argument 'type' must be ember.dtype, not {type(dtype).__name__}")
    return dtype


class finfo:  # noqa: N801 (PyTorch's name)
    """Machine limits of a floating dtype: ``bits``, ``eps``, ``max``, ``min``, ``tiny`` (=
    ``smallest_normal``), ``resolution`` (Python floats) and ``dtype`` (its name, a str)."""

    def __init__(self, type: D.DType | None = None) -> None:  # noqa: A002 (PyTorch's name)
        dtype = D.get_default_dtype() if type is None else _check_dtype(type, "finfo")
        if not dtype.is_floating_point:
            raise TypeError(
                "ember.finfo() requires a floating point input type. Use ember.iinfo to "
                f"handle 'ember.finfo' (got ember.{dtype.name})"
            )
        info = ml_dtypes.finfo(dtype.np) if dtype is D.bfloat16 else np.finfo(dtype.np)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = float(info.smallest_normal)
        self.smallest_normal = self.tiny
        self.resolution = float(10.0 ** -math.floor(-math.log10(self.eps)))
        self.dtype = dtype.name

    def __eq__(self, other) -> bool:
        return isinstance(other, finfo) and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash(("finfo", self.dtype))

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
            f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, "
            f"dtype={self.dtype})"
        )


class iinfo:  # noqa: N801 (PyTorch's name)
    """Limits of an integer dtype: ``bits``, ``max``, ``min`` (Python ints) and ``dtype``."""

    def __init__(self, type: D.DType) -> None:  # noqa: A002 (PyTorch's name)
        dtype = _check_dtype(type, "iinfo")
        if dtype is D.bool_:
            raise TypeError("ember.bool is not supported by ember.iinfo")
        if dtype.is_floating_point:
            raise TypeError(
                "ember.iinfo() requires an integer input type. Use ember.finfo to handle "
                f"'ember.iinfo' (got ember.{dtype.name})"
            )
        info = np.iinfo(dtype.np)
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = dtype.name

    def __eq__(self, other) -> bool:
        return isinstance(other, iinfo) and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash(("iinfo", self.dtype))

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


# ---- predicates ----------------------------------------------------------------------------


def is_tensor(obj) -> bool:
    """True if ``obj`` is an ember Tensor (or Parameter)."""
    return isinstance(obj, Tensor)


def _need_tensor(fn: str, input) -> None:  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(
            f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}"
        )


def is_floating_point(input) -> bool:  # noqa: A002 (PyTorch's name)
    _need_tensor("is_floating_point", input)
    return input.dtype.is_floating_point


def numel(input) -> int:  # noqa: A002
    _need_tensor("numel", input)
    return int(np.prod(input.shape, dtype=np.int64))


# ---- print options -------------------------------------------------------------------------

_PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:  # fmt: skip
    """Set how tensors print (PyTorch's ``set_printoptions``; ``profile`` is ``'default'``,
    ``'short'`` or ``'full'``). ``sci_mode`` is accepted only as None: ember's printer chooses
    fixed or scientific notation itself."""
    if sci_mode is not None:
        raise NotImplementedError(
            "set_printoptions: sci_mode is not supported yet (ember's printer picks fixed or "
            "scientific notation from the values, as PyTorch does with sci_mode=None)"
        )
    opts = {}
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: unknown profile {profile!r}")
        opts.update(_PROFILES[profile])
    for name, value in (("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)):  # fmt: skip
        if value is not None:
            opts[name] = value
    # the printer reads these module globals at every call
    for name, value in opts.items():
        setattr(printing, name.upper(), value)
