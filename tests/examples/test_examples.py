"""The examples run as a newcomer runs them, and reach the accuracy the README promises."""

from __future__ import annotations

import gzip
import os
import re
import struct
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


@pytest.fixture(autouse=True)
def examples_on_path(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(os.path.abspath(EXAMPLES))
    monkeypatch.chdir(tmp_path)  # the examples write their loss curves to the working directory


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    opener = gzip.open if compress else open
    with opener(str(path), "wb") as f:
        f.write(payload)


def digits_as_mnist_files(directory, compress: bool) -> tuple[int, int]:
    """Write scikit-learn's digits, upscaled to 16x16 uint8, as MNIST IDX files."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((2, 2))) * (255 / 16)
    labels = digits.target
    suffix = ".gz" if compress else ""
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", images[:1400], compress)
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}", labels[:1400], compress)
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", images[1400:], compress)
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", labels[1400:], compress)
    return 1400, len(labels) - 1400


def test_mnist_mlp_reaches_95_percent_on_digits(tmp_path, capsys):
    import mnist_mlp

    accuracy = mnist_mlp.main([])
    out = capsys.readouterr().out
    assert accuracy >= 0.95
    result = [line for line in out.splitlines() if line.startswith("result:")]
    assert len(result) == 1 and "test accuracy" in result[0]
    png = tmp_path / "mnist_mlp_loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mnist_mlp_compiled_training_step_matches_eager(tmp_path, capsys):
    import mnist_mlp

    plot = str(tmp_path / "curve.png")
    eager = mnist_mlp.main(["--epochs", "2", "--plot", plot, "--eager"])
    eager_out = capsys.readouterr().out
    compiled = mnist_mlp.main(["--epochs", "2", "--plot", plot])  # compiled by default
    out = capsys.readouterr().out
    assert abs(compiled - eager) <= 0.01
    assert "compiled training step:" in out and "graph nodes" in out
    assert re.search(r"time per training step .*: eager [\d.]+ ms, compiled [\d.]+ ms", out)
    # the same loss at every step of the progress lines, up to another summation order
    losses = [float(x) for x in re.findall(r"loss (\d+\.\d+)", out)]
    eager_losses = [float(x) for x in re.findall(r"loss (\d+\.\d+)", eager_out)]
    assert len(losses) > 90 and np.allclose(losses, eager_losses, atol=2e-3)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_loader_reads_mnist_files(tmp_path, compress):
    import common

    n_train, n_test = digits_as_mnist_files(tmp_path, compress)
    (train_x, train_y), (test_x, test_y) = common.load_mnist(str(tmp_path))
    assert train_x.shape == (n_train, 16, 16) and test_x.shape == (n_test, 16, 16)
    assert train_x.dtype == np.float32 and train_x.min() >= 0.0 and train_x.max() <= 1.0
    assert train_y.dtype == np.int64 and set(np.unique(train_y)) == set(range(10))


def test_mnist_mlp_trains_from_idx_files(tmp_path, capsys):
    import mnist_mlp

    digits_as_mnist_files(tmp_path, compress=True)
    accuracy = mnist_mlp.main(["--data", str(tmp_path), "--epochs", "3"])
    assert accuracy > 0.85
    assert "MNIST from" in capsys.readouterr().out


def test_idx_loader_rejects_bad_files(tmp_path):
    import common

    bad = tmp_path / "bad-idx3-ubyte"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        common.read_idx(str(bad))
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="expected 10 values, found 3"):
        common.read_idx(str(short))


def test_mnist_cnn_compiled_training_step_matches_eager(tmp_path, capsys):
    import mnist_cnn

    plot = str(tmp_path / "curve.png")
    eager = mnist_cnn.main(["--epochs", "2", "--plot", plot])
    eager_losses = [float(x) for x in re.findall(r"loss (\d+\.\d+)", capsys.readouterr().out)]
    compiled = mnist_cnn.main(["--epochs", "2", "--plot", plot, "--compile"])
    losses = [float(x) for x in re.findall(r"loss (\d+\.\d+)", capsys.readouterr().out)]
    # the same training up to another summation order in the compiled kernels
    assert abs(compiled - eager) <= 0.02 and len(losses) > 40
    assert np.allclose(losses, eager_losses, atol=2e-2)


def test_mnist_cnn_reaches_95_percent_on_digits(capsys):
    import mnist_cnn

    assert mnist_cnn.main(["--epochs", "4"]) >= 0.95


def test_quickstart_fits_sin():
    sys.modules.pop("quickstart", None)
    import quickstart

    assert quickstart.main(steps=1500) < 0.1


def test_char_transformer_learns_and_samples(capsys):
    import char_transformer

    args = ["--steps", "60", "--dim", "32", "--layers", "1", "--heads", "2", "--context", "32",
            "--sample-chars", "40", "--max-chars", "20000", "--evals", "1"]  # fmt: skip
    val_loss = char_transformer.main(args)
    out = capsys.readouterr().out
    unigram = float(out.split("vs ")[1].split(" nats/char")[0])
    assert val_loss < unigram  # it learned more than the character frequencies
    assert out.count("sample") >= 2 and "result:" in out
