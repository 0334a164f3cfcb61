"""``ember.nn.parameter`` (``torch.nn.parameter``): Parameter."""

from ..frontend.nn.parameter import *  # noqa: F403
