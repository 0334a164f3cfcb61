"""sgemm through ember_sgemm (the BLAS wrapper generated code calls) next to numpy's np.matmul.

Run: python benchmarks/blas_gemm.py [--m 512 --k 784 --n 512] [--json out.json]
Prints GFLOP/s (2*M*N*K per call; median of blocks, the two alternating block by block in one
process) at 1 thread and at the BLAS pool's current size. ember_sgemm is called through ctypes
(about 0.6 us per call, noise next to a gemm of this size); np.matmul writes into a preallocated
``out`` so neither side allocates.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import statistics
import time

import llvmlite.ir as ir
import numpy as np

from ember.codegen.llvm import blas, target


def sgemm_from_ctypes():
    blas.ensure_blas()
    f, i, p = ctypes.c_float, ctypes.c_int64, ctypes.c_void_p
    proto = ctypes.CFUNCTYPE(None, i, i, i, i, i, f, p, i, p, i, f, p, i)
    # called the way generated code calls it: from a JIT module that declares ember_sgemm
    module = ir.Module(name="bench")
    gemm = blas.declare_gemm(module, "f32")
    fn = ir.Function(module, gemm.function_type, "bench_sgemm")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    builder.call(gemm, list(fn.args))
    builder.ret_void()
    jitted = target.jit(str(module))
    return jitted, proto(jitted.address("bench_sgemm"))


def gflops(fn, flops: float, calls: int, blocks: int) -> list[float]:
    rates = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(flops * calls / (time.perf_counter() - start) / 1e9)
    return rates


def measure(m: int, k: int, n: int, blocks: int = 9) -> dict:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    out = np.empty((m, n), np.float32)
    _keep, sgemm = sgemm_from_ctypes()
    pa, pb, pc = a.ctypes.data, b.ctypes.data, c.ctypes.data

    def ember_call():
        sgemm(0, 0, m, n, k, 1.0, pa, k, pb, n, 0.0, pc, n)

    def numpy_call():
        np.matmul(a, b, out=out)

    ember_call()
    numpy_call()
    assert np.allclose(c, out, rtol=1e-4, atol=1e-3)
    flops = 2.0 * m * n * k
    calls = max(1, int(5e9 / flops))  # blocks of about 50 ms
    default_threads = blas.blas_threads()
    results = {}
    for threads in sorted({1, default_threads}):
        blas.set_blas_threads(threads)
        ember_rates, numpy_rates = [], []
        for _ in range(blocks):
            ember_rates += gflops(ember_call, flops, calls, 1)
            numpy_rates += gflops(numpy_call, flops, calls, 1)
        results[f"{threads}_threads"] = {
            "ember_sgemm_gflops": statistics.median(ember_rates),
            "np_matmul_gflops": statistics.median(numpy_rates),
            "ember_best": max(ember_rates),
            "numpy_best": max(numpy_rates),
        }
    blas.set_blas_threads(default_threads)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=512)
    parser.add_argument("--k", type=int, default=784)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    info = blas.ensure_blas()
    results = measure(args.m, args.k, args.n)
    print(f"sgemm M={args.m} K={args.k} N={args.n}, {platform.processor() or platform.machine()}")
    print(f"BLAS: {info.version} ({info.path})")
    print(f"{'':12}{'ember_sgemm':>14}{'np.matmul':>12}   GFLOP/s, median (best)")
    for key, r in results.items():
        print(f"{key:12}{r['ember_sgemm_gflops']:>8.1f} ({r['ember_best']:.0f})"
              f"{r['np_matmul_gflops']:>7.1f} ({r['numpy_best']:.0f})")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info.__dict__, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
