"""Learning-rate schedulers (``ember.optim.lr_scheduler``), with PyTorch's names and semantics.

`scheduler_base` holds the base class, `schedulers_fixed` the schedules fixed in advance and
`schedulers_adaptive` the cyclic and metric-driven ones.
"""

from .scheduler_base import *  # noqa: F403
from .scheduler_base import LRScheduler
from .schedulers_adaptive import *  # noqa: F403
from .schedulers_fixed import *  # noqa: F403

_LRScheduler = LRScheduler  # PyTorch's old name
