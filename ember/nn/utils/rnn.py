"""``ember.nn.utils.rnn`` (``torch.nn.utils.rnn``): packed sequences; the code lives in
`ember.frontend.nn.utils.rnn`."""

from ...frontend.nn.utils.rnn import *  # noqa: F403
from ...frontend.nn.utils.rnn import invert_permutation  # noqa: F401
