"""Finite-difference Hessians: fastgrad (compiled, parallel) vs the plain Python loop vs numdifftools.

    pytest bench/bench_diff.py --benchmark-group-by=group -s

Workload of issue 4: Hessian of the chained Rosenbrock function (n = 200) at a random point
in [-2, 2]^n with an njit ``f``, and ``hessian_from_gradient`` with an njit gradient at n = 1000.
Accuracy (max|H_fd - H| / max|H|) is printed next to the timings. numdifftools is an optional
peer (skipped when absent); it takes seconds per call (3 s here with an njit f), so it runs once, and in smoke mode
(``--benchmark-disable``) only when FASTGRAD_BENCH_PEERS_SLOW=1.
"""
import os

import numpy as np
import pytest

from fastgrad import diff, testfunctions as T
from fastgrad.minimize import minimize
from fastgrad._jit import get_numba_threads, threading_layer
from fastgrad.reference import diff as R

N_HESS = 200
N_GRAD = 1000


@pytest.fixture(scope="module", autouse=True)
def print_threads():
    from threadpoolctl import threadpool_info
    blas = ", ".join(f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info()) or "none"
    print(f"\n[bench_diff] numba threads={get_numba_threads()} layer={threading_layer()} BLAS: {blas}")


def point(n, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, n)


def report(name, H_fd, H):
    err = np.max(np.abs(H_fd - H)) / np.max(np.abs(H))
    print(f"\n[bench_diff] {name}: max|H_fd - H| / max|H| = {err:.2e}")
    return err


# function, kwargs, rounds: one table for the Hessian competitors
HESSIANS = {
    "fastgrad": (diff.hessian, {}, None),
    "fastgrad-richardson": (diff.hessian, {"richardson": True}, None),
    "reference-loop": (R.hessian, {}, 3),
}


@pytest.mark.parametrize("name", list(HESSIANS))
def test_hessian_rosenbrock(benchmark, name):
    fn, kwargs, rounds = HESSIANS[name]
    x = point(N_HESS)
    fn(T.rosenbrock_jit, x, **kwargs)  # compile
    benchmark.group = f"hessian rosenbrock n={N_HESS} float64"
    if rounds:
        H_fd = benchmark.pedantic(fn, args=(T.rosenbrock_jit, x), kwargs=kwargs, rounds=rounds, iterations=1)
    else:
        H_fd = benchmark(fn, T.rosenbrock_jit, x, **kwargs)
    report(name, H_fd, T.rosenbrock_hess(x))


def test_hessian_rosenbrock_numdifftools(benchmark):
    nd = pytest.importorskip("numdifftools")
    if benchmark.disabled and os.environ.get("FASTGRAD_BENCH_PEERS_SLOW") != "1":
        pytest.skip("numdifftools takes seconds per call; set FASTGRAD_BENCH_PEERS_SLOW=1 to run it in smoke mode")
    x = point(N_HESS)
    benchmark.group = f"hessian rosenbrock n={N_HESS} float64"
    H_fd = benchmark.pedantic(nd.Hessian(T.rosenbrock_jit), args=(x,), rounds=1, iterations=1)
    report("numdifftools", H_fd, T.rosenbrock_hess(x))


def test_hessian_from_gradient_n1000(benchmark):
    x = point(N_GRAD)
    diff.hessian_from_gradient(T.rosenbrock_grad_jit, x[:10])  # compile
    benchmark.group = f"hessian_from_gradient rosenbrock n={N_GRAD} float64"
    H_fd = benchmark(diff.hessian_from_gradient, T.rosenbrock_grad_jit, x)
    report("hessian_from_gradient", H_fd, T.rosenbrock_hess(x))


def test_gradient_n1000(benchmark):
    x = point(N_GRAD)
    diff.gradient(T.rosenbrock_jit, x[:10])  # compile
    benchmark.group = f"gradient rosenbrock n={N_GRAD} float64"
    g = benchmark(diff.gradient, T.rosenbrock_jit, x)
    err = np.max(np.abs(g - T.rosenbrock_grad(x))) / np.max(np.abs(T.rosenbrock_grad(x)))
    print(f"\n[bench_diff] gradient: relative error {err:.2e}")


def test_hessian_with_error_estimate(benchmark):
    x = point(N_HESS)
    diff.hessian(T.rosenbrock_jit, x[:10], full_output=True)  # compile
    benchmark.group = f"hessian rosenbrock n={N_HESS} float64"
    H_fd, err = benchmark(diff.hessian, T.rosenbrock_jit, x, full_output=True)
    exact = T.rosenbrock_hess(x)
    covered = bool(np.all(np.abs(H_fd - exact) <= err))
    print(f"\n[bench_diff] hessian full_output: max error estimate {err.max():.2e}, covers the error: {covered}")


LBFGS = {
    "fastgrad-lbfgs": lambda x0: minimize(T.rosenbrock_jit, x0, grad=T.rosenbrock_grad_jit, method="lbfgs").nit,
    "fastgrad-lbfgs-fd": lambda x0: minimize(T.rosenbrock_jit, x0, method="lbfgs").nit,
    "scipy-L-BFGS-B": lambda x0: _scipy_lbfgs(x0),
}


def _scipy_lbfgs(x0):
    import scipy.optimize
    return scipy.optimize.minimize(scipy.optimize.rosen, x0, jac=scipy.optimize.rosen_der, method="L-BFGS-B",
                                   options={"ftol": 0.0, "gtol": 1e-8 / np.sqrt(x0.size)}).nit


@pytest.mark.parametrize("name", list(LBFGS))
def test_lbfgs_rosenbrock_2d(benchmark, name):
    pytest.importorskip("scipy.optimize")
    x0 = np.array([-1.2, 1.0])
    LBFGS[name](x0)  # compile
    benchmark.group = "lbfgs rosenbrock n=2 tol=1e-8"
    nit = benchmark(LBFGS[name], x0)
    print(f"\n[bench_diff] {name}: {nit} iterations")
