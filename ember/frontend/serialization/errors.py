"""The errors of ``ember.save`` / ``ember.load``, each deriving from what PyTorch raises.

- `SerializationError` (RuntimeError): a file that is not valid (truncated, corrupt, crafted,
  nested too deep), or an object too deep or cyclic to save. PyTorch raises RuntimeError for
  a corrupt archive and RecursionError (a RuntimeError) for a structure nested too deep.
- `SerializationTypeError` (TypeError): an object ``save`` cannot store (a function, an
  arbitrary class instance), as pickling one fails with TypeError/PicklingError.
- `UnsafeGlobalError` (`SerializationError` and ``pickle.UnpicklingError``): a module class the
  file names that is not allowed; ``torch.load(weights_only=True)`` raises
  ``pickle.UnpicklingError`` for a global it does not allow, so ported ``except`` clauses keep
  working. The pickle module is imported for this class only: nothing is ever unpickled.
"""

from __future__ import annotations

from pickle import UnpicklingError

from ...ir.errors import EmberError

__all__ = ["SerializationError", "SerializationTypeError", "UnsafeGlobalError"]


class SerializationError(EmberError, RuntimeError):
    """A file that is not valid, or an object nested too deep or cyclic to store."""


class SerializationTypeError(EmberError, TypeError):
    """An object ``save`` cannot store (only tensors, containers, Python scalars, modules)."""


class UnsafeGlobalError(SerializationError, UnpicklingError):
    """A module class named in a file that is neither ember's own nor allowed by the user."""
