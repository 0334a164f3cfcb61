"""The autodiff pass (`ember.passes.autodiff`): joint graphs against eager autograd and PyTorch.

Each case is a small program written with primitives only (``P.*`` calls). Calling it on
graph `Value`s inside a `GraphBuilder` records the forward graph; calling it on ember tensors
runs it eagerly and records eager autograd; a hand-written torch twin is the independent
oracle. The joint graph, run by the reference backend, must give the gradients of both.
`CASES` is shared with ``test_partition.py``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember
from ember.codegen.reference import run_graph
from ember.ir import Graph, GraphBuilder, GraphError, SourceLoc, TensorType, parse_graph, verify
from ember.ir import dtypes as D
from ember.ir import ops as P
from ember.passes.autodiff import build_joint, grad_graph

F64 = D.float64


def bcast(x, shape):
    return P.broadcast_to(x, shape=tuple(shape))


def rows(x, n, m):
    """A per-row ``[n]`` value broadcast over ``[n, m]``."""
    return bcast(P.reshape(x, shape=(n, 1)), (n, m))


@dataclass
class Case:
    name: str
    fn: Callable  # (*operands) -> tuple of outputs, written with primitives only
    make: Callable  # (rng) -> list of numpy inputs
    names: tuple[str, ...]
    wrt: tuple[int, ...]
    torch_fn: Callable | None = None  # the same computation in torch
    differentiate: tuple[int, ...] | None = None

    def arrays(self):
        return self.make(np.random.default_rng(zlib.crc32(self.name.encode())))

    def __repr__(self):
        return self.name


def u(rng, *shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape)


# ---- the programs --------------------------------------------------------------------------


def mlp(x, w, b):
    h = P.add(P.matmul(x, w), bcast(b, (4, 3)))
    return (P.reduce_sum(P.maximum(h, 0.0), axes=(0, 1)),)


def t_mlp(x, w, b):
    return (torch.relu(x @ w + b).sum(),)


def softmax(x):
    z = P.sub(x, rows(P.reduce_max(x, axes=(1,)), 3, 6))
    e = P.exp(z)
    return (P.div(e, rows(P.reduce_sum(e, axes=(1,)), 3, 6)),)


def log_softmax(x):
    z = P.sub(x, rows(P.reduce_max(x, axes=(1,)), 3, 6))
    return (P.sub(z, rows(P.log(P.reduce_sum(P.exp(z), axes=(1,))), 3, 6)),)


def layernorm(x, gamma, beta):
    mean = P.mul(P.reduce_sum(x, axes=(1,)), 1 / 8)
    xc = P.sub(x, rows(mean, 4, 8))
    var = P.mul(P.reduce_sum(P.mul(xc, xc), axes=(1,)), 1 / 8)
    rstd = P.rsqrt(P.add(var, 1e-5))
    y = P.mul(P.mul(xc, rows(rstd, 4, 8)), bcast(gamma, (4, 8)))
    return (P.add(y, bcast(beta, (4, 8))),)


def select(x, y):
    return (P.where(P.gt(x, y), P.mul(x, x), P.sin(y)),)


def gather(x, idx):
    g = P.gather(x, idx, axis=1)
    return (P.mul(g, g),)


def concat_slice_pad(a, b):
    c = P.concat(a, b, axis=1)
    s = P.slice(c, starts=(0, 1), stops=(2, 7), steps=(1, 2))
    p = P.pad(s, low=(1, 0), high=(0, 2), interior=(0, 0), value=0.0)
    return (P.mul(p, p),)


def t_concat_slice_pad(a, b):
    p = F.pad(torch.cat([a, b], dim=1)[:, 1:7:2], (0, 2, 1, 0))
    return (p * p,)


def pad_interior(x):
    p = P.pad(x, low=(0, 2), high=(1, 0), interior=(1, 2), value=0.5)
    s = P.slice(p, starts=(1, 1), stops=(4, 9), steps=(2, 3))
    return (P.exp(p), P.sin(s))


def converts(x, w):
    z = P.mul(P.convert(x, dtype=F64), bcast(w, (3, 4)))
    return (P.convert(P.tanh(z), dtype=D.float32), P.reduce_sum(z, axes=(0, 1)))


def t_converts(x, w):
    z = x.double() * w
    return (torch.tanh(z).float(), z.sum())


def pows(x, y):
    return (P.pow(x, y), P.pow(x, 3.0), P.pow(2.0, y), P.pow(x, 0.5))


def unused(x, v):
    return (P.reduce_sum(P.exp(x), axes=(0,)),)


def int_side(x):
    i = P.argmax(x, axis=1)
    top = P.reshape(P.gather(x, P.reshape(i, shape=(4, 1)), axis=1), shape=(4,))
    k = P.add(P.mul(i, 2), 1)
    mask = P.eq(P.iota(shape=(4, 5), axis=1, dtype=D.int64), rows(i, 4, 5))
    sel = P.reduce_sum(P.where(mask, x, 0.0), axes=(1,))
    return (P.reduce_sum(P.add(P.mul(top, P.convert(k, dtype=F64)), sel), axes=(0,)), k)


def t_int_side(x):
    i = x.argmax(1)
    k = i * 2 + 1
    mask = torch.arange(5)[None, :] == i[:, None]
    sel = torch.where(mask, x, 0.0).sum(1)
    return ((x.gather(1, i[:, None])[:, 0] * k.double() + sel).sum(), k)


def fanout(x):
    y = P.exp(x)
    return (y, x, P.reduce_sum(P.mul(y, y), axes=(1,)))


def zoo(x):
    e = P.expm1(P.log1p(P.erf(P.tanh(P.sigmoid(x)))))
    h = P.rsqrt(P.add(P.sqrt(P.add(e, 1.0)), 1.0))
    k = P.mul(P.sin(P.abs(P.sub(h, 0.7))), P.cos(x))
    m = P.neg(P.log(P.add(P.mul(k, k), 1.0)))
    return (
        P.div(m, P.add(x, 2.0)),
        P.reduce_prod(P.add(x, 0.5), axes=(0,)),
        P.cumsum(x, axis=0, reverse=False),
    )


def t_zoo(x):
    e = torch.expm1(torch.log1p(torch.erf(torch.tanh(torch.sigmoid(x)))))
    h = torch.rsqrt(torch.sqrt(e + 1.0) + 1.0)
    k = torch.sin(torch.abs(h - 0.7)) * torch.cos(x)
    m = -torch.log(k * k + 1.0)
    return (m / (x + 2.0), (x + 0.5).prod(0), torch.cumsum(x, 0))


def ties(x, y):
    return (P.maximum(x, y), P.minimum(x, y), P.reduce_max(P.reshape(x, shape=(2, 3)), axes=(1,)))


def t_ties(x, y):
    return (torch.maximum(x, y), torch.minimum(x, y), x.reshape(2, 3).amax(1))


def dropout(x, seed, offset):
    r = P.philox_uniform(seed, offset, shape=(8,), dtype=F64)
    return (P.where(P.lt(r, 0.5), P.mul(x, 2.0), 0.0),)


def gelu_chain(x):
    inner = P.mul(P.add(x, P.mul(P.mul(P.mul(x, x), x), 0.044715)), 0.7978845608)
    y = P.mul(P.mul(x, 0.5), P.add(P.tanh(inner), 1.0))
    return (P.reduce_sum(y, axes=(0, 1)),)


def t_gelu_chain(x):
    return (F.gelu(x, approximate="tanh").sum(),)


def exp_chain(x, v):
    e = P.exp(x)
    z = P.mul(e, x)
    return (P.reduce_sum(P.sin(P.mul(z, bcast(v, (6, 5)))), axes=(1,)),)


def t_exp_chain(x, v):
    return (torch.sin(torch.exp(x) * x * v).sum(1),)


CASES = [
    Case("mlp", mlp, lambda r: [u(r, 4, 5), u(r, 5, 3), u(r, 3)], ("x", "w", "b"), (0, 1, 2), t_mlp),
    Case("softmax", softmax, lambda r: [u(r, 3, 6, low=-3, high=3)], ("x",), (0,),
         lambda x: (torch.softmax(x, 1),)),
    Case("log_softmax", log_softmax, lambda r: [u(r, 3, 6, low=-3, high=3)], ("x",), (0,),
         lambda x: (torch.log_softmax(x, 1),)),
    Case("layernorm", layernorm, lambda r: [u(r, 4, 8), u(r, 8), u(r, 8)], ("x", "gamma", "beta"),
         (0, 1, 2), lambda x, g, b: (F.layer_norm(x, (8,), g, b, eps=1e-5),)),
    Case("select", select, lambda r: [u(r, 5), u(r, 5)], ("x", "y"), (0, 1),
         lambda x, y: (torch.where(x > y, x * x, torch.sin(y)),)),
    Case("gather", gather, lambda r: [u(r, 4, 5), np.array([[0, 4, 4], [1, 1, 1], [3, 2, 0], [4, 0, 4]])],
         ("x", "idx"), (0,), lambda x, i: (x.gather(1, i) ** 2,)),
    Case("concat_slice_pad", concat_slice_pad, lambda r: [u(r, 2, 3), u(r, 2, 4)], ("a", "b"), (0, 1),
         t_concat_slice_pad),
    Case("pad_interior", pad_interior, lambda r: [u(r, 2, 3)], ("x",), (0,)),
    Case("converts", converts, lambda r: [u(r, 3, 4).astype(np.float32), u(r, 4)], ("x", "w"), (0, 1),
         t_converts),
    Case("pows", pows, lambda r: [u(r, 6, low=0.2, high=2.0), u(r, 6, low=-2, high=2)], ("x", "y"),
         (0, 1), lambda x, y: (x**y, x**3.0, 2.0**y, x**0.5)),
    Case("unused", unused, lambda r: [u(r, 3), u(r, 2)], ("x", "v"), (0, 1),
         lambda x, v: (torch.exp(x).sum(0),)),
    Case("int_side", int_side, lambda r: [u(r, 4, 5)], ("x",), (0,), t_int_side),
    Case("fanout", fanout, lambda r: [u(r, 3, 4)], ("x",), (0,),
         lambda x: (torch.exp(x), x, (torch.exp(x) ** 2).sum(1))),
    Case("fanout_partial", fanout, lambda r: [u(r, 3, 4)], ("x",), (0,),
         lambda x: (torch.exp(x), x, (torch.exp(x) ** 2).sum(1)), differentiate=(2, 1)),
    Case("zoo", zoo, lambda r: [u(r, 7, low=0.1, high=0.9)], ("x",), (0,), t_zoo),
    Case("ties", ties, lambda r: [np.array([1.0, 2.0, 2.0, 0.5, 3.0, 3.0]), np.array([1.0, 0.0, 2.0, 4.0, 3.0, -1.0])],
         ("x", "y"), (0, 1), t_ties),
    Case("dropout", dropout, lambda r: [u(r, 8), np.array(7), np.array(3)], ("x", "seed", "offset"), (0,)),
    Case("gelu_chain", gelu_chain, lambda r: [u(r, 16, 16, low=-3, high=3)], ("x",), (0,), t_gelu_chain),
    Case("exp_chain", exp_chain, lambda r: [u(r, 6, 5), u(r, 5)], ("x", "v"), (0, 1), t_exp_chain),
]  # fmt: skip


# ---- running a case three ways -------------------------------------------------------------


def forward_graph(case: Case, arrays) -> Graph:
    graph = Graph(case.name)
    values = [
        graph.add_input(TensorType(a.shape, D.from_numpy(a.dtype)), n)
        for n, a in zip(case.names, arrays)
    ]
    with GraphBuilder(graph, loc=SourceLoc("cases.py", 1)):
        graph.set_outputs(case.fn(*values))
    return graph


def differentiated(case: Case, outputs: list[np.ndarray]) -> tuple[int, ...]:
    if case.differentiate is not None:
        return case.differentiate
    return tuple(i for i, o in enumerate(outputs) if o.dtype.kind == "f")


def cotangents(case: Case, outputs: list[np.ndarray]) -> dict[int, np.ndarray]:
    """One random cotangent per differentiated output, by output index."""
    rng = np.random.default_rng(1 + zlib.crc32(case.name.encode()))
    return {
        i: rng.uniform(-1, 1, size=outputs[i].shape).astype(outputs[i].dtype)
        for i in differentiated(case, outputs)
    }


def eager_grads(case: Case, arrays, cots: dict) -> list[np.ndarray]:
    tensors = [ember.tensor(a, requires_grad=i in case.wrt) for i, a in enumerate(arrays)]
    outs = case.fn(*tensors)
    pairs = [(outs[i], c) for i, c in cots.items()]
    pairs = [(o, ember.tensor(c)) for o, c in pairs if o.requires_grad]
    grads = ember.autograd.grad(
        [o for o, _ in pairs],
        [tensors[i] for i in case.wrt],
        [c for _, c in pairs],
        allow_unused=True,
        materialize_grads=True,
    )
    return [g.detach().numpy() for g in grads]


def torch_grads(case: Case, arrays, cots) -> tuple[list, list]:
    tensors = [torch.tensor(a, requires_grad=i in case.wrt) for i, a in enumerate(arrays)]
    outs = case.torch_fn(*tensors)
    pairs = [(outs[i], torch.tensor(c)) for i, c in cots.items()]
    pairs = [(o, c) for o, c in pairs if o.requires_grad]
    grads = torch.autograd.grad(
        [o for o, _ in pairs],
        [tensors[i] for i in case.wrt],
        [c for _, c in pairs],
        allow_unused=True,
        materialize_grads=True,
    )
    return [o.detach().numpy() for o in outs], [g.numpy() for g in grads]


def run_joint(case: Case):
    """(arrays, cotangents, joint, forward outputs, gradients) of a case."""
    arrays = case.arrays()
    graph = forward_graph(case, arrays)
    joint = build_joint(graph, case.wrt, case.differentiate)
    verify(joint.graph)
    outs = run_graph(graph, arrays)
    cots = cotangents(case, outs)
    result = run_graph(joint.graph, [*arrays, *cots.values()])
    n = joint.num_forward_outputs
    return arrays, cots, joint, result[:n], result[n:]


def tol(a):
    return {"rtol": 1e-5, "atol": 1e-6} if a.dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-12}


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_joint_matches_eager_autograd(case):
    arrays, cots, joint, outs, grads = run_joint(case)
    expected = eager_grads(case, arrays, cots)
    assert len(grads) == len(expected) == len(case.wrt)
    for i, g, e in zip(case.wrt, grads, expected):
        assert g.shape == arrays[i].shape and g.dtype == arrays[i].dtype
        np.testing.assert_allclose(g, e, **tol(g), err_msg=f"{case.name}: d/d{case.names[i]}")


@pytest.mark.parametrize("case", [c for c in CASES if c.torch_fn], ids=repr)
def test_joint_matches_torch(case):
    arrays, cots, joint, outs, grads = run_joint(case)
    t_outs, expected = torch_grads(case, arrays, cots)
    for o, e in zip(outs, t_outs):
        np.testing.assert_allclose(o, e, **tol(o))
    for i, g, e in zip(case.wrt, grads, expected):
        np.testing.assert_allclose(g, e, **tol(g), err_msg=f"{case.name}: d/d{case.names[i]}")


def test_joint_signature_and_node_sets():
    arrays = CASES[0].arrays()
    graph = forward_graph(CASES[0], arrays)
    joint = build_joint(graph, (2, 0))
    g = joint.graph
    assert [v.name for v in g.inputs] == ["x", "w", "b", "grad_out0"]
    assert [str(v.type) for v in g.outputs] == ["f64[]", "f64[3]", "f64[4,5]"]
    assert (joint.num_forward_inputs, joint.num_forward_outputs) == (3, 1)
    assert joint.wrt == (2, 0) and joint.differentiate == (0,)
    assert [n.op for n in g.nodes if joint.is_forward(n)] == [n.op for n in graph.nodes]
    assert g.nodes[: len(graph.nodes)] == [n for n in g.nodes if joint.is_forward(n)]
    assert joint.backward_nodes == g.nodes[len(graph.nodes) :]
    assert "matmul" in [n.op for n in joint.backward_nodes]
    # the forward graph is left alone
    assert len(graph.inputs) == 3 and len(graph.outputs) == 1


def test_integer_outputs_get_no_cotangent_by_default():
    case = next(c for c in CASES if c.name == "int_side")
    joint = build_joint(forward_graph(case, case.arrays()), (0,))
    assert [str(v.type) for v in joint.cotangent_inputs] == ["f64[]"]
    assert joint.differentiate == (0,)


# ---- random elementwise programs -----------------------------------------------------------

UNARY = ["tanh", "sin", "cos", "sigmoid", "neg", "exp_small", "square", "abs"]
BINARY = ["add", "sub", "mul", "maximum", "minimum", "safe_div", "bias"]


def run_program(program, a, b, c):
    """Apply a list of ``(op, i, j)`` instructions to the pool ``[a, b, broadcast c]``."""
    pool = [a, b, bcast(c, (3, 4))]
    for op, i, j in program:
        x, y = pool[i % len(pool)], pool[j % len(pool)]
        if op == "exp_small":
            r = P.exp(P.mul(P.tanh(x), 0.5))
        elif op == "square":
            r = P.mul(x, x)
        elif op == "safe_div":
            r = P.div(x, P.add(P.mul(y, y), 1.0))
        elif op == "bias":
            r = P.add(x, rows(P.reduce_sum(y, axes=(1,)), 3, 4))
        elif op in BINARY:
            r = getattr(P, op)(x, y)
        else:
            r = getattr(P, op)(x)
        pool.append(r)
    return (pool[-1], P.reduce_sum(pool[-2], axes=(0,)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    program=st.lists(
        st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 50), st.integers(0, 50)),
        min_size=2,
        max_size=10,
    ),
    wrt=st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True),
    seed=st.integers(0, 2**16),
)
def test_random_programs_match_eager(program, wrt, seed):
    case = Case(
        f"random{seed}",
        lambda a, b, c: run_program(program, a, b, c),
        lambda r: [u(r, 3, 4), u(r, 3, 4), u(r, 4)],
        ("a", "b", "c"),
        tuple(wrt),
    )
    arrays, cots, joint, outs, grads = run_joint(case)
    for g, e in zip(grads, eager_grads(case, arrays, cots)):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-12)


# ---- grad_graph ------------------------------------------------------------------------------


def test_grad_graph_of_a_loss_matches_torch():
    case = CASES[0]
    arrays = case.arrays()
    graph = grad_graph(forward_graph(case, arrays), (0, 1, 2))
    verify(graph)
    assert [v.name for v in graph.inputs] == ["x", "w", "b"]
    assert graph.nodes[len(forward_graph(case, arrays).nodes)].op == "full"
    loss, *grads = run_graph(graph, arrays)
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    t_loss = t_mlp(*tensors)[0]
    t_loss.backward()
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-12)
    for g, t in zip(grads, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-11, atol=1e-12)


def test_grad_graph_needs_a_scalar_loss():
    graph = parse_graph(
        "graph @f(%x: f64[3]) -> (f64[3]) {\n  %0: f64[3] = exp(%x)\n  return %0\n}"
    )
    with pytest.raises(GraphError, match="one-element floating tensor"):
        grad_graph(graph, (0,))


# ---- source locations ------------------------------------------------------------------------

LOC_FORWARD = """\
graph @f(%x: f64[3], %w: f64[3], %u: f64[2]) -> (f64[]) {
  %0: f64[3] = mul(%x, %w)                                      # model.py:10
  %1: f64[3] = tanh(%0)                                         # model.py:11
  %2: f64[3] = add(%1, %x)                                      # model.py:12
  %3: f64[] = reduce_sum(%2) {axes=[0]}                         # model.py:13
  return %3
}
"""

# Each backward node carries the line of the forward op whose VJP made it; the cotangents of
# x meet in an add made by the VJP of mul (line 10); u's zeros belong to no line.
LOC_JOINT = """\
graph @f_joint(%x: f64[3], %w: f64[3], %u: f64[2], %grad_out0: f64[]) -> (f64[], f64[3], f64[3], f64[2]) {
  %0: f64[3] = mul(%x, %w)                                      # model.py:10
  %1: f64[3] = tanh(%0)                                         # model.py:11
  %2: f64[3] = add(%1, %x)                                      # model.py:12
  %3: f64[] = reduce_sum(%2) {axes=[0]}                         # model.py:13
  %4: f64[1] = reshape(%grad_out0) {shape=[1]}                  # model.py:13
  %5: f64[3] = broadcast_to(%4) {shape=[3]}                     # model.py:13
  %6: f64[3] = mul(%1, %1)                                      # model.py:11
  %7: f64[3] = sub(1.0, %6)                                     # model.py:11
  %8: f64[3] = mul(%5, %7)                                      # model.py:11
  %9: f64[3] = mul(%8, %w)                                      # model.py:10
  %10: f64[3] = mul(%8, %x)                                     # model.py:10
  %11: f64[3] = add(%5, %9)                                     # model.py:10
  %12: f64[] = full() {shape=[], value=0, dtype=f64}
  %13: f64[2] = broadcast_to(%12) {shape=[2]}
  return %3, %11, %10, %13
}
"""


def test_backward_nodes_carry_the_forward_line():
    forward = parse_graph(LOC_FORWARD)
    joint = build_joint(forward, (0, 1, 2))
    assert str(joint.graph) == LOC_JOINT
    locs = {n.loc.file for n in joint.graph.nodes if n.loc is not None}
    assert locs == {"model.py"}


def test_grad_graph_seed_carries_the_loss_line():
    graph = grad_graph(parse_graph(LOC_FORWARD), (1,))
    seed = graph.nodes[4]
    assert (seed.op, seed.attrs["value"], str(seed.loc)) == ("full", 1.0, "model.py:13")
    assert str(graph.nodes[5].loc) == "model.py:13"


# ---- errors ----------------------------------------------------------------------------------


def test_bad_wrt_and_differentiate_are_named():
    case = next(c for c in CASES if c.name == "int_side")
    graph = forward_graph(case, case.arrays())
    with pytest.raises(GraphError, match="wrt index 3 is not an input"):
        build_joint(graph, (3,))
    with pytest.raises(GraphError, match="output 1 .*i64\\[4\\].* is not floating point"):
        build_joint(graph, (0,), differentiate=(1,))
    gather_case = next(c for c in CASES if c.name == "gather")
    graph = forward_graph(gather_case, gather_case.arrays())
    with pytest.raises(GraphError, match="input 1 \\(idx: i64\\[4,3\\]\\)"):
        build_joint(graph, (1,))
