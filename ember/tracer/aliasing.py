"""Which of the tensors a graph reads share storage: part of what a cache entry requires.

A trace makes one graph input per distinct tensor. A call where two tensors it reads through
different sources (a global and an argument, two globals, a global and a parameter) now share
storage, or no longer do, is another program: `Aliasing.holds` is checked with the guards.
"""

from __future__ import annotations

from ..frontend import trace_state
from ..frontend.tensor import Tensor
from .sources import CallContext

__all__ = ["Aliasing", "storage_of"]


def storage_of(t: Tensor) -> int:
    """The identity of the array that owns ``t``'s memory."""
    arr = t._data
    return id(arr.base if arr.base is not None else arr)


class Aliasing:
    """Which tensors the graph reads (arguments and tensors reached by a path) are the same
    storage: the trace made one graph input per distinct tensor, so a call where two of them
    now share storage (a global rebound to a parameter, an argument that is a global) or no
    longer do is another program. ``pattern[i]``: the first input sharing input i's storage.

    Inputs under a module (gated sources) change only when `trace_state.EPOCH` moves: their
    storage is looked up once per epoch, and a call computes only the others'."""

    def __init__(self, sources: list, pattern: tuple, gated: tuple) -> None:
        self.sources, self.pattern = sources, pattern
        self.gated = [i for i, g in enumerate(gated) if g]
        self.other = [i for i, g in enumerate(gated) if not g]
        self._epoch = -1
        self._gated_root: dict = {}  # gated input -> its storage
        self._gated_first: dict = {}  # storage -> the first gated input on it
        self._gated_by_storage: dict = {}  # storage -> the gated inputs on it
        self._cross: list = []  # (gated input, the other input it shared storage with)

    def holds(self, ctx: CallContext) -> bool:
        pattern = self.pattern
        if self._epoch != trace_state.EPOCH[0]:  # the gated inputs' storage, once per epoch
            self._gated_root = {i: storage_of(self.sources[i].get(ctx)) for i in self.gated}
            self._gated_first, self._gated_by_storage = {}, {}
            for i, r in self._gated_root.items():
                self._gated_first.setdefault(r, i)
                self._gated_by_storage.setdefault(r, []).append(i)
            others = set(self.other)
            for i, r in self._gated_root.items():  # gated with gated: as when traced?
                if pattern[i] not in others and pattern[i] != self._gated_first[r]:
                    return False
            self._cross = [(i, pattern[i]) for i in self.gated if pattern[i] in others]
            self._epoch = trace_state.EPOCH[0]
        roots, first = {}, {}
        for i in self.other:
            r = storage_of(self.sources[i].get(ctx))
            roots[i] = r
            first.setdefault(r, i)
        for i, r in roots.items():
            want = min(first[r], self._gated_first.get(r, first[r]))
            if pattern[i] != want:
                return False
            if any(pattern[j] != want for j in self._gated_by_storage.get(r, ())):
                return False
        return all(roots[k] == self._gated_root[j] for j, k in self._cross)

    def explain(self, ctx: CallContext) -> str:
        names = [s.name for s in self.sources]
        return (
            "the tensors the graph reads share storage differently than when compiled "
            f"(of {', '.join(names[:6])}{'...' if len(names) > 6 else ''})"
        )
