"""ember.save / ember.load: state dicts in the safetensors format (loading never runs code).

A file holds a flat mapping of names to tensors (``model.state_dict()``), written with the
``safetensors`` package: an 8-byte header length, a JSON header (dtype, shape and byte range of
each tensor) and the raw little-endian data. Nothing is unpickled, so loading an untrusted file
cannot run code. Files are interchangeable with ``safetensors.numpy`` and
``safetensors.torch`` (``save_file``/``load_file``) in both directions; bfloat16 is stored as
safetensors' ``BF16`` (``safetensors.numpy`` itself cannot load that dtype, ``safetensors.torch``
can). The key order is kept: ember records it in the header's ``__metadata__``, and a file
written by another tool loads in the order of its header.

Anything else ``torch.save`` is commonly given (a resume checkpoint such as ``{'model':
model.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 3}``, a bare tensor, a list of
tensors) is stored in the same format: every tensor becomes a safetensors entry under a
generated key (``t0``, ``t1``...; a tensor object that occurs twice is stored once), and the
structure is JSON in the ``__metadata__`` entry ``ember.structure``. In that JSON, None, bool,
int, str and finite floats are themselves; every other node is a one-key object naming its kind:
``{"tensor": "t0"}``, ``{"list": [...]}``, ``{"tuple": [...]}``, ``{"dict": [[key, value],
...]}`` (keys encoded like values, so int and tuple keys survive), ``{"odict": ...}`` for an
OrderedDict and ``{"float": "nan"}`` for non-finite floats. Loading decodes that JSON with a
fixed set of kinds: it never imports or calls anything named in the file.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections import OrderedDict
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
    D.int16: "int16",
    D.int8: "int8",
    D.uint8: "uint8",
    D.bool_: "bool",
}
_ORDER_KEY = "ember.key_order"
_STRUCT_KEY = "ember.structure"
_FORMAT_KEY = "ember.format"
_FORMAT = "ember-structured-1"
_MAX_HEADER = 100_000_000  # safetensors' own limit


class SerializationError(EmberError, RuntimeError):
    """A file that is not a valid safetensors file (truncated, corrupt, unsupported dtype)."""


class SerializationTypeError(EmberError, TypeError):
    """An object ``save`` cannot store (only tensors, containers and Python scalars are)."""


def _describe_target(f) -> str:
    if isinstance(f, str | os.PathLike):
        return repr(os.fspath(f))
    name = getattr(f, "name", None)
    return repr(name) if isinstance(name, str) else f"<{type(f).__name__} object>"


def _is_flat(obj) -> bool:
    """A plain state dict (str -> Tensor): stored as a plain safetensors file."""
    return isinstance(obj, Mapping) and all(
        isinstance(k, str) and k != "__metadata__" and isinstance(v, Tensor) for k, v in obj.items()
    )


class _Encoder:
    """Replace tensors by references to generated safetensors keys; tag containers."""

    def __init__(self) -> None:
        self.tensors: dict[str, Tensor] = {}
        self._ids: dict[int, str] = {}

    def encode(self, obj, path: str):
        if isinstance(obj, Tensor):
            key = self._ids.get(id(obj))
            if key is None:
                key = f"t{len(self.tensors)}"
                self._ids[id(obj)] = key
                self.tensors[key] = obj
            return {"tensor": key}
        if obj is None or isinstance(obj, bool | str):
            return obj
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, int | np.integer):
            return int(obj)
        if isinstance(obj, float | np.floating):
            value = float(obj)
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(obj, list):
            return {"list": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, tuple):
            return {"tuple": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, Mapping):
            items = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, bool | int | float | str | tuple)):
                    raise SerializationTypeError(
                        "save", f"{path} has a key of type {type(k).__name__} ({k!r}); "
                        "keys must be str, int, float, bool, None or tuples of those"
                    )  # fmt: skip
                items.append([self.encode(k, f"{path} key"), self.encode(v, f"{path}[{k!r}]")])
            kind = "odict" if isinstance(obj, OrderedDict) else "dict"
            return {kind: items}
        raise SerializationTypeError(
            "save",
            f"{path} is a {type(obj).__name__}; ember.save stores tensors, dicts, lists, tuples "
            "and Python None/bool/int/float/str only (the safetensors format runs no code, so "
            "arbitrary objects cannot be stored)",
        )


def _serialize(obj: Mapping, metadata: dict | None = None) -> bytes:
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
    if metadata is None:
        metadata = {_ORDER_KEY: json.dumps(list(obj.keys()))}
    return bytes(safetensors.serialize(specs, metadata=metadata))


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True):
    """Save ``obj`` to ``f`` in the safetensors format.

    ``obj`` is a dict of str -> Tensor (``model.state_dict()``), stored as a plain safetensors
    file, or any nesting of dicts (str, int, ... keys), lists and tuples whose leaves are
    tensors and Python None/bool/int/float/str, such as a resume checkpoint
    ``{'model': ..., 'optimizer': opt.state_dict(), 'epoch': 3}``, a bare tensor or a list of
    tensors. ``f`` is a path (str or os.PathLike) or a binary file object open for writing.
    Tensors may be of any ember dtype, 0-d or empty; views are stored by value, and
    ``requires_grad`` is not kept. Other objects raise TypeError naming where they are.
    """
    if _is_flat(obj):
        data = _serialize(obj)
    else:
        enc = _Encoder()
        structure = enc.encode(obj, "obj")
        meta = {_FORMAT_KEY: _FORMAT, _STRUCT_KEY: json.dumps(structure, allow_nan=False)}
        data = _serialize(enc.tensors, meta)
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


def _decode(node, tensors: dict, where: str):
    """Rebuild the object ``_Encoder`` described; only the fixed kinds below are known."""

    def fail(what: str):
        raise SerializationError("load", f"{where} has a corrupt ember structure: {what}")

    def dec(n):
        if n is None or isinstance(n, bool | int | float | str):
            return n
        if not (isinstance(n, dict) and len(n) == 1):
            fail(f"unexpected node {str(n)[:80]!r}")
        ((kind, val),) = n.items()
        if kind == "tensor":
            if not isinstance(val, str) or val not in tensors:
                fail(f"it refers to tensor {val!r}, which the file does not hold")
            return tensors[val]
        if kind == "float":
            if val not in ("nan", "inf", "-inf"):
                fail(f"bad float {val!r}")
            return float(val)
        if kind not in ("list", "tuple", "dict", "odict"):
            fail(f"unknown node kind {kind!r}")
        if not isinstance(val, list):
            fail(f"the {kind!r} node does not hold a list")
        if kind == "list":
            return [dec(v) for v in val]
        if kind == "tuple":
            return tuple(dec(v) for v in val)
        if kind in ("dict", "odict"):
            out = OrderedDict() if kind == "odict" else {}
            for item in val:
                if not (isinstance(item, list) and len(item) == 2):
                    fail(f"a {kind!r} item is not a [key, value] pair: {str(item)[:80]!r}")
                key = dec(item[0])
                try:
                    hash(key)
                except TypeError:  # a list or dict as key
                    fail(f"unhashable dict key {str(item[0])[:80]!r}")
                out[key] = dec(item[1])
            return out

    return dec(node)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True, mmap=None,
         **pickle_load_args):  # fmt: skip
    """Load what `save` stored (or any safetensors file, as a dict of str -> Tensor).

    ``f`` is a path or a binary file object. Loading parses data only (no pickle, no code). A
    truncated or corrupt file raises `SerializationError` naming the file and the problem.
    Tensors come back as new cpu tensors, in the order they were saved; nested objects
    (checkpoints, lists, tuples, int keys) come back as they were saved. ``weights_only`` is
    accepted for PyTorch compatibility; loading never runs code either way.
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
    meta = header.get("__metadata__")
    if isinstance(meta, dict) and _STRUCT_KEY in meta:
        if meta.get(_FORMAT_KEY) != _FORMAT:
            raise SerializationError(
                "load",
                f"{where} was written in ember format {meta.get(_FORMAT_KEY)!r}, which this "
                f"version does not read (it reads {_FORMAT!r})",
            )
        try:
            structure = json.loads(meta[_STRUCT_KEY])
        except (TypeError, json.JSONDecodeError) as exc:
            raise SerializationError(
                "load", f"{where} has a corrupt ember structure: its JSON is malformed ({exc})"
            ) from None
        return _decode(structure, out, where)
    return out
