"""Sums in a fixed order: per-block partials combined in order, and lane sums.

A parallel kernel writes one partial result per block (blocks fixed by the input size,
see ``n_blocks``) and adds them with :func:`sum_in_order`. ``partial.sum()`` inside a
``parallel=True`` kernel would not do: Numba turns it into a parallel reduction whose
grouping follows the thread count.

Kernels are compiled without ``reassoc`` (see fastgrad._jit), so LLVM keeps a sum's
written order; a single accumulator would then be a chain of dependent additions, and
Numba leaves LLVM's SLP vectorizer off, so scalar accumulators written side by side stay
scalar too.

A row's sums (:func:`sum_row`, :func:`dot_row`: softmax) are written as LLVM vectors of
``ROW_LANES`` lanes (``_jit.lane_sum``, a partial last chunk masked), folded pairwise: 11.6 us
for 1000 float32 rows of 100 in a standalone loop, against 47.7 us for the four scalar lanes
they replace (which left the softmax family 1.3-1.9x the time of the old ``reassoc`` build,
issue 9).

Long sums (gradient norms over every parameter) use ``LANES`` lanes held in a small
array: element ``i`` of the first ``LANES * (n // LANES)`` goes to lane ``i mod LANES``,
the tail to lane 0 in order, and :func:`fold_lanes` adds the lanes pairwise. The update
``acc[j] += term(x[base + j])`` over ``j`` is a loop without a reduction, which LLVM's
loop vectorizer turns into vector code without ``reassoc`` (measured here: 32 us for the
squares of 235,146 float32, against 107 us for four scalar lanes and 22 us for a
``reassoc`` loop whose grouping LLVM chooses).
"""

from fastgrad._jit import inline, lane_dot, lane_sum


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
def sum_row(x, r):
    """sum of row r of the 2-D C-contiguous float array x, in float64, over ``ROW_LANES`` vector
    lanes (``_jit.lane_sum``: entry j to lane j mod ROW_LANES, the lanes folded pairwise). The
    row is addressed by its offset: no view is made (a view per row cost more than the sum of
    a row of 10)."""
    return lane_sum(x, r * x.shape[1], x.shape[1])


@inline
def dot_row(x, y, r):
    """sum_j x[r, j] y[r, j] in float64, in :func:`sum_row`'s order (products rounded in x's dtype)."""
    return lane_dot(x, y, r * x.shape[1], x.shape[1])
