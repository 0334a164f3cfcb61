"""Finite-difference checks of ember's gradients, in float64, over the differentiable entries
of the op table (`opinfo.OPS`).

For the loss ``L = sum((out_i * w_i).sum())`` with fixed random weights, each input element is
nudged by ``±eps`` and ``(L(x + eps) - L(x - eps)) / (2 eps)`` is compared with the gradient
ember's autograd computes. The numeric side only evaluates ember's forward (checked against
torch elsewhere) and does its arithmetic in numpy. Samples at ties or kinks, where finite
differences do not give the subgradient PyTorch picks, are marked ``gradcheck=False`` in the
table; samples are kept small (at most 20 elements per input).
"""

from __future__ import annotations

import numpy as np
import pytest
from opinfo import OPS, OpInfo, Sample

import ember
from ember.frontend.tensor import Tensor

EPS = 1e-6
RTOL = ATOL = 1e-6
MAX_ELEMENTS = 20
FLOATS = ("float16", "bfloat16", "float32", "float64")


def _eligible(sample: Sample) -> bool:
    if not (sample.grad and sample.gradcheck) or sample.xfail:
        return False
    grads = [t for t in sample.tensors() if t.is_float and t.grad]
    if any(t.is_float and t.dtype != "float64" for t in sample.tensors()):
        return False  # a float32 operand would round away the eps-sized steps
    return bool(grads) and all(0 < t.data.size <= MAX_ELEMENTS for t in grads)


CASES = [
    pytest.param(op, sample, id=f"{op.name}-{i}")
    for op in OPS
    if op.differentiable and op.gradcheck and "float64" in op.dtypes
    for i, sample in enumerate(op.samples("float64"))
    if _eligible(sample)
]


def _outputs(out) -> list:
    if isinstance(out, Tensor):
        return [out]
    return [t for o in out for t in _outputs(o)]


def _weights(outputs) -> list:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(tuple(o.shape)) for o in outputs]


def _loss_value(op: OpInfo, sample: Sample) -> float:
    """The loss in numpy float64 from ember's forward (no autograd)."""
    args, kwargs, _ = sample.materialize(ember)
    with ember.no_grad():
        outputs = _outputs(op.ember_fn(*args, **kwargs))
    total = 0.0
    for o, w in zip(outputs, _weights(outputs)):
        if o.dtype.name in FLOATS:
            total += float((np.asarray(o.numpy(), dtype=np.float64) * w).sum())
    return total


def _autograd(op: OpInfo, sample: Sample) -> list:
    args, kwargs, leaves = sample.materialize(ember, requires_grad=True)
    outputs = _outputs(op.ember_fn(*args, **kwargs))
    loss = None
    for o, w in zip(outputs, _weights(outputs)):
        if o.dtype.name in FLOATS and o.requires_grad:
            term = (o * ember.tensor(w, dtype=o.dtype)).sum()
            loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
    return [
        np.zeros(leaf.shape) if leaf.grad is None else np.asarray(leaf.grad.numpy(), np.float64)
        for leaf in leaves
    ]


def _numeric(op: OpInfo, sample: Sample) -> list:
    grads = []
    for index, t in enumerate(sample.tensors()):
        if not (t.is_float and t.grad):
            continue
        g = np.zeros(t.data.shape)
        for pos in np.ndindex(t.data.shape):
            plus, minus = t.data.copy(), t.data.copy()
            plus[pos] += EPS
            minus[pos] -= EPS
            up = _loss_value(op, sample.with_data(index, plus))
            down = _loss_value(op, sample.with_data(index, minus))
            g[pos] = (up - down) / (2 * EPS)
        grads.append(g)
    return grads


@pytest.mark.parametrize("op, sample", CASES)
def test_gradcheck(op: OpInfo, sample: Sample):
    analytic = _autograd(op, sample)
    numeric = _numeric(op, sample)
    assert len(analytic) == len(numeric)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        np.testing.assert_allclose(a, n, rtol=RTOL, atol=ATOL, err_msg=f"{op.name} input {i}")


def test_gradcheck_covers_the_differentiable_ops():
    """Every differentiable float64 entry of the table has at least one checked sample."""
    checked = {p.values[0].name for p in CASES}
    wanted = {
        op.name for op in OPS if op.differentiable and op.gradcheck and "float64" in op.dtypes
    }
    assert wanted - checked == set()
