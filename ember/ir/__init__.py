"""The bottom layer: dtypes, tensor types, the graph IR, the primitive op table and its text form.

Nothing here imports the rest of ember.
"""

from . import dtypes, ops
from .builder import GraphBuilder, current_builder
from .dtypes import DType
from .errors import (
    AutogradError,
    DimError,
    DTypeError,
    EmberError,
    GraphError,
    IndexOutOfRange,
    ShapeError,
    SourceLoc,
)
from .graph import Graph, Node, Value
from .ops import PRIMITIVES, Primitive
from .parser import parse_graph
from .printer import format_graph
from .types import TensorType
from .verifier import verify

__all__ = [
    "dtypes",
    "ops",
    "DType",
    "TensorType",
    "Graph",
    "GraphBuilder",
    "current_builder",
    "Node",
    "Value",
    "Primitive",
    "PRIMITIVES",
    "format_graph",
    "parse_graph",
    "verify",
    "SourceLoc",
    "EmberError",
    "ShapeError",
    "DTypeError",
    "DimError",
    "IndexOutOfRange",
    "AutogradError",
    "GraphError",
]
