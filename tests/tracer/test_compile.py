"""ember.compile end to end: API, training-step capture, guards, graph breaks, partitioning."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.ir.errors import GraphBreakError


@pytest.fixture(autouse=True)
def _fresh_cache():
    ember.compiler.reset()
    yield
    ember.compiler.reset()


def _mlp(seed=0, bn=False, dropout=0.0):
    ember.manual_seed(seed)
    # Before a BatchNorm a bias has no effect: its gradient is zero up to rounding, and Adam
    # turns that rounding noise into full-size steps, so the bias would follow the summation
    # order of whichever kernels computed it. As usual, the layer has none.
    layers = [nn.Linear(6, 16, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm1d(16))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(16, 3))
    return nn.Sequential(*layers)


def _batches(n, seed=1):
    ember.manual_seed(seed)
    return [(ember.randn(8, 6), ember.randint(0, 3, (8,))) for _ in range(n)]


def _entries(compiled):
    return ember.tracer.api._compiled_function(compiled)._entries


def _arrays(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


# ---- the API -------------------------------------------------------------------------------


def test_decorator_forms_keep_metadata():
    @ember.compile
    def f(x):
        """doc of f"""
        return x * 2 + 1

    @ember.compile(fullgraph=True)
    def g(x):
        return x.sin()

    x = ember.randn(3)
    np.testing.assert_allclose(f(x).numpy(), x.numpy() * 2 + 1)
    np.testing.assert_allclose(g(x).numpy(), np.sin(x.numpy()), rtol=1e-6)
    assert f.__name__ == "f" and f.__doc__ == "doc of f"
    assert isinstance(f.__wrapped__, type(lambda: 0))


def test_compiled_module_is_the_module():
    m = _mlp(bn=True)
    c = ember.compile(m)
    assert isinstance(c, nn.Sequential)
    assert repr(c) == repr(m)
    assert list(c.parameters()) == list(m.parameters())
    assert c.state_dict().keys() == m.state_dict().keys()
    c.eval()
    assert not m.training and not m[1].training
    c.train()
    assert m.training


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="dynamic=True"):
        ember.compile(lambda x: x, dynamic=True)
    with pytest.raises(ValueError, match="unknown options"):
        ember.compile(lambda x: x, options={"nope": 1})
    with pytest.raises(ValueError, match="partition"):
        ember.compile(lambda x: x, options={"partition": "everything"})
    with pytest.raises(Exception, match="nosuchbackend"):
        ember.compile(lambda x: x, backend="nosuchbackend")
    with pytest.raises(TypeError, match="function or a Module"):
        ember.compile(3)


def test_shape_error_inside_compiled_function_names_the_user_line():
    buf = ember.zeros(3)
    lin = nn.Linear(3, 3)
    weight = lin.weight.detach().numpy().copy()

    @ember.compile
    def f(a, b):
        buf.add_(1.0)
        lin.weight.data.mul_(2.0)
        return a @ b

    with pytest.raises(ember.EmberError, match=r"matmul.*test_compile\.py:\d+"):
        f(ember.randn(2, 3), ember.randn(4, 5))
    # nothing changed and nothing was cached; a valid call still works
    assert buf.tolist() == [0.0, 0.0, 0.0] and buf._version == 0
    np.testing.assert_array_equal(lin.weight.detach().numpy(), weight)
    assert type(lin.weight) is nn.Parameter and len(f._entries) == 0
    assert f(ember.randn(2, 3), ember.randn(3, 5)).shape == (2, 5)
    assert buf.tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(lin.weight.detach().numpy(), weight * 2)


# ---- tracing --------------------------------------------------------------------------------


def test_make_ir_records_one_node_per_primitive_with_file_and_line():
    def f(x, w):
        return (x @ w).relu().sum()

    graph = ember.make_ir(f)(ember.randn(4, 3), ember.randn(3, 2))
    text = str(graph)
    assert [n.op for n in graph.nodes] == ["matmul", "le", "where", "reduce_sum"]
    assert all(str(n.loc).startswith("test_compile.py:") for n in graph.nodes)
    assert "%x: f32[4,3]" in text and "%w: f32[3,2]" in text


def test_make_ir_shares_the_compile_path():
    m = _mlp()
    x = ember.randn(8, 6)
    graph = ember.make_ir(m)(x)
    c = ember.compile(m)
    with ember.no_grad():
        c(x)
    compiled = ember.last_graphs(c).forward

    def signature(g):
        nodes = [(n.op, str(n.output.type), sorted(n.attrs)) for n in g.nodes]
        return [v.name for v in g.inputs], nodes

    assert signature(compiled) == signature(graph)
    assert [v.name for v in graph.inputs] == [
        "input", "self_0_weight", "self_0_bias", "self_2_weight", "self_2_bias",
    ]  # fmt: skip


def test_parameters_and_closures_are_inputs_not_constants():
    w = ember.ones(3)
    lin = nn.Linear(3, 1)

    @ember.compile
    def f(x):
        return lin(x * w)

    x = ember.randn(2, 3)
    with ember.no_grad():
        first = f(x).numpy().copy()
        w.mul_(2.0)  # closure tensor changed in place
        lin.weight.add_(1.0)  # parameter changed in place
        second = f(x).numpy()
        expected = lin(x * w).numpy()
    np.testing.assert_allclose(second, expected, rtol=1e-6)
    assert not np.allclose(first, second)
    assert len(f._entries) == 1  # values are read at call time: no recompile


def test_rebinding_a_global_tensor_reads_the_new_one():
    # a tensor reached through G['_scale'] is read through that path at every call: the new
    # tensor is used without recompiling; one of another shape recompiles
    global _scale
    _scale = ember.tensor([2.0])

    @ember.compile
    def f(x):
        return x * _scale

    x = ember.ones(2)
    assert f(x).tolist() == [2.0, 2.0]
    _scale = ember.tensor([3.0])
    assert f(x).tolist() == [3.0, 3.0]
    assert len(f._entries) == 1
    _scale = ember.tensor([4.0, 5.0])
    assert f(x).tolist() == [4.0, 5.0]
    assert len(f._entries) == 2


def test_inplace_updates_are_written_back():
    @ember.compile
    def f(x, buf):
        buf.mul_(0.5).add_(x)
        x[0] = 10.0
        return buf.sum()

    x, buf = ember.ones(3), ember.full((3,), 4.0)
    x2, buf2 = ember.ones(3), ember.full((3,), 4.0)
    out = f(x, buf)
    ref = f.__wrapped__(x2, buf2)
    assert out.item() == ref.item()
    assert x.tolist() == x2.tolist() == [10.0, 1.0, 1.0]
    assert buf.tolist() == buf2.tolist()
    version = buf._version
    f(x, buf)
    assert buf._version > version


def test_an_input_returned_is_that_tensor_as_in_eager():
    # dst.copy_(src) and out= return their target: the compiled call returns the caller's
    # tensor itself, and its new value is written once (one kernel, into dst's storage)
    copy = ember.compile(lambda dst, src: dst.copy_(src))
    triad = ember.compile(lambda a, b, c: ember.add(b, c, alpha=3.0, out=a))
    same = ember.compile(lambda x, w: (x, w, x * 2))
    dst, src = ember.zeros(5), ember.arange(5.0)
    storage = dst.numpy()
    for _ in range(3):
        src.add_(1.0)
        assert copy(dst, src) is dst
        np.testing.assert_array_equal(dst.numpy(), src.numpy())
    assert dst.numpy() is storage or np.shares_memory(dst.numpy(), storage)
    assert len(copy._last.forward.outputs) == 1  # (the write-back only)
    a, b, c = ember.zeros(4), ember.arange(4.0), ember.ones(4)
    assert triad(a, b, c) is a
    np.testing.assert_array_equal(a.numpy(), b.numpy() + 3.0)
    w = ember.ones(2, requires_grad=True)
    x = ember.arange(3.0)
    rx, rw, r2 = same(x, w)
    assert rx is x and rw is w and rw.requires_grad
    np.testing.assert_array_equal(r2.numpy(), [0.0, 2.0, 4.0])


def test_a_returned_view_of_an_updated_input_keeps_its_autograd():
    def f(a, v, w):
        a.copy_(w * 2)
        return v

    w1 = ember.tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True)
    w2 = ember.tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True)
    a1, a2 = ember.zeros(4), ember.zeros(4)
    r1 = f(a1, a1[1:3], w1)
    r2 = ember.compile(f)(a2, a2[1:3], w2)
    assert r2.requires_grad == r1.requires_grad
    r1.sum().backward()
    r2.sum().backward()
    np.testing.assert_array_equal(w2.grad.numpy(), w1.grad.numpy())


def test_inplace_through_a_view_updates_the_base():
    @ember.compile
    def f(x):
        x[:, 1].mul_(3.0)
        x.view(-1)[0] = -1.0
        return x.sum(0)

    a = ember.arange(6.0).reshape(2, 3)
    b = a.clone()
    np.testing.assert_array_equal(f(a).numpy(), f.__wrapped__(b).numpy())
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_compiled_dropout_draws_eager_numbers_and_advances_the_generator():
    def f(x):
        return F.dropout(x, 0.5, training=True) + ember.rand(4)

    c = ember.compile(f)
    x = ember.ones(4, 4)
    for seed in (3, 4):
        ember.manual_seed(seed)
        eager = [f(x).numpy(), f(x).numpy()]
        ember.manual_seed(seed)
        compiled = [c(x).numpy(), c(x).numpy()]
        for a, b in zip(eager, compiled):
            np.testing.assert_array_equal(a, b)
        assert not np.array_equal(compiled[0], compiled[1])


# ---- autograd --------------------------------------------------------------------------------


def test_compiled_forward_connects_to_eager_autograd():
    m = _mlp(bn=True)
    m2 = copy.deepcopy(m)
    c = ember.compile(m2)
    x = ember.randn(8, 6, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    pre = ember.randn(8, 6)
    # an eager op before and after the compiled call: gradients flow through both
    loss = (m(x * pre) ** 2).mean()
    loss2 = (c(x2 * pre) ** 2).mean()
    loss.backward()
    loss2.backward()
    assert c(x2 * pre).grad_fn is not None
    np.testing.assert_allclose(loss2.item(), loss.item(), rtol=1e-6)
    np.testing.assert_allclose(x2.grad.numpy(), x.grad.numpy(), rtol=1e-5, atol=1e-7)
    for p, q in zip(m.parameters(), m2.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-5, atol=1e-7)
    graphs = ember.last_graphs(c)
    assert graphs.backward is not None and "saved for backward" in graphs.report
    assert graphs.saved and all(nbytes > 0 for _, _, nbytes in graphs.saved)


def test_double_backward_through_compiled_function_is_a_clear_error():
    c = ember.compile(lambda x: (x**3).sum())
    x = ember.randn(3, requires_grad=True)
    (g,) = ember.autograd.grad(c(x), x, create_graph=False)
    np.testing.assert_allclose(g.numpy(), 3 * x.detach().numpy() ** 2, rtol=1e-6)
    with pytest.raises(ember.EmberError, match="double backward"):
        ember.autograd.grad(c(x), x, create_graph=True)


@pytest.mark.parametrize("policy", ["min_cut", "save_all"])
def test_partition_policy_gives_the_same_gradients(policy):
    def f(x, w):
        h = (x @ w).tanh()
        return (h.exp() * h.sigmoid()).sum()

    ember.manual_seed(0)
    x, w = ember.randn(16, 32), ember.randn(32, 32, requires_grad=True)
    c = ember.compile(f, options={"partition": policy})
    c(x, w).backward()
    g = w.grad.numpy().copy()
    w.grad = None
    f(x, w).backward()
    np.testing.assert_allclose(g, w.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_min_cut_saves_fewer_bytes_than_save_all():
    def f(x, w):
        h = (x @ w).tanh()
        return (h.exp() * h.sigmoid() + h.cos()).sum()

    x, w = ember.randn(16, 32), ember.randn(32, 32, requires_grad=True)
    saved = {}
    for policy in ("min_cut", "save_all"):
        c = ember.compile(f, options={"partition": policy})
        c(x, w)
        saved[policy] = ember.last_graphs(c).saved_bytes
    assert saved["min_cut"] < saved["save_all"]


# ---- whole training steps ---------------------------------------------------------------------


def _train_step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: ember.optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: ember.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda ps: ember.optim.AdamW(ps, lr=0.01),
        lambda ps: ember.optim.Adam(ps, lr=0.01, amsgrad=True),
    ],
    ids=["sgd-momentum", "sgd-nesterov", "adamw", "adam-amsgrad"],
)
def test_training_step_capture_matches_eager_over_20_steps(make_opt):
    eager_model = _mlp(bn=True, dropout=0.2)
    model = _mlp(bn=True, dropout=0.2)
    eager_opt, opt = make_opt(eager_model.parameters()), make_opt(model.parameters())
    step = ember.compile(_train_step)
    data = _batches(20)
    ember.manual_seed(5)
    eager_losses = [_train_step(eager_model, eager_opt, x, y).item() for x, y in data]
    ember.manual_seed(5)
    losses = [step(model, opt, x, y).item() for x, y in data]
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-6, atol=1e-7)
    expected = _arrays(eager_model)
    for k, v in _arrays(model).items():
        np.testing.assert_allclose(v, expected[k], rtol=1e-5, atol=1e-7, err_msg=k)
    # the first step creates the optimizer state, so the second compiles the steady state;
    # from then on every step runs one cached graph
    assert len(step._entries) == 2
    graph = ember.last_graphs(step).forward
    ops = {n.op for n in graph.nodes}
    assert "matmul" in ops and "philox_uniform" in ops
    assert ember.last_graphs(step).backward is None  # forward+backward+update: one graph


def test_training_step_updates_parameters_in_place():
    model = _mlp()
    opt = ember.optim.SGD(model.parameters(), lr=0.1)
    params = list(model.parameters())
    before = [p.detach().numpy().copy() for p in params]
    step = ember.compile(_train_step)
    x, y = _batches(1)[0]
    step(model, opt, x, y)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(not np.array_equal(p.detach().numpy(), b) for p, b in zip(params, before))
    assert all(p.grad is not None for p in params)


def test_gradient_accumulation_without_zero_grad():
    model = _mlp()
    ref = copy.deepcopy(model)

    def accumulate(m, x, y):
        F.cross_entropy(m(x), y).backward()

    c = ember.compile(accumulate)
    for x, y in _batches(3):
        c(model, x, y)
        accumulate(ref, x, y)
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)


# ---- guards and recompiles ----------------------------------------------------------------------


def test_guards_recompile_on_shape_dtype_requires_grad_grad_mode_and_training(monkeypatch, capsys):
    monkeypatch.setenv("EMBER_LOGS", "recompiles")
    m = _mlp(dropout=0.5)
    c = ember.compile(m)
    c(ember.randn(4, 6))
    c(ember.randn(4, 6))
    assert len(_entries(c)) == 1
    calls = [
        (lambda: c(ember.randn(5, 6)), "argument 'input'"),
        (lambda: c(ember.randn(5, 6, requires_grad=True)), "requires_grad=True"),
        (lambda: ember.no_grad()(c)(ember.randn(5, 6)), "grad mode"),
        (lambda: (m.eval(), c(ember.randn(5, 6))), "training"),
    ]
    for call, reason in calls:
        call()
        err = capsys.readouterr().err
        assert "recompiling Sequential.forward" in err and reason in err
    assert len(_entries(c)) == 5
    f = ember.compile(lambda x: x * 2)
    f(ember.ones(2))
    f(ember.ones(2, dtype=ember.float64))
    assert "float32[2] on cpu, requires_grad=False -> float64[2]" in capsys.readouterr().err


def test_static_arguments_are_guarded_by_value():
    @ember.compile
    def f(x, n, mode="a"):
        return x * n if mode == "a" else x + n

    x = ember.ones(2)
    assert f(x, 2).tolist() == [2.0, 2.0]
    assert f(x, 3).tolist() == [3.0, 3.0]
    assert f(x, 3, mode="b").tolist() == [4.0, 4.0]
    assert f(x, 2).tolist() == [2.0, 2.0]
    assert len(f._entries) == 3


def test_recompile_limit_falls_back_to_eager_with_one_warning():
    @ember.compile
    def shapes(x):
        return x.sum()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 13):
            assert shapes(ember.ones(n)).item() == n
    messages = [str(w.message) for w in caught if "recompile" in str(w.message)]
    assert len(messages) == 1
    assert "shapes" in messages[0] and "argument 'x'" in messages[0]
    assert len(shapes._entries) == 8


def test_reset_clears_the_cache():
    f = ember.compile(lambda x: x + 1)
    f(ember.ones(2))
    assert len(f._entries) == 1
    ember.compiler.reset()
    assert len(f._entries) == 0 and ember.last_graphs(f) is None
    f(ember.ones(2))
    assert len(f._entries) == 1


def test_graph_and_guard_logs(monkeypatch, capsys):
    monkeypatch.setenv("EMBER_LOGS", "graph,guards")
    f = ember.compile(lambda x: (x * 2).exp())
    f(ember.ones(2))
    err = capsys.readouterr().err
    assert "forward graph of" in err and "= exp(" in err and "test_compile.py:" in err
    assert "guards of" in err and "argument x: float32[2]" in err


# ---- graph breaks -----------------------------------------------------------------------------


def _branchy(x):
    y = x * 2
    if y.sum() > 0:  # Python control flow on a tensor value
        return y + 1
    return y - 1


@pytest.mark.parametrize(
    "fn, reason",
    [
        (_branchy, "bool()"),
        (lambda x: x * x.sum().item(), "item()"),
        (lambda x: ember.tensor(x.tolist()), "tolist()"),
        (lambda x: x.numpy(), "numpy()"),
        (lambda x: print(x), "printing"),
        (lambda x: x[x > 0], "nonzero"),
    ],
    ids=["bool", "item", "tolist", "numpy", "print", "mask"],
)
def test_fullgraph_break_is_an_error_naming_the_line(fn, reason):
    c = ember.compile(fn, fullgraph=True)
    with pytest.raises(GraphBreakError, match=r"test_compile\.py:\d+") as info:
        c(ember.randn(4))
    assert reason in info.value.reason
    assert info.value.loc is not None and info.value.loc.file.endswith("test_compile.py")


def test_graph_break_falls_back_to_eager_with_the_right_results():
    c = ember.compile(_branchy)
    for sign in (1.0, -1.0, 1.0):
        x = ember.full((3,), sign)
        np.testing.assert_array_equal(c(x).numpy(), _branchy(x).numpy())
    assert len(c._entries) == 1 and c._entries[0].graph_break is not None


def test_graph_break_leaves_state_untouched():
    model = _mlp()
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(x, y):
        loss = _train_step(model, opt, x, y)
        print(f"{loss.item():.3f}")  # a break after the update
        return loss

    c = ember.compile(step)
    ref_model = copy.deepcopy(model)
    ref_opt = ember.optim.SGD(ref_model.parameters(), lr=0.1, momentum=0.9)
    for x, y in _batches(3):
        c(x, y)
        _train_step(ref_model, ref_opt, x, y)
    for k, v in _arrays(model).items():
        np.testing.assert_allclose(v, _arrays(ref_model)[k], rtol=1e-6, err_msg=k)


def test_explain_reports_graphs_breaks_and_guards():
    report = ember.explain(_branchy)(ember.ones(4))
    assert report.graph_count == 2 and report.break_count == 1
    loc, reason = report.breaks[0]
    assert loc.file.endswith("test_compile.py") and "bool()" in reason
    assert [n.op for n in report.graphs[0].nodes] == ["mul", "reduce_sum", "gt"]
    assert [n.op for n in report.graphs[1].nodes] == ["add"]  # the branch the values took
    assert [v.name for v in report.graphs[1].inputs] == ["mul_0"]
    text = str(report)
    assert "1 graph break" in text and "argument x: float32[4]" in text

    def several(x):
        total = x.sum().item()  # break 1
        y = x * total
        print(y)  # break 2
        return y.tolist()  # break 3

    x = ember.arange(3.0)
    report = ember.explain(several)(x)
    assert report.break_count == 3 and report.graph_count == 2
    assert [r.split(" ")[0] for _, r in report.breaks] == ["item()", "printing", "tolist()"]
    lines = [loc.line for loc, _ in report.breaks]
    assert lines == sorted(lines) and len(set(lines)) == 3
    assert x.tolist() == [0.0, 1.0, 2.0]  # explain changes nothing

    clean = ember.explain(lambda x: x.exp() * 2)(ember.randn(4))
    assert clean.graph_count == 1 and clean.break_count == 0 and clean.ops == 2


def test_compiled_function_called_inside_another_is_inlined():
    inner = ember.compile(lambda x: x.exp())
    outer = ember.compile(lambda x: inner(x) + 1)
    x = ember.randn(3)
    np.testing.assert_allclose(outer(x).numpy(), np.exp(x.numpy()) + 1, rtol=1e-6)
    assert [n.op for n in ember.last_graphs(outer).forward.nodes] == ["exp", "add"]


def test_method_decorated_with_compile():
    class Scaler:
        def __init__(self):
            self.w = ember.full((2,), 3.0)

        @ember.compile
        def apply(self, x):
            return x * self.w

    s = Scaler()
    assert s.apply(ember.ones(2)).tolist() == [3.0, 3.0]
    s.w = ember.full((2,), 5.0)
    assert s.apply(ember.ones(2)).tolist() == [5.0, 5.0]


def test_detach_and_no_grad_stop_gradients_in_the_compiled_backward():
    def f(x):
        with ember.no_grad():
            scale = x.abs().max()
        return (x / scale + x.detach() ** 2 * x + x.data.exp() * x).sum()

    c = ember.compile(f)
    x = ember.randn(5, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    f(x).backward()
    c(x2).backward()
    np.testing.assert_allclose(x2.grad.numpy(), x.grad.numpy(), rtol=1e-6)
    ops = [n.op for n in ember.last_graphs(c).forward.nodes]
    assert ops.count("stop_gradient") == 3


def test_custom_function_in_a_differentiated_forward_is_a_graph_break():
    class Double(ember.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3  # deliberately not the true derivative: it must be used

    x = ember.randn(3, requires_grad=True)
    with pytest.raises(GraphBreakError, match="custom autograd.Function Double"):
        ember.compile(lambda x: Double.apply(x).sum(), fullgraph=True)(x)
    ember.compile(lambda x: Double.apply(x).sum())(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 3.0, np.float32))

    def step(x):  # backward inside the graph: the Python backward runs while tracing
        Double.apply(x).sum().backward()

    x.grad = None
    ember.compile(step, fullgraph=True)(x)
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 3.0, np.float32))


@pytest.mark.parametrize("opt_name", ["SGD", "AdamW", "RMSprop", "Adagrad"])
def test_learning_rate_schedule_is_read_at_every_call(opt_name):
    def make(model):
        kwargs = {"momentum": 0.9} if opt_name in ("SGD", "RMSprop") else {}
        opt = getattr(ember.optim, opt_name)(model.parameters(), lr=0.05, **kwargs)
        return opt, ember.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)

    eager_model, model = _mlp(), _mlp()
    (eager_opt, eager_sched), (opt, sched) = make(eager_model), make(model)
    step = ember.compile(_train_step)
    eager_losses, losses = [], []
    for x, y in _batches(12):
        eager_losses.append(_train_step(eager_model, eager_opt, x, y).item())
        losses.append(step(model, opt, x, y).item())
        eager_sched.step()
        sched.step()
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-6, atol=1e-7)
    expected = _arrays(eager_model)
    for k, v in _arrays(model).items():
        np.testing.assert_allclose(v, expected[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # no recompile for the changing learning rate: a second entry only where the first step
    # creates the optimizer's state (Adagrad makes it in its constructor)
    assert len(step._entries) == (1 if opt_name == "Adagrad" else 2)
    assert "%lr: f64[]" in str(ember.last_graphs(step).forward)


def test_one_cycle_schedule_of_lr_and_betas_does_not_recompile():
    def make(model):
        opt = ember.optim.AdamW(model.parameters(), lr=0.01)
        return opt, ember.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=12)

    eager_model, model = _mlp(bn=True), _mlp(bn=True)
    (eager_opt, eager_sched), (opt, sched) = make(eager_model), make(model)
    step = ember.compile(_train_step)
    for x, y in _batches(12):
        expected = _train_step(eager_model, eager_opt, x, y).item()
        np.testing.assert_allclose(step(model, opt, x, y).item(), expected, rtol=1e-6)
        eager_sched.step()
        sched.step()
    assert len(step._entries) == 2
    text = str(ember.last_graphs(step).forward)
    assert "%betas0: f64[]" in text and "%betas1: f64[]" in text


def test_writes_through_data_or_under_no_grad_keep_eager_gradients():
    def f(w, x):
        w.data.mul_(0.5)  # the new values are used, the gradient still reaches w
        return (w * x).sum()

    def g(w, x):
        with ember.no_grad():
            w.clamp_(max=0.5)
        return (w * x).sum()

    for fn in (f, g):
        w, x = ember.tensor([1.0, 2.0], requires_grad=True), ember.tensor([3.0, 4.0])
        w2 = w.detach().clone().requires_grad_()
        fn(w, x).backward()
        c = ember.compile(fn)
        c(w2, x).backward()
        np.testing.assert_array_equal(w2.detach().numpy(), w.detach().numpy())
        np.testing.assert_array_equal(w2.grad.numpy(), w.grad.numpy())
        assert c._entries[0].graph_break is not None  # the backward graph cannot express it
        with pytest.raises(GraphBreakError, match="in-place update under no_grad"):
            ember.compile(fn, fullgraph=True)(w2, x)


def test_a_step_that_zeroes_its_grads_first_is_one_program():
    # zero_grad() assigns .grad without reading it, and the trace forgets what .grad was at
    # the call once it is assigned: whether the gradients exist when the step is called
    # (not before the first step, yes after it) no longer makes a second program
    model = ember.nn.Linear(3, 2)
    opt = ember.optim.Adagrad(model.parameters(), lr=0.1)

    @ember.compile
    def step(x):
        opt.zero_grad()
        loss = model(x).square().sum()
        loss.backward()
        opt.step()
        return loss

    x = ember.randn(4, 3)
    for _ in range(3):
        step(x)
    assert len(step._entries) == 1
    assert model.weight.grad is not None


def test_a_step_that_accumulates_into_existing_grads_still_guards_them():
    w = ember.randn(3, requires_grad=True)

    @ember.compile
    def accumulate(x):
        (w * x).sum().backward()  # adds to w.grad when it exists

    x = ember.ones(3)
    accumulate(x)
    accumulate(x)  # w.grad existed at this call: another program, which accumulates
    np.testing.assert_array_equal(w.grad.numpy(), np.full(3, 2.0, np.float32))
    assert len(accumulate._entries) == 2


def test_a_grad_the_step_sets_to_none_is_none_after_every_call():
    # zero_grad() assigns .grad = None without reading it; a parameter the step then gives no
    # gradient must still end each call with .grad None, as in eager
    p = ember.zeros(3, requires_grad=True)
    q = ember.zeros(3, requires_grad=True)
    opt = ember.optim.SGD([p, q], lr=0.1)
    x = ember.ones(3)

    @ember.compile
    def step(x):
        opt.zero_grad()
        loss = (p * x).sum()
        loss.backward()
        opt.step()
        return loss

    step(x)
    (q * x).sum().backward()
    assert q.grad is not None
    step(x)
    assert q.grad is None and p.grad is not None


def test_many_layers_are_fetched_once_per_epoch():
    model = ember.nn.Sequential(*[ember.nn.Linear(4, 4) for _ in range(6)])
    f = ember.compile(model)
    x = ember.randn(2, 4)
    with ember.no_grad():
        f(x)
        f(x)
        model[3].weight.mul_(0)  # values: read at every call
        np.testing.assert_allclose(f(x).numpy(), model.forward(x).numpy(), rtol=1e-6)
        model[2] = ember.nn.Linear(4, 4)  # a new layer: the module moved the epoch
        np.testing.assert_allclose(f(x).numpy(), model.forward(x).numpy(), rtol=1e-6)
        model[2].weight = ember.nn.Parameter(ember.ones(4, 4))
        np.testing.assert_allclose(f(x).numpy(), model.forward(x).numpy(), rtol=1e-6)
