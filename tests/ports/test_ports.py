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


# name, program, argv (a function of the temporary directory), parity rtol, adjust, fullgraph
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
        argv=lambda d: ["--model", "Transformer", "--data", str(d / "data"),
                        "--save", str(d / "m.pt")],  # fmt: skip
        adjust=no_aten_dropout,
    ),
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
    fullgraph = spec.get("fullgraph", True)
    step = harness.compiled_vs_eager(program, argv, fullgraph=fullgraph)
    if not fullgraph:
        assert not ember.last_graphs(step), "expected a graph break"
