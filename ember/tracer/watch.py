"""What a trace read and wrote in Python: guards along sources, and the mutations to replay.

The rule (DESIGN.md §5): every Python value that reaches the graph is a graph input or
guarded. A `Watcher` collects the guards of one trace from three places:

- **Roots walked before the trace**: the arguments that are objects, the compiled module or
  bound ``self``, the closure cells of the function and the globals its code names. Plain
  containers (dict, list, tuple), simple objects (their ``__dict__``), functions (their
  closure cells) are walked to a bounded depth and breadth, and every scalar, string, type,
  function and object identity met is guarded by its source (``G['cfg']['scale'] == 2.0``).
  This over-approximates what the trace reads: a change anywhere under a walked container
  recompiles.
- **User code the trace runs**: for every user function (not ember's, not the standard
  library's or an installed package's) the names its code reads that resolve in its globals
  are walked the same way: the functions on the stack at each recorded primitive, the
  functions reached by the walk, and the methods of the classes of the objects it meets.
- **Attribute reads on ember's stateful classes** (`Module`, `Optimizer`, `LRScheduler`):
  while a trace runs, their ``__getattribute__`` reports each read, and the value read is
  guarded by its source (``L['self'].scale``, ``L['self'].act is <function relu>``). These
  objects are not walked: a scheduler's ``last_epoch`` that the trace never read is not
  guarded, so stepping the scheduler does not recompile.

Guards on module attributes (and on the tensors reached through them) are *gated*: they can
only change through ``Module.__setattr__`` and friends, or a tensor's ``requires_grad``/``data``
change, which move `trace_state.EPOCH`; a compiled entry re-checks them only when it moved.

Mutations: every walked container is snapshot (shallowly) before the trace, and attribute
writes on the stateful classes are recorded; after the trace the differences are the
mutations the compiled program replays after each run (`Store`), and every container and
attribute is put back as it was, so a trace has no Python side effects of its own.
"""

from __future__ import annotations

import enum
import sysconfig
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..frontend import trace_state
from ..frontend.nn.modules.module import Members, Module
from ..frontend.ops.random import Generator
from ..frontend.optim.optimizer import Optimizer
from ..frontend.optim.scheduler_base import LRScheduler
from ..frontend.tensor import Tensor
from ..ir.dtypes import DType
from .sources import MISSING, Source, function_defaults
from .tracing_tensor import original_class

__all__ = ["Guard", "Watcher", "Mutation", "STATEFUL", "STATIC_TYPES", "is_static", "nonzero"]

STATEFUL = (Module, Optimizer, LRScheduler)
STATIC_TYPES = (
    int, float, bool, str, bytes, complex, type(None), type(Ellipsis), slice, range, DType,
    np.dtype, np.generic,
)  # fmt: skip
MAX_DEPTH = 6
MAX_ITEMS = 4096
_SMALL_ARRAY = 4096  # numpy arrays up to this size are guarded by value, larger by identity


def is_static(x) -> bool:
    """Compared by value (==) in guards."""
    if isinstance(x, STATIC_TYPES):
        return True
    return type(x) in (tuple, frozenset) and len(x) <= MAX_ITEMS and all(is_static(v) for v in x)


def nonzero(x):
    """Whether a number (or each number of a tuple) is nonzero: what a ``nonzero`` guard keeps
    of a hyperparameter the graph takes as an input."""
    if isinstance(x, tuple | list):
        return tuple(nonzero(v) for v in x)
    return bool(x != 0)


@dataclass(eq=False)
class Guard:
    """One check of a value at a source. ``kind``: eq, id, type, len, keys, tensor, array,
    absent, nonzero, grad (``.grad is None``). ``holder``/``key``: the object and key the
    value was read from (to drop guards on values the graph takes as inputs)."""

    kind: str
    source: Source
    expected: Any
    gated: bool = False
    holder: int = 0
    key: Any = None


@dataclass(eq=False)
class Mutation:
    """A change the trace made to Python state: ``source`` now holds ``value`` (MISSING:
    deleted); for a list, ``value`` is its whole new content (``whole=True``)."""

    source: Source
    value: Any
    whole: bool = False


def _library_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    out = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(sorted(p for p in out if p))


_LIBRARY = _library_prefixes()


def _raw_getattr(obj, name: str):
    """``obj.name`` without the recording hook; MISSING when absent."""
    try:
        return object.__getattribute__(obj, name)
    except AttributeError:
        fallback = getattr(type(obj), "__getattr__", None)
        if fallback is None:
            return MISSING
        try:
            return fallback(obj, name)
        except AttributeError:
            return MISSING


def _code_names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names += _code_names(c)
    return names


class Watcher:
    """The guards and mutations of one trace (see the module docstring)."""

    def __init__(self) -> None:
        self.guards: list[Guard] = []
        self.paths: dict[int, tuple[Any, Source]] = {}  # id -> (object, its first source)
        # (source, container, shallow copy, whether its keys are attribute names)
        self.snapshots: list[tuple[Source, Any, Any, bool]] = []
        self.writes: dict[tuple[int, str], tuple[Any, str, Any]] = {}  # -> (obj, name, old)
        self.read: set[tuple[int, str]] = set()
        self.born: set[int] = set()  # stateful objects created during the trace
        self._born_refs: list = []
        self.deferred: set[int] = set()  # objects whose step() was deferred
        self.on_deferred_read = None  # set by the trace: a read of such an object breaks
        self._codes: set = set()
        self._frames: dict[int, Any] = {}  # id(frame) -> its code, for `visit_stack`
        self.stop_frame = None  # the frame that runs the traced function: callers lie above
        self._classes: set = set()
        self._class_reads: set = set()  # (class, attribute) guarded on the class
        self._walked: set[int] = set()
        self._own_globals: dict | None = None

    # ---- walking ------------------------------------------------------------------------

    def source_of(self, obj) -> Source | None:
        found = self.paths.get(id(obj))
        return None if found is None else found[1]

    def _note_path(self, value, source: Source) -> None:
        found = self.paths.get(id(value))
        if found is None or (found[1].root == "pinned" and source.root != "pinned"):
            self.paths[id(value)] = (value, source)

    def _guard(self, kind, source, expected, gated, holder=0, key=None) -> None:
        self.guards.append(Guard(kind, source, expected, gated, holder, key))

    def visit(self, source: Source, value, gated: bool = False, depth: int = 0, holder=0,
              key=None) -> None:  # fmt: skip
        """Guard ``value`` as read through ``source``, and what lies under it. ``gated``: the
        guard can only fail after `trace_state.EPOCH` moved (see the module docstring); so can
        the entries of a module's `Members` dicts, which move it on every change."""
        if is_static(value):
            self._guard("eq", source, value, gated, holder, key)
            return
        if isinstance(value, Tensor):
            self._note_path(value, source)
            meta = (original_class(type(value)), value._data.shape, value._data.dtype,
                    value._requires_grad)  # fmt: skip
            self._guard("tensor", source, meta, gated, holder, key)
            return
        if isinstance(value, STATEFUL):
            self._note_path(value, source)
            self._guard("id", source, value, gated, holder, key)
            self._visit_class(type(value))
            return
        if isinstance(value, types.MethodType):
            self._guard("id", source.attr("__func__"), value.__func__, gated, holder, key)
            self.visit(source.attr("__self__"), value.__self__, gated, depth + 1)
            return
        if isinstance(value, np.ndarray):  # (changes in place: never gated)
            small = value.size <= _SMALL_ARRAY
            self._guard("array" if small else "id", source, value.copy() if small else value,
                        False, holder, key)  # fmt: skip
            return
        seen = id(value) in self._walked
        if depth >= MAX_DEPTH or seen or not self._walkable(value):
            self._guard("id", source, value, gated, holder, key)
            return
        self._walked.add(id(value))
        self._note_path(value, source)
        kind = type(value)
        if kind is not tuple and kind is not Members:
            gated = False  # a mutable container changes without moving the epoch
        if kind is tuple:
            self._guard("len", source, (kind, len(value)), gated, holder, key)
            for i, v in enumerate(value[:MAX_ITEMS]):
                self.visit(source.item(i), v, False, depth + 1, id(value), i)
        elif kind is list:
            self._guard("len", source, (kind, len(value)), gated, holder, key)
            self.snapshots.append((source, value, list(value), False))
            for i, v in enumerate(value[:MAX_ITEMS]):
                self.visit(source.item(i), v, False, depth + 1, id(value), i)
        elif isinstance(value, dict):
            keys = tuple(value)
            self._guard("keys", source, (kind, keys), gated, holder, key)
            self.snapshots.append((source, value, dict(value), False))
            inner = gated and kind is Members
            for k in keys[:MAX_ITEMS]:
                self.visit(source.item(k, self._key_label(k)), value[k], inner, depth + 1,
                           id(value), k)  # fmt: skip
        elif isinstance(value, types.FunctionType):
            self._guard("id", source, value, gated, holder, key)
            code = value.__code__
            self._visit_user_code(code, value.__globals__)
            for i, cell in enumerate(value.__closure__ or ()):
                try:
                    contents = cell.cell_contents
                except ValueError:
                    continue
                name = code.co_freevars[i]
                self.visit(source.attr("__closure__").item(i, name).attr("cell_contents"),
                           contents, False, depth + 1)  # fmt: skip
        else:  # a plain object: its type, and its attributes
            self._guard("type", source, kind, gated, holder, key)
            self._visit_class(kind)
            attrs = vars(value)
            self.snapshots.append((source, attrs, dict(attrs), True))
            for k in list(attrs)[:MAX_ITEMS]:
                if isinstance(k, str):
                    self.visit(source.attr(k), attrs[k], False, depth + 1, id(attrs), k)

    def _step(self, source: Source, key, attrs: bool) -> Source:
        return source.attr(key) if attrs else source.item(key, self._key_label(key))

    def _key_label(self, k) -> str:
        if isinstance(k, Tensor):
            found = self.source_of(k)
            return f"<{found.name}>" if found is not None else f"<tensor {id(k):#x}>"
        return repr(k)

    @staticmethod
    def _walkable(value) -> bool:
        kind = type(value)
        if kind in (tuple, list) or isinstance(value, dict | types.FunctionType):
            return True
        if isinstance(value, type | types.ModuleType | enum.Enum | Generator):
            return False
        if kind.__module__.startswith("ember") or not hasattr(value, "__dict__"):
            return False
        return type(getattr(value, "__dict__", None)) is dict

    def visit_globals(self, code: types.CodeType, globals_dict: dict, own: bool) -> None:
        """Guard the names ``code`` reads that resolve in ``globals_dict``."""
        if code in self._codes:
            return
        self._codes.add(code)
        for name in dict.fromkeys(_code_names(code)):
            if name in globals_dict:
                src = Source.global_(globals_dict, name, own)
                self.visit(src, globals_dict[name], holder=id(globals_dict), key=name)

    def visit_roots(self, fn, ctx_labels, leaves, self_obj) -> None:
        """The roots walked before the trace (see the module docstring)."""
        if self_obj is not None:
            self.visit(Source.self_(), self_obj)
        for i, leaf in enumerate(leaves):
            if not (is_static(leaf) or isinstance(leaf, Tensor)):
                self.visit(Source.arg(i, ctx_labels[i]), leaf)
            elif isinstance(leaf, Tensor):
                self._note_path(leaf, Source.arg(i, ctx_labels[i]))
        func = getattr(fn, "__func__", fn)
        code = getattr(func, "__code__", None)
        if code is None:
            return
        for i, cell in enumerate(getattr(func, "__closure__", None) or ()):
            try:
                contents = cell.cell_contents
            except ValueError:
                continue
            self.visit(Source.cell(i, code.co_freevars[i]), contents)
        for i, (name, value) in enumerate(function_defaults(func)):
            self.visit(Source.default(i, name), value)
        self._own_globals = func.__globals__
        self.visit_globals(code, func.__globals__, True)

    # ---- the frames of the call stack -------------------------------------------------

    def visit_stack(self, frame) -> None:
        """Walk the globals named by every user frame on the stack (from ``frame`` up) that
        this trace has not met yet: the trace calls this at each primitive it records, so
        every user function that computes part of the graph is seen. The walk ends at
        ``stop_frame`` (the caller of the traced function is not traced) or at a frame
        already met (the same frame object running the same code): its callers were met with
        it."""
        seen = self._frames
        while frame is not None and frame is not self.stop_frame:
            code = frame.f_code
            if seen.get(id(frame)) is code:
                return
            seen[id(frame)] = code
            if code not in self._codes:
                self._visit_user_code(code, frame.f_globals)
            frame = frame.f_back

    def _visit_user_code(self, code: types.CodeType, globals_dict: dict) -> None:
        if code not in self._codes and _is_user(globals_dict, code):
            self.visit_globals(code, globals_dict, globals_dict is self._own_globals)

    def _visit_class(self, cls: type) -> None:
        """The globals the methods of a user class read (a helper method that computes a
        Python value from a global without calling a primitive is on no recorded stack)."""
        if cls in self._classes:
            return
        self._classes.add(cls)
        for klass in cls.__mro__:
            for value in list(vars(klass).values()):
                parts = (value.fget, value.fset) if isinstance(value, property) else (value,)
                for part in parts:
                    fn = getattr(part, "__func__", part)
                    if isinstance(fn, types.FunctionType):
                        self._visit_user_code(fn.__code__, fn.__globals__)

    # ---- the attribute hook -------------------------------------------------------------

    def on_getattr(self, obj, name: str, value) -> None:
        key = (id(obj), name)
        if key in self.read or key in self.writes or id(obj) in self.born:
            return
        self.read.add(key)
        if id(obj) in self.deferred and self.on_deferred_read is not None:
            self.on_deferred_read(obj, name)
        source = self.source_of(obj)
        if source is None:
            source = Source.pinned(obj)
            self.paths[id(obj)] = (obj, source)
        src = source.attr(name)
        cls = type(obj)
        if name not in obj.__dict__ and (cls, name) not in self._class_reads:
            # found on the class (a class attribute, a method, a property): the class can
            # change without moving the epoch, so guard it there, once per class
            self._class_reads.add((cls, name))
            found = getattr(cls, name, MISSING)
            if found is not MISSING:
                klass = Source.pinned(cls).attr(name)
                self.visit(klass, found, False, 0, id(cls), name)
        if value is MISSING:
            self._guard("absent", src, None, isinstance(obj, Module), id(obj), name)
        else:
            self.visit(src, value, isinstance(obj, Module), 0, id(obj), name)

    def on_setattr(self, obj, name: str) -> None:
        """Before ``obj.name`` is written during the trace: remember the old value."""
        key = (id(obj), name)
        if key not in self.writes and id(obj) not in self.born:
            self.writes[key] = (obj, name, _raw_getattr(obj, name))

    def on_new(self, obj) -> None:
        self.born.add(id(obj))
        self._born_refs.append(obj)  # (keeps the id from being reused during the trace)

    # ---- after the trace ----------------------------------------------------------------

    def mutations(self) -> list[Mutation]:
        """What the trace changed in the walked containers and the recorded attributes."""
        out: list[Mutation] = []
        for source, container, before, attrs in self.snapshots:
            if type(container) is list:
                if len(container) != len(before) or any(
                    a is not b for a, b in zip(container, before)
                ):
                    out.append(Mutation(source, list(container), whole=True))
                continue
            for k, v in container.items():
                if k not in before or before[k] is not v:
                    out.append(Mutation(self._step(source, k, attrs), v))
            for k in before:
                if k not in container:
                    out.append(Mutation(self._step(source, k, attrs), MISSING))
        for obj, name, _old in self.writes.values():
            found = self.source_of(obj)
            source = found if found is not None else Source.pinned(obj)
            out.append(Mutation(source.attr(name), _raw_getattr(obj, name)))
        return out

    def restore(self) -> None:
        """Put every walked container and recorded attribute back as it was."""
        for _source, container, before, _attrs in reversed(self.snapshots):
            if type(container) is list:
                container[:] = before
            elif any(k not in before or container[k] is not before[k] for k in container) or (
                len(container) != len(before)
            ):  # (the container's own clear/update: an OrderedDict keeps its order, and a
                # module's Members move the epoch)
                type(container).clear(container)
                type(container).update(container, before)
        for obj, name, old in self.writes.values():
            if old is MISSING:
                d = obj.__dict__
                if name in d:
                    object.__delattr__(obj, name)
                else:
                    for store in ("_parameters", "_buffers", "_modules"):
                        d.get(store, {}).pop(name, None)
            else:
                _restore_attr(obj, name, old)


def _restore_attr(obj, name: str, old) -> None:
    d = obj.__dict__
    for store in ("_parameters", "_buffers", "_modules"):
        if name in d.get(store, ()):
            d[store][name] = old
            return
    object.__setattr__(obj, name, old)


def _is_user(globals_dict: dict, code: types.CodeType) -> bool:
    """Whether code is the user's: not ember's, not the standard library's or an installed
    package's (those are not walked for guards)."""
    name = globals_dict.get("__name__") or ""
    if name == "ember" or name.startswith("ember."):
        return False
    filename = code.co_filename
    if filename.startswith("<frozen"):
        return False
    return not filename.startswith(_LIBRARY)


def recording_getattribute(obj, name: str):
    """``__getattribute__`` of the stateful classes while a trace runs (see module docs)."""
    try:
        value = object.__getattribute__(obj, name)
    except AttributeError:
        fallback = getattr(type(obj), "__getattr__", None)
        trace = trace_state.active()
        if fallback is None:
            if trace is not None and trace.watcher is not None:
                trace.watcher.on_getattr(obj, name, MISSING)
            raise
        try:
            value = fallback(obj, name)
        except AttributeError:
            if trace is not None and trace.watcher is not None:
                trace.watcher.on_getattr(obj, name, MISSING)
            raise
    if name[:2] != "__":  # (dunders: isinstance's __class__, __dict__... are not state)
        trace = trace_state.active()
        if trace is not None and trace.watcher is not None:
            trace.watcher.on_getattr(obj, name, value)
    return value


def recording_setattr(obj, name: str, value) -> None:
    """``__setattr__`` of `Optimizer` and `LRScheduler` while a trace runs."""
    trace = trace_state.active()
    if trace is not None and trace.watcher is not None:
        trace.watcher.on_setattr(obj, name)
    object.__setattr__(obj, name, value)
