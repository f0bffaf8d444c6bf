"""Curvature analysis: the kind of a stationary point, Newton steps and Taylor models.

The textbook chain made runnable: the gradient gives the first-order model (gradient
descent follows it), the Hessian the second-order one (Newton minimises it), and the
Hessian's eigenvalues say whether a stationary point is a minimum, a maximum or a saddle.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from fastgrad._checks import as_float_array, as_int, as_scalar, check_choice
from fastgrad import _diff_checks as chk, diff

__all__ = ("Curvature", "curvature", "newton_step", "taylor", "SingularHessianError")

KINDS = ("minimum", "maximum", "saddle", "degenerate")


class SingularHessianError(ValueError):
    """``H + damping I`` is singular (or too ill-conditioned to solve) in :func:`newton_step`."""


@dataclass(frozen=True)
class Curvature:
    """Eigen-analysis of a symmetric Hessian.

    ``eigenvalues`` ascending (float64); ``condition_number = max|l| / min|l|`` (inf when an
    eigenvalue counts as zero); ``kind`` one of ``"minimum"``, ``"maximum"``, ``"saddle"``,
    ``"degenerate"``; ``tol`` the relative threshold used.
    """

    eigenvalues: np.ndarray
    condition_number: float
    kind: str
    tol: float


def _square(H, name="H") -> np.ndarray:
    H = as_float_array(H, name, ndim=2)
    if H.shape[0] != H.shape[1]:
        raise ValueError(f"{name} must be square, got shape {H.shape}")
    if not np.all(np.isfinite(H)):
        raise ValueError(f"{name} must be finite")
    return H


def curvature(H, tol=None) -> Curvature:
    """Classify the symmetric ``(n, n)`` Hessian ``H`` by its eigenvalues.

    Eigenvalues of the symmetric part ``(H + H^T) / 2`` (LAPACK ``syevd``); those with
    ``|l| <= tol * max|l|`` count as zero (default ``tol = n * eps`` of ``H``'s dtype). ``saddle``
    when both signs occur, else ``degenerate`` when one is zero, else ``minimum`` (all > 0) or
    ``maximum`` (all < 0). Raises ``ValueError`` for a non-square, empty or non-finite ``H``
    or a negative ``tol``.
    """
    H = _square(H)
    n = H.shape[0]
    tol = n * float(np.finfo(H.dtype).eps) if tol is None else as_scalar(tol, "tol", low=0.0)
    sym = (H.astype(np.float64) + H.T.astype(np.float64)) / 2.0
    lam = np.linalg.eigvalsh(sym)
    scale = float(np.max(np.abs(lam)))
    zero = np.abs(lam) <= tol * scale
    positive = bool(np.any((lam > 0) & ~zero))
    negative = bool(np.any((lam < 0) & ~zero))
    if positive and negative:
        kind = "saddle"
    elif np.any(zero):
        kind = "degenerate"
    else:
        kind = "minimum" if positive else "maximum"
    cond = float("inf") if np.any(zero) else scale / float(np.min(np.abs(lam)))
    return Curvature(lam, cond, kind, tol)


def newton_step(grad, H, damping=0.0, on_singular="raise"):
    """The Newton step ``p`` solving ``(H + damping I) p = -grad``; ``grad`` ``(n,)``, ``H`` ``(n, n)``.

    ``damping >= 0`` shifts the spectrum (Levenberg-Marquardt). A singular or numerically
    singular system (LAPACK's reciprocal condition estimate below machine epsilon) raises
    :class:`SingularHessianError` (a ``ValueError``) with ``on_singular="raise"``; with
    ``on_singular="damp"`` the damping is raised from ``max(damping, 1e-8 max|H|)`` by factors of 10
    until the system solves. Returns float64 ``(n,)``. Raises ``ValueError`` for mismatched shapes.
    """
    H = _square(H).astype(np.float64)
    g = as_float_array(grad, "grad", ndim=1, dtype=np.float64)
    if g.shape != (H.shape[0],):
        raise ValueError(f"grad must have shape ({H.shape[0]},) to match H {H.shape}, got {g.shape}")
    damping = as_scalar(damping, "damping", low=0.0)
    check_choice(on_singular, "on_singular", ("raise", "damp"))
    p = _solve_shifted(H, g, damping)
    if p is not None:
        return p
    if on_singular == "raise":
        raise SingularHessianError(f"H + {damping:g} I is singular; pass damping > 0 or on_singular='damp'")
    mu = max(damping, 1e-8 * max(1.0, float(np.max(np.abs(H)))))
    for _ in range(40):
        mu *= 10.0
        p = _solve_shifted(H, g, mu)
        if p is not None:
            return p
    raise SingularHessianError("no damping up to 1e32 max|H| made H + damping I solvable")


def _solve_shifted(H, g, damping):
    """``-(H + damping I)^{-1} g``, or None when the system is singular."""
    A = H + damping * np.eye(H.shape[0])
    with warnings.catch_warnings():
        import scipy.linalg  # imported on use: it costs ~0.3 s, and `import fastgrad` must stay fast
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
        try:
            p = scipy.linalg.solve(A, -g, assume_a="sym")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning, ValueError):
            return None
    return p if np.all(np.isfinite(p)) else None


def taylor(f, x0, dx, order=2, h=None):
    """The order-0/1/2 Taylor model of ``f: R^n -> R`` around 1-D ``x0``, evaluated at ``x0 + dx``.

    ``m(dx) = f(x0) + g^T dx + 1/2 dx^T H dx`` truncated after ``order`` terms, with ``g`` from
    :func:`fastgrad.diff.gradient` and ``H dx`` from :func:`fastgrad.diff.hvp` (``4n`` evaluations,
    ``H`` never formed). Minimising the order-1 model along ``-g`` is gradient descent; the order-2
    model is minimised by the Newton step. Returns a float. Raises ``ValueError`` for
    ``order`` not in 0..2 or a ``dx`` of another shape than ``x0``.
    """
    order = as_int(order, "order")
    if order not in (0, 1, 2):
        raise ValueError(f"order must be 0, 1 or 2, got {order}")
    x0 = as_float_array(x0, "x0", ndim=1)
    dx = as_float_array(dx, "dx", ndim=1)
    if dx.shape != x0.shape:
        raise ValueError(f"dx must have x0's shape {x0.shape}, got {dx.shape}")
    value = chk.scalar_output(f(x0))
    if order >= 1:
        value += float(diff.gradient(f, x0, h=h).astype(np.float64) @ dx)
    if order == 2:
        value += 0.5 * float(dx @ diff.hvp(f, x0, dx, h=h).astype(np.float64))
    return value
