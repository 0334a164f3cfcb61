"""``ember.nn.modules.batchnorm`` (``torch.nn.modules.batchnorm``): BatchNorm1d/2d/3d."""

from ...frontend.nn.modules.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d  # noqa: F401
