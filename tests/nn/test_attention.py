"""Attention against PyTorch: F.scaled_dot_product_attention (masks, causal, L != S, scale,
GQA, fully masked rows) and nn.MultiheadAttention with copied weights (batch_first both ways,
self and cross attention, kdim/vdim, key_padding_mask, attn_mask, need_weights,
average_attn_weights, add_bias_kv, add_zero_attn, unbatched): outputs, returned weights and
gradients of inputs and every parameter; reprs, state_dict keys, init and errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.ir.errors import ShapeError

RNG = np.random.default_rng(11)
TOL = 1e-10


def _close(a, b, tol=TOL, msg=""):
    np.testing.assert_allclose(
        a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol, err_msg=msg
    )


# ---- scaled_dot_product_attention -------------------------------------------------------------


def _sdpa(qs, ks, vs, mask=None, dtype=np.float64, tol=TOL, **kwargs):
    arrays = [RNG.standard_normal(s).astype(dtype) for s in (qs, ks, vs)]
    e = [ember.tensor(a, requires_grad=True) for a in arrays]
    t = [torch.tensor(a, requires_grad=True) for a in arrays]
    ye = F.scaled_dot_product_attention(
        *e, attn_mask=None if mask is None else ember.tensor(mask), **kwargs
    )
    yt = TF.scaled_dot_product_attention(
        *t, attn_mask=None if mask is None else torch.tensor(mask), **kwargs
    )
    assert tuple(ye.shape) == tuple(yt.shape)
    _close(ye, yt, tol)
    w = RNG.standard_normal(yt.shape).astype(dtype)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    for name, a, b in zip("qkv", e, t):
        _close(a.grad, b.grad, tol, name)
    return ye


@pytest.mark.parametrize("L,S", [(4, 4), (4, 6), (7, 3)])
@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_matches_torch(L, S, is_causal):
    _sdpa((2, 3, L, 5), (2, 3, S, 5), (2, 3, S, 7), is_causal=is_causal)


@pytest.mark.parametrize("mask_shape", [(4, 6), (2, 1, 4, 6), (2, 3, 4, 6), (1, 6)])
def test_sdpa_bool_mask(mask_shape):
    mask = RNG.random(mask_shape) > 0.4
    mask[..., 0] = True  # every row keeps something
    _sdpa((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), mask=mask)


def test_sdpa_float_mask_and_scale():
    mask = RNG.standard_normal((2, 1, 4, 6))
    _sdpa((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), mask=mask, scale=0.3)


def test_sdpa_fully_masked_rows_are_zero_like_torch():
    mask = RNG.random((4, 6)) > 0.5
    mask[1] = False
    y = _sdpa((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), mask=mask)
    assert np.all(y.detach().numpy()[:, :, 1] == 0)
    fmask = RNG.standard_normal((4, 6))
    fmask[2] = -np.inf
    _sdpa((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), mask=fmask)


def test_sdpa_gqa_unbatched_and_float32():
    _sdpa((2, 6, 4, 5), (2, 2, 6, 5), (2, 2, 6, 7), enable_gqa=True)
    _sdpa((4, 5), (6, 5), (6, 7))
    _sdpa((3, 4, 8), (3, 5, 8), (3, 5, 8), dtype=np.float32, tol=1e-5, is_causal=True)


def test_sdpa_dropout():
    q = ember.tensor(RNG.standard_normal((2, 2, 8, 4)))
    k, v = (
        ember.tensor(RNG.standard_normal((2, 2, 8, 4))),
        ember.ones(2, 2, 8, 4, dtype=ember.float64),
    )
    ember.manual_seed(0)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    ember.manual_seed(0)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # reproducible from the seed
    # with v = 1 each output is (kept attention mass) / (1 - p): not all 1, mean near 1
    out = a.numpy()
    assert not np.allclose(out, 1.0)
    assert abs(out.mean() - 1.0) < 0.35
    zero = F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    np.testing.assert_array_equal(zero.numpy(), 0.0)


def test_sdpa_errors():
    q, k = ember.zeros(2, 4, 5), ember.zeros(2, 6, 5)
    with pytest.raises(ShapeError, match="scaled_dot_product_attention.*attn_mask"):
        F.scaled_dot_product_attention(
            q, k, k, attn_mask=ember.ones(4, 6, dtype=ember.bool), is_causal=True
        )
    with pytest.raises(ShapeError, match=r"scaled_dot_product_attention.*f32\[2,6,3\]"):
        F.scaled_dot_product_attention(q, ember.zeros(2, 6, 3), k)
    with pytest.raises(ShapeError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(q, k, ember.zeros(2, 5, 5))


# ---- MultiheadAttention -----------------------------------------------------------------------


def _pair(E=8, H=2, **kwargs):
    em = nn.MultiheadAttention(E, H, **kwargs).double()
    tm = torch.nn.MultiheadAttention(E, H, **kwargs).double()
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})
    return em, tm


def _mha(em, tm, q, k=None, v=None, masks=None, tol=TOL, **kwargs):
    """Compare outputs, weights and all gradients; ``k is None``: self-attention."""
    if k is None:
        qe, qt = ember.tensor(q, requires_grad=True), torch.tensor(q, requires_grad=True)
        ins_e, ins_t = (qe, qe, qe), (qt, qt, qt)
    else:
        ins_e = tuple(ember.tensor(a, requires_grad=True) for a in (q, k, v))
        ins_t = tuple(torch.tensor(a, requires_grad=True) for a in (q, k, v))
    kw_e, kw_t = dict(kwargs), dict(kwargs)
    for name, m in (masks or {}).items():
        kw_e[name], kw_t[name] = ember.tensor(m), torch.tensor(m)
    ye, we = em(*ins_e, **kw_e)
    yt, wt = tm(*ins_t, **kw_t)
    _close(ye, yt, tol)
    loss_e = (ye * ember.tensor(w := RNG.standard_normal(yt.shape))).sum()
    loss_t = (yt * torch.tensor(w)).sum()
    if wt is None:
        assert we is None
    else:
        assert tuple(we.shape) == tuple(wt.shape)
        _close(we, wt, tol)
        w2 = RNG.standard_normal(wt.shape)
        loss_e, loss_t = (
            loss_e + (we * ember.tensor(w2)).sum(),
            loss_t + (wt * torch.tensor(w2)).sum(),
        )
    loss_e.backward()
    loss_t.backward()
    seen = set()
    for i, (a, b) in enumerate(zip(ins_e, ins_t)):
        if id(a) not in seen:
            seen.add(id(a))
            _close(a.grad, b.grad, tol, f"input {i}")
    pe, pt = dict(em.named_parameters()), dict(tm.named_parameters())
    assert list(pe) == list(pt)
    for name in pe:
        _close(pe[name].grad, pt[name].grad, tol, name)
    return ye, we


def _x(batch_first, n, length, dim):
    return RNG.standard_normal((n, length, dim) if batch_first else (length, n, dim))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
def test_mha_self_attention(batch_first, need_weights, average):
    em, tm = _pair(batch_first=batch_first)
    _mha(em, tm, _x(batch_first, 3, 5, 8), need_weights=need_weights, average_attn_weights=average)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kdim,vdim", [(None, None), (3, 6)])
def test_mha_cross_attention(batch_first, kdim, vdim):
    em, tm = _pair(batch_first=batch_first, kdim=kdim, vdim=vdim)
    q, k, v = (
        _x(batch_first, 2, 4, 8),
        _x(batch_first, 2, 6, kdim or 8),
        _x(batch_first, 2, 6, vdim or 8),
    )
    _mha(em, tm, q, k, v)
    _mha(em, tm, q, k, v, need_weights=False)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_key_padding_mask(batch_first, need_weights):
    em, tm = _pair(batch_first=batch_first)
    kpm = np.zeros((3, 5), dtype=bool)
    kpm[0, 3:] = True
    kpm[2, 0] = True
    _mha(
        em,
        tm,
        _x(batch_first, 3, 5, 8),
        masks={"key_padding_mask": kpm},
        need_weights=need_weights,
        average_attn_weights=False,
    )


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_causal_attn_mask(need_weights):
    em, tm = _pair()
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)
    x = _x(False, 2, 5, 8)
    _mha(em, tm, x, masks={"attn_mask": causal}, need_weights=need_weights, is_causal=True)
    _mha(em, tm, x, masks={"attn_mask": causal}, need_weights=need_weights)
    kpm = np.zeros((2, 5), dtype=bool)
    kpm[1, 4] = True
    _mha(em, tm, x, masks={"attn_mask": causal, "key_padding_mask": kpm}, need_weights=need_weights)


def test_mha_float_masks_bias_kv_zero_attn():
    em, tm = _pair(add_bias_kv=True, add_zero_attn=True, batch_first=True)
    masks = {
        "attn_mask": RNG.standard_normal((3 * 2, 4, 5)),
        "key_padding_mask": RNG.standard_normal((3, 5)),
    }
    q, k, v = _x(True, 3, 4, 8), _x(True, 3, 5, 8), _x(True, 3, 5, 8)
    _mha(em, tm, q, k, v, masks=masks)
    _mha(em, tm, q, k, v, masks=masks, need_weights=False)


def test_mha_no_bias_and_unbatched():
    em, tm = _pair(bias=False)
    _mha(em, tm, RNG.standard_normal((5, 8)))
    em, tm = _pair(batch_first=True)
    kpm = np.array([False, False, True, False, True])
    _mha(
        em,
        tm,
        RNG.standard_normal((4, 8)),
        RNG.standard_normal((5, 8)),
        RNG.standard_normal((5, 8)),
        masks={"key_padding_mask": kpm},
        need_weights=False,
    )


def test_mha_float32():
    em = nn.MultiheadAttention(8, 4)
    tm = torch.nn.MultiheadAttention(8, 4)
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})
    _mha(em, tm, _x(False, 2, 5, 8).astype(np.float32), tol=1e-5)


def test_mha_dropout_only_in_training():
    em = nn.MultiheadAttention(8, 2, dropout=0.5).double()
    x = ember.tensor(_x(False, 2, 5, 8))
    em.eval()
    a, _ = em(x, x, x)
    b, _ = em(x, x, x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    em.train()
    ember.manual_seed(1)
    c, wc = em(x, x, x)
    assert not np.allclose(c.detach().numpy(), a.detach().numpy())


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(bias=False),
        dict(kdim=3, vdim=5),
        dict(add_bias_kv=True),
        dict(kdim=3, add_bias_kv=True, bias=False, batch_first=True),
    ],
)
def test_mha_parameters_state_dict_and_init(kwargs):
    em = nn.MultiheadAttention(8, 2, **kwargs)
    tm = torch.nn.MultiheadAttention(8, 2, **kwargs)
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    for key, value in em.state_dict().items():
        assert tuple(value.shape) == tuple(tm.state_dict()[key].shape), key
    for attr in (
        "embed_dim",
        "kdim",
        "vdim",
        "_qkv_same_embed_dim",
        "num_heads",
        "head_dim",
        "batch_first",
        "dropout",
        "add_zero_attn",
    ):
        assert getattr(em, attr) == getattr(tm, attr), attr
    for name in (
        "in_proj_weight",
        "q_proj_weight",
        "k_proj_weight",
        "v_proj_weight",
        "in_proj_bias",
        "bias_k",
        "bias_v",
    ):
        assert (getattr(em, name) is None) == (getattr(tm, name) is None), name
    if em.in_proj_bias is not None:
        assert np.all(em.in_proj_bias.detach().numpy() == 0)
        assert np.all(em.out_proj.bias.detach().numpy() == 0)
    if em.in_proj_weight is not None:
        bound = np.sqrt(6.0 / (8 + 24))  # xavier_uniform_ on (3E, E)
        w = em.in_proj_weight.detach().numpy()
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound


def test_mha_errors():
    em = nn.MultiheadAttention(8, 2)
    with pytest.raises(ShapeError, match=r"multi_head_attention_forward.*f32\[2,3,4,8\]"):
        x = ember.zeros(2, 3, 4, 8)
        em(x, x, x)
    with pytest.raises(ShapeError, match="embedding dimension of 8"):
        x = ember.zeros(5, 2, 6)
        em(x, x, x)
    with pytest.raises(ShapeError, match="is_causal"):
        x = ember.zeros(5, 2, 8)
        em(x, x, x, is_causal=True)
    with pytest.raises(ShapeError, match=r"2D attn_mask"):
        x = ember.zeros(5, 2, 8)
        em(x, x, x, attn_mask=ember.zeros(4, 5))
    with pytest.raises(ShapeError, match="key_padding_mask"):
        x = ember.zeros(5, 2, 8)
        em(x, x, x, key_padding_mask=ember.zeros(2, 4, dtype=ember.bool))
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(10, 3)
