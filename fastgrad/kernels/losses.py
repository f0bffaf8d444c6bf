"""Losses fused with their gradients: one pass computes the loss sum and d loss / d input.

Every kernel takes ``scale`` (1/N for ``reduction="mean"``, 1 for ``"sum"``), writes
``grad = scale * d loss_i / d input`` and returns ``scale * sum_i loss_i`` as float64
(accumulated in float64 whatever the array dtype). Work is split in blocks fixed by the
input size and the block sums are added in order: the result does not depend on the
number of threads. NaN in an input gives NaN in the loss and in that gradient entry.
"""
import numpy as np

from fastgrad._jit import block_bounds, inline, kernel, like, n_blocks, ordered, prange
from fastgrad.kernels.activations import sigmoid
from fastgrad.kernels.mathfns import exp, log1p_unit
from fastgrad.kernels.reduce import sum_in_order
from fastgrad.kernels.softmax import log_softmax_value, softmax_row
from fastgrad.kernels.util import row_blocks

MSE, MAE, HUBER, BCE, BCE_LOGITS = range(5)


@ordered
def _bce_logits_term(x, t):
    """max(x, 0) - x t + log(1 + exp(-|x|)), finite for x = +-inf when the limit is."""
    zero = like(x, 0.0)
    one = like(x, 1.0)
    if x >= zero:
        lin = zero if t == one else (one - t) * x
    else:
        lin = zero if t == zero else -t * x
    return lin + log1p_unit(exp(-np.abs(x)))


@inline
def _at_least(x, low):
    """max(x, low) that keeps NaN (Python's max would return ``low``)."""
    return low if x < low else x


@inline
def _sign(d):
    """sign(d) with NaN for NaN (as np.sign)."""
    one = like(d, 1.0)
    return one if d > 0 else (-one if d < 0 else d * like(d, 0.0))


@inline
def loss_term(code, p, t, scale, p1):
    """(loss_i in float64, scale * d loss_i / d p) for one element; p1: huber's delta or bce's eps."""
    one = like(scale, 1.0)
    half = like(scale, 0.5)
    if code == MSE:
        d = p - t
        return np.float64(d * d), like(scale, 2.0) * scale * d
    if code == MAE:
        d = p - t
        return np.float64(np.abs(d)), scale * _sign(d)
    if code == HUBER:
        d = p - t
        ad = np.abs(d)
        if ad < p1:
            return np.float64(half * d * d), scale * d
        return np.float64(p1 * (ad - half * p1)), scale * p1 * _sign(d)
    if code == BCE:
        loss = -(t * np.log(_at_least(p, p1)) + (one - t) * np.log(_at_least(one - p, p1)))
        return np.float64(loss), scale * (p - t) / _at_least(p * (one - p), p1)
    return np.float64(_bce_logits_term(p, t)), scale * (sigmoid(p) - t)


@inline
def loss_range(code, pred, target, grad, scale, p1):
    """Loss sum over flat slices (see activations.forward_range) in four lanes (see
    kernels/reduce.py); writes grad."""
    n = pred.size
    n4 = n - n % 4
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for i in range(0, n4, 4):
        l0, g0 = loss_term(code, pred[i], target[i], scale, p1)
        l1, g1 = loss_term(code, pred[i + 1], target[i + 1], scale, p1)
        l2, g2 = loss_term(code, pred[i + 2], target[i + 2], scale, p1)
        l3, g3 = loss_term(code, pred[i + 3], target[i + 3], scale, p1)
        grad[i] = g0
        grad[i + 1] = g1
        grad[i + 2] = g2
        grad[i + 3] = g3
        a0 += l0
        a1 += l1
        a2 += l2
        a3 += l3
    for i in range(n4, n):
        l0, g0 = loss_term(code, pred[i], target[i], scale, p1)
        grad[i] = g0
        a0 += l0
    return (a0 + a1) + (a2 + a3)


@kernel(parallel=True)
def elementwise_loss(code, pred, target, grad, scale, p1):
    """scale * sum_i loss(pred_i, target_i) over flat arrays; grad written in place."""
    n = pred.size
    nb = n_blocks(n)
    if nb == 1:
        return loss_range(code, pred, target, grad, scale, p1) * scale
    partial = np.zeros(nb)
    for b in prange(nb):
        lo, hi = block_bounds(b, nb, n)
        partial[b] = loss_range(code, pred[lo:hi], target[lo:hi], grad[lo:hi], scale, p1)
    return sum_in_order(partial) * scale


@inline
def target_prob(labels, probs, use_labels, r, j, k, smoothing):
    """q[r, j]: the (label-smoothed) target distribution, from labels or from probabilities."""
    one = like(smoothing, 1.0)
    if use_labels:
        hit = one if labels[r] == j else like(smoothing, 0.0)
        return (one - smoothing) * hit + smoothing / k
    return (one - smoothing) * probs[r, j] + smoothing / k


@inline
def ce_rows(z, labels, probs, use_labels, grad, scale, smoothing, lo, hi):
    """Cross-entropy loss sum of rows [lo, hi); grad rows = scale * (softmax - q)."""
    k = z.shape[1]
    acc = 0.0
    for r in range(lo, hi):
        m, log_s = softmax_row(z, grad, r)
        for j in range(k):
            q = target_prob(labels, probs, use_labels, r, j, k, smoothing)
            if q != 0:
                acc -= q * log_softmax_value(z[r, j], m, log_s)
            grad[r, j] = scale * (grad[r, j] - q)
    return acc


@kernel(parallel=True)
def softmax_cross_entropy(z, labels, probs, use_labels, grad, scale, smoothing):
    """Fused softmax + cross-entropy over 2-D logits z (n, k).

    loss = -scale * sum_r sum_j q_rj log softmax(z_r)_j with q from int64 ``labels``
    (n,) when ``use_labels`` else from ``probs`` (n, k); grad = scale * (softmax(z) - q).
    """
    n, k = z.shape
    per, nb = row_blocks(n, k)
    if nb == 1:
        return ce_rows(z, labels, probs, use_labels, grad, scale, smoothing, 0, n) * scale
    partial = np.zeros(nb)
    for b in prange(nb):
        partial[b] = ce_rows(z, labels, probs, use_labels, grad, scale, smoothing,
                             b * per, min(n, (b + 1) * per))
    return sum_in_order(partial) * scale
