"""Eager training-step time: the same model code run with ember and with PyTorch (CPU).

Run: python benchmarks/eager_training_step.py [--json out.json]
For an MLP (784-256-128-10, batch 128) and a small CNN (two conv blocks on 1x28x28,
batch 64): median milliseconds per forward+backward+SGD step, and the ember/PyTorch ratio,
measured in one process so both see the same machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import ember


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))  # fmt: skip


def cnn(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )  # fmt: skip


def step_ms(lib, build, x, y, repeats: int) -> float:
    model = build(lib)
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = lib.tensor(x), lib.tensor(y)
    loss_fn = lib.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure(repeats: int = 15) -> dict:
    import torch

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    cases = {
        "mlp_b128": (mlp, rng.standard_normal((128, 784)).astype(np.float32)),
        "cnn_b64": (cnn, rng.standard_normal((64, 1, 28, 28)).astype(np.float32)),
    }
    results = {}
    for name, (build, x) in cases.items():
        y = rng.integers(0, 10, len(x))
        e = step_ms(ember, build, x, y, repeats)
        t = step_ms(torch, build, x, y, repeats)
        results[name] = {"ember_ms": e, "torch_ms": t, "ember_over_torch": e / t}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    results = measure(args.repeats)
    print(f"{'eager training step':22}{'ember':>10}{'torch':>10}{'ember/torch':>14}")
    for name, r in results.items():
        print(
            f"{name:22}{r['ember_ms']:>8.1f}ms{r['torch_ms']:>8.1f}ms{r['ember_over_torch']:>13.1f}x"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
