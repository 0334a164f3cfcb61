"""``ember.backends.cudnn``: cuDNN's switches as settable module attributes with no effect
(there is no cuDNN behind eager tensors); the defaults are PyTorch's."""

from __future__ import annotations

__all__ = ["enabled", "benchmark", "deterministic", "allow_tf32", "is_available", "version"]

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version():
    """cuDNN's version: None, as it is not there."""
    return None
