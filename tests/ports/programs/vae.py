"""The variational autoencoder of pytorch/examples (vae/main.py, in its
``torch.device("cuda" if args.cuda else "cpu")`` form): the reparameterization trick
(``torch.randn_like``), BCE reconstruction plus the KL term, Adam, on scikit-learn's bundled
8x8 digits in place of torchvision's MNIST (64 pixels instead of 784, smaller layers). The
images torchvision's ``save_image`` would write are returned instead."""

from __future__ import print_function
import argparse

from sklearn.datasets import load_digits

import torch
import torch.utils.data
from torch import nn, optim
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()

        self.fc1 = nn.Linear(64, 32)
        self.fc21 = nn.Linear(32, 4)
        self.fc22 = nn.Linear(32, 4)
        self.fc3 = nn.Linear(4, 32)
        self.fc4 = nn.Linear(32, 64)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 64))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")

    # see Appendix B from VAE paper:
    # Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    # https://arxiv.org/abs/1312.6114
    # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    return BCE + KLD


def digits(train, n_train, n_test):
    """The digits as ``transforms.ToTensor()`` gives MNIST: (1, 8, 8) images in [0, 1]."""
    images, labels = load_digits(return_X_y=True)
    images = images.reshape(-1, 1, 8, 8) / 16.0
    rows = slice(0, n_train) if train else slice(n_train, n_train + n_test)
    return torch.utils.data.TensorDataset(
        torch.tensor(images[rows], dtype=torch.get_default_dtype()), torch.tensor(labels[rows])
    )


def train_step(model, optimizer, data):
    optimizer.zero_grad()
    recon_batch, mu, logvar = model(data)
    loss = loss_function(recon_batch, data, mu, logvar)
    loss.backward()
    optimizer.step()
    return loss


def train(args, model, optimizer, device, train_loader, epoch):
    model.train()
    train_loss = 0
    losses = []
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        loss = train_step(model, optimizer, data)
        train_loss += loss.item()
        losses.append(loss.item())
        if batch_idx % args.log_interval == 0:
            print(
                "Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}".format(
                    epoch,
                    batch_idx * len(data),
                    len(train_loader.dataset),
                    100.0 * batch_idx / len(train_loader),
                    loss.item() / len(data),
                )
            )

    print(
        "====> Epoch: {} Average loss: {:.4f}".format(epoch, train_loss / len(train_loader.dataset))
    )
    return losses


def test(args, model, device, test_loader, epoch):
    model.eval()
    test_loss = 0
    comparison = None
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n], recon_batch.view(args.batch_size, 1, 8, 8)[:n]])

    test_loss /= len(test_loader.dataset)
    print("====> Test set loss: {:.4f}".format(test_loss))
    return test_loss, comparison.cpu().numpy()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="VAE MNIST Example")
    parser.add_argument("--batch-size", type=int, default=16, metavar="N")
    parser.add_argument("--train-size", type=int, default=64)
    parser.add_argument("--test-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2, metavar="N")
    parser.add_argument(
        "--no-cuda", action="store_true", default=False, help="disables CUDA training"
    )
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N")
    return parser.parse_args(argv)


def build(args):
    args.cuda = not args.no_cuda and torch.cuda.is_available()

    torch.manual_seed(args.seed)

    device = torch.device("cuda" if args.cuda else "cpu")

    model = VAE().to(device)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    return {"model": model, "optimizer": optimizer, "device": device}


def run(args, model, optimizer, device):
    kwargs = {"num_workers": 1, "pin_memory": True} if args.cuda else {}
    train_loader = torch.utils.data.DataLoader(
        digits(True, args.train_size, args.test_size),
        batch_size=args.batch_size,
        shuffle=True,
        **kwargs,
    )
    test_loader = torch.utils.data.DataLoader(
        digits(False, args.train_size, args.test_size),
        batch_size=args.batch_size,
        shuffle=False,
        **kwargs,
    )

    history = {"loss": [], "test_loss": [], "reconstruction": [], "sample": []}
    for epoch in range(1, args.epochs + 1):
        history["loss"] += train(args, model, optimizer, device, train_loader, epoch)
        test_loss, comparison = test(args, model, device, test_loader, epoch)
        history["test_loss"].append(test_loss)
        history["reconstruction"].append(comparison)
        with torch.no_grad():
            sample = torch.randn(64, 4).to(device)
            sample = model.decode(sample).cpu()
            history["sample"].append(sample.view(64, 1, 8, 8).numpy())
    return history


def main(argv=None):
    args = parse_args(argv)
    return run(args, **build(args))


if __name__ == "__main__":
    main()
