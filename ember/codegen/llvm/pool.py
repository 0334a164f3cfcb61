"""The native thread pool that generated kernels drive: ``ember_parallel_for``.

A kernel splits its work into tasks and calls

    void ember_parallel_for(void (*fn)(void *ctx, int64_t task), void *ctx, int64_t ntasks)

which runs ``fn(ctx, t)`` for every ``t`` in ``[0, ntasks)`` and returns when all have finished.
The pool is LLVM IR compiled once per process (`ensure_pool`) and needs only libc: threads
from ``pthread_create``, sleeping and waking through the ``futex`` system call (via libc's
``syscall``), and atomics in IR. A Python thread pool costs 20-100 µs per dispatch; this one
costs about a microsecond.

How a call runs:

- ``ntasks <= 1``, a thread count of 1, or a pool already busy (a call from another OS thread
  while one is in flight, or a call nested inside a task) runs the tasks inline on the caller,
  in order. Nothing can deadlock, and a nested call costs no more than a loop.
- Otherwise the caller takes the pool (a ``busy`` flag, compare-and-swap), creates missing
  workers (lazily, on the first call that needs them; they live for the rest of the process,
  with every signal blocked, so signals go to the process's own threads), publishes the job
  (fn, ctx, ntasks, a task counter at 0) and then the new *job word*: a 32-bit futex word
  holding a generation number (upper 22 bits) and how many workers may join (lower 10 bits).
  The caller works too. Every thread takes the next task from the shared atomic counter until
  it passes ``ntasks``.
- When the caller finds no task left it *closes* the job (the same generation with zero
  joiners) and waits until no worker is inside it. A worker enters by incrementing ``inside``
  and re-reading the word; if the job was closed meanwhile it leaves without touching the job.
  (Both sides use sequentially consistent operations, so either the caller sees the worker
  inside or the worker sees the close.) So the caller never waits for a worker that was slow
  to wake: tasks nobody took yet are the caller's. A worker reads the job only after the
  word confirmed it, so even a wrapped generation number cannot hand it a stale job.
- Idle workers spin on the job word for `SPIN_NS` (pausing between reads), then sleep in
  ``FUTEX_WAIT_PRIVATE``; they count themselves in ``sleepers`` first, and a caller issues the
  ``FUTEX_WAKE_PRIVATE`` system call only when that count is non-zero. The caller waiting for
  ``inside`` to drain spins and sleeps the same way. The pool therefore takes no CPU while
  idle and does not fight OpenBLAS's pool or other runtimes for the cores.
- The hot words (job word, sleepers, inside, the task counter, busy) sit on cache lines of
  their own.
- After ``os.fork()`` the child has no workers: a fork hook resets the pool's bookkeeping so the
  child creates its own on its first parallel call.

The thread count (caller included) defaults to the cores this process may run on
(``os.sched_getaffinity``); `set_pool_threads` changes it. ``ember.runtime.threads`` calls it
with ember's thread count at import (which honours ``OMP_NUM_THREADS``) and on every
``ember.set_num_threads``.
Workers beyond the count stay asleep; a larger count creates more on the next call. At most
`MAX_WORKERS` workers exist. Only x86_64 Linux is supported (the futex system call number and
the spin-wait ``pause`` are that platform's); `ensure_pool` says so elsewhere.

The compiled module is deliberately never freed (one extra reference on it): idle workers may
still be spinning in its code while the interpreter shuts down.

Measured on the 2-core AMD znver3 development machine while it was shared with other work
(`tests/codegen/llvm/test_pool.py`; medians of blocks of 20000 calls of 2 empty tasks,
issued from a compiled loop, so no Python or ctypes cost is included):

- 1 thread (inline): 0.005-0.009 µs per ``ember_parallel_for``;
- 2 threads, back-to-back calls (the worker still spinning): 0.2-0.8 µs;
- 2 threads, one call after 1 ms idle (the worker asleep, woken by the futex): about 5 µs
  from Python, against 2.5 µs for a 1-task call on the same path, so ~2.5 µs for the wake;
- the same 2-task call from a Python loop through ctypes (`parallel_for_py`): 0.9-4.7 µs;
- idle: 50 ms after a call the worker used 0 µs of CPU over the next 0.2 s
  (``/proc/self/task/<tid>/schedstat``); with an unbounded spin it uses ~197 ms.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading

import llvmlite.ir as ir

from ...ir.errors import InvalidValueError
from . import target

__all__ = [
    "MAX_WORKERS",
    "SPIN_NS",
    "ensure_pool",
    "parallel_for_py",
    "pool_module_text",
    "core_count",
    "pool_threads",
    "pool_workers",
    "set_pool_threads",
]

SPIN_NS = 10_000
"""How long an idle thread spins (nanoseconds) before it sleeps in the kernel."""

LEVEL = 0
"""The pool's LLVM optimization level: 0 (no IR passes, fast code generation) compiles in a
tenth of the time of O3, and the pool spends its time waiting on atomics, not computing."""

_COUNT_BITS = 10
_COUNT_MASK = (1 << _COUNT_BITS) - 1
MAX_WORKERS = _COUNT_MASK
"""The most worker threads the pool creates (the caller is one more thread)."""

_SYS_FUTEX_X86_64 = 202
_FUTEX_WAIT_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 129
_CLOCK_MONOTONIC = 1
_SIG_SETMASK = 2
_SIGSET_BYTES = 128
_CLOCK_EVERY = 64  # spin iterations between two reads of the clock
_INT_MAX = 2**31 - 1

_I1 = ir.IntType(1)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_PTR = ir.PointerType()
_VOID = ir.VoidType()
_TASK_FN = ir.FunctionType(_VOID, [_PTR, _I64])
_TASK_PTR = _TASK_FN.as_pointer()
_WORD_PTR = _I32.as_pointer()


def _i32(value: int) -> ir.Constant:
    return ir.Constant(_I32, value)


def _i64(value: int) -> ir.Constant:
    return ir.Constant(_I64, value)


class _PoolModule:
    """Builds the pool's IR module: state globals, libc declarations, then one function each."""

    def __init__(self) -> None:
        self.module = ir.Module(name="ember_pool")
        self._globals()
        self._libc()

    # -- state and declarations -------------------------------------------------------------

    def _global(self, name: str, typ: ir.Type, init, align: int = 64) -> ir.GlobalVariable:
        var = ir.GlobalVariable(self.module, typ, f"ember_pool.{name}")
        var.linkage = "internal"
        var.initializer = ir.Constant(typ, init)
        var.align = align
        return var

    def _globals(self) -> None:
        self.word = self._global("word", _I32, 0)  # generation << 10 | joiners
        self.sleepers = self._global("sleepers", _I32, 0)
        self.inside = self._global("inside", _I32, 0)
        self.caller_sleeping = self._global("caller_sleeping", _I32, 0)
        self.next_task = self._global("next_task", _I64, 0)
        self.busy = self._global("busy", _I32, 0)
        self.threads = self._global("threads", _I64, 1)
        self.workers = self._global("workers", _I64, 0)
        self.job_fn = self._global("job_fn", _TASK_PTR, None, align=8)
        self.job_ctx = self._global("job_ctx", _PTR, None, align=8)
        self.job_n = self._global("job_n", _I64, 0, align=8)

    def _declare(self, name: str, ret: ir.Type, args: list[ir.Type], var_arg=False):
        return ir.Function(self.module, ir.FunctionType(ret, args, var_arg=var_arg), name)

    def _libc(self) -> None:
        self.syscall = self._declare("syscall", _I64, [_I64], var_arg=True)
        self.clock_gettime = self._declare("clock_gettime", _I32, [_I32, _PTR])
        self.sigfillset = self._declare("sigfillset", _I32, [_PTR])
        self.pthread_sigmask = self._declare("pthread_sigmask", _I32, [_I32, _PTR, _PTR])
        self.pthread_detach = self._declare("pthread_detach", _I32, [_I64])
        self.pause = self._declare("llvm.x86.sse2.pause", _VOID, [])
        worker_ty = ir.FunctionType(_PTR, [_PTR])
        self.worker = ir.Function(self.module, worker_ty, "ember_pool.worker")
        self.pthread_create = self._declare(
            "pthread_create", _I32, [_PTR, _PTR, worker_ty.as_pointer(), _PTR]
        )

    def _function(self, name: str, ret: ir.Type, args: list[ir.Type], internal=True):
        fn = ir.Function(self.module, ir.FunctionType(ret, args), name)
        if internal:
            fn.linkage = "internal"
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    # -- small helpers ----------------------------------------------------------------------

    def _emit_now_ns(self) -> None:
        fn, b = self._function("ember_pool.now_ns", _I64, [])
        ts = b.alloca(ir.LiteralStructType([_I64, _I64]))
        b.call(self.clock_gettime, [_i32(_CLOCK_MONOTONIC), b.bitcast(ts, _PTR)])
        sec = b.load(b.gep(ts, [_i32(0), _i32(0)], inbounds=True))
        nsec = b.load(b.gep(ts, [_i32(0), _i32(1)], inbounds=True))
        b.ret(b.add(b.mul(sec, _i64(1_000_000_000)), nsec))
        self.now_ns = fn

    def _emit_futex(self) -> None:
        wait, b = self._function("ember_pool.futex_wait", _VOID, [_WORD_PTR, _I32])
        addr, expected = wait.args
        null = ir.Constant(_PTR, None)
        futex = [_i64(_SYS_FUTEX_X86_64), addr, _i64(_FUTEX_WAIT_PRIVATE)]
        b.call(self.syscall, [*futex, b.zext(expected, _I64), null, null, _i64(0)])
        b.ret_void()
        self.futex_wait = wait
        wake, b = self._function("ember_pool.futex_wake", _VOID, [_WORD_PTR, _I32])
        addr, count = wake.args
        futex = [_i64(_SYS_FUTEX_X86_64), addr, _i64(_FUTEX_WAKE_PRIVATE)]
        b.call(self.syscall, [*futex, b.zext(count, _I64)])
        b.ret_void()
        self.futex_wake = wake

    def _emit_spin_until(self) -> None:
        """``spin_until(word, differs)``: spin while ``*word == value`` (``differs`` false) or
        while ``*word != value`` (``differs`` true), up to the spin budget. Returns whether the
        condition was met (otherwise the caller goes to sleep)."""
        fn, b = self._function("ember_pool.spin_until", _I1, [_WORD_PTR, _I32, _I1])
        word, value, differs = fn.args
        names = ("start", "spin", "cont", "clock", "met", "late")
        start, spin, cont, clock, met, late = (fn.append_basic_block(n) for n in names)

        def check(block_on_fail: ir.Block) -> None:
            current = b.load_atomic(word, "acquire", 4)
            is_met = b.icmp_unsigned("==", b.icmp_unsigned("!=", current, value), differs)
            b.cbranch(is_met, met, block_on_fail)

        check(start)  # met at once: no clock read
        b.position_at_end(start)
        deadline = b.add(b.call(self.now_ns, []), _i64(SPIN_NS))
        b.branch(spin)
        b.position_at_end(spin)
        i = b.phi(_I64)
        check(cont)
        b.position_at_end(cont)
        b.call(self.pause, [])
        i_next = b.add(i, _i64(1))
        on_clock = b.icmp_unsigned("==", b.and_(i_next, _i64(_CLOCK_EVERY - 1)), _i64(0))
        b.cbranch(on_clock, clock, spin)
        b.position_at_end(clock)
        b.cbranch(b.icmp_signed(">", b.call(self.now_ns, []), deadline), late, spin)
        i.add_incoming(_i64(0), start)
        i.add_incoming(i_next, cont)
        i.add_incoming(i_next, clock)
        b.position_at_end(met)
        b.ret(ir.Constant(_I1, 1))
        b.position_at_end(late)
        b.ret(ir.Constant(_I1, 0))
        self.spin_until = fn

    def _emit_run_tasks(self) -> None:
        """Take tasks from the shared counter until it passes ``n``."""
        fn, b = self._function("ember_pool.run_tasks", _VOID, [_TASK_PTR, _PTR, _I64])
        task_fn, ctx, n = fn.args
        loop, body, done = (fn.append_basic_block(n) for n in ("loop", "body", "done"))
        b.branch(loop)
        b.position_at_end(loop)
        t = b.atomic_rmw("add", self.next_task, _i64(1), "monotonic")
        b.cbranch(b.icmp_signed("<", t, n), body, done)
        b.position_at_end(body)
        b.call(task_fn, [ctx, t])
        b.branch(loop)
        b.position_at_end(done)
        b.ret_void()
        self.run_tasks = fn

    def _emit_run_inline(self) -> None:
        """Run tasks ``0..n-1`` in order on the calling thread."""
        fn, b = self._function("ember_pool.run_inline", _VOID, [_TASK_PTR, _PTR, _I64])
        task_fn, ctx, n = fn.args
        entry = b.block
        loop, body, done = (fn.append_basic_block(n) for n in ("loop", "body", "done"))
        b.branch(loop)
        b.position_at_end(loop)
        t = b.phi(_I64)
        b.cbranch(b.icmp_signed("<", t, n), body, done)
        b.position_at_end(body)
        b.call(task_fn, [ctx, t])
        t_next = b.add(t, _i64(1))
        b.branch(loop)
        t.add_incoming(_i64(0), entry)
        t.add_incoming(t_next, body)
        b.position_at_end(done)
        b.ret_void()
        self.run_inline = fn

    # -- the worker side --------------------------------------------------------------------

    def _emit_await_word(self) -> None:
        """A worker's wait for the job word to differ from ``seen``: spin, then sleep."""
        fn, b = self._function("ember_pool.await_word", _I32, [_I32])
        (seen,) = fn.args
        sleep, wait, woke, done = (
            fn.append_basic_block(n) for n in ("sleep", "wait", "woke", "done")
        )
        spun = b.call(self.spin_until, [self.word, seen, ir.Constant(_I1, 1)])
        b.cbranch(spun, done, sleep)
        b.position_at_end(sleep)
        b.atomic_rmw("add", self.sleepers, _i32(1), "seq_cst")
        same = b.icmp_unsigned("==", b.load_atomic(self.word, "seq_cst", 4), seen)
        b.cbranch(same, wait, woke)
        b.position_at_end(wait)
        b.call(self.futex_wait, [self.word, seen])
        b.branch(woke)
        b.position_at_end(woke)
        b.atomic_rmw("sub", self.sleepers, _i32(1), "seq_cst")
        changed = b.icmp_unsigned("!=", b.load_atomic(self.word, "acquire", 4), seen)
        b.cbranch(changed, done, sleep)
        b.position_at_end(done)
        b.ret(b.load_atomic(self.word, "acquire", 4))
        self.await_word = fn

    def _emit_leave_job(self) -> None:
        """A worker leaves a job; the last one out wakes a sleeping caller."""
        fn, b = self._function("ember_pool.leave_job", _VOID, [])
        check, wake, done = (fn.append_basic_block(n) for n in ("check", "wake", "done"))
        before = b.atomic_rmw("sub", self.inside, _i32(1), "seq_cst")
        b.cbranch(b.icmp_unsigned("==", before, _i32(1)), check, done)
        b.position_at_end(check)
        sleeping = b.load_atomic(self.caller_sleeping, "seq_cst", 4)
        b.cbranch(b.icmp_unsigned("!=", sleeping, _i32(0)), wake, done)
        b.position_at_end(wake)
        b.call(self.futex_wake, [self.inside, _i32(1)])
        b.branch(done)
        b.position_at_end(done)
        b.ret_void()
        self.leave_job = fn

    def _emit_worker(self) -> None:
        """The thread body: ``arg`` packs the worker's index (high 32 bits) and the job word
        current when it was created (low 32 bits). Never returns."""
        fn = self.worker
        fn.linkage = "internal"
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        packed = b.ptrtoint(fn.args[0], _I64)
        index = b.lshr(packed, _i64(32))
        seen0 = b.trunc(packed, _I32)
        entry = b.block
        loop, enter, work, leave = (
            fn.append_basic_block(n) for n in ("loop", "enter", "work", "leave")
        )
        b.branch(loop)
        b.position_at_end(loop)
        seen = b.phi(_I32)
        word = b.call(self.await_word, [seen])
        joiners = b.zext(b.and_(word, _i32(_COUNT_MASK)), _I64)
        b.cbranch(b.icmp_unsigned("<", index, joiners), enter, loop)
        b.position_at_end(enter)
        b.atomic_rmw("add", self.inside, _i32(1), "seq_cst")
        still = b.icmp_unsigned("==", b.load_atomic(self.word, "seq_cst", 4), word)
        b.cbranch(still, work, leave)
        b.position_at_end(work)
        b.call(
            self.run_tasks,
            [b.load(self.job_fn), b.load(self.job_ctx, typ=_PTR), b.load(self.job_n)],
        )
        b.branch(leave)
        b.position_at_end(leave)
        b.call(self.leave_job, [])
        b.branch(loop)
        seen.add_incoming(seen0, entry)
        seen.add_incoming(word, loop)
        seen.add_incoming(word, leave)

    def _emit_spawn_worker(self) -> None:
        """Create worker ``index`` (detached, all signals blocked); returns success."""
        fn, b = self._function("ember_pool.spawn_worker", _I1, [_I64, _I32])
        index, word = fn.args
        packed = b.or_(b.shl(index, _i64(32)), b.zext(word, _I64))
        sigset = ir.ArrayType(ir.IntType(8), _SIGSET_BYTES)
        blocked = b.bitcast(b.alloca(sigset), _PTR)
        saved = b.bitcast(b.alloca(sigset), _PTR)
        thread = b.alloca(_I64)
        b.call(self.sigfillset, [blocked])
        b.call(self.pthread_sigmask, [_i32(_SIG_SETMASK), blocked, saved])
        arg = b.inttoptr(packed, _PTR)
        rc = b.call(
            self.pthread_create,
            [b.bitcast(thread, _PTR), ir.Constant(_PTR, None), self.worker, arg],
        )
        b.call(self.pthread_sigmask, [_i32(_SIG_SETMASK), saved, ir.Constant(_PTR, None)])
        ok = b.icmp_signed("==", rc, _i32(0))
        detach, done = fn.append_basic_block("detach"), fn.append_basic_block("done")
        b.cbranch(ok, detach, done)
        b.position_at_end(detach)
        b.call(self.pthread_detach, [b.load(thread)])
        b.branch(done)
        b.position_at_end(done)
        b.ret(ok)
        self.spawn_worker = fn

    def _emit_grow_workers(self) -> None:
        """Create workers until ``want`` exist (or creation fails); returns how many of them
        may join: ``min(want, workers)``. Runs only while the caller holds ``busy``."""
        fn, b = self._function("ember_pool.grow_workers", _I64, [_I64, _I32])
        want, word = fn.args
        existing = b.load_atomic(self.workers, "monotonic", 8)
        entry = b.block
        loop, spawn, grown, done = (
            fn.append_basic_block(n) for n in ("loop", "spawn", "grown", "done")
        )
        b.branch(loop)
        b.position_at_end(loop)
        have = b.phi(_I64)
        b.cbranch(b.icmp_signed("<", have, want), spawn, done)
        b.position_at_end(spawn)
        ok = b.call(self.spawn_worker, [have, word])
        b.cbranch(ok, grown, done)
        b.position_at_end(grown)
        more = b.add(have, _i64(1))
        b.store_atomic(more, self.workers, "monotonic", 8)
        b.branch(loop)
        have.add_incoming(existing, entry)
        have.add_incoming(more, grown)
        b.position_at_end(done)
        b.ret(b.select(b.icmp_signed("<", have, want), have, want))
        self.grow_workers = fn

    # -- the caller side --------------------------------------------------------------------

    def _emit_await_idle(self) -> None:
        """The caller's wait until no worker is inside the (closed) job: spin, then sleep."""
        fn, b = self._function("ember_pool.await_idle", _VOID, [])
        sleep, wait, done, out = (
            fn.append_basic_block(n) for n in ("sleep", "wait", "done", "out")
        )
        spun = b.call(self.spin_until, [self.inside, _i32(0), ir.Constant(_I1, 0)])
        b.cbranch(spun, out, sleep)
        b.position_at_end(sleep)
        b.store_atomic(_i32(1), self.caller_sleeping, "seq_cst", 4)
        b.branch(wait)
        b.position_at_end(wait)
        left = b.load_atomic(self.inside, "seq_cst", 4)
        nobody = b.icmp_unsigned("==", left, _i32(0))
        sleep_now = fn.append_basic_block("sleep_now")
        b.cbranch(nobody, done, sleep_now)
        b.position_at_end(sleep_now)
        b.call(self.futex_wait, [self.inside, left])
        b.branch(wait)
        b.position_at_end(done)
        b.store_atomic(_i32(0), self.caller_sleeping, "seq_cst", 4)
        b.branch(out)
        b.position_at_end(out)
        b.ret_void()
        self.await_idle = fn

    def _emit_dispatch(self) -> None:
        """Publish a job for ``joiners`` workers, work on it, close it, wait for the workers."""
        fn, b = self._function("ember_pool.dispatch", _VOID, [_TASK_PTR, _PTR, _I64, _I32, _I64])
        task_fn, ctx, n, old_word, joiners = fn.args
        b.store(task_fn, self.job_fn)
        b.store(ctx, self.job_ctx)
        b.store(n, self.job_n)
        b.store_atomic(_i64(0), self.next_task, "monotonic", 8)
        generation = b.shl(b.add(b.lshr(old_word, _i32(_COUNT_BITS)), _i32(1)), _i32(_COUNT_BITS))
        b.store_atomic(b.or_(generation, b.trunc(joiners, _I32)), self.word, "seq_cst", 4)
        wake, work = fn.append_basic_block("wake"), fn.append_basic_block("work")
        asleep = b.load_atomic(self.sleepers, "seq_cst", 4)
        b.cbranch(b.icmp_unsigned("!=", asleep, _i32(0)), wake, work)
        b.position_at_end(wake)
        b.call(self.futex_wake, [self.word, _i32(_INT_MAX)])
        b.branch(work)
        b.position_at_end(work)
        b.call(self.run_tasks, [task_fn, ctx, n])
        b.store_atomic(generation, self.word, "seq_cst", 4)
        b.call(self.await_idle, [])
        b.ret_void()
        self.dispatch = fn

    def _emit_parallel_for(self) -> None:
        fn, b = self._function("ember_parallel_for", _VOID, [_TASK_PTR, _PTR, _I64], internal=False)
        task_fn, ctx, n = fn.args
        names = ("small", "one", "out", "threads", "lock", "inline", "locked", "unlock", "go")
        small, one, out, threads, lock, inline, locked, unlock, go = (
            fn.append_basic_block(name) for name in names
        )
        b.cbranch(b.icmp_signed("<=", n, _i64(1)), small, threads)
        b.position_at_end(small)
        b.cbranch(b.icmp_signed("==", n, _i64(1)), one, out)
        b.position_at_end(one)
        b.call(task_fn, [ctx, _i64(0)])
        b.branch(out)
        b.position_at_end(threads)
        count = b.load_atomic(self.threads, "monotonic", 8)
        b.cbranch(b.icmp_signed("<=", count, _i64(1)), inline, lock)
        b.position_at_end(lock)
        taken = b.cmpxchg(self.busy, _i32(0), _i32(1), "acquire", "monotonic")
        b.cbranch(b.extract_value(taken, 1), locked, inline)
        b.position_at_end(inline)
        b.call(self.run_inline, [task_fn, ctx, n])
        b.branch(out)
        b.position_at_end(locked)
        want = _smin(b, _smin(b, b.sub(count, _i64(1)), b.sub(n, _i64(1))), _i64(MAX_WORKERS))
        old_word = b.load_atomic(self.word, "monotonic", 4)
        joiners = b.call(self.grow_workers, [want, old_word])
        b.cbranch(b.icmp_signed("==", joiners, _i64(0)), unlock, go)
        b.position_at_end(unlock)
        b.store_atomic(_i32(0), self.busy, "release", 4)
        b.branch(inline)
        b.position_at_end(go)
        b.call(self.dispatch, [task_fn, ctx, n, old_word, joiners])
        b.store_atomic(_i32(0), self.busy, "release", 4)
        b.branch(out)
        b.position_at_end(out)
        b.ret_void()

    def _emit_controls(self) -> None:
        """The functions Python calls: set the thread count, count workers, reset after fork."""
        fn, b = self._function("ember_pool_set_threads", _VOID, [_I64], internal=False)
        b.store_atomic(fn.args[0], self.threads, "monotonic", 8)
        b.ret_void()
        fn, b = self._function("ember_pool_workers", _I64, [], internal=False)
        b.ret(b.load_atomic(self.workers, "monotonic", 8))
        fn, b = self._function("ember_pool_after_fork", _VOID, [], internal=False)
        for word in (self.busy, self.sleepers, self.inside, self.caller_sleeping):
            b.store_atomic(_i32(0), word, "seq_cst", 4)
        b.store_atomic(_i64(0), self.workers, "seq_cst", 8)
        b.ret_void()

    def build(self) -> ir.Module:
        """Emit every function (callees first) and return the module."""
        for emit in (
            self._emit_now_ns,
            self._emit_futex,
            self._emit_spin_until,
            self._emit_run_tasks,
            self._emit_run_inline,
            self._emit_await_word,
            self._emit_leave_job,
            self._emit_worker,
            self._emit_spawn_worker,
            self._emit_grow_workers,
            self._emit_await_idle,
            self._emit_dispatch,
            self._emit_parallel_for,
            self._emit_controls,
        ):
            emit()
        return self.module


def _smin(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


@functools.cache
def pool_module_text() -> str:
    """The pool's LLVM IR, as `ensure_pool` compiles it."""
    return str(_PoolModule().build())


def _map_key() -> str:
    """Where the disk cache maps the pool to its object code (`target.map_key`)."""
    return target.map_key("pool", SPIN_NS, MAX_WORKERS)


def pending_module() -> tuple[str, str, int] | None:
    """The pool's module as ``(text, name, level)`` while `ensure_pool` has yet to compile it
    and the disk cache does not hold it (for `target.prefetch`), else None."""
    if _pool is not None or target.is_mapped(_map_key()):
        return None
    return pool_module_text(), "ember_pool", LEVEL


# -- Python side ---------------------------------------------------------------------------

_TASK_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
_SET_THREADS_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_int64)
_COUNT_CFUNC = ctypes.CFUNCTYPE(ctypes.c_int64)
_VOID_CFUNC = ctypes.CFUNCTYPE(None)


@functools.cache
def core_count() -> int:
    """The cores this process may run on when ember starts (the pool's default thread count;
    read once, so kernels compiled at different times agree on how they split work)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class _Pool:
    """The compiled pool and its ctypes entry points; made once per process."""

    def __init__(self, threads: int) -> None:
        host = target.triple()
        if not (host.startswith("x86_64") and "linux" in host):
            raise RuntimeError(
                f"the native thread pool supports x86_64 Linux only; this host is {host!r}"
            )
        self.jit = target.jit_mapped(
            _map_key(), pool_module_text, name="ember_pool", speed_level=LEVEL
        )
        # Never freed: idle workers may be spinning in this code while the interpreter exits.
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(self.jit))
        self.address = self.jit.address("ember_parallel_for")
        self.parallel_for = _TASK_CFUNC(self.address)
        self.set_threads = _SET_THREADS_CFUNC(self.jit.address("ember_pool_set_threads"))
        self.workers = _COUNT_CFUNC(self.jit.address("ember_pool_workers"))
        self.after_fork = _VOID_CFUNC(self.jit.address("ember_pool_after_fork"))
        self.set_threads(threads)
        target.add_symbol("ember_parallel_for", self.address)


_lock = threading.Lock()
_pool: _Pool | None = None
_threads = core_count()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    if _pool is not None:
        _pool.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def ensure_pool() -> int:
    """Compile the pool once per process, make ``ember_parallel_for`` visible to every module
    compiled afterwards, and return its address."""
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = _Pool(_threads)
            pool = _pool
    return pool.address


def set_pool_threads(n: int) -> None:
    """Let a parallel call use up to ``n`` threads, the caller included."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidValueError(
            "set_pool_threads", f"set_pool_threads expects an int, but got {type(n).__name__}"
        )
    if n < 1:
        raise InvalidValueError(
            "set_pool_threads", f"set_pool_threads expects a positive integer, got {n}"
        )
    with _lock:
        _threads = n
        if _pool is not None:
            _pool.set_threads(n)


def pool_threads() -> int:
    """How many threads (the caller included) a parallel call may use."""
    return _threads


def pool_workers() -> int:
    """How many worker threads exist now (0 until the first parallel call needs one)."""
    return _pool.workers() if _pool is not None else 0


def parallel_for_py(fn_address: int, ctx_address: int, ntasks: int) -> None:
    """Call ``ember_parallel_for(fn, ctx, ntasks)`` through ctypes (the GIL is released during
    the call). For tests: generated code calls the symbol directly."""
    ensure_pool()
    _pool.parallel_for(fn_address, ctx_address, ntasks)
