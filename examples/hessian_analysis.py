"""What the Hessian says about a stationary point: saddle, minimum, conditioning, Newton, Taylor.

For three quadratics, ``fastgrad.diff.hessian`` (central finite differences) gives the
Hessian and ``fastgrad.analysis.curvature`` its eigenvalues and verdict:

* x^2 - y^2: eigenvalues -2 and +2, a saddle (downhill along y);
* x^2 + y^2: eigenvalues 2 and 2, a minimum, condition number 1 (round bowl);
* x^2 + 10 y^2: eigenvalues 2 and 20, a minimum with condition number 10 (a narrow valley,
  where gradient descent must use a step below 2/20 and then crawls along x).

Then ``fastgrad.newton_step`` jumps from (1, 1) to the stationary point in one step
(the minimum of a bowl, but also the saddle of x^2 - y^2: Newton finds stationary points,
not minima), compared with gradient descent on the narrow valley; and ``fastgrad.taylor``
shows the order-0/1/2 models of the Rosenbrock function whose errors shrink like
|dx|, |dx|^2 and |dx|^3.

Run: ``python examples/hessian_analysis.py``
"""
from __future__ import annotations

import argparse

import numpy as np

import fastgrad
from fastgrad.testfunctions import rosenbrock

FUNCTIONS = {
    "x^2 - y^2": (lambda p: p[0] ** 2 - p[1] ** 2, lambda p: np.array([2 * p[0], -2 * p[1]])),
    "x^2 + y^2": (lambda p: p[0] ** 2 + p[1] ** 2, lambda p: np.array([2 * p[0], 2 * p[1]])),
    "x^2 + 10 y^2": (lambda p: p[0] ** 2 + 10 * p[1] ** 2, lambda p: np.array([2 * p[0], 20 * p[1]])),
}


def classify():
    print("Hessians by finite differences at (0, 0), and what their eigenvalues say:")
    print(f"{'f(x, y)':<14}{'eigenvalues':>22}{'condition':>12}  kind")
    results = {}
    for name, (f, _) in FUNCTIONS.items():
        H = fastgrad.diff.hessian(f, np.zeros(2))
        c = fastgrad.curvature(H)
        results[name] = c
        eig = ", ".join(f"{v:+.6f}" for v in c.eigenvalues)
        print(f"{name:<14}{eig:>22}{c.condition_number:>12.4f}  {c.kind}")
    return results


def newton_vs_gd():
    x0 = np.array([1.0, 1.0])
    print("\nOne Newton step from (1, 1): solve H p = -grad f")
    for name, (f, grad) in FUNCTIONS.items():
        H = fastgrad.diff.hessian(f, x0)
        x1 = x0 + fastgrad.newton_step(grad(x0), H)
        print(f"  {name:<14} -> ({x1[0]:+.2e}, {x1[1]:+.2e}), f = {f(x1):+.2e}, "
              f"gradient norm {np.linalg.norm(grad(x1)):.1e}")
    f, grad = FUNCTIONS["x^2 + 10 y^2"]
    lr = 0.09  # just below 2 / 20, the largest stable step on the steep axis
    x, steps = x0.copy(), 0
    while np.linalg.norm(grad(x)) > 1e-6 and steps < 10_000:
        x -= lr * grad(x)
        steps += 1
    print(f"  gradient descent on x^2 + 10 y^2 (lr {lr}, below 2/20) needs {steps} steps for a "
          f"gradient norm below 1e-6: the flat x axis (curvature 2) sets the pace")
    return steps


def taylor_demo():
    x0 = np.array([0.5, 0.5])
    direction = np.array([0.6, -0.8])
    print(f"\nTaylor models of Rosenbrock around ({x0[0]}, {x0[1]}) along dx = t * ({direction[0]}, {direction[1]}):")
    print(f"{'t':>8}{'f(x0 + dx)':>14}{'|error| order 0':>17}{'order 1':>11}{'order 2':>11}")
    errors = []
    for t in (0.1, 0.01, 0.001):
        dx = t * direction
        exact = rosenbrock(x0 + dx)
        row = [abs(fastgrad.taylor(rosenbrock, x0, dx, order=k) - exact) for k in (0, 1, 2)]
        errors.append(row)
        print(f"{t:>8g}{exact:>14.8f}{row[0]:>17.2e}{row[1]:>11.2e}{row[2]:>11.2e}")
    print("each tenfold smaller step divides the errors by about 10, 100 and 1000: orders 1, 2, 3")
    return errors


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    kinds = classify()
    gd_steps = newton_vs_gd()
    errors = taylor_demo()
    return {"curvature": kinds, "gd_steps": gd_steps, "taylor_errors": errors}


if __name__ == "__main__":
    main()
