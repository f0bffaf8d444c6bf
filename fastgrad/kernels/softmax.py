"""Row-wise softmax and log-softmax, forward and backward, on 2-D C-contiguous arrays.

``softmax_row`` is the single place where a row's max-shifted exponentials are
computed; the functional kernels and the fused cross-entropy both call it.
"""
import numpy as np

from fastgrad._jit import inline, kernel, like, prange
from fastgrad.kernels.mathfns import exp
from fastgrad.kernels.util import row_blocks


@inline
def softmax_row(z, out, r):
    """out[r] = softmax(z[r]); returns (max, sum of exp(z - max)) of the row.

    A row whose max is +inf gets the limit: equal mass on its +inf entries.
    """
    k = z.shape[1]
    m = z[r, 0]
    for j in range(1, k):
        if z[r, j] > m:
            m = z[r, j]
    zero = like(m, 0.0)
    s = zero
    if m == np.inf:
        for j in range(k):
            out[r, j] = like(m, 1.0) if z[r, j] == np.inf else zero
            s += out[r, j]
        for j in range(k):
            out[r, j] /= s
        return m, s
    for j in range(k):
        e = exp(z[r, j] - m)
        out[r, j] = e
        s += e
    inv = like(m, 1.0) / s
    for j in range(k):
        out[r, j] *= inv
    return m, s


@inline
def log_softmax_at(z, r, j, m, log_s):
    """log softmax(z[r])[j] given the row's max and log(sum) from ``softmax_row``."""
    if m == np.inf:
        return -log_s if z[r, j] == np.inf else -np.inf
    return z[r, j] - m - log_s


@inline
def _forward_rows(z, out, log, lo, hi):
    for r in range(lo, hi):
        m, s = softmax_row(z, out, r)
        if log:
            log_s = np.log(s)
            for j in range(z.shape[1]):
                out[r, j] = log_softmax_at(z, r, j, m, log_s)


@inline
def _backward_rows(z, grad_a, grad_z, log, lo, hi):
    k = z.shape[1]
    for r in range(lo, hi):
        softmax_row(z, grad_z, r)
        acc = like(z[r, 0], 0.0)
        if log:
            for j in range(k):
                acc += grad_a[r, j]
            for j in range(k):
                grad_z[r, j] = grad_a[r, j] - grad_z[r, j] * acc
        else:
            for j in range(k):
                acc += grad_a[r, j] * grad_z[r, j]
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
