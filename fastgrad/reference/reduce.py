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


ROW_LANES = 16


def _row_lanes(terms):
    """``ROW_LANES`` lanes over the float64 terms (term i to lane i mod ROW_LANES, the last chunk
    padded with zeros), folded pairwise."""
    padded = np.concatenate([terms, np.zeros(-terms.size % ROW_LANES)])
    acc = np.zeros(ROW_LANES)
    for row in padded.reshape(-1, ROW_LANES):
        acc += row
    return fold_lanes(acc)


def sum_row(x, r):
    """sum of row r of the 2-D x in float64, in the kernel's lane order."""
    return _row_lanes(np.asarray(x)[r].astype(np.float64))


def dot_row(x, y, r):
    """sum_j x[r, j] y[r, j] in float64, in the kernel's lane order (products in x's dtype)."""
    return _row_lanes((np.asarray(x)[r] * np.asarray(y)[r]).astype(np.float64))
