"""``ember.nn.modules.dropout``, as ``torch.nn.modules.dropout``:
Dropout, Dropout1d/2d/3d, AlphaDropout and FeatureAlphaDropout."""

from ...frontend.nn.modules.dropout import *  # noqa: F403
from ...frontend.nn.modules.feature_dropout import *  # noqa: F403
