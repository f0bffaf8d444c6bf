"""The result of :func:`fastgrad.diff.check_grad`: an analytic gradient against finite differences."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GradCheck:
    """Comparison of an analytic gradient with a finite-difference one.

    ``max_abs_error = max_i |g_i - fd_i|``; ``max_rel_error = max_i |g_i - fd_i| / max(|g_i|, |fd_i|)``
    (0 where both are 0); ``worst_index`` is the entry with the largest ratio
    ``|g_i - fd_i| / (atol + rtol |fd_i|)`` (the one closest to failing, or failing most);
    ``ok`` is True when every entry has ``|g_i - fd_i| <= atol + rtol |fd_i|``.
    ``analytic`` and ``numeric`` hold both gradients (float64).
    """

    max_abs_error: float
    max_rel_error: float
    worst_index: int
    ok: bool
    rtol: float
    atol: float
    analytic: np.ndarray = field(repr=False)
    numeric: np.ndarray = field(repr=False)

    def __str__(self) -> str:
        i = self.worst_index
        verdict = "OK" if self.ok else "FAILED"
        return (f"gradient check {verdict} (rtol={self.rtol:g}, atol={self.atol:g}): "
                f"max abs error {self.max_abs_error:.3e}, max rel error {self.max_rel_error:.3e}; "
                f"worst entry {i}: analytic {self.analytic[i]:.10g} vs finite difference {self.numeric[i]:.10g}")


def compare_gradients(analytic: np.ndarray, numeric: np.ndarray, rtol: float, atol: float) -> GradCheck:
    """Build a :class:`GradCheck` from two float64 gradients of the same shape."""
    err = np.abs(analytic - numeric)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, err / np.where(scale > 0, scale, 1.0), 0.0)
        ratio = err / (atol + rtol * np.abs(numeric))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    worst = int(np.argmax(np.where(err == 0, 0.0, ratio)))
    ok = bool(np.all(err <= atol + rtol * np.abs(numeric)))
    return GradCheck(float(err.max()), float(rel.max()), worst, ok, rtol, atol, analytic, numeric)
