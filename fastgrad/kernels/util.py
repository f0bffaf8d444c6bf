"""Small compiled helpers shared by kernel files."""
import numpy as np

from fastgrad._jit import BLOCK, PARALLEL_MIN, inline, kernel, prange


@kernel(parallel=True)
def parallel_touch(x):
    """Write zeros into ``x`` in a parallel loop; used to load the threading layer."""
    for i in prange(x.size):
        x[i] = 0.0


@inline
def n_blocks(n):
    """How many blocks of ``BLOCK`` items a kernel splits ``n`` items into; 1 means serial."""
    if n < PARALLEL_MIN:
        return 1
    return (n + BLOCK - 1) // BLOCK


@inline
def block_bounds(b, nb, n):
    """The half-open range ``[lo, hi)`` of block ``b`` out of ``nb`` over ``n`` items."""
    if nb == 1:
        return 0, n
    lo = b * BLOCK
    return lo, min(lo + BLOCK, n)


@inline
def row_blocks(n_rows, row_len):
    """Rows per block and number of blocks for row-wise kernels; 1 block means serial."""
    if n_rows * row_len < PARALLEL_MIN or n_rows < 2:
        return n_rows, 1
    per = max(1, BLOCK // max(row_len, 1))
    return per, (n_rows + per - 1) // per



@kernel
def copy_2d(src, dst):
    """dst[:, :] = src for two 2-D arrays of one shape, as a loop: a slice assignment would
    compile Numba's shape-mismatch error (string formatting: seconds of compile time)."""
    m, n = dst.shape
    for r in range(m):
        for j in range(n):
            dst[r, j] = src[r, j]


@kernel
def copy_1d(src, dst):
    """dst[:] = src for two 1-D arrays of one length, as a loop (see :func:`copy_2d`)."""
    for i in range(dst.size):
        dst[i] = src[i]
