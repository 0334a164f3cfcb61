"""``ember.nn.modules.fold`` (``torch.nn.modules.fold``): Fold and Unfold."""

from ...frontend.nn.modules.fold import *  # noqa: F403
