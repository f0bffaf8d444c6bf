"""NumPy twins of :mod:`fastgrad.kernels.reduce`: the same sums in the same written order."""
import numpy as np


def sum_in_order(partial):
    """partial[0] + partial[1] + ... left to right in float64."""
    total = 0.0
    for value in np.asarray(partial, dtype=np.float64):
        total += value
    return total


def _lanes(terms):
    """Four lanes (element i to lane i mod 4, the tail to lane 0), added as (a0 + a1) + (a2 + a3)."""
    n4 = terms.size - terms.size % 4
    lanes = [sum_in_order(terms[k:n4:4]) for k in range(4)]
    lanes[0] = sum_in_order(np.concatenate([[lanes[0]], terms[n4:]]))
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])


def sum_lanes(x):
    """sum of the 1-D array x in float64 over four lanes."""
    return _lanes(np.asarray(x).astype(np.float64))


def dot_lanes(x, y):
    """sum_i x[i] y[i] in float64 over four lanes (products in x's dtype)."""
    return _lanes((np.asarray(x) * np.asarray(y)).astype(np.float64))
