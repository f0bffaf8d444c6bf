"""The products of a dense layer: fastgrad's pieces on Numba's threads vs NumPy's multi-threaded BLAS.

    pytest bench/bench_gemm.py --benchmark-group-by=group -s

``fastgrad``: :func:`fastgrad.kernels.gemm.matmul_into` inside ``blas_phase`` (every BLAS on one
thread, the pieces on Numba's threads: bit-identical for any thread count). ``reference``: its
NumPy twin, one ``np.matmul`` on NumPy's BLAS at its own thread count. The shapes are the three
products of a 784-256-128-10 network's first and second layers in a training step (forward
x @ W, grad_W = x^T delta, grad_x = delta W^T) at batch 32 and 1024, plus the one-column output
layer of a regression network (a matrix-vector product).
"""
import functools
import itertools

import numpy as np
import pytest

from fastgrad._threads import blas_phase
from fastgrad.kernels import gemm as K
from fastgrad.reference import gemm as R

# (name, m, n, k, ta, tb): C (m, n) = op(A) (m, k) @ op(B) (k, n)
SHAPES = [("fwd 784x256", 32, 256, 784, False, False), ("grad_W 784x256", 784, 256, 32, True, False),
          ("grad_x 256x128", 32, 256, 128, False, True), ("fwd 784x256", 1024, 256, 784, False, False),
          ("grad_W 784x256", 784, 256, 1024, True, False), ("grad_x 256x128", 1024, 256, 128, False, True),
          ("fwd 64x1", 2048, 1, 64, False, False)]
DTYPES = ["float32", "float64"]
PARAMS = [pytest.param(shape, dt, impl, id=f"{shape[0].replace(' ', '-')}-{shape[1]}x{shape[2]}-{dt}-{impl}")
          for shape, dt, impl in itertools.product(SHAPES, DTYPES, ("fastgrad", "reference"))]


@functools.lru_cache(maxsize=4)
def operands(m, n, k, ta, tb, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(m * k).astype(dtype)
    b = rng.standard_normal(k * n).astype(dtype)
    return a, b, np.empty(m * n, dtype)


def _fastgrad(a, ta, b, tb, c, m, n, k):
    with blas_phase():
        K.matmul_into(a, ta, b, tb, c, m, n, k, K.MACHINE_CORES)


def _reference(a, ta, b, tb, c, m, n, k):
    R.matmul_into(a, ta, b, tb, c, m, n, k, K.MACHINE_CORES)


@pytest.mark.parametrize("shape, dtype, impl", PARAMS)
def test_product(timed, shape, dtype, impl):
    name, m, n, k, ta, tb = shape
    a, b, c = operands(m, n, k, ta, tb, dtype)
    func = _fastgrad if impl == "fastgrad" else _reference
    timed(f"matmul {name} ({m}x{k} @ {k}x{n}) {dtype}", impl, lambda: func(a, ta, b, tb, c, m, n, k))
