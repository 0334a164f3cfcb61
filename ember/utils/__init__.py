"""``ember.utils``; the code lives in `ember.frontend.utils`."""

from . import data  # noqa: F401
