"""``ember.optim`` (PyTorch's ``torch.optim``); the code lives in `ember.frontend.optim`."""

from ..frontend.optim import *  # noqa: F403
from ..frontend.optim import lr_scheduler  # noqa: F401
