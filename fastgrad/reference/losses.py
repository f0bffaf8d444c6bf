"""Losses in plain NumPy: each returns (loss as a Python float, d loss / d input).

Same names and signatures as :mod:`fastgrad.functional`. ``reduction="mean"`` divides
by the number of elements (MSE, MAE, Huber, BCE) or by the batch size (softmax
cross-entropy), as PyTorch's defaults do; ``"sum"`` does not divide.
"""
import numpy as np


def _scale(reduction, count):
    return 1.0 / count if reduction == "mean" else 1.0


def mse(pred, target, reduction="mean"):
    d = pred - target
    s = _scale(reduction, pred.size)
    return float(np.sum(d.astype(np.float64) ** 2) * s), (2 * s * d).astype(pred.dtype)


def mae(pred, target, reduction="mean"):
    d = pred - target
    s = _scale(reduction, pred.size)
    return float(np.sum(np.abs(d.astype(np.float64))) * s), (s * np.sign(d)).astype(pred.dtype)


def huber(pred, target, delta=1.0, reduction="mean"):
    d = (pred - target)
    ad = np.abs(d)
    s = _scale(reduction, pred.size)
    small = ad < delta
    d64 = d.astype(np.float64)
    loss = np.where(small, 0.5 * d64**2, delta * (np.abs(d64) - 0.5 * delta))
    grad = np.where(small, d, delta * np.sign(d))
    return float(np.sum(loss) * s), (s * grad).astype(pred.dtype)


def binary_cross_entropy(prob, target, eps=1e-12, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) with both log arguments clamped to >= eps."""
    p = prob.astype(np.float64)
    t = target.astype(np.float64)
    s = _scale(reduction, prob.size)
    loss = -(t * np.log(np.maximum(p, eps)) + (1 - t) * np.log(np.maximum(1 - p, eps)))
    grad = (prob - target) / np.maximum(prob * (1 - prob), eps)
    return float(np.sum(loss) * s), (s * grad).astype(prob.dtype)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """max(x, 0) - x t + log(1 + exp(-|x|)); the x t terms are dropped where their limit is 0."""
    x = logits.astype(np.float64)
    t = target.astype(np.float64)
    s = _scale(reduction, logits.size)
    with np.errstate(invalid="ignore"):
        lin = np.where(x >= 0, np.where(t == 1, 0.0, (1 - t) * x), np.where(t == 0, 0.0, -t * x))
    loss = lin + np.log1p(np.exp(-np.abs(x)))
    e = np.exp(-np.abs(logits))
    sig = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    return float(np.sum(loss) * s), (s * (sig - target)).astype(logits.dtype)


def softmax_cross_entropy(logits, target, label_smoothing=0.0, reduction="mean"):
    """-sum_j q_j log softmax(z)_j per row, q = (1 - ls) onehot(target) + ls / k (or from probabilities)."""
    from fastgrad.reference.activations import _softmax  # one definition of the stable softmax
    n, k = logits.shape
    z = logits.astype(np.float64)
    if target.ndim == 1:
        q = np.zeros((n, k))
        q[np.arange(n), target] = 1.0
    else:
        q = target.astype(np.float64)
    q = (1 - label_smoothing) * q + label_smoothing / k
    p, shifted, log_s = _softmax(z, axis=1)
    log_p = shifted - log_s
    with np.errstate(invalid="ignore"):
        terms = np.where(q != 0, q * log_p, 0.0)
    s = _scale(reduction, n)
    return float(-np.sum(terms) * s), (s * (p - q)).astype(logits.dtype)
