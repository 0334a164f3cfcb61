"""The safetensors container: writing tensors and metadata, and reading a file defensively.

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes of a UTF-8
JSON header (for each tensor its dtype, shape and ``data_offsets`` into the data section,
plus a ``__metadata__`` object of str -> str) and the raw little-endian tensor data. Writing
goes through the ``safetensors`` package. Reading is ember's own: every field is checked
before any tensor is made (dtype known; shape a list of non-negative ints; byte ranges inside
the file, exactly covering the data section without overlap, and as long as dtype and shape
need), so a truncated, corrupt or crafted file raises `SerializationError` naming the file and
the problem, and no size claimed by a header is ever allocated before it is checked against
the bytes that are really there.

JSON is parsed by `parse_json`, which first measures how deep the text nests (without
recursion) and refuses integers with more digits than a limit, so a crafted file can raise
neither RecursionError nor the interpreter's integer-conversion ValueError.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct

import ml_dtypes
import numpy as np
import safetensors

from ...ir import dtypes as D
from ..tensor import Tensor
from .errors import SerializationError, SerializationTypeError

__all__ = [
    "FILE_DTYPES",
    "describe_target",
    "parse_json",
    "read_all",
    "read_file",
    "serialize",
    "write_all",
]

# safetensors dtype tag -> numpy storage type of the data as it lies in the file.
FILE_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype(np.bool_),
}
# ember dtype -> the name safetensors' serializer takes for it.
_SAVE_NAMES = {
    D.float64: "float64",
    D.float32: "float32",
    D.float16: "float16",
    D.bfloat16: "bfloat16",
    D.int64: "int64",
    D.int32: "int32",
    D.int16: "int16",
    D.int8: "int8",
    D.uint8: "uint8",
    D.bool_: "bool",
}
_MAX_HEADER = 100_000_000  # safetensors' own limit
_HEADER_DEPTH = 8  # a valid header nests 3 levels: {name: {"shape": [...]}}
_HEADER_DIGITS = 20  # shapes and offsets are u64 (at most 20 digits)
_MAX_NDIM = 64
_ZIP_MAGIC = b"PK\x03\x04"
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def describe_target(f) -> str:
    """How messages name ``f``: its path, its ``name``, or its type."""
    if isinstance(f, str | os.PathLike):
        return repr(os.fspath(f))
    name = getattr(f, "name", None)
    return repr(name) if isinstance(name, str) else f"<{type(f).__name__} object>"


def _is_text_mode(f) -> bool:
    mode = getattr(f, "mode", None)
    return isinstance(f, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode)


# ---- writing -------------------------------------------------------------------------------


def serialize(tensors: dict[str, Tensor], metadata: dict[str, str]) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` (in order) and ``metadata``."""
    keep_alive = []
    specs = {}
    for key, value in tensors.items():
        arr = value._data if value._data.flags.c_contiguous else value._data.copy(order="C")
        keep_alive.append(arr)
        specs[key] = safetensors.TensorSpec(
            dtype=_SAVE_NAMES[value.dtype],
            shape=arr.shape,
            data_ptr=arr.ctypes.data,
            data_len=arr.nbytes,
        )
    return bytes(safetensors.serialize(specs, metadata=metadata))


def write_all(data: bytes, f) -> None:
    """Write ``data`` to a path or a binary file object."""
    if isinstance(f, str | os.PathLike):
        with open(f, "wb") as fh:
            fh.write(data)
    elif hasattr(f, "write"):
        if _is_text_mode(f):
            raise SerializationError(
                "save",
                f"{describe_target(f)} is open in text mode; a safetensors file is binary: "
                "open it with 'wb'",
            )
        f.write(data)
    else:
        raise SerializationTypeError(
            "save", f"f must be a path or a binary file object, got {type(f).__name__}"
        )


# ---- reading -------------------------------------------------------------------------------


def read_all(f, where: str) -> bytes:
    """The whole content of a path, a bytes-like object or a binary file object."""
    if isinstance(f, str | os.PathLike):
        try:
            with open(f, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise SerializationError("load", f"could not read {where}: {exc}") from None
    if isinstance(f, bytes | bytearray | memoryview):
        return bytes(f)
    if hasattr(f, "read"):
        text_mode = f"{where} is open in text mode; a safetensors file is binary: open it with 'rb'"
        if _is_text_mode(f):
            raise SerializationError("load", text_mode)
        try:
            data = f.read()
        except UnicodeDecodeError:
            raise SerializationError("load", text_mode) from None
        except OSError as exc:
            raise SerializationError("load", f"could not read {where}: {exc}") from None
        if isinstance(data, str):
            raise SerializationError("load", text_mode)
        return bytes(data)
    raise SerializationTypeError(
        "load", f"f must be a path or a binary file object, got {type(f).__name__}"
    )


def _json_depth(text: str) -> int:
    """How deep ``text``'s arrays and objects nest, counted without recursion."""
    depth = deepest = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, max_depth: int, max_digits: int, fail, what: str, note: str = ""):
    """``json.loads(text)``; ``fail(message)`` (which raises) on anything a file should not hold.

    Nesting deeper than ``max_depth`` and integers longer than ``max_digits`` digits are
    refused before the parser could raise RecursionError or the interpreter's ValueError;
    ``note`` is added to the nesting message.
    """
    depth = _json_depth(text)
    if depth > max_depth:
        fail(f"{what} nests {depth} levels deep, more than the {max_depth} allowed{note}")

    def parse_int(digits: str) -> int:
        n = len(digits.lstrip("-"))
        if n > max_digits:
            fail(f"{what} holds an integer of {n} digits, more than the {max_digits} allowed")
        return int(digits)

    try:
        return json.loads(text, parse_int=parse_int)
    except ValueError as exc:  # json.JSONDecodeError included
        fail(f"{what} is malformed ({exc})")


def _check_entry(name: str, info, body: int, fail) -> tuple[np.dtype, tuple, int, int]:
    """The file dtype, shape and byte range of one header entry, each checked."""
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        fail(f"the entry for tensor {name!r} lacks dtype, shape or data_offsets")
    tag, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    file_dtype = FILE_DTYPES.get(tag) if isinstance(tag, str) else None
    if file_dtype is None:
        fail(
            f"tensor {name!r} has dtype {str(tag)[:20]!r}, which ember does not support (it "
            f"reads {', '.join(FILE_DTYPES)})"
        )
    if not (isinstance(shape, list) and len(shape) <= _MAX_NDIM
            and all(type(d) is int and d >= 0 for d in shape)):  # fmt: skip
        fail(
            f"the shape of tensor {name!r} is not a list of at most {_MAX_NDIM} "
            f"non-negative integers: {str(shape)[:80]}"
        )
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(type(o) is int and o >= 0 for o in offsets)):  # fmt: skip
        fail(
            f"the data_offsets of tensor {name!r} are not a pair of non-negative integers: "
            f"{str(offsets)[:80]}"
        )
    if math.prod(d for d in shape if d) * file_dtype.itemsize >= 2**63:
        fail(f"the shape of tensor {name!r}, {shape}, is larger than any array can be")
    start, end = offsets
    if start > end:
        fail(f"tensor {name!r} has data_offsets [{start}, {end}], which end before they start")
    if end > body:
        fail(
            f"tensor {name!r} needs bytes {start}..{end} of the data section, which has only "
            f"{body} bytes (the file is truncated, or its header claims sizes it does not hold)"
        )
    needed = math.prod(shape) * file_dtype.itemsize
    if needed != end - start:
        fail(
            f"tensor {name!r} is {tag} of shape {shape}, which takes {needed} bytes, but its "
            f"data_offsets [{start}, {end}] hold {end - start}"
        )
    return file_dtype, tuple(shape), start, end


def _check_coverage(ranges: list[tuple[int, int, str]], body: int, fail) -> None:
    """The byte ranges tile the data section exactly: no overlap, no hole, no tail."""
    position, previous = 0, None
    for start, end, name in sorted(ranges):
        if start < position:
            fail(
                f"the byte ranges of tensors {previous!r} and {name!r} overlap (bytes "
                f"{start}..{min(end, position)})"
            )
        if start > position:
            fail(f"bytes {position}..{start} of the data section belong to no tensor")
        position, previous = end, name
    if position != body:
        fail(f"the last {body - position} bytes of the data section belong to no tensor")


def read_file(data: bytes, where: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors (in header order, each a new cpu tensor) and the metadata of a file."""

    def fail(what: str):
        raise SerializationError("load", f"{where} is not a valid safetensors file: {what}")

    if len(data) < 8:
        fail(f"it is {len(data)} bytes long, too short to hold the 8-byte header length")
    if data.startswith(_ZIP_MAGIC):
        fail(
            "it is a zip archive (a torch.save checkpoint?); ember reads safetensors files "
            "only and never unpickles: save the weights with safetensors.torch.save_file"
        )
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER:
        fail(f"the header length field says {n} bytes, more than the format allows")
    if 8 + n > len(data):
        fail(f"the header needs {n} bytes but only {len(data) - 8} follow (the file is truncated)")
    raw = data[8 : 8 + n]
    if not raw.startswith(b"{"):
        fail(f"the header does not start with '{{' (it starts with {raw[:8]!r}): wrong magic")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"the header is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})")
    header = parse_json(text, _HEADER_DEPTH, _HEADER_DIGITS, fail, "its JSON header")
    if not isinstance(header, dict):
        fail("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not (isinstance(metadata, dict)
            and all(isinstance(v, str) for v in metadata.values())):  # fmt: skip
        fail("its __metadata__ is not an object of string values")
    body = len(data) - 8 - n
    entries = {}
    for name, info in header.items():
        entries[name] = _check_entry(name, info, body, fail)
    _check_coverage([(s, e, name) for name, (_, _, s, e) in entries.items()], body, fail)
    tensors = {}
    for name, (file_dtype, shape, start, end) in entries.items():
        count = (end - start) // file_dtype.itemsize
        arr = np.frombuffer(data, dtype=file_dtype, count=count, offset=8 + n + start)
        dtype = D.from_numpy(file_dtype.newbyteorder("="))
        tensors[name] = Tensor._make(arr.reshape(shape).astype(dtype.np, copy=True))
    return tensors, metadata
