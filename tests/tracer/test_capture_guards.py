"""Guards as built: gating, check mode, container attributes, index checks in graphs, and the
cost of a compiled module's check (counted in guards, not timed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.frontend import trace_state
from ember.ir.errors import GraphBreakError
from ember.tracer.api import _MODULE_CALLS
from ember.tracer.guards import Guards


@pytest.fixture(autouse=True)
def _fresh_cache():
    ember.compiler.reset()
    yield
    ember.compiler.config.check_guards = False
    ember.compiler.reset()


def _entries(fn):
    return (_MODULE_CALLS[fn] if isinstance(fn, nn.Module) else fn)._entries


def _ungated_guards(layers: int) -> list[str]:
    m = nn.Sequential(*[nn.Linear(3, 3) for _ in range(layers)])
    c = ember.compile(m)
    with ember.no_grad():
        c(ember.randn(2, 3))
    (entry,) = _entries(c)
    assert len(entry.guards.guards) > 4 * layers  # (the gated ones do grow)
    return sorted(g.source.name for g in entry.guards.guards if not g.gated)


@pytest.mark.parametrize("layers", [8, 32])
def test_a_compiled_modules_per_call_guards_do_not_grow_with_its_layers(layers):
    # what a call checks while trace_state.EPOCH does not move: the module's identity and
    # one guard per distinct class attribute read (Sequential.forward, Linear.forward), not
    # one per layer
    assert _ungated_guards(layers) == _ungated_guards(1)
    assert len(_ungated_guards(1)) == 3


def test_gated_guards_are_checked_again_after_the_epoch_moves():
    m = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    c = ember.compile(m)
    x = ember.randn(2, 3)
    with ember.no_grad():
        c(x)
        epoch = trace_state.EPOCH[0]
        c(x)
        assert trace_state.EPOCH[0] == epoch  # a cached call moves nothing
        m[1] = nn.Tanh()  # a Members change: the epoch moves, the swapped layer is seen
        assert trace_state.EPOCH[0] != epoch
        np.testing.assert_allclose(c(x).numpy(), m(x).numpy(), rtol=1e-6)  # (tanh: polynomial)
    assert len(_entries(c)) == 2


def test_a_key_added_to_a_dict_attribute_of_a_module_recompiles():
    # a plain dict on a module changes without moving the epoch: its guards are not gated
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.cfg = {"scale": 2.0}

        def forward(self, x):
            return x * self.cfg.get("bias", 0.0) + x * self.cfg["scale"]

    m = Net()
    c = ember.compile(m)
    x = ember.ones(2)
    assert c(x).tolist() == [2.0, 2.0]
    m.cfg["bias"] = 1.0
    assert c(x).tolist() == [3.0, 3.0]


def test_a_hook_registered_after_the_first_call_runs():
    m = nn.Linear(2, 2)
    c = ember.compile(m)
    x = ember.randn(3, 2)
    with ember.no_grad():
        c(x)
        m.register_forward_hook(lambda mod, args, out: out * 0)
        assert c(x).abs().sum().item() == 0.0


def test_check_mode_finds_a_missing_guard():
    # drop an entry's guards by hand: the stale entry is then hit after the global changes,
    # and check mode, tracing the call again, reports the different program
    ember.compiler.config.check_guards = True
    scale = {"k": 2.0}

    @ember.compile
    def f(x):
        return x * scale["k"]

    x = ember.ones(2)
    f(x)
    f(x)  # a hit that traces to the same program: fine
    (entry,) = _entries(f)
    entry.guards = Guards(entry.guards.spec, entry.guards.labels, [])
    scale["k"] = 3.0
    with pytest.raises(ember.compiler.GuardCheckError, match="a guard is missing"):
        f(x)


def test_check_mode_is_silent_on_a_training_step_with_a_scheduler(monkeypatch):
    monkeypatch.setenv("EMBER_CHECK_GUARDS", "1")
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    opt = ember.optim.Adam(model.parameters(), lr=0.01)
    sch = ember.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    @ember.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        sch.step()
        return loss

    for _ in range(6):
        step(ember.randn(3, 4), ember.randn(3, 2))
    assert sch.last_epoch == 6
    assert len(step._entries) == 2  # the first step creates Adam's state


@pytest.mark.parametrize(
    "fn,args",
    [
        (lambda x, t: F.cross_entropy(x, t), (np.zeros((2, 3)), [0, -1])),
        (lambda x, t: F.nll_loss(x, t), (np.zeros((2, 3)), [0, 3])),
        (lambda w, i: F.embedding(i, w), (np.zeros((4, 2)), [1, 4])),
        (lambda w, i: F.one_hot(i, 3).to(w.dtype) * w[0, 0], (np.zeros((4, 2)), [-2])),
    ],
    ids=["cross_entropy_negative", "nll_too_large", "embedding", "one_hot_negative"],
)
def test_index_checks_raise_in_compiled_code_as_in_eager(fn, args):
    arr, idx = args
    x = ember.tensor(arr, dtype=ember.float64)
    i = ember.tensor(idx)
    with pytest.raises((IndexError, RuntimeError)) as eager:  # (one_hot: RuntimeError, as torch)
        fn(x, i)
    with pytest.raises((IndexError, RuntimeError)) as compiled:
        ember.compile(fn)(x, i)
    assert type(compiled.value) is type(eager.value)
    assert str(eager.value).split(" at ")[0].split(": ", 1)[1] in str(compiled.value)


def test_index_checks_pass_valid_indices_and_ignore_index():
    f = ember.compile(lambda x, t: F.cross_entropy(x, t, ignore_index=-100))
    x = ember.randn(3, 4, dtype=ember.float64)
    t = ember.tensor([0, -100, 3])
    want = torch.nn.functional.cross_entropy(
        torch.tensor(x.numpy()), torch.tensor([0, -100, 3]), ignore_index=-100
    )
    np.testing.assert_allclose(f(x, t).item(), want.item(), rtol=1e-12)


_SCALE = 2.0
_OFFSET = 0.5


def _factor():
    return _SCALE * 1.5  # a pure-Python helper: no primitive runs under it


class _Cfg:
    def __init__(self):
        self.k = 1.0

    def get(self):
        return self.k + _OFFSET


def test_globals_read_by_pure_python_helpers_and_methods_are_guarded():
    global _SCALE, _OFFSET
    cfg = _Cfg()

    @ember.compile
    def f(x):
        return x * _factor() + cfg.get()

    x = ember.ones(2)
    try:
        assert f(x).tolist() == [4.5, 4.5]
        _SCALE = 4.0
        assert f(x).tolist() == [7.5, 7.5]
        _OFFSET = 1.5
        assert f(x).tolist() == [8.5, 8.5]
        cfg.k = 3.0
        assert f(x).tolist() == [10.5, 10.5]
    finally:
        _SCALE, _OFFSET = 2.0, 0.5


def test_the_callers_globals_are_not_guarded():
    # the stack walk stops at the traced function: rebinding a global of the caller's module
    # that the function never reads does not recompile
    global _SCALE
    f = ember.compile(lambda x: x * 2)
    x = ember.ones(2)
    f(x)
    _SCALE = 3.0
    try:
        f(x)
    finally:
        _SCALE = 2.0
    assert len(_entries(f)) == 1


def test_binary_cross_entropy_range_check_holds_in_compiled_code():
    f = ember.compile(lambda x, y: F.binary_cross_entropy(x, y))
    y = ember.tensor([1.0, 0.0])
    assert f(ember.tensor([0.5, 1.0]), y).item() > 0
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        f(ember.tensor([1.5, 0.5]), y)
    with pytest.raises(RuntimeError):
        torch.nn.functional.binary_cross_entropy(torch.tensor([1.5, 0.5]), torch.tensor([1.0, 0.0]))


def test_class_attributes_properties_and_numpy_attributes_are_guarded():
    # values found on a module's class (a class attribute, a property reading a global) and
    # numpy arrays (changed in place) are not gated by the module epoch
    cfg = {"scale": 1.0}

    class Net(nn.Module):
        factor = 2.0

        def __init__(self):
            super().__init__()
            self.table = np.array([1.0, 2.0, 3.0])

        @property
        def scale(self):
            return cfg["scale"]

        def forward(self, x):
            return x * self.factor * self.scale * ember.tensor(self.table)

    m = Net()
    c = ember.compile(m)
    x = ember.ones(3)
    c(x)
    c(x)
    Net.factor = 3.0
    cfg["scale"] = 5.0
    m.table[0] = 10.0
    np.testing.assert_allclose(c(x).numpy(), m(x).numpy())
    assert c(x).tolist() == [150.0, 30.0, 45.0]


def test_negative_zero_and_tuple_element_types_are_told_apart():
    f = ember.compile(lambda x, s: x / s)
    x = ember.ones(2)
    assert f(x, 0.0).tolist() == [float("inf")] * 2
    assert f(x, -0.0).tolist() == [float("-inf")] * 2
    scale = [(2,)]
    g = ember.compile(lambda x: x * scale[0][0])
    xi = ember.ones(2, dtype=ember.int64)
    assert g(xi).dtype == ember.int64
    scale[0] = (2.0,)
    assert g(xi).dtype == ember.float32


def test_enum_dict_keys_compile():
    import enum

    class Mode(enum.IntEnum):
        TRAIN = 0
        EVAL = 1

    table = {Mode.TRAIN: 2.0, Mode.EVAL: 1.0}
    f = ember.compile(lambda x: x * table[Mode.TRAIN])
    assert f(ember.ones(2)).tolist() == [2.0, 2.0]
    table[Mode.TRAIN] = 3.0
    assert f(ember.ones(2)).tolist() == [3.0, 3.0]


def test_a_break_puts_a_modules_dicts_back_in_order_and_usable():
    class Lazy(nn.Module):
        def forward(self, x):
            if "stat" not in self._buffers:
                self.register_buffer("stat", ember.zeros(1))
            return float((x * 2).sum())

    m = Lazy()
    with pytest.raises(GraphBreakError):
        ember.compile(m, fullgraph=True)(ember.ones(2))
    assert list(m._buffers) == [] and list(m.state_dict()) == []
    assert ember.compile(m)(ember.ones(2)) == 4.0  # falls back to eager, which registers it
    assert list(m._buffers) == ["stat"]


def test_a_stored_tensor_keeps_its_autograd_history_as_in_eager():
    # a result stored in Python state is the very tensor returned (connected to autograd);
    # a stored tensor that requires grad and is not returned sends the call to eager
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            y = self.fc(x)
            self.last = y
            self.hidden = y * 2
            return y

    m = Net()
    c = ember.compile(m)
    x = ember.randn(4, 3)
    out = c(x)
    assert m.hidden.requires_grad and m.hidden.grad_fn is not None
    assert m.last.requires_grad
    out.sum().backward()
    assert m.fc.weight.grad is not None

    state = {}

    def f(w):
        y = w * 3
        state["y"] = y
        return y

    w = ember.ones(2, requires_grad=True)
    y = ember.compile(f)(w)
    assert state["y"] is y and y.grad_fn is not None


_A = ember.ones(2)
_B = ember.ones(2)


def test_tensors_read_by_path_that_come_to_share_storage_recompile():
    # the trace made one input per distinct tensor: a global rebound to another global's
    # tensor, or passed as the argument, is another program
    global _B
    f = ember.compile(lambda x: (_A.add_(x), _B * 2)[1])
    g = lambda x: (_A.add_(x), _B * 2)[1]  # noqa: E731
    f(ember.ones(2))
    f(ember.ones(2))
    try:
        _B = _A
        want = _A.numpy() * 0 + (_A.numpy() + 1) * 2
        assert f(ember.ones(2)).tolist() == want.tolist()
        assert g(ember.ones(2)).tolist() == ((_A.numpy()) * 2).tolist()
    finally:
        _B = ember.ones(2)

    w = ember.ones(3)

    def h(x):
        w.mul_(2.0)
        return x + 1

    c = ember.compile(h)
    c(ember.zeros(3))
    c(ember.zeros(3))
    assert c(w).tolist() == [9.0, 9.0, 9.0]  # w was 8 after its doubling: eager gives 9
