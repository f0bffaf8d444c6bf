"""Article "Calculus for Machine Learning" (derivatives to debugging): its worked examples, checked.

The article's examples: central differences of x^2 and x^2 + y^2; the derivative of the
polynomial 3x^3 + 2x^2 - 5x + 1; gradient descent with and without momentum on x^2 + 5 sin x;
learning rates from 0.01 to 1.05 on x^2; descent on x^2 + y^2 + 2x + 3y + 5; the Hessian and
condition number of x^2 + 10y^2; the chain rule on (x^2 + 1)^3 and on sigmoid(w x + b); a
1-16-16-1 sigmoid network fitting x^2; L2 regularisation of (w - 3)^2; optimizers on Rosenbrock;
gradients through ten sigmoid vs ten ReLU layers.

Three of its claims are wrong, and the script shows the right values: f'(3) of the polynomial
is 88, not 76 (and the article's code, which reads the coefficients in ascending powers,
differentiates another polynomial); the x^2 network's backward pass raises IndexError on its
first call (its gradient list ends up with two entries for three layers), so its printed
predictions are never produced; fastgrad trains the same network. Newton's method is
compared with gradient descent where the article only names it.

fastgrad API: ``fastgrad.diff``, ``fastgrad.minimize`` (gd, momentum, adam, newton; optimizer
options such as ``weight_decay``), ``fastgrad.curvature``, ``fastgrad.F.dense_forward``/
``dense_backward``, ``Sequential``/``Dense`` with ``fastgrad.optim.SGD``/``Adam``, the NumPy
reference backend, ``fastgrad.optim.grad_stats``, ``fastgrad.testfunctions.rosenbrock``.

Run: ``python examples/articles/optimization_in_practice.py [--quick] [--plot]``
"""
from __future__ import annotations

import math

import numpy as np

import fastgrad
from fastgrad import F, Dense, Sequential, diff
from fastgrad.optim import SGD, Adam, grad_stats
from fastgrad.testfunctions import rosenbrock, rosenbrock_grad
from _compare import check, finish, note, parser, pyplot, save, section


def first_derivatives():
    section("central differences: (x^2)' at 3; grad of x^2 + y^2 at (3, 4); 3x^3 + 2x^2 - 5x + 1")
    check("f'(3) of x^2", "6", diff.derivative(lambda x: x * x, 3.0), tol=1e-7)
    g = diff.gradient(lambda p: p[0] ** 2 + p[1] ** 2, np.array([3.0, 4.0]))
    check("df/dx of x^2 + y^2 at (3, 4)", "6", g[0], tol=1e-7)
    check("df/dy of x^2 + y^2 at (3, 4)", "8", g[1], tol=1e-7)
    poly = lambda x: 3 * x ** 3 + 2 * x ** 2 - 5 * x + 1
    for x, stated in ((0.0, "-5"), (1.0, "8"), (2.0, "39"), (3.0, "76")):
        check(f"f'({x:g}) of 3x^3 + 2x^2 - 5x + 1", stated, diff.derivative(poly, x), 9 * x * x + 4 * x - 5, tol=1e-6)
    note("f'(x) = 9x^2 + 4x - 5 (as the article writes it) gives f'(3) = 81 + 12 - 5 = 88, not 76")
    ascending = lambda x: 3 + 2 * x - 5 * x ** 2 + x ** 3
    check("f'(3) of the polynomial the article's code builds", None, diff.derivative(ascending, 3.0), -1.0, tol=1e-6)
    note("its code sums c_i x^i over [3, 2, -5, 1], i.e. 3 + 2x - 5x^2 + x^3: it prints f'(x) = 2, -5, -6, -1")


def wiggly(x):
    return x * x + 5 * math.sin(x)


def wiggly_by_hand(x, lr, steps, momentum=0.0):
    """The article's loops in plain Python with the exact derivative 2x + 5 cos x (v = mu v - lr g)."""
    v = 0.0
    for _ in range(steps):
        v = momentum * v - lr * (2 * x + 5 * math.cos(x))
        x += v
    return x


def descent_on_wiggly():
    section("x^2 + 5 sin x: global minimum where 2x + 5 cos x = 0")
    x_star = -1.0
    for _ in range(50):  # Newton on f'(x) = 2x + 5 cos x
        x_star -= (2 * x_star + 5 * math.cos(x_star)) / (2 - 5 * math.sin(x_star))
    f = lambda p: wiggly(p[0])
    for start in (5.0, -5.0):
        r = fastgrad.minimize(f, np.array([start]), method="gd", lr=0.1, tol=1e-9, max_iter=1000)
        check(f"minimum from {start:g}, lr 0.1", None, r.x[0], x_star, tol=1e-8)
        check(f"f at the minimum from {start:g}", None, r.fun, wiggly(x_star), tol=1e-12)
    r = fastgrad.minimize(f, np.array([5.0]), method="gd", lr=0.01, max_iter=100, tol=0.0)
    check("x after 100 steps from 5, lr 0.01 (not there yet)", None, r.x[0], wiggly_by_hand(5.0, 0.01, 100), tol=1e-6)
    r = fastgrad.minimize(f, np.array([5.0]), method="momentum", lr=0.1, momentum=0.9, max_iter=100, tol=0.0)
    check("x after 100 momentum steps from 5, lr 0.1", None, r.x[0], wiggly_by_hand(5.0, 0.1, 100, 0.9), tol=1e-6)


def learning_rates():
    section("learning rates on x^2 from 5, 50 steps: x_50 = 5 (1 - 2 lr)^50")
    paths = {}
    for lr in (0.01, 0.05, 0.1, 0.2, 0.5, 1.05):
        r = fastgrad.minimize(lambda x: float(x[0] ** 2), np.array([5.0]), grad=lambda x: 2 * x, method="gd",
                              lr=lr, max_iter=50, tol=0.0, history=True)
        exact = 5 * (1 - 2 * lr) ** 50
        check(f"x after 50 steps, lr {lr:g}", None, r.x[0], exact, tol=1e-9 * max(1.0, abs(exact)))
        paths[lr] = r.history["x"][:, 0]
    note("lr 0.5 lands on 0 in one step (1 - 2 lr = 0); lr 1.05 > 1 diverges: |1 - 2 lr| = 1.1 > 1")
    return paths


def bowl_with_offsets():
    section("x^2 + y^2 + 2x + 3y + 5 from (5, 5), lr 0.1: minimum (-1, -1.5), value 1.75")
    r = fastgrad.minimize(lambda p: p[0] ** 2 + p[1] ** 2 + 2 * p[0] + 3 * p[1] + 5, np.array([5.0, 5.0]),
                          method="gd", lr=0.1, tol=1e-9)
    check("x at the minimum", "-1", r.x[0], tol=1e-8)
    check("y at the minimum", "-1.5", r.x[1], tol=1e-8)
    check("minimum value", "1.75", r.fun, tol=1e-12)


def ravine():
    section("x^2 + 10 y^2: Hessian [[2, 0], [0, 20]], condition number 10; Newton vs gradient descent")
    f = lambda p: p[0] ** 2 + 10 * p[1] ** 2
    H = diff.hessian(f, np.array([1.0, 1.0]))
    for (i, j), stated in np.ndenumerate(np.array([["2", "0"], ["0", "20"]])):
        check(f"H[{i},{j}]", stated, H[i, j], tol=1e-5)
    result = fastgrad.curvature(H)
    check("condition number", "10.00", result.condition_number, 10.0, tol=1e-5)
    newton = fastgrad.minimize(f, np.array([1.0, 1.0]), method="newton", tol=1e-8)
    gd = fastgrad.minimize(f, np.array([1.0, 1.0]), method="gd", lr=0.05, tol=1e-8, max_iter=10_000)
    check("Newton: iterations to ||grad|| <= 1e-8", None, newton.nit, 1, tol=0)
    check("Newton: |x| after them", None, np.abs(newton.x).max(), 0.0, tol=1e-6)
    # lr 0.05 is stable for the stiff y (|1 - 20 lr| = 0); x contracts by 0.9 per step from gradient 2
    check("gradient descent, lr 0.05: iterations", None, gd.nit, math.ceil(math.log(1e-8 / 2) / math.log(0.9)), tol=0)
    print(f"Newton rescales each direction by its curvature: 1 step; gradient descent: {gd.nit} steps")


def chain_rule():
    section("chain rule: (x^2 + 1)^3 at 2 is 6x(x^2 + 1)^2 = 300; d/dw sigmoid(w x + b) at x = 2, w = 0.5, b = 0.1")
    check("d/dx (x^2 + 1)^3 at 2", "300", diff.derivative(lambda x: (x * x + 1) ** 3, 2.0), tol=1e-5)
    x, W, b = np.array([[2.0]]), np.array([[0.5]]), np.array([0.1])
    y, z = F.dense_forward(x, W, b, activation="sigmoid", return_preactivation=True)
    _, grad_W, _ = F.dense_backward(x, W, z, np.ones_like(y), activation="sigmoid")
    s = 1 / (1 + math.exp(-1.1))
    check("d/dw sigmoid(w x + b) = s(1 - s) x", None, grad_W[0, 0], s * (1 - s) * 2, tol=1e-15)


def square_network(epochs_adam):
    section("the 1-16-16-1 sigmoid network on y = x^2, x in [-1, 1] (100 points)")
    note("the article's backward pass stores dW2 and then overwrites dW1 with dW0: two gradients for three "
         "layers, so its update raises IndexError on the first call (after broadcasting dW2 into W1)")
    X = np.linspace(-1, 1, 100)[:, None]
    y = X[:, 0] ** 2
    test = np.array([[0.5], [-0.5], [0.0]])
    models = {}
    for backend in ("compiled", "reference"):
        # the article's gradient is of mean((out - y)^2) / 2 with lr 0.1: SGD lr 0.05 on fastgrad's MSE
        model = Sequential([Dense(1, 16, "sigmoid"), Dense(16, 16, "sigmoid"), Dense(16, 1)], loss="mse",
                           optimizer=SGD(lr=0.05), dtype="float64", seed=42, backend=backend)
        model.fit(X, y, epochs=1000, batch_size=100, shuffle=False, verbose=0)
        models[backend] = model
    compiled, reference = (models[k].predict(test)[:, 0] for k in ("compiled", "reference"))
    for k, x0 in enumerate((0.5, -0.5, 0.0)):
        check(f"plain GD, 1000 epochs: prediction at {x0:g}", None, compiled[k], reference[k], tol=1e-9)
    mse = models["compiled"].evaluate(X, y)["loss"]
    print(f"plain gradient descent at the article's rate, 1000 epochs: predictions {np.round(compiled, 3)}, "
          f"mse {mse:.4f} (the variance of x^2 is {np.var(y):.4f}: no better than predicting the mean)")
    model = Sequential([Dense(1, 16, "sigmoid"), Dense(16, 16, "sigmoid"), Dense(16, 1)], loss="mse",
                       optimizer=Adam(lr=0.01), dtype="float64", seed=42)
    model.fit(X, y, epochs=epochs_adam, batch_size=100, shuffle=False, verbose=0)
    adam = model.predict(test)[:, 0]
    for k, x0 in enumerate((0.5, -0.5, 0.0)):
        check(f"Adam(0.01), {epochs_adam} epochs: prediction at {x0:g}", None, adam[k], x0 * x0, tol=0.03)


def regularisation():
    section("(w - 3)^2 from w = 10, lr 0.1, 50 steps; with the L2 term 0.5 w^2 the minimum moves to w = 2")
    plain = fastgrad.minimize(lambda w: (w[0] - 3) ** 2, np.array([10.0]), method="gd", lr=0.1, max_iter=50, tol=0.0)
    check("w without regularisation", "3", plain.x[0], 3 + 7 * 0.8 ** 50, tol=1e-7)
    # SGD's weight_decay adds wd * w to the gradient: the gradient of (wd / 2) w^2, so wd = 1 is 0.5 w^2
    decayed = fastgrad.minimize(lambda w: (w[0] - 3) ** 2, np.array([10.0]), method="gd", lr=0.1, max_iter=50,
                                tol=0.0, weight_decay=1.0)
    check("w with L2 0.5 w^2 (weight_decay=1)", None, decayed.x[0], 2 + 8 * 0.7 ** 50, tol=1e-7)
    note("the article builds a RegularizedGradientDescent but never calls its step: the penalty acts only "
         "because its loss already contains 0.5 w^2; w = 2 is where 2(w - 3) + w = 0")


def rosenbrock_race(max_iter):
    section(f"Rosenbrock from (-1, 1): minimum f(1, 1) = 0; {max_iter} iterations of each method")
    check("f at (1, 1)", "0", rosenbrock(np.ones(2)), tol=0)
    for method, lr in (("gd", 1e-3), ("momentum", 1e-3), ("adam", 1e-2), ("newton", None)):
        r = fastgrad.minimize(rosenbrock, np.array([-1.0, 1.0]), grad=rosenbrock_grad, method=method, lr=lr,
                              max_iter=max_iter, tol=1e-8)
        print(f"{method:>9}: {r.nit:>5} iterations, distance to (1, 1) {np.linalg.norm(r.x - 1):.2e}, "
              f"f = {r.fun:.2e}")
        if method == "newton":
            check("Newton (damped): x at the end", None, r.x[0], 1.0, tol=1e-6)


def manual_backprop(x, Ws, activation):
    """The input gradient of sum(output) through the layers, in NumPy (the article's backward, with
    the true activation derivative)."""
    zs = []
    for W in Ws:
        z = x @ W
        zs.append(z)
        x = 1 / (1 + np.exp(-z)) if activation == "sigmoid" else np.maximum(z, 0)
    grad = np.ones_like(x)
    for W, z in zip(reversed(Ws), reversed(zs)):
        s = 1 / (1 + np.exp(-z))
        grad = (grad * (s * (1 - s) if activation == "sigmoid" else (z > 0))) @ W.T
    return grad


def vanishing():
    section("gradients through 10 layers of 10 units, sigmoid vs ReLU (W ~ N(0, 2/10), no bias)")
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((10, 10)) * math.sqrt(2 / 10) for _ in range(10)]
    x0 = rng.standard_normal((1, 10))
    zero = np.zeros(10)
    magnitude = {}
    for activation in ("sigmoid", "relu"):
        x, cache = x0, []
        for W in Ws:
            a, z = F.dense_forward(x, W, zero, activation=activation, return_preactivation=True)
            cache.append((x, z))
            x = a
        grad = np.ones_like(x)
        for W, (x_in, z) in zip(reversed(Ws), reversed(cache)):
            grad, _, _ = F.dense_backward(x_in, W, z, grad, activation=activation)
        magnitude[activation] = np.mean(np.abs(grad))
        exact = np.mean(np.abs(manual_backprop(x0, Ws, activation)))
        check(f"{activation}: mean |dL/dx| at the input", None, magnitude[activation], exact, tol=1e-12 * exact)
        stats = grad_stats(grad)
        verdict = ("exploding" if stats["max_abs"] > 10 else "vanishing" if stats["max_abs"] < 1e-7 else "healthy")
        print(f"{activation}: grad_stats max |g| = {stats['max_abs']:.3e}, mean |g| = {stats['mean_abs']:.3e}; "
              f"the article's thresholds (max > 10 exploding, < 1e-7 vanishing) applied to it say {verdict!r}")
    check("sigmoid / ReLU input-gradient ratio < 0.01", None, float(magnitude["sigmoid"] / magnitude["relu"] < 0.01),
          1.0, tol=0)
    note(f"absolute thresholds miss it: the sigmoid stack passes as 'healthy' with an input gradient "
         f"{magnitude['relu'] / magnitude['sigmoid']:.0e} times smaller than ReLU's; compare layers with each other")
    note("the article's simplified sigmoid backward multiplies by 0.25, the derivative's maximum: an upper "
         f"bound; ten layers give at most 0.25^10 = {0.25 ** 10:.1e} times the weights' product")


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    print(__doc__.split("\n\n")[0])
    first_derivatives()
    descent_on_wiggly()
    paths = learning_rates()
    bowl_with_offsets()
    ravine()
    chain_rule()
    square_network(epochs_adam=3000)
    regularisation()
    rosenbrock_race(max_iter=500 if args.quick else 5000)  # illustrative: only Newton's end point is checked
    vanishing()
    plt = pyplot(args)
    if plt is not None:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        for lr, xs in paths.items():
            ax.plot(np.abs(xs) + 1e-300, label=f"lr {lr:g}")
        ax.set(xlabel="iteration", ylabel="|x| (log)", yscale="log", ylim=(1e-12, 1e4),
               title="gradient descent on x^2 from 5")
        ax.legend()
        ravine_f = lambda p: p[0] ** 2 + 10 * p[1] ** 2
        g = np.linspace(-1.2, 1.2, 201)
        gx, gy = np.meshgrid(g, g)
        ax2.contour(gx, gy, gx ** 2 + 10 * gy ** 2, levels=20, cmap="viridis")
        for method, lr, style in (("gd", 0.09, "r.-"), ("newton", None, "bo-")):
            path = fastgrad.minimize(ravine_f, np.array([-1.0, 0.8]), method=method, lr=lr, max_iter=40,
                                    history=True).history["x"]
            ax2.plot(path[:, 0], path[:, 1], style, ms=3, label=f"{method}" + (f", lr {lr}" if lr else ""))
        ax2.set(xlabel="x", ylabel="y", title="x^2 + 10 y^2: gradient descent zig-zags, Newton jumps")
        ax2.legend()
        save(plt, fig, args, "optimization_in_practice.png")
    finish()


if __name__ == "__main__":
    main()
