"""The STREAM triad ``a = b + s c``: the machine's streaming bandwidth, the optimizers' yardstick."""
from fastgrad._jit import block_bounds, inline, kernel, like, n_blocks, prange


@inline
def _triad_range(a, b, c, s):
    for i in range(a.size):
        a[i] = b[i] + s * c[i]


@kernel(parallel=True)
def triad(a, b, c, s):
    """``a[:] = b + s c`` for 1-D arrays of one dtype (counted as 3 arrays moved)."""
    s = like(a, s)
    n = a.size
    nb = n_blocks(n)
    if nb == 1:
        _triad_range(a, b, c, s)
    else:
        for k in prange(nb):
            lo, hi = block_bounds(k, nb, n)
            _triad_range(a[lo:hi], b[lo:hi], c[lo:hi], s)
