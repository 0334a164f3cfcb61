"""Counting compile work: the nodes and values the compiler's passes visit.

Each loop of a pass over the nodes (or values) of a graph adds what it visited to `WORK`, under
the pass's name: ``WORK.add("partition.copy", len(...))`` once per loop, or ``WORK.add(name)``
per item where a loop stops early. The counts are cheap (one dictionary update per call) and
always on, so a test can check that compiling a graph twice the size costs about twice the
work, without timing anything::

    before = WORK.snapshot()
    compiled(x)
    visits = WORK.since(before)   # {"autodiff.backward": 2001, "partition.copy": ..., ...}

`benchmarks/compile_scaling.py` prints the totals next to the wall times.
"""

from __future__ import annotations

__all__ = ["WorkCounter", "WORK"]


class WorkCounter:
    """Counts of visited items per pass name, accumulating for the life of the process."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, name: str, n: int = 1) -> None:
        """Record ``n`` more items visited by ``name``."""
        counts = self.counts
        counts[name] = counts.get(name, 0) + n

    def snapshot(self) -> dict[str, int]:
        """The counts now (a copy), to pass to `since` later."""
        return dict(self.counts)

    def since(self, snapshot: dict[str, int]) -> dict[str, int]:
        """What was counted after ``snapshot`` was taken, per name (names with none left out)."""
        return {
            name: n - snapshot.get(name, 0)
            for name, n in self.counts.items()
            if n != snapshot.get(name, 0)
        }

    def total(self) -> int:
        return sum(self.counts.values())

    def __repr__(self) -> str:
        return f"WorkCounter({self.counts!r})"


#: The process-wide counter every pass adds to.
WORK = WorkCounter()
