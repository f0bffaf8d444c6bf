"""Losses in plain NumPy: each returns (loss as a Python float, d loss / d input).

Same names and signatures as :mod:`fastgrad.functional`. ``reduction="mean"`` divides
by the number of elements (MSE, MAE, Huber, BCE) or by the batch size (softmax
cross-entropy; with integer labels by the sum of the class weights of the rows not
ignored), as PyTorch's defaults do; ``"sum"`` does not divide; ``"none"`` returns the
per-sample losses (in the input's dtype) and the gradient of their sum.
"""
import numpy as np


def _scale(reduction, count):
    return 1.0 / count if reduction == "mean" else 1.0


def _reduce(losses, grad, reduction, dtype, weight=None):
    """(loss, grad) from float64 per-element losses and their gradients: both times ``weight``
    (broadcast), then summed/averaged over every element, or kept for ``"none"``."""
    if weight is not None:
        losses = losses * weight
        grad = grad * weight
    if reduction == "none":
        return losses.astype(dtype), grad.astype(dtype)
    s = _scale(reduction, losses.size)
    return float(np.sum(losses) * s), (s * grad).astype(dtype)


def mse(pred, target, reduction="mean"):
    d = pred - target
    return _reduce(d.astype(np.float64) ** 2, 2 * d, reduction, pred.dtype)


def mae(pred, target, reduction="mean"):
    d = pred - target
    return _reduce(np.abs(d.astype(np.float64)), np.sign(d), reduction, pred.dtype)


def huber(pred, target, delta=1.0, reduction="mean"):
    d = (pred - target)
    ad = np.abs(d)
    small = ad < delta
    d64 = d.astype(np.float64)
    loss = np.where(small, 0.5 * d64**2, delta * (np.abs(d64) - 0.5 * delta))
    grad = np.where(small, d, delta * np.sign(d))
    return _reduce(loss, grad, reduction, pred.dtype)


def binary_cross_entropy(prob, target, eps=1e-12, reduction="mean", *, weight=None):
    """-w (t log p + (1 - t) log(1 - p)) with both log arguments clamped to >= eps."""
    p = prob.astype(np.float64)
    t = target.astype(np.float64)
    loss = -(t * np.log(np.maximum(p, eps)) + (1 - t) * np.log(np.maximum(1 - p, eps)))
    grad = (prob - target) / np.maximum(prob * (1 - prob), eps)
    return _reduce(loss, grad, reduction, prob.dtype, weight)


def _softplus(x):
    """log(1 + exp(x)), exact for x = +-inf."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def binary_cross_entropy_with_logits(logits, target, reduction="mean", *, weight=None, pos_weight=None):
    """w (max(x, 0) - x t + log(1 + exp(-|x|))); the x t terms are dropped where their limit is 0.

    With ``pos_weight`` pw (PyTorch's): w (pw t softplus(-x) + (1 - t) softplus(x)), each term
    dropped where its factor is 0; gradient w ((1 - t) sigmoid(x) - pw t sigmoid(-x)).
    """
    x = logits.astype(np.float64)
    t = target.astype(np.float64)
    with np.errstate(invalid="ignore"):
        if pos_weight is None:
            lin = np.where(x >= 0, np.where(t == 1, 0.0, (1 - t) * x), np.where(t == 0, 0.0, -t * x))
            loss = lin + np.log1p(np.exp(-np.abs(x)))
            grad = _sigmoid(logits) - target
        else:
            pw = np.asarray(pos_weight, dtype=np.float64)
            loss = (np.where(t == 0, 0.0, pw * t * _softplus(-x))
                    + np.where(t == 1, 0.0, (1 - t) * _softplus(x)))
            grad = (1 - target) * _sigmoid(logits) - pos_weight * target * _sigmoid(-logits)
    return _reduce(loss, grad, reduction, logits.dtype, weight)


def softmax_cross_entropy(logits, target, label_smoothing=0.0, reduction="mean", *, weight=None,
                          ignore_index=-100):
    """-sum_j c_j log softmax(z)_j per row, c_j = w_j q_j, q = (1 - ls) onehot(target) + ls / k
    (or from probabilities); rows labelled ignore_index count 0 (PyTorch's cross_entropy).

    The gradient of a row is (sum_j c_j) softmax(z) - c (softmax(z) - q when the q sum to 1).
    """
    from fastgrad.reference.activations import _softmax  # one definition of the stable softmax
    n, k = logits.shape
    z = logits.astype(np.float64)
    w = np.ones(k) if weight is None else np.asarray(weight, dtype=np.float64)
    if target.ndim == 1:
        kept = target != ignore_index
        q = np.zeros((n, k))
        q[np.flatnonzero(kept), target[kept]] = 1.0
    else:
        kept = np.ones(n, dtype=bool)
        q = target.astype(np.float64)
    q = (1 - label_smoothing) * q + label_smoothing / k
    c = np.where(kept[:, None], w * q, 0.0)
    p, shifted, log_s = _softmax(z, axis=1)
    log_p = shifted - log_s
    with np.errstate(invalid="ignore"):
        losses = np.sum(np.where(c != 0, -c * log_p, 0.0), axis=1)
        losses[kept & np.isnan(log_s).reshape(-1)] = np.nan   # a NaN row's loss is NaN, whatever c
        grad = np.where(kept[:, None], c.sum(axis=1, keepdims=True) * p - c, 0.0)
    if reduction == "none":
        return losses.astype(logits.dtype), grad.astype(logits.dtype)
    s = 1.0
    if reduction == "mean":
        denominator = n if target.ndim == 2 else np.sum(w[target[kept]])
        s = 1.0 / denominator if denominator > 0 else np.nan
    with np.errstate(invalid="ignore"):
        grad = np.where(kept[:, None], s * grad, 0.0)
    return float(np.sum(losses) * s), grad.astype(logits.dtype)
