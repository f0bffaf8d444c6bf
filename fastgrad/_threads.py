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
* GNU OpenMP's workers spin only briefly before sleeping (``GOMP_SPINCOUNT``, see _jit);
* a process forked after the parent ran parallel kernels on GNU OpenMP runs them on one
  thread (same results; GNU OpenMP cannot run a team after a fork; see _jit).

:func:`set_num_threads` caps both pools together, e.g. to 1 per worker when fastgrad
runs in several Python threads or processes at once.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from fastgrad import _jit


def _blas_controller():
    # np.dot in compiled code calls scipy's BLAS, a library apart from numpy's; load it
    # first, or a limit set now would miss it when Numba loads it later.
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController  # imported lazily: it scans loaded libraries
    return ThreadpoolController()


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in Numba's parallel kernels and in every loaded BLAS (numpy's and
    scipy's, which ``np.dot`` uses inside compiled code). ``n`` in [1, cores].

    Raises ``RuntimeError`` for ``n > 1`` in a process forked (``fork`` start method) from
    one that ran parallel kernels on GNU OpenMP: such a child computes on one thread.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
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


@contextmanager
def blas_phase():
    """Run the enclosed compiled calls with one Numba thread (thread-local, ~1 us to switch),
    leaving the cores to the BLAS products they alternate with."""
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
             "threads": info["num_threads"], "path": os.path.basename(info["filepath"])}
            for info in _blas_controller().info() if info["user_api"] == "blas"]
    return {"cores": os.cpu_count(), "numba_threading_layer": _jit.threading_layer(),
            "numba_threads": _jit.get_numba_threads(), "blas": blas}


def describe_threads() -> str:
    """One line for benchmark output, e.g. ``numba: omp x2 | blas: openblas x2, openblas x2``."""
    info = thread_info()
    blas = ", ".join(f"{b['library']} x{b['threads']}" for b in info["blas"]) or "none loaded"
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
