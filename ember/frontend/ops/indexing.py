"""``x[key]`` and ``x[key] = value`` with PyTorch's (NumPy's) indexing rules.

Basic indexing (ints, slices with positive steps, None, Ellipsis) is a ``slice`` plus a
``reshape`` and returns a view. Advanced indexing (integer tensors, lists, bool masks) becomes
one ``gather`` over the flattened indexed dims, with the result dims placed where NumPy puts
them. Assignment writes in place; when autograd or a trace is involved the update is expressed with
primitives (``slice_scatter`` for a strided window, else ``gather``/``where``: see
`inplace.scatter_positions`) so gradients reach both sides.
"""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import DTypeError, EmberError, IndexOutOfRange, ShapeError
from .. import trace_state
from ..autograd.grad_mode import STATE, no_grad
from ..tensor import Tensor
from .common import broadcast_shapes, describe, warn_at_user
from .inplace import check_inplace, commit, fill_values, scatter_positions
from .inplace import snapshot as _snapshot
from .nonzero import nonzero
from .shape import as_view, permute, reshape

__all__ = ["getitem", "setitem", "nonzero"]


class SliceStepError(ShapeError, ValueError):
    """A slice step of zero or below (PyTorch raises ValueError)."""


class IndexTypeError(DTypeError, IndexError):
    """A floating point tensor used as an index (PyTorch raises IndexError)."""


class _NewBoolAxis:
    """A Python bool (or 0-d bool tensor) in a key: a new size-1 dim indexed by ``[0]`` when
    true, by an empty index when false, as in PyTorch (``x[True]`` has shape ``[1, *x.shape]``).
    """

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def index(self) -> Tensor:
        return Tensor._make(np.zeros((1 if self.value else 0,), dtype=np.int64))


class _Mask:
    """A bool tensor of ``k >= 1`` dims: indexes (and checks) ``k`` dims of the input."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor


UINT8_INDEX_WARNING = (
    "indexing with dtype ember.uint8 is now deprecated, please use a dtype ember.bool instead."
)


def _byte_mask(k: Tensor) -> Tensor:
    """A uint8 index is a mask, as in PyTorch: deprecated (with its warning) past 0-d."""
    if k.ndim != 0:
        warn_at_user(UINT8_INDEX_WARNING)
    return P.ne(k, 0)


def _has_byte_mask(key) -> bool:
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, Tensor) and k.dtype is D.uint8 and k.ndim != 0:
            return True
        if isinstance(k, np.ndarray) and k.dtype == np.uint8 and k.ndim != 0:
            return True
    return False


def _dims_used(k) -> int:
    if k is None or k is Ellipsis or isinstance(k, _NewBoolAxis):
        return 0
    return k.tensor.ndim if isinstance(k, _Mask) else 1


def _normalize_entry(k):
    if isinstance(k, range):
        k = list(k)
    if isinstance(k, list | np.ndarray):
        k = Tensor._make(np.asarray(k))
        if k._data.dtype.kind not in "biu":
            if k._data.size == 0:  # ``x[[]]`` indexes with an empty long tensor
                k = Tensor._make(k._data.astype(np.int64))
            elif k._data.dtype.kind != "f":
                raise IndexOutOfRange("getitem", f"unsupported index {k._data!r}")
        elif k._data.dtype != np.uint8 and (k._data.dtype.kind == "u" or
                                            k._data.dtype == np.int32):  # fmt: skip
            k = Tensor._make(k._data.astype(np.int64))
    if isinstance(k, bool | np.bool_):
        return _NewBoolAxis(bool(k))
    if isinstance(k, np.integer):
        return int(k)
    if isinstance(k, Tensor):
        if k.dtype is D.uint8:
            k = _byte_mask(k)
        elif k.dtype in (D.int8, D.int16):
            raise IndexTypeError(
                "getitem",
                f"tensors used as indices must be long, int, byte or bool tensors, got "
                f"{describe(k)}",
            )
        if k.dtype is D.bool_:
            if k.ndim != 0:
                return _Mask(k)
            return _NewBoolAxis(bool(trace_state.concrete(k, "indexing with a bool tensor")))
        if k.ndim == 0 and not k.dtype.is_floating_point:
            # a 0-d integer tensor selects, like an int (PyTorch)
            return int(trace_state.concrete(k, "indexing with a 0-d tensor"))
        return k
    if k is None or k is Ellipsis or isinstance(k, int | slice):
        return k
    raise IndexTypeError(
        "getitem",
        "only integers, slices (`:`), ellipsis (`...`), None and long or bool tensors are "
        f"valid indices, got {type(k).__name__}",
    )


def _expand_key(x: Tensor, key) -> list:
    """One entry per dim (plus None/_NewBoolAxis entries that add dims), no Ellipsis.

    Entries are ints, slices, None, `_NewBoolAxis` and integer index tensors; bool masks
    become one index tensor per dim they cover.
    """
    if not isinstance(key, tuple):
        key = (key,)
    out = [_normalize_entry(k) for k in key]
    if sum(1 for k in out if k is Ellipsis) > 1:
        raise IndexOutOfRange("getitem", "an index can only have a single ellipsis ('...')")
    used = sum(_dims_used(k) for k in out)
    if used > x.ndim:
        raise IndexOutOfRange(
            "getitem", f"too many indices for tensor of dimension {x.ndim} ({describe(x)})"
        )
    if any(k is Ellipsis for k in out):
        i = next(i for i, k in enumerate(out) if k is Ellipsis)
        out[i : i + 1] = [slice(None)] * (x.ndim - used)
    else:
        out += [slice(None)] * (x.ndim - used)
    result, dim = [], 0
    for k in out:
        if isinstance(k, _Mask):
            mask = k.tensor
            for j, n in enumerate(mask.shape):
                if n != x.shape[dim + j]:
                    raise IndexOutOfRange(
                        "getitem",
                        f"the shape of the mask {list(mask.shape)} at index {j} does not match "
                        f"the shape of the indexed tensor {list(x.shape)} at index {dim + j}",
                    )
            result.extend(nonzero(mask, as_tuple=True))
        else:
            result.append(k)
        dim += _dims_used(k)
    return result


def _slice_bounds(s: slice, n: int, dim: int) -> tuple[int, int, int]:
    step = 1 if s.step is None else int(s.step)
    if step <= 0:
        raise SliceStepError(
            "getitem", f"slice step must be greater than zero, got {step} in dimension {dim}"
        )
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
    if any(isinstance(k, Tensor | _NewBoolAxis) for k in entries):
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
    # None and bool entries become size-1 dims of x first, so every entry indexes one dim.
    if any(k is None or isinstance(k, _NewBoolAxis) for k in entries):
        shape, keyed = [], []
        dim = 0
        for k in entries:
            if k is None or isinstance(k, _NewBoolAxis):
                shape.append(1)
                keyed.append(slice(None) if k is None else k.index())
            else:
                shape.append(x.shape[dim])
                keyed.append(k)
                dim += 1
        x, entries = reshape(x, tuple(shape)), keyed
    # Ints and slices first (PyTorch applies them as select/slice before the advanced
    # indices), then one gather over the dims indexed by tensors.
    basic = [slice(None) if isinstance(k, Tensor) else k for k in entries]
    if any(not isinstance(k, slice) or k != slice(None) for k in basic):
        x = getitem(x, tuple(basic))
    entries = [k for k in entries if not isinstance(k, int)]
    adv = [i for i, k in enumerate(entries) if isinstance(k, Tensor)]
    index_tensors = []
    for i in adv:
        t = entries[i]
        if t.dtype.is_floating_point:
            raise IndexTypeError(
                "getitem", f"tensors used as indices must be long, int or bool, got {describe(t)}"
            )
        n = x.shape[i]
        data = trace_state.concrete(t, "advanced indexing").astype(np.int64, copy=False)
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


def _is_basic(key) -> bool:
    """Ints, slices with positive steps, None and Ellipsis: numpy assigns them like PyTorch."""
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, slice):
            if k.step is not None and int(k.step) <= 0:
                return False
        elif not (k is None or k is Ellipsis or (isinstance(k, int | np.integer) and
                                                   not isinstance(k, bool))):  # fmt: skip
            return False
    return True


def _positions(x: Tensor, key) -> np.ndarray:
    """The flat (C-order) positions in ``x`` that ``x[key]`` reads, in ``x[key]``'s shape."""
    with no_grad():
        where = getitem(Tensor._make(np.arange(x.numel()).reshape(x._data.shape)), key)
    return where._data


def _as_setitem_error(exc: EmberError) -> EmberError:
    """Key errors found by getitem's checks, reported under the op the user called."""
    return type(exc)("setitem", exc.detail, exc.loc)


def _check_value_fits(x: Tensor, value, target_shape) -> None:
    if isinstance(value, Tensor):
        try:
            fits = broadcast_shapes("setitem", value._data.shape, target_shape) == target_shape
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(
                "setitem",
                f"cannot assign {describe(value)} to the {list(target_shape)} elements that the "
                f"key selects in {describe(x)}",
            )


def setitem(x: Tensor, key, value) -> None:
    """``x[key] = value``: in place, with autograd through both ``x`` and ``value``."""
    try:
        _setitem(x, key, value)
    except EmberError as exc:
        if exc.op in ("getitem", "broadcast_to"):
            raise _as_setitem_error(exc) from None
        raise


def _setitem(x: Tensor, key, value) -> None:
    check_inplace(x, "setitem")
    if _has_byte_mask(key) and not (isinstance(value, Tensor | np.ndarray | list | tuple) and
                                    np.ndim(value) != 0):  # fmt: skip
        # PyTorch fills a number through a uint8 mask with masked_fill_, which takes bool only
        raise DTypeError(
            "setitem",
            "masked_fill_ only supports boolean masks, but got a mask with dtype uint8; "
            "index with mask.bool()",
        )
    if isinstance(value, np.ndarray | list | tuple):
        value = Tensor._make(np.asarray(value))
    elif isinstance(value, np.generic):
        value = value.item()
    records = x._requires_grad or (isinstance(value, Tensor) and value._requires_grad)
    if not (records and STATE.enabled) and trace_state.active() is None:
        if not x._data.flags.writeable:
            raise RuntimeError(
                "setitem: unsupported operation: the tensor is an expanded view; clone() it first"
            )
        if _is_basic(key):
            selected = getitem(x, key).shape  # checks the key with PyTorch's rules and errors
            target, np_key = x._data, key
        else:
            positions = _positions(x, key)
            selected = positions.shape
            target, np_key = x._data, np.unravel_index(positions, x._data.shape)
        _check_value_fits(x, value, selected)
        data = value._data if isinstance(value, Tensor) else np.asarray(value)
        target[np_key] = data.astype(x._data.dtype, copy=False)
        x._vc[0] += 1
        return
    positions = _positions(x, key)
    _check_value_fits(x, value, positions.shape)
    values = fill_values(x, value, positions.shape, "setitem")
    commit(x, scatter_positions(_snapshot(x), positions, values), "setitem")
