"""Eager per-op overhead: a 16-element add, with and without autograd, ember next to PyTorch.

Run: python benchmarks/eager_overhead.py [--json out.json]
Prints microseconds per op (median of repeated timeit runs) and the ember/PyTorch ratio,
measured in the same process so the machine's speed affects both alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import timeit

import numpy as np

import ember


def per_op_us(stmt, number: int = 20000, repeat: int = 7) -> float:
    times = timeit.repeat(stmt, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6


def measure() -> dict:
    import torch

    torch.set_num_threads(1)
    data = np.arange(16, dtype=np.float32)
    results = {}
    for grad in (False, True):
        ea = ember.tensor(data, requires_grad=grad)
        eb = ember.tensor(data, requires_grad=grad)
        ta = torch.tensor(data, requires_grad=grad)
        tb = torch.tensor(data, requires_grad=grad)
        key = "with_autograd" if grad else "no_autograd"
        results[key] = {
            "ember_us": per_op_us(lambda ea=ea, eb=eb: ea + eb),
            "torch_us": per_op_us(lambda ta=ta, tb=tb: ta + tb),
            "numpy_us": per_op_us(lambda: data + data),
        }
        r = results[key]
        r["ember_over_torch"] = r["ember_us"] / r["torch_us"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    results = measure()
    print(f"eager 16-element add, {platform.processor() or platform.machine()}")
    print(f"{'':16}{'ember':>10}{'torch':>10}{'numpy':>10}{'ember/torch':>14}")
    for key, r in results.items():
        print(f"{key:16}{r['ember_us']:>9.2f}u{r['torch_us']:>9.2f}u{r['numpy_us']:>9.2f}u"
              f"{r['ember_over_torch']:>13.2f}x")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
