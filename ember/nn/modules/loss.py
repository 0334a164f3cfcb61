"""``ember.nn.modules.loss`` (``torch.nn.modules.loss``): the losses."""

from ...frontend.nn.modules.loss import *  # noqa: F403
