"""Row-wise softmax and log-softmax, forward and backward, on 2-D C-contiguous arrays.

``softmax_row`` is the single place where a row's max-shifted exponentials are
computed; the functional kernels and the fused cross-entropy both call it, and
``log_softmax_value`` is the single place where ``(z - max) - log(sum)`` is formed.

The subtraction order is what makes the formula stable: ``z - max`` is exact for the
largest entries, and the small ``log(sum)`` is subtracted from it afterwards. Regrouped
as ``z - (max + log(sum))`` it loses ``log(sum)`` whenever it is below half an ulp of
``max`` (``log_softmax([1e8, 1e8])`` would give 0 instead of -ln 2). Kernels are compiled
without ``reassoc`` (see fastgrad._jit), so the order written here is the order run.
``log(sum)`` is ``log1p`` of the sum without the max's own term, 1, so small log-probabilities keep their relative accuracy.

NaN anywhere in a row makes the whole row NaN (as NumPy and PyTorch).
"""
import numpy as np

from fastgrad._jit import inline, kernel, like, ordered, prange, spliced
from fastgrad.kernels.mathfns import exp
from fastgrad.kernels.reduce import dot_lanes, sum_lanes
from fastgrad.kernels.util import row_blocks


@spliced
def row_max(zr):
    """(max, index of the first max) of a 1-D row; a NaN row entry is found by the sum."""
    m = zr[0]
    at = 0
    for j in range(1, zr.size):
        if zr[j] > m:
            m = zr[j]
            at = j
    return m, at


@spliced
def exp_shifted(zr, outr, m, at):
    """outr[j] = exp(zr[j] - m); returns the sum of the terms other than the one at the
    max (which is exactly 1): log(1 + rest) is then taken with log1p, keeping the full
    relative accuracy of small log-probabilities (a float32 sum 1 + 3.4e-4 would lose
    the last 4 digits of log(sum)). The exponentials are one vectorizable loop, the sum
    a four-lane one."""
    for j in range(zr.size):
        outr[j] = exp(zr[j] - m)
    e_at = outr[at]  # 1, or NaN for a NaN row
    outr[at] = like(m, 0.0)
    rest = like(m, sum_lanes(outr))
    outr[at] = e_at
    return rest


@inline
def _inf_row(zr, outr):
    """The limit for a row whose max is +inf: equal mass on its +inf entries (NaN stays NaN).
    Writes the unnormalized masses and returns their sum."""
    one = like(zr[0], 1.0)
    zero = like(zr[0], 0.0)
    s = zero
    for j in range(zr.size):
        v = one if zr[j] == np.inf else (zero if zr[j] == zr[j] else zr[j])
        outr[j] = v
        s += v
    return s


@spliced
def softmax_row(z, out, r):
    """out[r] = softmax(z[r]); returns (max, log of the sum of exp(z - max)) of the row."""
    zr = z[r]
    outr = out[r]
    m, at = row_max(zr)
    if m == np.inf:
        s = _inf_row(zr, outr)
        log_s = np.log(s)
    else:
        rest = exp_shifted(zr, outr, m, at)
        s = like(m, 1.0) + rest
        log_s = np.log1p(rest)
    inv = like(m, 1.0) / s
    for j in range(zr.size):
        outr[j] *= inv
    return m, log_s


@ordered
def log_softmax_value(zj, m, log_s):
    """log softmax at one entry: ``(zj - m) - log_s`` in that order, given the row's max
    ``m`` and ``log_s = log(sum exp(z - m))``; for a row whose max is +inf, the limit."""
    if m == np.inf:
        if log_s != log_s or zj != zj:  # a NaN in the row
            return log_s + zj
        return -log_s if zj == np.inf else -np.inf
    return (zj - m) - log_s


@ordered
def _log_softmax_fill(zr, outr, m, log_s):
    for j in range(zr.size):
        outr[j] = log_softmax_value(zr[j], m, log_s)


@inline
def _forward_rows(z, out, log, lo, hi):
    for r in range(lo, hi):
        if log:
            zr = z[r]
            m, at = row_max(zr)
            if m == np.inf:
                log_s = np.log(_inf_row(zr, out[r]))
            else:
                log_s = np.log1p(exp_shifted(zr, out[r], m, at))  # out[r] as scratch
            _log_softmax_fill(zr, out[r], m, log_s)
        else:
            softmax_row(z, out, r)


@inline
def _backward_rows(z, grad_a, grad_z, log, lo, hi):
    k = z.shape[1]
    for r in range(lo, hi):
        softmax_row(z, grad_z, r)
        if log:
            acc = like(z[r, 0], sum_lanes(grad_a[r]))
            for j in range(k):
                grad_z[r, j] = grad_a[r, j] - grad_z[r, j] * acc
        else:
            acc = like(z[r, 0], dot_lanes(grad_a[r], grad_z[r]))
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
