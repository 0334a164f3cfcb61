"""Pooling: max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool1d/2d, adaptive_max_pool1d/2d.

Pooling windows are gathered like convolution windows (strided ``slice`` primitives over the
padded input, see `conv.windows`). Max pooling takes ``argmax`` over the window axis and
``gather``s the value, so the gradient goes to one element per window, the first maximum in
row-major window order, as in PyTorch (not shared among ties as ``amax`` would). Average
pooling sums the windows and divides by a constant divisor map computed with PyTorch's rules
(``count_include_pad``, ``ceil_mode``, ``divisor_override``). Adaptive average pooling
contracts the input with constant averaging matrices ``A_h`` (Ho, H) and ``A_w`` (Wo, W)
built from PyTorch's bins ``[floor(i * H / Ho), ceil((i + 1) * H / Ho))``.
"""

from __future__ import annotations

import numpy as np

from ....ir import dtypes as D
from ....ir import ops as P
from ....ir.errors import DTypeError, ShapeError
from ...ops.common import describe
from ...tensor import Tensor
from .conv import _ntuple, windows

__all__ = [
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "max_pool1d_with_indices", "max_pool2d_with_indices", "adaptive_max_pool1d_with_indices",
    "adaptive_max_pool2d_with_indices",
]  # fmt: skip


def _size(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _as_4d(op: str, input, n: int):
    """``input`` as (N, C, H, W) (1-d ops: H = 1) and a function restoring the output's rank."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input.ndim not in (n + 1, n + 2) or any(d == 0 for d in input.shape[-n:]):
        raise ShapeError(
            op,
            f"Expected {n + 1}D or {n + 2}D (batch mode) tensor with optional 0 dim batch size "
            f"and non-zero spatial dims for input, but got input of size: {_size(input.shape)}",
        )
    shape = tuple(input.shape)
    lead = shape[:-n]
    if len(lead) == 1:
        lead4 = (1, lead[0])
    else:
        lead4 = lead
    spatial = shape[-n:] if n == 2 else (1, shape[-1])
    x = P.reshape(input, shape=(*lead4, *spatial)) if (*lead4, *spatial) != shape else input

    def restore(y):
        out = (*lead, *(y.shape[2:] if n == 2 else y.shape[3:]))
        return P.reshape(y, shape=out) if tuple(out) != tuple(y.shape) else y

    return x, restore


def _pool_out_len(op, size, k, s, p, d, ceil_mode) -> int:
    """PyTorch's pooling_output_shape: the last window must start inside the input or the
    left padding."""
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_args(op, n, kernel_size, stride, padding, dilation):
    kernel = _ntuple(op, "kernel_size", kernel_size, n, pool_message=True)
    if stride is None or (isinstance(stride, tuple | list) and len(stride) == 0):
        stride = kernel
    stride = _ntuple(op, "stride", stride, n, pool_message=True)
    pad = _ntuple(op, "padding", padding, n, pool_message=True)
    dil = _ntuple(op, "dilation", dilation, n, pool_message=True)
    if any(k <= 0 for k in kernel):
        raise ShapeError(op, f"kernel size should be greater than zero, but got {list(kernel)}")
    if any(s <= 0 for s in stride):
        raise ShapeError(op, f"stride should be greater than zero, but got {list(stride)}")
    if any(d <= 0 for d in dil):
        raise ShapeError(op, f"dilation should be greater than zero, but got {list(dil)}")
    if any(p < 0 for p in pad):
        raise ShapeError(op, f"pad should be non-negative, but got {list(pad)}")
    if n == 1:
        kernel, stride, pad, dil = (1, *kernel), (1, *stride), (0, *pad), (1, *dil)
    return kernel, stride, pad, dil


def _out_hw(op, x, kernel, stride, pad, dil, ceil_mode):
    h, w = x.shape[2], x.shape[3]
    ho = _pool_out_len(op, h, kernel[0], stride[0], pad[0], dil[0], ceil_mode)
    wo = _pool_out_len(op, w, kernel[1], stride[1], pad[1], dil[1], ceil_mode)
    if ho <= 0 or wo <= 0:
        raise ShapeError(
            op,
            f"Given input size: ({x.shape[1]}x{h}x{w}). Calculated output size: "
            f"({x.shape[1]}x{ho}x{wo}). Output size is too small",
        )
    return ho, wo


def _padded(x, kernel, stride, pad, dil, out_hw, value):
    """Pad ``x`` low by ``pad`` and high by whatever the last window needs."""
    high = []
    for size, k, s, p, d, o in zip(x.shape[2:], kernel, stride, pad, dil, out_hw):
        need = (o - 1) * s + d * (k - 1) + 1
        high.append(max(0, need - size - p))
    if any(pad) or any(high):
        x = P.pad(x, low=(0, 0, *pad), high=(0, 0, *high), interior=(0, 0, 0, 0), value=value)
    return x


# ---- max pooling ------------------------------------------------------------------------------


def _lowest(dtype):
    if dtype.is_floating_point:
        return float("-inf")
    if dtype is D.bool_:
        return False
    return int(np.iinfo(dtype.np).min)


def _max_pool(op, n, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, restore = _as_4d(op, input, n)
    if x.dtype is D.bool_:
        raise DTypeError(op, f"is not implemented for bool tensors, got {describe(input)}")
    kernel, stride, pad, dil = _pool_args(op, n, kernel_size, stride, padding, dilation)
    for p, k, d in zip(pad, kernel, dil):
        if p > ((k - 1) * d + 1) // 2:
            raise ShapeError(
                op,
                f"pad should be at most half of effective kernel size, but got "
                f"pad={p}, kernel_size={k} and dilation={d}",
            )
    ho, wo = _out_hw(op, x, kernel, stride, pad, dil, ceil_mode)
    xp = _padded(x, kernel, stride, pad, dil, (ho, wo), _lowest(x.dtype))
    win = windows(xp, kernel, stride, dil, (ho, wo))  # (N, C, K, Ho, Wo)
    nb, c = x.shape[0], x.shape[1]
    if kernel[0] * kernel[1] == 1:
        out = P.reshape(win, shape=(nb, c, ho, wo))
        k_idx = P.full(shape=(nb, c, ho, wo), value=0, dtype=D.int64)
    else:
        k_idx = P.argmax(win, axis=2)
        kept = P.reshape(k_idx, shape=(nb, c, 1, ho, wo))
        out = P.reshape(P.gather(win, kept, axis=2), shape=(nb, c, ho, wo))
    if not return_indices:
        return restore(out)
    # Flat index into the (unpadded) H x W plane, as PyTorch reports it.
    kh_idx = P.floordiv(k_idx, kernel[1])
    kw_idx = P.remainder(k_idx, kernel[1])
    h0 = Tensor._make((np.arange(ho, dtype=np.int64) * stride[0] - pad[0]).reshape(ho, 1))
    w0 = Tensor._make((np.arange(wo, dtype=np.int64) * stride[1] - pad[1]).reshape(1, wo))
    shape = (nb, c, ho, wo)
    hh = P.add(P.mul(kh_idx, dil[0]), P.broadcast_to(h0, shape=shape))
    ww = P.add(P.mul(kw_idx, dil[1]), P.broadcast_to(w0, shape=shape))
    indices = P.add(P.mul(hh, x.shape[3]), ww)
    return restore(out), restore(indices)


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """2-d max pooling over (N, C, H, W) or (C, H, W); padding counts as -inf."""
    return _max_pool(
        "max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool1d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """1-d max pooling over (N, C, L) or (C, L); padding counts as -inf."""
    return _max_pool(
        "max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool2d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool1d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


# ---- average pooling --------------------------------------------------------------------------


def _avg_divisor(size, k, s, p, out, count_include_pad):
    """PyTorch's per-output-position divisor along one axis (it factorizes over H and W)."""
    div = np.empty(out, dtype=np.float64)
    for o in range(out):
        start = o * s - p
        end = min(start + k, size + p)
        pool = end - start
        start, end = max(start, 0), min(end, size)
        div[o] = pool if count_include_pad else max(end - start, 0)
    return div


def _avg_pool(
    op, n, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    x, restore = _as_4d(op, input, n)
    if not x.dtype.is_floating_point:
        raise DTypeError(op, f"expects a floating point input, got {describe(input)}")
    kernel, stride, pad, dil = _pool_args(op, n, kernel_size, stride, padding, 1)
    for p, k in zip(pad, kernel):
        if p > k // 2:
            raise ShapeError(
                op,
                f"pad should be at most half of kernel size, but got pad={p} and kernel_size={k}",
            )
    if divisor_override is not None and (
        not isinstance(divisor_override, int) or divisor_override == 0
    ):
        raise ShapeError(op, f"divisor must be not zero, got divisor_override={divisor_override}")
    ho, wo = _out_hw(op, x, kernel, stride, pad, dil, ceil_mode)
    xp = _padded(x, kernel, stride, pad, dil, (ho, wo), 0)
    nb, c = x.shape[0], x.shape[1]
    win = windows(xp, kernel, stride, dil, (ho, wo))
    total = P.reduce_sum(win, axes=(2,)) if kernel[0] * kernel[1] > 1 else win
    total = P.reshape(total, shape=(nb, c, ho, wo))
    if divisor_override is not None:
        return restore(P.div(total, float(divisor_override)))
    dh = _avg_divisor(x.shape[2], kernel[0], stride[0], pad[0], ho, count_include_pad)
    dw = _avg_divisor(x.shape[3], kernel[1], stride[1], pad[1], wo, count_include_pad)
    div = np.outer(dh, dw)
    if np.all(div == div.flat[0]):
        return restore(P.div(total, float(div.flat[0])))
    # A window entirely in the padding has divisor 0 and sum 0: PyTorch leaves it 0.
    div[div == 0] = 1
    d = Tensor._make(div.astype(x.dtype.np).reshape(1, 1, ho, wo))
    return restore(P.div(total, P.broadcast_to(d, shape=(nb, c, ho, wo))))


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """2-d average pooling over (N, C, H, W) or (C, H, W)."""
    return _avg_pool(
        "avg_pool2d",
        2,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-d average pooling over (N, C, L) or (C, L)."""
    return _avg_pool(
        "avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None
    )


# ---- adaptive pooling -------------------------------------------------------------------------


def _output_size(op: str, output_size, in_sizes, n: int) -> tuple[int, ...]:
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        sizes = (output_size,) * n
    elif isinstance(output_size, tuple | list) and len(output_size) in (1, n):
        sizes = tuple(output_size) * (n if len(output_size) == 1 else 1)
    elif output_size is None:
        sizes = (None,) * n
    else:
        raise ShapeError(op, f"output_size must be an int or {n} ints, got {output_size!r}")
    out = tuple(s if o is None else o for o, s in zip(sizes, in_sizes))
    if any(not isinstance(o, int) or o < 0 for o in out):
        raise ShapeError(op, f"output_size must be non-negative ints, got {output_size!r}")
    return out


def _bins(size: int, out: int):
    """PyTorch's adaptive bins: ``[floor(i * size / out), ceil((i + 1) * size / out))``."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _avg_matrix(size: int, out: int, dtype) -> Tensor:
    a = np.zeros((out, size), dtype=np.float64)
    for i, (start, end) in enumerate(_bins(size, out)):
        a[i, start:end] = 1.0 / (end - start)
    return Tensor._make(a.astype(dtype.np))


def _adaptive_avg(op, n, input, output_size):
    x, restore = _as_4d(op, input, n)
    if not x.dtype.is_floating_point:
        raise DTypeError(op, f"expects a floating point input, got {describe(input)}")
    nb, c, h, w = x.shape
    out = _output_size(op, output_size, (h, w) if n == 2 else (w,), n)
    ho, wo = out if n == 2 else (1, out[0])
    y = x
    if wo != w:
        # (N*C*H, W) @ (W, Wo)
        aw_t = P.permute(_avg_matrix(w, wo, x.dtype), dims=(1, 0))
        y = P.reshape(P.matmul(P.reshape(y, shape=(nb * c * h, w)), aw_t), shape=(nb, c, h, wo))
    if ho != h:
        # (N*C, Ho, H) @ (N*C, H, Wo)
        ah = P.broadcast_to(
            P.reshape(_avg_matrix(h, ho, x.dtype), shape=(1, ho, h)), shape=(nb * c, ho, h)
        )
        y = P.reshape(P.matmul(ah, P.reshape(y, shape=(nb * c, h, wo))), shape=(nb, c, ho, wo))
    if y is x:
        y = P.mul(x, 1.0)
    return restore(y)


def adaptive_avg_pool2d(input, output_size):
    """Average over PyTorch's adaptive bins to (N, C, *output_size); None keeps a size."""
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool1d(input, output_size):
    """Average over PyTorch's adaptive bins to (N, C, output_size)."""
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


def _adaptive_index(size: int, out: int):
    """Per-bin element indices padded to the longest bin by repeating the bin's first element
    (a repeat never changes the max and never becomes the first maximum)."""
    bins = _bins(size, out)
    longest = max(end - start for start, end in bins)
    idx = np.empty((out, longest), dtype=np.int64)
    for i, (start, end) in enumerate(bins):
        span = list(range(start, end))
        idx[i] = span + [start] * (longest - len(span))
    return idx


def _adaptive_max(op, n, input, output_size, return_indices):
    x, restore = _as_4d(op, input, n)
    if x.dtype is D.bool_:
        raise DTypeError(op, f"is not implemented for bool tensors, got {describe(input)}")
    nb, c, h, w = x.shape
    out = _output_size(op, output_size, (h, w) if n == 2 else (w,), n)
    ho, wo = out if n == 2 else (1, out[0])
    ih, iw = _adaptive_index(h, ho), _adaptive_index(w, wo)
    kh, kw = ih.shape[1], iw.shape[1]
    # rows: (N, C, Ho*kh, W) -> cols: (N, C, Ho*kh, Wo*kw) -> (N, C, Ho, kh, Wo, kw)
    rows_idx = Tensor._make(ih.reshape(1, 1, ho * kh, 1))
    y = P.gather(x, P.broadcast_to(rows_idx, shape=(nb, c, ho * kh, w)), axis=2)
    cols_idx = Tensor._make(iw.reshape(1, 1, 1, wo * kw))
    y = P.gather(y, P.broadcast_to(cols_idx, shape=(nb, c, ho * kh, wo * kw)), axis=3)
    y = P.reshape(y, shape=(nb, c, ho, kh, wo, kw))
    win = P.reshape(P.permute(y, dims=(0, 1, 2, 4, 3, 5)), shape=(nb, c, ho, wo, kh * kw))
    k_idx = P.argmax(win, axis=4)
    kept = P.reshape(k_idx, shape=(nb, c, ho, wo, 1))
    values = P.reshape(P.gather(win, kept, axis=4), shape=(nb, c, ho, wo))
    if not return_indices:
        return restore(values)
    # The window position -> the input position (row-major over the H x W plane).
    flat = (ih[:, None, :, None] * w + iw[None, :, None, :]).reshape(1, 1, ho, wo, kh * kw)
    table = P.broadcast_to(Tensor._make(flat), shape=(nb, c, ho, wo, kh * kw))
    indices = P.reshape(P.gather(table, kept, axis=4), shape=(nb, c, ho, wo))
    return restore(values), restore(indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over PyTorch's adaptive bins; the gradient goes to each bin's first maximum."""
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool1d(input, output_size, True)
