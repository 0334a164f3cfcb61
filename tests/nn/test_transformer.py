"""nn.Transformer, TransformerEncoder/Decoder and their layers against PyTorch in float64: a
PyTorch state dict loads into the ember module (and back), outputs and the gradients of the
inputs and of every parameter agree, with masks (attention masks, causal masks, key padding
masks, bool and float), norm_first, relu/gelu/callable activations, batch_first both ways and
unbatched input. Dropout is 0 (or eval mode) so that both compute the same function."""

import copy
import warnings

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
import ember.nn.functional as F

pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched:UserWarning")

RNG = np.random.default_rng(5)
TOL = dict(rtol=1e-10, atol=1e-11)
D_MODEL, NHEAD, FF = 8, 2, 12


def _randn(*shape):
    return RNG.standard_normal(shape)


def _to_ember(state):
    return {k: ember.tensor(v.detach().numpy()) for k, v in state.items()}


def _pair(name, *args, **kwargs):
    """The torch module (seeded, float64) and the ember module with its state dict loaded."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's enable_nested_tensor notice
        tm = getattr(torch.nn, name)(*args, **kwargs).double()
    em = getattr(nn, name)(*_ember_args(args), **_ember_args(kwargs)).double()
    assert list(em.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in em.named_parameters()] == [n for n, _ in tm.named_parameters()]
    for (n, p), (_, q) in zip(em.named_parameters(), tm.named_parameters()):
        assert tuple(p.shape) == tuple(q.shape), n
    em.load_state_dict(_to_ember(tm.state_dict()))
    assert repr(em) == repr(tm)
    return em, tm


def _ember_args(args):
    """Layers passed to stacks are ember twins of torch layers; activations map to ember's."""
    conv = {torch.nn.functional.relu: F.relu, torch.nn.functional.gelu: F.gelu}

    def one(a):
        if isinstance(a, torch.nn.Module):
            return _TWINS[id(a)]
        return conv.get(a, a) if callable(a) and not isinstance(a, type) else a

    if isinstance(args, dict):
        return {k: one(v) for k, v in args.items()}
    return tuple(one(a) for a in args)


_TWINS = {}


def _layer(name, **kwargs):
    """A torch layer and its ember twin (for TransformerEncoder/Decoder stacks)."""
    t = getattr(torch.nn, name)(D_MODEL, NHEAD, FF, dropout=0.0, **kwargs).double()
    e = getattr(nn, name)(D_MODEL, NHEAD, FF, dropout=0.0, **_ember_args(kwargs)).double()
    _TWINS[id(t)] = e
    return t


def _run(em, tm, arrays, masks=None, **flags):
    """Call both on the same inputs (``arrays`` get gradients, ``masks`` do not); compare the
    output, then the gradients of a weighted sum of it."""
    masks = masks or {}
    es = [ember.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    em_masks = {k: (ember.tensor(v) if v is not None else None) for k, v in masks.items()}
    tm_masks = {k: (torch.tensor(v) if v is not None else None) for k, v in masks.items()}
    ye = em(*es, **em_masks, **flags)
    yt = tm(*ts, **tm_masks, **flags)
    assert tuple(ye.shape) == tuple(yt.shape)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **TOL)
    w = _randn(*yt.shape)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    for i, (a, b) in enumerate(zip(es, ts)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"input {i}", **TOL)
    pt = dict(tm.named_parameters())
    for name, p in em.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), pt[name].grad.numpy(), err_msg=name, **TOL)


def _seq(batch_first, s, n=2):
    return _randn(n, s, D_MODEL) if batch_first else _randn(s, n, D_MODEL)


def _causal(n):
    return np.triu(np.full((n, n), -np.inf), 1)


def _padding(n, s, pad_last):
    m = np.zeros((n, s), dtype=bool)
    m[-1, s - pad_last :] = True
    return m


# ---- layers -------------------------------------------------------------------------------------

LAYER_CONFIGS = {
    "post-relu": dict(),
    "pre-norm": dict(norm_first=True),
    "gelu": dict(activation="gelu"),
    "callable": dict(activation=torch.nn.functional.gelu),
    "batch-first": dict(batch_first=True),
    "no-bias": dict(bias=False, layer_norm_eps=1e-3),
    "batch-first-pre-norm-gelu": dict(batch_first=True, norm_first=True, activation="gelu"),
}


@pytest.mark.parametrize("masks", ["none", "causal", "padding", "both", "bool-causal"])
@pytest.mark.parametrize("cfg", list(LAYER_CONFIGS))
def test_encoder_layer(cfg, masks):
    kwargs = LAYER_CONFIGS[cfg]
    em, tm = _pair("TransformerEncoderLayer", D_MODEL, NHEAD, FF, dropout=0.0, **kwargs)
    bf = kwargs.get("batch_first", False)
    s = 5
    m = {}
    if masks in ("causal", "both"):
        m["src_mask"] = _causal(s)
    if masks == "bool-causal":
        m["src_mask"] = np.triu(np.ones((s, s), dtype=bool), 1)
    if masks in ("padding", "both"):
        m["src_key_padding_mask"] = _padding(2, s, 2)
    _run(em, tm, [_seq(bf, s)], m)


@pytest.mark.parametrize("masks", ["none", "causal", "all"])
@pytest.mark.parametrize("cfg", list(LAYER_CONFIGS))
def test_decoder_layer(cfg, masks):
    kwargs = LAYER_CONFIGS[cfg]
    em, tm = _pair("TransformerDecoderLayer", D_MODEL, NHEAD, FF, dropout=0.0, **kwargs)
    bf = kwargs.get("batch_first", False)
    t, s = 4, 6
    m = {}
    if masks in ("causal", "all"):
        m["tgt_mask"] = _causal(t)
    if masks == "all":
        m["memory_mask"] = np.where(_randn(t, s) > 1.0, -np.inf, 0.0)
        m["tgt_key_padding_mask"] = _padding(2, t, 1)
        m["memory_key_padding_mask"] = _padding(2, s, 3)
    _run(em, tm, [_seq(bf, t), _seq(bf, s)], m)


def test_layers_unbatched():
    em, tm = _pair("TransformerEncoderLayer", D_MODEL, NHEAD, FF, dropout=0.0)
    _run(em, tm, [_randn(5, D_MODEL)], {"src_mask": _causal(5)})
    em, tm = _pair("TransformerDecoderLayer", D_MODEL, NHEAD, FF, dropout=0.0, norm_first=True)
    _run(em, tm, [_randn(3, D_MODEL), _randn(4, D_MODEL)], {"tgt_mask": _causal(3)})


def test_is_causal_hint_matches_torch():
    em, tm = _pair("TransformerEncoderLayer", D_MODEL, NHEAD, FF, dropout=0.0, batch_first=True)
    _run(em, tm, [_seq(True, 5)], {"src_mask": _causal(5)}, is_causal=True)


def test_activation_module_and_attribute():
    em = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, activation=nn.GELU())
    assert isinstance(em.activation, nn.GELU) and em.activation_relu_or_gelu == 2
    assert "activation" in dict(em.named_children())
    assert nn.TransformerEncoderLayer(D_MODEL, NHEAD).activation is F.relu
    assert nn.TransformerEncoderLayer(D_MODEL, NHEAD, activation="gelu").activation is F.gelu
    assert (
        nn.TransformerEncoderLayer(D_MODEL, NHEAD, activation=F.silu).activation_relu_or_gelu == 0
    )
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(D_MODEL, NHEAD, activation="tanh")


# ---- stacks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm", [True, False])
def test_encoder_stack(batch_first, norm):
    layer = _layer("TransformerEncoderLayer", batch_first=batch_first, norm_first=not norm)
    tnorm = torch.nn.LayerNorm(D_MODEL).double() if norm else None
    if tnorm is not None:
        _TWINS[id(tnorm)] = nn.LayerNorm(D_MODEL).double()
    em, tm = _pair("TransformerEncoder", layer, 3, norm=tnorm, enable_nested_tensor=False)
    assert [n for n, _ in em.named_modules()] == [n for n, _ in tm.named_modules()]
    s = 6
    masks = {"mask": _causal(s), "src_key_padding_mask": _padding(2, s, 2)}
    _run(em, tm, [_seq(batch_first, s)], masks)


def test_encoder_stack_layers_are_independent_copies():
    layer = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF)
    enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True)
    assert enc.enable_nested_tensor and not enc.use_nested_tensor
    a, b = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
    assert a is not b and a is not layer.linear1.weight
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_stack(batch_first):
    layer = _layer("TransformerDecoderLayer", batch_first=batch_first, activation="gelu")
    tnorm = torch.nn.LayerNorm(D_MODEL).double()
    _TWINS[id(tnorm)] = nn.LayerNorm(D_MODEL).double()
    em, tm = _pair("TransformerDecoder", layer, 2, norm=tnorm)
    t, s = 4, 5
    masks = {
        "tgt_mask": _causal(t),
        "tgt_key_padding_mask": _padding(2, t, 1),
        "memory_key_padding_mask": _padding(2, s, 2),
    }
    _run(em, tm, [_seq(batch_first, t), _seq(batch_first, s)], masks)


# ---- Transformer --------------------------------------------------------------------------------

TRANSFORMER_CONFIGS = {
    "default": dict(),
    "batch-first": dict(batch_first=True),
    "pre-norm-gelu": dict(norm_first=True, activation="gelu"),
    "no-bias": dict(bias=False, batch_first=True),
}


@pytest.mark.parametrize("cfg", list(TRANSFORMER_CONFIGS))
def test_transformer(cfg):
    kwargs = TRANSFORMER_CONFIGS[cfg]
    em, tm = _pair("Transformer", D_MODEL, NHEAD, 2, 2, FF, dropout=0.0, **kwargs)
    bf = kwargs.get("batch_first", False)
    s, t = 6, 4
    masks = {
        "tgt_mask": nn.Transformer.generate_square_subsequent_mask(t).double().numpy(),
        "src_key_padding_mask": _padding(2, s, 2),
        "tgt_key_padding_mask": _padding(2, t, 1),
        "memory_key_padding_mask": _padding(2, s, 2),
    }
    _run(em, tm, [_seq(bf, s), _seq(bf, t)], masks)


def test_transformer_state_dict_round_trip_and_eval():
    em, tm = _pair("Transformer", D_MODEL, NHEAD, 1, 1, FF, dropout=0.3)
    # ember -> torch: a freshly initialized ember model loads into torch
    ember.manual_seed(1)
    fresh = nn.Transformer(D_MODEL, NHEAD, 1, 1, FF, dropout=0.3).double()
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in fresh.state_dict().items()})
    em.load_state_dict(fresh.state_dict())
    em.eval()
    tm.eval()
    src, tgt = _randn(5, 2, D_MODEL), _randn(3, 2, D_MODEL)
    ye = em(ember.tensor(src), ember.tensor(tgt), tgt_mask=ember.tensor(_causal(3)))
    yt = tm(torch.tensor(src), torch.tensor(tgt), tgt_mask=torch.tensor(_causal(3)))
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **TOL)


def test_transformer_init_is_xavier_uniform():
    ember.manual_seed(0)
    m = nn.Transformer(16, 2, 1, 1, 32)
    w = m.encoder.layers[0].linear1.weight.detach().numpy()  # (32, 16)
    bound = np.sqrt(6.0 / (16 + 32))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    # the LayerNorms keep their ones/zeros; the attention biases stay zero
    np.testing.assert_array_equal(m.encoder.norm.weight.detach().numpy(), np.ones(16))
    np.testing.assert_array_equal(
        m.decoder.layers[0].self_attn.in_proj_bias.detach().numpy(), np.zeros(48)
    )


def test_generate_square_subsequent_mask():
    for dtype, tdtype in ((None, None), (ember.float64, torch.float64)):
        e = nn.Transformer.generate_square_subsequent_mask(4, dtype=dtype)
        t = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=tdtype)
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_array_equal(e.numpy(), t.numpy())


def test_transformer_argument_errors():
    m = nn.Transformer(D_MODEL, NHEAD, 1, 1, FF)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        m(ember.randn(5, 2, D_MODEL), ember.randn(3, 3, D_MODEL))
    with pytest.raises(RuntimeError, match="feature number of src and tgt"):
        m(ember.randn(5, 2, D_MODEL), ember.randn(3, 2, 4))


def test_custom_encoder_and_deepcopy():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF), 1)
    m = nn.Transformer(D_MODEL, NHEAD, custom_encoder=enc, num_decoder_layers=1,
                       dim_feedforward=FF)  # fmt: skip
    assert m.encoder is enc
    clone = copy.deepcopy(m)
    assert list(clone.state_dict()) == list(m.state_dict())
