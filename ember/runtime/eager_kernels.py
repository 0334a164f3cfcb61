"""Eager CPU kernels: the ``impl`` column of the primitive table, written with numpy.

Each kernel takes numpy arrays (and Python scalar literals for elementwise ops) plus the
primitive's attributes and returns a numpy array of exactly the dtype the primitive's shape
rule gives. Views (reshape, permute, slice, broadcast_to) return numpy views, so eager tensors
alias like PyTorch's.

Numerics follow the IR's rule (`ember.ir.numerics`): a literal takes the tensor's dtype;
elementwise math on float16/bfloat16 is the float32 result rounded once (numpy's float16 and
ml_dtypes' bfloat16 loops compute that way; the composite ``rsqrt`` and ``sigmoid`` compute in
float32 here); the accumulating kernels (sum, product, cumsum, scatter_add, matmul) on
float16/bfloat16 accumulate in float32 and round once. The graphs the frontend builds show
those float32 computations as ``convert`` nodes, so these kernels mostly see float32 there.
"""

from __future__ import annotations

import numpy as np

from ..ir import dtypes as D
from ..ir import errors
from ..ir.ops import PRIMITIVES
from . import philox, special

__all__ = ["KERNELS", "register_all"]

_LOW_PRECISION = (np.dtype(np.float16), D.bfloat16.np)


def _contiguous(x: np.ndarray) -> np.ndarray:
    """``x`` in C order (same rank; numpy's ascontiguousarray turns 0-d into 1-d)."""
    return x if x.flags.c_contiguous else np.array(x, order="C")


def _acc_dtype(dt: np.dtype) -> np.dtype:
    """The dtype an accumulating kernel adds in: float32 for float16/bfloat16."""
    return np.dtype(np.float32) if dt in _LOW_PRECISION else dt


def _in_float32(fn):
    """A composite kernel on float16/bfloat16 computed in float32 and rounded once, as every
    elementwise op is defined (float16's exp(12) already overflows inside sigmoid(-12))."""

    def kernel(x):
        if x.dtype in _LOW_PRECISION:
            return fn(x.astype(np.float32)).astype(x.dtype)
        return fn(x)

    kernel.__name__ = fn.__name__
    return kernel


@_in_float32
def _rsqrt(x):
    return np.reciprocal(np.sqrt(x))


@_in_float32
def _sigmoid(x):
    one = x.dtype.type(1)
    return one / (one + np.exp(-x))


def _erf(x):
    return special.erf(x)


def _sign(x):
    if x.dtype == np.bool_:
        return x.copy()
    if x.dtype.kind in "iu":
        return np.sign(x)
    # (0 < x) - (x < 0), as PyTorch computes it: sign(NaN) is 0, where numpy's is NaN
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def _round(x):
    return np.round(x) if x.dtype.kind == "f" or x.dtype == D.bfloat16.np else x.copy()


def _integral_identity(fn):
    def kernel(x):
        return fn(x) if x.dtype.kind == "f" or x.dtype == D.bfloat16.np else x.copy()

    return kernel


def _floordiv(a, b):
    if _is_integral(a, b) and np.any(np.asarray(b) == 0):
        raise ZeroDivisionError("integer division by zero")
    return np.floor_divide(a, b)


def _remainder(a, b):
    if _is_integral(a, b) and np.any(np.asarray(b) == 0):
        raise ZeroDivisionError("integer division by zero")
    return np.remainder(a, b)


def _pow(a, b):
    out = np.power(a, b)
    arr = a if isinstance(a, np.ndarray) else b
    return out.astype(np.bool_) if arr.dtype == np.bool_ else out  # numpy: bool ** bool is int8


def _is_integral(a, b) -> bool:
    arr = a if isinstance(a, np.ndarray) else b
    return arr.dtype.kind in "iu"


def _where(cond, a, b):
    # a Python scalar takes the tensor's dtype (numpy would make bfloat16 with 1.5 float64)
    if not isinstance(a, np.ndarray):
        a = np.asarray(a, dtype=b.dtype)
    elif not isinstance(b, np.ndarray):
        b = np.asarray(b, dtype=a.dtype)
    return np.where(cond, a, b)


def _with_scalar(fn):
    """A binary kernel whose tensor operand meets a Python scalar: the scalar takes the tensor's
    dtype, as the IR defines (numpy would compute bfloat16 with a float in float32)."""

    def kernel(a, b):
        if isinstance(a, np.ndarray):
            if isinstance(b, np.ndarray) or a.dtype not in _LOW_PRECISION:
                return fn(a, b)
            return fn(a, a.dtype.type(b))
        if b.dtype not in _LOW_PRECISION:
            return fn(a, b)
        return fn(b.dtype.type(a), b)

    kernel.__name__ = getattr(fn, "__name__", "kernel")
    return kernel


def _convert(x, dtype):
    target = dtype.np
    if target.kind in "iu" and target.itemsize < 4 and x.dtype.kind not in "iub":
        # float to a narrow integer goes through a wide signed one and wraps, as the C
        # conversion in PyTorch's CPU kernels does (-2.5 -> 254 as uint8, 40000.0 -> -25536
        # as int16); numpy's direct cast saturates or is undefined there
        return x.astype(np.int64).astype(target)
    return x.astype(target)


def _reduce(fn):
    def kernel(x, axes):
        axes = tuple(axes)
        x, repeats, spread = _unbroadcast(x, axes)
        # a contiguous operand fixes the summation order: results depend on values, not layout
        x = _contiguous(x)
        acc = _acc_dtype(x.dtype)
        if fn in (np.sum, np.prod):
            out = np.asarray(fn(x, axis=axes, dtype=acc))
            if repeats != 1:  # each value stands for `repeats` equal ones
                out = out * acc.type(repeats) if fn is np.sum else np.power(out, repeats)
        else:
            out = np.asarray(fn(x, axis=axes))
        out = out.astype(x.dtype, copy=False)
        return np.array(np.broadcast_to(out, spread), order="C") if spread else out

    return kernel


def _unbroadcast(x: np.ndarray, axes: tuple):
    """``x`` without its broadcast (stride-0) axes, so a reduction never materializes them.

    Returns the compact view, how many times each of its values is repeated along the reduced
    broadcast axes (a sum multiplies by it, a product raises to it, max/min ignore it), and the
    output shape to broadcast the result back to along the kept ones (None when there are none).
    """
    broadcast = [i for i, (n, st) in enumerate(zip(x.shape, x.strides)) if st == 0 and n > 1]
    if not broadcast:
        return x, 1, None
    repeats = 1
    kept = False
    index = [slice(None)] * x.ndim
    for i in broadcast:
        index[i] = slice(0, 1)
        if i in axes:
            repeats *= x.shape[i]
        else:
            kept = True
    spread = tuple(n for i, n in enumerate(x.shape) if i not in axes) if kept else None
    return x[tuple(index)], repeats, spread


def _cumsum(x, axis, reverse):
    x = _contiguous(x)
    if reverse:
        x = np.flip(x, axis)
    out = np.cumsum(x, axis=axis, dtype=_acc_dtype(x.dtype)).astype(x.dtype, copy=False)
    return np.ascontiguousarray(np.flip(out, axis)) if reverse else out


def _argmax(x, axis):
    return np.argmax(x, axis=axis).astype(np.int64, copy=False)


def _argmin(x, axis):
    return np.argmin(x, axis=axis).astype(np.int64, copy=False)


def _argsort(x, axis, descending, stable):
    """Stable in both directions; NaN sorts as the largest value, as in PyTorch.

    Descending is the ascending stable sort of the reversed axis, read backwards: values come
    out largest first (NaN first) and equal values keep their index order, with no negation
    (which would break for bool, unsigned ints and the most negative integer)."""
    if not descending:
        return np.argsort(x, axis=axis, kind="stable").astype(np.int64, copy=False)
    n = x.shape[axis]
    rev = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return np.ascontiguousarray(np.flip(n - 1 - rev, axis)).astype(np.int64, copy=False)


def _copy(x):
    return np.array(x, copy=True, order="C")


def _reshape(x, shape):
    return x.reshape(shape)


def _broadcast_to(x, shape):
    return np.broadcast_to(x, shape)


def _permute(x, dims):
    return np.transpose(x, dims)


def _slice(x, starts, stops, steps):
    return x[tuple(slice(a, b, c) for a, b, c in zip(starts, stops, steps))]


def _slice_scatter(base, update, starts, stops, steps):
    out = np.array(base, copy=True, order="C")
    out[tuple(slice(a, b, c) for a, b, c in zip(starts, stops, steps))] = update
    return out


def _pad(x, low, high, interior, value):
    shape = tuple(
        lo + hi + n + max(0, n - 1) * it for n, lo, hi, it in zip(x.shape, low, high, interior)
    )
    out = np.full(shape, value, dtype=x.dtype)
    out[tuple(slice(lo, lo + (n - 1) * (it + 1) + 1 if n else lo, it + 1)
              for n, lo, it in zip(x.shape, low, interior))] = x  # fmt: skip
    return out


def _concat(*xs, axis):
    return np.concatenate(xs, axis=axis)


def _index_grid(idx: np.ndarray, axis: int) -> tuple:
    grid = list(np.ogrid[tuple(slice(0, n) for n in idx.shape)])
    grid[axis] = idx
    return tuple(grid)


def _check_index(op: str, idx: np.ndarray, axis: int, n: int) -> None:
    """Indices must lie in [0, n), as in PyTorch's gather/scatter (no negative wrap-around)."""
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)].flat[0]
        raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {n}")


def _gather(x, idx, axis):
    _check_index("gather", idx, axis, x.shape[axis])
    return x[_index_grid(idx, axis)]


def _scatter_add(x, idx, src, axis):
    _check_index("scatter_add", idx, axis, x.shape[axis])
    out = x.astype(_acc_dtype(x.dtype), copy=True)
    np.add.at(out, _index_grid(idx, axis), src.astype(out.dtype, copy=False))
    return out.astype(x.dtype, copy=False)


def _matmul(a, b):
    a, b = _contiguous(a), _contiguous(b)
    acc = _acc_dtype(a.dtype)
    if acc != a.dtype:
        return np.matmul(a.astype(acc), b.astype(acc)).astype(a.dtype)
    return np.matmul(a, b)


def _full(shape, value, dtype):
    return np.full(shape, value, dtype=dtype.np)


def _iota(shape, axis, dtype):
    line = np.arange(shape[axis], dtype=dtype.np)
    view = line.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    return np.ascontiguousarray(np.broadcast_to(view, shape))


def _philox_uniform(seed, offset, shape, dtype):
    # the seed operand holds the uint64 seed's bits in an int64
    return philox.uniform(int(seed) % (1 << 64), int(offset), tuple(shape), dtype.np)


def _check_range(x, low, high, ignore, op, message, error):
    bad = ~((x >= low) & (x <= high))
    for value in ignore:  # (values exempt from the check, such as a loss's ignore_index)
        bad &= x != value
    if bad.any():
        raise getattr(errors, error)(op, message.format(value=x[bad].flat[0]))
    return x


KERNELS = {
    "neg": np.negative,
    "abs": np.abs,
    "sign": _sign,
    "floor": _integral_identity(np.floor),
    "ceil": _integral_identity(np.ceil),
    "round": _round,
    "trunc": _integral_identity(np.trunc),
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "rsqrt": _rsqrt,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "erf": _erf,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "logical_not": np.logical_not,
    "bitwise_not": np.invert,
    "add": _with_scalar(np.add),
    "sub": _with_scalar(np.subtract),
    "mul": _with_scalar(np.multiply),
    "div": _with_scalar(np.true_divide),
    "maximum": _with_scalar(np.maximum),
    "minimum": _with_scalar(np.minimum),
    "remainder": _with_scalar(_remainder),
    "floordiv": _with_scalar(_floordiv),
    "pow": _with_scalar(_pow),
    "bitwise_and": np.bitwise_and,
    "bitwise_or": np.bitwise_or,
    "bitwise_xor": np.bitwise_xor,
    "lshift": np.left_shift,
    "rshift": np.right_shift,
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
    "where": _where,
    "convert": _convert,
    "reduce_sum": _reduce(np.sum),
    "reduce_prod": _reduce(np.prod),
    "reduce_max": _reduce(np.max),
    "reduce_min": _reduce(np.min),
    "cumsum": _cumsum,
    "argmax": _argmax,
    "argmin": _argmin,
    "argsort": _argsort,
    "copy": _copy,
    "stop_gradient": lambda x: x,
    "check_range": _check_range,
    "reshape": _reshape,
    "broadcast_to": _broadcast_to,
    "permute": _permute,
    "slice": _slice,
    "slice_scatter": _slice_scatter,
    "pad": _pad,
    "concat": _concat,
    "gather": _gather,
    "scatter_add": _scatter_add,
    "matmul": _matmul,
    "full": _full,
    "iota": _iota,
    "philox_uniform": _philox_uniform,
}


def register_all() -> None:
    """Fill the ``impl`` column of the op table."""
    for name, kernel in KERNELS.items():
        PRIMITIVES[name].impl = kernel


register_all()
