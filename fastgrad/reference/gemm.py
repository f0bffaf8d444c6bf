"""NumPy twin of :mod:`fastgrad.kernels.gemm`: the product in one ``np.matmul``.

The twin computes the same mathematical product; the compiled kernel's pieces change only
the rounding (not the value to working precision), so tests compare the two with a
tolerance and test the kernel's thread-count independence on its own.
"""
from fastgrad.kernels.gemm import MIN_EXTENT, MIN_WORK


def product_pieces(m, n, k, most):
    """How many pieces the compiled kernel cuts C (m, n) = op(A) @ op(B) into."""
    return max(1, min(most, (m * n * k) // MIN_WORK, max(m, n) // MIN_EXTENT))


def matmul_into(a, ta, b, tb, c, m, n, k, most):
    """c (m*n,) = op(A) @ op(B) with A stored in ``a`` as (m, k) or, when ``ta``, (k, m); B in
    ``b`` as (k, n) or, when ``tb``, (n, k). ``most`` only matters to the compiled kernel."""
    A = a[:m * k].reshape((k, m)).T if ta else a[:m * k].reshape((m, k))
    B = b[:k * n].reshape((n, k)).T if tb else b[:k * n].reshape((k, n))
    c[:m * n] = (A @ B).reshape(-1)
