"""``ember.nn.functional``: the code lives in `ember.frontend.nn.functional`."""

from ..frontend.nn.functional import *  # noqa: F403
