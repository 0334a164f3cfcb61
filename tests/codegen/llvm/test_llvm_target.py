"""Tests for ember.codegen.llvm.target: the host JIT keeps working after modules are freed."""

from __future__ import annotations

import ctypes
import gc

from ember.codegen.llvm.target import jit, triple

ADD_ONE = """
define i64 @add_one(i64 %x) {
  %y = add i64 %x, 1
  ret i64 %y
}
"""


def _call_add_one(value: int) -> int:
    module = jit(ADD_ONE, name="add_one")
    fn = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(module.address("add_one"))
    return fn(value)


def test_jit_survives_freed_modules():
    expected_triple = triple()
    for value in range(5):
        assert _call_add_one(value) == value + 1
        gc.collect()  # the module above is freed here, with its engine
        assert triple() == expected_triple
