"""Where the eager frontend meets an active trace (``@ember.compile`` capturing a function).

The tracer (`ember.tracer`) sits above the frontend, so the frontend cannot import it. While a
function is being traced, the tracer installs its trace object for *its own thread*
(`active()` answers it; other threads see None), and the few frontend places whose eager
behaviour would be wrong on tracing tensors ask it what to do instead:

- ``ops.inplace.commit`` and ``setitem``: an in-place write becomes a functional update that
  the compiled program writes back (``lift`` and ``rebind``);
- ``Tensor``: a tensor from outside is lifted before its grad state changes or it is aliased
  (``lift``, ``lift_outside``), and reading its value is a break (``eager_read``);
- the autograd engine: a leaf's ``.grad`` is accumulated functionally (an active trace means
  the engine takes its ``create_graph`` path for ``.grad``);
- ``Generator.take``: a random draw reads the generator's seed and offset as graph inputs, so
  each call of the compiled program draws fresh numbers (``random_operands``);
- ``optim.optimizer.hyperparameter``: the learning rate, momentum and betas are graph inputs
  (``hyperparameter``); ``LRScheduler.step`` is deferred: it runs after the graph, on every
  call (``defer``);
- ``Module.__setattr__``: attribute writes are recorded, so the compiled program repeats them
  (``note_setattr``); modules, optimizers and schedulers made during the trace are noted
  (``note_new``); reading ``Tensor.grad`` is noted, so an entry guards whether it is None
  (``note_grad_read``);
- code that reads tensor *values* in Python (``item()``, index arithmetic in numpy) calls
  `concrete`, which raises a graph break for a tracing tensor (``on_break``).

Only one trace runs at a time in a process (`TRACE_LOCK`). While it runs, the tensors it
lifted are tracing tensors; another thread that meets one (an eager op on a shared
parameter, reading its value) waits for the trace to end (`wait_for_trace`) and then sees the
tensor as it was. Outside any trace each hook costs one thread-local read, and eager dispatch
one global read (`BUSY`). `EPOCH` moves with every change of module attributes or tensor
metadata, which compiled entries' gated guards watch.
"""

from __future__ import annotations

import threading

from ..ir.errors import GraphBreakError, user_location

__all__ = [
    "active", "set_active", "concrete", "graph_break", "TRACE_LOCK", "BUSY", "wait_for_trace",
    "EPOCH", "bump",
]  # fmt: skip


class _Local(threading.local):
    trace = None


_LOCAL = _Local()

# Held by the thread that traces, for the whole trace. Reentrant: a compiled function called
# while its own thread traces is inlined, and explain/make_ir may run inside a trace.
TRACE_LOCK = threading.RLock()
BUSY = 0  # how many traces are running (0 or 1: they are serialized by TRACE_LOCK)

# Moved by every change that can invalidate a guard on a module attribute or on the metadata
# of a tensor (``Module.__setattr__``, ``requires_grad_``, ``.data = ``...): compiled entries
# re-check those guards only when it moved (`ember.tracer.guards`).
EPOCH = [0]


def bump() -> None:
    """Note a change of module attributes or tensor metadata (see `EPOCH`)."""
    EPOCH[0] += 1


def active():
    """The trace running in this thread, or None."""
    return _LOCAL.trace


def set_active(trace) -> None:
    """Install ``trace`` (or None) as this thread's trace (the tracer does this)."""
    global BUSY
    old = _LOCAL.trace
    _LOCAL.trace = trace
    BUSY += (trace is not None) - (old is not None)


def wait_for_trace() -> None:
    """Block until no other thread is tracing (this thread's own trace does not count)."""
    if _LOCAL.trace is None:
        with TRACE_LOCK:
            pass


def graph_break(reason: str) -> GraphBreakError:
    """The error a value read raises inside a trace: the reason and the user's line."""
    return GraphBreakError("compile", reason, user_location(2))


def concrete(t, what: str):
    """``t``'s numpy values, or a graph break naming ``what`` when ``t`` is a tracing tensor."""
    trace = _LOCAL.trace
    if trace is not None:
        if t._traced:  # (ember.explain notes the break and goes on with the actual values)
            return trace.on_break(graph_break(f"{what} reads the values of a traced tensor"), t)
        trace.eager_read(t, what)
    elif t._traced:
        wait_for_trace()
    return t._data
