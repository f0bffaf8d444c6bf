"""Row-wise softmax and log-softmax, forward and backward, on 2-D C-contiguous arrays.

``softmax_rows`` is the single place where rows' max-shifted exponentials are
computed; the functional kernels and the fused cross-entropy both call it, and
``_shifted_minus_log`` is the single place where ``(z - max) - log(sum)`` is formed.

The subtraction order is what makes the formula stable: ``z - max`` is exact for the
largest entries, and the small ``log(sum)`` is subtracted from it afterwards. Regrouped
as ``z - (max + log(sum))`` it loses ``log(sum)`` whenever it is below half an ulp of
``max`` (``log_softmax([1e8, 1e8])`` would give 0 instead of -ln 2). Kernels are compiled
without ``reassoc`` (see fastgrad._jit), so the order written here is the order run.
``log(sum)`` is ``log1p`` of the sum without the max's own term, 1, so small log-probabilities
keep their relative accuracy.

Speed without ``reassoc`` (issue 9): the row max and sums are LLVM vectors of 16 lanes in an
order fixed by the code (``_jit.lane_max``, ``lane_sum``, ``lane_sum_ones_apart``, ``lane_dot``),
the exponentials one loop over a whole block of rows (``exp_nonpos``: the arguments are <= 0),
the row logs one loop over the rows.

NaN anywhere in a row makes the whole row NaN (as NumPy and PyTorch).
"""
import numpy as np

from fastgrad._jit import inline, kernel, lane_max, lane_sum, lane_sum_ones_apart, like, ordered, prange, spliced
from fastgrad.kernels.mathfns import exp_nonpos, log1p_nonneg
from fastgrad.kernels.reduce import dot_row, sum_row
from fastgrad.kernels.util import row_blocks

# Rows are addressed as z[r, j] and by their flat offset r * k (the lane intrinsics of _jit),
# never as views z[r] (a view per row takes and drops a reference count).


@spliced
def row_max(z, r):
    """The max of row r of the 2-D z (k >= 1), over vector lanes (``_jit.lane_max``; a running
    max was a scalar loop). NaN entries are passed over (the max of the others, -inf if none):
    the sum finds them."""
    return lane_max(z, r * z.shape[1], z.shape[1])


@spliced
def _shift_row(z, out, r, m):
    """out[r] = z[r] - m; for a row whose max is +inf, the logs of its limit's masses: 0 at the
    +inf entries, -inf at the others, NaN kept (equal mass on the +inf entries)."""
    if m == np.inf:
        zero = like(m, 0.0)
        for j in range(z.shape[1]):
            v = z[r, j]
            out[r, j] = zero if v == np.inf else (-m if v == v else v)
    else:
        for j in range(z.shape[1]):
            out[r, j] = z[r, j] - m


@spliced
def _rest(e, r):
    """The sum of row r of e = exp(z - max) besides one term at the max, in float64: the max's own
    term is exactly 1, so the terms equal to 1 are counted apart from the others
    (``_jit.lane_sum_ones_apart``) and rest = (sum of the others) + (count - 1). log(1 + rest)
    is then log1p(rest), keeping the full relative accuracy of small log-probabilities (a
    float32 sum 1 + 3.4e-4 would lose the last 4 digits of log(sum)).

    float32 rows take a plain float64 sum first (``lane_sum``, 2.4x faster on rows of 100):
    its error is at most k 2**-53 of the sum, so ``sum - 1`` holds the rest to 2**-27 of
    itself or better whenever rest > k 2**-26, far below float32's 2**-24; smaller rests, and
    NaN, take the sum with the ones apart. float64 rows always do."""
    k = e.shape[1]
    if e.itemsize == 4:
        rest = lane_sum(e, r * k, k) - 1.0
        if rest > k * 1.4901161193847656e-08:  # k * 2**-26
            return rest
    others, ones = lane_sum_ones_apart(e, r * k, k)
    return others + (ones - 1.0)


@spliced
def softmax_rows(z, out, lo, hi, stats, want_log, want_probs):
    """out[r] = softmax(z[r]) for the rows lo .. hi - 1 of the 2-D C-contiguous z; writes each
    row's max into ``stats[0, r - lo]`` and, when ``want_log``, log(sum exp(z - max)) into
    ``stats[1, r - lo]`` (else the sum itself). ``want_probs`` False (log_softmax's forward, which
    needs only the logs) leaves exp(z - max) in out, unscaled. Passes: each row's max and shift,
    one exp over the whole block (a single vector loop: per row, a row of 10 left its 10 exps to
    the scalar remainder of the loop), each row's sum (besides the max's term when the log is
    wanted, see :func:`_rest`; otherwise the whole sum, ``lane_sum``) and scale; the logs last,
    one vector loop over the rows (mathfns.log1p_nonneg; libm's log1p was a call per row)."""
    k = z.shape[1]
    for r in range(lo, hi):
        m = row_max(z, r)
        stats[0, r - lo] = m
        _shift_row(z, out, r, m)
    block = out.reshape(-1)[lo * k:hi * k]   # indices from 0: Numba adds no negative-index fix-up
    for i in range(block.size):             # (which kept a loop from lo * k scalar)
        block[i] = exp_nonpos(block[i])     # z - max <= 0, or -inf, or NaN
    one = like(stats[0, 0], 1.0)
    for r in range(lo, hi):
        if want_log:
            rest = like(one, _rest(out, r))
            stats[1, r - lo] = rest
            total = one + rest
        else:
            total = like(one, lane_sum(out, r * k, k))
            stats[1, r - lo] = total
        if want_probs:
            inv = one / total
            for j in range(k):
                out[r, j] *= inv
    if want_log:
        logs = stats[1]
        for i in range(hi - lo):
            logs[i] = log1p_nonneg(logs[i])


@inline
def row_stats(z, lo, hi):
    """The ``stats`` array of :func:`softmax_rows` for rows lo .. hi - 1: (2, rows) of z's dtype."""
    return np.empty((2, max(hi - lo, 1)), z.dtype)


@ordered
def _shifted_minus_log(zj, m, log_s):
    """``(zj - m) - log_s`` in that order: the one place the stable log-softmax is formed."""
    return (zj - m) - log_s


@ordered
def log_softmax_value(zj, m, log_s):
    """log softmax at one entry, given the row's max ``m`` and ``log_s = log(sum exp(z - m))``;
    for a row whose max is +inf, the limit."""
    if m == np.inf:
        if log_s != log_s or zj != zj:  # a NaN in the row
            return log_s + zj
        return -log_s if zj == np.inf else -np.inf
    return _shifted_minus_log(zj, m, log_s)


@ordered
def _log_softmax_fill(z, out, r, m, log_s):
    """out[r] = log_softmax(z[r]); the test of m outside the loop, so that the loop vectorizes."""
    if m == np.inf:
        for j in range(z.shape[1]):
            out[r, j] = log_softmax_value(z[r, j], m, log_s)
    else:
        for j in range(z.shape[1]):
            out[r, j] = _shifted_minus_log(z[r, j], m, log_s)


@inline
def _forward_rows(z, out, log, lo, hi):
    stats = row_stats(z, lo, hi)
    softmax_rows(z, out, lo, hi, stats, log, not log)
    if log:
        for r in range(lo, hi):
            _log_softmax_fill(z, out, r, stats[0, r - lo], stats[1, r - lo])


@inline
def _backward_rows(z, grad_a, grad_z, log, lo, hi):
    k = z.shape[1]
    softmax_rows(z, grad_z, lo, hi, row_stats(z, lo, hi), False, True)
    for r in range(lo, hi):
        if log:
            acc = like(z[r, 0], sum_row(grad_a, r))
            for j in range(k):
                grad_z[r, j] = grad_a[r, j] - grad_z[r, j] * acc
        else:
            acc = like(z[r, 0], dot_row(grad_a, grad_z, r))
            for j in range(k):
                grad_z[r, j] = grad_z[r, j] * (grad_a[r, j] - acc)


@kernel(parallel=True)
def softmax_forward(z, out, log):
    """out = softmax(z) (or log_softmax when ``log``) along axis 1 of 2-D z."""
    n, k = z.shape
    per, nb = row_blocks(n, k)
    if nb == 1:
        _forward_rows(z, out, log, 0, n)
    else:
        for b in prange(nb):
            _forward_rows(z, out, log, b * per, min(n, (b + 1) * per))


@kernel(parallel=True)
def softmax_backward(z, grad_a, grad_z, log):
    """Row-wise vector-Jacobian product of softmax (or log_softmax) at z.

    softmax: grad_z = a * (g - sum(g * a)); log_softmax: grad_z = g - a * sum(g).
    """
    n, k = z.shape
    per, nb = row_blocks(n, k)
    if nb == 1:
        _backward_rows(z, grad_a, grad_z, log, 0, n)
    else:
        for b in prange(nb):
            _backward_rows(z, grad_a, grad_z, log, b * per, min(n, (b + 1) * per))
