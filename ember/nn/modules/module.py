"""``ember.nn.modules.module`` (``torch.nn.modules.module``): Module."""

from ...frontend.nn.modules.module import *  # noqa: F403
