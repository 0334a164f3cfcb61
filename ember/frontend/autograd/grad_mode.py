"""Grad mode: whether eager ops record the autograd graph (``no_grad``, ``enable_grad``).

Thread-local, like PyTorch's. Each context manager also works as a decorator.
"""

from __future__ import annotations

import functools
import threading

__all__ = ["is_grad_enabled", "set_grad_enabled", "no_grad", "enable_grad"]


class _State(threading.local):
    enabled = True


STATE = _State()


def is_grad_enabled() -> bool:
    return STATE.enabled


class _GradModeContext:
    """Base for grad-mode switches: a context manager and a decorator (``@no_grad()`` or
    bare ``@no_grad``, as PyTorch 2 accepts)."""

    mode: bool

    def __new__(cls, *args):
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]):
            return object.__new__(cls)(args[0])  # bare @no_grad: decorate directly
        return object.__new__(cls)

    def __enter__(self):
        self._prev = STATE.enabled
        STATE.enabled = self.mode
        return None

    def __exit__(self, *exc) -> bool:
        STATE.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):  # noqa: N801 (PyTorch's name)
    """Disable gradient recording inside the block or the decorated function."""

    mode = False


class enable_grad(_GradModeContext):  # noqa: N801
    """Enable gradient recording inside ``no_grad``."""

    mode = True


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """``set_grad_enabled(False)`` sets the mode at once and, as a context, restores it after."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._prev = STATE.enabled
        STATE.enabled = self.mode

    def __enter__(self):
        return None

    def __call__(self, fn):
        STATE.enabled = self._prev
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper
