"""The verifier: a sound graph passes; each broken invariant is reported with op and location."""

import inspect

import pytest

from ember.ir import (
    DTypeError,
    Graph,
    GraphError,
    ShapeError,
    SourceLoc,
    TensorType,
    parse_graph,
    verify,
)
from ember.ir import dtypes as D
from ember.ir.graph import Node, Value


def L(line):
    return SourceLoc("/home/user/model.py", line)


def mlp():
    """%0 permute (12), %1 matmul (12), %2 broadcast_to (13), %3 add (13), %4 maximum (14)."""
    g = Graph("mlp")
    x = g.add_input(TensorType((512, 784), D.float32), "x")
    w = g.add_input(TensorType((128, 784), D.float32), "w")
    b = g.add_input(TensorType((128,), D.float32), "b")
    wt = g.add("permute", [w], {"dims": (1, 0)}, L(12))
    h = g.add("matmul", [x, wt], {}, L(12))
    bb = g.add("broadcast_to", [b], {"shape": (512, 128)}, L(13))
    h = g.add("add", [h, bb], {}, L(13))
    y = g.add("maximum", [h, 0.0], {}, L(14))
    g.set_outputs([y])
    return g


def verify_error(g, exc=GraphError):
    with pytest.raises(exc) as info:
        verify(g)
    assert type(info.value) is exc
    return str(info.value)


def test_sound_graphs_verify():
    verify(mlp())
    verify(Graph("empty"))
    g = Graph("passthrough")
    x = g.add_input(TensorType((2,), D.int8, "cuda"), "x")
    g.set_outputs([x, x])
    verify(g)
    g = Graph("create")
    f = g.add("full", [], {"shape": (2, 2), "value": 0.5, "dtype": D.float16})
    i = g.add("iota", [], {"shape": (2, 2), "axis": 0, "dtype": D.int64})
    g.set_outputs([f, i])
    verify(g)


def test_verify_returns_none_and_does_not_change_the_graph():
    g = mlp()
    before = str(g)
    assert verify(g) is None
    assert str(g) == before


def test_use_before_def_after_reordering():
    g = mlp()
    g.nodes[0], g.nodes[1] = g.nodes[1], g.nodes[0]
    assert verify_error(g) == (
        "matmul: operand 1 (%1) is not a graph input or defined by an earlier node at model.py:12"
    )


def test_foreign_value():
    g = mlp()
    other = Graph("other")
    z = other.add_input(TensorType((512, 128), D.float32), "z")
    g.nodes[4].inputs[0] = z
    assert verify_error(g) == (
        "maximum: operand 0 (a value of type f32[512,128]) is not a graph input or defined "
        "by an earlier node at model.py:14"
    )


def test_operand_that_is_not_a_value_or_literal():
    g = mlp()
    g.nodes[4].inputs[1] = "0.0"
    assert verify_error(g) == (
        "maximum: operand 1 is neither a value nor a scalar literal: '0.0' at model.py:14"
    )


def test_value_defined_twice():
    g = mlp()
    g.nodes.append(g.nodes[4])
    assert verify_error(g) == "maximum: output %5 is already defined as %4 at model.py:14"

    g = mlp()
    x = g.inputs[0]
    node = Node("neg", [x], {}, x, L(30))  # defines a graph input again
    g.nodes.insert(0, node)
    assert verify_error(g) == "neg: output %0 is already defined as graph input 0 at model.py:30"

    g = mlp()
    g.inputs.append(g.inputs[1])
    with pytest.raises(GraphError) as info:
        line = inspect.currentframe().f_lineno + 1
        verify(g)
    assert str(info.value) == (
        f"verify: graph input 3 is already defined as graph input 1 at test_verifier.py:{line}"
    )


def test_unknown_op():
    g = mlp()
    g.nodes[3].op = "fused_add"
    assert verify_error(g) == "fused_add: unknown primitive at model.py:13"


def test_attributes_must_match_the_primitive():
    g = mlp()
    del g.nodes[0].attrs["dims"]
    assert verify_error(g) == (
        "permute: attributes do not match (expected: dims; missing dims) at model.py:12"
    )
    g = mlp()
    g.nodes[1].attrs["transpose_b"] = True
    assert verify_error(g) == (
        "matmul: attributes do not match (expected: none; unknown transpose_b) at model.py:12"
    )
    g = mlp()
    g.nodes[2].attrs = {"size": (512, 128)}
    assert verify_error(g) == (
        "broadcast_to: attributes do not match (expected: shape; missing shape; unknown size) "
        "at model.py:13"
    )


def test_output_type_must_match_the_rule():
    g = mlp()
    g.nodes[4].output.type = TensorType((512, 128), D.float16)
    assert verify_error(g) == (
        "maximum: output %4 has type f16[512,128] but maximum derives f32[512,128] at model.py:14"
    )
    g = mlp()
    g.nodes[0].output.type = TensorType((784, 128), D.float32, "cuda")
    assert verify_error(g) == (
        "permute: output %0 has type f32[784,128]@cuda but permute derives f32[784,128] "
        "at model.py:12"
    )
    # A changed attribute makes the recorded type stale.
    g = mlp()
    g.nodes[2].attrs["shape"] = (1, 512, 128)
    assert verify_error(g) == (
        "broadcast_to: output %2 has type f32[512,128] but broadcast_to derives f32[1,512,128] "
        "at model.py:13"
    )


def test_rule_errors_propagate_with_the_node_location():
    g = mlp()
    g.inputs[0].type = TensorType((512, 100), D.float32)
    assert verify_error(g, ShapeError) == (
        "matmul: shapes f32[512,100] and f32[784,128] do not match (100 != 784) at model.py:12"
    )
    g = mlp()
    g.nodes[3].inputs[1] = g.inputs[2]
    assert verify_error(g, ShapeError) == (
        "add: operands f32[512,128], f32[128] differ in shape at model.py:13"
    )
    g = mlp()
    g.nodes[0].output.type = TensorType((784, 128), D.float64)
    assert verify_error(g) == (
        "permute: output %0 has type f64[784,128] but permute derives f32[784,128] at model.py:12"
    )
    g.nodes[0].output.type = TensorType((784, 128), D.float32)
    g.inputs[1].type = TensorType((128, 784), D.int32)
    assert verify_error(g) == (
        "permute: output %0 has type f32[784,128] but permute derives i32[784,128] at model.py:12"
    )
    g.nodes[0].output.type = TensorType((784, 128), D.int32)
    assert verify_error(g, DTypeError) == (
        "matmul: operands f32[512,784] and i32[784,128] differ in dtype at model.py:12"
    )


def test_graph_output_must_be_defined():
    g = mlp()
    removed = g.nodes.pop()
    assert g.outputs == [removed.output]
    assert verify_error(g) == (
        "verify: graph output 0 (a value of type f32[512,128]) is not defined in @mlp "
        "at model.py:14"
    )
    g = mlp()
    g.outputs.append(Value(TensorType((3,), D.bool_)))
    with pytest.raises(GraphError) as info:
        line = inspect.currentframe().f_lineno + 1
        verify(g)
    assert str(info.value) == (
        f"verify: graph output 1 (a value of type bool[3]) is not defined in @mlp "
        f"at test_verifier.py:{line}"
    )


def test_producer_must_be_the_defining_node():
    g = mlp()
    g.nodes[4].output.producer = g.nodes[3]
    assert verify_error(g) == (
        "maximum: output %4 has producer Node(add, 2 inputs), not the node that defines it "
        "at model.py:14"
    )
    g = mlp()
    g.nodes[1].output.producer = None
    assert verify_error(g) == (
        "matmul: output %1 has producer None, not the node that defines it at model.py:12"
    )
    g = mlp()
    g.inputs[2].producer = g.nodes[2]
    assert verify_error(g) == (
        "verify: graph input 2 (%b) has producer Node(broadcast_to, 1 inputs); inputs have none "
        "at model.py:13"
    )


def test_node_without_location_names_the_caller():
    # The location is the innermost frame outside ember: here, this test's call to verify.
    g = Graph("g")
    x = g.add_input(TensorType((2,), D.float32), "x")
    g.add("neg", [x])
    g.nodes[0].attrs["axes"] = (0,)
    with pytest.raises(GraphError) as info:
        line = inspect.currentframe().f_lineno + 1
        verify(g)
    assert str(info.value) == (
        f"neg: attributes do not match (expected: none; unknown axes) at test_verifier.py:{line}"
    )


def test_parsed_graphs_verify():
    g = parse_graph(
        "graph @g(%x: f32[2,3]) -> (f32[3]) {\n"
        "  %0: f32[3,2] = permute(%x) {dims=[1,0]}  # a.py:1\n"
        "  %1: f32[3] = reduce_sum(%0) {axes=[1]}  # a.py:2\n"
        "  return %1\n"
        "}\n"
    )
    verify(g)
    g.nodes[1].attrs["axes"] = (0,)
    assert (
        verify_error(g)
        == "reduce_sum: output %1 has type f32[3] but reduce_sum derives f32[2] at a.py:2"
    )


def test_operands_on_two_devices_are_an_error_naming_the_node():
    g = Graph("devices")
    x = g.add_input(TensorType((2, 3), D.float32, "cuda"), "x")
    y = g.add_input(TensorType((2, 3), D.float32), "y")
    z = g.add_input(TensorType((2, 3), D.float32), "z")
    s = g.add("add", [y, z], {}, L(3))
    g.nodes[0].inputs[0] = x  # as a pass might leave it
    g.set_outputs([s])
    assert verify_error(g) == (
        "add: operands of %0 on different devices: %x (f32[2,3]@cuda) and %z (f32[2,3]@cpu); "
        "move them to one device (.to(device)) first at model.py:3"
    )


def test_graph_add_rejects_operands_on_two_devices():
    g = Graph("devices")
    x = g.add_input(TensorType((2,), D.float32, "cuda"), "x")
    y = g.add_input(TensorType((2,), D.float32), "y")
    with pytest.raises(GraphError) as info:
        g.add("mul", [x, 2.0, y][::2], {}, L(9))
    assert str(info.value) == (
        "mul: operands on different devices: f32[2]@cuda and f32[2]@cpu; "
        "move them to one device (.to(device)) first at model.py:9"
    )
    w = g.add("mul", [x, 2.0], {}, L(10))  # a literal has no device: the node is on cuda
    assert w.type.device == "cuda"
    verify(g)


def test_parsed_graph_with_operands_on_two_devices():
    text = """\
graph @g(%a: f32[2]@cuda, %b: f32[2]) -> (f32[2]@cuda) {
  %0: f32[2]@cuda = sub(%a, %b)                          # train.py:31
  return %0
}
"""
    with pytest.raises(GraphError) as info:
        parse_graph(text)
    message = str(info.value)
    assert "sub: operands on different devices: f32[2]@cuda and f32[2]@cpu" in message
    assert "train.py:31" in message


def test_attributes_are_frozen_into_tuples():
    g = Graph("frozen")
    x = g.add_input(TensorType((2, 3), D.float32), "x")
    y = g.add("permute", [x], {"dims": [1, 0]}, L(1))
    z = g.add("check_range", [y], {
        "low": 0, "high": 1, "ignore": [[-1], (2, [3])], "op": "f", "message": "m",
        "error": "IndexOutOfRange",
    }, L(2))  # fmt: skip
    assert y.producer.attrs["dims"] == (1, 0) and type(y.producer.attrs["dims"]) is tuple
    assert z.producer.attrs["ignore"] == ((-1,), (2, (3,)))
    copy = Graph("copy")
    c = copy.add_copy(y.producer, [copy.add_input(x.type, "x")])
    assert type(c.producer.attrs["dims"]) is tuple
    g.set_outputs([z])
    verify(g)
    parsed = parse_graph(str(g))
    assert type(parsed.nodes[0].attrs["dims"]) is tuple


def test_a_list_put_into_attributes_later_is_an_error():
    g = mlp()
    g.nodes[0].attrs["dims"] = [1, 0]  # as a careless pass might
    assert verify_error(g) == (
        "permute: attribute dims of %0 holds a list ([1, 0]); attributes are frozen: use tuples "
        "at model.py:12"
    )
