"""L-BFGS: iterates against torch.optim.LBFGS (optional), convergence, the line search, bad input."""
import numpy as np
import pytest

from fastgrad.optim import LBFGS
from fastgrad.optim._line_search import cubic_interpolate, strong_wolfe


def rosenbrock(x):
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    g = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
    return f, g


def _least_squares():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((30, 6))
    b = rng.standard_normal(30)

    def fun(x):
        r = A @ x - b
        return 0.5 * r @ r, A.T @ r
    return fun, np.linalg.lstsq(A, b, rcond=None)[0], np.zeros(6)


PROBLEMS = {"rosenbrock": (rosenbrock, np.ones(2), np.array([-1.2, 1.0])),
            "least_squares": _least_squares()}


def _closure(fun, x, g):
    def closure():
        f, grad = fun(x)
        g[:] = grad
        return f
    return closure


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_iterates_match_torch(problem, line_search_fn):
    """Iteration by iteration (max_iter=1 per step, so every iterate is seen), then with the
    defaults (20 iterations per step): the same points, losses and evaluation counts."""
    torch = pytest.importorskip("torch")
    fun, _, x0 = PROBLEMS[problem]
    for kw, n_steps in ((dict(max_iter=1), 30), ({}, 4)):
        x, g = x0.copy(), np.zeros_like(x0)
        xt = torch.tensor(x0.copy(), requires_grad=True)

        def torch_closure():
            f, grad = fun(xt.detach().numpy())
            xt.grad = torch.from_numpy(np.array(grad))
            return torch.tensor(f)

        ours = LBFGS(line_search_fn=line_search_fn, **kw)
        theirs = torch.optim.LBFGS([xt], line_search_fn=line_search_fn, **kw)
        for _ in range(n_steps):
            loss = ours.step(_closure(fun, x, g), x, g)
            loss_t = float(theirs.step(torch_closure))
            # Rosenbrock's valley amplifies round-off ~1e4-fold over a trajectory.
            np.testing.assert_allclose(x, xt.detach().numpy(), rtol=1e-9, atol=1e-9)
            assert loss == pytest.approx(loss_t, rel=1e-9, abs=1e-12)
            state_t = theirs.state[xt]
            assert (ours.state["n_iter"], ours.state["func_evals"]) == (state_t["n_iter"], state_t["func_evals"])


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_converges(problem, line_search_fn, dtype):
    fun, x_star, x0 = PROBLEMS[problem]
    x, g = x0.astype(dtype), np.zeros(x0.size, dtype)
    opt = LBFGS(line_search_fn=line_search_fn, max_iter=100, tolerance_grad=1e-12, tolerance_change=0.0)
    for _ in range(3):
        opt.step(_closure(fun, x, g), x, g)
    assert x.dtype == dtype
    np.testing.assert_allclose(x, x_star, atol=1e-8 if dtype == np.float64 else 1e-3)


def test_first_step_returns_first_loss_and_defaults_are_pytorchs():
    opt = LBFGS()
    assert opt.hyperparameters() == dict(lr=1.0, max_iter=20, max_eval=25, tolerance_grad=1e-7,
                                         tolerance_change=1e-9, history_size=100, line_search_fn=None)
    x, g = np.array([-1.2, 1.0]), np.zeros(2)
    assert opt.step(_closure(rosenbrock, x, g), x, g) == pytest.approx(24.2)
    assert LBFGS(max_iter=8).max_eval == 10


def test_history_is_bounded_and_reset_forgets():
    fun, _, x0 = PROBLEMS["least_squares"]
    x, g = x0.copy(), np.zeros_like(x0)
    opt = LBFGS(history_size=2, max_iter=10, tolerance_change=0.0, tolerance_grad=0.0)
    opt.step(_closure(fun, x, g), x, g)
    assert 1 <= len(opt.state["old_dirs"]) <= 2 and len(opt.state["old_stps"]) == len(opt.state["ro"])
    opt.reset()
    assert opt.state == {"func_evals": 0, "n_iter": 0}


def test_stops_at_a_stationary_point_without_moving():
    x, g = np.ones(2), np.zeros(2)
    calls = []

    def closure():
        calls.append(1)
        g[:] = rosenbrock(x)[1]
        return rosenbrock(x)[0]
    assert LBFGS().step(closure, x, g) == 0.0
    assert len(calls) == 1 and (x == 1.0).all()


def test_cubic_interpolate_finds_the_minimum_of_a_cubic():
    # f = x^3 - 3x on [0, 2]: f' = 3x^2 - 3, minimum at x = 1
    assert cubic_interpolate(0.0, 0.0, -3.0, 2.0, 2.0, 9.0) == pytest.approx(1.0, rel=1e-14)
    assert cubic_interpolate(2.0, 2.0, 9.0, 0.0, 0.0, -3.0) == pytest.approx(1.0, rel=1e-14)
    # clipped to the bounds; no real minimiser -> midpoint of the bounds
    assert cubic_interpolate(0.0, 0.0, -3.0, 2.0, 2.0, 9.0, bounds=(1.5, 3.0)) == 1.5
    assert cubic_interpolate(0.0, 0.0, 3.0, 1.0, 2.0, 3.0, bounds=(0.0, 4.0)) == 2.0  # d1^2 < g1 g2


@pytest.mark.filterwarnings("error")
def test_cubic_interpolate_of_a_line_or_a_constant_warns_of_nothing():
    # a line (equal slopes): the minimiser is at infinity, clipped to the bound it points to
    # (PyTorch's inf); a constant: 0 / 0, no minimiser, the midpoint (PyTorch's NaN)
    assert cubic_interpolate(0.0, 0.0, -1.0, 1.0, -1.0, -1.0, bounds=(1.01, 10.0)) == 10.0
    assert cubic_interpolate(1.0, -1.0, -1.0, 0.0, 0.0, -1.0, bounds=(1.01, 10.0)) == 10.0
    assert cubic_interpolate(0.0, 0.0, 0.0, 1.0, 0.0, 0.0, bounds=(1.0, 3.0)) == 2.0
    # a bracket shrunk to a point (met near convergence): 0 / 0 in the secant slope before
    assert cubic_interpolate(np.float64(0.5), np.float64(1.0), -1.0, np.float64(0.5), np.float64(1.0), -1.0) == 0.5


@pytest.mark.filterwarnings("error")
def test_strong_wolfe_on_a_linear_function_takes_pytorchs_iterates_without_warnings():
    # equal slopes everywhere: the cubic of the bracketing phase is a line (divided by 0 before)
    slope = np.array([1.0, -2.0, 0.5])
    x, g = np.array([1.0, 2.0, 3.0]), np.zeros(3)

    def closure():
        g[:] = slope
        return float(slope @ x)
    LBFGS(line_search_fn="strong_wolfe", max_iter=5).step(closure, x, g)
    torch = pytest.importorskip("torch")
    tx = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([tx], line_search_fn="strong_wolfe", max_iter=5)

    def torch_closure():
        opt.zero_grad()
        loss = torch.tensor(slope) @ tx
        loss.backward()
        return loss
    opt.step(torch_closure)
    np.testing.assert_allclose(x, tx.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("t0", [1e-3, 1.0, 50.0])
def test_strong_wolfe_step_meets_both_conditions(t0):
    # phi(t) = f(x + t d) for f = (x - 3)^4 + x^2 at x = 0, d = 1
    def f_and_g(x):
        return (x - 3) ** 4 + x ** 2, np.array([4 * (x - 3) ** 3 + 2 * x])
    d = np.array([1.0])
    f0, g0 = f_and_g(0.0)
    gtd = g0.dot(d)
    f_new, g_new, t, n = strong_wolfe(lambda t: f_and_g(t), t0, d, f0, g0, gtd)
    assert f_new <= f0 + 1e-4 * t * gtd
    assert abs(g_new.dot(d)) <= -0.9 * gtd
    assert (f_new, g_new[0]) == f_and_g(t) and 1 <= n <= 25


@pytest.mark.parametrize("kw, error, name", [
    (dict(lr=-1.0), ValueError, "lr"), (dict(max_iter=0), ValueError, "max_iter"),
    (dict(max_iter=2.5), TypeError, "max_iter"), (dict(max_eval=0), ValueError, "max_eval"),
    (dict(history_size=True), TypeError, "history_size"), (dict(tolerance_grad=float("nan")), ValueError,
                                                           "tolerance_grad"),
    (dict(tolerance_change=-1.0), ValueError, "tolerance_change"),
    (dict(line_search_fn="wolfe"), ValueError, "line_search_fn"),
])
def test_bad_hyperparameters(kw, error, name):
    with pytest.raises(error, match=f"^{name}"):
        LBFGS(**kw)
    opt = LBFGS()
    with pytest.raises(error, match=f"^{name}"):
        setattr(opt, *next(iter(kw.items())))


def test_bad_buffers_and_closures():
    x, g = np.zeros(3), np.zeros(3)
    opt = LBFGS()
    ok = _closure(lambda z: (float(z @ z), 2 * z), x, g)
    with pytest.raises(TypeError, match="^closure must be callable"):
        opt.step(1.0, x, g)
    with pytest.raises(ValueError, match="^params must be a 1-D"):
        opt.step(ok, np.zeros((3, 1)), g)
    with pytest.raises(ValueError, match="^grads must have the shape"):
        opt.step(ok, x, np.zeros(4))
    with pytest.raises(ValueError, match="^grads must have the shape"):
        opt.step(ok, x, np.zeros(3, np.float32))
    buf = np.zeros(4)
    with pytest.raises(ValueError, match="shares memory"):
        opt.step(ok, buf[:3], buf[1:])
    with pytest.raises(TypeError, match="^closure must return the loss"):
        opt.step(lambda: "1.0", x, g)
    x[:] = 1.0
    opt.step(ok, x, g)
    with pytest.raises(ValueError, match="saved history"):
        opt.step(ok, np.zeros(5), np.zeros(5))
