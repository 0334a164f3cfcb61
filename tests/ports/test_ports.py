"""Port tests: published-style PyTorch training programs run unchanged but for their imports.

Each program in ``programs/`` runs with torch and, its imports rewritten, with ember, in float64
from the same weights, batches and random numbers (see `harness`); every step's loss, the
evaluation numbers and the final parameters and buffers must agree to 1e-9 relative unless the
program's entry below says why not. A second test per program runs the ported program with its
``train_step`` wrapped in ``ember.compile(fullgraph=True)`` and requires eager ember's numbers;
where the step reads a value in Python (a graph break, so compile runs it eagerly) the test uses
``fullgraph=False``, checks that capture did break, and still requires the same numbers.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import types

import pytest

import ember

from . import harness


def no_aten_dropout(built):
    """Dropout that PyTorch draws inside a fused ATen kernel (between the layers of a
    multi-layer LSTM, on attention weights in scaled_dot_product_attention) cannot share the
    harness's random stream: off for the comparison. The Dropout modules stay on."""
    for module in built["model"].modules():
        if type(module).__name__ in ("LSTM", "GRU", "RNN"):
            module.dropout = 0.0
        if type(module).__name__ == "MultiheadAttention":
            module.dropout = 0.0


# Each entry: the program (default: the entry's name), its argv as a function of the test's
# temporary directory, the parity tolerance (1e-9 unless a reason is given), an ``adjust`` run on
# both libraries' built objects before training, and whether the training step compiles whole
# (``fullgraph``) or breaks the graph by design; ``compile_argv`` is added for the compiled check.
PROGRAMS = {
    "mnist_cnn_adadelta": dict(argv=lambda d: ["--save-model", "--out", str(d)]),
    "mnist_rnn": dict(argv=lambda d: ["--save-model", "--out", str(d)]),
    "vae": dict(),
    "word_lm_lstm": dict(
        program="word_language_model",
        argv=lambda d: ["--model", "LSTM", "--data", str(d / "data"), "--save", str(d / "m.pt")],
        adjust=no_aten_dropout,
    ),
    "word_lm_transformer": dict(
        program="word_language_model",
        argv=lambda d: [
            "--model",
            "Transformer",
            "--data",
            str(d / "data"),
            "--save",
            str(d / "m.pt"),
        ],  # fmt: skip
        adjust=no_aten_dropout,
    ),
    # the GRU form with tied embedding and decoder weights, trained with AdamW
    "word_lm_gru_tied_adamw": dict(
        program="word_language_model",
        argv=lambda d: [
            "--model",
            "GRU",
            "--tied",
            "--use-optimizer",
            "--lr",
            "0.01",
            "--data",
            str(d / "data"),
            "--save",
            str(d / "m.pt"),
        ],  # fmt: skip
        adjust=no_aten_dropout,
    ),
    # rtol 1e-8: LBFGS feeds each gradient into its curvature pairs and divides by them, so
    # rounding differences grow about tenfold every few closure evaluations (measured: 1e-16 at
    # the first of the 40 evaluations, 4e-10 at the last). The closure reads ``loss.item()``
    # and LBFGS compares losses in Python: a graph break.
    "time_sequence_lbfgs": dict(rtol=1e-8, fullgraph=False, compile_argv=["--steps", "1"]),
    # the step reads ``output.mean().item()`` (D(x), D(G(z))) between its two updates
    "dcgan": dict(argv=lambda d: ["--outf", str(d)], fullgraph=False),
    "super_resolution": dict(argv=lambda d: ["--out", str(d)]),
    "forward_forward": dict(argv=lambda d: ["--save_model", "--out", str(d)]),
    # the step reads ``output.item()`` before ``backward()``, as the example does
    "polynomial_regression": dict(fullgraph=False),
}


def _case(name, tmp_path):
    spec = PROGRAMS[name]
    argv = spec.get("argv", lambda d: [])(tmp_path)
    return spec.get("program", name), argv, spec


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_port_matches_torch(name, tmp_path):
    program, argv, spec = _case(name, tmp_path)
    harness.parity(program, argv, rtol=spec.get("rtol", 1e-9), adjust=spec.get("adjust"))


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_port_compiled_matches_eager(name, tmp_path):
    program, argv, spec = _case(name, tmp_path)
    argv += spec.get("compile_argv", [])
    fullgraph = spec.get("fullgraph", True)
    step = harness.compiled_vs_eager(program, argv, fullgraph=fullgraph,
                                     adjust=spec.get("adjust"))  # fmt: skip
    if fullgraph:
        assert ember.last_graphs(step) is not None
    else:
        assert ember.last_graphs(step) is None, "expected a graph break: compile runs it eagerly"


REWRITES = [
    ("import torch", "import ember as torch"),
    ("import torch.nn as nn", "import ember.nn as nn"),
    ("import torch.nn.functional as F", "import ember.nn.functional as F"),
    ("import torch.utils.data", "import ember.utils.data"),
    ("import torch as th", "import ember as th"),
    ("import os, torch", "import os, ember as torch"),
    ("from torch import nn, optim", "from ember import nn, optim"),
    ("from torch.nn import functional as F", "from ember.nn import functional as F"),
    ("from torch.optim.lr_scheduler import StepLR", "from ember.optim.lr_scheduler import StepLR"),
    ("    import torch.optim as optim", "    import ember.optim as optim"),
    ("import numpy as np", "import numpy as np"),
    ("from torchvision import datasets", "from torchvision import datasets"),
    ("x = torch.zeros(3)  # import torch", "x = torch.zeros(3)  # import torch"),
]


@pytest.mark.parametrize(("line", "expected"), REWRITES)
def test_rewrite_changes_import_statements_only(line, expected):
    source = line + "\n" if not line.startswith(" ") else "if True:\n" + line + "\n"
    assert harness.rewrite_imports(source).splitlines()[-1] == expected


def test_rewrite_keeps_line_numbers():
    source = "from torch.optim import (\n    Adam,\n    SGD,\n)\nx = 1\n"
    ported = harness.rewrite_imports(source)
    assert ported.splitlines() == ["from ember.optim import Adam, SGD", "", "", "", "x = 1"]


def test_parity_fails_on_a_different_number():
    """The comparison can fail: ember starting from weights one part in 1e7 off is caught."""

    def nudge_ember(built):
        if isinstance(built["fc"], ember.nn.Module):
            with ember.no_grad():
                built["fc"].weight.mul_(1 + 1e-7)

    with pytest.raises(AssertionError, match="polynomial_regression"):
        harness.parity("polynomial_regression", adjust=nudge_ember)


@pytest.mark.parametrize(
    ("ember_line", "torch_line", "same"),
    [
        ("Loss: 0.1234 after 3 batches", "Loss: 0.1234 after 3 batches", True),
        ("Loss: 0.1235", "Loss: 0.1234", True),  # rounded the other way at the last place
        ("Loss: 0.1236", "Loss: 0.1234", False),
        ("loss: 0.12345678901234", "loss: 0.12345678901", True),
        ("loss: 0.123457891", "loss: 0.123456789", False),
        ("Loss: 4", "Loss: 5", False),
        ("tensor(0.5)", "0.5", False),
        ("Loss: 0.1234", "Loss: 0.1234\nextra", False),
    ],
)
def test_printout_comparison(ember_line, torch_line, same):
    if same:
        harness.assert_same_printout(ember_line, torch_line, 1e-9, "p")
    else:
        with pytest.raises(AssertionError):
            harness.assert_same_printout(ember_line, torch_line, 1e-9, "p")


def _torch_names(source: str) -> set[str]:
    """Every dotted name of torch that ``source`` reads through its imports
    (``nn.parallel.data_parallel`` with ``import torch.nn as nn`` -> ``torch.nn.parallel.data_parallel``)."""
    tree = ast.parse(source)
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if harness._is_torch(a.name):
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "torch"
        elif isinstance(node, ast.ImportFrom) and harness._is_torch(node.module):
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    names = set(aliases.values())
    for node in ast.walk(tree):
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in aliases and chain:
            names.add(".".join([aliases[node.id], *reversed(chain)]))
    return names


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        if not hasattr(obj, part):  # a submodule not imported yet, as ``import a.b`` loads it
            importlib.import_module(".".join(parts[: i + 1]))
        obj = getattr(obj, part)
    return obj


def _kind(obj) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "class"
    return "callable" if callable(obj) else "value"


@pytest.mark.parametrize("program", sorted({s.get("program", n) for n, s in PROGRAMS.items()}))
def test_every_torch_name_a_program_reads_exists_in_ember(program):
    """Names on paths a CPU run never takes (``nn.parallel.data_parallel`` under ``is_cuda``,
    ``torch.cuda.manual_seed``) must exist too: each resolves in ember to the same kind of
    object (module, class, callable) as in torch."""
    source = harness.program_path(program).read_text()
    for name in sorted(_torch_names(source)):
        try:
            expected = _resolve(name)
        except (AttributeError, ImportError):
            continue  # an attribute of something else (a method of a tensor's class...)
        ported = "ember" + name[len("torch") :]
        assert _kind(_resolve(ported)) == _kind(expected), f"{ported} is not a {_kind(expected)}"
