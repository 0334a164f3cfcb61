"""``ember.nn.utils``; the code lives in `ember.frontend.nn.utils`."""

from ...frontend.nn.utils.clip_grad import *  # noqa: F403
from ...frontend.nn.utils.convert_parameters import *  # noqa: F403
from . import rnn  # noqa: F401
