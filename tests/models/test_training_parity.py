"""Whole training programs give PyTorch's numbers: the same code runs once with ``torch`` and
once with ``ember`` (only the library passed in differs), from the same weights and batches.

Each step's loss, the final parameters and buffers (BatchNorm statistics), the optimizer's
effect and the scheduler's learning rates must agree.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember

RNG = np.random.default_rng(1234)


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16),
                         nn.ReLU(), nn.Linear(16, 10))  # fmt: skip


def cnn(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=1, padding=1, groups=2), nn.GELU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(24, 10),
    )  # fmt: skip


class TinyTransformer:
    """A one-block causal transformer, built from whichever library is passed in."""

    def __new__(cls, lib, vocab=11, dim=16, heads=2, context=8):
        nn = lib.nn

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(vocab, dim)
                self.pos = nn.Parameter(lib.zeros(context, dim))
                self.ln1 = nn.LayerNorm(dim)
                self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
                self.ln2 = nn.LayerNorm(dim)
                self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"),
                                         nn.Linear(4 * dim, dim))  # fmt: skip
                self.head = nn.Linear(dim, vocab)
                mask = lib.triu(lib.ones(context, context, dtype=lib.bool), diagonal=1)
                self.register_buffer("mask", mask, persistent=False)

            def forward(self, tokens):
                x = self.embed(tokens) + self.pos[: tokens.shape[1]]
                h = self.ln1(x)
                a, _ = self.attn(h, h, h, attn_mask=self.mask, need_weights=False)
                x = x + a
                x = x + self.mlp(self.ln2(x))
                return self.head(x)

        return Block()


def copy_weights(src: ember.nn.Module, dst: torch.nn.Module) -> None:
    state = {k: torch.tensor(v.numpy()) for k, v in src.state_dict().items()}
    dst.load_state_dict(state)


def run(lib, model, batches, make_optimizer, loss_fn, steps, clip=None, schedule=None):
    opt = make_optimizer(lib, model)
    sched = schedule(lib, opt) if schedule else None
    losses, lrs = [], []
    for step in range(steps):
        x, y = batches[step % len(batches)]  # a few batches, revisited: learning shows
        x, y = lib.tensor(x), lib.tensor(y)
        opt.zero_grad()
        loss = loss_fn(lib, model(x), y)
        loss.backward()
        if clip:
            lib.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if sched:
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        losses.append(loss.item())
    return np.array(losses), lrs


def assert_same_training(build, batches, make_optimizer, loss_fn, steps, dtype, tol, **kw):
    ember.manual_seed(0)
    em = build(ember)
    tm = build(torch)
    if dtype == "float64":
        em.double()
        tm.double()
    copy_weights(em, tm)
    batches = [(x.astype(dtype) if x.dtype.kind == "f" else x, y) for x, y in batches]
    e_loss, e_lrs = run(ember, em, batches, make_optimizer, loss_fn, steps, **kw)
    t_loss, t_lrs = run(torch, tm, batches, make_optimizer, loss_fn, steps, **kw)
    np.testing.assert_allclose(e_loss, t_loss, rtol=tol, atol=tol)
    assert e_lrs == pytest.approx(t_lrs, rel=1e-12)
    t_state = tm.state_dict()
    for name, value in em.state_dict().items():
        np.testing.assert_allclose(value.numpy(), t_state[name].numpy(), rtol=tol, atol=tol,
                                   err_msg=name)  # fmt: skip
    first_batch_losses = e_loss[:: len(batches)]
    assert first_batch_losses[-1] < first_batch_losses[0]  # it learned something


def digit_batches(n_batches=4, batch=16, image=8):
    xs = RNG.standard_normal((n_batches, batch, image, image))
    ys = RNG.integers(0, 10, (n_batches, batch))
    return [(xs[i], ys[i]) for i in range(n_batches)]


def cross_entropy(lib, logits, y):
    return lib.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)


@pytest.mark.parametrize(("dtype", "tol"), [("float64", 1e-10), ("float32", 2e-5)])
def test_mlp_sgd_momentum_nesterov(dtype, tol):
    def make_opt(lib, m):
        return lib.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                             weight_decay=1e-3)  # fmt: skip

    assert_same_training(mlp, digit_batches(), make_opt, cross_entropy, 20, dtype, tol)


def test_cnn_batchnorm_adamw_onecycle():
    def make_opt(lib, m):
        return lib.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0.05)

    def schedule(lib, opt):
        return lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=12)

    batches = [(x[:, None], y) for x, y in digit_batches(3, 8)]
    assert_same_training(cnn, batches, make_opt, cross_entropy, 12, "float64", 1e-9,
                         schedule=schedule)  # fmt: skip


def test_transformer_block_adam_clipping_cosine():
    def make_opt(lib, m):
        return lib.optim.Adam(m.parameters(), lr=1e-2, betas=(0.9, 0.98))

    def schedule(lib, opt):
        return lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)

    def lm_loss(lib, logits, y):
        return lib.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    # counting sequences modulo the vocabulary: the next token is learnable from the current
    starts = RNG.integers(0, 11, (2, 4, 1))
    tokens = (starts + np.arange(9)) % 11
    batches = [(t[:, :-1], t[:, 1:]) for t in tokens]
    assert_same_training(TinyTransformer, batches, make_opt, lm_loss, 10, "float64", 1e-9,
                         clip=1.0, schedule=schedule)  # fmt: skip


def test_model_repr_and_state_dict_keys_match_torch():
    for build in (mlp, cnn, TinyTransformer):
        em, tm = build(ember), build(torch)
        assert list(em.state_dict()) == list(tm.state_dict())
        assert repr(em) == repr(tm)
