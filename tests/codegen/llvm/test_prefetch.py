"""The compile worker and its queue: the worker's object code is the bytes this process emits,
each module is compiled once by whichever side reaches it first, and a worker that fails or a
module that does not compile sends the work back to the caller."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from ember.codegen.llvm import llvm_compile, target
from ember.codegen.llvm.prefetch import Prefetcher, _Worker


def _module(i: int) -> str:
    return textwrap.dedent(
        f"""
        define void @scale{i}(ptr %x, i64 %n) {{
        entry:
          br label %loop
        loop:
          %k = phi i64 [0, %entry], [%k1, %loop]
          %p = getelementptr float, ptr %x, i64 %k
          %v = load float, ptr %p
          %w = fmul float %v, {float(i + 1):.1f}
          store float %w, ptr %p
          %k1 = add i64 %k, 1
          %c = icmp slt i64 %k1, %n
          br i1 %c, label %loop, label %done
        done:
          ret void
        }}
        """
    )


@pytest.fixture
def prefetcher():
    t = target.host_target()
    p = Prefetcher(t.cpu, t.features)
    yield p
    if p._worker is not None:
        p._worker.close()


def test_the_worker_emits_the_same_object_code_as_this_process():
    t = target.host_target()
    worker = _Worker(t.cpu, t.features)
    try:
        worker.wait_ready()
        for i in range(3):
            status, obj, optimized = worker.compile(f"m{i}", _module(i), 3)
            assert status == 0
            with target._LOCK:
                here = llvm_compile.compile_text(_module(i), f"m{i}", t.machines, 3)
            assert obj == here[0] and optimized.decode() == here[1]
    finally:
        worker.close()


def test_every_module_is_compiled_once_by_one_side(prefetcher):
    keys = [f"k{i}" for i in range(8)]
    prefetcher.submit([(k, f"m{i}", _module(i), 3) for i, k in enumerate(keys)])
    time.sleep(1.0)  # (the worker starts and takes some from the back)
    taken = [prefetcher.take(k) for k in keys]
    by_worker = [i for i, r in enumerate(taken) if r is not None]
    assert by_worker and by_worker[-1] == len(keys) - 1  # the worker works from the back
    assert all(r is None or r[0][:4] == b"\x7fELF" for r in taken)
    assert prefetcher.take("k0") is None and not prefetcher._items  # nothing left behind


def test_a_module_that_does_not_compile_comes_back_to_the_caller(prefetcher):
    prefetcher.submit([("bad", "bad", "define void @f( {", 3), ("good", "g", _module(0), 3)])
    deadline = time.time() + 10
    while prefetcher._queue and time.time() < deadline:
        time.sleep(0.01)
    assert prefetcher.take("bad") is None  # failed: the caller compiles it and sees the error
    assert prefetcher._worker is not None  # (the worker itself is fine)


def test_a_dead_worker_sends_everything_back(prefetcher):
    prefetcher.submit([("a", "a", _module(0), 3), ("b", "b", _module(1), 3)])
    deadline = time.time() + 10
    while prefetcher._worker is None and time.time() < deadline:
        time.sleep(0.01)
    prefetcher._worker.proc.kill()
    prefetcher._worker.proc.wait()
    prefetcher.take("a"), prefetcher.take("b")
    while prefetcher.enabled and time.time() < deadline:  # (the feeder notices)
        time.sleep(0.01)
    prefetcher.submit([(f"c{i}", f"c{i}", _module(i), 3) for i in range(4)])
    assert [prefetcher.take(f"c{i}") for i in range(4)] == [None] * 4  # the callers compile
    assert not prefetcher.enabled and prefetcher._worker is None


_CHILD = textwrap.dedent(
    """
    import os, sys, time
    import ember
    from ember.codegen.llvm import target
    t = target.host_target()
    print("enabled", t.prefetcher.enabled)
    """
)


def test_the_worker_can_be_turned_off():
    env = dict(os.environ, EMBER_COMPILE_WORKER="0")
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True)
    assert "enabled False" in out.stdout, out.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_use_its_parents_worker():
    t = target.host_target()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0 if not t.prefetcher.enabled and t.prefetcher._worker is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
