"""``ember.nn.init``; the code lives in `ember.frontend.nn.init`."""

from ..frontend.nn.init import *  # noqa: F403
from ..frontend.nn.init import (  # noqa: F401  (private in PyTorch too, yet used by programs)
    _calculate_correct_fan,
    _calculate_fan_in_and_fan_out,
)
