"""The one module that imports Numba: compile options and threading policy.

Contributors: read CONTRIBUTING.md at the repository root first (house conventions).

Every compiled function in fastgrad is declared with :func:`kernel` (and its
scalar helpers with :func:`inline`), so the options below are set exactly once:

* ``cache=True`` -- compiled code is kept on disk across processes
  (``FASTGRAD_CACHE=0`` turns it off);
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

# Below this many elements a kernel takes its serial branch: a parallel region
# costs a few microseconds even with OpenMP, more than the work it would split.
# Above it, work is cut into blocks of BLOCK elements handed out by ``prange``.
PARALLEL_MIN = 32768
BLOCK = 8192

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
    numba.config.THREADING_LAYER = "threadsafe"

numba_version = numba.__version__


KERNELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")


# Numba's own settings that change the machine code of a cached function but that Numba leaves
# out of its cache index (it keys only the signature, the CPU and its features): code compiled
# with NUMBA_BOUNDSCHECK=1 or NUMBA_DEBUGINFO=1 was loaded by every later plain process (a
# 784-256-128-10 training step ran 2.8x slower). NUMBA_OPT=0 code is never cached by Numba.
NUMBA_CODE_SWITCHES = ("BOUNDSCHECK", "DEBUGINFO_DEFAULT", "OPT", "LOOP_VECTORIZE", "SLP_VECTORIZE",
                       "ENABLE_AVX", "CPU_NAME", "CPU_FEATURES", "EXTEND_VARIABLE_LIFETIMES")


def numba_code_switches() -> tuple:
    """(name, value) of each of Numba's settings in NUMBA_CODE_SWITCHES, as this process read them."""
    return tuple((name, repr(getattr(numba.config, name, None))) for name in NUMBA_CODE_SWITCHES)


def kernel_sources_digest(kernels_dir=KERNELS_DIR) -> str:
    """A digest of every kernel source file, of this file, of Numba's version and of every
    switch that changes generated code (fast-math flags, parallel, error model, cache, and
    Numba's own :data:`NUMBA_CODE_SWITCHES`)."""
    import hashlib
    digest = hashlib.sha1(numba_version.encode())
    switches = (sorted(FASTMATH) if FASTMATH else False, PARALLEL, ERROR_MODEL, numba_code_switches())
    digest.update(repr(switches).encode())
    names = sorted(n for n in os.listdir(kernels_dir) if n.endswith(".py"))
    paths = [os.path.join(kernels_dir, n) for n in names] + [os.path.abspath(__file__)]
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


def kernel(func=None, *, parallel: bool = False, cache: bool = CACHE):
    """Compile ``func`` in nopython mode with fastgrad's options (see module doc).

    ``cache=False`` is for kernels that take a compiled function as an argument: Numba
    keys such a signature on the function object, so an on-disk entry is never found
    again in a new process and the cache index only grows.
    """
    def wrap(f):
        return _without_literals(njit(cache=cache and CACHE, parallel=parallel and PARALLEL, fastmath=FASTMATH,
                                      error_model=ERROR_MODEL, nogil=True)(f))
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
    return njit(cache=CACHE, fastmath=FASTMATH, error_model=ERROR_MODEL, inline="always")(func)


def ordered(func):
    """Like :func:`inline`, but compiled without ``reassoc``: for
    arithmetic whose order matters (Cody-Waite range reduction, compensated sums).

    LLVM still inlines the call, keeping each instruction's own flags, so loops that call
    it vectorize; a Numba-level inline would take on the caller's ``reassoc``, which may
    rewrite ``x - k*hi - k*lo`` as ``x - k*(hi + lo)``.
    """
    flags = FASTMATH - {"reassoc"} if FASTMATH else False
    return _without_literals(njit(cache=CACHE, fastmath=flags, error_model=ERROR_MODEL)(func))


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


ROW_LANES = 16  # the lanes of lane_sum, lane_dot, lane_max and lane_sum_ones_apart: a power of two


def _llvm_major():
    from llvmlite import binding
    return binding.llvm_version_info[0]


def _lane_loop(context, builder, arrays, array_types, start, n, combine, inits, fill):
    """IR of ``accs = combine(accs, loads)`` over the ``n`` elements of each array from flat index
    ``start``, ``ROW_LANES`` at a time: ``loads`` are ``<ROW_LANES x dtype>`` vectors, element i
    in lane i mod ROW_LANES; the last, partial chunk is a masked load whose missing lanes hold
    ``fill`` (no scalar remainder loop, and nothing read past the n elements)."""
    from llvmlite import ir
    from numba.core import cgutils
    elt = context.get_data_type(array_types[0].dtype)
    vec = ir.VectorType(elt, ROW_LANES)
    align = array_types[0].dtype.bitwidth // 8
    datas = [context.make_array(t)(context, builder, a).data for t, a in zip(array_types, arrays)]
    accs = [cgutils.alloca_once_value(builder, init) for init in inits]
    width = ir.Constant(n.type, ROW_LANES)
    full = builder.sdiv(n, width)

    def step(at, load):
        loads = [load(builder.gep(d, [at])) for d in datas]
        for acc, value in zip(accs, combine(builder, [builder.load(a) for a in accs], loads)):
            builder.store(value, acc)

    with cgutils.for_range(builder, full) as loop:
        step(builder.add(start, builder.mul(loop.index, width)),
             lambda p: builder.load(builder.bitcast(p, vec.as_pointer()), align=align))
    left = builder.sub(n, builder.mul(full, width))
    with builder.if_then(builder.icmp_signed(">", left, ir.Constant(n.type, 0))):
        lanes = ir.Constant(ir.VectorType(n.type, ROW_LANES), list(range(ROW_LANES)))
        bound = builder.insert_element(ir.Constant(lanes.type, ir.Undefined), left, ir.Constant(ir.IntType(32), 0))
        bound = builder.shuffle_vector(bound, bound, ir.Constant(ir.VectorType(ir.IntType(32), ROW_LANES), [0] * ROW_LANES))
        mask = builder.icmp_signed("<", lanes, bound)
        # the intrinsic's name carries its pointer type: "p0" where LLVM's pointers are opaque
        # (LLVM 17 on: llvmlite 0.45 on), "p0v16f32" for a typed pointer to the vector before
        vec_name = "v%df%d" % (ROW_LANES, array_types[0].dtype.bitwidth)
        opaque = _llvm_major() >= 17
        masked_load = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            vec, [vec.as_pointer(), ir.IntType(32), mask.type, vec]),
            "llvm.masked.load.%s.p0%s" % (vec_name, "" if opaque else vec_name))
        step(builder.add(start, builder.mul(full, width)),
             lambda p: builder.call(masked_load, [builder.bitcast(p, vec.as_pointer()), ir.Constant(ir.IntType(32), align),
                                                  mask, ir.Constant(vec, [fill] * ROW_LANES)]))
    return [builder.load(a) for a in accs]


def _fold_lanes_ir(builder, acc, combine):
    """The lanes combined pairwise, upper half onto lower half, until one is left."""
    from llvmlite import ir
    i32 = ir.IntType(32)
    w = ROW_LANES // 2
    while w >= 1:
        halves = [builder.shuffle_vector(acc, acc, ir.Constant(ir.VectorType(i32, w), list(range(k, k + w))))
                  for k in (0, w)]
        acc = combine(builder, *halves)
        w //= 2
    return builder.extract_element(acc, ir.Constant(i32, 0))


def _c_float_array(x):
    """A C-contiguous float array type (what the lane and view intrinsics take)."""
    return isinstance(x, types.Array) and x.layout == "C" and isinstance(x.dtype, types.Float)


def _lane_args(x, start, n):
    """The arguments of a lane intrinsic: a C-contiguous float array (any rank, addressed flat)
    and two integers of one type (the first element's flat index and the count)."""
    return _c_float_array(x) and isinstance(start, types.Integer) and start == n


def _doubles(value=0.0):
    from llvmlite import ir
    return ir.Constant(ir.VectorType(ir.DoubleType(), ROW_LANES), [value] * ROW_LANES)


def _widen(builder, signature, v):
    """A loaded vector as float64 lanes."""
    return v if signature.args[0].dtype.bitwidth == 64 else builder.fpext(v, _doubles().type)


def _fadd(b, lo, hi):
    return b.fadd(lo, hi)


def _lane_sum_codegen(context, builder, signature, args, products):
    n_arrays = 2 if products else 1

    def add(b, accs, loads):
        term = b.fmul(loads[0], loads[1]) if products else loads[0]
        return [b.fadd(accs[0], _widen(b, signature, term))]
    acc, = _lane_loop(context, builder, args[:n_arrays], signature.args[:n_arrays], args[n_arrays],
                      args[n_arrays + 1], add, [_doubles()], 0.0)
    return _fold_lanes_ir(builder, acc, _fadd)


@intrinsic
def lane_sum(typingctx, x, start, n):
    """In compiled code: the float64 sum of the ``n`` elements of the C-contiguous float array
    ``x`` from flat index ``start`` (a row of a 2-D array is its offset: no view to make), in
    an order fixed by the code, written as LLVM vectors: element i to lane i mod ROW_LANES,
    each lane in order (a last partial chunk masked, its missing lanes adding 0), then the
    lanes added pairwise, upper half onto lower half (``fastgrad.reference.reduce`` has the
    same order in NumPy). Vector code without ``reassoc``: Numba leaves LLVM's SLP vectorizer
    off, so scalar lanes stay scalar, and a loop over a lane array of 16 is unrolled, not
    vectorized. On softmax rows of 100: 4x the speed of the four scalar lanes it replaced."""
    if not _lane_args(x, start, n):
        return None
    return types.float64(x, start, n), lambda c, b, sig, args: _lane_sum_codegen(c, b, sig, args, False)


@intrinsic
def lane_dot(typingctx, x, y, start, n):
    """As :func:`lane_sum`, of the products ``x[i] * y[i]`` (rounded in x's dtype, never fused),
    both arrays from flat index ``start``."""
    if not (_lane_args(x, start, n) and x == y):
        return None
    return types.float64(x, y, start, n), lambda c, b, sig, args: _lane_sum_codegen(c, b, sig, args, True)


@intrinsic
def lane_sum_ones_apart(typingctx, e, start, n):
    """In compiled code: ``(sum of the entries other than 1, number of entries equal to 1)`` of
    the elements :func:`lane_sum` would add, both float64, the sum in its order (each entry
    equal to 1 adds 0; NaN entries are in the sum). For softmax: exp(z - max) is exactly 1 at
    the max, and the sum of the others keeps its relative accuracy when it is small (1 + rest
    would round it away)."""
    if not _lane_args(e, start, n):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        vec = ir.VectorType(context.get_data_type(signature.args[0].dtype), ROW_LANES)
        ones, zeros = ir.Constant(vec, [1.0] * ROW_LANES), ir.Constant(vec, [0.0] * ROW_LANES)

        def add(b, accs, loads):
            v = loads[0]
            unit = b.select(b.fcmp_ordered("==", v, ones), ones, zeros)   # counted in the dtype: exact
            return [b.fadd(accs[0], _widen(b, signature, b.fsub(v, unit))), b.fadd(accs[1], unit)]
        total, count = _lane_loop(context, builder, args[:1], signature.args[:1], args[1], args[2], add,
                                  [_doubles(), zeros], 0.0)
        count = _fold_lanes_ir(builder, count, _fadd)
        if signature.args[0].dtype.bitwidth != 64:
            count = builder.fpext(count, ir.DoubleType())
        return context.make_tuple(builder, signature.return_type, [_fold_lanes_ir(builder, total, _fadd), count])
    return types.UniTuple(types.float64, 2)(e, start, n), codegen


@intrinsic
def lane_max(typingctx, x, start, n):
    """In compiled code: the max of the elements :func:`lane_sum` would add, over its lanes (a max
    is exact in any order). A NaN is never taken (``v > acc`` is false for it); -inf if there
    is nothing else."""
    if not _lane_args(x, start, n):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        vec = ir.VectorType(context.get_data_type(signature.args[0].dtype), ROW_LANES)

        def larger(b, acc, v):
            return b.select(b.fcmp_ordered(">", v, acc), v, acc)
        acc, = _lane_loop(context, builder, args[:1], signature.args[:1], args[1], args[2],
                          lambda b, accs, loads: [larger(b, accs[0], loads[0])],
                          [ir.Constant(vec, [float("-inf")] * ROW_LANES)], float("-inf"))
        return _fold_lanes_ir(builder, acc, larger)
    return x.dtype(x, start, n), codegen


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


def _borrowed_view(context, builder, src_type, src, offset, shape, out_type):
    """IR of a C-contiguous array of ``out_type`` with ``shape`` over ``src``'s data from flat
    index ``offset``, sharing no reference count (its meminfo and parent are NULL)."""
    from numba.core import cgutils
    from numba.np.arrayobj import populate_array
    data = builder.gep(context.make_array(src_type)(context, builder, src).data, [offset])
    itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(src_type.dtype)))
    strides = [itemsize]
    for extent in reversed(shape[1:]):
        strides.insert(0, builder.mul(strides[0], extent))
    view = context.make_array(out_type)(context, builder)
    populate_array(view, data=data, shape=cgutils.pack_array(builder, shape),
                   strides=cgutils.pack_array(builder, strides), itemsize=itemsize, meminfo=None)
    return view._getvalue()


@intrinsic
def matrix_view(typingctx, buf, off, m, n):
    """In compiled code: the (m, n) C-contiguous view of the C-contiguous ``buf`` (any rank,
    addressed flat) from flat index ``off`` -- ``buf.reshape(-1)[off:off + m*n].reshape((m, n))``
    without the slice's reference count and the reshape's call (NRT's atomic increments and
    ``numba_attempt_nocopy_reshape`` were 4-5% of a small model's training step). Borrowed: valid
    while ``buf`` is, so only for views that live inside one compiled call (the work buffers'
    blocks); never returned to Python. No bounds check, like the kernels' loops."""
    if not (_c_float_array(buf) and all(isinstance(t, types.Integer) for t in (off, m, n))):
        return None
    out_type = types.Array(buf.dtype, 2, "C")

    def codegen(context, builder, signature, args):
        to_intp = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], signature.args[1:])]
        return _borrowed_view(context, builder, signature.args[0], args[0], to_intp[0], to_intp[1:], out_type)
    return out_type(buf, off, m, n), codegen


@intrinsic
def flat_view(typingctx, a):
    """In compiled code: the 1-D view of the C-contiguous array ``a`` (``a.reshape(-1)``),
    borrowed as :func:`matrix_view`'s."""
    if not _c_float_array(a):
        return None
    out_type = types.Array(a.dtype, 1, "C")

    def codegen(context, builder, signature, args):
        from numba.core import cgutils
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        size = context.get_constant(types.intp, 1)
        for extent in cgutils.unpack_tuple(builder, arr.shape, signature.args[0].ndim):
            size = builder.mul(size, extent)
        return _borrowed_view(context, builder, signature.args[0], args[0], context.get_constant(types.intp, 0),
                              [size], out_type)
    return out_type(a), codegen


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
