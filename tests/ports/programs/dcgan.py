"""The DCGAN of pytorch/examples (dcgan/main.py): a transposed-convolution generator and a
convolutional discriminator with BatchNorm, the custom ``weights_init`` applied with
``Module.apply``, BCELoss with ``torch.full`` labels refilled in place, two Adam optimizers,
``fake.detach()`` for the discriminator's step, checkpoints of both state dicts. On 16x16
images (scikit-learn's digits padded and scaled to [-1, 1], as ``Normalize((0.5,), (0.5,))``
gives MNIST) with one layer fewer on each side and few filters; the image grids
``vutils.save_image`` would write are returned instead."""

from __future__ import print_function
import argparse
import os
import random

import numpy as np
from sklearn.datasets import load_digits

import torch
import torch.nn as nn
import torch.nn.parallel
import torch.backends.cudnn as cudnn
import torch.optim as optim
import torch.utils.data


def digits_dataset(n):
    """``dset.MNIST`` with ``Resize``/``Normalize((0.5,), (0.5,))``: 8x8 digits, padded to
    16x16, in [-1, 1]."""
    images, labels = load_digits(return_X_y=True)
    images = np.pad(images.reshape(-1, 1, 8, 8)[:n] / 16.0, ((0, 0), (0, 0), (4, 4), (4, 4)))
    images = (images - 0.5) / 0.5
    return torch.utils.data.TensorDataset(
        torch.tensor(images, dtype=torch.get_default_dtype()), torch.tensor(labels[:n])
    )


# custom weights initialization called on netG and netD
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, ngpu, nz, ngf, nc):
        super(Generator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 4 x 4
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 8 x 8
            nn.ConvTranspose2d(ngf * 2, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size. (nc) x 16 x 16
        )

    def forward(self, input):

        if (input.is_cuda or input.is_xpu) and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)
        return output


class Discriminator(nn.Module):
    def __init__(self, ngpu, ndf, nc):
        super(Discriminator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is (nc) x 16 x 16
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 8 x 8
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 4 x 4
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input):
        if (input.is_cuda or input.is_xpu) and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)

        return output.view(-1, 1).squeeze(1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--workers", type=int, help="number of data loading workers", default=0)
    parser.add_argument("--batchSize", type=int, default=8, help="input batch size")
    parser.add_argument("--imageSize", type=int, default=16)
    parser.add_argument("--nsamples", type=int, default=24)
    parser.add_argument("--nz", type=int, default=8, help="size of the latent z vector")
    parser.add_argument("--ngf", type=int, default=4)
    parser.add_argument("--ndf", type=int, default=4)
    parser.add_argument("--niter", type=int, default=2, help="number of epochs to train for")
    parser.add_argument("--lr", type=float, default=0.0002, help="learning rate, default=0.0002")
    parser.add_argument("--beta1", type=float, default=0.5, help="beta1 for adam. default=0.5")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--ngpu", type=int, default=1, help="number of GPUs to use")
    parser.add_argument("--netG", default="", help="path to netG (to continue training)")
    parser.add_argument("--netD", default="", help="path to netD (to continue training)")
    parser.add_argument("--outf", default=".", help="folder to output model checkpoints")
    parser.add_argument("--manualSeed", type=int, default=7, help="manual seed")
    parser.add_argument("--accel", action="store_true", default=False)
    return parser.parse_args(argv)


def build(opt):
    try:
        os.makedirs(opt.outf)
    except OSError:
        pass

    if opt.manualSeed is None:
        opt.manualSeed = random.randint(1, 10000)
    print("Random Seed: ", opt.manualSeed)
    random.seed(opt.manualSeed)
    torch.manual_seed(opt.manualSeed)

    cudnn.benchmark = True

    if opt.accel and torch.accelerator.is_available():
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    print(f"Using device: {device}")

    nc = 1
    ngpu = int(opt.ngpu)
    nz = int(opt.nz)
    ngf = int(opt.ngf)
    ndf = int(opt.ndf)

    netG = Generator(ngpu, nz, ngf, nc).to(device)
    netG.apply(weights_init)
    if opt.netG != "":
        netG.load_state_dict(torch.load(opt.netG))
    print(netG)

    netD = Discriminator(ngpu, ndf, nc).to(device)
    netD.apply(weights_init)
    if opt.netD != "":
        netD.load_state_dict(torch.load(opt.netD))
    print(netD)

    criterion = nn.BCELoss()

    # setup optimizer
    optimizerD = optim.Adam(netD.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    optimizerG = optim.Adam(netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    return {
        "netG": netG,
        "netD": netD,
        "criterion": criterion,
        "optimizerD": optimizerD,
        "optimizerG": optimizerG,
        "device": device,
    }


real_label = 1
fake_label = 0


def train_step(netG, netD, criterion, optimizerD, optimizerG, data, nz, device):
    ############################
    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    ###########################
    # train with real
    netD.zero_grad()
    real_cpu = data[0].to(device)
    batch_size = real_cpu.size(0)
    label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=device)

    output = netD(real_cpu)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = output.mean().item()

    # train with fake
    noise = torch.randn(batch_size, nz, 1, 1, device=device)
    fake = netG(noise)
    label.fill_(fake_label)
    output = netD(fake.detach())
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = output.mean().item()
    errD = errD_real + errD_fake
    optimizerD.step()

    ############################
    # (2) Update G network: maximize log(D(G(z)))
    ###########################
    netG.zero_grad()
    label.fill_(real_label)  # fake labels are real for generator cost
    output = netD(fake)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = output.mean().item()
    optimizerG.step()
    return errD, errG, D_x, D_G_z1, D_G_z2


def run(opt, netG, netD, criterion, optimizerD, optimizerG, device):
    dataset = digits_dataset(opt.nsamples)
    assert dataset
    dataloader = torch.utils.data.DataLoader(
        dataset, batch_size=opt.batchSize, shuffle=True, num_workers=int(opt.workers)
    )
    nz = int(opt.nz)
    fixed_noise = torch.randn(opt.batchSize, nz, 1, 1, device=device)

    if opt.dry_run:
        opt.niter = 1

    history = {"errD": [], "errG": [], "D_x": [], "D_G_z1": [], "D_G_z2": [], "fake": []}
    for epoch in range(opt.niter):
        for i, data in enumerate(dataloader, 0):
            errD, errG, D_x, D_G_z1, D_G_z2 = train_step(
                netG, netD, criterion, optimizerD, optimizerG, data, nz, device
            )
            print(
                "[%d/%d][%d/%d] Loss_D: %.4f Loss_G: %.4f D(x): %.4f D(G(z)): %.4f / %.4f"
                % (
                    epoch,
                    opt.niter,
                    i,
                    len(dataloader),
                    errD.item(),
                    errG.item(),
                    D_x,
                    D_G_z1,
                    D_G_z2,
                )
            )
            for key, value in zip(history, (errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)):
                history[key].append(value)
            if i % 100 == 0:
                fake = netG(fixed_noise)
                history["fake"].append(fake.detach().numpy())

            if opt.dry_run:
                break
        # do checkpointing
        torch.save(netG.state_dict(), "%s/netG_epoch_%d.pth" % (opt.outf, epoch))
        torch.save(netD.state_dict(), "%s/netD_epoch_%d.pth" % (opt.outf, epoch))
    return history


def main(argv=None):
    opt = parse_args(argv)
    return run(opt, **build(opt))


if __name__ == "__main__":
    main()
