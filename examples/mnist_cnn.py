"""A small convolutional network on the same digits, PyTorch-style with `torch` -> `ember`.

Two Conv2d + BatchNorm2d + ReLU + MaxPool2d stages, Dropout, a Linear classifier, AdamW and a
OneCycleLR schedule.

    python examples/mnist_cnn.py                 # scikit-learn's bundled 8x8 digits
    python examples/mnist_cnn.py --data DIR      # real MNIST IDX files
"""

from __future__ import annotations

import argparse

from common import Progress, load_digit_data, save_loss_curve
from mnist_mlp import evaluate

import ember
import ember.nn as nn
import ember.optim as optim
from ember.utils.data import DataLoader, TensorDataset


class ConvNet(nn.Module):
    def __init__(self, image_size: int, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * side * side, classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x.unsqueeze(1)))


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="directory with MNIST IDX files (default: 8x8 digits)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="compile the training step")
    parser.add_argument("--plot", default="mnist_cnn_loss.png", help="where to save the curve")
    args = parser.parse_args(argv)

    ember.manual_seed(args.seed)
    ((train_x, train_y), (test_x, test_y)), source = load_digit_data(args.data)
    train_loader = DataLoader(
        TensorDataset(train_x, train_y), batch_size=args.batch_size, shuffle=True
    )
    test_loader = DataLoader(TensorDataset(test_x, test_y), batch_size=256)

    model = ConvNet(image_size=train_x.shape[-1])
    print(model)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.05)
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=len(train_loader)
    )

    def train_step(images, labels):
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    if args.compile:  # one graph per step; the schedule's lr and betas are graph inputs
        train_step = ember.compile(train_step)

    losses: list[float] = []
    for epoch in range(1, args.epochs + 1):
        bar = Progress(len(train_loader), f"epoch {epoch:2d}/{args.epochs}")
        for step, (images, labels) in enumerate(train_loader, 1):
            loss = train_step(images, labels)
            schedule.step()
            losses.append(loss.item())
            bar.update(step, loss=loss.item())
        bar.update(len(train_loader), loss=losses[-1], test_acc=evaluate(model, test_loader))
        bar.close()

    accuracy = evaluate(model, test_loader)
    save_loss_curve(losses, args.plot, f"ConvNet on {source}")
    params = sum(p.numel() for p in model.parameters())
    print(
        f"result: test accuracy {accuracy:.2%} on {len(test_x)} {source} images with a "
        f"{params}-parameter CNN after {args.epochs} epochs (loss curve: {args.plot})"
    )
    return accuracy


if __name__ == "__main__":
    main()
