"""``ember.nn.init``; the code lives in `ember.frontend.nn.init`."""

from ..frontend.nn.init import *  # noqa: F403
