"""Thread policy: Numba's threads and the BLAS's threads take turns on the same cores.

fastgrad never calls BLAS from inside a Numba parallel region: a dense layer runs its
matrix product (BLAS threads) and then its fused elementwise pass (Numba threads), one
after the other. So by default both pools keep the core count and simply alternate.
When you run fastgrad from several Python threads at once, or next to other busy
processes, cap both with :func:`set_num_threads` (e.g. to 1 per worker thread).
"""
from __future__ import annotations

import os

from fastgrad import _jit


def _blas_controller():
    # np.dot in compiled code calls scipy's BLAS, a library apart from numpy's; load it
    # first, or a limit set now would miss it when Numba loads it later.
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController  # imported lazily: it scans loaded libraries
    return ThreadpoolController()


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in Numba's parallel kernels and in every loaded BLAS (numpy's and
    scipy's, which ``np.dot`` uses inside compiled code). ``n`` in [1, cores]."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    top = _jit.numba_max_threads()
    if not 1 <= n <= top:
        raise ValueError(f"n must be in [1, {top}] (the cores Numba was started with), got {n}")
    _jit.set_numba_threads(n)
    _blas_controller().limit(limits=n, user_api="blas")


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
