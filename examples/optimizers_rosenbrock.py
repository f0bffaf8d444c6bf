"""Five optimizers on the Rosenbrock function, from (-1, 1) to the minimum at (1, 1).

f(x, y) = 100 (y - x^2)^2 + (1 - x)^2 has a long, curved, flat-bottomed valley: the
gradient points across the valley far more than along it, which is what makes plain
gradient descent slow. :func:`fastgrad.minimize` runs each method with the compiled
function and gradient of :mod:`fastgrad.testfunctions` until the gradient norm is below
1e-6 (or the iteration budget runs out) and the script prints a table: method, learning
rate, iterations, converged or not, the final error |x - (1, 1)| and the time taken.

What to expect: gradient descent needs tens of thousands of steps (its lr is capped by
the steepest curvature, about 1000 across the valley); momentum is about ten times faster
with the same lr; Adam gets there in about 1500 steps; RMSprop's steps do not shrink with
the gradient, so it hovers near the minimum without meeting the tolerance; Newton's method,
which divides by the curvature (a finite-difference Hessian), needs about 20 steps.

Run: ``python examples/optimizers_rosenbrock.py [--max-iter N] [--quick] [--plot]``
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _plot import pyplot, save
from fastgrad import minimize
from fastgrad.testfunctions import rosenbrock_grad_jit, rosenbrock_jit

START = np.array([-1.0, 1.0])
MINIMUM = np.array([1.0, 1.0])
# method -> learning rate (gd's lr must stay below 2 / 1000, the steepest curvature on the path)
METHODS = {"gd": 1e-3, "momentum": 1e-3, "rmsprop": 1e-4, "adam": 1e-2, "newton": 1.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-iter", type=int, default=50_000, help="iteration budget of the first-order methods")
    parser.add_argument("--tol", type=float, default=1e-6, help="stop when the gradient norm is below this")
    parser.add_argument("--quick", action="store_true", help="a budget of 5000 iterations (for tests)")
    parser.add_argument("--plot", action="store_true", help="save optimizers_rosenbrock.png (needs matplotlib)")
    args = parser.parse_args(argv)
    max_iter = min(args.max_iter, 5000) if args.quick else args.max_iter

    print(f"Rosenbrock from ({START[0]:g}, {START[1]:g}): minimum at (1, 1); tol on the gradient norm {args.tol:g}, "
          f"budget {max_iter} iterations (newton: 100)\n")
    print(f"{'method':<10}{'lr':>8}{'iterations':>12}{'converged':>11}{'|x - (1,1)|':>14}{'f(x)':>11}{'time':>9}")
    results = {}
    for method, lr in METHODS.items():
        start = time.perf_counter()
        res = minimize(rosenbrock_jit, START, grad=rosenbrock_grad_jit, method=method, lr=lr,
                       max_iter=100 if method == "newton" else max_iter, tol=args.tol, history=True)
        seconds = time.perf_counter() - start
        error = float(np.linalg.norm(res.x - MINIMUM))
        results[method] = {"nit": res.nit, "converged": res.converged, "error": error, "fun": res.fun,
                           "path": res.history["x"]}
        print(f"{method:<10}{lr:>8g}{res.nit:>12}{'yes' if res.converged else 'no':>11}{error:>14.2e}"
              f"{res.fun:>11.2e}{seconds:>8.2f}s")
    print("\n(newton's time includes compiling its finite-difference Hessian for this compiled gradient)")

    plt = pyplot(args.plot)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        gx, gy = np.meshgrid(np.linspace(-1.5, 1.5, 300), np.linspace(-0.5, 1.5, 200))
        ax.contour(gx, gy, np.log10(100 * (gy - gx ** 2) ** 2 + (1 - gx) ** 2 + 1e-3), levels=20, cmap="gray")
        for method, r in results.items():
            ax.plot(r["path"][:, 0], r["path"][:, 1], ".-", ms=2, lw=1, label=f"{method} ({r['nit']} it)")
        ax.plot(*MINIMUM, "k*", ms=12)
        ax.legend(fontsize=8)
        save(plt, fig, __file__, "optimizers_rosenbrock.png")
    return results


if __name__ == "__main__":
    main()
