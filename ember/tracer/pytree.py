"""Flattening nested Python containers of arguments and results into leaves and back.

Tuples, lists, dicts (keys in insertion order) and namedtuples are containers; everything
else is a leaf. `flatten` returns the leaves and a hashable ``spec`` that `unflatten` rebuilds
the structure from, the way ``jax.tree_util`` does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["flatten", "unflatten"]


def flatten(tree: Any) -> tuple[list, Any]:
    leaves: list = []
    spec = _flatten(tree, leaves)
    return leaves, spec


def _flatten(x: Any, leaves: list):
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return ("namedtuple", type(x), tuple(_flatten(v, leaves) for v in x))
    if type(x) in (tuple, list):
        return (type(x).__name__, tuple(_flatten(v, leaves) for v in x))
    if type(x) is dict:
        keys = tuple(x)
        return ("dict", keys, tuple(_flatten(x[k], leaves) for k in keys))
    leaves.append(x)
    return None


def unflatten(spec: Any, leaves: list) -> Any:
    it = iter(leaves)
    return _build(spec, it)


def _build(spec: Any, it):
    if spec is None:
        return next(it)
    kind = spec[0]
    if kind == "namedtuple":
        return spec[1](*(_build(s, it) for s in spec[2]))
    if kind == "tuple":
        return tuple(_build(s, it) for s in spec[1])
    if kind == "list":
        return [_build(s, it) for s in spec[1]]
    return {k: _build(s, it) for k, s in zip(spec[1], spec[2])}
