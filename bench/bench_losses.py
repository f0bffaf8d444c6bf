"""Losses fused with their gradients, fastgrad vs its NumPy reference.

    pytest bench/bench_losses.py --benchmark-group-by=group -s
    pytest bench/bench_losses.py --benchmark-group-by=param:loss,param:shape,param:dtype

Softmax cross-entropy on integer labels for logits (1024, 10) .. (4096, 1000), and the
elementwise losses at 1e6 elements. One timed call returns (loss, grad).
"""
import functools
import itertools

import numpy as np
import pytest

from fastgrad import functional as F
from fastgrad import reference as R

SCE_SHAPES = [(1024, 10), (4096, 10), (1024, 100), (4096, 100), (1024, 1000), (4096, 1000)]
ELEMENTWISE_SHAPES = [(1000, 1000)]
DTYPES = ["float32", "float64"]
LOSSES = {  # name -> (fastgrad, reference, target kind)
    "softmax_cross_entropy": (F.softmax_cross_entropy, R.softmax_cross_entropy, "labels"),
    "mse": (F.mse, R.mse, "values"),
    "huber": (F.huber, R.huber, "values"),
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits,
                                         R.binary_cross_entropy_with_logits, "probabilities"),
}
IMPLS = ("fastgrad", "reference")


def _params():
    out = []
    for loss in LOSSES:
        shapes = SCE_SHAPES if loss == "softmax_cross_entropy" else ELEMENTWISE_SHAPES
        for shape, dt, impl in itertools.product(shapes, DTYPES, IMPLS):
            sid = "x".join(map(str, shape))
            out.append(pytest.param(loss, sid, dt, impl, id=f"{loss}-{sid}-{dt}-{impl}"))
    return out


@functools.lru_cache(maxsize=2)
def inputs(loss, shape, dtype):
    n, k = map(int, shape.split("x"))
    rng = np.random.default_rng(0)
    pred = (3 * rng.standard_normal((n, k))).astype(dtype)
    kind = LOSSES[loss][2]
    if kind == "labels":
        target = rng.integers(0, k, n)
    elif kind == "probabilities":
        target = rng.uniform(0, 1, (n, k)).astype(dtype)
    else:
        target = rng.standard_normal((n, k)).astype(dtype)
    return pred, target


@pytest.mark.parametrize("loss, shape, dtype, impl", _params())
def test_loss_and_grad(timed, loss, shape, dtype, impl):
    fastgrad_fn, reference_fn, _ = LOSSES[loss]
    fn = fastgrad_fn if impl == "fastgrad" else reference_fn
    pred, target = inputs(loss, shape, dtype)
    timed(f"{loss} {shape} {dtype}", impl, lambda: fn(pred, target))
