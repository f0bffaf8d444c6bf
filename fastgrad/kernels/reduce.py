"""Sums in a fixed order: per-block partials combined in order, and four-lane sums.

A parallel kernel writes one partial result per block (blocks fixed by the input size,
see ``n_blocks``) and adds them with :func:`sum_in_order`. ``partial.sum()`` inside a
``parallel=True`` kernel would not do: Numba turns it into a parallel reduction whose
grouping follows the thread count.

Kernels are compiled without ``reassoc`` (see fastgrad._jit), so LLVM keeps a sum's
written order; a single accumulator would then be a chain of dependent additions. The
loops here keep four accumulators (element i goes to lane i mod 4, the tail to lane 0)
and add them as ``(a0 + a1) + (a2 + a3)``: an order fixed by the code, which LLVM may
still put in one vector register. Numba leaves LLVM's SLP vectorizer off, so those four
lanes stay scalar: fine for a softmax row, slow for a long buffer.

Long sums (gradient norms over every parameter) use ``LANES`` lanes held in a small
array: element ``i`` of the first ``LANES * (n // LANES)`` goes to lane ``i mod LANES``,
the tail to lane 0 in order, and :func:`fold_lanes` adds the lanes pairwise. The update
``acc[j] += term(x[base + j])`` over ``j`` is a loop without a reduction, which LLVM's
loop vectorizer turns into vector code without ``reassoc`` (measured here: 32 us for the
squares of 235,146 float32, against 107 us for four scalar lanes and 22 us for a
``reassoc`` loop whose grouping LLVM chooses).
"""
import numpy as np

from fastgrad._jit import inline


@inline
def sum_in_order(partial):
    """partial[0] + partial[1] + ... left to right in float64 (a plain loop, never a parfor)."""
    total = 0.0
    for b in range(partial.size):
        total += partial[b]
    return total


LANES = 64  # a power of two, for fold_lanes


@inline
def fold_lanes(acc):
    """acc[0] after adding the upper half of ``acc`` onto the lower half, repeatedly:
    ``acc[j] += acc[j + w]`` for ``w = LANES/2, LANES/4, ..., 1`` (``acc`` is overwritten)."""
    w = acc.size // 2
    while w >= 1:
        for j in range(w):
            acc[j] += acc[j + w]
        w //= 2
    return acc[0]


@inline
def sum_lanes(x):
    """sum of the 1-D array x in float64 over four lanes (see the module docstring)."""
    n = x.size
    n4 = n - n % 4
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for i in range(0, n4, 4):
        a0 += np.float64(x[i])
        a1 += np.float64(x[i + 1])
        a2 += np.float64(x[i + 2])
        a3 += np.float64(x[i + 3])
    for i in range(n4, n):
        a0 += np.float64(x[i])
    return (a0 + a1) + (a2 + a3)


@inline
def dot_lanes(x, y):
    """sum_i x[i] y[i] in float64 over four lanes (products in x's dtype)."""
    n = x.size
    n4 = n - n % 4
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for i in range(0, n4, 4):
        a0 += np.float64(x[i] * y[i])
        a1 += np.float64(x[i + 1] * y[i + 1])
        a2 += np.float64(x[i + 2] * y[i + 2])
        a3 += np.float64(x[i + 3] * y[i + 3])
    for i in range(n4, n):
        a0 += np.float64(x[i] * y[i])
    return (a0 + a1) + (a2 + a3)
