"""Test functions with analytic derivatives, for checking and benchmarking fastgrad.diff.

The chained (extended) Rosenbrock function, as ``scipy.optimize.rosen``::

    f(x) = sum_{i=0}^{n-2} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2

with its gradient and its tridiagonal Hessian in closed form, and a quadratic
``f(x) = 1/2 x^T A x + b^T x`` (gradient ``A x + b``, Hessian ``A``, ``A`` symmetric).
``rosenbrock_jit`` and ``rosenbrock_grad_jit`` are the compiled versions: pass them to
:mod:`fastgrad.diff` to take its compiled, parallel path.
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_float_array
from fastgrad.kernels.testfunctions import rosenbrock as rosenbrock_jit
from fastgrad.kernels.testfunctions import rosenbrock_grad as rosenbrock_grad_jit

__all__ = ("rosenbrock", "rosenbrock_grad", "rosenbrock_hess", "rosenbrock_jit", "rosenbrock_grad_jit",
           "quadratic")


def _vector(x):
    x = as_float_array(x, "x", ndim=1)
    if x.size < 2:
        raise ValueError(f"x must have at least 2 entries for the Rosenbrock function, got {x.size}")
    return x


def rosenbrock(x) -> float:
    """``sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`` for 1-D ``x`` of size ``n >= 2``."""
    x = _vector(x)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosenbrock_grad(x) -> np.ndarray:
    """Gradient, shape ``(n,)``: ``g_i = -400 x_i (x_{i+1} - x_i^2) - 2 (1 - x_i) + 200 (x_i - x_{i-1}^2)``."""
    x = _vector(x)
    a = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] += -400.0 * x[:-1] * a - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * a
    return g


def rosenbrock_hess(x) -> np.ndarray:
    """Hessian, ``(n, n)`` tridiagonal: ``H_ii = 1200 x_i^2 - 400 x_{i+1} + 2 [i < n-1] + 200 [i > 0]``,
    ``H_{i,i+1} = H_{i+1,i} = -400 x_i``."""
    x = _vector(x)
    n = x.size
    diag = np.zeros_like(x)
    diag[:-1] += 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
    diag[1:] += 200.0
    h = np.diag(diag)
    off = -400.0 * x[:-1]
    h[np.arange(n - 1), np.arange(1, n)] = off
    h[np.arange(1, n), np.arange(n - 1)] = off
    return h


def quadratic(A, b=None):
    """``(f, grad, hess)`` for ``f(x) = 1/2 x^T A x + b^T x`` with symmetric ``(n, n)`` ``A``."""
    A = as_float_array(A, "A", ndim=2, dtype=np.float64)
    if A.shape[0] != A.shape[1] or not np.allclose(A, A.T):
        raise ValueError(f"A must be a symmetric square matrix, got shape {A.shape}")
    b = np.zeros(A.shape[0]) if b is None else as_float_array(b, "b", ndim=1, dtype=np.float64)

    def f(x):
        return float(0.5 * x @ (A @ x) + b @ x)

    def grad(x):
        return A @ x + b

    def hess(x):
        return A.copy()

    return f, grad, hess
