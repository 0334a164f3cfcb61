"""nn.utils.clip_grad_norm_ / clip_grad_value_ / parameters_to_vector against PyTorch."""

import math

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn

RNG = np.random.default_rng(2)


def _params_with_grads(shapes, scale):
    """The same parameters and gradients in ember and torch."""
    pe, pt = [], []
    for shape in shapes:
        v = RNG.standard_normal(shape).astype(np.float32)
        g = (RNG.standard_normal(shape) * scale).astype(np.float32)
        e = nn.Parameter(ember.tensor(v))
        t = torch.nn.Parameter(torch.tensor(v))
        e.grad = ember.tensor(g)
        t.grad = torch.tensor(g)
        pe.append(e)
        pt.append(t)
    return pe, pt


@pytest.mark.parametrize("norm_type", [2, 2.0, 1, 1.0, math.inf, "inf", 3.0, 0.5])
@pytest.mark.parametrize("max_norm,scale", [(1.0, 1.0), (100.0, 1.0), (0.5, 10.0)])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, scale):
    pe, pt = _params_with_grads([(3, 4), (5,), (2, 2, 2)], scale)
    ne = nn.utils.clip_grad_norm_(pe, max_norm, norm_type=norm_type)
    nt = torch.nn.utils.clip_grad_norm_(pt, max_norm, norm_type=norm_type)
    assert isinstance(ne, ember.Tensor) and ne.ndim == 0
    np.testing.assert_allclose(ne.item(), nt.item(), rtol=1e-5)
    for e, t in zip(pe, pt):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_actually_clips():
    pe, _ = _params_with_grads([(10,), (4, 4)], 10.0)
    before = nn.utils.clip_grad_norm_(pe, 1.0)
    assert before.item() > 1.0
    after = nn.utils.clip_grad_norm_(pe, 1.0)
    assert after.item() == pytest.approx(1.0, rel=1e-4)


def test_clip_grad_norm_single_tensor_generator_and_missing_grads():
    pe, pt = _params_with_grads([(6,)], 5.0)
    ne = nn.utils.clip_grad_norm_(pe[0], 1.0)
    nt = torch.nn.utils.clip_grad_norm_(pt[0], 1.0)
    np.testing.assert_allclose(ne.item(), nt.item(), rtol=1e-6)
    np.testing.assert_allclose(pe[0].grad.numpy(), pt[0].grad.numpy(), rtol=1e-6)
    # parameters without a gradient are skipped
    p, q = nn.Parameter(ember.ones(3)), nn.Parameter(ember.ones(2))
    q.grad = ember.tensor([3.0, 4.0])
    n = nn.utils.clip_grad_norm_((x for x in [p, q]), 1.0)
    assert n.item() == pytest.approx(5.0)
    assert p.grad is None
    np.testing.assert_allclose(q.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    # no gradients at all: norm 0
    assert nn.utils.clip_grad_norm_([nn.Parameter(ember.ones(2))], 1.0).item() == 0.0
    with pytest.warns(UserWarning):
        nn.utils.clip_grad_norm_((x for x in []), 1.0)


def test_clip_grad_norm_on_model_after_backward():
    em = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})
    x = RNG.standard_normal((16, 4)).astype(np.float32) * 5
    (em(ember.tensor(x)) ** 2).sum().backward()
    (tm(torch.tensor(x)) ** 2).sum().backward()
    for norm_type in (2.0, 1.0, math.inf):
        ne = nn.utils.clip_grad_norm_(em.parameters(), 0.3, norm_type)
        nt = torch.nn.utils.clip_grad_norm_(tm.parameters(), 0.3, norm_type)
        np.testing.assert_allclose(ne.item(), nt.item(), rtol=1e-5)
        for pe, pt in zip(em.parameters(), tm.parameters()):
            np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_nonfinite():
    p = nn.Parameter(ember.ones(3))
    p.grad = ember.tensor([1.0, float("inf"), 2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    n = nn.utils.clip_grad_norm_([p], 1.0)
    t = torch.nn.Parameter(torch.ones(3))
    t.grad = torch.tensor([1.0, float("inf"), 2.0])
    nt = torch.nn.utils.clip_grad_norm_([t], 1.0)
    assert math.isinf(n.item()) and math.isinf(nt.item())
    np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("clip_value", [0.1, 1, 5.0])
def test_clip_grad_value_matches_torch(clip_value):
    pe, pt = _params_with_grads([(3, 4), (7,)], 2.0)
    assert nn.utils.clip_grad_value_(pe, clip_value) is None
    torch.nn.utils.clip_grad_value_(pt, clip_value)
    for e, t in zip(pe, pt):
        np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())


def test_parameters_to_vector_and_back():
    em = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})
    ve = nn.utils.parameters_to_vector(em.parameters())
    vt = torch.nn.utils.parameters_to_vector(tm.parameters())
    np.testing.assert_array_equal(ve.detach().numpy(), vt.detach().numpy())
    # the vector is differentiable
    ve.sum().backward()
    assert all(np.all(p.grad.numpy() == 1) for p in em.parameters())
    new = RNG.standard_normal(ve.shape[0]).astype(np.float32)
    nn.utils.vector_to_parameters(ember.tensor(new), em.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tm.parameters())
    for (ne, pe), (nt, pt) in zip(em.named_parameters(), tm.named_parameters()):
        assert ne == nt
        np.testing.assert_array_equal(pe.detach().numpy(), pt.detach().numpy())
        assert pe.requires_grad and isinstance(pe, nn.Parameter)
    with pytest.raises(TypeError):
        nn.utils.vector_to_parameters(new, em.parameters())
