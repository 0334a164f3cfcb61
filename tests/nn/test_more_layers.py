"""Channel and alpha dropout, PixelShuffle/PixelUnshuffle, Bilinear and Fold/Unfold against
PyTorch in float64 (forward, input and parameter gradients, reprs, state_dict keys, errors),
and the torch.nn module paths (``ember.nn.modules.linear`` and friends).

Dropout masks are ember's own Philox draws, not PyTorch's, so the dropout tests check the
statistics (fraction of channels dropped, the scaling, alpha dropout's mean and variance), that
a channel is dropped as a whole, the gradient (the same mask), and the identity in eval mode."""

import importlib
import math
import warnings

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
import ember.nn.functional as F

RNG = np.random.default_rng(11)
TOL = dict(rtol=1e-12, atol=1e-12)


def _randn(*shape):
    return RNG.standard_normal(shape)


def _check_fn(ef, tf, *arrays):
    """``ef(*ember tensors)`` equals ``tf(*torch tensors)``, and so do the gradients of a
    weighted sum of the output with respect to every input."""
    es = [ember.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ye, yt = ef(*es), tf(*ts)
    assert tuple(ye.shape) == tuple(yt.shape)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **TOL)
    w = _randn(*yt.shape)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    for i, (a, b) in enumerate(zip(es, ts)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"input {i}", **TOL)


def _pair(em, tm):
    """Copy the ember module's weights into the torch module; same repr and keys."""
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})
    return em, tm


# ---- channel dropout ---------------------------------------------------------------------------

CHANNEL_DROPOUT = {
    # name: (ember fn, module, input shape, channel dims (batch, channel) of the mask)
    "dropout1d": (F.dropout1d, nn.Dropout1d, (40, 30, 5)),
    "dropout1d-unbatched": (F.dropout1d, nn.Dropout1d, (300, 5)),
    "dropout2d": (F.dropout2d, nn.Dropout2d, (40, 30, 3, 2)),
    "dropout3d": (F.dropout3d, nn.Dropout3d, (20, 30, 2, 2, 3)),
    "dropout3d-unbatched": (F.dropout3d, nn.Dropout3d, (400, 2, 2, 3)),
}


def _channels(x: np.ndarray, name: str) -> np.ndarray:
    """Rows = channels (every sample's), columns = the elements of one channel."""
    lead = 1 if "unbatched" in name else 2
    return x.reshape(int(np.prod(x.shape[:lead])), -1)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("name", list(CHANNEL_DROPOUT))
def test_channel_dropout_statistics_and_gradient(name, p):
    fn, _, shape = CHANNEL_DROPOUT[name]
    ember.manual_seed(3)
    x = ember.tensor(np.abs(_randn(*shape)) + 0.5, requires_grad=True)
    y = fn(x, p, training=True)
    rows = _channels(y.detach().numpy(), name)
    xin = _channels(x.detach().numpy(), name)
    dropped = np.all(rows == 0, axis=1)
    kept = np.all(rows != 0, axis=1)
    assert np.all(dropped | kept), "a channel was partly dropped"
    n = rows.shape[0]
    # the fraction dropped is Binomial(n, p) / n: within 5 standard deviations
    assert abs(dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(rows[kept], xin[kept] / (1 - p), rtol=1e-6)
    # the gradient is the same mask times the scale
    w = _randn(*shape).astype(np.float32)
    (y * ember.tensor(w)).sum().backward()
    g = _channels(x.grad.numpy(), name)
    np.testing.assert_allclose(g[kept], _channels(w, name)[kept] / (1 - p), rtol=1e-6)
    assert np.all(g[dropped] == 0)


@pytest.mark.parametrize("name", list(CHANNEL_DROPOUT))
def test_channel_dropout_module_eval_p0_p1(name):
    fn, cls, shape = CHANNEL_DROPOUT[name]
    x = ember.tensor(_randn(*shape))
    m = cls(0.4)
    assert repr(m) == repr(getattr(torch.nn, cls.__name__)(0.4))
    m.eval()
    assert m(x) is x
    assert fn(x, 0.4, training=False) is x
    assert fn(x, 0.0) is x
    np.testing.assert_array_equal(fn(x, 1.0).numpy(), np.zeros(shape))
    m.train()
    ember.manual_seed(0)
    a = m(x).numpy()
    ember.manual_seed(0)
    np.testing.assert_array_equal(fn(x, 0.4).numpy(), a)


@pytest.mark.parametrize("name", ["dropout1d", "dropout2d", "dropout3d", "dropout1d-unbatched"])
def test_channel_dropout_inplace(name):
    fn, _, shape = CHANNEL_DROPOUT[name]
    x = ember.tensor(_randn(*shape))
    ember.manual_seed(5)
    expected = fn(x, 0.5).numpy()
    ember.manual_seed(5)
    out = fn(x, 0.5, inplace=True)
    np.testing.assert_array_equal(x.numpy(), expected)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_channel_dropout_rank_rules():
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
        F.dropout1d(ember.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout2d(ember.ones(2, 3, 4, 5), p=1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout3d(-0.1)
    # PyTorch reads a 3-D input of dropout2d as (N, C, L), with a warning
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        y = F.dropout2d(ember.ones(30, 20, 4), 0.5).numpy()
    assert np.all((y == 0).all(-1) | (y != 0).all(-1))
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout3d"):
        F.dropout3d(ember.ones(3, 4), 0.5)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        F.feature_alpha_dropout(ember.ones(5), 0.5, training=True)
    with pytest.raises(TypeError):
        F.dropout2d(np.ones((2, 3, 4, 4)))


# ---- alpha dropout ------------------------------------------------------------------------------

_ALPHA = 1.7580993408473766


@pytest.mark.parametrize("feature", [False, True], ids=["alpha", "feature_alpha"])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_alpha_dropout_values_and_moments(feature, p):
    fn = F.feature_alpha_dropout if feature else F.alpha_dropout
    ember.manual_seed(7)
    shape = (200, 100, 4) if feature else (200_000,)
    x = ember.tensor(_randn(*shape), requires_grad=True)
    y = fn(x, p, training=True)
    yn, xn = y.detach().numpy(), x.detach().numpy()
    a = 1.0 / math.sqrt((_ALPHA**2 * p + 1) * (1 - p))
    kept_value = a * xn + _ALPHA * a * p
    dropped_value = _ALPHA * a * (p - 1)
    kept = np.isclose(yn, kept_value, rtol=1e-12, atol=1e-12)
    dropped = np.isclose(yn, dropped_value, rtol=1e-12, atol=1e-12)
    assert np.all(kept | dropped)
    if feature:
        k = kept.reshape(200 * 100, -1)
        assert np.all(k.all(1) | ~k.any(1)), "a channel was partly dropped"
        n = k.shape[0]
    else:
        n = kept.size
    assert abs((~kept).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    # a standard normal input keeps zero mean and unit variance
    assert abs(yn.mean()) < 0.05 and abs(yn.std() - 1) < 0.05
    w = _randn(*shape)
    (y * ember.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, a * w, 0.0), rtol=1e-12)


@pytest.mark.parametrize("cls", ["AlphaDropout", "FeatureAlphaDropout"])
def test_alpha_dropout_modules(cls):
    m = getattr(nn, cls)(0.3)
    assert repr(m) == repr(getattr(torch.nn, cls)(0.3))
    x = ember.tensor(_randn(4, 6, 3))
    fn = F.alpha_dropout if cls == "AlphaDropout" else F.feature_alpha_dropout
    ember.manual_seed(1)
    a = m(x).numpy()
    ember.manual_seed(1)
    np.testing.assert_array_equal(fn(x, 0.3, training=True).numpy(), a)
    assert m.eval()(x) is x
    assert F.alpha_dropout(x, 0.3) is x  # training defaults to False, as in PyTorch
    np.testing.assert_array_equal(fn(x, 1.0, training=True).numpy(), np.zeros((4, 6, 3)))


def test_dropout_variants_draw_from_the_seeded_generator():
    x = ember.ones(8, 16, 3)
    for fn in (F.dropout1d, F.dropout2d, F.alpha_dropout, F.feature_alpha_dropout):
        kwargs = {"training": True}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ember.manual_seed(4)
            a, b = fn(x, 0.5, **kwargs).numpy(), fn(x, 0.5, **kwargs).numpy()
            ember.manual_seed(4)
            c = fn(x, 0.5, **kwargs).numpy()
        np.testing.assert_array_equal(a, c)
        assert not np.array_equal(a, b)


# ---- PixelShuffle / PixelUnshuffle --------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, r", [((2, 8, 3, 4), 2), ((9, 2, 2), 3), ((2, 1, 4, 3, 5), 2), ((1, 3, 2, 2), 1)]
)
def test_pixel_shuffle(shape, r):
    _check_fn(lambda x: F.pixel_shuffle(x, r), lambda x: torch.nn.functional.pixel_shuffle(x, r),
              _randn(*shape))  # fmt: skip
    m = nn.PixelShuffle(r)
    assert repr(m) == repr(torch.nn.PixelShuffle(r))
    _check_fn(m, torch.nn.PixelShuffle(r), _randn(*shape))


@pytest.mark.parametrize(
    "shape, r", [((2, 2, 4, 6), 2), ((1, 6, 9), 3), ((2, 1, 3, 4, 2), 2), ((1, 3, 2, 2), 1)]
)
def test_pixel_unshuffle(shape, r):
    _check_fn(
        lambda x: F.pixel_unshuffle(x, r), lambda x: torch.nn.functional.pixel_unshuffle(x, r),
        _randn(*shape),
    )  # fmt: skip
    m = nn.PixelUnshuffle(r)
    assert repr(m) == repr(torch.nn.PixelUnshuffle(r))
    _check_fn(m, torch.nn.PixelUnshuffle(r), _randn(*shape))


def test_pixel_unshuffle_inverts_shuffle():
    x = ember.tensor(_randn(2, 12, 3, 5))
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(), x.numpy())


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: F.pixel_shuffle(ember.ones(4, 4), 2), "at least 3 dimensions"),
        (lambda: F.pixel_shuffle(ember.ones(1, 7, 4, 4), 2), "not divisible by 4"),
        (lambda: F.pixel_shuffle(ember.ones(8, 4, 4), 0), "positive upscale_factor"),
        (lambda: F.pixel_unshuffle(ember.ones(1, 2, 5, 4), 2), "height to be divisible"),
        (lambda: F.pixel_unshuffle(ember.ones(1, 2, 4, 5), 2), "width to be divisible"),
        (lambda: F.pixel_unshuffle(ember.ones(2, 4, 4), -1), "positive downscale_factor"),
    ],
)
def test_pixel_shuffle_errors(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()


# ---- Bilinear -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(4,), (2, 3), ()], ids=["2d", "3d", "1d"])
def test_bilinear_module(lead, bias):
    em, tm = _pair(nn.Bilinear(3, 5, 4, bias=bias).double(),
                   torch.nn.Bilinear(3, 5, 4, bias=bias).double())  # fmt: skip
    x1, x2 = _randn(*lead, 3), _randn(*lead, 5)
    e1, e2 = ember.tensor(x1, requires_grad=True), ember.tensor(x2, requires_grad=True)
    t1, t2 = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    ye, yt = em(e1, e2), tm(t1, t2)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **TOL)
    w = _randn(*yt.shape)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(e1.grad.numpy(), t1.grad.numpy(), **TOL)
    np.testing.assert_allclose(e2.grad.numpy(), t2.grad.numpy(), **TOL)
    pt = dict(tm.named_parameters())
    for name, p in em.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), pt[name].grad.numpy(), err_msg=name, **TOL)


def test_bilinear_functional_and_init():
    _check_fn(F.bilinear, torch.nn.functional.bilinear,
              _randn(2, 3), _randn(2, 4), _randn(5, 3, 4), _randn(5))  # fmt: skip
    m = nn.Bilinear(16, 3, 200)
    bound = 1 / math.sqrt(16)
    for p in (m.weight, m.bias):
        v = p.detach().numpy()
        assert np.all(np.abs(v) <= bound) and v.std() > bound / 3
    assert tuple(m.weight.shape) == (200, 16, 3)


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((2, 3), (3, 4), (5, 3, 4), None), "batch dimensions do not match"),
        (((2, 3), (2, 4), (5, 2, 4), None), "input1 size does not match"),
        (((2, 3), (2, 4), (5, 3, 3), None), "input2 size does not match"),
        (((2, 3), (2, 4), (5, 3, 4), (4,)), "bias size does not match"),
        (((2, 3), (2, 2, 4), (5, 3, 4), None), "input dimensions do not match"),
    ],
)
def test_bilinear_errors(shapes, match):
    a, b, w, bias = (ember.ones(*s) if s is not None else None for s in shapes)
    with pytest.raises(RuntimeError, match=match):
        F.bilinear(a, b, w, bias)


# ---- Fold / Unfold ------------------------------------------------------------------------------

FOLD_CASES = {
    "k2": dict(kernel_size=2),
    "k23-all": dict(kernel_size=(2, 3), dilation=(1, 2), padding=(1, 0), stride=(2, 1)),
    "k3-pad-stride": dict(kernel_size=3, padding=1, stride=2),
    "k2-dilation": dict(kernel_size=2, dilation=2),
    "k1": dict(kernel_size=1),
    "k2-stride2": dict(kernel_size=2, stride=2),
}


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("case", list(FOLD_CASES))
def test_unfold(case, batched):
    kw = FOLD_CASES[case]
    shape = (2, 3, 6, 7) if batched else (3, 6, 7)
    _check_fn(lambda x: F.unfold(x, **kw), lambda x: torch.nn.functional.unfold(x, **kw),
              _randn(*shape))  # fmt: skip
    m = nn.Unfold(**kw)
    assert repr(m) == repr(torch.nn.Unfold(**kw))
    _check_fn(m, torch.nn.Unfold(**kw), _randn(*shape))


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("case", list(FOLD_CASES))
def test_fold(case, batched):
    kw = FOLD_CASES[case]
    size = (6, 7)
    # the column count that unfold of a (C, *size) image gives
    cols = torch.nn.functional.unfold(torch.zeros(1, 2, *size), **kw).shape[1:]
    shape = (2, *cols) if batched else tuple(cols)
    _check_fn(lambda x: F.fold(x, size, **kw), lambda x: torch.nn.functional.fold(x, size, **kw),
              _randn(*shape))  # fmt: skip
    m = nn.Fold(size, **kw)
    assert repr(m) == repr(torch.nn.Fold(size, **kw))
    _check_fn(m, torch.nn.Fold(size, **kw), _randn(*shape))


def test_fold_of_unfold_counts_overlaps():
    x = ember.ones(1, 1, 4, 4)
    y = F.fold(F.unfold(x, 2), (4, 4), 2).numpy()[0, 0]
    np.testing.assert_array_equal(y, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: F.unfold(ember.ones(1, 2, 3, 4), 5), "components must be at least one"),
        (lambda: F.unfold(ember.ones(1, 2, 3, 4), 2, stride=0), "stride should be greater"),
        (lambda: F.unfold(ember.ones(1, 2, 3, 4), 0), "kernel size should be greater"),
        (lambda: F.unfold(ember.ones(1, 2, 3, 4), 2, padding=-1), "padding should be non-neg"),
        (lambda: F.unfold(ember.ones(1, 2, 3, 4), 2, dilation=0), "dilation should be greater"),
        (lambda: F.unfold(ember.ones(2, 4), 2), "3D or 4D"),
        (lambda: F.fold(ember.ones(1, 7, 6), (3, 4), 2), "divisible by the product"),
        (lambda: F.fold(ember.ones(1, 8, 5), (3, 4), 2), "number of sliding blocks 2 \\* 3"),
        (lambda: F.fold(ember.ones(2, 1, 8, 6), (3, 4), 2), "2D or 3D"),
        (lambda: F.fold(ember.ones(1, 8, 6), (3, 4, 1), 2), "output_size equals to 2"),
    ],
)
def test_fold_unfold_errors(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()


# ---- torch.nn module paths ----------------------------------------------------------------------

MODULE_PATHS = {
    "ember.nn.modules.activation": ["MultiheadAttention", "ReLU", "GELU", "Softmax"],
    "ember.nn.modules.linear": ["Linear", "Identity", "Bilinear"],
    "ember.nn.modules.conv": ["Conv1d", "Conv2d", "ConvTranspose2d"],
    "ember.nn.modules.loss": ["CrossEntropyLoss", "MSELoss"],
    "ember.nn.modules.dropout": ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
                                 "AlphaDropout", "FeatureAlphaDropout"],
    "ember.nn.modules.transformer": ["Transformer", "TransformerEncoder", "TransformerDecoder",
                                     "TransformerEncoderLayer", "TransformerDecoderLayer"],
    "ember.nn.modules.rnn": ["RNN", "LSTM", "GRU", "RNNBase", "LSTMCell"],
    "ember.nn.modules.normalization": ["LayerNorm", "GroupNorm"],
    "ember.nn.modules.batchnorm": ["BatchNorm1d", "BatchNorm2d"],
    "ember.nn.modules.pooling": ["MaxPool2d", "AdaptiveAvgPool2d"],
    "ember.nn.modules.sparse": ["Embedding"],
    "ember.nn.modules.container": ["Sequential", "ModuleList", "ModuleDict", "ParameterList"],
    "ember.nn.modules.module": ["Module"],
    "ember.nn.modules.flatten": ["Flatten", "Unflatten"],
    "ember.nn.modules.pixelshuffle": ["PixelShuffle", "PixelUnshuffle"],
    "ember.nn.modules.fold": ["Fold", "Unfold"],
    "ember.nn.modules.upsampling": ["Upsample"],
    "ember.nn.modules.padding": ["ZeroPad2d", "ReflectionPad1d"],
    "ember.nn.modules": ["Linear", "Transformer", "Module"],
    "ember.nn.parameter": ["Parameter"],
    "ember.nn.utils.rnn": ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence",
                           "pad_sequence", "pack_sequence", "unpad_sequence", "unpack_sequence"],
    "ember.nn.utils": ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
                       "vector_to_parameters"],
}  # fmt: skip


@pytest.mark.parametrize("path", list(MODULE_PATHS))
def test_torch_module_paths(path):
    module = importlib.import_module(path)
    torch_module = importlib.import_module(path.replace("ember", "torch", 1))
    top = ember.nn if path.startswith("ember.nn.modules") or path == "ember.nn.parameter" else None
    for name in MODULE_PATHS[path]:
        assert hasattr(torch_module, name), f"{path}.{name} is not a PyTorch name"
        obj = getattr(module, name)
        if top is not None:
            assert obj is getattr(top, name)
    assert ember.nn.utils.rnn is importlib.import_module("ember.nn.utils.rnn")
    assert (
        ember.nn.utils.rnn.PackedSequence
        is ember.nn.utils.rnn.pack_sequence([ember.ones(2)]).__class__
    )
