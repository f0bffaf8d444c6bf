"""Activations, forward + backward, fastgrad vs its NumPy reference, from 1e3 to 1e7 elements.

    pytest bench/bench_activations.py --benchmark-group-by=group -s
    pytest bench/bench_activations.py --benchmark-group-by=param:case,param:size,param:dtype
    pytest bench/bench_activations.py --benchmark-disable          # smoke: each case once

Cases come from tests/cases.py's ACTIVATION_CASES (every activation and each of its
modes); softmax/log_softmax act along rows of 100. One timed call is ``a = act(z)`` then
``grad_z = act_backward(z, grad_a)``.
"""
import functools
import itertools

import numpy as np
import pytest
from cases import ACTIVATION_CASES, ROWWISE, case_id, random_z

from fastgrad.benchmarks.workloads import reference_activations, size_label
from fastgrad.functional import ACTIVATIONS

SIZES = [10**3, 10**4, 10**5, 10**6, 10**7]
DTYPES = ["float32", "float64"]
IMPLS = {"fastgrad": ACTIVATIONS, "reference": reference_activations()}
ROW = 100

PARAMS = [pytest.param(case_id(case), n, dt, impl, id=f"{case_id(case)}-{size_label(n)}-{dt}-{impl}")
          for case, n, dt, impl in itertools.product(ACTIVATION_CASES, SIZES, DTYPES, IMPLS)]
OPTIONS = {case_id(case): case for case in ACTIVATION_CASES}


@functools.lru_cache(maxsize=2)
def inputs(name, n, dtype):
    """(z, grad_a) shared by the fastgrad and reference runs of one group."""
    shape = (n // ROW, ROW) if name in ROWWISE else (n,)
    rng = np.random.default_rng(0)
    return random_z(rng, shape, dtype, name), rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("case, size, dtype, impl", PARAMS)
def test_activation_forward_backward(timed, case, size, dtype, impl):
    name, options = OPTIONS[case]
    forward, backward = IMPLS[impl][name]
    z, grad_a = inputs(name, size, dtype)

    def step():
        forward(z, **options)
        return backward(z, grad_a, **options)
    timed(f"{case} fwd+bwd {size_label(size)} {dtype}", impl, step)
