"""Reading and writing a view's positions in its base, as primitives autograd and traces see.

An in-place write through a view (``y[1:3] += 1``, ``x[:, 0] = v``, ``x.T[0].mul_(2)``) makes
the base "old base with the view's positions replaced", and a view whose storage was written
reads its values afresh from the base. Both are expressed with primitives so gradients and
compiled graphs see where the values go.

Most views are *strided windows* of their base: each view element sits at
``base[start + i * step]`` along distinct base dims, up to a permutation of the dims and size-1
dims inserted or removed (slices, integer indexing, ``t()``/``permute``, ``unsqueeze``,
``view(-1)`` of a contiguous block). `find_window` recognizes them from the view's flat
positions in the base; a read is then ``slice`` (+ ``permute`` + ``reshape``) and a write
``slice_scatter`` of the update brought back to the window's layout: no index arrays, and
nothing the size of the base but the base itself.

A view can also be a window of the base with consecutive dims merged (a ``diagonal`` is
``base.reshape(-1)[::n + 1]``, a run of ``view(-1)`` that crosses rows a slice of the flat
base): then the base is reshaped first (and back after a write). Positions that are no such
window (an advanced index that repeats or skips irregularly, an expanded view whose elements
overlap) keep the general form: a ``gather`` of the positions from the flattened base for
reads, and ``gather`` + ``where`` with constant index and mask arrays the size of the base for
writes (where a position repeats, the last write wins and only it receives gradient). An empty
view also takes the general form.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from ...ir import ops as P
from ..tensor import Tensor

__all__ = ["Window", "find_window", "read_positions", "write_positions"]


class Window(NamedTuple):
    """``base.reshape(shape)[starts:stops:steps]`` permuted by ``perm`` and reshaped to the
    view's shape (``shape`` is the base's own, or the base with consecutive dims merged)."""

    shape: tuple[int, ...]
    starts: tuple[int, ...]
    stops: tuple[int, ...]
    steps: tuple[int, ...]
    perm: tuple[int, ...]

    def sizes(self) -> tuple[int, ...]:
        """The slice's shape, in base dim order."""
        return tuple(
            max(0, (hi - lo + st - 1) // st)
            for lo, hi, st in zip(self.starts, self.stops, self.steps)
        )

    def permuted_sizes(self) -> tuple[int, ...]:
        sizes = self.sizes()
        return tuple(sizes[d] for d in self.perm)

    def is_identity_perm(self) -> bool:
        return self.perm == tuple(range(len(self.perm)))


def _c_strides(shape: tuple[int, ...]) -> list[int]:
    strides, acc = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = acc
        acc *= shape[d]
    return strides


def _base_dim_for(stride: int, shape: tuple[int, ...], strides: list[int]) -> int | None:
    """The base dim (of size > 1) with the largest C stride that divides ``stride`` and is
    at most ``stride``: where a view dim stepping ``stride`` flat positions most likely runs."""
    best = None
    for d, (n, s) in enumerate(zip(shape, strides)):
        if n > 1 and s <= stride and stride % s == 0 and (best is None or s > strides[best]):
            best = d
    return best


def _split(
    size: int, stride: int, start: list[int], shape: tuple[int, ...], strides: list[int]
) -> list[tuple[int, int, int]] | None:
    """One view dim (``size`` elements ``stride`` flat positions apart) as sub-dims
    ``(size, base_dim, step)``, outermost first, or None when it is no window.

    A view dim that runs past the end of its base dim (``view(-1)`` of a block) splits into an
    inner part that covers the base dim at its step and an outer part over the next dim out.
    """
    if stride <= 0:
        return None
    d = _base_dim_for(stride, shape, strides)
    if d is None:
        return None
    step = stride // strides[d]
    if start[d] + (size - 1) * step < shape[d]:
        return [(size, d, step)]
    if shape[d] % step or start[d] >= step:
        return None
    inner = shape[d] // step
    if size % inner:
        return None
    outer = _split(size // inner, stride * inner, start, shape, strides)
    return None if outer is None else [*outer, (inner, d, step)]


#: Bases of more dims than this try only their own shape and the flat one (the number of
#: ways to merge consecutive dims doubles with each dim).
_MERGE_LIMIT = 6


def _merged_shapes(shape: tuple[int, ...]):
    """``shape`` itself, then ``shape`` with consecutive dims merged, most dims first: a view
    such as a diagonal (``x.view(-1)[::n + 1]``) is a window of a merged base only."""
    yield shape
    n = len(shape)
    if n < 2:
        return
    cuts = range(1, n)
    if n > _MERGE_LIMIT:
        groupings = [()]
    else:
        groupings = [c for k in range(n - 2, -1, -1) for c in itertools.combinations(cuts, k)]
    for chosen in groupings:
        bounds = (0, *chosen, n)
        yield tuple(
            int(np.prod(shape[lo:hi], dtype=np.int64)) for lo, hi in zip(bounds, bounds[1:])
        )


def find_window(positions: np.ndarray, base_shape: tuple[int, ...]) -> Window | None:
    """The strided window of a base of ``base_shape`` (or of the base with consecutive dims
    merged) whose C-order flat positions are ``positions`` (in the view's shape), or None when
    they form no such window."""
    if positions.size == 0:
        return None
    for shape in _merged_shapes(tuple(int(n) for n in base_shape)):
        window = _window_of(positions, shape)
        if window is not None:
            return window
    return None


def _window_of(positions: np.ndarray, base_shape: tuple[int, ...]) -> Window | None:
    strides = _c_strides(base_shape)
    offset = int(positions.flat[0])
    start = [int(i) for i in np.unravel_index(offset, base_shape)] if base_shape else []
    subdims: list[tuple[int, int, int]] = []
    zero = (0,) * positions.ndim
    for k, n in enumerate(positions.shape):
        if n == 1:
            continue
        stride = int(positions[zero[:k] + (1,) + zero[k + 1 :]]) - offset
        parts = _split(n, stride, start, base_shape, strides)
        if parts is None:
            return None
        subdims.extend(parts)
    used = [d for _, d, _ in subdims]
    if len(set(used)) != len(used):
        return None
    steps, stops = [1] * len(base_shape), [s + 1 for s in start]
    for n, d, step in subdims:
        steps[d], stops[d] = step, start[d] + (n - 1) * step + 1
    perm = _order(used, len(base_shape))
    window = Window(base_shape, tuple(start), tuple(stops), tuple(steps), perm)
    return window if _reproduces(window, base_shape, positions) else None


def _order(used: list[int], ndim: int) -> tuple[int, ...]:
    """The base dims in the view's order: ``used`` as the view runs over them, and each dim
    the window holds one element of just before the first used dim above it (so a window
    whose dims keep the base's order needs no permute)."""
    unused = [d for d in range(ndim) if d not in used]
    order: list[int] = []
    for d in used:
        while unused and unused[0] < d:
            order.append(unused.pop(0))
        order.append(d)
    return (*order, *unused)


def _reproduces(window: Window, base_shape: tuple[int, ...], positions: np.ndarray) -> bool:
    """Whether ``window`` reads exactly ``positions`` (a check of the analysis above)."""
    flat = np.arange(int(np.prod(base_shape, dtype=np.int64))).reshape(base_shape)
    picked = flat[tuple(slice(*t) for t in zip(window.starts, window.stops, window.steps))]
    picked = picked.transpose(window.perm)
    return picked.size == positions.size and bool(
        np.array_equal(picked.reshape(positions.shape), positions)
    )


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, d in enumerate(perm):
        inv[d] = i
    return tuple(inv)


def _as_window_base(base, window: Window):
    if tuple(base.shape) != window.shape:
        return P.reshape(base, shape=window.shape)
    return base


def read_window(base, window: Window, shape: tuple[int, ...]):
    """The view's values from ``base``: ``slice``, then ``permute`` and ``reshape`` if needed."""
    source = _as_window_base(base, window)
    out = P.slice(source, starts=window.starts, stops=window.stops, steps=window.steps)
    if not window.is_identity_perm():
        out = P.permute(out, dims=window.perm)
    if tuple(out.shape) != tuple(shape):
        out = P.reshape(out, shape=tuple(shape))
    return out


def write_window(base, window: Window, values):
    """``base`` with the window replaced by ``values`` (in the view's shape)."""
    permuted = window.permuted_sizes()
    if tuple(values.shape) != permuted:
        values = P.reshape(values, shape=permuted)
    if not window.is_identity_perm():
        values = P.permute(values, dims=_inverse(window.perm))
    target = _as_window_base(base, window)
    out = P.slice_scatter(
        target, values, starts=window.starts, stops=window.stops, steps=window.steps
    )
    return out if target is base else P.reshape(out, shape=tuple(base.shape))


def read_positions(base, positions: np.ndarray):
    """The values at flat ``positions`` of ``base``, in ``positions``' shape."""
    window = find_window(positions, tuple(base.shape))
    if window is not None:
        return read_window(base, window, positions.shape)
    n = int(np.prod(tuple(base.shape), dtype=np.int64))
    flat = np.ascontiguousarray(positions, dtype=np.int64).reshape(-1)
    picked = P.gather(P.reshape(base, shape=(n,)), Tensor._make(flat), axis=0)
    return P.reshape(picked, shape=tuple(positions.shape))


def write_positions(base, positions: np.ndarray, values):
    """``base`` with flat ``positions`` (any shape) set to ``values`` (same shape).

    Where a position repeats (general form only), the last write wins and only it receives
    gradient.
    """
    if positions.size == 0:
        return base
    window = find_window(positions, tuple(base.shape))
    if window is not None:
        return write_window(base, window, values)
    n = int(np.prod(tuple(base.shape), dtype=np.int64))
    flat = positions.reshape(-1)
    owner = np.zeros(n, dtype=np.int64)
    owner[flat] = np.arange(flat.size, dtype=np.int64)
    written = np.zeros(n, dtype=np.bool_)
    written[flat] = True
    picked = P.gather(P.reshape(values, shape=(flat.size,)), Tensor._make(owner), axis=0)
    merged = P.where(Tensor._make(written), picked, P.reshape(base, shape=(n,)))
    return P.reshape(merged, shape=tuple(base.shape))
