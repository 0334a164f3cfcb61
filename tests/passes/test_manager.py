"""The pass manager: registry, timing, dumps with provenance, EMBER_VERIFY, EMBER_LOGS and errors
that name the pass."""

import io
import re
import time

import pytest

from ember.ir import Graph, GraphError, ShapeError, SourceLoc, TensorType, format_graph, parse_graph
from ember.ir import dtypes as D
from ember.passes import logs
from ember.passes.manager import (
    DumpInstrument,
    LogInstrument,
    Pass,
    PassInstrument,
    PassManager,
    TimingInstrument,
    VerifyInstrument,
    get_pass,
    graph_pass,
    registered_passes,
    strip_header,
)
from ember.passes.simplify import dce

SOURCE = """\
graph @g(%x: f32[4]) -> (f32[4]) {
  %0: f32[4] = exp(%x)                                   # m.py:1
  %1: f32[4] = exp(%x)                                   # m.py:2
  %2: f32[4] = add(%0, %1)                               # m.py:3
  %3: f32[4] = neg(%2)                                   # m.py:4
  %4: f32[4] = mul(%2, 1.0)                              # m.py:5
  return %4
}
"""
AFTER_DCE = """\
graph @g(%x: f32[4]) -> (f32[4]) {
  %0: f32[4] = exp(%x)                                   # m.py:1
  %1: f32[4] = exp(%x)                                   # m.py:2
  %2: f32[4] = add(%0, %1)                               # m.py:3
  %3: f32[4] = mul(%2, 1.0)                              # m.py:5
  return %3
}
"""
AFTER_CSE = """\
graph @g(%x: f32[4]) -> (f32[4]) {
  %0: f32[4] = exp(%x)                                   # m.py:1
  %1: f32[4] = add(%0, %0)                               # m.py:3
  %2: f32[4] = mul(%1, 1.0)                              # m.py:5
  return %2
}
"""
SIMPLIFIED = """\
graph @g(%x: f32[4]) -> (f32[4]) {
  %0: f32[4] = exp(%x)                                   # m.py:1
  %1: f32[4] = add(%0, %0)                               # m.py:3
  return %1
}
"""
HEADER = re.compile(r"# after pass (\w+) \((\d+\.\d{3}) ms\)")


def canonical(text: str) -> str:
    return format_graph(parse_graph(text))


@pytest.fixture(autouse=True)
def quiet_environment(monkeypatch):
    monkeypatch.delenv("EMBER_VERIFY", raising=False)
    monkeypatch.delenv("EMBER_LOGS", raising=False)


def corrupt(graph: Graph) -> Graph:
    """A broken pass: its result says add's output is f64 where add derives f32."""
    new = parse_graph(format_graph(graph))
    node = next(n for n in new.nodes if n.op == "add")
    node.output.type = TensorType(node.output.shape, D.float64)
    return new


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_registry_and_decorator():
    @graph_pass("test_identity_copy")
    def identity_copy(graph: Graph) -> Graph:
        """Copy through the text format."""
        return parse_graph(format_graph(graph))

    assert isinstance(identity_copy, Pass)
    assert identity_copy.name == "test_identity_copy"
    assert identity_copy.doc == "Copy through the text format."
    assert get_pass("test_identity_copy") is identity_copy
    assert registered_passes()["dce"] is dce
    assert format_graph(identity_copy(parse_graph(SOURCE))) == canonical(SOURCE)
    graph_pass("test_identity_copy")(identity_copy.fn)  # the same function again is fine
    with pytest.raises(ValueError, match="already registered as 'test_identity_copy'"):
        graph_pass("test_identity_copy")(lambda g: g)
    with pytest.raises(ValueError, match=r"no pass is registered as 'nope'.*dce"):
        get_pass("nope")
    with pytest.raises(ValueError, match="must be an identifier"):
        Pass("two words", lambda g: g)
    with pytest.raises(ValueError, match="no pass is registered"):
        PassManager(["dce", "nope"])


def test_manager_accepts_names_passes_and_functions():
    def my_cleanup(graph):
        return dce(graph)

    pm = PassManager(["cse", dce, my_cleanup])
    assert pm.names == ["cse", "dce", "my_cleanup"]
    assert PassManager([lambda g: g]).names == ["_lambda_"]
    assert repr(pm) == "PassManager([cse, dce, my_cleanup])"
    assert format_graph(pm.run(parse_graph(SOURCE))) == canonical(AFTER_CSE)


# ---------------------------------------------------------------------------------------------
# Running, timing and hooks
# ---------------------------------------------------------------------------------------------


def test_run_returns_the_final_graph_and_records_timings():
    def slow(graph):
        time.sleep(0.02)
        return dce(graph)

    graph = parse_graph(SOURCE)
    pm = PassManager(["dce", "cse", Pass("slow", slow), "simplify"])
    result = pm.run(graph)
    assert format_graph(result) == canonical(SIMPLIFIED)
    assert format_graph(graph) == canonical(SOURCE)
    assert [name for name, _ in pm.timings] == ["dce", "cse", "slow", "simplify"]
    assert all(isinstance(s, float) and s >= 0 for _, s in pm.timings)
    assert dict(pm.timings)["slow"] >= 0.02
    pm.run(graph)
    assert len(pm.timings) == 4  # the last run's


def test_timing_instrument_accumulates_and_reports():
    timing = TimingInstrument()
    pm = PassManager(["dce", "cse", "dce"], instruments=[timing])
    pm.run(parse_graph(SOURCE))
    pm.run(parse_graph(SOURCE))
    assert [name for name, _ in timing.records] == ["dce", "cse", "dce"] * 2
    assert list(timing.totals()) == ["dce", "cse"]
    report = timing.report().splitlines()
    assert report[0].split() == ["pass", "calls", "ms"]
    assert report[1].split()[:2] == ["dce", "4"]
    assert report[2].split()[:2] == ["cse", "2"]
    assert report[3].split()[:2] == ["total", "6"]
    total_ms = float(report[3].split()[2])
    assert total_ms == pytest.approx(sum(s for _, s in timing.records) * 1e3, abs=2e-3)


class Recorder(PassInstrument):
    def __init__(self):
        self.events = []

    def enter_run(self, graph):
        self.events.append(("enter", format_graph(graph)))

    def before_pass(self, info, graph):
        assert info.seconds is None
        self.events.append(("before", info.name, info.index, format_graph(graph)))

    def after_pass(self, info, graph):
        assert info.seconds >= 0
        self.events.append(("after", info.name, info.index, format_graph(graph)))

    def exit_run(self, graph):
        self.events.append(("exit", format_graph(graph)))


def test_instruments_see_each_pass_with_its_input_and_result():
    recorder = Recorder()
    PassManager(["dce", "cse"], instruments=[recorder]).run(parse_graph(SOURCE))
    src, mid, out = canonical(SOURCE), canonical(AFTER_DCE), canonical(AFTER_CSE)
    assert recorder.events == [
        ("enter", src),
        ("before", "dce", 1, src),
        ("after", "dce", 1, mid),
        ("before", "cse", 2, mid),
        ("after", "cse", 2, out),
        ("exit", out),
    ]


# ---------------------------------------------------------------------------------------------
# Dumps with provenance
# ---------------------------------------------------------------------------------------------


def test_dump_writes_numbered_files_with_provenance_headers(tmp_path):
    pm = PassManager(["dce", "cse"], instruments=[DumpInstrument(tmp_path / "dump")])
    pm.run(parse_graph(SOURCE))
    files = sorted(p.name for p in (tmp_path / "dump").iterdir())
    assert files == ["00_input.ir", "01_dce.ir", "02_cse.ir"]
    first = (tmp_path / "dump" / "00_input.ir").read_text()
    assert first.splitlines()[0] == "# input graph @g"
    assert format_graph(parse_graph(strip_header(first))) == canonical(SOURCE)
    for (name, seconds), filename, expected in zip(
        pm.timings, ["01_dce.ir", "02_cse.ir"], [AFTER_DCE, AFTER_CSE]
    ):
        text = (tmp_path / "dump" / filename).read_text()
        header = HEADER.fullmatch(text.splitlines()[0])
        assert header is not None, text.splitlines()[0]
        assert header.group(1) == name
        assert header.group(2) == f"{seconds * 1e3:.3f}"
        assert text.split("\n", 1)[1] == canonical(expected)
        assert format_graph(parse_graph(strip_header(text))) == canonical(expected)


def test_dump_before_files(tmp_path):
    pm = PassManager(["dce"], instruments=[DumpInstrument(tmp_path, before=True)])
    pm.run(parse_graph(SOURCE))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00_input.ir",
        "01_dce.before.ir",
        "01_dce.ir",
    ]
    before = (tmp_path / "01_dce.before.ir").read_text()
    assert before == "# before pass dce\n" + canonical(SOURCE)


# ---------------------------------------------------------------------------------------------
# EMBER_VERIFY
# ---------------------------------------------------------------------------------------------


def test_ember_verify_names_the_pass_that_broke_the_graph(monkeypatch):
    pm = PassManager(["dce", Pass("corrupt", corrupt), "cse"])
    unchecked = pm.run(parse_graph(SOURCE))  # without EMBER_VERIFY nobody looks
    assert [n.op for n in unchecked.nodes] == ["exp", "add", "mul"]
    monkeypatch.setenv("EMBER_VERIFY", "1")
    with pytest.raises(GraphError) as info:
        pm.run(parse_graph(SOURCE))
    message = str(info.value)
    assert "graph broken by pass 'corrupt'" in message
    assert "add: output %2 has type f64[4] but add derives f32[4]" in message
    assert message.endswith("at m.py:3")
    assert info.value.pass_name == "corrupt"
    assert [name for name, _ in pm.timings] == ["dce", "corrupt"]


def test_verify_instrument_without_the_environment_and_on_the_input():
    pm = PassManager([Pass("corrupt", corrupt)], instruments=[VerifyInstrument()])
    with pytest.raises(GraphError, match="graph broken by pass 'corrupt'"):
        pm.run(parse_graph(SOURCE))
    broken = corrupt(parse_graph(SOURCE))
    with pytest.raises(GraphError, match="in the input graph, before any pass ran") as info:
        PassManager(["dce"], instruments=[VerifyInstrument()]).run(broken)
    assert info.value.pass_name is None


def test_verify_blames_the_pass_for_errors_from_a_shape_rule():
    def rewire(graph):
        new = parse_graph(format_graph(graph))
        new.nodes[0].inputs[1] = new.inputs[1]  # add(%x, %y): f32[4] and f32[2]
        return new

    text = """\
graph @h(%x: f32[4], %y: f32[2]) -> (f32[4]) {
  %0: f32[4] = add(%x, %x)                               # m.py:9
  return %0
}
"""
    pm = PassManager([Pass("rewire", rewire)], instruments=[VerifyInstrument()])
    with pytest.raises(ShapeError) as info:
        pm.run(parse_graph(text))
    assert str(info.value) == (
        "add: operands f32[4], f32[2] differ in shape (graph broken by pass 'rewire') at m.py:9"
    )
    assert info.value.pass_name == "rewire"


# ---------------------------------------------------------------------------------------------
# EMBER_LOGS
# ---------------------------------------------------------------------------------------------


def test_ember_logs_passes_prints_the_ir_after_each_pass(monkeypatch, capsys):
    pm = PassManager(["dce", "cse"])
    pm.run(parse_graph(SOURCE))
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("EMBER_LOGS", "graph,fusion")
    pm.run(parse_graph(SOURCE))
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("EMBER_LOGS", "graph, passes")
    pm.run(parse_graph(SOURCE))
    err = capsys.readouterr().err
    (dce_ms, cse_ms) = (f"{s * 1e3:.3f}" for _, s in pm.timings)
    assert err == (
        "# input graph @g\n"
        + canonical(SOURCE)
        + f"# after pass dce ({dce_ms} ms)\n"
        + canonical(AFTER_DCE)
        + f"# after pass cse ({cse_ms} ms)\n"
        + canonical(AFTER_CSE)
    )


def test_log_instrument_to_a_stream(monkeypatch):
    stream = io.StringIO()
    pm = PassManager(["dce"], instruments=[LogInstrument(stream)])
    pm.run(parse_graph(SOURCE))
    assert stream.getvalue() == ""
    monkeypatch.setenv("EMBER_LOGS", "all")
    pm.run(parse_graph(SOURCE))
    assert HEADER.search(stream.getvalue()).group(1) == "dce"


def test_logs_parser(monkeypatch):
    assert logs.parse("") == frozenset()
    assert logs.parse("graph, passes  Fusion") == {"graph", "passes", "fusion"}
    assert logs.parse("ALL") == set(logs.TOPICS)
    with pytest.warns(UserWarning, match="unknown log topic 'pases'"):
        assert logs.parse("pases,kernels") == {"kernels"}
    monkeypatch.setenv("EMBER_LOGS", "guards,recompiles")
    assert logs.enabled("guards") and logs.enabled("recompiles")
    assert not logs.enabled("passes")
    with pytest.raises(ValueError, match="unknown log topic 'nonsense'"):
        logs.enabled("nonsense")
    stream = io.StringIO()
    assert logs.log("guards", "guard failed", stream) is True
    assert logs.log("passes", "not shown", stream) is False
    assert stream.getvalue() == "guard failed\n"


# ---------------------------------------------------------------------------------------------
# Errors inside passes
# ---------------------------------------------------------------------------------------------


def test_an_exception_inside_a_pass_names_the_pass():
    def boom(graph):
        return 1 // 0

    with pytest.raises(GraphError) as info:
        PassManager(["dce", Pass("boom", boom)]).run(parse_graph(SOURCE))
    assert str(info.value).startswith(
        "pass 'boom': ZeroDivisionError: integer division or modulo by zero at "
    )
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.pass_name == "boom"


def test_an_ember_error_inside_a_pass_keeps_its_class_and_location():
    def bad_reshape(graph):
        raise ShapeError("reshape", "cannot reshape f32[4] to [3]", SourceLoc("m.py", 7))

    with pytest.raises(ShapeError) as info:
        PassManager([Pass("bad_reshape", bad_reshape)]).run(parse_graph(SOURCE))
    assert str(info.value) == (
        "reshape: cannot reshape f32[4] to [3] (in pass 'bad_reshape') at m.py:7"
    )
    assert info.value.loc == SourceLoc("m.py", 7)
    assert isinstance(info.value.__cause__, ShapeError)


def test_a_pass_that_returns_no_graph_is_named():
    with pytest.raises(GraphError, match=r"pass 'forgetful': returned NoneType, not a Graph"):
        PassManager([Pass("forgetful", lambda g: None)]).run(parse_graph(SOURCE))
