"""Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop and LBFGS against torch.optim.

The first-order optimizers reuse the harness of test_optimizers.py (the same two-layer model
built in both frameworks from the same weights): float64 training from each framework's own
gradients, float32 updates from identical gradients, param groups, the state dict (its layout,
a round trip, and loading a state dict that PyTorch saved) and a whole training step under
``ember.compile`` against eager. LBFGS runs with and without its strong-Wolfe line search on
a small regression and on the Rosenbrock function.
"""

import copy

import numpy as np
import pytest
import torch
from test_optimizers import (
    WEIGHT,
    EmberNet,
    TorchNet,
    X,
    _ids,
    assert_params_close,
    assert_state_close,
    ember_loss,
    torch_loss,
    train,
)

import ember
import ember.optim as optim
from ember.ir.errors import GraphBreakError

FIRST_ORDER = ["Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop"]

CONFIGS = [
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.05, maximize=True)),
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-3)),
    ("Adamax", dict(lr=0.05, weight_decay=0.1)),
    ("Adamax", dict(lr=0.05, weight_decay=0.05, maximize=True)),
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-3, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("NAdam", dict(lr=0.05, weight_decay=0.05, maximize=True)),
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-3)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05, betas=(0.5, 0.8), weight_decay=0.05, maximize=True)),
    ("ASGD", dict(lr=0.05)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3)),
    ("ASGD", dict(lr=0.05, t0=2, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, t0=4, weight_decay=0.05, maximize=True)),
    ("Rprop", dict(lr=0.01)),
    ("Rprop", dict(lr=0.02, etas=(0.3, 1.5))),
    ("Rprop", dict(lr=0.01, step_sizes=(1e-3, 0.02))),
    ("Rprop", dict(lr=0.01, etas=(0.4, 1.1), maximize=True)),
]

# one configuration per optimizer that creates every state entry and takes every branch
RICH = {
    "Adadelta": dict(lr=0.5, weight_decay=0.1),
    "Adamax": dict(lr=0.05, weight_decay=0.1),
    "NAdam": dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    "RAdam": dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1),
    "ASGD": dict(lr=0.05, t0=2, weight_decay=0.1),
    "Rprop": dict(lr=0.02, etas=(0.3, 1.5)),
}


def make_pair(name, kw, dtype):
    emodel, tmodel = EmberNet(dtype), TorchNet(dtype)
    eopt = getattr(optim, name)(emodel.parameters(), **kw)
    topt = getattr(torch.optim, name)(tmodel.parameters(), foreach=False, **kw)
    return emodel, tmodel, eopt, topt


def to_ember(value):
    """A torch state dict (tensors, lists, dicts, numbers) with ember tensors."""
    if isinstance(value, torch.Tensor):
        return ember.tensor(value.detach().numpy().copy())
    if isinstance(value, dict):
        return {k: to_ember(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_ember(v) for v in value)
    return value


def groups_without_foreach(sd):
    return [{k: v for k, v in g.items() if k != "foreach"} for g in sd["param_groups"]]


# ---- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_same_loss_matches_torch_over_10_steps(cfg):
    name, kw = cfg
    emodel, tmodel, eopt, topt = make_pair(name, kw, "float64")
    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 10)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float64"), 10)
    assert_params_close(emodel, tmodel, 1e-10)
    assert_state_close(eopt, topt, emodel, tmodel, 1e-10)
    for p in emodel.parameters():
        assert p.is_leaf and p.requires_grad and p.grad_fn is None


@pytest.mark.parametrize("cfg", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_identical_gradients_float32_over_10_steps(cfg):
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


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_param_groups_with_their_own_options(name):
    kw = RICH[name]
    other = {"etas": (0.6, 1.3)} if name == "Rprop" else {"weight_decay": 0.0}
    emodel, tmodel = EmberNet("float64"), TorchNet("float64")

    def groups(m):
        return [
            {"params": [m.w1, m.b1], "lr": kw["lr"] / 2},
            {"params": [m.w2, m.b2], **other},
        ]

    eopt = getattr(optim, name)(groups(emodel), **kw)
    topt = getattr(torch.optim, name)(groups(tmodel), foreach=False, **kw)
    assert groups_without_foreach(eopt.state_dict()) == groups_without_foreach(topt.state_dict())
    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 8)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float64"), 8)
    assert_params_close(emodel, tmodel, 1e-10)
    assert_state_close(eopt, topt, emodel, tmodel, 1e-10)


def test_add_param_group_and_param_without_grad():
    emodel, tmodel = EmberNet("float64"), TorchNet("float64")
    eopt = optim.NAdam([emodel.w1, emodel.b1], lr=0.05)
    topt = torch.optim.NAdam([tmodel.w1, tmodel.b1], lr=0.05, foreach=False)
    emodel.w2.requires_grad_(False)
    tmodel.w2.requires_grad_(False)
    eopt.add_param_group({"params": [emodel.w2, emodel.b2], "lr": 0.02})
    topt.add_param_group({"params": [tmodel.w2, tmodel.b2], "lr": 0.02})
    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 5)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float64"), 5)
    assert_params_close(emodel, tmodel, 1e-10)
    assert len(eopt.state[emodel.w2]) == 0 and len(eopt.state[emodel.b2]) == 4


# ---- state dicts -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_state_dict_layout_matches_torch(name):
    emodel, tmodel, eopt, topt = make_pair(name, RICH[name], "float32")
    train(eopt, emodel, lambda: ember_loss(emodel, "float32"), 3)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float32"), 3)
    esd, tsd = eopt.state_dict(), topt.state_dict()
    assert sorted(esd) == ["param_groups", "state"]
    assert list(esd["state"]) == list(tsd["state"]) == [0, 1, 2, 3]
    for idx, tstate in tsd["state"].items():
        estate = esd["state"][idx]
        assert list(estate) == list(tstate)  # the same names, in the same order
        for key, tv in tstate.items():
            ev = estate[key]
            assert isinstance(ev, ember.Tensor), key
            assert tuple(ev.shape) == tuple(tv.shape), key
            assert ev.dtype.name == str(tv.dtype).removeprefix("torch."), key
    assert groups_without_foreach(esd) == groups_without_foreach(tsd)


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_state_dict_round_trip_continues_like_torch(name):
    kw = RICH[name]
    emodel, tmodel, eopt, topt = make_pair(name, kw, "float64")
    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 4)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float64"), 4)

    emodel2 = EmberNet("float64")
    emodel2.load_state_dict(copy.deepcopy(emodel.state_dict()))
    eopt2 = getattr(optim, name)(emodel2.parameters(), **kw)
    eopt2.load_state_dict(copy.deepcopy(eopt.state_dict()))
    # torch resumes the same way (loading casts 0-d state such as NAdam's mu_product to the
    # parameters' dtype, so the resumed run is compared with a resumed torch run)
    tmodel2 = TorchNet("float64")
    tmodel2.load_state_dict(tmodel.state_dict())
    topt2 = getattr(torch.optim, name)(tmodel2.parameters(), foreach=False, **kw)
    topt2.load_state_dict(copy.deepcopy(topt.state_dict()))

    train(eopt2, emodel2, lambda: ember_loss(emodel2, "float64"), 4)
    train(topt2, tmodel2, lambda: torch_loss(tmodel2, "float64"), 4)
    assert_params_close(emodel2, tmodel2, 1e-10)
    assert_state_close(eopt2, topt2, emodel2, tmodel2, 1e-10)


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_loads_a_state_dict_saved_by_torch(name):
    kw = RICH[name]
    tmodel = TorchNet("float64")
    topt = getattr(torch.optim, name)(tmodel.parameters(), foreach=False, **kw)
    train(topt, tmodel, lambda: torch_loss(tmodel, "float64"), 4)

    emodel = EmberNet("float64")
    emodel.load_state_dict(to_ember(tmodel.state_dict()))
    eopt = getattr(optim, name)(emodel.parameters(), **kw)
    eopt.load_state_dict(to_ember(copy.deepcopy(topt.state_dict())))
    topt2 = getattr(torch.optim, name)(tmodel.parameters(), foreach=False, **kw)
    topt2.load_state_dict(copy.deepcopy(topt.state_dict()))

    train(eopt, emodel, lambda: ember_loss(emodel, "float64"), 4)
    train(topt2, tmodel, lambda: torch_loss(tmodel, "float64"), 4)
    assert_params_close(emodel, tmodel, 1e-10)
    assert_state_close(eopt, topt2, emodel, tmodel, 1e-10)


@pytest.mark.parametrize("name", [*FIRST_ORDER, "LBFGS"])
def test_defaults_and_repr_match_torch(name):
    eopt = getattr(optim, name)([ember.nn.Parameter(ember.ones(2))])
    topt = getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))])
    assert repr(eopt) == repr(topt)
    assert eopt.defaults == topt.defaults


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda p: optim.Adadelta(p, rho=1.5), ValueError, "Invalid rho value: 1.5"),
        (lambda p: optim.Adadelta(p, eps=-1.0), ValueError, "Invalid epsilon value"),
        (lambda p: optim.Adamax(p, betas=(1.0, 0.9)), ValueError, "beta parameter at index 0"),
        (lambda p: optim.NAdam(p, momentum_decay=-1), ValueError, "Invalid momentum_decay"),
        (lambda p: optim.RAdam(p, weight_decay=-1), ValueError, "Invalid weight_decay value"),
        (lambda p: optim.ASGD(p, lr=-0.1), ValueError, "Invalid learning rate"),
        (lambda p: optim.Rprop(p, etas=(0.5, 0.9)), ValueError, "Invalid eta values: 0.5, 0.9"),
        (lambda p: optim.LBFGS([{"params": p}, {"params": [ember.nn.Parameter(ember.ones(1))]}]),
         ValueError, "doesn't support per-parameter options"),
    ],
)  # fmt: skip
def test_constructor_errors_like_torch(make, error, match):
    with pytest.raises(error, match=match):
        make([ember.nn.Parameter(ember.ones(2))])


# ---- ember.compile ---------------------------------------------------------------------------


def _compiled_step(model, opt, x, w):
    opt.zero_grad()
    out = model(x)
    loss = (out * w).mean() + (out * out).mean()
    loss.backward()
    opt.step()
    return loss


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", FIRST_ORDER)
def test_compiled_training_step_matches_eager(name, dtype):
    kw = RICH[name]
    eager_model, model = EmberNet(dtype), EmberNet(dtype)
    eager_opt = getattr(optim, name)(eager_model.parameters(), **kw)
    opt = getattr(optim, name)(model.parameters(), **kw)
    step = ember.compile(_compiled_step)
    rng = np.random.default_rng(7)
    tol = 1e-12 if dtype == "float64" else 1e-6
    for _ in range(8):
        x = ember.tensor(rng.standard_normal(X.shape), dtype=getattr(ember, dtype))
        w = ember.tensor(rng.standard_normal((6, 3)), dtype=getattr(ember, dtype))
        expected = _compiled_step(eager_model, eager_opt, x, w).item()
        np.testing.assert_allclose(step(model, opt, x, w).item(), expected, rtol=tol, atol=tol)
    for (k, p), q in zip(model.named_parameters(), eager_model.parameters()):
        np.testing.assert_allclose(
            p.detach().numpy(), q.detach().numpy(), rtol=tol, atol=tol, err_msg=k
        )
    for p, q in zip(model.parameters(), eager_model.parameters()):
        for key, value in eager_opt.state[q].items():
            np.testing.assert_allclose(
                opt.state[p][key].numpy(), value.numpy(), rtol=tol, atol=tol, err_msg=key
            )
            assert opt.state[p][key].dtype is value.dtype
    # the first step creates the state; every later step runs one cached graph, with no break
    entries = step._entries
    assert len(entries) == 2 and all(e.graph_break is None for e in entries)
    assert ember.last_graphs(step).backward is None
    if name != "Rprop":  # (Rprop reads lr only when it creates its state)
        assert "%lr: f64[]" in str(ember.last_graphs(step).forward)


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam", "ASGD"])
def test_compiled_step_reads_scheduled_lr_and_betas_without_recompiling(name):
    def make(model):
        opt = getattr(optim, name)(model.parameters(), **RICH[name])
        cycle = "betas" in opt.defaults  # OneCycleLR cycles beta1 like a momentum
        return opt, optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.1, total_steps=8, cycle_momentum=cycle
        )

    eager_model, model = EmberNet("float64"), EmberNet("float64")
    (eager_opt, eager_sched), (opt, sched) = make(eager_model), make(model)
    step = ember.compile(_compiled_step)
    rng = np.random.default_rng(3)
    for _ in range(8):
        x, w = ember.tensor(rng.standard_normal(X.shape)), ember.tensor(rng.standard_normal((6, 3)))
        expected = _compiled_step(eager_model, eager_opt, x, w).item()
        np.testing.assert_allclose(step(model, opt, x, w).item(), expected, rtol=1e-12)
        eager_sched.step()
        sched.step()
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert len(step._entries) == 2


# ---- LBFGS -----------------------------------------------------------------------------------

LBFGS_CONFIGS = [
    dict(),
    dict(line_search_fn="strong_wolfe"),
    dict(lr=0.1),
    dict(lr=0.5, history_size=3, max_iter=5),
    dict(line_search_fn="strong_wolfe", history_size=2, max_iter=7, max_eval=9),
    dict(line_search_fn="strong_wolfe", tolerance_grad=1e-3, tolerance_change=1e-4),
]
LBFGS_IDS = ["-".join(f"{k}={v}" for k, v in kw.items()) or "defaults" for kw in LBFGS_CONFIGS]
START = [-1.5, 2.0]


def rosenbrock(xy):
    return (1 - xy[0]) ** 2 + 100 * (xy[1] - xy[0] ** 2) ** 2


def regression_loss(model, x, y):
    return ((model(x) - y) ** 2).mean()


def closure_of(opt, loss_fn):
    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    return closure


def assert_tree_close(e, t, tol, where="state"):
    """An LBFGS state value (tensors, numbers, lists of them, None) against torch's."""
    if isinstance(t, torch.Tensor):
        assert isinstance(e, ember.Tensor), where
        assert e.dtype.name == str(t.dtype).removeprefix("torch."), where
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=tol, atol=tol, err_msg=where)
    elif isinstance(t, list):
        assert isinstance(e, list) and len(e) == len(t), where
        for i, (ei, ti) in enumerate(zip(e, t)):
            assert_tree_close(ei, ti, tol, f"{where}[{i}]")
    elif isinstance(t, dict):
        assert list(e) == list(t), where  # the same keys, in the same order
        for k in t:
            assert_tree_close(e[k], t[k], tol, f"{where}[{k!r}]")
    elif t is None or isinstance(t, int):
        assert e == t and type(e) is type(t), where
    else:
        assert type(e) is type(t), where
        np.testing.assert_allclose(e, t, rtol=tol, atol=tol, err_msg=where)


def lbfgs_pair(kw):
    emodel, tmodel = EmberNet("float64"), TorchNet("float64")
    return (
        emodel,
        tmodel,
        optim.LBFGS(emodel.parameters(), **kw),
        torch.optim.LBFGS(tmodel.parameters(), **kw),
    )


def regression_closures(emodel, tmodel, eopt, topt):
    ex, ey = ember.tensor(X), ember.tensor(WEIGHT)
    tx, ty = torch.tensor(X), torch.tensor(WEIGHT)
    return (
        closure_of(eopt, lambda: regression_loss(emodel, ex, ey)),
        closure_of(topt, lambda: regression_loss(tmodel, tx, ty)),
    )


@pytest.mark.parametrize("kw", LBFGS_CONFIGS, ids=LBFGS_IDS)
def test_lbfgs_regression_matches_torch(kw):
    emodel, tmodel, eopt, topt = lbfgs_pair(kw)
    eclosure, tclosure = regression_closures(emodel, tmodel, eopt, topt)
    for _ in range(4):
        eloss, tloss = eopt.step(eclosure), topt.step(tclosure)
        # step returns the loss before the step: the closure's tensor
        assert isinstance(eloss, ember.Tensor)
        np.testing.assert_allclose(eloss.item(), tloss.item(), rtol=1e-9, atol=1e-14)
        assert_params_close(emodel, tmodel, 1e-9)
    estate, tstate = eopt.state[emodel.w1], topt.state[tmodel.w1]
    assert estate["func_evals"] == tstate["func_evals"]
    assert estate["n_iter"] == tstate["n_iter"]
    assert_tree_close(estate, tstate, 1e-6)
    assert all(len(eopt.state[p]) == 0 for p in [emodel.b1, emodel.w2, emodel.b2])


@pytest.mark.parametrize("kw", LBFGS_CONFIGS, ids=LBFGS_IDS)
def test_lbfgs_rosenbrock_matches_torch(kw):
    # without a line search the iterates amplify rounding differences (the problem is
    # ill-conditioned), so that run is compared over its first two steps
    steps = 2 if kw == {} else 5
    ep = ember.nn.Parameter(ember.tensor(START, dtype=ember.float64))
    tp = torch.nn.Parameter(torch.tensor(START, dtype=torch.float64))
    eopt, topt = optim.LBFGS([ep], **kw), torch.optim.LBFGS([tp], **kw)
    eclosure = closure_of(eopt, lambda: rosenbrock(ep))
    tclosure = closure_of(topt, lambda: rosenbrock(tp))
    for _ in range(steps):
        eloss, tloss = eopt.step(eclosure), topt.step(tclosure)
        np.testing.assert_allclose(eloss.item(), tloss.item(), rtol=1e-8)
        np.testing.assert_allclose(ep.detach().numpy(), tp.detach().numpy(), rtol=0, atol=1e-8)
        assert eopt.state[ep]["func_evals"] == topt.state[tp]["func_evals"]
        assert eopt.state[ep]["n_iter"] == topt.state[tp]["n_iter"]
    # (near the minimum the curvature pairs' 1 / (y.s) magnify those differences)
    assert_tree_close(eopt.state[ep], topt.state[tp], 1e-4)


# one-dimensional-ish problems whose line searches take the rarer branches: extrapolation,
# the evaluation budget running out, cubic steps from the right end of the bracket, swapping
# its ends, and trials moved away from an end for insufficient progress
LINE_SEARCH_CASES = {
    "quartic": (lambda m, p: (p**4 - 3 * p**2 + p).sum(), [2.0, 0.5], dict(lr=2)),
    "wave": (lambda m, p: (m.sin(3 * p) + 0.1 * p**2).sum(), [0.3, -1.7], dict(lr=20)),
    "rosenbrock-short-budget": (lambda m, p: rosenbrock(p), START, dict(lr=0.01, max_eval=3)),
    "rosenbrock-long-steps": (lambda m, p: rosenbrock(p), START, dict(lr=3)),
}


@pytest.mark.parametrize("case", list(LINE_SEARCH_CASES))
def test_lbfgs_line_search_branches_match_torch(case):
    fn, start, kw = LINE_SEARCH_CASES[case]
    kw = dict(line_search_fn="strong_wolfe", max_iter=10, **kw)
    ep = ember.nn.Parameter(ember.tensor(start, dtype=ember.float64))
    tp = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    eopt, topt = optim.LBFGS([ep], **kw), torch.optim.LBFGS([tp], **kw)
    eclosure = closure_of(eopt, lambda: fn(ember, ep))
    tclosure = closure_of(topt, lambda: fn(torch, tp))
    for _ in range(3):
        np.testing.assert_allclose(eopt.step(eclosure).item(), topt.step(tclosure).item(), 1e-9)
        np.testing.assert_allclose(ep.detach().numpy(), tp.detach().numpy(), rtol=0, atol=1e-9)
        assert eopt.state[ep]["func_evals"] == topt.state[tp]["func_evals"]
    assert_tree_close(eopt.state[ep], topt.state[tp], 1e-6)


def test_lbfgs_with_line_search_reaches_the_rosenbrock_minimum():
    p = ember.nn.Parameter(ember.tensor(START, dtype=ember.float64))
    opt = optim.LBFGS([p], line_search_fn="strong_wolfe")
    closure = closure_of(opt, lambda: rosenbrock(p))
    for _ in range(4):
        opt.step(closure)
    np.testing.assert_allclose(p.detach().numpy(), [1.0, 1.0], atol=1e-4)
    assert rosenbrock(p).item() < 1e-8


def test_lbfgs_stops_at_once_when_the_gradient_is_below_tolerance_grad():
    p = ember.nn.Parameter(ember.tensor([1.0, 1.0], dtype=ember.float64))
    opt = optim.LBFGS([p], tolerance_grad=1e-5)
    loss = opt.step(closure_of(opt, lambda: rosenbrock(p)))
    assert loss.item() == 0.0
    assert opt.state[p] == {"func_evals": 1, "n_iter": 0}


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_state_dict_round_trip_and_torch_layout(line_search_fn):
    kw = dict(line_search_fn=line_search_fn, history_size=3, max_iter=6)
    emodel, tmodel, eopt, topt = lbfgs_pair(kw)
    eclosure, tclosure = regression_closures(emodel, tmodel, eopt, topt)
    for _ in range(2):
        eopt.step(eclosure)
        topt.step(tclosure)
    esd, tsd = eopt.state_dict(), topt.state_dict()
    assert list(esd["state"]) == list(tsd["state"]) == [0]
    assert_tree_close(esd["state"], tsd["state"], 1e-6)
    assert esd["param_groups"] == tsd["param_groups"]

    # a fresh ember optimizer resumes from ember's state dict and from torch's
    for source in (esd, to_ember(tsd)):
        model2 = EmberNet("float64")
        model2.load_state_dict(emodel.state_dict())
        opt2 = optim.LBFGS(model2.parameters(), **kw)
        opt2.load_state_dict(copy.deepcopy(source))
        closure2 = closure_of(opt2, lambda m=model2: regression_loss(m, ember.tensor(X),
                                                                     ember.tensor(WEIGHT)))  # fmt: skip
        tmodel2 = TorchNet("float64")
        tmodel2.load_state_dict(tmodel.state_dict())
        topt2 = torch.optim.LBFGS(tmodel2.parameters(), **kw)
        topt2.load_state_dict(copy.deepcopy(tsd))
        tclosure2 = closure_of(topt2, lambda m=tmodel2: regression_loss(m, torch.tensor(X),
                                                                        torch.tensor(WEIGHT)))  # fmt: skip
        for _ in range(2):
            opt2.step(closure2)
            topt2.step(tclosure2)
        assert_params_close(model2, tmodel2, 1e-9)
        assert_tree_close(opt2.state[model2.w1], topt2.state[tmodel2.w1], 1e-6)


def test_lbfgs_deepcopy_continues_identically():
    emodel, tmodel, eopt, topt = lbfgs_pair(dict(max_iter=3))
    eclosure, _ = regression_closures(emodel, tmodel, eopt, topt)
    eopt.step(eclosure)
    model2, opt2 = copy.deepcopy((emodel, eopt))
    assert opt2._params is opt2.param_groups[0]["params"]
    assert opt2._params[0] is model2.w1 and len(opt2.state[model2.w1]) == len(eopt.state[emodel.w1])
    closure2, _ = regression_closures(model2, tmodel, opt2, topt)
    for _ in range(2):
        assert opt2.step(closure2).item() == eopt.step(eclosure).item()
    for p, q in zip(model2.parameters(), emodel.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_lbfgs_unknown_line_search_is_an_error():
    p = ember.nn.Parameter(ember.tensor(START, dtype=ember.float64))
    opt = optim.LBFGS([p], line_search_fn="backtracking")
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(closure_of(opt, lambda: rosenbrock(p)))


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_compiled_step_breaks_the_graph_and_runs_eagerly(line_search_fn):
    def lbfgs_step(model, opt, x, y):
        def closure():
            opt.zero_grad()
            loss = regression_loss(model, x, y)
            loss.backward()
            return loss

        return opt.step(closure)

    kw = dict(line_search_fn=line_search_fn, max_iter=5)
    eager_model, model = EmberNet("float64"), EmberNet("float64")
    eager_opt = optim.LBFGS(eager_model.parameters(), **kw)
    opt = optim.LBFGS(model.parameters(), **kw)
    step = ember.compile(lbfgs_step)
    x, y = ember.tensor(X), ember.tensor(WEIGHT)
    for _ in range(3):
        expected = lbfgs_step(eager_model, eager_opt, x, y).item()
        assert step(model, opt, x, y).item() == expected
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    assert opt.state[model.w1]["func_evals"] == eager_opt.state[eager_model.w1]["func_evals"]
    assert step._entries and all(e.graph_break is not None for e in step._entries)
    with pytest.raises(GraphBreakError, match="test_more_optimizers.py"):
        ember.compile(lbfgs_step, fullgraph=True)(model, opt, x, y)
