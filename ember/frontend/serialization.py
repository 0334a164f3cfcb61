"""ember.save / ember.load: state dicts in the safetensors format (loading never runs code).

A file holds a flat mapping of names to tensors (``model.state_dict()``), written with the
``safetensors`` package: an 8-byte header length, a JSON header (dtype, shape and byte range of
each tensor) and the raw little-endian data. Nothing is unpickled, so loading an untrusted file
cannot run code. Files are interchangeable with ``safetensors.numpy`` and
``safetensors.torch`` (``save_file``/``load_file``) in both directions; bfloat16 is stored as
safetensors' ``BF16`` (``safetensors.numpy`` itself cannot load that dtype, ``safetensors.torch``
can). The key order is kept: ember records it in the header's ``__metadata__``, and a file
written by another tool loads in the order of its header.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping

import ml_dtypes
import numpy as np
import safetensors

from ..ir import dtypes as D
from ..ir.errors import EmberError
from .tensor import Tensor, device

__all__ = ["save", "load", "SerializationError"]

# safetensors dtype tag -> numpy storage type of the data as it lies in the file.
_FILE_DTYPES = {
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
    D.int8: "int8",
    D.bool_: "bool",
}
_ORDER_KEY = "ember.key_order"
_MAX_HEADER = 100_000_000  # safetensors' own limit


class SerializationError(EmberError, RuntimeError):
    """A file that is not a valid safetensors file (truncated, corrupt, unsupported dtype)."""


class SerializationTypeError(EmberError, TypeError):
    """An object ``save`` cannot store: only a flat mapping of str -> Tensor is supported."""


def _describe_target(f) -> str:
    if isinstance(f, str | os.PathLike):
        return repr(os.fspath(f))
    name = getattr(f, "name", None)
    return repr(name) if isinstance(name, str) else f"<{type(f).__name__} object>"


def _check_state_dict(obj) -> None:
    if not isinstance(obj, Mapping):
        raise SerializationTypeError(
            "save",
            f"expected a dict of str -> Tensor (such as model.state_dict()), got "
            f"{type(obj).__name__}; ember.save stores tensors only, in the safetensors format",
        )
    for key, value in obj.items():
        if not isinstance(key, str):
            raise SerializationTypeError(
                "save", f"keys must be str, got {type(key).__name__} key {key!r}"
            )
        if key == "__metadata__":
            raise SerializationTypeError(
                "save", "the key '__metadata__' is reserved by the safetensors format"
            )
        if not isinstance(value, Tensor):
            hint = " (nested dicts, such as an optimizer state_dict, are not supported)" if (
                isinstance(value, Mapping)) else ""  # fmt: skip
            raise SerializationTypeError(
                "save",
                f"value of key {key!r} is a {type(value).__name__}, not a Tensor; ember.save "
                f"stores dicts of str -> Tensor only{hint}",
            )


def _serialize(obj: Mapping) -> bytes:
    keep_alive = []
    specs = {}
    for key, value in obj.items():
        arr = value._data if value._data.flags.c_contiguous else value._data.copy(order="C")
        keep_alive.append(arr)
        specs[key] = safetensors.TensorSpec(
            dtype=_SAVE_NAMES[value.dtype],
            shape=arr.shape,
            data_ptr=arr.ctypes.data,
            data_len=arr.nbytes,
        )
    metadata = {_ORDER_KEY: json.dumps(list(obj.keys()))}
    return bytes(safetensors.serialize(specs, metadata=metadata))


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True):
    """Save a dict of str -> Tensor (e.g. ``model.state_dict()``) to ``f`` as safetensors.

    ``f`` is a path (str or os.PathLike) or a binary file object open for writing. Tensors may
    be of any ember dtype, 0-d or empty; views are stored by value. Other objects (nested dicts,
    numbers, optimizer state) raise TypeError: the format holds tensors only.
    """
    _check_state_dict(obj)
    data = _serialize(obj)
    if isinstance(f, str | os.PathLike):
        with open(f, "wb") as fh:
            fh.write(data)
    elif hasattr(f, "write"):
        f.write(data)
    else:
        raise SerializationTypeError(
            "save", f"f must be a path or a binary file object, got {type(f).__name__}"
        )


def _read_all(f) -> bytes:
    if isinstance(f, str | os.PathLike):
        with open(f, "rb") as fh:
            return fh.read()
    if isinstance(f, bytes | bytearray | memoryview):
        return bytes(f)
    if hasattr(f, "read"):
        data = f.read()
        if isinstance(data, str):
            raise SerializationTypeError(
                "load", "the file object is open in text mode; open it with 'rb'"
            )
        return bytes(data)
    raise SerializationTypeError(
        "load", f"f must be a path or a binary file object, got {type(f).__name__}"
    )


def _parse_header(data: bytes, where: str) -> dict:
    """The JSON header, checked enough to give a precise message for common corruption."""

    def fail(what: str):
        raise SerializationError("load", f"{where} is not a valid safetensors file: {what}")

    if len(data) < 8:
        fail(f"it is {len(data)} bytes long, too short to hold the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER:
        fail(f"the header length field says {n} bytes, more than the format allows")
    if 8 + n > len(data):
        fail(f"the header needs {n} bytes but only {len(data) - 8} follow (the file is truncated)")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"the header is not valid JSON ({exc})")
    if not isinstance(header, dict):
        fail("the header is not a JSON object")
    body = len(data) - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            fail(f"the entry for tensor {name!r} lacks dtype, shape or data_offsets")
        offsets = info["data_offsets"]
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) for o in offsets)):  # fmt: skip
            fail(f"the data_offsets of tensor {name!r} are not a pair of integers: {offsets!r}")
        start, end = offsets
        if end > body:
            fail(
                f"tensor {name!r} needs bytes {start}..{end} of the data section, which has "
                f"only {body} bytes (the file is truncated)"
            )
    return header


def _order(header: dict) -> list[str]:
    names = [k for k in header if k != "__metadata__"]
    meta = header.get("__metadata__") or {}
    saved = meta.get(_ORDER_KEY) if isinstance(meta, dict) else None
    if saved is not None:
        try:
            order = json.loads(saved)
        except json.JSONDecodeError:
            order = None
        if isinstance(order, list) and sorted(order) == sorted(names):
            return order
    return names


def _check_map_location(map_location) -> None:
    if map_location is None or (callable(map_location) and not isinstance(map_location, str)):
        return  # a callable receives cpu storages in PyTorch: nothing to move here
    if isinstance(map_location, dict):
        targets = list(map_location.values())
    else:
        targets = [map_location]
    for target in targets:
        if device(target).type != "cpu":
            raise SerializationError(
                "load", f"map_location={map_location!r}: eager ember tensors live on the cpu"
            )


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True, mmap=None,
         **pickle_load_args) -> dict:  # fmt: skip
    """Load a dict of str -> Tensor saved by `save` (or any safetensors file).

    ``f`` is a path or a binary file object. Loading parses data only (no pickle, no code). A
    truncated or corrupt file raises `SerializationError` naming the file and the problem.
    Tensors come back as new cpu tensors, in the order they were saved. ``weights_only`` is
    accepted for PyTorch compatibility; the format holds nothing but tensors either way.
    ``map_location`` may name the cpu (or map to it); other devices raise.
    """
    _check_map_location(map_location)
    where = _describe_target(f)
    try:
        data = _read_all(f)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SerializationError("load", f"could not read {where}: {exc}") from None
    header = _parse_header(data, where)
    try:
        views = dict(safetensors.deserialize(data))
    except Exception as exc:  # safetensors.SafetensorError and friends
        raise SerializationError(
            "load", f"{where} is not a valid safetensors file: {exc}"
        ) from None
    out = {}
    for name in _order(header):
        view = views[name]
        file_dtype = _FILE_DTYPES.get(view["dtype"])
        if file_dtype is None:
            raise SerializationError(
                "load",
                f"tensor {name!r} in {where} has dtype {view['dtype']}, which ember "
                "does not support",
            )
        arr = np.frombuffer(view["data"], dtype=file_dtype).reshape(view["shape"])
        dtype = D.from_numpy(file_dtype.newbyteorder("="))
        out[name] = Tensor._make(arr.astype(dtype.np, copy=True))
    return out
