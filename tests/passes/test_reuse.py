"""`ember.passes.reuse.reuse_stored`: a later stage loads a costly value its kernel stored.

The rewrite must change no result (the value is stored in its own dtype and loaded back), so
the compiled results are checked against torch, and against the same graph compiled with the
pass taken out of the pipeline, bit for bit. Where it must not apply (a cheap expression, an
output that is also read, an output donated to an input the last stage reads) the kernel is
unchanged or the result still matches eager.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.codegen.llvm.backend import LLVMBackend
from ember.passes import pipeline
from ember.passes.pipeline import lower_graph
from ember.passes.reuse import reuse_stored


def _ops_by_stage(kernel) -> list[list[str]]:
    return [[op.op for op in st.ops] for st in kernel.stages]


def _compiled_without_reuse(monkeypatch, graph):
    stages = tuple(s for s in pipeline.KERNEL_PIPELINE if s != "reuse_stored")
    monkeypatch.setattr(pipeline, "KERNEL_PIPELINE", stages)
    try:
        return LLVMBackend().compile(graph)
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("shape", [(4, 8), (3, 1000), (2, 5, 33), (1, 1)])
def test_softmax_scales_the_stored_exp_and_matches_torch_bit_for_bit_without_it(shape, monkeypatch):
    x = ember.randn(*shape) * 4
    graph = ember.make_ir(lambda x: F.softmax(x, dim=-1))(x)
    (kernel,) = lower_graph(graph).kernels
    assert _ops_by_stage(kernel)[-1] == ["load", "div", "store"]
    assert sum(o.op == "exp" for o in kernel.ops()) == 1
    with_reuse = LLVMBackend().compile(graph).run([x.numpy()])[0]
    without = _compiled_without_reuse(monkeypatch, graph).run([x.numpy()])[0]
    np.testing.assert_array_equal(with_reuse, without)
    ref = torch.softmax(torch.from_numpy(x.numpy()), dim=-1).numpy()
    np.testing.assert_allclose(with_reuse, ref, rtol=2e-6, atol=1e-7)


def test_cheap_expressions_are_computed_again():
    # layer norm's last stage recomputes x - mean: one op, not worth a store and a load
    x = ember.randn(4, 16)
    graph = ember.make_ir(lambda x: F.layer_norm(x, (16,)))(x)
    before = pipeline.PassManager(pipeline.KERNEL_PIPELINE[:-1]).run(graph)
    after = reuse_stored(before)
    assert [str(k) for k in after.kernels] == [str(k) for k in before.kernels]


def test_an_output_read_by_a_later_kernel_is_still_stored_once():
    def f(x):
        s = F.softmax(x, dim=-1)
        return s, s * 2

    x = ember.randn(3, 7)
    out, doubled = ember.compile(f)(x)
    ref = torch.softmax(torch.from_numpy(x.numpy()), dim=-1).numpy()
    np.testing.assert_allclose(out.numpy(), ref, rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(doubled.numpy(), out.numpy() * 2)


def test_an_in_place_softmax_is_not_written_over_its_input_early():
    # the last stage reads x again: storing exp into x's own storage in the second stage
    # would feed it back, so the result must not be donated to x
    @ember.compile
    def f(x):
        x.copy_(F.softmax(x, dim=-1) * x)

    x = ember.randn(5, 12) * 3
    tx = torch.from_numpy(x.numpy().copy())
    expected = (torch.softmax(tx, dim=-1) * tx).numpy()
    for _ in range(2):
        y = ember.tensor(x.numpy().copy())
        f(y)
        np.testing.assert_allclose(y.numpy(), expected, rtol=2e-6, atol=1e-7)


def test_attention_softmax_grad_matches_torch():
    q = ember.randn(2, 6, 8, requires_grad=True)
    k = ember.randn(2, 6, 8)

    @ember.compile
    def f(q, k):
        return F.softmax(q @ k.transpose(1, 2), dim=-1).pow(2).sum()

    loss = f(q, k)
    loss.backward()
    tq = torch.from_numpy(q.detach().numpy().copy()).requires_grad_()
    tk = torch.from_numpy(k.numpy())
    tl = torch.softmax(tq @ tk.transpose(1, 2), dim=-1).pow(2).sum()
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(q.grad.numpy(), tq.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_data_dependent_indices_of_the_last_stage_are_kept():
    # the flip's position is an op the last stage's load reads through its index: dropping the
    # recomputed exp must not drop it
    x = ember.randn(4, 16)
    for f in (
        lambda x: F.softmax(x, -1) + x.flip(-1),
        lambda x: F.softmax(x, -1) * x[:, [3, 1]].sum(-1, keepdim=True),
    ):
        np.testing.assert_allclose(ember.compile(f)(x).numpy(), f(x).numpy(), rtol=1e-5, atol=1e-7)
