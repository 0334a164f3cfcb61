"""Leaf gradients are stored C-contiguous, as PyTorch's AccumulateGrad stores them.

A Linear weight's gradient comes out of ``matmul``'s VJP through the transposed weight, so
without care ``.grad`` would be a transposed (Fortran-ordered) array and ``p.grad.view(-1)``,
which LBFGS and many utilities do, would fail. Each module runs in ember and torch from the
same float64 weights and inputs; gradients, strides and ``view(-1)`` are compared.
"""

import numpy as np
import pytest
import torch

import ember

MODULES = {
    "linear": (lambda m: m.nn.Linear(3, 4), (2, 3), "float"),
    "conv2d": (lambda m: m.nn.Conv2d(2, 3, 3), (1, 2, 5, 5), "float"),
    "lstm": (lambda m: m.nn.LSTM(3, 4), (5, 2, 3), "float"),
    "embedding": (lambda m: m.nn.Embedding(10, 3), (4,), "index"),
}


def _pair(name):
    make, shape, kind = MODULES[name]
    t_mod = make(torch).double()
    e_mod = make(ember).double()
    e_mod.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in
                           t_mod.state_dict().items()})  # fmt: skip
    rng = np.random.default_rng(0)
    if kind == "index":
        data = rng.integers(0, 10, size=shape)
        return e_mod, t_mod, ember.tensor(data), torch.tensor(data)
    data = rng.standard_normal(shape)
    return e_mod, t_mod, ember.tensor(data), torch.tensor(data)


def _loss(mod, x):
    out = mod(x)
    out = out[0] if isinstance(out, tuple) else out
    return (out * out).sum()


@pytest.mark.parametrize("name", list(MODULES))
def test_grads_are_contiguous_and_match_torch(name):
    e_mod, t_mod, ex, tx = _pair(name)
    _loss(e_mod, ex).backward()
    _loss(t_mod, tx).backward()
    t_params = dict(t_mod.named_parameters())
    for pname, p in e_mod.named_parameters():
        tp = t_params[pname]
        assert p.grad.is_contiguous(), pname
        assert p.grad.stride() == tp.grad.stride(), pname
        flat = p.grad.view(-1)
        np.testing.assert_allclose(flat.numpy(), tp.grad.view(-1).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["linear", "lstm"])
def test_accumulation_keeps_the_grad_tensor(name):
    e_mod, t_mod, ex, tx = _pair(name)
    _loss(e_mod, ex).backward()
    _loss(t_mod, tx).backward()
    first = {n: p.grad for n, p in e_mod.named_parameters()}
    _loss(e_mod, ex).backward()
    _loss(t_mod, tx).backward()
    t_params = dict(t_mod.named_parameters())
    for pname, p in e_mod.named_parameters():
        assert p.grad is first[pname], pname
        assert p.grad.is_contiguous(), pname
        np.testing.assert_allclose(p.grad.numpy(), t_params[pname].grad.numpy(), rtol=1e-10)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_create_graph_grad_is_contiguous_and_differentiable():
    w = ember.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    x = ember.tensor(np.ones((4, 3)))
    (x @ w.t()).pow(2).sum().backward(create_graph=True)
    assert w.grad.is_contiguous()
    assert w.grad.requires_grad
    tw = torch.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (torch.ones(4, 3, dtype=torch.float64) @ tw.t()).pow(2).sum().backward(create_graph=True)
    (g,) = ember.autograd.grad(w.grad.sum(), w)
    (tg,) = torch.autograd.grad(tw.grad.sum(), tw)
    np.testing.assert_allclose(g.numpy(), tg.numpy())


def test_backward_inputs_grad_is_contiguous():
    w = ember.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (ember.ones(4, 3, dtype=ember.float64) @ w.t()).sum().backward(inputs=[w])
    assert w.grad.is_contiguous()
    assert w.grad.view(-1).shape == (6,)
