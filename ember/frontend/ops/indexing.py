"""``x[key]`` and ``x[key] = value`` with PyTorch's (NumPy's) indexing rules.

Basic indexing (ints, slices with positive steps, None, Ellipsis) is a ``slice`` plus a
``reshape`` and returns a view. Advanced indexing (integer tensors, lists, bool masks) becomes
one ``gather`` over the flattened indexed dims, with the result dims placed where NumPy puts
them. Assignment writes in place; when autograd is involved the update is expressed with
``gather``/``where`` (see `inplace.scatter_positions`) so gradients reach both sides.
"""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import DTypeError, IndexOutOfRange, ShapeError
from ..autograd.grad_mode import STATE
from ..tensor import Tensor
from .common import describe
from .inplace import check_inplace, commit, fill_values, scatter_positions, setitem_positions
from .inplace import snapshot as _snapshot
from .nonzero import nonzero
from .shape import as_view, permute, reshape

__all__ = ["getitem", "setitem", "nonzero"]


def _is_index_tensor(k) -> bool:
    return isinstance(k, Tensor | np.ndarray | list)


def _expand_key(x: Tensor, key) -> list:
    """A list of int/slice/None/index-tensor entries, one per dim (plus Nones), no Ellipsis."""
    if not isinstance(key, tuple):
        key = (key,)
    key = [Tensor._make(np.asarray(k)) if isinstance(k, list | np.ndarray) else k for k in key]
    out = []
    for k in key:
        if isinstance(k, Tensor) and k.dtype is D.bool_:
            out.extend(nonzero(k, as_tuple=True) if k.ndim else [k])
        else:
            out.append(k)
    used = sum(1 for k in out if k is not None and k is not Ellipsis and k is not True)
    if sum(1 for k in out if k is Ellipsis) > 1:
        raise IndexError("getitem: an index can only have a single ellipsis ('...')")
    if used > x.ndim:
        raise IndexOutOfRange(
            "getitem", f"too many indices for tensor of dimension {x.ndim} ({describe(x)})"
        )
    if Ellipsis in [k for k in out if not isinstance(k, Tensor)]:
        i = next(i for i, k in enumerate(out) if k is Ellipsis)
        out[i : i + 1] = [slice(None)] * (x.ndim - used)
    return out + [slice(None)] * (x.ndim - sum(1 for k in out if k is not None))


def _slice_bounds(s: slice, n: int, dim: int) -> tuple[int, int, int]:
    step = 1 if s.step is None else int(s.step)
    if step <= 0:
        raise ShapeError("getitem", f"slice step must be positive, got {step} in dimension {dim}")
    start, stop, _ = slice(s.start, s.stop, step).indices(n)
    return start, max(start, stop), step


def _check_int(k: int, n: int, dim: int) -> int:
    if not -n <= k < n:
        raise IndexOutOfRange(
            "getitem", f"index {k} is out of bounds for dimension {dim} with size {n}"
        )
    return k % n


def getitem(x: Tensor, key):
    entries = _expand_key(x, key)
    if any(isinstance(k, Tensor) for k in entries):
        return _advanced(x, entries)
    starts, stops, steps, shape, np_key = [], [], [], [], []
    dim = 0
    for k in entries:
        if k is None:
            shape.append(1)
            np_key.append(None)
            continue
        n = x.shape[dim]
        if isinstance(k, slice):
            lo, hi, st = _slice_bounds(k, n, dim)
            shape.append(max(0, (hi - lo + st - 1) // st))
        else:
            lo = _check_int(int(k), n, dim)
            hi, st = lo + 1, 1
        starts.append(lo)
        stops.append(hi)
        steps.append(st)
        np_key.append(slice(lo, hi, st) if isinstance(k, slice) else lo)
        dim += 1
    out = x
    if any(a != 0 or b != n or c != 1 for a, b, c, n in zip(starts, stops, steps, x.shape)):
        out = P.slice(x, starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))
    if tuple(shape) != tuple(out.shape):
        out = P.reshape(out, shape=tuple(shape))
    if out is x:
        out = P.reshape(x, shape=tuple(shape))
    np_key = tuple(np_key)
    return as_view(out, x, lambda a: a[np_key])


def _advanced(x: Tensor, entries: list):
    # None entries become size-1 dims of x first, so every entry indexes one dim.
    if any(k is None for k in entries):
        shape, keyed = [], []
        dim = 0
        for k in entries:
            if k is None:
                shape.append(1)
                keyed.append(slice(None))
            else:
                shape.append(x.shape[dim])
                keyed.append(k)
                dim += 1
        x, entries = reshape(x, tuple(shape)), keyed
    # Slices first (they keep their dims), then gather over the advanced dims.
    basic = [k if isinstance(k, slice) else slice(None) for k in entries]
    x = getitem(x, tuple(basic)) if any(k != slice(None) for k in basic) else x
    adv = [i for i, k in enumerate(entries) if not isinstance(k, slice)]
    index_tensors = []
    for i in adv:
        k = entries[i]
        t = k if isinstance(k, Tensor) else Tensor._make(np.asarray(int(k), dtype=np.int64))
        if t.dtype.is_floating_point:
            raise DTypeError(
                "getitem", f"tensors used as indices must be long, int or bool, got {describe(t)}"
            )
        n = x.shape[i]
        data = t._data.astype(np.int64, copy=False)
        if data.size and (data.min() < -n or data.max() >= n):
            bad = data[(data < -n) | (data >= n)].flat[0]
            raise IndexOutOfRange(
                "getitem", f"index {bad} is out of bounds for dimension {i} with size {n}"
            )
        index_tensors.append(Tensor._make(np.where(data < 0, data + n, data)))
    bshape = np.broadcast_shapes(*(t._data.shape for t in index_tensors))
    linear = np.zeros(bshape, dtype=np.int64)
    for i, t in zip(adv, index_tensors):
        linear = linear * x.shape[i] + np.broadcast_to(t._data, bshape)
    rest = [i for i in range(x.ndim) if i not in adv]
    moved = permute(x, adv + rest) if adv + rest != list(range(x.ndim)) else x
    rows = 1
    for i in adv:
        rows *= x.shape[i]
    rest_shape = tuple(x.shape[i] for i in rest)
    flat = P.reshape(moved, shape=(rows, *rest_shape))
    count = int(np.prod(bshape)) if bshape else 1
    idx = np.broadcast_to(linear.reshape((count,) + (1,) * len(rest)), (count, *rest_shape))
    picked = P.gather(flat, Tensor._make(np.ascontiguousarray(idx)), axis=0)
    out = P.reshape(picked, shape=(*bshape, *rest_shape))
    adjacent = adv == list(range(adv[0], adv[0] + len(adv)))
    if adjacent and adv[0] > 0:
        nb = len(bshape)
        front = list(range(nb, nb + adv[0]))
        order = front + list(range(nb)) + list(range(nb + adv[0], out.ndim))
        out = P.permute(out, dims=tuple(order))
    return out


def _numpy_key(key):
    if not isinstance(key, tuple):
        key = (key,)
    return tuple(k._data if isinstance(k, Tensor) else k for k in key)


def setitem(x: Tensor, key, value) -> None:
    """``x[key] = value``: in place, with autograd through both ``x`` and ``value``."""
    check_inplace(x, "setitem")
    np_key = _numpy_key(key)
    records = x._requires_grad or (isinstance(value, Tensor) and value._requires_grad)
    if not (records and STATE.enabled):
        if not x._data.flags.writeable:
            raise RuntimeError(
                "setitem: unsupported operation: the tensor is an expanded view; clone() it first"
            )
        if isinstance(value, Tensor):
            value = value._data
        try:
            x._data[np_key] = np.asarray(value).astype(x._data.dtype, copy=False)
        except IndexError as exc:
            raise IndexOutOfRange("setitem", str(exc)) from None
        except ValueError as exc:
            raise ShapeError("setitem", f"{exc} (target {describe(x)})") from None
        x._vc[0] += 1
        return
    positions = setitem_positions(x, np_key)
    values = fill_values(x, value, positions.shape, "setitem")
    commit(x, scatter_positions(_snapshot(x), positions, values), "setitem")
