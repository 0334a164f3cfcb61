"""``ember.nn.modules.padding`` (``torch.nn.modules.padding``): the padding layers."""

from ...frontend.nn.modules.upsampling import (  # noqa: F401
    CircularPad1d,
    CircularPad2d,
    ConstantPad1d,
    ConstantPad2d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReplicationPad1d,
    ReplicationPad2d,
    ZeroPad1d,
    ZeroPad2d,
)
