"""``ember.utils.data``: datasets, samplers and the DataLoader."""

from .dataloader import *  # noqa: F403
from .dataset import *  # noqa: F403
from .sampler import *  # noqa: F403
