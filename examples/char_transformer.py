"""A character-level GPT on Python's own docstrings, PyTorch-style with `torch` -> `ember`.

The text is the docstrings of a fixed list of standard-library modules and of their public
functions and classes, so it exists on any machine with Python. The model is a small GPT: token
and learned position embeddings, pre-LayerNorm blocks of causal self-attention
(``F.scaled_dot_product_attention(is_causal=True)``) and a GELU MLP, a final LayerNorm and a
Linear head, trained with cross-entropy, AdamW, gradient clipping and a OneCycleLR schedule.

    python examples/char_transformer.py
    python examples/char_transformer.py --steps 2000 --layers 4 --dim 128

Prints a sample before and after training and ends with the validation loss on the last 10% of
the text, in nats and bits per character.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import string
import warnings
from collections import Counter

from common import Progress

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.optim.lr_scheduler import OneCycleLR

MODULES = (
    "argparse", "base64", "bisect", "calendar", "collections", "contextlib", "copy", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions", "functools", "heapq",
    "inspect", "itertools", "json", "math", "operator", "os", "pathlib", "random", "re",
    "shutil", "statistics", "string", "textwrap", "typing",
)  # fmt: skip
KEEP = set(string.printable) - set("\t\r\x0b\x0c")  # printable ASCII, spaces and newlines


def stdlib_docstrings(max_chars: int = 300_000) -> str:
    """The docstrings of MODULES and of their public functions and classes, in sorted order,
    each once, restricted to printable ASCII and cut at ``max_chars``."""
    seen: set[str] = set()
    parts: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # typing.io, typing.re...
        for name in sorted(MODULES):
            module = importlib.import_module(name)
            objects = [module]
            for attr in sorted(dir(module)):
                obj = getattr(module, attr, None)
                if not attr.startswith("_") and (inspect.isclass(obj) or inspect.isroutine(obj)):
                    objects.append(obj)
            for obj in objects:
                doc = obj.__doc__
                if not isinstance(doc, str):
                    continue
                doc = "".join(c for c in inspect.cleandoc(doc).expandtabs(4) if c in KEEP)
                if len(doc) >= 20 and doc not in seen:
                    seen.add(doc)
                    parts.append(doc)
    return "\n\n".join(parts)[:max_chars]


def unigram_entropy(text: str) -> float:
    """Entropy of the character frequencies, in nats: the loss of the best context-free model."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log(n / len(text)) for n in counts.values())


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        assert dim % heads == 0, "dim must be divisible by heads"
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)  # (B, heads, T, head_dim)
        k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim)
        )

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size: int, context: int, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        self.context = context
        self.tok_emb = nn.Embedding(vocab_size, dim)
        self.pos_emb = nn.Embedding(context, dim)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale down the residual projections
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.tok_emb(idx) + self.pos_emb(ember.arange(T))
        x = self.blocks(x)
        return self.head(self.ln_f(x))  # (B, T, vocab) logits


def get_batch(data, batch_size: int, context: int):
    """Random windows of ``context + 1`` characters: inputs and the next characters."""
    starts = ember.randint(len(data) - context, (batch_size,)).tolist()
    x = ember.stack([data[i : i + context] for i in starts])
    y = ember.stack([data[i + 1 : i + 1 + context] for i in starts])
    return x, y


@ember.no_grad()
def evaluate(model: GPT, data, batch_size: int = 64) -> float:
    """Mean cross-entropy (nats/char) over ``data`` cut into consecutive context-sized pieces."""
    model.eval()
    T = model.context
    n = (len(data) - 1) // T
    inputs, targets = data[: n * T].view(n, T), data[1 : n * T + 1].view(n, T)
    total = 0.0
    for i in range(0, n, batch_size):
        logits = model(inputs[i : i + batch_size])
        target = targets[i : i + batch_size]
        total += F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum").item()
    model.train()
    return total / (n * T)


@ember.no_grad()
def generate(model: GPT, idx, new_chars: int, temperature: float, generator) -> list[int]:
    """Sample ``new_chars`` characters after ``idx`` (1, T) with the Gumbel-max trick."""
    model.eval()
    for _ in range(new_chars):
        logits = model(idx[:, -model.context :])[:, -1, :]  # (1, vocab)
        u = ember.rand(logits.shape, generator=generator)
        next_char = (logits / temperature - (-u.log()).log()).argmax(-1, keepdim=True)
        idx = ember.cat([idx, next_char], dim=1)
    model.train()
    return idx[0].tolist()


def show_sample(title: str, model, prompt, decode, args) -> None:
    generator = ember.Generator().manual_seed(args.seed)  # same noise before and after
    chars = generate(model, prompt, args.sample_chars, args.temperature, generator)
    print(f"--- {title} (temperature {args.temperature}) ---")
    print(decode(chars))
    print("---")


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--context", type=int, default=64, help="characters the model sees")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dim", type=int, default=96)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-3, help="peak learning rate")
    parser.add_argument("--max-chars", type=int, default=300_000, help="size of the text")
    parser.add_argument("--evals", type=int, default=5, help="validation checks while training")
    parser.add_argument("--prompt", default="Return the ")
    parser.add_argument("--sample-chars", type=int, default=300)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.dim % args.heads:
        parser.error("--steps must be positive and --dim divisible by --heads")

    ember.manual_seed(args.seed)
    text = stdlib_docstrings(args.max_chars)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}

    def decode(ids):
        return "".join(chars[i] for i in ids)

    data = ember.tensor([stoi[c] for c in text], dtype=ember.long)
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    entropy = unigram_entropy(text[split:])
    print(f"stdlib docstrings of {len(MODULES)} modules: {len(text):,} characters, "
          f"vocabulary {len(chars)}; {len(train_data):,} for training, {len(val_data):,} "
          f"for validation (unigram entropy {entropy:.2f} nats/char)")  # fmt: skip

    model = GPT(len(chars), args.context, args.dim, args.layers, args.heads)
    print(model)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters")
    prompt = ember.tensor([[stoi[c] for c in args.prompt if c in stoi]], dtype=ember.long)
    show_sample("sample before training", model, prompt, decode, args)

    optimizer = ember.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    evals = max(1, min(args.evals, args.steps))
    bounds = [round(args.steps * i / evals) for i in range(evals + 1)]
    step = 0
    for start, stop in zip(bounds[:-1], bounds[1:]):
        bar = Progress(stop - start, f"steps {start + 1:5d}-{stop:5d}")
        for step in range(start + 1, stop + 1):
            x, y = get_batch(train_data, args.batch_size, args.context)
            logits = model(x)
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            bar.update(step - start, loss=loss.item())
        bar.update(stop - start, loss=loss.item(), val_loss=evaluate(model, val_data))
        bar.close()

    val_loss = evaluate(model, val_data)
    show_sample("sample after training", model, prompt, decode, args)
    print(f"result: validation loss {val_loss:.2f} nats/char ({val_loss / math.log(2):.2f} "
          f"bits/char) after {step} steps, vs {entropy:.2f} nats/char for the unigram "
          f"frequencies; sample above")  # fmt: skip
    return val_loss


if __name__ == "__main__":
    main()
