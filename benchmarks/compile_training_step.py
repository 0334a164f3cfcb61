"""Capture cost and compiled step time on the reference backend, against eager ember.

Run: python benchmarks/compile_training_step.py [--json out.json]

For the MLP (784-256-128-10, batch 128) and small CNN of ``eager_training_step.py``, with a
whole training step (zero_grad, forward, cross-entropy, backward, SGD+momentum step) under
``ember.compile``: the time of the first two calls (trace + autodiff + partition + backend
compile; the second call recompiles once because the first step creates the momentum
buffers), the median time per cached step, and eager ember's median step time, measured in one
process. The reference backend runs each graph node with the eager numpy kernels, so a cached
compiled step is expected to cost about what eager costs: it measures capture and runtime
overhead, not codegen (the LLVM and Triton backends come later).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from eager_training_step import cnn, mlp

import ember


def _step(model, opt, loss_fn, x, y):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


def measure(build, x, y, repeats: int) -> dict:
    out = {}
    for mode in ("eager", "compiled"):
        ember.manual_seed(0)
        model = build(ember)
        opt = ember.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = ember.nn.CrossEntropyLoss()
        step = ember.compile(_step) if mode == "compiled" else _step
        xt, yt = ember.tensor(x), ember.tensor(y)
        first = []
        for _ in range(2):
            t0 = time.perf_counter()
            step(model, opt, loss_fn, xt, yt)
            first.append((time.perf_counter() - t0) * 1e3)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            step(model, opt, loss_fn, xt, yt)
            times.append((time.perf_counter() - t0) * 1e3)
        out[mode] = {"first_two_ms": first, "step_ms": statistics.median(times)}
        if mode == "compiled":
            graph = ember.last_graphs(step).forward
            out[mode]["graph_nodes"] = len(graph.nodes)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = {
        "mlp": (mlp, rng.standard_normal((128, 784), dtype=np.float32)),
        "cnn": (cnn, rng.standard_normal((64, 1, 28, 28), dtype=np.float32)),
    }
    results = {}
    for name, (build, x) in cases.items():
        y = rng.integers(0, 10, x.shape[0])
        r = measure(build, x, y, args.repeats)
        results[name] = r
        e, c = r["eager"], r["compiled"]
        print(
            f"{name}: eager {e['step_ms']:.2f} ms/step | compiled {c['step_ms']:.2f} ms/step "
            f"(x{c['step_ms'] / e['step_ms']:.2f}), first two calls "
            f"{c['first_two_ms'][0]:.0f} + {c['first_two_ms'][1]:.0f} ms, "
            f"{c['graph_nodes']} graph nodes"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
