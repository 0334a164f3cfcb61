"""The forward/backward partitioner (`ember.passes.partition`).

For every autodiff case (``test_autodiff.CASES``) and both policies, running the forward graph
and then the backward graph on its saved residuals must give exactly the joint graph's
outputs. min_cut must never save more than save_all, and strictly less where recomputation
pays; matmul and random draws are never recomputed; the report text is pinned.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_autodiff import BINARY, CASES, UNARY, Case, cotangents, forward_graph, run_program, u

import ember  # noqa: F401  (registers the eager kernels run_graph uses)
from ember.codegen.reference import run_graph
from ember.ir import GraphError, parse_graph, verify
from ember.passes.autodiff import build_joint
from ember.passes.partition import partition

POLICIES = ["min_cut", "save_all"]


def split(case, policy, **kwargs):
    arrays = case.arrays()
    joint = build_joint(forward_graph(case, arrays), case.wrt, case.differentiate)
    return arrays, joint, partition(joint, policy, **kwargs)


def by_name(name):
    return next(c for c in CASES if c.name == name)


def run_split(part, arrays, cots):
    """Forward, then backward on (saved residuals, cotangents): (outputs, gradients)."""
    fw = run_graph(part.forward, arrays)
    n = part.num_forward_outputs
    outs, saved = fw[:n], fw[n:]
    assert len(saved) == len(part.saved)
    for s, (_, t) in zip(saved, part.saved):
        assert s.shape == t.shape and s.dtype == t.dtype.np
    return outs, run_graph(part.backward, [*saved, *cots])


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_forward_then_backward_equals_the_joint_graph(case, policy):
    arrays, joint, part = split(case, policy)
    verify(part.forward)
    verify(part.backward)
    assert [v.name for v in part.forward.inputs] == [v.name for v in joint.primal_inputs]
    k = len(part.saved)
    assert [v.name for v in part.backward.inputs[k:]] == [v.name for v in joint.cotangent_inputs]
    cots = list(cotangents(case, run_graph(forward_graph(case, arrays), arrays)).values())
    expected = run_graph(joint.graph, [*arrays, *cots])
    outs, grads = run_split(part, arrays, cots)
    assert len(outs) + len(grads) == len(expected)
    for got, want in zip([*outs, *grads], expected):
        np.testing.assert_array_equal(got, want)
    assert part.saved_bytes == sum(t.nbytes for _, t in part.saved)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    program=st.lists(
        st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 50), st.integers(0, 50)),
        min_size=2,
        max_size=12,
    ),
    wrt=st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True),
    recompute_reductions=st.booleans(),
)
def test_random_programs_split_exactly(program, wrt, recompute_reductions):
    case = Case(
        "random",
        lambda a, b, c: run_program(program, a, b, c),
        lambda r: [u(r, 3, 4), u(r, 3, 4), u(r, 4)],
        ("a", "b", "c"),
        tuple(wrt),
    )
    arrays = case.arrays()
    joint = build_joint(forward_graph(case, arrays), case.wrt)
    cots = list(cotangents(case, run_graph(forward_graph(case, arrays), arrays)).values())
    expected = run_graph(joint.graph, [*arrays, *cots])
    cut = partition(joint, recompute_reductions=recompute_reductions)
    everything = partition(joint, "save_all")
    assert cut.saved_bytes <= everything.saved_bytes
    for part in (cut, everything):
        verify(part.forward)
        verify(part.backward)
        outs, grads = run_split(part, arrays, cots)
        for got, want in zip([*outs, *grads], expected):
            np.testing.assert_array_equal(got, want)


def test_a_backward_that_reads_nothing_saves_nothing():
    joint = build_joint(
        parse_graph(
            "graph @f(%x: f64[3]) -> (f64[3]) {\n  %0: f64[3] = add(%x, 1.0)\n  return %0\n}"
        ),
        (0,),
    )
    for policy in POLICIES:
        part = partition(joint, policy)
        assert part.saved == [] and part.saved_bytes == 0
        assert part.backward.nodes == [] and [v.name for v in part.backward.inputs] == ["grad_out0"]
        assert "0 residuals" in part.report()


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_min_cut_never_saves_more_than_save_all(case):
    _, _, cut = split(case, "min_cut")
    _, _, everything = split(case, "save_all")
    assert cut.saved_bytes <= everything.saved_bytes
    assert not everything.recomputed  # save_all recomputes nothing by definition


@pytest.mark.parametrize(
    "name, cut_bytes, all_bytes",
    [
        # exp(x) * x feeding sin and a reduction: save x and v, not x, exp(x), exp(x) * x,
        # broadcast v and the product that sin reads
        ("exp_chain", 6 * 5 * 8 + 5 * 8, 5 * 6 * 5 * 8),
        # tanh-gelu: the backward reads six intermediates, all cheap functions of x
        ("gelu_chain", 16 * 16 * 8, None),
    ],
)
def test_min_cut_recomputes_where_it_pays(name, cut_bytes, all_bytes):
    _, _, cut = split(by_name(name), "min_cut")
    _, _, everything = split(by_name(name), "save_all")
    assert cut.saved_bytes == cut_bytes
    assert cut.saved_bytes < everything.saved_bytes
    if all_bytes is not None:
        assert everything.saved_bytes == all_bytes
    assert [n for n, _ in cut.saved][0] == "x"
    assert cut.recomputed  # the backward recomputes forward ops


def test_gelu_saves_only_its_input():
    _, _, cut = split(by_name("gelu_chain"), "min_cut")
    assert [(n, str(t)) for n, t in cut.saved] == [("x", "f64[16,16]")]
    # x*x, x*x*x, *0.044715, +x, *0.7978..., tanh, +1, x*0.5: all but the final product
    assert cut.report().splitlines()[-1] == (
        "recomputed in backward: mul x5 (cases.py:1), add x2 (cases.py:1), tanh (cases.py:1)"
    )


# Recomputing the matmul from x and w (2 * 16 elements) would beat saving h (64 elements).
MATMUL = """\
graph @mm(%x: f64[8,2], %w: f64[2,8], %v: f64[8]) -> (f64[]) {
  %0: f64[8,8] = matmul(%x, %w)                                 # model.py:3
  %1: f64[8,8] = broadcast_to(%v) {shape=[8,8]}                 # model.py:4
  %2: f64[8,8] = mul(%0, %1)                                    # model.py:4
  %3: f64[8,8] = sin(%2)                                        # model.py:5
  %4: f64[] = reduce_sum(%3) {axes=[0,1]}                       # model.py:6
  return %4
}
"""

# Redrawing the mask from seed and offset (16 bytes) would beat saving it (64 bytes).
DROPOUT = """\
graph @drop(%x: f64[64], %seed: i64[], %offset: i64[]) -> (f64[64]) {
  %0: f64[64] = philox_uniform(%seed, %offset) {shape=[64], dtype=f64}  # model.py:8
  %1: bool[64] = lt(%0, 0.5)                                    # model.py:8
  %2: f64[64] = mul(%x, 2.0)                                    # model.py:8
  %3: f64[64] = where(%1, %2, 0.0)                              # model.py:8
  return %3
}
"""


def test_matmul_is_saved_never_recomputed():
    joint = build_joint(parse_graph(MATMUL), (2,))
    part = partition(joint)
    assert "matmul" not in [n.op for n in part.backward.nodes]
    assert [(n, str(t)) for n, t in part.saved] == [("v", "f64[8]"), ("matmul_0", "f64[8,8]")]
    assert "matmul" in [n.op for n in part.forward.nodes]
    assert [op for op, _ in part.recomputed] == ["broadcast_to", "mul"]
    everything = partition(joint, "save_all")
    assert part.saved_bytes < everything.saved_bytes


def test_random_draws_are_saved_never_redrawn():
    part = partition(build_joint(parse_graph(DROPOUT), (0,)))
    assert "philox_uniform" not in [n.op for n in part.backward.nodes]
    assert [(n, str(t)) for n, t in part.saved] == [("lt_1", "bool[64]")]
    x = np.linspace(-1, 1, 64)
    seed, offset = np.array(11), np.array(2)
    g = np.linspace(0, 1, 64)
    outs, (grad,) = run_split(part, [x, seed, offset], [g])
    kept = outs[0] != 0
    assert 10 < kept.sum() < 54
    np.testing.assert_array_equal(grad, np.where(kept, 2 * g, 0.0))


def test_reductions_are_recomputed_only_when_allowed():
    case = by_name("softmax")
    _, _, default = split(case, "min_cut")
    _, _, allowed = split(case, "min_cut", recompute_reductions=True)
    reductions = {"reduce_sum", "reduce_max"}
    assert not reductions & {op for op, _ in default.recomputed}
    assert reductions & {op for op, _ in allowed.recomputed}
    assert allowed.saved_bytes < default.saved_bytes
    assert [n for n, _ in allowed.saved] == ["x"]


def test_forward_outputs_that_are_inputs_and_duplicates():
    graph = parse_graph(
        "graph @f(%x: f64[3]) -> (f64[3], f64[3], f64[3]) {\n"
        "  %0: f64[3] = exp(%x)\n  return %0, %x, %0\n}"
    )
    joint = build_joint(graph, (0,))
    for policy in POLICIES:
        part = partition(joint, policy)
        verify(part.forward)
        verify(part.backward)
        x = np.array([0.5, -1.0, 2.0])
        cots = [np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3]), np.array([-1.0, 0.0, 1.0])]
        outs, (grad,) = run_split(part, [x], cots)
        np.testing.assert_allclose(grad, (cots[0] + cots[2]) * np.exp(x) + cots[1], rtol=1e-15)


def test_unknown_policy():
    joint = build_joint(parse_graph(MATMUL), (2,))
    with pytest.raises(GraphError, match="unknown policy 'fastest'"):
        partition(joint, "fastest")


REPORT_FORWARD = """\
graph @r(%x: f64[4,8], %w: f64[8,8]) -> (f64[]) {
  %0: f64[4,8] = matmul(%x, %w)                                 # model.py:3
  %1: f64[4,8] = tanh(%0)                                       # model.py:4
  %2: f64[4,8] = exp(%1)                                        # model.py:5
  %3: f64[4,8] = mul(%2, %1)                                    # model.py:5
  %4: f64[] = reduce_sum(%3) {axes=[0,1]}                       # model.py:6
  return %4
}
"""

REPORT_MIN_CUT = """\
saved for backward (min_cut): 3 residuals
  name    type      bytes  made at
  x       f64[4,8]    256  input
  w       f64[8,8]    512  input
  tanh_1  f64[4,8]    256  model.py:4
  total             1,024
recomputed in backward: exp (model.py:5)
"""

REPORT_SAVE_ALL = """\
saved for backward (save_all): 4 residuals
  name    type      bytes  made at
  x       f64[4,8]    256  input
  w       f64[8,8]    512  input
  tanh_1  f64[4,8]    256  model.py:4
  exp_2   f64[4,8]    256  model.py:5
  total             1,280
recomputed in backward: nothing
"""


def test_report_text():
    joint = build_joint(parse_graph(REPORT_FORWARD), (0, 1))
    assert partition(joint).report() == REPORT_MIN_CUT
    assert partition(joint, "save_all").report() == REPORT_SAVE_ALL


def test_backward_graph_golden():
    part = partition(build_joint(parse_graph(REPORT_FORWARD), (0, 1)))
    assert str(part.backward) == (
        "graph @r_backward(%x: f64[4,8], %w: f64[8,8], %tanh_1: f64[4,8], %grad_out0: f64[])"
        " -> (f64[4,8], f64[8,8]) {\n"
        "  %0: f64[4,8] = exp(%tanh_1)                                   # model.py:5\n"
        "  %1: f64[1,1] = reshape(%grad_out0) {shape=[1,1]}              # model.py:6\n"
        "  %2: f64[4,8] = broadcast_to(%1) {shape=[4,8]}                 # model.py:6\n"
        "  %3: f64[4,8] = mul(%2, %tanh_1)                               # model.py:5\n"
        "  %4: f64[4,8] = mul(%2, %0)                                    # model.py:5\n"
        "  %5: f64[4,8] = mul(%3, %0)                                    # model.py:5\n"
        "  %6: f64[4,8] = add(%4, %5)                                    # model.py:5\n"
        "  %7: f64[4,8] = mul(%tanh_1, %tanh_1)                          # model.py:4\n"
        "  %8: f64[4,8] = sub(1.0, %7)                                   # model.py:4\n"
        "  %9: f64[4,8] = mul(%6, %8)                                    # model.py:4\n"
        "  %10: f64[8,8] = permute(%w) {dims=[1,0]}                      # model.py:3\n"
        "  %11: f64[4,8] = matmul(%9, %10)                               # model.py:3\n"
        "  %12: f64[8,4] = permute(%x) {dims=[1,0]}                      # model.py:3\n"
        "  %13: f64[8,8] = matmul(%12, %9)                               # model.py:3\n"
        "  return %11, %13\n"
        "}\n"
    )
    assert str(part.forward).splitlines()[0] == (
        "graph @r_forward(%x: f64[4,8], %w: f64[8,8]) -> (f64[], f64[4,8], f64[8,8], f64[4,8]) {"
    )
    assert str(part.forward).splitlines()[-2] == "  return %4, %x, %w, %1"
