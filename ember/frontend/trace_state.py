"""Where the eager frontend meets an active trace (``@ember.compile`` capturing a function).

The tracer (`ember.tracer`) sits above the frontend, so the frontend cannot import it. While a
function is being traced, the tracer sets `ACTIVE` to its trace object, and the few frontend
places whose eager behaviour would be wrong on tracing tensors ask it what to do instead:

- ``ops.inplace.commit`` and ``setitem``: an in-place write becomes a functional update that
  the compiled program writes back (``ACTIVE.lift`` and ``ACTIVE.rebind``);
- ``Tensor``: a tensor from outside is lifted before its grad state changes or it is aliased
  (``ACTIVE.lift``, ``ACTIVE.lift_outside``), and reading its value is a break
  (``ACTIVE.eager_read``);
- the autograd engine: a leaf's ``.grad`` is accumulated functionally (``ACTIVE`` set means
  the engine takes its ``create_graph`` path for ``.grad``);
- ``Generator.take``: a random draw reads the generator's seed and offset as graph inputs, so
  each call of the compiled program draws fresh numbers (``ACTIVE.random_operands``);
- ``Optimizer.step``: the optimizer's state is recorded before the step changes it
  (``ACTIVE.touch_optimizer``);
- code that reads tensor *values* in Python (``item()``, index arithmetic in numpy) calls
  `concrete`, which raises a graph break for a tracing tensor (``ACTIVE.on_break``).

Outside a trace `ACTIVE` is None and each of these places costs one global read.
"""

from __future__ import annotations

from ..ir.errors import GraphBreakError, user_location

__all__ = ["ACTIVE", "concrete", "graph_break"]

ACTIVE = None


def graph_break(reason: str) -> GraphBreakError:
    """The error a value read raises inside a trace: the reason and the user's line."""
    return GraphBreakError("compile", reason, user_location(2))


def concrete(t, what: str):
    """``t``'s numpy values, or a graph break naming ``what`` when ``t`` is a tracing tensor."""
    if ACTIVE is not None:
        if t._traced:  # (ember.explain notes the break and goes on with the actual values)
            return ACTIVE.on_break(graph_break(f"{what} reads the values of a traced tensor"), t)
        ACTIVE.eager_read(t, what)
    return t._data
