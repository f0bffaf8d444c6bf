"""Matrix products cut into pieces (kernels/gemm.py) against their NumPy twin, and their bits
against the thread count."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastgrad
from fastgrad._jit import numba_max_threads
from fastgrad._threads import blas_phase
from fastgrad.kernels import gemm as K
from fastgrad.reference import gemm as R


def _operands(rng, m, n, k, ta, tb, dtype):
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    a = np.ascontiguousarray(A.T if ta else A).reshape(-1)
    b = np.ascontiguousarray(B.T if tb else B).reshape(-1)
    return A, B, a, b


def _compiled(a, ta, b, tb, m, n, k, most, dtype):
    c = np.full(m * n, np.nan, dtype)          # the kernel must not read C
    with blas_phase():
        K.matmul_into(a, ta, b, tb, c, m, n, k, most)
    return c.reshape(m, n)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 70), n=st.integers(0, 70), k=st.integers(0, 70), ta=st.booleans(), tb=st.booleans(),
       most=st.integers(1, 4), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_matches_the_reference_and_the_float64_product(m, n, k, ta, tb, most, dtype, seed):
    rng = np.random.default_rng(seed)
    A, B, a, b = _operands(rng, m, n, k, ta, tb, dtype)
    got = _compiled(a, ta, b, tb, m, n, k, most, dtype)
    want = np.zeros(m * n, dtype)
    R.matmul_into(a, ta, b, tb, want, m, n, k, most)
    exact = A.astype(np.float64) @ B.astype(np.float64)
    bound = 4 * max(k, 1) * np.finfo(dtype).eps * (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64))
    assert got.dtype == dtype
    assert np.all(np.abs(got - exact) <= bound + np.finfo(dtype).tiny)
    assert np.all(np.abs(want.reshape(m, n) - exact) <= bound + np.finfo(dtype).tiny)


@pytest.mark.parametrize("m, n, k", [(32, 256, 784), (784, 256, 32), (1024, 128, 256), (512, 1, 64),
                                     (1, 300, 2000), (2048, 64, 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True)])
def test_bits_do_not_depend_on_the_thread_count(m, n, k, dtype, ta, tb):
    """Products of several pieces (and the one-column/one-row matrix-vector forms) give the same
    bits on one and on two threads."""
    if numba_max_threads() < 2:
        pytest.skip("needs 2 cores")
    rng = np.random.default_rng(m + n + k)
    _, _, a, b = _operands(rng, m, n, k, ta, tb, dtype)
    results = []
    try:
        for threads in (1, 2, 1):
            fastgrad.set_num_threads(threads)
            results.append(_compiled(a, ta, b, tb, m, n, k, 2, dtype))
    finally:
        fastgrad.set_num_threads("auto")                        # the default state
    assert K.product_pieces(m, n, k, 2) == (2 if m * n * k >= 2 * K.MIN_WORK and max(m, n) >= 32 else 1)
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])


def test_pieces_follow_the_sizes_and_the_cores_only():
    assert K.product_pieces(32, 64, 64, 2) == 1                 # 131072 multiply-adds: one piece
    assert K.product_pieces(32, 256, 784, 2) == 2
    assert K.product_pieces(32, 256, 784, 64) == 16             # 256 columns / 16
    assert K.product_pieces(1024, 256, 784, 8) == 8
    assert K.product_pieces(20, 20, 100000, 2) == 1             # too few rows and columns to cut
    for m, n, k, most in [(32, 64, 64, 2), (1024, 256, 784, 8), (7, 9, 1 << 20, 4)]:
        assert K.product_pieces(m, n, k, most) == R.product_pieces(m, n, k, most)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_inner_size_gives_zeros_and_nan_propagates(dtype):
    got = _compiled(np.zeros(0, dtype), False, np.zeros(0, dtype), False, 3, 4, 0, 2, dtype)
    assert np.array_equal(got, np.zeros((3, 4), dtype))
    assert _compiled(np.zeros(0, dtype), False, np.zeros(0, dtype), False, 0, 4, 5, 2, dtype).shape == (0, 4)
    rng = np.random.default_rng(0)
    for m, n, k in [(64, 512, 300), (64, 1, 300), (1, 64, 300)]:
        A, B, a, b = _operands(rng, m, n, k, False, False, dtype)
        a[0] = np.nan                                            # row 0 of A
        got = _compiled(a, False, b, False, m, n, k, 2, dtype)
        assert np.isnan(got[0]).all() and np.isfinite(got[1:]).all()
