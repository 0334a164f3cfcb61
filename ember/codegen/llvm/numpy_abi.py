"""Where numpy keeps an array's data pointer, shape, dtype and flags, checked at import.

The native entry of a compiled graph (`entry`) reads ``PyArrayObject`` and ``PyArray_Descr``
fields straight from memory. Their offsets are numpy's C ABI, fixed since numpy 1.x for the
array; the dtype record changed in 2.0 (``elsize`` moved from an ``int`` at 32 to an
``npy_intp`` at 40). Rather than trusting them, this module reads probe arrays and dtypes
through ctypes at import (type, data, nd, dims, strides, descr, flags; the dtype's scalar type,
kind, byte order and element size), compares with what numpy reports, picks the candidate
layout that agrees and raises ImportError if none does. The flag bits are checked the same way.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.ir import dtypes as ember_dtypes

__all__ = [
    "ALIGNED",
    "C_CONTIGUOUS",
    "WRITEABLE",
    "NumpyAbi",
    "abi",
    "array_fields_ok",
    "descr_fields_ok",
]

# numpy's C API flag bits (ndarraytypes.h), checked against probe arrays by `abi()`.
C_CONTIGUOUS = 0x0001
ALIGNED = 0x0100
WRITEABLE = 0x0400


@dataclass(frozen=True)
class NumpyAbi:
    """Byte offsets of the fields the entry reads, as verified on this process's numpy."""

    ob_type: int = 8
    data: int = 16
    nd: int = 24
    dimensions: int = 32
    strides: int = 40
    descr: int = 56
    flags: int = 64
    descr_typeobj: int = 16
    descr_kind: int = 24
    descr_byteorder: int = 26
    descr_elsize: int = 40
    descr_elsize_bytes: int = 8


# numpy 2.x keeps ``npy_uint64 flags`` before ``npy_intp elsize``; 1.x has ``int elsize`` at 32.
_CANDIDATES = (NumpyAbi(), NumpyAbi(descr_elsize=32, descr_elsize_bytes=4))


def _read(address: int, ctype: Any) -> Any:
    return ctype.from_address(address).value


def array_fields_ok(layout: NumpyAbi, arr: np.ndarray) -> bool:
    base = id(arr)
    dims = _read(base + layout.dimensions, ctypes.c_void_p)
    strides = _read(base + layout.strides, ctypes.c_void_p)
    return (
        _read(base + layout.ob_type, ctypes.c_void_p) == id(np.ndarray)
        and _read(base + layout.data, ctypes.c_void_p) == arr.__array_interface__["data"][0]
        and _read(base + layout.nd, ctypes.c_int) == arr.ndim
        and all(_read(dims + 8 * k, ctypes.c_ssize_t) == n for k, n in enumerate(arr.shape))
        and all(_read(strides + 8 * k, ctypes.c_ssize_t) == s for k, s in enumerate(arr.strides))
        and _read(base + layout.descr, ctypes.c_void_p) == id(arr.dtype)
        and _read(base + layout.flags, ctypes.c_int) == arr.flags.num
    )


def descr_fields_ok(layout: NumpyAbi, dtype: np.dtype) -> bool:
    base = id(dtype)
    elsize_type = ctypes.c_ssize_t if layout.descr_elsize_bytes == 8 else ctypes.c_int
    return (
        _read(base + layout.descr_typeobj, ctypes.c_void_p) == id(dtype.type)
        and _read(base + layout.descr_kind, ctypes.c_char) == dtype.kind.encode()
        and _read(base + layout.descr_byteorder, ctypes.c_char) == dtype.byteorder.encode()
        and _read(base + layout.descr_elsize, elsize_type) == dtype.itemsize
    )


def _flag_bits_ok(arrays: dict[str, np.ndarray]) -> bool:
    def has(name: str, bit: int) -> bool:
        return bool(arrays[name].flags.num & bit)

    return (
        has("c", C_CONTIGUOUS)
        and not has("transposed", C_CONTIGUOUS)
        and has("c", ALIGNED)
        and not has("misaligned", ALIGNED)
        and has("c", WRITEABLE)
        and not has("readonly", WRITEABLE)
    )


def _probe_arrays() -> dict[str, np.ndarray]:
    c = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    readonly = np.arange(6, dtype=np.int64).reshape(3, 2)
    readonly.flags.writeable = False
    return {
        "c": c,
        "transposed": c.transpose(2, 0, 1),
        "misaligned": np.frombuffer(bytearray(20), dtype=np.float32, count=4, offset=1),
        "readonly": readonly,
        "scalar": np.array(2.5, dtype=np.float64),
        "empty": np.empty((0, 5), dtype=np.int16),
    }


def _verify_abi() -> NumpyAbi:
    arrays = _probe_arrays()
    descrs = [np.dtype(t) for t in (np.float32, np.float64, np.int8, np.int64, np.bool_)]
    descrs += [d.np for d in ember_dtypes.ALL_DTYPES]
    if not _flag_bits_ok(arrays):
        raise ImportError(f"numpy {np.__version__}: its array flag bits are not the known ones")
    for layout in _CANDIDATES:
        if all(array_fields_ok(layout, a) for a in arrays.values()) and all(
            descr_fields_ok(layout, d) for d in descrs
        ):
            return layout
    raise ImportError(
        f"numpy {np.__version__} on Python {sys.version.split()[0]}: the PyArrayObject or "
        "PyArray_Descr layout is not the known one; the native entry cannot read arrays"
    )


_ABI = _verify_abi()


def abi() -> NumpyAbi:
    """The verified field offsets (checked once, when this module is imported)."""
    return _ABI
