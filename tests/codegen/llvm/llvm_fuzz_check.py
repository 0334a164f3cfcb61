"""Running one fuzz case: the reference values of every graph value, the LLVM backend's outputs,
and their comparison within the bounds of `llvm_fuzz_bounds`; a failure report that can be
pasted into a test (the graph's IR text, its inputs, both outputs where they differ).

`known_failure` recognizes the one known LLVM backend failure that the graph generator cannot
leave out by a simple rule (an index map through a shape with a zero-size dim); the property
tests discard those cases, `test_xfail_empty_tensor_index_maps` keeps them visible.
"""

from __future__ import annotations

import os
import traceback

import numpy as np
from hypothesis import reject
from llvm_fuzz_bounds import Bound, float_emax, propagate
from llvm_fuzz_graphs import Case

from ember.codegen.registry import get_backend
from ember.ir import dtypes as D
from ember.ir.errors import GraphError
from ember.ir.graph import Graph, Value

__all__ = [
    "reference_values",
    "compare",
    "describe_failure",
    "check_case",
    "check_or_reject",
    "known_failure",
]

_INDEX_PY = os.path.join("ember", "ir", "index.py")

# -- reference values ------------------------------------------------------------------------


def reference_values(graph: Graph, inputs: list[np.ndarray]) -> dict[Value, np.ndarray]:
    """Every value of ``graph`` as the reference backend computes it."""
    every = Graph(graph.name + "_all")
    every.inputs = list(graph.inputs)
    every.nodes = list(graph.nodes)
    every.outputs = [n.output for n in graph.nodes]
    outs = get_backend("reference").compile(every).run(list(inputs))
    values = dict(zip(graph.inputs, inputs))
    values.update(zip(every.outputs, outs))
    return values


# -- comparison ------------------------------------------------------------------------------


def _extended(x: np.ndarray, dt: D.DType) -> np.ndarray:
    """float values as long doubles, infinities as the power of two past the largest finite."""
    y = np.asarray(x).astype(np.float64).astype(np.longdouble)
    edge = np.ldexp(np.longdouble(1.0), float_emax(dt) + 1)
    return np.where(np.isinf(y), np.sign(y) * edge, y)


def compare(got: np.ndarray, want: np.ndarray, bound: Bound) -> np.ndarray:
    """A bool array: True where ``got`` is not within ``bound`` of ``want``."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype)
    checked = np.isfinite(bound.b)
    if want.dtype.kind in "iub":
        return checked & (got != want)
    dt = D.from_numpy(want.dtype)
    g, w = got.astype(np.float64), want.astype(np.float64)
    nan_bad = np.isnan(g) != np.isnan(w)
    both = ~np.isnan(g) & ~np.isnan(w)
    exact = bound.b == 0
    sign_bad = ~bound.z & (np.signbit(g) != np.signbit(w))
    exact_bad = exact & both & ((g != w) | sign_bad)
    with np.errstate(invalid="ignore"):
        dist = np.abs(_extended(g, dt) - _extended(w, dt))
    near_bad = ~exact & both & (dist > bound.b)
    return checked & (nan_bad | exact_bad | near_bad)


def describe_failure(graph: Graph, inputs, got: list, want: list, bounds: list, bad: list) -> str:
    """The graph text, its inputs, and both backends' outputs where they disagree."""
    opts = {"threshold": 10_000, "precision": 17, "floatmode": "unique"}
    lines = [str(graph), "inputs:"]
    for v, x in zip(graph.inputs, inputs):
        lines.append(f"  {v.type}: {np.array2string(x, **opts)}")
    for i, (g, w, b, m) in enumerate(zip(got, want, bounds, bad)):
        if not m.any():
            continue
        where = np.argwhere(m)[:8]
        lines.append(
            f"output {i} {w.dtype}{list(w.shape)} differs at {len(np.argwhere(m))} "
            f"elements, first {where.tolist()}"
        )
        for pos in map(tuple, where):
            lines.append(
                f"  at {[int(i) for i in pos]}: llvm {g[pos]} reference {w[pos]} "
                f"bound {float(b.b[pos])} zero-sign-free {bool(b.z[pos])}"
            )
        lines.append(f"  llvm:      {np.array2string(g, **opts)}")
        lines.append(f"  reference: {np.array2string(w, **opts)}")
    return "\n".join(lines)


# -- one case --------------------------------------------------------------------------------


def check_case(case: Case) -> None:
    """Compile ``case.graph`` with the LLVM backend, run it, and compare with the reference;
    an AssertionError with `describe_failure`'s report where they differ."""
    graph, inputs = case.graph, case.inputs
    copies = [x.copy() for x in inputs]
    got = get_backend("llvm").compile(graph).run(copies)
    for i, (x, y) in enumerate(zip(inputs, copies)):
        assert x.tobytes() == y.tobytes(), f"the program wrote its input {i}\n{graph}"
    values = reference_values(graph, inputs)
    bounds = propagate(graph, values)
    want = [values[v] for v in graph.outputs]
    outs = [bounds[v] for v in graph.outputs]
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
    bad = [compare(g, w, b) for g, w, b in zip(got, want, outs)]
    if any(m.any() for m in bad):
        raise AssertionError(describe_failure(graph, inputs, got, want, outs, bad))


def known_failure(error: BaseException) -> str | None:
    """The xfail test that covers ``error``: a compile that divides by zero in
    ``ember/ir/index.py`` is test_xfail_empty_tensor_index_maps."""
    while error.__cause__ is not None:
        error = error.__cause__
    tb = traceback.extract_tb(error.__traceback__)
    if isinstance(error, ZeroDivisionError) and tb and tb[-1].filename.endswith(_INDEX_PY):
        return "test_xfail_empty_tensor_index_maps"
    return None


def check_or_reject(case: Case) -> None:
    """`check_case`, with the cases of a `known_failure` discarded (hypothesis.reject)."""
    try:
        check_case(case)
    except GraphError as e:
        if known_failure(e) and any(0 in v.type.shape for v in _values(case.graph)):
            reject()
        raise


def _values(graph: Graph):
    yield from graph.inputs
    for node in graph.nodes:
        yield node.output
