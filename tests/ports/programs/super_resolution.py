"""The super-resolution network of pytorch/examples (super_resolution: main.py, model.py,
data.py): four convolutions with orthogonal initialization and ``nn.PixelShuffle``
(sub-pixel convolution), MSELoss, Adam, PSNR on a test set, a data loader with worker
processes, and a whole-model checkpoint each epoch. The images are scikit-learn's 8x8 digits
as targets and their 2x2-averaged 4x4 versions as inputs (in place of BSDS300's Y channel), and
the layers are narrower."""

from __future__ import print_function
import argparse
from math import log10

from sklearn.datasets import load_digits

import torch
import torch.nn as nn
import torch.nn.init as init
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset


###############################################################################
# model.py
###############################################################################


class Net(nn.Module):
    def __init__(self, upscale_factor):
        super(Net, self).__init__()

        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 16, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(16, 16, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(16, 8, (3, 3), (1, 1), (1, 1))
        self.conv4 = nn.Conv2d(8, upscale_factor**2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

        self._initialize_weights()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        x = self.pixel_shuffle(self.conv4(x))
        return x

    def _initialize_weights(self):
        init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv3.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv4.weight)


###############################################################################
# data.py
###############################################################################


class DatasetFromDigits(Dataset):
    """In place of ``DatasetFromFolder``: (low resolution, high resolution) image pairs."""

    def __init__(self, upscale_factor, train):
        super(DatasetFromDigits, self).__init__()
        images = load_digits().images / 16.0
        images = images[:32] if train else images[32:44]
        f = upscale_factor
        small = images.reshape(len(images), 8 // f, f, 8 // f, f).mean(axis=(2, 4))
        self.inputs = [torch.tensor(x[None], dtype=torch.get_default_dtype()) for x in small]
        self.targets = [torch.tensor(y[None], dtype=torch.get_default_dtype()) for y in images]

    def __getitem__(self, index):
        return self.inputs[index], self.targets[index]

    def __len__(self):
        return len(self.inputs)


def get_training_set(upscale_factor):
    return DatasetFromDigits(upscale_factor, train=True)


def get_test_set(upscale_factor):
    return DatasetFromDigits(upscale_factor, train=False)


###############################################################################
# main.py
###############################################################################


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="PyTorch Super Res Example")
    parser.add_argument(
        "--upscale_factor", type=int, default=2, help="super resolution upscale factor"
    )
    parser.add_argument("--batchSize", type=int, default=8, help="training batch size")
    parser.add_argument("--testBatchSize", type=int, default=6, help="testing batch size")
    parser.add_argument("--nEpochs", type=int, default=2, help="number of epochs to train for")
    parser.add_argument("--lr", type=float, default=0.01, help="Learning Rate. Default=0.01")
    parser.add_argument(
        "--accel", action="store_true", help="Enables acceleration for training, if available"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="number of threads for data loader to use"
    )
    parser.add_argument("--seed", type=int, default=123, help="random seed to use. Default=123")
    parser.add_argument("--out", default=".")
    return parser.parse_args(argv)


def build(opt):
    print(opt)

    torch.manual_seed(opt.seed)

    if opt.accel and torch.accelerator.is_available():
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    print("===> Building model")
    model = Net(upscale_factor=opt.upscale_factor).to(device)
    criterion = nn.MSELoss()

    optimizer = optim.Adam(model.parameters(), lr=opt.lr)
    return {"model": model, "criterion": criterion, "optimizer": optimizer, "device": device}


def train_step(model, criterion, optimizer, input, target):
    optimizer.zero_grad()
    loss = criterion(model(input), target)
    loss.backward()
    optimizer.step()
    return loss


def train(epoch, model, criterion, optimizer, device, training_data_loader):
    epoch_loss = 0
    losses = []
    for iteration, batch in enumerate(training_data_loader, 1):
        input, target = batch[0].to(device), batch[1].to(device)

        loss = train_step(model, criterion, optimizer, input, target)
        epoch_loss += loss.item()
        losses.append(loss.item())

        print(
            "===> Epoch[{}]({}/{}): Loss: {:.4f}".format(
                epoch, iteration, len(training_data_loader), loss.item()
            )
        )

    print(
        "===> Epoch {} Complete: Avg. Loss: {:.4f}".format(
            epoch, epoch_loss / len(training_data_loader)
        )
    )
    return losses


def test(model, criterion, device, testing_data_loader):
    avg_psnr = 0
    with torch.no_grad():
        for batch in testing_data_loader:
            input, target = batch[0].to(device), batch[1].to(device)

            prediction = model(input)
            mse = criterion(prediction, target)
            psnr = 10 * log10(1 / mse.item())
            avg_psnr += psnr
    print("===> Avg. PSNR: {:.4f} dB".format(avg_psnr / len(testing_data_loader)))
    return avg_psnr / len(testing_data_loader)


def checkpoint(opt, model, epoch):
    model_out_path = "{}/model_epoch_{}.pth".format(opt.out, epoch)
    torch.save(model, model_out_path)
    print("Checkpoint saved to {}".format(model_out_path))


def run(opt, model, criterion, optimizer, device):
    print("===> Loading datasets")
    train_set = get_training_set(opt.upscale_factor)
    test_set = get_test_set(opt.upscale_factor)
    training_data_loader = DataLoader(
        dataset=train_set, num_workers=opt.threads, batch_size=opt.batchSize, shuffle=True
    )
    testing_data_loader = DataLoader(
        dataset=test_set, num_workers=opt.threads, batch_size=opt.testBatchSize, shuffle=False
    )

    history = {"loss": [], "psnr": []}
    for epoch in range(1, opt.nEpochs + 1):
        history["loss"] += train(epoch, model, criterion, optimizer, device, training_data_loader)
        history["psnr"].append(test(model, criterion, device, testing_data_loader))
        checkpoint(opt, model, epoch)
    return history


def main(argv=None):
    opt = parse_args(argv)
    return run(opt, **build(opt))


if __name__ == "__main__":
    main()
