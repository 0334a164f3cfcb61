"""``ember.nn.utils``; the code lives in `ember.frontend.nn.utils`."""

from ..frontend.nn.utils import *  # noqa: F403
