"""How many threads ember's work may use: ``ember.set_num_threads`` and friends.

The eager kernels run on numpy, whose matmuls go to a BLAS library (OpenBLAS, MKL, BLIS...)
with a thread pool of its own. Left alone, that pool sizes itself from the machine's core
count, not from the cores this process may run on, and takes no notice of what ember is told:
under ``taskset``, a container's CPU quota or beside other jobs it oversubscribes the cores,
and step times swing by several times between runs. ``set_num_threads(n)`` therefore sizes
every pool ember uses: its own count, which the compiled code's native thread pool
(`ember.codegen.llvm.pool`) follows from import on, and each BLAS pool loaded in the
process, reached through threadpoolctl, which knows how to talk to each BLAS implementation.

The default is PyTorch's: ``OMP_NUM_THREADS`` when set, else the number of cores this process
may run on (``os.sched_getaffinity`` where the platform has it). At import, BLAS pools larger
than the default are brought down to it (a pool a user already limited, e.g. with
``OPENBLAS_NUM_THREADS=1``, is left as it is).

``set_num_interop_threads`` stores the size of the pool that runs independent ops
concurrently; ember runs ops one after another today, so it only records the value, with
PyTorch's rule that it can be set once per process.
"""

from __future__ import annotations

import os

from threadpoolctl import ThreadpoolController

from ..codegen.llvm.pool import set_pool_threads
from ..ir.errors import InvalidValueError

__all__ = [
    "available_cores",
    "blas_num_threads",
    "get_num_interop_threads",
    "get_num_threads",
    "set_num_interop_threads",
    "set_num_threads",
]


def available_cores() -> int:
    """The number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return available_cores()


_num_threads = _default_threads()
_num_interop_threads = _num_threads
_interop_set = False


def _check_count(op: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidValueError(op, f"{op} expects an int, but got {type(n).__name__}")
    if n < 1:
        raise InvalidValueError(op, f"{op} expects a positive integer, got {n}")
    return n


def _blas() -> ThreadpoolController:
    """The BLAS pools loaded now (a library loaded later is found at the next call)."""
    return ThreadpoolController().select(user_api="blas")


def blas_num_threads() -> list[int]:
    """The thread count of each BLAS pool loaded in the process."""
    return [lib["num_threads"] for lib in _blas().info()]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for ember's work: its own pools and every BLAS pool loaded."""
    global _num_threads
    _num_threads = _check_count("set_num_threads", n)
    set_pool_threads(n)
    _blas().limit(limits=n)


def get_num_threads() -> int:
    """The number of threads ember's work uses (``set_num_threads``, else the default)."""
    return _num_threads


def set_num_interop_threads(n: int) -> None:
    """Record the inter-op pool size; as in PyTorch, only once per process."""
    global _num_interop_threads, _interop_set
    n = _check_count("set_num_interop_threads", n)
    if _interop_set:
        raise InvalidValueError(
            "set_num_interop_threads",
            "cannot set number of interop threads after parallel work has started or "
            "set_num_interop_threads called",
        )
    _num_interop_threads = n
    _interop_set = True


def get_num_interop_threads() -> int:
    return _num_interop_threads


def _cap_blas_at_default() -> None:
    blas = _blas()
    if any(lib["num_threads"] > _num_threads for lib in blas.info()):
        for lib in blas.lib_controllers:
            if lib.num_threads > _num_threads:
                lib.set_num_threads(_num_threads)


_cap_blas_at_default()
set_pool_threads(_num_threads)
