"""``ember.accelerator``: PyTorch's device-agnostic accelerator queries, answered as its CPU
build answers them. Eager tensors live on the CPU (see `ember.cuda`), so no accelerator is
current and scripts written as ``acc = torch.accelerator.current_accelerator()`` take their
CPU path."""

from __future__ import annotations

__all__ = ["is_available", "current_accelerator", "device_count"]


def is_available() -> bool:
    return False


def current_accelerator(check_available: bool = False):
    """The current accelerator's device type: None, as there is none."""
    return None


def device_count() -> int:
    return 0
