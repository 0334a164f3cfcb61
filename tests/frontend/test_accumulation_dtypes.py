"""float16/bfloat16 computed in float32 is written in the graph (``convert`` nodes), so a graph
says exactly what eager computes, and the kernels follow the IR's numerics rule."""

import ml_dtypes
import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.ir import dtypes as D
from ember.ir import ops as P
from ember.ir.numerics import widened_dtype
from ember.runtime.eager_kernels import KERNELS

LOW = {"float16": (D.float16, np.float16), "bfloat16": (D.bfloat16, ml_dtypes.bfloat16)}
ACCUMULATING = {"reduce_sum", "reduce_prod", "cumsum", "scatter_add", "matmul"}
LITERAL_OPS = {"add", "sub", "mul", "div", "pow", "remainder", "floordiv", "maximum", "minimum"}


def _exact(literal, np_type) -> bool:
    return bool(np.isnan(literal)) or float(np_type(literal)) == float(literal)


def hidden_upcasts(graph, np_type) -> list[str]:
    """Nodes whose eager result would need float32 the graph does not show (checked here
    without `ember.ir.numerics`)."""
    bad = []
    for node in graph.nodes:
        tensors = [x for x in node.inputs if not isinstance(x, bool | int | float)]
        low = [x for x in tensors if x.dtype in (D.float16, D.bfloat16)]
        if node.op in ACCUMULATING and low:
            bad.append(f"{node.op} of {low[0].type}")
        literals = [x for x in node.inputs if isinstance(x, bool | int | float)]
        if node.op in LITERAL_OPS and low and literals and not _exact(literals[0], np_type):
            bad.append(f"{node.op}({low[0].type}, {literals[0]!r})")
    return bad


def _programs():
    def sum_(x, w):
        return x.sum(1)

    def mean_var(x, w):
        return x.mean(0) + x.var(1).sum()

    def cumsum(x, w):
        return x.cumsum(1) * 0.1

    def literal(x, w):
        return (x * 0.1 + 1 / 3) ** 0.5 - x / 7.0

    def linear_softmax(x, w):
        return F.softmax(F.linear(x, w), dim=1).sum(0)

    def layer_norm(x, w):
        return F.layer_norm(x, (x.shape[1],)) @ w.t()

    def index_add(x, w):
        return x.index_add(0, ember.tensor([0, 0, 2]), x * 3.3)

    return {f.__name__: f for f in (sum_, mean_var, cumsum, literal, linear_softmax,
                                    layer_norm, index_add)}  # fmt: skip


PROGRAMS = _programs()


def _inputs(np_type, grad: bool):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 2.0, size=(3, 5)).astype(np.float32).astype(np_type)
    w = rng.uniform(-1, 1, size=(4, 5)).astype(np.float32).astype(np_type)
    return ember.tensor(x, requires_grad=grad), ember.tensor(w, requires_grad=grad)


@pytest.mark.parametrize("low", LOW)
@pytest.mark.parametrize("name", PROGRAMS)
def test_graphs_show_where_low_precision_computes_in_float32(name, low):
    dtype, np_type = LOW[low]
    fn = PROGRAMS[name]
    report = ember.explain(fn)(*_inputs(np_type, grad=False))
    graph = report.graphs[0]
    assert hidden_upcasts(graph, np_type) == []
    assert any(n.op == "convert" and n.output.dtype is D.float32 for n in graph.nodes)
    # the graph, run by the reference backend's kernels (each computing in its operands'
    # dtype), computes what eager computed, bit for bit
    x, w = _inputs(np_type, grad=False)
    eager = fn(x, w).numpy()
    out = ember.compile(fn, backend="reference")(x, w).numpy()
    assert out.dtype == eager.dtype == dtype.np
    np.testing.assert_array_equal(out.view(np.uint16), eager.view(np.uint16))


@pytest.mark.parametrize("name", ["sum_", "linear_softmax", "layer_norm", "literal"])
def test_backward_graphs_show_it_too(name):
    fn = PROGRAMS[name]

    def step(x, w):
        loss = fn(x, w).sum()
        loss.backward()
        return loss

    report = ember.explain(step)(*_inputs(np.float16, grad=True))
    for graph in report.graphs:
        assert hidden_upcasts(graph, np.float16) == []
    grads = []
    for run in (step, ember.compile(step, backend="reference")):
        x, w = _inputs(np.float16, grad=True)
        run(x, w)
        grads.append([None if t.grad is None else t.grad.numpy() for t in (x, w)])
    (eager_x, eager_w), (compiled_x, compiled_w) = grads
    np.testing.assert_array_equal(compiled_x, eager_x)
    if eager_w is None:
        assert compiled_w is None
    else:
        np.testing.assert_array_equal(compiled_w, eager_w)


def test_eager_matches_torch_bit_for_bit_where_torch_computes_in_float32():
    x = np.random.default_rng(1).normal(size=(64, 33)).astype(np.float16)
    e, t = ember.tensor(x), torch.tensor(x)
    for got, want in [
        (e * 0.1, t * 0.1),
        (e.cumsum(1), t.cumsum(1)),
        (e.sum(), t.sum()),
        (ember.ones(4096, dtype=ember.float16).sum(), torch.ones(4096, dtype=torch.float16).sum()),
    ]:
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert ember.ones(4096, dtype=ember.float16).sum().item() == 4096.0


def test_the_graph_of_a_literal_op_names_its_float32_compute():
    report = ember.explain(lambda x: x * 0.1 + 2.0)(ember.ones(3, dtype=ember.bfloat16))
    ops = [(n.op, n.output.dtype.short) for n in report.graphs[0].nodes]
    # the inexact 0.1 is applied in float32; the exact 2.0 stays in bfloat16
    assert ops == [("convert", "f32"), ("mul", "f32"), ("convert", "bf16"), ("add", "bf16")]


# ---- the rule and the kernels -------------------------------------------------------------------


class V:
    def __init__(self, dtype):
        self.shape, self.dtype = (2,), dtype


@pytest.mark.parametrize(
    "op,operands,expected",
    [
        ("reduce_sum", [V(D.float16)], D.float16),
        ("matmul", [V(D.bfloat16), V(D.bfloat16)], D.bfloat16),
        ("scatter_add", [V(D.float16), V(D.int64), V(D.float16)], D.float16),
        ("reduce_sum", [V(D.float32)], None),
        ("reduce_max", [V(D.float16)], None),
        ("mul", [V(D.float16), 0.1], D.float16),
        ("mul", [0.1, V(D.bfloat16)], D.bfloat16),
        ("mul", [V(D.float16), 0.5], None),
        ("add", [V(D.float16), 70000], D.float16),  # overflows float16
        ("maximum", [V(D.bfloat16), 0], None),
        ("pow", [V(D.float16), 1 / 3], D.float16),
        ("mul", [V(D.float32), 0.1], None),
        ("mul", [V(D.float16), V(D.float16)], None),
        ("where", [V(D.bool_), V(D.float16), 0.1], None),
        ("mul", [V(D.float16), float("nan")], None),
    ],
)
def test_widened_dtype(op, operands, expected):
    assert widened_dtype(op, operands) is expected


def test_low_precision_kernels_follow_the_ir_numerics():
    # accumulating kernels add in float32 and round once, for float16 and bfloat16 alike
    ones = np.ones(4096, dtype=np.float16)
    assert KERNELS["reduce_sum"](ones, (0,)) == 4096  # float16 alone stops counting at 2048
    a, b = np.ones((1, 3000), dtype=np.float16), np.ones((3000, 1), dtype=np.float16)
    assert KERNELS["matmul"](a, b)[0, 0] == 3000
    bf = np.ones(600, dtype=ml_dtypes.bfloat16)
    assert KERNELS["cumsum"](bf, 0, False)[-1] == 600  # bfloat16 alone stops at 256
    assert KERNELS["reduce_sum"](bf, (0,)) == 600
    idx = np.zeros(600, dtype=np.int64)
    assert KERNELS["scatter_add"](np.zeros(1, ml_dtypes.bfloat16), idx, bf, 0)[0] == 600
    # a literal takes the tensor's dtype
    assert KERNELS["mul"](np.ones(1, dtype=ml_dtypes.bfloat16), 0.1).dtype == ml_dtypes.bfloat16
    assert KERNELS["mul"](np.ones(1, dtype=np.float16), 0.1)[0] == np.float16(0.1)
    assert KERNELS["mul"](0.1, np.ones(1, dtype=ml_dtypes.bfloat16))[0] == ml_dtypes.bfloat16(0.1)


def test_primitive_calls_on_low_precision_are_widened_eagerly():
    x = ember.ones(4096, dtype=ember.float16)
    assert P.reduce_sum(x, axes=(0,)).item() == 4096.0  # converted, summed in float32
