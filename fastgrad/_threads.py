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
* during fastgrad's calls, every loaded BLAS runs at the lowest count among them (a
  ``threadpool_limits`` block entered before scipy's BLAS was loaded limits only numpy's, and
  compiled ``np.dot`` calls scipy's);
* opt-in (``set_num_threads("auto")`` or ``FASTGRAD_FOLLOW_LOAD=1``), the BLAS's threads
  follow the machine's load during fastgrad's calls (:func:`follow_load`): each BLAS worker
  busy-waits for its share of a product, so when other processes hold the cores a worker
  waits a whole scheduler slice for its turn. Measured here (bench/bench_threads.py,
  784-256-128-10 at batch 32, two background processes each keeping a core busy): 891 ms per
  epoch with the BLAS at 2 threads, 258-281 ms at 1, 332 ms following the load. It is not the
  default because OpenBLAS's float32 products change in their last bits with its thread count
  (float64's do not), so float32 results would depend on other processes.

:func:`set_num_threads` caps both pools together, e.g. to 1 per worker when fastgrad
runs in several Python threads or processes at once.
"""
from __future__ import annotations

import math
import numbers
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
    scipy's, which ``np.dot`` uses inside compiled code). ``n`` in [1, cores]. ``"auto"``:
    every core, and the BLAS's threads follow the machine's load during fastgrad's calls
    (opt-in, see :func:`follow_load`: it makes float32 results depend on the load); an int
    turns that off again.

    Raises ``RuntimeError`` for ``n > 1`` in a process forked (``fork`` start method) from
    one that ran parallel kernels on GNU OpenMP: such a child computes on one thread.
    """
    follow = isinstance(n, str) and n == "auto"
    if follow:
        n = 1 if _jit.forked_from_openmp() else _jit.numba_max_threads()
    elif isinstance(n, bool) or not isinstance(n, numbers.Integral):
        got = repr(n) if isinstance(n, str) else type(n).__name__   # a misspelled 'auto' shows itself
        raise TypeError(f"n must be an int or 'auto', got {got}")
    n = int(n)   # an integer type of NumPy's too
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
    _LOAD.enabled = follow      # only once the call succeeded
    _LOAD.want = None


class _LoadFollower:
    """State of :func:`follow_load`: whether it is on, the last look at the machine, and the
    BLAS thread count it chose for fastgrad's calls (None: no limit of its own)."""

    INTERVAL = 0.5  # seconds between looks

    def __init__(self):
        self.enabled = os.environ.get("FASTGRAD_FOLLOW_LOAD", "0").strip().lower() in ("1", "true", "yes", "on")
        self.last = _cpu_load.sample()
        self.want = None
        self.blas = None            # the loaded BLAS libraries' threadpoolctl controllers
        self.lock = threading.Lock()


_LOAD = _LoadFollower()


def blas_threads_for(others, cores):
    """The BLAS's thread count when other processes use ``others`` cores of ``cores``: the
    cores they leave, rounded (``cores - floor(others + 1/2)``), at least 1."""
    return max(1, cores - math.floor(others + 0.5))


def follow_load() -> None:
    """When on (``set_num_threads("auto")`` or ``FASTGRAD_FOLLOW_LOAD=1``), at most every 0.5 s,
    choose ``cores - round(others)`` BLAS threads for fastgrad's calls, ``others`` the cores
    other processes used since the last look (``/proc/stat``; a look costs ~30 us).
    :func:`blas_phase` applies the choice for the duration of each call only, and only
    downwards. Off by default: OpenBLAS's float32 products change in their last bits with its
    thread count, so following the load would make float32 results depend on other processes
    (float64 products do not change). No-op without ``/proc/stat`` or while another Python
    thread is looking."""
    state = _LOAD
    if not state.enabled or time.perf_counter() - state.last[2] < state.INTERVAL:
        return
    if not state.lock.acquire(blocking=False):
        return
    try:
        now = _cpu_load.sample()
        others = _cpu_load.others_use(state.last, now)
        state.last = now
        if others is not None:
            state.want = blas_threads_for(others, os.cpu_count() or 1)
    finally:
        state.lock.release()


def _blas_libraries():
    if _LOAD.blas is None:
        _LOAD.blas = [lib for lib in _blas_controller().lib_controllers if lib.user_api == "blas"]
    return _LOAD.blas


def _cap_blas(want):
    """Lower every loaded BLAS to ``min(want, the lowest count among them)`` and return
    ``[(library, count before)]`` for :func:`blas_phase` to restore. The lowest count rules so
    that a limit set on one BLAS (``threadpool_limits`` entered before scipy's BLAS was loaded
    limits only numpy's) also holds for the one compiled code calls."""
    libs = _blas_libraries()
    counts = [lib.num_threads for lib in libs]
    if not counts:
        return []
    cap = min(counts) if want is None else min(want, min(counts))
    lowered = []
    for lib, count in zip(libs, counts):
        if count > cap:
            lib.set_num_threads(cap)
            lowered.append((lib, count))
    return lowered


@contextmanager
def blas_phase():
    """Run the enclosed compiled calls with one Numba thread (thread-local, ~1 us to switch),
    leaving the cores to the BLAS products they alternate with. Every loaded BLAS runs them
    at the lowest count among the loaded ones, lowered further by :func:`follow_load` when it
    is on, and gets its count back afterwards."""
    follow_load()
    lowered = _cap_blas(_LOAD.want if _LOAD.enabled else None)
    previous = _jit.get_numba_threads()
    if previous != 1:
        _jit.set_numba_threads(1)
    try:
        yield
    finally:
        if previous != 1:
            _jit.set_numba_threads(previous)
        for lib, count in lowered:
            lib.set_num_threads(count)


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
