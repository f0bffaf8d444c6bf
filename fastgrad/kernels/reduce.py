"""Combining per-block partial results in a fixed order.

A parallel kernel writes one partial result per block (blocks fixed by the input size,
see ``n_blocks``) and adds them here, one after the other. ``partial.sum()`` inside a
``parallel=True`` kernel would not do: Numba turns it into a parallel reduction whose
grouping follows the thread count, so the last bits would change with
``set_num_threads``.
"""
from fastgrad._jit import inline


@inline
def sum_in_order(partial):
    """partial[0] + partial[1] + ... left to right in float64 (a plain loop, never a parfor)."""
    total = 0.0
    for b in range(partial.size):
        total += partial[b]
    return total
