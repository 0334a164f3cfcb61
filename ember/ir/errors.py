"""Errors that name the op, the operands and the user's file:line.

Every error ember raises for bad input derives from `EmberError`. The location is the first
stack frame outside the ember package, so messages point at the user's own code, e.g.
``matmul: shapes f32[64,784] and f32[128,10] do not match (784 != 128) at train.py:31``.
Each class also derives from the builtin exception PyTorch raises for the same mistake, so
``except RuntimeError`` in ported code keeps working.
"""

from __future__ import annotations

import os
import sys

__all__ = [
    "SourceLoc",
    "user_location",
    "EmberError",
    "ShapeError",
    "DTypeError",
    "DimError",
    "IndexOutOfRange",
    "AutogradError",
    "GraphError",
    "DeviceError",
    "ConversionError",
    "TensorTypeError",
    "GraphBreakError",
    "InvalidValueError",
    "OutOfMemoryError",
]

_EMBER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class SourceLoc:
    """A place in the user's source: a file and a line."""

    __slots__ = ("file", "line")

    def __init__(self, file: str, line: int) -> None:
        self.file = file
        self.line = line

    def __str__(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"

    def __repr__(self) -> str:
        return f"SourceLoc({self.file!r}, {self.line})"

    def __eq__(self, other) -> bool:
        return isinstance(other, SourceLoc) and (self.file, self.line) == (other.file, other.line)

    def __hash__(self) -> int:
        return hash((self.file, self.line))


def user_location(depth: int = 1) -> SourceLoc | None:
    """The innermost stack frame that is not inside the ember package."""
    frame = sys._getframe(depth)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_EMBER_DIR):
            return SourceLoc(filename, frame.f_lineno)
        frame = frame.f_back
    return None


class EmberError(Exception):
    """Base class: ``<op>: <what went wrong> at <file:line>``."""

    def __init__(self, op: str, detail: str, loc: SourceLoc | None = None) -> None:
        self.op = op
        self.detail = detail
        self.loc = loc if loc is not None else user_location(2)
        where = f" at {self.loc}" if self.loc is not None else ""
        super().__init__(f"{op}: {detail}{where}")

    def __reduce__(self):
        return (type(self), (self.op, self.detail, self.loc))


class ShapeError(EmberError, RuntimeError):
    """Operand shapes that do not fit together (broadcasting, matmul, reshape...)."""


class DTypeError(EmberError, RuntimeError):
    """Operand dtypes an op does not accept."""


class DimError(EmberError, IndexError):
    """A dimension index outside ``[-ndim, ndim)``."""


class IndexOutOfRange(EmberError, IndexError):
    """An element index outside a dimension's size."""


class AutogradError(EmberError, RuntimeError):
    """Misuse of autograd: a freed graph, a modified saved tensor, a missing gradient..."""


class GraphError(EmberError, ValueError):
    """A malformed graph: found by the verifier or the parser."""


class DeviceError(EmberError, RuntimeError):
    """An unknown device name (PyTorch raises RuntimeError)."""


class ConversionError(EmberError, ValueError):
    """``float(t)``/``int(t)`` of a tensor with more than one element (PyTorch: ValueError)."""


class GraphBreakError(EmberError, RuntimeError):
    """A compiled function read a traced value in Python (``bool``, ``item``, ``print``...).

    Inside ``ember.compile`` it ends the graph; with ``fullgraph=True`` it reaches the user.
    ``reason`` says what was read; ``loc`` is the user's line that read it.
    """

    @property
    def reason(self) -> str:
        return self.detail


class TensorTypeError(EmberError, TypeError):
    """An operand of the wrong kind: ``len`` of a 0-d tensor, ``~`` of a float tensor..."""


class InvalidValueError(EmberError, RuntimeError):
    """Operand *values* an op cannot accept: negative probabilities, a zero total..."""


class OutOfMemoryError(EmberError, RuntimeError):
    """An allocation the machine cannot hold: names the op, the shape, the dtype and the bytes
    it tried to allocate (PyTorch: ``RuntimeError``, ``torch.OutOfMemoryError`` on CUDA)."""
