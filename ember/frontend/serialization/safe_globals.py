"""Which module classes ``ember.load`` may rebuild: PyTorch's weights-only allowlist API.

A saved module names its class as ``{__module__}.{__qualname__}``. Loading rebuilds it only
when that name is

- one of ember's own ``nn`` classes (every `Module` subclass defined under
  ``ember.frontend.nn``: layers, losses, containers such as Sequential, ModuleList and
  ModuleDict), or
- allowed by the user, with the API of ``torch.serialization``: `add_safe_globals`, the
  `safe_globals` context manager, `get_safe_globals` and `clear_safe_globals`. An entry is a
  class, or a ``(class, "full.name")`` pair for a class saved under another name.

With ``weights_only=False`` (trusting the file, as in PyTorch) a class that is neither is
also looked up among the modules already imported (``sys.modules``), through their namespace
dicts: a name is never imported and no attribute hook runs. Any other name raises
`UnsafeGlobalError` (a ``pickle.UnpicklingError``, as ``torch.load`` raises) naming the class
and how to allow it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from ..nn import functional as _functional
from ..nn.modules.module import Module
from .errors import SerializationError, UnsafeGlobalError

__all__ = [
    "function_name",
    "resolve_function",
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "safe_globals",
    "class_name",
    "resolve_class",
    "is_allowed",
]

_EMBER_NN = ("ember.frontend.nn.", "ember.nn.")  # (DataParallel lives in ember.nn.parallel)
_user_globals: set = set()


def add_safe_globals(safe_globals: list[Callable | tuple[Callable, str]]) -> None:
    """Allow ``ember.load`` to rebuild modules of these classes (``torch.serialization``'s
    function of the same name). Each item is a class or a ``(class, "module.qualname")`` pair."""
    global _user_globals
    _user_globals = _user_globals | set(_checked(safe_globals))


def get_safe_globals() -> list[Callable | tuple[Callable, str]]:
    """The classes (and pairs) the user allowed with `add_safe_globals` or `safe_globals`."""
    return list(_user_globals)


def clear_safe_globals() -> None:
    """Forget every class the user allowed."""
    global _user_globals
    _user_globals = set()


class safe_globals:  # noqa: N801 (PyTorch's name)
    """``with safe_globals([MyNet]): ember.load(...)``: allow classes inside the block only."""

    def __init__(self, safe_globals: list[Callable | tuple[Callable, str]]) -> None:
        self.safe_globals = _checked(safe_globals)

    def __enter__(self) -> None:
        add_safe_globals(self.safe_globals)

    def __exit__(self, *exc) -> None:
        global _user_globals
        _user_globals = _user_globals - set(self.safe_globals)


def _checked(items) -> list:
    if not isinstance(items, list | tuple | set):
        raise TypeError(
            f"safe_globals expects a list of classes, got {type(items).__name__}; "
            "write add_safe_globals([MyNet])"
        )
    for item in items:
        if isinstance(item, tuple):
            if len(item) != 2:
                raise ValueError(
                    "Expected tuple of length 2 (global, str of callable full path), but got "
                    f"tuple of length: {len(item)}"
                )
            if type(item[1]) is not str:
                raise TypeError(
                    "Expected second item in tuple to be str of callable full path, but got: "
                    f"{type(item[1])}"
                )
    return list(items)


def class_name(cls: type) -> str:
    """How a file names a class: ``{__module__}.{__qualname__}``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _subclasses(cls: type):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _ember_classes() -> dict[str, type]:
    """ember's own module classes by name (the views ``ember.compile`` makes are not)."""
    found = {class_name(Module): Module}
    for cls in _subclasses(Module):
        if cls.__module__.startswith(_EMBER_NN) and not getattr(cls, "_ember_compiled", False):
            found[class_name(cls)] = cls
    return found


def _user_classes() -> dict[str, object]:
    found = {}
    for item in _user_globals:
        obj, name = item if isinstance(item, tuple) else (item, None)
        if name is None:
            name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"
        found[name] = obj
    return found


def _imported(name: str):
    """The object ``name`` denotes among imported modules, looked up without running code."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is None:
            continue
        obj = module
        for part in parts[i:]:
            namespace = getattr(obj, "__dict__", None)
            if not isinstance(namespace, dict) or part not in namespace:
                return None
            obj = namespace[part]
        return obj
    return None


def is_allowed(name: str) -> bool:
    """Whether ``weights_only`` loading may rebuild a module of class ``name``."""
    return name in _ember_classes() or name in _user_classes()


def resolve_class(name: str, weights_only: bool, where: str) -> type:
    """The Module subclass a file names, if loading may rebuild it; else a clear error."""
    cls = _ember_classes().get(name) or _user_classes().get(name)
    if cls is None and not weights_only:
        cls = _imported(name)
        if cls is None:
            raise UnsafeGlobalError(
                "load",
                f"{where} holds a module of class {name}, which is not defined in any imported "
                "module (ember.load never imports code): import the module that defines it "
                "before loading",
            )
    if cls is None:
        short = name.rsplit(".", 1)[-1]
        raise UnsafeGlobalError(
            "load",
            f"{where} holds a module of class {name}, which is not allowed: loading runs no "
            "code from the file, so it rebuilds only ember's own nn classes and the classes "
            f"you allow. If you trust this file, call "
            f"ember.serialization.add_safe_globals([{short}]) (or load inside "
            f"`with ember.serialization.safe_globals([{short}]):`), or pass weights_only=False",
        )
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise SerializationError(
            "load", f"{where} names {name} as the class of a module, but it is not an "
            "nn.Module subclass"
        )  # fmt: skip
    return cls


def _known_functions() -> dict[str, Callable]:
    """Functions a module attribute may name (``TransformerEncoderLayer.activation = F.relu``):
    ``ember.nn.functional``'s, and the callables allowed with `add_safe_globals`."""
    found = {
        f"ember.nn.functional.{name}": fn
        for name, fn in vars(_functional).items()
        if callable(fn) and not isinstance(fn, type) and not name.startswith("_")
    }
    for name, obj in _user_classes().items():
        if callable(obj) and not isinstance(obj, type):
            found[name] = obj
    return found


def function_name(fn) -> str | None:
    """The name a file stores function ``fn`` by, or None if loading could not rebuild it."""
    for name, known in _known_functions().items():
        if known is fn:
            return name
    return None


def resolve_function(name: str, where: str) -> Callable:
    """The function a file names, if it is one `function_name` gives; else a clear error."""
    fn = _known_functions().get(name)
    if fn is None:
        raise UnsafeGlobalError(
            "load",
            f"{where} names the function {name}, which is not allowed: loading rebuilds only "
            "ember.nn.functional's functions and the callables you allow with "
            "ember.serialization.add_safe_globals([...])",
        )
    return fn
