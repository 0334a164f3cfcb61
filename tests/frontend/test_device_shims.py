"""Device queries and flags answered as PyTorch's CPU build answers them:
``ember.accelerator``, ``Tensor.is_cuda``/``is_cpu``..., ``ember.backends.cudnn``/``mps``/
``cuda``, and ``nn.DataParallel`` running its module as it is with torch's state_dict keys."""

import numpy as np
import pytest
import torch

import ember
import ember.backends.cudnn
import ember.nn as nn


def test_accelerator_queries_match_cpu_torch():
    assert ember.accelerator.is_available() is torch.accelerator.is_available() is False
    assert ember.accelerator.current_accelerator() is None
    assert torch.accelerator.current_accelerator() is None
    assert ember.accelerator.device_count() == 0 and ember.cuda.device_count() == 0


@pytest.mark.parametrize("prop", ["is_cuda", "is_cpu", "is_xpu", "is_mps"])
def test_tensor_device_properties(prop):
    assert getattr(ember.zeros(2), prop) is getattr(torch.zeros(2), prop)


@pytest.mark.parametrize(
    "module,flags",
    [("cudnn", ["enabled", "benchmark", "deterministic", "allow_tf32"])],
)
def test_cudnn_flags_have_torch_defaults_and_are_settable(module, flags):
    e, t = getattr(ember.backends, module), getattr(torch.backends, module)
    assert e.is_available() is t.is_available() is False
    for flag in flags:
        assert getattr(e, flag) == getattr(t, flag), flag
        old = getattr(e, flag)
        setattr(e, flag, not old)
        try:
            assert getattr(ember.backends.cudnn, flag) is (not old)
        finally:
            setattr(e, flag, old)


def test_mps_and_cuda_matmul_flags():
    assert ember.backends.mps.is_available() is torch.backends.mps.is_available() is False
    assert ember.backends.mps.is_built() is torch.backends.mps.is_built()
    assert ember.backends.cuda.matmul.allow_tf32 == torch.backends.cuda.matmul.allow_tf32
    ember.backends.cuda.matmul.allow_tf32 = True
    ember.backends.cuda.matmul.allow_tf32 = False


def test_device_idiom_takes_the_cpu_path():
    device = "cuda" if ember.cuda.is_available() else "cpu"
    ember.backends.cudnn.benchmark = True
    try:
        x = ember.ones(2).to(device)
        assert x.is_cpu and str(x.device) == "cpu"
    finally:
        ember.backends.cudnn.benchmark = False


def _models():
    ember.manual_seed(0)
    e = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for (_, pe), (_, pt) in zip(e.named_parameters(), t.named_parameters()):
            pt.copy_(torch.tensor(pe.detach().numpy()))
    return e, t


def test_data_parallel_wraps_and_runs_the_module():
    e, t = _models()
    de, dt = nn.DataParallel(e, device_ids=[0, 1]), torch.nn.DataParallel(t, device_ids=None)
    assert de.module is e and dt.module is t
    assert list(de.state_dict()) == list(dt.state_dict())
    assert [n for n, _ in de.named_parameters()] == [n for n, _ in dt.named_parameters()]
    assert de.device_ids == dt.device_ids == []
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    ye, yt = de(ember.tensor(x)), dt(torch.tensor(x))
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    ye.sum().backward()
    assert e[0].weight.grad is not None
    assert repr(de) == repr(dt)


def test_data_parallel_checkpoint_round_trip():
    e, _ = _models()
    wrapped = ember.nn.parallel.DataParallel(e)
    state = wrapped.state_dict()
    fresh = nn.DataParallel(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    fresh.load_state_dict(state)
    unwrapped = {k.removeprefix("module."): v for k, v in state.items()}
    plain = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    plain.load_state_dict(unwrapped)
    np.testing.assert_array_equal(plain[2].bias.detach().numpy(), e[2].bias.detach().numpy())
