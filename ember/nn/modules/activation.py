"""``ember.nn.modules.activation``, as ``torch.nn.modules.activation``:
activations and MultiheadAttention."""

from ...frontend.nn.modules.activation import *  # noqa: F403
from ...frontend.nn.modules.attention import MultiheadAttention  # noqa: F401
