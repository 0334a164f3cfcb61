"""Shaping functions: pad, interpolate, normalize, cosine_similarity, pairwise_distance.

``pad`` crops negative pads with ``slice``, fills constant pads with the ``pad`` primitive and
builds reflect/replicate/circular pads as one ``gather`` per padded dimension with constant
index arrays. ``interpolate`` gathers constant source indices (nearest) or contracts with
constant interpolation matrices (linear/bilinear), so autograd sees ordinary primitives.
"""

from __future__ import annotations

import math

import numpy as np

from ....ir import dtypes as D
from ....ir import ops as P
from ....ir.errors import DTypeError, ShapeError
from ...dims import normalize_dim
from ...ops.common import describe, prepare
from ...ops.reduction import norm
from ...ops.reduction import sum as _sum
from ...tensor import Tensor

__all__ = ["pad", "interpolate", "upsample", "normalize", "cosine_similarity", "pairwise_distance"]


# ---- pad --------------------------------------------------------------------------------------


def _take(x, idx: np.ndarray, d: int):
    """``x`` indexed along ``d`` by the constant int64 array ``idx`` (a gather)."""
    n = x.shape[d]
    if len(idx) == n and np.array_equal(idx, np.arange(n)):
        return x
    shape = [1] * x.ndim
    shape[d] = len(idx)
    out_shape = list(x.shape)
    out_shape[d] = len(idx)
    index = Tensor._make(idx.astype(np.int64).reshape(shape))
    if any(s == 0 for s in out_shape):
        return P.slice(
            x,
            starts=(0,) * x.ndim,
            stops=tuple(0 if i == d else s for i, s in enumerate(x.shape)),
            steps=(1,) * x.ndim,
        )
    return P.gather(x, P.broadcast_to(index, shape=tuple(out_shape)), axis=d)


def _crop(x, lows, highs):
    """Slice off negative pads (``lows``/``highs`` per dim, only negatives act)."""
    if all(lo >= 0 for lo in lows) and all(hi >= 0 for hi in highs):
        return x
    starts = tuple(max(0, -lo) for lo in lows)
    stops = tuple(s - max(0, -hi) for s, hi in zip(x.shape, highs))
    return P.slice(x, starts=starts, stops=stops, steps=(1,) * x.ndim)


def pad(input, pad, mode: str = "constant", value=None):
    """Pad ``input``; ``pad`` lists (left, right) pairs from the last dimension backwards."""
    if not isinstance(input, Tensor):
        raise TypeError(f"pad(): argument 'input' must be Tensor, not {type(input).__name__}")
    pad = tuple(int(p) for p in pad)
    nd = input.ndim
    if len(pad) % 2 != 0:
        raise ShapeError("pad", "Padding length must be divisible by 2")
    if len(pad) // 2 > nd:
        raise ShapeError(
            "pad",
            f"Padding length should be less than or equal to two times the input dimension "
            f"but got padding length {len(pad)} and input of dimension {nd}",
        )
    lows, highs = [0] * nd, [0] * nd
    for i in range(len(pad) // 2):
        lows[nd - 1 - i], highs[nd - 1 - i] = pad[2 * i], pad[2 * i + 1]
    if mode == "constant":
        fill = 0 if value is None else value
        for d in range(nd):
            if input.shape[d] + lows[d] + highs[d] < 0:
                raise ShapeError(
                    "pad",
                    f"The input size {input.shape[d]}, plus negative padding {lows[d]} and "
                    f"{highs[d]} resulted in a negative output size, which is invalid. Check "
                    f"dimension {d} of your input {describe(input)}",
                )
        x = _crop(input, lows, highs)
        lo = tuple(max(0, p) for p in lows)
        hi = tuple(max(0, p) for p in highs)
        if not any(lo) and not any(hi):
            return P.mul(x, 1) if x is input else x
        if x.dtype.is_floating_point:
            fill = float(fill)
        elif x.dtype is D.bool_:
            fill = bool(fill)
        else:
            fill = int(fill)
        return P.pad(x, low=lo, high=hi, interior=(0,) * nd, value=fill)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(
            f"Unrecognised padding mode {mode}; expected constant, reflect, replicate or circular"
        )
    if value is not None and value != 0:
        raise ShapeError("pad", f'Padding mode "{mode}" doesn\'t take in value argument')
    npad = len(pad) // 2
    if npad > 3 or nd not in (npad + 1, npad + 2):
        raise NotImplementedError(
            f"pad: only {npad + 1}D or {npad + 2}D input tensors are supported for {npad}D "
            f"{mode} padding with {len(pad)}-element pad, got {describe(input)}"
        )
    x = input
    for d in range(nd - npad, nd):
        n, lo, hi = x.shape[d], lows[d], highs[d]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ShapeError(
                "pad",
                f"Padding size should be less than the corresponding input dimension, but got: "
                f"padding ({lo}, {hi}) at dimension {d} of input {describe(input)}",
            )
        if mode == "circular" and (lo > n or hi > n):
            raise ShapeError(
                "pad",
                "Padding value causes wrapping around more than once: padding "
                f"({lo}, {hi}) at dimension {d} of input {describe(input)}",
            )
        if n + lo + hi <= 0 or (mode == "replicate" and n == 0):
            raise ShapeError(
                "pad",
                f"input {describe(input)} with padding ({lo}, {hi}) at dimension {d} gives "
                "an empty or invalid output",
            )
        j = np.arange(-lo, n + hi)
        if mode == "reflect":
            idx = np.where(j < 0, -j, np.where(j >= n, 2 * (n - 1) - j, j))
        elif mode == "replicate":
            idx = np.clip(j, 0, n - 1)
        else:  # PyTorch crops first, then wraps around the cropped extent
            c0, c1 = max(0, -lo), n - max(0, -hi)
            j = np.arange(-max(0, lo), c1 - c0 + max(0, hi))
            idx = c0 + np.mod(j, c1 - c0)
        x = _take(x, idx, d)
    return P.mul(x, 1) if x is input else x


# ---- interpolate ------------------------------------------------------------------------------

_MODES = ("nearest", "nearest-exact", "linear", "bilinear")


def _nearest_index(n_in: int, n_out: int, scale, exact: bool) -> np.ndarray:
    """PyTorch's ``nearest_idx`` (float32 scale, as its CPU kernel computes it)."""
    if scale is not None and scale > 0:
        s = np.float32(1.0 / scale)
    else:
        s = np.float32(n_in) / np.float32(n_out)
    dst = np.arange(n_out, dtype=np.float32)
    if exact:
        src = np.floor((dst + np.float32(0.5)) * s).astype(np.int64)
    else:
        if n_out == n_in:
            return np.arange(n_out)
        if n_out == 2 * n_in:
            return np.arange(n_out) // 2
        src = np.floor(dst * s).astype(np.int64)
    return np.minimum(src, n_in - 1)


def _linear_matrix(n_in: int, n_out: int, scale, align_corners: bool) -> np.ndarray:
    """(n_out, n_in) matrix of PyTorch's linear interpolation weights."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        s = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = dst * s
    else:
        s = 1.0 / scale if (scale is not None and scale > 0) else n_in / n_out
        src = np.maximum((dst + 0.5) * s - 0.5, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, n_in - 1)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    lam1 = src - i0
    lam0 = 1.0 - lam1
    a = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(a, (np.arange(n_out), i0), lam0)
    np.add.at(a, (np.arange(n_out), i1), lam1)
    return a


def _apply_matrix(x, a: np.ndarray, d: int):
    """Contract dimension ``d`` of ``x`` with the constant matrix ``a`` (n_out, n_in)."""
    n_out, n_in = a.shape
    moved = x if d == x.ndim - 1 else P.permute(x, dims=_swap_last(x.ndim, d))
    lead = tuple(moved.shape[:-1])
    m = math.prod(lead)
    flat = P.reshape(moved, shape=(m, n_in))
    at = Tensor._make(np.ascontiguousarray(a.T).astype(x.dtype.np))
    y = P.reshape(P.matmul(flat, at), shape=(*lead, n_out))
    if d != x.ndim - 1:
        y = P.permute(y, dims=_swap_last(x.ndim, d))
    return y


def _swap_last(ndim: int, d: int) -> tuple[int, ...]:
    dims = list(range(ndim))
    dims[d], dims[-1] = dims[-1], dims[d]
    return tuple(dims)


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners=None,
    recompute_scale_factor=None,
    antialias: bool = False,
):
    """Resize the spatial dimensions of a 3-d (N, C, L) or 4-d (N, C, H, W) input."""
    if not isinstance(input, Tensor):
        raise TypeError(
            f"interpolate(): argument 'input' must be Tensor, not {type(input).__name__}"
        )
    if mode not in _MODES:
        raise NotImplementedError(
            f"Input Error: Only 3D and 4D input Tensors supported (got {input.ndim}D) for the "
            f"modes: nearest | linear | bilinear (got {mode})"
        )
    if mode in ("nearest", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                "align_corners option can only be set with the interpolating modes: "
                "linear | bilinear | bicubic | trilinear"
            )
    elif align_corners is None:
        align_corners = False
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    nsp = input.ndim - 2
    if nsp not in (1, 2):
        raise NotImplementedError(
            f"Input Error: Only 3D and 4D input Tensors supported (got {input.ndim}D) for the "
            f"modes: nearest | linear | bilinear (got {mode})"
        )
    if mode == "linear" and nsp != 1:
        raise NotImplementedError(f"Got {input.ndim}D input, but linear mode needs 3D input")
    if mode == "bilinear" and nsp != 2:
        raise NotImplementedError(f"Got {input.ndim}D input, but bilinear mode needs 4D input")
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    spatial = tuple(input.shape[2:])
    if size is not None:
        if isinstance(size, list | tuple):
            if len(size) != nsp:
                raise ValueError(
                    f"Input and output must have the same number of spatial dimensions, but "
                    f"got input with spatial dimensions of {list(spatial)} and output size of "
                    f"{list(size)}. Please provide input tensor in (N, C, d1, d2, ...,dK) "
                    f"format and output size in (o1, o2, ...,oK) format."
                )
            out = tuple(int(s) for s in size)
        else:
            out = (int(size),) * nsp
        scales = (None,) * nsp
    elif scale_factor is not None:
        if isinstance(scale_factor, list | tuple):
            if len(scale_factor) != nsp:
                raise ValueError(
                    f"Input and scale_factor must have the same number of spatial dimensions,"
                    f" but got input with spatial dimensions of {list(spatial)} and "
                    f"scale_factor of shape {list(scale_factor)}."
                )
            scales = tuple(float(s) for s in scale_factor)
        else:
            scales = (float(scale_factor),) * nsp
        out = tuple(int(math.floor(n * s)) for n, s in zip(spatial, scales))
        if recompute_scale_factor:
            scales = (None,) * nsp
    else:
        raise ValueError("either size or scale_factor should be defined")
    if any(o <= 0 for o in out) or any(n <= 0 for n in spatial):
        raise ShapeError(
            "interpolate",
            f"Input and output sizes should be greater than 0, but got input {describe(input)}"
            f" and output size {list(out)}",
        )
    x = input
    if mode in ("nearest", "nearest-exact"):
        for i, (n, o, s) in enumerate(zip(spatial, out, scales)):
            x = _take(x, _nearest_index(n, o, s, mode == "nearest-exact"), 2 + i)
        return P.mul(x, 1) if x is input else x
    if not x.dtype.is_floating_point:
        raise DTypeError("interpolate", f'"upsample_{mode}" not implemented for {describe(input)}')
    for i, (n, o, s) in enumerate(zip(spatial, out, scales)):
        x = _apply_matrix(x, _linear_matrix(n, o, s, align_corners), 2 + i)
    return x


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None):
    """Deprecated alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


# ---- normalize and distances ------------------------------------------------------------------


def _floating(op: str, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument must be Tensor, not {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise DTypeError(op, f"expects a floating point tensor, got {describe(x)}")
    return x


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None):
    """``input / max(||input||_p, eps)`` along ``dim``."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported")
    x = _floating("normalize", input)
    d = normalize_dim(dim, x.ndim if x.ndim else 1, "normalize") if x.ndim else None
    n = norm(x, p, d, True)
    denom = P.maximum(n, float(eps))
    return P.div(x, P.broadcast_to(denom, shape=tuple(x.shape)))


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim`` (PyTorch's formulation:
    each operand divided by its clamped norm, the clamp invisible to autograd)."""
    if not isinstance(x1, Tensor) or not isinstance(x2, Tensor):
        raise TypeError("cosine_similarity(): arguments must be Tensors")
    a, b = prepare("cosine_similarity", x1, x2)
    if not a.dtype.is_floating_point:
        a, b = P.convert(a, dtype=D.get_default_dtype()), P.convert(b, dtype=D.get_default_dtype())
    d = normalize_dim(dim, a.ndim, "cosine_similarity")
    shape = tuple(a.shape)

    def unit(x):
        n = norm(x, 2, d, True)
        # n + (clamp(n) - n) without a graph edge through the clamp.
        adj = P.add(n, P.sub(P.maximum(n, float(eps)), n).detach())
        return P.div(x, P.broadcast_to(adj, shape=shape))

    return _sum(P.mul(unit(a), unit(b)), d)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """``||x1 - x2 + eps||_p`` over the last dimension."""
    if not isinstance(x1, Tensor) or not isinstance(x2, Tensor):
        raise TypeError("pairwise_distance(): arguments must be Tensors")
    a, b = prepare("pairwise_distance", x1, x2)
    diff = P.sub(a, b)
    if not diff.dtype.is_floating_point:
        diff = P.convert(diff, dtype=D.get_default_dtype())
    diff = P.add(diff, float(eps))
    if diff.ndim == 0:
        return norm(diff, p, None, keepdim)
    return norm(diff, p, diff.ndim - 1, keepdim)
