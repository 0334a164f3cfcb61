"""Compiling LLVM modules ahead on the other core: a compile worker process and a queue.

llvmlite runs every LLVM call of a process under one lock, so a second thread cannot compile
at the same time. A second *process* can: `Prefetcher` keeps one worker (``llvm_compile.py``
run as a script: it imports only llvmlite, and starts in about 65 ms) and a queue of modules
the backend will ask for next. A compile hands the queue every module it is about to need
(its kernels, the thread pool, the BLAS wrappers, the graph's entry) with `submit`; a helper
thread starts the worker and, once it is ready, sends them to it one at a time, from the back
of the queue, while the backend compiles from the front in this process (so a small compile
is not left waiting for a worker that is still starting). When the backend reaches a module,
`take` says whether the worker has it: done (its object code comes back), running (wait for
it) or still queued (the caller claims it and compiles it itself). Each module is compiled once, by
whichever side reaches it first.

The worker runs the same pipeline on the same LLVM with the same target (CPU name and
features), so its object code is the bytes this process would emit: results do not depend on
who compiled what. A worker that fails (it died, or its answer cannot be read) is dropped and
everything it had not finished is compiled here; a compile error comes back as "failed" and
the caller compiles the module itself, which raises the real error.

There is no worker on a machine with one core, with ``EMBER_COMPILE_WORKER=0``, or in a child
made by ``os.fork`` (it would share its parent's pipes): then `submit` does nothing.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .llvm_compile import READY

__all__ = ["Prefetcher"]

_SCRIPT = str(Path(__file__).with_name("llvm_compile.py"))
_QUEUED, _RUNNING, _DONE, _FAILED = "queued", "running", "done", "failed"


class WorkerError(RuntimeError):
    """The worker process died or sent something unreadable."""


class _Worker:
    """One compile worker process (see `llvm_compile.serve`)."""

    def __init__(self, cpu: str, features: str) -> None:
        self.pid = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, _SCRIPT, cpu, features],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        """Block until the worker has started (imported llvmlite, made its target machines)."""
        try:
            line = self.proc.stdout.readline()
        except (OSError, ValueError) as exc:
            raise WorkerError(f"the compile worker failed to start: {exc}") from None
        if line != READY:
            raise WorkerError("the compile worker failed to start")

    def compile(self, name: str, text: str, level: int) -> tuple[int, bytes, bytes]:
        name_b, text_b = name.encode(), text.encode()
        try:
            self.proc.stdin.write(b"%d %d %d\n" % (len(name_b), len(text_b), level))
            self.proc.stdin.write(name_b)
            self.proc.stdin.write(text_b)
            self.proc.stdin.flush()
            header = self.proc.stdout.readline()
            status, a_len, b_len = (int(x) for x in header.split())
            a = self.proc.stdout.read(a_len)
            b = self.proc.stdout.read(b_len)
        except (OSError, ValueError) as exc:
            raise WorkerError(f"the compile worker failed: {exc}") from None
        if len(a) != a_len or len(b) != b_len:
            raise WorkerError("the compile worker's answer was cut short")
        return status, a, b

    def close(self) -> None:
        if os.getpid() != self.pid:  # (a forked child's copy: the parent's to close)
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        with contextlib.suppress(OSError):
            self.proc.stdout.close()


@dataclass
class _Item:
    name: str
    text: str
    level: int
    state: str = _QUEUED
    result: tuple[bytes, str] | None = None


@dataclass
class Prefetcher:
    """The queue and the worker (see the module docstring)."""

    cpu: str
    features: str
    enabled: bool = True
    _items: dict[str, _Item] = field(default_factory=dict)
    _queue: collections.deque = field(default_factory=collections.deque)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _worker: _Worker | None = None
    _helper: threading.Thread | None = None
    _pid: int = field(default_factory=os.getpid)

    def submit(self, modules: list[tuple[str, str, str, int]]) -> None:
        """Queue ``(key, name, text, level)`` modules for the worker; keys already queued or
        held are skipped."""
        if not self.enabled or os.getpid() != self._pid or not modules:
            return
        with self._cond:
            for key, name, text, level in modules:
                if key not in self._items:
                    self._items[key] = _Item(name, text, level)
                    self._queue.append(key)
            if self._helper is None:
                self._helper = threading.Thread(
                    target=self._feed, name="ember-compile-feeder", daemon=True
                )
                self._helper.start()

    def take(self, key: str) -> tuple[bytes, str] | None:
        """The worker's object code and optimized IR for ``key``, waiting while it compiles
        it; None when the caller should compile it (never queued, still queued, or failed)."""
        with self._cond:
            item = self._items.get(key)
            if item is None:
                return None
            while item.state == _RUNNING:
                self._cond.wait()
            if self._items.get(key) is not item:  # (another caller took it meanwhile)
                return None
            del self._items[key]
            if item.state == _QUEUED:
                self._queue.remove(key)
                return None
            return item.result if item.state == _DONE else None

    def discard(self, key: str) -> None:
        """Forget ``key`` (the caller found its object code elsewhere); a module the worker is
        compiling is left to finish and dropped by the next `take` of it."""
        with self._cond:
            item = self._items.get(key)
            if item is not None and item.state != _RUNNING:
                del self._items[key]
                if item.state == _QUEUED:
                    self._queue.remove(key)

    def _feed(self) -> None:
        try:  # (a module is claimed only once the worker can start on it)
            worker = self._ensure_worker()
        except Exception:  # noqa: BLE001 - a worker in doubt is dropped, never waited on
            self._drop_worker()
            with self._cond:
                self._fail_queued()
                self._helper = None
            return
        while True:
            with self._cond:
                key = self._queue.pop() if self._queue else None
                if key is None:
                    self._helper = None
                    return
                item = self._items[key]
                item.state = _RUNNING
            try:
                status, a, b = worker.compile(item.name, item.text, item.level)
                result = (a, b.decode()) if status == 0 else None
            except Exception:  # noqa: BLE001 - a worker in doubt is dropped, never waited on
                self._drop_worker()
                result = None
            with self._cond:
                item.state = _DONE if result is not None else _FAILED
                item.result = result
                self._cond.notify_all()
                if result is None and self._worker is None:
                    self._fail_queued()
                    self._helper = None
                    return

    def _fail_queued(self) -> None:
        """Without a worker, the queue goes back to the callers (held under the lock)."""
        while self._queue:
            self._items[self._queue.pop()].state = _FAILED
        self._cond.notify_all()

    def _ensure_worker(self) -> _Worker:
        if self._worker is None:
            worker = _Worker(self.cpu, self.features)
            atexit.register(worker.close)
            self._worker = worker
            worker.wait_ready()
        return self._worker

    def _drop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()
            self.enabled = False

    def after_fork_in_child(self) -> None:
        """A forked child shares its parent's pipes: it points its copies at /dev/null (so
        nothing it flushes or closes reaches the parent's worker, and the worker sees its
        input close when the parent closes it) and forgets the worker and the queue."""
        worker = self._worker
        if worker is not None:
            devnull = os.open(os.devnull, os.O_RDWR)
            for stream in (worker.proc.stdin, worker.proc.stdout):
                with contextlib.suppress(OSError, ValueError):
                    os.dup2(devnull, stream.fileno())
            os.close(devnull)
        self._worker, self._helper = None, None
        self._items, self._queue = {}, collections.deque()
        self._cond = threading.Condition()
        self.enabled = False
