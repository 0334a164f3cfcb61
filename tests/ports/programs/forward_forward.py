"""The forward-forward network of pytorch/examples (mnist_forward_forward/main.py, after
Hinton's Forward-Forward algorithm): layers that subclass ``nn.Linear``, each with its own Adam
and its own ``train(x_pos, x_neg)`` (shadowing ``Module.train``), trained one after the other on
label-overlaid positive and negative data; predictions by the goodness of each label. On
scikit-learn's 8x8 digits (64 inputs) with narrower layers and fewer epochs."""

import argparse

from sklearn.datasets import load_digits

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from torch.optim import Adam


def get_y_neg(y):
    y_neg = y.clone()
    for idx, y_samp in enumerate(y):
        allowed_indices = list(range(10))
        allowed_indices.remove(y_samp.item())
        y_neg[idx] = torch.tensor(allowed_indices)[
            torch.randint(len(allowed_indices), size=(1,))
        ].item()
    return y_neg.to(device)


def overlay_y_on_x(x, y, classes=10):
    x_ = x.clone()
    x_[:, :classes] *= 0.0
    x_[range(x.shape[0]), y] = x.max()
    return x_


class Net(torch.nn.Module):
    def __init__(self, dims):

        super().__init__()
        self.layers = []
        for d in range(len(dims) - 1):
            self.layers = self.layers + [Layer(dims[d], dims[d + 1]).to(device)]

    def predict(self, x):
        goodness_per_label = []
        for label in range(10):
            h = overlay_y_on_x(x, label)
            goodness = []
            for layer in self.layers:
                h = layer(h)
                goodness = goodness + [h.pow(2).mean(1)]
            goodness_per_label += [sum(goodness).unsqueeze(1)]
        goodness_per_label = torch.cat(goodness_per_label, 1)
        return goodness_per_label.argmax(1)

    def train(self, x_pos, x_neg):
        h_pos, h_neg = x_pos, x_neg
        for i, layer in enumerate(self.layers):
            print("training layer: ", i)
            h_pos, h_neg = layer.train(h_pos, h_neg)


def train_step(layer, x_pos, x_neg):
    g_pos = layer.forward(x_pos).pow(2).mean(1)
    g_neg = layer.forward(x_neg).pow(2).mean(1)
    # The following loss pushes pos (neg) samples to
    # values larger (smaller) than the self.threshold.
    loss = torch.log1p(
        torch.exp(torch.cat([-g_pos + layer.threshold, g_neg - layer.threshold]))
    ).mean()
    layer.opt.zero_grad()
    # this backward just compute the derivative and hence
    # is not considered backpropagating.
    loss.backward()
    layer.opt.step()
    return loss


class Layer(nn.Linear):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device, dtype)
        self.relu = torch.nn.ReLU()
        self.opt = Adam(self.parameters(), lr=args.lr)
        self.threshold = args.threshold
        self.num_epochs = args.epochs
        self.losses = []

    def forward(self, x):
        x_direction = x / (x.norm(2, 1, keepdim=True) + 1e-4)
        return self.relu(torch.mm(x_direction, self.weight.T) + self.bias.unsqueeze(0))

    def train(self, x_pos, x_neg):
        for i in range(self.num_epochs):
            loss = train_step(self, x_pos, x_neg)
            self.losses.append(loss.item())
            if i % args.log_interval == 0:
                print("Loss: ", loss.item())
        return self.forward(x_pos).detach(), self.forward(x_neg).detach()


def digits(train, n_train, n_test):
    """MNIST through ``ToTensor``, ``Normalize`` and ``Lambda(torch.flatten)``: flat, normalized."""
    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0 - 0.1307) / 0.3081
    rows = slice(0, n_train) if train else slice(n_train, n_train + n_test)
    return TensorDataset(
        torch.tensor(images[rows], dtype=torch.get_default_dtype()), torch.tensor(labels[rows])
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12, metavar="N")
    parser.add_argument("--lr", type=float, default=0.03, metavar="LR")
    parser.add_argument("--no_accel", action="store_true", help="disables accelerator")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--train_size", type=int, default=100, help="size of training set")
    parser.add_argument("--threshold", type=float, default=2, help="threshold for training")
    parser.add_argument("--test_size", type=int, default=50, help="size of test set")
    parser.add_argument("--save_model", action="store_true")
    parser.add_argument("--out", default=".")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N")
    return parser.parse_args(argv)


def build(parsed_args):
    global args, device
    args = parsed_args
    torch.manual_seed(args.seed)
    use_accel = not args.no_accel and torch.accelerator.is_available()
    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")
    net = Net([64, 32, 32])
    return {"net": net, "layers": net.layers}


def run(args, net, layers):
    train_kwargs = {"batch_size": args.train_size}
    test_kwargs = {"batch_size": args.test_size}

    if device.type != "cpu":
        accel_kwargs = {"num_workers": 1, "pin_memory": True, "shuffle": True}
        train_kwargs.update(accel_kwargs)
        test_kwargs.update(accel_kwargs)

    train_loader = DataLoader(digits(True, args.train_size, args.test_size), **train_kwargs)
    test_loader = DataLoader(digits(False, args.train_size, args.test_size), **test_kwargs)

    x, y = next(iter(train_loader))
    x, y = x.to(device), y.to(device)
    x_pos = overlay_y_on_x(x, y)
    y_neg = get_y_neg(y)
    x_neg = overlay_y_on_x(x, y_neg)
    net.train(x_pos, x_neg)
    train_error = 1.0 - net.predict(x).eq(y).float().mean().item()
    print("train error:", train_error)
    x_te, y_te = next(iter(test_loader))
    x_te, y_te = x_te.to(device), y_te.to(device)
    if args.save_model:
        torch.save(net.state_dict(), args.out + "/mnist_ff.pt")
    test_error = 1.0 - net.predict(x_te).eq(y_te).float().mean().item()
    print("test error:", test_error)
    return {
        "loss": [loss for layer in net.layers for loss in layer.losses],
        "y_neg": y_neg.numpy(),
        "train_error": train_error,
        "test_error": test_error,
    }


def main(argv=None):
    parsed = parse_args(argv)
    return run(parsed, **build(parsed))


if __name__ == "__main__":
    main()
