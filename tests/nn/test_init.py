"""nn.init against PyTorch's formulas: gains, fans, bounds and sample statistics."""

import math

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
from ember.nn import init


def _np(t):
    return t.detach().numpy().astype(np.float64)


@pytest.mark.parametrize(
    "nonlinearity,param",
    [
        ("linear", None),
        ("conv1d", None),
        ("conv2d", None),
        ("conv3d", None),
        ("conv_transpose1d", None),
        ("conv_transpose2d", None),
        ("conv_transpose3d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", 3),
        ("leaky_relu", math.sqrt(5)),
        ("selu", None),
    ],
)
def test_calculate_gain_equals_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(
        nonlinearity, param
    )


def test_calculate_gain_errors():
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", "0.1")
    with pytest.raises(ValueError):
        init.calculate_gain("swish")


@pytest.mark.parametrize("shape", [(3, 4), (5, 2, 3), (6, 3, 2, 2), (2, 3, 1, 2, 2)])
def test_fan_in_fan_out_equals_torch(shape):
    assert init._calculate_fan_in_and_fan_out(
        ember.empty(*shape)
    ) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def test_fan_needs_two_dims():
    with pytest.raises(ValueError):
        init._calculate_fan_in_and_fan_out(ember.empty(3))
    with pytest.raises(ValueError):
        init.xavier_uniform_(ember.empty(3))


def _uniform_stats(values, lo, hi):
    """Samples lie in [lo, hi) with the uniform's mean and std (5 standard errors)."""
    n = values.size
    assert values.min() >= lo and values.max() <= hi
    assert values.min() < lo + 0.02 * (hi - lo) and values.max() > hi - 0.02 * (hi - lo)
    mean, std = (lo + hi) / 2, (hi - lo) / math.sqrt(12)
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(values.std() - std) < 0.02 * std


def _normal_stats(values, mean, std):
    n = values.size
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(values.std() - std) < 0.02 * std


def test_uniform_normal_constant():
    ember.manual_seed(0)
    t = ember.empty(200, 100)
    assert init.uniform_(t, -2.0, 3.0) is t
    _uniform_stats(_np(t), -2.0, 3.0)
    init.normal_(t, 1.5, 0.3)
    _normal_stats(_np(t), 1.5, 0.3)
    init.constant_(t, 0.25)
    assert np.all(_np(t) == 0.25)
    init.ones_(t)
    assert np.all(_np(t) == 1)
    init.zeros_(t)
    assert np.all(_np(t) == 0)


def test_inits_work_in_place_on_parameters_without_recording_history():
    p = nn.Parameter(ember.empty(30, 40))
    for fn in (
        init.uniform_,
        init.normal_,
        init.xavier_uniform_,
        init.xavier_normal_,
        init.kaiming_uniform_,
        init.kaiming_normal_,
        init.trunc_normal_,
        init.orthogonal_,
        init.ones_,
        init.zeros_,
        init.eye_,
    ):
        out = fn(p)
        assert out is p
        assert p.requires_grad and p.grad_fn is None and p.is_leaf


def test_init_draws_from_ember_generator():
    t1, t2 = ember.empty(10, 10), ember.empty(10, 10)
    ember.manual_seed(11)
    init.kaiming_uniform_(t1)
    ember.manual_seed(11)
    init.kaiming_uniform_(t2)
    np.testing.assert_array_equal(t1.numpy(), t2.numpy())
    g = ember.Generator().manual_seed(3)
    init.normal_(t1, generator=g)
    g.manual_seed(3)
    init.normal_(t2, generator=g)
    np.testing.assert_array_equal(t1.numpy(), t2.numpy())


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier(gain):
    ember.manual_seed(1)
    t = ember.empty(300, 200)
    fan_in, fan_out = 200, 300
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    init.xavier_uniform_(t, gain=gain)
    bound = math.sqrt(3.0) * std
    _uniform_stats(_np(t), -bound, bound)
    init.xavier_normal_(t, gain=gain)
    _normal_stats(_np(t), 0.0, std)


@pytest.mark.parametrize(
    "a,mode,nonlinearity",
    [
        (0, "fan_in", "leaky_relu"),
        (math.sqrt(5), "fan_in", "leaky_relu"),
        (0, "fan_out", "relu"),
        (0.1, "fan_in", "leaky_relu"),
        (0, "FAN_OUT", "tanh"),
        (0, "fan_in", "linear"),
    ],
)
def test_kaiming(a, mode, nonlinearity):
    ember.manual_seed(2)
    t = ember.empty(150, 40, 3, 3)
    fan = 40 * 9 if mode.lower() == "fan_in" else 150 * 9
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nonlinearity)
    _uniform_stats(_np(t), -math.sqrt(3.0) * std, math.sqrt(3.0) * std)
    init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nonlinearity)
    _normal_stats(_np(t), 0.0, std)


def test_kaiming_errors_and_zero_element():
    with pytest.raises(ValueError):
        init.kaiming_uniform_(ember.empty(3, 4), mode="fan_avg")
    with pytest.warns(UserWarning):
        init.kaiming_uniform_(ember.empty(0, 4))
    with pytest.warns(UserWarning):
        init.kaiming_normal_(ember.empty(0, 4))


@pytest.mark.parametrize(
    "mean,std,a,b",
    [
        (0.0, 1.0, -2.0, 2.0),
        (0.0, 0.02, -0.04, 0.04),
        (1.0, 2.0, 0.0, 5.0),
        (0.0, 1.0, 2.0, 3.0),
    ],
)
def test_trunc_normal(mean, std, a, b):
    ember.manual_seed(4)
    t = ember.empty(200, 150)
    init.trunc_normal_(t, mean=mean, std=std, a=a, b=b)
    v = _np(t)
    assert v.min() >= a and v.max() <= b
    # the truncated normal's mean and std
    alpha, beta = (a - mean) / std, (b - mean) / std
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    t_mean = mean + (phi(alpha) - phi(beta)) / z * std
    t_var = std**2 * (
        1 + (alpha * phi(alpha) - beta * phi(beta)) / z - ((phi(alpha) - phi(beta)) / z) ** 2
    )
    t_std = math.sqrt(t_var)
    assert abs(v.mean() - t_mean) < 5 * t_std / math.sqrt(v.size)
    assert abs(v.std() - t_std) < 0.02 * t_std
    # the same statistics as torch's sampler
    tt = torch.nn.init.trunc_normal_(torch.empty(200, 150), mean, std, a, b).numpy()
    assert abs(v.mean() - tt.mean()) < 7 * t_std / math.sqrt(v.size)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 2, 3), (3, 3)])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal(shape, gain):
    t = ember.empty(*shape)
    init.orthogonal_(t, gain=gain)
    m = _np(t).reshape(shape[0], -1)
    if m.shape[0] >= m.shape[1]:
        np.testing.assert_allclose(m.T @ m, gain**2 * np.eye(m.shape[1]), atol=1e-5)
    else:
        np.testing.assert_allclose(m @ m.T, gain**2 * np.eye(m.shape[0]), atol=1e-5)
    with pytest.raises(ValueError):
        init.orthogonal_(ember.empty(4))


def test_eye_and_dirac_equal_torch():
    for shape in [(3, 5), (4, 2)]:
        np.testing.assert_array_equal(
            init.eye_(ember.empty(*shape)).numpy(), torch.nn.init.eye_(torch.empty(*shape)).numpy()
        )
    with pytest.raises(ValueError):
        init.eye_(ember.empty(2, 2, 2))
    for shape, groups in [((4, 2, 3), 1), ((6, 3, 3, 3), 2), ((2, 2, 1, 3, 3), 1)]:
        np.testing.assert_array_equal(
            init.dirac_(ember.empty(*shape), groups).numpy(),
            torch.nn.init.dirac_(torch.empty(*shape), groups).numpy(),
        )


def test_default_linear_init_bounds():
    ember.manual_seed(5)
    m = nn.Linear(120, 400)
    bound = 1 / math.sqrt(120)  # kaiming_uniform_(a=sqrt(5)) gives the same bound
    w, b = _np(m.weight), _np(m.bias)
    _uniform_stats(w, -bound, bound)
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.8 * bound
    tm = torch.nn.Linear(120, 400)
    assert abs(np.abs(w).max() - tm.weight.detach().abs().max().item()) < 0.01 * bound
    assert abs(w.std() - tm.weight.detach().std().item()) < 0.03 * bound


def test_default_init_of_other_layers():
    bn = nn.BatchNorm1d(5)
    assert np.all(_np(bn.weight) == 1) and np.all(_np(bn.bias) == 0)
    ln = nn.LayerNorm((2, 3))
    assert np.all(_np(ln.weight) == 1) and np.all(_np(ln.bias) == 0)
    gn = nn.GroupNorm(1, 4)
    assert np.all(_np(gn.weight) == 1) and np.all(_np(gn.bias) == 0)


def test_deprecated_aliases_warn():
    with pytest.warns(FutureWarning):
        init.uniform(ember.empty(2, 2))
    with pytest.warns(FutureWarning):
        init.kaiming_normal(ember.empty(2, 2))
