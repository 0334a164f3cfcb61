"""Quickstart: fit a small two-layer network to noisy sin(x) with ember's eager autograd.

Everything here is PyTorch's API with `torch` replaced by `ember`: tensors, operators,
`requires_grad`, `loss.backward()`, `.grad`, and `no_grad()` for the update.
Run: python examples/quickstart.py
"""

from __future__ import annotations

import math
import sys

import ember


def progress(step: int, total: int, loss: float, width: int = 30) -> None:
    done = int(width * step / total)
    bar = "#" * done + "-" * (width - done)
    sys.stdout.write(f"\r[{bar}] step {step:4d}/{total}  loss {loss:.5f}")
    sys.stdout.flush()


def main(steps: int = 4000, lr: float = 0.05) -> float:
    ember.manual_seed(0)
    x = ember.linspace(-math.pi, math.pi, 256).unsqueeze(1)
    y = ember.sin(x) + 0.05 * ember.randn(256, 1)

    hidden = 32
    w1 = (ember.randn(1, hidden) * 1.0).requires_grad_()
    b1 = ember.zeros(hidden, requires_grad=True)
    w2 = (ember.randn(hidden, 1) / math.sqrt(hidden)).requires_grad_()
    b2 = ember.zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]

    for step in range(1, steps + 1):
        pred = ember.tanh(x @ w1 + b1) @ w2 + b2
        loss = ((pred - y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with ember.no_grad():
            for p in params:
                p -= lr * p.grad
        if step % 50 == 0 or step == steps:
            progress(step, steps, loss.item())
    print()
    with ember.no_grad():
        pred = ember.tanh(x @ w1 + b1) @ w2 + b2
        gap = (pred - ember.sin(x)).abs()
    mean_err, max_err = gap.mean().item(), gap.max().item()
    print(f"result: fit sin(x) on [-pi, pi]: mean error {mean_err:.3f}, max error {max_err:.3f}")
    return mean_err


if __name__ == "__main__":
    main()
