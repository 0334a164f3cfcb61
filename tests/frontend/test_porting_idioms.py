"""Idioms from real PyTorch programs that ported wrongly or not at all, each run side by side
with PyTorch: the program is written once and run with both libraries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember


@pytest.mark.parametrize("lib", [ember, torch], ids=["ember", "torch"])
@pytest.mark.parametrize("op", ["mul", "rmul", "div", "matmul"])
def test_in_place_on_a_value_no_gradient_reads(lib, op):
    # h is read by no gradient of `out`, so writing it in place later is allowed
    x = lib.ones(3, requires_grad=True)
    h = x * 2
    out = {"mul": lambda: h * 0.5, "rmul": lambda: 2.0 * h, "div": lambda: h / 4,
           "matmul": lambda: h @ lib.ones(3)}[op]()  # fmt: skip
    h.add_(1)
    out.sum().backward()
    want = {"mul": 1.0, "rmul": 4.0, "div": 0.5, "matmul": 2.0}[op]
    np.testing.assert_allclose(x.grad.numpy(), [want] * 3)


def test_in_place_on_a_value_a_gradient_reads_still_raises():
    w = ember.ones(3, requires_grad=True)
    h = w * 2
    out = h * w  # the gradient of w reads h
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.sum().backward()


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_with_every_target_ignored(label_smoothing):
    results = []
    for lib in (ember, torch):
        x = lib.ones(2, 3, requires_grad=True)
        loss = lib.nn.functional.cross_entropy(x, lib.tensor([-100, -100]),
                                               label_smoothing=label_smoothing)  # fmt: skip
        loss.backward()
        results.append((loss.item(), x.grad.numpy().copy()))
    (e_loss, e_grad), (t_loss, t_grad) = results
    assert np.isnan(e_loss) and np.isnan(t_loss)
    np.testing.assert_array_equal(e_grad, t_grad)


@pytest.mark.parametrize("spec", ["", ".4f", ">10.2f", "e", ".1%"])
def test_format_of_a_0d_tensor(spec):
    assert format(ember.tensor(0.123456), spec) == format(torch.tensor(0.123456), spec)


def test_format_spec_on_a_vector_raises_like_torch():
    with pytest.raises(TypeError):
        format(torch.ones(2), ".2f")
    with pytest.raises(TypeError):
        format(ember.ones(2), ".2f")


@pytest.mark.parametrize("lib", [ember, torch], ids=["ember", "torch"])
def test_bare_no_grad_decorator(lib):
    @lib.no_grad
    def double(x):
        return x * 2

    y = double(lib.ones(2, requires_grad=True))
    assert not y.requires_grad
    assert lib.is_grad_enabled()


@pytest.mark.parametrize("p", [0, 1, 2, 3, float("inf"), -float("inf")])
def test_vector_norms(p):
    data = np.array([0.0, -1.5, 2.0, 0.25], dtype=np.float32)
    got = ember.tensor(data).norm(p=p)
    want = torch.tensor(data).norm(p=p)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_softmax_as_method_and_function():
    data = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    e, t = ember.tensor(data), torch.tensor(data)
    np.testing.assert_allclose(e.softmax(dim=-1).numpy(), t.softmax(dim=-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ember.log_softmax(e, 1).numpy(), torch.log_softmax(t, 1).numpy(),
                               rtol=1e-6)  # fmt: skip


def test_device_selection_idiom_takes_the_cpu_path():
    device = "cuda" if ember.cuda.is_available() else "cpu"
    assert device == "cpu" and ember.cuda.device_count() == 0
    assert ember.ones(2).to(device).device == "cpu"
