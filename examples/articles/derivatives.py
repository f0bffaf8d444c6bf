"""Article "Calculus for Machine Learning: the mathematics of change": its worked examples, checked.

The article's examples: the slopes of x^2 at four points, the partial derivatives of the
cost J(w1, w2) = (w1 - 3)^2 + (w2 + 2)^2 and the gradient-descent rule that minimises it,
its table of common derivatives (power, exp, log, sin, sigmoid, ReLU), the sign of the
second derivative (curvature) and the expectation E[X] = integral of x p(x) dx.

fastgrad API: ``fastgrad.diff.derivative`` (orders 1 and 2), ``fastgrad.diff.gradient``,
``fastgrad.minimize(method="gd")``, ``fastgrad.F.sigmoid_backward``/``relu_backward``.
The expectation is plain NumPy (Monte Carlo and the trapezoidal rule): fastgrad has no
integrator. Every number is printed beside the article's and the exact value.

Run: ``python examples/articles/derivatives.py [--quick] [--plot]``
"""
from __future__ import annotations

import math

import numpy as np

import fastgrad
from fastgrad import F, diff
from _compare import check, finish, note, parser, pyplot, save, section


def slopes_of_square():
    section("f(x) = x^2 has slope f'(x) = 2x")
    for x, stated in ((0.0, "0"), (1.0, "2"), (2.0, "4"), (-1.0, "-2")):
        check(f"f'({x:g}) of x^2", stated, diff.derivative(lambda t: t * t, x), 2 * x, tol=1e-8)


def cost(w):
    return (w[0] - 3.0) ** 2 + (w[1] + 2.0) ** 2


def partials_and_descent(max_iter):
    section("J(w1, w2) = (w1 - 3)^2 + (w2 + 2)^2: partials 2(w1 - 3), 2(w2 + 2); descent to (3, -2)")
    for w in ((0.0, 0.0), (5.0, 1.0)):
        g = diff.gradient(cost, np.array(w))
        check(f"dJ/dw1 at {w}", None, g[0], 2 * (w[0] - 3), tol=1e-7)
        check(f"dJ/dw2 at {w}", None, g[1], 2 * (w[1] + 2), tol=1e-7)
    result = fastgrad.minimize(cost, np.zeros(2), method="gd", lr=0.1, max_iter=max_iter, tol=1e-10)
    # w := w - 0.1 * 2 (w - w*) shrinks the distance to w* by 0.8 per step
    print(f"gradient descent, lr 0.1, from (0, 0): {result.nit} steps, {result.message}")
    check("w1 at the minimum of J", None, result.x[0], 3.0, tol=1e-9)
    check("w2 at the minimum of J", None, result.x[1], -2.0, tol=1e-9)


def derivative_table():
    section("common derivatives, at x = 2 (ReLU at -1 and 1)")
    x = 2.0
    rows = (("x^3 (power rule, 3x^2)", lambda t: t ** 3, 3 * x ** 2),
            ("e^x", math.exp, math.exp(x)),
            ("ln(x) (1/x)", math.log, 1 / x),
            ("sin(x) (cos x)", math.sin, math.cos(x)))
    for name, f, exact in rows:
        check(f"d/dx {name}", None, diff.derivative(f, x), exact, tol=1e-7)
    s = 1 / (1 + math.exp(-x))
    grad = F.sigmoid_backward(np.array([x]), np.ones(1))[0]
    check("d/dx sigmoid = s(1 - s), F.sigmoid_backward", None, grad, s * (1 - s), tol=1e-12)
    check("d/dx sigmoid, finite differences", None, diff.derivative(lambda t: 1 / (1 + math.exp(-t)), x),
          s * (1 - s), tol=1e-8)
    relu_grads = F.relu_backward(np.array([-1.0, 1.0]), np.ones(2))
    check("d/dx ReLU at x = -1", "0", relu_grads[0])
    check("d/dx ReLU at x = 1", "1", relu_grads[1])


def curvature():
    section("second derivative: > 0 concave up (minimum), < 0 concave down, = 0 inflection")
    for name, f, x, exact in (("x^2 at 0", lambda t: t * t, 0.0, 2.0),
                              ("-x^2 at 0", lambda t: -t * t, 0.0, -2.0),
                              ("x^3 at 0 (inflection)", lambda t: t ** 3, 0.0, 0.0)):
        value = diff.derivative(f, x, order=2)
        check(f"f'' of {name}", None, value, exact, tol=1e-6)
    note("diff.derivative(f, x, order=2) is the article's f''(x) = d/dx (df/dx), by a 3-point central stencil")


def expectation(n_samples):
    section("E[X] = integral of x p(x) dx, X ~ Normal(2, 1) (NumPy: fastgrad has no integrator)")
    rng = np.random.default_rng(0)
    sample = rng.normal(2.0, 1.0, n_samples)
    # Monte Carlo: the standard error is 1 / sqrt(n); 5 of them is the tolerance
    check(f"E[X], Monte Carlo, n = {n_samples} (NumPy)", None, sample.mean(), 2.0, tol=5 / math.sqrt(n_samples))
    check(f"E[X^2] = 1 + 2^2, Monte Carlo (NumPy)", None, np.mean(sample ** 2), 5.0,
          tol=5 * math.sqrt(np.var(sample ** 2) / n_samples))
    x = np.linspace(-8.0, 12.0, 4001)
    p = np.exp(-0.5 * (x - 2.0) ** 2) / math.sqrt(2 * math.pi)
    check("E[X], trapezoidal rule on [-8, 12] (NumPy)", None, np.trapezoid(x * p, x), 2.0, tol=1e-9)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    print(__doc__.split("\n\n")[0])
    slopes_of_square()
    partials_and_descent(max_iter=200)
    derivative_table()
    curvature()
    expectation(n_samples=1_000_000)  # --quick changes nothing here: every example takes milliseconds
    plt = pyplot(args)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        t = np.linspace(-2.5, 2.5, 200)
        ax.plot(t, t * t, "k-", label="x^2")
        for x0 in (-1.0, 0.0, 1.0, 2.0):
            slope = diff.derivative(lambda u: u * u, x0)
            ax.plot(t, x0 * x0 + slope * (t - x0), "--", lw=1, label=f"tangent at {x0:g}, slope {slope:.3g}")
        ax.set_ylim(-2, 7)
        ax.set_xlabel("x")
        ax.legend(fontsize=8)
        save(plt, fig, args, "derivatives_tangents.png")
    finish()


if __name__ == "__main__":
    main()
