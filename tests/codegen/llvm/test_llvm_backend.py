"""The LLVM backend as users meet it through ``ember.compile``: numbers against PyTorch,
determinism across runs and thread counts, parameters updated in place, logs and checks."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.codegen.llvm.backend import LLVMBackend
from ember.codegen.llvm.pool import core_count
from ember.codegen.registry import pick_backend
from ember.tracer.api import make_ir


@pytest.fixture(autouse=True)
def _fresh():
    ember.compiler.reset()
    yield
    ember.compiler.reset()
    ember.set_num_threads(ember.get_num_threads())


def test_auto_is_llvm_on_cpu():
    assert isinstance(pick_backend("auto", "cpu"), LLVMBackend)


@pytest.mark.parametrize(
    "name, fn, tfn",
    [
        ("gelu", lambda x: F.gelu(x * 1.5 - 0.25, approximate="tanh"),
         lambda x: torch.nn.functional.gelu(x * 1.5 - 0.25, approximate="tanh")),
        ("softmax", lambda x: F.softmax(x, dim=-1), lambda x: torch.softmax(x, dim=-1)),
        ("log_softmax", lambda x: F.log_softmax(x, dim=-1),
         lambda x: torch.log_softmax(x, dim=-1)),
        ("layer_norm", lambda x: F.layer_norm(x, (x.shape[-1],)),
         lambda x: torch.nn.functional.layer_norm(x, (x.shape[-1],))),
        ("erf_sigmoid", lambda x: x.erf() * x.sigmoid(), lambda x: x.erf() * x.sigmoid()),
    ],
)  # fmt: skip
def test_compiled_forward_and_gradient_match_torch(name, fn, tfn):
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((64, 96)) * 3).astype(np.float32)
    g = rng.standard_normal((64, 96)).astype(np.float32)
    x = ember.tensor(data, requires_grad=True)
    out = ember.compile(fn)(x)
    (out * ember.tensor(g)).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    tout = tfn(tx)
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=2e-4, atol=2e-5)


def _big_program(x, w):
    h = F.layer_norm(x, (x.shape[-1],)) @ w
    return F.softmax(h, dim=-1).sum(0), (h * h).mean(), h.tanh().cumsum(1)


def test_results_are_bitwise_identical_across_runs_and_thread_counts():
    rng = np.random.default_rng(1)
    x = ember.tensor(rng.standard_normal((512, 256)).astype(np.float32))
    w = ember.tensor(rng.standard_normal((256, 256)).astype(np.float32))
    results = []
    for threads in (1, 2, 1, 2):
        ember.set_num_threads(threads)
        ember.compiler.reset()
        f = ember.compile(_big_program)
        for _ in range(2):
            results.append([t.numpy().copy() for t in f(x, w)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()


@pytest.mark.skipif(core_count() < 2, reason="needs two cores")
def test_a_graph_compiled_on_one_thread_uses_more_after_set_num_threads():
    # the driver cuts big kernels into tasks for every core, whatever the count at compile
    # time; the pool runs them inline on one thread, spread over more after set_num_threads
    start = ember.get_num_threads()
    x = ember.randn(1024, 1024)
    try:
        ember.set_num_threads(1)
        graph = make_ir(lambda x: (x * 2 + 1).exp())(x)
        compiled = LLVMBackend().compile(graph)
        assert "ember_parallel_for" in compiled.llvm_ir
        one = compiled.run([x.numpy()])[0]
        ember.set_num_threads(2)
        np.testing.assert_array_equal(compiled.run([x.numpy()])[0], one)
    finally:
        ember.set_num_threads(start)


def test_an_sgd_step_updates_parameters_in_their_own_storage():
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    eager = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    eager.load_state_dict(model.state_dict())
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    eager_opt = ember.optim.SGD(eager.parameters(), lr=0.1, momentum=0.9)
    x, y = ember.randn(16, 32), ember.randint(0, 10, (16,))

    def step(model, opt):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = ember.compile(step)
    storages = [p._data for p in model.parameters()]
    for _ in range(3):
        compiled(model, opt)
        step(eager, eager_opt)
    assert all(p._data is s for p, s in zip(model.parameters(), storages))
    for p, q in zip(model.parameters(), eager.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    program = ember.last_graphs(compiled)
    assert program is not None


def test_compiled_graph_reports_kernels_and_peak_memory():
    graph = make_ir(_big_program)(ember.randn(64, 32), ember.randn(32, 32))
    compiled = LLVMBackend().compile(graph)
    assert compiled.kernel_count == len(compiled.kernels) >= 3
    assert compiled.memory.peak_bytes >= 64 * 32 * 4
    assert "kernels" in compiled.schedule_text()


def test_logs_and_verification_work_during_compile(monkeypatch, capsys):
    monkeypatch.setenv("EMBER_LOGS", "passes,fusion,schedule,kernels,llvm")
    monkeypatch.setenv("EMBER_VERIFY", "1")
    f = ember.compile(lambda x: F.softmax(x.reshape(8, 4), dim=-1))
    f(ember.randn(4, 8))
    err = capsys.readouterr().err
    for text in ("# after pass simplify", "# after pass fuse", "fusion of @", "kernel @k0",
                 "schedule of @", "optimized LLVM IR"):  # fmt: skip
        assert text in err, text


def test_perf_hints_say_where_compile_time_went(monkeypatch, capsys):
    monkeypatch.setenv("EMBER_LOGS", "perf_hints")
    lin = nn.Linear(6, 3)

    def loss_of(x):
        return F.softmax(lin(x), dim=-1).square().sum()

    f = ember.compile(loss_of)
    x = ember.randn(5, 6)
    f(x).backward()
    err = capsys.readouterr().err
    line = loss_of.__code__.co_firstlineno
    assert f"loss_of (test_llvm_backend.py:{line}) in " in err
    for text in ("  trace ", "  autodiff + partition ", "  forward graph, ", "  backward graph, ",
                 "compiled by LLVM", "loaded from the disk cache", "entry+driver"):  # fmt: skip
        assert text in err, text
    monkeypatch.setenv("EMBER_LOGS", "")
    f(ember.randn(2, 6))  # (a recompile: silent with the topic off)
    assert "loss_of (" not in capsys.readouterr().err


def test_an_index_check_raises_eagers_error_after_a_compiled_run():
    emb = nn.Embedding(10, 4)
    f = ember.compile(lambda i: emb(i).sum())
    f(ember.tensor([1, 2, 3]))
    with pytest.raises(IndexError):
        f(ember.tensor([1, 2, 30]))


def test_compiled_tanh_never_leaves_minus_one_to_one():
    # the rational float32 tanh overshoots 1 by an ulp or two near 8.5 unless clamped: the
    # gradient 1 - tanh^2 would turn negative
    x = ember.tensor(np.linspace(-10, 10, 200_001, dtype=np.float32))
    y = ember.compile(lambda x: x.tanh())(x).numpy()
    assert np.abs(y).max() <= 1.0
    w = ember.tensor(np.array([8.529894, -8.529894], np.float32), requires_grad=True)
    ember.compile(lambda w: w.tanh().sum())(w).backward()
    assert (w.grad.numpy() >= 0).all()


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or core_count() < 2, reason="needs two cores"
)
def test_gemm_panels_do_not_follow_a_later_change_of_affinity():
    # kernels are cached by their text: a panel split recomputed from the cores of the moment
    # would leave rows of a cached kernel's output unwritten
    a, b = ember.randn(600, 32), ember.randn(32, 48)
    want = a.numpy() @ b.numpy()
    np.testing.assert_allclose(
        ember.compile(lambda a, b: a @ b)(a, b).numpy(), want, rtol=1e-5, atol=1e-4
    )
    cpus = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cpus)})
        got = ember.compile(lambda a, b: a @ b)(a, b).numpy()
    finally:
        os.sched_setaffinity(0, cpus)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


class _Sub(np.ndarray):
    pass


def test_a_compiled_graph_is_called_through_its_native_entry():
    graph = make_ir(lambda x, y: x * 2 + y)(ember.randn(3, 4), ember.randn(3, 4))
    compiled = LLVMBackend().compile(graph)
    assert type(compiled._native).__name__ == "builtin_function_or_method"
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    y = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(compiled.run([x, y])[0], x * 2 + y)
    # a strided view and an ndarray subclass are refused by the entry, then copied and run
    xt = np.arange(12, dtype=np.float32).reshape(4, 3).T
    np.testing.assert_array_equal(compiled.run([xt, y])[0], xt * 2 + y)
    np.testing.assert_array_equal(compiled.run([x.view(_Sub), y])[0], x * 2 + y)
    # an array of another shape is a real mismatch: the entry's error names it
    with pytest.raises(ValueError, match=r"argument 0: expected f32\[3,4\] C-contiguous"):
        compiled.run([np.ones((4, 3), np.float32), y])
    with pytest.raises(TypeError, match=r"argument 1: expected f32\[3,4\]"):
        compiled.run([x, np.ones((3, 4), np.float64)])


def test_profile_times_each_kernel_of_a_compiled_graph():
    graph = make_ir(_big_program)(ember.randn(64, 32), ember.randn(32, 32))
    compiled = LLVMBackend().compile(graph)
    inputs = [np.random.default_rng(0).standard_normal(s, dtype=np.float32) for s in
              [(64, 32), (32, 32)]]  # fmt: skip
    rows = compiled.profile(inputs, repeat=2)
    assert len(rows) == compiled.kernel_count
    assert all(seconds > 0 and "test_llvm_backend.py" in name for name, seconds in rows)


def _mlp_step(width: int = 256):
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))
    opt = ember.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    @ember.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def test_a_training_step_writes_in_place_and_allocates_only_its_loss():
    import tracemalloc

    model, _, step = _mlp_step()
    x, y = ember.randn(8, 256), ember.randint(0, 10, (8,))
    for _ in range(3):
        step(x, y)
    storages = [p._data for p in model.parameters()]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(20):
            step(x, y)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert all(p._data is s for p, s in zip(model.parameters(), storages))
    # a weight is 256 KB: a step that made new parameter, gradient or momentum arrays (and
    # copied them back) would peak at several of those
    assert peak < 64 * 1024, peak


def test_a_bad_target_raises_before_the_step_writes_anything():
    model, opt, step = _mlp_step(16)
    x, y = ember.randn(4, 16), ember.randint(0, 10, (4,))
    step(x, y)
    step(x, y)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    with pytest.raises(IndexError, match="out of bounds"):
        step(x, ember.tensor([0, 1, 2, 10]))
    for p, b in zip(model.parameters(), before):
        assert p.detach().numpy().tobytes() == b.tobytes()


def test_rss_stays_flat_over_ten_thousand_training_steps():
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("reads resident memory from /proc")

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    _, _, step = _mlp_step(16)
    x, y = ember.randn(4, 16), ember.randint(0, 10, (4,))
    for _ in range(1000):
        step(x, y)
    start = rss()
    for _ in range(10_000):
        step(x, y)
    assert rss() - start < 1 << 20


def test_an_update_of_a_matmul_operand_is_not_written_over_it():
    # w - 0.5 * (w @ w) fuses the update into the GEMM's epilogue; writing it over w would
    # change rows that later panels still read as an operand
    w = ember.randn(300, 300) * 0.05
    eager = w.clone()

    def update(w):
        w.sub_(0.5 * (w @ w))
        return w

    f = ember.compile(update)
    assert f(w) is w
    update(eager)
    np.testing.assert_allclose(w.numpy(), eager.numpy(), rtol=1e-5, atol=1e-6)


def test_a_tensor_over_a_memmap_is_updated_in_place(tmp_path):
    arr = np.lib.format.open_memmap(tmp_path / "w.npy", mode="w+", dtype=np.float32, shape=(4, 3))
    arr[:] = 1.0
    w = ember.from_numpy(arr)
    x = ember.randn(4, 3)

    def update(w, x):
        w.sub_(0.5 * x)
        return w

    f = ember.compile(update)
    for _ in range(2):
        assert f(w, x) is w
    np.testing.assert_allclose(np.asarray(arr), 1.0 - x.numpy(), rtol=1e-6)
