"""ember.save / ember.load: state dicts, checkpoints and whole modules in the safetensors format.

Nothing is ever unpickled, so loading an untrusted file cannot run code from it. A file is a
safetensors file (`file_format`): plain state dicts are interchangeable with
``safetensors.numpy`` and ``safetensors.torch`` (``save_file``/``load_file``) in both
directions (bfloat16 as safetensors' ``BF16``); anything else ``torch.save`` is commonly given
(a resume checkpoint, a bare tensor, a list of tensors, a whole ``nn.Module``) keeps its
tensors as safetensors entries and its structure as JSON metadata (`tree`). Modules are rebuilt
without running their ``__init__`` and only for classes that are allowed (`safe_globals`, the
API of ``torch.serialization``). `api` holds the entry points; `errors` the exception classes.
"""

from .api import get_unsafe_globals_in_checkpoint, load, save
from .errors import SerializationError, SerializationTypeError, UnsafeGlobalError
from .safe_globals import add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals

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
