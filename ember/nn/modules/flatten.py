"""``ember.nn.modules.flatten`` (``torch.nn.modules.flatten``): Flatten and Unflatten."""

from ...frontend.nn.modules.flatten import *  # noqa: F403
