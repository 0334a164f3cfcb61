"""The kernel IR: what one fused group of graph nodes computes, element by element.

A `Kernel` says *what* is computed per output element, not how loops are tiled or threaded
(the backend decides). It has

- **buffers**: its parameters, each with a dtype, a shape, strides and an offset in elements,
  and a role (``in``, ``out``);
- a **parallel domain**: the extents of the variables ``p0, p1, ...``; every point of it is
  independent, so a backend may split it across threads in any way;
- **stages**, run in order at each point of the parallel domain. A stage loops over its own
  extents (variables ``r0, r1, ...``, fresh in each stage) or, with no extents, runs once.
  Its body is scalar SSA: ``load`` a buffer at an index (one `ember.ir.index.Expr` per buffer
  dimension), arithmetic named as the graph's primitives, ``reduce`` (a value of the whole
  loop, usable by later stages), ``scan`` (the running value at each iteration) and ``store``.

That is enough for every fused group of DESIGN.md section 4: a pointwise kernel is one stage
without extents over the output's domain; softmax is a parallel domain of rows and three stages
over the row (max; exp and sum; scale and store); layer norm's forward is three stages, its
statistics stored from a stage without extents. Views are index maps inside loads, so they cost
nothing. A value defined inside a stage with extents is local to that stage, except the result
of a ``reduce``; a later stage that needs a local value of an earlier one computes it again
(the lowering emits the ops again: loads and arithmetic are cheaper than a trip to memory).

A `GemmKernel` is the extern kernel for matmul (a BLAS call), with an optional pointwise
`Kernel` as its epilogue, run over the same output rows right after the product is computed.

Every kernel carries the file:line of each graph node it holds (``locs``). `format_kernel`
prints the text form; `verify_kernel` checks scoping, types and index variables.

Text form (one kernel):

    kernel @softmax_0(in0: f32[4096,1024]{1024,1}+0 in, out0: f32[4096,1024]{1024,1}+0 out)
        parallel p0 < 4096  # model.py:12
      stage r0 < 1024:
        %0 = load in0[p0, r0] : f32
        %1 = reduce max %0 : f32
      stage r0 < 1024:
        ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .dtypes import DType
from .errors import GraphError
from .index import Expr

__all__ = [
    "Buffer",
    "GemmKernel",
    "Kernel",
    "KOp",
    "Stage",
    "format_kernel",
    "verify_kernel",
    "REDUCE_KINDS",
    "SCAN_KINDS",
    "ELEMENTWISE",
]

REDUCE_KINDS = ("sum", "prod", "max", "min", "argmax", "argmin")
SCAN_KINDS = ("sum",)

# Scalar ops of a kernel body named as the graph's elementwise primitives, by operand count.
UNARY = (
    "neg", "abs", "sign", "floor", "ceil", "round", "trunc", "exp", "log", "sqrt", "rsqrt",
    "sin", "cos", "tanh", "sigmoid", "erf", "log1p", "expm1", "logical_not", "bitwise_not",
)  # fmt: skip
BINARY = (
    "add", "sub", "mul", "div", "maximum", "minimum", "remainder", "floordiv", "pow",
    "bitwise_and", "bitwise_or", "bitwise_xor", "lshift", "rshift",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
)  # fmt: skip
ELEMENTWISE = frozenset(UNARY + BINARY + ("where", "convert"))
_OTHER = frozenset(("load", "store", "const", "index", "reduce", "scan", "philox"))


@dataclass(frozen=True)
class Buffer:
    """A kernel parameter: ``shape`` elements of ``dtype`` at ``offset + sum(i*stride)``."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0
    role: str = "in"  # "in" | "out"

    def __str__(self) -> str:
        shape = ",".join(map(str, self.shape))
        strides = ",".join(map(str, self.strides))
        return f"{self.name}: {self.dtype.short}[{shape}]{{{strides}}}+{self.offset} {self.role}"


@dataclass
class KOp:
    """One scalar SSA op: ``%id = op args {attrs} : dtype``.

    ``args`` are the ids of earlier ops. Attributes by op: ``load``/``store`` ``buffer`` (an
    index into the kernel's buffers) and ``index`` (a tuple of `Expr`); ``const`` ``value``;
    ``index`` ``expr`` (an `Expr`: a loop position as an int64 value); ``reduce``/``scan``
    ``kind``; ``convert`` the target is ``dtype``; ``philox`` ``index`` (an `Expr`: the
    element's linear position) with args (seed, offset). ``store`` has no result dtype (None).
    """

    id: int
    op: str
    args: tuple[int, ...]
    dtype: DType | None
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stage:
    """A loop over ``extents`` (none: run once) with a scalar body; see the module docstring."""

    extents: tuple[int, ...]
    ops: list[KOp] = field(default_factory=list)
    reverse: bool = False  # scans that run from the end (cumsum reverse=True)

    def var_names(self) -> tuple[str, ...]:
        return tuple(f"r{k}" for k in range(len(self.extents)))


@dataclass
class Kernel:
    """A fused loop kernel; see the module docstring."""

    name: str
    buffers: list[Buffer]
    parallel: tuple[int, ...]
    stages: list[Stage]
    locs: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()  # the graph ops it computes, for logs and kernel counts

    def var_names(self) -> tuple[str, ...]:
        return tuple(f"p{k}" for k in range(len(self.parallel)))

    def ops(self) -> list[KOp]:
        return [op for stage in self.stages for op in stage.ops]

    def __str__(self) -> str:
        return format_kernel(self)


@dataclass
class GemmKernel:
    """``out[b] = a[b] @ b[b]`` (``op(a)`` transposed when ``trans_a``) through a BLAS, then
    ``epilogue`` (a pointwise `Kernel` over ``out``'s domain, run in place) if any.

    ``batch`` is the number of matrices; ``a``, ``b`` and ``out`` are buffers of the group
    (a batch-broadcast operand has batch stride 0).
    """

    name: str
    buffers: list[Buffer]
    a: int
    b: int
    out: int
    batch: int
    m: int
    n: int
    k: int
    trans_a: bool = False
    trans_b: bool = False
    epilogue: Kernel | None = None
    locs: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ("matmul",)

    def __str__(self) -> str:
        return format_kernel(self)


# -- text ----------------------------------------------------------------------------------


def _format_op(op: KOp, buffers: Sequence[Buffer]) -> str:
    args = ", ".join(f"%{a}" for a in op.args)
    a = op.attrs
    if op.op in ("load", "store"):
        index = ", ".join(str(e) for e in a["index"])
        target = f"{buffers[a['buffer']].name}[{index}]"
        if op.op == "store":
            return f"store {target}, {args}"
        body = f"load {target}"
    elif op.op == "const":
        body = f"const {a['value']!r}"
    elif op.op == "index":
        body = f"index {a['expr']}"
    elif op.op in ("reduce", "scan"):
        body = f"{op.op} {a['kind']} {args}"
    elif op.op == "philox":
        body = f"philox {args} @ {a['index']}"
    else:
        body = f"{op.op} {args}" if args else op.op
    return f"%{op.id} = {body} : {op.dtype.short}"


def format_kernel(kernel: Kernel | GemmKernel) -> str:
    params = ", ".join(str(b) for b in kernel.buffers)
    locs = f"  # {', '.join(kernel.locs)}" if kernel.locs else ""
    if isinstance(kernel, GemmKernel):
        bufs = kernel.buffers
        ta = "T" if kernel.trans_a else ""
        tb = "T" if kernel.trans_b else ""
        lines = [
            f"gemm @{kernel.name}({params}){locs}",
            f"    {bufs[kernel.out].name} = {bufs[kernel.a].name}{ta} @ {bufs[kernel.b].name}{tb}"
            f"  batch={kernel.batch} m={kernel.m} n={kernel.n} k={kernel.k}",
        ]
        if kernel.epilogue is not None:
            lines.append("  epilogue:")
            lines.extend("  " + line for line in format_kernel(kernel.epilogue).splitlines())
        return "\n".join(lines)
    lines = [f"kernel @{kernel.name}({params}){locs}"]
    par = ", ".join(f"{v} < {n}" for v, n in zip(kernel.var_names(), kernel.parallel))
    lines.append(f"    parallel {par}" if par else "    parallel (none)")
    for stage in kernel.stages:
        ext = ", ".join(f"{v} < {n}" for v, n in zip(stage.var_names(), stage.extents))
        rev = " reverse" if stage.reverse else ""
        lines.append(f"  stage {ext}{rev}:" if ext else "  stage:")
        lines.extend(f"    {_format_op(op, kernel.buffers)}" for op in stage.ops)
    return "\n".join(lines)


# -- verifier ------------------------------------------------------------------------------


def _fail(kernel, message: str) -> GraphError:
    return GraphError(f"kernel @{kernel.name}", message, None)


def _check_index(kernel, op: KOp, exprs, allowed_vars: set[str], defined: dict) -> None:
    for e in exprs:
        if not isinstance(e, Expr):
            raise _fail(kernel, f"%{op.id}: an index must be an Expr, got {e!r}")
        stray = e.vars() - allowed_vars
        if stray:
            raise _fail(kernel, f"%{op.id}: index uses {sorted(stray)} outside their loops")
        for ref in e.dyns():
            if ref not in defined:
                raise _fail(kernel, f"%{op.id}: index reads %{ref} before it is defined")


def verify_kernel(kernel: Kernel | GemmKernel) -> None:
    """Raise `GraphError` naming the kernel and the op if ``kernel`` is malformed."""
    if isinstance(kernel, GemmKernel):
        for i in (kernel.a, kernel.b, kernel.out):
            if not 0 <= i < len(kernel.buffers):
                raise _fail(kernel, f"buffer {i} does not exist")
        if kernel.epilogue is not None:
            verify_kernel(kernel.epilogue)
        return
    row_vars = set(kernel.var_names())
    visible: dict[int, DType | None] = {}  # values of the whole row
    for stage in kernel.stages:
        local: dict[int, DType | None] = dict(visible)
        allowed = row_vars | set(stage.var_names())
        for op in stage.ops:
            if op.id in local:
                raise _fail(kernel, f"%{op.id} is defined twice")
            if op.op not in ELEMENTWISE and op.op not in _OTHER:
                raise _fail(kernel, f"%{op.id}: unknown op {op.op!r}")
            for a in op.args:
                if a not in local:
                    raise _fail(kernel, f"%{op.id} reads %{a}, which is not visible here")
            if op.op in ("load", "store"):
                b = op.attrs.get("buffer")
                if not isinstance(b, int) or not 0 <= b < len(kernel.buffers):
                    raise _fail(kernel, f"%{op.id}: buffer {b!r} does not exist")
                buf = kernel.buffers[b]
                if len(op.attrs["index"]) != len(buf.shape):
                    raise _fail(kernel, f"%{op.id}: {len(buf.shape)}-d buffer {buf.name} indexed "
                                f"with {len(op.attrs['index'])} expressions")  # fmt: skip
                _check_index(kernel, op, op.attrs["index"], allowed, local)
                if op.op == "store" and buf.role != "out":
                    raise _fail(kernel, f"%{op.id}: store into input buffer {buf.name}")
                if op.op == "load" and op.dtype is not buf.dtype:
                    raise _fail(kernel, f"%{op.id}: load of {buf.dtype.short} typed {op.dtype}")
            elif op.op in ("index", "philox"):
                key = "expr" if op.op == "index" else "index"
                _check_index(kernel, op, (op.attrs[key],), allowed, local)
            elif op.op in ("reduce", "scan"):
                kinds = REDUCE_KINDS if op.op == "reduce" else SCAN_KINDS
                if op.attrs.get("kind") not in kinds:
                    raise _fail(kernel, f"%{op.id}: unknown {op.op} kind {op.attrs.get('kind')}")
                if not stage.extents:
                    raise _fail(kernel, f"%{op.id}: {op.op} in a stage without a loop")
            if op.op != "store" and not isinstance(op.dtype, DType):
                raise _fail(kernel, f"%{op.id}: no dtype")
            local[op.id] = op.dtype
            if op.op == "reduce" or not stage.extents:
                visible[op.id] = op.dtype
