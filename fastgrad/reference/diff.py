"""Plain Python/NumPy finite differences: the readable loops behind :mod:`fastgrad.diff`.

Same signatures as :mod:`fastgrad.diff`, same stencils and default steps (see
:mod:`fastgrad._stencils`), one Python call of ``f`` per stencil point. These are the
tests' oracle and the benchmarks' baseline (``hessian`` is the straightforward O(n^2)
central-difference loop). No validation: inputs are trusted.
"""
from __future__ import annotations

import numpy as np

from fastgrad import _stencils as st


def _steps(x, h, exponent):
    if h is None:
        return st.default_step(x, exponent).reshape(x.shape)
    return np.broadcast_to(np.asarray(h, dtype=np.float64), x.shape).copy()


def derivative(f, x, order=1, h=None, method="central", accuracy=2):
    """``f^(order)(x) ~= sum_k w_k f(x + o_k h) / h**order`` at each entry of ``x``."""
    xs = np.asarray(x, dtype=np.float64)
    hh = _steps(xs, h, st.step_exponent(order, accuracy))
    offsets, weights = st.stencil(order, method, accuracy)
    out = np.zeros(xs.shape)
    for idx in np.ndindex(xs.shape):
        total = 0.0
        for o, w in zip(offsets, weights):
            total = total + w * f(xs[idx] + o * hh[idx])
        out[idx] = total / hh[idx] ** order
    return float(out) if xs.ndim == 0 else out


def gradient(f, x, h=None, method="central", accuracy=2):
    """``g_i ~= sum_k w_k f(x + o_k h_i e_i) / h_i``, shape ``(n,)``."""
    x = np.asarray(x, dtype=np.float64)
    return jacobian(lambda z: np.atleast_1d(f(z)), x, h, method, accuracy)[0]


def jacobian(f, x, h=None, method="central", accuracy=2):
    """``J[:, i] ~= sum_k w_k f(x + o_k h_i e_i) / h_i``, shape ``(m, n)``."""
    x = np.asarray(x, dtype=np.float64)
    hh = _steps(x, h, st.step_exponent(1, accuracy))
    offsets, weights = st.stencil(1, method, accuracy)
    columns = []
    for i in range(x.size):
        total = 0.0
        for o, w in zip(offsets, weights):
            xi = x.copy()
            xi[i] = x[i] + o * hh[i]
            total = total + w * np.asarray(f(xi), dtype=np.float64).reshape(-1)
        columns.append(total / hh[i])
    return np.stack(columns, axis=1)


def _central_hessian(f, x, h):
    """Diagonal ``(f(x-h_i) - 2f(x) + f(x+h_i)) / h_i^2``; off-diagonal ``(f_++ - f_+- - f_-+ + f_--) / (4 h_i h_j)``."""
    n = x.size
    f0 = f(x)
    H = np.empty((n, n))
    for i in range(n):
        xp, xm = x.copy(), x.copy()
        xp[i] += h[i]
        xm[i] -= h[i]
        H[i, i] = (f(xm) - 2.0 * f0 + f(xp)) / h[i] ** 2
        for j in range(i + 1, n):
            corner = {}
            for si in (1, -1):
                for sj in (1, -1):
                    xc = x.copy()
                    xc[i] += si * h[i]
                    xc[j] += sj * h[j]
                    corner[si, sj] = f(xc)
            H[i, j] = H[j, i] = ((corner[1, 1] - corner[1, -1]) - (corner[-1, 1] - corner[-1, -1])) / (4.0 * h[i] * h[j])
    return H


def hessian(f, x, h=None, richardson=False):
    """Central-difference Hessian ``(n, n)``; with ``richardson``, extrapolated from ``h``, ``h/2``, ``h/4``."""
    x = np.asarray(x, dtype=np.float64)
    if not richardson:
        return _central_hessian(f, x, _steps(x, h, 0.25))
    base = st.richardson_step(x) if h is None else _steps(x, h, 0.0)
    return st.richardson_combine(*(_central_hessian(f, x, base / k) for k in (1.0, 2.0, 4.0)))


def hessian_from_gradient(grad, x, h=None):
    """``(J + J^T) / 2`` with ``J[i] = (g(x + h_i e_i) - g(x - h_i e_i)) / (2 h_i)``."""
    J = jacobian(grad, x, h).T
    return (J + J.T) / 2.0


def hvp(f, x, v, h=None):
    """``H(x) v`` from the plain central-difference Hessian."""
    return hessian(f, x, h) @ np.asarray(v, dtype=np.float64)


def hvp_from_gradient(grad, x, v, h=None):
    """``H(x) v`` from :func:`hessian_from_gradient`."""
    return hessian_from_gradient(grad, x, h) @ np.asarray(v, dtype=np.float64)
