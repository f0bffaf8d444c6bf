"""Layer norm, batch norm and dropout kernels, forward + backward, fastgrad vs the NumPy twins.

    pytest bench/bench_norm.py --benchmark-group-by=group -s
    pytest bench/bench_norm.py --benchmark-disable              # smoke: each case once

One timed call is the op's forward kernel then its backward kernel on preallocated buffers,
as the training loop calls them (layer norm and batch norm with the affine transform, batch
norm in training mode updating its running statistics, dropout at p = 0.5). ``extra_info``
records the bytes a single pass moves -- forward reads x and writes out (and xhat for the
norms), backward reads grad_out (and xhat) and writes grad_x -- and the resulting GB/s.
"""
import functools
import importlib
import itertools

import numpy as np
import pytest

from fastgrad.kernels import batchnorm as KB, dropout as KD, layernorm as KL
from fastgrad.reference import batchnorm as RB, layernorm as RL

RD = importlib.import_module("fastgrad.reference.dropout")  # fastgrad.reference.dropout is also a function

SHAPES = ["32x256", "1024x256"]
DTYPES = ["float32", "float64"]
OPS = ["layer_norm", "batch_norm", "dropout"]
IMPLS = {"fastgrad": (KL, KB, KD), "reference": (RL, RB, RD)}
ARRAYS_MOVED = {"layer_norm": 6, "batch_norm": 6, "dropout": 4}  # (m, n) arrays read or written

PARAMS = [pytest.param(op, shape, dt, impl, id=f"{op}-{shape}-{dt}-{impl}")
          for op, shape, dt, impl in itertools.product(OPS, SHAPES, DTYPES, IMPLS)]


@functools.lru_cache(maxsize=4)
def buffers(shape, dtype):
    m, n = map(int, shape.split("x"))
    rng = np.random.default_rng(0)
    t = np.dtype(dtype)
    return dict(x=rng.standard_normal((m, n)).astype(t), grad_out=rng.standard_normal((m, n)).astype(t),
                gamma=rng.standard_normal(n).astype(t), beta=rng.standard_normal(n).astype(t),
                rm=np.zeros(n, t), rv=np.ones(n, t), out=np.empty((m, n), t), xhat=np.empty((m, n), t),
                grad_x=np.empty((m, n), t), rstd_rows=np.empty(m, t), rstd_cols=np.empty(n, t),
                grad_gamma=np.empty(n, t), grad_beta=np.empty(n, t), eps=t.type(1e-5))


def step_function(op, impl, b):
    L, B, D = IMPLS[impl]
    if op == "layer_norm":
        def step():
            L.layer_norm_forward(b["x"], b["gamma"], b["beta"], b["eps"], b["out"], b["xhat"], b["rstd_rows"])
            L.layer_norm_backward(b["grad_out"], b["xhat"], b["rstd_rows"], b["gamma"], b["grad_x"],
                                  b["grad_gamma"], b["grad_beta"], True)
    elif op == "batch_norm":
        def step():
            B.batch_norm_forward(b["x"], b["gamma"], b["beta"], b["eps"], np.float64(0.1), b["rm"], b["rv"],
                                 True, True, b["out"], b["xhat"], b["rstd_cols"])
            B.batch_norm_backward(b["grad_out"], b["xhat"], b["rstd_cols"], b["gamma"], True, b["grad_x"],
                                  b["grad_gamma"], b["grad_beta"], True)
    else:
        keys = (np.float64(0.5), np.int64(1), np.int64(2), np.int64(3))

        def step():
            D.dropout_forward(b["x"], b["out"], *keys)
            D.dropout_backward(b["grad_out"], b["grad_x"], *keys)
    return step


@pytest.mark.parametrize("op, shape, dtype, impl", PARAMS)
def test_norm_forward_backward(timed, benchmark, op, shape, dtype, impl):
    b = buffers(shape, dtype)
    timed(f"{op} fwd+bwd {shape} {dtype}", impl, step_function(op, impl, b))
    moved = ARRAYS_MOVED[op] * b["x"].nbytes
    benchmark.extra_info["bytes"] = moved
    if not benchmark.disabled:
        benchmark.extra_info["GB/s"] = moved / benchmark.stats.stats.median / 1e9
