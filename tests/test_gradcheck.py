"""check_grad (issue 9.7): a tolerance that scales with f, and kinks reported as kinks, not as wrong gradients."""
import numpy as np
import pytest

from fastgrad import diff, testfunctions as T


def test_tiny_function_with_a_wrong_gradient_fails():
    f = lambda w: 1e-9 * float(np.sum(w ** 2))
    x = np.array([0.5, -1.0, 2.0])
    bad = diff.check_grad(f, lambda w: 1.1 * 2e-9 * w, x)
    assert not bad.ok and "FAILED" in str(bad)
    assert bad.max_rel_error == pytest.approx(0.1 / 1.1, rel=1e-6)
    good = diff.check_grad(f, lambda w: 2e-9 * w, x)
    assert good.ok and good.max_rel_error < 1e-8 and good.kinks == ()
    # the floor scales with f: the same check on f * 1e12 gives the same verdicts
    assert not diff.check_grad(lambda w: 1e12 * f(w), lambda w: 1.1 * 2e3 * w, x).ok
    assert diff.check_grad(lambda w: 1e12 * f(w), lambda w: 2e3 * w, x).ok
    # an explicit atol still replaces the floor (and can hide the error, as the user asked)
    assert diff.check_grad(f, lambda w: 1.1 * 2e-9 * w, x, atol=1e-8).ok


@pytest.mark.parametrize("scale", [1e-12, 1.0, 1e12])
def test_relative_errors_just_above_rtol_are_caught_at_every_scale(scale):
    x = np.array([1.0, 2.0, -0.5, 0.3])
    f = lambda w: scale * T.rosenbrock(w)
    exact = lambda w: scale * T.rosenbrock_grad(w)
    assert diff.check_grad(f, exact, x).ok
    for i in range(4):
        def wrong(w, i=i):
            g = exact(w)
            g[i] *= 1 + 1e-4
            return g
        res = diff.check_grad(f, wrong, x)
        assert not res.ok and res.worst_index == i


def relu_net(X, y, shapes):
    """A one-hidden-layer ReLU network's MSE f(w) and its backpropagated gradient (ReLU'(0) = 0)."""
    (n_in, n_hid) = shapes
    sizes = [n_in * n_hid, n_hid, n_hid, 1]

    def unpack(w):
        W1, b1, W2, b2 = np.split(w, np.cumsum(sizes)[:-1])
        return W1.reshape(n_in, n_hid), b1, W2, b2[0]

    def f(w):
        W1, b1, W2, b2 = unpack(w)
        z = X @ W1 + b1
        r = np.maximum(z, 0.0) @ W2 + b2 - y
        return float(np.mean(r ** 2))

    def grad(w):
        W1, b1, W2, b2 = unpack(w)
        z = X @ W1 + b1
        a = np.maximum(z, 0.0)
        r = a @ W2 + b2 - y
        dr = 2.0 * r / y.size
        dz = np.outer(dr, W2) * (z > 0)
        return np.concatenate([(X.T @ dz).ravel(), dz.sum(0), a.T @ dr, [dr.sum()]])

    return f, grad, unpack


def kinked_point():
    """A ReLU network whose hidden unit 0 sits exactly on its kink for sample 0, unit 1 within 3e-6
    of it for sample 1 (crossed by the default step 2**-17), unit 2 within 2e-4 (crossed by 1e-3)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    f, grad, unpack = relu_net(X, y, (3, 4))
    w = rng.normal(size=3 * 4 + 4 + 4 + 1)
    W1, b1, _, _ = unpack(w)
    b1[0] = -(X[0] @ W1[:, 0])
    b1[1] = -(X[1] @ W1[:, 1]) + 3e-6
    b1[2] = -(X[2] @ W1[:, 2]) + 2e-4
    b1_at = 3 * 4
    return f, grad, w, b1_at


def test_correct_relu_gradient_passes_and_reports_the_kinks():
    f, grad, w, b1_at = kinked_point()
    res = diff.check_grad(f, grad, w)
    assert res.ok, str(res)
    assert b1_at in res.kinks and b1_at + 1 in res.kinks  # kink at x, and the one the step crosses
    assert "kinks" in str(res) and "OK" in str(res)
    # a large explicit step (1e-3, about the old default) crosses the third kink too: still no false alarm
    big = diff.check_grad(f, grad, w, h=2.0 ** -10)
    assert big.ok and b1_at + 2 in big.kinks, str(big)
    # the plain central difference at that step is far off: the check did not just loosen its tolerance
    plain = diff.gradient(f, w, h=2.0 ** -10)
    assert np.max(np.abs(plain - grad(w)) / np.maximum(np.abs(grad(w)), 1e-12)) > 1e-2


def test_wrong_relu_gradient_fails_even_at_kinks():
    f, grad, w, b1_at = kinked_point()
    n_w2 = 3 * 4 + 4  # first entry of W2: a smooth coordinate

    def wrong_smooth(z):
        g = grad(z)
        g[n_w2] *= 1.1
        return g

    res = diff.check_grad(f, wrong_smooth, w)
    assert not res.ok and res.worst_index == n_w2 and n_w2 not in res.kinks

    def wrong_at_kink(z):  # outside the interval between the one-sided derivatives
        g = grad(z)
        g[b1_at] += 1.0
        return g

    res = diff.check_grad(f, wrong_at_kink, w)
    assert not res.ok and res.worst_index == b1_at and b1_at in res.kinks

    def wrong_near_kink(z):  # the entry whose kink the default step crosses
        g = grad(z)
        g[b1_at + 1] *= 1.01
        return g

    res = diff.check_grad(f, wrong_near_kink, w)
    assert not res.ok and res.worst_index == b1_at + 1


def test_abs_is_a_kink_at_zero():
    f = lambda w: float(np.sum(np.abs(w)))
    x = np.array([0.0, 1.5, -2.0])
    for g0 in (-1.0, 0.0, 0.3, 1.0):  # every subgradient of |t| at 0 passes
        res = diff.check_grad(f, lambda w, g0=g0: np.array([g0, 1.0, -1.0]), x)
        assert res.ok and res.kinks == (0,), (g0, str(res))
    res = diff.check_grad(f, lambda w: np.array([1.5, 1.0, -1.0]), x)
    assert not res.ok and res.kinks == (0,)


def test_fields_and_float32():
    x = np.array([1.0, 2.0, -0.5, 0.3])
    res = diff.check_grad(T.rosenbrock, T.rosenbrock_grad, x)
    assert res.tolerance.shape == (4,) and res.fd_error.shape == (4,) and res.atol is None
    assert np.all(np.abs(res.analytic - res.numeric) <= res.tolerance)
    x32 = np.array([0.5, -1.0, 2.0], np.float32)
    f = lambda w: float(np.sum(w.astype(np.float64) ** 3))
    assert diff.check_grad(f, lambda w: 3.0 * w.astype(np.float64) ** 2, x32).ok
    assert not diff.check_grad(f, lambda w: 3.03 * w.astype(np.float64) ** 2, x32).ok
    with pytest.raises(ValueError, match="h vanishes"):
        diff.check_grad(f, lambda w: 3.0 * w ** 2, x32, h=1e-12)
