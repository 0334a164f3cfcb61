"""Port tests: a PyTorch training program runs as written and, with only its imports rewritten,
on ember; both must give the same numbers.

A program in ``programs/`` is written as the published PyTorch examples write theirs
(``import torch``, ``import torch.nn as nn``, ``from torch.utils.data import DataLoader``...).
`load_program` executes its text twice in fresh module namespaces: once as written, once after
`rewrite_imports`, which changes import statements and nothing else (``import torch`` becomes
``import ember as torch``, ``from torch.x import y`` becomes ``from ember.x import y``). Each
program offers a small entry point so that its text stays identical for both libraries:

- ``parse_args(argv)``: its argparse options (small sizes by default);
- ``build(args)``: seeds, builds the model(s), optimizers and schedulers, returns them in a dict;
- ``run(args, **built)``: trains and evaluates, returns a history (a dict of numbers and lists
  of numbers: every step's loss, test losses, accuracies...);
- ``train_step``: a module-level function holding one training step, which `run` calls by its
  global name, so that `compiled_vs_eager` can replace it with ``ember.compile(train_step)``.

`parity` runs a program in float64 (``set_default_dtype(float64)`` before ``build``), copies
the initial weights of every torch module that ``build`` returned into the matching ember module
(state dicts through numpy), runs both under `shared_random`, and compares the histories and the
final state dicts (`assert_close`: 1e-9 relative unless a program states why not).

Note: random numbers. ember's generator (counter-based Philox) and PyTorch's (mt19937) draw
different numbers from the same seed, by design. So that both libraries see the same batches,
noise and dropout masks, `shared_random` has both draw from one seeded numpy stream while a
program runs: ``randn``, ``rand``, ``randint``, ``randperm`` and their ``_like`` forms (the
DataLoader's shuffling included), and the dropout masks. On the ember side only the uniform
draw inside F.dropout/F.dropout2d is replaced, so ember's own masking and scaling still run; on
the PyTorch side, whose masks are drawn inside ATen, F.dropout/F.dropout2d are replaced by the
same definition (keep where ``u < 1 - p``, scale by ``1 / (1 - p)``). Dropout drawn inside a
fused ATen kernel (between LSTM layers, on attention weights) cannot be shared; a program's test
turns those probabilities to 0 for the comparison and says so. `compiled_vs_eager` runs ember
alone with its own generator: compiled code draws the same numbers as eager code.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

import ember

PROGRAMS = Path(__file__).parent / "programs"
LIBS = {"torch": torch, "ember": ember}


# ----------------------------------------------------------------------------- the port


def _ported_name(name: str) -> str:
    return "ember" + name[len("torch") :]


def _is_torch(name: str | None) -> bool:
    return name is not None and (name == "torch" or name.startswith("torch."))


def _rewrite_statement(node: ast.stmt) -> str | None:
    """The ember form of one import statement, or None when it imports nothing of torch."""
    if isinstance(node, ast.Import):
        if not any(_is_torch(alias.name) for alias in node.names):
            return None
        parts = []
        for alias in node.names:
            if not _is_torch(alias.name):
                parts.append(alias.name + (f" as {alias.asname}" if alias.asname else ""))
            elif alias.name == "torch":
                parts.append(f"ember as {alias.asname or 'torch'}")
            else:  # import torch.a.b [as c]: ``torch`` itself is bound by ``import ember as torch``
                parts.append(
                    _ported_name(alias.name) + (f" as {alias.asname}" if alias.asname else "")
                )
        return "import " + ", ".join(parts)
    if isinstance(node, ast.ImportFrom) and node.level == 0 and _is_torch(node.module):
        names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
        return f"from {_ported_name(node.module)} import {names}"
    return None


def rewrite_imports(source: str) -> str:
    """``source`` with every import of torch rewritten to ember: the only edit a port makes.

    Statements keep their lines (a statement written over several lines becomes one line plus
    blank ones), so tracebacks and ember's file:line messages point at the program's lines.
    """
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        new = _rewrite_statement(node)
        if new is None:
            continue
        first, last = node.lineno - 1, node.end_lineno - 1
        prefix = lines[first][: node.col_offset]
        suffix = lines[last][node.end_col_offset :].rstrip("\n")
        if prefix.strip() or suffix.strip()[:1] not in ("", "#"):
            raise ValueError(f"line {node.lineno}: an import must stand alone on its lines")
        lines[first] = prefix + new + suffix + "\n"
        for i in range(first + 1, last + 1):
            lines[i] = "\n"
    return "".join(lines)


def program_path(name: str) -> Path:
    return PROGRAMS / f"{name}.py"


def load_program(name: str, lib: str) -> types.ModuleType:
    """Execute program ``name`` as written (``lib="torch"``) or ported (``lib="ember"``) in a
    fresh module, registered in ``sys.modules`` so that pickling its classes works."""
    path = program_path(name)
    source = path.read_text()
    if lib == "ember":
        source = rewrite_imports(source)
    module_name = f"ports_{name}_{lib}"
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


# ----------------------------------------------------------------------------- running


@contextlib.contextmanager
def default_dtype(lib, dtype) -> Iterator[None]:
    before = lib.get_default_dtype()
    lib.set_default_dtype(dtype)
    try:
        yield
    finally:
        lib.set_default_dtype(before)


@contextlib.contextmanager
def patched(patches: list[tuple[object, str, object]]) -> Iterator[None]:
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patches]
    try:
        for obj, attr, value in patches:
            setattr(obj, attr, value)
        yield
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)


def _size(size) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], tuple | list):
        size = size[0]
    return tuple(int(s) for s in size)


def _random_functions(lib, rng: np.random.Generator) -> dict[str, Callable]:
    """``randn``, ``rand``, ``randint``, ``randperm`` and the ``_like`` forms, drawing from
    ``rng`` and returning ``lib`` tensors of the dtype the library would have chosen."""

    def finish(values, dtype, requires_grad=False):
        t = lib.tensor(values, dtype=dtype)
        return t.requires_grad_() if requires_grad else t

    def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, **_):
        values = rng.standard_normal(_size(size))
        return finish(values, dtype or lib.get_default_dtype(), requires_grad)

    def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, **_):
        values = rng.random(_size(size))
        return finish(values, dtype or lib.get_default_dtype(), requires_grad)

    def randint(*args, size=None, generator=None, dtype=None, device=None, **_):
        args = list(args)
        if size is None:
            size = args.pop()
        low, high = (0, args[0]) if len(args) == 1 else args
        return finish(rng.integers(low, high, _size((size,))), dtype or lib.int64)

    def randperm(n, *, generator=None, dtype=None, device=None, **_):
        return finish(rng.permutation(int(n)), dtype or lib.int64)

    def randn_like(input, *, dtype=None, **_):
        return randn(*input.shape, dtype=dtype or input.dtype)

    def rand_like(input, *, dtype=None, **_):
        return rand(*input.shape, dtype=dtype or input.dtype)

    return {"randn": randn, "rand": rand, "randint": randint, "randperm": randperm,
            "randn_like": randn_like, "rand_like": rand_like}  # fmt: skip


def _torch_dropouts(rng: np.random.Generator) -> dict[str, Callable]:
    """F.dropout and F.dropout2d for PyTorch with masks from ``rng``: keep where
    ``u < 1 - p``, scale by ``1 / (1 - p)``, channel masks of shape (N, C, 1, ...)."""

    def masked(input, p, training, inplace, noise_shape):
        if not training or p == 0.0:
            return input
        u = torch.tensor(rng.random(noise_shape), dtype=input.dtype)
        scale = (u < 1.0 - p).to(input.dtype) / (1.0 - p)
        return input.mul_(scale) if inplace else input * scale

    def dropout(input, p=0.5, training=True, inplace=False):
        return masked(input, p, training, inplace, tuple(input.shape))

    def dropout2d(input, p=0.5, training=True, inplace=False):
        shape = tuple(input.shape)
        return masked(input, p, training, inplace, (*shape[:2], *(1,) * (len(shape) - 2)))

    return {"dropout": dropout, "dropout2d": dropout2d}


@contextlib.contextmanager
def shared_random(lib, seed: int) -> Iterator[None]:
    """While the block runs, ``lib`` draws its random numbers from ``np.random.default_rng(seed)``
    (see the module docstring)."""
    rng = np.random.default_rng(seed)
    funcs = _random_functions(lib, rng)
    patches = [(lib, name, fn) for name, fn in funcs.items()]
    if lib is torch:
        patches += [(torch.nn.functional, n, fn) for n, fn in _torch_dropouts(rng).items()]
    else:
        sampler = importlib.import_module("ember.frontend.utils.data.sampler")
        patches.append((sampler, "randperm", funcs["randperm"]))
        for path in ("ember.frontend.nn.functional.dropout",
                     "ember.frontend.nn.functional.feature_dropout"):  # fmt: skip
            patches.append((importlib.import_module(path), "rand", funcs["rand"]))
    with patched(patches):
        yield


def modules_in(built) -> list[tuple[str, object]]:
    """The (path, module) pairs in what ``build`` returned: dict values, list items, in order."""
    found = []

    def walk(path, value):
        if isinstance(value, torch.nn.Module | ember.nn.Module):
            found.append((path, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{path}.{k}" if path else str(k), v)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{path}[{i}]", v)

    walk("", built)
    return found


def to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return value.detach().numpy() if isinstance(value, ember.Tensor) else np.asarray(value)


def state_of(built) -> dict[str, np.ndarray]:
    return {f"{path}:{key}": to_numpy(value).copy()
            for path, module in modules_in(built)
            for key, value in module.state_dict().items()}  # fmt: skip


# ----------------------------------------------------------------------------- comparing


def assert_close(actual, expected, rtol: float, what: str) -> None:
    """Histories and states agree: numbers to ``rtol`` relative to the magnitude of their list
    or array (so a bias that starts at 0 is not held to a relative error of its own), integers,
    strings and flags exactly, and the structure (keys, lengths) exactly."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), what
        assert list(actual) == list(expected), f"{what}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_close(actual[key], expected[key], rtol, f"{what}[{key!r}]")
        return
    if isinstance(expected, str | bool | int) and not isinstance(expected, np.ndarray):
        assert actual == expected, f"{what}: {actual!r} != {expected!r}"
        return
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if e.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e, err_msg=what)
        return
    scale = float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)) or 1.0
    np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, err_msg=what)


_NUMBER = re.compile(r"(-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)")


def _last_place(text: str) -> float:
    """One unit in the last place a printed number shows (``0.0312`` -> 1e-4); 0 for an
    integer (counts, batch numbers and accuracies print exactly)."""
    mantissa, _, exponent = text.lower().partition("e")
    if "." not in mantissa and not exponent:
        return 0.0
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def assert_same_printout(actual: str, expected: str, rtol: float, name: str) -> None:
    """What the two runs printed agrees line by line: the text exactly, each number to
    ``rtol`` plus one unit in the last place it was printed with (a value that agrees to 1e-9
    may still round the other way at the fourth decimal)."""
    a_lines, e_lines = actual.splitlines(), expected.splitlines()
    assert len(a_lines) == len(e_lines), f"{name} printed {len(a_lines)} lines, not {len(e_lines)}"
    for number, (a_line, e_line) in enumerate(zip(a_lines, e_lines, strict=True), 1):
        a_parts, e_parts = _NUMBER.split(a_line), _NUMBER.split(e_line)
        what = f"{name} printed line {number}:\n  ember: {a_line}\n  torch: {e_line}"
        assert len(a_parts) == len(e_parts) and a_parts[::2] == e_parts[::2], what
        for a, e in zip(a_parts[1::2], e_parts[1::2], strict=True):
            tol = rtol * abs(float(e)) + max(_last_place(a), _last_place(e))
            assert abs(float(a) - float(e)) <= tol, what


# ----------------------------------------------------------------------------- the two checks


def run_program(prog, lib, argv, *, adjust=None, initial=None):
    """Parse, build (in float64), load ``initial`` weights (a list of state dicts as numpy, in
    `modules_in` order) if given, apply ``adjust``, snapshot, run.

    Returns (history, built, the initial states as numpy)."""
    with default_dtype(lib, lib.float64):
        args = prog.parse_args(argv)
        built = prog.build(args)
        modules = [m for _, m in modules_in(built)]
        if initial is not None:
            assert len(initial) == len(modules), "the two builds return different modules"
            for module, state in zip(modules, initial):
                module.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
        if adjust is not None:
            adjust(built)
        snapshot = [{k: to_numpy(v).copy() for k, v in m.state_dict().items()} for m in modules]
        history = prog.run(args, **built)
    return history, built, snapshot


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_one(name, lib_name, argv, adjust, seed, initial):
    """One library's run for `parity`: (history, final state, printout, initial state)."""
    lib = LIBS[lib_name]
    prog = load_program(name, lib_name)
    out = io.StringIO()
    with shared_random(lib, seed), contextlib.redirect_stdout(out):
        history, built, snapshot = run_program(prog, lib, list(argv), adjust=adjust,
                                               initial=initial)  # fmt: skip
    return history, state_of(built), out.getvalue(), snapshot


def parity(name: str, argv=(), *, rtol: float = 1e-9, adjust=None, seed: int = 0):
    """Run program ``name`` with torch and, ported, with ember from the same weights and random
    numbers; assert equal histories, final states and printouts. ``adjust(built)`` runs on both
    before training (e.g. to turn off dropout drawn inside ATen). Returns both histories."""
    with torch_threads(1):  # tiny tensors: a pool of threads only waits on a busy machine
        t_history, t_state, t_printed, initial = _run_one(name, "torch", argv, adjust, seed, None)
        e_history, e_state, e_printed, _ = _run_one(name, "ember", argv, adjust, seed, initial)
    assert_close(e_history, t_history, rtol, f"{name} history")
    assert_close(e_state, t_state, rtol, f"{name} final state")
    assert_same_printout(e_printed, t_printed, rtol, name)
    return {"torch": t_history, "ember": e_history}


def compiled_vs_eager(name: str, argv=(), *, fullgraph: bool = True, rtol: float = 1e-9,
                      adjust=None, seed: int = 0):  # fmt: skip
    """Run the ported program twice with ember's own generator, eagerly and with its
    ``train_step`` wrapped in ``ember.compile(fullgraph=...)``; assert equal histories and final
    states (to 1e-9 in float64: the compiled kernels add in another order than numpy's, and a
    word model trained at learning rate 20 moves that rounding to 1e-10 in twenty steps).
    Returns the compiled ``train_step`` (for ``ember.explain``-style checks)."""
    histories, states, compiled = {}, {}, None
    for mode in ("eager", "compiled"):
        ember.compiler.reset()
        prog = load_program(name, "ember")
        if mode == "compiled":
            compiled = prog.train_step = ember.compile(prog.train_step, fullgraph=fullgraph)
        ember.manual_seed(seed)
        history, built, _ = run_program(prog, ember, list(argv), adjust=adjust)
        histories[mode], states[mode] = history, state_of(built)
    assert_close(histories["compiled"], histories["eager"], rtol, f"{name} compiled history")
    assert_close(states["compiled"], states["eager"], rtol, f"{name} compiled final state")
    return compiled
