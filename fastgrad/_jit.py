"""The one module that imports Numba: compile options and threading policy.

Contributors: read CONTRIBUTING.md at the repository root first (house conventions).

Every compiled function in fastgrad is declared with :func:`kernel` (and its
scalar helpers with :func:`inline`), so the options below are set exactly once:

* ``cache=True`` -- compiled code is kept on disk across processes
  (``FASTGRAD_CACHE=0`` turns it off);
* ``error_model="numpy"`` -- division by zero gives inf/NaN instead of a Python
  exception check in every loop, which would stop loops from vectorizing;
* ``fastmath`` -- only the flags that keep IEEE semantics for inf and NaN
  (``nsz``, ``arcp``, ``contract``, ``reassoc``): reductions vectorize, but NaN and
  inf still propagate exactly as in NumPy (``FASTGRAD_FASTMATH=0`` turns them off);
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

__all__ = ("kernel", "inline", "prange", "like", "ordered", "float_from_bits", "by_float_type", "PARALLEL_MIN", "BLOCK", "n_blocks", "block_bounds",
           "numba_version", "threading_layer", "set_numba_threads", "get_numba_threads")


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


CACHE = _env_flag("FASTGRAD_CACHE", True)
PARALLEL = _env_flag("FASTGRAD_PARALLEL", True)
FASTMATH = {"nsz", "arcp", "contract", "reassoc"} if _env_flag("FASTGRAD_FASTMATH", True) else False

# Below this many elements a kernel takes its serial branch: a parallel region
# costs a few microseconds even with OpenMP, more than the work it would split.
# Above it, work is cut into blocks of BLOCK elements handed out by ``prange``.
PARALLEL_MIN = 32768
BLOCK = 8192

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
    numba.config.THREADING_LAYER = "threadsafe"

numba_version = numba.__version__


def _kernel_cache_dirs(kernels_dir):
    """Where Numba keeps the on-disk cache of the files in ``kernels_dir``."""
    dirs = [os.path.join(kernels_dir, "__pycache__")]
    if numba.config.CACHE_DIR:
        try:
            from numba.core.caching import _UserProvidedCacheLocator as locator
            sub = locator.get_suitable_cache_subpath(os.path.join(kernels_dir, "__init__.py"))
            dirs.append(os.path.join(numba.config.CACHE_DIR, sub))
        except (ImportError, AttributeError):  # a Numba without this helper: default place only
            pass
    return dirs


def drop_stale_cache(kernels_dir=None) -> bool:
    """Delete Numba's cached kernels when any kernel source changed since they were written.

    Numba re-validates a cached function against its own file only, not the files of
    the functions it calls; a kernel whose callee changed in another file would load
    stale machine code (seen here as a segfault). A digest of every kernel source,
    stamped next to the cache, catches that. Returns True when the cache was dropped.
    """
    import hashlib
    if kernels_dir is None:
        kernels_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")
    digest = hashlib.sha1(numba_version.encode())
    for name in sorted(os.listdir(kernels_dir)) + [os.path.join("..", "_jit.py")]:
        if name.endswith(".py") and os.path.exists(os.path.join(kernels_dir, name)):
            with open(os.path.join(kernels_dir, name), "rb") as handle:
                digest.update(name.encode() + handle.read())
    stamp_text = digest.hexdigest()
    dropped = False
    for cache_dir in _kernel_cache_dirs(kernels_dir):
        stamp = os.path.join(cache_dir, "fastgrad-sources.sha1")
        try:
            with open(stamp) as handle:
                if handle.read() == stamp_text:
                    continue
        except OSError:
            pass
        try:
            os.makedirs(cache_dir, exist_ok=True)
            for name in os.listdir(cache_dir):
                if name.endswith((".nbi", ".nbc")):
                    os.unlink(os.path.join(cache_dir, name))
            with open(stamp, "w") as handle:
                handle.write(stamp_text)
            dropped = True
        except OSError:  # a read-only install: Numba then compiles in memory, nothing stale is read
            pass
    return dropped


if CACHE:
    drop_stale_cache()


def kernel(func=None, *, parallel: bool = False, cache: bool = CACHE):
    """Compile ``func`` in nopython mode with fastgrad's options (see module doc).

    ``cache=False`` is for kernels that take a compiled function as an argument: Numba
    keys such a signature on the function object, so an on-disk entry is never found
    again in a new process and the cache index only grows.
    """
    def wrap(f):
        return njit(cache=cache and CACHE, parallel=parallel and PARALLEL, fastmath=FASTMATH,
                    error_model="numpy", nogil=True)(f)
    return wrap(func) if func is not None else wrap


def inline(func):
    """A scalar helper inlined into the kernels that call it (same options as :func:`kernel`)."""
    return njit(cache=CACHE, fastmath=FASTMATH, error_model="numpy", inline="always")(func)


def ordered(func):
    """Like :func:`inline`, but compiled without ``reassoc`` and not inlined by Numba: for
    arithmetic whose order matters (Cody-Waite range reduction, compensated sums).

    LLVM still inlines the call, keeping each instruction's own flags, so loops that call
    it vectorize; a Numba-level inline would take on the caller's ``reassoc``, which may
    rewrite ``x - k*hi - k*lo`` as ``x - k*(hi + lo)``.
    """
    flags = FASTMATH - {"reassoc"} if FASTMATH else False
    return njit(cache=CACHE, fastmath=flags, error_model="numpy")(func)


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


def set_numba_threads(n: int) -> None:
    numba.set_num_threads(int(n))


def get_numba_threads() -> int:
    return int(numba.get_num_threads())


def numba_max_threads() -> int:
    return int(numba.config.NUMBA_NUM_THREADS)


# The block helpers are compiled functions, so they live under kernels/; they are
# re-exported here because every kernel file imports its decorators from this module.
from fastgrad.kernels.util import block_bounds, n_blocks  # noqa: E402
