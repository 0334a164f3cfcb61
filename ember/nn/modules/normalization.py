"""``ember.nn.modules.normalization``, as ``torch.nn.modules.normalization``:
LayerNorm and GroupNorm."""

from ...frontend.nn.modules.normalization import GroupNorm, LayerNorm  # noqa: F401
