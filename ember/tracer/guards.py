"""Guards: what must hold for a compiled graph to be reused, and why it no longer does.

A graph is valid for the calls that look like the traced one:

- the arguments: the same structure; each tensor with the same shape, dtype, device and
  ``requires_grad``; every other Python value equal (numbers, strings, None) or, for other
  objects (modules, optimizers), the same object;
- grad mode;
- the objects the function reaches through globals and closures: the same objects;
- every module it reaches: the same ``training`` flags, parameters and buffers;
- every tensor the graph reads by reference: the same shape, dtype, ``requires_grad`` and
  whether its ``.grad`` is None (optimizers branch on it);
- every optimizer it stepped: the same state entries and hyperparameters other than the
  learning rate, SGD's momentum and Adam's betas (graph inputs read at every call, so a
  scheduler changing them does not recompile).

`Guards.check` returns None when all hold, else the first failure in words, which the
recompile log and the recompile-limit warning print.
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass

from ..frontend.autograd.grad_mode import STATE
from ..frontend.nn.modules.module import Module
from ..frontend.optim.optimizer import Optimizer
from ..frontend.tensor import Tensor
from . import pytree

__all__ = ["Roots", "find_roots", "call_spec", "Guards", "describe_leaf"]

# hyperparameters the optimizers read as graph inputs (`optim.optimizer.hyperparameter`)
_INPUT_HYPERS = ("lr", "betas", "momentum")
_STATIC = (int, float, bool, str, bytes, complex, type(None), type(Ellipsis), slice, range)


def describe_leaf(x) -> tuple:
    """The part of one argument leaf that a guard compares."""
    if isinstance(x, Tensor):
        return ("tensor", tuple(x.shape), x.dtype.name, str(x.device), x._requires_grad)
    if isinstance(x, _STATIC) or (isinstance(x, tuple) and all(isinstance(v, _STATIC) for v in x)):
        return ("value", type(x).__name__, x)
    from ..ir.dtypes import DType

    if isinstance(x, DType):
        return ("value", "dtype", x.name)
    return ("object", type(x).__name__, id(x))


def call_spec(args: tuple, kwargs: dict) -> tuple:
    leaves, spec = pytree.flatten((args, kwargs))
    return spec, tuple(describe_leaf(x) for x in leaves)


@dataclass
class Roots:
    """The objects a function reaches: by name, for identity guards and readable names."""

    named: list[tuple[str, str, object, object]]  # (label, kind, holder, object)
    modules: list[tuple[str, Module]]
    optimizers: list[tuple[str, Optimizer]]


def _interesting(x) -> bool:
    return isinstance(x, Tensor | Module | Optimizer)


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


def find_roots(fn, args: tuple, kwargs: dict, module: Module | None) -> Roots:
    """Modules, optimizers and tensors ``fn`` reaches through globals, closures and arguments
    (and one attribute level below a bound ``self``)."""
    named: list = []
    seen: set[int] = set()
    modules: list = []
    optimizers: list = []

    def visit(label: str, obj, kind: str, holder) -> None:
        if id(obj) in seen or not _interesting(obj):
            return
        seen.add(id(obj))
        named.append((label, kind, holder, obj))
        if isinstance(obj, Module):
            modules.append((label, obj))
        elif isinstance(obj, Optimizer):
            optimizers.append((label, obj))

    if module is not None:
        visit("self", module, "module", None)
    func = fn
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        func = getattr(fn, "__func__", fn)
        visit("self", owner, "self", None)
        for k, v in list(vars(owner).items()) if hasattr(owner, "__dict__") else []:
            visit(f"self.{k}", v, "attr", owner)
    code = getattr(func, "__code__", None)
    if code is not None:
        glb = getattr(func, "__globals__", {})
        for name in sorted(_code_names(code)):
            if name in glb:
                visit(name, glb[name], "global", glb)
        for name, cell in zip(code.co_freevars, getattr(func, "__closure__", None) or ()):
            with contextlib.suppress(ValueError):  # an empty cell
                visit(name, cell.cell_contents, "closure", cell)
    leaves, _ = pytree.flatten((args, kwargs))
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, Module | Optimizer):
            visit(f"arg{i}", leaf, "arg", None)
        elif hasattr(leaf, "__dict__") and not isinstance(leaf, Tensor | type):
            for k, v in list(vars(leaf).items()):
                visit(f"arg{i}.{k}", v, "attr", leaf)
    return Roots(named, modules, optimizers)


def tensor_names(roots: Roots) -> dict[int, str]:
    """Readable graph-input names for the tensors the roots hold (``fc.weight``, ``w``...)."""
    names: dict[int, str] = {}
    for label, m in roots.modules:
        prefix = f"{label}." if label else ""
        for n, p in m.named_parameters():
            names.setdefault(id(p), prefix + n)
        for n, b in m.named_buffers():
            names.setdefault(id(b), prefix + n)
    for label, _kind, _, obj in roots.named:
        if isinstance(obj, Tensor):
            names.setdefault(id(obj), label)
    for label, opt in roots.optimizers:
        for j, (p, st) in enumerate(opt.state.items()):
            pname = names.get(id(p), f"p{j}")
            for k, v in st.items():
                if isinstance(v, Tensor):
                    names.setdefault(id(v), f"{label}.{pname}.{k}")
    return names


def _training_flags(m: Module) -> tuple:
    return tuple(sub.training for sub in m.modules())


def _module_tensors(m: Module) -> tuple:
    return tuple(id(p) for p in m.parameters()) + tuple(id(b) for b in m.buffers())


def _optimizer_signature(opt: Optimizer) -> tuple:
    state = tuple((id(p), tuple(st)) for p, st in opt.state.items())
    groups = tuple(
        tuple(
            (k, id(v) if isinstance(v, Tensor) else v)
            for k, v in g.items()
            if k not in ("params", *_INPUT_HYPERS) and isinstance(v, _STATIC + (tuple,))
        )
        + (g.get("momentum", 0) != 0,)  # SGD branches on it
        + (tuple(id(p) for p in g["params"]),)
        for g in opt.param_groups
    )
    return state, groups


def _holder_value(kind: str, holder, label: str):
    if kind == "global":
        return holder.get(label)
    if kind == "closure":
        try:
            return holder.cell_contents
        except ValueError:
            return None
    if kind == "attr":
        return getattr(holder, label.rsplit(".", 1)[1], None)
    return _SAME


_SAME = object()


class Guards:
    """Everything a cache entry checks before it runs (see the module docstring)."""

    def __init__(self, spec: tuple, labels: list[str], roots: Roots, traced) -> None:
        self.spec = spec
        self.labels = labels
        self.grad_mode = STATE.enabled
        self.identities = [
            (label, kind, holder, id(obj)) for label, kind, holder, obj in roots.named
        ]
        self.modules = [
            (label, m, _training_flags(m), _module_tensors(m)) for label, m in roots.modules
        ]
        stepped = {id(o) for o in traced.optimizers}
        self.optimizers = [
            (label, opt, _optimizer_signature(opt))
            for label, opt in roots.optimizers
            if id(opt) in stepped
        ]
        for opt in traced.optimizers:
            if not any(opt is o for _, o, _ in self.optimizers):
                self.optimizers.append((type(opt).__name__, opt, _optimizer_signature(opt)))
        self.lifted = traced.lifted

    def check(self, spec: tuple) -> str | None:
        """None if the entry is valid for a call with ``spec`` (`call_spec`), else why not."""
        if spec != self.spec:
            return self._spec_difference(spec)
        if STATE.enabled != self.grad_mode:
            return f"grad mode changed: {_on(self.grad_mode)} -> {_on(STATE.enabled)}"
        for label, kind, holder, ident in self.identities:
            value = _holder_value(kind, holder, label)
            if value is not _SAME and id(value) != ident:
                return f"{kind} {label!r} is another object than when compiled"
        for label, m, flags, tensors in self.modules:
            if _training_flags(m) != flags:
                return f"{_name(label, m)}.training changed (train/eval mode)"
            if _module_tensors(m) != tensors:
                return f"{_name(label, m)} has other parameters or buffers than when compiled"
        for label, opt, signature in self.optimizers:
            now = _optimizer_signature(opt)
            if now[0] != signature[0]:
                return (
                    f"optimizer {label!r}: its state entries changed (the first step creates them)"
                )
            if now[1] != signature[1]:
                return f"optimizer {label!r}: a hyperparameter (lr, momentum...) changed"
        for t, (shape, dtype, req, grad_none), name in self.lifted:
            if t._data.shape != shape or t._data.dtype != dtype:
                return f"tensor {name!r} changed shape or dtype"
            if t._requires_grad != req:
                return f"tensor {name!r} changed requires_grad"
            if (t._grad is None) != grad_none:
                return f"tensor {name!r}: .grad is {'now None' if t._grad is None else 'now set'}"
        return None

    def _spec_difference(self, spec: tuple) -> str:
        if spec[0] != self.spec[0]:
            return "the arguments' structure changed"
        for i, (old, new) in enumerate(zip(self.spec[1], spec[1])):
            if old != new:
                label = self.labels[i] if i < len(self.labels) else f"arg{i}"
                return f"argument {label!r}: {_leaf_text(old)} -> {_leaf_text(new)}"
        return "the arguments changed"

    def describe(self) -> list[str]:
        """The guards in words, one per line (``ember.explain`` and ``EMBER_LOGS=guards``)."""
        lines = []
        for i, leaf in enumerate(self.spec[1]):
            label = self.labels[i] if i < len(self.labels) else f"arg{i}"
            lines.append(f"argument {label}: {_leaf_text(leaf)}")
        lines.append(f"grad mode is {_on(self.grad_mode)}")
        for label, kind, _, _ in self.identities:
            lines.append(f"{kind} {label or 'module'} is the same object")
        for label, m, flags, _ in self.modules:
            mode = "training" if flags[0] else "eval"
            lines.append(f"{_name(label, m)}: {mode} mode flags, same parameters and buffers")
        for label, _opt, _ in self.optimizers:
            lines.append(f"optimizer {label}: same state entries and hyperparameters")
        for _t, (shape, dtype, req, grad_none), name in self.lifted:
            grad = "None" if grad_none else "set"
            lines.append(f"tensor {name}: {dtype}{list(shape)}, requires_grad={req}, .grad {grad}")
        return lines


def _name(label: str, m: Module) -> str:
    return label or type(m).__name__


def _on(flag: bool) -> str:
    return "enabled" if flag else "disabled"


def _leaf_text(leaf: tuple) -> str:
    if leaf[0] == "tensor":
        _, shape, dtype, device, req = leaf
        return f"{dtype}{list(shape)} on {device}, requires_grad={req}"
    if leaf[0] == "value":
        return f"{leaf[1]} {leaf[2]!r}"
    return f"a {leaf[1]} object (id {leaf[2]:#x})"
