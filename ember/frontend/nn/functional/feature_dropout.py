"""Channel dropout and alpha dropout: dropout1d/2d/3d, alpha_dropout, feature_alpha_dropout.

Like `F.dropout`, every mask is ``rand(shape) < 1 - p`` from ember's Philox generator, so the
same seed draws the same mask in eager and compiled code. Channel ("feature") dropout draws one
number per (sample, channel), shape ``(N, C, 1, ..., 1)``, and broadcasts it over the spatial
dims. Alpha dropout keeps the self-normalizing property of SELU networks: a dropped element
becomes ``-alpha' = -scale * alpha`` of SELU, and the result is rescaled by ``a`` and shifted by
``b`` so that mean and variance are preserved (PyTorch's ``_dropout_impl``, ATen Dropout.cpp):

    a = 1 / sqrt((alpha^2 p + 1)(1 - p)),   out = keep ? a x + alpha a p : alpha a (p - 1)

with ``alpha = 1.7580993408473766``. ``p == 1`` gives zeros for every variant, as PyTorch does.
"""

from __future__ import annotations

import math
import warnings

from ....ir import ops as P
from ....ir.errors import DTypeError, ShapeError
from ...ops import elementwise as E
from ...ops.common import describe
from ...ops.inplace import apply_inplace
from ...ops.random import rand
from ...tensor import Tensor
from .dropout import _check_p

__all__ = ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]

_SELU_ALPHA = 1.7580993408473766  # SELU's scale * alpha


def _check_tensor(op: str, input) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(input).__name__}")


def _masked_dropout(op: str, input, p: float, training: bool, inplace: bool, *, feature: bool,
                    alpha: bool):  # fmt: skip
    """The shared body: draw the keep mask, then scale (and shift for alpha dropout)."""
    _check_tensor(op, input)
    p = _check_p(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if not input.dtype.is_floating_point:
        raise DTypeError(op, f"expects a floating point input, got {describe(input)}")
    if feature and input.ndim < 2:
        raise ShapeError(
            op,
            f"Feature dropout requires at least 2 dimensions in the input, got {describe(input)}",
        )
    if p == 1.0:

        def fn(x):
            return P.mul(x, 0.0)

    else:
        shape = tuple(input.shape)
        noise_shape = (*shape[:2], *(1,) * (len(shape) - 2)) if feature else shape
        keep = P.convert(P.lt(rand(*noise_shape, dtype=input.dtype), 1.0 - p), dtype=input.dtype)
        if alpha:
            a = 1.0 / math.sqrt((_SELU_ALPHA * _SELU_ALPHA * p + 1.0) * (1.0 - p))
            scale = P.mul(keep, a)
            shift = P.add(P.mul(P.sub(keep, 1.0), _SELU_ALPHA * a), _SELU_ALPHA * a * p)

            def fn(x):
                return E.add(E.mul(x, scale), shift)

        else:
            scale = P.mul(keep, 1.0 / (1.0 - p))

            def fn(x):
                return E.mul(x, scale)

    if inplace:
        return apply_inplace(input, fn, op + "_")
    return fn(input)


def _unbatched(op, input, p, training, inplace, batched: bool):
    """Channel dropout of ``input``, whose batch dim is missing unless ``batched``."""
    if batched or not training or p == 0.0:
        return _masked_dropout(op, input, p, training, inplace, feature=True, alpha=False)
    if inplace:
        # the mask of the (1, C, ...) view is applied in place to ``input`` itself
        _masked_dropout(op, input.unsqueeze(0), p, training, True, feature=True, alpha=False)
        return input
    out = _masked_dropout(op, input.unsqueeze(0), p, training, False, feature=True, alpha=False)
    return out.squeeze(0)


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of ``input`` (N, C, L) or (C, L) with probability ``p`` and scale
    the rest by ``1 / (1 - p)``."""
    _check_tensor("dropout1d", input)
    p = _check_p(p)
    if input.ndim not in (2, 3):
        raise ShapeError(
            "dropout1d",
            f"Expected 2D or 3D input, but received a {input.ndim}D input. Note that dropout1d "
            "exists to provide channel-wise dropout on inputs with 1 spatial dimension, a "
            "channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).",
        )
    return _unbatched("dropout1d", input, p, training, inplace, input.ndim == 3)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of ``input`` (N, C, H, W) with probability ``p``.

    As in PyTorch, a 3-D input is read as (N, C, L) (1-d channel dropout, with a warning),
    and other ranks warn and drop channels of dim 1."""
    _check_tensor("dropout2d", input)
    p = _check_p(p)
    ndim = input.ndim
    if ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2,
        )
    if ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    return _masked_dropout("dropout2d", input, p, training, inplace, feature=True, alpha=False)


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of ``input`` (N, C, D, H, W) or (C, D, H, W) with probability
    ``p``; other ranks warn, as in PyTorch."""
    _check_tensor("dropout3d", input)
    p = _check_p(p)
    ndim = input.ndim
    if ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {ndim}-D input to dropout3d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout3d "
            "exists to provide channel-wise dropout on inputs with 3 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            stacklevel=2,
        )
    return _unbatched("dropout3d", input, p, training, inplace, ndim == 5)


def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False):
    """Alpha dropout (for SELU networks): dropped elements take SELU's negative saturation
    value, and the result keeps zero mean and unit variance. Off unless ``training``."""
    return _masked_dropout("alpha_dropout", input, p, training, inplace, feature=False, alpha=True)


def feature_alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False):
    """Alpha dropout of whole channels (dim 1) of ``input`` (N, C, ...)."""
    return _masked_dropout(
        "feature_alpha_dropout", input, p, training, inplace, feature=True, alpha=True
    )
