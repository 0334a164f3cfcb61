"""Seeding of the default generator, as PyTorch 2.13 does it.

Without ``manual_seed`` every process draws different numbers (the default generator is seeded
from the operating system at import); ``manual_seed`` still reproduces; ``initial_seed`` names
the seed in use and ``seed()`` reseeds from the operating system. Fresh interpreters are run as
subprocesses, torch's beside ember's, so the behaviour compared is the one at import.
"""

import json
import os
import subprocess
import sys

import numpy as np
import torch

import ember
from ember.runtime import philox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROGRAM = """
import json, sys
import {lib} as m
if len(sys.argv) > 1:
    m.manual_seed(int(sys.argv[1]))
print(json.dumps({{"seed": m.initial_seed(), "draw": m.rand(4).tolist()}}))
"""


def _fresh(lib: str, *args) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(lib=lib), *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)


def test_fresh_processes_draw_different_numbers_like_torch():
    first, second = _fresh("ember"), _fresh("ember")
    assert first["draw"] != second["draw"]
    assert first["seed"] != second["seed"]
    # the oracle behaves the same way
    assert _fresh("torch")["draw"] != _fresh("torch")["draw"]


def test_initial_seed_names_the_import_seed():
    run = _fresh("ember")
    expected = philox.uniform(run["seed"], 0, (4,), np.float32)
    np.testing.assert_array_equal(np.asarray(run["draw"], np.float32), expected)
    assert 0 <= run["seed"] < 2**64


def test_manual_seed_reproduces_across_processes():
    first, second = _fresh("ember", 1234), _fresh("ember", 1234)
    assert first == second
    assert first["seed"] == 1234


def test_seed_reseeds_from_the_os_and_returns_the_seed():
    s1 = ember.seed()
    a = ember.rand(5)
    assert ember.initial_seed() == s1
    s2 = ember.seed()
    assert s2 != s1
    assert ember.initial_seed() == s2
    np.testing.assert_array_equal(a.numpy(), philox.uniform(s1, 0, (5,), np.float32))
    ember.manual_seed(s1)
    np.testing.assert_array_equal(ember.rand(5).numpy(), a.numpy())


def test_seed_is_a_64_bit_integer_like_torch():
    s = ember.seed()
    t = torch.seed()
    assert isinstance(s, int) and isinstance(t, int)
    assert 0 <= s < 2**64 and 0 <= t < 2**64


def test_new_generator_keeps_the_fixed_default_seed():
    assert ember.Generator().initial_seed() == torch.Generator().initial_seed()
