"""The backend protocol: what turns a `Graph` into something that runs on arrays.

A backend has a ``name``, the ``devices`` it runs on, ``supports(graph)`` (True, or a string
saying why not) and ``compile(graph)``, which returns a `CompiledGraph`: a callable taking one
numpy array per graph input and returning a list of numpy arrays, one per graph output. The
registry (`ember.codegen.registry`) only relies on that shape (`Backend`, a `typing.Protocol`).

Most backends subclass `BaseBackend`, which does the common parts once:

- ``supports`` walks the graph: unknown ops, devices the backend does not run on, and each
  node the subclass's ``supports_node`` refuses, reported with the node and its file:line;
- ``compile`` checks ``supports``, calls the subclass's ``build(graph)`` and times it;
- the `CompiledGraph` it returns checks every call's inputs (count, shape, dtype: an ember
  error naming the graph and the input) and the outputs the backend returns, so ``build`` only
  writes the core: a function of already-checked input arrays.

`NullBackend` ("null") is the fake backend, after tinygrad's ``ops_null``: it verifies and
walks the graph, counts the kernels it would launch (one per node, until fusion exists) and
returns zero-filled outputs of the right shapes and dtypes, so the whole pipeline can be
tested, and kernel counts asserted, without hardware or numerics.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..ir import dtypes as D
from ..ir.errors import DTypeError, EmberError, GraphError, ShapeError
from ..ir.graph import Graph, Node, Value
from ..ir.ops import PRIMITIVES
from ..ir.verifier import verify

__all__ = [
    "Backend",
    "BackendError",
    "BaseBackend",
    "CompiledGraph",
    "NullBackend",
    "NullCompiledGraph",
    "RunFn",
    "check_inputs",
    "describe_array",
    "device_kind",
]

RunFn = Callable[[list[np.ndarray]], list[np.ndarray]]
"""The core a backend builds: checked input arrays in, output arrays out."""


class BackendError(EmberError, RuntimeError):
    """A backend that is unknown, unusable, refuses a graph or breaks its contract."""


def device_kind(device: str) -> str:
    """``"cuda:1"`` -> ``"cuda"``: backends declare device kinds, not device indices."""
    return device.split(":", 1)[0]


def describe_array(array: np.ndarray) -> str:
    """``f32[2,3]``: a numpy array described the way the IR writes types."""
    short = next((d.short for d in D.ALL_DTYPES if d.np == array.dtype), str(array.dtype))
    return f"{short}[{','.join(str(n) for n in array.shape)}]"


def _input_label(index: int, value: Value) -> str:
    return f"input {index} (%{value.name})" if value.name else f"input {index}"


def check_inputs(graph: Graph, inputs: Sequence) -> list[np.ndarray]:
    """The inputs as numpy arrays, after checking them against ``graph``'s input types.

    Raises `GraphError` for a wrong count, `ShapeError` for a wrong shape and `DTypeError` for
    a wrong dtype; each message names the graph and the input. Arrays are never cast.
    """
    expected = graph.inputs
    if len(inputs) != len(expected):
        types = ", ".join(str(v.type) for v in expected)
        raise GraphError(
            f"@{graph.name}", f"expects {len(expected)} inputs ({types}), got {len(inputs)}", None
        )
    arrays = []
    for i, (x, value) in enumerate(zip(inputs, expected)):
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        vtype = value.type
        if x.dtype != vtype.dtype.np:
            raise DTypeError(
                f"@{graph.name}",
                f"{_input_label(i, value)} expects {vtype}, got {describe_array(x)}",
                None,
            )
        if x.shape != vtype.shape:
            raise ShapeError(
                f"@{graph.name}",
                f"{_input_label(i, value)} expects {vtype}, got {describe_array(x)}",
                None,
            )
        arrays.append(x)
    return arrays


class CompiledGraph:
    """A compiled graph: call it with one numpy array per graph input.

    ``graph``, ``backend_name`` and ``compile_seconds`` say what was compiled, by whom and how
    long it took; ``calls`` counts calls. A backend either passes a ``run`` function (checked
    arrays in, arrays out) or subclasses this and overrides `run`, to carry state such as
    statistics. ``__call__`` checks the inputs before `run` and the outputs after it.
    """

    def __init__(self, graph: Graph, backend_name: str, run: RunFn | None = None) -> None:
        self.graph = graph
        self.backend_name = backend_name
        self.compile_seconds = 0.0
        self.calls = 0
        self._run_fn = run

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The backend's core: checked input arrays in, output arrays out."""
        if self._run_fn is None:
            raise NotImplementedError(f"{type(self).__name__} must override run()")
        return self._run_fn(inputs)

    def compile_report(self) -> str:
        """Where the compile time went, in one line (``EMBER_LOGS=perf_hints``); backends with
        stages of their own say more."""
        return f"{len(self.graph.nodes)} nodes"

    def fast_runner(self):
        """A function ``arrays -> outputs or None`` for the fast call path
        (`ember.tracer.fastcall`) that checks the arrays' dtypes, shapes and layouts itself
        and returns None, having run nothing, when one does not fit; None when this backend
        has no such runner (the default)."""
        return None

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        outputs = self.run(check_inputs(self.graph, inputs))
        self._check_outputs(outputs)
        self.calls += 1
        return outputs

    def _check_outputs(self, outputs) -> None:
        expected = self.graph.outputs
        if not isinstance(outputs, list) or len(outputs) != len(expected):
            got = f"{len(outputs)} outputs" if isinstance(outputs, list) else repr(type(outputs))
            raise BackendError(
                f"@{self.graph.name}",
                f"backend {self.backend_name!r} returned {got}, expected a list of "
                f"{len(expected)} arrays",
                None,
            )
        for i, (out, value) in enumerate(zip(outputs, expected)):
            ok = (
                isinstance(out, np.ndarray)
                and out.shape == value.type.shape
                and out.dtype == value.type.dtype.np
            )
            if not ok:
                got = describe_array(out) if isinstance(out, np.ndarray) else repr(type(out))
                raise BackendError(
                    f"@{self.graph.name}",
                    f"backend {self.backend_name!r} returned {got} for output {i}, whose "
                    f"type is {value.type}",
                    None,
                )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} @{self.graph.name} by {self.backend_name!r}: "
            f"{len(self.graph.nodes)} nodes, compiled in {self.compile_seconds * 1e3:.2f} ms>"
        )


@runtime_checkable
class Backend(Protocol):
    """What the registry and the runtime need from a backend.

    A backend may also define ``available() -> bool | str`` (True, or why it cannot run on this
    machine: no GPU, a missing toolchain); `BaseBackend` defines it as always True.
    """

    name: str
    devices: tuple[str, ...]

    def supports(self, graph: Graph) -> bool | str:
        """True, or a reason why this backend cannot compile ``graph``."""
        ...

    def compile(self, graph: Graph) -> CompiledGraph:
        """A callable that runs ``graph`` on numpy arrays."""
        ...


class BaseBackend(ABC):
    """The common parts of a backend; subclasses set ``name``/``devices`` and write `build`.

    ``checks_device``: whether ``supports`` refuses graphs whose values live on a device
    kind outside ``devices`` (the reference and null backends run graphs typed for any device).
    """

    name: str = ""
    devices: tuple[str, ...] = ("cpu",)
    checks_device: bool = True

    def available(self) -> bool | str:
        """True, or why this backend cannot run on this machine."""
        return True

    def supports_node(self, node: Node) -> bool | str:
        """True, or why this backend cannot run ``node`` (default: every primitive)."""
        return True

    def supports(self, graph: Graph) -> bool | str:
        """True, or the first reason (naming the node and its file:line) why not."""
        if self.checks_device:
            for value in (*graph.inputs, *(n.output for n in graph.nodes)):
                kind = device_kind(value.type.device)
                if kind not in self.devices:
                    return (
                        f"a value of type {value.type} is on device {value.type.device!r}; "
                        f"backend {self.name!r} runs on {', '.join(self.devices)}"
                    )
        for index, node in enumerate(graph.nodes):
            where = f" at {node.loc}" if node.loc is not None else ""
            if node.op not in PRIMITIVES:
                return f"node %{index} uses unknown op {node.op!r}{where}"
            verdict = self.supports_node(node)
            if verdict is not True:
                why = verdict if isinstance(verdict, str) and verdict else "is not supported"
                return f"node %{index} ({node.op}{where}) {why}"
        return True

    def compile(self, graph: Graph) -> CompiledGraph:
        """Check ``supports``, then `build` and time it; raises `BackendError` if unsupported."""
        start = time.perf_counter()
        verdict = self.supports(graph)
        if verdict is not True:
            why = verdict if isinstance(verdict, str) and verdict else "not supported"
            raise BackendError(
                f"@{graph.name}", f"backend {self.name!r} cannot compile this graph: {why}", None
            )
        built = self.build(graph)
        compiled = (
            built if isinstance(built, CompiledGraph) else CompiledGraph(graph, self.name, built)
        )
        compiled.compile_seconds = time.perf_counter() - start
        return compiled

    @abstractmethod
    def build(self, graph: Graph) -> CompiledGraph | RunFn:
        """Compile a supported graph: a `RunFn`, or a `CompiledGraph` subclass with state."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {', '.join(self.devices)}>"


class NullCompiledGraph(CompiledGraph):
    """What `NullBackend` compiles: zero-filled outputs and kernel counts.

    ``kernels_per_call``: kernels one call launches; ``launches``: kernels launched by every
    call so far; ``ops_per_call``: kernels per call by op name.
    """

    def __init__(self, graph: Graph, backend: NullBackend) -> None:
        super().__init__(graph, backend.name)
        self._backend = backend
        self.ops_per_call = Counter(node.op for node in graph.nodes)
        self.kernels_per_call = len(graph.nodes)
        self.launches = 0
        self._outputs = [(v.type.shape, v.type.dtype.np) for v in graph.outputs]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        self.launches += self.kernels_per_call
        self._backend.launches += self.kernels_per_call
        return [np.zeros(shape, dtype) for shape, dtype in self._outputs]


class NullBackend(BaseBackend):
    """A backend that runs nothing: verified graph in, zero-filled outputs out.

    It accepts every graph of known primitives, whatever device its types name and whether or
    not kernels are registered. ``launches`` counts the kernels launched by every graph it
    compiled; each `NullCompiledGraph` counts its own.
    """

    name = "null"
    devices = ("cpu", "cuda")
    checks_device = False

    def __init__(self) -> None:
        self.launches = 0

    def build(self, graph: Graph) -> NullCompiledGraph:
        verify(graph)
        return NullCompiledGraph(graph, self)
