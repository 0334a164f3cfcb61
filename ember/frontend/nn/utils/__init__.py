"""``nn.utils``: gradient clipping, parameter <-> vector conversion and ``nn.utils.rnn``
(packed sequences)."""

from . import rnn
from .clip_grad import *  # noqa: F403
from .convert_parameters import *  # noqa: F403
