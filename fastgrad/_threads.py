"""Thread policy: Numba's threads and the BLAS's threads must not fight over the cores.

Measured on 2 cores: when a BLAS product and a Numba parallel pass alternate (a dense
layer, a training step), each pool's workers busy-wait after their turn and steal the
cores from the other: a 784-256-128-10 training step at batch 32 took 8 ms with both
pools at 2 threads, 0.8 ms with Numba at 1. So:

* work that alternates with BLAS -- the dense kernels, the model's forward, loss,
  training and evaluation -- runs its elementwise passes on the calling thread
  (:func:`blas_phase`), and the BLAS keeps every core for the products;
* pure elementwise kernels (activations, losses, optimizer updates, clipping,
  finite differences) use Numba's threads above 32768 elements;
* Numba's OpenMP workers keep GNU OpenMP's default wait policy (they spin a while after a
  parallel region before sleeping; fastgrad sets no ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``);
* a process forked after the parent ran parallel kernels on GNU OpenMP runs them on one
  thread (same results; GNU OpenMP cannot run a team after a fork; see _jit);
* the BLAS's threads follow the machine's load (:func:`follow_load`, run on entry to every
  :func:`blas_phase`, at most every 0.5 s): each BLAS worker busy-waits for its share of a
  product, so when other processes hold the cores a worker waits a whole scheduler slice for
  its turn. Measured here (bench/bench_threads.py, 784-256-128-10 at batch 32, two background
  processes each keeping a core busy): 891 ms per epoch with the BLAS at 2 threads, 258 ms at
  1. So the BLAS gets ``cores - round(others)`` threads (at least 1, at most what it had),
  ``others`` being the cores other processes used since the last look (``/proc/stat``, see
  fastgrad._cpu_load); on a quiet machine it keeps every core (batch 1024: 2 threads 57 ms, 1
  thread 96 ms). Results do not depend on the thread count, so this changes only speed.

:func:`set_num_threads` caps both pools together, e.g. to 1 per worker when fastgrad
runs in several Python threads or processes at once; a count set there (or a BLAS limit set
by someone else, such as ``threadpoolctl.threadpool_limits``) is kept: the load is followed only
under the default policy (``set_num_threads("auto")`` returns to it; ``FASTGRAD_FOLLOW_LOAD=0``
turns it off).
"""
from __future__ import annotations

import math
import os
import threading
import time
from contextlib import contextmanager

from fastgrad import _cpu_load, _jit


def _blas_controller():
    # np.dot in compiled code calls scipy's BLAS, a library apart from numpy's; load it
    # first, or a limit set now would miss it when Numba loads it later.
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController  # imported lazily: it scans loaded libraries
    return ThreadpoolController()


def set_num_threads(n) -> None:
    """Use ``n`` threads in Numba's parallel kernels and in every loaded BLAS (numpy's and
    scipy's, which ``np.dot`` uses inside compiled code). ``n`` in [1, cores], kept as given
    (the BLAS no longer follows the machine's load); ``"auto"``: every core again, and the
    default policy (the BLAS's threads follow the load, see :func:`follow_load`).

    Raises ``RuntimeError`` for ``n > 1`` in a process forked (``fork`` start method) from
    one that ran parallel kernels on GNU OpenMP: such a child computes on one thread.
    """
    if n == "auto" and isinstance(n, str):
        _LOAD.fixed = False
        _LOAD.ours = None
        n = _jit.numba_max_threads()
        if _jit.forked_from_openmp():
            n = 1
    elif isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int or 'auto', got {type(n).__name__}")
    else:
        _LOAD.fixed = True
    if n > 1 and _jit.forked_from_openmp():
        raise RuntimeError("this process was forked from one that ran fastgrad's parallel kernels on GNU "
                           "OpenMP, which cannot run more than one thread after a fork; it computes on one "
                           "thread. For parallel workers, start them with the 'spawn' start method "
                           "(multiprocessing.get_context('spawn'), or mp_context= in ProcessPoolExecutor)")
    top = _jit.numba_max_threads()
    if not 1 <= n <= top:
        raise ValueError(f"n must be in [1, {top}] (the cores Numba was started with), got {n}")
    _jit.set_numba_threads(n)
    _blas_controller().limit(limits=n, user_api="blas")


class _LoadFollower:
    """State of :func:`follow_load`: the last look at the machine and the count it set."""

    INTERVAL = 0.5  # seconds between looks

    def __init__(self):
        self.enabled = os.environ.get("FASTGRAD_FOLLOW_LOAD", "1").strip().lower() not in ("0", "false", "no", "off")
        self.fixed = False          # set_num_threads(n) was called: keep n
        self.last = _cpu_load.sample()
        self.ours = None            # the BLAS count this policy set last, None before it set one
        self.ceiling = None         # the most threads it may give the BLAS
        self.controller = None
        self.lock = threading.Lock()


_LOAD = _LoadFollower()


def blas_threads_for(others, cores, ceiling):
    """The BLAS's thread count when other processes use ``others`` cores of ``cores``: the
    cores they leave, rounded (``cores - floor(others + 1/2)``), within [1, ``ceiling``]."""
    return max(1, min(ceiling, cores - math.floor(others + 0.5)))


def follow_load() -> None:
    """Under the default policy, give the BLAS ``cores - round(others)`` threads, ``others`` the
    cores other processes used since the last look (at most every 0.5 s; a look costs ~30 us,
    the calls between looks ~0.2 us). The ceiling is the BLAS's count when the policy last
    found it changed by someone else (a ``threadpool_limits`` block, ``OPENBLAS_NUM_THREADS``):
    a lower limit set elsewhere is never raised. No-op without ``/proc/stat``, after
    :func:`set_num_threads` (n), with ``FASTGRAD_FOLLOW_LOAD=0``, or while another Python
    thread is looking."""
    state = _LOAD
    if not state.enabled or state.fixed or time.perf_counter() - state.last[2] < state.INTERVAL:
        return
    if not state.lock.acquire(blocking=False):
        return
    try:
        now = _cpu_load.sample()
        others = _cpu_load.others_use(state.last, now)
        state.last = now
        if others is None:
            return
        if state.controller is None:
            state.controller = _blas_controller()
        counts = [lib.num_threads for lib in state.controller.lib_controllers if lib.user_api == "blas"]
        if not counts:
            return
        current = max(counts)
        if state.ours is None or current != state.ours:   # first look, or changed by someone else
            state.ceiling = current
        want = blas_threads_for(others, os.cpu_count() or 1, state.ceiling)
        if want != current:
            state.controller.limit(limits=want, user_api="blas")
        state.ours = want
    finally:
        state.lock.release()


@contextmanager
def blas_phase():
    """Run the enclosed compiled calls with one Numba thread (thread-local, ~1 us to switch),
    leaving the cores to the BLAS products they alternate with; first, :func:`follow_load`."""
    follow_load()
    previous = _jit.get_numba_threads()
    if previous == 1:
        yield
        return
    _jit.set_numba_threads(1)
    try:
        yield
    finally:
        _jit.set_numba_threads(previous)


def get_num_threads() -> dict:
    """{"numba": threads of Numba's parallel kernels, "blas": the largest pool among the loaded BLAS}."""
    blas = [info["num_threads"] for info in _blas_controller().info() if info["user_api"] == "blas"]
    return {"numba": _jit.get_numba_threads(), "blas": max(blas) if blas else None}


def thread_info() -> dict:
    """What benchmarks print: cores, Numba threading layer and threads, each BLAS and its threads."""
    blas = [{"library": info["internal_api"], "version": info.get("version"),
             "threads": info["num_threads"], "path": os.path.basename(info["filepath"]),
             "package": _owning_package(info["filepath"])}
            for info in _blas_controller().info() if info["user_api"] == "blas"]
    return {"cores": os.cpu_count(), "numba_threading_layer": _jit.threading_layer(),
            "numba_threads": _jit.get_numba_threads(), "blas": blas}


def _owning_package(path):
    """The Python package whose wheel ships the library at ``path`` ("numpy" for
    ``.../numpy.libs/libscipy_openblas64_-*.so``), or None for a library from elsewhere."""
    folder = os.path.basename(os.path.dirname(path))
    return folder[:-len(".libs")] if folder.endswith(".libs") else None


def blas_label(blas) -> str:
    """``openblas x2 (numpy)``: a BLAS entry of :func:`thread_info`, its package when known."""
    return f"{blas['library']} x{blas['threads']}" + (f" ({blas['package']})" if blas.get("package") else "")


def describe_threads() -> str:
    """One line for benchmark output, e.g. ``numba: omp x2 | blas: openblas x2 (numpy), openblas x2 (scipy)``."""
    info = thread_info()
    blas = ", ".join(blas_label(b) for b in info["blas"]) or "none loaded"
    return (f"cores: {info['cores']} | numba: {info['numba_threading_layer']} x{info['numba_threads']}"
            f" | blas: {blas}")


class TrainingLock:
    """Held while a model trains: entering it when another thread holds it raises ``RuntimeError``."""

    def __init__(self, lock):
        self._lock = lock

    def __enter__(self):
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this model is already training in another thread; train a copy "
                               "(copy.deepcopy(model)) to train in parallel")
        return self

    def __exit__(self, *exc):
        self._lock.release()
        return False
