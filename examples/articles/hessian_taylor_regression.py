"""Article "Calculus for Machine Learning" (the lesson with Build It steps): its worked examples, checked.

The article's examples: slopes of x^2 and of 3w + 1, the chain rule on (3x + 1)^2, the partial
derivatives of x^2 + 3xy + y^2 at (1, 2), gradient descent on x^2 from 5 and on x^2 + y^2 from
(4, 3), numerical vs analytical derivatives at x = 2, the Hessians of the saddle x^2 - y^2 and
the bowl x^2 + y^2, Taylor models of sin around 0, a linear regression trained for 200
epochs, its integrals (a probability, a KL divergence as an expectation) and its three exercises.

fastgrad API: ``fastgrad.diff.derivative``/``gradient``/``hessian``, ``fastgrad.curvature``,
``fastgrad.taylor``, ``fastgrad.minimize`` (gd, momentum), ``Sequential([Dense(1, 1)])`` with
``fastgrad.optim.SGD``. The regression's article claim is wrong: after the stated 200 epochs it
has learned y = 2.08x + 0.73, not y = 2x + 1; the script shows it and how long the true line takes.

Run: ``python examples/articles/hessian_taylor_regression.py [--quick] [--plot]``
"""
from __future__ import annotations

import math
import random

import numpy as np

import fastgrad
from fastgrad import Dense, Sequential, diff
from fastgrad.optim import SGD
from _compare import check, finish, note, parser, pyplot, save, section


def slopes_and_chain_rule():
    section("slopes of x^2 (2x) and of 3w + 1 (3); chain rule d/dx (3x + 1)^2 = 6 (3x + 1)")
    for x in (0.0, 1.0, 2.0, 3.0):
        check(f"f'({x:g}) of x^2", str(int(2 * x)), diff.derivative(lambda t: t * t, x), tol=1e-8)
    for x in (-2.0, -1.0):
        check(f"f'({x:g}) of x^2", str(int(2 * x)), diff.derivative(lambda t: t * t, x), tol=1e-8)
    check("d/dw (3w + 1) at w = 0.7", "3", diff.derivative(lambda w: 3 * w + 1, 0.7), tol=1e-8)
    check("d/dx (3x + 1)^2 at x = 1", None, diff.derivative(lambda x: (3 * x + 1) ** 2, 1.0), 24.0, tol=1e-7)
    g = diff.gradient(lambda p: p[0] ** 2 + 3 * p[0] * p[1] + p[1] ** 2, np.array([1.0, 2.0]))
    check("df/dx of x^2 + 3xy + y^2 at (1, 2)", "8", g[0], tol=1e-7)
    check("df/dy of x^2 + 3xy + y^2 at (1, 2)", "7", g[1], tol=1e-7)


def numerical_vs_analytical():
    section("numerical vs analytical derivatives at x = 2")
    for name, f, exact in (("x^2", lambda x: x * x, 4.0), ("x^3", lambda x: x ** 3, 12.0),
                           ("sin(x)", math.sin, math.cos(2.0)), ("e^x", math.exp, math.exp(2.0)),
                           ("1/x", lambda x: 1 / x, -0.25)):
        value = diff.derivative(f, 2.0)
        check(f"d/dx {name}", None, value, exact, tol=1e-7)


def descent():
    section("gradient descent, lr 0.1: x^2 from 5 for 20 steps; x^2 + y^2 from (4, 3) for 30 steps")
    one = fastgrad.minimize(lambda x: float(x[0] ** 2), np.array([5.0]), grad=lambda x: 2 * x, method="gd",
                            lr=0.1, max_iter=20, tol=0.0)
    check("x after 20 steps = 5 * 0.8^20", None, one.x[0], 5 * 0.8 ** 20, tol=1e-15)
    check("f(x) after 20 steps", None, one.fun, 25 * 0.8 ** 40, tol=1e-15)
    two = fastgrad.minimize(lambda p: float(p @ p), np.array([4.0, 3.0]), method="gd", lr=0.1, max_iter=30, tol=0.0,
                            history=True)
    check("x after 30 steps (numerical gradient)", None, two.x[0], 4 * 0.8 ** 30, tol=1e-9)
    check("y after 30 steps", None, two.x[1], 3 * 0.8 ** 30, tol=1e-9)
    check("f after 30 steps = 25 * 0.8^60", None, two.fun, 25 * 0.8 ** 60, tol=1e-12)
    return two.history["x"]


def hessians():
    section("Hessians at (0, 0): saddle x^2 - y^2 and bowl x^2 + y^2")
    for name, f, sign, kind in (("saddle", lambda p: p[0] ** 2 - p[1] ** 2, -1.0, "saddle"),
                                ("bowl", lambda p: p[0] ** 2 + p[1] ** 2, 1.0, "minimum")):
        H = diff.hessian(f, np.zeros(2))
        check(f"{name} H[0,0]", "2", H[0, 0], tol=1e-6)
        check(f"{name} H[0,1]", "0", H[0, 1], tol=1e-6)
        check(f"{name} H[1,1]", str(int(2 * sign)), H[1, 1], tol=1e-6)
        result = fastgrad.curvature(H)
        check(f"{name} eigenvalue min", str(int(min(2, 2 * sign))), result.eigenvalues[0], tol=1e-6)
        check(f"{name} eigenvalue max", "2", result.eigenvalues[1], tol=1e-6)
        print(f"curvature(H).kind = {result.kind!r} (the article: {kind})")
        assert result.kind == kind


def taylor_of_sin():
    section("Taylor models of sin around 0: order 1 = order 2 = h (sin''(0) = 0); order 3 adds -h^3/6")
    for h in (0.1, 0.5, 1.0, 2.0):
        for order in (1, 2):
            value = fastgrad.taylor(lambda v: math.sin(v[0]), np.zeros(1), np.array([h]), order=order)
            check(f"order-{order} model of sin at h = {h:g}", None, value, h, tol=1e-7)
    d3, d3_error = diff.derivative(math.sin, 0.0, order=3, richardson=True, full_output=True)
    check("sin'''(0) (order-3 stencil, Richardson)", None, d3, -1.0, tol=1e-6)
    note(f"estimated error of sin'''(0): {d3_error:.1e} (full_output=True)")
    model = fastgrad.taylor(math.sin, 0.0, order=3)
    for h in (0.5, 1.0):
        check(f"order-3 model at h = {h:g}: h + sin'''(0) h^3 / 6", None, model(h), h - h ** 3 / 6, tol=1e-6)
        note(f"sin({h:g}) = {math.sin(h):.6f}: the order-3 model is off by {abs(math.sin(h) - h + h ** 3 / 6):.1e}")


def regression_by_hand(w, b, epochs, lr=0.01):
    """The article's loop in plain Python (full batch, mean of 2 error x)."""
    xs, ys = (1.0, 2.0, 3.0, 4.0, 5.0), (3.0, 5.0, 7.0, 9.0, 11.0)
    for _ in range(epochs):
        errors = [w * x + b - y for x, y in zip(xs, ys)]
        dw = sum(2 * e * x for e, x in zip(errors, xs)) / 5
        db = sum(2 * e for e in errors) / 5
        w, b = w - lr * dw, b - lr * db
    return w, b


def regression():
    section("linear regression y = w x + b on (1..5, 2x + 1), lr 0.01, 200 epochs, start from random.seed(42)")
    random.seed(42)
    w0, b0 = random.gauss(0, 1), random.gauss(0, 1)
    model = Sequential([Dense(1, 1)], loss="mse", optimizer=SGD(lr=0.01), dtype="float64")
    model.layers[0].W[...] = w0
    model.layers[0].b[...] = b0
    X, y = np.arange(1.0, 6.0)[:, None], 2 * np.arange(1.0, 6.0) + 1
    model.fit(X, y, epochs=200, batch_size=5, shuffle=False, verbose=0)  # one full batch per epoch
    w_hand, b_hand = regression_by_hand(w0, b0, 200)
    check("w after 200 epochs", "2.00", model.layers[0].W[0, 0], w_hand, tol=1e-12)
    check("b after 200 epochs", "1.00", model.layers[0].b[0], b_hand, tol=1e-12)
    note(f"the article prints 'Learned' beside 'Actual: y = 2x + 1', but 200 epochs end at "
         f"y = {w_hand:.2f}x + {b_hand:.2f}: b converges slowly (the loss is a long, narrow valley)")
    epochs = 200
    while abs(model.layers[0].W[0, 0] - 2) >= 0.005 or abs(model.layers[0].b[0] - 1) >= 0.005:
        model.fit(X, y, epochs=50, batch_size=5, shuffle=False, verbose=0)
        epochs += 50
    w_hand, b_hand = regression_by_hand(w0, b0, epochs)
    check(f"w after {epochs} epochs (rounds to 2.00)", None, model.layers[0].W[0, 0], w_hand, tol=1e-12)
    check(f"b after {epochs} epochs (rounds to 1.00)", None, model.layers[0].b[0], b_hand, tol=1e-12)


def integrals(n_samples):
    section("integrals: P(-1 < X < 1) for X ~ N(0, 1); KL(N(0, 1) || N(1, 1)) = E_p[log p/q] by Monte Carlo (NumPy)")
    x = np.linspace(-1.0, 1.0, 2001)
    p = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    check("P(-1 < X < 1), trapezoidal rule (NumPy)", None, np.trapezoid(p, x), math.erf(1 / math.sqrt(2)), tol=1e-7)
    sample = np.random.default_rng(0).standard_normal(n_samples)
    log_ratio = -sample ** 2 / 2 + (sample - 1) ** 2 / 2  # log p(x) - log q(x)
    check(f"KL by Monte Carlo, n = {n_samples} (NumPy)", None, log_ratio.mean(), 0.5,
          tol=5 * log_ratio.std() / math.sqrt(n_samples))


def exercises():
    section("exercises: (x^3)'' at 2; descent on (x - 3)^2 + (y + 1)^2 from (0, 0); momentum on x^4 - 3x^2")
    check("second derivative of x^3 at 2", "12", diff.derivative(lambda x: x ** 3, 2.0, order=2), tol=1e-5)
    result = fastgrad.minimize(lambda p: (p[0] - 3) ** 2 + (p[1] + 1) ** 2, np.zeros(2), method="gd", lr=0.1,
                               tol=1e-9)
    check("minimum x", "3", result.x[0], tol=1e-9)
    check("minimum y", "-1", result.x[1], tol=1e-9)
    f = lambda x: float(x[0] ** 4 - 3 * x[0] ** 2)
    iterations = {}
    for method in ("gd", "momentum"):
        r = fastgrad.minimize(f, np.array([0.5]), method=method, lr=0.01, tol=1e-6, max_iter=5000)
        iterations[method] = r.nit
        check(f"x^4 - 3x^2 from 0.5 with {method}: x*", None, r.x[0], math.sqrt(1.5), tol=1e-6)
    print(f"iterations to |f'| <= 1e-6 from x = 0.5, lr 0.01: gradient descent {iterations['gd']}, "
          f"momentum 0.9 {iterations['momentum']}")


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    print(__doc__.split("\n\n")[0])
    slopes_and_chain_rule()
    numerical_vs_analytical()
    path = descent()
    hessians()
    taylor_of_sin()
    regression()
    integrals(n_samples=1_000_000)
    exercises()
    plt = pyplot(args)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
        g = np.linspace(-5, 5, 201)
        gx, gy = np.meshgrid(g, g)
        ax.contour(gx, gy, gx ** 2 + gy ** 2, levels=15, cmap="viridis")
        ax.plot(path[:, 0], path[:, 1], "r.-", label="gradient descent, lr 0.1")
        ax.set(xlabel="x", ylabel="y", title="x^2 + y^2: descent from (4, 3)", aspect="equal")
        ax.legend()
        save(plt, fig, args, "hessian_taylor_regression_contour.png")
    finish()


if __name__ == "__main__":
    main()
