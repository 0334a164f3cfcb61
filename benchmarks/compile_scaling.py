"""Compile time against graph size: a long elementwise chain and an LSTM, first call.

Run: python benchmarks/compile_scaling.py [--sizes 1000 2000 4000 10000] [--json out.json]

For a chain ``x = (x * 1.0001).sin()`` repeated until the forward graph has ``n`` nodes, and for
``ember.nn.LSTM(8, 32)`` over 200 steps with a loss on its output, with inputs that require grad
(so the first call traces, differentiates and partitions): the time of the first
``ember.compile`` call, and the same pipeline stage by stage (trace, autodiff, partition, the
backend's compile) with the node counts of the forward, joint, forward-partition and backward
graphs, and the node visits the passes counted (`ember.ir.work.WORK`). Compile cost should
grow linearly with the node count: the last column (microseconds per joint node) stays flat.
Stages are timed in CPU seconds of this process (`time.process_time`), which other work on a
shared machine disturbs less than wall time; the first call is timed both ways.
"""

from __future__ import annotations

import argparse
import json
import time

import ember
from ember.codegen.registry import pick_backend
from ember.ir.work import WORK
from ember.passes.autodiff import build_joint
from ember.passes.partition import partition
from ember.tracer.trace import trace_function


def chain_case(n: int):
    """A function whose forward graph has ``n`` nodes (``n // 2`` mul+sin pairs and a sum)."""

    def chain(x):
        for _ in range(n // 2):
            x = (x * 1.0001).sin()
        return x.sum()

    return chain, (ember.randn(4, 4, requires_grad=True),)


def lstm_case(steps: int = 200):
    ember.manual_seed(0)
    lstm = ember.nn.LSTM(8, 32)

    def lstm_loss(x):
        out, _ = lstm(x)
        return (out * out).mean()

    return lstm_loss, (ember.randn(steps, 4, 8),)


def first_call_seconds(fn, args) -> tuple[float, float]:
    """Wall and CPU seconds of the first call of ``ember.compile(fn)``."""
    compiled = ember.compile(fn)
    wall, cpu = time.perf_counter(), time.process_time()
    compiled(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def stages(fn, args) -> dict:
    """The compile pipeline of `ember.tracer.program.CompiledProgram`, timed stage by stage."""
    backend = pick_backend("auto")
    row: dict = {}
    before = WORK.snapshot()
    start = time.process_time()
    traced = trace_function(fn, args, {}, fn.__name__, {})
    row["trace_s"] = time.process_time() - start
    start = time.process_time()
    joint = build_joint(traced.graph, traced.requires_grad_inputs, traced.grad_outputs)
    row["autodiff_s"] = time.process_time() - start
    start = time.process_time()
    part = partition(joint)
    row["partition_s"] = time.process_time() - start
    start = time.process_time()
    backend.compile(part.forward)
    backend.compile(part.backward)
    row["backend_s"] = time.process_time() - start
    row["visits"] = WORK.since(before)
    row["nodes"] = {
        "forward": len(traced.graph.nodes),
        "joint": len(joint.graph.nodes),
        "partitioned_forward": len(part.forward.nodes),
        "backward": len(part.backward.nodes),
    }
    return row


def measure(name: str, fn, args) -> dict:
    row = stages(fn, args)
    row["first_call_wall_s"], row["first_call_cpu_s"] = first_call_seconds(fn, args)
    compile_s = row["trace_s"] + row["autodiff_s"] + row["partition_s"]
    joint = row["nodes"]["joint"]
    print(
        f"{name:>12}: first call {row['first_call_wall_s']:7.3f} s wall "
        f"{row['first_call_cpu_s']:7.3f} s cpu | trace {row['trace_s']:.3f} "
        f"autodiff {row['autodiff_s']:.3f} partition {row['partition_s']:.3f} "
        f"backend {row['backend_s']:.3f} s | nodes fw {row['nodes']['forward']:>6} "
        f"joint {joint:>6} | visits {sum(row['visits'].values()):>7} | "
        f"{compile_s / joint * 1e6:5.1f} us/joint node"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 2000, 4000, 10000])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {}
    for n in args.sizes:
        results[f"chain{n}"] = measure(f"chain {n}", *chain_case(n))
    results[f"lstm{args.steps}"] = measure(f"lstm {args.steps}", *lstm_case(args.steps))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
