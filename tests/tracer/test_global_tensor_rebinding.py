"""A tensor created inside a compiled function and bound to a module global.

`ember.compile` writes back tensors a call stores into containers and attributes (DESIGN.md
section 5: they hold real values after the call). Rebinding a module global with ``global``
inside the traced code is another such store; these tests pin what happens to it.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember

LAZY = None


def lazy_weight():
    global LAZY
    if LAZY is None:
        LAZY = ember.randn(4)
    return LAZY


def scale(x):
    return x * lazy_weight()


def shift(x):
    return x + lazy_weight()


@pytest.fixture
def fresh_global():
    global LAZY
    LAZY = None
    yield
    LAZY = None


def test_a_global_rebound_inside_an_eager_call_holds_a_tensor(fresh_global):
    x = ember.ones(4)
    y = scale(x)
    np.testing.assert_array_equal(y.numpy(), LAZY.numpy())


@pytest.mark.xfail(
    strict=True,
    reason="the trace leaves the global bound to its TracingTensor: reading it afterwards "
    "raises GraphBreakError, and a later compiled function that reads it traces a graph "
    "whose broadcast_to reads an undefined value (GraphError at the next call)",
)
def test_a_global_rebound_inside_a_compiled_call_holds_a_real_tensor(fresh_global):
    x = ember.ones(4)
    y = ember.compile(scale, backend="reference")(x)
    w = LAZY.numpy()
    np.testing.assert_array_equal(y.numpy(), w)
    z = ember.compile(shift, backend="reference")(x)
    np.testing.assert_array_equal(z.numpy(), 1.0 + w)
