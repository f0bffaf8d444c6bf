"""The strong-Wolfe line search of L-BFGS: bracketing, then zoom by cubic interpolation.

The algorithm is Nocedal & Wright, *Numerical Optimization* (2nd ed.), Algorithms 3.5
(bracketing) and 3.6 (zoom), with the safeguards of Mark Schmidt's minFunc as PyTorch's
``torch/optim/lbfgs.py`` (``_strong_wolfe``, ``_cubic_interpolate``) implements them; the
steps, tests and safeguards below follow that implementation in the same order, so that
:class:`fastgrad.optim.LBFGS` takes PyTorch's iterates.
"""
from __future__ import annotations

import numpy as np


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through ``(x1, f1)``, ``(x2, f2)`` with slopes ``g1``, ``g2``,
    clipped to ``bounds`` (default: the interval spanned by ``x1``, ``x2``); the midpoint of the
    bounds when the cubic has no minimiser or ``x1 == x2``. (Nocedal & Wright eq. 3.59.)

    ``d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2)``, ``d2 = sqrt(d1^2 - g1 g2)``,
    ``x = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)`` (for ``x1 <= x2``).
    """
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    if x1 == x2:  # a bracket shrunk to a point (it happens near convergence): no cubic through it
        return (xmin_bound + xmax_bound) / 2.0
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        # A cubic that is a straight line (equal slopes g1 = g2 on a linear f) divides by 0: the
        # minimiser is at infinity and clips to a bound, as PyTorch's tensor arithmetic gives;
        # 0 / 0 (a constant: no minimiser) takes the midpoint below, where PyTorch's step is NaN.
        with np.errstate(divide="ignore", invalid="ignore"):
            if x1 <= x2:
                min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
            else:
                min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        if min_pos == min_pos:
            return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def strong_wolfe(obj_func, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step ``t`` along ``d`` meeting the strong Wolfe conditions
    ``f(t) <= f + c1 t gtd`` and ``|f'(t)| <= -c2 gtd``, in at most ``max_ls`` evaluations.

    ``obj_func(t) -> (f(x + t d), gradient there as a new array)``; ``f``, ``g``, ``gtd`` are
    the value, gradient and directional derivative at ``t = 0``. Returns
    ``(f_new, g_new, t, n_evals)`` for the best step found.
    """
    d_norm = np.max(np.abs(d))
    f_new, g_new = obj_func(t)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)

    # Bracketing (Algorithm 3.5): grow t until an interval holds a strong-Wolfe step.
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        # extrapolate by cubic interpolation within [t + 0.01 (t - t_prev), 10 t]
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj_func(t)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:  # reached the evaluation budget: the best of 0 and t
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # Zoom (Algorithm 3.6): shrink the bracket by cubic interpolation, keeping away from its ends.
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # minFunc's safeguard: a point too near an end of the bracket, twice in a row or
        # outside it, moves to 10% of the bracket's width from that end.
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(t)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals
