"""nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d with PyTorch's defaults.

Parameters, attributes, ``extra_repr`` and initialization follow PyTorch's ``_ConvNd``:
``kaiming_uniform_(a=sqrt(5))`` for the weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the
bias, with fan_in computed from the weight's shape (for transposed convolutions that is
``out_channels / groups * prod(kernel_size)``, as in PyTorch). ``padding_mode`` other than
'zeros' pads the input with an index ``gather`` (reflect, replicate, circular) before an
unpadded convolution, as PyTorch's modules do with ``F.pad``.
"""

from __future__ import annotations

import math

import numpy as np

from ....ir import ops as P
from ....ir.errors import ShapeError
from ...ops.creation import empty
from ...tensor import Tensor
from .. import init
from ..functional.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from ..parameter import Parameter
from .module import Module

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]


def _ntuple(value, n: int) -> tuple:
    if isinstance(value, tuple | list):
        return tuple(value)
    return (value,) * n


_VALID_PADDING_STRINGS = {"same", "valid"}
_VALID_PADDING_MODES = {"zeros", "reflect", "replicate", "circular"}


def _mode_pad(input, pads, mode: str):
    """Pad the trailing ``len(pads)`` dims by ``pads[i] = (low, high)`` in ``mode``
    (reflect, replicate or circular) with one constant-index ``gather`` per dim."""
    x = input
    nsp = len(pads)
    for i, (lo, hi) in enumerate(pads):
        if lo == 0 and hi == 0:
            continue
        axis = x.ndim - nsp + i
        size = x.shape[axis]
        pos = np.arange(-lo, size + hi)
        if mode == "reflect":
            if lo >= size or hi >= size:
                raise ShapeError(
                    "pad",
                    f"padding ({lo}, {hi}) should be less than the corresponding input "
                    f"dimension {size} for reflect padding of input of size {list(input.shape)}",
                )
            period = 2 * (size - 1) if size > 1 else 1
            pos = np.abs(pos) % period
            pos = np.where(pos >= size, period - pos, pos)
        elif mode == "replicate":
            pos = np.clip(pos, 0, size - 1)
        else:  # circular
            if lo > size or hi > size:
                raise ShapeError(
                    "pad",
                    f"padding ({lo}, {hi}) should be at most the corresponding input dimension "
                    f"{size} for circular padding of input of size {list(input.shape)}",
                )
            pos = pos % size
        shape = [1] * x.ndim
        shape[axis] = len(pos)
        idx = Tensor._make(pos.astype(np.int64).reshape(shape))
        out_shape = list(x.shape)
        out_shape[axis] = len(pos)
        x = P.gather(x, P.broadcast_to(idx, shape=tuple(out_shape)), axis=axis)
    return x


class _ConvNd(Module):
    __constants__ = [
        "stride", "padding", "dilation", "groups", "padding_mode", "output_padding",
        "in_channels", "out_channels", "kernel_size",
    ]  # fmt: skip

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        transposed,
        output_padding,
        groups,
        bias,
        padding_mode,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            if padding not in _VALID_PADDING_STRINGS:
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {_VALID_PADDING_STRINGS}"
                )
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        if padding_mode not in _VALID_PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {_VALID_PADDING_MODES}, but got "
                f"padding_mode='{padding_mode}'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            self._reversed_padding_repeated_twice = [0, 0] * len(kernel_size)
            if padding == "same":
                for d, k, i in zip(dilation, kernel_size, range(len(kernel_size) - 1, -1, -1)):
                    total = d * (k - 1)
                    left = total // 2
                    self._reversed_padding_repeated_twice[2 * i] = left
                    self._reversed_padding_repeated_twice[2 * i + 1] = total - left
        else:
            self._reversed_padding_repeated_twice = [p for p in reversed(padding) for _ in (0, 1)]
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        self.weight = Parameter(empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.padding):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__, bias=self.bias)

    def _mode_padded(self, input):
        """Input padded by ``padding_mode`` (a non-'zeros' mode); conv then uses padding 0."""
        r = self._reversed_padding_repeated_twice
        n = len(self.kernel_size)
        pads = [(r[2 * (n - 1 - i)], r[2 * (n - 1 - i) + 1]) for i in range(n)]
        return _mode_pad(input, pads, self.padding_mode)


class _ConvForwardNd(_ConvNd):
    """Conv1d/Conv2d: PyTorch's public constructor, for the rank ``_rank``, run by ``_conv``."""

    _rank = 0
    _conv = None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        n = self._rank
        super().__init__(
            in_channels,
            out_channels,
            _ntuple(kernel_size, n),
            _ntuple(stride, n),
            padding if isinstance(padding, str) else _ntuple(padding, n),
            _ntuple(dilation, n),
            False,
            _ntuple(0, n),
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros":
            return self._conv(
                self._mode_padded(input), weight, bias, self.stride, 0, self.dilation, self.groups
            )
        return self._conv(
            input, weight, bias, self.stride, self.padding, self.dilation, self.groups
        )

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_ConvForwardNd):
    """1-d convolution over (N, C_in, L) or (C_in, L)."""

    _rank = 1
    _conv = staticmethod(conv1d)


class Conv2d(_ConvForwardNd):
    """2-d convolution over (N, C_in, H, W) or (C_in, H, W)."""

    _rank = 2
    _conv = staticmethod(conv2d)


class _ConvTransposeNd(_ConvNd):
    """ConvTranspose1d/2d: PyTorch's public constructor for the rank ``_rank``, run by
    ``_conv`` (only the 'zeros' padding mode, as in PyTorch)."""

    _rank = 0
    _conv = None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(
                f'Only "zeros" padding mode is supported for {self.__class__.__name__}'
            )
        n = self._rank
        super().__init__(
            in_channels,
            out_channels,
            _ntuple(kernel_size, n),
            _ntuple(stride, n),
            _ntuple(padding, n),
            _ntuple(dilation, n),
            True,
            _ntuple(output_padding, n),
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(
            input, output_size, self.stride, self.padding, self.kernel_size, self._rank,
            self.dilation,
        )  # fmt: skip
        return self._conv(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            output_padding,
            self.groups,
            self.dilation,
        )

    def _output_padding(
        self, input, output_size, stride, padding, kernel_size, num_spatial_dims, dilation=None
    ):
        if output_size is None:
            return _ntuple(self.output_padding, num_spatial_dims)
        has_batch_dim = input.ndim == num_spatial_dims + 2
        num_non_spatial_dims = 2 if has_batch_dim else 1
        output_size = list(output_size)
        if len(output_size) == num_non_spatial_dims + num_spatial_dims:
            output_size = output_size[num_non_spatial_dims:]
        if len(output_size) != num_spatial_dims:
            raise ValueError(
                f"ConvTranspose{num_spatial_dims}D: for {input.ndim}D input, output_size must "
                f"have {num_spatial_dims} or {num_non_spatial_dims + num_spatial_dims} elements "
                f"(got {len(output_size)})"
            )
        min_sizes, max_sizes = [], []
        for d in range(num_spatial_dims):
            dim_size = (
                (input.shape[d + num_non_spatial_dims] - 1) * stride[d]
                - 2 * padding[d]
                + (dilation[d] if dilation is not None else 1) * (kernel_size[d] - 1)
                + 1
            )
            min_sizes.append(dim_size)
            max_sizes.append(min_sizes[d] + stride[d] - 1)
        for size, lo, hi in zip(output_size, min_sizes, max_sizes):
            if size < lo or size > hi:
                raise ValueError(
                    f"requested an output size of {output_size}, but valid sizes range from "
                    f"{min_sizes} to {max_sizes} (for an input of {list(input.shape[2:])})"
                )
        return tuple(output_size[d] - min_sizes[d] for d in range(num_spatial_dims))


class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution over (N, C_in, L) or (C_in, L)."""

    _rank = 1
    _conv = staticmethod(conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution over (N, C_in, H, W) or (C_in, H, W)."""

    _rank = 2
    _conv = staticmethod(conv_transpose2d)
