"""The structure of what ``ember.save`` stores, as JSON: containers, scalars, tensors, modules.

`Encoder` replaces every tensor by a reference to a safetensors entry (``t0``, ``t1``...; a
tensor object that occurs twice is stored once) and describes everything else as JSON. None,
bool, str, finite floats and ints up to 200 bits are themselves; every other node is a one-key
object naming its kind:

==============================  ==========================================================
``{"tensor": "t0"}``            a tensor (its ``requires_grad`` is not kept)
``{"param": {"tensor": "t0",    an ``nn.Parameter``; the same Parameter object everywhere
"requires_grad": true}}``       it occurs (tied weights stay tied)
``{"list": [...]}``             also ``tuple``, ``set``, ``frozenset``
``{"dict": [[k, v], ...]}``     keys encoded like values (int and tuple keys survive);
                                ``odict`` for an OrderedDict
``{"float": "nan"}``            non-finite floats; ``{"int": "0x..."}`` ints past 200 bits
``{"dtype": "float32"}``        an ember dtype; ``{"device": "cpu"}`` a device
``{"function": "ember.nn.       a function of ``ember.nn.functional`` (an activation a layer
functional.relu"}``             keeps) or one allowed with ``add_safe_globals``
``{"module": {"class":          an ``nn.Module``: its class as ``module.qualname``, its
"pkg.mod.Net", "id": 0,         index among the file's modules, and its attributes (its
"attrs": [[name, v], ...]}}``   ``__dict__``: plain attributes, training flag, parameters,
                                buffers and the non-persistent set, submodules)
``{"module_ref": 0}``           a module already described (shared submodules, cycles)
==============================  ==========================================================

`Decoder` rebuilds that with a fixed set of kinds and never imports or calls anything named
in the file. A module is rebuilt as unpickling rebuilds it: ``object.__new__(cls)`` and its
attribute dict (or the class's own ``__setstate__``), never its ``__init__``, and only for a
class `resolve_class` allows. Its ``Module`` internals are checked (parameters are
Parameters, buffers tensors, submodules modules; no hooks), and internals a file lacks get
their defaults. Both sides allow at most `MAX_DEPTH` levels of nested containers and modules
(a module's parameter, buffer and submodule dicts belong to its own level), and saving a
container that contains itself is an error rather than endless recursion.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from ...ir import dtypes as D
from ...ir.errors import DeviceError
from ..nn.modules.module import MEMBER_STORES, Members, Module
from ..nn.parameter import Parameter
from ..tensor import Tensor, device
from .errors import SerializationError, SerializationTypeError
from .safe_globals import class_name, function_name, resolve_class, resolve_function

__all__ = ["MAX_DEPTH", "JSON_DEPTH", "Encoder", "Decoder", "module_classes"]

MAX_DEPTH = 64
# A level of nesting takes at most 8 levels of JSON (a module: its node, the attrs list, a
# pair, the submodule dict's node, its list, a pair); JSON deeper than this is refused unparsed.
JSON_DEPTH = 8 * MAX_DEPTH + 8
_INT_BITS = 200
_HEX_INT = re.compile(r"-?0x[0-9a-f]+")
_STORES = ("_parameters", "_buffers", "_modules")
_SEQUENCES = (("list", list), ("tuple", tuple), ("set", set), ("frozenset", frozenset))
_CONTAINERS = ("list", "tuple", "set", "frozenset", "dict", "odict")
_KEY_TYPES = bool | int | float | str | tuple
_DTYPE_NAMES = {d.name for d in D.ALL_DTYPES}


def _show(value) -> str:
    """A value from a file, as a message quotes it (crafted values can be long)."""
    if isinstance(value, int) and value.bit_length() > _INT_BITS:
        text = f"<an int of {value.bit_length()} bits>"
    elif value is None or isinstance(value, bool | int | float | str):
        text = repr(value)
    else:  # never the repr of a rebuilt object: a module may be half-built here
        try:
            text = json.dumps(value, default=lambda obj: f"<{type(obj).__name__}>")
        except (TypeError, ValueError):
            text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _too_deep(where: str) -> str:
    return (
        f"{where} is nested more than {MAX_DEPTH} levels deep; ember.save stores at most "
        f"{MAX_DEPTH} levels of nested containers and modules"
    )


def _module_state(m: Module, path: str) -> dict:
    """What pickling takes from a module: its ``__getstate__()`` if it defines one, else its
    ``__dict__``."""
    getstate = getattr(type(m), "__getstate__", None)
    if getstate is None or getstate is getattr(object, "__getstate__", None):
        return m.__dict__
    state = m.__getstate__()
    if not (isinstance(state, Mapping) and all(isinstance(k, str) for k in state)):
        raise SerializationTypeError(
            "save", f"{path}.__getstate__() returned a {type(state).__name__}; ember.save "
            "stores a module's state only as a dict of attribute names"
        )  # fmt: skip
    return state


class Encoder:
    """Describe an object as JSON; collect its tensors in `tensors` (generated key -> tensor)."""

    def __init__(self) -> None:
        self.tensors: dict[str, Tensor] = {}
        self._ids: dict[int, str] = {}
        self._module_ids: dict[int, int] = {}
        self._active: dict[int, str] = {}  # containers being encoded: id -> path
        self._keep: list = []  # the modules described, so their ids stay theirs

    def _key(self, t: Tensor) -> str:
        key = self._ids.get(id(t))
        if key is None:
            key = f"t{len(self.tensors)}"
            self._ids[id(t)] = key
            self.tensors[key] = t
        return key

    def encode(self, obj, path: str = "obj", depth: int = 0):
        if isinstance(obj, Parameter):
            return {"param": {"tensor": self._key(obj), "requires_grad": obj.requires_grad}}
        if isinstance(obj, Tensor):
            return {"tensor": self._key(obj)}
        if obj is None or isinstance(obj, bool | str):
            return obj
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, int | np.integer):
            value = int(obj)
            return value if value.bit_length() <= _INT_BITS else {"int": hex(value)}
        if isinstance(obj, float | np.floating):
            value = float(obj)
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(obj, D.DType):
            return {"dtype": obj.name}
        if isinstance(obj, device):
            return {"device": str(obj)}
        if callable(obj) and not isinstance(obj, type | Module):
            name = function_name(obj)
            if name is not None:
                return {"function": name}
        if isinstance(obj, Module):
            index = self._module_ids.get(id(obj))
            if index is not None:
                return {"module_ref": index}
            return self._enter(obj, path, depth, self._module)
        if isinstance(obj, list | tuple | set | frozenset | Mapping):
            return self._enter(obj, path, depth, self._container)
        raise SerializationTypeError(
            "save",
            f"{path} is a {type(obj).__name__}; ember.save stores tensors, modules, dicts, "
            "lists, tuples, sets and Python None/bool/int/float/str only (the safetensors "
            "format runs no code, so arbitrary objects cannot be stored)",
        )

    def _enter(self, obj, path: str, depth: int, encode_fn):
        if depth >= MAX_DEPTH:
            raise SerializationError("save", _too_deep(path))
        if id(obj) in self._active:
            raise SerializationError(
                "save", f"{path} is {self._active[id(obj)]} again: the object contains itself "
                "(a reference cycle), which ember.save cannot store"
            )  # fmt: skip
        self._active[id(obj)] = path
        try:
            return encode_fn(obj, path, depth + 1)
        finally:
            del self._active[id(obj)]

    def _container(self, obj, path: str, level: int):
        if isinstance(obj, Mapping):
            return self._mapping(obj, path, level)
        # subclasses too: a namedtuple, an ember.Size...
        kind = next(name for name, base in _SEQUENCES if isinstance(obj, base))
        return {kind: [self.encode(v, f"{path}[{i}]", level) for i, v in enumerate(obj)]}

    def _mapping(self, obj: Mapping, path: str, level: int):
        items = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, _KEY_TYPES)):
                raise SerializationTypeError(
                    "save", f"{path} has a key of type {type(k).__name__} ({k!r}); "
                    "keys must be str, int, float, bool, None or tuples of those"
                )  # fmt: skip
            items.append(
                [self.encode(k, f"{path} key", level), self.encode(v, f"{path}[{k!r}]", level)]
            )
        return {"odict" if isinstance(obj, OrderedDict) else "dict": items}

    def _module(self, m: Module, path: str, level: int):
        cls = type(m)
        if getattr(cls, "_ember_compiled", False):  # the view ember.compile returns
            cls = cls.__mro__[1]
        index = len(self._module_ids)
        self._module_ids[id(m)] = index
        self._keep.append(m)
        attrs = []
        for name, value in _module_state(m, path).items():
            if name.endswith(("_hooks", "_hooks_with_kwargs")) and value:
                raise SerializationTypeError(
                    "save", f"{path} has hooks registered ({name}); ember.save stores no "
                    "code: remove them (handle.remove()) before saving the module, or save its "
                    "state_dict()"
                )  # fmt: skip
            if name in _STORES and isinstance(value, Mapping):
                # a module's parameters, buffers and submodules belong to its own level
                items = [[k, self.encode(v, f"{path}.{k}", level)] for k, v in value.items()]
                node = {"odict" if isinstance(value, OrderedDict) else "dict": items}
            else:
                node = self.encode(value, f"{path}.{name}", level)
            attrs.append([name, node])
        return {"module": {"class": class_name(cls), "id": index, "attrs": attrs}}


def _module_defaults() -> dict:
    """The attributes ``Module.__init__`` gives every module, with their default values."""
    ref = object.__new__(Module)
    Module.__init__(ref)
    return dict(ref.__dict__)


class Decoder:
    """Rebuild what `Encoder` described from the file's tensors (generated key -> tensor)."""

    def __init__(self, tensors: dict[str, Tensor], where: str, weights_only: bool) -> None:
        self.tensors = tensors
        self.where = where
        self.weights_only = weights_only
        self.params: dict[str, Parameter] = {}
        self.modules: list[Module] = []
        self._defaults = _module_defaults()

    def fail(self, what: str, path: str):
        at = "" if path == "obj" else f" (at {path})"
        raise SerializationError("load", f"{self.where} has a corrupt ember structure{at}: {what}")

    def decode(self, node, path: str = "obj", depth: int = 0):
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if not (isinstance(node, dict) and len(node) == 1):
            self.fail(f"unexpected node {_show(node)}", path)
        ((kind, val),) = node.items()
        if kind == "tensor":
            if not isinstance(val, str) or val not in self.tensors:
                self.fail(f"it refers to tensor {_show(val)}, which the file does not hold", path)
            return self.tensors[val]
        if kind == "param":
            return self._param(val, path)
        if kind == "float":
            if val not in ("nan", "inf", "-inf"):
                self.fail(f"bad float {_show(val)}", path)
            return float(val)
        if kind == "int":
            if not (isinstance(val, str) and _HEX_INT.fullmatch(val)):
                self.fail(f"bad int {_show(val)}", path)
            return int(val, 16)
        if kind == "dtype":
            if not isinstance(val, str) or val not in _DTYPE_NAMES:
                self.fail(f"unknown dtype {_show(val)}", path)
            return D.from_name(val)
        if kind == "device":
            try:
                return device(val)
            except (DeviceError, TypeError, ValueError):
                self.fail(f"bad device {_show(val)}", path)
        if kind == "function":
            if not isinstance(val, str):
                self.fail(f"bad function name {_show(val)}", path)
            return resolve_function(val, path)
        if kind == "module_ref":
            if not (type(val) is int and 0 <= val < len(self.modules)):
                self.fail(
                    f"it refers to module {_show(val)}, which comes later or not at all", path
                )
            return self.modules[val]
        if kind != "module" and kind not in _CONTAINERS:
            self.fail(f"unknown node kind {_show(kind)}", path)
        if depth >= MAX_DEPTH:
            self.fail(_too_deep("it"), path)
        if kind == "module":
            return self._module(val, path, depth + 1)
        return self._container(kind, val, path, depth + 1)

    def _param(self, val, path: str) -> Parameter:
        if not (isinstance(val, dict) and set(val) == {"tensor", "requires_grad"}
                and isinstance(val["requires_grad"], bool)):  # fmt: skip
            self.fail(f"bad param node {_show(val)}", path)
        key, requires_grad = val["tensor"], val["requires_grad"]
        if not isinstance(key, str) or key not in self.tensors:
            self.fail(f"it refers to tensor {_show(key)}, which the file does not hold", path)
        param = self.params.get(key)
        if param is None:
            param = self.params[key] = Parameter(self.tensors[key], requires_grad)
        elif param.requires_grad != requires_grad:
            self.fail(f"parameter {key!r} occurs with requires_grad true and false", path)
        return param

    def _container(self, kind: str, val, path: str, level: int):
        if not isinstance(val, list):
            self.fail(f"the {kind!r} node does not hold a list", path)
        if kind in ("dict", "odict"):
            out = OrderedDict() if kind == "odict" else {}
            for item in val:
                if not (isinstance(item, list) and len(item) == 2):
                    self.fail(f"a {kind!r} item is not a [key, value] pair: {_show(item)}", path)
                key = self.decode(item[0], f"{path} key", level)
                self._check_hashable(key, item[0], path)
                out[key] = self.decode(item[1], f"{path}[{_show(key)}]", level)
            return out
        items = [self.decode(v, f"{path}[{i}]", level) for i, v in enumerate(val)]
        if kind == "list":
            return items
        if kind == "tuple":
            return tuple(items)
        for item, raw in zip(items, val):
            self._check_hashable(item, raw, path)
        return set(items) if kind == "set" else frozenset(items)

    def _check_hashable(self, value, raw, path: str) -> None:
        try:
            hash(value)
        except TypeError:  # a list or dict as a key or set element
            self.fail(f"unhashable dict key or set element {_show(raw)}", path)

    def _module(self, val, path: str, level: int) -> Module:
        if not (isinstance(val, dict) and set(val) == {"class", "id", "attrs"}
                and isinstance(val["class"], str) and isinstance(val["attrs"], list)):  # fmt: skip
            self.fail(f"bad module node {_show(val)}", path)
        if val["id"] != len(self.modules) or type(val["id"]) is not int:
            self.fail(f"module id {_show(val['id'])} is out of sequence", path)
        cls = resolve_class(val["class"], self.weights_only, self.where)
        module = object.__new__(cls)  # as unpickling does: no __init__ runs
        self.modules.append(module)
        state = {}
        for item in val["attrs"]:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                self.fail(f"a module attribute is not a [name, value] pair: {_show(item)}", path)
            name, node = item
            # a module's parameters, buffers and submodules belong to its own level
            depth = level - 1 if name in _STORES else level
            state[name] = self.decode(node, f"{path}.{name}", depth)
        self._check_module_state(state, path)
        for name in MEMBER_STORES:
            if isinstance(state.get(name), dict):
                state[name] = Members(state[name])
        setstate = getattr(cls, "__setstate__", None)
        if setstate is not None:
            module.__setstate__(state)
        else:
            module.__dict__.update(state)
        return module

    def _check_module_state(self, state: dict, path: str) -> None:
        """Give missing ``Module`` internals their defaults; check the ones present."""
        for name, default in self._defaults.items():
            if name not in state:
                state[name] = copy.copy(default)
                continue
            value = state[name]
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    self.fail(f"{name} is {_show(value)}, not a bool", path)
            elif isinstance(default, Mapping):
                if not isinstance(value, Mapping):
                    self.fail(f"{name} is a {type(value).__name__}, not a dict", path)
                state[name] = value = type(default)(value)
            elif isinstance(default, set):
                if not (
                    isinstance(value, set | frozenset) and all(isinstance(v, str) for v in value)
                ):
                    self.fail(f"{name} is not a set of names", path)
                state[name] = set(value)
            if name.endswith(("_hooks", "_hooks_with_kwargs")) and value:
                self.fail(f"it holds {name}, but a file cannot hold hooks (they are code)", path)
        expected = {"_parameters": Parameter, "_buffers": Tensor, "_modules": Module}
        for store, kind in expected.items():
            for key, value in state[store].items():
                if not isinstance(key, str):
                    self.fail(f"{store} has a key {_show(key)} that is not a name", path)
                if value is not None and not isinstance(value, kind):
                    self.fail(
                        f"{store}[{key!r}] is a {type(value).__name__}, not a {kind.__name__}",
                        path,
                    )


def module_classes(node) -> list[str]:
    """The class names of the modules a structure describes, in order (without recursion)."""
    names, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(reversed(n))
        elif isinstance(n, dict):
            module = n.get("module") if len(n) == 1 else None
            if isinstance(module, dict) and isinstance(module.get("class"), str):
                names.append(module["class"])
            stack.extend(reversed(list(n.values())))
    return names
