"""Losses fused with their gradients: one pass computes the loss sum and d loss / d input.

Every kernel takes ``scale`` (1/N for ``reduction="mean"``, 1 for ``"sum"`` and ``"none"``),
writes ``grad = scale * d loss_i / d input`` and returns ``scale * sum_i loss_i`` as float64
(accumulated in float64 whatever the array dtype). Work is split in blocks fixed by the
input size and the block sums are added in order: the result does not depend on the
number of threads. NaN in an input gives NaN in the loss and in that gradient entry.

PyTorch's options (weights, ``pos_weight``, ``ignore_index``, per-sample losses) are array
arguments that are EMPTY when absent (as ``sw`` in kernels/train.py): a block with none of
them runs the plain helpers the training loop also runs (``loss_range``, ``ce_rows``), so
the options cost the default call one test per block (and, with labels, a scan of the
block's labels for ``ignore_index``).
"""
import numpy as np

from fastgrad._jit import block_bounds, inline, kernel, like, n_blocks, ordered, prange, spliced
from fastgrad.kernels.activations import sigmoid
from fastgrad.kernels.mathfns import exp, log1p_unit
from fastgrad.kernels.reduce import sum_in_order
from fastgrad.kernels.softmax import log_softmax_value, row_stats, softmax_rows
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
def _bce_logits_pos(x, t, pw, scale):
    """BCE with logits in PyTorch's ``pos_weight`` form (loss_i in float64, scale * d loss_i / dx):
    (1 - t) x - (1 + (pw - 1) t) log sigmoid(x) = pw t softplus(-x) + (1 - t) softplus(x), each
    softplus the plain loss at t = 1 or 0 (finite for x = +-inf) and dropped where its factor is 0;
    d/dx = (1 - t) sigmoid(x) - pw t sigmoid(-x)."""
    zero = like(x, 0.0)
    one = like(x, 1.0)
    pos = zero if t == zero else pw * t * _bce_logits_term(x, one)
    neg = zero if t == one else (one - t) * _bce_logits_term(x, zero)
    return np.float64(pos + neg), scale * ((one - t) * sigmoid(x) - pw * t * sigmoid(-x))


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


@inline
def loss_range_weighted(code, pred, target, weight, pos_weight, grad, losses, scale, p1):
    """loss_range with PyTorch's options, each used when its array is not empty: loss_i and
    its gradient times ``weight[i]``, BCE with logits in ``pos_weight[i]``'s form
    (:func:`_bce_logits_pos`), and the (weighted) loss_i written to ``losses[i]``."""
    acc = 0.0
    for i in range(pred.size):
        if pos_weight.size > 0:
            loss, g = _bce_logits_pos(pred[i], target[i], pos_weight[i], scale)
        else:
            loss, g = loss_term(code, pred[i], target[i], scale, p1)
        if weight.size > 0:
            loss *= weight[i]
            g *= weight[i]
        grad[i] = g
        if losses.size > 0:
            losses[i] = loss
        acc += loss
    return acc


@inline
def _loss_block(code, pred, target, weight, pos_weight, grad, losses, scale, p1):
    if weight.size == 0 and pos_weight.size == 0 and losses.size == 0:
        return loss_range(code, pred, target, grad, scale, p1)
    return loss_range_weighted(code, pred, target, weight, pos_weight, grad, losses, scale, p1)


@kernel(parallel=True)
def elementwise_loss(code, pred, target, weight, pos_weight, grad, losses, scale, p1):
    """scale * sum_i w_i loss(pred_i, target_i) over flat arrays; grad written in place.

    ``weight``, ``pos_weight`` (BCE with logits only) and ``losses`` are flat arrays of
    pred's size, or empty when absent (see :func:`loss_range_weighted`).
    """
    n = pred.size
    nb = n_blocks(n)
    if nb == 1:
        return _loss_block(code, pred, target, weight, pos_weight, grad, losses, scale, p1) * scale
    partial = np.zeros(nb)
    for b in prange(nb):
        lo, hi = block_bounds(b, nb, n)
        partial[b] = _loss_block(code, pred[lo:hi], target[lo:hi], weight[lo:hi], pos_weight[lo:hi],
                                 grad[lo:hi], losses[lo:hi], scale, p1)
    return sum_in_order(partial) * scale


@inline
def target_prob(labels, probs, use_labels, r, j, k, smoothing):
    """q[r, j]: the (label-smoothed) target distribution, from labels or from probabilities, in
    float64: the gradient ``scale * (q_sum p - q)`` is then rounded once, into the logits' dtype
    (p - 1 at a label is exact there, where float32 arithmetic would round it first), and one
    class with smoothing has q = (1 - ls) + ls = 1 exactly (gradient 0)."""
    s = np.float64(smoothing)
    if use_labels:
        hit = 1.0 if labels[r] == j else 0.0
        return (1.0 - s) * hit + s / k
    return (1.0 - s) * np.float64(probs[r, j]) + s / k


@inline
def ce_rows(z, labels, probs, use_labels, grad, scale, smoothing, lo, hi):
    """Cross-entropy loss sum of rows [lo, hi); grad rows = scale * ((sum_j q_j) softmax - q):
    scale * (softmax - q) for labels (their q sum to 1; the factor 1 changes no bit), and the
    true gradient for probability rows that do not sum to 1 (as PyTorch's)."""
    k = z.shape[1]
    acc = 0.0
    stats = row_stats(z, lo, hi)
    softmax_rows(z, grad, lo, hi, stats, True, True)
    for r in range(lo, hi):
        m, log_s = stats[0, r - lo], stats[1, r - lo]
        q_sum = like(scale, 1.0)
        if not use_labels:
            total = 0.0
            for j in range(k):
                total += target_prob(labels, probs, use_labels, r, j, k, smoothing)
            q_sum = like(scale, total)
        if use_labels and smoothing == 0:
            acc += _one_hot_row(z, labels, grad, scale, r, m, log_s) + _nan_row(log_s)
            continue
        row = 0.0   # summed per row, then added: the order of ce_rows_weighted, so the same bits
        for j in range(k):
            q = target_prob(labels, probs, use_labels, r, j, k, smoothing)
            if q != 0:
                row -= q * log_softmax_value(z[r, j], m, log_s)
            grad[r, j] = scale * (q_sum * grad[r, j] - q)
        acc += row + _nan_row(log_s)
    return acc


@spliced
def _one_hot_row(z, labels, grad, scale, r, m, log_s):
    """ce_rows' row r for a label without smoothing (q one-hot): grad[r] = scale * p, and
    scale * (p - 1) at the label, as one scaling loop and one entry; returns the row's loss.
    The general loop's bits (q_sum * p - 0 is p), without its k calls of target_prob."""
    k = z.shape[1]
    y = labels[r]
    p_y = grad[r, y]
    for j in range(k):
        grad[r, j] *= scale
    grad[r, y] = scale * (p_y - 1.0)   # in float64, rounded once (as the general loop's q)
    return 0.0 - log_softmax_value(z[r, y], m, log_s)


@inline
def _nan_row(log_s):
    """NaN when a row's log-sum-exp is NaN (a NaN logit, or every logit -inf), else 0: its loss
    is then NaN even where every target weight is 0 and no term is added (PyTorch's 0 * NaN),
    so that a NaN is never hidden in the loss while it is in the gradient."""
    return log_s if log_s != log_s else 0.0


@inline
def _class_coef(labels, probs, use_labels, weight, r, j, k, smoothing):
    """c[r, j] = w_j q[r, j]: PyTorch's class weights on the target distribution. With labels
    this is (1 - ls) w[y_r] [j = y_r] + ls w_j / k, as torch's cross_entropy weighs its
    label-smoothing term class by class (w_j = w[y_r] where j = y_r)."""
    q = target_prob(labels, probs, use_labels, r, j, k, smoothing)
    return q * weight[j] if weight.size > 0 else q


@inline
def ce_rows_weighted(z, labels, probs, use_labels, weight, ignore_index, grad, losses, scale, smoothing, lo, hi):
    """ce_rows with PyTorch's options: class weights ``weight`` (k,) (empty: none), rows whose
    label is ``ignore_index`` (0 loss, 0 gradient, whatever the scale), row losses written to
    ``losses`` (n,) (empty: not written). Row r's loss is -sum_j c_rj log softmax(z_r)_j
    with c = :func:`_class_coef`; its gradient scale * ((sum_j c_rj) softmax(z_r) - c_r)."""
    k = z.shape[1]
    zero = like(scale, 0.0)
    acc = 0.0
    stats = row_stats(z, lo, hi)
    softmax_rows(z, grad, lo, hi, stats, True, True)
    for r in range(lo, hi):
        row = 0.0
        if use_labels and labels[r] == ignore_index:
            for j in range(k):
                grad[r, j] = zero
        else:
            m, log_s = stats[0, r - lo], stats[1, r - lo]
            c_sum = 0.0
            for j in range(k):
                c = _class_coef(labels, probs, use_labels, weight, r, j, k, smoothing)
                if c != 0:
                    row -= c * log_softmax_value(z[r, j], m, log_s)
                c_sum += c
            row += _nan_row(log_s)
            # labels without class weights: their q sum to 1, taken as 1 as in ce_rows, so a row's
            # bits do not depend on which path its block took (an ignored row, reduction="none")
            total = like(scale, 1.0) if use_labels and weight.size == 0 else like(scale, c_sum)
            for j in range(k):
                c = _class_coef(labels, probs, use_labels, weight, r, j, k, smoothing)
                grad[r, j] = scale * (total * grad[r, j] - c)
        if losses.size > 0:
            losses[r] = row
        acc += row
    return acc


@inline
def _any_label(labels, use_labels, value, lo, hi):
    if use_labels:
        for r in range(lo, hi):
            if labels[r] == value:
                return True
    return False


@inline
def _ce_block(z, labels, probs, use_labels, weight, ignore_index, grad, losses, scale, smoothing, lo, hi):
    if weight.size == 0 and losses.size == 0 and not _any_label(labels, use_labels, ignore_index, lo, hi):
        return ce_rows(z, labels, probs, use_labels, grad, scale, smoothing, lo, hi)
    return ce_rows_weighted(z, labels, probs, use_labels, weight, ignore_index, grad, losses, scale,
                            smoothing, lo, hi)


@kernel(parallel=True)
def softmax_cross_entropy(z, labels, probs, use_labels, weight, ignore_index, grad, losses, scale, smoothing):
    """Fused softmax + cross-entropy over 2-D logits z (n, k).

    loss = -scale * sum_r sum_j c_rj log softmax(z_r)_j with c_rj = w_j q_rj, q from int64
    ``labels`` (n,) when ``use_labels`` else from ``probs`` (n, k), w = ``weight`` (k,) or 1
    when it is empty; rows labelled ``ignore_index`` count 0. grad = scale * ((sum_j c_rj)
    softmax(z_r) - c_r) (for labels without weights: scale * (softmax(z) - q)); row losses go to
    ``losses`` (n,) unless it is empty (see :func:`ce_rows_weighted`).
    """
    n, k = z.shape
    per, nb = row_blocks(n, k)
    if nb == 1:
        return _ce_block(z, labels, probs, use_labels, weight, ignore_index, grad, losses, scale, smoothing,
                         0, n) * scale
    partial = np.zeros(nb)
    for b in prange(nb):
        partial[b] = _ce_block(z, labels, probs, use_labels, weight, ignore_index, grad, losses, scale,
                               smoothing, b * per, min(n, (b + 1) * per))
    return sum_in_order(partial) * scale
