"""``ember.nn.modules.conv`` (``torch.nn.modules.conv``): the convolutions."""

from ...frontend.nn.modules.conv import *  # noqa: F403
