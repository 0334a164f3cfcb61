"""The fast call path of compiled pure functions: it is taken when it may be, and every
condition it checks sends a call to the slow path that finds or compiles the right entry, so
results always equal PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from ember.tracer.api import _MODULE_CALLS

SCALE = 2.0


@pytest.fixture(autouse=True)
def _fresh():
    ember.compiler.reset()
    yield
    ember.compiler.reset()


def _t(x: ember.Tensor) -> torch.Tensor:
    return torch.from_numpy(x.detach().numpy().copy())


def _close(got, want) -> None:
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_a_pure_function_takes_the_fast_path_and_matches_torch():
    f = ember.compile(lambda x, y: (x * y + 1).tanh())
    x, y = ember.randn(4, 5), ember.randn(4, 5)
    _close(f(x, y), (_t(x) * _t(y) + 1).tanh())
    x2 = ember.randn(4, 5)
    _close(f(x2, y), (_t(x2) * _t(y) + 1).tanh())  # a hit: it makes the fast path
    fast, taken = f._fast, []
    assert fast is not None
    f._fast = lambda args: taken.append(1) or fast(args)
    x3 = ember.randn(4, 5)
    _close(f(x3, y), (_t(x3) * _t(y) + 1).tanh())
    assert taken == [1] and len(f._entries) == 1


def test_a_new_shape_dtype_or_layout_goes_to_the_slow_path():
    f = ember.compile(lambda x: x * 3 - 1)
    x = ember.randn(3, 4)
    f(x)
    f(x)
    for other in (ember.randn(5, 2), ember.randn(3, 4).double(), ember.randn(4, 3).t(),
                  ember.arange(12).reshape(3, 4)):  # fmt: skip
        _close(f(other), _t(other) * 3 - 1)
    _close(f(x), _t(x) * 3 - 1)
    assert len(f._entries) == 5


def test_a_changed_global_recompiles_on_the_fast_path():
    global SCALE

    def g(x):
        return x * SCALE

    f = ember.compile(g)
    x = ember.randn(6)
    f(x)
    _close(f(x), _t(x) * 2.0)
    SCALE = 5.0
    try:
        _close(f(x), _t(x) * 5.0)
    finally:
        SCALE = 2.0
    _close(f(x), _t(x) * 2.0)


def test_aliasing_views_and_grad_leave_the_fast_path():
    f = ember.compile(lambda x, y: x * 2 + y)
    x, y = ember.randn(8), ember.randn(8)
    f(x, y)
    _close(f(x, y), _t(x) * 2 + _t(y))
    _close(f(x, x), _t(x) * 3)  # the same tensor twice: another program
    base = ember.randn(16)
    _close(f(base[:8], base[8:]), _t(base)[:8] * 2 + _t(base)[8:])  # views of one storage
    w = ember.randn(8, requires_grad=True)
    out = f(w, y)
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full(8, 2.0, np.float32))
    with ember.no_grad():
        _close(f(x, y), _t(x) * 2 + _t(y))


def test_results_that_are_inputs_or_structures_are_rebuilt():
    f = ember.compile(lambda x, y: (x, {"s": x + y, "n": 3}, [y * 2]))
    x, y = ember.randn(3), ember.randn(3)
    for _ in range(3):
        a, d, (c,) = f(x, y)
        assert a is x and d["n"] == 3
        _close(d["s"], _t(x) + _t(y))
        _close(c, _t(y) * 2)
    assert f._fast is not None


def test_a_module_attribute_change_is_seen():
    lin = ember.nn.Linear(4, 3)
    f = ember.compile(lambda x: lin(x).relu())
    x = ember.randn(2, 4)
    f(x)
    with ember.no_grad():
        lin.weight.mul_(-1)
    want = torch.relu(_t(x) @ _t(lin.weight).T + _t(lin.bias))
    _close(f(x), want)
    lin.bias = ember.nn.Parameter(ember.zeros(3))
    _close(f(x), torch.relu(_t(x) @ _t(lin.weight).T))


def test_check_mode_turns_the_fast_path_off(monkeypatch):
    f = ember.compile(lambda x: x + 1)
    x = ember.randn(3)
    f(x)
    f(x)
    assert f._fast is not None
    monkeypatch.setattr(ember.compiler.config, "check_guards", True)
    calls = []
    original = type(f)._check_entry

    def spy(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(type(f), "_check_entry", spy)
    f(x)
    assert calls == [1]


def test_the_same_tensor_twice_is_another_call():
    def f(a, b):
        return a + 1 if a is b else a - b

    g = ember.compile(f)
    x, y = ember.randn(3), ember.randn(3)
    g(x, y)
    g(x, y)
    assert g._fast is not None
    _close(g(x, x), _t(x) + 1)


def test_a_module_called_without_grad_takes_the_fast_path():
    model = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU(), ember.nn.Linear(8, 3))
    f = ember.compile(model)
    x = ember.randn(5, 4)

    def want():
        h = torch.relu(_t(x) @ _t(model[0].weight).T + _t(model[0].bias))
        return h @ _t(model[2].weight).T + _t(model[2].bias)

    call = _MODULE_CALLS[f]  # (the compiled function behind the module's __call__)
    with ember.no_grad():
        f(x)
        f(x)
        assert call._fast is not None
        fast, taken = call._fast, []
        call._fast = lambda args: taken.append(1) or fast(args)
        _close(f(x), want())
        model[0].weight.mul_(-1)  # new values: read at every call
        _close(f(x), want())
        model[2] = ember.nn.Linear(8, 3)  # a new layer: the epoch moves, its tensors are read
        _close(f(x), want())
        assert len(taken) == 3
    _close(f(x), want())  # with grad: another entry, with a backward
