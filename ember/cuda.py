"""``ember.cuda``: what scripts ask before choosing a device.

Eager tensors live on the CPU; GPU execution comes through compiled graphs and the Triton
backend, not through eager CUDA tensors. So ``is_available()`` is False and scripts written as
``device = "cuda" if torch.cuda.is_available() else "cpu"`` take their CPU path.
"""

from __future__ import annotations

__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all"]


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    """Accepted for compatibility: there is no CUDA generator to seed."""


def manual_seed_all(seed: int) -> None:
    """Accepted for compatibility: there is no CUDA generator to seed."""
