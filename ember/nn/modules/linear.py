"""``ember.nn.modules.linear`` (``torch.nn.modules.linear``): Identity, Linear and Bilinear."""

from ...frontend.nn.modules.bilinear import *  # noqa: F403
from ...frontend.nn.modules.linear import *  # noqa: F403
