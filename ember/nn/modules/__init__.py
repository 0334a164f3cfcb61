"""``ember.nn.modules`` (``torch.nn.modules``): every layer class, and one submodule per
torch.nn.modules file, so ``from ember.nn.modules.linear import Linear`` works as in PyTorch."""

from ...frontend.nn.modules import *  # noqa: F403
from . import (  # noqa: F401
    activation,
    batchnorm,
    container,
    conv,
    dropout,
    flatten,
    fold,
    linear,
    loss,
    module,
    normalization,
    padding,
    pixelshuffle,
    pooling,
    rnn,
    sparse,
    transformer,
    upsampling,
)
