"""Layers against PyTorch with copied weights: forward values, gradients of the input and of
every parameter, running statistics, reprs and state_dict keys."""

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
import ember.nn.functional as F

RNG = np.random.default_rng(1)


def _randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _copy_to_torch(em, tm):
    """Load the ember module's state into the torch module (the ember module is the source)."""
    state = {k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()}
    tm.load_state_dict(state)


def _compare(em, tm, x, rtol=1e-5, atol=1e-5, check_input_grad=True):
    """Forward + backward of ``(out * w).sum()`` in both; compare outputs and all gradients."""
    xe = ember.tensor(x, requires_grad=check_input_grad)
    xt = torch.tensor(x, requires_grad=check_input_grad)
    ye, yt = em(xe), tm(xt)
    assert tuple(ye.shape) == tuple(yt.shape)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    w = _randn(*yt.shape)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    if check_input_grad:
        np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol)
    pe, pt = dict(em.named_parameters()), dict(tm.named_parameters())
    assert list(pe) == list(pt)
    for name in pe:
        if pt[name].grad is None:
            assert pe[name].grad is None, name
            continue
        np.testing.assert_allclose(
            pe[name].grad.numpy(), pt[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name
        )
    return ye, yt


def _same_module_surface(em, tm):
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in em.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in em.named_buffers()] == [n for n, _ in tm.named_buffers()]


# ---- Linear / Identity ------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5), (5,), (2, 1, 3, 5)])
def test_linear_matches_torch(shape, bias):
    em = nn.Linear(5, 3, bias=bias)
    tm = torch.nn.Linear(5, 3, bias=bias)
    _copy_to_torch(em, tm)
    _same_module_surface(em, tm)
    _compare(em, tm, _randn(*shape))


def test_linear_parameter_shapes_and_errors():
    em = nn.Linear(6, 2)
    assert tuple(em.weight.shape) == (2, 6) and tuple(em.bias.shape) == (2,)
    assert em.weight.requires_grad and em.bias.requires_grad
    with pytest.raises(RuntimeError, match="linear"):
        em(ember.randn(3, 5))
    assert nn.Linear(3, 4, bias=False).bias is None


def test_linear_float64():
    em = nn.Linear(4, 3, dtype=ember.float64)
    tm = torch.nn.Linear(4, 3, dtype=torch.float64)
    _copy_to_torch(em, tm)
    _compare(em, tm, _randn(2, 4, dtype=np.float64), rtol=1e-12, atol=1e-12)


def test_functional_linear():
    x, w, b = _randn(2, 3, 4), _randn(5, 4), _randn(5)
    out = F.linear(ember.tensor(x), ember.tensor(w), ember.tensor(b))
    ref = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b))
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    out = F.linear(ember.tensor(x), ember.tensor(w))
    ref = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w))
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_identity():
    em = nn.Identity(54, unused_argument1=0.1)
    tm = torch.nn.Identity(54, unused_argument1=0.1)
    assert repr(em) == repr(tm) == "Identity()"
    x = ember.randn(3, 4)
    assert em(x) is x
    assert list(em.state_dict()) == []


# ---- Embedding -------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1])
def test_embedding_matches_torch(padding_idx):
    em = nn.Embedding(7, 4, padding_idx=padding_idx)
    tm = torch.nn.Embedding(7, 4, padding_idx=padding_idx)
    _copy_to_torch(em, tm)
    _same_module_surface(em, tm)
    idx = np.array([[0, 3, 3, 6], [1, 0, 6, 6]])
    ye, yt = em(ember.tensor(idx)), tm(torch.tensor(idx))
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy())
    w = _randn(*yt.shape)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(em.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_padding_row_zero_at_init_and_gradient_zero():
    em = nn.Embedding(5, 3, padding_idx=2)
    assert np.all(em.weight.detach().numpy()[2] == 0)
    assert np.any(em.weight.detach().numpy()[1] != 0)
    out = em(ember.tensor([2, 2, 1]))
    out.sum().backward()
    assert np.all(em.weight.grad.numpy()[2] == 0)
    assert np.all(em.weight.grad.numpy()[1] == 1)
    # a modified padding row is returned as it is (PyTorch returns weight[padding_idx])
    with ember.no_grad():
        em.weight[2] = ember.tensor([1.0, 2.0, 3.0])
    np.testing.assert_allclose(em(ember.tensor([2])).detach().numpy(), [[1.0, 2.0, 3.0]])


def test_embedding_init_is_standard_normal():
    ember.manual_seed(0)
    em = nn.Embedding(400, 50)
    w = em.weight.detach().numpy()
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1.0) < 0.02


def test_embedding_int32_indices_and_errors():
    em = nn.Embedding(4, 2)
    out = em(ember.tensor([1, 3], dtype=ember.int32))
    np.testing.assert_allclose(out.detach().numpy(), em.weight.detach().numpy()[[1, 3]])
    with pytest.raises(IndexError):
        em(ember.tensor([4]))
    with pytest.raises(IndexError):
        em(ember.tensor([-1]))
    with pytest.raises(RuntimeError):
        em(ember.tensor([1.0]))
    with pytest.raises(AssertionError):
        nn.Embedding(4, 2, padding_idx=4)
    with pytest.raises(AssertionError):
        nn.Embedding(4, 2, padding_idx=-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding_idx": 1},
        {"max_norm": 1.5},
        {"norm_type": 1.0},
        {"scale_grad_by_freq": True},
        {"sparse": True},
        {"padding_idx": 0, "max_norm": 2.0, "norm_type": 3.0},
    ],
)
def test_embedding_repr(kwargs):
    assert repr(nn.Embedding(10, 3, **kwargs)) == repr(torch.nn.Embedding(10, 3, **kwargs))


def test_embedding_from_pretrained():
    w = _randn(5, 3)
    em = nn.Embedding.from_pretrained(ember.tensor(w))
    tm = torch.nn.Embedding.from_pretrained(torch.tensor(w))
    assert repr(em) == repr(tm)
    assert not em.weight.requires_grad
    idx = [[4, 0], [1, 1]]
    np.testing.assert_allclose(em(ember.tensor(idx)).numpy(), tm(torch.tensor(idx)).numpy())
    em2 = nn.Embedding.from_pretrained(ember.tensor(w), freeze=False, padding_idx=0)
    assert em2.weight.requires_grad
    # the padding row is not zeroed for pretrained weights (as in PyTorch)
    np.testing.assert_allclose(em2.weight.detach().numpy(), w)
    with pytest.raises(RuntimeError):
        nn.Embedding.from_pretrained(ember.tensor(w[0]))


def test_embedding_max_norm_renormalizes_in_place_like_torch():
    w = _randn(6, 4) * 3
    em = nn.Embedding.from_pretrained(ember.tensor(w), freeze=False, max_norm=1.0)
    tm = torch.nn.Embedding.from_pretrained(torch.tensor(w), freeze=False, max_norm=1.0)
    idx = [[0, 2, 2], [5, 0, 1]]
    ye, yt = em(ember.tensor(idx)), tm(torch.tensor(idx))
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        em.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-5, atol=1e-6
    )
    ye.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(em.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-5)


def test_embedding_scale_grad_by_freq():
    w = _randn(5, 3)
    em = nn.Embedding.from_pretrained(ember.tensor(w), freeze=False, scale_grad_by_freq=True)
    tm = torch.nn.Embedding.from_pretrained(torch.tensor(w), freeze=False, scale_grad_by_freq=True)
    idx = [[0, 2, 2, 2], [4, 0, 1, 2]]
    g = _randn(2, 4, 3)
    ye, yt = em(ember.tensor(idx)), tm(torch.tensor(idx))
    np.testing.assert_array_equal(ye.detach().numpy(), yt.detach().numpy())
    (ye * ember.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(em.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-6)


def test_one_hot():
    x = np.array([[0, 3], [2, 1]])
    for n in (-1, 5):
        out = F.one_hot(ember.tensor(x), n)
        ref = torch.nn.functional.one_hot(torch.tensor(x), n)
        assert out.dtype == ember.int64
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
    with pytest.raises(RuntimeError):  # PyTorch: RuntimeError, not IndexError
        F.one_hot(ember.tensor([0, 3]), 3)
    with pytest.raises(RuntimeError):
        F.one_hot(ember.tensor([0.0, 1.0]))


# ---- Dropout ---------------------------------------------------------------------------------


def test_dropout_train_eval_and_repr():
    for args in [(), (0.2,), (0.3, True)]:
        assert repr(nn.Dropout(*args)) == repr(torch.nn.Dropout(*args))
    m = nn.Dropout(0.5)
    x = ember.ones(200, 10)
    y = m(x)
    assert 0 < float((y == 0).float().mean()) < 1
    m.eval()
    assert m(x) is x
    m.train()
    assert float((m(x) == 0).float().mean()) > 0


def test_dropout_p_edge_cases():
    x = ember.randn(4, 5)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.7, training=False) is x
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y.numpy(), np.zeros((4, 5), dtype=np.float32))
    for p in (-0.1, 1.1):
        with pytest.raises(ValueError):
            F.dropout(x, p)
        with pytest.raises(ValueError):
            nn.Dropout(p)
        with pytest.raises(ValueError):
            torch.nn.Dropout(p)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    ember.manual_seed(123)
    x = ember.ones(100_000)
    y = F.dropout(x, p).numpy()
    kept = y != 0
    # fraction dropped within 5 standard deviations of p; kept values scaled by exactly 1/(1-p)
    sd = np.sqrt(p * (1 - p) / y.size)
    assert abs((1 - kept.mean()) - p) < 5 * sd
    np.testing.assert_allclose(y[kept], np.float32(1.0) / np.float32(1 - p), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 5 * sd / (1 - p)


def test_dropout_same_seed_same_mask_and_gradient():
    ember.manual_seed(7)
    a = F.dropout(ember.ones(50, 20), 0.4).numpy()
    b = F.dropout(ember.ones(50, 20), 0.4).numpy()
    ember.manual_seed(7)
    c = F.dropout(ember.ones(50, 20), 0.4).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)
    # the gradient is the mask times 1/(1-p)
    ember.manual_seed(3)
    x = ember.tensor(_randn(30, 4), requires_grad=True)
    y = F.dropout(x, 0.25)
    g = _randn(30, 4)
    (y * ember.tensor(g)).sum().backward()
    mask = y.detach().numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), g * mask / np.float32(0.75), rtol=1e-6)
    np.testing.assert_allclose(
        y.detach().numpy(), x.detach().numpy() * mask / np.float32(0.75), rtol=1e-6
    )


def test_dropout_inplace():
    ember.manual_seed(5)
    x = ember.ones(10, 10)
    out = F.dropout(x, 0.5, inplace=True)
    np.testing.assert_array_equal(x.numpy(), out.numpy())
    assert set(np.unique(x.numpy())) <= {0.0, 2.0}
    m = nn.Dropout(0.5, inplace=True)
    x = ember.ones(10, 10)
    m(x)
    assert set(np.unique(x.numpy())) <= {0.0, 2.0}


# ---- BatchNorm -------------------------------------------------------------------------------


def _bn_steps(em, tm, shapes, rtol=1e-5, atol=1e-5):
    """Train both for several steps (comparing outputs, grads, running stats), then eval."""
    for step, shape in enumerate(shapes):
        x = _randn(*shape) * 2 + 0.5 * step
        em.zero_grad()
        tm.zero_grad()
        _compare(em, tm, x, rtol=rtol, atol=atol)
        for name, tb in tm.named_buffers():
            eb = dict(em.named_buffers())[name]
            assert eb.dtype == ember.int64 if name == "num_batches_tracked" else True
            np.testing.assert_allclose(eb.numpy(), tb.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    em.eval()
    tm.eval()
    em.zero_grad()
    tm.zero_grad()
    _compare(em, tm, _randn(*shapes[0]), rtol=rtol, atol=atol)


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("shape", [(6, 4), (5, 4, 3)])
def test_batchnorm1d_matches_torch(shape, momentum):
    em = nn.BatchNorm1d(4, momentum=momentum)
    tm = torch.nn.BatchNorm1d(4, momentum=momentum)
    with ember.no_grad():
        em.weight.copy_(ember.tensor(_randn(4)))
        em.bias.copy_(ember.tensor(_randn(4)))
    _copy_to_torch(em, tm)
    _same_module_surface(em, tm)
    _bn_steps(em, tm, [shape] * 4)
    assert int(em.num_batches_tracked) == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": None},
        {"affine": False},
        {"track_running_stats": False},
        {"affine": False, "track_running_stats": False},
        {"eps": 1e-3},
        {"bias": False},
    ],
)
def test_batchnorm2d_matches_torch(kwargs):
    em = nn.BatchNorm2d(3, **kwargs)
    tm = torch.nn.BatchNorm2d(3, **kwargs)
    with ember.no_grad():
        for p in em.parameters():
            p.copy_(ember.tensor(_randn(3)))
    _copy_to_torch(em, tm)
    _same_module_surface(em, tm)
    _bn_steps(em, tm, [(2, 3, 4, 5), (3, 3, 2, 2), (2, 3, 4, 5)])


def test_batchnorm_float64_running_stats_exact():
    em = nn.BatchNorm1d(3, dtype=ember.float64)
    tm = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    for _ in range(5):
        x = _randn(8, 3, dtype=np.float64) * 3 + 1
        em(ember.tensor(x))
        tm(torch.tensor(x))
    np.testing.assert_allclose(em.running_mean.numpy(), tm.running_mean.numpy(), rtol=1e-13)
    np.testing.assert_allclose(em.running_var.numpy(), tm.running_var.numpy(), rtol=1e-13)


def test_batchnorm_errors_and_state_dict_roundtrip():
    with pytest.raises(ValueError, match="2D or 3D"):
        nn.BatchNorm1d(3)(ember.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="4D"):
        nn.BatchNorm2d(3)(ember.randn(2, 3, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(ember.randn(1, 3))
    with pytest.raises(RuntimeError):
        nn.BatchNorm1d(3)(ember.randn(4, 5))
    # eval mode accepts a batch of one
    m = nn.BatchNorm1d(3).eval()
    m(ember.randn(1, 3))
    # a torch state_dict loads into ember, num_batches_tracked included
    tm = torch.nn.BatchNorm2d(2)
    tm(torch.randn(4, 2, 3, 3))
    em = nn.BatchNorm2d(2)
    em.load_state_dict({k: ember.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    assert int(em.num_batches_tracked) == 1
    np.testing.assert_allclose(em.running_var.numpy(), tm.running_var.numpy())


def test_functional_batch_norm_updates_running_stats_in_place():
    x = _randn(6, 3, 2)
    rm, rv = ember.zeros(3), ember.ones(3)
    trm, trv = torch.zeros(3), torch.ones(3)
    rm_storage = rm.numpy()
    out = F.batch_norm(ember.tensor(x), rm, rv, training=True, momentum=0.2)
    ref = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.2)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-6)
    np.testing.assert_allclose(rm_storage, trm.numpy(), rtol=1e-6, atol=1e-7)
    # eval uses the running statistics
    out = F.batch_norm(ember.tensor(x), rm, rv, training=False)
    ref = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, training=False)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


# ---- LayerNorm / GroupNorm -------------------------------------------------------------------


@pytest.mark.parametrize(
    "normalized_shape,shape",
    [
        (5, (3, 5)),
        ((5,), (2, 3, 5)),
        ((3, 5), (2, 3, 5)),
        ([4, 3, 5], (4, 3, 5)),
    ],
)
@pytest.mark.parametrize(
    "kwargs", [{}, {"elementwise_affine": False}, {"bias": False}, {"eps": 1e-3}]
)
def test_layernorm_matches_torch(normalized_shape, shape, kwargs):
    em = nn.LayerNorm(normalized_shape, **kwargs)
    tm = torch.nn.LayerNorm(normalized_shape, **kwargs)
    with ember.no_grad():
        for p in em.parameters():
            p.copy_(ember.tensor(_randn(*p.shape)))
    _copy_to_torch(em, tm)
    _same_module_surface(em, tm)
    _compare(em, tm, _randn(*shape) * 3 + 1)


def test_layer_norm_shape_error():
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(ember.randn(2, 3), (4,))
    with pytest.raises(RuntimeError):
        torch.nn.functional.layer_norm(torch.randn(2, 3), (4,))


@pytest.mark.parametrize(
    "groups,channels,shape",
    [
        (2, 4, (3, 4, 3)),
        (3, 6, (2, 6, 5)),
        (1, 4, (2, 4, 3, 3)),
        (4, 4, (2, 4, 2, 3)),
    ],
)
@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"bias": False}, {"eps": 0.1}])
def test_groupnorm_matches_torch(groups, channels, shape, kwargs):
    em = nn.GroupNorm(groups, channels, **kwargs)
    tm = torch.nn.GroupNorm(groups, channels, **kwargs)
    with ember.no_grad():
        for p in em.parameters():
            p.copy_(ember.tensor(_randn(*p.shape)))
    _copy_to_torch(em, tm)
    _same_module_surface(em, tm)
    _compare(em, tm, _randn(*shape) * 2 - 1)


def test_groupnorm_errors():
    with pytest.raises(ValueError):
        nn.GroupNorm(3, 4)
    with pytest.raises(RuntimeError, match="divisible"):
        F.group_norm(ember.randn(2, 6, 3), 4)


# ---- Flatten / Unflatten ---------------------------------------------------------------------


@pytest.mark.parametrize("args", [(), (0,), (1, 2), (2, -1), (0, -2)])
def test_flatten_matches_torch(args):
    em, tm = nn.Flatten(*args), torch.nn.Flatten(*args)
    _same_module_surface(em, tm)
    _compare(em, tm, _randn(2, 3, 4, 5))


@pytest.mark.parametrize("dim,sizes", [(1, (2, 6)), (-1, (5, 1)), (1, [3, 4]), (0, (1, 2))])
def test_unflatten_matches_torch(dim, sizes):
    em, tm = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    _same_module_surface(em, tm)
    _compare(em, tm, _randn(2, 12, 5))


def test_unflatten_rejects_bad_size():
    with pytest.raises(TypeError):
        nn.Unflatten(1, 5)


# ---- a small model end to end ----------------------------------------------------------------


def test_small_model_state_dict_and_gradients():
    def build(mod):
        return mod.Sequential(
            mod.Flatten(),
            mod.Linear(12, 8),
            mod.BatchNorm1d(8),
            mod.GELU(),
            mod.Dropout(0.0),
            mod.Linear(8, 6),
            mod.LayerNorm(6),
            mod.SiLU(),
            mod.Unflatten(1, (2, 3)),
            mod.GroupNorm(2, 2),
            mod.Flatten(),
            mod.Linear(6, 3),
            mod.LogSoftmax(dim=1),
        )

    em, tm = build(nn), build(torch.nn)
    _copy_to_torch(em, tm)
    _same_module_surface(em, tm)
    for _ in range(2):
        em.zero_grad()
        tm.zero_grad()
        _compare(em, tm, _randn(5, 3, 4), rtol=1e-4, atol=1e-5)
