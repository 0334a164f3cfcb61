"""``ember.nn.modules.sparse`` (``torch.nn.modules.sparse``): Embedding."""

from ...frontend.nn.modules.sparse import *  # noqa: F403
