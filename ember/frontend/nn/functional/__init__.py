"""``ember.nn.functional``: PyTorch's functional API, each function a composition of primitives,
so eager autograd and traced graphs see ordinary primitive nodes."""

from .activation import *  # noqa: F403
from .attention import *  # noqa: F403
from .bilinear import *  # noqa: F403
from .conv import *  # noqa: F403
from .dropout import *  # noqa: F403
from .feature_dropout import *  # noqa: F403
from .fold import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .normalization import *  # noqa: F403
from .pixel_shuffle import *  # noqa: F403
from .pooling import *  # noqa: F403
from .shaping import *  # noqa: F403
from .sparse import *  # noqa: F403
