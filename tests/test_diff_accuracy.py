"""The accuracy targets of issue 4: Hessian of the chained Rosenbrock function, n = 200, x in [-2, 2]^n."""
import numpy as np
import pytest

from fastgrad import diff, testfunctions as T


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rosenbrock_hessian_n200_accuracy(seed):
    x = np.random.default_rng(seed).uniform(-2, 2, 200)
    H = T.rosenbrock_hess(x)
    assert rel_err(diff.hessian(T.rosenbrock_jit, x), H) <= 1e-6
    assert rel_err(diff.hessian(T.rosenbrock_jit, x, richardson=True), H) <= 1e-10
    assert rel_err(diff.hessian_from_gradient(T.rosenbrock_grad_jit, x), H) <= 1e-9
