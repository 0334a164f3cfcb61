"""``ember.serialization`` (PyTorch's ``torch.serialization``): save/load and the allowlist of
module classes that weights-only loading may rebuild. The code lives in
`ember.frontend.serialization`."""

from .frontend.serialization import (
    SerializationError,
    SerializationTypeError,
    UnsafeGlobalError,
    add_safe_globals,
    clear_safe_globals,
    get_safe_globals,
    get_unsafe_globals_in_checkpoint,
    load,
    safe_globals,
    save,
)

__all__ = [
    "save",
    "load",
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "safe_globals",
    "get_unsafe_globals_in_checkpoint",
    "SerializationError",
    "SerializationTypeError",
    "UnsafeGlobalError",
]
