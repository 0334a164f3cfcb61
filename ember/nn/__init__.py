"""``ember.nn`` (PyTorch's ``torch.nn``); the code lives in `ember.frontend.nn`. The
submodules here mirror torch.nn's import paths (``ember.nn.functional``, ``ember.nn.init``,
``ember.nn.modules.linear``, ``ember.nn.parameter``, ``ember.nn.utils.rnn``, ...)."""

from ..frontend.nn.modules import *  # noqa: F403
from . import functional, init, modules, parallel, parameter, utils  # noqa: F401
from .parallel import DataParallel  # noqa: F401
from .parameter import Parameter
