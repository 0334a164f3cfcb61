"""``DataParallel``: the wrapper scripts put around a model for several GPUs.

With one device, PyTorch's DataParallel runs the wrapped module as it is, and so does this
one: ``forward`` calls ``self.module``, and parameters and ``state_dict`` keys sit under
``module.`` exactly as in PyTorch, so checkpoints saved from a wrapped model load into one.
"""

from __future__ import annotations

from ...frontend.nn.modules.module import Module

__all__ = ["DataParallel"]


class DataParallel(Module):
    """Wraps ``module``; ``device_ids`` and ``output_device`` are accepted and, with no GPU,
    left empty as PyTorch leaves them."""

    def __init__(self, module, device_ids=None, output_device=None, dim: int = 0) -> None:
        super().__init__()
        self.module = module
        self.device_ids: list = []
        self.output_device = None
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
