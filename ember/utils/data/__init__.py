"""``ember.utils.data`` (PyTorch's ``torch.utils.data``); code in `ember.frontend.utils.data`."""

from ...frontend.utils.data import *  # noqa: F403
