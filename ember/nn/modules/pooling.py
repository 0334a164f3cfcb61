"""``ember.nn.modules.pooling`` (``torch.nn.modules.pooling``): the pooling layers."""

from ...frontend.nn.modules.pooling import *  # noqa: F403
