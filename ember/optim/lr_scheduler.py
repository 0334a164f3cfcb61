"""``ember.optim.lr_scheduler``; the code lives in `ember.frontend.optim.lr_scheduler`."""

from ..frontend.optim.lr_scheduler import *  # noqa: F403
