"""The compile pipeline from a captured graph to kernel IR, run by the `PassManager`.

    simplify -> prepare_matmuls -> materialize_outputs -> select_scatters -> split_reductions
             -> fuse (a `FusionPlan`) -> lower (a `LoweredProgram`: kernel IR) -> reuse_stored

Each stage is a registered pass with a typed result, so the manager's instruments work for
every compiled function: ``EMBER_VERIFY=1`` verifies each stage (graphs with the graph
verifier, kernel IR with `ember.ir.kernel.verify_kernel`), ``EMBER_LOGS=passes`` prints each
stage, a `DumpInstrument` writes them. A backend runs `lower_graph` and takes it from there
(memory plan, native code).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..ir.graph import Graph
from ..ir.kernel import verify_kernel
from . import prepare
from .fusion import FusionPlan, fuse
from .lower import LoweredProgram, lower
from .manager import PassInstrument, PassManager, graph_pass, register_stage
from .reuse import reuse_stored
from .simplify import simplify  # noqa: F401  (registers the "simplify" pass)
from .views import VIEW_OPS

__all__ = ["KERNEL_PIPELINE", "lower_graph", "format_plan"]


def format_plan(plan: FusionPlan) -> str:
    lines = [f"# fusion of @{plan.graph.name}: {len(plan.groups)} kernels"]
    for g in plan.groups:
        ops = ", ".join(n.op for n in g.nodes)
        dom = f"rows {list(g.P)} x {list(g.R)}" if g.R else f"over {list(g.P)}"
        lines.append(f"{g.name} ({g.kind}, {dom}): {ops}")
    lines.extend(f"  {d}" for d in plan.decisions)
    return "\n".join(lines)


def _verify_plan(plan: FusionPlan) -> None:
    placed = {n for g in plan.groups for n in g.nodes} | plan.inline
    for node in plan.graph.nodes:
        if node.op not in VIEW_OPS and node not in placed:
            raise AssertionError(f"fusion left {node.op} at {node.loc} in no kernel")


def _verify_lowered(program: LoweredProgram) -> None:
    for k in program.kernels:
        verify_kernel(k)


register_stage(FusionPlan, format_plan, _verify_plan)
register_stage(LoweredProgram, str, _verify_lowered)

graph_pass("materialize_outputs")(prepare.materialize_outputs)
graph_pass("prepare_matmuls")(prepare.prepare_matmuls)
graph_pass("select_scatters")(prepare.select_scatters)
graph_pass("split_reductions")(prepare.split_reductions)
graph_pass("fuse", returns=FusionPlan)(fuse)
graph_pass("lower", returns=LoweredProgram)(lower)
graph_pass("reuse_stored", returns=LoweredProgram)(reuse_stored)

KERNEL_PIPELINE = (
    "simplify",
    "prepare_matmuls",
    "materialize_outputs",
    "select_scatters",
    "split_reductions",
    "fuse",
    "lower",
    "reuse_stored",
)


def lower_graph(graph: Graph, instruments: Iterable[PassInstrument] = ()) -> LoweredProgram:
    """``graph`` through `KERNEL_PIPELINE`: its kernels, in run order."""
    return PassManager(KERNEL_PIPELINE, instruments).run(graph)
