"""Pausing Python's cyclic garbage collector while a pass builds large graphs.

Graphs are cyclic (a `Value` points at its producer `Node`, which points back at it), and a pass
that copies or differentiates a graph of n nodes allocates a few objects per node, all of them
alive until the pass returns. CPython's collector counts these allocations and, every so often,
scans every tracked object of the process: a 25k-node joint graph triggered four full scans in
`partition` alone, about as much time as the pass's own work, and more of it the larger the
graph. Nothing a pass allocates becomes garbage before it returns, so those scans find nothing;
`gc_paused` turns the collector off for the pass and back on after it (reference counting still
frees acyclic objects at once; cycles left behind are collected by the next scan).

Only the block that turned the collector off turns it back on, so nested blocks are free and a
collector that was off before stays off.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector disabled (see the module docstring)."""
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
