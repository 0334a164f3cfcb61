"""Compiled equals eager for every layer, loss and example model: outputs, input gradients,
parameter gradients and buffers, with the compiled backward graph run by ``backward()``."""

from __future__ import annotations

import copy
import importlib.util
import pathlib

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def _fresh_cache():
    ember.compiler.reset()
    yield


def _randn(*shape):
    return lambda: ember.randn(*shape)


LAYERS = {
    "Linear": (lambda: nn.Linear(5, 3), _randn(4, 5)),
    "Conv1d": (lambda: nn.Conv1d(2, 3, 3, padding=1), _randn(2, 2, 7)),
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), _randn(2, 2, 6, 6)),
    "Conv2d-reflect": (
        lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
        _randn(1, 2, 5, 5),
    ),  # fmt: skip
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(2, 3, 3, stride=2), _randn(2, 2, 5)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2), _randn(1, 2, 4, 4)),
    "MaxPool1d": (lambda: nn.MaxPool1d(2), _randn(2, 3, 8)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2, stride=1), _randn(2, 2, 5, 5)),
    "AvgPool1d": (lambda: nn.AvgPool1d(3, stride=2), _randn(2, 3, 9)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), _randn(2, 2, 6, 6)),
    "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(3), _randn(2, 2, 7)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((2, 3)), _randn(1, 2, 5, 7)),
    "AdaptiveMaxPool1d": (lambda: nn.AdaptiveMaxPool1d(3), _randn(2, 2, 7)),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(2), _randn(1, 2, 5, 5)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(4), _randn(6, 4)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), _randn(2, 3, 4, 4)),
    "BatchNorm2d-eval": (lambda: nn.BatchNorm2d(3).eval(), _randn(2, 3, 4, 4)),
    "BatchNorm3d": (lambda: nn.BatchNorm3d(2, momentum=0.2), _randn(2, 2, 3, 3, 3)),
    "LayerNorm": (lambda: nn.LayerNorm([3, 4]), _randn(2, 3, 4)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), _randn(2, 4, 5)),
    "Dropout": (lambda: nn.Dropout(0.3), _randn(4, 8)),
    "Flatten": (lambda: nn.Flatten(), _randn(2, 3, 4)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 3)), _randn(4, 6)),
    "Identity": (lambda: nn.Identity(), _randn(3, 2)),
    "RNN": (lambda: nn.RNN(4, 5, num_layers=2), _randn(3, 2, 4)),
    "LSTM": (lambda: nn.LSTM(4, 5, batch_first=True), _randn(2, 3, 4)),
    "GRU": (lambda: nn.GRU(4, 5, bidirectional=True), _randn(3, 2, 4)),
    "RNNCell": (lambda: nn.RNNCell(4, 5), _randn(3, 4)),
    "LSTMCell": (lambda: nn.LSTMCell(4, 5), _randn(3, 4)),
    "GRUCell": (lambda: nn.GRUCell(4, 5), _randn(3, 4)),
    "Upsample-nearest": (lambda: nn.Upsample(scale_factor=2), _randn(1, 2, 3, 3)),
    "Upsample-bilinear": (lambda: nn.UpsamplingBilinear2d(scale_factor=2), _randn(1, 2, 3, 3)),
    "ZeroPad2d": (lambda: nn.ZeroPad2d((1, 2, 0, 1)), _randn(1, 2, 3, 3)),
    "ReflectionPad1d": (lambda: nn.ReflectionPad1d(2), _randn(1, 2, 5)),
    "ReplicationPad2d": (lambda: nn.ReplicationPad2d(1), _randn(1, 2, 3, 3)),
    "CircularPad1d": (lambda: nn.CircularPad1d(1), _randn(1, 2, 4)),
    "ConstantPad1d": (lambda: nn.ConstantPad1d(2, 0.5), _randn(1, 2, 4)),
    "Sequential": (
        lambda: nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)),
        _randn(3, 4),
    ),  # fmt: skip
}
ACTIVATIONS = [
    nn.ReLU, nn.ReLU6, nn.GELU, lambda: nn.GELU(approximate="tanh"), nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.LogSigmoid, nn.ELU, nn.LeakyReLU, nn.Hardtanh, nn.Softplus,
    lambda: nn.Softmax(dim=-1), lambda: nn.LogSoftmax(dim=1), lambda: nn.Softmin(dim=0),
]  # fmt: skip
for _i, _act in enumerate(ACTIVATIONS):
    LAYERS[f"activation{_i}-{getattr(_act, '__name__', 'lambda')}"] = (_act, _randn(3, 5))


def _tensors(out):
    if isinstance(out, ember.Tensor):
        return [out]
    found = []
    for o in out:
        found += _tensors(o)
    return found


def _run(module, inputs, weights):
    """Outputs, a weighted sum's gradients (inputs then parameters) and the buffers."""
    xs = [x.detach().clone().requires_grad_(x.dtype.is_floating_point) for x in inputs]
    outs = _tensors(module(*xs))
    loss = sum((o * w).sum() for o, w in zip(outs, weights) if o.dtype.is_floating_point)
    loss.backward()
    grads = [x.grad for x in xs if x.requires_grad] + [p.grad for p in module.parameters()]
    return (
        [o.detach().numpy().copy() for o in outs],
        [g.numpy().copy() for g in grads],
        [b.numpy().copy() for b in module.buffers()],
    )


def _check_module(make, make_inputs, calls=2, rtol=1e-5, atol=1e-6):
    ember.manual_seed(0)
    eager = make()
    compiled_module = copy.deepcopy(eager)
    compiled = ember.compile(compiled_module)
    for call in range(calls):
        ember.manual_seed(100 + call)
        inputs = make_inputs()
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        with ember.no_grad():  # (on a copy: a training-mode call updates BatchNorm's buffers)
            shapes = [o.shape for o in _tensors(copy.deepcopy(eager)(*inputs))]
        for m in (eager, compiled_module):
            m.zero_grad()
        weights = [ember.randn(*s) for s in shapes]
        ember.manual_seed(7 + call)
        expected = _run(eager, inputs, weights)
        ember.manual_seed(7 + call)
        got = _run(compiled, inputs, weights)
        for kind, a, b in zip(("output", "gradient", "buffer"), expected, got):
            assert len(a) == len(b), kind
            for i, (u, v) in enumerate(zip(a, b)):
                np.testing.assert_allclose(v, u, rtol=rtol, atol=atol, err_msg=f"{kind} {i}")
    graphs = ember.last_graphs(compiled)
    assert graphs is not None, "the module fell back to eager (a graph break)"
    return graphs


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_compiled_equals_eager(name):
    make, make_inputs = LAYERS[name]
    graphs = _check_module(make, make_inputs)
    trainable = any(True for _ in make().parameters())
    if trainable:
        assert graphs.backward is not None and graphs.saved_bytes > 0


def test_batchnorm_cumulative_average_breaks_to_eager_with_eager_results():
    # momentum=None divides by the batch count read in Python (float(num_batches_tracked))
    eager, bn = nn.BatchNorm1d(3, momentum=None), nn.BatchNorm1d(3, momentum=None)
    compiled = ember.compile(bn)
    for _ in range(3):
        x = ember.randn(5, 3)
        np.testing.assert_array_equal(compiled(x).detach().numpy(), eager(x).detach().numpy())
    np.testing.assert_array_equal(bn.running_var.numpy(), eager.running_var.numpy())
    report = ember.explain(bn)(ember.randn(5, 3))
    assert report.break_count == 1 and "float()" in report.breaks[0][1]


def test_multihead_attention_and_embedding():
    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(11, 8, padding_idx=0)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, tokens, mask):
            h = self.emb(tokens)
            out, weights = self.attn(h, h, h, attn_mask=mask)
            return out, weights

    mask = ember.triu(ember.full((5, 5), float("-inf")), diagonal=1)
    _check_module(Attend, lambda: (ember.randint(0, 11, (2, 5)), mask))


LOSSES = {
    "cross_entropy": lambda x, t, p: F.cross_entropy(x, t),
    "cross_entropy-smoothing": lambda x, t, p: F.cross_entropy(x, t, label_smoothing=0.2),
    "cross_entropy-ignore": lambda x, t, p: F.cross_entropy(x, t, ignore_index=1),
    "cross_entropy-probs": lambda x, t, p: F.cross_entropy(x, p.softmax(-1), reduction="sum"),
    "nll": lambda x, t, p: F.nll_loss(x.log_softmax(-1), t, reduction="none"),
    "mse": lambda x, t, p: F.mse_loss(x, p),
    "l1": lambda x, t, p: F.l1_loss(x, p, reduction="sum"),
    "smooth_l1": lambda x, t, p: F.smooth_l1_loss(x, p, beta=0.5),
    "huber": lambda x, t, p: F.huber_loss(x, p, reduction="none", delta=0.7),
    "bce": lambda x, t, p: F.binary_cross_entropy(x.sigmoid(), p),
    "bce_weighted": lambda x, t, p: F.binary_cross_entropy(x.sigmoid(), p, weight=p + 1),
    "bce_logits": lambda x, t, p: F.binary_cross_entropy_with_logits(x, p, pos_weight=p[0] + 1),
    "kl_div": lambda x, t, p: F.kl_div(x.log_softmax(-1), p.softmax(-1), reduction="batchmean"),
    "CrossEntropyLoss": lambda x, t, p: nn.CrossEntropyLoss(weight=p[0] + 0.5)(x, t),
    "MSELoss": lambda x, t, p: nn.MSELoss(reduction="sum")(x, p),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_compiled_equals_eager(name):
    loss_fn = LOSSES[name]
    ember.manual_seed(0)
    x, t, p = ember.randn(4, 5), ember.randint(0, 5, (4,)), ember.rand(4, 5)
    compiled = ember.compile(loss_fn)
    results = []
    for fn in (loss_fn, compiled):
        xs = x.detach().clone().requires_grad_()
        out = fn(xs, t, p)
        (out * ember.arange(1.0, out.numel() + 1).reshape(out.shape)).sum().backward()
        results.append((out.detach().numpy(), xs.grad.numpy()))
    for u, v in zip(*results):
        np.testing.assert_allclose(v, u, rtol=1e-5, atol=1e-7)
    assert ember.last_graphs(compiled).backward is not None


def _example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.path.insert(0, str(EXAMPLES))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


@pytest.mark.parametrize(
    "name, make, make_inputs",
    [
        ("mnist_mlp", lambda m: m.MLP(64), _randn(16, 64)),
        ("mnist_cnn", lambda m: m.ConvNet(8), _randn(4, 8, 8)),
        (
            "char_transformer",
            lambda m: m.GPT(20, 16, 16, 2, 2),
            lambda: ember.randint(0, 20, (2, 16)),
        ),
    ],  # fmt: skip
)
def test_example_models_compiled_equal_eager(name, make, make_inputs):
    module = _example(name)
    _check_module(lambda: make(module), make_inputs, rtol=1e-4, atol=1e-5)
