"""What users touch: `Tensor`, the op functions, autograd.

Importing this package fills the op table's columns (eager kernels, VJP rules), installs the
eager binder, attaches the tensor methods and wraps the public op functions with their
argument checks (`arguments`).
"""

from ..passes import vjp_rules  # noqa: F401  (fills the vjp column)
from . import arguments, dispatch, tensor_methods  # noqa: F401  (argument checks, eager binder, methods)
from .tensor import Size, Tensor, device

arguments.install(
    ("ops.creation", "ops.elementwise", "ops.linalg", "ops.misc", "ops.nonzero", "ops.random",
     "ops.reduction", "ops.selection", "ops.shape", "api_extras", "nn.functional.activation",
     "nn.functional.attention", "nn.functional.conv", "nn.functional.dropout",
     "nn.functional.linear", "nn.functional.loss", "nn.functional.normalization",
     "nn.functional.pooling", "nn.functional.shaping", "nn.functional.sparse",
     "nn.functional.feature_dropout", "nn.functional.pixel_shuffle", "nn.functional.fold",
     "nn.functional.bilinear"),
)  # fmt: skip

__all__ = ["Tensor", "Size", "device"]
