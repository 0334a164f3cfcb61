"""The polynomial regression of pytorch/examples (regression/main.py): fit a random degree-4
polynomial with one ``nn.Linear`` on features ``[x, x^2, x^3, x^4]``, smooth L1 loss and
hand-written SGD on ``param.data`` until the loss is below 1e-3, then print both polynomials
through ``format`` of 0-d tensors. The script's top level is split into ``build`` and ``run``."""

from __future__ import print_function
import argparse
from itertools import count

import torch
import torch.nn.functional as F

POLY_DEGREE = 4


def make_features(x):
    """Builds features i.e. a matrix with columns [x, x^2, x^3, x^4]."""
    x = x.unsqueeze(1)
    return torch.cat([x**i for i in range(1, POLY_DEGREE + 1)], 1)


def f(x):
    """Approximated function."""
    return x.mm(W_target) + b_target.item()


def poly_desc(W, b):
    """Creates a string description of a polynomial."""
    result = "y = "
    for i, w in enumerate(W):
        result += "{:+.2f} x^{} ".format(w, i + 1)
    result += "{:+.2f}".format(b[0])
    return result


def get_batch(batch_size=32):
    """Builds a batch i.e. (x, f(x)) pair."""
    random = torch.randn(batch_size)
    x = make_features(random)
    y = f(x)
    return x, y


def train_step(fc, batch_x, batch_y):
    # Reset gradients
    fc.zero_grad()

    # Forward pass
    output = F.smooth_l1_loss(fc(batch_x), batch_y)
    loss = output.item()

    # Backward pass
    output.backward()

    # Apply gradients
    for param in fc.parameters():
        param.data.add_(-0.1 * param.grad)
    return loss


def parse_args(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build(args):
    global W_target, b_target
    torch.manual_seed(args.seed)
    W_target = torch.randn(POLY_DEGREE, 1) * 5
    b_target = torch.randn(1) * 5

    # Define model
    fc = torch.nn.Linear(W_target.size(0), 1)
    return {"fc": fc}


def run(args, fc):
    losses = []
    for batch_idx in count(1):
        # Get data
        batch_x, batch_y = get_batch()

        loss = train_step(fc, batch_x, batch_y)
        losses.append(loss)

        # Stop criterion
        if loss < 1e-3:
            break

    print("Loss: {:.6f} after {} batches".format(loss, batch_idx))
    print("==> Learned function:\t" + poly_desc(fc.weight.view(-1), fc.bias))
    print("==> Actual function:\t" + poly_desc(W_target.view(-1), b_target))
    return {
        "loss": losses,
        "batches": batch_idx,
        "learned": poly_desc(fc.weight.view(-1), fc.bias),
        "actual": poly_desc(W_target.view(-1), b_target),
    }


def main(argv=None):
    args = parse_args(argv)
    return run(args, **build(args))


if __name__ == "__main__":
    main()
