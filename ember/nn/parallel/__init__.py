"""``ember.nn.parallel`` (PyTorch's ``torch.nn.parallel``): `DataParallel` and its functional
form `data_parallel` (as in PyTorch, the function, not the submodule of that name)."""

from .data_parallel import DataParallel, data_parallel

__all__ = ["DataParallel", "data_parallel"]
