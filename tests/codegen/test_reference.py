"""The reference backend and the null backend.

- random graphs of primitives (hypothesis) give the same bits as eager ember running the same
  primitive calls on tensors, before and after a trip through the IR text;
- golden IR text written out by hand runs to values written out by hand or computed by torch;
- calls check their inputs and name the graph and the input; kernel failures name the node;
- intermediates are released after their last use (statistics and tracemalloc);
- the null backend returns zeros of the right shapes and counts its kernels.
"""

from __future__ import annotations

import tracemalloc
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember
from ember.codegen.backend import BackendError, NullBackend
from ember.codegen.reference import ReferenceBackend, ReferenceCompiledGraph, run_graph
from ember.ir import Graph, GraphBuilder, TensorType, Value, format_graph, ops, parse_graph, verify
from ember.ir import dtypes as D
from ember.ir.errors import DTypeError, GraphError, IndexOutOfRange, ShapeError
from ember.ir.ops import PRIMITIVES

FLOATS = [D.float32, D.float64, D.float16, D.bfloat16]
INTS = [D.int32, D.int64, D.int8]
ALL = [D.float32, D.float32, *FLOATS, *INTS, D.bool_]


def random_array(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    if dtype.is_floating_point:
        return np.asarray(rng.standard_normal(shape) * 2).astype(dtype.np)
    if dtype is D.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    return np.asarray(rng.integers(-5, 6, size=shape)).astype(dtype.np)


# ---------------------------------------------------------------------------------------------
# Random programs of primitive calls: built on graph values, replayed on eager tensors.
# ---------------------------------------------------------------------------------------------


class Lit:
    """A scalar literal operand in a recorded step (plain ints are pool indices)."""

    def __init__(self, value) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Lit({self.value!r})"


class Program:
    """Draws primitive calls, appends them to a graph through GraphBuilder and records them."""

    def __init__(self, data, rng) -> None:
        self.data = data
        self.rng = rng
        self.graph = Graph("random")
        self.pool: list[Value] = []
        self.steps: list = []
        self.arrays: list[np.ndarray] = []

    def draw(self, strategy):
        return self.data.draw(strategy)

    def new_input(self, shape, dtype, array=None) -> int:
        array = random_array(self.rng, shape, dtype) if array is None else array
        value = self.graph.add_input(TensorType(shape, dtype), f"in{len(self.arrays)}")
        self.arrays.append(array)
        self.steps.append(("input", array))
        self.pool.append(value)
        return len(self.pool) - 1

    def apply(self, name: str, refs: list, **attrs) -> int:
        args = [r.value if isinstance(r, Lit) else self.pool[r] for r in refs]
        with GraphBuilder(self.graph):
            out = getattr(ops, name)(*args, **attrs)
        self.steps.append(("op", name, refs, attrs))
        self.pool.append(out)
        return len(self.pool) - 1

    def pick(self, pred=lambda v: True) -> int | None:
        candidates = [i for i, v in enumerate(self.pool) if pred(v)]
        if not candidates:
            return None
        return self.draw(st.sampled_from(candidates[-6:]))  # recent values: long chains

    def literal(self, dtype):
        if dtype is D.bool_:
            return self.draw(st.booleans())
        if dtype.is_floating_point:
            return self.draw(st.sampled_from([0.5, -1.5, 2.0, 0.0, 3.0]))
        return self.draw(st.sampled_from([0, 1, 2, -3]))

    def shape(self, min_rank=0):
        return tuple(self.draw(st.lists(st.integers(1, 4), min_size=min_rank, max_size=3)))


def replay_eager(steps) -> list:
    """Run the recorded primitive calls on eager ember tensors."""
    pool = []
    for step in steps:
        if step[0] == "input":
            pool.append(ember.from_numpy(step[1].copy()))
            continue
        _, name, refs, attrs = step
        args = [r.value if isinstance(r, Lit) else pool[r] for r in refs]
        pool.append(getattr(ops, name)(*args, **attrs))
    return pool


def gen_unary(p: Program):
    i = p.pick()
    dt = p.pool[i].dtype
    if dt is D.bool_:
        names = ["logical_not", "bitwise_not", "sign", "round", "abs"]
    elif dt.is_floating_point:
        names = ["neg", "abs", "sign", "floor", "ceil", "round", "trunc", "exp", "log", "sqrt"]
        names += ["rsqrt", "sin", "cos", "tanh", "sigmoid", "erf", "log1p", "expm1", "copy"]
    else:
        names = ["neg", "abs", "sign", "bitwise_not", "floor", "copy"]
    p.apply(p.draw(st.sampled_from(names)), [i])


def gen_binary(p: Program):
    i = p.pick()
    v = p.pool[i]
    compares = ["eq", "ne", "lt", "le", "gt", "ge"]
    if v.dtype is D.bool_:
        names = ["logical_and", "logical_or", "logical_xor", "eq", "ne"]
    elif v.dtype.is_floating_point:
        names = ["add", "sub", "mul", "div", "maximum", "minimum", "pow", *compares]
    else:
        names = ["add", "sub", "mul", "maximum", "minimum", "bitwise_and", "bitwise_xor"]
        names += ["bitwise_or", "floordiv", "remainder", *compares]
    name = p.draw(st.sampled_from(names))
    if name in ("floordiv", "remainder"):  # integer division: only by a non-zero literal
        p.apply(name, [i, Lit(p.draw(st.sampled_from([2, 3, -4])))])
        return
    j = p.pick(lambda w: w.shape == v.shape and w.dtype is v.dtype)
    other = Lit(p.literal(v.dtype)) if p.draw(st.booleans()) else j
    refs = [other, i] if p.draw(st.booleans()) else [i, other]
    p.apply(name, refs)


def gen_where(p: Program):
    i = p.pick()
    v = p.pool[i]
    cond = p.apply("ne", [i, Lit(p.literal(v.dtype))])
    j = p.pick(lambda w: w.shape == v.shape and w.dtype is v.dtype)
    other = Lit(p.literal(v.dtype)) if p.draw(st.booleans()) else j
    refs = [cond, other, i] if p.draw(st.booleans()) else [cond, i, other]
    p.apply("where", refs)


def gen_convert(p: Program):
    p.apply("convert", [p.pick()], dtype=p.draw(st.sampled_from(ALL)))


def gen_reduce(p: Program):
    i = p.pick()
    n = p.pool[i].ndim
    kind = p.draw(st.sampled_from(["reduce", "arg", "cumsum"]))
    if kind == "reduce" or n == 0:
        axes = p.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n)) if n else []
        name = p.draw(st.sampled_from(["reduce_sum", "reduce_prod", "reduce_max", "reduce_min"]))
        p.apply(name, [i], axes=tuple(axes))
    elif kind == "arg":
        name = p.draw(st.sampled_from(["argmax", "argmin"]))
        p.apply(name, [i], axis=p.draw(st.integers(0, n - 1)))
    else:
        if p.pool[i].dtype is D.bool_:
            i = p.apply("convert", [i], dtype=D.int64)
        p.apply("cumsum", [i], axis=p.draw(st.integers(0, n - 1)), reverse=p.draw(st.booleans()))


def gen_reshape(p: Program):
    i = p.pick()
    s = p.pool[i].shape
    options = [tuple(reversed(s)), (int(np.prod(s)),)]
    k = p.draw(st.integers(0, len(s)))
    options.append(s[:k] + (1,) + s[k:])
    if len(s) >= 2:
        k = p.draw(st.integers(0, len(s) - 2))
        options.append(s[:k] + (s[k] * s[k + 1],) + s[k + 2 :])
    p.apply("reshape", [i], shape=p.draw(st.sampled_from(options)))


def gen_permute(p: Program):
    i = p.pick()
    p.apply("permute", [i], dims=tuple(p.draw(st.permutations(range(p.pool[i].ndim)))))


def gen_broadcast(p: Program):
    i = p.pick(lambda v: v.ndim < 4)
    new = [p.draw(st.integers(1, 3)) if d == 1 else d for d in p.pool[i].shape]
    lead = p.draw(st.lists(st.integers(1, 3), max_size=1))
    p.apply("broadcast_to", [i], shape=tuple(lead + new))


def gen_matmul(p: Program):
    i = p.pick(lambda v: v.ndim >= 2 and v.dtype is not D.bool_)
    if i is None:
        i = p.new_input((2, 3), D.float32)
    v = p.pool[i]
    if p.draw(st.booleans()):
        dims = (*range(v.ndim - 2), v.ndim - 1, v.ndim - 2)
        j = p.apply("permute", [i], dims=dims)
    else:
        j = p.new_input((*v.shape[:-1][:-1], v.shape[-1], p.draw(st.integers(1, 4))), v.dtype)
    p.apply("matmul", [i, j])


def _index_input(p: Program, x: Value, axis: int) -> int:
    shape = tuple(
        p.draw(st.integers(1, 4)) if d == axis else p.draw(st.integers(1, n))
        for d, n in enumerate(x.shape)
    )
    idx = p.rng.integers(0, x.shape[axis], size=shape).astype(np.int64)
    return p.new_input(shape, D.int64, idx)


def gen_gather_scatter(p: Program):
    i = p.pick(lambda v: v.ndim >= 1)
    if i is None:
        i = p.new_input((3,), D.float32)
    x = p.pool[i]
    axis = p.draw(st.integers(0, x.ndim - 1))
    idx = _index_input(p, x, axis)
    if x.dtype is D.bool_ or p.draw(st.booleans()):
        p.apply("gather", [i, idx], axis=axis)
    else:
        src = p.new_input(p.pool[idx].shape, x.dtype)
        p.apply("scatter_add", [i, idx, src], axis=axis)


def gen_concat_slice_pad(p: Program):
    i = p.pick()
    x = p.pool[i]
    kind = p.draw(st.sampled_from(["concat", "slice", "pad"]))
    if kind == "concat" and x.ndim >= 1:
        axis = p.draw(st.integers(0, x.ndim - 1))

        def fits(w):
            return (
                w.dtype is x.dtype
                and w.ndim == x.ndim
                and all(a == b for d, (a, b) in enumerate(zip(w.shape, x.shape)) if d != axis)
            )

        others = [p.pick(fits) for _ in range(p.draw(st.integers(1, 2)))]
        p.apply("concat", [i, *others], axis=axis)
    elif kind == "slice":
        starts, stops, steps = [], [], []
        for n in x.shape:
            lo = p.draw(st.integers(0, n - 1))
            starts.append(lo)
            stops.append(p.draw(st.integers(lo + 1, n)))
            steps.append(p.draw(st.integers(1, 3)))
        p.apply("slice", [i], starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))
    else:
        n = x.ndim
        low = tuple(p.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
        high = tuple(p.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
        interior = tuple(p.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
        value = p.literal(x.dtype)
        p.apply("pad", [i], low=low, high=high, interior=interior, value=value)


def gen_create(p: Program):
    kind = p.draw(st.sampled_from(["full", "iota", "philox"]))
    if kind == "full":
        dtype = p.draw(st.sampled_from(ALL))
        p.apply("full", [], shape=p.shape(), value=p.literal(dtype), dtype=dtype)
    elif kind == "iota":
        shape = p.shape(min_rank=1)
        axis = p.draw(st.integers(0, len(shape) - 1))
        dtype = p.draw(st.sampled_from([D.int64, D.int32, D.float32, D.float64]))
        p.apply("iota", [], shape=shape, axis=axis, dtype=dtype)
    else:
        seed = p.new_input((), D.int64, np.asarray(p.draw(st.integers(0, 2**40)), np.int64))
        offset = p.new_input((), D.int64, np.asarray(p.draw(st.integers(0, 100)), np.int64))
        dtype = p.draw(st.sampled_from([D.float32, D.float64]))
        p.apply("philox_uniform", [seed, offset], shape=p.shape(), dtype=dtype)


GENERATORS = [
    gen_unary,
    gen_unary,
    gen_binary,
    gen_binary,
    gen_where,
    gen_convert,
    gen_reduce,
    gen_reshape,
    gen_permute,
    gen_broadcast,
    gen_matmul,
    gen_gather_scatter,
    gen_concat_slice_pad,
    gen_create,
]


def draw_program(data) -> tuple[Program, list[int]]:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    p = Program(data, rng)
    for _ in range(data.draw(st.integers(1, 3))):
        p.new_input(p.shape(), data.draw(st.sampled_from(ALL)))
    for _ in range(data.draw(st.integers(1, 10))):
        data.draw(st.sampled_from(GENERATORS))(p)
    outputs = [len(p.pool) - 1]
    outputs += data.draw(st.lists(st.integers(0, len(p.pool) - 1), max_size=2))
    p.graph.set_outputs([p.pool[k] for k in outputs])
    return p, outputs


def assert_same_bits(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    assert actual.dtype == expected.dtype, what
    assert actual.shape == expected.shape, what
    assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes(), (
        f"{what}\n{actual!r}\n!=\n{expected!r}"
    )


def predicted_peak_bytes(graph: Graph) -> int:
    """The liveness model: a node result lives from its node to its last reader (outputs: to
    the end); the peak is the largest total over the nodes."""
    born = {node.output: i for i, node in enumerate(graph.nodes)}
    dies = dict(born)
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if isinstance(v, Value) and v in born:
                dies[v] = i
    for v in graph.outputs:
        if v in born:
            dies[v] = len(graph.nodes)
    return max(
        (
            sum(v.type.nbytes for v, b in born.items() if b <= i <= dies[v])
            for i in range(len(graph.nodes))
        ),
        default=0,
    )


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_random_graphs_match_eager_ember_bit_for_bit(data):
    p, outputs = draw_program(data)
    verify(p.graph)
    saved_inputs = [a.copy() for a in p.arrays]

    compiled = ReferenceBackend().compile(p.graph)
    results = compiled(*p.arrays)
    eager = replay_eager(p.steps)
    assert len(results) == len(outputs)
    for k, (got, index) in enumerate(zip(results, outputs)):
        assert_same_bits(got, eager[index].numpy(), f"output {k}\n{p.graph}")
    for a, saved in zip(p.arrays, saved_inputs):
        assert_same_bits(a, saved, "an input was modified")
    assert compiled.peak_live_bytes == predicted_peak_bytes(p.graph)

    # the same graph through its text form
    reparsed = parse_graph(format_graph(p.graph))
    for got, again in zip(results, run_graph(reparsed, p.arrays)):
        assert_same_bits(again, got, f"after parsing\n{p.graph}")

    # the null backend: zeros of the same shapes and dtypes, one launch per node
    null = NullBackend().compile(p.graph)
    for got, zero in zip(results, null(*p.arrays)):
        assert zero.shape == got.shape and zero.dtype == got.dtype and not zero.any()
    assert null.launches == len(p.graph.nodes)


# ---------------------------------------------------------------------------------------------
# Golden IR text
# ---------------------------------------------------------------------------------------------

MOVES = """\
graph @moves(%x: i64[2,3], %idx: i64[2,2]) -> (i64[3,2], i64[6], i64[2,5], i64[2], i64[2,2], i64[2,2], i64[4,3], i64[2,3], i64[3], i64[2,3]) {
  %0: i64[3,2] = permute(%x) {dims=[1,0]}
  %1: i64[6] = reshape(%x) {shape=[6]}
  %2: i64[2,5] = pad(%x) {low=[0,1], high=[0,1], interior=[0,0], value=-1}
  %3: i64[2] = reduce_sum(%x) {axes=[1]}
  %4: i64[2,2] = slice(%x) {starts=[0,0], stops=[2,3], steps=[1,2]}
  %5: i64[2,2] = gather(%x, %idx) {axis=1}
  %6: i64[4,3] = concat(%x, %x) {axis=0}
  %7: bool[2,3] = gt(%x, 3)
  %8: i64[2,3] = where(%7, %x, 0)
  %9: i64[3] = argmax(%x) {axis=0}
  %10: i64[3] = iota() {shape=[3], axis=0, dtype=i64}
  %11: i64[1,3] = reshape(%10) {shape=[1,3]}
  %12: i64[2,3] = broadcast_to(%11) {shape=[2,3]}
  %13: i64[2,3] = mul(%12, %x)
  return %0, %1, %2, %3, %4, %5, %6, %8, %9, %13
}
"""


def test_golden_data_movement_graph_gives_hand_computed_values():
    x = np.array([[1, 2, 3], [4, 5, 6]], np.int64)
    idx = np.array([[2, 0], [1, 1]], np.int64)
    expected = [
        [[1, 4], [2, 5], [3, 6]],
        [1, 2, 3, 4, 5, 6],
        [[-1, 1, 2, 3, -1], [-1, 4, 5, 6, -1]],
        [6, 15],
        [[1, 3], [4, 6]],
        [[3, 1], [5, 5]],
        [[1, 2, 3], [4, 5, 6], [1, 2, 3], [4, 5, 6]],
        [[0, 0, 0], [4, 5, 6]],
        [1, 1, 1],
        [[0, 2, 6], [0, 5, 12]],
    ]
    results = ReferenceBackend().compile(parse_graph(MOVES))(x, idx)
    assert len(results) == len(expected)
    for got, want in zip(results, expected):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.array(want, np.int64))


MLP = """\
graph @mlp(%x: f32[4,6], %w: f32[3,6], %b: f32[3]) -> (f32[4,3]) {
  %0: f32[6,3] = permute(%w) {dims=[1,0]}                       # model.py:12
  %1: f32[4,3] = matmul(%x, %0)                                 # model.py:12
  %2: f32[4,3] = broadcast_to(%b) {shape=[4,3]}                 # model.py:12
  %3: f32[4,3] = add(%1, %2)                                    # model.py:12
  %4: f32[4,3] = maximum(%3, 0.0)                               # model.py:13
  return %4
}
"""

SOFTMAX = """\
graph @softmax(%x: f64[2,4]) -> (f64[2,4]) {
  %0: f64[2] = reduce_max(%x) {axes=[1]}
  %1: f64[2,1] = reshape(%0) {shape=[2,1]}
  %2: f64[2,4] = broadcast_to(%1) {shape=[2,4]}
  %3: f64[2,4] = sub(%x, %2)
  %4: f64[2,4] = exp(%3)
  %5: f64[2] = reduce_sum(%4) {axes=[1]}
  %6: f64[2,1] = reshape(%5) {shape=[2,1]}
  %7: f64[2,4] = broadcast_to(%6) {shape=[2,4]}
  %8: f64[2,4] = div(%4, %7)
  return %8
}
"""


def test_golden_mlp_and_softmax_match_torch():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in [(4, 6), (3, 6), (3,)])
    (y,) = run_graph(parse_graph(MLP), [x, w, b])
    want = torch.relu(torch.from_numpy(x) @ torch.from_numpy(w).T + torch.from_numpy(b))
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-6, atol=1e-6)

    z = rng.standard_normal((2, 4)) * 10
    (s,) = run_graph(parse_graph(SOFTMAX), [z])
    np.testing.assert_allclose(s, torch.softmax(torch.from_numpy(z), 1).numpy(), rtol=1e-12)


def test_compiled_graph_is_reusable_and_describes_itself():
    compiled = ReferenceBackend().compile(parse_graph(MLP))
    assert isinstance(compiled, ReferenceCompiledGraph)
    assert compiled.backend_name == "reference" and compiled.graph.name == "mlp"
    assert compiled.compile_seconds > 0
    ones = np.ones((4, 6), np.float32)
    w = np.ones((3, 6), np.float32)
    (a,) = compiled(ones, w, np.zeros(3, np.float32))
    (b,) = compiled(-ones, w, np.full(3, 2.0, np.float32))
    np.testing.assert_array_equal(a, np.full((4, 3), 6.0, np.float32))
    np.testing.assert_array_equal(b, np.zeros((4, 3), np.float32))  # relu(-6 + 2)
    assert compiled.calls == 2
    assert "@mlp" in repr(compiled) and "'reference'" in repr(compiled)


def test_outputs_own_their_memory():
    text = """\
graph @views(%x: f32[2,3]) -> (f32[2,3], f32[3,2], f32[4,2,3], f32[2,3]) {
  %0: f32[3,2] = permute(%x) {dims=[1,0]}
  %1: f32[4,2,3] = broadcast_to(%x) {shape=[4,2,3]}
  return %x, %0, %1, %x
}
"""
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    outs = run_graph(parse_graph(text), [x])
    for out in outs:
        assert out.flags.writeable and not np.shares_memory(out, x)
    np.testing.assert_array_equal(outs[1], x.T)
    np.testing.assert_array_equal(outs[2][3], x)
    outs[0][...] = -1
    np.testing.assert_array_equal(x, np.arange(6, dtype=np.float32).reshape(2, 3))


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_input_count_shape_and_dtype_errors_name_the_graph_and_the_input():
    compiled = ReferenceBackend().compile(parse_graph(MLP))
    x, w, b = np.zeros((4, 6), np.float32), np.zeros((3, 6), np.float32), np.zeros(3, np.float32)

    with pytest.raises(GraphError) as err:
        compiled(x, w)
    assert str(err.value).startswith("@mlp: expects 3 inputs (f32[4,6], f32[3,6], f32[3]), got 2")
    assert err.value.loc.file == __file__  # the caller's line

    with pytest.raises(ShapeError) as err:
        compiled(x, np.zeros((3, 5), np.float32), b)
    assert str(err.value).startswith("@mlp: input 1 (%w) expects f32[3,6], got f32[3,5]")

    with pytest.raises(DTypeError) as err:
        compiled(x, w, np.zeros(3, np.float64))
    assert str(err.value).startswith("@mlp: input 2 (%b) expects f32[3], got f64[3]")

    with pytest.raises(DTypeError, match=r"input 0 \(%x\) expects f32\[4,6\], got i64\[4,6\]"):
        compiled(np.zeros((4, 6), np.int64), w, b)
    assert compiled.calls == 0


def test_kernel_failure_names_the_node_and_its_line():
    text = """\
graph @pick(%x: f32[3], %i: i64[2]) -> (f32[2]) {
  %0: f32[3] = neg(%x)
  %1: f32[2] = gather(%0, %i) {axis=0}                          # model.py:7
  return %1
}
"""
    compiled = ReferenceBackend().compile(parse_graph(text))
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(compiled(x, np.array([2, 0]))[0], [-3, -1])
    with pytest.raises(IndexOutOfRange) as err:
        compiled(x, np.array([0, 3]))
    message = str(err.value)
    assert message.startswith("gather: ") and "node %1" in message
    assert "operands f32[3], i64[2]" in message and message.endswith("at model.py:7")


def test_kernel_returning_the_wrong_type_is_caught(monkeypatch):
    monkeypatch.setattr(PRIMITIVES["neg"], "impl", lambda x: x.astype(np.float64))
    graph = parse_graph(
        "graph @g(%x: f32[3]) -> (f32[3]) {\n  %0: f32[3] = neg(%x)  # m.py:2\n  return %0\n}\n"
    )
    with pytest.raises(
        GraphError,
        match=r"neg: kernel returned f64\[3\] for node %0 where the graph says f32\[3\] at m.py:2",
    ):
        run_graph(graph, [np.zeros(3, np.float32)])


def test_missing_kernel_is_reported_by_supports_and_compile(monkeypatch):
    text = """\
graph @g(%x: f32[3]) -> (f32[3]) {
  %0: f32[3] = exp(%x)
  %1: f32[3] = erf(%0)                                          # model.py:3
  return %1
}
"""
    monkeypatch.setattr(PRIMITIVES["erf"], "impl", None)
    graph = parse_graph(text)
    backend = ReferenceBackend()
    verdict = backend.supports(graph)
    assert (
        verdict == "node %1 (erf at model.py:3) has no numpy kernel registered (import ember first)"
    )
    assert backend.available() == "no numpy kernel registered for erf (import ember first)"
    with pytest.raises(
        BackendError, match="backend 'reference' cannot compile this graph: node %1"
    ):
        backend.compile(graph)
    # the null backend runs nothing, so it does not need kernels
    assert NullBackend().supports(graph) is True


# ---------------------------------------------------------------------------------------------
# Liveness: intermediates are released after their last use
# ---------------------------------------------------------------------------------------------


def chain_graph(length: int, shape=(128, 128)) -> Graph:
    g = Graph("chain")
    x = g.add_input(TensorType(shape, D.float64), "x")
    with GraphBuilder(g):
        v = x
        for k in range(length):
            v = ops.neg(v) if k % 2 else ops.add(v, 1.0)
    g.set_outputs([v])
    return g


def test_a_long_chain_holds_two_arrays_at_a_time():
    graph = chain_graph(64)
    compiled = ReferenceBackend().compile(graph)
    (out,) = compiled(np.zeros((128, 128)))
    np.testing.assert_array_equal(out, np.zeros((128, 128)))  # (0+1), -1, (-1+1), -0 ... = 0
    nbytes = 128 * 128 * 8
    assert compiled.peak_live_arrays == 2
    assert compiled.peak_live_bytes == 2 * nbytes <= predicted_peak_bytes(graph)


def test_a_value_read_late_stays_alive_until_its_last_reader():
    g = Graph("diamond")
    x = g.add_input(TensorType((64,), D.float32), "x")
    with GraphBuilder(g):
        a = ops.exp(x)
        v = a
        for _ in range(10):
            v = ops.neg(v)
        unused = ops.sin(a)  # nobody reads it: released at once
        out = ops.add(v, a)
    del unused
    g.set_outputs([out])
    compiled = ReferenceBackend().compile(g)
    (y,) = compiled(np.zeros(64, np.float32))
    np.testing.assert_array_equal(y, np.full(64, 2.0, np.float32))
    assert compiled.peak_live_arrays == 3  # a, and two of the chain
    assert compiled.peak_live_bytes == 3 * 64 * 4 == predicted_peak_bytes(g)


def test_released_intermediates_are_really_freed():
    graph = chain_graph(48, shape=(256, 256))  # 512 KiB per array, 24 MiB if nothing were freed
    compiled = ReferenceBackend().compile(graph)
    x = np.zeros((256, 256))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        (out,) = compiled(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 4 * x.nbytes


# ---------------------------------------------------------------------------------------------
# The null backend
# ---------------------------------------------------------------------------------------------


def test_null_backend_returns_zeros_and_counts_kernels():
    text = """\
graph @mixed(%x: bf16[2,3], %y: f32[2,3]@cuda) -> (bf16[3], i64[2], bool[2,3]@cuda, f32[2,3]@cuda) {
  %0: bf16[3] = reduce_sum(%x) {axes=[0]}
  %1: i64[2] = argmax(%x) {axis=1}
  %2: f32[2,3]@cuda = exp(%y)
  %3: bool[2,3]@cuda = gt(%2, 1.0)
  %4: f32[2,3]@cuda = exp(%2)
  return %0, %1, %3, %4
}
"""
    backend = NullBackend()
    graph = parse_graph(text)
    compiled = backend.compile(graph)
    x = np.ones((2, 3), D.bfloat16.np)
    y = np.ones((2, 3), np.float32)
    for _ in range(3):
        outs = compiled(x, y)
    expected = [((3,), D.bfloat16.np), ((2,), np.int64), ((2, 3), np.bool_), ((2, 3), np.float32)]
    assert [(o.shape, o.dtype) for o in outs] == expected
    assert all(not o.any() for o in outs)
    assert compiled.kernels_per_call == 5
    assert compiled.launches == 15 and compiled.calls == 3
    assert compiled.ops_per_call == Counter({"exp": 2, "reduce_sum": 1, "argmax": 1, "gt": 1})

    other = backend.compile(chain_graph(4))
    other(np.zeros((128, 128)))
    assert other.launches == 4 and backend.launches == 19

    with pytest.raises(DTypeError, match=r"@mixed: input 1 \(%y\) expects f32\[2,3\]@cuda"):
        compiled(x, y.astype(np.float64))


def test_null_backend_verifies_the_graph():
    graph = parse_graph(MLP)
    graph.nodes[3].output.type = TensorType((4, 4), D.float32)  # a pass that broke a type
    with pytest.raises(
        GraphError, match=r"output %3 has type f32\[4,4\] but add derives f32\[4,3\]"
    ):
        NullBackend().compile(graph)
