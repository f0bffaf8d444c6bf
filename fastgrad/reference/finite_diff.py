"""Python twins of :mod:`fastgrad.kernels.finite_diff`: the same evaluations in plain loops.

These are the path :mod:`fastgrad.diff` takes for any callable that is not a Numba
compiled function, and the oracle the compiled kernels are tested against. Same
names, same signatures (``nb``, the block count, is accepted and ignored), same
order of evaluation.
"""
from __future__ import annotations

import numpy as np


def scalar_values(f, points, out, nb):
    """``out[i] = f(points[i])`` for a scalar function ``f``; ``points``, ``out`` 1-D."""
    for i in range(points.size):
        out[i] = f(points[i])


def partial_values(f, x, steps, out, nb):
    """``out[k, i] = f(x with x[i] replaced by steps[k, i])``; ``steps``, ``out`` are ``(K, n)``."""
    w = x.copy()
    for i in range(x.size):
        for k in range(steps.shape[0]):
            w[i] = steps[k, i]
            out[k, i] = f(w)
        w[i] = x[i]


def partial_vectors(f, x, steps, out, nb):
    """``out[k, i, :] = f(x with x[i] replaced by steps[k, i])`` for a vector ``f``; ``out`` ``(K, n, m)``."""
    w = x.copy()
    for i in range(x.size):
        for k in range(steps.shape[0]):
            w[i] = steps[k, i]
            out[k, i, :] = np.asarray(f(w)).reshape(-1)
        w[i] = x[i]


def pair_values(f, x, plus, minus, rows, cols, out, nb):
    """The four corners of the cross stencil for each pair ``p = (rows[p], cols[p])``, ``i != j``.

    ``out[p] = f at (x_i, x_j) stepped to (plus, plus), (plus, minus), (minus, plus), (minus, minus)``.
    """
    w = x.copy()
    for p in range(rows.size):
        i, j = rows[p], cols[p]
        for c, (si, sj) in enumerate(((plus, plus), (plus, minus), (minus, plus), (minus, minus))):
            w[i] = si[i]
            w[j] = sj[j]
            out[p, c] = f(w)
        w[i] = x[i]
        w[j] = x[j]
