"""Anomaly mode (``ember.autograd.detect_anomaly``): while it is on, backward checks every
node's gradients and raises, naming the node and the forward op's line, at the first NaN."""

from __future__ import annotations

import functools
import threading

import numpy as np

from ...ir.errors import AutogradError

__all__ = [
    "is_anomaly_enabled",
    "is_anomaly_check_nan_enabled",
    "set_detect_anomaly",
    "detect_anomaly",
    "check_nan",
]


class _State(threading.local):
    anomaly = False
    anomaly_check_nan = True


_STATE = _State()


def is_anomaly_enabled() -> bool:
    return _STATE.anomaly


def is_anomaly_check_nan_enabled() -> bool:
    return _STATE.anomaly_check_nan


class set_detect_anomaly:  # noqa: N801 (PyTorch's name)
    """``set_detect_anomaly(True)`` turns anomaly mode on at once; as a context it restores the
    previous mode after."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = _STATE.anomaly
        self.prev_check_nan = _STATE.anomaly_check_nan
        _STATE.anomaly = bool(mode)
        _STATE.anomaly_check_nan = bool(check_nan)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> bool:
        _STATE.anomaly = self.prev
        _STATE.anomaly_check_nan = self.prev_check_nan
        return False


class detect_anomaly:  # noqa: N801 (PyTorch's name)
    """Context manager (and decorator) enabling anomaly mode inside the block."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        self._saved = []

    def __enter__(self) -> None:
        self._saved.append((_STATE.anomaly, _STATE.anomaly_check_nan))
        _STATE.anomaly = True
        _STATE.anomaly_check_nan = bool(self.check_nan)
        return None

    def __exit__(self, *exc) -> bool:
        _STATE.anomaly, _STATE.anomaly_check_nan = self._saved.pop()
        return False

    def __call__(self, fn):
        check_nan = self.check_nan

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(check_nan):
                return fn(*args, **kwargs)

        return wrapper


def check_nan(node, grads) -> None:
    """Raise PyTorch's anomaly-mode error if any of ``grads`` (one node's operand gradients)
    holds NaN. The backward engine calls it after each node while anomaly mode is on."""
    for i, g in enumerate(grads):
        if g is None or not g.dtype.is_floating_point:
            continue
        if np.isnan(np.asarray(g._data, dtype=np.float64)).any():
            raise AutogradError(
                node.name,
                f"Function '{node.name}' returned nan values in its {i}th output",
                node.loc,
            )
