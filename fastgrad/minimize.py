"""Minimise a function of a 1-D array with fastgrad's fused optimizers or a damped Newton method."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastgrad import _diff_checks as chk, analysis, diff
from fastgrad._checks import as_float_array, as_int, as_scalar, check_choice
from fastgrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop

__all__ = ("minimize", "MinimizeResult", "METHODS")

# method -> (optimizer class, its fixed options, default lr)
_FIRST_ORDER = {
    "gd": (SGD, {}, 1e-2),
    "momentum": (SGD, {"momentum": 0.9}, 1e-2),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}, 1e-2),
    "rmsprop": (RMSprop, {}, 1e-2),
    "adagrad": (Adagrad, {}, 1e-2),
    "adam": (Adam, {}, 1e-3),
    "adamw": (AdamW, {}, 1e-3),
}
METHODS = tuple(_FIRST_ORDER) + ("newton", "lbfgs")


@dataclass(frozen=True)
class MinimizeResult:
    """``x`` the last iterate (float64), ``fun = f(x)``, ``grad_norm = ||grad f(x)||_2``, ``nit`` the
    number of updates (iterations for ``lbfgs``), ``converged`` (``grad_norm <= tol``), ``message``,
    and ``history``, a dict as chosen by :func:`minimize`'s ``history``: ``{}`` (False), ``{"fun":
    (nit + 1,)}`` ("f", the default) or ``{"x": (nit + 1, n), "fun": (nit + 1,)}`` (True), the start
    included."""

    x: np.ndarray
    fun: float
    grad_norm: float
    nit: int
    converged: bool
    history: dict
    message: str = ""


class _History:
    """The iterates kept for :class:`MinimizeResult`: none, the values of ``f``, or ``x`` and ``f``."""

    def __init__(self, mode):
        if mode is not True and mode is not False and mode != "f":
            raise ValueError(f"history must be False, True or 'f', got {mode!r}")
        self.mode = mode
        self.xs, self.fs = [], []

    def add(self, x, fx):
        if self.mode is True:
            self.xs.append(np.array(x, dtype=np.float64))
        if self.mode is not False:
            self.fs.append(float(fx))

    def result(self) -> dict:
        if self.mode is False:
            return {}
        out = {"fun": np.array(self.fs)}
        if self.mode is True:
            out["x"] = np.array(self.xs)
        return out


def minimize(f, x0, grad=None, method="adam", lr=None, max_iter=1000, tol=1e-8, callback=None,
             history="f", **options) -> MinimizeResult:
    """Minimise ``f: R^n -> R`` from 1-D ``x0`` until ``||grad f(x)||_2 <= tol`` or ``max_iter`` updates.

    ``grad=None`` uses :func:`fastgrad.diff.gradient` (compiled and parallel for an njit ``f``).
    First-order methods run one fused optimizer step per iteration, PyTorch semantics:
    ``gd`` (SGD), ``momentum`` (SGD, momentum 0.9), ``nesterov`` (SGD, momentum 0.9, Nesterov),
    ``rmsprop``, ``adagrad``, ``adam``, ``adamw``; ``options`` go to the optimizer (e.g.
    ``momentum=0.5``, ``betas=(0.9, 0.99)``). ``lr=None`` means 1e-3 for adam/adamw, 1e-2 otherwise.

    ``newton``: ``x <- x + lr p`` with ``(H + mu I) p = -g``, ``H`` the finite-difference Hessian
    (:func:`fastgrad.diff.hessian_from_gradient` when ``grad`` is given, else
    :func:`fastgrad.diff.hessian`; ``richardson=True`` in options extrapolates it), ``lr`` default 1.
    Levenberg-Marquardt damping: ``mu`` starts at ``options["damping"]`` (default 0); a step that is
    singular or does not decrease ``f`` is retried with ``mu = max(10 mu, 1e-3 max(1, max|H|))``; an
    accepted step divides ``mu`` by 10 (down to 0 below 1e-12). ``max_damping_tries`` (default 30)
    bounds the retries; if none decreases ``f`` the run stops with ``converged=False``.

    ``lbfgs``: scipy's L-BFGS-B (``scipy.optimize.minimize(method="L-BFGS-B")``, Byrd, Lu, Nocedal &
    Zhu 1995; needs scipy) driven by ``f`` and the gradient above (fastgrad's compiled finite
    differences when ``grad`` is None); options ``m`` (default 10, the number of correction pairs,
    scipy's ``maxcor``) and ``ftol`` (default 0: stop on the gradient, not on a small decrease of
    ``f``). scipy stops when the largest gradient entry is ``<= tol / sqrt(n)``, which implies
    ``||g||_2 <= tol``; ``max_iter`` bounds its iterations, ``lr`` is not used.

    ``history``: ``"f"`` (default) keeps ``f`` at every iterate (8 bytes per iteration), ``True`` also
    every ``x`` (``8 n (nit + 1)`` bytes: 400 MB for ``n = 2e5`` and 250 iterations), ``False`` nothing;
    scipy's ``OptimizeResult`` keeps no iterates either.
    ``callback(x, fun)`` is called after every update (``x`` a copy); returning True stops the run.
    A non-finite ``f`` or gradient stops the run. Raises ``ValueError``/``TypeError`` for bad options.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    check_choice(method, "method", METHODS)
    x = as_float_array(x0, "x0", ndim=1, dtype=np.float64).copy()
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 must be finite")
    max_iter = as_int(max_iter, "max_iter", low=0)
    tol = as_scalar(tol, "tol", low=0.0)
    default_lr = _FIRST_ORDER[method][2] if method in _FIRST_ORDER else 1.0
    lr = default_lr if lr is None else as_scalar(lr, "lr", low=0.0, low_open=True)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    record = _History(history)
    gradient = _gradient_function(f, grad, x.size)

    fx = chk.scalar_output(f(x))
    record.add(x, fx)
    if method == "lbfgs":
        x, fx, g, nit, message = _lbfgs(f, x, gradient, tol, max_iter, callback, record, options)
        gnorm = float(np.linalg.norm(g))
        return MinimizeResult(x, fx, gnorm, nit, bool(gnorm <= tol), record.result(), message)
    if method == "newton":
        step = _newton_stepper(f, grad, lr, options)
    else:
        cls, fixed, _ = _FIRST_ORDER[method]
        optimizer = cls(lr=lr, **{**fixed, **options})

        def step(x, g, fx):
            optimizer.step(x, g)
            return x, chk.scalar_output(f(x)), ""

    g = gradient(x)
    message = f"reached max_iter={max_iter}"
    nit = 0
    while True:
        gnorm = float(np.linalg.norm(g))
        if not (np.isfinite(gnorm) and np.isfinite(fx)):
            message = "stopped: non-finite function value or gradient"
            break
        if gnorm <= tol:
            message = f"converged: gradient norm {gnorm:.3g} <= tol {tol:g}"
            break
        if nit >= max_iter:
            break
        x, fx, failure = step(x, g, fx)
        if failure:
            message = failure
            break
        nit += 1
        record.add(x, fx)
        g = gradient(x)
        if callback is not None and callback(x.copy(), fx):
            message = "stopped by callback"
            break
    gnorm = float(np.linalg.norm(g))
    return MinimizeResult(x, fx, gnorm, nit, bool(gnorm <= tol), record.result(), message)


def _lbfgs(f, x, gradient, tol, max_iter, callback, record, options):
    """Run scipy's L-BFGS-B; returns ``(x, f(x), grad(x), iterations, message)``."""
    import scipy.optimize  # imported on use: `import fastgrad` must stay fast

    options = dict(options)
    m = as_int(options.pop("m", 10), "m", low=1)
    ftol = as_scalar(options.pop("ftol", 0.0), "ftol", low=0.0)
    if options:
        raise TypeError(f"unknown options for method 'lbfgs': {', '.join(sorted(options))}")
    last = {}

    def fun_and_grad(z):
        fz = chk.scalar_output(f(z))
        gz = gradient(z)
        last.update(x=z.copy(), f=fz, g=gz)
        return fz, gz

    stopped = []
    iterates = []

    def on_iteration(intermediate_result):
        # scipy >= 1.11 passes an OptimizeResult to a parameter of this name; older versions pass x
        xk = np.array(getattr(intermediate_result, "x", intermediate_result), dtype=np.float64)
        fk = float(getattr(intermediate_result, "fun", last["f"] if np.array_equal(last.get("x"), xk) else f(xk)))
        record.add(xk, fk)
        iterates.append((xk, fk))
        if callback is not None and callback(xk.copy(), fk):
            stopped.append(True)
            raise StopIteration

    settings = {"maxcor": m, "ftol": ftol, "gtol": tol / np.sqrt(x.size), "maxiter": max_iter,
                "maxfun": max(15000, 20 * max_iter)}
    try:
        res = scipy.optimize.minimize(fun_and_grad, x, jac=True, method="L-BFGS-B", callback=on_iteration,
                                      options=settings)
        x_end, f_end, nit, message = np.asarray(res.x, dtype=np.float64), float(res.fun), int(res.nit), str(res.message)
    except StopIteration:  # scipy < 1.11 lets the callback's StopIteration through
        (x_end, f_end), nit, message = iterates[-1], len(iterates), ""
    g_end = last["g"] if "x" in last and np.array_equal(last["x"], x_end) else gradient(x_end)
    message = "stopped by callback" if stopped else f"L-BFGS-B: {message}"
    return x_end, f_end, g_end, nit, message


def _gradient_function(f, grad, n):
    if grad is None:
        return lambda x: diff.gradient(f, x).astype(np.float64)
    if not callable(grad):
        raise TypeError(f"grad must be callable or None, got {type(grad).__name__}")
    return lambda x: chk.vector_output(grad(x), "grad", n)


def _newton_stepper(f, grad, lr, options):
    options = dict(options)
    mu = as_scalar(options.pop("damping", 0.0), "damping", low=0.0)
    tries = as_int(options.pop("max_damping_tries", 30), "max_damping_tries", low=1)
    richardson = bool(options.pop("richardson", False))
    if options:
        raise TypeError(f"unknown options for method 'newton': {', '.join(sorted(options))}")
    state = {"mu": mu}

    def step(x, g, fx):
        if grad is None:
            H = diff.hessian(f, x, richardson=richardson).astype(np.float64)
        else:
            H = diff.hessian_from_gradient(grad, x).astype(np.float64)
        floor = 1e-3 * max(1.0, float(np.max(np.abs(H))))
        mu = state["mu"]
        for _ in range(tries):
            try:
                p = analysis.newton_step(g, H, damping=mu)
            except analysis.SingularHessianError:
                p = None
            if p is not None:
                x_new = x + lr * p
                f_new = float(f(x_new))
                if np.isfinite(f_new) and f_new < fx:
                    state["mu"] = 0.0 if mu / 10.0 < 1e-12 else mu / 10.0
                    return x_new, f_new, ""
            mu = max(10.0 * mu, floor)
        state["mu"] = mu
        return x, fx, f"stopped: no damping up to {mu:.3g} gave a decrease of f"

    return step
