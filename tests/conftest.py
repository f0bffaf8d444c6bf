"""Shared fixtures: the dtype fixture with per-dtype tolerances, a finite-difference helper, and the
session fixture that compiles fastgrad.sklearn's kernels before its tests."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Compiling a kernel the first time takes seconds; hypothesis must not count it.
settings.register_profile("fastgrad", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("fastgrad")

TOLERANCES = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


@pytest.fixture(scope="session", params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    """Each test runs once per supported float dtype."""
    return np.dtype(request.param)


@pytest.fixture(scope="session")
def sklearn_kernels():
    """Compile (or load from the disk cache) the kernels fastgrad.sklearn's estimators use, once per
    session and before the first test that needs them, so that each estimator check runs in
    milliseconds and no test's time is a compile: both dtypes, the mini-batch epoch (every layer
    kind is one compiled loop), L-BFGS's full-batch gradient, evaluation and prediction."""
    pytest.importorskip("sklearn")
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from fastgrad.sklearn import MLPClassifier, MLPRegressor
    X = np.linspace(-1, 1, 24).reshape(12, 2)
    y = np.arange(12) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for dtype in ("float32", "float64"):
            for params in (dict(solver="lbfgs"), dict(solver="adam", early_stopping=True, validation_fraction=0.25),
                           dict(solver="adam", dropout=0.1, batch_norm=True)):
                MLPClassifier((3,), max_iter=2, dtype=dtype, **params).fit(X, y).predict_proba(X)
                MLPRegressor((3,), max_iter=2, dtype=dtype, **params).fit(X, y).predict(X)


def rtol_for(dtype) -> float:
    """Relative tolerance for kernel-vs-reference comparisons in ``dtype``."""
    return TOLERANCES[np.dtype(dtype)]


def assert_close(actual, expected, dtype=None, rtol=None, atol_scale=None):
    """Compare with a tolerance scaled to the magnitude of ``expected``.

    ``atol = rtol * max(1, max|expected|)``: float32 kernels and NumPy round
    differently in the last bits, so an absolute error relative to the largest
    entry is the honest measure (as the issue's "scaled to the array's magnitude").
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if dtype is None:
        dtype = expected.dtype if expected.dtype in TOLERANCES else np.float64
    if rtol is None:
        rtol = rtol_for(dtype)
    finite = np.isfinite(expected)
    scale = float(np.max(np.abs(expected[finite]), initial=1.0)) if atol_scale is None else atol_scale
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(1.0, scale))


def central_diff(f, x, h=1e-6):
    """d f / d x by central differences in float64, for ``f`` returning a scalar.

    ``x`` is any-shape float64 array; returns an array of ``x``'s shape.
    """
    x = np.array(x, dtype=np.float64)
    g = np.empty_like(x)
    flat = x.reshape(-1)
    gf = g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        step = h * max(1.0, abs(old))
        flat[i] = old + step
        fp = f(x)
        flat[i] = old - step
        fm = f(x)
        flat[i] = old
        gf[i] = (fp - fm) / (2 * step)
    return g


def vjp_central_diff(f, x, grad_out, h=1e-6):
    """Vector-Jacobian product ``grad_out . d f(x) / d x`` by central differences (float64)."""
    grad_out = np.asarray(grad_out, dtype=np.float64)
    return central_diff(lambda z: float(np.sum(np.asarray(f(z), dtype=np.float64) * grad_out)), x, h)


def loss_of_params(model, X, y):
    """The model's loss as a function of a flat parameter vector (params restored after each call)."""
    p0 = model.params.copy()

    def f(p):
        model.params[:] = p
        try:
            return model.loss_and_grad(X, y)[0]
        finally:
            model.params[:] = p0
    return f, p0
