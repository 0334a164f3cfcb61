"""Miscellaneous tensor functions: einsum, repeat_interleave, roll, diag, diagonal, diag_embed,
trace, meshgrid, tril_indices, triu_indices, cumprod, nan_to_num, and inverse/hyperbolic
trigonometric functions composed from primitives.

Index bookkeeping (which elements a result takes) is done with numpy on shapes; the data always
flows through primitives (``gather``, ``slice``, ``pad``, ``matmul``...), so autograd and
tracing see every step.
"""

from __future__ import annotations

import math

import numpy as np

from ...ir import dtypes as D
from ...ir import ops as P
from ...ir.errors import DTypeError, ShapeError
from .. import trace_state
from ..dims import normalize_dim
from ..tensor import Tensor
from .common import as_tensor_operand, cast, describe, to_float
from .reduction import _accumulating
from .reduction import sum as _sum
from .shape import as_view

__all__ = [
    "einsum", "repeat_interleave", "roll", "diag", "diagonal", "diag_embed", "trace",
    "meshgrid", "tril_indices", "triu_indices", "cumprod", "nan_to_num", "sinh", "cosh",
    "asinh", "acosh", "atanh", "atan", "arctan", "asin", "acos", "atan2", "arctan2",
    "arcsinh", "arccosh", "arctanh", "arcsin", "arccos",
]  # fmt: skip


def _tensor(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(x).__name__}")
    return x


def _take(x, idx: np.ndarray, d: int):
    """``x`` indexed along ``d`` by the constant index array ``idx`` (a gather)."""
    out_shape = list(x.shape)
    out_shape[d] = len(idx)
    if 0 in out_shape:
        stops = tuple(0 if i == d else s for i, s in enumerate(x.shape))
        return P.slice(x, starts=(0,) * x.ndim, stops=stops, steps=(1,) * x.ndim)
    shape = [1] * x.ndim
    shape[d] = len(idx)
    index = Tensor._make(np.asarray(idx, dtype=np.int64).reshape(shape))
    return P.gather(x, P.broadcast_to(index, shape=tuple(out_shape)), axis=d)


def _fresh(x, input):
    return P.copy(x) if x is input else x


# ---- diagonals --------------------------------------------------------------------------------


def diagonal(input, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """The diagonal of the (dim1, dim2) planes, as a new last dimension."""
    x = _tensor(input, "diagonal")
    if x.ndim < 2:
        raise ShapeError("diagonal", f"expects a tensor of at least 2 dims, got {describe(x)}")
    d1, d2 = normalize_dim(dim1, x, "diagonal"), normalize_dim(dim2, x, "diagonal")
    if d1 == d2:
        raise ShapeError("diagonal", f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rest = [i for i in range(x.ndim) if i not in (d1, d2)]
    n, m = x.shape[d1], x.shape[d2]
    y = P.permute(x, dims=(*rest, d1, d2))
    lead = tuple(x.shape[i] for i in rest)
    y = P.reshape(y, shape=(*lead, n * m))
    if offset >= 0:
        count, start = max(0, min(n, m - offset)), offset
    else:
        count, start = max(0, min(n + offset, m)), -offset * m
    if count == 0:
        start, stop = 0, 0
    else:
        stop = start + (count - 1) * (m + 1) + 1
    k = len(lead)
    out = P.slice(y, starts=(0,) * k + (start,), stops=(*lead, stop), steps=(1,) * k + (m + 1,))
    # a view of ``input`` where the steps above share its storage (as in PyTorch), so a write
    # through it reaches ``input`` in autograd and in compiled graphs too
    return as_view(out, x, lambda a: np.diagonal(a, offset, d1, d2))


def _embed_last(x, offset: int):
    """(..., L) -> (..., n, n) with the last dim on diagonal ``offset`` (n = L + |offset|)."""
    L = x.shape[-1]
    n = L + abs(offset)
    lead = tuple(x.shape[:-1])
    if L == 0:
        return (
            P.pad(
                P.reshape(x, shape=(*lead, 0)),
                low=(0,) * x.ndim,
                high=(0,) * (x.ndim - 1) + (n * n,),
                interior=(0,) * x.ndim,
                value=_zero(x.dtype),
            )
            if n
            else P.reshape(x, shape=(*lead, 0, 0))
        )
    start = offset if offset >= 0 else -offset * n
    high = n * n - start - L - (L - 1) * n
    y = P.pad(
        x,
        low=(0,) * (x.ndim - 1) + (start,),
        high=(0,) * (x.ndim - 1) + (high,),
        interior=(0,) * (x.ndim - 1) + (n,),
        value=_zero(x.dtype),
    )
    return P.reshape(y, shape=(*lead, n, n))


def _zero(dtype):
    if dtype.is_floating_point:
        return 0.0
    if dtype is D.bool_:
        return False
    return 0


def diag(input, diagonal: int = 0):
    """A 1-d input becomes a square matrix with it on ``diagonal``; a 2-d input gives that
    diagonal."""
    x = _tensor(input, "diag")
    if x.ndim == 1:
        return _embed_last(x, diagonal)
    if x.ndim == 2:
        return globals()["diagonal"](x, diagonal, 0, 1)
    raise ShapeError("diag", f"matrix or a vector expected, got {describe(x)}")


def diag_embed(input, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """Matrices whose ``offset`` diagonals (in the (dim1, dim2) planes) hold the last dim."""
    x = _tensor(input, "diag_embed")
    nd = x.ndim + 1
    d1, d2 = normalize_dim(dim1, nd, "diag_embed"), normalize_dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise ShapeError("diag_embed", f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    y = _embed_last(x if x.ndim else P.reshape(x, shape=(1,)), offset)
    perm, others = [], iter(range(nd - 2))
    for i in range(nd):
        perm.append(nd - 2 if i == d1 else nd - 1 if i == d2 else next(others))
    if perm != list(range(nd)):
        y = P.permute(y, dims=tuple(perm))
    return y


def trace(input):
    """Sum of the main diagonal of a 2-d tensor (int64 for integer inputs)."""
    x = _tensor(input, "trace")
    if x.ndim != 2:
        raise ShapeError("trace", f"expected a matrix, but got tensor with dim {x.ndim}")
    return _sum(diagonal(x), None)


# ---- einsum -----------------------------------------------------------------------------------


def _parse_einsum(equation: str, operands):
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->", 1)
    else:
        lhs, rhs = eq, None
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ShapeError(
            "einsum",
            "more operands were provided than specified in the equation"
            if len(operands) > len(terms)
            else "fewer operands were provided than specified in the equation",
        )
    ell_ndim = 0
    parsed = []
    for t, x in zip(terms, operands):
        if t.count("...") > 1 or "." in t.replace("...", ""):
            raise ShapeError("einsum", f"invalid ellipsis in subscript {t!r}")
        for c in t.replace("...", ""):
            if not c.isalpha():
                raise ShapeError("einsum", f"invalid subscript given at index in {t!r}: {c!r}")
        if "..." in t:
            named = len(t) - 3
            k = x.ndim - named
            if k < 0:
                raise ShapeError(
                    "einsum",
                    f"the number of subscripts in the equation ({named}) is more than the "
                    f"number of dimensions ({x.ndim}) for operand {describe(x)}",
                )
            ell_ndim = max(ell_ndim, k)
        elif len(t) != x.ndim:
            raise ShapeError(
                "einsum",
                f"the number of subscripts in the equation ({len(t)}) does not match the "
                f"number of dimensions ({x.ndim}) for operand {describe(x)} and no ellipsis "
                "was given",
            )
        parsed.append(t)
    ell = [chr(0x3000 + i) for i in range(ell_ndim)]
    labels = []
    for t, x in zip(parsed, operands):
        if "..." in t:
            a, b = t.split("...")
            k = x.ndim - len(a) - len(b)
            labels.append(list(a) + ell[ell_ndim - k :] + list(b))
        else:
            labels.append(list(t))
    if rhs is None:
        counts: dict[str, int] = {}
        for ls in labels:
            for c in ls:
                counts[c] = counts.get(c, 0) + 1
        out = ell + sorted(c for c, n in counts.items() if n == 1 and c not in ell)
    else:
        if rhs.count("...") > 1 or "." in rhs.replace("...", ""):
            raise ShapeError("einsum", f"invalid ellipsis in output subscript {rhs!r}")
        a, _, b = rhs.partition("...")
        out = list(a) + (ell if "..." in rhs else []) + list(b)
        seen = set()
        for c in out:
            if c in seen:
                raise ShapeError("einsum", f"output subscript {c} appears more than once")
            seen.add(c)
            if not any(c in ls for ls in labels):
                raise ShapeError(
                    "einsum", f"output subscript {c} does not appear in the equation for any input"
                )
    return labels, out


def _dedupe(x, labels):
    """Take diagonals for labels repeated within one operand."""
    labels = list(labels)
    while True:
        for i, c in enumerate(labels):
            j = labels.index(c, i + 1) if labels.count(c) > 1 else -1
            if j > 0:
                if x.shape[i] != x.shape[j]:
                    raise ShapeError(
                        "einsum",
                        f"subscript {c} is repeated for operand {describe(x)} but the sizes "
                        f"don't match, {x.shape[i]} != {x.shape[j]}",
                    )
                x = diagonal(x, 0, i, j)
                labels = [lab for k, lab in enumerate(labels) if k not in (i, j)] + [c]
                break
        else:
            return x, labels


def _sum_labels(x, labels, drop):
    axes = tuple(i for i, c in enumerate(labels) if c in drop)
    if not axes:
        return x, labels
    return P.reduce_sum(x, axes=axes), [c for c in labels if c not in drop]


def _contract2(a, la, b, lb, keep):
    a, la = _sum_labels(a, la, {c for c in la if c not in lb and c not in keep})
    b, lb = _sum_labels(b, lb, {c for c in lb if c not in la and c not in keep})
    sa = dict(zip(la, a.shape))
    sb = dict(zip(lb, b.shape))
    batch = [c for c in la if c in lb and c in keep]
    contr = [c for c in la if c in lb and c not in keep]
    lonly = [c for c in la if c not in lb]
    ronly = [c for c in lb if c not in la]
    size = {}
    for c in batch + contr:
        if sa[c] != sb[c] and 1 not in (sa[c], sb[c]):
            raise ShapeError(
                "einsum",
                f"operands do not broadcast with remapped shapes: subscript {c} has size "
                f"{sa[c]} for operand {describe(a)} and {sb[c]} for operand {describe(b)}",
            )
        size[c] = max(sa[c], sb[c])
    # A size-1 contracted label against a larger one: sum the larger side first.
    for c in list(contr):
        if sa[c] != sb[c]:
            if sa[c] == 1:
                b, lb = _sum_labels(b, lb, {c})
                a = P.reshape(a, shape=tuple(n for lab, n in zip(la, a.shape) if lab != c))
                la = [lab for lab in la if lab != c]
            else:
                a, la = _sum_labels(a, la, {c})
                b = P.reshape(b, shape=tuple(n for lab, n in zip(lb, b.shape) if lab != c))
                lb = [lab for lab in lb if lab != c]
            contr.remove(c)
    sa = dict(zip(la, a.shape))
    sb = dict(zip(lb, b.shape))
    bs = [size[c] for c in batch]
    ls_ = [sa[c] for c in lonly]
    rs_ = [sb[c] for c in ronly]
    cs = [sa[c] for c in contr]
    pa = [la.index(c) for c in batch + lonly + contr]
    pb = [lb.index(c) for c in batch + contr + ronly]
    if pa != list(range(len(pa))):
        a = P.permute(a, dims=tuple(pa))
    if pb != list(range(len(pb))):
        b = P.permute(b, dims=tuple(pb))
    full_a = (*bs, *ls_, *cs)
    full_b = (*bs, *cs, *rs_)
    if tuple(a.shape) != full_a:
        a = P.broadcast_to(a, shape=full_a)
    if tuple(b.shape) != full_b:
        b = P.broadcast_to(b, shape=full_b)
    B, L, C, R = math.prod(bs), math.prod(ls_), math.prod(cs), math.prod(rs_)
    y = P.matmul(P.reshape(a, shape=(B, L, C)), P.reshape(b, shape=(B, C, R)))
    return P.reshape(y, shape=(*bs, *ls_, *rs_)), batch + lonly + ronly


def einsum(equation, *operands):
    """Einstein summation (implicit output, ``...`` and repeated subscripts supported)."""
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError("einsum(): the equation must be a string")
    if not operands:
        raise ShapeError("einsum", "must provide at least one operand")
    ops = [as_tensor_operand(x, "einsum") for x in operands]
    if not all(isinstance(x, Tensor) for x in ops):
        raise TypeError("einsum(): operands must be tensors")
    dt = ops[0].dtype
    for x in ops[1:]:
        if x.dtype is not dt:
            raise DTypeError(
                "einsum",
                f"expected all operands to have the same dtype, got "
                f"{', '.join(describe(x) for x in ops)}",
            )
    labels, out = _parse_einsum(equation, ops)
    xs = []
    for x, ls in zip(ops, labels):
        x, ls = _dedupe(x, ls)
        xs.append((x, ls))
    x, lx = xs[0]
    for k in range(1, len(xs)):
        keep = set(out)
        for _, ls in xs[k + 1 :]:
            keep.update(ls)
        y, ly = xs[k]
        x, lx = _contract2(x, lx, y, ly, keep)
    x, lx = _sum_labels(x, lx, {c for c in lx if c not in out})
    perm = [lx.index(c) for c in out]
    if perm != list(range(len(perm))):
        x = P.permute(x, dims=tuple(perm))
    return _fresh(x, ops[0])


# ---- repeat_interleave, roll, meshgrid, tri indices -------------------------------------------


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Repeat each element ``repeats`` times along ``dim`` (the flattened input by default)."""
    if repeats is None:
        reps = _tensor(input, "repeat_interleave")
        if reps.ndim > 1 or reps.dtype.is_floating_point:
            raise ShapeError(
                "repeat_interleave", f"repeats must be 0-dim or 1-dim, got {describe(reps)}"
            )
        r = trace_state.concrete(reps, "repeat_interleave").reshape(-1)
        return Tensor._make(np.repeat(np.arange(len(r), dtype=np.int64), r))
    x = _tensor(input, "repeat_interleave")
    if dim is None:
        x = P.reshape(x, shape=(int(np.prod(x.shape)),))
        d = 0
    else:
        d = normalize_dim(dim, x, "repeat_interleave")
        if x.ndim == 0:
            x = P.reshape(x, shape=(1,))
    n = x.shape[d]
    if isinstance(repeats, Tensor):
        if repeats.dtype.is_floating_point or repeats.dtype is D.bool_:
            raise DTypeError(
                "repeat_interleave", f"repeats must have integral dtype, got {describe(repeats)}"
            )
        if repeats.ndim > 1:
            raise ShapeError(
                "repeat_interleave",
                f"repeats must be 0-dim or 1-dim tensor, got {describe(repeats)}",
            )
        r = trace_state.concrete(repeats, "repeat_interleave").reshape(-1).astype(np.int64)
        if len(r) == 1:
            r = np.full(n, r[0], dtype=np.int64)
    else:
        r = np.full(n, int(repeats), dtype=np.int64)
    if len(r) != n:
        raise ShapeError(
            "repeat_interleave",
            f"repeats must have the same size as input along dim, but got repeats.size(0) = "
            f"{len(r)} and input.size({d}) = {n}",
        )
    if (r < 0).any():
        raise ShapeError("repeat_interleave", "repeats can not be negative")
    return _fresh(_take(x, np.repeat(np.arange(n), r), d), input)


def roll(input, shifts, dims=None):
    """Roll elements along ``dims`` (the flattened input when ``dims`` is None)."""
    x = _tensor(input, "roll")
    if isinstance(shifts, int):
        shifts = (shifts,)
    if dims is None:
        if len(shifts) != 1:
            raise ShapeError(
                "roll", f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0"
            )
        flat = P.reshape(x, shape=(int(np.prod(x.shape)),))
        n = flat.shape[0]
        y = _take(flat, np.mod(np.arange(n) - shifts[0], n) if n else np.arange(0), 0)
        return P.reshape(y, shape=tuple(x.shape))
    if isinstance(dims, int):
        dims = (dims,)
    if len(shifts) != len(dims):
        raise ShapeError(
            "roll", f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}"
        )
    y = x
    for s, dm in zip(shifts, dims):
        d = normalize_dim(dm, x, "roll")
        n = x.shape[d]
        if n and s % n:
            y = _take(y, np.mod(np.arange(n) - s, n), d)
    return _fresh(y, input)


def meshgrid(*tensors, indexing: str | None = None):
    """Coordinate grids from 1-d tensors (``indexing='ij'`` by default, or ``'xy'``)."""
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(
            f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}'
        )
    if not tensors:
        raise ShapeError("meshgrid", "expects a non-empty TensorList")
    for t in tensors:
        _tensor(t, "meshgrid")
        if t.ndim > 1:
            raise ShapeError(
                "meshgrid", f"Expected 0D or 1D tensor in the tensor list but got: {describe(t)}"
            )
        if t.dtype is not tensors[0].dtype:
            raise DTypeError("meshgrid", "expects all tensors to have the same dtype")
    sizes = [int(np.prod(t.shape)) for t in tensors]
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        axes[0], axes[1] = 1, 0
    shape = [0] * len(tensors)
    for a, n in zip(axes, sizes):
        shape[a] = n
    out = []
    for t, a, n in zip(tensors, axes, sizes):
        s = [1] * len(shape)
        s[a] = n
        out.append(P.broadcast_to(P.reshape(t, shape=tuple(s)), shape=tuple(shape)))
    return tuple(out)


def _tri_indices(op, row, col, offset, dtype, lower):
    if dtype is None:
        dtype = D.int64
    if dtype not in (D.int64, D.int32):
        raise DTypeError(op, f"\"{op}\" not implemented for '{dtype}'")
    if row < 0 or col < 0:
        raise ShapeError(op, f"row and col must be non-negative, got row={row}, col={col}")
    if lower:
        r, c = np.tril_indices(row, offset, col)
    else:
        r, c = np.triu_indices(row, offset, col)
    return Tensor._make(np.stack([r, c]).astype(dtype.np).reshape(2, -1))


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None):
    """Row and column indices of the lower triangle of a ``row`` x ``col`` matrix, (2, N)."""
    return _tri_indices("tril_indices", row, col, offset, dtype, True)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None):
    """Row and column indices of the upper triangle of a ``row`` x ``col`` matrix, (2, N)."""
    return _tri_indices("triu_indices", row, col, offset, dtype, False)


# ---- cumprod, nan_to_num ----------------------------------------------------------------------


def cumprod(input, dim: int, *, dtype=None):
    """Running product along ``dim``: a log-free parallel prefix (Hillis-Steele) scan of
    products, exact for zeros and negatives, with PyTorch's gradient."""
    x = _accumulating(_tensor(input, "cumprod"), dtype)
    if x.ndim == 0:
        return P.copy(x)
    d = normalize_dim(dim, x, "cumprod")
    n = x.shape[d]
    one = 1.0 if x.dtype.is_floating_point else 1
    y = x
    s = 1
    nd = x.ndim
    while s < n:
        stops = tuple(n - s if i == d else m for i, m in enumerate(x.shape))
        head = P.slice(y, starts=(0,) * nd, stops=stops, steps=(1,) * nd)
        shifted = P.pad(
            head,
            low=tuple(s if i == d else 0 for i in range(nd)),
            high=(0,) * nd,
            interior=(0,) * nd,
            value=one,
        )
        y = P.mul(y, shifted)
        s *= 2
    return _fresh(y, input)


def nan_to_num(input, nan: float = 0.0, posinf=None, neginf=None):
    """Replace NaN, +inf and -inf (by default with 0 and the dtype's largest/lowest finite)."""
    x = _tensor(input, "nan_to_num")
    if not x.dtype.is_floating_point:
        return P.copy(x)
    info = np.finfo(x.dtype.np) if x.dtype is not D.bfloat16 else None
    hi = float(info.max) if info is not None else 3.3895313892515355e38
    pos = hi if posinf is None else float(posinf)
    neg = -hi if neginf is None else float(neginf)
    y = P.where(P.ne(x, x), float(nan), x)
    y = P.where(P.eq(x, math.inf), pos, y)
    return P.where(P.eq(x, -math.inf), neg, y)


# ---- hyperbolic and inverse trigonometric -----------------------------------------------------


def _float(x, op):
    return to_float(_tensor(as_tensor_operand(x, op), op), op)


def sinh(input):
    """(e^x - e^-x) / 2, via expm1 so small inputs keep full precision."""
    x = _float(input, "sinh")
    return P.mul(P.sub(P.expm1(x), P.expm1(P.neg(x))), 0.5)


def cosh(input):
    x = _float(input, "cosh")
    return P.mul(P.add(P.exp(x), P.exp(P.neg(x))), 0.5)


_BIG = 1e150


def _mag(x):
    """|x| whose derivative at 0 is +1 (so odd functions built on it keep their slope)."""
    return P.where(P.lt(x, 0.0), P.neg(x), x)


def asinh(input):
    """sign(x) * log1p(|x| + x^2 / (1 + sqrt(1 + x^2))); log(2|x|) for huge |x|."""
    x = _float(input, "asinh")
    a = _mag(x)
    big = P.gt(a, _BIG)
    small = P.where(big, 1.0, a)
    a2 = P.mul(small, small)
    y = P.log1p(P.add(small, P.div(a2, P.add(P.sqrt(P.add(a2, 1.0)), 1.0))))
    large = P.add(P.log(P.where(big, a, 1.0)), math.log(2.0))
    y = P.where(big, large, y)
    return P.where(P.lt(x, 0.0), P.neg(y), y)


def acosh(input):
    """log1p(t + sqrt(2t + t^2)) with t = x - 1; log(2x) for huge x; NaN below 1."""
    x = _float(input, "acosh")
    big = P.gt(x, _BIG)
    xs = P.where(big, 2.0, x)
    t = P.sub(xs, 1.0)
    y = P.log1p(P.add(t, P.sqrt(P.mul(t, P.add(t, 2.0)))))
    large = P.add(P.log(P.where(big, x, 2.0)), math.log(2.0))
    return P.where(big, large, y)


def atanh(input):
    """0.5 * log1p(2x / (1 - x))."""
    x = _float(input, "atanh")
    return P.mul(P.log1p(P.div(P.mul(x, 2.0), P.sub(1.0, x))), 0.5)


def _atan_unit(t):
    """atan on [-1, 1]: two argument halvings (|t| <= tan(pi/16)), then the Taylor series."""
    for _ in range(2):
        t = P.div(t, P.add(P.sqrt(P.add(P.mul(t, t), 1.0)), 1.0))
    t2 = P.mul(t, t)
    acc = None
    for k in range(13, -1, -1):  # Horner on sum (-1)^k t^(2k) / (2k + 1)
        c = (-1.0) ** k / (2 * k + 1)
        acc = c if acc is None else P.add(P.mul(acc, t2), c)
    return P.mul(P.mul(t, acc), 4.0)


def atan(input):
    x = _float(input, "atan")
    a = _mag(x)
    big = P.gt(a, 1.0)
    inv = P.div(1.0, P.where(big, a, 1.0))
    r = _atan_unit(P.where(big, inv, a))
    r = P.where(big, P.sub(math.pi / 2, r), r)
    r = P.where(P.ne(x, x), x, r)
    return P.where(P.lt(x, 0.0), P.neg(r), r)


def asin(input):
    """atan(x / sqrt(1 - x^2)), written as 2 atan(x / (1 + sqrt(1 - x^2)))."""
    x = _float(input, "asin")
    c = P.sqrt(P.mul(P.sub(1.0, x), P.add(x, 1.0)))
    return P.mul(atan(P.div(x, P.add(c, 1.0))), 2.0)


def acos(input):
    """2 atan(sqrt((1 - x) / (1 + x)))."""
    x = _float(input, "acos")
    return P.mul(atan(P.sqrt(P.div(P.sub(1.0, x), P.add(x, 1.0)))), 2.0)


def atan2(input, other):
    """Angle of (other, input): atan(y / x) corrected by quadrant."""
    y, x = _float(input, "atan2"), _float(other, "atan2")
    from .common import prepare

    dt = D.result_type(y, x)
    y, x = prepare("atan2", cast(y, dt), cast(x, dt))
    ay, ax = _mag(y), _mag(x)
    # angle in [0, pi/2] of (|x|, |y|), computed from the smaller/larger ratio
    swap = P.gt(ay, ax)
    num = P.where(swap, ax, ay)
    den = P.where(swap, ay, ax)
    zero = P.eq(den, 0.0)
    r = _atan_unit(P.div(num, P.where(zero, 1.0, den)))
    r = P.where(swap, P.sub(math.pi / 2, r), r)
    r = P.where(P.lt(x, 0.0), P.sub(math.pi, r), r)
    neg_zero_x = P.logical_and(P.eq(x, 0.0), P.lt(P.div(1.0, P.where(P.eq(x, 0.0), x, 1.0)), 0.0))
    r = P.where(P.logical_and(zero, neg_zero_x), math.pi, r)
    neg_y = P.logical_or(
        P.lt(y, 0.0),
        P.logical_and(P.eq(y, 0.0), P.lt(P.div(1.0, P.where(P.eq(y, 0.0), y, 1.0)), 0.0)),
    )
    r = P.where(neg_y, P.neg(r), r)
    nan = P.logical_or(P.ne(x, x), P.ne(y, y))
    return P.where(nan, P.add(x, y), r)


arctan, arcsin, arccos, arctan2 = atan, asin, acos, atan2
arcsinh, arccosh, arctanh = asinh, acosh, atanh
