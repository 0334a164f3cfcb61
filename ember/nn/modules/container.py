"""``ember.nn.modules.container``, as ``torch.nn.modules.container``:
Sequential, ModuleList, ModuleDict, ParameterList and ParameterDict."""

from ...frontend.nn.modules.container import *  # noqa: F403
from ...frontend.nn.modules.parameter_containers import *  # noqa: F403
