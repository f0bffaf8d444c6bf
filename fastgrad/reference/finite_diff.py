"""Python twins of :mod:`fastgrad.kernels.finite_diff`: the same evaluations in plain loops.

These are the path :mod:`fastgrad.diff` takes for any callable that is not a Numba
compiled function, and the oracle the compiled kernels are tested against. Same
names, same signatures (``nb``, the block count, is accepted and ignored; ``status`` is
left at 0 because a failure raises here), same order of evaluation. Every value ``f``
returns is checked (a real scalar, or a vector of the expected length), so an ``f`` whose
output varies raises ``ValueError`` naming ``f``, the expected and the received shape.

The ``_..._item`` helpers evaluate one item; :mod:`fastgrad._diff_checks` also calls them to
re-raise, from Python, a failure that a compiled kernel reported in ``status``.
"""
from __future__ import annotations

from fastgrad._fd_outputs import scalar_output, vector_output


def _scalar_values_item(f, points, out, i):
    out[i] = scalar_output(f(points[i]))


def scalar_values(f, points, out, nb, status):
    """``out[i] = f(points[i])`` for a scalar function ``f``; ``points``, ``out`` 1-D."""
    for i in range(points.size):
        _scalar_values_item(f, points, out, i)


def _partial_values_item(f, w, x, steps, out, i):
    for k in range(steps.shape[0]):
        w[i] = steps[k, i]
        out[k, i] = scalar_output(f(w))
    w[i] = x[i]


def partial_values(f, x, steps, out, nb, status):
    """``out[k, i] = f(x with x[i] replaced by steps[k, i])``; ``steps``, ``out`` are ``(K, n)``."""
    w = x.copy()
    for i in range(x.size):
        _partial_values_item(f, w, x, steps, out, i)


def _partial_vectors_item(f, w, x, steps, out, i):
    for k in range(steps.shape[0]):
        w[i] = steps[k, i]
        out[k, i, :] = vector_output(f(w), "f", out.shape[2])
    w[i] = x[i]


def partial_vectors(f, x, steps, out, nb, status):
    """``out[k, i, :] = f(x with x[i] replaced by steps[k, i])`` for a vector ``f``; ``out`` ``(K, n, m)``."""
    w = x.copy()
    for i in range(x.size):
        _partial_vectors_item(f, w, x, steps, out, i)


def _pair_values_item(f, w, x, plus, minus, rows, cols, out, p):
    i, j = rows[p], cols[p]
    for c, (si, sj) in enumerate(((plus, plus), (plus, minus), (minus, plus), (minus, minus))):
        w[i] = si[i]
        w[j] = sj[j]
        out[p, c] = scalar_output(f(w))
    w[i] = x[i]
    w[j] = x[j]


def pair_values(f, x, plus, minus, rows, cols, out, nb, status):
    """The four corners of the cross stencil for each pair ``p = (rows[p], cols[p])``, ``i != j``.

    ``out[p] = f at (x_i, x_j) stepped to (plus, plus), (plus, minus), (minus, plus), (minus, minus)``.
    """
    w = x.copy()
    for p in range(rows.size):
        _pair_values_item(f, w, x, plus, minus, rows, cols, out, p)
