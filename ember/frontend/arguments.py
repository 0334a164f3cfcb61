"""Argument checks at the public op boundary, as PyTorch's argument parser makes them.

PyTorch refuses ``torch.exp([1., 2.])``, ``torch.cat(t)`` or ``F.relu(None)`` with a TypeError
that names the op and the argument, before any work is done. ember's op functions are plain
Python, so a wrong kind of argument would otherwise fail deep inside (``'list' object has no
attribute 'dtype'``). `install` wraps every public op function once (the modules' ``__all__``)
with a check built from its signature: an argument is checked by its *name*, with PyTorch's
conventions (``input``, ``target``, ``weight``... are tensors; ``other`` is a tensor or a
number; ``tensors`` is a sequence of tensors), so no op lists its own checks.

An allocation that fails names the op the user called (``zeros``, not the ``full`` primitive
it runs). The wrapper also gives every error the op raises the user's ``file:line``: a builtin
``TypeError``/``ValueError``/``IndexError``/``RuntimeError`` raised inside becomes an
`EmberError` of the same builtin class that names the op, so ``except ValueError`` still works.
Tensor methods keep the unwrapped functions (``self`` is a tensor by construction).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys

import numpy as np

from ..ir.errors import EmberError, OutOfMemoryError
from .tensor import Tensor

__all__ = ["install", "checked", "ArgumentTypeError", "ArgumentValueError", "describe_kind"]


class ArgumentTypeError(EmberError, TypeError):
    """An argument of the wrong kind: a list where a tensor belongs, a str for a size..."""


class ArgumentValueError(EmberError, ValueError):
    """An argument of the right kind with a value the op does not accept."""


class _RuntimeError(EmberError, RuntimeError):
    """A RuntimeError raised inside an op, given the op's name and the user's line."""


class _IndexError(EmberError, IndexError):
    """An IndexError raised inside an op, given the op's name and the user's line."""


class _NotImplementedError(EmberError, NotImplementedError):
    """A NotImplementedError raised inside an op, given the op's name and the user's line."""


_LOCATED = {
    TypeError: ArgumentTypeError,
    ValueError: ArgumentValueError,
    RuntimeError: _RuntimeError,
    IndexError: _IndexError,
    NotImplementedError: _NotImplementedError,
}

_TENSOR_OR_NUMBER = (Tensor, bool, int, float, complex, np.generic)


def describe_kind(x) -> str:
    """The type name PyTorch's messages use: ``list``, ``NoneType``, ``numpy.ndarray``."""
    if isinstance(x, Tensor):
        return "Tensor"
    cls = type(x)
    module = cls.__module__
    return cls.__name__ if module == "builtins" else f"{module}.{cls.__name__}"


def _tensor(x) -> bool:
    return isinstance(x, Tensor)


def _tensor_or_number(x) -> bool:
    return isinstance(x, _TENSOR_OR_NUMBER)


# checked argument names -> (test, what the message says is expected)
_RULES = {
    name: (_tensor, "Tensor")
    for name in (
        "input", "tensor", "target", "x1", "x2", "mask", "index", "indices", "mat2", "vec",
        "vec2", "condition", "query", "key", "weight", "bias", "running_mean", "running_var",
        "source", "src",
    )
}  # fmt: skip
_RULES["other"] = (_tensor_or_number, "Tensor or Number")

# tensors that may be None though they have no default (``batch_norm(x, None, None)``)
_OPTIONAL = frozenset({"running_mean", "running_var"})

# where PyTorch takes a number too, or the name means something else
_OVERRIDES = {
    ("pow", "input"): (_tensor_or_number, "Tensor or Number"),
    ("where", "input"): (_tensor_or_number, "Tensor or Number"),
    ("lerp", "weight"): (_tensor_or_number, "Tensor or Number"),
    ("scatter", "src"): (_tensor_or_number, "Tensor or Number"),
    ("movedim", "source"): None,
    ("select", "index"): None,  # an int
    ("multi_head_attention_forward", "key"): None,  # checked by the function
}


def _check_tensors(op: str, name: str, pos: int | None, value, varargs: bool) -> None:
    """``tensors``: a tuple or list of tensors (varargs: each one, or a single sequence)."""
    if varargs:
        items = value[0] if len(value) == 1 and isinstance(value[0], list | tuple) else value
    else:
        if not isinstance(value, list | tuple):
            where = f" (position {pos + 1})" if pos is not None else ""
            raise ArgumentTypeError(
                op,
                f"argument '{name}'{where} must be a tuple or list of Tensors, "
                f"not {describe_kind(value)}",
            )
        items = value
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise ArgumentTypeError(
                op,
                f"expected Tensor as element {i} in argument '{name}', "
                f"but got {describe_kind(item)}",
            )


def _plan(fn, op: str):
    """``(position, name, test, expected, none_ok)`` per checked parameter, and the varargs
    ``tensors`` position (or None)."""
    checks = []
    varargs = None
    params = inspect.signature(fn).parameters
    names = set(params)
    for pos, p in enumerate(params.values()):
        if p.name == "tensors":
            if p.kind is p.VAR_POSITIONAL:
                varargs = pos
            else:
                checks.append((pos, p.name, None, "", False))
            continue
        rule = _OVERRIDES.get((op, p.name), _RULES.get(p.name))
        if p.name == "input" and "other" in names:  # binary ops: one operand may be a number
            rule = _RULES["other"]
        if rule is None or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        index = pos if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) else 1 << 30
        none_ok = p.default is None or p.name in _OPTIONAL
        checks.append((index, p.name, rule[0], rule[1], none_ok))
    return tuple(checks), varargs


def _reject(op: str, name: str, pos: int, expected: str, value) -> None:
    where = f" (position {pos + 1})" if pos < 1 << 30 else ""
    raise ArgumentTypeError(
        op, f"argument '{name}'{where} must be {expected}, not {describe_kind(value)}"
    )


def _located(op: str, exc: Exception) -> EmberError:
    """A builtin error raised inside ``op`` as the same kind of `EmberError`, with the op's name
    (once: a message that already starts with ``op:`` keeps its own)."""
    msg = str(exc)
    head, sep, rest = msg.partition(": ")
    if sep and head.isidentifier():
        op, msg = head, rest
    return _LOCATED[type(exc)](op, msg)


def checked(fn, op: str | None = None):
    """``fn`` with the argument checks its signature asks for (see the module docstring)."""
    if getattr(fn, "__ember_checked__", False):
        return fn
    op = op or fn.__name__
    checks, varargs = _plan(fn, op)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        n = len(args)
        for pos, name, test, expected, none_ok in checks:
            if pos < n:
                x = args[pos]
            elif name in kwargs:
                x = kwargs[name]
            else:
                continue
            if test is None:
                _check_tensors(op, name, pos if pos < n else None, x, False)
            elif not test(x) and not (none_ok and x is None):
                _reject(op, name, pos if pos < n else 1 << 30, expected, x)
        if varargs is not None:
            _check_tensors(op, "tensors", None, args[varargs:], True)
        try:
            return fn(*args, **kwargs)
        except OutOfMemoryError as exc:  # the primitive that allocated -> the op the user called
            if exc.op == op:
                raise
            raise OutOfMemoryError(op, f"{exc.detail} in {exc.op}", exc.loc) from None
        except (TypeError, ValueError, IndexError, RuntimeError) as exc:  # and NotImplemented
            if type(exc) in _LOCATED:
                raise _located(op, exc) from exc
            raise

    wrapper.__ember_checked__ = True
    return wrapper


def install(modules) -> None:
    """Wrap the public functions (``__all__``) of ``modules`` (names relative to
    ``ember.frontend``) in place, and rebind every reference to them that the frontend's
    modules already hold (``from ..functional.linear import linear`` in a layer, the
    re-exports of ``nn.functional``), so layers check their inputs like the functions they call."""
    wrapped = {}  # (function, name) -> wrapper: an alias (``clip = clamp``) speaks its name
    by_function = {}
    for module in map(_module, modules):
        for name in module.__all__:
            fn = getattr(module, name, None)
            if inspect.isfunction(fn) and not name.startswith("_"):
                key = (fn, name)
                if key not in wrapped:
                    wrapped[key] = checked(fn, name)
                    by_function.setdefault(fn, wrapped[key])
                setattr(module, name, wrapped[key])
    prefix = f"{__package__}."
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith(prefix) or module is None:
            continue
        namespace = vars(module)
        for name, value in list(namespace.items()):
            if inspect.isfunction(value) and value in by_function:
                namespace[name] = wrapped.get((value, name), by_function[value])


def _module(name: str):
    return importlib.import_module(f"{__package__}.{name}")
