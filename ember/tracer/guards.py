"""Guards: what must hold for a compiled graph to be reused, and why it no longer does.

A cache entry is valid for calls that look like the traced one:

- the call spec: the arguments' structure; per tensor its shape, dtype, device,
  ``requires_grad``, layout class (contiguous or strided) and which other arguments share its
  storage (aliasing); every other leaf equal (numbers, strings, None) or the same object;
- grad mode;
- every Python value the trace read, along the source it read it by (`ember.tracer.watch`):
  ``G['S'] == 2.0``, ``L['self'].act is relu``, ``L['cfg']['scale'] == 0.5``, the keys of
  ``C['state']``, the shape, dtype and ``requires_grad`` of ``L['self'].fc.weight``...;
- for tensors whose ``.grad`` the trace read or wrote: whether it is None.

The guards of an entry compile into one Python function (generated source, as Dynamo's
guard manager does): straight-line checks over the call's roots, returning the index of the
first failing guard. Guards on module attributes and the tensors under them are gated by
`trace_state.EPOCH` (moved by every module attribute write and tensor metadata change), so
while nothing moved, a call skips them: the cost of a call's check does not grow with the
number of layers. `Guards.check` returns None when all hold, else the failure in words with
the source and the old and new value, which the recompile log and warning print.
"""

from __future__ import annotations

import keyword
import math
import operator

import numpy as np

from ..frontend import trace_state
from ..frontend.autograd.grad_mode import STATE
from ..frontend.tensor import Tensor
from ..ir.dtypes import DType
from . import pytree
from .aliasing import Aliasing, storage_of
from .sources import MISSING, CallContext, Source
from .watch import STATIC_TYPES, Guard, nonzero

__all__ = ["call_spec", "spec_of", "Guards", "describe_leaf"]


def describe_leaf(x) -> tuple:
    """The part of one argument leaf that a guard compares (for a view: where it lies in its
    base, which the trace's writes through it and reads of it assume)."""
    if isinstance(x, Tensor):
        arr = x._data
        layout = "contiguous" if arr.flags.c_contiguous else "strided"
        base = x._base_t
        if base is not None:
            b = base._data
            offset = arr.__array_interface__["data"][0] - b.__array_interface__["data"][0]
            layout = ("view", b.shape, offset, arr.strides)
        return ("tensor", tuple(arr.shape), x.dtype.name, str(x.device), x._requires_grad, layout)
    if isinstance(x, STATIC_TYPES) or (
        isinstance(x, tuple) and all(isinstance(v, STATIC_TYPES) for v in x)
    ):
        if isinstance(x, DType):
            return ("value", "dtype", x.name)
        if type(x) is float:  # (by its bits: -0.0 is not 0.0, and NaN equals itself)
            return ("value", "float", x.hex())
        return ("value", type(x).__name__, x)
    return ("object", type(x).__name__, id(x))


def call_spec(args: tuple, kwargs: dict) -> tuple:
    """``(structure, leaf descriptions, aliasing)`` of a call (see the module docstring)."""
    leaves, structure = pytree.flatten((args, kwargs))
    return spec_of(leaves, structure)


def spec_of(leaves: list, structure) -> tuple:
    """`call_spec` from the call's flattened arguments. Aliasing: per tensor leaf, the first
    leaf that is the same object and the first that shares its storage (``f(x, x)`` and
    ``f(x[:2], x[1:])`` are different programs)."""
    spec = structure
    same: dict[int, int] = {}
    shared: dict[int, int] = {}
    alias = []
    for i, x in enumerate(leaves):
        if isinstance(x, Tensor):
            alias.append((i, same.setdefault(id(x), i), shared.setdefault(storage_of(x), i)))
    return spec, tuple(describe_leaf(x) for x in leaves), tuple(alias)


class Guards:
    """Everything a cache entry checks before it runs (see the module docstring)."""

    def __init__(self, spec: tuple, labels: list[str], guards: list[Guard], aliasing=None) -> None:
        self.spec = spec
        self.labels = labels
        self.grad_mode = STATE.enabled
        self.guards = guards
        self._seen = [-1]
        self._fn = _generate(guards, self._seen)
        self.aliasing = Aliasing(*aliasing) if aliasing else None

    def check(self, spec: tuple, ctx: CallContext) -> str | None:
        """None if the entry is valid for a call with ``spec`` (`call_spec`), else why not."""
        if spec != self.spec:
            return self._spec_difference(spec)
        if STATE.enabled != self.grad_mode:
            return f"grad mode changed: {_on(self.grad_mode)} -> {_on(STATE.enabled)}"
        try:
            failed = self._fn(ctx, trace_state.EPOCH)
        except Exception:
            failed = -2
        if failed != -1:
            return self._explain(ctx)
        if self.aliasing is not None and not self.aliasing.holds(ctx):
            return self.aliasing.explain(ctx)
        return None

    def _explain(self, ctx: CallContext) -> str:
        for g in self.guards:
            now = g.source.get_or_missing(ctx)
            if g.kind == "absent":
                ok = now is MISSING
            else:
                ok = now is not MISSING and _holds(g, now)
            if not ok:
                return _failure_text(g, now)
        return "a guard failed"

    def _spec_difference(self, spec: tuple) -> str:
        if spec[0] != self.spec[0]:
            return "the arguments' structure changed"
        for i, (old, new) in enumerate(zip(self.spec[1], spec[1])):
            if old != new:
                return f"argument {self._label(i)!r}: {_leaf_text(old)} -> {_leaf_text(new)}"
        if spec[2] != self.spec[2]:
            return (
                "the arguments' aliasing changed (which tensor arguments share storage): "
                f"{self.spec[2]} -> {spec[2]}"
            )
        return "the arguments changed"

    def _label(self, i: int) -> str:
        return self.labels[i] if i < len(self.labels) else f"arg{i}"

    def describe(self) -> list[str]:
        """The guards in words, one per line (``ember.explain`` and ``EMBER_LOGS=guards``)."""
        lines = [
            f"argument {self._label(i)}: {_leaf_text(leaf)}" for i, leaf in enumerate(self.spec[1])
        ]
        if any(a[1] != a[0] or a[2] != a[0] for a in self.spec[2]):
            lines.append(f"argument aliasing: {self.spec[2]}")
        lines.append(f"grad mode is {_on(self.grad_mode)}")
        lines += [_guard_text(g) for g in self.guards]
        return lines


# ---- evaluating one guard in Python (failure messages) -----------------------------------


def _holds(g: Guard, now) -> bool:
    kind, want = g.kind, g.expected
    if kind == "eq":
        return _same_static(now, want)
    if kind == "id":
        return now is want
    if kind == "type":
        return type(now) is want
    if kind == "len":
        return type(now) is want[0] and len(now) == want[1]
    if kind == "keys":
        return type(now) is want[0] and _same_keys(tuple(now), want[1])
    if kind == "tensor":
        return isinstance(now, Tensor) and _meta(now) == want
    if kind == "array":
        return (
            type(now) is np.ndarray
            and now.shape == want.shape
            and now.dtype == want.dtype
            and now.tobytes() == want.tobytes()
        )
    if kind == "nonzero":
        return nonzero(now) == want
    if kind == "grad":
        return (now._grad is None) is want
    raise AssertionError(kind)


def _same_static(now, want) -> bool:
    """Equal with the same types all the way down (and floats' sign of zero)."""
    if type(now) is not type(want):
        return False
    if type(want) in (tuple, frozenset):
        if len(now) != len(want):
            return False
        if type(want) is frozenset:
            return now == want and sorted(map(repr, now)) == sorted(map(repr, want))
        return all(_same_static(a, b) for a, b in zip(now, want))
    if type(want) is float:
        return now.hex() == want.hex() or _both_nan(now, want)
    return bool(now == want)


def _meta(t: Tensor) -> tuple:
    return (type(t), t._data.shape, t._data.dtype, t._requires_grad)


def _both_nan(a, b) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def _same_keys(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y or (_static_key(x) and x == y) for x, y in zip(a, b))


def _static_key(x) -> bool:
    return type(x) in (str, int, float, bool, bytes, type(None))  # (not IntEnum & co.)


# ---- generating the check function --------------------------------------------------------


def _generate(guards: list[Guard], seen: list):
    """One function ``check(ctx, EPOCH) -> index of the first failing guard, or -1``."""
    consts: dict[str, object] = {"Tensor": Tensor, "ndarray": np.ndarray, "is_": operator.is_}
    names: dict[int, str] = {}

    def const(value) -> str:
        name = names.get(id(value))
        if name is None or consts.get(name) is not value:
            name = f"K{len(consts)}"
            consts[name] = value
            names[id(value)] = name
        return name

    gated = [(i, g) for i, g in enumerate(guards) if g.gated]
    plain = [(i, g) for i, g in enumerate(guards) if not g.gated]
    lines = [
        "def check(ctx, EPOCH):",
        "    L = ctx.leaves",
        "    S = ctx.self_obj",
        "    CL = ctx.cells",
    ]
    if gated:
        lines.append(f"    if EPOCH[0] != {const(seen)}[0]:")
        for i, g in gated:
            lines.append(f"        if not ({_expr(g, const)}): return {i}")
        lines.append(f"        {const(seen)}[0] = EPOCH[0]")
    for i, g in plain:
        lines.append(f"    if not ({_expr(g, const)}): return {i}")
    lines.append("    return -1")
    namespace = dict(consts)
    exec(compile("\n".join(lines), "<ember guards>", "exec"), namespace)  # noqa: S102
    return namespace["check"]


def _source_expr(src: Source, const) -> str:
    root = src.root
    if root == "arg":
        out = f"L[{src.key}]"
    elif root == "self":
        out = "S"
    elif root == "global":
        d, name = src.key
        out = f"{const(d)}[{name!r}]"
    elif root == "cell":
        out = f"CL[{src.key}].cell_contents"
    elif root == "default":
        out = f"ctx.defaults[{src.key}][1]"
    else:
        out = f"{const(src.key)}()"
    for step in src.steps:
        if step[0] == "attr":
            name = step[1]
            if name.isidentifier() and not keyword.iskeyword(name):
                out += f".{name}"
            else:
                out = f"getattr({out}, {name!r})"
        else:
            key = step[1]
            out += f"[{key!r}]" if _static_key(key) and type(key) is not float else (
                f"[{const(key)}]"
            )  # fmt: skip
    return out


def _expr(g: Guard, const) -> str:
    x = _source_expr(g.source, const)
    kind, want = g.kind, g.expected
    if kind == "eq":
        if isinstance(want, float) and math.isnan(want):
            return f"type({x}) is float and {x} != {x}"
        if type(want) is float:  # (-0.0 == 0.0, but 1 / -0.0 is -inf)
            return f"type({x}) is float and {x}.hex() == {want.hex()!r}"
        if type(want) in (tuple, frozenset):  # (2,) == (2.0,): compare the element types too
            return f"{const(_same_static)}({x}, {const(want)})"
        return f"type({x}) is {const(type(want))} and {x} == {const(want)}"
    if kind == "id":
        return f"{x} is {const(want)}"
    if kind == "type":
        return f"type({x}) is {const(want)}"
    if kind == "len":
        return f"type({x}) is {const(want[0])} and len({x}) == {want[1]}"
    if kind == "keys":
        cls, keys = want
        if all(_static_key(k) for k in keys):
            return f"type({x}) is {const(cls)} and tuple({x}) == {const(keys)}"
        return (
            f"type({x}) is {const(cls)} and len({x}) == {len(keys)} and "
            f"all(map(is_, {x}, {const(keys)}))"
        )
    if kind == "tensor":
        cls, shape, dtype, req = want
        return (
            f"type({x}) is {const(cls)} and {x}._data.shape == {shape!r} and "
            f"{x}._data.dtype == {const(dtype)} and {x}._requires_grad is {req}"
        )
    if kind == "array":
        return (
            f"type({x}) is ndarray and {x}.shape == {want.shape!r} and "
            f"{x}.dtype == {const(want.dtype)} and {x}.tobytes() == {const(want.tobytes())}"
        )
    if kind == "absent":
        holder = _source_expr(g.source.parent(), const)
        return f"not hasattr({holder}, {g.source.steps[-1][1]!r})"
    if kind == "nonzero":
        return f"{const(nonzero)}({x}) == {const(want)}"
    if kind == "grad":
        return f"({x}._grad is None) is {want}"
    raise AssertionError(kind)


# ---- words ---------------------------------------------------------------------------------


def _short(value) -> str:
    if isinstance(value, Tensor):
        return f"a tensor {value.dtype.name}{list(value._data.shape)}"
    if isinstance(value, list | tuple) and any(isinstance(v, Tensor) for v in value):
        value = [f"<tensor {v.dtype.name}{list(v._data.shape)}>" if isinstance(v, Tensor) else v
                 for v in value]  # fmt: skip
        text = "[" + ", ".join(v if isinstance(v, str) else repr(v) for v in value) + "]"
        return text if len(text) <= 80 else text[:77] + "..."
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _failure_text(g: Guard, now) -> str:
    name = g.source.name
    if now is MISSING and g.kind != "absent":
        return f"{name} no longer exists"
    kind, want = g.kind, g.expected
    if kind == "eq":
        return f"{name} changed: {_short(want)} -> {_short(now)}"
    if kind == "id":
        return f"{name} is another object than when compiled: {_short(want)} -> {_short(now)}"
    if kind == "type":
        return f"{name} changed type: {want.__name__} -> {type(now).__name__}"
    if kind == "len":
        if type(now) is not want[0]:
            return f"{name} changed type: {want[0].__name__} -> {type(now).__name__}"
        return f"len({name}) changed: {want[1]} -> {len(now)}"
    if kind == "keys":
        return f"the keys of {name} changed: {_short(list(want[1]))} -> {_short(list(now))}"
    if kind == "tensor":
        if not isinstance(now, Tensor):
            return f"{name} is no longer a tensor: {_short(now)}"
        _, shape, dtype, req = want
        if now._requires_grad != req:
            return f"{name}.requires_grad changed: {req} -> {now._requires_grad}"
        return (
            f"{name} changed shape or dtype: {dtype}{list(shape)} -> "
            f"{now._data.dtype}{list(now._data.shape)}"
        )
    if kind == "array":
        return f"the numpy array {name} changed (its values, shape or dtype)"
    if kind == "absent":
        return f"{name} now exists (it did not when compiled)"
    if kind == "nonzero":
        return f"{name} changed between zero and nonzero: {want} -> {nonzero(now)}"
    if kind == "grad":
        return f"{name}.grad is {'now None' if now._grad is None else 'now set'}"
    return f"{name} changed"


def _guard_text(g: Guard) -> str:
    name = g.source.name
    kind, want = g.kind, g.expected
    if kind == "eq":
        return f"{name} == {_short(want)}"
    if kind == "id":
        return f"{name} is {_short(want)}"
    if kind == "type":
        return f"type({name}) is {want.__name__}"
    if kind == "len":
        return f"len({name}) == {want[1]}"
    if kind == "keys":
        return f"keys of {name} == {_short(list(want[1]))}"
    if kind == "tensor":
        _, shape, dtype, req = want
        return f"{name}: tensor {dtype}{list(shape)}, requires_grad={req}"
    if kind == "array":
        return f"{name}: numpy array {want.dtype}{list(want.shape)} with the same values"
    if kind == "absent":
        return f"{name} does not exist"
    if kind == "nonzero":
        return f"{name} nonzero is {want}"
    if kind == "grad":
        return f"{name}.grad is {'None' if want else 'set'}"
    return name


def _on(flag: bool) -> str:
    return "enabled" if flag else "disabled"


def _leaf_text(leaf: tuple) -> str:
    if leaf[0] == "tensor":
        _, shape, dtype, device, req, layout = leaf
        if isinstance(layout, tuple):
            _, base, offset, strides = layout
            where = f", a view of a {list(base)} base at byte {offset}, strides {strides}"
        else:
            where = ", strided" if layout == "strided" else ""
        return f"{dtype}{list(shape)} on {device}, requires_grad={req}{where}"
    if leaf[0] == "value":
        value = float.fromhex(leaf[2]) if leaf[1] == "float" else leaf[2]
        return f"{leaf[1]} {value!r}"
    return f"a {leaf[1]} object (id {leaf[2]:#x})"
