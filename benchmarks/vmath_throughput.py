"""Throughput of ember's vector math (ember.codegen.llvm.vmath) on float32, one thread.

Run: python benchmarks/vmath_throughput.py [--n 4194304] [--json out.json] [name ...]
Each function is compiled into the loop ``y[i] = f(x[i])`` (``y[i] = pow(a[i], b[i])``),
run on n elements of inputs in the range where the function is typically used, and timed as
the best of repeated calls (the least disturbed by other work on a shared machine); numpy's
float32 function is timed next to it, in the same process, where numpy has one. Prints ns per
element.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import timeit

import llvmlite.ir as ir
import numpy as np

from ember.codegen.llvm import vmath
from ember.codegen.llvm.target import jit

INPUTS = {  # (low, high) of uniform inputs
    "exp": (-10, 10),
    "expm1": (-10, 10),
    "log": (1e-3, 1e3),
    "log1p": (-0.9, 1e3),
    "tanh": (-5, 5),
    "sigmoid": (-10, 10),
    "erf": (-4, 4),
    "sin": (-100, 100),
    "cos": (-100, 100),
    "sqrt": (0, 1e3),
    "rsqrt": (1e-3, 1e3),
    "pow": (0.1, 10),
}
NUMPY = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "sqrt": np.sqrt,
}


def build(name: str, arity: int):
    module = vmath.loop_module(name, ir.FloatType(), arity)
    compiled = jit(str(module))
    proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (arity + 1)), ctypes.c_int64)
    return compiled, proto(compiled.address("k"))


def ns_per_element(call, n: int, number: int = 5, repeat: int = 9) -> float:
    call()
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number / n * 1e9


def measure(n: int, names: list[str]) -> dict:
    rng = np.random.default_rng(0)
    results = {}
    for name in names:
        arity = 2 if name in vmath.BINARY else 1
        lo, hi = INPUTS[name]
        xs = [rng.uniform(lo, hi, n).astype(np.float32) for _ in range(arity)]
        if name == "pow":
            xs[1] = rng.uniform(-5, 5, n).astype(np.float32)
        out = np.empty(n, np.float32)
        compiled, fn = build(name, arity)
        ptrs = [a.ctypes.data for a in xs] + [out.ctypes.data]
        row = {"ember_ns": ns_per_element(lambda fn=fn, ptrs=ptrs: fn(*ptrs, n), n)}
        if name in NUMPY:
            f, x = NUMPY[name], xs[0]
            row["numpy_ns"] = ns_per_element(lambda f=f, x=x, out=out: f(x, out=out), n)
        results[name] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("names", nargs="*", help="functions to measure (default: all)")
    args = parser.parse_args()
    results = measure(args.n, args.names or sorted(vmath.UNARY | vmath.BINARY))
    print(f"float32, 1 thread, n={args.n}, {platform.processor() or platform.machine()}")
    print(f"{'function':10s} {'ember ns/elem':>14s} {'numpy ns/elem':>14s}")
    for name, row in results.items():
        numpy_ns = f"{row['numpy_ns']:14.3f}" if "numpy_ns" in row else f"{'-':>14s}"
        print(f"{name:10s} {row['ember_ns']:14.3f} {numpy_ns}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"n": args.n, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
