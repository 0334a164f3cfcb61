"""The classic MNIST classifier, written exactly as in PyTorch with `torch` replaced by `ember`.

Three Linear layers with ReLU, CrossEntropyLoss, SGD with momentum, a DataLoader, and the usual
zero_grad / backward / step loop with evaluation under no_grad.

    python examples/mnist_mlp.py                 # scikit-learn's bundled 8x8 digits
    python examples/mnist_mlp.py --data DIR      # real MNIST IDX files (train-images-idx3-ubyte...)
    python examples/mnist_mlp.py --eager         # run the training step eagerly, op by op

The training step (forward, backward and the SGD update) is compiled by `ember.compile` into
native code unless `--eager` is given. Ends with a one-line result, the time of one training
step eager and compiled, and writes the loss curve to a PNG.
"""

from __future__ import annotations

import argparse
import copy
import time

from common import Progress, load_digit_data, save_loss_curve

import ember
import ember.nn as nn
import ember.optim as optim
from ember.utils.data import DataLoader, TensorDataset


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: int = 128, classes: int = 10) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden // 2)
        self.fc3 = nn.Linear(hidden // 2, classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def evaluate(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with ember.no_grad():
        for images, labels in loader:
            predictions = model(images).argmax(dim=1)
            correct += (predictions == labels).sum().item()
            total += labels.numel()
    model.train()
    return correct / total


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="directory with MNIST IDX files (default: 8x8 digits)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eager", action="store_true", help="do not compile the training step")
    parser.add_argument("--plot", default="mnist_mlp_loss.png", help="where to save the curve")
    args = parser.parse_args(argv)

    ember.manual_seed(args.seed)
    ((train_x, train_y), (test_x, test_y)), source = load_digit_data(args.data)
    train_loader = DataLoader(
        TensorDataset(train_x, train_y), batch_size=args.batch_size, shuffle=True
    )
    test_loader = DataLoader(TensorDataset(test_x, test_y), batch_size=256)
    in_features = train_x[0].numel()
    print(f"{source}: {len(train_x)} training and {len(test_x)} test images of "
          f"{tuple(train_x.shape[1:])} pixels")  # fmt: skip

    model = MLP(in_features)
    print(model)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

    def make_step(model, optimizer):
        def train_step(images, labels):
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            return loss

        return train_step

    timing_model = copy.deepcopy(model)  # (for the timing at the end)
    timing_opt = optim.SGD(timing_model.parameters(), lr=args.lr, momentum=0.9)
    train_step = make_step(model, optimizer)
    if not args.eager:  # one native program: forward, backward and the SGD update
        train_step = ember.compile(train_step)

    losses: list[float] = []
    for epoch in range(1, args.epochs + 1):
        bar = Progress(len(train_loader), f"epoch {epoch:2d}/{args.epochs}")
        for step, (images, labels) in enumerate(train_loader, 1):
            loss = train_step(images, labels)
            losses.append(loss.item())
            bar.update(step, loss=loss.item())
        bar.update(len(train_loader), loss=losses[-1], test_acc=evaluate(model, test_loader))
        bar.close()

    accuracy = evaluate(model, test_loader)
    if not args.eager:
        graph = ember.last_graphs(train_step).forward
        print(f"compiled training step: {len(graph.nodes)} graph nodes (ember.last_graphs)")
    save_loss_curve(losses, args.plot, f"MLP on {source}")
    print(f"result: test accuracy {accuracy:.2%} on {len(test_x)} {source} images "
          f"after {args.epochs} epochs (loss curve: {args.plot})")  # fmt: skip
    images, labels = next(iter(train_loader))
    eager_ms = time_step(make_step(timing_model, timing_opt), images, labels)
    compiled_ms = time_step(ember.compile(make_step(timing_model, timing_opt)), images, labels)
    print(f"time per training step (batch {len(images)}): eager {eager_ms:.3f} ms, compiled "
          f"{compiled_ms:.3f} ms ({eager_ms / compiled_ms:.1f}x)")  # fmt: skip
    return accuracy


def time_step(step, images, labels, repeat: int = 200) -> float:
    """Milliseconds per call of ``step``, the best of 5 rounds after a warm-up call."""
    step(images, labels)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat // 5):
            step(images, labels)
        best = min(best, (time.perf_counter() - start) / (repeat // 5))
    return best * 1e3


if __name__ == "__main__":
    main()
