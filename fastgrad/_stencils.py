"""Finite-difference stencils, step-size rules and the combination of stencil values.

Shared by the compiled and the Python paths of :mod:`fastgrad.diff` (and by
:mod:`fastgrad.reference.diff`): both evaluate ``f`` at the same points, computed
here, and combine the values here, so the two paths differ only in who calls ``f``.

Step rule (default ``h``): ``h_i = eps**(1 / (accuracy + order)) * max(1, |x_i|)``
with ``eps`` the machine epsilon of ``x``'s dtype -- the step that balances the
truncation error ``O(h**accuracy)`` against the round-off ``O(eps / h**order)``.
For the common cases this is ``eps**(1/3)`` (central first differences) and
``eps**(1/4)`` (second differences). Default steps are rounded to the nearest power
of two, so that ``x_i + k*h_i`` is exact for the small integers ``k`` of a stencil
and the quotient divides by the step that was really taken.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

# Offsets (in units of h) of each stencil; weights follow exactly from the offsets.
_OFFSETS = {
    ("central", 2): (-1, 1),
    ("central", 4): (-2, -1, 1, 2),
    ("forward", 2): (0, 1, 2),
    ("forward", 4): (0, 1, 2, 3, 4),
}
_OFFSETS_2ND = {
    ("central", 2): (-1, 0, 1),
    ("central", 4): (-2, -1, 0, 1, 2),
    ("forward", 2): (0, 1, 2, 3),
    ("forward", 4): (0, 1, 2, 3, 4, 5),
}
METHODS = ("central", "forward", "backward")

# Richardson base step 4 eps**(1/8) max(1, |x_i|): after two extrapolation levels the
# truncation error is O(h^6) and the round-off O(eps / h^2), balanced at h ~ eps**(1/8).
# The factor 4 was measured (chained Rosenbrock and a sin/cos/exp test function, n = 200):
# the error changes little between factors 4 and 8 and grows on either side.
RICHARDSON_EXPONENT = 1.0 / 8.0
RICHARDSON_SCALE = 4.0
ACCURACIES = (2, 4)


def fd_weights(offsets, order: int) -> tuple:
    """Exact weights ``w`` with ``sum_k w_k f(x + o_k h) / h**order = f^(order)(x) + O(h**p)``.

    Solves the Vandermonde system ``sum_k w_k o_k**j / j! = [j == order]`` for
    ``j = 0..K-1`` in rational arithmetic (the textbook construction of Fornberg's tables).
    """
    k = len(offsets)
    a = [[Fraction(o) ** j for o in offsets] + [Fraction(1 if j == order else 0) * _fact(j)]
         for j in range(k)]
    for c in range(k):
        p = next(r for r in range(c, k) if a[r][c] != 0)
        a[c], a[p] = a[p], a[c]
        for r in range(k):
            if r != c and a[r][c] != 0:
                q = a[r][c] / a[c][c]
                a[r] = [u - q * v for u, v in zip(a[r], a[c])]
    return tuple(a[r][k] / a[r][r] for r in range(k))


def _fact(j: int) -> int:
    out = 1
    for i in range(2, j + 1):
        out *= i
    return out


def stencil(order: int, method: str, accuracy: int):
    """``(offsets, weights)`` as float tuples for derivative ``order`` (1 or 2)."""
    base = "central" if method == "central" else "forward"
    offsets = (_OFFSETS if order == 1 else _OFFSETS_2ND)[(base, accuracy)]
    if method == "backward":
        offsets = tuple(-o for o in offsets)
    weights = fd_weights(offsets, order)
    return tuple(float(o) for o in offsets), tuple(float(w) for w in weights)


def default_step(x: np.ndarray, exponent: float, dtype=None) -> np.ndarray:
    """``eps**exponent * max(1, |x|)`` rounded to the nearest power of two, as float64."""
    eps = np.finfo(x.dtype if dtype is None else dtype).eps
    raw = eps ** exponent * np.maximum(1.0, np.abs(x.astype(np.float64)))
    return np.exp2(np.round(np.log2(raw)))


def step_exponent(order: int, accuracy: int) -> float:
    """The exponent of the default step: ``1 / (accuracy + order)``."""
    return 1.0 / (accuracy + order)


def stepped(x: np.ndarray, offsets, h: np.ndarray) -> np.ndarray:
    """``(K, n)`` array of ``x + o_k * h`` in ``x``'s dtype for the nonzero offsets ``o_k``."""
    rows = [x + (o * h).astype(x.dtype) for o in offsets if o != 0.0]
    return np.ascontiguousarray(np.stack(rows).astype(x.dtype)) if rows else np.empty((0, x.size), x.dtype)


def combine(values, f0, offsets, weights, h: np.ndarray, order: int) -> np.ndarray:
    """``sum_k w_k f(x + o_k h) / h**order``, in float64 and in stencil order.

    ``values`` holds the evaluations at the nonzero offsets (in order, along axis 0);
    the zero offset uses ``f0``. ``h`` broadcasts against ``values[0]``.
    """
    acc = None
    row = 0
    for o, w in zip(offsets, weights):
        if o == 0.0:
            term = w * np.asarray(f0, dtype=np.float64)
        else:
            term = w * np.asarray(values[row], dtype=np.float64)
            row += 1
        acc = term if acc is None else acc + term
    return acc / h ** order


def cross(values: np.ndarray, hi: np.ndarray, hj: np.ndarray) -> np.ndarray:
    """The 4-point cross stencil ``(f_++ - f_+- - f_-+ + f_--) / (4 h_i h_j)``, error O(h^2).

    ``values`` is ``(P, 4)`` in the order ``++, +-, -+, --`` (sign of ``x_i``, then ``x_j``).
    """
    v = values.astype(np.float64)
    return ((v[:, 0] - v[:, 1]) - (v[:, 2] - v[:, 3])) / (4.0 * hi * hj)


def richardson_step(x: np.ndarray) -> np.ndarray:
    """The base step of the extrapolated Hessian: ``4 eps**(1/8) max(1, |x|)``, a power of two."""
    return RICHARDSON_SCALE * default_step(x, RICHARDSON_EXPONENT)


def richardson_combine(d_h, d_h2, d_h4):
    """``(64 D(h/4) - 20 D(h/2) + D(h)) / 45``: two Richardson levels for an ``O(h^2)`` even stencil.

    ``D(h) = D + a h^2 + b h^4 + O(h^6)``; ``(4 D(h/2) - D(h)) / 3`` cancels ``a``, and the same
    step again, ``(16 R(h/2) - R(h)) / 15``, cancels ``b``.
    """
    return (64.0 * d_h4 - 20.0 * d_h2 + d_h) / 45.0
