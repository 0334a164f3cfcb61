"""The native entry of a compiled graph (ember/codegen/llvm/entry.py).

Callees are small hand-written LLVM IR functions ``void (ptr)``: one adds 1 to its input and
writes the output (checked against numpy float64), one records the pointer array it receives
(checked against the arrays' own data addresses and the extras), one spins until another
Python thread answers (the GIL test). Every check has a failing twin: wrong count, type,
dtype, shape, layout, read-only output, each with the message the user sees.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import inspect
import itertools
import pickle
import sys
import threading
import time
import timeit

import ml_dtypes
import numpy as np
import pytest

from ember.codegen.llvm import numpy_abi, target
from ember.codegen.llvm.entry import ArgSpec, Entry, dtype_accepts, make_entry

_names = itertools.count()


def unique(prefix: str) -> str:
    return f"test_entry.{prefix}.{next(_names)}"


# Per element type: how an element is stored, widened to float and narrowed back. bfloat
# is converted with integer ops (round to nearest even): LLVM lowers ``fptrunc ... to bfloat``
# to a call of __truncsfbf2, which the JIT cannot resolve.
_ADD_ONE = {
    "float": ("float", "%w = fadd float %v, 0.0", "%r = fadd float %s, 0.0"),
    "double": ("double", "%w = fadd double %v, 0.0", "%r = fadd double %s, 0.0"),
    "half": ("half", "%w = fpext half %v to float", "%r = fptrunc float %s to half"),
    "bfloat": (
        "i16",
        "%z = zext i16 %v to i32\n  %h = shl i32 %z, 16\n  %w = bitcast i32 %h to float",
        "%bits = bitcast float %s to i32\n  %odd = lshr i32 %bits, 16\n"
        "  %lsb = and i32 %odd, 1\n  %bias = add i32 %lsb, 32767\n"
        "  %rounded = add i32 %bits, %bias\n  %top = lshr i32 %rounded, 16\n"
        "  %r = trunc i32 %top to i16",
    ),
}


def add_one_ir(symbol: str, n: int, element: str = "float") -> str:
    """``out[i] = in[i] + 1`` over ``n`` elements (in float for half and bfloat)."""
    llvm_type, load_convert, store_convert = _ADD_ONE[element]
    add = "%s = fadd double %w, 1.0" if element == "double" else "%s = fadd float %w, 1.0"
    return f"""
define void @"{symbol}"(ptr %p) {{
start:
  %xp = load ptr, ptr %p
  %q = getelementptr ptr, ptr %p, i64 1
  %yp = load ptr, ptr %q
  %empty = icmp eq i64 {n}, 0
  br i1 %empty, label %done, label %loop
loop:
  %i = phi i64 [0, %start], [%next, %loop]
  %a = getelementptr {llvm_type}, ptr %xp, i64 %i
  %v = load {llvm_type}, ptr %a
  {load_convert}
  {add}
  {store_convert}
  %b = getelementptr {llvm_type}, ptr %yp, i64 %i
  store {llvm_type} %r, ptr %b
  %next = add i64 %i, 1
  %stop = icmp eq i64 %next, {n}
  br i1 %stop, label %done, label %loop
done:
  ret void
}}
"""


def record_ir(symbol: str, n: int) -> str:
    """Copy ``ptrs[0..n)`` into the buffer at ``ptrs[n]`` (the last extra)."""
    body = "\n".join(
        f"""  %g{k} = getelementptr ptr, ptr %p, i64 {k}
  %v{k} = load ptr, ptr %g{k}
  %o{k} = getelementptr ptr, ptr %out, i64 {k}
  store ptr %v{k}, ptr %o{k}"""
        for k in range(n)
    )
    return f"""
define void @"{symbol}"(ptr %p) {{
  %go = getelementptr ptr, ptr %p, i64 {n}
  %out = load ptr, ptr %go
{body}
  ret void
}}
"""


def wait_ir(symbol: str) -> str:
    """Args (entered, flag, out, cap), all i64[1]: set entered, spin up to cap for flag."""
    return f"""
define void @"{symbol}"(ptr %p) {{
start:
  %entered = load ptr, ptr %p
  %g1 = getelementptr ptr, ptr %p, i64 1
  %flag = load ptr, ptr %g1
  %g2 = getelementptr ptr, ptr %p, i64 2
  %out = load ptr, ptr %g2
  %g3 = getelementptr ptr, ptr %p, i64 3
  %capp = load ptr, ptr %g3
  %cap = load i64, ptr %capp
  store atomic i64 1, ptr %entered release, align 8
  br label %loop
loop:
  %i = phi i64 [0, %start], [%next, %again]
  %seen = load atomic i64, ptr %flag acquire, align 8
  %got = icmp ne i64 %seen, 0
  br i1 %got, label %done, label %again
again:
  %next = add i64 %i, 1
  %stop = icmp eq i64 %next, %cap
  br i1 %stop, label %done, label %loop
done:
  %result = phi i64 [1, %loop], [0, %again]
  store i64 %result, ptr %out
  ret void
}}
"""


def f32(*shape: int, writable: bool = False) -> ArgSpec:
    return ArgSpec(np.dtype(np.float32), shape, writable)


@pytest.fixture(scope="module")
def add23() -> Entry:
    symbol = unique("add23")
    return make_entry(
        "g", [f32(2, 3), f32(2, 3, writable=True)], symbol, target_ir=add_one_ir(symbol, 6)
    )


def inputs23() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    return x, np.zeros((2, 3), np.float32)


# --------------------------------------------------------------------------- the layout


def test_abi_offsets_match_a_fresh_array() -> None:
    layout = numpy_abi.abi()
    assert (layout.data, layout.nd, layout.dimensions, layout.flags) == (16, 24, 32, 64)
    arr = np.zeros((4, 5), ml_dtypes.bfloat16)[:, 1:]
    assert numpy_abi.array_fields_ok(layout, arr)
    assert numpy_abi.descr_fields_ok(layout, arr.dtype)


def test_abi_check_rejects_a_wrong_layout() -> None:
    arr = np.ones((2, 3), np.float32)
    wrong_data = numpy_abi.NumpyAbi(data=24, nd=16)
    assert not numpy_abi.array_fields_ok(wrong_data, arr)
    wrong_elsize = numpy_abi.NumpyAbi(descr_elsize=48)
    assert not numpy_abi.descr_fields_ok(wrong_elsize, np.dtype(np.complex128))  # alignment 8


def test_abi_verification_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numpy_abi, "_CANDIDATES", (numpy_abi.NumpyAbi(flags=72),))
    with pytest.raises(ImportError, match="layout is not the known one"):
        numpy_abi._verify_abi()


# --------------------------------------------------------------------------- running


def test_add_one_matches_numpy(add23: Entry) -> None:
    x, y = inputs23()
    assert add23(x, y) is None
    np.testing.assert_array_equal(y, (x.astype(np.float64) + 1).astype(np.float32))
    x2 = x * 3
    add23.native(x2, y)
    np.testing.assert_array_equal(y, (x2.astype(np.float64) + 1).astype(np.float32))


def test_target_resolved_through_add_symbol() -> None:
    symbol = unique("shared_add")
    callee = target.jit(add_one_ir(symbol, 16))
    target.add_symbol(symbol, callee.address(symbol))
    entry = make_entry("h", [f32(16), f32(16, writable=True)], symbol, release_gil=True)
    x = np.linspace(-2, 2, 16, dtype=np.float32)
    y = np.empty_like(x)
    entry(x, y)
    np.testing.assert_array_equal(y, (x.astype(np.float64) + 1).astype(np.float32))


@pytest.mark.parametrize(
    ("dtype", "llvm_type"),
    [(np.float16, "half"), (ml_dtypes.bfloat16, "bfloat"), (np.float64, "double")],
)
def test_other_float_dtypes(dtype, llvm_type: str) -> None:
    symbol = unique(llvm_type)
    spec = ArgSpec(np.dtype(dtype), (3, 4))
    out = ArgSpec(np.dtype(dtype), (3, 4), writable=True)
    entry = make_entry("k", [spec, out], symbol, target_ir=add_one_ir(symbol, 12, llvm_type))
    x = (np.arange(12).reshape(3, 4) * 0.37 - 2).astype(dtype)
    y = np.zeros((3, 4), dtype)
    entry(x, y)
    expected = (x.astype(np.float64) + 1).astype(dtype)
    np.testing.assert_array_equal(y.astype(np.float64), expected.astype(np.float64))
    with pytest.raises(
        TypeError, match=r"argument 0: expected .*\[3,4\] C-contiguous, got f32\[3,4\]"
    ):
        entry(x.astype(np.float32), y)


def test_pointer_array_holds_data_pointers_then_extras() -> None:
    specs = [
        f32(),  # 0-d
        ArgSpec(np.dtype(np.int64), (0, 5)),  # empty
        ArgSpec(np.dtype(ml_dtypes.bfloat16), (7,), writable=True),
        ArgSpec(np.dtype(np.bool_), (2, 1, 2)),
    ]
    record = np.zeros(len(specs) + 3, np.uint64)
    extra = [0xDEAD0000, 0, record.ctypes.data]
    symbol = unique("record")
    entry = make_entry("rec", specs, symbol, extra, target_ir=record_ir(symbol, len(specs) + 2))
    arrays = [
        np.array(1.5, np.float32),
        np.zeros((0, 5), np.int64),
        np.ones(7, ml_dtypes.bfloat16),
        np.zeros((2, 1, 2), np.bool_),
    ]
    entry(*arrays)
    data = [a.__array_interface__["data"][0] for a in arrays]
    assert record.tolist() == data + [0xDEAD0000, 0, 0]
    assert entry.extra == tuple(extra)


def test_many_arguments_each_checked_at_its_place() -> None:
    """300 arguments of mixed dtypes and ranks 0-3: all pointers arrive, and a bad argument
    deep in the list is the one named."""
    rng = np.random.default_rng(1)
    kinds = [np.float32, np.int64, np.float16, ml_dtypes.bfloat16, np.uint8, np.bool_]
    specs = []
    for i in range(300):
        shape = tuple(int(n) for n in rng.integers(1, 4, size=i % 4))
        specs.append(ArgSpec(np.dtype(kinds[i % len(kinds)]), shape, writable=i % 5 == 0))
    record = np.zeros(len(specs) + 1, np.uint64)
    symbol = unique("many")
    entry = make_entry(
        "many graph/1", specs, symbol, [0xABC, record.ctypes.data],
        target_ir=record_ir(symbol, len(specs) + 1),
    )  # fmt: skip
    arrays = [np.zeros(spec.shape, spec.dtype) for spec in specs]
    entry(*arrays)
    data = [a.__array_interface__["data"][0] for a in arrays]
    assert record.tolist() == data + [0xABC]
    bad_shape = arrays[:250] + [np.zeros((7,), specs[250].dtype)] + arrays[251:]
    with pytest.raises(ValueError, match=r"^many graph/1: argument 250: expected "):
        entry(*bad_shape)
    bad_dtype = arrays[:299] + [arrays[299].astype(np.float64)]
    with pytest.raises(TypeError, match=r"argument 299: expected .*, got f64"):
        entry(*bad_dtype)
    read_only = arrays[295].copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"argument 295: .* writable, got .* read-only$"):
        entry(*arrays[:295], read_only, *arrays[296:])


def test_release_gil_lets_another_thread_run() -> None:
    symbol = unique("wait")
    specs = [ArgSpec(np.dtype(np.int64), (1,), writable=True) for _ in range(4)]
    text = wait_ir(symbol)
    released = make_entry("released", specs, symbol, target_ir=text, release_gil=True)
    held = make_entry("held", specs, symbol, target_ir=text, release_gil=False)

    def run(entry: Entry, cap: int) -> int:
        entered, flag, out = np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)

        def answer() -> None:
            deadline = time.monotonic() + 10
            while entered[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.0002)
            flag[0] = 1

        thread = threading.Thread(target=answer)
        thread.start()
        entry(entered, flag, out, np.array([cap], np.int64))
        thread.join()
        return int(out[0])

    assert run(released, 10**10) == 1  # the thread ran Python while the callee spun
    assert run(held, 2 * 10**7) == 0  # the thread could not run until the call returned


# --------------------------------------------------------------------------- refusals


def test_wrong_count(add23: Entry) -> None:
    x, y = inputs23()
    with pytest.raises(TypeError, match=r"^g: expected 2 arguments, got 1$"):
        add23(x)
    with pytest.raises(TypeError, match=r"^g: expected 2 arguments, got 3$"):
        add23(x, y, y)
    with pytest.raises(TypeError, match="keyword"):
        add23(x, out=y)


def test_wrong_type(add23: Entry) -> None:
    x, y = inputs23()
    msg = r"^g: argument 0: expected f32\[2,3\] C-contiguous, got list$"
    with pytest.raises(TypeError, match=msg):
        add23(x.tolist(), y)

    class Sub(np.ndarray):
        pass

    with pytest.raises(
        TypeError, match=r"argument 1: expected f32\[2,3\] C-contiguous writable, got "
    ):
        add23(x, y.view(Sub))
    with pytest.raises(TypeError, match="got NoneType"):
        add23(None, y)


def test_wrong_dtype(add23: Entry) -> None:
    x, y = inputs23()
    msg = r"^g: argument 0: expected f32\[2,3\] C-contiguous, got f64\[2,3\] C-contiguous$"
    with pytest.raises(TypeError, match=msg):
        add23(x.astype(np.float64), y)
    with pytest.raises(TypeError, match=r"argument 1: .* got i32\[2,3\]"):
        add23(x, y.astype(np.int32))
    with pytest.raises(TypeError, match=r"argument 0: .* got >f4\[2,3\]"):
        add23(x.astype(">f4"), y)


def test_wrong_shape(add23: Entry) -> None:
    x, y = inputs23()
    msg = r"^g: argument 0: expected f32\[2,3\] C-contiguous, got f32\[3,2\] C-contiguous$"
    with pytest.raises(ValueError, match=msg):
        add23(x.reshape(3, 2), y)
    with pytest.raises(ValueError, match=r"argument 1: .* got f32\[6\] C-contiguous$"):
        add23(x, y.reshape(6))
    with pytest.raises(ValueError, match=r"argument 0: .* got f32\[1,2,3\]"):
        add23(x[None], y)
    with pytest.raises(ValueError, match=r"argument 0: .* got f32\[\] C-contiguous"):
        add23(np.zeros((), np.float32), y)


def test_non_contiguous_and_misaligned(add23: Entry) -> None:
    x, y = inputs23()
    with pytest.raises(ValueError, match=r"argument 0: .* got f32\[2,3\] non-contiguous$"):
        add23(np.asfortranarray(x), y)
    with pytest.raises(ValueError, match=r"argument 0: .* got f32\[2,3\] non-contiguous$"):
        add23(np.zeros((2, 6), np.float32)[:, ::2], y)
    raw = np.frombuffer(bytearray(4 * 6 + 1), np.float32, count=6, offset=1).reshape(2, 3)
    with pytest.raises(ValueError, match=r"argument 0: .* got f32\[2,3\] C-contiguous misaligned"):
        add23(raw, y)


def test_read_only_output_refused_read_only_input_accepted(add23: Entry) -> None:
    x, y = inputs23()
    ro = y.copy()
    ro.flags.writeable = False
    with pytest.raises(
        ValueError,
        match=r"argument 1: expected f32\[2,3\] C-contiguous writable, got f32\[2,3\] C-contiguous read-only$",
    ):
        add23(x, ro)
    assert not ro.any()
    x.flags.writeable = False
    add23(x, y)
    np.testing.assert_array_equal(y, x + np.float32(1))


# --------------------------------------------------------------------------- dtype rule


def test_non_singleton_descrs_accepted(add23: Entry) -> None:
    x, y = inputs23()
    unpickled = pickle.loads(pickle.dumps(x))
    assert unpickled.dtype is not np.dtype(np.float32)
    with_metadata = x.astype(np.dtype(np.float32, metadata={"unit": "m"}))
    assert with_metadata.dtype is not np.dtype(np.float32)
    for arr in (unpickled, with_metadata):
        y[...] = 0
        add23(arr, y)
        np.testing.assert_array_equal(y, x + np.float32(1))


def test_dtype_rule_native_and_python_agree() -> None:
    """For each (spec, array) dtype pair the native check accepts exactly what dtype_accepts does."""
    expected_kinds = [
        np.float32,
        np.float16,
        ml_dtypes.bfloat16,
        np.int64,
        np.int32,
        np.uint8,
        np.bool_,
    ]
    candidates = [
        np.dtype(t)
        for t in (
            np.float32,
            np.float64,
            np.float16,
            ml_dtypes.bfloat16,
            np.int64,
            np.longlong,
            np.int32,
        )
    ]
    candidates += [np.dtype(np.uint32), np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.bool_)]
    candidates += [np.dtype(">f4"), np.dtype(">i8"), pickle.loads(pickle.dumps(np.dtype(np.int64)))]
    candidates += [np.dtype("V2"), np.dtype([("a", np.float32)]), np.dtype(ml_dtypes.float8_e4m3fn)]
    assert np.dtype(np.longlong) is not np.dtype(np.int64)
    for spec_type in expected_kinds:
        spec = ArgSpec(np.dtype(spec_type), (2,))
        symbol = unique("noop")
        entry = make_entry(
            "d", [spec], symbol, target_ir=f'define void @"{symbol}"(ptr %p) {{\n  ret void\n}}\n'
        )
        for got in candidates:
            arr = np.zeros(2, got)
            accepts = dtype_accepts(spec.dtype, arr.dtype)
            try:
                entry(arr)
                native = True
            except TypeError as error:
                assert "argument 0: expected" in str(error)
                native = False
            assert native == accepts, (spec.dtype, got)
    assert dtype_accepts(np.dtype(np.int64), np.dtype(np.longlong))
    assert not dtype_accepts(np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
    assert not dtype_accepts(np.dtype(np.int32), np.dtype(np.uint32))


def test_spec_validation() -> None:
    assert f32(2, 3).shape == (2, 3) and f32(2, 3).dtype is np.dtype(np.float32)
    assert ArgSpec(np.float32, [2, 3]).shape == (2, 3)
    with pytest.raises(ValueError, match="negative"):
        f32(-1)
    for bad in (object, ">f4", [("a", np.float32)], "U3", "V4"):
        with pytest.raises(TypeError, match="ArgSpec"):
            ArgSpec(np.dtype(bad), (1,))
    with pytest.raises(TypeError, match="ArgSpec"):
        make_entry("bad", [(np.float32, (1,))], "nothing")
    with pytest.raises(ValueError, match="does not define"):
        make_entry(
            "bad", [f32(1)], "missing", target_ir='define void @"other"(ptr %p) {\n  ret void\n}\n'
        )


def test_repr_and_signature(add23: Entry) -> None:

    assert isinstance(add23, Entry)
    assert repr(add23) == "<ember entry g(f32[2,3] C-contiguous, f32[2,3] C-contiguous writable)>"
    assert str(inspect.signature(add23.native)) == "(a0, a1, /)"
    assert "a1: f32[2,3] C-contiguous writable" in add23.native.__doc__


# --------------------------------------------------------------------------- lifetime and leaks


def test_no_reference_leaks(add23: Entry) -> None:
    x, y = inputs23()
    bad = x.reshape(3, 2)
    before = [sys.getrefcount(o) for o in (x, y, bad, None)]
    for _ in range(10000):
        add23(x, y)
    after_calls = [sys.getrefcount(o) for o in (x, y, bad, None)]
    for _ in range(10000):
        with contextlib.suppress(ValueError):
            add23(bad, y)
    after_errors = [sys.getrefcount(o) for o in (x, y, bad, None)]
    assert before[:3] == after_calls[:3] == after_errors[:3]
    # None's count moves with unrelated interpreter activity; a missing decref would add 10000.
    assert abs(after_calls[3] - before[3]) < 100 and abs(after_errors[3] - before[3]) < 100


def test_dropped_entries_free_their_code_and_later_compiles_work() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for _ in range(3):
        symbol = unique("drop")
        entry = make_entry(
            "drop", [f32(2, 3), f32(2, 3, writable=True)], symbol, target_ir=add_one_ir(symbol, 6)
        )
        y = np.zeros_like(x)
        entry(x, y)
        np.testing.assert_array_equal(y, x + 1)
        del entry
        gc.collect()


# --------------------------------------------------------------------------- cost


def _per_call_us(stmt: str, env: dict, number: int = 20000, repeat: int = 7) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=repeat, globals=env)) / number * 1e6


def test_call_cost() -> None:
    """Per-call cost of the entry against ctypes (printed; performance is never asserted)."""
    symbol = unique("cost")
    callee = target.jit(add_one_ir(symbol, 16))
    target.add_symbol(symbol, callee.address(symbol))
    specs = [f32(16), f32(16, writable=True)]
    x, y = np.ones(16, np.float32), np.zeros(16, np.float32)
    entry = make_entry("cost", specs, symbol)
    env = {
        "x": x,
        "y": y,
        "entry": entry,
        "native": entry.native,
        "entry_nogil": make_entry("cost_nogil", specs, symbol, release_gil=True),
        "fn": ctypes.CFUNCTYPE(None, ctypes.c_void_p)(callee.address(symbol)),
        "pointers": (ctypes.c_void_p * 2)(x.ctypes.data, y.ctypes.data),
        "Pointers": ctypes.c_void_p * 2,
    }
    rows = {
        "entry.native(x, y)": "native(x, y)",
        "entry(x, y)": "entry(x, y)",
        "entry(x, y), release_gil": "entry_nogil(x, y)",
        "ctypes f(ptrs), prebuilt": "fn(pointers)",
        "ctypes, x.ctypes.data per call": "fn(Pointers(x.ctypes.data, y.ctypes.data))",
        "numpy np.add(x, 1, out=y)": "np.add(x, 1, out=y)",
    }
    env["np"] = np
    for name, stmt in rows.items():
        print(f"{name:34s} {_per_call_us(stmt, env):.3f} us")
    np.testing.assert_array_equal(y, x + 1)
