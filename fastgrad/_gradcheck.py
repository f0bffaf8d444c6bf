"""The gradient check of :func:`fastgrad.diff.check_grad`: finite differences that estimate their own
error, recognise a kink, and a verdict per entry.

For entry ``i`` with step ``h`` the check evaluates ``f`` at ``x +- h e_i`` and ``x +- h/2 e_i``:

* central differences ``D(h)``, ``D(h/2)`` and their Richardson value ``R = (4 D(h/2) - D(h)) / 3``
  (error ``O(h^4)``);
* the error estimate ``e = 2 |D(h/2) - D(h)| / 3 + 10 eps F / h`` (``F`` the largest ``|f|`` seen):
  twice the estimated truncation error of ``D(h/2)``, a bound on ``R``'s, plus the round-off;
* a kink indicator from the second differences ``s(t) = f(x + t) - 2 f(x) + f(x - t)``: for a smooth
  ``f``, ``s(h) = 4 s(h/2) + O(h^4)``, so ``|s(h) - 4 s(h/2)| / h`` is at round-off level; a kink of
  slope jump ``J`` within ``h`` of ``x`` makes it of order ``J`` (forward and backward one-sided
  differences disagree by more than curvature explains).

An entry passes when ``|g_i - R_i| <= atol + rtol |R_i|`` with ``atol`` the estimate ``e_i`` unless
given. Entries that fail, or that show a kink, are checked again at steps ``h/8, h/64, ...`` (down to
``sqrt(eps) max(1, |x_i|)``): the first smooth level decides. If every level shows a kink, ``f`` has a
kink at ``x`` along ``e_i``: the derivative does not exist, and the entry passes when ``g_i`` lies
between the one-sided derivatives (it is a subgradient of that section, as ReLU's 0 at 0 is).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Round-off allowance: multiples of eps |f| / h. A function summing many terms rounds to more
# than eps |f|; these factors leave room for that without hiding a relative error of 1e-5.
ROUNDOFF = 10.0
KINK_ROUNDOFF = 40.0
# Each recheck divides the step by this (a power of two keeps x + h exact in more cases).
SHRINK = 8.0


@dataclass(frozen=True)
class GradCheck:
    """Comparison of an analytic gradient with a finite-difference one.

    ``max_abs_error = max_i |g_i - fd_i|``; ``max_rel_error = max_i |g_i - fd_i| / max(|g_i|, |fd_i|)``
    (0 where both are 0); ``worst_index`` is the entry with the largest ratio ``|g_i - fd_i| / tol_i``
    (the one closest to failing, or failing most); ``ok`` is True when every entry passes.
    ``tolerance`` ``(n,)`` is ``tol_i = atol_i + rtol |fd_i|`` and ``fd_error`` ``(n,)`` the finite
    difference's own error estimate (the default ``atol_i``; ``atol`` is None then). ``kinks`` holds the
    entries whose section ``t -> f(x + t e_i)`` has a kink within the default step: they were decided
    at a smaller step or, for a kink at ``x`` itself, by the one-sided derivatives (there ``numeric``
    holds the point of ``[min, max]`` of the two one-sided derivatives nearest to ``g_i``).
    ``analytic`` and ``numeric`` hold both gradients (float64).
    """

    max_abs_error: float
    max_rel_error: float
    worst_index: int
    ok: bool
    rtol: float
    atol: float | None
    analytic: np.ndarray = field(repr=False)
    numeric: np.ndarray = field(repr=False)
    kinks: tuple = ()
    tolerance: np.ndarray = field(default=None, repr=False)
    fd_error: np.ndarray = field(default=None, repr=False)

    def __str__(self) -> str:
        i = self.worst_index
        verdict = "OK" if self.ok else "FAILED"
        atol = "auto" if self.atol is None else f"{self.atol:g}"
        kinks = ""
        if self.kinks:
            shown = ", ".join(str(k) for k in self.kinks[:10]) + (", ..." if len(self.kinks) > 10 else "")
            kinks = (f"; kinks (f not differentiable within the step) at entries {shown}, "
                     "checked at smaller steps / against the one-sided derivatives")
        return (f"gradient check {verdict} (rtol={self.rtol:g}, atol={atol}): "
                f"max abs error {self.max_abs_error:.3e}, max rel error {self.max_rel_error:.3e}; "
                f"worst entry {i}: analytic {self.analytic[i]:.10g} vs finite difference {self.numeric[i]:.10g}"
                f"{kinks}")


def estimates(f0, values, h, eps):
    """Per entry, from ``values`` ``(4, n)`` at ``x - h, x - h/2, x + h/2, x + h`` (along ``e_i``):
    ``(R, error estimate, kink indicator, kink threshold, forward, backward, round-off unit)``, the
    one-sided differences taken at ``h/2`` and the round-off unit ``eps max|f| / h``."""
    fm1, fm2, fp2, fp1 = (np.asarray(v, dtype=np.float64) for v in values)
    d1 = (fp1 - fm1) / (2.0 * h)
    d2 = (fp2 - fm2) / h
    r = (4.0 * d2 - d1) / 3.0
    noise = eps * np.maximum(np.max(np.abs(values), axis=0), abs(f0)) / h
    error = 2.0 * np.abs(d2 - d1) / 3.0 + ROUNDOFF * noise
    kink = np.abs((fp1 - 2.0 * f0 + fm1) - 4.0 * (fp2 - 2.0 * f0 + fm2)) / h
    forward = (fp2 - f0) / (h / 2.0)
    backward = (f0 - fm2) / (h / 2.0)
    return r, error, kink, KINK_ROUNDOFF * noise, forward, backward, noise


def _smooth(kink, threshold, r, g, rtol):
    """No kink: the second differences scale as ``h^2`` up to round-off and the relative tolerance."""
    return kink <= threshold + rtol * np.maximum(np.abs(r), np.abs(g))


def _tolerance(fd, fd_error, rtol, atol):
    return (fd_error if atol is None else atol) + rtol * np.abs(fd)


def compare(analytic, f0, values, h, h_min, eps, rtol, atol, evaluate) -> GradCheck:
    """The verdict for every entry (see the module doc). ``values`` ``(4, n)`` at the base steps ``h``;
    ``evaluate(i, t)`` returns the 4 values of entry ``i`` at step ``t``; ``h_min`` ``(n,)`` the
    smallest step tried."""
    g = analytic
    numeric, fd_error, kink, kink_thr, forward, backward, noise = estimates(f0, values, h, eps)
    numeric, fd_error = numeric.copy(), fd_error.copy()
    tol = _tolerance(numeric, fd_error, rtol, atol)
    kinky = ~_smooth(kink, kink_thr, numeric, g, rtol)
    passed = np.abs(g - numeric) <= tol
    kinks = []
    for i in np.flatnonzero(~passed | kinky):
        level = (numeric[i], fd_error[i], kinky[i], forward[i], backward[i], noise[i])
        t = h[i] / SHRINK
        first = True  # a failing smooth entry is rechecked once: a kink at ~h/3 can hide from the indicator
        while (level[2] or first) and t >= h_min[i]:
            first = False
            r, e, k, thr, fwd, bwd, nz = (float(v[0]) for v in estimates(f0, evaluate(i, t)[:, None], np.array([t]), eps))
            level = (r, e, not bool(_smooth(k, thr, r, g[i], rtol)), fwd, bwd, nz)
            t /= SHRINK
        r, e, still_kinky, fwd, bwd, nz = level
        if still_kinky:  # a kink at x itself: g_i must lie between the one-sided derivatives
            lo, hi = min(fwd, bwd), max(fwd, bwd)
            kinks.append(int(i))
            numeric[i] = min(max(g[i], lo), hi)
            fd_error[i] = 2.0 * ROUNDOFF * nz
            tol[i] = (fd_error[i] if atol is None else atol) + rtol * max(abs(lo), abs(hi))
            continue
        tol_i = float(_tolerance(np.array([r]), np.array([e]), rtol, atol)[0])
        if kinky[i] or (abs(g[i] - r) <= tol_i and not passed[i]):
            kinks.append(int(i))  # the default step crossed a kink near x; a smaller one did not
        numeric[i], fd_error[i], tol[i] = r, e, tol_i
    err = np.abs(g - numeric)
    passed = err <= tol
    scale = np.maximum(np.abs(g), np.abs(numeric))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, err / np.where(scale > 0, scale, 1.0), 0.0)
        ratio = np.where(err == 0, 0.0, err / tol)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    worst = int(np.argmax(ratio))
    return GradCheck(float(err.max()), float(rel.max()), worst, bool(np.all(passed)), rtol, atol, g, numeric,
                     tuple(sorted(kinks)), tol, fd_error)

