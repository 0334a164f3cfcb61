"""The backend protocol (`BaseBackend`, `CompiledGraph`) and the registry: built-ins, run-time
registration, entry-point plugins (the example in examples/plugin_backend), broken plugins,
and the choice of backend by device."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import ember  # noqa: F401  (registers the numpy kernels)
from ember.codegen import registry
from ember.codegen.backend import (
    Backend,
    BackendError,
    BaseBackend,
    CompiledGraph,
    NullBackend,
)
from ember.codegen.reference import ReferenceBackend
from ember.codegen.registry import (
    BackendInfo,
    discover_backends,
    format_backends,
    get_backend,
    list_backends,
    pick_backend,
    register_backend,
    unregister_backend,
)
from ember.ir import parse_graph

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "plugin_backend"
GROUP = "ember.backends"

GRAPH = """\
graph @f(%x: f32[3]) -> (f32[3]) {
  %0: f32[3] = exp(%x)
  %1: f32[3] = add(%0, 1.0)                                     # model.py:4
  return %1
}
"""

CUDA_GRAPH = """\
graph @g(%x: f32[3]@cuda) -> (f32[3]@cuda) {
  %0: f32[3]@cuda = neg(%x)
  return %0
}
"""

# Entry-point targets that go wrong in every way a plugin can; loaded from a module in tmp_path.
BROKEN_PLUGINS = """
from ember.codegen.backend import BaseBackend

class CudaOnly(BaseBackend):
    name = "fake_cuda"
    devices = ("cuda",)
    def build(self, graph):
        return lambda inputs: [x * 0 for x in inputs]

class NoDriver(BaseBackend):
    name = "no_driver"
    devices = ("cuda",)
    def available(self):
        return "no CUDA driver found"
    def build(self, graph):
        raise AssertionError("never built")

class Impostor(BaseBackend):
    name = "reference"
    def build(self, graph):
        raise AssertionError("never built")

def raising_factory():
    raise RuntimeError("plugin exploded")

not_a_backend = 42
"""


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Every test starts with only the built-ins, and leaves no plugin module behind."""
    monkeypatch.setattr(registry, "_state", registry._new_state())
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    yield
    for name in ("ember_null_backend", "broken_plugins"):
        sys.modules.pop(name, None)


def fake_entry_points(monkeypatch, *eps):
    """Make importlib.metadata report ``eps`` as the installed ``ember.backends`` plugins."""
    calls = []

    def entry_points(**kw):
        calls.append(kw)
        assert kw == {"group": GROUP}
        return importlib.metadata.EntryPoints(eps)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return calls


def ep(name, value):
    return importlib.metadata.EntryPoint(name=name, value=value, group=GROUP)


class Doubler(BaseBackend):
    name = "doubler"
    devices = ("cpu",)

    def build(self, graph):
        return lambda inputs: [np.asarray(x * 2) for x in inputs]


DOUBLE = "graph @d(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = add(%x, %x)\n  return %0\n}\n"


# ---------------------------------------------------------------------------------------------
# Built-ins and run-time registration
# ---------------------------------------------------------------------------------------------


def test_builtins_are_listed_and_usable(monkeypatch):
    fake_entry_points(monkeypatch)
    infos = list_backends()
    assert infos == [
        BackendInfo("llvm", ("cpu",), "builtin", True, None),
        BackendInfo("null", ("cpu", "cuda"), "builtin", True, None),
        BackendInfo("reference", ("cpu",), "builtin", True, None),
    ]
    assert isinstance(get_backend("reference"), ReferenceBackend)
    assert isinstance(get_backend("null"), NullBackend)
    for info in infos:
        assert isinstance(get_backend(info.name), Backend)  # the typing.Protocol


def test_unknown_backend_error_lists_the_known_names(monkeypatch):
    fake_entry_points(monkeypatch)
    with pytest.raises(BackendError) as err:
        get_backend("tvm")
    message = str(err.value)
    assert message.startswith(
        "backend 'tvm': is not registered (known backends: llvm, null, reference)"
    )
    assert err.value.loc.file == __file__


def test_register_replace_and_unregister(monkeypatch):
    fake_entry_points(monkeypatch)
    backend = register_backend(Doubler())
    assert get_backend("doubler") is backend
    (y,) = backend.compile(parse_graph(DOUBLE))(np.array([1, 2], np.float32))
    np.testing.assert_array_equal(y, [2, 4])
    info = next(i for i in list_backends() if i.name == "doubler")
    assert info == BackendInfo("doubler", ("cpu",), "registered", True, None)

    with pytest.raises(
        BackendError, match="'doubler' is already registered .registered.; pass replace=True"
    ):
        register_backend(Doubler())
    with pytest.raises(BackendError, match="'reference' is already registered .builtin."):
        register_backend(type("R", (Doubler,), {"name": "reference"})())
    other = register_backend(Doubler(), replace=True)
    assert get_backend("doubler") is other is not backend

    unregister_backend("doubler")
    with pytest.raises(BackendError, match="not registered"):
        get_backend("doubler")


@pytest.mark.parametrize(
    "obj, problem",
    [
        (object(), "has no non-empty str 'name'"),
        (type("B", (), {"name": "b", "devices": ["cpu"]})(), "'devices' must be a tuple of str"),
        (type("B", (), {"name": "b", "devices": ("cpu",), "supports": print})(), "no compile()"),
    ],
)
def test_register_rejects_what_is_not_a_backend(obj, problem):
    with pytest.raises(BackendError, match=problem):
        register_backend(obj)


# ---------------------------------------------------------------------------------------------
# Entry-point plugins
# ---------------------------------------------------------------------------------------------


def test_example_plugin_is_discovered_listed_and_runs(monkeypatch):
    calls = fake_entry_points(monkeypatch, ep("null_plugin", "ember_null_backend:backend"))
    tracing = get_backend("tracing")  # unknown name: discovery runs once
    assert type(tracing).__name__ == "TracingBackend" and calls == [{"group": GROUP}]
    assert isinstance(tracing, BaseBackend)

    info = next(i for i in list_backends() if i.name == "tracing")
    assert info == BackendInfo("tracing", ("cpu",), "entry point ember_null_backend:backend", True)
    assert len(calls) == 1  # discovered once

    compiled = tracing.compile(parse_graph(GRAPH))
    for _ in range(2):
        (y,) = compiled(np.zeros(3, np.float32))
    np.testing.assert_array_equal(y, [2, 2, 2])
    assert tracing.ops_run == Counter({"exp": 2, "add": 2})
    assert compiled.backend_name == "tracing" and compiled.compile_seconds > 0
    with pytest.raises(BackendError, match=r"backend 'tracing' cannot compile this graph: .*cuda"):
        tracing.compile(parse_graph(CUDA_GRAPH))


def test_builtins_do_not_load_plugins(monkeypatch):
    calls = fake_entry_points(monkeypatch, ep("null_plugin", "ember_null_backend:backend"))
    get_backend("reference")
    pick_backend("auto", "cpu")
    assert calls == [] and "ember_null_backend" not in sys.modules


def test_broken_plugins_are_reported_never_raised(monkeypatch, tmp_path):
    (tmp_path / "broken_plugins.py").write_text(BROKEN_PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_entry_points(
        monkeypatch,
        ep("null_plugin", "ember_null_backend:backend"),
        ep("missing", "ember_no_such_module:backend"),
        ep("exploding", "broken_plugins:raising_factory"),
        ep("number", "broken_plugins:not_a_backend"),
        ep("impostor", "broken_plugins:Impostor"),
        ep("fake_cuda", "broken_plugins:CudaOnly"),
        ep("fake_cuda", "broken_plugins:CudaOnly"),  # the same distribution found twice
        ep("no_driver", "broken_plugins:NoDriver"),
    )
    infos = {info.name: info for info in list_backends()}
    assert sorted(infos) == sorted(
        [
            "llvm",
            "null",
            "reference",
            "tracing",
            "missing",
            "exploding",
            "number",
            "impostor",
            "fake_cuda",
            "no_driver",
        ]  # fmt: skip
    )
    usable = sorted(name for name, info in infos.items() if info.usable)
    assert usable == ["fake_cuda", "llvm", "null", "reference", "tracing"]

    missing = infos["missing"]
    assert missing.origin == "entry point ember_no_such_module:backend" and missing.devices == ()
    assert missing.reason.startswith(
        "cannot load 'ember_no_such_module:backend': ModuleNotFoundError: No module named"
    )
    assert infos["exploding"].reason.endswith("RuntimeError: plugin exploded")
    assert "TypeError: 42 has no non-empty str 'name'" in infos["number"].reason
    assert infos["impostor"].reason == "backend name 'reference' is already taken (builtin)"
    assert infos["no_driver"].reason == "no CUDA driver found"
    assert infos["no_driver"].devices == ("cuda",)

    assert isinstance(get_backend("reference"), ReferenceBackend)  # the impostor lost
    with pytest.raises(BackendError, match="backend 'exploding': entry point .*plugin exploded"):
        get_backend("exploding")
    with pytest.raises(BackendError, match="failed to load: .*exploding"):
        get_backend("nonexistent")

    table = format_backends()
    assert table.splitlines()[0].split() == ["name", "devices", "origin", "status"]
    assert "unusable: no CUDA driver found" in table
    assert any(line.startswith("tracing ") and line.endswith(" ok") for line in table.splitlines())


def test_failing_entry_point_machinery_is_reported(monkeypatch):
    def entry_points(**kw):
        raise OSError("unreadable site-packages")

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    infos = list_backends()
    assert [i.name for i in infos if i.usable] == ["llvm", "null", "reference"]
    (bad,) = [i for i in infos if not i.usable]
    assert bad.reason == "OSError: unreadable site-packages"


def test_rediscovery_picks_up_new_plugins(monkeypatch):
    fake_entry_points(monkeypatch)
    assert [i.name for i in list_backends()] == ["llvm", "null", "reference"]
    fake_entry_points(monkeypatch, ep("null_plugin", "ember_null_backend:backend"))
    assert [i.name for i in list_backends()] == ["llvm", "null", "reference"]  # found once
    discover_backends(refresh=True)
    assert [i.name for i in list_backends()] == ["llvm", "null", "reference", "tracing"]


def test_real_entry_point_metadata_finds_the_example(monkeypatch, tmp_path):
    """No monkeypatching of importlib: a dist-info directory on sys.path, as pip would write."""
    pyproject = (EXAMPLE_DIR / "pyproject.toml").read_text()
    section = pyproject.split(f'[project.entry-points."{GROUP}"]\n', 1)[1].split("\n[", 1)[0]
    declared = dict(re.findall(r'^(\w+) = "([^"]+)"$', section, re.M))
    assert declared == {"null_plugin": "ember_null_backend:backend"}
    dist_info = tmp_path / "ember_null_backend-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ember-null-backend\nVersion: 0.1.0\n"
    )
    lines = [f"{name} = {value}" for name, value in declared.items()]
    (dist_info / "entry_points.txt").write_text(f"[{GROUP}]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    info = next(i for i in list_backends() if i.name == "tracing")
    assert info == BackendInfo("tracing", ("cpu",), "entry point ember-null-backend", True)


# ---------------------------------------------------------------------------------------------
# Choosing a backend
# ---------------------------------------------------------------------------------------------


def test_pick_backend_by_device(monkeypatch, tmp_path):
    (tmp_path / "broken_plugins.py").write_text(BROKEN_PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_entry_points(monkeypatch)
    assert pick_backend() is get_backend("llvm")
    assert pick_backend("auto", "cpu") is get_backend("llvm")
    monkeypatch.setenv("EMBER_BACKEND", "reference")  # the oracle, forced
    assert pick_backend() is get_backend("reference")
    monkeypatch.delenv("EMBER_BACKEND")
    with pytest.raises(BackendError, match="no usable backend for device 'cuda:0'"):
        pick_backend("auto", "cuda:0")  # null runs anywhere but is never picked by itself
    assert pick_backend("null", "cuda") is get_backend("null")
    with pytest.raises(BackendError, match=r"backend 'reference': runs on cpu, not on 'cuda'"):
        pick_backend("reference", "cuda")
    mine = Doubler()
    assert pick_backend(mine) is mine

    fake_entry_points(
        monkeypatch,
        ep("no_driver", "broken_plugins:NoDriver"),
        ep("fake_cuda", "broken_plugins:CudaOnly"),
    )
    discover_backends(refresh=True)
    assert pick_backend("auto", "cuda:1").name == "fake_cuda"  # the usable plugin, not no_driver
    with pytest.raises(BackendError, match="'no_driver': is not usable here: no CUDA driver found"):
        pick_backend("no_driver", "cuda")


def test_auto_prefers_the_builtin_order(monkeypatch):
    fake_entry_points(monkeypatch)
    llvm = type("FakeLLVM", (Doubler,), {"name": "llvm"})()
    register_backend(llvm, replace=True)
    assert pick_backend("auto", "cpu") is llvm
    monkeypatch.setattr(type(llvm), "available", lambda self: "llvmlite is not installed")
    assert pick_backend("auto", "cpu") is get_backend("reference")


# ---------------------------------------------------------------------------------------------
# BaseBackend: the common checks a backend gets for free
# ---------------------------------------------------------------------------------------------


def test_base_backend_refuses_devices_and_nodes_with_reasons():
    class NoAdd(Doubler):
        name = "no_add"

        def supports_node(self, node):
            return "cannot add" if node.op == "add" else True

    backend = NoAdd()
    assert backend.supports(parse_graph(CUDA_GRAPH)) == (
        "a value of type f32[3]@cuda is on device 'cuda'; backend 'no_add' runs on cpu"
    )
    graph = parse_graph(GRAPH)
    assert backend.supports(graph) == "node %1 (add at model.py:4) cannot add"
    with pytest.raises(BackendError) as err:
        backend.compile(graph)
    assert str(err.value).startswith(
        "@f: backend 'no_add' cannot compile this graph: node %1 (add at model.py:4) cannot add"
    )


def test_compiled_graph_checks_what_the_backend_returns():
    class Liar(BaseBackend):
        name = "liar"

        def __init__(self, result):
            self.result = result

        def build(self, graph):
            return lambda inputs: self.result

    graph = parse_graph(GRAPH)
    x = np.zeros(3, np.float32)
    cases = [
        ([], "returned 0 outputs, expected a list of 1 arrays"),
        ((x,), "returned <class 'tuple'>, expected a list of 1 arrays"),
        ([np.zeros(4, np.float32)], r"returned f32\[4\] for output 0, whose type is f32\[3\]"),
        ([np.zeros(3, np.int32)], r"returned i32\[3\] for output 0"),
        ([3.0], "returned <class 'float'> for output 0"),
    ]
    for result, message in cases:
        with pytest.raises(BackendError, match=f"@f: backend 'liar' {message}"):
            Liar(result).compile(graph)(x)
    assert Liar([x]).compile(graph)(x)[0] is x


def test_compiled_graph_subclass_carries_state():
    class Counting(CompiledGraph):
        def __init__(self, graph):
            super().__init__(graph, "counting")
            self.seen = []

        def run(self, inputs):
            self.seen.append(inputs[0].sum())
            return [inputs[0] + 1]

    class CountingBackend(BaseBackend):
        name = "counting"

        def build(self, graph):
            return Counting(graph)

    compiled = CountingBackend().compile(parse_graph(GRAPH))
    assert isinstance(compiled, Counting) and compiled.compile_seconds > 0
    compiled(np.ones(3, np.float32))
    assert compiled.seen == [3.0] and compiled.calls == 1
    with pytest.raises(NotImplementedError):
        CompiledGraph(parse_graph(GRAPH), "bare")(np.ones(3, np.float32))


def test_example_readme_documents_the_entry_point():
    readme = (EXAMPLE_DIR / "README.md").read_text()
    assert '[project.entry-points."ember.backends"]' in readme
    assert 'null_plugin = "ember_null_backend:backend"' in readme
