"""The native entry of a compiled graph: a JIT-compiled METH_FASTCALL builtin over numpy arrays.

A compiled graph is one native function ``void graph(ptr* ptrs)`` that takes an array of data
pointers (inputs, outputs, scratch). `make_entry` builds the Python-callable door to it: a
``builtin_function_or_method`` whose C function is generated here as LLVM IR. Per call it

1. checks ``nargs`` and, for each argument, in native code: exact type ``numpy.ndarray``
   (subclasses are refused), dtype, ndim, every dim, and the C-contiguous and aligned flags
   (plus writeable for outputs);
2. fills a stack array with the arguments' data pointers, then the ``extra`` addresses (ints
   baked in as constants: an arena base, a constant pool);
3. calls ``target_symbol`` with it (around ``PyEval_SaveThread``/``PyEval_RestoreThread`` when
   ``release_gil=True``) and returns None.

Key decisions:

- Fields are read straight from the ``PyArrayObject`` struct (data pointer, nd, dimensions,
  descr, flags), never through ``.ctypes.data`` (about 1 µs per array), at the offsets that
  `numpy_abi` verified against probe arrays when it was imported (it fails loudly if numpy's
  layout is not the known one).
- dtype check: first the descr pointer against the spec's builtin singleton (one compare);
  when that differs (unpickled arrays, dtypes with metadata, ``q`` against ``l``), the same
  scalar type object, or the same numeric kind (``biufc``), with the same element size and a
  native byte order is accepted. `dtype_accepts` is the same rule in Python, for the messages.
- The checks are one loop over the arguments driven by constant tables (a row per argument:
  dtype singleton, scalar type, element size, ndim, flag mask, kind, where its dims start;
  and all expected dims), so the IR has the same size for 2 arguments or 2000: compiling an
  entry takes 25 ms for 2 arguments, 32 ms for 100, 61 ms for 1000 (unrolled per-argument
  checks took 0.85 s at 100). LLVM unrolls the loop itself when the count is small.
- Errors: on any mismatch the native code calls a Python reporter with the same arguments
  (``PyObject_Vectorcall``); it finds the first bad argument and raises ``TypeError`` (count,
  type, dtype) or ``ValueError`` (shape, layout, read-only) saying, for instance,
  ``g: argument 1: expected f32[2,3] C-contiguous writable, got f32[3,2] C-contiguous``.
  The native function returns what the reporter returns (NULL with the exception set), so
  the success path holds no message-building code and the failure path no refcount logic.
- Python C API functions are declared by name and made visible to the JIT with
  `target.add_symbol`. Object addresses (``numpy.ndarray``, dtype singletons, None, the
  reporter, the extras) are read from two tables the code declares but does not define,
  ``<symbol>.checks`` and ``<symbol>.consts``; `make_entry` fills them in ctypes arrays and
  binds the names just before it loads the object. So the entry's text and object code hold
  no address of this process, and the disk cache can keep them (``cache=True``): a warm
  start loads the entry without running LLVM.
- `Entry` holds the builtin (``native``) and everything the generated code points at (the
  JIT engine, the ``PyMethodDef``, the reporter, the dtypes) as the builtin's ``__self__``.
  Each `make_entry` result is an instance of its own subclass of `Entry` whose ``__call__``
  is the builtin itself, so ``entry(x, y)`` reaches native code without a Python frame. That
  subclass is freed by the cyclic garbage collector (classes refer to themselves), so an
  entry's JIT code is released at the next collection after the last reference goes.

Measured (AMD znver3, Python 3.11, numpy 2.4, llvmlite 0.50; two f32[16] arrays; best of 7
timeit blocks of 20000 calls on a shared 2-core machine), as printed by
tests/codegen/llvm/test_entry.py::test_call_cost:

==========================================  ========
``entry.native(x, y)``                      0.034 µs
``entry(x, y)``                             0.070 µs
``entry(x, y)`` with ``release_gil=True``   0.108 µs
ctypes ``f(ptrs)``, prebuilt pointer array  0.31 µs
ctypes, pointers from ``x.ctypes.data``     3.6 µs
numpy ``np.add(x, 1, out=y)``               0.97 µs
==========================================  ========

Each further argument costs about 4 ns (100 arguments: 0.44 µs a call).
"""

from __future__ import annotations

import ctypes
import functools
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from ember.ir import dtypes as ember_dtypes

from . import target as jit_target
from .numpy_abi import ALIGNED, C_CONTIGUOUS, WRITEABLE, abi

__all__ = [
    "ArgSpec",
    "Entry",
    "check_table",
    "describe_array",
    "dtype_accepts",
    "entry_ir",
    "make_entry",
    "mismatch",
]

_METH_FASTCALL = 0x0080
_NUMERIC_KINDS = "biufc"
_FIRST_USER_TYPE_NUM = 256  # NPY_USERDEF: types registered by extensions such as ml_dtypes
_SWAPPED = ">" if sys.byteorder == "little" else "<"


# --------------------------------------------------------------------------- specs and messages


@dataclass(frozen=True)
class ArgSpec:
    """What one argument must be: dtype, exact shape, and whether it is written (an output)."""

    dtype: np.dtype
    shape: tuple[int, ...]
    writable: bool = False

    def __post_init__(self) -> None:
        dtype = np.dtype(self.dtype)
        shape = tuple(int(n) for n in self.shape)
        if any(n < 0 for n in shape):
            raise ValueError(f"ArgSpec: negative dim in shape {shape}")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise TypeError(f"ArgSpec: dtype {dtype} is not a plain element type")
        user_type = dtype.num >= _FIRST_USER_TYPE_NUM and dtype.kind == "V"  # ml_dtypes
        if not (dtype.kind in _NUMERIC_KINDS or user_type) or dtype.byteorder == _SWAPPED:
            raise TypeError(f"ArgSpec: dtype {dtype} is not a native numeric type")
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "shape", shape)

    def describe(self) -> str:
        """``f32[2,3] C-contiguous`` (``writable`` appended for outputs)."""
        text = f"{_short(self.dtype)}[{','.join(map(str, self.shape))}] C-contiguous"
        return text + " writable" if self.writable else text


def _short(dtype: np.dtype) -> str:
    for d in ember_dtypes.ALL_DTYPES:
        if dtype_accepts(d.np, dtype):
            return d.short
    return str(dtype)


def dtype_accepts(expected: np.dtype, got: np.dtype) -> bool:
    """Whether an array of dtype ``got`` passes the native check for ``expected``."""
    if got is expected or got is np.dtype(expected.type):
        return True
    if got.byteorder == _SWAPPED or got.itemsize != expected.itemsize:
        return False
    if got.type is expected.type:
        return True
    return expected.kind in _NUMERIC_KINDS and got.kind == expected.kind


def describe_array(value: object) -> str:
    """How an argument looks to the entry's checks: ``f64[2,3] C-contiguous`` or its type."""
    if type(value) is not np.ndarray:
        return type(value).__qualname__
    flags = value.flags
    text = f"{_short(value.dtype)}[{','.join(map(str, value.shape))}]"
    text += " C-contiguous" if flags.c_contiguous else " non-contiguous"
    if not flags.aligned:
        text += " misaligned"
    if not flags.writeable:
        text += " read-only"
    return text


def _argument_error(spec: ArgSpec, value: object) -> type[Exception] | None:
    """The error for one argument, or None when it passes."""
    if type(value) is not np.ndarray:
        return TypeError
    if not dtype_accepts(spec.dtype, value.dtype):
        return TypeError
    flags = value.flags
    ok = value.shape == spec.shape and flags.c_contiguous and flags.aligned
    if not ok or (spec.writable and not flags.writeable):
        return ValueError
    return None


def mismatch(name: str, specs: Sequence[ArgSpec], args: Sequence[object]) -> Exception:
    """The exception for the first argument (or the count) that fails ``specs``."""
    if len(args) != len(specs):
        return TypeError(f"{name}: expected {len(specs)} arguments, got {len(args)}")
    for i, (spec, value) in enumerate(zip(specs, args)):
        kind = _argument_error(spec, value)
        if kind is not None:
            got = describe_array(value)
            return kind(f"{name}: argument {i}: expected {spec.describe()}, got {got}")
    return RuntimeError(f"{name}: the native argument check failed on arguments that pass")


def _make_reporter(name: str, specs: tuple[ArgSpec, ...]):
    def report(*args: object) -> None:
        raise mismatch(name, specs, args)

    return report


# --------------------------------------------------------------------------- the IR


_I8, _I32, _I64, _PTR = ir.IntType(8), ir.IntType(32), ir.IntType(64), ir.PointerType()

# The C API functions the entry calls, by name; `_register_c_api` gives the JIT their addresses.
_C_API = {
    "PyObject_Vectorcall": ir.FunctionType(_PTR, [_PTR, _PTR, _I64, _PTR]),
    "PyEval_SaveThread": ir.FunctionType(_PTR, []),
    "PyEval_RestoreThread": ir.FunctionType(ir.VoidType(), [_PTR]),
    "Py_IncRef": ir.FunctionType(ir.VoidType(), [_PTR]),
}

# The consts table: these objects' addresses, then the entry's extra addresses.
CONSTS = ("ndarray", "None", "reporter")

# One row of the check table per argument, i64 fields in this order. ``kind`` is the numeric
# kind a same-size dtype may have (``ord('f')``) or 256, which no kind byte equals.
_ROW = ("descr", "typeobj", "elsize", "ndim", "mask", "kind", "dims_at")
_NO_KIND = 256


def _address(obj_or_function: Any) -> int:
    return ctypes.cast(obj_or_function, ctypes.c_void_p).value


def _register_c_api() -> None:
    for fn_name in _C_API:
        jit_target.add_symbol(fn_name, _address(getattr(ctypes.pythonapi, fn_name)))


_register_c_api()


def _i64(value: int) -> ir.Constant:
    return ir.Constant(_I64, value)


def check_table(specs: Sequence[ArgSpec]) -> tuple[list[int], list[int]]:
    """The rows (`_ROW` fields of each spec, flattened) and all expected dims, concatenated."""
    rows: list[int] = []
    dims: list[int] = []
    for spec in specs:
        dtype = spec.dtype
        mask = C_CONTIGUOUS | ALIGNED | (WRITEABLE if spec.writable else 0)
        kind = ord(dtype.kind) if dtype.kind in _NUMERIC_KINDS else _NO_KIND
        singleton = id(np.dtype(dtype.type))
        rows += [singleton, id(dtype.type), dtype.itemsize, len(spec.shape), mask, kind, len(dims)]
        dims += spec.shape
    return rows, dims


def _external_table(module: ir.Module, name: str) -> ir.GlobalVariable:
    """An ``i64`` table the module does not define: bound by name when it is loaded."""
    table = ir.GlobalVariable(module, ir.ArrayType(_I64, 0), name)
    table.linkage = "external"
    return table


def _constant_array(module: ir.Module, name: str, values: Sequence[int]) -> ir.GlobalVariable:
    typ = ir.ArrayType(_I64, max(1, len(values)))
    table = ir.GlobalVariable(module, typ, name)
    table.initializer = ir.Constant(typ, list(values) or [0])
    table.global_constant = True
    table.linkage = "private"
    table.unnamed_addr = True
    return table


class _EntryIR:
    """Emits the entry: one loop over the arguments driven by a constant check table, so the
    code (and its compile time) does not grow with the number of arguments. Every failed
    check branches to ``fail``, which hands the arguments to the reporter."""

    def __init__(self, module: ir.Module, symbol: str, specs: Sequence[ArgSpec]) -> None:
        self.module = module
        self.layout = abi()
        self.count = len(specs)
        _rows, dims = check_table(specs)
        # what this process's objects are (dtype singletons, numpy.ndarray, None, the
        # reporter, the extras) is read from two tables bound at load time, so the code
        # itself holds no address and its object code can be cached on disk
        self.rows = _external_table(module, f"{symbol}.checks")
        self.consts = _external_table(module, f"{symbol}.consts")
        self.dims = _constant_array(module, "dims", dims)
        self.fn = ir.Function(module, ir.FunctionType(_PTR, [_PTR, _PTR, _I64]), symbol)
        _self, self.args, self.nargs = self.fn.args
        self.b = ir.IRBuilder(self.fn.append_basic_block("start"))
        self.fail = self.fn.append_basic_block("fail")

    def block(self, name: str) -> ir.Block:
        return self.fn.append_basic_block(name)

    def declare(self, fn_name: str) -> ir.Function:
        existing = self.module.globals.get(fn_name)
        return existing or ir.Function(self.module, _C_API[fn_name], fn_name)

    def field(self, base: ir.Value, offset: int, typ: ir.Type, name: str) -> ir.Value:
        address = self.b.gep(base, [_i64(offset)], source_etype=_I8, inbounds=True)
        return self.b.load(address, name=name, typ=typ)

    def load_i64(self, table: ir.Value, index: ir.Value, name: str) -> ir.Value:
        at = self.b.gep(table, [index], source_etype=_I64, inbounds=True)
        return self.b.load(at, name=name, typ=_I64)

    def const(self, k: int, name: str) -> ir.Value:
        """Entry ``k`` of the consts table (`CONSTS`, then the extras), as a pointer."""
        return self.b.inttoptr(self.load_i64(self.consts, _i64(k), name), _PTR)

    def row(self, i: ir.Value, column: str) -> ir.Value:
        index = self.b.add(self.b.mul(i, _i64(len(_ROW))), _i64(_ROW.index(column)))
        return self.load_i64(self.rows, index, column)

    def check(self, condition: ir.Value, then: ir.Block) -> None:
        self.b.cbranch(condition, then, self.fail)
        self.b.position_at_end(then)

    def equal(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.icmp_unsigned("==", a, b)

    def as_int(self, pointer: ir.Value) -> ir.Value:
        return self.b.ptrtoint(pointer, _I64)

    def emit(self, ptrs: ir.Value) -> None:
        """The count check and the argument loop; ends positioned after the last argument."""
        b = self.b
        after = self.block("args.done")
        if self.count == 0:
            self.check(self.equal(self.nargs, _i64(0)), after)
            return
        head = self.block("arg")
        start = b.block
        self.check(self.equal(self.nargs, _i64(self.count)), head)
        i = b.phi(_I64, name="i")
        i.add_incoming(_i64(0), start)
        slot = b.gep(self.args, [i], source_etype=_PTR, inbounds=True)
        arr = b.load(slot, name="arr", typ=_PTR)
        ob_type = self.field(arr, self.layout.ob_type, _PTR, "ob_type")
        ndarray = self.as_int(self.const(CONSTS.index("ndarray"), "ndarray"))
        self.check(self.equal(self.as_int(ob_type), ndarray), self.block("dtype"))
        self.emit_dtype(arr, i)
        self.emit_layout(arr, i)
        data = self.field(arr, self.layout.data, _PTR, "data")
        b.store(data, b.gep(ptrs, [i], source_etype=_PTR, inbounds=True))
        i_next = b.add(i, _i64(1), name="i.next")
        i.add_incoming(i_next, b.block)
        b.cbranch(self.equal(i_next, _i64(self.count)), after, head)
        b.position_at_end(after)

    def emit_dtype(self, arr: ir.Value, i: ir.Value) -> None:
        """The descr is the singleton, or a same-size native-order twin (same type or kind)."""
        b, layout = self.b, self.layout
        descr = self.field(arr, layout.descr, _PTR, "descr")
        slow, twin, done = self.block("dtype.slow"), self.block("dtype.twin"), self.block("shape")
        b.cbranch(self.equal(self.as_int(descr), self.row(i, "descr")), done, slow)
        b.position_at_end(slow)
        elsize = self.field(
            descr, layout.descr_elsize, ir.IntType(8 * layout.descr_elsize_bytes), "elsize"
        )
        same_size = self.equal(
            b.zext(elsize, _I64) if layout.descr_elsize_bytes < 8 else elsize, self.row(i, "elsize")
        )
        order = self.field(descr, layout.descr_byteorder, _I8, "byteorder")
        native = b.icmp_unsigned("!=", order, ir.Constant(_I8, ord(_SWAPPED)))
        self.check(b.and_(same_size, native), twin)
        typeobj = self.field(descr, layout.descr_typeobj, _PTR, "typeobj")
        kind = b.zext(self.field(descr, layout.descr_kind, _I8, "kind"), _I64)
        same_type = self.equal(self.as_int(typeobj), self.row(i, "typeobj"))
        same_kind = self.equal(kind, self.row(i, "kind"))
        self.check(b.or_(same_type, same_kind), done)

    def emit_layout(self, arr: ir.Value, i: ir.Value) -> None:
        """ndim, the flags under the row's mask, then each dim against the dims table."""
        b, layout = self.b, self.layout
        ndim = self.row(i, "ndim")
        nd = b.zext(self.field(arr, layout.nd, _I32, "nd"), _I64)
        mask = self.row(i, "mask")
        flags = b.zext(self.field(arr, layout.flags, _I32, "flags"), _I64)
        good = b.and_(self.equal(nd, ndim), self.equal(b.and_(flags, mask), mask))
        self.check(good, self.block("dims"))
        dims_at = self.row(i, "dims_at")
        dims = self.field(arr, layout.dimensions, _PTR, "dimensions")
        loop, after = self.block("dim"), self.block("arg.ok")
        start = b.block
        b.cbranch(self.equal(nd, _i64(0)), after, loop)
        b.position_at_end(loop)
        k = b.phi(_I64, name="k")
        k.add_incoming(_i64(0), start)
        dim = self.load_i64(dims, k, "dim")
        want = self.load_i64(self.dims, b.add(dims_at, k), "want")
        self.check(self.equal(dim, want), self.block("dim.ok"))
        k_next = b.add(k, _i64(1), name="k.next")
        k.add_incoming(k_next, b.block)
        b.cbranch(self.equal(k_next, nd), after, loop)
        b.position_at_end(after)

    def emit_call(self, ptrs: ir.Value, target_symbol: str, release_gil: bool) -> None:
        b = self.b
        callee = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [_PTR]), target_symbol)
        if release_gil:
            state = b.call(self.declare("PyEval_SaveThread"), [], name="tstate")
            b.call(callee, [ptrs])
            b.call(self.declare("PyEval_RestoreThread"), [state])
        else:
            b.call(callee, [ptrs])
        none = self.const(CONSTS.index("None"), "none")
        b.call(self.declare("Py_IncRef"), [none])
        b.ret(none)

    def emit_fail(self) -> None:
        self.b.position_at_end(self.fail)
        vectorcall = self.declare("PyObject_Vectorcall")
        reporter = self.const(CONSTS.index("reporter"), "reporter")
        call_args = [reporter, self.args, self.nargs, ir.Constant(_PTR, None)]
        self.b.ret(self.b.call(vectorcall, call_args))


def entry_ir(
    symbol: str,
    specs: Sequence[ArgSpec],
    target_symbol: str,
    n_extra: int,
    *,
    release_gil: bool,
    target_ir: str | None = None,
) -> str:
    """The LLVM IR text of the entry ``symbol`` (plus ``target_ir``, the callee, if given).

    The text holds no address of this process: the entry reads the dtype and type objects
    from the table ``<symbol>.checks`` (`check_rows`) and ``numpy.ndarray``, ``None``, the
    reporter and the ``n_extra`` extra addresses from ``<symbol>.consts`` (`CONSTS` order),
    both bound when the object is loaded (`make_entry`).
    """
    module = ir.Module(name=symbol)
    gen = _EntryIR(module, symbol, specs)
    b = gen.b
    ptrs = b.alloca(ir.ArrayType(_PTR, max(1, len(specs) + n_extra)), name="ptrs")
    ptrs.type = _PTR
    gen.emit(ptrs)
    for k in range(n_extra):
        address = gen.const(len(CONSTS) + k, f"extra.{k}")
        b.store(address, b.gep(ptrs, [_i64(len(specs) + k)], source_etype=_PTR, inbounds=True))
    gen.emit_call(ptrs, target_symbol, release_gil)
    gen.emit_fail()
    if target_ir is None:
        return str(module)
    linked = llvm.parse_assembly(str(module))
    linked.link_in(llvm.parse_assembly(target_ir))
    if linked.get_function(target_symbol).is_declaration:
        raise ValueError(f"make_entry: target_ir does not define {target_symbol!r}")
    return str(linked)


# --------------------------------------------------------------------------- the Python object


class _PyMethodDef(ctypes.Structure):
    _fields_ = [
        ("ml_name", ctypes.c_char_p),
        ("ml_meth", ctypes.c_void_p),
        ("ml_flags", ctypes.c_int),
        ("ml_doc", ctypes.c_char_p),
    ]


_new_cfunction = ctypes.pythonapi.PyCFunction_NewEx
_new_cfunction.restype = ctypes.py_object
_new_cfunction.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]


@dataclass
class _Keepalive:
    """Everything the builtin's code and method record point at; the builtin's ``__self__``."""

    module: jit_target.JitModule
    method_def: _PyMethodDef
    name: bytes
    doc: bytes
    reporter: Any
    dtypes: tuple[np.dtype, ...]
    tables: tuple[Any, ...]  # the ctypes arrays the code's tables are bound to


class Entry:
    """A compiled graph's door: ``entry(*arrays)`` checks the arrays and runs the graph.

    ``native`` is the builtin itself (its ``__self__`` keeps the JIT code alive); each
    `make_entry` result is an instance of a subclass whose ``__call__`` is that builtin.
    """

    __slots__ = ("name", "specs", "extra", "release_gil", "native", "ir_text")

    name: str
    specs: tuple[ArgSpec, ...]
    extra: tuple[int, ...]
    release_gil: bool
    native: Any
    ir_text: str | None  # None: loaded through the disk cache's map without making it

    def __init__(
        self,
        name: str,
        specs: tuple[ArgSpec, ...],
        extra: tuple[int, ...],
        release_gil: bool,
        native: Any,
        ir_text: str | None,
    ) -> None:
        self.name, self.specs, self.extra = name, specs, extra
        self.release_gil, self.native, self.ir_text = release_gil, native, ir_text

    def __call__(self, *arrays: np.ndarray) -> None:
        return self.native(*arrays)

    @property
    def module(self) -> jit_target.JitModule:
        """The compiled module holding the entry (and the callee, when ``target_ir`` gave it)."""
        return self.native.__self__.module

    def __repr__(self) -> str:
        args = ", ".join(spec.describe() for spec in self.specs)
        return f"<ember entry {self.name}({args})>"


def _signature_doc(name: str, specs: Sequence[ArgSpec]) -> str:
    """A ``__text_signature__`` (positional-only ``a0, a1, ...``) and what each must be."""
    params = "".join(f", a{i}" for i in range(len(specs)))
    lines = "".join(f"\n  a{i}: {spec.describe()}" for i, spec in enumerate(specs))
    return f"{name}($module{params}, /)\n--\n\nRun the compiled graph {name!r} on:{lines}"


def entry_symbol(name: str) -> str:
    """The symbol of the entry `make_entry` compiles for ``name``."""
    return "ember_entry." + re.sub(r"[^A-Za-z0-9_.]", "_", name)


@functools.lru_cache(maxsize=64)
def entry_module(
    name: str,
    specs: tuple[ArgSpec, ...],
    target_symbol: str,
    n_extra: int,
    *,
    target_ir: str | None = None,
    release_gil: bool = False,
) -> tuple[str, str]:
    """The symbol and LLVM IR text `make_entry` compiles for these arguments (memoized: a
    compile asks for it once to hand it to `target.prefetch`, then `make_entry` again)."""
    symbol = entry_symbol(name)
    text = entry_ir(
        symbol, specs, target_symbol, n_extra, release_gil=release_gil, target_ir=target_ir
    )
    return symbol, text


def make_entry(
    name: str,
    specs: Sequence[ArgSpec],
    target_symbol: str,
    extra: Sequence[int] = (),
    *,
    target_ir: str | None = None,
    release_gil: bool = False,
    speed_level: int = 3,
    cache: bool = False,
    map_key: str | None = None,
) -> Entry:
    """Compile the native entry of ``target_symbol`` (``void (ptr)``) for arrays like ``specs``.

    ``target_symbol`` is resolved among the symbols given to `target.add_symbol`, or defined
    by ``target_ir`` (the callee's LLVM IR text, compiled into the same module). ``extra``
    addresses follow the argument pointers in the pointer array. With ``release_gil`` the
    callee runs without the GIL. ``speed_level`` is the LLVM optimization level of the module;
    with ``cache`` its object code goes through the disk cache (`target.jit`): the text holds
    no address of this process, and ``target_ir`` must not either. ``target_ir`` may be a
    function that returns the text: with ``map_key`` (`target.map_key` of everything the text
    depends on) a warm process loads the entry without making its text, and ``ir_text`` is
    None.
    """
    specs = tuple(specs)
    if not all(isinstance(spec, ArgSpec) for spec in specs):
        raise TypeError("make_entry: specs must be ArgSpec instances")
    extra = tuple(int(address) for address in extra)
    if any(not 0 <= address < 2**64 for address in extra):
        raise ValueError(f"make_entry: extra addresses must fit in 64 bits, got {extra}")
    reporter = _make_reporter(name, specs)
    symbol = entry_symbol(name)
    made: list[str] = []

    def make_text() -> str:
        callee = target_ir() if callable(target_ir) else target_ir
        made.append(
            entry_module(
                name, specs, target_symbol, len(extra), target_ir=callee, release_gil=release_gil
            )[1]
        )
        return made[-1]

    rows, _dims = check_table(specs)
    checks = (ctypes.c_int64 * max(1, len(rows)))(*rows)
    consts_values = [id(np.ndarray), id(None), id(reporter), *extra]
    consts = (ctypes.c_uint64 * len(consts_values))(*consts_values)
    tables = {
        f"{symbol}.checks": ctypes.addressof(checks),
        f"{symbol}.consts": ctypes.addressof(consts),
    }
    if map_key is not None:
        module = jit_target.jit_mapped(
            map_key, make_text, name=symbol, speed_level=speed_level, symbols=tables
        )
    else:
        module = jit_target.jit(
            make_text(), name=symbol, speed_level=speed_level, cache=cache, symbols=tables
        )
    text = made[-1] if made else None
    name_bytes = name.encode()
    doc = _signature_doc(name, specs).encode()
    method_def = _PyMethodDef(name_bytes, module.address(symbol), _METH_FASTCALL, doc)
    dtypes = tuple(np.dtype(spec.dtype.type) for spec in specs) + tuple(s.dtype for s in specs)
    keep = _Keepalive(module, method_def, name_bytes, doc, reporter, dtypes, (checks, consts))
    native = _new_cfunction(ctypes.addressof(method_def), keep, None)
    cls = type("Entry", (Entry,), {"__slots__": (), "__call__": native})
    return cls(name, specs, extra, release_gil, native, text)
