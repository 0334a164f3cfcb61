"""The IR text format: golden printer output, parse/print round trips and parser errors."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.ir import Graph, GraphError, SourceLoc, TensorType, format_graph, parse_graph, verify
from ember.ir import dtypes as D


def L(line, file="/home/user/model.py"):
    return SourceLoc(file, line)


# ---------------------------------------------------------------------------------------------
# Golden graphs: built with Graph.add, printed text written out by hand.
# ---------------------------------------------------------------------------------------------


def mlp_graph():
    g = Graph("mlp")
    x = g.add_input(TensorType((512, 784), D.float32), "x")
    w = g.add_input(TensorType((128, 784), D.float32), "w")
    b = g.add_input(TensorType((128,), D.float32), "b")
    wt = g.add("permute", [w], {"dims": (1, 0)}, L(12))
    h = g.add("matmul", [x, wt], {}, L(12))
    bb = g.add("broadcast_to", [b], {"shape": (512, 128)}, L(12))
    h = g.add("add", [h, bb], {}, L(12))
    y = g.add("maximum", [h, 0.0], {}, L(13))
    g.set_outputs([y])
    return g


MLP = """\
graph @mlp(%x: f32[512,784], %w: f32[128,784], %b: f32[128]) -> (f32[512,128]) {
  %0: f32[784,128] = permute(%w) {dims=[1,0]}                   # model.py:12
  %1: f32[512,128] = matmul(%x, %0)                             # model.py:12
  %2: f32[512,128] = broadcast_to(%b) {shape=[512,128]}         # model.py:12
  %3: f32[512,128] = add(%1, %2)                                # model.py:12
  %4: f32[512,128] = maximum(%3, 0.0)                           # model.py:13
  return %4
}
"""


def reduction_graph():
    g = Graph("stats")
    x = g.add_input(TensorType((4, 8, 16), D.float32), "x")
    s = g.add("reduce_sum", [x], {"axes": (1, 2)}, L(3, "stats.py"))
    m = g.add("mul", [s, 0.0078125], {}, L(3, "stats.py"))
    mx = g.add("reduce_max", [x], {"axes": (0,)})
    am = g.add("argmax", [mx], {"axis": 1}, L(5, "stats.py"))
    g.set_outputs([m, am])
    return g


REDUCTION = """\
graph @stats(%x: f32[4,8,16]) -> (f32[4], i64[8]) {
  %0: f32[4] = reduce_sum(%x) {axes=[1,2]}                      # stats.py:3
  %1: f32[4] = mul(%0, 0.0078125)                               # stats.py:3
  %2: f32[8,16] = reduce_max(%x) {axes=[0]}
  %3: i64[8] = argmax(%2) {axis=1}                              # stats.py:5
  return %1, %3
}
"""


def pad_slice_graph():
    g = Graph("crop")
    x = g.add_input(TensorType((3, 5), D.int32), "img.0")
    y = g.add_input(TensorType((2, 2), D.float32, "cuda"), "0y")
    pad = {"low": (1, 0), "high": (0, 2), "interior": (1, 0), "value": 0}
    p = g.add("pad", [x], pad, L(20))
    s = g.add("slice", [p], {"starts": (0, 1), "stops": (6, 7), "steps": (2, 3)}, L(21))
    pad = {"low": (0, 0), "high": (1, 1), "interior": (0, 0), "value": -math.inf}
    q = g.add("pad", [y], pad, L(22))
    g.set_outputs([s, q])
    return g


PAD_SLICE = """\
graph @crop(%img.0: i32[3,5], %_0y: f32[2,2]@cuda) -> (i32[3,2], f32[3,3]@cuda) {
  %0: i32[6,7] = pad(%img.0) {low=[1,0], high=[0,2], interior=[1,0], value=0}  # model.py:20
  %1: i32[3,2] = slice(%0) {starts=[0,1], stops=[6,7], steps=[2,3]}  # model.py:21
  %2: f32[3,3]@cuda = pad(%_0y) {low=[0,0], high=[1,1], interior=[0,0], value=-inf}  # model.py:22
  return %1, %2
}
"""


def casts_graph():
    g = Graph("casts")
    x = g.add_input(TensorType((2,), D.float32), "x")
    h = g.add("convert", [x], {"dtype": D.float16}, L(7, "amp.py"))
    f = g.add("full", [], {"shape": (2,), "value": 1.5, "dtype": D.float32}, L(8, "amp.py"))
    s = g.add("add", [x, f], {}, L(8, "amp.py"))
    i = g.add("convert", [s], {"dtype": D.bool_}, L(9, "amp.py"))
    g.set_outputs([h, i])
    return g


CASTS = """\
graph @casts(%x: f32[2]) -> (f16[2], bool[2]) {
  %0: f16[2] = convert(%x) {dtype=f16}                          # amp.py:7
  %1: f32[2] = full() {shape=[2], value=1.5, dtype=f32}         # amp.py:8
  %2: f32[2] = add(%x, %1)                                      # amp.py:8
  %3: bool[2] = convert(%2) {dtype=bool}                        # amp.py:9
  return %0, %3
}
"""


def select_graph():
    g = Graph("select")
    a = g.add_input(TensorType((3,), D.float32), "a")
    n = g.add_input(TensorType((3,), D.int64), None)
    a2 = g.add_input(TensorType((3,), D.float32), "a")
    c = g.add("gt", [a, -math.inf], {}, L(40, "select.py"))
    d = g.add("eq", [n, 0], {}, L(41, "select.py"))
    e = g.add("lt", [n, -3], {}, L(41, "select.py"))
    m = g.add("logical_and", [c, d], {}, L(42, "select.py"))
    m = g.add("logical_or", [m, e], {}, L(42, "select.py"))
    w = g.add("where", [m, a, math.nan], {}, L(43, "select.py"))
    k = g.add("where", [m, True, c], {}, L(44, "select.py"))
    z = g.add("where", [k, a2, 1e-05], {}, L(45, "select.py"))
    g.set_outputs([w, k, z])
    return g


SELECT = """\
graph @select(%a: f32[3], %arg1: i64[3], %a_1: f32[3]) -> (f32[3], bool[3], f32[3]) {
  %0: bool[3] = gt(%a, -inf)                                    # select.py:40
  %1: bool[3] = eq(%arg1, 0)                                    # select.py:41
  %2: bool[3] = lt(%arg1, -3)                                   # select.py:41
  %3: bool[3] = logical_and(%0, %1)                             # select.py:42
  %4: bool[3] = logical_or(%3, %2)                              # select.py:42
  %5: f32[3] = where(%4, %a, nan)                               # select.py:43
  %6: bool[3] = where(%4, true, %0)                             # select.py:44
  %7: f32[3] = where(%6, %a_1, 1e-05)                           # select.py:45
  return %5, %6, %7
}
"""

GOLDENS = [
    (mlp_graph, MLP),
    (reduction_graph, REDUCTION),
    (pad_slice_graph, PAD_SLICE),
    (casts_graph, CASTS),
    (select_graph, SELECT),
]


@pytest.mark.parametrize("build,text", GOLDENS, ids=lambda x: getattr(x, "__name__", ""))
def test_golden_print(build, text):
    assert format_graph(build()) == text
    assert str(build()) == text


@pytest.mark.parametrize("build,text", GOLDENS, ids=lambda x: getattr(x, "__name__", ""))
def test_golden_round_trip(build, text):
    g = parse_graph(text)
    assert format_graph(g) == text
    verify(g)


def test_parse_mlp_structure():
    g = parse_graph(MLP)
    assert g.name == "mlp"
    assert [v.name for v in g.inputs] == ["x", "w", "b"]
    assert [str(v.type) for v in g.inputs] == ["f32[512,784]", "f32[128,784]", "f32[128]"]
    assert [n.op for n in g.nodes] == ["permute", "matmul", "broadcast_to", "add", "maximum"]
    permute, matmul, _, _, maximum = g.nodes
    assert permute.attrs == {"dims": (1, 0)} and type(permute.attrs["dims"]) is tuple
    assert permute.inputs == [g.inputs[1]]
    assert matmul.inputs == [g.inputs[0], permute.output]
    assert permute.loc == SourceLoc("model.py", 12)
    assert maximum.loc == SourceLoc("model.py", 13)
    assert maximum.inputs[1] == 0.0 and type(maximum.inputs[1]) is float
    assert g.outputs == [maximum.output]
    assert maximum.output.producer is maximum


def test_parse_literal_and_attr_types():
    g = parse_graph(SELECT)
    literals = [x for n in g.nodes for x in n.inputs if not hasattr(x, "type")]
    assert [(type(x), x) for x in literals if not math.isnan(x)] == [
        (float, -math.inf), (int, 0), (int, -3), (bool, True), (float, 1e-05),
    ]  # fmt: skip
    assert sum(1 for x in literals if isinstance(x, float) and math.isnan(x)) == 1
    g = parse_graph(CASTS)
    assert g.nodes[0].attrs == {"dtype": D.float16}
    full = g.nodes[1].attrs
    assert full == {"shape": (2,), "value": 1.5, "dtype": D.float32}
    assert type(full["value"]) is float and full["dtype"] is D.float32
    assert g.nodes[3].attrs["dtype"] is D.bool_
    g = parse_graph(PAD_SLICE)
    assert g.inputs[1].type == TensorType((2, 2), D.float32, "cuda")
    assert g.nodes[0].attrs["value"] == 0 and type(g.nodes[0].attrs["value"]) is int
    assert g.nodes[2].attrs["value"] == -math.inf
    assert g.nodes[2].output.type.device == "cuda"
    assert [v.name for v in g.inputs] == ["img.0", "_0y"]


def test_parse_accepts_edge_forms():
    text = (
        "graph @empty.1() -> () {\n"
        "  return \n"
        "}\n"
    )  # fmt: skip
    g = parse_graph(text)
    assert g.name == "empty.1" and g.inputs == [] and g.nodes == [] and g.outputs == []
    assert format_graph(g) == text
    text = (
        "graph @g(%x: f64[]@cuda:1) -> (f64[]@cuda:1, f64[]@cuda:1) {\n"
        "  %0: f64[]@cuda:1 = add(%x, 1e+16)                             # my file.py:9\n"
        "  %1: f64[]@cuda:1 = mul(%0, -0.0)                              # a:b.py:10\n"
        "  return %1, %x\n"
        "}\n"
    )
    g = parse_graph(text)
    assert format_graph(g) == text
    assert g.nodes[0].loc == SourceLoc("my file.py", 9)
    assert g.nodes[1].loc == SourceLoc("a:b.py", 10)
    assert g.nodes[0].inputs[1] == 1e16 and type(g.nodes[0].inputs[1]) is float
    assert math.copysign(1.0, g.nodes[1].inputs[1]) == -1.0
    # Long dtype names are accepted in attributes; they print back as short names.
    g = parse_graph(
        "graph @c(%x: i8[2]) -> (f32[2]) {\n"
        "  %0: f32[2] = convert(%x) {dtype=float32}\n"
        "  return %0\n"
        "}\n"
    )
    assert g.nodes[0].attrs["dtype"] is D.float32
    assert "convert(%x) {dtype=f32}\n" in format_graph(g)


# ---------------------------------------------------------------------------------------------
# Round trips of random valid graphs.
# ---------------------------------------------------------------------------------------------

FLOATS = [d for d in D.ALL_DTYPES if d.is_floating_point]
UNARY_ANY = ["neg", "abs", "sign", "floor", "ceil", "round", "trunc", "logical_not"]
UNARY_FLOAT = ["exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf",
               "log1p", "expm1"]  # fmt: skip
BINARY_ANY = ["add", "sub", "mul", "maximum", "minimum", "remainder", "floordiv", "pow",
              "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"]  # fmt: skip
BINARY_INT = ["bitwise_and", "bitwise_or", "bitwise_xor", "lshift", "rshift"]

literals = st.one_of(
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
)
locs = st.one_of(
    st.none(),
    st.builds(
        SourceLoc,
        st.sampled_from(["m.py", "/a/b/train.py", "my file.py", "x:y.py", "t-1.py"]),
        st.integers(0, 10**6),
    ),
)
names = st.one_of(st.none(), st.text(alphabet="ax0_.- %@é", max_size=4))


@st.composite
def random_graphs(draw):
    g = Graph(draw(st.sampled_from(["main", "g", "net.1", "step_2"])))
    values = []
    for _ in range(draw(st.integers(1, 3))):
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        dtype = draw(st.sampled_from(D.ALL_DTYPES))
        device = draw(st.sampled_from(["cpu", "cpu", "cuda", "cuda:1"]))
        values.append(g.add_input(TensorType(shape, dtype, device), draw(names)))
    for _ in range(draw(st.integers(0, 10))):
        x = draw(st.sampled_from(values))
        loc = draw(locs)
        kind = draw(st.sampled_from(["unary", "binary", "literal", "where", "reshape",
                                     "permute", "broadcast", "reduce", "convert"]))  # fmt: skip
        if kind == "unary":
            ops = UNARY_ANY + (UNARY_FLOAT if x.dtype.is_floating_point else ["bitwise_not"])
            y = g.add(draw(st.sampled_from(ops)), [x], {}, loc)
        elif kind in ("binary", "literal"):
            ops = BINARY_ANY + (["div"] if x.dtype.is_floating_point else BINARY_INT)
            if kind == "binary":
                other = draw(st.sampled_from([v for v in values if v.type == x.type]))
            else:
                other = draw(literals)
            pair = [x, other] if draw(st.booleans()) else [other, x]
            y = g.add(draw(st.sampled_from(ops)), pair, {}, loc)
        elif kind == "where":
            cond = g.add("ge", [x, draw(literals)], {}, draw(locs))
            other = draw(st.one_of(literals, st.just(x)))
            y = g.add("where", [cond, x, other], {}, loc)
        elif kind == "reshape":
            n = math.prod(x.shape)
            choices = [(n,), tuple(reversed(x.shape)), (1, *x.shape, 1)]
            y = g.add("reshape", [x], {"shape": draw(st.sampled_from(choices))}, loc)
        elif kind == "permute":
            dims = tuple(draw(st.permutations(range(x.ndim))))
            y = g.add("permute", [x], {"dims": dims}, loc)
        elif kind == "broadcast":
            lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
            rest = tuple(draw(st.integers(0, 3)) if d == 1 else d for d in x.shape)
            y = g.add("broadcast_to", [x], {"shape": list(lead + rest)}, loc)
        elif kind == "reduce":
            axes = draw(st.permutations(range(x.ndim)))[: draw(st.integers(0, x.ndim))]
            y = g.add("reduce_sum", [x], {"axes": tuple(axes)}, loc)
        else:
            y = g.add("convert", [x], {"dtype": draw(st.sampled_from(D.ALL_DTYPES))}, loc)
        values.append(y)
    outs = draw(st.lists(st.sampled_from(values), max_size=3))
    g.set_outputs(outs)
    return g


def _same_literal(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs())
def test_random_graph_round_trip(g):
    verify(g)
    text = format_graph(g)
    g2 = parse_graph(text)
    assert format_graph(g2) == text
    verify(g2)
    assert g2.name == g.name
    assert [v.type for v in g2.inputs] == [v.type for v in g.inputs]
    assert len(g2.nodes) == len(g.nodes)
    index = {v: i for i, v in enumerate(g.inputs)} | {n.output: ("n", i) for i, n in
                                                       enumerate(g.nodes)}  # fmt: skip
    index2 = {v: i for i, v in enumerate(g2.inputs)} | {n.output: ("n", i) for i, n in
                                                        enumerate(g2.nodes)}  # fmt: skip
    for n, n2 in zip(g.nodes, g2.nodes):
        assert n2.op == n.op and n2.output.type == n.output.type
        assert {k: tuple(v) if isinstance(v, list) else v for k, v in n.attrs.items()} == n2.attrs
        assert (n2.loc is None) == (n.loc is None)
        if n.loc is not None:
            assert str(n2.loc) == str(n.loc) and n2.loc.line == n.loc.line
        for a, b in zip(n.inputs, n2.inputs, strict=True):
            if hasattr(a, "type"):
                assert index[a] == index2[b]
            else:
                assert _same_literal(a, b), (a, b)
    assert [index[v] for v in g.outputs] == [index2[v] for v in g2.outputs]


# ---------------------------------------------------------------------------------------------
# Parser errors: GraphError, op "parse", naming the text line and what was expected.
# ---------------------------------------------------------------------------------------------

HEADER = "graph @g(%x: f32[2,3], %i: i64[3]) -> (f32[2,3]) {\n"


def parse_error(text):
    with pytest.raises(GraphError) as info:
        parse_graph(text)
    err = info.value
    assert err.op == "parse"
    assert str(err).startswith("parse: " + err.detail)
    return err.detail


@pytest.mark.parametrize(
    "body,detail",
    [
        ("  %0: f32[2,3] = neg(%x)\n  %1: f32[2,3] = add(%0, %x {alpha=1}\n  return %1\n}\n",
         "line 3: expected ')' after operands, found '{'"),
        ("  %0: f32[2,3] = neg(%x) $\n  return %0\n}\n",
         "line 2: unexpected character '$'"),
        ("  %0: f32[2,3] = neg(%y)\n  return %0\n}\n",
         "line 2: '%y' is not defined"),
        ("  %0: f32[2,3] = neg(%x)\n  return %1\n}\n",
         "line 3: '%1' is not defined"),
        ("  %0: f32[2,3] = neg(%x)\n  %1: f32[2,3] = add(%0, %1)\n  return %1\n}\n",
         "line 3: '%1' is not defined"),
        ("  %0: f32[3,2] = neg(%x)\n  return %0\n}\n",
         "line 2: '%0' is declared as f32[3,2] but neg derives f32[2,3]"),
        ("  %0: f32[2,3]@cuda = neg(%x)\n  return %0\n}\n",
         "line 2: '%0' is declared as f32[2,3]@cuda but neg derives f32[2,3]"),
        ("  %0: f32[2,3] = neg(%x)\n  %0: f32[2,3] = exp(%x)\n  return %0\n}\n",
         "line 3: '%0' is defined twice"),
        ("  %x: f32[2,3] = neg(%x)\n  return %x\n}\n",
         "line 2: '%x' is defined twice"),
        ("  %0: f32[2,3] = softmax(%x)  # m.py:3\n  return %0\n}\n",
         "line 2: unknown op 'softmax'"),
        ("  %0: f32[2,3] = neg(%x)  # model.py\n  return %0\n}\n",
         "line 2: expected '# file:line' after the node, found '# model.py'"),
        ("  %0: f32[2,3] = neg(%x)\n  return %0\n",
         "line 4: expected '}' after 'return', found end of text"),
        ("  %0: f32[2,3] = neg(%x)\n  return %0\n}\n}\n",
         "line 5: expected end of text after '}', found '}'"),
        ("  %0: f32[2,3] = neg(%x)\n  return %i\n}\n",
         "line 3: returns (i64[3]) but the header declares (f32[2,3])"),
        ("  %0: f32[2,3] = neg(%x)\n  neg(%x)\n  return %0\n}\n",
         "line 3: expected a node or 'return', found 'neg'"),
        ("  %0: f32[2,-3] = neg(%x)\n  return %0\n}\n",
         "line 2: expected a dimension size, found '-3'"),
        ("  %0: f33[2,3] = neg(%x)\n  return %0\n}\n",
         "line 2: expected a dtype such as 'f32', found 'f33'"),
        ("  %0: f32[2,3] neg(%x)\n  return %0\n}\n",
         "line 2: expected '=' after the node type, found 'neg'"),
        ("  %0: f32[2,3] = neg(%x,)\n  return %0\n}\n",
         "line 2: expected an operand ('%name' or a literal), found ')'"),
        ("  %0: f32[2,3] = add(%x, yes)\n  return %0\n}\n",
         "line 2: expected an operand ('%name' or a literal), found 'yes'"),
        ("  %0: f32[3] = reduce_sum(%x) {axes=[0] dims=[1]}\n  return %0\n}\n",
         "line 2: expected ',' or '}' after an attribute, found 'dims'"),
        ("  %0: f32[3] = reduce_sum(%x) {axes=[0], axes=[0]}\n  return %0\n}\n",
         "line 2: attribute 'axes' is given twice"),
        ("  %0: f32[3] = reduce_sum(%x) {axes=[0,}\n  return %0\n}\n",
         "line 2: expected an attribute value, found '}'"),
        ("  %0: f32[3] = reduce_sum(%x) {axes=zero}\n  return %0\n}\n",
         "line 2: expected an attribute value, found 'zero'"),
        ('  %0: f32[2] = full() {shape=[2], value="a\n',
         "line 2: unterminated string"),
        ("  %0: f32[2,3] = neg(%x)\n\n\n  %1: f32[2,3] = neg(%)\n  return %0\n}\n",
         "line 5: expected a name after '%'"),
    ],
)  # fmt: skip
def test_parse_errors(body, detail):
    assert parse_error(HEADER + body) == detail


def test_parse_header_errors():
    assert parse_error("grph @g() -> () {\n") == "line 1: expected 'graph', found 'grph'"
    assert parse_error("\n\ngraph g() -> () {\n") == (
        "line 3: expected '@name' after 'graph', found 'g'"
    )
    assert parse_error("graph @g(%x f32[2]) -> () {\n") == (
        "line 1: expected ':' after '%x', found 'f32'"
    )
    assert parse_error("graph @g(%x: f32[2], %x: f32[2]) -> () {\n  return\n}\n") == (
        "line 1: '%x' is defined twice"
    )
    assert parse_error("graph @g(%x: f32[2]) (f32[2]) {\n") == (
        "line 1: expected '->' after graph inputs, found '('"
    )
    assert parse_error("graph @g(%x: f32[2]) -> (f32[2]) { return %x\n}\n") == (
        "line 1: expected end of line after '{', found 'return'"
    )


def test_parse_errors_from_shape_rules_name_the_line():
    text = HEADER + "  %0: f32[2,3] = add(%x, %i)  # model.py:4\n  return %0\n}\n"
    assert parse_error(text) == (
        "line 2: invalid node: add: operands f32[2,3], i64[3] differ in shape at model.py:4"
    )
    text = HEADER + "  %0: f32[2,3] = add(%x, 1) {alpha=2}  # model.py:4\n  return %0\n}\n"
    assert parse_error(text) == (
        "line 2: invalid node: add: unknown attribute 'alpha' at model.py:4"
    )
    # Strings and nested lists reach the rule as str and nested tuples.
    text = (
        HEADER
        + '  %0: f32[2] = full() {shape=[2], value="a \\"q\\" \\\\ b", dtype=f32}  # m.py:1\n'
    )
    assert parse_error(text) == (
        "line 2: invalid node: full: value must be a number, got 'a \"q\" \\\\ b' at m.py:1"
    )
    text = (
        HEADER + "  %0: f32[2] = full() {shape=[2], value=[[1,2],[],[3.0]], dtype=f32}  # m.py:1\n"
    )
    assert parse_error(text) == (
        "line 2: invalid node: full: value must be a number, got ((1, 2), (), (3.0,)) at m.py:1"
    )
