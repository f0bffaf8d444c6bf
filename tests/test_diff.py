"""fastgrad.diff: known answers, analytic derivatives, compiled vs Python path, bad input."""
import numba  # a user's compiled function, exactly as a user writes it
import numpy as np
import pytest
from hypothesis import given, strategies as hst

from fastgrad import diff, testfunctions as T
from fastgrad import _diff_checks as chk, _stencils as st
from fastgrad.reference import diff as R


@numba.njit
def ros_loop(x):
    """Chained Rosenbrock without fastmath: the compiled and Python paths round identically."""
    s = 0.0
    for i in range(x.size - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        s += 100.0 * a * a + b * b
    return s


@numba.njit
def cube(t):
    return t * t * t


@numba.njit
def vec(x):
    out = np.empty(3)
    out[0] = x[0] * x[1]
    out[1] = np.sin(x[0])
    out[2] = x[1] * x[1] * x[2]
    return out


def vec_jacobian(x):
    return np.array([[x[1], x[0], 0.0], [np.cos(x[0]), 0.0, 0.0], [0.0, 2 * x[1] * x[2], x[1] ** 2]])


def rel_err(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


# --- known answers -------------------------------------------------------------------------

def test_hessian_known_quadratic():
    f = lambda w: w[0] ** 2 + 2 * w[1] ** 2 + w[0] * w[1] + 3 * w[2] ** 2
    expected = np.array([[2.0, 1, 0], [1, 4, 0], [0, 0, 6]])
    for x in (np.zeros(3), np.array([0.3, -1.0, 2.0])):
        np.testing.assert_allclose(diff.hessian(f, x), expected, atol=1e-6)
        np.testing.assert_allclose(diff.hessian(f, x, richardson=True), expected, atol=1e-10)
        np.testing.assert_allclose(R.hessian(f, x), expected, atol=1e-6)


def test_derivative_known_values():
    assert diff.derivative(lambda t: (t * t + 1) ** 3, 2.0) == pytest.approx(300.0, rel=1e-9)
    assert diff.derivative(lambda t: t ** 3, 2.0, order=2) == pytest.approx(12.0, rel=1e-7)
    assert isinstance(diff.derivative(cube, 2.0), float)
    for method in st.METHODS:
        for accuracy in (2, 4):
            assert diff.derivative(cube, 2.0, method=method, accuracy=accuracy) == pytest.approx(12.0, rel=1e-6)
            assert diff.derivative(cube, 2.0, order=2, method=method, accuracy=accuracy) == pytest.approx(12.0, rel=1e-4)


def test_gradient_known_value():
    f = lambda w: w[0] ** 2 + 3 * w[0] * w[1] + w[1] ** 2
    np.testing.assert_allclose(diff.gradient(f, [1.0, 2.0]), [8.0, 7.0], rtol=1e-9)
    for method in st.METHODS:
        np.testing.assert_allclose(diff.gradient(f, [1.0, 2.0], method=method, accuracy=4), [8.0, 7.0], rtol=1e-8)


def test_derivative_array_shape_and_both_paths():
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    d = diff.derivative(cube, x)
    assert d.shape == (3, 4) and d.dtype == np.float64
    np.testing.assert_allclose(d, 3 * x ** 2, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(d, diff.derivative(cube.py_func, x))
    np.testing.assert_allclose(diff.derivative(cube, x, order=2), 6 * x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d, R.derivative(cube.py_func, x), rtol=1e-12, atol=1e-12)


def test_stencil_weights_are_exact_tables():
    assert st.stencil(1, "central", 4)[1] == pytest.approx((1 / 12, -8 / 12, 8 / 12, -1 / 12))
    assert st.stencil(2, "central", 2) == ((-1.0, 0.0, 1.0), (1.0, -2.0, 1.0))
    assert st.stencil(2, "forward", 2)[1] == (2.0, -5.0, 4.0, -1.0)
    offsets, weights = st.stencil(1, "backward", 2)
    assert offsets == (0.0, -1.0, -2.0) and weights == (1.5, -2.0, 0.5)


def test_default_step_rule():
    x = np.array([0.0, 0.5, 3.0, -100.0])
    eps = np.finfo(np.float64).eps
    h = st.default_step(x, 1 / 3)
    raw = eps ** (1 / 3) * np.maximum(1, np.abs(x))
    assert np.all(np.log2(h) == np.round(np.log2(h)))  # powers of two
    assert np.all((h / raw > 2 ** -0.51) & (h / raw < 2 ** 0.51))
    h32 = st.default_step(x.astype(np.float32), 1 / 4)
    np.testing.assert_allclose(h32, np.finfo(np.float32).eps ** 0.25 * np.maximum(1, np.abs(x)), rtol=0.42)


# --- analytic references -------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 10, 57, 200])
def test_rosenbrock_gradient_and_hessian(n):
    x = np.random.default_rng(n).uniform(-2, 2, n)
    g, H = T.rosenbrock_grad(x), T.rosenbrock_hess(x)
    assert rel_err(diff.gradient(T.rosenbrock_jit, x), g) < 1e-8
    assert rel_err(diff.gradient(T.rosenbrock_jit, x, accuracy=4), g) < 1e-10
    assert rel_err(diff.hessian(T.rosenbrock_jit, x), H) < 1e-6
    assert rel_err(diff.hessian_from_gradient(T.rosenbrock_grad_jit, x), H) < 1e-8
    v = np.random.default_rng(0).normal(size=n)
    assert rel_err(diff.hvp(T.rosenbrock_jit, x, v), H @ v) < 1e-6
    assert rel_err(diff.hvp_from_gradient(T.rosenbrock_grad_jit, x, v), H @ v) < 1e-8
    assert diff.check_grad(T.rosenbrock_jit, T.rosenbrock_grad_jit, x).ok


@given(n=hst.integers(1, 8), seed=hst.integers(0, 2 ** 31))
def test_random_quadratics(n, seed):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    A = M + M.T
    f, grad, hess = T.quadratic(A, rng.normal(size=n))
    x = rng.uniform(-3, 3, n)
    scale = max(1.0, np.abs(A).max())
    np.testing.assert_allclose(diff.gradient(f, x), grad(x), atol=1e-7 * scale * max(1, np.abs(x).max()))
    np.testing.assert_allclose(diff.hessian(f, x), A, atol=1e-5 * scale)
    np.testing.assert_allclose(diff.hessian(f, x, richardson=True), A, atol=1e-8 * scale)
    np.testing.assert_allclose(diff.hessian_from_gradient(grad, x), A, atol=1e-8 * scale)
    H = diff.hessian(f, x)
    np.testing.assert_array_equal(H, H.T)


def test_jacobian_of_vector_function():
    x = np.array([0.7, -1.3, 2.0])
    J = diff.jacobian(vec, x)
    assert J.shape == (3, 3)
    np.testing.assert_allclose(J, vec_jacobian(x), atol=1e-9)
    np.testing.assert_allclose(diff.jacobian(vec, x, accuracy=4), vec_jacobian(x), atol=1e-11)
    np.testing.assert_array_equal(J, diff.jacobian(vec.py_func, x))
    np.testing.assert_allclose(J, R.jacobian(vec.py_func, x), rtol=1e-12, atol=1e-12)
    assert diff.jacobian(lambda z: float(z @ z), x).shape == (1, 3)
    np.testing.assert_allclose(diff.jacobian(ros_loop, x), T.rosenbrock_grad(x)[None, :], rtol=1e-8)  # compiled scalar f


# --- compiled and Python paths -------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 7, 16])
def test_compiled_and_python_paths_agree(n):
    x = np.random.default_rng(n).uniform(-2, 2, n)
    v = np.random.default_rng(1).normal(size=n)
    py = ros_loop.py_func
    np.testing.assert_array_equal(diff.gradient(ros_loop, x), diff.gradient(py, x))
    np.testing.assert_array_equal(diff.gradient(ros_loop, x, method="forward", accuracy=4),
                                  diff.gradient(py, x, method="forward", accuracy=4))
    np.testing.assert_array_equal(diff.hessian(ros_loop, x), diff.hessian(py, x))
    np.testing.assert_array_equal(diff.hessian(ros_loop, x, richardson=True), diff.hessian(py, x, richardson=True))
    np.testing.assert_array_equal(diff.hvp(ros_loop, x, v), diff.hvp(py, x, v))
    # the plain reference loop takes the same steps and the same order of operations
    np.testing.assert_array_equal(diff.hessian(ros_loop, x), R.hessian(py, x))
    np.testing.assert_allclose(diff.hessian(ros_loop, x, richardson=True), R.hessian(py, x, richardson=True),
                               rtol=1e-12, atol=1e-12 * np.abs(T.rosenbrock_hess(x)).max())
    np.testing.assert_allclose(diff.gradient(ros_loop, x), R.gradient(py, x), rtol=1e-12, atol=1e-12)


def test_parallel_blocks_match_serial(monkeypatch):
    x = np.random.default_rng(5).uniform(-2, 2, 150)
    serial_free = diff.hessian(ros_loop, x)
    monkeypatch.setattr(chk, "PARALLEL_WORK", 10 ** 12)  # force the serial branch
    np.testing.assert_array_equal(diff.hessian(ros_loop, x), serial_free)
    np.testing.assert_array_equal(diff.hessian_from_gradient(T.rosenbrock_grad_jit, x),
                                  diff.hessian_from_gradient(T.rosenbrock_grad_jit, x))


def test_float32_input():
    x = np.random.default_rng(3).uniform(-1.5, 1.5, 6).astype(np.float32)
    g = diff.gradient(T.rosenbrock_jit, x)
    assert g.dtype == np.float32
    exact = T.rosenbrock_grad(x.astype(np.float64))
    assert rel_err(g.astype(np.float64), exact) < 1e-3
    H = diff.hessian(T.rosenbrock_jit, x)
    assert H.dtype == np.float32 and rel_err(H.astype(np.float64), T.rosenbrock_hess(x.astype(np.float64))) < 1e-2


# --- check_grad ----------------------------------------------------------------------------

def test_check_grad_detects_a_wrong_gradient():
    x = np.array([1.0, 2.0, -0.5, 0.3])
    good = diff.check_grad(T.rosenbrock, T.rosenbrock_grad, x)
    assert good.ok and good.max_rel_error < 1e-8 and "OK" in str(good)

    def wrong(z):
        g = T.rosenbrock_grad(z)
        g[2] *= 1.001
        return g

    bad = diff.check_grad(T.rosenbrock, wrong, x)
    assert not bad.ok and bad.worst_index == 2
    assert bad.max_rel_error == pytest.approx(1e-3, rel=1e-2)
    assert "FAILED" in str(bad) and "entry 2" in str(bad)
    assert diff.check_grad(T.rosenbrock, wrong, x, rtol=1e-2).ok


# --- bad input -----------------------------------------------------------------------------

def test_bad_input():
    f = lambda w: float(w @ w)
    with pytest.raises(ValueError, match="x must be 1-D"):
        diff.gradient(f, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        diff.hessian(f, [1.0, np.nan])
    with pytest.raises(ValueError, match="must return a real scalar"):
        diff.gradient(lambda w: w * 2, np.ones(3))
    with pytest.raises(ValueError, match="must return a real scalar"):
        diff.hessian(vec, np.ones(3))
    with pytest.raises(ValueError, match="must return a real scalar"):
        diff.derivative(lambda t: np.array([t, t]), 1.0)
    with pytest.raises(ValueError, match="h must be > 0"):
        diff.gradient(f, np.ones(3), h=0.0)
    with pytest.raises(ValueError, match="h must be finite and > 0"):
        diff.hessian(f, np.ones(3), h=np.array([1e-3, -1e-3, 1e-3]))
    with pytest.raises(ValueError, match="h must be a scalar or have x's shape"):
        diff.gradient(f, np.ones(3), h=np.ones(2))
    with pytest.raises(ValueError, match="v must have x's shape"):
        diff.hvp(f, np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="v must have x's shape"):
        diff.hvp_from_gradient(lambda w: 2 * w, np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="grad must return"):
        diff.hessian_from_gradient(lambda w: 1.0, np.ones(3))
    with pytest.raises(ValueError, match="method must be one of"):
        diff.gradient(f, np.ones(3), method="upwind")
    with pytest.raises(ValueError, match="accuracy must be an even integer"):
        diff.gradient(f, np.ones(3), accuracy=3)
    with pytest.raises(ValueError, match="accuracy must be an integer in 1..16"):
        diff.gradient(f, np.ones(3), method="forward", accuracy=0)
    with pytest.raises(ValueError, match="order must be >= 1"):
        diff.derivative(cube, 1.0, order=0)
    with pytest.raises(TypeError, match="f must be callable"):
        diff.gradient(3.0, np.ones(3))
    with pytest.raises(TypeError):
        diff.gradient(f, "abc")


def test_zero_direction_and_explicit_steps():
    f = lambda w: float(np.sum(w ** 4))
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(diff.hvp(f, x, np.zeros(2)), np.zeros(2))
    np.testing.assert_allclose(diff.gradient(f, x, h=1e-5), 4 * x ** 3, rtol=1e-8)
    np.testing.assert_allclose(diff.gradient(f, x, h=np.array([1e-5, 2e-5])), 4 * x ** 3, rtol=1e-8)
    np.testing.assert_allclose(diff.hessian(f, x, h=0.05, richardson=True), np.diag(12 * x ** 2), rtol=1e-11, atol=1e-11)


# --- kernels against their twins -----------------------------------------------------------

def _public_functions(module):
    return {name for name, obj in vars(module).items()
            if callable(obj) and not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__}


def test_kernel_and_reference_names_match():
    from fastgrad.kernels import finite_diff as K, testfunctions as KT
    from fastgrad.reference import finite_diff as RF
    assert _public_functions(K) == _public_functions(RF) == {"scalar_values", "partial_values",
                                                             "partial_vectors", "pair_values"}
    assert {"rosenbrock", "rosenbrock_grad"} <= set(vars(T)) and _public_functions(KT) == {"rosenbrock", "rosenbrock_grad"}


@pytest.mark.parametrize("n", [2, 5, 64])
def test_rosenbrock_functions_against_scipy(n):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    x = np.random.default_rng(n).uniform(-2, 2, n)
    scale = np.abs(scipy_optimize.rosen_hess(x)).max()
    assert T.rosenbrock(x) == pytest.approx(scipy_optimize.rosen(x), rel=1e-13)
    assert T.rosenbrock_jit(x) == pytest.approx(scipy_optimize.rosen(x), rel=1e-13)
    np.testing.assert_allclose(T.rosenbrock_grad(x), scipy_optimize.rosen_der(x), rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(T.rosenbrock_grad_jit(x), scipy_optimize.rosen_der(x), rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(T.rosenbrock_hess(x), scipy_optimize.rosen_hess(x), rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(T.rosenbrock_grad(x), diff.gradient(T.rosenbrock, x, accuracy=4), rtol=1e-9, atol=1e-9 * scale)
