"""The dense layer, forward + backward with ReLU, fastgrad vs its NumPy reference.

    pytest bench/bench_dense.py --benchmark-group-by=group -s
    pytest bench/bench_dense.py --benchmark-group-by=param:layer,param:batch,param:dtype

Layers 784->256 and 1024->1024 at batch 32, 256 and 2048. One timed call is
``y, z = dense_forward(x, W, b, "relu", return_preactivation=True)`` then
``dense_backward(x, W, z, grad_y, "relu")`` (grad_x, grad_W, grad_b).
"""
import functools
import itertools

import numpy as np
import pytest

from fastgrad import functional as F
from fastgrad import reference as R

LAYERS = ["784x256", "1024x1024"]
BATCHES = [32, 256, 2048]
DTYPES = ["float32", "float64"]
IMPLS = {"fastgrad": (F.dense_forward, F.dense_backward), "reference": (R.dense_forward, R.dense_backward)}

PARAMS = [pytest.param(layer, batch, dt, impl, id=f"{layer}-b{batch}-{dt}-{impl}")
          for layer, batch, dt, impl in itertools.product(LAYERS, BATCHES, DTYPES, IMPLS)]


@functools.lru_cache(maxsize=2)
def inputs(layer, batch, dtype):
    n_in, n_out = map(int, layer.split("x"))
    rng = np.random.default_rng(0)
    return (rng.standard_normal((batch, n_in)).astype(dtype),
            (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype),
            (0.1 * rng.standard_normal(n_out)).astype(dtype),
            rng.standard_normal((batch, n_out)).astype(dtype))


@pytest.mark.parametrize("layer, batch, dtype, impl", PARAMS)
def test_dense_forward_backward(timed, layer, batch, dtype, impl):
    forward, backward = IMPLS[impl]
    x, W, b, grad_y = inputs(layer, batch, dtype)

    def step():
        _, z = forward(x, W, b, "relu", return_preactivation=True)
        return backward(x, W, z, grad_y, "relu")
    timed(f"dense {layer} relu fwd+bwd b{batch} {dtype}", impl, step)
