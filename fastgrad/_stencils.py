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

METHODS = ("central", "forward", "backward")
# Highest accuracy order accepted: beyond it the weights grow so large that round-off wins.
MAX_ACCURACY = 16

# Richardson base step 4 eps**(1/8) max(1, |x_i|): after two extrapolation levels the
# truncation error is O(h^6) and the round-off O(eps / h^2), balanced at h ~ eps**(1/8).
# The factor 4 was measured (chained Rosenbrock and a sin/cos/exp test function, n = 200):
# the error changes little between factors 4 and 8 and grows on either side.
RICHARDSON_EXPONENT = 1.0 / 8.0
RICHARDSON_SCALE = 4.0


def offsets_for(order: int, method: str, accuracy: int) -> tuple:
    """Integer offsets of the stencil for derivative ``order`` with error ``O(h**accuracy)``.

    Central: ``-r..r`` with ``r = (order - 1) // 2 + accuracy // 2`` (``accuracy`` even), the
    zero offset left out for odd orders (its weight is 0). Forward: ``0..order + accuracy - 1``;
    backward: the negated forward offsets.
    """
    if method == "central":
        r = (order - 1) // 2 + accuracy // 2
        return tuple(o for o in range(-r, r + 1) if o != 0 or order % 2 == 0)
    offsets = tuple(range(order + accuracy))
    return tuple(-o for o in offsets) if method == "backward" else offsets


def fd_weights(offsets, order: int) -> tuple:
    """Exact weights ``w`` with ``sum_k w_k f(x + o_k h) / h**order = f^(order)(x) + O(h**p)``.

    Fornberg's recursion (B. Fornberg, "Generation of finite difference formulas on arbitrarily
    spaced grids", Math. Comp. 51 (1988) 699-706) run in rational arithmetic, so the tables are
    exact: ``(1/12, -2/3, 2/3, -1/12)`` for the 4-point first derivative, and so on.
    """
    z = [Fraction(o) for o in offsets]
    n = len(z) - 1
    if order > n:
        raise ValueError(f"a stencil of {len(z)} points cannot give derivative order {order}")
    c = [[Fraction(0)] * (order + 1) for _ in range(n + 1)]
    c[0][0] = Fraction(1)
    c1 = Fraction(1)
    c4 = z[0]
    for i in range(1, n + 1):
        mn = min(i, order)
        c2 = Fraction(1)
        c5 = c4
        c4 = z[i]
        for j in range(i):
            c3 = z[i] - z[j]
            c2 *= c3
            if j == i - 1:
                for k in range(mn, 0, -1):
                    c[i][k] = c1 * (k * c[i - 1][k - 1] - c5 * c[i - 1][k]) / c2
                c[i][0] = -c1 * c5 * c[i - 1][0] / c2
            for k in range(mn, 0, -1):
                c[j][k] = (c4 * c[j][k] - k * c[j][k - 1]) / c3
            c[j][0] = c4 * c[j][0] / c3
        c1 = c2
    return tuple(c[k][order] for k in range(n + 1))


def stencil(order: int, method: str, accuracy: int):
    """``(offsets, weights)`` as float tuples for derivative ``order`` (any order >= 1)."""
    offsets = offsets_for(order, method, accuracy)
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


def richardson_step(x: np.ndarray, exponent: float = RICHARDSON_EXPONENT) -> np.ndarray:
    """The base step of an extrapolated difference: ``4 eps**exponent max(1, |x|)``, a power of two
    (default ``exponent`` 1/8: the Hessian's)."""
    return RICHARDSON_SCALE * default_step(x, exponent)


def richardson_exponent(order: int, accuracy: int, method: str) -> float:
    """``1 / (accuracy + 2 s + order)``, ``s`` = 2 (central) or 1 (one-sided): the step exponent that
    balances the truncation left after two extrapolation levels against the round-off at ``h/4``."""
    return 1.0 / (accuracy + 2 * error_step(method) + order)


def error_step(method: str) -> int:
    """The gap between successive powers of ``h`` in a stencil's error: 2 central, 1 one-sided."""
    return 2 if method == "central" else 1


def extrapolate(d_h, d_h2, d_h4, p: int, s: int):
    """Two Richardson levels from estimates at ``h``, ``h/2``, ``h/4`` with error
    ``a h^p + b h^(p+s) + ...``: ``A(h) = (2^p D(h/2) - D(h)) / (2^p - 1)`` cancels ``a``,
    ``B = (2^(p+s) A(h/2) - A(h)) / (2^(p+s) - 1)`` cancels ``b``.

    Returns ``(B, |B - A(h/2)|)``: the extrapolated value and the change made by the last level,
    an estimate of the error of ``A(h/2)`` and so a conservative one of ``B``'s.
    """
    q1, q2 = 2.0 ** p, 2.0 ** (p + s)
    a_h = (q1 * d_h2 - d_h) / (q1 - 1.0)
    a_h2 = (q1 * d_h4 - d_h2) / (q1 - 1.0)
    b = (q2 * a_h2 - a_h) / (q2 - 1.0)
    return b, np.abs(b - a_h2)


def extrapolation_gain(p: int, s: int) -> float:
    """``sum_j |c_j|`` for the coefficients ``c`` of ``D(h), D(h/2), D(h/4)`` in :func:`extrapolate`'s
    value (85/45 for p = s = 2): its round-off is at most this times the round-off of ``D(h/4)``."""
    q1, q2 = 2.0 ** p, 2.0 ** (p + s)
    c_h = 1.0 / (q1 - 1.0) / (q2 - 1.0)
    c_h2 = (q1 / (q1 - 1.0) + q2 / (q1 - 1.0)) / (q2 - 1.0)
    c_h4 = q2 * q1 / (q1 - 1.0) / (q2 - 1.0)
    return c_h + c_h2 + c_h4


def truncation_estimate(d_h, d_h2, p: int):
    """The Richardson estimate of the error of ``D(h)`` from ``D(h/2)``: ``2^p |D(h) - D(h/2)| / (2^p - 1)``."""
    q = 2.0 ** p
    return q * np.abs(d_h - d_h2) / (q - 1.0)


def richardson_combine(d_h, d_h2, d_h4):
    """``(64 D(h/4) - 20 D(h/2) + D(h)) / 45``: two Richardson levels for an ``O(h^2)`` even stencil.

    ``D(h) = D + a h^2 + b h^4 + O(h^6)``; ``(4 D(h/2) - D(h)) / 3`` cancels ``a``, and the same
    step again, ``(16 R(h/2) - R(h)) / 15``, cancels ``b``.
    """
    return (64.0 * d_h4 - 20.0 * d_h2 + d_h) / 45.0
