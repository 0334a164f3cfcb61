"""The user-facing compile API: ``ember.compile``, ``make_ir``, ``explain``, ``last_graphs``.

``ember.compile(fn)`` returns a `CompiledFunction`. Each call looks for a cache entry whose
guards hold (`ember.tracer.guards`); on a miss it traces the function
(`ember.tracer.trace`), compiles the graph for the backend (`ember.tracer.program`) and keeps
the entry. Past ``recompile_limit`` entries, misses run the function eagerly, with one warning
that names the function and the guard that failed.

The cache belongs to the function's *code*: a step function re-created each epoch (a new
function object with the same code and equal closure cells) finds the graphs compiled for the
earlier ones, because guards read the closure cells of the function called now. A miss
compiles under the process's trace lock, so two threads making the first call of one function
get one entry, and neither sees the other's tracing tensors.

A graph break (reading a traced value in Python) is an error with ``fullgraph=True``. By
default the call runs eagerly instead, and so do later calls that match the same guards: the
entry remembers the break, which ``ember.explain`` reports. The trace left no side effects,
so the eager run makes the call's effects once.

``ember.compile(module)`` returns the module itself seen through a subclass whose
``__call__`` is compiled: parameters, ``state_dict``, ``train()``/``eval()``, hooks and repr are
the module's own, because the compiled view shares the module's attribute dictionary.
"""

from __future__ import annotations

import functools
import os
import time
import types
import warnings
import weakref
from dataclasses import dataclass, field

from ..codegen.registry import pick_backend
from ..frontend import trace_state
from ..frontend.nn.modules.module import Module
from ..ir.errors import GraphBreakError, SourceLoc
from ..ir.graph import Graph
from ..passes import logs
from ..passes.gc_pause import gc_paused
from ..passes.partition import POLICIES
from . import pytree
from .arguments import leaf_paths
from .fastcall import MISS, fast_call
from .guards import Guards, call_spec, spec_of
from .program import CompiledProgram, fingerprint
from .sources import CallContext, function_defaults
from .trace import trace_function

__all__ = [
    "compile", "CompiledFunction", "make_ir", "explain", "last_graphs", "reset", "config",
    "CapturedGraphs", "Explanation", "GuardCheckError",
]  # fmt: skip


class _Config:
    """Compiler settings (``ember.compiler.config``)."""

    def __init__(self) -> None:
        self.recompile_limit = 8
        self.partition = "min_cut"
        # check mode: every cache hit traces the function again and requires the same graph,
        # inputs and writes as the cached entry; a difference is a missing guard
        # (``GuardCheckError``). Also on with the environment variable EMBER_CHECK_GUARDS=1.
        self.check_guards = False


class GuardCheckError(AssertionError):
    """Check mode found a cache entry whose guards held although tracing the call again gave
    another program: a guard ember should have made is missing (a bug in ember)."""


config = _Config()
_compiled: weakref.WeakSet = weakref.WeakSet()
_OPTIONS = {"partition", "recompile_limit"}


@dataclass
class CapturedGraphs:
    """What one compile produced: the graphs (``str()`` prints them), and the saved residuals.

    ``forward`` is the graph each call runs. ``backward`` is the autodiff-generated backward
    graph when the function's outputs connect to eager autograd (None otherwise: when the
    function ran ``backward()`` itself, forward, backward and optimizer update are all in
    ``forward``). ``saved`` lists the residuals ``(name, type, bytes)`` the forward keeps for
    the backward; ``report`` is the partition's table of them.
    """

    name: str
    forward: Graph
    backward: Graph | None
    saved: list[tuple[str, str, int]]
    saved_bytes: int
    report: str
    guards: list[str]

    def __str__(self) -> str:
        parts = [f"# forward graph of {self.name}", str(self.forward)]
        if self.backward is not None:
            parts += [f"# backward graph of {self.name}", str(self.backward), self.report]
        return "\n".join(parts)


@dataclass
class _Entry:
    guards: Guards
    program: CompiledProgram | None  # None: a graph break; the entry runs eagerly
    graphs: CapturedGraphs | None
    graph_break: GraphBreakError | None = None


class _Cache:
    """The entries of one code object (or one compiled module), shared by every
    `CompiledFunction` made from it with the same settings."""

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.warned = False
        self.last: CapturedGraphs | None = None

    def lookup(self, spec: tuple, ctx: CallContext) -> tuple[_Entry | None, str | None]:
        reason, close = None, False
        for entry in self.entries:
            failed = entry.guards.check(spec, ctx)
            if failed is None:
                return entry, None
            if not close:  # report the first entry with these arguments, else the last
                reason = failed
                close = entry.guards.spec == spec
        return None, reason

    def clear(self) -> None:
        self.entries.clear()
        self.warned = False
        self.last = None


# live caches by code: a cache lives while a compiled function made from that code does
_CACHES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class CompiledFunction:
    """A function compiled by `compile`: call it like the function."""

    def __init__(self, fn, backend, fullgraph: bool, options: dict, module=None) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._module = module
        self._backend_name = backend
        self._fullgraph = fullgraph
        self._options = options
        self._limit = int(options.get("recompile_limit", config.recompile_limit))
        self._policy = options.get("partition", config.partition)
        func = getattr(fn, "__func__", fn)
        self._self_obj = module if module is not None else getattr(fn, "__self__", None)
        if isinstance(self._self_obj, types.ModuleType):
            self._self_obj = None
        self._cells = tuple(getattr(func, "__closure__", None) or ())
        self._defaults = function_defaults(func)
        code = getattr(func, "__code__", None)
        if module is None and code is not None:
            key = (code, id(func.__globals__), str(backend), fullgraph,
                   tuple(sorted(options.items())), id(self._self_obj))  # fmt: skip
            cache = _CACHES.get(key)
            if cache is None:
                cache = _CACHES[key] = _Cache()
            self._cache = cache
        else:
            self._cache = _Cache()
        # the fast path of the entry the last call ran (`fastcall`), if it has one
        self._fast, self._fast_made = None, (None, None)
        _compiled.add(self)

    @property
    def _name(self) -> str:
        return _qualname(self._fn)

    @property
    def _entries(self) -> list[_Entry]:
        return self._cache.entries

    @property
    def _last(self) -> CapturedGraphs | None:
        return self._cache.last

    def __get__(self, obj, objtype=None):
        return self if obj is None else types.MethodType(self, obj)

    def __call__(self, *args, **kwargs):
        if trace_state.active() is not None:  # called from inside another trace: inline it
            return self._fn(*args, **kwargs)
        fast = self._fast
        if fast is not None and not kwargs:
            result = fast(args)
            if result is not MISS:
                return result
        leaves, structure = pytree.flatten((args, kwargs))  # (once per call)
        spec = spec_of(leaves, structure)
        ctx = CallContext(leaves, self._self_obj, self._cells, self._defaults)
        # The process's trace lock, held from the guard check to the write-backs: no other
        # thread's trace can lift (make tracing tensors of) what this call reads meanwhile.
        with trace_state.TRACE_LOCK:
            entry, reason = self._cache.lookup(spec, ctx)
            if entry is None:
                return self._miss(args, kwargs, spec, ctx, reason)
            if entry.program is not None:
                if config.check_guards or os.environ.get("EMBER_CHECK_GUARDS", "") not in (
                    "", "0",
                ):  # fmt: skip
                    self._check_entry(entry, args, kwargs)
                else:
                    self._fast = self._fast_path(entry)
                return entry.program(ctx)
        return self._fn(*args, **kwargs)

    def _fast_path(self, entry: _Entry):
        """The fast path (`fastcall`) of ``entry`` for this function's roots, or None; the
        last one made is kept, so a function that keeps hitting one entry makes it once."""
        made_for, fast = self._fast_made
        if made_for is not entry:
            fast = fast_call(entry, self._self_obj, self._cells, self._defaults, config)
            self._fast_made = (entry, fast)
        return fast

    def _check_entry(self, entry: _Entry, args, kwargs) -> None:
        with trace_state.TRACE_LOCK:
            try:
                traced = trace_function(self._fn, args, kwargs, self._name, self._self_obj)
            except GraphBreakError as exc:
                raise GuardCheckError(
                    f"ember.compile check mode: {self._name} hit a cached graph, but tracing "
                    f"the call again breaks ({exc}): a guard is missing"
                ) from None
        now = fingerprint(traced)
        if now != entry.program.fingerprint:
            old = entry.program.fingerprint
            diff = next((f"{a!r} != {b!r}" for a, b in zip(old, now) if a != b), "lengths")
            raise GuardCheckError(
                f"ember.compile check mode: {self._name} hit a cached graph whose guards hold, "
                f"but tracing the call again gives another program ({diff[:400]}): a guard is "
                f"missing. The entry's guards:\n  " + "\n  ".join(entry.guards.describe())
            )

    def _miss(self, args, kwargs, spec, ctx, reason):
        cache = self._cache
        if len(cache.entries) >= self._limit:
            if not cache.warned:
                cache.warned = True
                warnings.warn(
                    f"ember.compile: {self._name} was recompiled {self._limit} times "
                    f"(recompile_limit); it runs eagerly from now on for new inputs. "
                    f"Last failing guard: {reason}",
                    stacklevel=3,
                )
            return self._fn(*args, **kwargs)
        if reason is not None:
            logs.log("recompiles", f"recompiling {self._name}: {reason}")
        return self._compile_and_run(args, kwargs, spec, ctx)

    def _compile_and_run(self, args, kwargs, spec, ctx):
        labels = leaf_paths(self._fn, args, kwargs)
        start = time.perf_counter()
        try:
            with gc_paused():  # (nothing a trace allocates is garbage before it ends)
                traced = trace_function(self._fn, args, kwargs, self._name, self._self_obj)
        except GraphBreakError as exc:
            if self._fullgraph:
                raise
            logs.log("graph_breaks", f"graph break in {self._name}: {exc}")
            guards = Guards(spec, labels, getattr(exc, "guards", []))
            exc.partial_graph = None  # (the entry keeps the break's words, not its frames)
            self._cache.entries.append(_Entry(guards, None, None, exc.with_traceback(None)))
            return self._fn(*args, **kwargs)
        guards = Guards(spec, labels, traced.guards, traced.aliasing)
        traced_at = time.perf_counter()
        backend = pick_backend(self._backend_name)
        program = CompiledProgram(traced, backend, self._policy)
        if logs.enabled("perf_hints"):
            total = time.perf_counter() - start
            logs.log(
                "perf_hints",
                f"compiled {self._name} ({_where(self._fn)}) in {total:.3f} s:\n"
                + program.compile_report(traced_at - start, total),
            )
        graphs = _captured(self._name, program, guards)
        self._cache.entries.append(_Entry(guards, program, graphs))
        self._cache.last = graphs
        if logs.enabled("graph"):
            logs.log("graph", str(graphs))
        logs.log("guards", f"guards of {self._name}:\n  " + "\n  ".join(graphs.guards))
        return program(ctx)

    def _reset(self) -> None:
        self._cache.clear()
        self._fast, self._fast_made = None, (None, None)

    def __repr__(self) -> str:
        return f"<compiled {self._name}: {len(self._cache.entries)} cache entries>"


def _where(fn) -> str:
    """``file:line`` where ``fn`` is defined (``?`` when it has no code)."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        code = getattr(getattr(type(fn), "forward", None), "__code__", None)
    if code is None:
        return "?"
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


def _captured(name: str, program: CompiledProgram, guards: Guards) -> CapturedGraphs:
    part = program.partition
    if part is not None:
        saved = [(n, str(t), t.nbytes) for n, t in part.saved]
        report, total = part.report(), part.saved_bytes
    else:
        saved, total = [], 0
        report = (
            "saved for backward: nothing crosses between graphs (no backward graph, or the "
            "function ran backward inside its own graph)\n"
        )
    return CapturedGraphs(
        name, program.forward_graph, program.backward_graph, saved, total, report,
        guards.describe(),
    )  # fmt: skip


def _check_options(backend, fullgraph, dynamic, options) -> dict:
    if dynamic not in (False, None):
        raise ValueError(
            "ember.compile: dynamic=True (shape-polymorphic graphs) is not supported; each "
            "new input shape compiles its own graph (up to the recompile limit)"
        )
    options = dict(options or {})
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ValueError(
            f"ember.compile: unknown options {sorted(unknown)} (known: {sorted(_OPTIONS)})"
        )
    if options.get("partition", config.partition) not in POLICIES:
        raise ValueError(
            f"ember.compile: options['partition'] must be one of {POLICIES}, "
            f"got {options['partition']!r}"
        )
    if not isinstance(backend, str) or backend != "auto":
        pick_backend(backend)  # an unknown or unusable backend is an error now, not at call
    return options


def compile(fn=None, *, backend="auto", fullgraph: bool = False, dynamic=False, options=None):
    """Compile ``fn`` (a function or an ``nn.Module``): ``@ember.compile``,
    ``@ember.compile(fullgraph=True)`` or ``ember.compile(model)``; see the module docs."""
    opts = _check_options(backend, fullgraph, dynamic, options)
    if fn is None:
        return lambda f: compile(
            f, backend=backend, fullgraph=fullgraph, dynamic=dynamic, options=options
        )
    if isinstance(fn, Module):
        return _compile_module(fn, backend, fullgraph, opts)
    if not callable(fn):
        raise TypeError(f"ember.compile: expected a function or a Module, got {type(fn).__name__}")
    if isinstance(fn, CompiledFunction):
        return fn
    return CompiledFunction(fn, backend, fullgraph, opts)


_MODULE_CLASSES: dict[type, type] = {}
_MODULE_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compile_module(module: Module, backend, fullgraph: bool, options: dict) -> Module:
    cls = type(module)
    if getattr(cls, "_ember_compiled", False):
        return module
    compiled_cls = _MODULE_CLASSES.get(cls)
    if compiled_cls is None:

        def __call__(self, *args, **kwargs):
            return _MODULE_CALLS[self](*args, **kwargs)

        def __reduce_ex__(self, protocol):
            # copy.deepcopy and pickle see the plain module and the compile settings: the copy
            # is compiled again the same way, and traces its own graphs on its first call
            call = _MODULE_CALLS[self]
            return (_recompile, (call._module, call._backend_name, call._fullgraph,
                                 call._options))  # fmt: skip

        compiled_cls = type(
            cls.__name__,
            (cls,),
            {"__call__": __call__, "__reduce_ex__": __reduce_ex__, "_ember_compiled": True,
             "__module__": cls.__module__, "__qualname__": cls.__qualname__},
        )  # fmt: skip
        _MODULE_CLASSES[cls] = compiled_cls
    view = object.__new__(compiled_cls)
    object.__setattr__(view, "__dict__", module.__dict__)
    fn = functools.partial(cls.__call__, module)
    fn.__qualname__ = f"{cls.__name__}.forward"  # type: ignore[attr-defined]
    _MODULE_CALLS[view] = CompiledFunction(fn, backend, fullgraph, options, module)
    return view


def _recompile(module: Module, backend, fullgraph: bool, options: dict) -> Module:
    """What a copied or unpickled compiled module is rebuilt by (its ``__reduce_ex__``)."""
    return _compile_module(module, backend, fullgraph, options)


def _compiled_function(fn) -> CompiledFunction:
    if isinstance(fn, CompiledFunction):
        return fn
    if isinstance(fn, Module) and fn in _MODULE_CALLS:
        return _MODULE_CALLS[fn]
    if isinstance(fn, types.MethodType) and isinstance(fn.__func__, CompiledFunction):
        return fn.__func__
    raise TypeError(
        f"expected a function or module returned by ember.compile, got {type(fn).__name__}"
    )


def last_graphs(fn) -> CapturedGraphs | None:
    """The graphs of the most recent compile of ``fn`` (a compiled function or module), or
    None before its first compile."""
    return _compiled_function(fn)._cache.last


def make_ir(fn):
    """``ember.make_ir(fn)(*args)``: the graph that compiling ``fn`` for these arguments
    traces (inputs: the arguments, then what it reads by reference; outputs: its results,
    then the values it writes back), like ``jax.make_jaxpr``."""
    target, module = _unwrap(fn)

    def traced(*args, **kwargs) -> Graph:
        name = _qualname(target)
        return trace_function(target, args, kwargs, name, _self_of(target, module)).graph

    return traced


def _self_of(target, module):
    if module is not None:
        return module
    owner = getattr(target, "__self__", None)
    return None if isinstance(owner, types.ModuleType) else owner


def _qualname(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _unwrap(fn):
    if isinstance(fn, Module):
        call = _MODULE_CALLS.get(fn)
        return (call._fn if call else functools.partial(type(fn).__call__, fn)), fn
    if isinstance(fn, CompiledFunction):
        return fn._fn, fn._module
    return fn, None


@dataclass
class Explanation:
    """What ``ember.explain(fn)(*args)`` found: graphs, graph breaks and guards."""

    name: str
    graphs: list[Graph]
    breaks: list[tuple[SourceLoc | None, str]]
    guards: list[str]
    ops: int = field(init=False)

    def __post_init__(self) -> None:
        self.ops = sum(len(g.nodes) for g in self.graphs)

    @property
    def graph_count(self) -> int:
        return len(self.graphs)

    @property
    def break_count(self) -> int:
        return len(self.breaks)

    def __str__(self) -> str:
        lines = [
            f"{self.name}: {self.graph_count} graph(s), {self.break_count} graph break(s), "
            f"{self.ops} ops"
        ]
        for loc, reason in self.breaks:
            lines.append(f"  break at {loc or '?'}: {reason}")
        if self.breaks:
            lines.append(
                "  (with breaks, ember.compile runs the function eagerly for these inputs)"
            )
        for i, g in enumerate(self.graphs):
            lines.append(f"graph {i + 1}:")
            lines.append(str(g))
        lines.append("guards:")
        lines += [f"  {g}" for g in self.guards]
        return "\n".join(lines)


def explain(fn):
    """``ember.explain(fn)(*args)``: trace ``fn`` for these arguments and report its graphs,
    every graph break (file:line and reason) and the guards a compiled entry would check.

    The trace runs with the actual values alongside, so at a break it notes where and why and
    goes on with the value, the way a split graph would; each stretch between breaks is
    reported as its own graph. Nothing is written back and no generator moves.
    """
    target, module = _unwrap(fn)

    def run(*args, **kwargs) -> Explanation:
        name = _qualname(target)
        self_obj = _self_of(target, module)
        traced = trace_function(target, args, kwargs, name, self_obj, concrete=True)
        labels = leaf_paths(target, args, kwargs)
        guards = Guards(call_spec(args, kwargs), labels, traced.guards, traced.aliasing)
        cuts = [index for _, _, index, _ in traced.breaks]
        read = {v for *_, v in traced.breaks if v is not None}
        graphs = [g for g in split_graph(traced.graph, cuts, read) if g.nodes]
        breaks = [(loc, reason) for loc, reason, _, _ in traced.breaks]
        return Explanation(name, graphs, breaks, guards.describe())

    return run


def split_graph(graph: Graph, cuts: list[int], read: set = frozenset()) -> list[Graph]:
    """``graph``'s nodes cut before each index in ``cuts``: one graph per stretch, taking
    what it reads from earlier stretches as inputs and giving what later ones read, and the
    values in ``read`` (what Python read at the breaks)."""
    bounds = [0, *sorted(set(cuts)), len(graph.nodes)]
    later_reads: dict = {}
    for i, node in enumerate(graph.nodes):
        for v in node.value_inputs():
            later_reads[v] = i
    for v in graph.outputs:
        later_reads[v] = len(graph.nodes)
    producer = {n.output: f"{n.op}_{i}" for i, n in enumerate(graph.nodes)}
    parts = []
    for k, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        part = Graph(f"{graph.name}_{k + 1}" if len(bounds) > 2 else graph.name)
        env: dict = {}
        for node in graph.nodes[lo:hi]:
            for v in node.value_inputs():
                if v not in env:
                    env[v] = part.add_input(v.type, v.name or producer.get(v))
            ins = [env.get(x, x) for x in node.inputs]
            env[node.output] = part.add(node.op, ins, dict(node.attrs), node.loc)
        made = [n.output for n in graph.nodes[lo:hi]]
        part.set_outputs([env[v] for v in made if later_reads.get(v, -1) >= hi or v in read])
        parts.append(part)
    return parts


def reset() -> None:
    """Forget every compiled graph (``ember.compiler.reset()``); the next calls recompile."""
    for fn in list(_compiled):
        fn._reset()
    _CACHES.clear()
