"""``ember.backends``: the flags PyTorch scripts set for their GPU and CPU libraries
(``torch.backends.cudnn.benchmark = True``...). ember has no cuDNN or MPS backend behind eager
tensors, so the flags are kept, can be read back, and change nothing; ``is_available()`` is
False as in PyTorch's CPU build."""

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
