"""The MNIST CNN of pytorch/examples (mnist/main.py): two convolutions, dropout, Adadelta and
StepLR, on scikit-learn's bundled 8x8 digits in place of torchvision's MNIST (channels and the
first Linear shrunk to fit 8x8 images)."""

import argparse
import os

from sklearn.datasets import load_digits

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import TensorDataset


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def digits(train, n_train, n_test):
    """The digits as MNIST's transforms give them: in [0, 1], then normalized."""
    images, labels = load_digits(return_X_y=True)
    images = (images.reshape(-1, 1, 8, 8) / 16.0 - 0.1307) / 0.3081
    rows = slice(0, n_train) if train else slice(n_train, n_train + n_test)
    return TensorDataset(
        torch.tensor(images[rows], dtype=torch.get_default_dtype()), torch.tensor(labels[rows])
    )


def train_step(model, optimizer, data, target):
    optimizer.zero_grad()
    output = model(data)
    loss = F.nll_loss(output, target)
    loss.backward()
    optimizer.step()
    return loss


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        loss = train_step(model, optimizer, data, target)
        losses.append(loss.item())
        if batch_idx % args.log_interval == 0:
            print(
                "Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}".format(
                    epoch,
                    batch_idx * len(data),
                    len(train_loader.dataset),
                    100.0 * batch_idx / len(train_loader),
                    loss.item(),
                )
            )
            if args.dry_run:
                break
    return losses


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print(
        "\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n".format(
            test_loss, correct, len(test_loader.dataset), 100.0 * correct / len(test_loader.dataset)
        )
    )
    return test_loss, correct


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="PyTorch MNIST Example")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N")
    parser.add_argument("--test-batch-size", type=int, default=64, metavar="N")
    parser.add_argument("--train-size", type=int, default=96)
    parser.add_argument("--test-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, metavar="N")
    parser.add_argument("--lr", type=float, default=1.0, metavar="LR")
    parser.add_argument("--gamma", type=float, default=0.7, metavar="M")
    parser.add_argument("--no-accel", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N")
    parser.add_argument("--save-model", action="store_true")
    parser.add_argument("--out", default=".")
    return parser.parse_args(argv)


def build(args):
    use_accel = not args.no_accel and torch.accelerator.is_available()

    torch.manual_seed(args.seed)

    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    return {"model": model, "optimizer": optimizer, "scheduler": scheduler, "device": device}


def run(args, model, optimizer, scheduler, device):
    train_kwargs = {"batch_size": args.batch_size}
    test_kwargs = {"batch_size": args.test_batch_size}
    train_loader = torch.utils.data.DataLoader(
        digits(True, args.train_size, args.test_size), **train_kwargs
    )
    test_loader = torch.utils.data.DataLoader(
        digits(False, args.train_size, args.test_size), **test_kwargs
    )

    history = {"loss": [], "test_loss": [], "correct": [], "lr": []}
    for epoch in range(1, args.epochs + 1):
        history["loss"] += train(args, model, device, train_loader, optimizer, epoch)
        test_loss, correct = test(model, device, test_loader)
        history["test_loss"].append(test_loss)
        history["correct"].append(correct)
        scheduler.step()
        history["lr"].append(scheduler.get_last_lr()[0])

    if args.save_model:
        path = os.path.join(args.out, "mnist_cnn.pt")
        torch.save(model.state_dict(), path)
        model.load_state_dict(torch.load(path))
        history["reloaded_test_loss"] = test(model, device, test_loader)[0]
    return history


def main(argv=None):
    args = parse_args(argv)
    return run(args, **build(args))


if __name__ == "__main__":
    main()
