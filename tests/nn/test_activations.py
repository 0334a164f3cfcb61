"""Activation functions and modules against PyTorch: values, input gradients, reprs."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn as nn
import ember.nn.functional as F

RNG = np.random.default_rng(0)


def _data(shape, scale=3.0, dtype=np.float32):
    x = (RNG.standard_normal(shape) * scale).astype(dtype)
    return x


def _check(e_fn, t_fn, x, rtol=1e-5, atol=1e-6):
    """Forward values and the gradient of ``(out * w).sum()`` equal PyTorch's."""
    xe = ember.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ye, yt = e_fn(xe), t_fn(xt)
    assert tuple(ye.shape) == tuple(yt.shape)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    w = RNG.standard_normal(tuple(yt.shape)).astype(x.dtype)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol)


POINTWISE = [
    ("relu", F.relu, TF.relu),
    ("relu6", F.relu6, TF.relu6),
    ("leaky_relu", F.leaky_relu, TF.leaky_relu),
    ("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("elu", F.elu, TF.elu),
    ("elu_alpha", lambda x: F.elu(x, alpha=0.5), lambda x: TF.elu(x, alpha=0.5)),
    ("gelu", F.gelu, TF.gelu),
    (
        "gelu_tanh",
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: TF.gelu(x, approximate="tanh"),
    ),
    ("silu", F.silu, TF.silu),
    ("mish", F.mish, TF.mish),
    ("tanh", F.tanh, torch.tanh),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("hardtanh", F.hardtanh, TF.hardtanh),
    ("hardtanh_range", lambda x: F.hardtanh(x, -2.0, 0.5), lambda x: TF.hardtanh(x, -2.0, 0.5)),
    ("softplus", F.softplus, TF.softplus),
    (
        "softplus_beta",
        lambda x: F.softplus(x, beta=2.0, threshold=5.0),
        lambda x: TF.softplus(x, beta=2.0, threshold=5.0),
    ),
    ("logsigmoid", F.logsigmoid, TF.logsigmoid),
]


@pytest.mark.parametrize("name,e_fn,t_fn", POINTWISE, ids=[p[0] for p in POINTWISE])
def test_pointwise_matches_torch(name, e_fn, t_fn):
    _check(e_fn, t_fn, _data((4, 7)))


@pytest.mark.parametrize("name,e_fn,t_fn", POINTWISE, ids=[p[0] for p in POINTWISE])
def test_pointwise_float64_extremes(name, e_fn, t_fn):
    x = np.array(
        [-100.0, -30.0, -20.5, -6.0, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 6.0, 20.5, 30.0, 100.0]
    )
    _check(e_fn, t_fn, x, rtol=1e-9, atol=1e-12)


def test_pointwise_at_kinks():
    # gradients exactly at the kinks follow PyTorch's conventions
    x = np.array([-1.0, 0.0, 1.0, 6.0, -2.0, 0.5], dtype=np.float32)
    for e_fn, t_fn in [
        (F.relu, TF.relu),
        (F.relu6, TF.relu6),
        (F.hardtanh, TF.hardtanh),
        (F.leaky_relu, TF.leaky_relu),
        (F.elu, TF.elu),
        (lambda v: F.hardtanh(v, -2.0, 0.5), lambda v: TF.hardtanh(v, -2.0, 0.5)),
    ]:
        _check(e_fn, t_fn, x)


def test_gelu_rejects_bad_approximate():
    with pytest.raises(RuntimeError, match="approximate"):
        F.gelu(ember.randn(3), approximate="fast")
    with pytest.raises(RuntimeError):
        torch.nn.functional.gelu(torch.randn(3), approximate="fast")


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_family(fn, dim):
    x = _data((3, 4, 5), scale=10.0)
    _check(
        lambda v: getattr(F, fn)(v, dim), lambda v: getattr(TF, fn)(v, dim), x, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_is_stable_for_large_inputs(fn):
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1001.0]], dtype=np.float32)
    _check(lambda v: getattr(F, fn)(v, -1), lambda v: getattr(TF, fn)(v, -1), x)
    out = getattr(F, fn)(ember.tensor(x), -1).numpy()
    assert np.isfinite(out).all()


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_with_masked_inf(fn):
    x = np.array([[1.0, -np.inf, 2.0], [0.5, 0.5, -np.inf]], dtype=np.float32)
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ye, yt = getattr(F, fn)(xe, 1), getattr(TF, fn)(xt, 1)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
    w = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]], dtype=np.float32)
    # the weights on the -inf entries are zero for log_softmax (their output is -inf)
    if fn == "log_softmax":
        w[0, 1] = w[1, 2] = 0.0
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_dtype_argument(fn):
    x = _data((2, 5))
    ye = getattr(F, fn)(ember.tensor(x), 1, dtype=ember.float64)
    yt = getattr(TF, fn)(torch.tensor(x), 1, dtype=torch.float64)
    assert ye.dtype == ember.float64
    np.testing.assert_allclose(ye.numpy(), yt.numpy(), rtol=1e-12)


def test_softmax_implicit_dim_warns_like_torch():
    x = _data((2, 3))
    with pytest.warns(UserWarning):
        ye = F.softmax(ember.tensor(x))
    with pytest.warns(UserWarning):
        yt = TF.softmax(torch.tensor(x))
    np.testing.assert_allclose(ye.numpy(), yt.numpy(), rtol=1e-6)


def test_softmax_0d_and_bad_dim():
    assert F.softmax(ember.tensor(3.0), 0).item() == 1.0
    assert F.log_softmax(ember.tensor(3.0), -1).item() == 0.0
    with pytest.raises(IndexError):
        F.softmax(ember.randn(2, 3), 2)
    with pytest.raises(RuntimeError):
        F.softmax(ember.tensor([1, 2, 3]), 0)


def test_softmin():
    _check(lambda v: F.softmin(v, 1), lambda v: TF.softmin(v, 1), _data((3, 4)))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "silu", "mish", "hardtanh", "relu6"])
def test_inplace_variants(name):
    x = _data((3, 4))
    xe = ember.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ye = getattr(F, name)(xe * 1.0, inplace=True)
    yt = getattr(TF, name)(xt * 1.0, inplace=True)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    ye.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    # the in-place call writes into its argument
    a = ember.tensor(x)
    out = getattr(F, name)(a, inplace=True)
    np.testing.assert_allclose(a.numpy(), out.numpy())


MODULES = [
    ("ReLU", (), {}),
    ("ReLU", (True,), {}),
    ("ReLU6", (), {}),
    ("ReLU6", (), {"inplace": True}),
    ("LeakyReLU", (), {}),
    ("LeakyReLU", (0.2, True), {}),
    ("GELU", (), {}),
    ("GELU", (), {"approximate": "tanh"}),
    ("SiLU", (), {}),
    ("SiLU", (), {"inplace": True}),
    ("Tanh", (), {}),
    ("Sigmoid", (), {}),
    ("Softmax", (), {"dim": 1}),
    ("Softmax", (-1,), {}),
    ("LogSoftmax", (), {"dim": 1}),
    ("Softmin", (), {"dim": 0}),
    ("ELU", (), {}),
    ("ELU", (0.5,), {"inplace": True}),
    ("Softplus", (), {}),
    ("Softplus", (2.0, 10.0), {}),
    ("Mish", (), {}),
    ("Hardtanh", (), {}),
    ("Hardtanh", (-2.0, 3.0), {}),
    ("Hardtanh", (-2, 3, True), {}),
    ("LogSigmoid", (), {}),
]


@pytest.mark.parametrize("name,args,kwargs", MODULES, ids=[f"{m[0]}{m[1]}{m[2]}" for m in MODULES])
def test_modules_match_torch(name, args, kwargs):
    me = getattr(nn, name)(*args, **kwargs)
    mt = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(me) == repr(mt)
    x = _data((3, 5))
    # atol 1e-5: float32 tanh-GELU cancels in 1 + tanh(u) for very negative inputs
    _check(lambda v: me(v * 1.0), lambda v: mt(v * 1.0), x, atol=1e-5)
    assert list(me.state_dict()) == list(mt.state_dict()) == []


def test_module_defaults_repr():
    assert repr(nn.Softmax()) == repr(torch.nn.Softmax()) == "Softmax(dim=None)"
    assert repr(nn.GELU()) == "GELU(approximate='none')"


def test_tanh_sigmoid_integer_input_promotes():
    x = np.array([-2, 0, 3])
    np.testing.assert_allclose(
        F.tanh(ember.tensor(x)).numpy(), torch.tanh(torch.tensor(x)).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(
        F.sigmoid(ember.tensor(x)).numpy(), torch.sigmoid(torch.tensor(x)).numpy(), rtol=1e-6
    )


def test_gelu_exact_value():
    # exact GELU at 1: Phi(1) = 0.5 * (1 + erf(1/sqrt(2)))
    v = F.gelu(ember.tensor([1.0], dtype=ember.float64)).item()
    assert v == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))), rel=1e-14)
