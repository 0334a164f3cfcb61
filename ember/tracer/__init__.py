"""Capture: tracing Python functions into graph IR (``ember.compile`` and its tools).

- `tracing_tensor`: tensors that carry graph values instead of numbers;
- `trace`: running a function on them, lifting what it reads, functionalizing what it writes;
- `guards`: when a compiled graph may be reused, and why not;
- `program`: running a compiled trace, writing back, connecting to eager autograd;
- `api`: ``compile``, ``make_ir``, ``explain``, ``last_graphs``, ``reset``.
"""

from .api import (
    CapturedGraphs,
    CompiledFunction,
    Explanation,
    compile,
    config,
    explain,
    last_graphs,
    make_ir,
    reset,
)

__all__ = [
    "compile", "make_ir", "explain", "last_graphs", "reset", "config", "CompiledFunction",
    "CapturedGraphs", "Explanation",
]  # fmt: skip
