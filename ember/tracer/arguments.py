"""Names for a call's arguments: readable graph-input names and the paths guards print."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from . import pytree

__all__ = ["leaf_paths", "arg_labels"]


def leaf_paths(fn, args, kwargs) -> list[str]:
    """Per argument leaf, the expression that reaches it (``x``, ``cfg['scale']``,
    ``batch[0]``): how guard failures name an argument."""
    out: list[str] = []

    def walk(prefix: str, x) -> None:
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            for name, v in zip(x._fields, x):
                walk(f"{prefix}.{name}", v)
        elif type(x) in (tuple, list):
            for i, v in enumerate(x):
                walk(f"{prefix}[{i}]", v)
        elif type(x) is dict:
            for k, v in x.items():
                walk(f"{prefix}[{k!r}]", v)
        else:
            out.append(prefix)

    for pname, value in _named_arguments(fn, args, kwargs):
        walk(pname, value)
    return out


def _named_arguments(fn, args, kwargs) -> list[tuple[str, Any]]:
    if isinstance(fn, functools.partial) and fn.args and hasattr(fn.args[0], "forward"):
        fn = fn.args[0].forward  # a compiled module: name the arguments after forward's
    try:
        return list(inspect.signature(fn).bind(*args, **kwargs).arguments.items())
    except (TypeError, ValueError):
        return [(f"arg{i}", a) for i, a in enumerate(args)] + list(kwargs.items())


def arg_labels(fn, args, kwargs) -> dict[int, str]:
    """Leaf index -> a readable name (``x``, ``batch_0``...) for the graph's inputs."""
    named = _named_arguments(fn, args, kwargs)
    labels: dict[int, str] = {}
    index = 0
    for pname, value in named:
        sub, _ = pytree.flatten(value)
        for j in range(len(sub)):
            labels[index] = pname if len(sub) == 1 else f"{pname}_{j}"
            index += 1
    return labels
