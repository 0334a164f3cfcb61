"""``ember.backends.cuda``: ``matmul.allow_tf32`` and friends, settable with no effect."""

from __future__ import annotations

__all__ = ["matmul", "is_built"]


class _MatmulFlags:
    """``torch.backends.cuda.matmul``'s switches (PyTorch's defaults)."""

    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()


def is_built() -> bool:
    return False
