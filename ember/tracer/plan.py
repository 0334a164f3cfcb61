"""What a trace produced, as plain data: where each graph input comes from at a call, what
each extra output is written back to, which Python writes and deferred calls the compiled
program repeats after each run.

`ember.tracer.trace` makes a `Traced`; `ember.tracer.program` runs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..frontend.optim.optimizer import hyperparameter_value
from ..frontend.tensor import Tensor
from ..ir.graph import Graph
from . import pytree
from .sources import CallContext, Source
from .watch import Guard

__all__ = [
    "InputSource", "WriteBack", "Store", "Deferred", "Traced", "tensor_of", "input_array",
    "input_name", "build",
]  # fmt: skip

_NAME = re.compile(r"[^0-9A-Za-z_]")
_HIDDEN_STEPS = {"_modules", "_parameters", "_buffers", "state", "cell_contents", "__closure__"}


@dataclass(frozen=True)
class InputSource:
    """Where a graph input's array comes from at call time.

    ``kind``: ``"tensor"`` (the tensor that `Source` ``obj`` gives now: an argument, or a
    tensor reached by a path such as ``L['self'].fc.weight``; a tensor with no path is pinned
    by a weak reference), ``"const"`` (``obj`` is a numpy array captured at trace time),
    ``"seed"``/``"offset"`` (the state of generator ``obj``), ``"hyper"`` (``obj`` is
    ``(param_group, key, index)``: an optimizer hyperparameter such as the learning rate).
    """

    kind: str
    obj: Any = None


def tensor_of(src: InputSource, ctx: CallContext) -> Tensor | None:
    """The tensor a ``"tensor"`` input reads in this call (None for other kinds)."""
    return src.obj.get(ctx) if src.kind == "tensor" else None


def input_array(src: InputSource, tensor: Tensor | None = None) -> np.ndarray:
    """The array graph input ``src`` takes now (``tensor``: `tensor_of` for this call)."""
    kind = src.kind
    if kind == "tensor":
        return tensor._data
    if kind == "const":
        return src.obj
    if kind == "hyper":
        return np.array(hyperparameter_value(*src.obj), dtype=np.float64)
    return src.obj.operand_arrays()[0 if kind == "seed" else 1]


def input_name(source: Source) -> str:
    """A readable graph-input name for a source: ``L['self'].fc.weight`` -> self_fc_weight."""
    parts = [source.label.split("[", 1)[1].strip("]'\"") if "[" in source.label else source.label]
    if source.root == "global" and source.label.count("[") > 1:
        parts = [source.label.rsplit("[", 1)[1].strip("]'\"")]
    for step in source.steps:
        if step[0] == "attr":
            if step[1] not in _HIDDEN_STEPS:
                parts.append(step[1])
        else:
            parts.append(step[2].strip("<>'\""))
    name = _NAME.sub("_", "_".join(p for p in parts if p))
    return re.sub("_+", "_", name).strip("_") or "t"


@dataclass(frozen=True)
class WriteBack:
    """What the runtime does with an extra graph output for input ``input`` (an index into
    the inputs): ``"data"`` writes the output into the tensor's storage, ``"grad"`` sets its
    ``.grad`` (``output`` -1 means None)."""

    kind: str
    output: int
    input: int


@dataclass(frozen=True)
class Store:
    """A Python write the compiled program repeats after each run: ``source`` takes the
    value `build` makes of ``template`` (``whole``: a list's whole content; a MISSING template
    deletes)."""

    source: Source
    template: Any
    whole: bool = False


@dataclass(frozen=True)
class Deferred:
    """A call deferred to after the graph (``LRScheduler.step``): ``fn(obj, *args,
    **kwargs)`` with the arguments built from ``template``."""

    obj: Any
    fn: Any
    template: Any


def build(template, outs: list, tensors: list, user: list = ()):
    """The value of a store template for one run (leaves: ``("out", i)`` a new tensor of
    graph output i, ``("user", i)`` the result tensor of output i, ``("in", i)`` the tensor
    input i read, ``("const", v)`` v itself)."""
    spec, leaves = template
    values = []
    for kind, x in leaves:
        if kind == "out":
            values.append(Tensor._make(outs[x]))
        elif kind == "user":
            values.append(user[x])
        elif kind == "in":
            values.append(tensors[x])
        else:
            values.append(x)
    return pytree.unflatten(spec, values)


@dataclass(eq=False)
class Traced:
    """One trace: the graph and how to feed it and use its results (see module docs)."""

    graph: Graph
    sources: list[InputSource]
    out_spec: Any
    out_leaves: list  # per output leaf: an output index (int), ("in", input) or ("static", v)
    num_user_outputs: int
    writebacks: list[WriteBack]
    stores: list[Store]
    deferred: list[Deferred]
    rng: list[tuple[Any, int]]  # (generator, counters drawn per call)
    guards: list[Guard]  # what the trace read (`ember.tracer.watch`), and .grad checks
    aliasing: tuple | None  # (tensor sources, storage pattern, gated): `guards.Aliasing`
    requires_grad_inputs: list[int]  # graph inputs eager autograd would send gradients to
    grad_outputs: list[int]  # user outputs that required grad (differentiable) while tracing
    backward_ran: bool
    no_grad_values: set = field(default_factory=set)  # computed under no_grad from grad inputs
    # explain's traces: (loc, reason, node index, the value Python read or None)
    breaks: list = field(default_factory=list)
