"""The machine a benchmark ran on: CPU, cores, threads, BLAS, library versions, triad bandwidth."""
from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import time

import numpy as np

__all__ = ("cpu_model", "versions", "machine_info", "triad_gbps", "PEER_PACKAGES")

# distribution name -> the import the benchmark uses (reported "not installed" when absent)
PEER_PACKAGES = {"torch": "torch", "jax": "jax", "numdifftools": "numdifftools"}
LIBRARIES = ("fastgrad", "numpy", "numba", "scipy", "threadpoolctl")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else ``platform``), or "unknown"."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(dist: str):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    """{library: version} for fastgrad's dependencies, and for each peer its version or "not installed"."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        out[name] = _version(name)
    if out["fastgrad"] is None:  # running from a checkout that was not pip-installed
        import fastgrad
        out["fastgrad"] = fastgrad.__version__
    for name in PEER_PACKAGES:
        out[name] = _version(name) or "not installed"
    return out


def machine_info() -> dict:
    """CPU model, cores, OS, Numba threading layer and threads, BLAS pools, versions, a timestamp."""
    import fastgrad
    threads = fastgrad.thread_info()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "numba_threading_layer": threads["numba_threading_layer"],
            "numba_threads": threads["numba_threads"], "blas": threads["blas"],
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "versions": versions(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def triad_gbps(n=10_000_000, repeats=7, dtype=np.float64):
    """The machine's streaming bandwidth in GB/s: the parallel STREAM triad ``a = b + s c`` over
    three arrays of ``n`` entries (counted as 3 arrays moved, as STREAM does), best of ``repeats``
    after one untimed call. None when the triad kernel is not available."""
    try:
        from fastgrad.kernels.stream import triad
    except ImportError:
        return None
    a = np.zeros(n, dtype=dtype)
    b = np.ones(n, dtype=dtype)
    c = np.full(n, 2.0, dtype=dtype)
    triad(a, b, c, 0.5)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        triad(a, b, c, 0.5)
        best = min(best, time.perf_counter() - start)
    return 3 * n * np.dtype(dtype).itemsize / best / 1e9
