"""Compiled test functions for the finite-difference tools and their benchmarks.

The chained Rosenbrock function (``scipy.optimize.rosen``):
``f(x) = sum_{i=0}^{n-2} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``, minimum 0 at ``x = 1``.
Serial on purpose: these are called from inside parallel finite-difference loops.
"""
import numpy as np

from fastgrad._jit import kernel, like


@kernel
def rosenbrock(x):
    """``sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`` for 1-D ``x`` (n >= 2)."""
    s = like(x, 0.0)
    for i in range(x.size - 1):
        a = x[i + 1] - x[i] * x[i]
        b = like(x, 1.0) - x[i]
        s += like(x, 100.0) * a * a + b * b
    return s


@kernel
def rosenbrock_grad(x):
    """The analytic gradient of :func:`rosenbrock`, a new 1-D array of ``x``'s shape."""
    g = np.zeros_like(x)
    for i in range(x.size - 1):
        a = x[i + 1] - x[i] * x[i]
        g[i] += like(x, -400.0) * x[i] * a - like(x, 2.0) * (like(x, 1.0) - x[i])
        g[i + 1] += like(x, 200.0) * a
    return g
