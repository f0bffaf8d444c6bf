"""Thread policy: one pool of threads for fastgrad's work, sized to the cores others leave.

* Inside fastgrad's compiled calls (:func:`blas_phase`: the dense kernels, the model's
  forward, loss, training and evaluation), every loaded BLAS runs on one thread and
  Numba's threads do all the work: the matrix products are cut into pieces fixed by their
  sizes and the machine's cores (kernels/gemm.py), each piece one single-threaded BLAS
  call, and the pieces (and the optimizer and functional layers' parallel passes) run on
  Numba's threads. So results do not depend on the thread count (OpenBLAS's products change
  in their last bits with its own thread count), and no second pool busy-waits while the
  first works (a 784-256-128-10 step at batch 32 took 8 ms with both pools at 2 threads,
  0.8 ms with one).
* The BLAS's count is process-wide, so it is held at one thread while any Python thread is in a
  fastgrad call (the first in sets it, the last out gives it back, :class:`_BlasHold`).
* The threads of a call: the calling thread's Numba count, at most the count fixed by
  :func:`set_num_threads` from any thread, at most the lowest count among the loaded BLAS
  (a ``threadpool_limits(1)`` around a fastgrad call keeps it on one thread, as it did when
  the BLAS ran the products, even one entered before scipy's BLAS was loaded), and, by
  default, at most the cores other processes leave (:func:`follow_load`):
  a worker that waits for a core other processes hold makes every piece wait, measured
  891 ms per 784-256-128-10 epoch at batch 32 with 2 threads against 258-281 ms with 1
  while two other processes kept the cores busy (bench/bench_threads.py). An int given to
  :func:`set_num_threads` (or ``FASTGRAD_FOLLOW_LOAD=0``) turns following off.
* Outside fastgrad's calls the BLAS's counts are the user's.
* Pure elementwise kernels (activations, losses, optimizer updates, clipping, finite
  differences) use Numba's threads above 32768 elements.
* Numba's OpenMP workers keep GNU OpenMP's default wait policy (they spin a while after a
  parallel region before sleeping; fastgrad sets no ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``).
* A process forked after the parent ran parallel kernels on GNU OpenMP runs them on one
  thread (same results; GNU OpenMP cannot run a team after a fork; see _jit).

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
    """Use ``n`` threads in Numba's parallel kernels (which run fastgrad's matrix products
    too) and in every loaded BLAS (numpy's and scipy's, for the user's own products). ``n``
    in [1, cores]; an int also turns off following the load (:func:`follow_load`).
    ``"auto"`` (the default state): every core, and during fastgrad's calls only the cores
    other processes leave. Results do not depend on the choice.

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
    _HOLD.set_counts(n)
    _LOAD.enabled = follow      # only once the call succeeded
    _LOAD.want = None
    _LOAD.fixed = None if follow else n


class _LoadFollower:
    """State of :func:`follow_load`: whether it is on, the last look at the machine, and the
    thread count it chose for fastgrad's calls (None: no limit of its own)."""

    INTERVAL = 0.5  # seconds between looks

    def __init__(self):
        self.enabled = os.environ.get("FASTGRAD_FOLLOW_LOAD", "1").strip().lower() not in ("0", "false", "no", "off")
        self.last = _cpu_load.sample()
        self.want = None
        self.fixed = None           # the count set_num_threads(int) fixed, for calls from every thread
        self.blas = None            # the loaded BLAS libraries' threadpoolctl controllers
        self.lock = threading.Lock()


_LOAD = _LoadFollower()


def threads_for(others, cores):
    """fastgrad's thread count when other processes use ``others`` cores of ``cores``: the
    cores they leave, rounded (``cores - floor(others + 1/2)``), at least 1."""
    return max(1, cores - math.floor(others + 0.5))


def follow_load() -> None:
    """When on (the default; off after ``set_num_threads(int)`` or with
    ``FASTGRAD_FOLLOW_LOAD=0``), at most every 0.5 s, choose ``cores - round(others)`` threads
    for fastgrad's calls, ``others`` the cores other processes used since the last look
    (``/proc/stat``; a look costs ~30 us). :func:`blas_phase` applies the choice for the
    duration of each call only, and only downwards. Results do not depend on it (see the
    module doc). No-op without ``/proc/stat`` or while another Python thread is looking."""
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
            state.want = threads_for(others, os.cpu_count() or 1)
    finally:
        state.lock.release()


def _blas_libraries():
    """[(threadpoolctl controller, a function returning its thread count)] of the loaded BLAS.
    OpenBLAS's count is read by calling its C function directly (~0.3 us; threadpoolctl's
    property costs ~1 us, and every compiled call reads the counts twice)."""
    if _LOAD.blas is None:
        _LOAD.blas = [(lib, _count_reader(lib)) for lib in _blas_controller().lib_controllers
                      if lib.user_api == "blas"]
    return _LOAD.blas


def _count_reader(lib):
    # threadpoolctl's own lookup of the symbol, which knows the builds' prefixes and suffixes
    # (scipy's and numpy's wheels export scipy_openblas_get_num_threads64_)
    if getattr(lib, "internal_api", None) == "openblas" and getattr(lib, "threading_layer", None) != "openmp":
        try:
            reader = lib._get_symbol("openblas_get_num_threads")
        except Exception:  # a threadpoolctl without the helper
            reader = None
        if reader is not None and reader() == lib.num_threads:
            return reader
    return lambda: lib.num_threads


def _set_blas_threads(lib, n):
    # threadpoolctl >= 3.6 lets only one Python thread change OpenBLAS (its public setter does
    # nothing in the others); the hold below and set_num_threads change it from any thread
    getattr(lib, "_real_set_num_threads", lib.set_num_threads)(n)


class _BlasHold:
    """Every loaded BLAS held at one thread while any Python thread is inside a fastgrad call.

    A BLAS's thread count is process-wide: the first thread to enter saves the counts and sets
    them to 1, the last to leave gives them back. (A save and restore per call let one thread
    give back 2 threads while another was still in its products, and threadpoolctl's public
    setter did nothing outside the first Python thread that used it: a call from a worker thread
    then ran its pieces on the BLAS's own threads, with other bits in float32 and float64.)"""

    def __init__(self):
        self.lock = threading.Lock()
        self.depth = 0
        self.saved = []        # [(library, count before the hold)]
        self.lowest = None     # the lowest count among the loaded BLAS when the hold began

    def enter(self):
        """Start or join the hold; the lowest BLAS count before it (None: no BLAS loaded)."""
        with self.lock:
            if self.depth == 0:
                counts = [(lib, read()) for lib, read in _blas_libraries()]
                self.lowest = min(count for _, count in counts) if counts else None
                self.saved = [(lib, count) for lib, count in counts if count > 1]
                for lib, _ in self.saved:
                    _set_blas_threads(lib, 1)
            self.depth += 1
            return self.lowest

    def leave(self):
        with self.lock:
            self.depth -= 1
            if self.depth == 0:
                for lib, count in self.saved:
                    _set_blas_threads(lib, count)
                self.saved = []

    def set_counts(self, n):
        """:func:`set_num_threads`' BLAS part, from any Python thread: every loaded BLAS at ``n``
        threads now, or, while a hold is on, when it ends."""
        libs = [lib for lib in _blas_controller().lib_controllers if lib.user_api == "blas"]
        with self.lock:
            if self.depth == 0:
                for lib in libs:
                    _set_blas_threads(lib, n)
            else:
                self.saved = [(lib, n) for lib in libs if n > 1]
                self.lowest = n

    def reset_in_child(self):
        """After fork: no thread of the child is inside a call; give back what a parent's thread held."""
        self.lock = threading.Lock()
        saved, self.saved, self.depth = self.saved, [], 0
        for lib, count in saved:
            try:
                _set_blas_threads(lib, count)
            except Exception:   # the child keeps one BLAS thread: slower, same results
                pass


_HOLD = _BlasHold()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _HOLD.reset_in_child())


@contextmanager
def blas_phase():
    """Run the enclosed compiled calls with every loaded BLAS on one thread (held while any
    Python thread is inside such a call) and Numba's threads for the products' pieces and the
    parallel passes: the calling thread's Numba count, at most the count fixed by
    :func:`set_num_threads` (from any thread), at most the lowest BLAS count before the hold
    (a user's ``threadpool_limits``), at most the cores other processes leave when following
    the load. Every count is given back afterwards."""
    follow_load()
    lowest = _HOLD.enter()
    try:
        previous = _jit.get_numba_threads()
        threads = previous
        for cap in (lowest, _LOAD.fixed, _LOAD.want if _LOAD.enabled else None):
            if cap is not None:
                threads = min(threads, cap)
        if threads != previous:
            _jit.set_numba_threads(threads)
        try:
            yield
        finally:
            if threads != previous:
                _jit.set_numba_threads(previous)
    finally:
        _HOLD.leave()


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
            raise RuntimeError("this model is already training (in another thread, or this thread's fit or "
                               "train_step is running, e.g. a callback called fit); train a copy "
                               "(copy.deepcopy(model)) to train in parallel")
        return self

    def __exit__(self, *exc):
        self._lock.release()
        return False
