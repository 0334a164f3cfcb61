"""``ember.nn.modules.pixelshuffle``, as ``torch.nn.modules.pixelshuffle``:
PixelShuffle and PixelUnshuffle."""

from ...frontend.nn.modules.pixelshuffle import *  # noqa: F403
