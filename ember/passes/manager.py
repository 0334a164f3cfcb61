"""The pass manager: runs named graph -> graph passes, with instruments hooked around them.

A *pass* is a function ``Graph -> Graph`` with a name. Register one with the decorator

    @graph_pass("dce")
    def dce(graph: Graph) -> Graph: ...

(which returns a callable `Pass`), or build ``Pass(name, fn)`` directly. A `PassManager` runs a
list of passes (names, `Pass` objects or plain functions) over a graph and records each pass's
wall time in ``manager.timings``.

Note [instruments, not code in passes]: as in TVM (``python/tvm/ir/instrument.py``),
everything that *watches* a pipeline is an instrument: an object whose hooks the manager calls
before the first pass, around each pass and after the last. Passes never print, time, verify
or dump themselves, so every pass gets all of that for free, and a pipeline can be debugged by
adding an instrument rather than by editing passes. Built in:

- `VerifyInstrument`: `ember.ir.verify` on the input and after every pass; a failure names the
  pass that broke the graph. Added automatically when ``EMBER_VERIFY=1``.
- `TimingInstrument`: per-pass seconds accumulated over runs, ``report()`` as a table.
- `DumpInstrument(directory)`: ``00_input.ir``, then ``NN_<pass>.ir`` after each pass (and
  ``NN_<pass>.before.ir`` with ``before=True``).
- `LogInstrument`: the IR after each pass on stderr when ``EMBER_LOGS`` contains ``passes``
  (see `ember.passes.logs`). Added automatically.

Provenance: text dumped or logged after a pass starts with the line
``# after pass <name> (<ms> ms)``, so every IR file says which pass made it. Strip the ``#``
header lines (`strip_header`) before handing a dump to `ember.ir.parse_graph`.

Errors: an exception raised inside a pass is re-raised with the pass name added to its message
(an `EmberError` keeps its class, op and location; anything else becomes a `GraphError`), and the
new exception has a ``pass_name`` attribute. The original is chained as ``__cause__``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from ..ir import EmberError, Graph, GraphError, format_graph, verify
from . import logs
from .gc_pause import gc_paused

__all__ = [
    "Pass",
    "PassInfo",
    "PassManager",
    "PassInstrument",
    "VerifyInstrument",
    "TimingInstrument",
    "DumpInstrument",
    "LogInstrument",
    "graph_pass",
    "format_stage",
    "register_stage",
    "verify_stage",
    "register_pass",
    "get_pass",
    "registered_passes",
    "verify_enabled",
    "provenance_header",
    "strip_header",
]

PassFn = Callable[[Graph], Graph]
_PASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


_STAGES: dict[type, tuple[Callable, Callable | None]] = {Graph: (format_graph, verify)}


def register_stage(cls: type, format: Callable, verify: Callable | None = None) -> None:
    """Let a pipeline hand ``cls`` objects between passes: ``format(obj)`` prints one (logs,
    dumps) and ``verify(obj)`` checks one (``EMBER_VERIFY=1``), as graphs are."""
    _STAGES[cls] = (format, verify)


def _stage(obj) -> tuple[Callable, Callable | None]:
    for cls in type(obj).__mro__:
        if cls in _STAGES:
            return _STAGES[cls]
    return (str, None)


def format_stage(obj) -> str:
    """The text of a pipeline stage: a graph's IR, a fusion plan, kernel IR..."""
    return _stage(obj)[0](obj)


def verify_stage(obj) -> None:
    check = _stage(obj)[1]
    if check is not None:
        check(obj)


class Pass:
    """A named function from one pipeline stage to the next (graph -> graph unless
    ``returns`` says otherwise). Calling the pass calls the function."""

    __slots__ = ("name", "fn", "returns")

    def __init__(self, name: str, fn: PassFn, returns: type = Graph) -> None:
        if not isinstance(name, str) or _PASS_NAME.fullmatch(name) is None:
            raise ValueError(f"pass name {name!r} must be an identifier (letters, digits, _ . -)")
        if not callable(fn):
            raise TypeError(f"pass {name!r}: {fn!r} is not callable")
        self.name = name
        self.fn = fn
        self.returns = returns

    def __call__(self, graph: Graph, **options) -> Graph:
        """Run the pass; ``options`` are keyword arguments of the function (the manager passes
        none, so every option needs a default)."""
        return self.fn(graph, **options)

    @property
    def doc(self) -> str | None:
        return self.fn.__doc__

    def __repr__(self) -> str:
        return f"<pass {self.name}>"


_REGISTRY: dict[str, Pass] = {}


def register_pass(p: Pass) -> Pass:
    """Make ``p`` runnable by name; registering a different function under a taken name fails."""
    old = _REGISTRY.get(p.name)
    if old is not None and old.fn is not p.fn:
        raise ValueError(f"a different pass is already registered as {p.name!r}: {old.fn!r}")
    _REGISTRY[p.name] = p
    return p


def graph_pass(name: str, returns: type = Graph) -> Callable[[PassFn], Pass]:
    """Decorator: register ``fn`` as the pass ``name`` and return it as a `Pass`."""

    def decorate(fn: PassFn) -> Pass:
        return register_pass(Pass(name, fn, returns))

    return decorate


def get_pass(name: str) -> Pass:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ValueError(f"no pass is registered as {name!r} (registered: {known})") from None


def registered_passes() -> dict[str, Pass]:
    return dict(_REGISTRY)


def _as_pass(p: str | Pass | PassFn) -> Pass:
    if isinstance(p, Pass):
        return p
    if isinstance(p, str):
        return get_pass(p)
    if callable(p):  # a plain function: named after itself (``<lambda>`` becomes ``_lambda_``)
        name = re.sub(r"[^A-Za-z0-9_.\-]", "_", getattr(p, "__name__", type(p).__name__))
        return Pass(name if _PASS_NAME.fullmatch(name) else "_" + name, p)
    raise TypeError(f"expected a pass name, a Pass or a function, got {p!r}")


class PassInfo:
    """What instruments learn about the pass being run: its name, its 1-based position in the
    pipeline and, after it ran, its wall time in seconds."""

    __slots__ = ("name", "index", "seconds")

    def __init__(self, name: str, index: int, seconds: float | None = None) -> None:
        self.name = name
        self.index = index
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"PassInfo({self.name!r}, {self.index}, {self.seconds})"


def provenance_header(info: PassInfo) -> str:
    """``# after pass <name> (<ms> ms)``: the first line of IR text a pass produced."""
    return f"# after pass {info.name} ({(info.seconds or 0.0) * 1e3:.3f} ms)"


def strip_header(text: str) -> str:
    """IR text without its leading ``#`` provenance lines, ready for `parse_graph`."""
    lines = text.splitlines(keepends=True)
    while lines and lines[0].lstrip().startswith("#"):
        lines.pop(0)
    return "".join(lines)


def verify_enabled() -> bool:
    """Whether ``EMBER_VERIFY`` (read now) asks for verification after every pass."""
    return os.environ.get("EMBER_VERIFY", "").strip().lower() in ("1", "true", "yes", "on")


def _blame(error: Exception, note: str, pass_name: str | None, op: str, detail: str) -> Exception:
    """``error`` again, with a ``pass_name`` attribute: an `EmberError` keeps its class, op and
    location and gets `` (note)`` added; anything else becomes ``GraphError(op, detail)``."""
    new: Exception | None = None
    if isinstance(error, EmberError):
        try:
            new = type(error)(error.op, f"{error.detail} ({note})", error.loc)
        except Exception:  # a subclass with another constructor: fall back to GraphError
            new = None
    if new is None:
        new = GraphError(op, detail, None)
    new.pass_name = pass_name  # type: ignore[attr-defined]
    return new


class PassInstrument:
    """Hooks the manager calls; subclasses override the ones they need."""

    def enter_run(self, graph: Graph) -> None:
        """Before the first pass, with the input graph."""

    def before_pass(self, info: PassInfo, graph: Graph) -> None:
        """Before a pass, with the graph it is given."""

    def after_pass(self, info: PassInfo, graph: Graph) -> None:
        """After a pass, with the graph it returned (``info.seconds`` is set)."""

    def exit_run(self, graph: Graph) -> None:
        """After the last pass, with the final graph."""


class VerifyInstrument(PassInstrument):
    """Verify the input and the graph after each pass; blame the pass that broke it."""

    def enter_run(self, graph: Graph) -> None:
        self._check(graph, "in the input graph, before any pass ran")

    def after_pass(self, info: PassInfo, graph: Graph) -> None:
        self._check(graph, f"graph broken by pass {info.name!r}", info.name)

    @staticmethod
    def _check(graph: Graph, blame: str, pass_name: str | None = None) -> None:
        try:
            verify_stage(graph)
        except Exception as e:  # the verifier's GraphError, or a rule's ShapeError/DTypeError
            detail = f"{type(e).__name__}: {e} ({blame})"
            raise _blame(e, blame, pass_name, "verify", detail) from e


class TimingInstrument(PassInstrument):
    """Accumulates ``(pass name, seconds)`` over every run it watches."""

    def __init__(self) -> None:
        self.records: list[tuple[str, float]] = []

    def after_pass(self, info: PassInfo, graph: Graph) -> None:
        self.records.append((info.name, info.seconds or 0.0))

    def totals(self) -> dict[str, float]:
        """Seconds per pass name, in order of first appearance."""
        totals: dict[str, float] = {}
        for name, seconds in self.records:
            totals[name] = totals.get(name, 0.0) + seconds
        return totals

    def report(self) -> str:
        """A table: each pass, how often it ran and its total milliseconds."""
        calls: dict[str, int] = {}
        for name, _ in self.records:
            calls[name] = calls.get(name, 0) + 1
        totals = self.totals()
        width = max([len("pass"), len("total"), *map(len, totals)])
        lines = [f"{'pass':<{width}}  {'calls':>5}  {'ms':>10}"]
        for name, seconds in totals.items():
            lines.append(f"{name:<{width}}  {calls[name]:>5}  {seconds * 1e3:>10.3f}")
        total = sum(totals.values())
        lines.append(f"{'total':<{width}}  {len(self.records):>5}  {total * 1e3:>10.3f}")
        return "\n".join(lines)


class DumpInstrument(PassInstrument):
    """Write the IR into ``directory``: ``00_input.ir``, then ``NN_<pass>.ir`` after pass NN.

    With ``before=True`` also ``NN_<pass>.before.ir``, the graph each pass was given (the same
    text as the previous file, but handy when passes are inspected one by one). Each file starts
    with a provenance line; files of an earlier run in the same directory are overwritten.
    """

    def __init__(self, directory: str | os.PathLike, before: bool = False) -> None:
        self.directory = Path(directory)
        self.before = before
        self.written: list[Path] = []

    def _write(self, filename: str, header: str, graph: Graph) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / filename
        path.write_text(header + "\n" + format_stage(graph), encoding="utf-8")
        self.written.append(path)

    def enter_run(self, graph: Graph) -> None:
        self._write("00_input.ir", f"# input graph @{graph.name}", graph)

    def before_pass(self, info: PassInfo, graph: Graph) -> None:
        if self.before:
            name = f"{info.index:02d}_{info.name}.before.ir"
            self._write(name, f"# before pass {info.name}", graph)

    def after_pass(self, info: PassInfo, graph: Graph) -> None:
        self._write(f"{info.index:02d}_{info.name}.ir", provenance_header(info), graph)


class LogInstrument(PassInstrument):
    """Print the input and the IR after each pass when ``EMBER_LOGS`` contains ``passes``.

    Writes to ``stream``, or to whatever ``sys.stderr`` is when it writes.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def enter_run(self, graph: Graph) -> None:
        if logs.enabled("passes"):
            logs.log("passes", f"# input graph @{graph.name}\n{format_stage(graph)}", self.stream)

    def after_pass(self, info: PassInfo, graph: Graph) -> None:
        if logs.enabled("passes"):  # format the graph only when someone reads it
            logs.log("passes", f"{provenance_header(info)}\n{format_stage(graph)}", self.stream)


class PassManager:
    """Runs ``passes`` in order; ``instruments`` watch the run (see the module docstring).

    ``VerifyInstrument`` (when ``EMBER_VERIFY=1``) and ``LogInstrument`` are added at each
    `run` unless one of that class is among ``instruments``.
    """

    def __init__(
        self,
        passes: Iterable[str | Pass | PassFn],
        instruments: Iterable[PassInstrument] = (),
    ) -> None:
        self.passes: list[Pass] = [_as_pass(p) for p in passes]
        self.instruments: list[PassInstrument] = list(instruments)
        self.timings: list[tuple[str, float]] = []

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.passes]

    def active_instruments(self) -> list[PassInstrument]:
        """The explicit instruments plus those the environment asks for, read now."""
        active = list(self.instruments)
        if verify_enabled() and not any(isinstance(i, VerifyInstrument) for i in active):
            active.append(VerifyInstrument())
        if not any(isinstance(i, LogInstrument) for i in active):
            active.append(LogInstrument())
        return active

    @gc_paused()
    def run(self, graph: Graph) -> Graph:
        """Run every pass on ``graph`` and return the final graph.

        ``self.timings`` becomes the ``(pass name, seconds)`` of this run.
        """
        instruments = self.active_instruments()
        self.timings = []
        for inst in instruments:
            inst.enter_run(graph)
        for index, p in enumerate(self.passes, 1):
            info = PassInfo(p.name, index)
            for inst in instruments:
                inst.before_pass(info, graph)
            start = time.perf_counter()
            try:
                result = p.fn(graph)
            except Exception as e:
                detail = f"{type(e).__name__}: {e}"
                raise _blame(e, f"in pass {p.name!r}", p.name, f"pass {p.name!r}", detail) from e
            info.seconds = time.perf_counter() - start
            if not isinstance(result, p.returns):
                error = GraphError(
                    f"pass {p.name!r}",
                    f"returned {type(result).__name__}, not a {p.returns.__name__}",
                    None,
                )
                error.pass_name = p.name  # type: ignore[attr-defined]
                raise error
            self.timings.append((p.name, info.seconds))
            for inst in instruments:
                inst.after_pass(info, result)
            graph = result
        for inst in instruments:
            inst.exit_run(graph)
        return graph

    __call__ = run

    def __repr__(self) -> str:
        return f"PassManager([{', '.join(self.names)}])"
