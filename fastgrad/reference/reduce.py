"""NumPy twins of :mod:`fastgrad.kernels.reduce`: the same sums in the same written order."""
import numpy as np


def sum_in_order(partial):
    """partial[0] + partial[1] + ... left to right in float64."""
    total = 0.0
    for value in np.asarray(partial, dtype=np.float64):
        total += value
    return total


LANES = 64


def fold_lanes(acc):
    """The lanes added pairwise: upper half onto lower half until one is left (acc is overwritten)."""
    w = acc.size // 2
    while w >= 1:
        acc[:w] += acc[w:2 * w]
        w //= 2
    return float(acc[0])


def wide_lane_terms(terms):
    """``LANES`` lanes of the float64 ``terms`` (element i to lane i mod LANES, each lane
    summed in order, the tail added to lane 0 in order), folded by :func:`fold_lanes`."""
    rows = terms.size // LANES
    acc = np.zeros(LANES)
    for row in terms[:rows * LANES].reshape(rows, LANES):
        acc += row
    for value in terms[rows * LANES:]:
        acc[0] += value
    return fold_lanes(acc)


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
