"""What users touch: `Tensor`, the op functions, autograd.

Importing this package fills the op table's columns (eager kernels, VJP rules), installs the
eager binder and attaches the tensor methods.
"""

from ..passes import vjp_rules  # noqa: F401  (fills the vjp column)
from . import dispatch, tensor_methods  # noqa: F401  (eager binder, Tensor methods)
from .tensor import Size, Tensor, device

__all__ = ["Tensor", "Size", "device"]
