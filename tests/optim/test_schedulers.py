"""ember.optim.lr_scheduler against torch.optim.lr_scheduler: the same lr (and momentum)
sequences, step by step, for 40 steps."""

import copy
import math
import warnings

import pytest
import torch

import ember
import ember.nn as nn
import ember.optim as optim
from ember.optim import lr_scheduler as ES

TS = torch.optim.lr_scheduler
STEPS = 40


def make_opts(opt_name="SGD", lrs=(0.1,), **kw):
    eparams = [nn.Parameter(ember.ones(2)) for _ in lrs]
    tparams = [torch.nn.Parameter(torch.ones(2)) for _ in lrs]
    egroups = [{"params": [p], "lr": lr} for p, lr in zip(eparams, lrs)]
    tgroups = [{"params": [p], "lr": lr} for p, lr in zip(tparams, lrs)]
    eopt = getattr(optim, opt_name)(egroups, **kw)
    topt = getattr(torch.optim, opt_name)(tgroups, **kw)
    return eopt, topt


def run(sched, opt, steps=STEPS, metrics=None):
    """The lrs (and momenta) after construction and after each of ``steps`` steps."""
    lrs = [list(sched.get_last_lr())]
    groups = [[g["lr"] for g in opt.param_groups]]
    moms = [[g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups]]
    for i in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        lrs.append(list(sched.get_last_lr()))
        groups.append([g["lr"] for g in opt.param_groups])
        moms.append([g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups])
    return lrs, groups, moms


def assert_seq_close(a, b, tol=1e-12):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert len(x) == len(y)
        for u, v in zip(x, y):
            assert abs(u - v) <= tol, f"step {i}: ember {u} vs torch {v}"


CASES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("StepLR", dict(step_size=1, gamma=0.9)),
    ("MultiStepLR", dict(milestones=[3, 10, 10, 25], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=10)),
    ("CosineAnnealingLR", dict(T_max=13, eta_min=0.003)),
    ("LinearLR", dict(start_factor=0.25, total_iters=8)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=30)),
    ("ConstantLR", dict(factor=0.5, total_iters=4)),
    ("PolynomialLR", dict(total_iters=20, power=2.0)),
    ("CosineAnnealingWarmRestarts", dict(T_0=5, T_mult=2, eta_min=0.001)),
    ("CosineAnnealingWarmRestarts", dict(T_0=7)),
]


def _ids(case):
    return case[0] + "-" + "-".join(f"{k}={v}" for k, v in case[1].items())


@pytest.mark.parametrize("lrs", [(0.1,), (0.1, 0.03)], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_lr_sequence_matches_torch(case, lrs):
    name, kw = case
    eopt, topt = make_opts(lrs=lrs)
    es, ts = getattr(ES, name)(eopt, **kw), getattr(TS, name)(topt, **kw)
    assert es.base_lrs == ts.base_lrs
    elrs, egroups, _ = run(es, eopt)
    tlrs, tgroups, _ = run(ts, topt)
    assert_seq_close(elrs, tlrs)
    assert_seq_close(egroups, tgroups)
    assert es.last_epoch == ts.last_epoch == STEPS


def test_lambda_and_multiplicative_lr():
    for name, fn in [("LambdaLR", lambda e: 0.95**e + 0.01 * (e % 3)),
                     ("MultiplicativeLR", lambda e: 0.9 if e % 2 else 1.01)]:  # fmt: skip
        eopt, topt = make_opts(lrs=(0.1, 0.2))
        es, ts = getattr(ES, name)(eopt, fn), getattr(TS, name)(topt, fn)
        assert_seq_close(run(es, eopt)[0], run(ts, topt)[0])
    # one lambda per group
    fns = [lambda e: 1 / (e + 1), lambda e: 0.5 ** (e // 4)]
    eopt, topt = make_opts(lrs=(0.1, 0.2))
    assert_seq_close(run(ES.LambdaLR(eopt, fns), eopt)[0], run(TS.LambdaLR(topt, fns), topt)[0])
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        ES.LambdaLR(eopt, [fns[0]])


ONE_CYCLE = [
    dict(max_lr=0.5, total_steps=STEPS),
    dict(max_lr=0.5, total_steps=STEPS, anneal_strategy="linear"),
    dict(max_lr=0.5, total_steps=STEPS, three_phase=True),
    dict(max_lr=0.5, total_steps=STEPS, three_phase=True, anneal_strategy="linear", pct_start=0.2),
    dict(max_lr=[0.5, 0.2], epochs=4, steps_per_epoch=10, div_factor=10.0, final_div_factor=100.0,
         base_momentum=0.8, max_momentum=0.9),
    dict(max_lr=0.5, total_steps=STEPS, cycle_momentum=False),
]  # fmt: skip


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("kw", ONE_CYCLE, ids=[str(i) for i in range(len(ONE_CYCLE))])
def test_one_cycle_lr_and_momentum(kw, opt_name):
    opt_kw = {"momentum": 0.9} if opt_name == "SGD" else {}
    eopt, topt = make_opts(opt_name, lrs=(0.1, 0.05), **opt_kw)
    es, ts = ES.OneCycleLR(eopt, **kw), TS.OneCycleLR(topt, **kw)
    elrs, egroups, emoms = run(es, eopt, steps=STEPS - 1)
    tlrs, tgroups, tmoms = run(ts, topt, steps=STEPS - 1)
    assert_seq_close(elrs, tlrs)
    assert_seq_close(egroups, tgroups)
    assert_seq_close(emoms, tmoms)
    for eg, tg in zip(eopt.param_groups, topt.param_groups):
        for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            if key in tg:
                assert eg[key] == tg[key]
        if opt_name == "Adam":
            assert eg["betas"][1] == tg["betas"][1] == 0.999
    # one step past total_steps is an error, as in torch
    with pytest.raises(ValueError, match="Tried to step"):
        eopt.step()
        es.step()
        es.step()


def test_one_cycle_requires_momentum():
    eopt, _ = make_opts("Adagrad")
    with pytest.raises(ValueError, match="optimizer must support momentum"):
        ES.OneCycleLR(eopt, max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="You must define either total_steps"):
        ES.OneCycleLR(eopt, max_lr=0.1, cycle_momentum=False)


def test_sequential_lr_warmup_then_cosine():
    def build(mod, opt):
        warm = mod.LinearLR(opt, start_factor=0.1, total_iters=5)
        cos = mod.CosineAnnealingLR(opt, T_max=20, eta_min=1e-4)
        return mod.SequentialLR(opt, schedulers=[warm, cos], milestones=[5])

    eopt, topt = make_opts(lrs=(0.1, 0.3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es, ts = build(ES, eopt), build(TS, topt)
    elrs, egroups, _ = run(es, eopt)
    tlrs, tgroups, _ = run(ts, topt)
    assert_seq_close(elrs, tlrs)
    assert_seq_close(egroups, tgroups)


def test_reduce_lr_on_plateau():
    metrics = [1.0, 0.9, 0.9, 0.9, 0.95, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8] * 4
    for kw in [dict(patience=2, factor=0.5), dict(mode="max", patience=1, cooldown=2,
               threshold_mode="abs", threshold=0.01, min_lr=[0.02, 0.001])]:  # fmt: skip
        eopt, topt = make_opts(lrs=(0.1, 0.05))
        es, ts = ES.ReduceLROnPlateau(eopt, **kw), TS.ReduceLROnPlateau(topt, **kw)
        elrs, egroups, _ = run(es, eopt, metrics=metrics)
        tlrs, tgroups, _ = run(ts, topt, metrics=metrics)
        assert_seq_close(elrs, tlrs)
        assert_seq_close(egroups, tgroups)


@pytest.mark.parametrize(
    "build",
    [
        lambda m, o: m.CosineAnnealingLR(o, T_max=9, eta_min=0.01),
        lambda m, o: m.StepLR(o, step_size=4, gamma=0.5),
        lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=STEPS),
        lambda m, o: m.MultiStepLR(o, milestones=[5, 12], gamma=0.1),
    ],
    ids=["cosine", "step", "onecycle", "multistep"],
)
def test_state_dict_round_trip(build):
    eopt, _ = make_opts(lrs=(0.1,), momentum=0.9)
    es = build(ES, eopt)
    run(es, eopt, steps=15)
    sched_state = copy.deepcopy(es.state_dict())
    opt_state = copy.deepcopy(eopt.state_dict())
    assert "optimizer" not in sched_state and sched_state["last_epoch"] == 15

    # PyTorch's documented order: build the scheduler, then load the optimizer, then the
    # scheduler (building a scheduler writes the group's lr)
    eopt2, _ = make_opts(lrs=(0.7,), momentum=0.1)
    es2 = build(ES, eopt2)
    eopt2.load_state_dict(opt_state)
    es2.load_state_dict(sched_state)
    a = run(es, eopt, steps=20)
    b = run(es2, eopt2, steps=20)
    assert a == b


def test_torch_state_dict_keys():
    eopt, topt = make_opts(lrs=(0.1,))
    es, ts = ES.CosineAnnealingLR(eopt, T_max=10), TS.CosineAnnealingLR(topt, T_max=10)
    run(es, eopt, steps=3)
    run(ts, topt, steps=3)
    esd, tsd = es.state_dict(), ts.state_dict()
    for key in ("T_max", "eta_min", "base_lrs", "last_epoch", "_step_count", "_last_lr"):
        assert esd[key] == tsd[key], key


def test_initial_lr_and_resume_errors():
    eopt, _ = make_opts(lrs=(0.1,))
    with pytest.raises(KeyError, match="initial_lr"):
        ES.StepLR(eopt, step_size=2, last_epoch=3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        ES.StepLR(object(), step_size=2)
    ES.StepLR(eopt, step_size=2)
    assert eopt.param_groups[0]["initial_lr"] == 0.1


def test_step_order_warning():
    eopt, _ = make_opts(lrs=(0.1,))
    sched = ES.StepLR(eopt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    eopt2, _ = make_opts(lrs=(0.1,))
    sched2 = ES.StepLR(eopt2, step_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eopt2.step()
        sched2.step()


def test_closed_form_with_epoch_argument():
    eopt, topt = make_opts(lrs=(0.1,))
    es, ts = ES.CosineAnnealingLR(eopt, T_max=10), TS.CosineAnnealingLR(topt, T_max=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in [3, 7, 2, 15]:
            es.step(epoch)
            ts.step(epoch)
            assert math.isclose(es.get_last_lr()[0], ts.get_last_lr()[0], abs_tol=1e-15)
