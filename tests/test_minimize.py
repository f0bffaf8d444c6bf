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
    res = minimize(bowl, [0.0, 0.0], grad=bowl_grad, method="gd", lr=0.1, max_iter=50, tol=0.0,
                   callback=lambda x, fx: seen.append(fx) or len(seen) == 7)
    assert res.nit == 7 and res.message == "stopped by callback"
    assert res.history["x"].shape == (8, 2) and res.history["fun"].shape == (8,)
    np.testing.assert_array_equal(res.history["x"][0], [0.0, 0.0])
    np.testing.assert_allclose(res.history["fun"][1:], seen)
    short = minimize(bowl, [0.0, 0.0], method="gd", max_iter=3, tol=0.0)
    assert short.history["x"].shape == (4, 2)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_stops_on_nonfinite_and_bad_input():
    res = minimize(lambda w: float(-np.exp(w[0] ** 2)), [3.0], method="gd", lr=1.0, max_iter=100)
    assert not res.converged and "non-finite" in res.message
    with pytest.raises(ValueError, match="method must be one of"):
        minimize(bowl, [0.0, 0.0], method="bfgs")
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
