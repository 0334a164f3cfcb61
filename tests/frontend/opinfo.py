"""The op table: one entry per op, with the samples that drive the tests against PyTorch.

Modelled on lightning-thunder's ``opinfos.py``. An `OpInfo` names an op, gives one callable
``op(module, *args, **kwargs)`` that is applied to ``ember`` and to ``torch`` alike (so the
two calls are spelled the same), a sample generator, the dtypes to test and whether the op is
differentiable.

Samples hold numpy data, never tensors: `Sample.materialize` builds the same inputs for either
library (``lib.tensor(array, dtype=lib.<dtype>)``), then applies the tensor's ``view`` (``.t()``,
``.transpose``, a step slice) so that the op sees a non-contiguous input whose gradient must
flow back through the view. Every value is rounded to its dtype first, so both libraries start
from identical bits, also in float16 and bfloat16.

Used by ``test_ops_vs_torch.py`` (forward and gradients against torch) and
``test_gradcheck.py`` (ember's gradients against finite differences).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import ml_dtypes
import numpy as np

__all__ = [
    "T",
    "Sample",
    "OpInfo",
    "OPS",
    "FLOAT_DTYPES",
    "GRAD_DTYPES",
    "LOW_PRECISION",
    "op_by_name",
]

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
GRAD_DTYPES = ("float32", "float64")
LOW_PRECISION = ("float16", "bfloat16")
INT_DTYPES = ("uint8", "int8", "int16", "int32", "int64")

F = ("float32", "float64")
H = LOW_PRECISION
I = ("int64", "int32")
B = ("bool",)
U = ("uint8", "int16")  # the narrow integer types (image data, audio samples)
ALL = F + I + B + H

_NP = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


# ---- views that make inputs non-contiguous (the same code runs on ember and torch) ---------


def _t(x):
    return x.t()


def _swap(x):
    return x.transpose(-1, -2)


def _step(x):
    return x[::2]


_VIEWS = {"t": _t, "swap": _swap, "step": _step}


# ---- samples -------------------------------------------------------------------------------


@dataclass
class T:
    """A tensor input: numpy ``data`` (float64 / int64 / bool), created as ``dtype``, then
    passed through ``view``. ``grad``: whether it requires grad (float dtypes only)."""

    data: np.ndarray
    dtype: str
    view: Callable | None = None
    grad: bool = True

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def __repr__(self) -> str:
        view = f".{self.view.__name__.strip('_')}" if self.view else ""
        return f"{self.dtype}{list(self.data.shape)}{view}"


@dataclass
class Sample:
    """One call: ``args``/``kwargs`` with `T` where a tensor goes (also inside lists).

    ``grad``: test gradients at all (off at NaN/inf inputs); ``torch_grad``: compare them with
    torch's (off where torch's gradient is wrong); ``gradcheck``: the inputs are away from
    points where finite differences disagree with the (sub)gradient torch picks (ties, kinks).
    ``xfail``: a reason when ember is known to be wrong here (the test is a strict xfail).
    """

    args: tuple
    kwargs: dict = field(default_factory=dict)
    desc: str = ""
    grad: bool = True
    torch_grad: bool = True
    gradcheck: bool = True
    xfail: str | None = None

    def tensors(self) -> list[T]:
        """The `T` inputs in the order `materialize` creates them."""
        out = []

        def walk(v):
            if isinstance(v, T):
                out.append(v)
            elif isinstance(v, list | tuple):
                for x in v:
                    walk(x)

        walk(self.args)
        walk(tuple(self.kwargs.values()))
        return out

    def with_data(self, index: int, data: np.ndarray) -> Sample:
        """This sample with the data of its ``index``-th tensor replaced."""
        count = [0]

        def swap(v):
            if isinstance(v, T):
                i = count[0]
                count[0] += 1
                return replace(v, data=data) if i == index else v
            if isinstance(v, list):
                return [swap(x) for x in v]
            if isinstance(v, tuple):
                return tuple(swap(x) for x in v)
            return v

        args = swap(self.args)
        kwargs = {k: swap(v) for k, v in self.kwargs.items()}
        return replace(self, args=args, kwargs=kwargs)

    def materialize(self, lib, *, requires_grad: bool = False):
        """``(args, kwargs, leaves)`` for ``lib`` (ember or torch); ``leaves`` are the tensors
        that require grad, before their views, in `tensors` order."""
        leaves = []

        def conv(v):
            if isinstance(v, T):
                x = lib.tensor(v.data, dtype=getattr(lib, v.dtype))
                if requires_grad and v.grad and v.is_float:
                    x.requires_grad_(True)
                    leaves.append(x)
                return v.view(x) if v.view is not None else x
            if isinstance(v, list):
                return [conv(x) for x in v]
            if isinstance(v, tuple):
                return tuple(conv(x) for x in v)
            return v

        args = conv(self.args)
        kwargs = {k: conv(v) for k, v in self.kwargs.items()}
        return args, kwargs, leaves

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.desc}({', '.join(parts)})" if self.desc else f"({', '.join(parts)})"


@dataclass
class OpInfo:
    """One row of the table."""

    name: str
    op: Callable  # op(module, *args, **kwargs), module is ember or torch
    sample_fn: Callable[[str, np.random.Generator], Iterable[Sample]]
    dtypes: tuple[str, ...]
    differentiable: bool = True
    kind: str = "elementwise"  # elementwise, reduction, linalg, shape, cast
    # dtype name -> (rtol, atol) overriding the defaults of the tests
    tol: dict = field(default_factory=dict)
    torch_op: Callable | None = None  # when torch spells the call differently
    gradcheck: bool = True  # False: finite differences cannot see the gradient

    def ember_fn(self, *args, **kwargs):
        import ember

        return self.op(ember, *args, **kwargs)

    def torch_fn(self, *args, **kwargs):
        import torch

        return (self.torch_op or self.op)(torch, *args, **kwargs)

    def samples(self, dtype: str) -> list[Sample]:
        rng = np.random.default_rng(zlib.crc32(f"{self.name}/{dtype}".encode()))
        return list(self.sample_fn(dtype, rng))

    def __repr__(self) -> str:
        return f"OpInfo({self.name})"


# ---- data ----------------------------------------------------------------------------------


def _quantize(data: np.ndarray, dtype: str) -> np.ndarray:
    if dtype in _NP:
        return data.astype(_NP[dtype]).astype(np.float64)
    return data


def _values(rng, shape, dtype, low, high, distinct, away, margin):
    shape = tuple(shape)
    n = math.prod(shape)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INT_DTYPES:
        lo, hi = int(math.ceil(low)), int(math.floor(high))
        floor = 0 if dtype == "uint8" else None  # unsigned: the range's non-negative part
        if floor is not None:
            lo, hi = max(lo, floor), max(hi, floor + 3)
        pool = np.array([v for v in range(lo, hi + 1) if away is None or v not in away])
        if not len(pool):  # e.g. floor's "away from integers": meaningless for ints
            pool = np.arange(lo, hi + 1)
        if distinct:
            if n > len(pool):  # widen the range rather than repeat a value
                start = -2 * n if floor is None else floor
                pool = np.array([v for v in range(start, 2 * n + 1) if not away or v not in away])
            return rng.permutation(pool)[:n].reshape(shape).astype(np.int64)
        return rng.choice(pool, size=shape).astype(np.int64)
    if distinct:
        # evenly spaced slots with jitter: values stay well apart (no ties, even in bf16)
        slots = rng.permutation(n).reshape(shape)
        width = (high - low) / max(n, 1)
        data = low + width * (slots + 0.25 + 0.5 * rng.random(shape))
    else:
        data = rng.uniform(low, high, size=shape)
    if away is not None:
        for _ in range(100):
            bad = np.zeros(shape, bool)
            for p in away:
                bad |= np.abs(data - p) < margin
            if not bad.any():
                break
            data = np.where(bad, rng.uniform(low, high, size=shape), data)
        else:
            raise ValueError("could not draw values away from the excluded points")
    return _quantize(np.asarray(data, dtype=np.float64), dtype)


def make(
    rng,
    shape,
    dtype: str,
    low: float = -3.0,
    high: float = 3.0,
    *,
    layout: str | None = None,
    distinct: bool = False,
    away: Iterable[float] | None = None,
    margin: float = 0.1,
    grad: bool = True,
) -> T:
    """A random tensor input of logical ``shape``; ``layout`` ('t', 'swap', 'step') stores it
    so that a view (``.t()``, ``.transpose(-1, -2)``, ``[::2]``) yields the values."""
    away = tuple(away) if away is not None else None
    data = _values(rng, shape, dtype, low, high, distinct, away, margin)
    return _stored(rng, data, dtype, layout, low, high, away, margin, grad)


def _stored(rng, data, dtype, layout, low=-3.0, high=3.0, away=None, margin=0.1, grad=True):
    if layout is None:
        return T(data, dtype, None, grad)
    if layout == "t":
        return T(np.ascontiguousarray(data.T), dtype, _t, grad)
    if layout == "swap":
        return T(np.ascontiguousarray(np.swapaxes(data, -1, -2)), dtype, _swap, grad)
    if layout == "step":
        shape = (2 * data.shape[0], *data.shape[1:])
        storage = _values(rng, shape, dtype, low, high, False, away, margin)
        storage[::2] = data
        return T(storage, dtype, _step, grad)
    raise ValueError(layout)


def const(values, dtype: str, *, layout: str | None = None, grad: bool = True) -> T:
    """A tensor input with the given values (rounded to ``dtype``)."""
    if dtype == "bool":
        data = np.asarray(values, dtype=bool)
    elif dtype in INT_DTYPES:
        data = np.asarray(values, dtype=np.int64)
    else:
        data = _quantize(np.asarray(values, dtype=np.float64), dtype)
    return _stored(None, data, dtype, layout, grad=grad)


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def _other_float(dtype: str) -> str:
    return "float64" if dtype != "float64" else "float32"


# ---- sample generators ---------------------------------------------------------------------

UNARY_SHAPES = (
    ((3, 4), None, "2d"),
    ((), None, "0d"),
    ((5,), None, "1d"),
    ((0, 3), None, "empty"),
    ((3, 4), "t", "transposed"),
    ((2, 2, 3), "swap", "swapped"),
    ((3, 3), "step", "step-sliced"),
)


SPECIALS = [[np.nan, np.inf, -np.inf], [0.0, -0.0, 1.0]]


def unary_samples(low=-3.0, high=3.0, *, away=None, margin=0.1, kwargs=None, extra=None):
    """Shapes from scalars to non-contiguous views; ints/bools where the dtype is one; NaN,
    infinities and signed zeros (forward only) for floats."""

    def gen(dtype, rng):
        for shape, layout, desc in UNARY_SHAPES:
            x = make(rng, shape, dtype, low, high, layout=layout, away=away, margin=margin)
            yield Sample((x,), dict(kwargs or {}), desc)
        if is_float(dtype):
            yield Sample(
                (const(SPECIALS, dtype),), dict(kwargs or {}), "nan, inf, zeros", grad=False
            )
        if extra is not None:
            yield from extra(dtype, rng)

    return gen


def binary_samples(
    a=(-3.0, 3.0),
    b=(-3.0, 3.0),
    *,
    b_away=None,
    a_away=None,
    scalars=(2.5, 2),
    mixed=True,
    kwargs=None,
    extra=None,
):
    """Equal shapes, broadcasting both ways, 0-d tensors, Python scalars, empty tensors,
    non-contiguous operands and mixed dtypes (promotion)."""

    def gen(dtype, rng):
        kw = dict(kwargs or {})

        def A(shape, layout=None, dt=dtype):
            return make(rng, shape, dt, *a, layout=layout, away=a_away)

        def Bt(shape, layout=None, dt=dtype):
            return make(rng, shape, dt, *b, layout=layout, away=b_away)

        yield Sample((A((3, 4)), Bt((3, 4))), kw, "same")
        yield Sample((A((3, 1)), Bt((1, 4))), kw, "bcast (3,1)x(1,4)")
        yield Sample((A((2, 3)), Bt((3,))), kw, "bcast (2,3)x(3,)")
        yield Sample((A(()), Bt((2, 3))), kw, "0d x 2d")
        yield Sample((A((2, 3)), Bt(())), kw, "2d x 0d")
        yield Sample((A(()), Bt(())), kw, "0d x 0d")
        yield Sample((A((0, 4)), Bt((1, 4))), kw, "empty")
        yield Sample((A((3, 4), "t"), Bt((3, 4), "step")), kw, "non-contiguous")
        yield Sample((A((2, 2, 3), "swap"), Bt((2, 3))), kw, "swapped x bcast")
        for s in scalars:
            yield Sample((A((2, 3)), s), kw, f"scalar {type(s).__name__}")
        if mixed and is_float(dtype):
            yield Sample((A((2, 3)), Bt((2, 3), dt="int64")), kw, "float x int64")
            yield Sample((A((2, 3)), Bt((), dt=_other_float(dtype))), kw, "0d other float")
            if dtype in LOW_PRECISION:
                other = "bfloat16" if dtype == "float16" else "float16"
                yield Sample((A((2, 3)), Bt((2, 3), dt=other)), kw, "f16 x bf16: float32")
        if mixed and dtype in ("int64", "int32"):
            yield Sample((A((2, 3)), Bt((2, 3), dt="float32")), kw, "int x float")
            yield Sample(
                (A((2, 3)), Bt((), dt="int64" if dtype == "int32" else "int32")), kw, "0d other int"
            )
            yield Sample((A((2, 3)), Bt((), dt="float16")), kw, "int x 0d float16")
        if mixed and dtype == "bool":
            yield Sample((A((2, 3)), Bt((2, 3), dt="int32")), kw, "bool x int32")
        if mixed and dtype == "uint8":
            yield Sample((A((2, 3)), Bt((2, 3), dt="int8")), kw, "uint8 x int8: int16")
            yield Sample((A((2, 3)), Bt((), dt="int64")), kw, "uint8 x 0d int64")
            yield Sample((A((2, 3)), Bt((2, 3), dt="float32")), kw, "uint8 x float")
        if mixed and dtype == "int16":
            yield Sample((A((2, 3)), Bt((2, 3), dt="uint8")), kw, "int16 x uint8")
            yield Sample((A((2, 3)), Bt((2, 3), dt="int32")), kw, "int16 x int32")
        if extra is not None:
            yield from extra(dtype, rng)

    return gen


def _pow_samples(dtype, rng):
    if is_float(dtype):
        pos = (0.5, 2.0)
        yield Sample((make(rng, (3, 4), dtype, *pos), make(rng, (3, 4), dtype, -2, 2)), {}, "t^t")
        yield Sample((make(rng, (3, 1), dtype, *pos), make(rng, (1, 4), dtype, -2, 2)), {}, "bcast")
        yield Sample(
            (
                make(rng, (2, 3), dtype, *pos, layout="step"),
                make(rng, (2, 3), dtype, -2, 2, layout="t"),
            ),
            {},
            "non-contiguous",
        )
        yield Sample((make(rng, (), dtype, *pos), make(rng, (2, 3), dtype, -2, 2)), {}, "0d base")
        for e in (2, 3, 0.5, -1, -1.5, 0, 1):
            yield Sample((make(rng, (2, 3), dtype, *pos), e), {}, f"t^{e}")
        yield Sample((make(rng, (2, 3), dtype), 2), {}, "neg base ^2")
        yield Sample((make(rng, (2, 3), dtype), 3), {}, "neg base ^3")
        for base in (2.0, 0.5, 3):
            yield Sample((base, make(rng, (2, 3), dtype, -2, 2)), {}, f"{base}^t")
        zeros = const([[0.0, 1.5, 0.0], [2.0, 0.0, 0.7]], dtype)
        yield Sample((zeros, 2), {}, "zero base ^2")
        yield Sample(
            (zeros, make(rng, (2, 3), dtype, 0.5, 2)), {}, "zero base ^ positive t", gradcheck=False
        )  # d/da 0^b is infinite for b < 1
        yield Sample((0.0, make(rng, (2, 3), dtype, 0.5, 2)), {}, "0.0 ^ positive t")
        yield Sample(
            (make(rng, (2, 3), dtype, *pos), make(rng, (2, 3), "int64", 0, 3)), {}, "float ^ int t"
        )
        yield Sample(
            (make(rng, (2, 3), "int64", 1, 4), make(rng, (2, 3), dtype, -2, 2)), {}, "int ^ float t"
        )
        yield Sample((make(rng, (2, 3), dtype, -2, -0.5), 0.5), {}, "nan: neg ^ 0.5", grad=False)
    elif dtype == "bool":  # torch has no bool ** bool tensor kernel, only a scalar exponent
        yield Sample((make(rng, (2, 3), dtype), True), {}, "bool ^ True")
        yield Sample((make(rng, (2, 3), dtype), False), {}, "bool ^ False")
    else:
        yield Sample((make(rng, (3, 4), dtype, -4, 4), make(rng, (3, 4), dtype, 0, 3)), {}, "t^t")
        yield Sample((make(rng, (3, 1), dtype, -4, 4), make(rng, (1, 4), dtype, 0, 3)), {}, "bcast")
        yield Sample((make(rng, (2, 3), dtype, -4, 4), 3), {}, "t^3")
        yield Sample((make(rng, (2, 3), dtype, -4, 4), 0), {}, "t^0")
        yield Sample((2, make(rng, (2, 3), dtype, 0, 5)), {}, "2^t")
        yield Sample((make(rng, (2, 3), dtype, 1, 4), 0.5), {}, "int ^ float scalar")


def _div_extra(dtype, rng):
    if is_float(dtype):
        x = const([[1.0, -1.0, 0.0], [2.5, -0.0, 3.0]], dtype)
        yield Sample((x, const([0.0, 0.0, 0.0], dtype)), {}, "div by zero", grad=False)
    for mode in ("trunc", "floor"):
        if is_float(dtype):
            a, b = make(rng, (3, 4), dtype), make(rng, (3, 4), dtype, 0.5, 3)
            yield Sample((a, b), {"rounding_mode": mode}, mode, gradcheck=False)
            yield Sample((make(rng, (2, 3), dtype), -1.5), {"rounding_mode": mode}, mode)
        else:
            a = make(rng, (3, 4), dtype, -9, 9)
            b = make(rng, (3, 4), dtype, -4, 4, away=(0,))
            yield Sample((a, b), {"rounding_mode": mode}, mode)
            yield Sample((a, 3), {"rounding_mode": mode}, f"{mode} scalar")
            yield Sample((a, -2), {"rounding_mode": mode}, f"{mode} negative scalar")


def _ties_extra(dtype, rng):
    """Equal operands (ties: maximum/minimum split the gradient in half) and NaNs."""
    a = make(rng, (3, 4), dtype, distinct=dtype != "bool")
    b = make(rng, (3, 4), dtype, distinct=dtype != "bool")
    if dtype != "bool":
        b.data[:, ::2] = a.data[:, ::2]
    yield Sample((a, b), {}, "ties", gradcheck=False)
    if is_float(dtype):
        x = const([[np.nan, 1.0, -2.0], [0.5, np.nan, 3.0]], dtype)
        y = const([[1.0, np.nan, 2.0], [0.5, np.nan, -3.0]], dtype)
        yield Sample((x, y), {}, "nan: both get the gradient", gradcheck=False)


def _compare_extra(dtype, rng):
    yield from _ties_extra(dtype, rng)
    if is_float(dtype):
        x = const([[np.inf, -np.inf, 0.0], [-0.0, 1.0, np.nan]], dtype)
        yield Sample((x, 0.0), {}, "specials vs 0.0")


def _logical_samples(dtype, rng):
    def X(shape, layout=None, dt=dtype):
        t = make(rng, shape, dt, -2, 2, layout=layout)
        if dt != "bool":
            t.data[rng.random(t.data.shape) < 0.4] = 0
        return t

    yield Sample((X((3, 4)), X((3, 4))), {}, "same")
    yield Sample((X((3, 1)), X((1, 4))), {}, "bcast")
    yield Sample((X(()), X((2, 3))), {}, "0d")
    yield Sample((X((3, 4), "t"), X((3, 4), "step")), {}, "non-contiguous")
    yield Sample((X((0, 2)), X((1, 2))), {}, "empty")
    yield Sample((X((2, 3)), X((2, 3), dt="bool")), {}, "x bool")
    yield Sample((X((2, 3)), X((2, 3), dt="float32")), {}, "x float32")


def _logical_not_samples(dtype, rng):
    for shape, layout, desc in UNARY_SHAPES:
        t = make(rng, shape, dtype, -2, 2, layout=layout)
        if dtype != "bool":
            t.data[rng.random(t.data.shape) < 0.4] = 0
        yield Sample((t,), {}, desc)


def _bitwise_samples(dtype, rng):
    lo, hi = (-50, 50)

    def X(shape, layout=None, dt=dtype):
        return make(rng, shape, dt, lo, hi, layout=layout)

    yield Sample((X((3, 4)), X((3, 4))), {}, "same")
    yield Sample((X((3, 1)), X((1, 4))), {}, "bcast")
    yield Sample((X(()), X((2, 3))), {}, "0d")
    yield Sample((X((3, 4), "t"), X((3, 4), "step")), {}, "non-contiguous")
    yield Sample((X((0, 2)), X((1, 2))), {}, "empty")
    if dtype == "bool":
        yield Sample((X((2, 3)), True), {}, "scalar True")
    else:
        yield Sample((X((2, 3)), 6), {}, "scalar int")
        yield Sample((X((2, 3)), X((2, 3), dt="bool")), {}, "x bool")


def _shift_samples(dtype, rng):
    def X(shape, layout=None):
        return make(rng, shape, dtype, -10, 10, layout=layout)

    def S(shape, layout=None):
        return make(rng, shape, dtype, 0, 3, layout=layout)

    yield Sample((X((3, 4)), S((3, 4))), {}, "same")
    yield Sample((X((3, 1)), S((1, 4))), {}, "bcast")
    yield Sample((X((3, 4), "t"), S((3, 4), "step")), {}, "non-contiguous")
    yield Sample((X((2, 3)), 2), {}, "scalar shift")
    yield Sample((X(()), S((2, 3))), {}, "0d")


def _round_extra(dtype, rng):
    if is_float(dtype):
        halves = const([[0.5, 1.5, 2.5, -0.5], [-1.5, -2.5, 3.5, 0.49]], dtype)
        yield Sample((halves,), {}, "half-way: to even", gradcheck=False)
        if dtype not in LOW_PRECISION:
            x = make(rng, (3, 4), dtype, away=(np.arange(-30, 31) + 0.5) / 10, margin=0.01)
            yield Sample((x,), {"decimals": 1}, "decimals=1")
            x = make(rng, (3, 4), dtype, -60, 60, away=np.arange(-65, 66, 10), margin=0.1)
            yield Sample((x,), {"decimals": -1}, "decimals=-1")


def _isnan_samples(dtype, rng):
    yield from unary_samples()(dtype, rng)
    if is_float(dtype):
        specials = const([[np.nan, np.inf, -np.inf, 0.0], [1.0, -np.nan, 3e4, -0.0]], dtype)
        yield Sample((specials,), {}, "specials")
        yield Sample(
            (const([[np.nan, 1.0], [np.inf, -np.inf]], dtype, layout="t"),),
            {},
            "specials transposed",
        )


def _clamp_samples(dtype, rng):
    lo, hi = (-3.0, 3.0) if is_float(dtype) else (-9, 9)
    bounds = (-1.0, 1.5) if is_float(dtype) else (-2, 4)
    away = bounds if is_float(dtype) else None

    def X(shape, layout=None):
        return make(rng, shape, dtype, lo, hi, layout=layout, away=away)

    yield Sample((X((3, 4)),), {"min": bounds[0], "max": bounds[1]}, "scalar bounds")
    yield Sample((X((3, 4)),), {"min": bounds[0]}, "only min")
    yield Sample((X((3, 4)),), {"max": bounds[1]}, "only max")
    yield Sample((X((3, 4), "t"),), {"min": bounds[0], "max": bounds[1]}, "transposed")
    yield Sample((X(()),), {"min": bounds[0], "max": bounds[1]}, "0d")
    yield Sample((X((0, 3)),), {"min": bounds[0]}, "empty")
    yield Sample((X((3, 4)),), {"min": bounds[1], "max": bounds[0]}, "min > max")
    if is_float(dtype):
        yield Sample((const(SPECIALS, dtype),), {"min": -1.0, "max": 1.0}, "nan, inf", grad=False)
        x = make(rng, (3, 4), dtype, away=(-2, -1.5, -1, 0.5, 1, 1.5, 2))
        mn = const([[-1.0], [-2.0], [0.5]], dtype)
        mx = const([[1.5, 2.0, 1.0, 1.5]], dtype)
        yield Sample((x,), {"min": mn, "max": mx}, "tensor bounds (bcast)")
        yield Sample((x,), {"min": mn}, "tensor min only")
        yield Sample((x,), {"max": mx}, "tensor max only")
        yield Sample((x, mn, mx), {}, "positional tensor bounds")
        yield Sample(
            (X((2, 3)),), {"min": const(-1.0, dtype), "max": const(1.5, dtype)}, "0d tensor bounds"
        )
    elif dtype in I:
        x = X((3, 4))
        mn, mx = const([[-2], [0], [1]], dtype), const([[3, 4, 2, 6]], dtype)
        yield Sample((x,), {"min": mn, "max": mx}, "tensor bounds (bcast)")
        yield Sample((x,), {"min": -1.5, "max": 2.5}, "float bounds: promotes")


def _relu_samples(dtype, rng):
    yield from unary_samples(away=(0.0,))(dtype, rng)
    if is_float(dtype):
        yield Sample(
            (const([[-1.0, 0.0, 2.0], [0.0, -0.0, 0.5]], dtype),),
            {},
            "zeros: grad 0",
            gradcheck=False,
        )


def _where_samples(dtype, rng):
    def C(shape, layout=None):
        return make(rng, shape, "bool", layout=layout)

    def X(shape, layout=None, dt=dtype):
        return make(rng, shape, dt, layout=layout)

    yield Sample((C((3, 4)), X((3, 4)), X((3, 4))), {}, "same")
    yield Sample((C((3, 1)), X((1, 4)), X((3, 4))), {}, "bcast all")
    yield Sample((C((2, 3)), X((2, 3)), X(())), {}, "0d other")
    yield Sample((C((3, 4), "t"), X((3, 4), "step"), X((3, 4), "t")), {}, "non-contiguous")
    yield Sample((C((0, 3)), X((0, 3)), X((1, 3))), {}, "empty")
    if dtype != "bool":
        scalar = 1.5 if is_float(dtype) else 2
        yield Sample((C((2, 3)), X((2, 3)), scalar), {}, "scalar other")
        yield Sample((C((2, 3)), scalar, X((2, 3))), {}, "scalar input")
    if not is_float(dtype):
        yield Sample((C((2, 3)), X((2, 3)), 1.5), {}, "float scalar: promotes")
    if is_float(dtype):
        yield Sample((C((2, 3)), X((2, 3)), X((2, 3), dt="int64")), {}, "float x int64")
    if dtype == "float32":
        yield Sample((C((2, 3)), 1.5, -2.0), {}, "two float scalars")
        yield Sample((C((2, 3)), 1, 0), {}, "two int scalars")


def _masked_fill_samples(dtype, rng):
    def M(shape, layout=None):
        return make(rng, shape, "bool", layout=layout)

    def X(shape, layout=None):
        return make(rng, shape, dtype, layout=layout)

    value = -1.5 if is_float(dtype) else (True if dtype == "bool" else 7)
    yield Sample((X((3, 4)), M((3, 4)), value), {}, "same")
    yield Sample((X((3, 4)), M((1, 4)), value), {}, "bcast mask")
    yield Sample((X((3, 4), "t"), M((3, 4), "step"), value), {}, "non-contiguous")
    yield Sample((X(()), M(()), value), {}, "0d")
    yield Sample((X((0, 3)), M((0, 3)), value), {}, "empty")
    yield Sample((X((3, 4)), M((3, 4)), X(())), {}, "0d tensor value")
    if is_float(dtype):
        yield Sample((X((2, 3)), M((2, 3)), 2), {}, "int value")
    elif dtype != "bool":
        yield Sample((X((2, 3)), M((2, 3)), 2.7), {}, "float value: truncated")


def _lerp_samples(dtype, rng):
    def X(shape, layout=None):
        return make(rng, shape, dtype, layout=layout)

    yield Sample((X((3, 4)), X((3, 4)), 0.3), {}, "scalar weight")
    yield Sample((X((3, 4)), X((3, 4)), make(rng, (3, 4), dtype, 0, 1)), {}, "tensor weight")
    yield Sample((X((3, 1)), X((1, 4)), make(rng, (3, 4), dtype, 0, 1)), {}, "bcast")
    yield Sample((X((3, 4), "t"), X((3, 4), "step"), 0.7), {}, "non-contiguous")
    yield Sample((X(()), X(()), make(rng, (), dtype, 0, 1)), {}, "0d")
    yield Sample((X((2, 3)), X((2, 3)), 1.5), {}, "extrapolate")


# ---- reductions -----------------------------------------------------------------------------


def reduction_samples(low=-3.0, high=3.0, *, dims=True, multi=True, distinct=False):
    """Full reductions, one dim, several dims, keepdim, 0-d, empty and transposed inputs."""

    def gen(dtype, rng):
        def X(shape, layout=None):
            lo, hi = (low, high) if is_float(dtype) or not distinct else (-50, 50)
            return make(rng, shape, dtype, lo, hi, layout=layout, distinct=distinct)

        yield Sample((X((3, 4)),), {}, "full")
        yield Sample((X(()),), {}, "0d full")
        yield Sample((X((5,)),), {}, "1d full")
        if dims:
            yield Sample((X((2, 3, 3)),), {"dim": 1}, "dim=1")
            yield Sample((X((2, 3, 3)),), {"dim": -1, "keepdim": True}, "dim=-1 keepdim")
            yield Sample((X((3, 4)),), {"dim": 0}, "dim=0")
            yield Sample((X((3, 4), "t"),), {"dim": 0}, "transposed dim=0")
            yield Sample((X((3, 4), "step"),), {"dim": 1, "keepdim": True}, "step-sliced")
            yield Sample((X(()),), {"dim": 0}, "0d dim=0")
            if multi:
                yield Sample((X((2, 3, 3)),), {"dim": (0, 2)}, "dim=(0,2)")
                yield Sample(
                    (X((2, 3, 3)),), {"dim": (0, -1), "keepdim": True}, "dim=(0,-1) keepdim"
                )
        else:
            yield Sample((X((3, 4), "t"),), {}, "transposed full")

    return gen


def _sum_samples(dtype, rng):
    yield from reduction_samples()(dtype, rng)
    yield Sample((make(rng, (0, 3), dtype),), {}, "empty full")
    yield Sample((make(rng, (0, 3), dtype),), {"dim": 0}, "empty dim=0")
    yield Sample((make(rng, (2, 0), dtype),), {"dim": 1, "keepdim": True}, "empty dim=1")
    yield Sample((make(rng, (2, 3, 3), dtype),), {"dim": ()}, "dim=()")
    if dtype in ("float32", "int32", "bool"):
        yield Sample((make(rng, (3, 4), dtype),), {"dtype": "float64"}, "dtype=float64")


def _mean_samples(dtype, rng):
    yield from reduction_samples()(dtype, rng)
    yield Sample((make(rng, (0, 3), dtype),), {"dim": 1}, "empty rows dim=1")
    yield Sample((make(rng, (0, 3), dtype),), {}, "empty full: nan", grad=False)
    big = const([[60000.0, 60000.0, 100.0], [200.0, -200.0, 250.0]], dtype)
    yield Sample((big,), {"dim": 1}, "sum past float16's range")
    yield Sample((make(rng, (2, 3, 3), dtype),), {"dim": ()}, "dim=(): all")
    if dtype == "float32":
        yield Sample((make(rng, (3, 4), dtype),), {"dim": 1, "dtype": "float64"}, "dtype=float64")


def _prod_samples(dtype, rng):
    yield from reduction_samples(-2.0, 2.0, multi=False)(dtype, rng)
    if dtype == "bool":
        return
    rows = const([[1.5, 2.0, 0.0, -3.0], [0.0, 2.0, 0.0, 1.25], [1.0, -2.0, 0.5, 3.0]], dtype)
    yield Sample((rows,), {"dim": 1}, "rows: one zero, two zeros, none")
    yield Sample((rows,), {"dim": 0}, "cols with zeros")
    yield Sample((rows,), {"dim": 1, "keepdim": True}, "zeros keepdim")
    yield Sample((const([[1.5, 2.0], [0.0, -3.0]], dtype),), {}, "full, one zero")
    yield Sample((const([[1.5, 0.0], [0.0, -3.0]], dtype),), {}, "full, two zeros")
    yield Sample(
        (const([[1.5, 0.0], [0.0, -3.0]], dtype, layout="t"),), {"dim": 0}, "transposed zeros"
    )
    yield Sample((make(rng, (0, 3), dtype),), {"dim": 0}, "empty: ones")
    if dtype in ("int32", "float32"):
        yield Sample((make(rng, (3, 4), dtype),), {"dim": 1, "dtype": "float64"}, "dtype=float64")


def _extreme_samples(dtype, rng):
    """max/min: full (ties split the gradient), with dim -> (values, indices), keepdim."""
    hi = 3.0 if is_float(dtype) else 50

    def X(shape, layout=None):
        return make(rng, shape, dtype, -hi, hi, layout=layout, distinct=dtype != "bool")

    yield Sample((X((3, 4)),), {}, "full")
    yield Sample((X(()),), {}, "0d full")
    yield Sample((X((3, 4), "t"),), {}, "transposed full")
    if dtype == "bool":
        return
    yield Sample((X((3, 4)), 1), {}, "dim=1")
    yield Sample((X((2, 3, 3)), -1), {"keepdim": True}, "dim=-1 keepdim")
    yield Sample((X((3, 4)),), {"dim": 0}, "dim=0 kw")
    yield Sample((X((3, 4), "t"), 0), {}, "transposed dim=0")
    yield Sample((X((3, 3), "step"), 1), {}, "step-sliced dim=1")
    yield Sample((X(()), 0), {}, "0d dim=0")
    ties = const([[1, 3, 3, 0], [2, 2, 2, -1], [-5, -1, -5, -5]], dtype)
    yield Sample((ties,), {}, "full ties", gradcheck=False)
    yield Sample((ties, 1), {}, "dim=1 ties: first index", gradcheck=False)
    yield Sample((X((3, 4)), X((3, 4))), {}, "binary form")
    if is_float(dtype):
        nans = const([[1.0, np.nan, 3.0, np.nan], [2.0, 2.5, -1.0, 0.0]], dtype)
        yield Sample((nans,), {}, "nan full", grad=False)
        yield Sample((nans, 1), {}, "nan dim=1", grad=False)


def _amax_samples(dtype, rng):
    yield from reduction_samples(distinct=dtype != "bool")(dtype, rng)
    if dtype == "bool":
        return
    ties = const([[1, 3, 3, 0], [2, 2, 2, -1], [-5, -1, -5, -5]], dtype)
    yield Sample((ties,), {"dim": 1}, "ties dim=1", gradcheck=False)
    yield Sample((ties,), {"dim": 0, "keepdim": True}, "ties dim=0", gradcheck=False)
    yield Sample((ties,), {}, "ties full", gradcheck=False)
    yield Sample((ties,), {"dim": (0, 1)}, "ties dim=(0,1)", gradcheck=False)
    if is_float(dtype):
        nans = const([[1.0, np.nan, 3.0], [2.0, 2.5, -1.0]], dtype)
        yield Sample((nans,), {"dim": 1}, "nan dim=1", grad=False)


def _arg_samples(dtype, rng):
    hi = 3.0 if is_float(dtype) else 50

    def X(shape, layout=None):
        return make(rng, shape, dtype, -hi, hi, layout=layout, distinct=True)

    yield Sample((X((3, 4)),), {}, "full")
    yield Sample((X(()),), {}, "0d")
    yield Sample((X((3, 4)),), {"dim": 1}, "dim=1")
    yield Sample((X((2, 3, 3)),), {"dim": -2, "keepdim": True}, "dim=-2 keepdim")
    yield Sample((X((3, 4), "t"),), {"dim": 0}, "transposed dim=0")
    yield Sample((X((3, 4), "step"),), {"dim": 1}, "step-sliced")
    yield Sample((X((3, 4)),), {"keepdim": True}, "full keepdim")
    yield Sample((X(()),), {"dim": 0}, "0d dim=0")
    ties = const([[1, 3, 3, 0], [2, 2, 2, -1], [-5, -1, -5, -5]], dtype)
    yield Sample((ties,), {"dim": 1}, "ties: first index")
    yield Sample((ties,), {}, "ties full: first index")
    if is_float(dtype):
        nans = const([[1.0, np.nan, 3.0, np.nan], [2.0, 2.5, -1.0, 0.0]], dtype)
        yield Sample((nans,), {"dim": 1}, "nan wins")
        yield Sample((nans,), {}, "nan wins, full")


def _var_samples(dtype, rng):
    def X(shape, layout=None):
        return make(rng, shape, dtype, layout=layout)

    yield Sample((X((3, 4)),), {}, "full unbiased")
    yield Sample((X((3, 4)),), {"dim": 1}, "dim=1")
    yield Sample((X((2, 3, 3)),), {"dim": (0, 2), "keepdim": True}, "dims keepdim")
    yield Sample((X((3, 4)),), {"dim": 0, "correction": 0}, "correction=0")
    yield Sample((X((3, 4)),), {"correction": 0}, "full correction=0")
    yield Sample((X((3, 4)),), {"dim": 1, "unbiased": False}, "unbiased=False")
    yield Sample((X((3, 4)),), {"dim": 1, "correction": 2}, "correction=2")
    yield Sample((X((3, 4), "t"),), {"dim": 0}, "transposed")
    yield Sample((X((3, 4), "step"),), {"dim": -1, "keepdim": True}, "step-sliced")
    yield Sample((X((1, 3)),), {"dim": 0}, "one element per row: nan", grad=False)
    big = const([[600.0, -600.0, 100.0], [200.0, -200.0, 250.0]], dtype)
    yield Sample((big,), {"dim": 1}, "squares past float16's range")
    # torch reduces every dim for dim=() but its backward then divides by n - 1 = 0 (inf
    # gradients); ember's gradient is checked against finite differences instead
    yield Sample((X((2, 3, 3)),), {"dim": ()}, "dim=(): all", torch_grad=False)


def _logsumexp_samples(dtype, rng):
    def X(shape, layout=None):
        return make(rng, shape, dtype, layout=layout)

    yield Sample((X((3, 4)), 1), {}, "dim=1")
    yield Sample((X((3, 4)), 0), {"keepdim": True}, "dim=0 keepdim")
    yield Sample((X((2, 3, 3)), (0, 2)), {}, "dims")
    yield Sample((X((3, 4), "t"), 1), {}, "transposed")
    yield Sample((X(()), 0), {}, "0d")
    if is_float(dtype):
        big = const([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -999.5]], dtype)
        yield Sample((big, 1), {}, "large magnitudes")
        inf = const([[-np.inf, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]], dtype)
        yield Sample((inf, 1), {}, "-inf entries, all -inf row", grad=False)


def _cumsum_samples(dtype, rng):
    def X(shape, layout=None):
        return make(rng, shape, dtype, layout=layout)

    yield Sample((X((3, 4)), 1), {}, "dim=1")
    yield Sample((X((3, 4)), 0), {}, "dim=0")
    yield Sample((X((2, 3, 4)), -1), {}, "dim=-1")
    yield Sample((X((3, 4), "t"), 1), {}, "transposed")
    yield Sample((X((5,)), 0), {}, "1d")
    yield Sample((X(()), 0), {}, "0d")
    yield Sample((X((0, 3)), 1), {}, "empty")


def _all_any_samples(dtype, rng):
    def X(shape, layout=None, p=0.3):
        t = make(rng, shape, dtype, -2, 2, layout=layout)
        if dtype != "bool":
            t.data[rng.random(t.data.shape) < p] = 0
        return t

    yield Sample((X((3, 4)),), {}, "full")
    yield Sample((X((3, 4), p=0.0),), {}, "full, no zeros")
    yield Sample((X((3, 4)),), {"dim": 1}, "dim=1")
    yield Sample((X((2, 3, 3)),), {"dim": 0, "keepdim": True}, "dim=0 keepdim")
    yield Sample((X((3, 4), "t"),), {"dim": 0}, "transposed")
    yield Sample((X(()),), {}, "0d")
    yield Sample((X((0, 3)),), {}, "empty full")
    yield Sample((X((0, 3)),), {"dim": 0}, "empty dim=0")


# ---- linear algebra ------------------------------------------------------------------------


def _lin(dtype, rng, *pairs):
    for (sa, la), (sb, lb), desc in pairs:
        lo, hi = (-2.0, 2.0) if is_float(dtype) else (-5, 5)
        yield Sample(
            (make(rng, sa, dtype, lo, hi, layout=la), make(rng, sb, dtype, lo, hi, layout=lb)),
            {},
            desc,
        )


def _matmul_samples(dtype, rng):
    yield from _lin(
        dtype,
        rng,
        (((4,), None), ((4,), None), "1d@1d"),
        (((3, 4), None), ((4,), None), "2d@1d"),
        (((4,), None), ((4, 2), None), "1d@2d"),
        (((3, 4), None), ((4, 2), None), "2d@2d"),
        (((2, 2, 3), None), ((3, 2), None), "3d@2d bcast"),
        (((2, 3), None), ((2, 3, 2), None), "2d@3d bcast"),
        (((2, 2, 3), None), ((3,), None), "3d@1d"),
        (((3,), None), ((2, 3, 2), None), "1d@3d"),
        (((2, 1, 2, 3), None), ((1, 2, 3, 2), None), "4d@4d bcast"),
        (((3, 4), "t"), ((4, 2), "step"), "non-contiguous"),
        (((2, 3, 2), "swap"), ((2, 2, 3), "swap"), "swapped batches"),
        (((3, 0), None), ((0, 2), None), "empty inner dim"),
    )


def _mm_samples(dtype, rng):
    yield from _lin(
        dtype,
        rng,
        (((3, 4), None), ((4, 2), None), "mm"),
        (((3, 4), "t"), ((4, 2), "t"), "transposed"),
        (((3, 4), "step"), ((4, 2), None), "step-sliced"),
        (((3, 0), None), ((0, 2), None), "empty inner dim"),
    )


def _bmm_samples(dtype, rng):
    yield from _lin(
        dtype,
        rng,
        (((2, 3, 2), None), ((2, 2, 3), None), "bmm"),
        (((2, 3, 2), "swap"), ((2, 2, 3), "swap"), "swapped"),
        (((2, 2, 3), "step"), ((2, 3, 2), None), "step-sliced"),
    )


def _mv_samples(dtype, rng):
    yield from _lin(
        dtype,
        rng,
        (((3, 4), None), ((4,), None), "mv"),
        (((3, 4), "t"), ((4,), "step"), "non-contiguous"),
    )


def _dot_samples(dtype, rng):
    yield from _lin(
        dtype,
        rng,
        (((5,), None), ((5,), None), "dot"),
        (((4,), "step"), ((4,), None), "step-sliced"),
        (((0,), None), ((0,), None), "empty"),
    )


def _outer_samples(dtype, rng):
    yield from _lin(
        dtype,
        rng,
        (((3,), None), ((4,), None), "outer"),
        (((3,), "step"), ((2,), None), "step-sliced"),
        (((0,), None), ((2,), None), "empty"),
    )


# ---- shape ops -----------------------------------------------------------------------------


def _shape_gen(*cases):
    """Samples ``(shape, layout, args, kwargs, desc)``: one input plus the op's arguments."""

    def gen(dtype, rng):
        for shape, layout, args, kwargs, desc in cases:
            yield Sample((make(rng, shape, dtype, layout=layout), *args), dict(kwargs), desc)

    return gen


_reshape_samples = _shape_gen(
    ((3, 4), None, ((2, 6),), {}, "tuple"),
    ((3, 4), None, (2, 2, 3), {}, "varargs"),
    ((3, 4), None, (-1,), {}, "-1"),
    ((2, 3, 2), None, (3, -1), {}, "infer"),
    ((3, 4), "t", (2, 6), {}, "transposed (copies)"),
    ((3, 4), "step", (-1,), {}, "step-sliced"),
    ((), None, (1, 1), {}, "0d"),
    ((1,), None, ((),), {}, "to 0d"),
    ((0, 3), None, (3, 0), {}, "empty"),
)
_view_samples = _shape_gen(
    ((3, 4), None, (2, 6), {}, "varargs"),
    ((3, 4), None, (-1,), {}, "-1"),
    ((2, 3, 2), None, ((6, 2),), {}, "tuple"),
    ((3, 4), "t", (3, 4), {}, "transposed, same shape"),
    ((3, 4), "t", (3, 2, 2), {}, "transposed, split the strided dim"),
    ((), None, (1,), {}, "0d"),
)
_permute_samples = _shape_gen(
    ((2, 3, 4), None, (2, 0, 1), {}, "varargs"),
    ((2, 3, 4), None, ((1, 2, 0),), {}, "tuple"),
    ((2, 3, 4), None, (-1, 0, -2), {}, "negative"),
    ((3, 4), "t", (1, 0), {}, "transposed"),
    ((), None, ((),), {}, "0d"),
)
_transpose_samples = _shape_gen(
    ((3, 4), None, (0, 1), {}, "2d"),
    ((2, 3, 4), None, (-1, -3), {}, "negative"),
    ((2, 3, 4), None, (1, 1), {}, "same dim"),
    ((3, 4), "step", (0, 1), {}, "step-sliced"),
    ((), None, (0, -1), {}, "0d"),
)
_t_samples = _shape_gen(
    ((3, 4), None, (), {}, "2d"),
    ((4,), None, (), {}, "1d"),
    ((), None, (), {}, "0d"),
    ((3, 4), "t", (), {}, "transposed"),
)
_expand_samples = _shape_gen(
    ((3, 1), None, (3, 4), {}, "varargs"),
    ((3, 1), None, ((2, 3, 4),), {}, "new leading dim"),
    ((1, 4), None, (3, -1), {}, "-1 keeps"),
    ((), None, (2, 3), {}, "0d"),
    ((3, 1), "t", (3, 4), {}, "transposed"),
    ((3, 4), None, (3, 4), {}, "same"),
    ((1, 3), None, (0, 3), {}, "to empty"),
)
_squeeze_samples = _shape_gen(
    ((1, 3, 1), None, (), {}, "all"),
    ((1, 3, 1), None, (0,), {}, "dim 0"),
    ((1, 3, 1), None, (1,), {}, "non-1 dim: no-op"),
    ((1, 3, 1), None, ((0, 2),), {}, "dims tuple"),
    ((1, 3, 1), None, (), {"dim": -1}, "dim=-1"),
    ((), None, (), {}, "0d"),
    ((3, 1), "t", (0,), {}, "transposed"),
)
_unsqueeze_samples = _shape_gen(
    ((3, 4), None, (0,), {}, "front"),
    ((3, 4), None, (-1,), {}, "back"),
    ((3, 4), None, (1,), {}, "middle"),
    ((), None, (0,), {}, "0d"),
    ((3, 4), "t", (1,), {}, "transposed"),
)
_flatten_samples = _shape_gen(
    ((2, 3, 2), None, (), {}, "all"),
    ((2, 3, 2), None, (1,), {}, "start=1"),
    ((2, 3, 2, 1), None, (), {"start_dim": 1, "end_dim": 2}, "middle"),
    ((), None, (), {}, "0d"),
    ((3, 4), "t", (), {}, "transposed"),
)
_unflatten_samples = _shape_gen(
    ((2, 6), None, (1, (2, 3)), {}, "dim 1"),
    ((6, 2), None, (0, (-1, 2)), {}, "-1"),
    ((2, 6), None, (-1, (3, 1, 2)), {}, "negative dim"),
    ((4, 3), "t", (0, (2, 2)), {}, "transposed"),
)
_contiguous_samples = _shape_gen(
    ((3, 4), None, (), {}, "already"),
    ((3, 4), "t", (), {}, "transposed"),
    ((2, 2, 3), "swap", (), {}, "swapped"),
    ((3, 3), "step", (), {}, "step-sliced"),
    ((), None, (), {}, "0d"),
)
_clone_samples = _contiguous_samples
_split_samples = _shape_gen(
    ((5, 2), None, (2,), {}, "size 2 (uneven)"),
    ((3, 4), None, ([1, 3],), {"dim": 1}, "sections"),
    ((3, 4), None, (4,), {"dim": -1}, "one piece"),
    ((3, 4), "t", (2,), {"dim": 1}, "transposed"),
    ((0, 2), None, (2,), {}, "empty"),
    ((4, 2), None, ([0, 3, 1],), {}, "empty section"),
)
_chunk_samples = _shape_gen(
    ((5, 2), None, (3,), {}, "5 into 3"),
    ((6, 2), None, (4,), {}, "6 into 4: 3 chunks"),
    ((3, 4), None, (2,), {"dim": 1}, "dim=1"),
    ((3, 4), "t", (3,), {"dim": 0}, "transposed"),
)
_unbind_samples = _shape_gen(
    ((3, 2), None, (), {}, "dim 0"),
    ((2, 3), None, (1,), {}, "dim 1"),
    ((3, 4), "t", (), {"dim": -1}, "transposed"),
)
_narrow_samples = _shape_gen(
    ((3, 4), None, (1, 1, 2), {}, "dim 1"),
    ((3, 4), None, (0, -2, 2), {}, "negative start"),
    ((3, 4), None, (0, 1, 0), {}, "empty"),
    ((3, 4), "t", (0, 0, 3), {}, "transposed"),
)
_select_samples = _shape_gen(
    ((3, 4), None, (0, 1), {}, "dim 0"),
    ((3, 4), None, (-1, -1), {}, "negative"),
    ((2, 3, 2), None, (1, 2), {}, "3d"),
    ((3, 4), "t", (1, 0), {}, "transposed"),
)
_repeat_samples = _shape_gen(
    ((2, 3), None, (2, 1), {}, "2d"),
    ((2, 3), None, (2, 1, 2), {}, "new leading dim"),
    ((3,), None, ((2, 2),), {}, "tuple"),
    ((), None, (3,), {}, "0d"),
    ((3, 2), "t", (1, 2), {}, "transposed"),
    ((2, 3), None, (0, 2), {}, "zero repeats"),
)
_flip_samples = _shape_gen(
    ((3, 4), None, ((0,),), {}, "dim 0"),
    ((2, 3, 2), None, ((0, 2),), {}, "dims"),
    ((3, 4), None, ((-1,),), {}, "negative"),
    ((3, 4), "t", ((0, 1),), {}, "transposed"),
)
_tri_samples = _shape_gen(
    ((3, 4), None, (), {}, "2d"),
    ((4, 3), None, (1,), {}, "diagonal=1"),
    ((3, 4), None, (), {"diagonal": -1}, "diagonal=-1"),
    ((2, 3, 3), None, (), {}, "batched"),
    ((3, 4), "t", (2,), {}, "transposed"),
    ((0, 3), None, (), {}, "empty"),
    ((3, 4), None, (5,), {}, "diagonal past the end"),
    ((3, 4), None, (-5,), {}, "diagonal before the start"),
)


def _write_through_view(m, x, v, where: str):
    """An in-place write through a view of a computed tensor (``slice_scatter``)."""
    y = x * 1
    if where == "slice":
        y[1:3, ::2] = v
    elif where == "transposed row":
        y.t()[1] = v
    else:
        y[:, 0] += v
    return y


def _write_through_view_samples(dtype, rng):
    for where, shape in (("slice", (2, 2)), ("transposed row", (3,)), ("column add", (3,))):
        x, v = make(rng, (3, 4), dtype), make(rng, shape, dtype)
        yield Sample((x, v, where), {}, where)


def _cat_samples(dtype, rng):
    def X(shape, layout=None, dt=dtype):
        return make(rng, shape, dt, layout=layout)

    yield Sample(([X((2, 3)), X((1, 3)), X((3, 3))],), {}, "dim 0")
    yield Sample(([X((2, 3)), X((2, 1))],), {"dim": 1}, "dim 1")
    yield Sample(([X((2, 3)), X((2, 2))], -1), {}, "dim -1 positional")
    yield Sample(([X((2, 3), "t"), X((2, 2), "step")],), {"dim": 1}, "non-contiguous")
    yield Sample(([X((2, 3))],), {}, "one tensor")
    yield Sample(([X((2, 3)), X((0, 3))],), {}, "empty part")
    yield Sample(([X((2, 3)), X((0,))],), {}, "legacy empty 1-d")
    if is_float(dtype):
        yield Sample(([X((2, 3)), X((1, 3), dt="int64")],), {}, "promotes")
    else:
        yield Sample(
            ([X((2, 3)), X((1, 3), dt="bool"), X((1, 3), dt="int32")],),
            {},
            "promotes ints and bools",
        )


def _stack_samples(dtype, rng):
    def X(shape, layout=None):
        return make(rng, shape, dtype, layout=layout)

    yield Sample(([X((2, 3)), X((2, 3)), X((2, 3))],), {}, "dim 0")
    yield Sample(([X((2, 3)), X((2, 3))],), {"dim": 2}, "dim 2")
    yield Sample(([X((2, 3)), X((2, 3))], -2), {}, "dim -2")
    yield Sample(([X((2, 3), "t"), X((2, 3), "step")],), {"dim": 1}, "non-contiguous")
    yield Sample(([X(()), X(())],), {}, "0d")
    yield Sample(([X((0, 2)), X((0, 2))],), {"dim": 1}, "empty")


def _cast_samples(dtype, rng):
    lo, hi = (-3.0, 3.0) if is_float(dtype) else (-100, 100)
    for shape, layout, desc in UNARY_SHAPES:
        yield Sample((make(rng, shape, dtype, lo, hi, layout=layout),), {}, desc)
    if is_float(dtype):
        x = const([[0.0, -0.0, 0.25, -0.75], [2.5, -2.5, 1e-3, 1.0]], dtype)
        yield Sample((x,), {}, "truncation and zeros")


def _reflected_samples(dtype, rng, *, low=-3.0, high=3.0, away=None, scalars=(2.5, 3)):
    for s in scalars:
        if isinstance(s, float) and not is_float(dtype):
            continue
        x = make(rng, (3, 4), dtype, low, high, away=away)
        yield Sample((s, x), {}, f"{type(s).__name__} scalar")
        yield Sample(
            (s, make(rng, (3, 4), dtype, low, high, layout="t", away=away)), {}, "transposed"
        )
        yield Sample((s, make(rng, (), dtype, low, high, away=away)), {}, "0d")


def _alpha_extra(dtype, rng):
    """add/sub's ``alpha`` (ints: an int alpha; floats also a float alpha and a scalar)."""
    if dtype == "bool":
        return
    yield Sample((make(rng, (3, 4), dtype), make(rng, (3, 4), dtype)), {"alpha": 2}, "alpha=2")
    yield Sample((make(rng, (3, 1), dtype), make(rng, (4,), dtype)), {"alpha": -3}, "alpha bcast")
    if is_float(dtype):
        a, b = make(rng, (2, 3), dtype), make(rng, (2, 3), dtype)
        yield Sample((a, b), {"alpha": 0.5}, "alpha=0.5")
        yield Sample((make(rng, (2, 3), dtype), 1.5), {"alpha": 2}, "scalar, alpha=2")


def _saturated(dtype, rng):
    if is_float(dtype):
        x = const([[-100.0, -20.0, 20.0, 100.0], [-12.0, -10.0, -9.0, 12.0]], dtype)
        yield Sample((x,), {}, "saturated")


def _erf_extra(dtype, rng):
    if is_float(dtype):
        x = const([[-6.0, -2.5, -1e-3, 1e-8], [0.5, 1.5, 3.9, 5.5]], dtype)
        yield Sample((x,), {}, "tails and tiny")


# ---- the table ------------------------------------------------------------------------------


def _fn(name: str):
    """``module.name(*args, **kwargs)``."""

    def call(m, *args, **kwargs):
        return getattr(m, name)(*args, **kwargs)

    call.__name__ = name
    return call


def _method(name: str):
    """``args[0].name(*args[1:], **kwargs)``."""

    def call(m, x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)

    call.__name__ = name
    return call


def _with_dtype(call):
    """Turn a ``dtype="float64"`` kwarg into ``module.float64``."""

    def wrapped(m, *args, **kwargs):
        if isinstance(kwargs.get("dtype"), str):
            kwargs = {**kwargs, "dtype": getattr(m, kwargs["dtype"])}
        return call(m, *args, **kwargs)

    return wrapped


def _unary(name, dtypes=ALL, low=-3.0, high=3.0, *, away=None, margin=0.1, extra=None, **kw):
    gen = unary_samples(low, high, away=away, margin=margin, extra=extra)
    return OpInfo(name, _fn(name), gen, dtypes, **kw)


def _binary(name, dtypes=ALL, *, diff=True, **sample_kw):
    return OpInfo(name, _fn(name), binary_samples(**sample_kw), dtypes, differentiable=diff)


NONZERO = dict(b_away=(0.0,), b=(-3.0, 3.0))


def _by_zero(dtype, rng):
    if is_float(dtype):
        x = const([[1.0, -1.0, 0.0], [2.5, -0.0, np.inf]], dtype)
        yield Sample((x, const([0.0, -0.0, 0.0], dtype)), {}, "by zero", grad=False)
        x = const([[np.inf, 2.0, np.nan, -2.0], [-2.0, 2.0, 5.5, -5.5]], dtype)
        y = const([[1.5, np.inf, 2.0, np.inf], [-np.inf, -np.inf, np.inf, -np.inf]], dtype)
        yield Sample((x, y), {}, "inf and nan", grad=False)
        yield Sample((x, np.inf), {}, "inf scalar", grad=False)
        yield Sample((x, -np.inf), {}, "-inf scalar", grad=False)


INTEGERS = tuple(float(v) for v in range(-6, 7))
HALVES = tuple(v + 0.5 for v in range(-6, 6))
FLOAT_UNARY = F + H + U + ("int64", "bool")

OPS: list[OpInfo] = [
    # arithmetic
    _binary("add", ALL + U, scalars=(2.5, 2, True), extra=_alpha_extra),
    _binary("sub", F + I + H + U, extra=_alpha_extra),
    _binary("mul", ALL + U, scalars=(2.5, 2, True)),
    _binary("div", F + I + H + U, **NONZERO, scalars=(2.5, -2), extra=_div_extra),
    OpInfo("true_divide", _fn("true_divide"), binary_samples(**NONZERO), F + ("int64",)),
    # torch: "derivative for aten::floor_divide is not implemented"
    _binary(
        "floor_divide",
        F + I + U,
        diff=False,
        a=(-9.0, 9.0),
        b_away=(0.0,),
        scalars=(2.5, -2, 3),
        extra=_by_zero,
    ),
    _binary(
        "remainder", F + I + U, a=(-9.0, 9.0), b_away=(0.0,), scalars=(2.5, -2, 3), extra=_by_zero
    ),
    _binary("fmod", F + I + U, a=(-9.0, 9.0), b_away=(0.0,), scalars=(2.5, -2, 3), extra=_by_zero),
    OpInfo("pow", _fn("pow"), _pow_samples, F + I + H + B + U),
    _binary("maximum", ALL + U, scalars=(), extra=_ties_extra),
    _binary("minimum", ALL + U, scalars=(), extra=_ties_extra),
    # comparisons and logic
    *(
        _binary(n, ALL + U, diff=False, scalars=(1.5, 1, True), extra=_compare_extra)
        for n in ("eq", "ne", "lt", "le", "gt", "ge")
    ),
    *(
        OpInfo(n, _fn(n), _logical_samples, ALL + U, differentiable=False)
        for n in ("logical_and", "logical_or", "logical_xor")
    ),
    OpInfo("logical_not", _fn("logical_not"), _logical_not_samples, ALL + U, differentiable=False),
    *(
        OpInfo(n, _fn(n), _bitwise_samples, I + B + U + ("int8",), differentiable=False)
        for n in ("bitwise_and", "bitwise_or", "bitwise_xor")
    ),
    *(
        OpInfo(n, _fn(n), _shift_samples, I + U + ("int8",), differentiable=False)
        for n in ("bitwise_left_shift", "bitwise_right_shift")
    ),
    OpInfo(
        "bitwise_not",
        _fn("bitwise_not"),
        unary_samples(-50, 50),
        I + B + U + ("int8",),
        differentiable=False,
    ),
    # unary math
    _unary("neg", F + I + H + U + ("int8",)),
    _unary("abs", F + I + H + U + ("int8",), away=(0.0,)),
    _unary("exp", FLOAT_UNARY),
    _unary("exp2", FLOAT_UNARY),
    _unary("log", FLOAT_UNARY, 0.1, 4.0),
    _unary("log2", FLOAT_UNARY, 0.1, 4.0),
    _unary("log10", FLOAT_UNARY, 0.1, 4.0),
    _unary("sqrt", FLOAT_UNARY, 0.1, 4.0),
    _unary("rsqrt", FLOAT_UNARY, 0.1, 4.0),
    _unary("sin", FLOAT_UNARY),
    _unary("cos", FLOAT_UNARY),
    _unary("tan", F + H + ("int64",), -1.2, 1.2),
    _unary("tanh", FLOAT_UNARY, extra=_saturated),
    _unary("sigmoid", FLOAT_UNARY, -5.0, 5.0, extra=_saturated),
    _unary("erf", FLOAT_UNARY, extra=_erf_extra),
    _unary("log1p", FLOAT_UNARY, -0.9, 3.0),
    _unary("expm1", FLOAT_UNARY),
    _unary("floor", F + I + H + U, away=INTEGERS),
    _unary("ceil", F + I + H + U, away=INTEGERS),
    _unary("trunc", F + I + H + U, away=INTEGERS),
    _unary("round", F + I + H + U, away=HALVES, extra=_round_extra),
    _unary("sign", F + I + H + B + U, away=(0.0,)),
    _unary("reciprocal", F + H + ("int64",), away=(0.0,), margin=0.3),
    _unary("square", F + I + H + U),
    OpInfo("relu", _fn("relu"), _relu_samples, F + I + H + U),
    OpInfo("clamp", _fn("clamp"), _clamp_samples, F + I + H + U),
    OpInfo("clip", _fn("clip"), _clamp_samples, F),
    OpInfo("where", _fn("where"), _where_samples, ALL + U),
    OpInfo("masked_fill", _method("masked_fill"), _masked_fill_samples, ALL + U),
    *(
        OpInfo(n, _fn(n), _isnan_samples, ALL + U, differentiable=False)
        for n in ("isnan", "isinf", "isfinite")
    ),
    OpInfo("lerp", _fn("lerp"), _lerp_samples, F + H),
    # Python operators with the scalar on the left (reflected)
    OpInfo("rsub", lambda m, s, x: s - x, lambda d, r: _reflected_samples(d, r), F + I),
    OpInfo("radd", lambda m, s, x: s + x, lambda d, r: _reflected_samples(d, r), F + I),
    OpInfo("rmul", lambda m, s, x: s * x, lambda d, r: _reflected_samples(d, r), F + I),
    OpInfo(
        "rtruediv", lambda m, s, x: s / x, lambda d, r: _reflected_samples(d, r, away=(0.0,)), F + I
    ),
    # torch implements no derivative for floor_divide nor for remainder(Scalar, Tensor)
    OpInfo(
        "rfloordiv",
        lambda m, s, x: s // x,
        lambda d, r: _reflected_samples(d, r, away=(0.0,)),
        F + I,
        differentiable=False,
    ),
    OpInfo(
        "rmod",
        lambda m, s, x: s % x,
        lambda d, r: _reflected_samples(d, r, away=(0.0,)),
        F + I,
        differentiable=False,
    ),
    OpInfo(
        "rpow",
        lambda m, s, x: s**x,
        lambda d, r: _reflected_samples(d, r, low=-2.0, high=2.0, scalars=(2.5, 2)),
        F,
    ),
    # reductions
    OpInfo("sum", _with_dtype(_fn("sum")), _sum_samples, F + I + B + H + U, kind="reduction"),
    OpInfo("mean", _with_dtype(_fn("mean")), _mean_samples, F + H, kind="reduction"),
    OpInfo("prod", _with_dtype(_fn("prod")), _prod_samples, F + I + B + H + U, kind="reduction"),
    OpInfo("max", _fn("max"), _extreme_samples, F + I + B + H + U, kind="reduction"),
    OpInfo("min", _fn("min"), _extreme_samples, F + I + B + H + U, kind="reduction"),
    OpInfo("amax", _fn("amax"), _amax_samples, F + I + B + H + U, kind="reduction"),
    OpInfo("amin", _fn("amin"), _amax_samples, F + I + B + H + U, kind="reduction"),
    OpInfo(
        "argmax", _fn("argmax"), _arg_samples, F + I + H + U, differentiable=False, kind="reduction"
    ),
    OpInfo(
        "argmin", _fn("argmin"), _arg_samples, F + I + H + U, differentiable=False, kind="reduction"
    ),
    OpInfo("var", _fn("var"), _var_samples, F + H, kind="reduction"),
    OpInfo("std", _fn("std"), _var_samples, F + H, kind="reduction"),
    OpInfo("logsumexp", _fn("logsumexp"), _logsumexp_samples, F + I + H, kind="reduction"),
    OpInfo("cumsum", _fn("cumsum"), _cumsum_samples, F + I + U + ("bool",), kind="reduction"),
    OpInfo("sort", _fn("sort"), _cumsum_samples, F + I + U, kind="reduction"),
    OpInfo("all", _fn("all"), _all_any_samples, ALL + U, differentiable=False, kind="reduction"),
    OpInfo("any", _fn("any"), _all_any_samples, ALL + U, differentiable=False, kind="reduction"),
    # linear algebra
    OpInfo("matmul", _fn("matmul"), _matmul_samples, F + H + U + ("int64",), kind="linalg"),
    OpInfo("matmul_operator", lambda m, a, b: a @ b, _matmul_samples, F, kind="linalg"),
    OpInfo("mm", _fn("mm"), _mm_samples, F + H + ("int64",), kind="linalg"),
    OpInfo("bmm", _fn("bmm"), _bmm_samples, F + H, kind="linalg"),
    OpInfo("mv", _fn("mv"), _mv_samples, F, kind="linalg"),
    OpInfo("dot", _fn("dot"), _dot_samples, F + ("int64",), kind="linalg"),
    OpInfo("outer", _fn("outer"), _outer_samples, F + ("int64",), kind="linalg"),
    # shape and views
    OpInfo(
        "reshape", _method("reshape"), _reshape_samples, F + U + ("int64", "bool"), kind="shape"
    ),
    OpInfo("view", _method("view"), _view_samples, F + ("int64", "bool"), kind="shape"),
    OpInfo("permute", _method("permute"), _permute_samples, F + U + ("int64",), kind="shape"),
    OpInfo("transpose", _fn("transpose"), _transpose_samples, F + ("int64",), kind="shape"),
    OpInfo("t", _fn("t"), _t_samples, F + ("int64",), kind="shape"),
    OpInfo("expand", _method("expand"), _expand_samples, F + ("int64", "bool"), kind="shape"),
    OpInfo("squeeze", _fn("squeeze"), _squeeze_samples, F + ("int64",), kind="shape"),
    OpInfo("unsqueeze", _fn("unsqueeze"), _unsqueeze_samples, F + ("int64",), kind="shape"),
    OpInfo("flatten", _fn("flatten"), _flatten_samples, F + ("int64",), kind="shape"),
    OpInfo("unflatten", _fn("unflatten"), _unflatten_samples, F + ("int64",), kind="shape"),
    OpInfo("contiguous", _method("contiguous"), _contiguous_samples, F + ("int64",), kind="shape"),
    OpInfo("clone", _fn("clone"), _clone_samples, F + U + ("int64", "bool"), kind="shape"),
    OpInfo("split", _fn("split"), _split_samples, F + ("int64",), kind="shape"),
    OpInfo("chunk", _fn("chunk"), _chunk_samples, F + ("int64",), kind="shape"),
    OpInfo("unbind", _fn("unbind"), _unbind_samples, F + ("int64",), kind="shape"),
    OpInfo("narrow", _fn("narrow"), _narrow_samples, F + ("int64",), kind="shape"),
    OpInfo("select", _fn("select"), _select_samples, F + ("int64",), kind="shape"),
    OpInfo("cat", _fn("cat"), _cat_samples, F + U + ("int64", "bool"), kind="shape"),
    OpInfo("stack", _fn("stack"), _stack_samples, F + U + ("int64", "bool"), kind="shape"),
    OpInfo("repeat", _method("repeat"), _repeat_samples, F + ("int64", "bool"), kind="shape"),
    OpInfo("flip", _fn("flip"), _flip_samples, F + U + ("int64",), kind="shape"),
    OpInfo(
        "write_through_view",
        _write_through_view,
        _write_through_view_samples,
        F + ("int64",),
        kind="shape",
    ),
    OpInfo("tril", _fn("tril"), _tri_samples, F + ("int64", "bool"), kind="shape"),
    OpInfo("triu", _fn("triu"), _tri_samples, F + ("int64", "bool"), kind="shape"),
    # dtype casts
    *(
        OpInfo(
            n,
            _method(n),
            _cast_samples,
            F + H + I + B + U,
            kind="cast",
            gradcheck=n not in ("float", "half"),
        )  # rounded outputs hide eps-sized steps
        for n in ("float", "double", "long", "int", "bool", "half", "byte", "short")
    ),
]


def op_by_name(name: str) -> OpInfo:
    for op in OPS:
        if op.name == name:
            return op
    raise KeyError(name)


assert len({op.name for op in OPS}) == len(OPS), "duplicate op names in the table"
