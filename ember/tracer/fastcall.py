"""The fast path of a compiled call: a pure function of tensor arguments in a few µs.

A `CompiledFunction` call normally flattens its arguments, describes every leaf (the call
spec), looks the entry up by comparing specs and running its guards, then lets the
`CompiledProgram` fetch each input, run the graph, write back and rebuild the result: about
7 µs of Python for ``x + 1``. Most of that is general machinery that a common kind of entry
does not need. `fast_call` builds, for an entry of that kind, one closure that checks the
same conditions directly and runs the graph's native code:

- the call passes only positional, non-container arguments, each a plain ``Tensor`` that is
  not a view, with the ``requires_grad`` of the traced call, and no tensor twice (``f(x, x)``
  is another call spec: the function may branch on ``a is b``). The entry was traced with
  arguments in storages of their own; distinct tensors that share storage may still take
  it: the program only reads them, into fresh outputs, so sharing cannot change what it
  computes;
- grad mode is the traced one; the entry's Python-state guards (globals, closure cells,
  module attributes, gated by `trace_state.EPOCH`) and aliasing checks hold: they run as on
  the slow path, over a `CallContext` of the arguments;
- the program reads only those arguments, captured constants and tensors reached through
  module attributes (a module's parameters and buffers, which `CompiledProgram` fetches once
  per `trace_state.EPOCH`), writes nothing back, stores nothing, draws no random numbers and
  connects no backward (a module called under ``no_grad``, say);
- the compiled graph offers a native runner (`CompiledGraph.fast_runner`): the LLVM entry
  checks each array's dtype, shape and layout in native code, so a tensor of another shape
  or dtype, or a strided one, is refused there, before anything ran.

Any condition that fails returns `MISS` and the call takes the slow path, which finds (or
compiles) the right entry, so the fast path can only be faster, never different. Check mode
(``config.check_guards`` or ``EMBER_CHECK_GUARDS`` when the entry was made) turns it off.
"""

from __future__ import annotations

from typing import Any

from ..frontend import trace_state
from ..frontend.autograd.grad_mode import STATE
from ..frontend.tensor import Tensor
from . import pytree
from .sources import CallContext

__all__ = ["MISS", "fast_call"]

MISS = object()


def _arg_leaves(n: int) -> Any:
    """The pytree structure of ``(args, {})`` with ``n`` leaf arguments."""
    return pytree.flatten((tuple(range(n)), {}))[1]


def fast_call(entry, self_obj, cells: tuple, defaults: tuple, config) -> Any:
    """The fast path for cache ``entry`` of a compiled function whose roots are ``self_obj``,
    ``cells`` and ``defaults`` (see the module docstring), or None when the entry is not of
    the kind it covers. ``config`` is the compiler's settings (its ``check_guards``)."""
    guards, program = entry.guards, entry.program
    structure, leaves, alias = guards.spec
    n = len(leaves)
    if structure != _arg_leaves(n) or alias != tuple((i, i, i) for i in range(n)):
        return None
    grads = []
    for leaf in leaves:
        if leaf[0] != "tensor" or leaf[3] != "cpu" or leaf[5] != "contiguous":
            return None
        grads.append(leaf[4])
    t = program.traced
    if program.backward is not None or t.writebacks or t.stores or t.deferred or t.rng:
        return None
    # per graph input: an argument index, a constant array, or None for a tensor read through
    # module attributes (a parameter), which the program fetches once per epoch
    gated = set(program._gated)
    feeds = []
    for i, src in enumerate(t.sources):
        if src.kind == "tensor" and src.obj.root == "arg" and not src.obj.steps:
            feeds.append(src.obj.key)
        elif src.kind == "const":
            feeds.append(src.obj)
        elif i in gated:
            feeds.append(None)
        else:
            return None
    runner = program.forward.fast_runner()
    if runner is None:
        return None
    if any(isinstance(x, tuple) and x[0] == "in" and not isinstance(feeds[x[1]], int)
           for x in t.out_leaves):  # fmt: skip
        return None
    feeds_args = all(isinstance(f, int) for f in feeds)
    reads_modules = any(f is None for f in feeds)
    order = tuple(feeds)
    n_user, out_spec, out_leaves = t.num_user_outputs, t.out_spec, tuple(t.out_leaves)
    single = out_spec is None and len(out_leaves) == 1 and isinstance(out_leaves[0], int)
    guard_fn = guards._fn if guards.guards else None
    aliasing = guards.aliasing
    grad_mode, rgs = guards.grad_mode, tuple(grads)
    lock, make = trace_state.TRACE_LOCK, Tensor._make

    def call(args: tuple) -> Any:
        if len(args) != n or STATE.enabled != grad_mode or config.check_guards:
            return MISS
        if n > 1 and len({id(a) for a in args}) != n:  # f(x, x): another call spec
            return MISS
        with lock:  # (as on the slow path: no other thread's trace lifts the arguments)
            for a, rg in zip(args, rgs):
                if type(a) is not Tensor or a._base_t is not None or a._requires_grad is not rg:
                    return MISS
            if guard_fn is not None or aliasing is not None or reads_modules:
                ctx = CallContext(list(args), self_obj, cells, defaults)
                try:
                    if guard_fn is not None and guard_fn(ctx, trace_state.EPOCH) != -1:
                        return MISS
                    if aliasing is not None and not aliasing.holds(ctx):
                        return MISS
                except Exception:
                    return MISS
            if feeds_args:
                arrays = [args[k]._data for k in order]
            elif reads_modules:
                tensors = program._tensors(ctx)
                arrays = [
                    tensors[i]._data if f is None else args[f]._data if isinstance(f, int) else f
                    for i, f in enumerate(order)
                ]  # fmt: skip
            else:
                arrays = [args[f]._data if isinstance(f, int) else f for f in order]
            outs = runner(arrays)
        if outs is None:
            return MISS
        if single:
            return make(outs[out_leaves[0]])
        user = [make(outs[i]) for i in range(n_user)]
        results = []
        for leaf in out_leaves:
            if isinstance(leaf, int):
                results.append(user[leaf])
            elif leaf[0] == "in":
                results.append(args[order[leaf[1]]])
            else:
                results.append(leaf[1])
        return pytree.unflatten(out_spec, results)

    return call
