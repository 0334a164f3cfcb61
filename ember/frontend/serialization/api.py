"""``ember.save`` / ``ember.load`` / ``get_unsafe_globals_in_checkpoint``: the entry points.

A flat dict of str -> Tensor (``model.state_dict()``) is stored as a plain safetensors file,
with the key order in the metadata entry ``ember.key_order``. Anything else is stored with its
structure as JSON (`tree`) in the metadata entry ``ember.structure`` and the format tag
``ember.format``; ``ember-structured-1`` files (written before modules could be saved) read as
they always did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..tensor import Tensor, device
from .errors import SerializationError
from .file_format import describe_target, parse_json, read_all, read_file, serialize, write_all
from .safe_globals import is_allowed
from .tree import JSON_DEPTH, MAX_DEPTH, Decoder, Encoder, module_classes

__all__ = ["save", "load", "get_unsafe_globals_in_checkpoint"]

_ORDER_KEY = "ember.key_order"
_STRUCT_KEY = "ember.structure"
_FORMAT_KEY = "ember.format"
_FORMAT = "ember-structured-2"
_READS = ("ember-structured-1", _FORMAT)
_MAX_DIGITS = 1000  # ember writes ints past 200 bits in hex


def _is_flat(obj) -> bool:
    """A plain state dict (str -> Tensor): stored as a plain safetensors file."""
    return isinstance(obj, Mapping) and all(
        isinstance(k, str) and k != "__metadata__" and isinstance(v, Tensor) for k, v in obj.items()
    )


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False) -> None:  # fmt: skip
    """Save ``obj`` to ``f`` in the safetensors format.

    ``obj`` is a dict of str -> Tensor (``model.state_dict()``), stored as a plain safetensors
    file; a whole ``nn.Module`` (its class, plain attributes, parameters with their
    ``requires_grad``, buffers, submodules and training flags, which `load` rebuilds without
    running its ``__init__``); or any nesting of dicts (str, int, ... keys), lists, tuples and
    sets whose leaves are tensors, modules and Python None/bool/int/float/str, such as a
    resume checkpoint ``{'model': ..., 'optimizer': opt.state_dict(), 'epoch': 3}``. ``f`` is
    a path (str or os.PathLike) or a binary file object open for writing.

    Tensors may be of any ember dtype, 0-d or empty; views are stored by value. An object that
    occurs twice (a tied parameter, a shared submodule) is stored once and shared again after
    loading. Objects that are code or arbitrary instances raise TypeError naming where they
    are; a container nested more than 64 levels deep, or one that contains itself, raises
    `SerializationError`.
    """
    if _is_flat(obj):
        data = serialize(dict(obj), {_ORDER_KEY: json.dumps(list(obj.keys()))})
    else:
        enc = Encoder()
        structure = enc.encode(obj)
        meta = {_FORMAT_KEY: _FORMAT, _STRUCT_KEY: json.dumps(structure, allow_nan=False)}
        data = serialize(enc.tensors, meta)
    write_all(data, f)


def _order(names: list[str], meta: dict) -> list[str]:
    saved = meta.get(_ORDER_KEY)
    if saved is not None:
        try:
            order = json.loads(saved)
        except (ValueError, RecursionError):
            order = None
        if isinstance(order, list) and all(isinstance(k, str) for k in order) \
                and sorted(order) == sorted(names):  # fmt: skip
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


def _read(f):
    """The file's tensors, and its structure (None for a plain safetensors file)."""
    where = describe_target(f)
    tensors, meta = read_file(read_all(f, where), where)
    if _STRUCT_KEY not in meta:
        return where, {name: tensors[name] for name in _order(list(tensors), meta)}, None
    if meta.get(_FORMAT_KEY) not in _READS:
        raise SerializationError(
            "load",
            f"{where} was written in ember format {str(meta.get(_FORMAT_KEY))[:40]!r}, which "
            f"this version does not read (it reads {', '.join(map(repr, _READS))})",
        )

    def fail(what: str):
        raise SerializationError("load", f"{where} has a corrupt ember structure: {what}")

    note = f" (ember stores at most {MAX_DEPTH} levels of nested containers and modules)"
    structure = parse_json(meta[_STRUCT_KEY], JSON_DEPTH, _MAX_DIGITS, fail, "its JSON", note)
    return where, tensors, structure


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None,
         mmap=None, **pickle_load_args):  # fmt: skip
    """Load what `save` stored (or any safetensors file, as a dict of str -> Tensor).

    ``f`` is a path, a bytes-like object or a binary file object. Loading parses data only (no
    pickle, no code from the file). Tensors come back as new cpu tensors, in the order they
    were saved; nested objects come back as they were saved. A module is rebuilt without
    running its ``__init__``, only for ember's own ``nn`` classes and the classes allowed with
    ``ember.serialization.add_safe_globals`` / ``safe_globals`` (else
    ``UnsafeGlobalError``, a ``pickle.UnpicklingError``); ``weights_only=False`` also allows
    any ``nn.Module`` subclass already imported, as PyTorch trusts the file then.
    ``map_location`` may be None, the cpu, or map to it; other devices raise. A truncated,
    corrupt or crafted file raises `SerializationError` naming the file and the problem, and
    nothing is returned in part.
    """
    _check_map_location(map_location)
    where, tensors, structure = _read(f)
    if structure is None:
        return tensors
    return Decoder(tensors, where, weights_only is not False).decode(structure)


def get_unsafe_globals_in_checkpoint(f) -> list[str]:
    """The module classes a file names that weights-only loading would refuse
    (``torch.serialization.get_unsafe_globals_in_checkpoint``), each once, in file order."""
    _, _, structure = _read(f)
    names = module_classes(structure) if structure is not None else []
    return list(dict.fromkeys(n for n in names if not is_allowed(n)))
