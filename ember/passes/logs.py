"""Named debug logs, switched on by the ``EMBER_LOGS`` environment variable.

``EMBER_LOGS=passes,fusion`` turns on the listed topics (``all`` turns on every one), the way
``TORCH_LOGS`` names PyTorch's artifacts. Topics:

- ``graph``: the captured graph;
- ``passes``: the IR after each pass the `PassManager` runs;
- ``fusion``: fusion decisions;
- ``schedule``: the kernels of each compile in run order, with the memory plan;
- ``kernels``: the generated kernels (kernel IR);
- ``llvm``: the optimized LLVM IR of each compile;
- ``guards``: the guards a compiled function checks;
- ``recompiles``: why a function recompiled;
- ``graph_breaks``: where and why a compiled function fell back to eager;
- ``perf_hints``: where each compile's time went (trace, autodiff, passes, kernels compiled
  by LLVM or loaded from the disk cache, the entry), with a hint where one helps.

The variable is read at every call, so a test can ``monkeypatch.setenv`` it and a long-running
program sees changes. Unknown names in the variable warn once and are otherwise ignored: a typo
in a debug switch should not stop a training run.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TextIO

__all__ = ["TOPICS", "ENV_VAR", "parse", "enabled", "log"]

ENV_VAR = "EMBER_LOGS"
TOPICS = (
    "graph", "passes", "fusion", "schedule", "kernels", "llvm", "guards", "recompiles",
    "graph_breaks", "perf_hints",
)  # fmt: skip

_warned: set[str] = set()


def parse(text: str) -> frozenset[str]:
    """The topics that an ``EMBER_LOGS`` value turns on.

    Names are separated by commas and/or whitespace and are case-insensitive; ``all`` means
    every topic. Unknown names warn (once per name) and are dropped.
    """
    topics: set[str] = set()
    for word in text.replace(",", " ").split():
        name = word.lower()
        if name == "all":
            topics.update(TOPICS)
        elif name in TOPICS:
            topics.add(name)
        elif name not in _warned:
            _warned.add(name)
            warnings.warn(
                f"{ENV_VAR}: unknown log topic {word!r} (known: all, {', '.join(TOPICS)})",
                stacklevel=3,
            )
    return frozenset(topics)


def _check_topic(topic: str) -> None:
    if topic not in TOPICS:
        raise ValueError(f"unknown log topic {topic!r} (known: {', '.join(TOPICS)})")


def enabled(topic: str) -> bool:
    """Whether ``EMBER_LOGS`` (read now) turns on ``topic``."""
    _check_topic(topic)
    return topic in parse(os.environ.get(ENV_VAR, ""))


def log(topic: str, text: str, stream: TextIO | None = None) -> bool:
    """Write ``text`` to ``stream`` (default: the current ``sys.stderr``) if ``topic`` is on.

    Returns whether anything was written.
    """
    if not enabled(topic):
        return False
    out = stream if stream is not None else sys.stderr
    out.write(text if text.endswith("\n") else text + "\n")
    out.flush()
    return True
