"""Time per training step (forward + backward + Adam), float32: fastgrad's compiled path, its
NumPy reference path and the step's matrix products alone (the GEMM floor), in one process.
Peers (PyTorch, JAX) are timed only by the isolated runner, each in its own process:
``python -m fastgrad bench --filter train_step`` (one library's thread pool distorts another's).

    pytest bench/bench_train.py --benchmark-group-by=group -s

Networks (issue 5): 784-256-128-10 with softmax cross-entropy at batch 32, 128 and 1024, and
32-64-64-1 with MSE at batch 32. The summary line per group gives other / fastgrad.
"""
import functools
import itertools

import numpy as np
import pytest

from fastgrad import Dense, Sequential
from fastgrad.benchmarks.workloads import gemm_floor
from fastgrad.optim import Adam

NETWORKS = {"784-256-128-10": ("softmax_cross_entropy", [32, 128, 1024]), "32-64-64-1": ("mse", [32])}
IMPLS = ["fastgrad", "reference", "gemm floor"]
PARAMS = [pytest.param(net, batch, impl, id=f"{net}-b{batch}-{impl}")
          for net, (_, batches) in NETWORKS.items() for batch, impl in itertools.product(batches, IMPLS)]


def _widths(net):
    return [int(w) for w in net.split("-")]


@functools.lru_cache(maxsize=4)
def _data(net, batch):
    widths = _widths(net)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, widths[0])).astype(np.float32)
    if NETWORKS[net][0] == "mse":
        return {"X": X, "y": rng.standard_normal((batch, widths[-1])).astype(np.float32)}
    return {"X": X, "y": rng.integers(0, widths[-1], batch).astype(np.int64)}


def _model_step(net, backend, d):
    widths = _widths(net)
    layers = [Dense(widths[i], widths[i + 1], "relu" if i + 2 < len(widths) else "identity")
              for i in range(len(widths) - 1)]
    model = Sequential(layers, loss=NETWORKS[net][0], optimizer=Adam(lr=1e-3), seed=0, backend=backend)
    return lambda: model.train_step(d["X"], d["y"])


def _factory(net, impl, d):
    if impl == "gemm floor":
        return gemm_floor(_widths(net))(d)
    return _model_step(net, "compiled" if impl == "fastgrad" else impl, d)


@pytest.mark.parametrize("net, batch, impl", PARAMS)
def test_train_step(timed, net, batch, impl):
    step = _factory(net, impl, _data(net, batch))
    timed(f"train_step {net} b{batch} float32", impl, step)
