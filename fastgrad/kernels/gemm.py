"""Matrix products cut into pieces fixed by their sizes, the pieces spread over Numba's threads.

Why not one multi-threaded BLAS call: OpenBLAS's float32 products change in their last bits
with its thread count (measured: ``(32, 128) @ (128, 256)`` differed in 3593 of 8192 entries
between 1 and 2 threads; float64 did not), so a model's float32 results would depend on the
thread count and, with a thread policy that follows the machine's load, on other processes.
Here the BLAS runs each piece on one thread (``fastgrad._threads.blas_phase`` holds every
loaded BLAS at one thread during fastgrad's calls), and the pieces are cut by the sizes and
the machine's core count only. Whatever the number of Numba threads that runs them, every
entry of C is computed by the same BLAS call on the same data: the result is bit-identical
for any thread count. A single Numba pool then runs both the products and the elementwise
passes, so no second pool spins while the other works.

A product C (m, n) = op(A) (m, k) @ op(B) (k, n) is cut along the larger of m and n (its
rows or its columns), so that the larger operand is split and only the smaller one is read
by every piece; into at most ``most`` pieces (the caller passes the machine's cores), each of
at least ``MIN_WORK`` multiply-adds and ``MIN_EXTENT`` rows or columns. Measured on the
2-core VM (float32, 784-256-128-10): a training step with these pieces took 0.88x (batch 32)
and 0.92x (batch 1024) the time of Numba's ``np.dot`` on SciPy's two-threaded OpenBLAS
(bench/step_versions.py); the products alone against NumPy's own, newer OpenBLAS range from
0.55x to 1.56x its speed (bench/bench_gemm.py).

All matrices are row-major and passed flat (1-D, C-contiguous) with their sizes, so each
dtype compiles one signature. The NumPy twin is :mod:`fastgrad.reference.gemm`.
"""
import os

import numpy as np

from fastgrad._jit import blas_gemm, inline, kernel, prange

MACHINE_CORES = os.cpu_count() or 1   # the pieces' limit fastgrad passes: fixed per machine
MIN_WORK = 1 << 18   # multiply-adds of a piece: below, a parallel region costs more than it saves
MIN_EXTENT = 16      # rows or columns of a piece


@inline
def product_pieces(m, n, k, most):
    """How many pieces :func:`matmul_into` cuts C (m, n) = op(A) @ op(B) with inner size k
    into: ``min(most, m n k // MIN_WORK, max(m, n) // MIN_EXTENT)``, at least 1."""
    return max(1, min(most, (m * n * k) // MIN_WORK, max(m, n) // MIN_EXTENT))


@inline
def _piece(a, ta, b, tb, c, m, n, k, lo, hi, by_rows, one_zero):
    """Rows (``by_rows``) or columns [lo, hi) of C."""
    lda = m if ta else k
    ldb = k if tb else n
    if by_rows:
        blas_gemm(ta, tb, hi - lo, n, k, a, lo if ta else lo * lda, lda, b, 0, ldb, c, lo * n, n, one_zero)
    else:
        blas_gemm(ta, tb, m, hi - lo, k, a, 0, lda, b, lo * ldb if tb else lo, ldb, c, lo, n, one_zero)


@kernel(parallel=True)
def _pieces_in_parallel(a, ta, b, tb, c, m, n, k, pieces, by_rows, one_zero):
    extent = m if by_rows else n
    per = (extent + pieces - 1) // pieces
    for p in prange(pieces):
        lo = p * per
        hi = min(extent, lo + per)
        if hi > lo:
            _piece(a, ta, b, tb, c, m, n, k, lo, hi, by_rows, one_zero)


@inline
def matmul_into(a, ta, b, tb, c, m, n, k, most):
    """c (m*n,) = op(A) @ op(B), row-major: A stored in ``a`` as (m, k), or as (k, m) when
    ``ta`` (then op(A) = A^T); B in ``b`` as (k, n), or (n, k) when ``tb``. Cut into
    :func:`product_pieces` pieces (at most ``most``); the result depends on the sizes and
    ``most``, never on the thread count. k = 0 gives zeros, like ``np.dot``. A product of
    one piece is called here, not in the parallel kernel, whose call alone cost 2-5 us."""
    if m == 0 or n == 0:
        return
    if k == 0:
        for i in range(m * n):
            c[i] = 0
        return
    one_zero = np.zeros(2, c.dtype)  # [1, 0]: alpha and beta
    one_zero[0] = 1
    pieces = product_pieces(m, n, k, most)
    by_rows = m >= n
    if pieces == 1:
        _piece(a, ta, b, tb, c, m, n, k, 0, m if by_rows else n, by_rows, one_zero)
    else:
        _pieces_in_parallel(a, ta, b, tb, c, m, n, k, pieces, by_rows, one_zero)
