"""Finite-difference derivatives, gradients, Jacobians, Hessians and Hessian-vector products.

``f`` may be any Python callable, or a Numba-compiled function (``numba.njit``) taking a
1-D array (a float for :func:`derivative`): then every evaluation of ``f`` runs inside
compiled code, in parallel over coordinates, pairs of coordinates or points. Any other
callable is evaluated in a plain Python loop at exactly the same points, and the values
are combined by the same code, so both paths give the same numbers whenever ``f`` does.
A compiled ``f`` should be serial (no ``parallel=True``, no BLAS calls): it already runs
on every core, and nested parallelism oversubscribes them.

Steps. Unless ``h`` is given (a positive scalar or one step per coordinate, used as is),
``h_i = eps**(1 / (accuracy + order)) * max(1, |x_i|)`` rounded to the nearest power of two,
``eps`` the machine epsilon of ``x``'s dtype: ``eps**(1/3)`` for central first differences,
``eps**(1/4)`` for second differences (Hessians, Hessian-vector products). This balances
the truncation error ``O(h**accuracy)`` against the round-off ``O(eps / h**order)``, so a
first difference is good to about ``eps**(2/3)`` and a second difference to about
``eps**(1/2)``, relative to the scale of ``f``. An explicit step that vanishes against ``x``
(``x + h == x`` in ``x``'s dtype, for the smallest step taken) raises ``ValueError``.

dtypes. ``x`` may be float32 or float64 (integers become float64). ``f`` is evaluated at
points of ``x``'s dtype (a compiled ``f`` is specialised for it) and the step follows that
dtype's ``eps``; differences are combined in float64 and returned in ``x``'s dtype.

Failures of ``f``. An exception raised by ``f`` reaches the caller with its own type and message on
every path (in compiled parallel loops the failing point is evaluated again from Python); an ``f``
whose output changes length or type between points raises ``ValueError`` naming ``f``, the expected
and the received shape.

Threads. The evaluations are cut into blocks fixed by the input sizes, each value depends only on
its point, and values are combined in a fixed order: results are bit-identical for any thread count.
"""
from __future__ import annotations

import numpy as np

from fastgrad import _diff_checks as chk
from fastgrad import _stencils as st
from fastgrad._checks import as_float_array, as_int, as_scalar
from fastgrad._diff_checks import is_compiled
from fastgrad._gradcheck import GradCheck, compare as compare_checked

__all__ = ("derivative", "gradient", "jacobian", "hessian", "hessian_from_gradient", "hvp",
           "hvp_from_gradient", "check_grad", "GradCheck", "is_compiled")


def derivative(f, x, order=1, h=None, method="central", accuracy=2, richardson=False, full_output=False):
    """Derivative of any ``order >= 1`` of a scalar function ``f: R -> R`` at ``x`` (a scalar or any array).

    ``f^(order)(x) ~= sum_k w_k f(x + o_k h) / h**order`` with Fornberg's weights on the stencil of
    error ``O(h**accuracy)``: central (``accuracy`` even: ``-r..r``, ``r = (order-1)//2 + accuracy//2``)
    or forward/backward (``0..order+accuracy-1``, negated for backward); round-off ``O(eps / h**order)``.
    Default ``h = eps**(1/(accuracy+order)) * max(1, |x|)`` (see module doc).

    ``richardson=True`` evaluates the stencil at ``h``, ``h/2``, ``h/4`` and extrapolates twice
    (:func:`fastgrad._stencils.extrapolate`), from the larger default base step
    ``4 eps**(1/(accuracy + 2s + order)) max(1, |x|)`` (``s`` = 2 central, 1 one-sided); an explicit
    ``h`` is the base step. ``full_output=True`` returns ``(value, error)``, as numdifftools does:
    ``error`` estimates ``|value - f^(order)(x)|`` as twice the Richardson estimate of the truncation
    error (from the ``h/2`` level, or the change made by the last extrapolation) plus a round-off
    bound ``eps max|f| sum|w| / h**order``.

    Returns a float for a scalar ``x``, else an array of ``x``'s shape and dtype (``error`` likewise).
    Raises ``ValueError`` for bad options, non-finite ``x``, ``h <= 0`` or a step that vanishes
    against ``x`` (``x + h == x``), or an ``f`` that does not return a real scalar.
    """
    chk.check_f(f)
    order = as_int(order, "order", low=1)
    if order > st.MAX_ACCURACY:
        raise ValueError(f"order must be <= {st.MAX_ACCURACY}, got {order}")
    accuracy = chk.options(method, accuracy)
    scalar_input = np.ndim(x) == 0
    xs = as_float_array(x, "x").reshape(np.shape(x))
    if not np.all(np.isfinite(xs)):
        raise ValueError("x must be finite")
    flat = xs.reshape(-1)
    chk.scalar_output(f(flat[0]))
    offsets, weights = st.stencil(order, method, accuracy)
    s = st.error_step(method)
    if richardson:
        exponent = st.richardson_exponent(order, accuracy, method)
        base = (st.richardson_step(xs, exponent) if h is None else chk.steps(xs, h, 0.0, smallest=0.25)).reshape(-1)
        divisors = (1.0, 2.0, 4.0)
    else:
        base = chk.steps(xs, h, st.step_exponent(order, accuracy), smallest=0.5 if full_output else 1.0).reshape(-1)
        divisors = (1.0, 2.0) if full_output else (1.0,)
    levels, fmax = _derivative_levels(f, flat, [base / k for k in divisors], offsets, weights, order)
    eps = float(np.finfo(xs.dtype).eps)
    noise = eps * fmax * float(np.sum(np.abs(weights)))
    if richardson:
        d, trunc = st.extrapolate(*levels, accuracy, s)
        error = 2.0 * trunc + st.extrapolation_gain(accuracy, s) * noise / (base / 4.0) ** order
    else:
        d = levels[0]
        error = (2.0 * st.truncation_estimate(levels[0], levels[1], accuracy) + noise / base ** order
                 if full_output else None)
    if scalar_input:
        return (float(d[0]), float(error[0])) if full_output else float(d[0])
    d = d.reshape(xs.shape).astype(xs.dtype)
    return (d, error.reshape(xs.shape).astype(xs.dtype)) if full_output else d


def _derivative_levels(f, flat, steps_list, offsets, weights, order):
    """The stencil sum at each step of ``steps_list`` (one evaluation pass for all), and ``max|f|``
    per entry over every point."""
    points = np.ascontiguousarray(np.stack([flat + (o * hh).astype(flat.dtype)
                                            for hh in steps_list for o in offsets]).reshape(-1))
    values = np.empty(points.size, dtype=np.float64)
    chk.ops(f).scalar_values(f, points, values, chk.eval_blocks(points.size, 1000))
    values = values.reshape(len(steps_list), len(offsets), flat.size)
    fmax = np.max(np.abs(values), axis=(0, 1))
    levels = []
    for hh, vals in zip(steps_list, values):
        acc = None
        for w, row in zip(weights, vals):
            acc = w * row if acc is None else acc + w * row
        levels.append(acc / hh ** order)
    return levels, fmax


def gradient(f, x, h=None, method="central", accuracy=2):
    """Gradient ``(n,)`` of ``f: R^n -> R`` at 1-D ``x``: ``g_i ~= sum_k w_k f(x + o_k h_i e_i) / h_i``.

    Stencils and default steps as in :func:`derivative` (central, accuracy 2: ``h_i =
    eps**(1/3) max(1, |x_i|)``, error ``O(h^2)``, about ``eps**(2/3)`` relative). ``2n`` (central)
    evaluations plus one at ``x``. Raises ``ValueError`` for non-1-D or non-finite ``x``, ``h <= 0``,
    bad options, or an ``f`` that does not return a real scalar.
    """
    chk.check_f(f)
    accuracy = chk.options(method, accuracy)
    x = chk.point(x)
    f0 = chk.scalar_output(f(x))
    offsets, weights = st.stencil(1, method, accuracy)
    hh = chk.steps(x, h, st.step_exponent(1, accuracy))
    steps = st.stepped(x, offsets, hh)
    values = np.empty(steps.shape, dtype=np.float64)
    chk.ops(f).partial_values(f, x, steps, values, chk.eval_blocks(x.size, steps.shape[0] * x.size))
    return st.combine(values, f0, offsets, weights, hh, 1).astype(x.dtype)


def jacobian(f, x, h=None, method="central", accuracy=2):
    """Jacobian ``(m, n)`` of ``f: R^n -> R^m`` at 1-D ``x``: ``J[:, i] ~= sum_k w_k f(x + o_k h_i e_i) / h_i``.

    Same stencils and steps as :func:`gradient`; a scalar-valued ``f`` gives ``(1, n)``.
    Raises ``ValueError`` as :func:`gradient`, or when ``f`` returns more than a 1-D array.
    """
    chk.check_f(f)
    accuracy = chk.options(method, accuracy)
    x = chk.point(x)
    first = f(x)
    f0 = chk.vector_output(first, "f")
    offsets, weights = st.stencil(1, method, accuracy)
    hh = chk.steps(x, h, st.step_exponent(1, accuracy))
    steps = st.stepped(x, offsets, hh)
    blocks = chk.eval_blocks(x.size, steps.shape[0] * x.size)
    if np.ndim(first) == 0:  # a scalar f: the scalar loop (a compiled f's type is fixed at every point)
        values = np.empty(steps.shape, dtype=np.float64)
        chk.ops(f).partial_values(f, x, steps, values, blocks)
        values = values[..., None]
    else:
        values = np.empty(steps.shape + (f0.size,), dtype=np.float64)
        chk.ops(f).partial_vectors(f, x, steps, values, blocks)
    return np.ascontiguousarray(st.combine(values, f0, offsets, weights, hh[:, None], 1).T).astype(x.dtype)


def _hessian_at(f, x, f0, hh, rows, cols):
    """Central-difference Hessian with steps ``hh``: 3-point diagonal, 4-point cross off-diagonal.
    Returns ``(H, max|f|)`` over the points evaluated."""
    ops = chk.ops(f)
    n = x.size
    plus = x + hh.astype(x.dtype)
    minus = x - hh.astype(x.dtype)
    edge = np.empty((2, n), dtype=np.float64)
    ops.partial_values(f, x, np.stack([minus, plus]), edge, chk.eval_blocks(n, 2 * n))
    H = np.empty((n, n), dtype=np.float64)
    H[np.arange(n), np.arange(n)] = st.combine(edge, f0, (-1.0, 0.0, 1.0), (1.0, -2.0, 1.0), hh, 2)
    fmax = max(abs(f0), float(np.max(np.abs(edge))))
    if rows.size:
        corners = np.empty((rows.size, 4), dtype=np.float64)
        ops.pair_values(f, x, plus, minus, rows, cols, corners, chk.eval_blocks(rows.size, 4 * n))
        off = st.cross(corners, hh[rows], hh[cols])
        H[rows, cols] = off
        H[cols, rows] = off
        fmax = max(fmax, float(np.max(np.abs(corners))))
    return H, fmax


def hessian(f, x, h=None, richardson=False, full_output=False):
    """Symmetric Hessian ``(n, n)`` of ``f: R^n -> R`` at 1-D ``x`` by central differences.

    Diagonal: ``(f(x + h_i e_i) - 2 f(x) + f(x - h_i e_i)) / h_i^2``; off-diagonal (``i < j``,
    mirrored): ``(f_++ - f_+- - f_-+ + f_--) / (4 h_i h_j)`` with ``f_+-  = f(x + h_i e_i - h_j e_j)``
    (numdifftools' ``_central_even``-style cross stencil); ``2n^2 - n + 1`` evaluations, error ``O(h^2)``.
    Default ``h_i = eps**(1/4) max(1, |x_i|)``, where round-off ``O(eps |f| / h^2)`` rather than
    truncation limits the result (about 1e-7 relative on Rosenbrock at n = 200).

    ``richardson=True`` evaluates the same stencils at ``h``, ``h/2`` and ``h/4`` and extrapolates
    twice (Richardson): ``R = (64 H(h/4) - 20 H(h/2) + H(h)) / 45``, which cancels the ``h^2`` and
    ``h^4`` terms, leaving ``O(h^6)`` truncation plus round-off ``O(eps |f| / h^2)``. Since round-off
    then dominates, the base step is much larger: ``h_i = 4 eps**(1/8) max(1, |x_i|)`` (rounded to a
    power of two; 0.0625 for ``|x_i| <= 2`` in float64). Three times the evaluations; about 3e-11
    relative on Rosenbrock at n = 200 (plain: 5e-7). An explicit ``h`` is the base step.

    ``full_output=True`` returns ``(H, error)``, ``error`` ``(n, n)`` an estimate of ``|H - Hessian|``
    per entry: twice the Richardson estimate of the truncation error (plain: from the stencils at
    ``h/2`` as well, ``4/3 |H(h) - H(h/2)|``, doubling the evaluations; ``richardson``: the change
    made by the last extrapolation level) plus the round-off bound ``4 eps max|f| / (h_i h_j)``.
    ``H`` is the same as without ``full_output``. :func:`fastgrad.analysis.curvature` takes the pair.

    Raises ``ValueError`` for non-1-D or non-finite ``x``, ``h <= 0`` or a step that vanishes
    against ``x``, or an ``f`` that does not return a real scalar.
    """
    chk.check_f(f)
    x = chk.point(x)
    f0 = chk.scalar_output(f(x))
    rows, cols = np.triu_indices(x.size, 1)
    eps = float(np.finfo(x.dtype).eps)
    if not richardson:
        hh = chk.steps(x, h, 0.25, smallest=0.5 if full_output else 1.0)
        H, fmax = _hessian_at(f, x, f0, hh, rows, cols)
        if not full_output:
            return H.astype(x.dtype)
        H2, fmax2 = _hessian_at(f, x, f0, hh / 2.0, rows, cols)
        error = 2.0 * st.truncation_estimate(H, H2, 2) + 4.0 * eps * max(fmax, fmax2) / np.outer(hh, hh)
        return H.astype(x.dtype), error.astype(x.dtype)
    hh = st.richardson_step(x) if h is None else chk.steps(x, h, 0.0, smallest=0.25)
    levels, fmaxes = zip(*(_hessian_at(f, x, f0, hh / k, rows, cols) for k in (1.0, 2.0, 4.0)))
    H = st.richardson_combine(*levels)
    if not full_output:
        return H.astype(x.dtype)
    _, trunc = st.extrapolate(*levels, 2, 2)
    error = 2.0 * trunc + st.extrapolation_gain(2, 2) * 4.0 * eps * max(fmaxes) / np.outer(hh / 4.0, hh / 4.0)
    return H.astype(x.dtype), error.astype(x.dtype)


def hessian_from_gradient(grad, x, h=None, client=None, block_size=None):
    """Symmetric Hessian ``(n, n)`` from an analytic gradient: ``J_i = (g(x + h_i e_i) - g(x - h_i e_i)) / (2 h_i)``,
    ``H = (J + J^T) / 2``.

    ``2n`` gradient calls (in parallel for a compiled ``grad``); default ``h_i = eps**(1/3) max(1, |x_i|)``,
    error ``O(h^2)``. With a Dask ``client``, one task per ``block_size`` columns on the cluster
    (:func:`fastgrad.distributed.hessian_from_gradient`; ``grad`` must pickle): the same result exactly.
    Raises ``ValueError`` as :func:`gradient`, or when ``grad`` does not return shape ``(n,)``.
    """
    if client is not None:
        from fastgrad import distributed
        return distributed.hessian_from_gradient(grad, x, client=client, block_size=block_size, h=h)
    x, hh, steps = hessian_from_gradient_points(grad, x, h)
    values = np.empty((2, x.size, x.size), dtype=np.float64)
    chk.ops(grad).partial_vectors(grad, x, steps, values, chk.eval_blocks(x.size, 2 * x.size))
    return hessian_from_gradient_values(values, hh, x.dtype)


def hessian_from_gradient_points(grad, x, h=None):
    """Validated ``x``, the steps ``h_i`` and the ``(2, n)`` stepped coordinates ``x_i -/+ h_i`` at which
    :func:`hessian_from_gradient` evaluates ``grad`` (shared with its distributed twin)."""
    chk.check_f(grad, "grad")
    x = chk.point(x)
    chk.vector_output(grad(x), "grad", x.size)
    hh = chk.steps(x, h, st.step_exponent(1, 2))
    return x, hh, st.stepped(x, (-1.0, 1.0), hh)


def hessian_from_gradient_values(values, hh, dtype):
    """The symmetrised Hessian from ``values[k, j] = grad(x with x_j stepped by (-h_j, +h_j)[k])``."""
    J = st.combine(values, None, (-1.0, 1.0), (-0.5, 0.5), hh[:, None], 1)
    return ((J + J.T) / 2.0).astype(dtype)


def _direction(x, v):
    v = as_float_array(v, "v", ndim=1, dtype=x.dtype)
    if v.shape != x.shape:
        raise ValueError(f"v must have x's shape {x.shape}, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("v must be finite")
    return v, float(np.max(np.abs(v)))


def _along(x, vmax, h, exponent):
    """The scalar step ``t`` along ``v``: ``t * max|v|`` is the default or given step size."""
    if h is None:
        size = np.finfo(x.dtype).eps ** exponent * max(1.0, float(np.max(np.abs(x))))
        size = float(np.exp2(np.round(np.log2(size))))
    else:
        size = float(np.max(chk.steps(x, h, exponent)))
    return size / vmax


def hvp(f, x, v, h=None):
    """Hessian-vector product ``H(x) v`` ``(n,)`` without forming ``H``: a cross stencil between ``v`` and ``e_i``,

    ``(Hv)_i ~= (f(x+tv+h_i e_i) - f(x+tv-h_i e_i) - f(x-tv+h_i e_i) + f(x-tv-h_i e_i)) / (4 t h_i)``,
    ``4n`` evaluations, error ``O(h^2)``. Default ``h_i = eps**(1/4) max(1, |x_i|)`` and ``t`` with
    ``t max|v| = eps**(1/4) max(1, max|x|)``; an explicit ``h`` sets ``h_i`` and ``t max|v| = max h_i``.
    Raises ``ValueError`` for mismatched or non-finite ``v`` and as :func:`hessian`.
    """
    chk.check_f(f)
    x = chk.point(x)
    v, vmax = _direction(x, v)
    chk.scalar_output(f(x))
    if vmax == 0.0:
        return np.zeros_like(x)
    hh = chk.steps(x, h, 0.25)
    t = _along(x, vmax, h, 0.25)
    ops = chk.ops(f)
    sides = []
    for sign in (1.0, -1.0):
        base = x + (sign * t * v).astype(x.dtype)
        values = np.empty((2, x.size), dtype=np.float64)
        ops.partial_values(f, base, st.stepped(base, (-1.0, 1.0), hh), values, chk.eval_blocks(x.size, 2 * x.size))
        sides.append(values)
    (pm, pp), (mm, mp) = sides
    return (((pp - pm) - (mp - mm)) / (4.0 * t * hh)).astype(x.dtype)


def hvp_from_gradient(grad, x, v, h=None):
    """Hessian-vector product ``(g(x + t v) - g(x - t v)) / (2t)`` ``(n,)`` from two gradient calls.

    Default ``t`` with ``t max|v| = eps**(1/3) max(1, max|x|)`` (error ``O(t^2)``); an explicit
    scalar ``h`` sets ``t max|v| = h``. Raises ``ValueError`` for mismatched or non-finite ``v``,
    or when ``grad`` does not return shape ``(n,)``.
    """
    chk.check_f(grad, "grad")
    x = chk.point(x)
    v, vmax = _direction(x, v)
    if vmax == 0.0:
        chk.vector_output(grad(x), "grad", x.size)
        return np.zeros_like(x)
    t = _along(x, vmax, h, 1.0 / 3.0)
    gp = chk.vector_output(grad(x + (t * v).astype(x.dtype)), "grad", x.size)
    gm = chk.vector_output(grad(x - (t * v).astype(x.dtype)), "grad", x.size)
    return ((gp - gm) / (2.0 * t)).astype(x.dtype)


def check_grad(f, grad, x, h=None, rtol=1e-5, atol=None) -> GradCheck:
    """Compare an analytic gradient ``grad(x)`` ``(n,)`` with finite differences of ``f`` at 1-D ``x``.

    For each entry: central differences at ``h_i`` and ``h_i / 2`` (default ``h_i = eps**(1/3)
    max(1, |x_i|)``, a power of two: the step of least total error for a central difference, small
    enough to pass few kinks), their Richardson value ``fd_i`` (error ``O(h^4)``) and an estimate of
    its error ``e_i`` (the truncation estimate from the two steps plus the round-off ``10 eps max|f| /
    h_i``, so it scales with ``f``). Entry ``i`` passes when ``|g_i - fd_i| <= atol_i + rtol |fd_i|``
    with ``atol_i = e_i`` by default (``atol`` overrides it with one number). ``4n + 1`` evaluations.

    Kinks: where the forward and backward differences disagree by more than curvature explains
    (second differences not scaling as ``h^2``), or an entry fails, the entry is checked again at
    ``h/8, h/64, ...`` down to ``sqrt(eps) max(1, |x_i|)``; a kink at ``x`` itself is judged by the
    one-sided derivatives (``g_i`` between them passes). Such entries are listed in ``kinks`` and are
    not reported as a wrong gradient unless they fail there too. See :mod:`fastgrad._gradcheck`.

    Returns a :class:`GradCheck`. Raises ``ValueError`` as :func:`gradient`, or when ``grad`` does not
    return shape ``(n,)``.
    """
    chk.check_f(f)
    chk.check_f(grad, "grad")
    x = chk.point(x)
    rtol = as_scalar(rtol, "rtol", low=0.0)
    atol = None if atol is None else as_scalar(atol, "atol", low=0.0)
    analytic = chk.vector_output(grad(x), "grad", x.size)
    f0 = chk.scalar_output(f(x))
    hh = chk.steps(x, h, 1.0 / 3.0, smallest=0.5)
    offsets = (-1.0, -0.5, 0.5, 1.0)
    values = np.empty((4, x.size), dtype=np.float64)
    steps = np.ascontiguousarray(np.stack([x + (o * hh).astype(x.dtype) for o in offsets]))
    chk.ops(f).partial_values(f, x, steps, values, chk.eval_blocks(x.size, 4 * x.size))
    eps = float(np.finfo(x.dtype).eps)
    h_min = np.sqrt(eps) * np.maximum(1.0, np.abs(x.astype(np.float64)))

    def evaluate(i, t):
        w = x.copy()
        out = np.empty(4)
        for k, o in enumerate(offsets):
            w[i] = x[i] + x.dtype.type(o * t)
            out[k] = chk.scalar_output(f(w))
        return out

    return compare_checked(analytic, f0, values, hh, h_min, eps, rtol, atol, evaluate)
