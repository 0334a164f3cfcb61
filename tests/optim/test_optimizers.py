"""ember.optim optimizers against torch.optim (single-tensor algorithms, foreach=False).

A small two-layer model is built in both frameworks with the same weights; each step computes
the same loss in each, backpropagates, and steps the optimizer. After 10 steps the parameters
(and the optimizer state) must agree with PyTorch's.
"""

import copy
import warnings

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
import ember.optim as optim

RNG = np.random.default_rng(1234)
SHAPES = {"w1": (4, 5), "b1": (5,), "w2": (5, 3), "b2": (3,)}
INIT = {k: RNG.standard_normal(s) * 0.5 for k, s in SHAPES.items()}
X = RNG.standard_normal((6, 4))
WEIGHT = RNG.standard_normal((6, 3))
EMBER_DT = {"float32": ember.float32, "float64": ember.float64}
TORCH_DT = {"float32": torch.float32, "float64": torch.float64}


class EmberNet(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        for k, v in INIT.items():
            setattr(self, k, nn.Parameter(ember.tensor(v, dtype=EMBER_DT[dtype])))

    def forward(self, x):
        h = ember.tanh(x @ self.w1 + self.b1)
        return h @ self.w2 + self.b2


class TorchNet(torch.nn.Module):
    def __init__(self, dtype):
        super().__init__()
        for k, v in INIT.items():
            setattr(self, k, torch.nn.Parameter(torch.tensor(v, dtype=TORCH_DT[dtype])))

    def forward(self, x):
        h = torch.tanh(x @ self.w1 + self.b1)
        return h @ self.w2 + self.b2


def ember_loss(model, dtype):
    out = model(ember.tensor(X, dtype=EMBER_DT[dtype]))
    return (out * ember.tensor(WEIGHT, dtype=EMBER_DT[dtype])).mean() + (out * out).mean()


def torch_loss(model, dtype):
    out = model(torch.tensor(X, dtype=TORCH_DT[dtype]))
    return (out * torch.tensor(WEIGHT, dtype=TORCH_DT[dtype])).mean() + (out * out).mean()


def train(opt, model, loss_fn, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()


def assert_params_close(emodel, tmodel, atol):
    for (name, ep), (tname, tp) in zip(emodel.named_parameters(), tmodel.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(
            ep.detach().numpy(), tp.detach().numpy(), rtol=0, atol=atol, err_msg=name
        )


def assert_state_close(eopt, topt, emodel, tmodel, atol):
    for ep, tp in zip(emodel.parameters(), tmodel.parameters()):
        es, ts = eopt.state[ep], topt.state[tp]
        assert sorted(es) == sorted(ts)
        for key in ts:
            tv = ts[key]
            if isinstance(tv, torch.Tensor):
                ev = es[key]
                assert isinstance(ev, ember.Tensor), key
                assert ev.dtype.name == str(tv.dtype).removeprefix("torch."), key
                np.testing.assert_allclose(
                    ev.numpy(), tv.numpy(), rtol=atol, atol=atol, err_msg=key
                )
            else:
                assert es[key] == tv


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=True, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.5, weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-3)),
    ("Adam", dict(lr=0.05, maximize=True, amsgrad=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.2, amsgrad=True)),
    ("AdamW", dict(lr=0.05, betas=(0.5, 0.9), maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-4)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, weight_decay=0.05, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, eps=1e-3, maximize=True, lr_decay=0.01)),
]


def _ids(cfg):
    name, kw = cfg
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


def make_pair(name, kw, dtype):
    emodel, tmodel = EmberNet(dtype), TorchNet(dtype)
    eopt = getattr(optim, name)(emodel.parameters(), **kw)
    topt = getattr(torch.optim, name)(tmodel.parameters(), foreach=False, **kw)
    return emodel, tmodel, eopt, topt


@pytest.mark.parametrize("cfg", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_same_loss_matches_torch_over_10_steps(cfg):
    # float64 end to end: each framework computes the loss and gradients on its own model.
    name, kw = cfg
    emodel, tmodel, eopt, topt = make_pair(name, kw, "float64")
    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 10)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float64"), 10)
    assert_params_close(emodel, tmodel, 1e-10)
    assert_state_close(eopt, topt, emodel, tmodel, 1e-10)
    # the parameters are still the same leaf tensors, updated in place
    for p in emodel.parameters():
        assert p.is_leaf and p.requires_grad and p.grad_fn is None


@pytest.mark.parametrize("cfg", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_identical_gradients_float32_over_10_steps(cfg):
    # float32: torch's gradients are handed to both optimizers, so only the update rule (and
    # its float32 arithmetic) can differ. In float32 a chaotic training loop amplifies the last
    # bit of a gradient (Adam-like updates normalize near-zero gradients), so feeding each
    # optimizer its own framework's gradients would test the model's rounding, not the
    # optimizer.
    name, kw = cfg
    emodel, tmodel, eopt, topt = make_pair(name, kw, "float32")
    for _ in range(10):
        topt.zero_grad()
        eopt.zero_grad()
        torch_loss(tmodel, "float32").backward()
        for ep, tp in zip(emodel.parameters(), tmodel.parameters()):
            ep.grad = ember.tensor(tp.grad.numpy())
        eopt.step()
        topt.step()
    assert_params_close(emodel, tmodel, 1e-6)
    assert_state_close(eopt, topt, emodel, tmodel, 1e-6)
    for p in emodel.parameters():
        assert p.dtype is ember.float32


@pytest.mark.parametrize("cfg", CONFIGS[::3], ids=[_ids(c) for c in CONFIGS[::3]])
def test_state_dict_round_trip_continues_identically(cfg):
    name, kw = cfg
    emodel, tmodel, eopt, topt = make_pair(name, kw, "float64")
    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 5)

    # snapshot: a fresh model and optimizer resume from the saved states
    model_state = copy.deepcopy(emodel.state_dict())
    opt_state = copy.deepcopy(eopt.state_dict())
    emodel2 = EmberNet("float64")
    emodel2.load_state_dict(model_state)
    eopt2 = getattr(optim, name)(emodel2.parameters(), **kw)
    eopt2.load_state_dict(opt_state)

    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 5)
    train(eopt2, emodel2, lambda: ember_loss(emodel2, "float64"), 5)
    for p1, p2 in zip(emodel.parameters(), emodel2.parameters()):
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())

    # and both equal torch trained for 10 steps straight
    train(topt, tmodel, lambda: torch_loss(tmodel, "float64"), 10)
    assert_params_close(emodel2, tmodel, 1e-10)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_state_dict_format_matches_torch(name):
    kw = {"SGD": dict(lr=0.1, momentum=0.9), "RMSprop": dict(momentum=0.5, centered=True),
          "Adam": dict(amsgrad=True)}.get(name, {})  # fmt: skip
    emodel, tmodel, eopt, topt = make_pair(name, kw, "float32")
    train(eopt, emodel, lambda: ember_loss(emodel, "float32"), 2)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float32"), 2)
    esd, tsd = eopt.state_dict(), topt.state_dict()
    assert sorted(esd) == ["param_groups", "state"]
    assert list(esd["state"]) == list(tsd["state"])
    for idx in tsd["state"]:
        assert sorted(esd["state"][idx]) == sorted(tsd["state"][idx])
        if "step" in tsd["state"][idx]:
            assert esd["state"][idx]["step"].item() == tsd["state"][idx]["step"].item()
            assert esd["state"][idx]["step"].dtype is ember.float32
    tgroups = [{k: v for k, v in g.items() if k != "foreach"} for g in tsd["param_groups"]]
    egroups = [{k: v for k, v in g.items() if k != "foreach"} for g in esd["param_groups"]]
    assert egroups == tgroups
    assert esd["param_groups"][0]["params"] == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_repr_matches_torch(name):
    ep = [nn.Parameter(ember.ones(2))]
    tp = [torch.nn.Parameter(torch.ones(2))]
    eopt = getattr(optim, name)(ep, lr=0.01)
    topt = getattr(torch.optim, name)(tp, lr=0.01)
    assert repr(eopt) == repr(topt)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_param_groups_with_different_lrs(name):
    kw = {"SGD": dict(momentum=0.9)}.get(name, {})
    emodel, tmodel = EmberNet("float32"), TorchNet("float32")

    def groups(m):
        return [
            {"params": [m.w1, m.b1], "lr": 0.01},
            {"params": [m.w2, m.b2], "weight_decay": 0.1},
        ]

    eopt = getattr(optim, name)(groups(emodel), lr=0.1, **kw)
    topt = getattr(torch.optim, name)(groups(tmodel), lr=0.1, foreach=False, **kw)
    assert [g["lr"] for g in eopt.param_groups] == [0.01, 0.1]
    assert [g["weight_decay"] for g in eopt.param_groups] == [0, 0.1]
    train(eopt, emodel, lambda: ember_loss(emodel, "float32"), 10)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float32"), 10)
    assert_params_close(emodel, tmodel, 1e-6)
    sd = eopt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]


def test_add_param_group_and_frozen_params():
    emodel, tmodel = EmberNet("float64"), TorchNet("float64")
    eopt = optim.SGD([emodel.w1, emodel.b1], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([tmodel.w1, tmodel.b1], lr=0.1, momentum=0.9, foreach=False)
    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 3)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float64"), 3)
    eopt.add_param_group({"params": [emodel.w2, emodel.b2], "lr": 0.02})
    topt.add_param_group({"params": [tmodel.w2, tmodel.b2], "lr": 0.02})
    assert eopt.param_groups[1]["momentum"] == 0.9
    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 3)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float64"), 3)
    assert_params_close(emodel, tmodel, 1e-10)


def test_param_without_grad_is_skipped():
    p = nn.Parameter(ember.ones(3))
    q = nn.Parameter(ember.ones(3))
    opt = optim.Adam([p, q], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert q.grad is None
    np.testing.assert_array_equal(q.detach().numpy(), np.ones(3, np.float32))
    assert len(opt.state[q]) == 0 and len(opt.state[p]) == 3


def test_zero_grad():
    p = nn.Parameter(ember.ones(3))
    opt = optim.SGD([p], lr=0.1)
    (p * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3, np.float32))
    opt.zero_grad()
    assert p.grad is None


def test_closure_returns_loss():
    emodel, tmodel = EmberNet("float64"), TorchNet("float64")
    eopt = optim.SGD(emodel.parameters(), lr=0.1)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, foreach=False)

    def eclosure():
        eopt.zero_grad()
        loss = ember_loss(emodel, "float64")
        loss.backward()
        return loss

    def tclosure():
        topt.zero_grad()
        loss = torch_loss(tmodel, "float64")
        loss.backward()
        return loss

    for _ in range(3):
        el, tl = eopt.step(eclosure), topt.step(tclosure)
        assert abs(el.item() - tl.item()) < 1e-10
    assert_params_close(emodel, tmodel, 1e-10)


def test_step_hooks():
    p = nn.Parameter(ember.ones(1))
    opt = optim.SGD([p], lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.step()
    h1.remove()
    opt.step()
    assert calls == ["pre", "post", "post"]


def test_errors_like_torch():
    p = nn.Parameter(ember.ones(2))
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam([p], lr=-1.0)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid momentum value"):
        optim.RMSprop([p], momentum=-0.1)
    with pytest.raises(ValueError, match="Invalid lr_decay value"):
        optim.Adagrad([p], lr_decay=-0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors"):
        optim.SGD([p, 3.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {p}}], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        optim.SGD([p, p], lr=0.1)
    assert any("duplicate parameters" in str(x.message) for x in w)


def test_load_state_dict_validates_groups():
    a, b = nn.Parameter(ember.ones(2)), nn.Parameter(ember.ones(3))
    opt = optim.Adam([a, b])
    sd = optim.Adam([a]).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(sd)
    sd2 = optim.Adam([{"params": [a]}, {"params": [b]}]).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(sd2)


def test_load_state_dict_restores_hyperparameters():
    p = nn.Parameter(ember.ones(2))
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    sd = copy.deepcopy(opt.state_dict())
    opt2 = optim.SGD([p], lr=0.1)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.5 and opt2.param_groups[0]["momentum"] == 0.9
    assert opt2.param_groups[0]["params"][0] is p


def test_deepcopy_optimizer():
    emodel = EmberNet("float64")
    opt = optim.Adam(emodel.parameters(), lr=0.01)
    train(opt, emodel, lambda: ember_loss(emodel, "float64"), 2)
    clone = copy.deepcopy(opt)
    assert len(clone.state) == 4
    assert repr(clone) == repr(opt)
