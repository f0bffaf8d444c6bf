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


# --- Taylor models of any order (issue 16) ---------------------------------------------------

def test_taylor_coefficients_of_sin_and_exp():
    import math
    sin = analysis.taylor(np.sin, 0.0, order=7)
    exact = [0.0, 1.0, 0.0, -1 / 6, 0.0, 1 / 120, 0.0, -1 / 5040]
    np.testing.assert_allclose(sin.coefficients, exact, atol=1e-8)
    assert np.all(np.abs(sin.coefficients - exact) <= sin.errors + 1e-300)
    exp = analysis.taylor(np.exp, 0.0, order=6)
    np.testing.assert_allclose(exp.coefficients, [1 / math.factorial(j) for j in range(7)], rtol=1e-7)
    # around another point: c_j = f^(j)(x0) / j!
    at1 = analysis.taylor(np.exp, 1.0, order=4)
    np.testing.assert_allclose(at1.coefficients, [np.e / math.factorial(j) for j in range(5)], rtol=1e-7)
    assert at1.value == np.e and at1.gradient.shape == (1,) and at1.hessian[0, 0] == pytest.approx(np.e, rel=1e-8)


def test_taylor_table_of_the_article_and_the_third_order_term():
    """sin around 0 at h = 0.1, 0.5, 1, 2: order 1 and 2 both give h (f''(0) = 0); the third-order
    term (1/6) f'''(0) h^3 = -h^3/6 is the first correction."""
    for h in (0.1, 0.5, 1.0, 2.0):
        assert analysis.taylor(np.sin, 0.0, h, order=1) == pytest.approx(h, rel=1e-9)
        assert analysis.taylor(np.sin, 0.0, h, order=2) == pytest.approx(h, rel=1e-9)
        assert analysis.taylor(np.sin, 0.0, h, order=3) == pytest.approx(h - h ** 3 / 6, rel=1e-8)
    model = analysis.taylor(np.sin, 0.0, order=3)
    assert model(0.5) == pytest.approx(0.5 - 0.5 ** 3 / 6, rel=1e-8)
    assert abs(model(0.1) - np.sin(0.1)) < 1e-7 < 1e-4 < abs(0.1 - np.sin(0.1))  # h^5/120 vs h^3/6
    # x^3 at 2: its order-3 model is the function itself
    cube = analysis.taylor(lambda t: t ** 3, 2.0, order=3)
    np.testing.assert_allclose(cube.coefficients, [8.0, 12.0, 6.0, 1.0], rtol=1e-7)
    assert cube(1.5) == pytest.approx(3.5 ** 3, rel=1e-7)


def test_taylor_one_element_array_and_several_variables():
    f1 = lambda w: float(np.exp(w[0]))
    m = analysis.taylor(f1, np.array([0.0]), order=4)
    np.testing.assert_allclose(m.coefficients, [1, 1, 0.5, 1 / 6, 1 / 24], rtol=1e-7)
    assert analysis.taylor(f1, np.array([0.0]), np.array([0.1]), order=4) == pytest.approx(m(0.1))
    f = lambda w: np.exp(w[0]) + w[0] * w[1] ** 2
    model = analysis.taylor(f, np.array([0.0, 1.0]))
    assert model.coefficients is None and model.value == 1.0
    np.testing.assert_allclose(model.gradient, [2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(model.hessian, [[1.0, 2.0], [2.0, 0.0]], atol=1e-8)
    dx = np.array([0.1, -0.2])
    assert model(dx) == pytest.approx(analysis.taylor(f, np.array([0.0, 1.0]), dx), rel=1e-7)
    with pytest.raises(ValueError, match="order must be 0, 1 or 2 for a function of several variables"):
        analysis.taylor(f, np.array([0.0, 1.0]), order=3)
    with pytest.raises(ValueError, match="dx must have x0's size"):
        model(np.ones(3))
    with pytest.raises(ValueError, match="order must be <= 12"):
        analysis.taylor(np.sin, 0.0, order=13)


def test_taylor_against_numdifftools():
    nd = pytest.importorskip("numdifftools")
    f = lambda t: np.exp(np.sin(t))
    ours = analysis.taylor(f, 0.3, order=4).coefficients
    import math
    theirs = [f(0.3)] + [float(nd.Derivative(f, n=j)(0.3)) / math.factorial(j) for j in range(1, 5)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


# --- curvature verdicts that know their own error (issue 16) ---------------------------------

def test_flat_quartics_are_degenerate_within_the_error_estimate():
    quartic = lambda w: w[0] ** 4
    saddle4 = lambda w: w[0] ** 4 - w[1] ** 4
    for f, n in ((quartic, 1), (saddle4, 2)):
        H = diff.hessian(f, np.zeros(n))
        # the plain stencil's own error (2 h^2 = 3e-8) decides without an error estimate ...
        assert analysis.curvature(H).kind in ("minimum", "saddle")
        # ... and not with one, whichever way it is passed and whatever the step
        pair = diff.hessian(f, np.zeros(n), full_output=True)
        np.testing.assert_array_equal(pair[0], H)
        assert analysis.curvature(pair).kind == "degenerate"
        assert analysis.curvature(pair[0], error=pair[1]).kind == "degenerate"
        for h in (1e-3, 1e-2, 0.1):
            assert analysis.curvature(diff.hessian(f, np.zeros(n), h=h, full_output=True)).kind == "degenerate"
        assert analysis.curvature(diff.hessian(f, np.zeros(n), richardson=True, full_output=True)).kind == "degenerate"


def test_clear_verdicts_survive_the_error_estimate():
    cases = {"minimum": lambda w: w[0] ** 2 + 3 * w[1] ** 2 + w[0] * w[1],
             "maximum": lambda w: -np.cosh(w[0]) - w[1] ** 2,
             "saddle": lambda w: w[0] ** 2 - w[1] ** 2 + w[0] ** 4}
    for kind, f in cases.items():
        for richardson in (False, True):
            c = analysis.curvature(diff.hessian(f, np.array([0.0, 0.0]), richardson=richardson, full_output=True))
            assert c.kind == kind and c.zero_below < 1e-5
    # a real but small curvature is seen once the steps resolve it
    slight = lambda w: 1e-3 * w[0] ** 2 + w[1] ** 2
    assert analysis.curvature(diff.hessian(slight, np.zeros(2), full_output=True)).kind == "minimum"


def test_hessian_error_estimate_covers_the_error():
    from fastgrad import testfunctions as T
    x = np.random.default_rng(3).uniform(-2, 2, 12)
    exact = T.rosenbrock_hess(x)
    for richardson in (False, True):
        H, err = diff.hessian(T.rosenbrock_jit, x, richardson=richardson, full_output=True)
        assert err.shape == H.shape and np.all(np.abs(H - exact) <= err)
        assert np.max(err) < (1e-3 if not richardson else 1e-6) * np.max(np.abs(exact))
    f = lambda w: np.sin(w[0]) * np.exp(w[1])
    H, err = diff.hessian(f, np.array([0.4, -0.3]), full_output=True)
    a, b = 0.4, -0.3
    exact = np.array([[-np.sin(a) * np.exp(b), np.cos(a) * np.exp(b)], [np.cos(a) * np.exp(b), np.sin(a) * np.exp(b)]])
    assert np.all(np.abs(H - exact) <= err)


def test_curvature_error_argument_checks():
    with pytest.raises(ValueError, match="error must have H's shape"):
        analysis.curvature(np.eye(2), error=np.ones((3, 3)))
    with pytest.raises(ValueError, match="error must be >= 0"):
        analysis.curvature(np.eye(2), error=-1.0)
    with pytest.raises(ValueError, match="pair"):
        analysis.curvature((np.eye(2), np.zeros((2, 2))), error=0.0)
    assert analysis.curvature(np.diag([1.0, 1e-3]), error=1e-3).kind == "degenerate"  # 2 x 1e-3 bound
    assert analysis.curvature(np.diag([1.0, 1e-3]), error=1e-4).kind == "minimum"
