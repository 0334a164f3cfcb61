"""``ember.nn.modules.linear`` (``torch.nn.modules.linear``): Identity, Linear, Bilinear and
NonDynamicallyQuantizableLinear (MultiheadAttention's ``out_proj``)."""

from ...frontend.nn.modules.attention import NonDynamicallyQuantizableLinear  # noqa: F401
from ...frontend.nn.modules.bilinear import *  # noqa: F403
from ...frontend.nn.modules.linear import *  # noqa: F403
