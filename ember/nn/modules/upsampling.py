"""``ember.nn.modules.upsampling``, as ``torch.nn.modules.upsampling``:
Upsample, UpsamplingNearest2d and UpsamplingBilinear2d."""

from ...frontend.nn.modules.upsampling import (  # noqa: F401
    Upsample,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
)
