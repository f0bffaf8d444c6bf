"""fastgrad.minimize: first-order methods through fastgrad.optim, damped Newton, history, bad input."""
import numpy as np
import pytest

from fastgrad import testfunctions as T
from fastgrad.minimize import METHODS, minimize
from fastgrad.optim import Adam


def bowl(w):
    return (w[0] - 3.0) ** 2 + (w[1] + 1.0) ** 2


def bowl_grad(w):
    return np.array([2.0 * (w[0] - 3.0), 2.0 * (w[1] + 1.0)])


@pytest.mark.parametrize("method", METHODS)
def test_every_method_finds_the_bowl_minimum(method):
    lr = 0.05 if method in ("rmsprop", "adagrad", "adam", "adamw") else None
    options = {"weight_decay": 0.0} if method == "adamw" else {}
    res = minimize(bowl, [0.0, 0.0], method=method, lr=lr, max_iter=20000, tol=1e-7, **options)
    assert res.converged, res.message
    np.testing.assert_allclose(res.x, [3.0, -1.0], atol=1e-6)
    assert res.fun == pytest.approx(bowl(res.x)) and res.grad_norm <= 1e-7


def test_rosenbrock_adam_and_newton():
    x0 = np.array([-1.2, 1.0])
    adam = minimize(T.rosenbrock_jit, x0, grad=T.rosenbrock_grad_jit, method="adam", lr=0.02,
                    max_iter=20000, tol=1e-6)
    assert adam.converged
    np.testing.assert_allclose(adam.x, [1.0, 1.0], atol=1e-5)
    for grad in (None, T.rosenbrock_grad):
        newton = minimize(T.rosenbrock, x0, grad=grad, method="newton")
        assert newton.converged and newton.nit < 60, newton.message
        np.testing.assert_allclose(newton.x, [1.0, 1.0], atol=1e-7)
        assert np.all(np.diff(newton.history["fun"]) < 0)  # damping keeps every step a decrease


def test_fd_gradient_of_compiled_function_drives_adam():
    res = minimize(T.rosenbrock_jit, [-1.2, 1.0], method="adam", lr=0.05, max_iter=6000, tol=1e-5)
    assert res.converged
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-4)


def test_momentum_beats_gd_in_iterations():
    f = lambda w: w[0] ** 4 - 3.0 * w[0] ** 2
    gd = minimize(f, [2.0], method="gd", lr=0.01, max_iter=5000, tol=1e-6)
    # heavy ball with beta = 0.5; at the default 0.9 and lr 0.01 the contraction near the minimum,
    # sqrt(0.9) = 0.95, is slower than gradient descent's 1 - lr f'' = 0.88 (documented in docs/diff.md)
    momentum = minimize(f, [2.0], method="momentum", lr=0.01, momentum=0.5, max_iter=5000, tol=1e-6)
    assert gd.converged and momentum.converged
    np.testing.assert_allclose([gd.x[0], momentum.x[0]], np.sqrt(1.5), rtol=1e-6)
    assert momentum.nit < gd.nit / 2


def test_matches_the_optimizer_stepped_by_hand():
    res = minimize(bowl, [0.0, 0.0], grad=bowl_grad, method="adam", lr=0.1, max_iter=5, tol=0.0)
    x = np.zeros(2)
    opt = Adam(lr=0.1)
    for _ in range(5):
        opt.step(x, bowl_grad(x))
    np.testing.assert_array_equal(res.x, x)
    assert res.nit == 5 and not res.converged and "max_iter" in res.message


def test_history_and_callback():
    seen = []
    res = minimize(bowl, [0.0, 0.0], grad=bowl_grad, method="gd", lr=0.1, max_iter=50, tol=0.0, history=True,
                   callback=lambda x, fx: seen.append(fx) or len(seen) == 7)
    assert res.nit == 7 and res.message == "stopped by callback"
    assert res.history["x"].shape == (8, 2) and res.history["fun"].shape == (8,)
    np.testing.assert_array_equal(res.history["x"][0], [0.0, 0.0])
    np.testing.assert_allclose(res.history["fun"][1:], seen)
    short = minimize(bowl, [0.0, 0.0], method="gd", max_iter=3, tol=0.0, history=True)
    assert short.history["x"].shape == (4, 2)


def test_history_is_optional_and_f_only_by_default():
    default = minimize(bowl, [0.0, 0.0], grad=bowl_grad, method="gd", lr=0.1, max_iter=5, tol=0.0)
    assert set(default.history) == {"fun"} and default.history["fun"].shape == (6,)
    np.testing.assert_allclose(default.history["fun"][0], bowl(np.zeros(2)))
    assert minimize(bowl, [0.0, 0.0], method="gd", max_iter=5, tol=0.0, history=False).history == {}
    full = minimize(bowl, [0.0, 0.0], grad=bowl_grad, method="gd", lr=0.1, max_iter=5, tol=0.0, history=True)
    np.testing.assert_array_equal(full.history["fun"], default.history["fun"])
    np.testing.assert_array_equal(full.history["x"][-1], full.x)
    lb = minimize(bowl, [0.0, 0.0], grad=bowl_grad, method="lbfgs", history=True)
    assert lb.history["x"].shape == (lb.nit + 1, 2) and lb.history["fun"].shape == (lb.nit + 1,)
    np.testing.assert_allclose(lb.history["x"][-1], lb.x)
    for bad in ("x", 1, None, "True"):
        with pytest.raises(ValueError, match="history must be False, True or 'f'"):
            minimize(bowl, [0.0, 0.0], history=bad)


def test_lbfgs_rosenbrock_matches_scipy():
    """L-BFGS on the 2-D Rosenbrock function from (-1.2, 1): fastgrad drives scipy's L-BFGS-B with its
    gradient; with the analytic gradient the iterates are scipy's own (38 iterations here, both)."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    x0 = np.array([-1.2, 1.0])
    ours = minimize(T.rosenbrock_jit, x0, grad=T.rosenbrock_grad_jit, method="lbfgs", m=10, tol=1e-8)
    ref = scipy_optimize.minimize(scipy_optimize.rosen, x0, jac=scipy_optimize.rosen_der, method="L-BFGS-B",
                                  options={"maxcor": 10, "ftol": 0.0, "gtol": 1e-8 / np.sqrt(2)})
    assert ours.converged and ours.grad_norm <= 1e-8, ours.message
    np.testing.assert_allclose(ours.x, 1.0, atol=1e-9)
    assert abs(ours.nit - ref.nit) <= 2, (ours.nit, ref.nit)
    # finite-difference gradient (grad=None): compiled differences of the njit f
    fd = minimize(T.rosenbrock_jit, x0, method="lbfgs", tol=1e-8)
    assert fd.converged and fd.grad_norm <= 1e-8, fd.message
    np.testing.assert_allclose(fd.x, 1.0, atol=1e-7)
    assert fd.nit <= 1.5 * ref.nit, (fd.nit, ref.nit)
    # scipy with its default ftol stops earlier, on a small decrease of f, short of 1e-8
    default = scipy_optimize.minimize(scipy_optimize.rosen, x0, jac=scipy_optimize.rosen_der, method="L-BFGS-B")
    assert np.max(np.abs(default.x - 1.0)) > 1e-8


def test_lbfgs_options_and_callback():
    pytest.importorskip("scipy.optimize")
    seen = []
    res = minimize(T.rosenbrock, [-1.2, 1.0], grad=T.rosenbrock_grad, method="lbfgs",
                   callback=lambda x, fx: seen.append(fx) or len(seen) == 4)
    assert res.nit == 4 and res.message == "stopped by callback" and not res.converged
    np.testing.assert_allclose(res.history["fun"][1:], seen)
    short = minimize(T.rosenbrock, [-1.2, 1.0], grad=T.rosenbrock_grad, method="lbfgs", max_iter=3)
    assert short.nit == 3 and not short.converged
    one = minimize(T.rosenbrock, [-1.2, 1.0], grad=T.rosenbrock_grad, method="lbfgs", m=1)
    assert one.converged and one.nit > 38  # one correction pair: a worse Hessian model
    with pytest.raises(TypeError, match="unknown options for method 'lbfgs'"):
        minimize(bowl, [0.0, 0.0], method="lbfgs", momentum=0.9)
    with pytest.raises(ValueError, match="m must be >= 1"):
        minimize(bowl, [0.0, 0.0], method="lbfgs", m=0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_stops_on_nonfinite_and_bad_input():
    res = minimize(lambda w: float(-np.exp(w[0] ** 2)), [3.0], method="gd", lr=1.0, max_iter=100)
    assert not res.converged and "non-finite" in res.message
    with pytest.raises(ValueError, match="method must be one of"):
        minimize(bowl, [0.0, 0.0], method="bfgs")
    with pytest.raises(ValueError, match="grad must return"):
        minimize(bowl, [0.0, 0.0], grad=lambda w: np.zeros(3), method="lbfgs")
    with pytest.raises(ValueError, match="lr must be > 0"):
        minimize(bowl, [0.0, 0.0], lr=0.0)
    with pytest.raises(ValueError, match="x0 must be 1-D"):
        minimize(bowl, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="must return a real scalar"):
        minimize(lambda w: w, [0.0, 0.0])
    with pytest.raises(ValueError, match="grad must return"):
        minimize(bowl, [0.0, 0.0], grad=lambda w: np.zeros(3))
    with pytest.raises(TypeError, match="unknown options"):
        minimize(bowl, [0.0, 0.0], method="newton", betas=(0.9, 0.99))
    with pytest.raises(TypeError):
        minimize(bowl, [0.0, 0.0], method="adam", momentum=0.9)
