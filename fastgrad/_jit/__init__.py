"""The one package that imports Numba: compile options, intrinsics and threading policy
(the IR-writing intrinsics live in :mod:`fastgrad._jit.intrinsics`).

Contributors: read CONTRIBUTING.md at the repository root first (house conventions).

Every compiled function in fastgrad is declared with :func:`kernel` (and its
scalar helpers with :func:`inline`), so the options below are set exactly once:

* ``cache=True`` -- compiled code is kept on disk across processes
  (``FASTGRAD_CACHE=0`` turns it off);
* ``no_cfunc_wrapper=True`` -- no C-callable wrapper per function (see ``NO_CFUNC_WRAPPER``);
  a kernel is called from Python, from compiled code, or by address (kernels/slots.py);
* ``error_model="numpy"`` -- division by zero gives inf/NaN instead of a Python
  exception check in every loop, which would stop loops from vectorizing;
* ``fastmath`` -- off by default: IEEE arithmetic, so NaN and inf propagate exactly as
  in NumPy, stable formulas such as ``(z - max) - log(sum)`` keep their written order,
  and a result is bit-identical whatever the context a function was compiled in. (With
  ``reassoc`` LLVM regroups ``z - max - log(sum)`` into ``z - (max + log(sum))``, 0
  instead of -ln 2 for ``log_softmax([1e8, 1e8])`` in float32; with ``reassoc`` or
  ``contract`` the grouping of a vectorized sum, or an FMA formed across a call, depends
  on whether LLVM inlined a callee, which differs between a fresh compile and one whose
  callees came from the disk cache, so the last bits changed between processes.) Sums
  that must be fast are written with explicit lanes (``fastgrad.kernels.reduce``), and
  the multiply-adds of hot loops (polynomials, optimizer updates) as :func:`muladd`, a fused
  multiply-add written into the code, which costs none of these guarantees.
  ``FASTGRAD_FASTMATH=1`` compiles with ``nsz``, ``arcp``, ``contract`` and
  ``FASTGRAD_FASTMATH=reassoc`` adds ``reassoc`` (both give up the guarantees above);
* ``parallel`` -- per kernel; ``FASTGRAD_PARALLEL=0`` compiles every kernel serial.

Threading: Numba's ``workqueue`` layer aborts when two Python threads enter
parallel code at once and costs ~35 us per parallel region, so fastgrad asks for a
thread-safe layer (OpenMP first, then TBB) unless the user chose one with
``NUMBA_THREADING_LAYER``. Numba's threads and the BLAS's threads share the cores:
see :mod:`fastgrad._threads` for the policy.
"""
from __future__ import annotations

import os

import numpy as np
import numba
from numba import njit, prange, types
from numba.extending import intrinsic, overload

__all__ = ("kernel", "inline", "spliced", "prange", "like", "ordered", "float_from_bits", "bits_from_float", "muladd", "lane_sum", "lane_dot", "lane_sum_ones_apart", "lane_max", "ROW_LANES", "by_float_type", "out_or_same", "matrix_view", "flat_view", "blas_gemm", "PARALLEL_MIN", "BLOCK", "n_blocks", "block_bounds",
           "numba_version", "threading_layer", "set_numba_threads", "get_numba_threads")


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


CACHE = _env_flag("FASTGRAD_CACHE", True)
PARALLEL = _env_flag("FASTGRAD_PARALLEL", True)

def _fastmath_flags():
    value = os.environ.get("FASTGRAD_FASTMATH", "0").strip().lower()
    if value == "reassoc":
        return {"nsz", "arcp", "contract", "reassoc"}
    return {"nsz", "arcp", "contract"} if _env_flag("FASTGRAD_FASTMATH", False) else False


FASTMATH = _fastmath_flags()
ERROR_MODEL = "numpy"

# Numba also compiles a C-callable wrapper of every function, for ``numba.cfunc``-style use
# (first-class function values): fastgrad never calls one (its calls by address use the
# native entry point, kernels/slots.py), and skipping them took about 1 s off a cold first fit.
NO_CFUNC_WRAPPER = True

# Below this many elements a kernel takes its serial branch: a parallel region
# costs a few microseconds even with OpenMP, more than the work it would split.
# Above it, work is cut into blocks of BLOCK elements handed out by ``prange``.
PARALLEL_MIN = 32768
BLOCK = 8192

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
    numba.config.THREADING_LAYER = "threadsafe"

numba_version = numba.__version__

if numba.config.DISABLE_JIT:  # every kernel, intrinsic and cache hook needs the compiler
    raise ImportError("fastgrad's kernels need Numba's compiler, which NUMBA_DISABLE_JIT=1 turns off: unset it "
                      "(to step through your own Loss or ActivationFn in Python, build the model with "
                      "backend='reference' and plain Python functions)")


KERNELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels")


# Numba's own settings that change the machine code of a cached function but that Numba leaves
# out of its cache index (it keys only the signature, the CPU and its features): code compiled
# with NUMBA_BOUNDSCHECK=1 or NUMBA_DEBUGINFO=1 was loaded by every later plain process (a
# 784-256-128-10 training step ran 2.8x slower). NUMBA_OPT=0 code is never cached by Numba.
NUMBA_CODE_SWITCHES = ("BOUNDSCHECK", "DEBUGINFO_DEFAULT", "OPT", "LOOP_VECTORIZE", "SLP_VECTORIZE",
                       "ENABLE_AVX", "CPU_NAME", "CPU_FEATURES", "EXTEND_VARIABLE_LIFETIMES")


def numba_code_switches() -> tuple:
    """(name, value) of each of Numba's settings in NUMBA_CODE_SWITCHES, as this process read them."""
    return tuple((name, repr(getattr(numba.config, name, None))) for name in NUMBA_CODE_SWITCHES)


def numba_cache_dir() -> str:
    """``NUMBA_CACHE_DIR`` as this process's Numba reads it ("" when unset: Numba then caches
    beside the sources, or in the user-wide cache folder)."""
    return numba.config.CACHE_DIR or ""


def kernel_sources_digest(kernels_dir=KERNELS_DIR) -> str:
    """A digest of every kernel source file, of this package's files, of Numba's version and of every
    switch that changes generated code (fast-math flags, parallel, error model, cache, and
    Numba's own :data:`NUMBA_CODE_SWITCHES`)."""
    import hashlib
    digest = hashlib.sha1(numba_version.encode())
    switches = (sorted(FASTMATH) if FASTMATH else False, PARALLEL, ERROR_MODEL, numba_code_switches())
    digest.update(repr(switches).encode())
    names = sorted(n for n in os.listdir(kernels_dir) if n.endswith(".py"))
    here = os.path.dirname(os.path.abspath(__file__))  # this package: options, intrinsics
    paths = [os.path.join(kernels_dir, n) for n in names] + [
        os.path.join(here, n) for n in sorted(os.listdir(here)) if n.endswith(".py")]
    for path in paths:
        with open(path, "rb") as handle:
            digest.update(os.path.basename(path).encode() + handle.read())
    return digest.hexdigest()


# Numba re-validates a cached function against the stamp of its own file only, not the
# files of the functions it calls: after a change to kernels/activations.py, the cached
# training kernels (whose callees live there) would load stale machine code, seen here
# as a segfault. fastgrad's kernels are therefore stamped with the digest of all kernel
# sources *as this process read them*, so entries written by any process running other
# sources are ignored and rewritten.
SOURCES_DIGEST = kernel_sources_digest()


def _install_cache_locators():
    from numba.core import caching
    from fastgrad._cache import install
    install(caching, KERNELS_DIR, SOURCES_DIGEST)


try:  # every cache location Numba may choose is stamped and locked: see fastgrad/_cache.py
    _install_cache_locators()
except (ImportError, AttributeError):  # another Numba layout: its own per-file stamps apply
    pass


def _njit(func, **options):
    """``njit(**options)(func)``; where Numba finds no folder to cache it in (the package's, the
    ``NUMBA_CACHE_DIR`` and the user-wide cache folder all unwritable: a read-only install
    run by a user without a writable home), the same uncached, with one ``RuntimeWarning``:
    ``import fastgrad`` failed there with Numba's "no locator available". From then on
    :data:`CACHE` is False, so nothing else counts on the disk cache (no second compile process)."""
    global CACHE
    options["cache"] = options.get("cache", False) and CACHE
    try:
        return njit(**options)(func)
    except RuntimeError as exc:
        if not options["cache"] or "no locator available" not in str(exc):
            raise
    CACHE = False
    import warnings
    warnings.warn("fastgrad found no writable folder for its kernel cache (Numba: no locator available): "
                  "its kernels compile again in every process. Set NUMBA_CACHE_DIR to a writable folder "
                  "to keep them, or FASTGRAD_CACHE=0 to compile without a cache and without this warning",
                  RuntimeWarning, stacklevel=2)
    return njit(**dict(options, cache=False))(func)


def kernel(func=None, *, parallel: bool = False, cache: bool = True):
    """Compile ``func`` in nopython mode with fastgrad's options (see module doc).

    ``cache=False`` is for kernels that take a compiled function as an argument: Numba
    keys such a signature on the function object, so an on-disk entry is never found
    again in a new process and the cache index only grows.
    """
    def wrap(f):
        return _without_literals(_njit(f, cache=cache, no_cfunc_wrapper=NO_CFUNC_WRAPPER, parallel=parallel and PARALLEL,
                                       fastmath=FASTMATH, error_model=ERROR_MODEL, nogil=True))
    return wrap(func) if func is not None else wrap


def is_compiled(fn) -> bool:
    """Whether ``fn`` is a Numba-compiled function (a CPU dispatcher, e.g. from ``@numba.njit``)."""
    from numba.core.registry import CPUDispatcher
    return isinstance(fn, CPUDispatcher)


def recompiled(dispatcher, py_func):
    """``py_func`` compiled with ``dispatcher``'s options (and its literal-free typing), but
    not cached: for copies of kernels that call a user's function (kernels/custom.py)."""
    copy = njit(**{k: v for k, v in dispatcher.targetoptions.items() if k != "nopython"})(py_func)
    return _without_literals(copy) if "get_call_template" in vars(dispatcher) else copy


def _without_literals(dispatcher):
    """``dispatcher``, typed on plain types when called from compiled code: Numba would
    otherwise compile a separate version for each constant argument (``f(x, 0, n)`` and
    ``f(x, lo, hi)``, ``g(True)`` and ``g(flag)`` are two compiles each; 28 of a first fit's
    147 compiles were such duplicates). LLVM still propagates a constant into a callee it
    inlines."""
    typed_on = dispatcher.get_call_template

    def get_call_template(args, kws):
        return typed_on(tuple(types.unliteral(a) for a in args), {k: types.unliteral(v) for k, v in kws.items()})
    dispatcher.get_call_template = get_call_template
    return dispatcher


def inline(func):
    """A helper of the kernels (same options as :func:`kernel`), compiled once per signature
    and cached on its own; LLVM inlines it into its callers where that pays (every small
    scalar helper called in a loop), so loops that call it still vectorize.

    Not Numba's ``inline="always"``: that re-types the helper's body at every call site, and
    helpers calling helpers multiplied the cost (a cold first fit compiled 126 s with it,
    about 75 s without, measured with ``bench/bench_compile.py``'s model). Without
    ``reassoc`` (see the module doc), where LLVM inlines changes no result bit.
    """
    return kernel(func)


def spliced(func):
    """A function whose body Numba pastes into each caller (``inline="always"``), for two kinds:

    * a scalar function that must be inlined into a vectorized loop whatever its size (the
      activations: LLVM's cost model declines ``tanh_grad``, and the loop that calls it
      runs 6x slower, measured), and a row helper called once per row of a short row
      (softmax's: a call per row cost 20% at rows of 100);
    * a driver with one or two call sites that calls many kernels: compiled on its own it
      would be a library that links and re-optimizes its whole call tree, which its caller
      then does again (Numba optimizes each library's module with every callee linked in).
    """
    return _njit(func, cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL, inline="always")


def ordered(func):
    """Like :func:`inline`, but compiled without ``reassoc``: for
    arithmetic whose order matters (Cody-Waite range reduction, compensated sums).

    LLVM still inlines the call, keeping each instruction's own flags, so loops that call
    it vectorize; a Numba-level inline would take on the caller's ``reassoc``, which may
    rewrite ``x - k*hi - k*lo`` as ``x - k*(hi + lo)``.
    """
    flags = FASTMATH - {"reassoc"} if FASTMATH else False
    return _without_literals(_njit(func, cache=True, no_cfunc_wrapper=NO_CFUNC_WRAPPER, fastmath=flags,
                                   error_model=ERROR_MODEL))


def like(x, c):
    """``c`` as a scalar of ``x``'s float type, inside compiled code.

    A float64 literal would promote float32 arithmetic to float64 (and ``exp``
    to its double-precision call); ``like(z, 0.5)`` keeps float32 float32.
    """
    return type(x)(c)


@overload(like, inline="always")
def _like_overload(x, c):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x, c: np.float32(c)
    if isinstance(x, types.Array) and x.dtype == types.float32:
        return lambda x, c: np.float32(c)
    return lambda x, c: np.float64(c)


@intrinsic
def float_from_bits(typingctx, bits):
    """The float whose IEEE-754 bits are ``bits`` (int32 -> float32, int64 -> float64), in
    compiled code: a bitcast, which LLVM vectorizes (used to build 2**k in kernels/mathfns.py)."""
    if bits == types.int32:
        sig, llvm_type = types.float32(types.int32), "float"
    elif bits == types.int64:
        sig, llvm_type = types.float64(types.int64), "double"
    else:
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        return builder.bitcast(args[0], ir.FloatType() if llvm_type == "float" else ir.DoubleType())
    return sig, codegen


@intrinsic
def bits_from_float(typingctx, x):
    """The IEEE-754 bits of ``x`` (float32 -> int32, float64 -> int64), in compiled code: the
    inverse of :func:`float_from_bits` (used to take a float's exponent apart in kernels/mathfns.py)."""
    if x == types.float32:
        sig, width = types.int32(types.float32), 32
    elif x == types.float64:
        sig, width = types.int64(types.float64), 64
    else:
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        return builder.bitcast(args[0], ir.IntType(width))
    return sig, codegen


@intrinsic
def muladd(typingctx, a, b, c):
    """``a * b + c`` in compiled code, as LLVM's ``llvm.fmuladd``: one fused multiply-add
    (one rounding) on a CPU with FMA instructions, a multiply and an add elsewhere. For the
    polynomials of kernels/mathfns.py and the other multiply-adds of hot elementwise loops.

    The fusion is written into the code, so it does not depend on the ``contract`` fast-math
    flag (off: see the module doc), nor on where LLVM inlines: a result is the same in every
    process and at every thread count on a given CPU. Without it the elementwise kernels ran
    0.90-1.88x (median 1.33x) the time they took under ``contract`` (``bench/fastmath_cost.py``,
    issue 9). All three arguments must have one float type.
    """
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        from numba.core import cgutils
        t = args[0].type
        name = "llvm.fmuladd.f32" if isinstance(t, ir.FloatType) else "llvm.fmuladd.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t, t]), name)
        return builder.call(fn, args)
    return a(a, b, c), codegen


def target_has_fma() -> bool:
    """Whether the CPU that Numba compiles for has FMA instructions, i.e. whether :func:`muladd`
    rounds once: the host's features, or ``NUMBA_CPU_FEATURES`` when ``NUMBA_CPU_NAME`` names
    another target (``generic``: no FMA, a multiply and an add). Every aarch64 CPU has FMA."""
    import platform
    name = numba.config.CPU_NAME
    if name in (None, "host"):
        if platform.machine().lower() in ("aarch64", "arm64"):
            return True
        from llvmlite import binding
        features = binding.get_host_cpu_features().flatten()
    else:
        features = numba.config.CPU_FEATURES or ""
    return "+fma" in features.split(",")


def blas_gemm(ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, one_zero):
    """In compiled code: the BLAS product ``C = op(A) @ op(B)`` of row-major matrices stored in
    1-D arrays of one float dtype: op(A) is (m, k) and starts at ``a[a_off]``, op(B) is (k, n)
    at ``b[b_off]``, C is (m, n) at ``c[c_off]``; ``lda``/``ldb``/``ldc`` are the row strides
    (in elements) of the stored matrices; ``ta``/``tb`` say that A/B are stored transposed
    ((k, m) and (n, k)); ``one_zero`` holds [1, 0] in the dtype (alpha and beta). C's
    previous values are not read. m, n, k >= 1. A product with one column or one row of
    contiguous values is a matrix-vector product (``?gemv``), as in Numba's ``np.dot``:
    ``?gemm`` took 3x as long for (2048, 64) @ (64, 1).

    It is the BLAS ``?gemm`` that Numba's own ``np.dot`` calls (scipy's, through Numba's
    ``numba_xxgemm`` helper, looked up by name, so the calling kernel stays cacheable), with
    the strides exposed so that a product can be cut into blocks (kernels/gemm.py). A
    row-major product is the column-major product of the transposes: C^T = op(B)^T op(A)^T."""
    raise TypeError("callable from compiled code only")


@overload(blas_gemm)
def _blas_gemm(ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, one_zero):
    from numba.np.linalg import ensure_blas
    ensure_blas()
    dtype = c.dtype
    if dtype not in (types.float32, types.float64):
        return None
    ptr = types.CPointer(dtype)
    xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
        types.char, types.char, types.char, types.intp, types.intp, types.intp,
        ptr, ptr, types.intp, ptr, types.intp, ptr, ptr, types.intp))
    xxgemv = types.ExternalFunction("numba_xxgemv", types.intc(   # unit strides
        types.char, types.char, types.intp, types.intp, ptr, ptr, types.intp, ptr, ptr, ptr))
    kind = np.int8(ord("s") if dtype == types.float32 else ord("d"))
    T, N = np.int8(ord("t")), np.int8(ord("n"))

    def impl(ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, one_zero):
        alpha, beta = one_zero.ctypes, one_zero[1:].ctypes
        if n == 1 and ldc == 1 and (tb or ldb == 1):      # C a contiguous column: y = op(A) x
            if ta:
                xxgemv(kind, N, m, k, alpha, a[a_off:].ctypes, lda, b[b_off:].ctypes, beta, c[c_off:].ctypes)
            else:
                xxgemv(kind, T, k, m, alpha, a[a_off:].ctypes, lda, b[b_off:].ctypes, beta, c[c_off:].ctypes)
        elif m == 1 and (not ta or lda == 1):             # C a row: y^T = op(B)^T x^T
            if tb:
                xxgemv(kind, T, k, n, alpha, b[b_off:].ctypes, ldb, a[a_off:].ctypes, beta, c[c_off:].ctypes)
            else:
                xxgemv(kind, N, n, k, alpha, b[b_off:].ctypes, ldb, a[a_off:].ctypes, beta, c[c_off:].ctypes)
        else:
            xxgemm(kind, T if tb else N, T if ta else N, n, m, k, alpha, b[b_off:].ctypes, ldb,
                   a[a_off:].ctypes, lda, beta, c[c_off:].ctypes, ldc)
    return impl


def out_or_same(same, out, lo, hi):
    """In compiled code: ``same`` when ``out`` is None (decided when compiling), else
    ``out[lo:hi]``. For loops that write either in place or into a separate buffer: in place,
    the loop then writes through the very value it reads, so LLVM needs no overlap check (a
    separate argument that happens to be the same array fails that check at run time and
    sends the loop down its scalar path)."""
    raise TypeError("callable from compiled code only")


@overload(out_or_same, inline="always")
def _out_or_same(same, out, lo, hi):
    if isinstance(out, (types.NoneType, types.Omitted)) or out is None:
        return lambda same, out, lo, hi: same
    return lambda same, out, lo, hi: out[lo:hi]


def by_float_type(impl32, impl64):
    """A compiled function of one float argument that runs ``impl32`` on float32 and
    ``impl64`` on float64, chosen when the caller is compiled (no branch at run time)."""
    def dispatch(x):
        raise TypeError("callable from compiled code only")

    @overload(dispatch, inline="always")
    def _dispatch(x):
        if isinstance(x, types.Float) and x.bitwidth == 32:
            return lambda x: impl32(x)
        if isinstance(x, types.Float):
            return lambda x: impl64(x)
        return None
    return dispatch


def threading_layer() -> str:
    """The threading layer Numba uses (forces the layer to load if it has not yet)."""
    try:
        return numba.threading_layer()
    except ValueError:
        _touch_parallel()
        return numba.threading_layer()


def _touch_parallel():
    from fastgrad.kernels.util import parallel_touch  # compiled lazily, on demand
    parallel_touch(np.zeros(4))


# GNU OpenMP is not fork-safe: in a child forked after the parent started Numba's ``omp``
# layer, Numba's own check kills the child (SIGTERM) at its first parallel region, and with
# that check passed, a region of more than one thread waits forever for the parent's
# threads. A region of one thread never touches that pool, so the child is made to run
# every parallel region on its calling thread: the same code, blocks and order as in the
# parent, hence the same results. ``forked_from_openmp()`` tells the thread policy.
_FORKED_FROM_OPENMP = False


def _after_fork_in_child():
    global _FORKED_FROM_OPENMP
    try:
        import ctypes
        from numba.np.ufunc import parallel
        if not parallel._is_initialized or numba.threading_layer() != "omp":
            return
        from numba.np.ufunc import omppool
        if getattr(omppool, "openmp_vendor", "GNU") != "GNU":
            return
        # launch_threads records the calling process as the pool's owner (Numba's fork
        # check then passes) and sets the default thread count of new threads to 1.
        ctypes.CFUNCTYPE(None, ctypes.c_int)(omppool.launch_threads)(1)
        numba.set_num_threads(1)
        _FORKED_FROM_OPENMP = True
    except Exception:  # another Numba layout: keep Numba's own behaviour
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked_from_openmp() -> bool:
    """True in a process forked from one whose Numba ran GNU OpenMP (one thread only here)."""
    return _FORKED_FROM_OPENMP


def set_numba_threads(n: int) -> None:
    numba.set_num_threads(int(n))


def get_numba_threads() -> int:
    return int(numba.get_num_threads())


def numba_max_threads() -> int:
    return int(numba.config.NUMBA_NUM_THREADS)


# The block helpers are compiled functions, so they live under kernels/; they are
# re-exported here because every kernel file imports its decorators from this module.
from fastgrad.kernels.util import block_bounds, n_blocks  # noqa: E402


from fastgrad._jit.intrinsics import (ROW_LANES, flat_view, lane_dot, lane_max, lane_sum,  # noqa: E402
                                      lane_sum_ones_apart, matrix_view)
