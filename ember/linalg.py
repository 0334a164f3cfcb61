"""``ember.linalg`` (PyTorch's ``torch.linalg``); the code lives in `ember.frontend.linalg`."""

from .frontend.linalg import *  # noqa: F403
from .frontend.linalg import __all__  # noqa: F401
