"""Column kernels: reductions whose loop steps through memory along the last parallel dim
(``x.sum(0)``, a bias gradient, softmax over dim 0) run a block of points per unit with the
points innermost (`ember.codegen.llvm.emit`, `Body.run_lanes`). Results against torch in
float64, and against numpy bit for bit where the reduction is exact (max, argmax, integer
sums) or sums in numpy's order (a float32 ``sum(0)``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.codegen.llvm import emit
from ember.codegen.llvm.backend import LLVMBackend
from ember.passes.pipeline import lower_graph
from ember.tracer.api import make_ir

SHAPES = [(1024, 256), (37, 100), (5, 9, 70), (3, 8), (64, 129)]


def _compile(fn, *args):
    graph = make_ir(fn)(*args)
    compiled = LLVMBackend().compile(graph)
    return compiled, compiled.run([a.numpy() for a in args])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_column_reductions_match_torch(shape):
    rng = np.random.default_rng(len(shape))
    x = ember.tensor(rng.standard_normal(shape).astype(np.float32))
    t = torch.from_numpy(x.numpy().astype(np.float64))

    def f(x):
        return x.sum(0), (x * 2).amax(0), x.argmin(0), F.softmax(x, dim=0), x.mean(0).exp()

    compiled, (s, m, a, sm, e) = _compile(f, x)
    assert any(emit._column_kernel(k) for k in compiled.kernels)
    # each column is summed row after row, in order, as numpy's float32 sum(0) does
    np.testing.assert_array_equal(s, x.numpy().sum(0))
    np.testing.assert_allclose(s, t.sum(0).numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(m, (t * 2).amax(0).numpy().astype(np.float32))
    np.testing.assert_array_equal(a, t.argmin(0).numpy())
    np.testing.assert_allclose(sm, torch.softmax(t, dim=0).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(e, t.mean(0).exp().numpy(), rtol=1e-5)


def test_exact_reductions_equal_numpy_bit_for_bit():
    rng = np.random.default_rng(3)
    x = ember.tensor(rng.integers(-50, 50, (300, 77)).astype(np.int32))
    y = ember.tensor(rng.standard_normal((300, 77)).astype(np.float32))
    y.numpy()[5, :7] = np.nan

    def f(x, y):
        return x.sum(0), y.amax(0), y.argmax(0), (x * y).amin(0)

    compiled, got = _compile(f, x, y)
    assert all(emit._column_kernel(k) for k in compiled.kernels)
    xn, yn = x.numpy(), y.numpy()
    want = [xn.sum(0, dtype=np.int64), yn.max(0), yn.argmax(0), (xn.astype(np.float32) * yn).min(0)]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_row_reductions_keep_one_point_per_unit():
    x = ember.randn(64, 256)
    (kernel,) = lower_graph(make_ir(lambda x: F.softmax(x, dim=-1))(x)).kernels
    assert not emit._column_kernel(kernel)
    (kernel,) = lower_graph(make_ir(lambda x: x.sum(0))(x)).kernels
    assert emit._column_kernel(kernel)
    assert emit.work_units(kernel)[0] == 256 // emit.LANES


def test_bias_and_layer_norm_gradients_match_torch():
    ember.manual_seed(0)
    lin, ln = ember.nn.Linear(48, 96), ember.nn.LayerNorm(96)
    x = ember.randn(200, 48)

    @ember.compile
    def step(x):
        loss = ln(lin(x)).square().mean()
        loss.backward()
        return loss

    step(x)
    tlin, tln = torch.nn.Linear(48, 96).double(), torch.nn.LayerNorm(96).double()
    with torch.no_grad():
        for tp, p in zip([*tlin.parameters(), *tln.parameters()],
                         [*lin.parameters(), *ln.parameters()]):  # fmt: skip
            tp.copy_(torch.from_numpy(p.detach().numpy().astype(np.float64)))
    tln(tlin(torch.from_numpy(x.numpy().astype(np.float64)))).square().mean().backward()
    for tp, p in zip(
        [*tlin.parameters(), *tln.parameters()], [*lin.parameters(), *ln.parameters()]
    ):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-6)
