"""F.unfold (im2col) and F.fold (col2im): sliding local blocks of a 2-d image and back.

``unfold`` is the window gathering of the convolutions (`conv.windows`: one strided ``slice``
per kernel position, stacked with ``concat``), reshaped to (N, C * kh * kw, L). ``fold`` is its
adjoint: each kernel position's column block is placed back with a strided ``pad`` (zeros
between and around the window's elements), the blocks are summed, and the padding is cropped;
overlapping blocks therefore add up, as in PyTorch. The gradient of each is the other.
"""

from __future__ import annotations

from ....ir import ops as P
from ....ir.errors import ShapeError
from ...ops.common import describe
from ...tensor import Tensor
from .conv import _pad_crop, windows

__all__ = ["unfold", "fold"]


def _pair(op: str, name: str, value) -> tuple[int, int]:
    if isinstance(value, bool):
        raise TypeError(f"{op}(): argument '{name}' must be a tuple of ints, not bool")
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, tuple | list):
        vals = tuple(value)
        if len(vals) == 1:
            vals = vals * 2
        if len(vals) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            raise ShapeError(op, f"It is expected {name} equals to 2, but got size {len(vals)}")
        return vals
    raise TypeError(
        f"{op}(): argument '{name}' must be a tuple of ints, not {type(value).__name__}"
    )


def _params(op, kernel_size, dilation, padding, stride):
    k = _pair(op, "kernel_size", kernel_size)
    d = _pair(op, "dilation", dilation)
    p = _pair(op, "padding", padding)
    s = _pair(op, "stride", stride)
    for name, key, vals, ok, want in (
        ("kernel size", "kernel", k, min(k) > 0, "greater than zero"),
        ("stride", "stride", s, min(s) > 0, "greater than zero"),
        ("dilation", "dilation", d, min(d) > 0, "greater than zero"),
        ("padding", "pad", p, min(p) >= 0, "non-negative"),
    ):
        if not ok:
            raise ShapeError(
                op,
                f"{name} should be {want}, but got {key}_height: {vals[0]} {key}_width: {vals[1]}",
            )
    return k, d, p, s


def _blocks(op, size, k, d, p, s) -> tuple[int, int]:
    """The number of sliding blocks along each spatial axis (at least one each)."""
    out = tuple((size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))
    if out[0] < 1 or out[1] < 1:
        raise ShapeError(
            op,
            f"Given input with spatial size {tuple(size)}, kernel_size={k}, dilation={d}, "
            f"padding={p}, calculated shape of the array of sliding blocks as {out}, but its "
            "components must be at least one.",
        )
    return out


def _check_tensor(op: str, input) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(input).__name__}")


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding ``kernel_size`` blocks of ``input`` (N, C, H, W) or (C, H, W) as columns:
    (N, C * kh * kw, L), where L is the number of blocks; channel-major, then kernel row and
    column, as PyTorch orders them."""
    op = "unfold"
    _check_tensor(op, input)
    k, d, p, s = _params(op, kernel_size, dilation, padding, stride)
    if input.ndim not in (3, 4):
        raise ShapeError(
            op,
            "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other "
            f"non-zero dimensions for input, but got: {describe(input)}",
        )
    unbatched = input.ndim == 3
    x = P.reshape(input, shape=(1, *input.shape)) if unbatched else input
    n, c, h, w = x.shape
    ho, wo = _blocks(op, (h, w), k, d, p, s)
    cols = windows(_pad_crop(x, p, p), k, s, d, (ho, wo))  # (N, C, kh * kw, Ho, Wo)
    out = P.reshape(cols, shape=(n, c * k[0] * k[1], ho * wo))
    return P.reshape(out, shape=tuple(out.shape[1:])) if unbatched else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns (N, C * kh * kw, L) or (C * kh * kw, L) of sliding blocks into an image
    (N, C, *output_size): the adjoint of `unfold`; overlapping values add."""
    op = "fold"
    _check_tensor(op, input)
    size = _pair(op, "output_size", output_size)
    k, d, p, s = _params(op, kernel_size, dilation, padding, stride)
    if input.ndim not in (2, 3):
        raise ShapeError(
            op,
            "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and "
            f"non-zero dimensions for input, but got: {describe(input)}",
        )
    unbatched = input.ndim == 2
    x = P.reshape(input, shape=(1, *input.shape)) if unbatched else input
    n, ckk, length = x.shape
    kk = k[0] * k[1]
    if ckk % kk != 0:
        raise ShapeError(
            op,
            "Expected size of input's dimension 1 to be divisible by the product of "
            f"kernel_size, but got input.size(1)={ckk} and kernel_size={k}.",
        )
    ho, wo = _blocks(op, size, k, d, p, s)
    if length != ho * wo:
        raise ShapeError(
            op,
            f"Given output_size={size}, kernel_size={k}, dilation={d}, padding={p}, "
            f"stride={s}, expected size of input's dimension 2 to match the calculated number "
            f"of sliding blocks {ho} * {wo} = {ho * wo}, but got input.size(2)={length}.",
        )
    c = ckk // kk
    hp, wp = size[0] + 2 * p[0], size[1] + 2 * p[1]
    cols = P.reshape(x, shape=(n, c, kk, ho, wo))
    out = None
    for i in range(k[0]):
        for j in range(k[1]):
            idx = i * k[1] + j
            block = P.slice(cols, starts=(0, 0, idx, 0, 0), stops=(n, c, idx + 1, ho, wo),
                            steps=(1, 1, 1, 1, 1))  # fmt: skip
            block = P.reshape(block, shape=(n, c, ho, wo))
            h0, w0 = i * d[0], j * d[1]
            low = (0, 0, h0, w0)
            high = (0, 0, hp - h0 - (ho - 1) * s[0] - 1, wp - w0 - (wo - 1) * s[1] - 1)
            placed = P.pad(block, low=low, high=high, interior=(0, 0, s[0] - 1, s[1] - 1),
                           value=0)  # fmt: skip
            out = placed if out is None else P.add(out, placed)
    out = _pad_crop(out, (-p[0], -p[1]), (-p[0], -p[1]))
    return P.reshape(out, shape=tuple(out.shape[1:])) if unbatched else out
