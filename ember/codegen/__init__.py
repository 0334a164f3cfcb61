"""Backends that turn graphs into something the runtime can run: the `Backend` protocol and
`BaseBackend` (`backend`), the registry with entry-point discovery of plugins (`registry`),
the reference numpy interpreter that is the oracle for every compiled path (`reference`) and
a null backend that runs nothing, for testing the pipeline without hardware."""

from .backend import BaseBackend, CompiledGraph, NullBackend
from .reference import ReferenceBackend, run_graph
from .registry import get_backend, list_backends, pick_backend, register_backend

__all__ = [
    "BaseBackend",
    "CompiledGraph",
    "NullBackend",
    "ReferenceBackend",
    "run_graph",
    "get_backend",
    "list_backends",
    "pick_backend",
    "register_backend",
]
