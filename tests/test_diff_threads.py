"""Finite differences give bit-identical results for any thread count (issue 9.6): blocks are fixed
by the input size, every value depends only on its point, and the combination runs in a fixed order."""
import hashlib
import os
import subprocess
import sys
import textwrap

import numba  # a user's compiled function, exactly as a user writes it
import numpy as np
import pytest

from fastgrad import _diff_checks as chk, diff, testfunctions as T
from fastgrad._jit import get_numba_threads, numba_max_threads, set_numba_threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@numba.njit
def vec(x):
    out = np.empty(3)
    out[0] = x[0] * x[1]
    out[1] = np.sin(x @ x)
    out[2] = x[-1] * x[-2] * x[0]
    return out


@numba.njit
def wave(t):
    return np.sin(3.0 * t) * np.exp(-t * t)


def hessians(x):
    """The Hessians (two compiled kernels with one f: cheap to compile in a fresh process)."""
    return {"hessian": diff.hessian(T.rosenbrock_jit, x),
            "hessian_richardson": diff.hessian(T.rosenbrock_jit, x, richardson=True)}


def results(x):
    """Every finite-difference entry on the compiled, parallel path (n = 150: above PARALLEL_WORK)."""
    v = np.cos(np.arange(x.size))
    return {
        **hessians(x),
        "gradient": diff.gradient(T.rosenbrock_jit, x),
        "jacobian": diff.jacobian(vec, x),
        "hessian_error": diff.hessian(T.rosenbrock_jit, x, full_output=True)[1],
        "hessian_from_gradient": diff.hessian_from_gradient(T.rosenbrock_grad_jit, x),
        "hvp": diff.hvp(T.rosenbrock_jit, x, v),
        "derivative": diff.derivative(wave, np.linspace(-2, 2, 3000), order=3, richardson=True),
        "check_grad": diff.check_grad(T.rosenbrock_jit, T.rosenbrock_grad_jit, x).numeric,
    }


def digest(arrays) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode() + np.ascontiguousarray(arrays[name], dtype=np.float64).tobytes())
    return h.hexdigest()


def test_blocks_depend_on_sizes_only():
    assert chk.eval_blocks(1000, 1000) == chk.BLOCKS
    assert chk.eval_blocks(10, 10) == 1
    assert chk.eval_blocks(20, 10 ** 6) == 20


@pytest.mark.skipif(numba_max_threads() < 2, reason="needs 2 Numba threads")
def test_one_and_two_threads_bit_identical():
    x = np.random.default_rng(7).uniform(-2, 2, 150)
    before = get_numba_threads()
    try:
        set_numba_threads(1)
        one = results(x)
        set_numba_threads(2)
        two = results(x)
    finally:
        set_numba_threads(before)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_a_fresh_single_thread_process_gives_the_same_bits():
    x = np.random.default_rng(7).uniform(-2, 2, 150)
    here = digest(hessians(x))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), NUMBA_NUM_THREADS="1")
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, "tests")
        import numpy as np
        from test_diff_threads import digest, hessians
        print(digest(hessians(np.random.default_rng(7).uniform(-2, 2, 150))))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == here
