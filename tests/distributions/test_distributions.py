"""``ember.distributions`` against ``torch.distributions`` in float64: log_prob, entropy,
cdf, mean, variance, stddev and kl_divergence with their gradients (with respect to the
parameters and, for continuous densities, the value); sampling by shape and by the mean and
variance of many draws from ember's generator; reparameterized gradients; argument validation
with PyTorch's ValueError messages."""

import math

import numpy as np
import pytest
import torch
import torch.distributions as TD

import ember
import ember.distributions as ED

RNG = np.random.default_rng(3)


def _spd(n, batch=()):
    x = RNG.standard_normal((*batch, n, n))
    return x @ np.swapaxes(x, -1, -2) + n * np.eye(n)


def _params(lib, arrays):
    return [lib.tensor(a, requires_grad=True) for a in arrays]


# name -> (factory(D, lib, *params), parameter arrays, value array or None)
DISTS = {
    "normal": (lambda D, lib, m, s: D.Normal(m, s.exp()),
               [RNG.standard_normal((3,)), RNG.standard_normal((3,))], RNG.standard_normal((2, 3))),
    "normal_scalar_params": (lambda D, lib: D.Normal(0.5, 2.0), [], RNG.standard_normal((4,))),
    "bernoulli_probs": (lambda D, lib, p: D.Bernoulli(probs=p.sigmoid()),
                        [RNG.standard_normal((4,))], (RNG.random((4,)) < 0.5) * 1.0),
    "bernoulli_logits": (lambda D, lib, z: D.Bernoulli(logits=z),
                         [RNG.standard_normal((2, 3))], (RNG.random((2, 3)) < 0.5) * 1.0),
    "categorical_probs": (lambda D, lib, z: D.Categorical(probs=z.softmax(-1) * 3),
                          [RNG.standard_normal((2, 4))], np.array([[0, 3], [1, 2], [3, 3]])),
    "categorical_logits": (lambda D, lib, z: D.Categorical(logits=z),
                           [RNG.standard_normal((5,))], np.array([0, 4, 2])),
    "uniform": (lambda D, lib, lo, w: D.Uniform(lo, lo + w.exp()),
                [np.array([-1.0, 0.0]), np.array([0.5, 0.1])], np.array([[-0.5, 0.5], [0.2, 0.05]])),
    "mvn_covariance": (lambda D, lib, m, c: D.MultivariateNormal(m, covariance_matrix=c @ c.mT),
                       [RNG.standard_normal((3,)), np.linalg.cholesky(_spd(3))],
                       RNG.standard_normal((2, 3))),
    "mvn_precision_batched": (lambda D, lib, m, c: D.MultivariateNormal(
        m, precision_matrix=c @ c.mT),
        [RNG.standard_normal((2, 3)), np.linalg.cholesky(_spd(3))], RNG.standard_normal((2, 3))),
    "mvn_scale_tril": (lambda D, lib, m, c: D.MultivariateNormal(m, scale_tril=c.tril()),
                       [RNG.standard_normal((2,)), np.linalg.cholesky(_spd(2, (4,)))],
                       RNG.standard_normal((4, 2))),
    "independent_normal": (lambda D, lib, m, s: D.Independent(D.Normal(m, s.exp()), 1),
                           [RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))],
                           RNG.standard_normal((2, 3))),
}  # fmt: skip

CONTINUOUS_VALUE = {"normal", "normal_scalar_params", "mvn_covariance", "mvn_precision_batched",
                    "mvn_scale_tril", "independent_normal"}  # fmt: skip
QUANTITIES = ("log_prob", "entropy", "mean", "variance", "stddev", "cdf")


def _quantity(dist, what, value):
    if what == "log_prob":
        return dist.log_prob(value)
    if what == "cdf":
        return dist.cdf(value)
    if what == "entropy":
        return dist.entropy()
    return getattr(dist, what)


def _evaluate(name, lib, what):
    factory, arrays, value = DISTS[name]
    D = TD if lib is torch else ED
    params = _params(lib, arrays)
    dist = factory(D, lib, *params)
    grad_value = name in CONTINUOUS_VALUE and what in ("log_prob", "cdf")
    v = lib.tensor(value, requires_grad=grad_value)
    try:
        out = _quantity(dist, what, v)
    except NotImplementedError:
        return None
    leaves = params + ([v] if grad_value else [])
    grads = []
    if out.requires_grad and bool(lib.isfinite(out).all()):
        w = lib.tensor(np.linspace(0.5, 1.5, out.numel()).reshape(tuple(out.shape)))
        grads = lib.autograd.grad((out * w).sum(), leaves, allow_unused=True)
    return out, grads


CASES = [(n, q) for n in DISTS for q in QUANTITIES]


@pytest.mark.parametrize("name,what", CASES, ids=[f"{n}-{q}" for n, q in CASES])
def test_against_torch(name, what):
    t = _evaluate(name, torch, what)
    e = _evaluate(name, ember, what)
    assert (t is None) == (e is None)
    if t is None:
        return
    (to, tg), (eo, eg) = t, e
    assert tuple(eo.shape) == tuple(to.shape)
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert len(eg) == len(tg)
    for a, b in zip(eg, tg):
        if b is None:
            assert a is None or not np.any(a.numpy())
        else:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


KL = {
    "normal": (lambda D, a, b, c, d: (D.Normal(a, b.exp()), D.Normal(c, d.exp())), (3,)),
    "bernoulli": (lambda D, a, b, c, d: (D.Bernoulli(logits=a), D.Bernoulli(probs=c.sigmoid())),
                  (4,)),
    "categorical": (lambda D, a, b, c, d: (D.Categorical(logits=a), D.Categorical(logits=c)),
                    (2, 3)),
    "uniform": (lambda D, a, b, c, d: (D.Uniform(a, a + b.exp()),
                                       D.Uniform(a - c.exp(), a + b.exp() + d.exp())), (3,)),
    "mvn": (lambda D, a, b, c, d: (
        D.MultivariateNormal(a, scale_tril=b.tril() + 3 * b.new_ones(3).diag()),
        D.MultivariateNormal(c, covariance_matrix=d @ d.mT + 3 * d.new_ones(3).diag())), (3, 3)),
    "independent": (lambda D, a, b, c, d: (D.Independent(D.Normal(a, b.exp()), 2),
                                           D.Independent(D.Normal(c, d.exp()), 2)), (2, 3)),
}  # fmt: skip


@pytest.mark.parametrize("name", list(KL))
def test_kl_divergence_against_torch(name):
    make, shape = KL[name]
    arrays = [RNG.standard_normal(shape) for _ in range(4)]
    results = []
    for lib, D in ((torch, TD), (ember, ED)):
        params = _params(lib, arrays)
        p, q = make(D, *params)
        kl = D.kl_divergence(p, q)
        grads = lib.autograd.grad(kl.sum(), params, allow_unused=True)
        results.append((kl, grads))
    (tk, tg), (ek, eg) = results
    assert tuple(ek.shape) == tuple(tk.shape)
    np.testing.assert_allclose(ek.detach().numpy(), tk.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(eg, tg):
        if b is None:
            assert a is None or not np.any(a.numpy())
        else:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("lib", ["kl", "top"])
def test_kl_infinite_where_supports_do_not_nest(lib):
    kl = ED.kl.kl_divergence if lib == "kl" else ED.kl_divergence
    p = ED.Uniform(ember.tensor([0.0, 0.0]), ember.tensor([1.0, 1.0]))
    q = ED.Uniform(ember.tensor([0.5, -1.0]), ember.tensor([2.0, 2.0]))
    out = kl(p, q).numpy()
    assert out[0] == math.inf and out[1] == pytest.approx(math.log(3.0))
    b = kl(ED.Bernoulli(probs=ember.tensor([0.5, 0.0])),
           ED.Bernoulli(probs=ember.tensor([0.0, 0.3]))).numpy()  # fmt: skip
    assert b[0] == math.inf and b[1] == pytest.approx(-math.log(0.7))


def test_kl_unregistered_pair_and_register_kl():
    with pytest.raises(NotImplementedError, match="p type Normal and q type Uniform"):
        ED.kl_divergence(ED.Normal(0.0, 1.0), ED.Uniform(0.0, 1.0))

    class Wide(ED.Normal):
        pass

    @ED.register_kl(Wide, ED.Normal)
    def _kl_wide(p, q):
        return p.loc * 0 + 7

    assert float(ED.kl_divergence(Wide(0.0, 1.0), ED.Normal(0.0, 1.0))) == 7
    assert float(ED.kl_divergence(ED.Normal(0.0, 1.0), Wide(0.0, 1.0))) == 0  # Normal-Normal


SAMPLERS = {
    "normal": (lambda: ED.Normal(ember.tensor([1.0, -2.0]), ember.tensor([0.5, 2.0])),
               [1.0, -2.0], [0.25, 4.0]),
    "uniform": (lambda: ED.Uniform(ember.tensor([0.0, 2.0]), ember.tensor([1.0, 5.0])),
                [0.5, 3.5], [1 / 12, 9 / 12]),
    "bernoulli": (lambda: ED.Bernoulli(probs=ember.tensor([0.2, 0.7])), [0.2, 0.7],
                  [0.16, 0.21]),
    "categorical": (lambda: ED.Categorical(probs=ember.tensor([[0.1, 0.2, 0.7], [0.5, 0.5, 0]])),
                    [0.2 + 1.4, 0.5], [0.2 + 2.8 - 1.6**2, 0.25]),
    "mvn": (lambda: ED.MultivariateNormal(ember.tensor([1.0, 0.0]),
                                          ember.tensor([[2.0, 0.5], [0.5, 1.0]])),
            [1.0, 0.0], [2.0, 1.0]),
    "independent": (lambda: ED.Independent(ED.Normal(ember.tensor([3.0, 0.0]),
                                                     ember.tensor([1.0, 0.1])), 1),
                    [3.0, 0.0], [1.0, 0.01]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sample_statistics(name):
    make, mean, var = SAMPLERS[name]
    ember.manual_seed(0)
    dist = make()
    n = 40000
    x = dist.sample((n,)).double().numpy()
    assert x.shape == (n, *dist.batch_shape, *dist.event_shape)
    np.testing.assert_allclose(x.mean(0), mean, atol=4 * np.sqrt(np.max(var) / n) + 1e-3)
    np.testing.assert_allclose(x.var(0), var, rtol=0.05, atol=1e-3)


def test_mvn_sample_covariance():
    ember.manual_seed(1)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    x = ED.MultivariateNormal(ember.zeros(2, dtype=ember.float64), ember.tensor(cov))
    x = x.sample((40000,)).numpy()
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05)


def test_samples_reproduce_with_manual_seed_and_have_the_parameter_dtype():
    d = ED.Normal(ember.zeros(3, dtype=ember.float64), 1.0)
    ember.manual_seed(5)
    a = d.sample((2,))
    ember.manual_seed(5)
    b = d.sample((2,))
    assert a.dtype is ember.float64 and np.array_equal(a.numpy(), b.numpy())
    assert ED.Categorical(logits=ember.zeros(2, 3)).sample().dtype is ember.int64
    assert ED.Bernoulli(0.5).sample((4, 1)).shape == (4, 1)


@pytest.mark.parametrize("name", ["normal", "uniform", "mvn"])
def test_rsample_gradients_flow_to_parameters(name):
    ember.manual_seed(2)
    loc = ember.tensor([0.5, -1.0], dtype=ember.float64, requires_grad=True)
    raw = ember.tensor([0.3, 0.8], dtype=ember.float64, requires_grad=True)
    if name == "normal":
        d = ED.Normal(loc, raw)
    elif name == "uniform":
        d = ED.Uniform(loc, loc + raw)
    else:
        d = ED.MultivariateNormal(loc, scale_tril=raw.diag())
    x = d.rsample((5,))
    assert x.requires_grad and not d.sample((5,)).requires_grad
    x.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [5.0, 5.0])
    z = (x.detach() - loc.detach()) / raw.detach()  # the standardized draws
    np.testing.assert_allclose(raw.grad.numpy(), z.sum(0).numpy())


def test_shapes_and_expand():
    d = ED.Normal(ember.zeros(3), 1.0)
    assert d.batch_shape == (3,) and d.event_shape == ()
    e = d.expand((2, 3))
    assert e.batch_shape == (2, 3) and e.sample((4,)).shape == (4, 2, 3)
    m = ED.MultivariateNormal(ember.zeros(2), ember.eye(2)).expand((5,))
    assert m.batch_shape == (5,) and m.event_shape == (2,) and m.sample().shape == (5, 2)
    i = ED.Independent(ED.Normal(ember.zeros(4, 3), 1.0), 1)
    assert i.batch_shape == (4,) and i.event_shape == (3,)
    assert i.expand((2, 4)).sample().shape == (2, 4, 3)
    c = ED.Categorical(logits=ember.zeros(2, 5)).expand((3, 2))
    assert c.batch_shape == (3, 2) and c.param_shape == (3, 2, 5)
    b = ED.Bernoulli(logits=ember.zeros(2)).expand((3, 2))
    assert b.sample().shape == (3, 2)
    assert ED.Categorical(probs=ember.ones(3)).enumerate_support().tolist() == [0, 1, 2]


def _message(fn, lib):
    with pytest.raises(ValueError) as info:
        fn(TD if lib is torch else ED, lib)
    return str(info.value).replace("torch.", "ember.")


VALIDATION = {
    "normal_scale": lambda D, lib: D.Normal(0.0, -1.0),
    "normal_nan_loc": lambda D, lib: D.Normal(float("nan"), 1.0),
    "bernoulli_probs": lambda D, lib: D.Bernoulli(probs=1.5),
    "bernoulli_both": lambda D, lib: D.Bernoulli(probs=0.5, logits=0.0),
    "bernoulli_value": lambda D, lib: D.Bernoulli(0.5).log_prob(lib.tensor(0.5)),
    "categorical_neither": lambda D, lib: D.Categorical(),
    "categorical_scalar": lambda D, lib: D.Categorical(probs=lib.tensor(1.0)),
    "categorical_value": lambda D, lib: D.Categorical(logits=lib.zeros(3)).log_prob(
        lib.tensor(3)),
    "uniform_order": lambda D, lib: D.Uniform(1.0, 0.0),
    "uniform_value": lambda D, lib: D.Uniform(0.0, 1.0).log_prob(lib.tensor(2.0)),
    "mvn_not_pd": lambda D, lib: D.MultivariateNormal(
        lib.zeros(2), lib.tensor([[1.0, 2.0], [2.0, 1.0]])),
    "mvn_two_params": lambda D, lib: D.MultivariateNormal(
        lib.zeros(2), lib.eye(2), scale_tril=lib.eye(2)),
    "mvn_scalar_loc": lambda D, lib: D.MultivariateNormal(lib.tensor(0.0), lib.eye(2)),
    "mvn_scale_tril_not_lower": lambda D, lib: D.MultivariateNormal(
        lib.zeros(2), scale_tril=lib.ones(2, 2)),
    "event_shape_mismatch": lambda D, lib: D.MultivariateNormal(
        lib.zeros(2), lib.eye(2)).log_prob(lib.zeros(3)),
    "not_broadcastable": lambda D, lib: D.Normal(lib.zeros(3), 1.0).log_prob(lib.zeros(2)),
    "independent_ndims": lambda D, lib: D.Independent(D.Normal(lib.zeros(3), 1.0), 2),
}  # fmt: skip


@pytest.mark.parametrize("name", list(VALIDATION))
def test_validation_messages_match_torch(name):
    fn = VALIDATION[name]
    assert _message(fn, ember) == _message(fn, torch)


def test_validation_can_be_turned_off():
    d = ED.Normal(0.0, -1.0, validate_args=False)
    assert math.isnan(float(d.log_prob(ember.tensor(0.0))))
    ED.Distribution.set_default_validate_args(False)
    try:
        ED.Uniform(1.0, 0.0)
    finally:
        ED.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        ED.Uniform(1.0, 0.0)


def test_reprs_and_supports():
    assert repr(ED.Normal(0.0, 1.0)) == repr(TD.Normal(0.0, 1.0))
    assert repr(ED.constraints.positive) == repr(TD.constraints.positive)
    assert repr(ED.Categorical(logits=ember.zeros(3)).support) == repr(
        TD.Categorical(logits=torch.zeros(3)).support
    )
    i = ED.Independent(ED.Normal(ember.zeros(2, 2), 1.0), 1)
    assert repr(i.support) == "IndependentConstraint(Real(), 1)"
    assert repr(ED.MultivariateNormal(ember.zeros(2), ember.eye(2)).support) == repr(
        TD.constraints.real_vector
    )
