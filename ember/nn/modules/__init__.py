"""``ember.nn.modules`` (``torch.nn.modules``): every layer class, and one submodule per
torch.nn.modules file, so ``from ember.nn.modules.linear import Linear`` works as in PyTorch."""

from ...frontend.nn.modules import *  # noqa: F403

# The star import also binds the frontend's own submodules (``activation``, ``linear``...), and
# ``from . import name`` keeps a name already bound: unbind them, so that attribute paths such
# as ``ember.nn.modules.activation.MultiheadAttention`` reach the submodules of this package.
for _name in ("activation", "container", "conv", "dropout", "flatten", "fold", "linear", "loss",
              "module", "normalization", "pixelshuffle", "pooling", "rnn", "sparse",
              "transformer", "upsampling"):  # fmt: skip
    globals().pop(_name, None)
del _name

from . import (  # noqa: E402, F401
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
