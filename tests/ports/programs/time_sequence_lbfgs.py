"""The time-sequence prediction of pytorch/examples (time_sequence_prediction: train.py and
generate_sine_wave.py): two LSTMCells unrolled by hand over sine waves, in double precision,
trained with LBFGS and a closure, then predicting the future under ``no_grad``. Fewer, shorter
waves and a smaller cell; the waves are generated in memory (the example's ``torch.load`` of a
pickled numpy array is refused by PyTorch 2.6+'s weights-only default), and the predictions
that it plots are returned instead."""

from __future__ import print_function
import argparse

import numpy as np

import torch
import torch.nn as nn
import torch.optim as optim

HIDDEN = 12


def generate_sine_wave(T=20, L=16, N=5):
    np.random.seed(2)
    x = np.empty((N, L), "int64")
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    data = np.sin(x / 1.0 / T).astype("float64")
    return data


class Sequence(nn.Module):
    def __init__(self):
        super(Sequence, self).__init__()
        self.lstm1 = nn.LSTMCell(1, HIDDEN)
        self.lstm2 = nn.LSTMCell(HIDDEN, HIDDEN)
        self.linear = nn.Linear(HIDDEN, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        c_t = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):  # if we should predict the future
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = torch.cat(outputs, dim=1)
        return outputs


def train_step(optimizer, seq, criterion, input, target, losses):
    def closure():
        optimizer.zero_grad()
        out = seq(input)
        loss = criterion(out, target)
        print("loss:", loss.item())
        losses.append(loss.item())
        loss.backward()
        return loss

    return optimizer.step(closure)


def parse_args(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2, help="steps to run")
    parser.add_argument("--future", type=int, default=8)
    return parser.parse_args(argv)


def build(opt):
    # set random seed to 0
    np.random.seed(0)
    torch.manual_seed(0)
    # build the model
    seq = Sequence()
    seq.double()
    criterion = nn.MSELoss()
    # use LBFGS as optimizer since we can load the whole data to train
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
    return {"seq": seq, "criterion": criterion, "optimizer": optimizer}


def run(opt, seq, criterion, optimizer):
    # load data and make training set
    data = generate_sine_wave()
    input = torch.from_numpy(data[3:, :-1])
    target = torch.from_numpy(data[3:, 1:])
    test_input = torch.from_numpy(data[:3, :-1])
    test_target = torch.from_numpy(data[:3, 1:])
    history = {"loss": [], "step_loss": [], "test_loss": [], "prediction": []}
    # begin to train
    for i in range(opt.steps):
        print("STEP: ", i)
        history["step_loss"].append(
            train_step(optimizer, seq, criterion, input, target, history["loss"]).item()
        )
        # begin to predict, no need to track gradient here
        with torch.no_grad():
            future = opt.future
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            print("test loss:", loss.item())
            history["test_loss"].append(loss.item())
            y = pred.detach().numpy()
        history["prediction"].append(y)
    return history


def main(argv=None):
    opt = parse_args(argv)
    return run(opt, **build(opt))


if __name__ == "__main__":
    main()
