"""Compile work grows linearly with graph size (`ember.ir.work.WORK`, no timing).

The passes count the nodes and values they visit. Compiling a graph four times as large must
cost at most about four times the visits (``RATIO``), in total and pass by pass, for a chain of
elementwise ops, for a recurrent network whose backward saves a value per step, and for the
whole `ember.compile` pipeline (trace, autodiff, min-cut partition) of a chain. A 10k-node
joint graph is differentiated, partitioned and run, and its gradient checked against PyTorch.
"""

from __future__ import annotations

import gc
import sys

import numpy as np
import pytest
import torch

import ember
from ember.codegen.reference import run_graph
from ember.ir import Graph, GraphBuilder, GraphError, TensorType, format_graph, verify
from ember.ir import dtypes as D
from ember.ir import ops as P
from ember.ir.work import WORK
from ember.passes.autodiff import build_joint
from ember.passes.partition import partition
from ember.passes.simplify import simplify

F64 = D.float64
RATIO = 4.5  # visits(4n) / visits(n) may not exceed this
SMALL = 250


def chain_graph(n: int) -> Graph:
    """``x -> (x * 1.0001).sin()`` n // 2 times, then a sum: n + 1 nodes."""
    graph = Graph("chain")
    x = graph.add_input(TensorType((4, 4), F64), "x")
    with GraphBuilder(graph):
        for _ in range(n // 2):
            x = P.sin(P.mul(x, 1.0001))
        graph.set_outputs([P.reduce_sum(x, axes=(0, 1))])
    return graph


def rnn_graph(steps: int) -> Graph:
    """``h = tanh(h @ w + x_t)`` over ``steps`` inputs, loss ``sum(h * h)``: the backward
    needs every step's matmul, which min_cut never recomputes."""
    graph = Graph("rnn")
    w = graph.add_input(TensorType((3, 3), F64), "w")
    h = graph.add_input(TensorType((2, 3), F64), "h0")
    xs = [graph.add_input(TensorType((2, 3), F64), f"x{t}") for t in range(steps)]
    with GraphBuilder(graph):
        for x in xs:
            h = P.tanh(P.add(P.matmul(h, w), x))
        graph.set_outputs([P.reduce_sum(P.mul(h, h), axes=(0, 1))])
    return graph


def compile_visits(graph: Graph, policy: str = "min_cut") -> dict[str, int]:
    """The visits of verifying, differentiating (w.r.t. input 0), partitioning and
    simplifying ``graph``."""
    before = WORK.snapshot()
    verify(graph)
    joint = build_joint(graph, wrt=(0,))
    part = partition(joint, policy)
    simplify(part.backward)
    return WORK.since(before)


def assert_linear(small: dict[str, int], large: dict[str, int]) -> None:
    assert sum(large.values()) <= RATIO * sum(small.values()), (small, large)
    for name in sorted(set(small) | set(large)):
        assert large.get(name, 0) <= RATIO * max(small.get(name, 0), 1), (name, small, large)


#: graph builders and the size ``n`` each is compared at, against ``4 * n``
GRAPHS = [(chain_graph, SMALL), (rnn_graph, SMALL // 4)]
GRAPH_IDS = ["chain", "rnn"]


@pytest.mark.parametrize("policy", ["min_cut", "save_all"])
@pytest.mark.parametrize("build, n", GRAPHS, ids=GRAPH_IDS)
def test_joint_graph_visits_grow_linearly(build, n, policy):
    small = compile_visits(build(n), policy)
    large = compile_visits(build(4 * n), policy)
    assert_linear(small, large)
    # the counter sees every stage: autodiff, partition, the builder's operand checks, ...
    assert {"autodiff.backward", "partition.copy", "builder.operands", "verify"} <= set(large)


def python_calls(graph: Graph) -> int:
    """Python function calls (generator steps included) made differentiating and
    partitioning ``graph``: a count of work that no pass has to report itself."""
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(profile)
    try:
        partition(build_joint(graph, wrt=(0,)))
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("build, n", GRAPHS, ids=GRAPH_IDS)
def test_python_calls_grow_linearly(build, n):
    small, large = python_calls(build(n)), python_calls(build(4 * n))
    assert large <= RATIO * small, (small, large)


def test_builder_checks_each_operand_once():
    graph = chain_graph(2 * SMALL)
    before = WORK.snapshot()
    build_joint(graph, wrt=(0,))
    seen = WORK.since(before)
    # the rules of mul and sin make 4 nodes of at most 2 operands per pair of forward nodes
    assert seen["builder.operands"] <= 4 * 2 * SMALL + 16


def test_builder_rejects_an_operand_of_another_graph():
    g1, g2 = Graph("one"), Graph("two")
    x = g1.add_input(TensorType((2,), F64), "x")
    y = g2.add_input(TensorType((2,), F64), "y")
    with GraphBuilder(g2), pytest.raises(GraphError, match="another graph"):
        P.add(y, x)
    with GraphBuilder(g2):
        z = P.add(y, y)
    assert z.graph is g2 and g2.nodes[-1].output is z and not g1.nodes


def chain(n):
    def f(x):
        for _ in range(n // 2):
            x = (x * 1.0001).sin()
        return x.sum()

    return f


def compiled_visits(n: int) -> dict[str, int]:
    x = ember.randn(4, 4, requires_grad=True)
    before = WORK.snapshot()
    loss = ember.compile(chain(n))(x)
    visits = WORK.since(before)
    loss.backward()
    return visits


def test_compile_pipeline_visits_grow_linearly():
    small, large = compiled_visits(SMALL), compiled_visits(4 * SMALL)
    assert_linear(small, large)
    assert "partition.flow" in large  # differentiated and partitioned, not just traced


def test_many_inputs_of_one_name_are_named_in_linear_work():
    def names_visits(n):
        graph = Graph("consts")
        for i in range(n):
            graph.add_input(TensorType((), F64), "const_1" if i == 2 else "const")
        before = WORK.snapshot()
        text = format_graph(graph)
        return WORK.since(before)["printer.names"], text

    small, _ = names_visits(SMALL)
    large, text = names_visits(4 * SMALL)
    assert large <= RATIO * small
    header = text.splitlines()[0]
    # the same names as a search from ``base``, ``base_1``, ... for each input in turn
    assert header.startswith("graph @consts(%const: f64[], %const_1: f64[], %const_1_1: f64[]")
    assert "%const_2: f64[], %const_3: f64[]" in header
    assert f"%const_{4 * SMALL - 2}: f64[])" in header


@pytest.mark.parametrize("enabled", [True, False])
def test_passes_leave_the_garbage_collector_as_they_found_it(enabled):
    graph = chain_graph(8)
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        partition(build_joint(graph, wrt=(0,)))
        assert gc.isenabled() is enabled
        with pytest.raises(GraphError):
            build_joint(graph, wrt=(5,))
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_a_10k_node_joint_graph_is_differentiated_partitioned_and_right():
    n = 4000
    graph = chain_graph(n)
    joint = build_joint(graph, wrt=(0,))
    assert len(joint.graph.nodes) >= 10_000
    part = partition(joint)
    x = np.random.default_rng(0).standard_normal((4, 4))
    fw = run_graph(part.forward, [x])
    (grad,) = run_graph(part.backward, [*fw[1:], np.ones((), np.float64)])

    xt = torch.tensor(x, requires_grad=True)
    y = xt
    for _ in range(n // 2):
        y = (y * 1.0001).sin()
    loss = y.sum()
    loss.backward()
    np.testing.assert_allclose(fw[0], loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
