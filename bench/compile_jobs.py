"""Compile seconds of each compile job (fastgrad/_compile_jobs.py's ``COST`` table comes from here).

    python bench/compile_jobs.py [float32|float64]

Compiles every job of ``fastgrad.kernels.dispatch`` -- the training loops, then each op kind,
activation, loss, optimizer and optional term -- one after the other, in a fresh process on an
empty ``NUMBA_CACHE_DIR``, and prints the seconds each took. A job compiled later finds the
helpers it shares with earlier ones compiled already, so the figures are for splitting work
between processes, not a benchmark of record.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import sys, time
import numpy as np
from fastgrad.kernels import dispatch
dtype = np.dtype(sys.argv[1])
for job in [("loop", name) for name in dispatch.LOOPS] + dispatch.every_job():
    start = time.perf_counter()
    dispatch.compile_job(job, dtype)
    print(f"{str(job):<28}{time.perf_counter() - start:7.2f} s", flush=True)
"""


def main(argv=None) -> int:
    dtype = (argv or sys.argv[1:] or ["float32"])[0]
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=ROOT)
        return subprocess.run([sys.executable, "-c", CHILD, dtype], env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
