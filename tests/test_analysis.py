"""fastgrad.analysis: curvature classification, Newton steps, Taylor models."""
import numpy as np
import pytest

from fastgrad import analysis, diff


def test_saddle_minimum_maximum_and_condition():
    saddle = analysis.curvature(diff.hessian(lambda w: w[0] ** 2 - w[1] ** 2, np.zeros(2)))
    assert saddle.kind == "saddle"
    np.testing.assert_allclose(saddle.eigenvalues, [-2.0, 2.0], rtol=1e-9)
    assert saddle.condition_number == pytest.approx(1.0)

    bowl = analysis.curvature(diff.hessian(lambda w: w[0] ** 2 + w[1] ** 2, np.zeros(2)))
    assert bowl.kind == "minimum"
    np.testing.assert_allclose(bowl.eigenvalues, [2.0, 2.0], rtol=1e-9)

    cap = analysis.curvature(-np.eye(3))
    assert cap.kind == "maximum" and cap.condition_number == 1.0

    narrow = analysis.curvature(diff.hessian(lambda w: w[0] ** 2 + 10 * w[1] ** 2, np.zeros(2)))
    assert narrow.condition_number == pytest.approx(10.0, rel=1e-8)
    assert np.all(np.diff(narrow.eigenvalues) >= 0)


def test_degenerate_and_tolerance():
    flat = analysis.curvature(np.diag([1.0, 0.0]))
    assert flat.kind == "degenerate" and flat.condition_number == np.inf
    tiny = np.diag([1.0, 1e-14])
    assert analysis.curvature(tiny).kind == "minimum"
    assert analysis.curvature(tiny, tol=1e-10).kind == "degenerate"
    assert analysis.curvature(np.diag([1.0, -1e-20, 0.0])).kind == "degenerate"
    assert analysis.curvature(np.diag([1.0, -1.0, 0.0])).kind == "saddle"
    assert analysis.curvature(np.zeros((2, 2))).kind == "degenerate"


def test_newton_step_solves_and_damps():
    H = np.array([[4.0, 1.0], [1.0, 3.0]])
    g = np.array([1.0, 2.0])
    p = analysis.newton_step(g, H)
    np.testing.assert_allclose(H @ p, -g, rtol=1e-12)
    pd = analysis.newton_step(g, H, damping=2.0)
    np.testing.assert_allclose((H + 2 * np.eye(2)) @ pd, -g, rtol=1e-12)
    # on a quadratic one Newton step lands on the minimiser
    f = lambda w: 2 * (w[0] - 3) ** 2 + (w[1] + 1) ** 2 + w[0] * w[1]
    x = np.array([10.0, 10.0])
    x_new = x + analysis.newton_step(diff.gradient(f, x), diff.hessian(f, x))
    np.testing.assert_allclose(diff.gradient(f, x_new), 0.0, atol=1e-5)


def test_newton_step_singular():
    H = np.array([[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(analysis.SingularHessianError, match="singular"):
        analysis.newton_step(np.ones(2), H)
    with pytest.raises(ValueError):
        analysis.newton_step(np.ones(2), np.zeros((2, 2)))
    p = analysis.newton_step(np.array([1.0, -1.0]), H, on_singular="damp")
    assert np.all(np.isfinite(p)) and p @ np.array([1.0, -1.0]) < 0
    with pytest.raises(ValueError, match="grad must have shape"):
        analysis.newton_step(np.ones(3), H)
    with pytest.raises(ValueError, match="square"):
        analysis.curvature(np.ones((2, 3)))


def test_taylor_models():
    f = lambda w: np.exp(w[0]) + w[0] * w[1] ** 2
    x0 = np.array([0.0, 1.0])
    dx = np.array([0.1, -0.2])
    g = np.array([2.0, 0.0])
    H = np.array([[1.0, 2.0], [2.0, 0.0]])
    assert analysis.taylor(f, x0, dx, order=0) == pytest.approx(1.0)
    assert analysis.taylor(f, x0, dx, order=1) == pytest.approx(1.0 + g @ dx, rel=1e-9)
    assert analysis.taylor(f, x0, dx, order=2) == pytest.approx(1.0 + g @ dx + 0.5 * dx @ H @ dx, rel=1e-7)
    # the second-order model is closer to f than the first-order one
    exact = f(x0 + dx)
    assert abs(analysis.taylor(f, x0, dx, 2) - exact) < abs(analysis.taylor(f, x0, dx, 1) - exact) / 5
    with pytest.raises(ValueError, match="order must be"):
        analysis.taylor(f, x0, dx, order=3)
    with pytest.raises(ValueError, match="dx must have"):
        analysis.taylor(f, x0, np.ones(3))
