"""``ember.nn.modules.rnn`` (``torch.nn.modules.rnn``): RNN, LSTM, GRU and their cells."""

from ...frontend.nn.modules.rnn import *  # noqa: F403
