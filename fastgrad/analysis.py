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

__all__ = ("Curvature", "curvature", "newton_step", "taylor", "TaylorModel", "SingularHessianError")

KINDS = ("minimum", "maximum", "saddle", "degenerate")


class SingularHessianError(ValueError):
    """``H + damping I`` is singular (or too ill-conditioned to solve) in :func:`newton_step`."""


@dataclass(frozen=True)
class Curvature:
    """Eigen-analysis of a symmetric Hessian.

    ``eigenvalues`` ascending (float64); ``condition_number = max|l| / min|l|`` (inf when an
    eigenvalue counts as zero); ``kind`` one of ``"minimum"``, ``"maximum"``, ``"saddle"``,
    ``"degenerate"``; ``tol`` the relative threshold used; ``zero_below`` the absolute threshold
    ``|l| <= zero_below`` under which an eigenvalue counted as zero.
    """

    eigenvalues: np.ndarray
    condition_number: float
    kind: str
    tol: float
    zero_below: float = 0.0


def _square(H, name="H") -> np.ndarray:
    H = as_float_array(H, name, ndim=2)
    if H.shape[0] != H.shape[1]:
        raise ValueError(f"{name} must be square, got shape {H.shape}")
    if not np.all(np.isfinite(H)):
        raise ValueError(f"{name} must be finite")
    return H


def curvature(H, tol=None, error=None) -> Curvature:
    """Classify the symmetric ``(n, n)`` Hessian ``H`` by its eigenvalues.

    Eigenvalues ``l`` of the symmetric part ``(H + H^T) / 2`` (LAPACK ``syevd``). An eigenvalue counts
    as zero when ``|l| <= max(tol * max|l|, ||E||_2)``: ``tol`` relative (default ``n * eps`` of ``H``'s
    dtype), ``E`` the entrywise error estimate of ``H`` -- ``error`` (an ``(n, n)`` array or a
    scalar bound), or the second item when ``H`` is the pair ``(H, error)`` returned by
    :func:`fastgrad.diff.hessian` with ``full_output=True``. By Weyl's inequality every eigenvalue of
    ``H`` lies within ``||E||_2`` of the exact Hessian's, and ``||E||_2 <= || |E| ||_2`` (spectral norm of
    the entrywise bounds), which is what is used: an eigenvalue the finite differences cannot tell
    from zero is zero. ``saddle`` when both signs occur, else ``degenerate`` when one is zero, else
    ``minimum`` (all > 0) or ``maximum`` (all < 0).

    Raises ``ValueError`` for a non-square, empty or non-finite ``H`` or ``error``, an ``error`` of
    another shape, or a negative ``tol``.
    """
    if isinstance(H, tuple):
        if len(H) != 2 or error is not None:
            raise ValueError("H must be an array or the pair (H, error) from diff.hessian(..., full_output=True), "
                             "and error must not be given twice")
        H, error = H
    H = _square(H)
    n = H.shape[0]
    tol = n * float(np.finfo(H.dtype).eps) if tol is None else as_scalar(tol, "tol", low=0.0)
    bound = _error_bound(error, n)
    sym = (H.astype(np.float64) + H.T.astype(np.float64)) / 2.0
    lam = np.linalg.eigvalsh(sym)
    scale = float(np.max(np.abs(lam)))
    zero_below = max(tol * scale, bound)
    zero = np.abs(lam) <= zero_below
    positive = bool(np.any((lam > 0) & ~zero))
    negative = bool(np.any((lam < 0) & ~zero))
    if positive and negative:
        kind = "saddle"
    elif np.any(zero):
        kind = "degenerate"
    else:
        kind = "minimum" if positive else "maximum"
    cond = float("inf") if np.any(zero) else scale / float(np.min(np.abs(lam)))
    return Curvature(lam, cond, kind, tol, zero_below)


def _error_bound(error, n) -> float:
    """``|| |E| ||_2`` for an entrywise error estimate ``E`` (a scalar means every entry's bound)."""
    if error is None:
        return 0.0
    if np.ndim(error) == 0:
        return n * as_scalar(error, "error", low=0.0)
    E = np.abs(as_float_array(error, "error", ndim=2, dtype=np.float64))
    if E.shape != (n, n):
        raise ValueError(f"error must have H's shape {(n, n)}, got {E.shape}")
    if not np.all(np.isfinite(E)):
        raise ValueError("error must be finite")
    return float(np.linalg.norm((E + E.T) / 2.0, 2))


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


@dataclass(frozen=True)
class TaylorModel:
    """A Taylor model of ``f`` around ``x0``: ``m(dx) = sum_j c_j dx^j`` (one variable) or
    ``f0 + g.dx + dx.H.dx / 2`` (several, order <= 2), evaluated by calling it with ``dx``.

    One variable: ``coefficients`` ``(order + 1,)`` with ``c_j = f^(j)(x0) / j!`` and ``errors`` their
    estimated errors (from :func:`fastgrad.diff.derivative` with ``richardson=True, full_output=True``).
    Several: ``coefficients`` and ``errors`` are None. Always: ``value = f(x0)``, ``gradient`` ``(n,)``
    (None for order 0) and ``hessian`` ``(n, n)`` (None below order 2), float64.
    """

    x0: np.ndarray
    order: int
    value: float
    gradient: np.ndarray | None
    hessian: np.ndarray | None
    coefficients: np.ndarray | None = None
    errors: np.ndarray | None = None

    def __call__(self, dx):
        """The model at ``x0 + dx``: ``dx`` a scalar or 1-element array (one variable; Horner's rule),
        else of ``x0``'s size."""
        if self.coefficients is not None:
            if np.size(dx) != 1:
                raise ValueError(f"dx must be a scalar or have 1 entry for a one-variable model, got shape {np.shape(dx)}")
            t = as_scalar(np.asarray(dx).reshape(-1)[0], "dx")
            out = 0.0
            for c in self.coefficients[::-1]:
                out = out * t + float(c)
            return out
        dx = as_float_array(dx, "dx", dtype=np.float64).reshape(-1)
        if dx.size != self.x0.size:
            raise ValueError(f"dx must have x0's size {self.x0.size}, got {dx.size}")
        out = self.value
        if self.gradient is not None:
            out += float(self.gradient @ dx)
        if self.hessian is not None:
            out += 0.5 * float(dx @ self.hessian @ dx)
        return out


def taylor(f, x0, dx=None, order=2, h=None):
    """The Taylor model of ``f`` around ``x0`` to ``order`` (any order in one variable, <= 2 in several).

    ``m(dx) = sum_{j <= order} f^(j)(x0) dx^j / j!``; order 1 is the model gradient descent minimises
    along ``-g``, order 2 the one the Newton step minimises.

    * ``x0`` a scalar (``f: R -> R``) or a 1-element 1-D array (``f`` takes that array): any ``order >= 0``;
      ``c_j`` from :func:`fastgrad.diff.derivative` (``richardson=True``, with error estimates).
    * ``x0`` 1-D with ``n > 1`` entries (``f: R^n -> R``): ``order`` 0, 1 or 2; ``g`` from
      :func:`fastgrad.diff.gradient` (accuracy 4) and ``H`` from :func:`fastgrad.diff.hessian`
      (``richardson=True``).

    With ``dx=None`` returns a :class:`TaylorModel` (coefficients, gradient, Hessian; call it with
    ``dx``). With ``dx`` (``x0``'s shape) returns the float ``m(dx)``; in several variables that value
    uses ``g`` and one Hessian-vector product (:func:`fastgrad.diff.hvp`, ``H`` never formed).
    ``h`` is passed on as the (base) step. Raises ``ValueError`` for ``order`` out of range or a
    ``dx`` of another shape than ``x0``.
    """
    order = as_int(order, "order", low=0)
    univariate = np.ndim(x0) == 0 or (np.ndim(x0) == 1 and np.size(x0) == 1)
    if univariate:
        if order > 12:
            raise ValueError(f"order must be <= 12 (finite differences of higher order are noise), got {order}")
        return _taylor_1d(f, x0, dx, order, h)
    if order > 2:
        raise ValueError(f"order must be 0, 1 or 2 for a function of several variables (x0 of size "
                         f"{np.size(x0)}), got {order}")
    x0 = as_float_array(x0, "x0", ndim=1)
    if dx is not None:
        dx = as_float_array(dx, "dx", ndim=1)
        if dx.shape != x0.shape:
            raise ValueError(f"dx must have x0's shape {x0.shape}, got {dx.shape}")
        value = chk.scalar_output(f(x0))
        if order >= 1:
            value += float(diff.gradient(f, x0, h=h).astype(np.float64) @ dx)
        if order == 2:
            value += 0.5 * float(dx @ diff.hvp(f, x0, dx, h=h).astype(np.float64))
        return value
    value = chk.scalar_output(f(x0))
    g = diff.gradient(f, x0, h=h, accuracy=4).astype(np.float64) if order >= 1 else None
    H = diff.hessian(f, x0, h=h, richardson=True).astype(np.float64) if order == 2 else None
    return TaylorModel(x0.astype(np.float64), order, value, g, H)


def _taylor_1d(f, x0, dx, order, h):
    as_array = np.ndim(x0) == 1
    x0 = as_float_array(x0, "x0")
    if not np.all(np.isfinite(x0)):
        raise ValueError("x0 must be finite")
    point = x0.reshape(-1)[0]
    g = (lambda t: f(np.full(1, t, dtype=x0.dtype))) if as_array else f
    value = chk.scalar_output(g(point))
    coefficients, errors = [value], [0.0]
    factorial = 1.0
    for j in range(1, order + 1):
        factorial *= j
        d, e = diff.derivative(g, point, order=j, h=h, richardson=True, full_output=True)
        coefficients.append(d / factorial)
        errors.append(e / factorial)
    c = np.array(coefficients)
    model = TaylorModel(x0.astype(np.float64).reshape(-1), order, value,
                        c[1:2].copy() if order >= 1 else None,
                        np.array([[2.0 * c[2]]]) if order >= 2 else None, c, np.array(errors))
    if dx is None:
        return model
    if np.ndim(dx) != (1 if as_array else 0) or np.size(dx) != 1:
        raise ValueError(f"dx must have x0's shape {(1,) if as_array else ()}, got {np.shape(dx)}")
    return model(float(np.asarray(dx, dtype=np.float64).reshape(-1)[0]))
