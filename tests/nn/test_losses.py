"""Loss functions and loss modules against torch: values, gradients with respect to the input
(and the target where torch allows it), every reduction, weights, ignore_index, label
smoothing, probability targets, K-dimensional cross entropy and extreme logits."""

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import ember
import ember.nn as nn
import ember.nn.functional as F

REDUCTIONS = ["none", "mean", "sum"]


# ---------------------------------------------------------------- helpers


def rng(seed=0):
    return np.random.default_rng(seed)


def normal(*shape, seed=0, scale=1.0):
    return (rng(seed).standard_normal(shape) * scale).astype(np.float32)


def uniform(*shape, seed=0, low=0.0, high=1.0):
    return rng(seed).uniform(low, high, size=shape).astype(np.float32)


def to_ember(a, grad=False):
    if a is None:
        return None
    return ember.tensor(a, requires_grad=grad and a.dtype.kind == "f")


def to_torch(a, grad=False):
    if a is None:
        return None
    return torch.tensor(a, requires_grad=grad and a.dtype.kind == "f")


def run_both(e_fn, t_fn, arrays, grad=(0,), atol=1e-5, rtol=1e-4, w_seed=123):
    """Call ``e_fn`` and ``t_fn`` on the same arrays; compare outputs and the gradients of
    ``(out * w).sum()`` with respect to the arrays whose positions are in ``grad``."""
    e_args = [to_ember(a, i in grad) for i, a in enumerate(arrays)]
    t_args = [to_torch(a, i in grad) for i, a in enumerate(arrays)]
    e_out = e_fn(*e_args)
    t_out = t_fn(*t_args)
    assert isinstance(e_out, ember.Tensor)
    assert tuple(e_out.shape) == tuple(t_out.shape), (e_out.shape, t_out.shape)
    assert e_out.dtype.name == str(t_out.dtype).removeprefix("torch.")
    np.testing.assert_allclose(
        e_out.detach().numpy(), t_out.detach().numpy(), atol=atol, rtol=rtol, equal_nan=True
    )
    if not grad:
        return e_out, t_out
    w = rng(w_seed).uniform(0.5, 1.5, size=tuple(t_out.shape)).astype(np.float32)
    (e_out * ember.tensor(w)).sum().backward()
    (t_out * torch.tensor(w)).sum().backward()
    for i in grad:
        tg = t_args[i].grad
        eg = e_args[i].grad
        assert tg is not None and eg is not None, f"argument {i}: torch {tg}, ember {eg}"
        assert not np.isnan(eg.numpy()).any() or np.isnan(tg.numpy()).any()
        np.testing.assert_allclose(
            eg.numpy(), tg.numpy(), atol=atol, rtol=rtol, err_msg=f"gradient of argument {i}"
        )
    return e_out, t_out


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------- regression losses


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("mse_loss", {}),
        ("l1_loss", {}),
        ("smooth_l1_loss", {}),
        ("smooth_l1_loss", {"beta": 0.3}),
        ("smooth_l1_loss", {"beta": 0.0}),
        ("huber_loss", {}),
        ("huber_loss", {"delta": 0.4}),
        ("huber_loss", {"delta": 2.5}),
    ],
)
def test_regression_losses(name, kwargs, reduction):
    x = normal(3, 5, seed=1, scale=1.5)
    y = normal(3, 5, seed=2)
    x[0, 0] = y[0, 0]  # a zero difference: |d| has a kink there
    run_both(
        lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kwargs),
        lambda a, b: getattr(TF, name)(a, b, reduction=reduction, **kwargs),
        [x, y],
        grad=(0, 1),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_regression_losses_elementwise_weight(name, reduction):
    x, y, w = normal(4, 3, seed=3), normal(4, 3, seed=4), uniform(4, 3, seed=5, low=0.1)
    run_both(
        lambda a, b, c: getattr(F, name)(a, b, reduction=reduction, weight=c),
        lambda a, b, c: getattr(TF, name)(a, b, reduction=reduction, weight=c),
        [x, y, w],
        grad=(0, 1),
    )


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
def test_regression_target_broadcasts_with_a_warning(name):
    x, y = normal(3, 4, seed=6), normal(4, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.warns(UserWarning, match="target size"):
            getattr(F, name)(ember.tensor(x), ember.tensor(y))
    run_both(getattr(F, name), getattr(TF, name), [x, y], grad=(0, 1))


def test_regression_scalar_and_empty():
    run_both(F.mse_loss, TF.mse_loss, [np.float32(1.5) * np.ones((), np.float32),
                                       np.zeros((), np.float32)], grad=(0,))  # fmt: skip
    e = F.mse_loss(ember.zeros(0), ember.zeros(0))
    assert np.isnan(e.item()) and np.isnan(TF.mse_loss(torch.zeros(0), torch.zeros(0)).item())
    assert F.l1_loss(ember.zeros(0), ember.zeros(0), reduction="sum").item() == 0.0


def test_regression_float64():
    x, y = normal(3, 4, seed=8).astype(np.float64), normal(3, 4, seed=9).astype(np.float64)
    run_both(F.smooth_l1_loss, TF.smooth_l1_loss, [x, y], grad=(0, 1), atol=1e-12, rtol=1e-10)


# ---------------------------------------------------------------- binary cross entropy


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (4,), (3, 4)])
def test_binary_cross_entropy(reduction, weight_shape):
    p = uniform(3, 4, seed=10, low=0.02, high=0.98)
    y = uniform(3, 4, seed=11)
    w = None if weight_shape is None else uniform(*weight_shape, seed=12, low=0.5, high=2.0)
    run_both(
        lambda a, b, c: F.binary_cross_entropy(a, b, weight=c, reduction=reduction),
        lambda a, b, c: TF.binary_cross_entropy(a, b, weight=c, reduction=reduction),
        [p, y, w],
        grad=(0, 1),
    )


def test_binary_cross_entropy_clamps_log_and_gradient_like_torch():
    # log(0) is clamped at -100; torch's input gradient is (x - y) / max(x (1 - x), 1e-12)
    p = np.array([0.0, 1.0, 1e-30, 1e-13, 0.5, 1.0, 0.0], np.float32)
    y = np.array([1.0, 0.0, 0.3, 1.0, 0.2, 1.0, 0.0], np.float32)
    run_both(
        lambda a, b: F.binary_cross_entropy(a, b, reduction="none"),
        lambda a, b: TF.binary_cross_entropy(a, b, reduction="none"),
        [p, y],
        grad=(0,),
        rtol=1e-5,
    )


def test_sigmoid_then_bce_saturated_logits():
    z = np.array([-30.0, -17.0, 30.0, 0.0, 100.0, -100.0], np.float32)
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0], np.float32)
    run_both(
        lambda a, b: F.binary_cross_entropy(ember.sigmoid(a), b),
        lambda a, b: TF.binary_cross_entropy(torch.sigmoid(a), b),
        [z, y],
        grad=(0,),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits(reduction, with_weight, with_pos_weight):
    x = normal(3, 4, seed=13, scale=3.0)
    y = uniform(3, 4, seed=14)
    w = uniform(4, seed=15, low=0.5, high=2.0) if with_weight else None
    pw = uniform(4, seed=16, low=0.2, high=3.0) if with_pos_weight else None
    run_both(
        lambda a, b, c, d: F.binary_cross_entropy_with_logits(
            a, b, weight=c, reduction=reduction, pos_weight=d
        ),
        lambda a, b, c, d: TF.binary_cross_entropy_with_logits(
            a, b, weight=c, reduction=reduction, pos_weight=d
        ),
        [x, y, w, pw],
        grad=(0, 1),
    )


@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_extreme_logits(with_pos_weight):
    x = np.array([100.0, -100.0, 100.0, -100.0, 0.0, 50.0, -80.0, 0.0], np.float32)
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.3, 0.7, 0.0], np.float32)
    pw = np.full(8, 2.5, np.float32) if with_pos_weight else None
    e, _ = run_both(
        lambda a, b, d: F.binary_cross_entropy_with_logits(a, b, reduction="none", pos_weight=d),
        lambda a, b, d: TF.binary_cross_entropy_with_logits(a, b, reduction="none", pos_weight=d),
        [x, y, pw],
        grad=(0, 1),
    )
    assert np.isfinite(e.detach().numpy()).all()


def test_bce_with_logits_float64():
    x, y = normal(2, 3, seed=17, scale=20.0).astype(np.float64), uniform(2, 3, seed=18)
    run_both(
        F.binary_cross_entropy_with_logits,
        TF.binary_cross_entropy_with_logits,
        [x, y.astype(np.float64)],
        grad=(0, 1),
        atol=1e-12,
        rtol=1e-10,
    )


# ---------------------------------------------------------------- nll_loss and cross_entropy


def class_targets(shape, n_classes, seed=0, ignore=None, ignore_index=-100):
    t = rng(seed).integers(0, n_classes, size=shape).astype(np.int64)
    if ignore:
        t.reshape(-1)[list(ignore)] = ignore_index
    return t


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("shape", [(5,), (6, 5), (3, 5, 4), (2, 5, 3, 2)])
def test_nll_loss(shape, with_weight, reduction):
    logp = TF.log_softmax(torch.tensor(normal(*shape, seed=20)), dim=0 if len(shape) == 1 else 1)
    logp = logp.numpy()
    tshape = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = class_targets(tshape, 5, seed=21, ignore=[1] if tshape else None)
    w = uniform(5, seed=22, low=0.3, high=2.0) if with_weight else None
    run_both(
        lambda a, b, c: F.nll_loss(a, b, weight=c, reduction=reduction),
        lambda a, b, c: TF.nll_loss(a, b, weight=c, reduction=reduction),
        [logp, t, w],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15, 1.0])
@pytest.mark.parametrize("shape", [(7,), (6, 7), (3, 7, 4), (2, 7, 2, 3)])
def test_cross_entropy_class_indices(shape, with_weight, label_smoothing, reduction):
    x = normal(*shape, seed=30, scale=2.0)
    tshape = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = class_targets(tshape, 7, seed=31, ignore=[0, 3] if tshape else None)
    w = uniform(7, seed=32, low=0.3, high=2.0) if with_weight else None
    run_both(
        lambda a, b, c: F.cross_entropy(
            a, b, weight=c, reduction=reduction, label_smoothing=label_smoothing
        ),
        lambda a, b, c: TF.cross_entropy(
            a, b, weight=c, reduction=reduction, label_smoothing=label_smoothing
        ),
        [x, t, w],
    )


@pytest.mark.parametrize("ignore_index", [-1, 0, 2])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_custom_ignore_index(ignore_index, label_smoothing):
    x = normal(8, 4, seed=33)
    t = class_targets((8,), 4, seed=34, ignore=[1, 5], ignore_index=ignore_index)
    w = uniform(4, seed=35, low=0.3, high=2.0)
    for weight in (None, w):
        run_both(
            lambda a, b, c: F.cross_entropy(
                a, b, weight=c, ignore_index=ignore_index, label_smoothing=label_smoothing
            ),
            lambda a, b, c: TF.cross_entropy(
                a, b, weight=c, ignore_index=ignore_index, label_smoothing=label_smoothing
            ),
            [x, t, weight],
        )


@pytest.mark.parametrize("reduction", ["mean", "none", "sum"])
def test_cross_entropy_all_targets_ignored(reduction):
    x = normal(3, 4, seed=36)
    t = np.full(3, -100, np.int64)
    e, tt = run_both(
        lambda a, b: F.cross_entropy(a, b, reduction=reduction),
        lambda a, b: TF.cross_entropy(a, b, reduction=reduction),
        [x, t],
        grad=(),
    )
    if reduction == "mean":
        assert np.isnan(e.item()) and np.isnan(tt.item())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("shape", [(6,), (4, 6), (2, 6, 3)])
def test_cross_entropy_probabilities(shape, with_weight, label_smoothing, reduction):
    x = normal(*shape, seed=40, scale=2.0)
    dim = 0 if len(shape) == 1 else 1
    target = TF.softmax(torch.tensor(normal(*shape, seed=41)), dim=dim).numpy()
    w = uniform(6, seed=42, low=0.3, high=2.0) if with_weight else None
    run_both(
        lambda a, b, c: F.cross_entropy(
            a, b, weight=c, reduction=reduction, label_smoothing=label_smoothing
        ),
        lambda a, b, c: TF.cross_entropy(
            a, b, weight=c, reduction=reduction, label_smoothing=label_smoothing
        ),
        [x, target, w],
        grad=(0, 1),
    )


def test_cross_entropy_extreme_logits_and_float64():
    x = np.array([[100.0, -100.0, 0.0], [-100.0, -100.0, 100.0], [0.0, 0.0, 0.0]], np.float32)
    t = np.array([1, 2, 0], np.int64)
    run_both(F.cross_entropy, TF.cross_entropy, [x, t])
    x64 = normal(4, 3, seed=43).astype(np.float64)
    run_both(F.cross_entropy, TF.cross_entropy, [x64, t[:3].repeat(2)[:4]], atol=1e-12, rtol=1e-10)


def test_cross_entropy_empty_batch():
    e = F.cross_entropy(ember.zeros(0, 4), ember.zeros(0, dtype=ember.int64))
    assert np.isnan(e.item())


# ---------------------------------------------------------------- kl_div


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    inp = TF.log_softmax(torch.tensor(normal(4, 5, seed=50)), dim=1).numpy()
    tgt = TF.softmax(torch.tensor(normal(4, 5, seed=51)), dim=1).numpy()
    if log_target:
        tgt = np.log(tgt)
    run_both(
        lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
        lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target),
        [inp, tgt],
        grad=(0, 1),
    )


def test_kl_div_zero_target():
    inp = TF.log_softmax(torch.tensor(normal(2, 3, seed=52)), dim=1).numpy()
    tgt = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]], np.float32)
    run_both(
        lambda a, b: F.kl_div(a, b, reduction="batchmean"),
        lambda a, b: TF.kl_div(a, b, reduction="batchmean"),
        [inp, tgt],
        grad=(0,),
    )


# ---------------------------------------------------------------- legacy arguments


@pytest.mark.parametrize("size_average,reduce", [(None, False), (False, None), (True, True)])
def test_legacy_size_average_and_reduce(size_average, reduce):
    x, y = normal(3, 4, seed=60), normal(3, 4, seed=61)
    run_both(
        lambda a, b: F.mse_loss(a, b, size_average=size_average, reduce=reduce),
        lambda a, b: TF.mse_loss(a, b, size_average=size_average, reduce=reduce),
        [x, y],
    )
    t = class_targets((3,), 4, seed=62)
    run_both(
        lambda a, b: F.cross_entropy(a, b, size_average=size_average, reduce=reduce),
        lambda a, b: TF.cross_entropy(a, b, size_average=size_average, reduce=reduce),
        [x, t],
    )
    m = nn.L1Loss(size_average=size_average, reduce=reduce)
    assert m.reduction == tnn.L1Loss(size_average=size_average, reduce=reduce).reduction


# ---------------------------------------------------------------- errors


def test_bad_reduction_string():
    x = ember.zeros(2, 3)
    t = ember.tensor([0, 1])
    for fn, args in [
        (F.mse_loss, (x, x)),
        (F.l1_loss, (x, x)),
        (F.smooth_l1_loss, (x, x)),
        (F.huber_loss, (x, x)),
        (F.binary_cross_entropy, (x, x)),
        (F.binary_cross_entropy_with_logits, (x, x)),
        (F.kl_div, (x, x)),
        (F.cross_entropy, (x, t)),
        (F.nll_loss, (x, t)),
    ]:
        with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
            fn(*args, reduction="avg")
    with pytest.raises(ValueError, match="not a valid value"):
        F.mse_loss(x, x, reduction="batchmean")


def test_shape_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"binary_cross_entropy: .*\[3\].*\[4\]"):
        F.binary_cross_entropy(ember.rand(4), ember.rand(3))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: .*\[2, 3\]"):
        F.binary_cross_entropy_with_logits(ember.zeros(2, 3), ember.zeros(3))
    with pytest.raises(ValueError, match=r"cross_entropy: Expected input batch_size \(3\)"):
        F.cross_entropy(ember.zeros(3, 4), ember.tensor([0, 1]))
    with pytest.raises(RuntimeError, match=r"cross_entropy: .*\[3, 5\].*\[3\]"):
        F.cross_entropy(ember.zeros(3, 4, 5), ember.tensor([0, 1, 1]))
    with pytest.raises(RuntimeError, match="nll_loss: .*all 4 classes.*\\[3\\]"):
        F.nll_loss(ember.zeros(3, 4), ember.tensor([0, 1, 2]), weight=ember.ones(3))
    with pytest.raises(RuntimeError, match="cross_entropy: .*floating point target"):
        F.cross_entropy(ember.zeros(3, 4), ember.ones(3, 4, dtype=ember.int64))
    with pytest.raises(RuntimeError, match="nll_loss: .*integer"):
        F.nll_loss(ember.zeros(3, 4), ember.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(RuntimeError, match="cross_entropy: Expected 1 or more dimensions"):
        F.cross_entropy(ember.zeros(()), ember.tensor(0))
    with pytest.raises(ValueError, match="mse_loss: Weights and input must have the same size"):
        F.mse_loss(ember.zeros(2, 3), ember.zeros(2, 3), weight=ember.ones(3))
    with pytest.raises(RuntimeError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(ember.zeros(3, 4), ember.tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(RuntimeError, match="does not support negative values for beta"):
        F.smooth_l1_loss(ember.zeros(3), ember.zeros(3), beta=-1.0)
    with pytest.raises(RuntimeError, match="does not support non-positive values for delta"):
        F.huber_loss(ember.zeros(3), ember.zeros(3), delta=0.0)
    # torch raises IndexError for an out-of-range class index; so does ember (no wrap-around)
    for bad in (-1, 4):
        with pytest.raises(IndexError, match=f"cross_entropy: Target {bad} is out of bounds"):
            F.cross_entropy(ember.zeros(3, 4), ember.tensor([0, bad, 2]))
        with pytest.raises(IndexError):
            TF.cross_entropy(torch.zeros(3, 4), torch.tensor([0, bad, 2]))


def test_errors_point_at_user_code():
    with pytest.raises(ValueError) as info:
        F.binary_cross_entropy(ember.rand(4), ember.rand(3))
    assert "test_losses.py:" in str(info.value)


# ---------------------------------------------------------------- modules

MODULES = [
    ("L1Loss", {}, "reg"),
    ("MSELoss", {"reduction": "sum"}, "reg"),
    ("SmoothL1Loss", {"beta": 0.5}, "reg"),
    ("HuberLoss", {"delta": 0.7, "reduction": "none"}, "reg"),
    ("BCELoss", {"weight": "w4"}, "prob"),
    ("BCEWithLogitsLoss", {"weight": "w4", "pos_weight": "pw4"}, "logit"),
    ("BCEWithLogitsLoss", {"pos_weight": "pw4"}, "logit"),
    ("NLLLoss", {"weight": "w4", "ignore_index": 1}, "logp"),
    ("CrossEntropyLoss", {}, "class"),
    ("CrossEntropyLoss", {"weight": "w4", "label_smoothing": 0.1, "reduction": "sum"}, "class"),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, "kl"),
]


def _module_inputs(kind):
    x = normal(3, 4, seed=70)
    if kind == "reg":
        return x, normal(3, 4, seed=71)
    if kind == "prob":
        return uniform(3, 4, seed=72, low=0.05, high=0.95), uniform(3, 4, seed=73)
    if kind == "logit":
        return x, uniform(3, 4, seed=74)
    if kind == "logp":
        return TF.log_softmax(torch.tensor(x), 1).numpy(), np.array([0, 1, 3], np.int64)
    if kind == "class":
        return x, np.array([2, -100, 3], np.int64)
    return TF.log_softmax(torch.tensor(x), 1).numpy(), TF.log_softmax(torch.tensor(-x), 1).numpy()


@pytest.mark.parametrize("name,kwargs,kind", MODULES)
def test_loss_modules(name, kwargs, kind):
    consts = {"w4": uniform(4, seed=75, low=0.5, high=2.0), "pw4": uniform(4, seed=76, high=3.0)}
    ek = {k: ember.tensor(consts[v]) if v in ("w4", "pw4") else v for k, v in kwargs.items()}
    tk = {k: torch.tensor(consts[v]) if v in ("w4", "pw4") else v for k, v in kwargs.items()}
    em, tm = getattr(nn, name)(**ek), getattr(tnn, name)(**tk)
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in em.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert list(em._buffers) == list(tm._buffers)
    for attr in ("reduction", "ignore_index", "label_smoothing", "beta", "delta", "log_target"):
        assert getattr(em, attr, None) == getattr(tm, attr, None), attr
    x, y = _module_inputs(kind)
    run_both(em, tm, [x, y], grad=(0,))


def test_loss_module_defaults_match_torch():
    for name in [
        "L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss",
        "NLLLoss", "CrossEntropyLoss", "KLDivLoss",
    ]:  # fmt: skip
        em, tm = getattr(nn, name)(), getattr(tnn, name)()
        assert repr(em) == repr(tm) == f"{name}()"
        assert em.state_dict() == {} and tm.state_dict() == {}
        for attr in ("reduction", "ignore_index", "label_smoothing", "beta", "delta",
                     "log_target", "weight", "pos_weight"):  # fmt: skip
            assert getattr(em, attr, "absent") == getattr(tm, attr, "absent"), (name, attr)


def test_loss_module_weight_buffer_follows_module():
    m = nn.CrossEntropyLoss(weight=ember.tensor([1.0, 2.0, 3.0]))
    tm = tnn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]))
    assert list(m.state_dict()) == list(tm.state_dict()) == ["weight"]
    m.double()
    assert m.weight.dtype is ember.float64
    m2 = nn.CrossEntropyLoss(weight=ember.zeros(3))
    m2.load_state_dict(nn.CrossEntropyLoss(weight=ember.tensor([1.0, 2.0, 3.0])).state_dict())
    assert m2.weight.tolist() == [1.0, 2.0, 3.0]
    c = copy.deepcopy(m)
    assert c.weight is not m.weight and c.weight.tolist() == m.weight.tolist()
    # a weight given as a module buffer is used in the forward
    x, t = normal(4, 3, seed=77), np.array([0, 1, 2, 1], np.int64)
    tm.double()
    run_both(m, tm, [x.astype(np.float64), t])
