"""Which backends exist: the built-ins, ones registered at run time, and installed plugins.

Built in: ``reference`` (numpy, the oracle) and ``null`` (runs nothing; for tests). Code can
add a backend with `register_backend`. Third-party packages add one through the entry-point
group ``ember.backends``::

    [project.entry-points."ember.backends"]
    my_backend = "my_package:backend"

The entry point names a `Backend` instance, or a class or zero-argument factory that makes
one. Plugins are found lazily, the first time a name is not already known or `list_backends`
runs, so asking for a built-in never imports third-party code. A plugin that fails to load
(import error, wrong object, a name already taken) never breaks discovery: it is listed by
`list_backends` as unusable with the error, and `get_backend` on its name raises that error.

`pick_backend("auto", device)` chooses by device kind from a preference list (cpu: llvm, then
reference; cuda: triton), then any usable plugin that declares the device kind, in the order
they were found; ``null`` is never picked automatically.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from dataclasses import dataclass

from .backend import Backend, BackendError, NullBackend, device_kind
from .llvm.backend import LLVMBackend
from .reference import ReferenceBackend

__all__ = [
    "ENTRY_POINT_GROUP",
    "AUTO_PREFERENCES",
    "BackendInfo",
    "register_backend",
    "unregister_backend",
    "get_backend",
    "list_backends",
    "pick_backend",
    "discover_backends",
    "format_backends",
]

ENTRY_POINT_GROUP = "ember.backends"

# Device kind -> built-in backend names that ``backend="auto"`` tries, best first.
AUTO_PREFERENCES: dict[str, tuple[str, ...]] = {
    "cpu": ("llvm", "reference"),
    "cuda": ("triton",),
}

BUILTIN = "builtin"
REGISTERED = "registered"


@dataclass(frozen=True)
class BackendInfo:
    """One row of ``ember backends``: ``reason`` says why a backend is not usable."""

    name: str
    devices: tuple[str, ...]
    origin: str  # "builtin", "registered" (by register_backend) or "entry point <dist>"
    usable: bool
    reason: str | None = None


@dataclass
class _Entry:
    name: str
    origin: str
    backend: Backend | None = None
    error: str | None = None  # why the plugin failed to load


class _State:
    """Everything the registry knows; tests swap it for a fresh one (`_new_state`)."""

    def __init__(self) -> None:
        self.backends: dict[str, _Entry] = {}
        self.broken: list[_Entry] = []
        self.discovered = False
        self.lock = threading.RLock()


def _protocol_problem(obj: object) -> str | None:
    """Why ``obj`` is not a backend, or None."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return f"{obj!r} has no non-empty str 'name'"
    devices = getattr(obj, "devices", None)
    if not isinstance(devices, tuple) or not all(isinstance(d, str) for d in devices):
        return f"backend {name!r}: 'devices' must be a tuple of str, got {devices!r}"
    for method in ("supports", "compile"):
        if not callable(getattr(obj, method, None)):
            return f"backend {name!r} has no {method}() method"
    return None


def _add(state: _State, backend: Backend, origin: str, replace: bool) -> Backend:
    problem = _protocol_problem(backend)
    if problem is not None:
        raise BackendError("register_backend", problem, None)
    with state.lock:
        old = state.backends.get(backend.name)
        if old is not None and not replace:
            raise BackendError(
                "register_backend",
                f"a backend named {backend.name!r} is already registered ({old.origin}); "
                f"pass replace=True to replace it",
                None,
            )
        state.backends[backend.name] = _Entry(backend.name, origin, backend)
    return backend


def _new_state() -> _State:
    state = _State()
    _add(state, ReferenceBackend(), BUILTIN, False)
    _add(state, NullBackend(), BUILTIN, False)
    _add(state, LLVMBackend(), BUILTIN, False)
    return state


_state = _new_state()


def register_backend(backend: Backend, *, replace: bool = False) -> Backend:
    """Make ``backend`` known under ``backend.name``; returns it (usable as a decorator result).

    Raises `BackendError` if the object is not a backend, or the name is taken and ``replace``
    is false.
    """
    return _add(_state, backend, REGISTERED, replace)


def unregister_backend(name: str) -> None:
    """Forget the backend called ``name`` (a no-op if there is none)."""
    with _state.lock:
        _state.backends.pop(name, None)


# ---- discovery --------------------------------------------------------------------------


def _entry_points() -> list:
    """The installed entry points of the group (the hook tests replace)."""
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _origin(ep) -> str:
    dist = getattr(ep, "dist", None)
    dist_name = getattr(dist, "name", None) if dist is not None else None
    return f"entry point {dist_name or ep.value}"


def _load(ep) -> Backend:
    """The backend an entry point names: an instance, or a class/factory called with no args."""
    obj = ep.load()
    if isinstance(obj, type) or (_protocol_problem(obj) is not None and callable(obj)):
        obj = obj()
    problem = _protocol_problem(obj)
    if problem is not None:
        raise TypeError(problem)
    return obj


def _discover(state: _State) -> None:
    try:
        eps = _entry_points()
    except Exception as exc:  # a broken installation must not break ember
        state.broken.append(
            _Entry("<entry points>", "entry point discovery", error=f"{type(exc).__name__}: {exc}")
        )
        return
    seen: set[tuple[str, str]] = set()
    for ep in eps:
        if (ep.name, ep.value) in seen:
            continue  # the same distribution found twice on sys.path
        seen.add((ep.name, ep.value))
        origin = _origin(ep)
        try:
            backend = _load(ep)
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not stop ember
            error = f"cannot load {ep.value!r}: {type(exc).__name__}: {exc}"
            state.broken.append(_Entry(ep.name, origin, error=error))
            continue
        taken = state.backends.get(backend.name)
        if taken is not None:
            error = f"backend name {backend.name!r} is already taken ({taken.origin})"
            state.broken.append(_Entry(ep.name, origin, backend, error))
            continue
        state.backends[backend.name] = _Entry(backend.name, origin, backend)


def discover_backends(*, refresh: bool = False) -> None:
    """Load the ``ember.backends`` entry points (once; again with ``refresh=True``)."""
    state = _state
    with state.lock:
        if state.discovered and not refresh:
            return
        if refresh:
            for name in [n for n, e in state.backends.items() if e.origin.startswith("entry")]:
                del state.backends[name]
            state.broken.clear()
        state.discovered = True
        _discover(state)


# ---- lookup -------------------------------------------------------------------------------


def _usability(backend: Backend) -> tuple[bool, str | None]:
    available = getattr(backend, "available", None)
    if available is None:
        return True, None
    try:
        verdict = available()
    except Exception as exc:
        return False, f"available() raised {type(exc).__name__}: {exc}"
    if verdict is True:
        return True, None
    return False, verdict if isinstance(verdict, str) and verdict else "not available"


def _known_names() -> str:
    names = sorted(_state.backends)
    text = ", ".join(names) if names else "none"
    if _state.broken:
        text += "; failed to load: " + ", ".join(sorted(e.name for e in _state.broken))
    return text


def get_backend(name: str) -> Backend:
    """The backend called ``name``; raises `BackendError` listing the known names."""
    entry = _state.backends.get(name)
    if entry is None:
        discover_backends()
        entry = _state.backends.get(name)
    if entry is not None:
        return entry.backend
    for broken in _state.broken:
        if broken.name == name or (broken.backend is not None and broken.backend.name == name):
            raise BackendError(f"backend {name!r}", f"{broken.origin}: {broken.error}", None)
    raise BackendError(
        f"backend {name!r}", f"is not registered (known backends: {_known_names()})", None
    )


def list_backends() -> list[BackendInfo]:
    """Every backend known, usable or not, sorted by name; loads the plugins first."""
    discover_backends()
    with _state.lock:
        entries = list(_state.backends.values())
        broken = list(_state.broken)
    infos = []
    for entry in entries:
        usable, reason = _usability(entry.backend)
        infos.append(
            BackendInfo(entry.name, tuple(entry.backend.devices), entry.origin, usable, reason)
        )
    for entry in broken:
        devices = tuple(entry.backend.devices) if entry.backend is not None else ()
        infos.append(BackendInfo(entry.name, devices, entry.origin, False, entry.error))
    return sorted(infos, key=lambda info: (info.name, info.origin))


def pick_backend(name: str | Backend = "auto", device: str = "cpu") -> Backend:
    """The backend to compile for ``device``: ``name`` itself, or the best usable one for "auto".

    A backend object is returned as it is. A named backend must declare the device's kind and
    be usable. Raises `BackendError` when nothing fits.
    """
    if not isinstance(name, str):
        problem = _protocol_problem(name)
        if problem is not None:
            raise BackendError("pick_backend", problem, None)
        return name
    kind = device_kind(device)
    if name == "auto" and os.environ.get("EMBER_BACKEND"):
        name = os.environ["EMBER_BACKEND"]  # e.g. EMBER_BACKEND=reference: the numpy oracle
    if name != "auto":
        backend = get_backend(name)
        if kind not in backend.devices:
            raise BackendError(
                f"backend {name!r}",
                f"runs on {', '.join(backend.devices)}, not on {device!r}",
                None,
            )
        usable, reason = _usability(backend)
        if not usable:
            raise BackendError(f"backend {name!r}", f"is not usable here: {reason}", None)
        return backend
    for candidate in AUTO_PREFERENCES.get(kind, ()):
        entry = _state.backends.get(candidate)
        if entry is not None and _usability(entry.backend)[0]:
            return entry.backend
    discover_backends()
    for entry in list(_state.backends.values()):
        if not entry.origin.startswith("entry point") or kind not in entry.backend.devices:
            continue
        if _usability(entry.backend)[0]:
            return entry.backend
    raise BackendError(
        "backend 'auto'",
        f"no usable backend for device {device!r} (known backends: {_known_names()})",
        None,
    )


def format_backends(infos: list[BackendInfo] | None = None) -> str:
    """The ``ember backends`` table: name, devices, origin, and why a backend is unusable."""
    infos = list_backends() if infos is None else infos
    rows = [("name", "devices", "origin", "status")]
    for info in infos:
        status = "ok" if info.usable else f"unusable: {info.reason}"
        rows.append((info.name, ",".join(info.devices) or "-", info.origin, status))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3] for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"
