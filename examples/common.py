"""Helpers shared by the examples: digit datasets (MNIST IDX files or scikit-learn's bundled
8x8 digits), a train/test split, a terminal progress bar and a loss-curve plot."""

from __future__ import annotations

import gzip
import os
import struct
import sys
import time

import numpy as np

import ember

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (the MNIST format), optionally gzip-compressed."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"{path}: not an unsigned-byte IDX file (header {zero}, {dtype_code})")
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        data = np.frombuffer(f.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} values, found {data.size}")
    return data.reshape(shape)


def _find(directory: str, name: str) -> str:
    for candidate in (name, name + ".gz", name.replace("-idx", ".idx")):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{name}(.gz) not found in {directory}")


def load_mnist(directory: str):
    """MNIST from IDX files: ((train_x, train_y), (test_x, test_y)), images as float in [0, 1]."""
    splits = []
    for split in ("train", "test"):
        images_name, labels_name = IDX_FILES[split]
        images = read_idx(_find(directory, images_name)).astype(np.float32) / 255.0
        labels = read_idx(_find(directory, labels_name)).astype(np.int64)
        splits.append((images, labels))
    return splits


def load_digits_split(test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images), split into train and test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(len(labels) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])


def load_digit_data(data_dir: str | None):
    """((train_x, train_y), (test_x, test_y)) as ember tensors, and a description."""
    if data_dir:
        (tx, ty), (vx, vy) = load_mnist(data_dir)
        name = f"MNIST from {data_dir}"
    else:
        (tx, ty), (vx, vy) = load_digits_split()
        name = "scikit-learn 8x8 digits"
    as_t = ember.from_numpy
    return ((as_t(tx), as_t(ty)), (as_t(vx), as_t(vy))), name


class Progress:
    """A one-line progress bar: ``epoch 2/10 [#########-----]  loss 0.1234``."""

    def __init__(self, total: int, label: str, width: int = 28) -> None:
        self.total = max(total, 1)
        self.label = label
        self.width = width
        self.start = time.perf_counter()

    def update(self, done: int, **metrics) -> None:
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        extra = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        elapsed = time.perf_counter() - self.start
        sys.stdout.write(f"\r{self.label} [{bar}] {done}/{self.total}  {extra}  {elapsed:.1f}s")
        sys.stdout.flush()

    def close(self) -> None:
        sys.stdout.write("\n")
        sys.stdout.flush()


def save_loss_curve(losses: list[float], path: str, title: str) -> None:
    """Plot the per-step training loss (and a moving average) to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(losses) + 1)
    window = max(1, len(losses) // 50)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, alpha=0.35, label="loss per step")
    ax.plot(steps[window - 1 :], smooth, label=f"moving average ({window} steps)")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
