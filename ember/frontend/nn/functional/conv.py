"""Convolutions via im2col and matmul: conv1d, conv2d, conv_transpose1d, conv_transpose2d.

A convolution gathers its input windows with strided ``slice`` primitives (one per kernel
position), stacks them with ``concat`` into the im2col matrix and multiplies it by the
reshaped weight in one batched ``matmul`` (groups are a batch axis of that matmul). Padding is
a ``pad`` primitive. Gradients therefore come from the primitives' VJP rules: the slices'
adjoint is a strided ``pad``, so overlapping windows accumulate into the input gradient.

A transposed convolution is the adjoint of a convolution: the input is dilated with interior
padding (``stride - 1`` zeros between elements), padded by ``dilation * (k - 1) - padding``
(cropped where that is negative) and convolved with the spatially flipped weight whose
in/out channels are swapped within each group. The flip is free: the im2col windows are
stacked in reverse kernel order instead.

Everything is written for 2-d; 1-d ops view their input as ``(N, C, 1, L)``.
"""

from __future__ import annotations

from ....ir import ops as P
from ....ir.errors import DTypeError, ShapeError
from ...ops.common import describe
from ...tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]


# ---- argument handling ------------------------------------------------------------------------


def _ntuple(op: str, name: str, value, n: int, pool_message: bool = False) -> tuple[int, ...]:
    """An int or a sequence of 1 or ``n`` ints as an ``n``-tuple (PyTorch expands length 1).

    A wrong length is a ShapeError worded as PyTorch words it for convolutions, or, with
    ``pool_message``, for pooling (which also reports a non-sequence that way)."""
    if isinstance(value, bool):
        raise TypeError(f"{op}(): argument '{name}' must be a tuple of ints, not bool")
    if isinstance(value, int):
        return (value,) * n

    def pool_error() -> ShapeError:
        return ShapeError(
            op, f"{name} must either be a single int, or a tuple of {n} ints, got {value!r}"
        )

    if isinstance(value, tuple | list):
        vals = tuple(value)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            raise TypeError(f"{op}(): argument '{name}' must be a tuple of ints, got {value!r}")
        if len(vals) == 1:
            return vals * n
        if len(vals) == n:
            return vals
        if pool_message:
            raise pool_error()
        raise ShapeError(
            op,
            f"expected {name} to be a single integer value or a list of {n} values to match "
            f"the convolution dimensions, but got {name}={list(vals)}",
        )
    if pool_message:
        raise pool_error()
    raise TypeError(
        f"{op}(): argument '{name}' must be a tuple of ints, not {type(value).__name__}"
    )


def _size(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _check_tensors(op: str, input, weight, bias) -> None:
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{op}(): argument 'bias' must be Tensor, not {type(bias).__name__}")
    dtypes = [input.dtype, weight.dtype] + ([bias.dtype] if bias is not None else [])
    if not input.dtype.is_floating_point or any(d is not input.dtype for d in dtypes):
        raise DTypeError(
            op,
            f"expected input, weight and bias of one floating point dtype, got input "
            f"{describe(input)}, weight {describe(weight)}"
            + (f", bias {describe(bias)}" if bias is not None else ""),
        )


def _batched(op: str, input, weight, n: int):
    """Check ranks; return the input with a batch dim and whether one was added."""
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(
            op,
            f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {op}, but got input "
            f"of size: {_size(input.shape)}",
        )
    if weight.ndim != n + 2:
        raise ShapeError(
            op,
            f"expected a {n + 2}-dimensional weight, but got weight of size "
            f"{_size(weight.shape)} for input of size {_size(input.shape)}",
        )
    if input.ndim == n + 1:
        return P.reshape(input, shape=(1, *input.shape)), True
    return input, False


def _check_positive(op: str, stride, dilation, groups) -> None:
    if not isinstance(groups, int) or isinstance(groups, bool):
        raise TypeError(f"{op}(): argument 'groups' must be int, not {type(groups).__name__}")
    if groups <= 0:
        raise ShapeError(op, f"non-positive groups is not supported, got groups={groups}")
    if any(s <= 0 for s in stride):
        raise ShapeError(op, f"non-positive stride is not supported, got stride={list(stride)}")
    if any(d <= 0 for d in dilation):
        raise ShapeError(op, f"dilation should be greater than zero, got dilation={list(dilation)}")


def _check_bias(op: str, bias, weight, out_channels: int) -> None:
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ShapeError(
            op,
            f"Given weight of size {_size(weight.shape)}, expected bias to be 1-dimensional "
            f"with {out_channels} elements, but got bias of size {_size(bias.shape)} instead",
        )


# ---- the 2-d core -----------------------------------------------------------------------------


def _pad_crop(x, low, high, interior=(0, 0)):
    """``x`` [N, C, H, W] padded spatially by ``low``/``high`` (cropped where negative)."""
    if any(low) or any(high) or any(interior):
        pos_lo = tuple(max(0, p) for p in low)
        pos_hi = tuple(max(0, p) for p in high)
        if any(pos_lo) or any(pos_hi) or any(interior):
            x = P.pad(
                x, low=(0, 0, *pos_lo), high=(0, 0, *pos_hi), interior=(0, 0, *interior), value=0
            )
        if any(p < 0 for p in (*low, *high)):
            n, c, h, w = x.shape
            starts = (0, 0, max(0, -low[0]), max(0, -low[1]))
            stops = (n, c, h - max(0, -high[0]), w - max(0, -high[1]))
            x = P.slice(x, starts=starts, stops=stops, steps=(1, 1, 1, 1))
    return x


def _out_len(size: int, k: int, s: int, d: int) -> int:
    """Output length of a window sweep over an already padded axis of ``size``."""
    span = d * (k - 1) + 1
    return (size - span) // s + 1 if size >= span else 0


def windows(xp, kernel, stride, dilation, out_hw, reverse: bool = False):
    """The im2col windows of ``xp`` [N, C, Hp, Wp]: [N, C, kh * kw, Ho, Wo].

    Window ``i * kw + j`` holds ``xp[..., i*dh + oh*sh, j*dw + ow*sw]``; ``reverse`` stacks the
    kernel positions in reverse order (a spatially flipped kernel).
    """
    n, c = xp.shape[0], xp.shape[1]
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    order = [(i, j) for i in range(kh) for j in range(kw)]
    if reverse:
        order.reverse()
    pieces = []
    for i, j in order:
        h0, w0 = i * dh, j * dw
        stops = (n, c, h0 + (ho - 1) * sh + 1, w0 + (wo - 1) * sw + 1)
        if (h0, w0) == (0, 0) and stops[2:] == tuple(xp.shape[2:]) and (sh, sw) == (1, 1):
            patch = xp
        else:
            patch = P.slice(xp, starts=(0, 0, h0, w0), stops=stops, steps=(1, 1, sh, sw))
        pieces.append(P.reshape(patch, shape=(n, c, 1, ho, wo)))
    return pieces[0] if len(pieces) == 1 else P.concat(*pieces, axis=2)


def _conv2d_core(op, x, wmat, bias, kernel, stride, dilation, reverse=False):
    """Convolve the padded input ``x`` [N, C, Hp, Wp] with ``wmat`` [G, Og, Cg * kh * kw]."""
    n, c, hp, wp = x.shape
    g, og, cgk = wmat.shape
    ho = _out_len(hp, kernel[0], stride[0], dilation[0])
    wo = _out_len(wp, kernel[1], stride[1], dilation[1])
    if ho <= 0 or wo <= 0:
        eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ShapeError(
            op,
            f"Calculated padded input size per channel: ({hp} x {wp}). Kernel size: "
            f"({eff[0]} x {eff[1]}). Kernel size can't be greater than actual input size",
        )
    cols = windows(x, kernel, stride, dilation, (ho, wo), reverse)
    cols = P.reshape(cols, shape=(n, g, cgk, ho * wo))
    w = P.broadcast_to(P.reshape(wmat, shape=(1, g, og, cgk)), shape=(n, g, og, cgk))
    out = P.reshape(P.matmul(w, cols), shape=(n, g * og, ho, wo))
    if bias is not None:
        b = P.reshape(bias, shape=(1, g * og, 1, 1))
        out = P.add(out, P.broadcast_to(b, shape=tuple(out.shape)))
    return out


# ---- convolution ------------------------------------------------------------------------------


def _padding(op: str, padding, kernel, stride, dilation, n: int):
    """``(low, high)`` spatial padding from an int, a tuple, 'same' or 'valid'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * n, (0,) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ShapeError(op, "padding='same' is not supported for strided convolutions")
            total = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
            low = tuple(t // 2 for t in total)
            return low, tuple(t - lo for t, lo in zip(total, low))
        raise ShapeError(
            op, f"Invalid padding string: {padding!r}; expected 'same', 'valid' or integers"
        )
    pad = _ntuple(op, "padding", padding, n)
    if any(p < 0 for p in pad):
        raise ShapeError(op, f"negative padding is not supported, got padding={list(pad)}")
    return pad, pad


def _convnd(op, n, input, weight, bias, stride, padding, dilation, groups):
    _check_tensors(op, input, weight, bias)
    x, unbatched = _batched(op, input, weight, n)
    stride = _ntuple(op, "stride", stride, n)
    dilation = _ntuple(op, "dilation", dilation, n)
    _check_positive(op, stride, dilation, groups)
    out_ch, cg = weight.shape[0], weight.shape[1]
    kernel = tuple(weight.shape[2:])
    if out_ch % groups != 0:
        raise ShapeError(
            op,
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size {_size(weight.shape)} instead",
        )
    if x.shape[1] != cg * groups:
        raise ShapeError(
            op,
            f"Given groups={groups}, weight of size {_size(weight.shape)}, expected "
            f"input{_size(x.shape)} to have {cg * groups} channels, but got {x.shape[1]} "
            "channels instead",
        )
    _check_bias(op, bias, weight, out_ch)
    low, high = _padding(op, padding, kernel, stride, dilation, n)
    k_count = 1
    for k in kernel:
        k_count *= k
    wmat = P.reshape(weight, shape=(groups, out_ch // groups, cg * k_count))
    if n == 1:
        x = P.reshape(x, shape=(x.shape[0], x.shape[1], 1, x.shape[2]))
        kernel, stride, dilation = (1, *kernel), (1, *stride), (1, *dilation)
        low, high = (0, *low), (0, *high)
    out = _conv2d_core(op, _pad_crop(x, low, high), wmat, bias, kernel, stride, dilation)
    if n == 1:
        out = P.reshape(out, shape=(out.shape[0], out.shape[1], out.shape[3]))
    if unbatched:
        out = P.reshape(out, shape=tuple(out.shape[1:]))
    return out


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution of ``input`` (N, C_in, H, W) or (C_in, H, W) with ``weight``
    (C_out, C_in / groups, kH, kW); ``padding`` is an int, a pair, ``'same'`` or ``'valid'``."""
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution of ``input`` (N, C_in, L) or (C_in, L) with ``weight``
    (C_out, C_in / groups, k)."""
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


# ---- transposed convolution -------------------------------------------------------------------


def _conv_transposend(
    op, n, input, weight, bias, stride, padding, output_padding, groups, dilation
):
    _check_tensors(op, input, weight, bias)
    x, unbatched = _batched(op, input, weight, n)
    stride = _ntuple(op, "stride", stride, n)
    dilation = _ntuple(op, "dilation", dilation, n)
    if isinstance(padding, str):
        raise TypeError(f"{op}(): argument 'padding' must be a tuple of ints, not str")
    pad = _ntuple(op, "padding", padding, n)
    out_pad = _ntuple(op, "output_padding", output_padding, n)
    _check_positive(op, stride, dilation, groups)
    if any(p < 0 for p in pad):
        raise ShapeError(op, f"negative padding is not supported, got padding={list(pad)}")
    if any(p < 0 for p in out_pad):
        raise ShapeError(
            op, f"negative output_padding is not supported, got output_padding={list(out_pad)}"
        )
    if any(op_ >= s and op_ >= d for op_, s, d in zip(out_pad, stride, dilation)):
        raise ShapeError(
            op,
            f"output padding must be smaller than either stride or dilation, but got "
            f"output_padding={list(out_pad)}, stride={list(stride)}, dilation={list(dilation)}",
        )
    in_ch, og = weight.shape[0], weight.shape[1]
    kernel = tuple(weight.shape[2:])
    if in_ch % groups != 0:
        raise ShapeError(
            op,
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size {_size(weight.shape)} instead",
        )
    if x.shape[1] != in_ch:
        raise ShapeError(
            op,
            f"Given transposed=1, weight of size {_size(weight.shape)}, expected "
            f"input{_size(x.shape)} to have {in_ch} channels, but got {x.shape[1]} channels "
            "instead",
        )
    _check_bias(op, bias, weight, og * groups)
    for size, k, s, d, p, o in zip(x.shape[2:], kernel, stride, dilation, pad, out_pad):
        if (size - 1) * s - 2 * p + d * (k - 1) + o + 1 <= 0:
            raise ShapeError(
                op,
                f"output size is too small for input of size {_size(x.shape)}, weight of size "
                f"{_size(weight.shape)}, stride={list(stride)}, padding={list(pad)}, "
                f"dilation={list(dilation)}, output_padding={list(out_pad)}",
            )
    cg = in_ch // groups
    k_count = 1
    for k in kernel:
        k_count *= k
    # (G, Cg, Og, K) -> (G, Og, Cg, K): the equivalent convolution's in/out channels per group.
    w = P.reshape(weight, shape=(groups, cg, og, k_count))
    wmat = P.reshape(P.permute(w, dims=(0, 2, 1, 3)), shape=(groups, og, cg * k_count))
    if n == 1:
        x = P.reshape(x, shape=(x.shape[0], x.shape[1], 1, x.shape[2]))
        kernel, stride, dilation = (1, *kernel), (1, *stride), (1, *dilation)
        pad, out_pad = (0, *pad), (0, *out_pad)
    low = tuple(d * (k - 1) - p for k, d, p in zip(kernel, dilation, pad))
    high = tuple(lo + o for lo, o in zip(low, out_pad))
    interior = tuple(s - 1 for s in stride)
    xp = _pad_crop(x, low, high, interior)
    out = _conv2d_core(op, xp, wmat, bias, kernel, (1, 1), dilation, reverse=True)
    if n == 1:
        out = P.reshape(out, shape=(out.shape[0], out.shape[1], out.shape[3]))
    if unbatched:
        out = P.reshape(out, shape=tuple(out.shape[1:]))
    return out


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """2-d transposed convolution of ``input`` (N, C_in, H, W) or (C_in, H, W) with ``weight``
    (C_in, C_out / groups, kH, kW): the gradient of conv2d with respect to its input."""
    return _conv_transposend(
        "conv_transpose2d",
        2,
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
    )


def conv_transpose1d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """1-d transposed convolution of ``input`` (N, C_in, L) or (C_in, L) with ``weight``
    (C_in, C_out / groups, k)."""
    return _conv_transposend(
        "conv_transpose1d",
        1,
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
    )
