"""F.pixel_shuffle and F.pixel_unshuffle: channels <-> space rearrangements (sub-pixel
convolution, Shi et al. 2016) as one reshape, one permute and one reshape each, so autograd and
traced graphs see only view primitives."""

from __future__ import annotations

import operator

from ....ir import ops as P
from ....ir.errors import ShapeError
from ...ops.common import describe
from ...tensor import Tensor

__all__ = ["pixel_shuffle", "pixel_unshuffle"]


def _check(op: str, input, factor, name: str) -> int:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if isinstance(factor, bool):
        raise TypeError(f"{op}(): argument '{name}' must be int, not bool")
    factor = operator.index(factor)
    if input.ndim < 3:
        raise ShapeError(
            op,
            f"{op} expects input to have at least 3 dimensions, but got input with "
            f"{input.ndim} dimension(s) ({describe(input)})",
        )
    if factor <= 0:
        raise ShapeError(op, f"{op} expects a positive {name}, but got {factor}")
    return factor


def pixel_shuffle(input, upscale_factor: int):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r), ``r = upscale_factor``:
    ``out[..., c, h * r + i, w * r + j] = input[..., c * r^2 + i * r + j, h, w]``."""
    op = "pixel_shuffle"
    r = _check(op, input, upscale_factor, "upscale_factor")
    *lead, c, h, w = input.shape
    if c % (r * r) != 0:
        raise ShapeError(
            op,
            f"{op} expects its input's 'channel' dimension to be divisible by the square of "
            f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}",
        )
    n = len(lead)
    oc = c // (r * r)
    x = P.reshape(input, shape=(*lead, oc, r, r, h, w))
    x = P.permute(x, dims=(*range(n), n, n + 3, n + 1, n + 4, n + 2))
    return P.reshape(x, shape=(*lead, oc, h * r, w * r))


def pixel_unshuffle(input, downscale_factor: int):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W), the inverse of `pixel_shuffle`."""
    op = "pixel_unshuffle"
    r = _check(op, input, downscale_factor, "downscale_factor")
    *lead, c, h, w = input.shape
    if h % r != 0:
        raise ShapeError(
            op,
            f"{op} expects height to be divisible by downscale_factor, but input.size(-2)={h} "
            f"is not divisible by {r}",
        )
    if w % r != 0:
        raise ShapeError(
            op,
            f"{op} expects width to be divisible by downscale_factor, but input.size(-1)={w} "
            f"is not divisible by {r}",
        )
    n = len(lead)
    oh, ow = h // r, w // r
    x = P.reshape(input, shape=(*lead, c, oh, r, ow, r))
    x = P.permute(x, dims=(*range(n), n, n + 2, n + 4, n + 1, n + 3))
    return P.reshape(x, shape=(*lead, c * r * r, oh, ow))
