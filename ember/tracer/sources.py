"""Sources: the path by which a trace reached a Python value (Dynamo's sources).

A `Source` is a root plus a chain of attribute and item steps, e.g. ``G['cfg']['scale']``,
``L['self'].fc.weight`` or ``C['scale']``. Guards compare the value a source gives now with the
value the trace saw; tensors the graph reads by reference are fetched through their source
at every call, so a tensor replaced between calls (``state["h"] = h``) is read anew instead of
being baked in; write-backs store into a source's holder.

Roots:

- ``L['name']``: the call's argument leaf ``index`` (``L['self']``: the compiled module or the
  bound object);
- ``G['name']``: a name in the compiled function's globals (``G[module]['name']`` for another
  module's globals, reached by a function the trace entered);
- ``C['name']``: a closure cell of the compiled function (read from the function called now,
  so a function re-created with the same code and equal cells reuses its graphs);
- ``D['name']``: the default value of parameter ``name`` of the function called now;
- ``O[Class]``: an object with no path from the roots, pinned by a weak reference.

`CallContext` holds what the roots resolve against for one call.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

__all__ = ["Source", "CallContext", "MISSING"]


class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


MISSING = _Missing()


@dataclass(frozen=True)
class CallContext:
    """The roots of one call: argument leaves, the bound object, the called function's
    closure cells."""

    leaves: list
    self_obj: Any = None
    cells: tuple = ()
    defaults: tuple = ()


def function_defaults(func) -> tuple:
    """``(name, value)`` of each parameter default of ``func`` (positional, then keyword)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return ()
    positional = getattr(func, "__defaults__", None) or ()
    names = code.co_varnames[: code.co_argcount][
        len(code.co_varnames[: code.co_argcount]) - len(positional) :
    ]
    keyword = getattr(func, "__kwdefaults__", None) or {}
    return tuple(zip(names, positional)) + tuple(keyword.items())


@dataclass(frozen=True, eq=False)
class Source:
    """A path from a root to a value (see the module docstring)."""

    root: str  # "arg" | "self" | "global" | "cell" | "default" | "pinned"
    key: Any  # arg: leaf index; global: (globals dict, name); cell: index; pinned: weakref
    label: str  # the root as printed: L['x'], G['S'], C['k'], O[Linear]
    steps: tuple = ()  # ("attr", name) | ("item", key, key label)

    # ---- building ---------------------------------------------------------------------

    def attr(self, name: str) -> Source:
        return Source(self.root, self.key, self.label, (*self.steps, ("attr", name)))

    def item(self, key, label: str | None = None) -> Source:
        text = label if label is not None else repr(key)
        return Source(self.root, self.key, self.label, (*self.steps, ("item", key, text)))

    @staticmethod
    def arg(index: int, name: str) -> Source:
        return Source("arg", index, f"L[{name!r}]")

    @staticmethod
    def self_() -> Source:
        return Source("self", None, "L['self']")

    @staticmethod
    def global_(globals_dict: dict, name: str, own: bool = True) -> Source:
        if own:
            label = f"G[{name!r}]"
        else:
            label = f"G[{globals_dict.get('__name__', '?')!r}][{name!r}]"
        return Source("global", (globals_dict, name), label)

    @staticmethod
    def cell(index: int, name: str) -> Source:
        return Source("cell", index, f"C[{name!r}]")

    @staticmethod
    def default(index: int, name: str) -> Source:
        return Source("default", index, f"D[{name!r}]")

    @staticmethod
    def pinned(obj) -> Source:
        try:
            ref = weakref.ref(obj)
        except TypeError:
            ref = _StrongRef(obj)
        return Source("pinned", ref, f"O[{type(obj).__name__}]")

    # ---- reading ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        parts = [self.label]
        for step in self.steps:
            parts.append(f".{step[1]}" if step[0] == "attr" else f"[{step[2]}]")
        return "".join(parts)

    def __str__(self) -> str:
        return self.name

    @property
    def is_attr(self) -> bool:
        return bool(self.steps) and self.steps[-1][0] == "attr"

    def parent(self) -> Source:
        return Source(self.root, self.key, self.label, self.steps[:-1])

    def root_value(self, ctx: CallContext):
        root = self.root
        if root == "arg":
            return ctx.leaves[self.key]
        if root == "self":
            return ctx.self_obj
        if root == "global":
            d, name = self.key
            return d[name]
        if root == "cell":
            return ctx.cells[self.key].cell_contents
        if root == "default":
            return ctx.defaults[self.key][1]
        obj = self.key()
        if obj is None:
            raise LookupError("the object is gone")
        return obj

    def get(self, ctx: CallContext):
        """The value this source gives now (raises when the path no longer exists)."""
        value = self.root_value(ctx)
        for step in self.steps:
            value = getattr(value, step[1]) if step[0] == "attr" else value[step[1]]
        return value

    def get_or_missing(self, ctx: CallContext):
        try:
            return self.get(ctx)
        except Exception:
            return MISSING

    def store(self, ctx: CallContext, value) -> None:
        """Write ``value`` where this source reads (its last step)."""
        holder = self.parent().get(ctx)
        kind, key = self.steps[-1][0], self.steps[-1][1]
        if kind == "attr":
            setattr(holder, key, value)
        else:
            holder[key] = value

    def delete(self, ctx: CallContext) -> None:
        holder = self.parent().get(ctx)
        kind, key = self.steps[-1][0], self.steps[-1][1]
        if kind == "attr":
            delattr(holder, key)
        else:
            del holder[key]


class _StrongRef:
    """A stand-in for `weakref.ref` for objects that take no weak references."""

    __slots__ = ("obj",)

    def __init__(self, obj) -> None:
        self.obj = obj

    def __call__(self):
        return self.obj
