"""The primitive op table: every op a backend must implement, one row each.

A `Primitive` is a name, the attribute names it takes, a shape+dtype rule (in
`ember.ir.shape_rules`) and a *fusion kind*, all given where the row is defined. Every other
concern of an op is a *column* that another layer fills in by registration, the way JAX
registers rules on its primitives:

- ``impl``: the eager kernel (numpy), registered by `ember.runtime.eager_kernels`;
- ``vjp``: the reverse-mode rule, registered by `ember.passes.vjp_rules`, or the primitive is
  declared non-differentiable with a reason;
- ``lowerings``: one function per backend name (``"llvm"``, ``"triton"``) that the backend
  registers with `register_lowering`; what the function takes and returns is the backend's
  own contract.

The fusion kinds (`FUSION_KINDS`) say how an op's output elements depend on its operands,
which is what fusion decides by:

- ``pointwise``: element ``i`` of the output reads element ``i`` of each operand (elementwise
  math, ``where``, ``convert``, ``copy``);
- ``view``: no computation, an index map from output to operand (``reshape``,
  ``broadcast_to``, ``permute``, ``slice``; ``stop_gradient`` and ``check_range`` are
  identities on the values);
- ``indexed``: pointwise over the output, but reading some operands at other positions
  (``gather``, ``pad``, ``concat``, ``slice_scatter``);
- ``reduction``: one output element per row of reduced elements (``reduce_*``, ``argmax``,
  ``argmin``);
- ``generator``: no tensor data read, each element computed from its index (``full``,
  ``iota``, ``philox_uniform``);
- ``matmul``: a contraction, run as a library call or template that takes a pointwise
  epilogue;
- ``opaque``: everything else runs as a kernel of its own (``cumsum``, ``argsort``,
  ``scatter_add``).

`missing_cells()` lists the empty cells, so a test keeps the table complete.

Attributes are frozen: every list in a node's attributes is stored as a tuple (`Graph.add`
and the parser normalize; the verifier rejects a list a pass put there), so nodes hash,
compare and print the same way however they were made.

Calling a primitive (``ops.add(x, y)``) *binds* it. A call that computes float16/bfloat16
values in float32 (a sum, a matmul, ``x * 0.1``) first becomes the call in float32 between two
``convert`` calls (`ember.ir.numerics`), so every graph says where it computes in float32.
Then the first operand whose class defines ``__ember_bind__`` decides what happens (eager
tensors run the kernel and record autograd; tracing values append a node). Calls without
tensor operands (``full``, ``iota``) go to the innermost binder on a stack that the frontend
and the tracer push. While a function is traced, an *override* takes every call first, so
calls on eager operands are recorded too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from . import shape_rules as R
from .errors import SourceLoc
from .numerics import ACCUMULATE, WIDENING, widened_dtype
from .types import is_scalar

__all__ = [
    "Primitive",
    "PRIMITIVES",
    "get_primitive",
    "push_binder",
    "pop_binder",
    "push_override",
    "pop_override",
    "missing_cells",
    "register_lowering",
    "COLUMNS",
    "FUSION_KINDS",
]

#: The columns of a row that are not given at definition: filled by registration.
COLUMNS = ("impl", "vjp", "lowerings")
#: The values of ``Primitive.fusion`` (see the module docstring).
FUSION_KINDS = ("pointwise", "view", "indexed", "reduction", "generator", "matmul", "opaque")


class Primitive:
    """One row of the op table."""

    __slots__ = (
        "name", "attr_names", "rule", "category", "fusion", "doc", "impl", "vjp",
        "nondiff_reason", "lowerings", "widens",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        attr_names: tuple[str, ...],
        rule: Callable,
        category: str,
        doc: str,
        fusion: str | None = None,
    ):
        self.name = name
        self.attr_names = attr_names
        self.rule = rule
        self.category = category
        self.fusion = fusion  # one of FUSION_KINDS
        self.doc = doc
        self.impl: Callable | None = None
        self.vjp: Any = None
        self.nondiff_reason: str | None = None
        self.lowerings: dict[str, Callable] = {}
        self.widens = name in WIDENING  # may compute float16/bfloat16 in float32 (`bind`)

    def infer(self, inputs: list, attrs: dict, loc: SourceLoc | None = None):
        """Run the shape+dtype rule: ``(shape, dtype)`` of the output, or a clear error."""
        for name in self.attr_names:
            if name not in attrs:
                raise R.graph_error(self.name, f"missing attribute {name!r}", loc)
        for name in attrs:
            if name not in self.attr_names:
                raise R.graph_error(self.name, f"unknown attribute {name!r}", loc)
        return self.rule(self.name, inputs, attrs, loc)

    def bind(self, *args, **attrs):
        if self.widens and (low := widened_dtype(self.name, args)) is not None:
            return self._bind_widened(low, args, attrs)
        overrides = _local.overrides
        if overrides:  # this thread's trace records every call, eager operands included
            return overrides[-1](self, args, attrs)
        for a in args:
            binder = getattr(a, "__ember_bind__", None)
            if binder is not None:
                return binder(self, args, attrs)
        return _binders[-1](self, args, attrs)

    __call__ = bind

    def _bind_widened(self, low, args, attrs):
        """``convert(self(convert(x, f32), ...), low)``: the call computed in float32, with
        the conversions as nodes of their own (`ember.ir.numerics`)."""
        convert = PRIMITIVES["convert"]
        wide = [
            a if is_scalar(a) or a.dtype is not low else convert.bind(a, dtype=ACCUMULATE)
            for a in args
        ]
        return convert.bind(self.bind(*wide, **attrs), dtype=low)

    @property
    def differentiable(self) -> bool:
        return self.nondiff_reason is None

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}
_binders: list[Callable] = []


class _Overrides(threading.local):
    """The override stack of each thread: a trace records only its own thread's calls."""

    def __init__(self) -> None:
        self.overrides: list[Callable] = []


_local = _Overrides()


def push_binder(binder: Callable) -> None:
    """Make ``binder(prim, args, attrs)`` handle primitive calls that have no tensor operand."""
    _binders.append(binder)


def pop_binder() -> None:
    _binders.pop()


def push_override(binder: Callable) -> None:
    """Make ``binder`` handle *every* primitive call, whatever the operands (a trace does:
    an update of eager state inside a compiled function must be recorded, not run once)."""
    _local.overrides.append(binder)


def pop_override() -> None:
    _local.overrides.pop()


def get_primitive(name: str) -> Primitive:
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise R.graph_error(name, "unknown primitive", None) from None


def _def(
    name: str,
    rule: Callable,
    attrs: tuple[str, ...] = (),
    *,
    category: str,
    fusion: str,
    doc: str = "",
) -> Primitive:
    if fusion not in FUSION_KINDS:
        raise ValueError(f"primitive {name}: fusion kind {fusion!r} is not one of {FUSION_KINDS}")
    prim = Primitive(name, attrs, rule, category, doc, fusion)
    PRIMITIVES[name] = prim
    globals()[name] = prim
    __all__.append(name)
    return prim


# Elementwise unary: same shape and dtype.
for _name in ("neg", "abs", "sign", "floor", "ceil", "round", "trunc"):
    _def(_name, R.unary_numeric, category="unary", fusion="pointwise")
for _name in (
    "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf", "log1p", "expm1",
):  # fmt: skip
    _def(_name, R.unary_floating, category="unary", fusion="pointwise")
_def("logical_not", R.unary_to_bool, category="unary", fusion="pointwise")
_def("bitwise_not", R.unary_integral, category="unary", fusion="pointwise")

# Elementwise binary: operands of one shape and dtype (or scalar literals).
for _name in ("add", "sub", "mul", "maximum", "minimum", "remainder", "floordiv", "pow"):
    _def(_name, R.binary_numeric, category="binary", fusion="pointwise")
_def("div", R.binary_floating, category="binary", fusion="pointwise")
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor", "lshift", "rshift"):
    _def(_name, R.binary_integral, category="binary", fusion="pointwise")
for _name in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"):
    _def(_name, R.binary_to_bool, category="compare", fusion="pointwise")
_def("where", R.where, category="select", fusion="pointwise")
_def("convert", R.convert, ("dtype",), category="cast", fusion="pointwise")

# Reductions over a set of axes; the reduced axes are dropped.
for _name in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min"):
    _def(_name, R.reduce, ("axes",), category="reduce", fusion="reduction")
for _name in ("argmax", "argmin"):
    _def(_name, R.arg_reduce, ("axis",), category="reduce", fusion="reduction")
_def(
    "argsort",
    R.sort_rule,
    ("axis", "descending", "stable"),
    category="sort",
    fusion="opaque",
    doc="int64 indices that sort axis (NaN largest, ties in index order)",
)
_def(
    "cumsum",
    R.scan,
    ("axis", "reverse"),
    category="scan",
    fusion="opaque",
    doc="running sum along axis",
)

# Views and data movement.
_def(
    "copy",
    R.unary_numeric,
    category="layout",
    fusion="pointwise",
    doc="same values in fresh contiguous storage",
)
_def(
    "stop_gradient",
    R.unary_numeric,
    category="layout",
    fusion="view",
    doc="its operand, through which no gradient flows (``detach``, values computed under no_grad)",
)
_def("reshape", R.reshape, ("shape",), category="layout", fusion="view")
_def("broadcast_to", R.broadcast_to, ("shape",), category="layout", fusion="view")
_def("permute", R.permute, ("dims",), category="layout", fusion="view")
_def("slice", R.slice_, ("starts", "stops", "steps"), category="layout", fusion="view")
_def(
    "slice_scatter",
    R.slice_scatter,
    ("starts", "stops", "steps"),
    category="layout",
    fusion="indexed",
    doc="its first operand with the strided window [starts:stops:steps] replaced by the second "
    "(what an in-place write through a view becomes)",
)
_def("pad", R.pad, ("low", "high", "interior", "value"), category="layout", fusion="indexed")
_def("concat", R.concat, ("axis",), category="layout", fusion="indexed")
_def("gather", R.gather, ("axis",), category="index", fusion="indexed")
_def("scatter_add", R.scatter_add, ("axis",), category="index", fusion="opaque")

# Checks: identity on the values, but an error when one is out of range. A trace records one
# where eager code checks values (one_hot, embedding, class targets, binary_cross_entropy's
# probabilities), and keeps it alive as a graph output, so the compiled program raises where
# eager raises.
_def(
    "check_range",
    R.unary_numeric,
    ("low", "high", "ignore", "op", "message", "error"),
    category="check",
    fusion="view",
    doc="its operand; ember.ir.errors.<error>(op, message) when a value is not in [low, high] "
    "(NaN is not) and not in the tuple ``ignore`` (message's {value} names the first one)",
)

# Linear algebra, creation, random.
_def("matmul", R.matmul, category="matmul", fusion="matmul")
_def("full", R.full, ("shape", "value", "dtype"), category="create", fusion="generator")
_def("iota", R.iota, ("shape", "axis", "dtype"), category="create", fusion="generator")
_def("philox_uniform", R.philox_uniform, ("shape", "dtype"), category="random", fusion="generator")


def register_lowering(prim_name: str, backend: str, fn: Callable) -> None:
    """Fill the ``lowerings`` cell of ``prim_name`` for ``backend`` (a later registration for
    the same pair replaces the earlier one)."""
    prim = get_primitive(prim_name)
    if not backend or not isinstance(backend, str):
        raise ValueError(f"register_lowering: backend must be a non-empty name, got {backend!r}")
    if not callable(fn):
        raise TypeError(f"register_lowering: the lowering of {prim_name} must be callable")
    prim.lowerings[backend] = fn


def missing_cells(backend: str | None = None) -> list[tuple[str, str]]:
    """``(primitive, column)`` pairs that nobody filled: a complete table returns [].

    Always checks ``impl``, ``vjp`` (or a non-differentiable reason) and ``fusion`` (one of
    `FUSION_KINDS`); with ``backend`` also each primitive without a lowering for it, reported
    as ``(name, "lowering:<backend>")``.
    """
    missing = []
    for prim in PRIMITIVES.values():
        if prim.impl is None:
            missing.append((prim.name, "impl"))
        if prim.vjp is None and prim.nondiff_reason is None:
            missing.append((prim.name, "vjp"))
        if prim.fusion not in FUSION_KINDS:
            missing.append((prim.name, "fusion"))
        if backend is not None and backend not in prim.lowerings:
            missing.append((prim.name, f"lowering:{backend}"))
    return missing
