"""``ember.nn`` (PyTorch's ``torch.nn``); the code lives in `ember.frontend.nn`. The
submodules here mirror torch.nn's import paths (``ember.nn.functional``, ``ember.nn.init``,
``ember.nn.modules.linear``, ``ember.nn.parameter``, ``ember.nn.utils.rnn``, ...)."""

<<<<<<< HEAD
from ..frontend.nn.modules import *  # noqa: F403
from . import functional, init, modules, parameter, utils  # noqa: F401
from .parameter import Parameter
=======
from ..frontend.nn import *  # noqa: F403
from ..frontend.nn import Parameter, functional, init, utils  # noqa: F401
from . import parallel  # noqa: E402
from .parallel import DataParallel  # noqa: E402, F401
>>>>>>> dist-linalg
