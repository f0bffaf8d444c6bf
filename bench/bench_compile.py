"""Compile time of a first ``fit``, measured in fresh processes on an empty kernel cache.

    python bench/bench_compile.py                 # float32 cold, then float64, then warm
    FASTGRAD_BENCH_COMPILE=1 pytest bench/bench_compile.py -s

Each figure is the wall time of ``Sequential(...).fit`` (one epoch of a 64-32-32-10
Dense-ReLU MLP, 256 rows) in a new Python process whose ``NUMBA_CACHE_DIR`` is a
temporary folder, so the process compiles (or loads) every kernel the fit uses:

* ``float32 cold``: empty cache -- what a new user waits for;
* ``float64 after float32``: the float32 kernels are cached, the float64 ones compile;
* ``float32 warm``: everything is cached -- the cost of loading machine code;
* ``every layer kind, float32 cold``: a model with Dense, BatchNorm1d, Dropout, a Residual
  block with LayerNorm, and an Activation, on its own empty cache;
* ``float32 cold, one process``: the first figure with the second compile process off
  (``FASTGRAD_COMPILE_PROCESSES=1``): the same work in one process.

The import of fastgrad is outside the timing. A benchmark, not a test: it asserts
nothing about time (issue 11's targets: 15 s, 15 s more, 1 s warm, 25 s for every layer kind,
on a quiet machine). A cold first fit compiles in two processes where it can
(fastgrad/_compile_jobs.py): the figures are wall time, what the user waits.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time
import numpy as np
from fastgrad import Dense, Sequential
dtype = sys.argv[1]
rng = np.random.default_rng(0)
X = rng.standard_normal((256, 64))
y = rng.integers(0, 10, 256)
if sys.argv[2] == "every":
    from fastgrad import Activation, BatchNorm1d, Dropout, LayerNorm, Residual
    layers = [Dense(64, 32, "relu"), BatchNorm1d(32), Dropout(0.1), Residual([Dense(32, "relu"), LayerNorm(32)]),
              Activation("tanh"), Dense(10)]
else:
    layers = [Dense(64, 32, "relu"), Dense(32, 32, "relu"), Dense(32, 10)]
model = Sequential(layers, loss="softmax_cross_entropy", dtype=dtype, seed=0)
start = time.perf_counter()
model.fit(X, y, epochs=1, batch_size=32, verbose=0)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def first_fit_seconds(dtype: str, cache_dir: str, layers: str = "dense", processes: str = "2") -> float:
    """Seconds of the first fit in a fresh process using ``cache_dir`` as Numba's cache
    (``layers``: "dense" or "every" kind; ``processes``: FASTGRAD_COMPILE_PROCESSES)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, FASTGRAD_COMPILE_PROCESSES=processes,
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", CHILD, dtype, layers], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True, timeout=1800).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def measure() -> dict:
    """{"float32 cold": s, "float64 after float32": s, "float32 warm": s} on one shared empty cache,
    then {"every layer kind, float32 cold": s} on another, then the float32 cold fit compiled in
    one process (``FASTGRAD_COMPILE_PROCESSES=1``; fastgrad/_compile_jobs.py) on a third."""
    with tempfile.TemporaryDirectory(prefix="fastgrad-compile-") as cache_dir:
        times = {"float32 cold": first_fit_seconds("float32", cache_dir),
                 "float64 after float32": first_fit_seconds("float64", cache_dir),
                 "float32 warm": first_fit_seconds("float32", cache_dir)}
    with tempfile.TemporaryDirectory(prefix="fastgrad-compile-") as cache_dir:
        times["every layer kind, float32 cold"] = first_fit_seconds("float32", cache_dir, "every")
    with tempfile.TemporaryDirectory(prefix="fastgrad-compile-") as cache_dir:
        times["float32 cold, one process"] = first_fit_seconds("float32", cache_dir, processes="1")
    return times


def report(times: dict) -> str:
    return "\n".join(f"first fit, {name:<32}{seconds:8.2f} s" for name, seconds in times.items())


@pytest.mark.skipif(os.environ.get("FASTGRAD_BENCH_COMPILE") != "1",
                    reason="minutes of compilation: set FASTGRAD_BENCH_COMPILE=1 to run")
def test_first_fit_compile_time():
    print("\n" + report(measure()))


if __name__ == "__main__":
    print(report(measure()))
