"""Element types and PyTorch's type-promotion rules.

A `DType` is an interned, immutable description of an element type: its name, short IR
name (``f32``), category (bool < integer < floating), size and numpy storage type. The module
also implements ``promote_types`` and ``result_type`` exactly as PyTorch defines them, including
the priority of dimensioned tensors over zero-dim tensors over Python scalars.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

__all__ = [
    "DType",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "bool_",
    "ALL_DTYPES",
    "from_name",
    "from_numpy",
    "promote_types",
    "result_type",
    "scalar_dtype",
    "get_default_dtype",
    "set_default_dtype",
]

# Category ranks, as in c10: a higher category wins regardless of width.
BOOL, INTEGER, FLOATING = 0, 1, 2


class DType:
    """An element type. Instances are singletons: compare with ``is`` or ``==``."""

    __slots__ = ("name", "short", "category", "itemsize", "np")

    def __init__(self, name: str, short: str, category: int, np_dtype) -> None:
        self.name = name
        self.short = short
        self.category = category
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize

    @property
    def is_floating_point(self) -> bool:
        return self.category == FLOATING

    @property
    def is_signed(self) -> bool:
        return self.category != BOOL and self.np.kind != "u"

    def __repr__(self) -> str:
        return f"ember.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


float16 = DType("float16", "f16", FLOATING, np.float16)
bfloat16 = DType("bfloat16", "bf16", FLOATING, ml_dtypes.bfloat16)
float32 = DType("float32", "f32", FLOATING, np.float32)
float64 = DType("float64", "f64", FLOATING, np.float64)
uint8 = DType("uint8", "u8", INTEGER, np.uint8)
int8 = DType("int8", "i8", INTEGER, np.int8)
int16 = DType("int16", "i16", INTEGER, np.int16)
int32 = DType("int32", "i32", INTEGER, np.int32)
int64 = DType("int64", "i64", INTEGER, np.int64)
bool_ = DType("bool", "bool", BOOL, np.bool_)

ALL_DTYPES = (float16, bfloat16, float32, float64, uint8, int8, int16, int32, int64, bool_)
_BY_NAME = {d.name: d for d in ALL_DTYPES} | {d.short: d for d in ALL_DTYPES}
_BY_NP = {d.np: d for d in ALL_DTYPES}
# numpy types that have no ember twin but convert losslessly (e.g. from_numpy of uint16 data).
_NP_FALLBACK = {
    np.dtype(np.uint16): int32,
    np.dtype(np.uint32): int64,
}


def from_name(name: str) -> DType:
    """Look up a dtype by its long (``float32``) or short (``f32``) name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise TypeError(f"unknown dtype {name!r}") from None


def from_numpy(np_dtype) -> DType:
    """The ember dtype stored as ``np_dtype`` (a lossless wider type for uint16/uint32)."""
    d = np.dtype(np_dtype)
    found = _BY_NP.get(d) or _NP_FALLBACK.get(d)
    if found is None:
        raise TypeError(f"numpy dtype {d} has no ember equivalent")
    return found


_default_float = [float32]


def get_default_dtype() -> DType:
    return _default_float[0]


def set_default_dtype(dtype: DType) -> None:
    if not isinstance(dtype, DType) or not dtype.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating point dtypes are allowed, got {dtype}")
    _default_float[0] = dtype


def promote_types(a: DType, b: DType) -> DType:
    """The smallest dtype both ``a`` and ``b`` convert to (``torch.promote_types``)."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.category == FLOATING and a.itemsize == b.itemsize:
        return float32  # float16 with bfloat16
    if a.category == INTEGER and a.is_signed != b.is_signed:
        # uint8 with a signed type: the signed type if it is wider, else int16 (int8's
        # range and uint8's both fit there), as in c10's promotion table
        signed = a if a.is_signed else b
        return signed if signed.itemsize > 1 else int16
    return a if a.itemsize >= b.itemsize else b


def scalar_dtype(value) -> DType:
    """The dtype a Python scalar takes when it is the only operand's type (a "wrapped number")."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, float):
        return get_default_dtype()
    raise TypeError(f"expected a Python number, got {type(value).__name__}")


def _promote_opt(a: DType | None, b: DType | None) -> DType | None:
    if a is None:
        return b
    if b is None:
        return a
    return promote_types(a, b)


def _combine_categories(higher: DType | None, lower: DType | None) -> DType | None:
    # c10/core/ScalarType: a lower-priority group only matters if it brings a higher category.
    if higher is None:
        return lower
    if higher.category == FLOATING:
        return higher
    if lower is not None and (higher is bool_ or lower.category == FLOATING):
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> DType:
    """PyTorch's result dtype for an op over tensors and Python scalars.

    Each operand is either a Python number or an object with ``dtype`` and ``ndim``. Tensors
    with dimensions take priority over zero-dim tensors, which take priority over Python
    scalars; a lower-priority group changes the result only when it has a higher category
    (``int32_tensor + 2.5`` is float32, ``float16_tensor + 2.5`` stays float16).
    """
    dim = zero = wrapped = None
    for op in operands:
        if isinstance(op, bool | int | float):
            wrapped = _promote_opt(wrapped, scalar_dtype(op))
        elif op.ndim == 0:
            zero = _promote_opt(zero, op.dtype)
        else:
            dim = _promote_opt(dim, op.dtype)
    out = _combine_categories(dim, _combine_categories(zero, wrapped))
    if out is None:
        raise TypeError("result_type: needs at least one operand")
    return out
