"""Property test: binary ops on random broadcast-compatible shapes agree with PyTorch.

Hypothesis draws a pair of mutually broadcastable shapes (0-d through 4-d, size-1 and size-0
dims), an op and a dtype; the values come from a numpy generator seeded by hypothesis. The
result (values, dtype, shape) and, for float dtypes, the gradients of ``(out * w).sum()`` with
respect to both operands must match torch's.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import ember

# op name -> the dtypes where it is valid (int64 pow: non-negative exponents only)
OPS = {
    "add": ("float32", "float64", "int64"),
    "sub": ("float32", "float64", "int64"),
    "mul": ("float32", "float64", "int64"),
    "div": ("float32", "float64", "int64"),
    "maximum": ("float32", "float64", "int64"),
    "minimum": ("float32", "float64", "int64"),
    "pow": ("float32", "float64", "int64"),
}
TOL = {"float32": (1e-5, 1e-5), "float64": (1e-12, 1e-12)}
GRAD_TOL = {"float32": (1e-4, 1e-5), "float64": (1e-10, 1e-12)}


@st.composite
def cases(draw):
    op = draw(st.sampled_from(sorted(OPS)))
    dtype = draw(st.sampled_from(OPS[op]))
    shapes = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4))
    seed = draw(st.integers(0, 2**32 - 1))
    return op, dtype, shapes.input_shapes, seed


def _data(op, dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    a_shape, b_shape = shapes
    if dtype == "int64":
        a = rng.integers(-9, 10, size=a_shape)
        if op == "pow":
            a, b = rng.integers(-4, 5, size=a_shape), rng.integers(0, 4, size=b_shape)
        elif op == "div":
            b = rng.choice(np.array([-3, -2, -1, 1, 2, 3]), size=b_shape)
        else:
            b = rng.integers(-9, 10, size=b_shape)
        return a.astype(np.int64), b.astype(np.int64)
    a = rng.uniform(-3, 3, size=a_shape)
    b = rng.uniform(-3, 3, size=b_shape)
    if op == "pow":  # a positive base
        a = rng.uniform(0.25, 2.5, size=a_shape)
    elif op == "div":  # a divisor away from zero
        b = rng.uniform(0.5, 3, size=b_shape) * rng.choice([-1.0, 1.0], size=b_shape)
    return a.astype(dtype), b.astype(dtype)


def _to_numpy(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach().numpy())


def _run(lib, op, dtype, a, b, w, grad):
    x = lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=grad)
    y = lib.tensor(b, dtype=getattr(lib, dtype), requires_grad=grad)
    out = getattr(lib, op)(x, y)
    grads = None
    if grad:
        (out * lib.tensor(w, dtype=out.dtype)).sum().backward()
        grads = (x.grad, y.grad)
    return out, grads


@settings(max_examples=50, deadline=None, database=None)
@given(cases())
def test_binary_broadcast_matches_torch(case):
    op, dtype, shapes, seed = case
    a, b = _data(op, dtype, shapes, seed)
    grad = dtype != "int64"
    out_shape = np.broadcast_shapes(*shapes)
    w = np.random.default_rng(seed + 1).standard_normal(out_shape)
    want, want_grads = _run(torch, op, dtype, a, b, w, grad)
    got, got_grads = _run(ember, op, dtype, a, b, w, grad)

    assert tuple(got.shape) == tuple(want.shape) == out_shape
    assert got.dtype.name == str(want.dtype).removeprefix("torch.")
    if want.dtype.is_floating_point:
        rtol, atol = TOL[got.dtype.name]
        np.testing.assert_allclose(_to_numpy(got), _to_numpy(want), rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(_to_numpy(got), _to_numpy(want))
    if grad:
        rtol, atol = GRAD_TOL[dtype]
        for g, e, shape in zip(got_grads, want_grads, shapes):
            assert g is not None and tuple(g.shape) == tuple(shape)
            assert g.dtype.name == dtype
            np.testing.assert_allclose(_to_numpy(g), _to_numpy(e), rtol=rtol, atol=atol)


@settings(max_examples=30, deadline=None, database=None)
@given(
    mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3),
    st.integers(0, 2**32 - 1),
)
def test_where_broadcasts_three_ways(shapes, seed):
    """``where(cond, x, y)`` broadcasts all three operands; gradients sum back to each shape."""
    rng = np.random.default_rng(seed)
    c_shape, x_shape, y_shape = shapes.input_shapes
    cond = rng.random(c_shape) < 0.5
    x, y = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    w = rng.standard_normal(shapes.result_shape)
    results = []
    for lib in (torch, ember):
        tx = lib.tensor(x, requires_grad=True)
        ty = lib.tensor(y, requires_grad=True)
        out = lib.where(lib.tensor(cond), tx, ty)
        (out * lib.tensor(w)).sum().backward()
        results.append([_to_numpy(out), _to_numpy(tx.grad), _to_numpy(ty.grad)])
    for want, got in zip(*results):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
