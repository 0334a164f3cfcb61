"""``ember.nn`` (PyTorch's ``torch.nn``); the code lives in `ember.frontend.nn`."""

from ..frontend.nn import *  # noqa: F403
from ..frontend.nn import Parameter, functional, init, utils  # noqa: F401
from . import parallel  # noqa: E402
from .parallel import DataParallel  # noqa: E402, F401
