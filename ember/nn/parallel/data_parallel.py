"""``DataParallel``: the wrapper scripts put around a model for several GPUs, and its
functional form ``data_parallel``.

With one device, PyTorch's DataParallel runs the wrapped module as it is, and so does this
one: ``forward`` calls ``self.module``, and parameters and ``state_dict`` keys sit under
``module.`` exactly as in PyTorch, so checkpoints saved from a wrapped model load into one.
"""

from __future__ import annotations

from ...frontend.nn.modules.module import Module

__all__ = ["DataParallel", "data_parallel"]


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


def data_parallel(module, inputs, device_ids=None, output_device=None, dim: int = 0,
                  module_kwargs=None):  # fmt: skip
    """``module(*inputs)`` replicated over the GPUs in ``device_ids``. As on PyTorch's CPU
    build, there is no device to run on: RuntimeError, as PyTorch raises it (scripts call this
    only when ``input.is_cuda``; the ``DataParallel`` module runs on the cpu)."""
    raise RuntimeError("device type could not be determined")
