"""``ember.nn.modules.transformer``, as ``torch.nn.modules.transformer``:
Transformer and its encoder and decoder."""

from ...frontend.nn.modules.transformer import *  # noqa: F403
