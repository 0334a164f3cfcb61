"""BLAS for generated native code: ``ember_sgemm`` / ``ember_dgemm`` callable from any JIT module.

Compiled matmuls call a BLAS straight from native code, with no Python on the way. This file
finds a CBLAS in the process, makes its gemm entry points visible to the JIT, and defines two
small wrappers with one fixed signature that generated IR declares (``declare_gemm``)::

    void ember_sgemm(i64 transA, i64 transB, i64 M, i64 N, i64 K, float alpha,
                     ptr A, i64 lda, ptr B, i64 ldb, float beta, ptr C, i64 ldc)
    void ember_dgemm(...the same with double...)

Both compute, row-major, ``C = alpha * op(A) @ op(B) + beta * C`` with ``op(X) = X.T`` when the
flag is non-zero; ``op(A)`` is M x K, ``op(B)`` is K x N, C is M x N, and each leading
dimension is the distance in elements between rows of the matrix as stored (at least its row
length: K or M for A, N or K for B, N for C). As in BLAS, ``beta == 0`` overwrites C without
reading it, so NaNs in an uninitialized C do not leak.

Decisions:

- **Which library.** numpy's wheel bundles OpenBLAS (``numpy.libs/libscipy_openblas64_-*.so``)
  and numpy is already a dependency, so that copy is used: importing numpy loads it, and
  threadpoolctl reports its path (it walks the loaded shared objects); failing that, numpy's
  ``numpy.libs`` / ``.dylibs`` folder is searched. A library is accepted when it exports one of
  the known CBLAS symbol sets (``_ABIS``): ``scipy_cblas_sgemm64_`` (numpy >= 2, ILP64),
  ``cblas_sgemm64_`` (the ``openblas64_`` of numpy 1.x wheels, ILP64), ``scipy_cblas_sgemm``
  (scipy-openblas32, LP64) or a plain ``cblas_sgemm`` (LP64 unless OpenBLAS says
  ``USE64BITINT``). Measured with ctypes
  calls of each library's sgemm at M=512 K=784 N=512 on this 2-core AMD EPYC (znver3) host,
  best of 7 blocks, in separate processes: numpy's OpenBLAS 0.3.31 93 GFLOP/s at 1 thread and
  182 at 2; the ``scipy-openblas32`` 0.3.34 wheel 92 and 182; ``scipy-openblas64`` 0.3.34 93
  and 183. No difference, so no new dependency.
- **ABI.** In the CBLAS interface the order and transpose arguments are C enums (``i32``:
  CblasRowMajor=101, CblasNoTrans=111, CblasTrans=112) and the sizes are ``blasint``, which is
  ``int64`` in the ILP64 (``64_``-suffixed) builds. With an LP64 library the wrappers truncate
  the sizes to ``i32``, so each size and leading dimension must then stay below 2**31.
- **Symbols.** The CBLAS functions are registered with ``target.add_symbol`` under private names
  (``__ember_sgemm_cblas``/``__ember_dgemm_cblas``), never under their own, so a library loaded
  later neither shadows them nor is shadowed. The wrappers are one JIT module kept alive for
  the process; their addresses are registered as ``ember_sgemm``/``ember_dgemm``.
- **Empty products are handled in the wrapper.** M or N <= 0 returns at once; K <= 0 scales C
  by beta (zero when beta is 0) without calling BLAS. The BLAS interface asks for leading
  dimensions >= 1, which an empty contiguous operand (M x 0, leading dimension 0) does not
  meet; OpenBLAS 0.3.31 accepts it when K = 0, but a BLAS that enforces the rule reports an
  error and skips the product, so the wrapper does not depend on it.
- **Threads.** ``ember.runtime.threads`` sizes every BLAS pool in the process (the policy:
  defaults, ``set_num_threads``); this file does not repeat it. ``blas_threads`` and
  ``set_blas_threads`` read and set the pool of the one library the wrappers call, through
  threadpoolctl's controller for that file (codegen cannot import the runtime).

Measured (``benchmarks/blas_gemm.py``: M=512 K=784 N=512 float32, no transposes, median of 9
blocks of about 50 ms alternating between the two, this 2-core znver3 host): ``ember_sgemm``,
called from a JIT module, 92-93 GFLOP/s against 91-93 for ``np.matmul(out=...)`` at 1 thread;
181-185 against 184-185 at 2 threads in quiet runs (runs beside other work dropped either side
to 27-100). The wrapper adds one direct call to the same library: the same speed.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import llvmlite.ir as ir
import numpy
from threadpoolctl import LibController, ThreadpoolController

from . import target

__all__ = [
    "GEMM_SYMBOLS",
    "BlasInfo",
    "BlasUnavailableError",
    "blas_threads",
    "declare_gemm",
    "ensure_blas",
    "gemm_type",
    "set_blas_threads",
]

LEVEL = 0
"""The wrappers' LLVM optimization level: 0 (no IR passes, fast code generation) compiles in a
twentieth of the time of O3; they only pass their arguments on (and scale ``c`` when
``k == 0``)."""

#: The wrapper each dtype's matmul calls.
GEMM_SYMBOLS: dict[str, str] = {"f32": "ember_sgemm", "f64": "ember_dgemm"}

_ROW_MAJOR = 101
_NO_TRANS = 111
_TRANS = 112
_ARG_NAMES = (
    "trans_a",
    "trans_b",
    "m",
    "n",
    "k",
    "alpha",
    "a",
    "lda",
    "b",
    "ldb",
    "beta",
    "c",
    "ldc",
)


class BlasUnavailableError(RuntimeError):
    """No CBLAS with a known gemm symbol set could be found in the process."""


@dataclass(frozen=True)
class _Abi:
    """One naming scheme of CBLAS gemm symbols and the width of its integer arguments."""

    sgemm: str
    dgemm: str
    int_bits: int | None  # None: ask the library (plain cblas_* names)
    config: str | None  # OpenBLAS's openblas_get_config under this scheme


_ABIS: tuple[_Abi, ...] = (
    _Abi("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", 64, "scipy_openblas_get_config64_"),
    _Abi("cblas_sgemm64_", "cblas_dgemm64_", 64, "openblas_get_config64_"),
    _Abi("scipy_cblas_sgemm", "scipy_cblas_dgemm", 32, "scipy_openblas_get_config"),
    _Abi("cblas_sgemm", "cblas_dgemm", None, "openblas_get_config"),
)


@dataclass(frozen=True)
class BlasInfo:
    """The BLAS behind ``ember_sgemm``/``ember_dgemm``.

    ``path``: the shared library file; ``version``: its vendor and version (OpenBLAS's config
    string where it has one); ``sgemm``/``dgemm``: the CBLAS symbols called; ``int_bits``: 64
    for an ILP64 library, 32 for LP64; ``wrappers``: the symbols generated IR calls.
    """

    path: str
    version: str
    sgemm: str
    dgemm: str
    int_bits: int
    wrappers: tuple[str, str] = ("ember_sgemm", "ember_dgemm")


@dataclass
class _Loaded:
    info: BlasInfo
    library: ctypes.CDLL
    wrappers: target.JitModule


_LOCK = threading.Lock()
_loaded: _Loaded | None = None
_pool: LibController | None = None  # threadpoolctl's controller of that library


# ---------------------------------------------------------------------------------- finding


def _numpy_lib_dirs() -> list[str]:
    """Where numpy's wheels keep their bundled libraries (Linux, macOS, Windows)."""
    pkg = os.path.dirname(numpy.__file__)
    return [os.path.join(os.path.dirname(pkg), "numpy.libs"), os.path.join(pkg, ".dylibs")]


def _candidate_paths() -> Iterator[str]:
    """BLAS files to try, numpy's first: those threadpoolctl sees loaded, then numpy's folders."""
    numpy_dirs = [os.path.realpath(d) for d in _numpy_lib_dirs()]
    loaded = [
        lib["filepath"]
        for lib in ThreadpoolController().select(user_api="blas").info()
        if lib.get("filepath")
    ]
    in_numpy = tuple(d + os.sep for d in numpy_dirs)
    loaded.sort(key=lambda p: not os.path.realpath(p).startswith(in_numpy))
    yield from loaded
    for folder in numpy_dirs:
        yield from sorted(glob.glob(os.path.join(folder, "*openblas*")))


def _address(library: ctypes.CDLL, name: str) -> int | None:
    try:
        return ctypes.cast(getattr(library, name), ctypes.c_void_p).value
    except AttributeError:
        return None


def _openblas_config(library: ctypes.CDLL, abi: _Abi) -> str | None:
    if abi.config is None or _address(library, abi.config) is None:
        return None
    get_config = getattr(library, abi.config)
    get_config.restype = ctypes.c_char_p
    get_config.argtypes = []
    raw = get_config()
    return " ".join(raw.decode(errors="replace").split()) if raw else None


def _threadpool_version(path: str) -> str | None:
    for lib in ThreadpoolController().info():
        if lib.get("filepath") and os.path.realpath(lib["filepath"]) == os.path.realpath(path):
            return f"{lib.get('internal_api')} {lib.get('version')}"
    return None


def _probe(path: str) -> tuple[ctypes.CDLL, BlasInfo] | None:
    """Load ``path`` and describe it if it exports a gemm symbol set we know."""
    try:
        library = ctypes.CDLL(path)
    except OSError:
        return None
    for abi in _ABIS:
        if _address(library, abi.sgemm) is None or _address(library, abi.dgemm) is None:
            continue
        config = _openblas_config(library, abi)
        int_bits = abi.int_bits
        if int_bits is None:
            int_bits = 64 if config is not None and "USE64BITINT" in config else 32
        version = config or _threadpool_version(path) or "unknown CBLAS"
        return library, BlasInfo(path, version, abi.sgemm, abi.dgemm, int_bits)
    return None


def _find_blas() -> tuple[ctypes.CDLL, BlasInfo]:
    tried: list[str] = []
    for path in _candidate_paths():
        if path in tried:
            continue
        tried.append(path)
        found = _probe(path)
        if found is not None:
            return found
    raise BlasUnavailableError(
        "no CBLAS with gemm symbols found in the process or in numpy's bundled libraries "
        f"(tried: {', '.join(tried) or 'nothing'}); ember's compiled matmuls need numpy's "
        "OpenBLAS"
    )


# ----------------------------------------------------------------------------- wrapper IR

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_PTR = ir.PointerType()


def _float_type(dtype: str) -> ir.Type:
    if dtype == "f32":
        return ir.FloatType()
    if dtype == "f64":
        return ir.DoubleType()
    raise ValueError(f"BLAS gemm is available for 'f32' and 'f64', not {dtype!r}")


def gemm_type(dtype: str) -> ir.FunctionType:
    """The type of ``ember_sgemm`` (``"f32"``) or ``ember_dgemm`` (``"f64"``)."""
    f = _float_type(dtype)
    return ir.FunctionType(
        ir.VoidType(), [_I64, _I64, _I64, _I64, _I64, f, _PTR, _I64, _PTR, _I64, f, _PTR, _I64]
    )


def _cblas_type(dtype: str, int_bits: int) -> ir.FunctionType:
    f, n = _float_type(dtype), ir.IntType(int_bits)
    return ir.FunctionType(
        ir.VoidType(), [_I32, _I32, _I32, n, n, n, f, _PTR, n, _PTR, n, f, _PTR, n]
    )


def _scale_c(b: ir.IRBuilder, fn: ir.Function, f: ir.Type, m, n, beta, c, ldc) -> None:
    """Emit ``C[i, j] = beta * C[i, j]`` (0 where beta == 0) over M x N, then return."""
    zero = ir.Constant(f, 0.0)
    beta_zero = b.fcmp_ordered("==", beta, zero, name="beta_zero")
    entry = b.block
    row_head, col_body, row_next, done = (
        fn.append_basic_block(s) for s in ("row", "col", "row_next", "scaled")
    )
    b.branch(row_head)
    b.position_at_end(row_head)
    i = b.phi(_I64, name="i")
    i.add_incoming(ir.Constant(_I64, 0), entry)
    row = b.gep(c, [b.mul(i, ldc)], source_etype=f, name="row")
    b.branch(col_body)
    b.position_at_end(col_body)
    j = b.phi(_I64, name="j")
    j.add_incoming(ir.Constant(_I64, 0), row_head)
    p = b.gep(row, [j], source_etype=f, name="p")
    scaled = b.fmul(beta, b.load(p, typ=f), name="scaled")
    b.store(b.select(beta_zero, zero, scaled), p)
    j_next = b.add(j, ir.Constant(_I64, 1), name="j_next")
    j.add_incoming(j_next, col_body)
    b.cbranch(b.icmp_signed("<", j_next, n), col_body, row_next)
    b.position_at_end(row_next)
    i_next = b.add(i, ir.Constant(_I64, 1), name="i_next")
    i.add_incoming(i_next, row_next)
    b.cbranch(b.icmp_signed("<", i_next, m), row_head, done)
    b.position_at_end(done)
    b.ret_void()


def _cblas_symbol(wrapper: str) -> str:
    """The private name the CBLAS function behind ``wrapper`` is registered under."""
    return f"__{wrapper}_cblas"


def _define_wrapper(module: ir.Module, dtype: str, name: str, int_bits: int) -> None:
    """Define ``name`` (an ``ember_?gemm``) in ``module``: empty cases inline, else CBLAS."""
    fn = ir.Function(module, gemm_type(dtype), name)
    fn.attributes.add("nounwind")
    for arg, arg_name in zip(fn.args, _ARG_NAMES):
        arg.name = arg_name
    cblas = ir.Function(module, _cblas_type(dtype, int_bits), _cblas_symbol(name))
    ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    zero = ir.Constant(_I64, 0)
    empty = b.or_(b.icmp_signed("<=", m, zero), b.icmp_signed("<=", n, zero), name="empty")
    nonempty, no_k, call = (fn.append_basic_block(s) for s in ("nonempty", "no_k", "call"))
    ret = fn.append_basic_block("ret")
    b.cbranch(empty, ret, nonempty)
    b.position_at_end(ret)
    b.ret_void()
    b.position_at_end(nonempty)
    b.cbranch(b.icmp_signed("<=", k, zero), no_k, call)
    b.position_at_end(no_k)
    _scale_c(b, fn, _float_type(dtype), m, n, beta, c, ldc)
    b.position_at_end(call)

    def trans(flag: ir.Value) -> ir.Value:
        is_t = b.icmp_signed("!=", flag, zero)
        return b.select(is_t, ir.Constant(_I32, _TRANS), ir.Constant(_I32, _NO_TRANS))

    def size(v: ir.Value) -> ir.Value:
        return v if int_bits == 64 else b.trunc(v, ir.IntType(int_bits))

    args = [ir.Constant(_I32, _ROW_MAJOR), trans(ta), trans(tb), size(m), size(n), size(k)]
    args += [alpha, a, size(lda), bm, size(ldb), beta, c, size(ldc)]
    b.call(cblas, args)
    b.ret_void()


def _wrappers_module(info: BlasInfo, names: dict[str, str]) -> ir.Module:
    """The module defining a wrapper per dtype of ``names`` (``"f32"``/``"f64"`` to the
    wrapper's symbol) around ``info``'s gemm functions, declared under private names."""
    module = ir.Module(name="ember_blas")
    for dtype, name in names.items():
        _define_wrapper(module, dtype, name, info.int_bits)
    return module


def _compile_wrappers(
    library: ctypes.CDLL, info: BlasInfo, names: dict[str, str]
) -> target.JitModule:
    """Register ``info``'s gemm symbols privately and JIT a wrapper per dtype of ``names``.

    ``names`` maps ``"f32"``/``"f64"`` to the wrapper's symbol (``GEMM_SYMBOLS`` for the
    process-wide pair). The wrappers' own addresses are not registered here.
    """
    for dtype, name in names.items():
        symbol = info.sgemm if dtype == "f32" else info.dgemm
        target.add_symbol(_cblas_symbol(name), _address(library, symbol))
    return target.jit_mapped(
        _map_key(info, names),
        lambda: str(_wrappers_module(info, names)),
        name="ember_blas",
        speed_level=LEVEL,
    )


def _map_key(info: BlasInfo, names: dict[str, str]) -> str:
    """Where the disk cache maps the wrappers to their object code (`target.map_key`)."""
    return target.map_key("blas", info.int_bits, sorted(names.items()))


@functools.cache
def _found() -> tuple[ctypes.CDLL, BlasInfo, int]:
    """The library, what it is, and the address of its per-thread thread count (0: none)."""
    library, info = _find_blas()
    try:  # OpenBLAS >= 0.3.27: a thread count of the calling thread alone
        local = _address(library, "openblas_set_num_threads_local") or 0
    except (AttributeError, OSError, ValueError):
        local = 0
    return library, info, local


# ------------------------------------------------------------------------------ public API


def ensure_blas() -> BlasInfo:
    """Find the BLAS and register ``ember_sgemm``/``ember_dgemm`` for JIT modules (once)."""
    global _loaded
    with _LOCK:
        if _loaded is None:
            library, info, local = _found()
            wrappers = _compile_wrappers(library, info, GEMM_SYMBOLS)
            for name in GEMM_SYMBOLS.values():
                target.add_symbol(name, wrappers.address(name))
            if local:
                target.add_symbol(LOCAL_THREADS_SYMBOL, local)
            _loaded = _Loaded(info, library, wrappers)
        return _loaded.info


def pending_module() -> tuple[str, str, int] | None:
    """The wrappers' module as ``(text, name, level)`` while `ensure_blas` has yet to compile
    it (for `target.prefetch`), else None."""
    if _loaded is not None:
        return None
    _library, info, _local = _found()
    if target.is_mapped(_map_key(info, GEMM_SYMBOLS)):
        return None
    return str(_wrappers_module(info, GEMM_SYMBOLS)), "ember_blas", LEVEL


LOCAL_THREADS_SYMBOL = "ember_blas_threads_local"


def has_local_threads() -> bool:
    """Whether generated code may call ``int ember_blas_threads_local(int n)`` (the BLAS's
    thread count for the calling thread; returns the previous one): a compiled graph then runs
    each gemm panel single-threaded on its own pool thread, so a product does not depend on
    how many threads there are. (`ensure_blas` makes the symbol visible.)"""
    return bool(_found()[2])


def declare_gemm(module: ir.Module, dtype: str) -> ir.Function:
    """Declare ``ember_sgemm`` (``"f32"``) or ``ember_dgemm`` (``"f64"``) in ``module``.

    Makes sure the BLAS is registered (``ensure_blas``), so the module can be compiled with
    ``target.jit`` right away. Declaring twice returns the first declaration.
    """
    fnty = gemm_type(dtype)
    ensure_blas()
    name = GEMM_SYMBOLS[dtype]
    existing = module.globals.get(name)
    if existing is not None:
        if not isinstance(existing, ir.Function) or existing.function_type != fnty:
            raise ValueError(f"{name} is already defined in the module with another type")
        return existing
    fn = ir.Function(module, fnty, name)
    fn.attributes.add("nounwind")
    return fn


def _controller() -> LibController:
    """threadpoolctl's controller of the library the wrappers call."""
    global _pool
    if _pool is None:
        path = os.path.realpath(ensure_blas().path)
        for lib in ThreadpoolController().lib_controllers:
            if os.path.realpath(lib.filepath) == path:
                _pool = lib
                break
        else:
            raise BlasUnavailableError(f"threadpoolctl cannot control the thread pool of {path}")
    return _pool


def blas_threads() -> int:
    """The size of the thread pool of the BLAS behind ``ember_sgemm``/``ember_dgemm``."""
    return int(_controller().num_threads)


def set_blas_threads(n: int) -> None:
    """Run the BLAS behind ``ember_sgemm``/``ember_dgemm`` on ``n`` threads."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_blas_threads expects a positive int, got {n!r}")
    _controller().set_num_threads(n)
