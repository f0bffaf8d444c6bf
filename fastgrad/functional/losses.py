"""Losses fused with their gradients (the public, validating wrappers).

Each function returns ``(loss, grad)``: ``loss`` a Python float, ``grad`` = d loss / d
input, of the input's shape and dtype. ``reduction="mean"`` (default) divides by the
number of elements (MSE, MAE, Huber, BCE) or by the batch size (softmax cross-entropy),
PyTorch's defaults; ``"sum"`` does not divide. Shapes must match exactly (no
broadcasting); 0-d inputs give a 0-d gradient; float16 is computed in float32 and its
gradient returned as float16; pandas nullable columns become floats with NaN for
missing values. Empty inputs, complex/object dtypes and out-of-range targets raise
``ValueError``/``TypeError``. NaN in the inputs propagates to the loss as NaN and to the
gradient at the same position (the kinks of mae and huber included).
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_scalar, check_choice, check_same_shape
from fastgrad.functional._inputs import float_input, restore
from fastgrad.kernels import losses as K

_REDUCTIONS = ("mean", "sum")


def _pair(pred, target, pred_name):
    """(pred, target, out_dtype): both as float arrays of pred's computing dtype."""
    pred, out_dtype = float_input(pred, pred_name)
    target, _ = float_input(target, "target", dtype=pred.dtype)
    check_same_shape(pred, target, pred_name, "target")
    return pred, target, out_dtype


def _elementwise(code, pred, target, reduction, p1=0.0):
    check_choice(reduction, "reduction", _REDUCTIONS)
    return _elementwise_checked(code, *_pair(pred, target, "pred"), reduction, p1)


def _elementwise_checked(code, pred, target, out_dtype, reduction, p1):
    """The kernel call on arrays that passed :func:`_pair`."""
    check_choice(reduction, "reduction", _REDUCTIONS)
    grad = np.empty_like(pred)
    t = pred.dtype.type
    scale = t(1.0 / pred.size) if reduction == "mean" else t(1.0)
    loss = K.elementwise_loss(code, pred.reshape(-1), target.reshape(-1), grad.reshape(-1), scale, t(p1))
    return float(loss), restore(grad, out_dtype)


def mse(pred, target, reduction="mean"):
    """Mean squared error: loss = mean((pred - target)^2), grad = 2 (pred - target) / N."""
    return _elementwise(K.MSE, pred, target, reduction)


def mae(pred, target, reduction="mean"):
    """Mean absolute error: loss = mean|pred - target|, grad = sign(pred - target) / N (0 at a tie)."""
    return _elementwise(K.MAE, pred, target, reduction)


def huber(pred, target, delta=1.0, reduction="mean"):
    """Huber loss (PyTorch's HuberLoss): 0.5 d^2 where |d| < delta, else delta (|d| - delta/2);
    grad = d, or delta sign(d), over N. ``delta`` > 0."""
    delta = as_scalar(delta, "delta", low=0.0, low_open=True)
    return _elementwise(K.HUBER, pred, target, reduction, delta)


def _check_unit_interval(x, name):
    finite = x[np.isfinite(x)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1], got values in [{finite.min()}, {finite.max()}]")
    if np.isinf(x).any():
        raise ValueError(f"{name} must lie in [0, 1], got an infinite value")


def binary_cross_entropy(prob, target, eps=1e-12, reduction="mean"):
    """BCE on probabilities: loss = -mean(t log p + (1 - t) log(1 - p)), both log arguments
    clamped to >= ``eps``; grad = (p - t) / max(p (1 - p), eps) / N (PyTorch's form).

    ``prob`` and ``target`` must lie in [0, 1] (``ValueError`` otherwise; NaN propagates).
    Prefer :func:`binary_cross_entropy_with_logits`, which is exact for any logit.
    """
    eps = as_scalar(eps, "eps", low=0.0, low_open=True, high=0.5)
    prob_arr, target_arr, out_dtype = _pair(prob, target, "prob")
    _check_unit_interval(prob_arr, "prob")
    _check_unit_interval(target_arr, "target")
    return _elementwise_checked(K.BCE, prob_arr, target_arr, out_dtype, reduction, eps)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """BCE fused with the sigmoid, in the stable form
    loss = mean(max(x, 0) - x t + log(1 + exp(-|x|))), grad = (sigmoid(x) - t) / N.

    Finite for x = +-inf wherever the true loss is (e.g. x = +inf, t = 1 gives 0).
    ``target`` must lie in [0, 1].
    """
    logits_arr, target_arr, out_dtype = _pair(logits, target, "logits")
    _check_unit_interval(target_arr, "target")
    return _elementwise_checked(K.BCE_LOGITS, logits_arr, target_arr, out_dtype, reduction, 0.0)


def _labels(target, n, k):
    if target.dtype.kind not in "iu":
        raise TypeError(f"integer class labels must have an integer dtype, got {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"target labels must have shape ({n},) to match logits, got {target.shape}")
    if n and (target.min() < 0 or target.max() >= k):
        raise ValueError(f"target labels must lie in [0, {k}), got values in [{target.min()}, {target.max()}]")
    return np.ascontiguousarray(target, dtype=np.int64)


def softmax_cross_entropy(logits, target, label_smoothing=0.0, reduction="mean"):
    """Softmax fused with cross-entropy over logits (n, k).

    ``target`` is integer labels (n,) in [0, k) or class probabilities (n, k).
    q = (1 - label_smoothing) * onehot(target) + label_smoothing / k (or the same
    mixing of the probabilities); loss = -sum_r sum_j q_rj log softmax(z_r)_j / n
    (``"sum"``: no division), grad = (softmax(z) - q) / n, in one pass that writes only
    the gradient. Finite for +-inf logits wherever the true loss is.
    """
    check_choice(reduction, "reduction", _REDUCTIONS)
    smoothing = as_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    logits, out_dtype = float_input(logits, "logits", ndim=2)
    n, k = logits.shape
    t = logits.dtype.type
    target_arr = np.asarray(target)
    if target_arr.ndim == 1:
        labels = _labels(target_arr, n, k)
        probs = np.empty((1, 1), dtype=logits.dtype)
        use_labels = True
    else:
        probs, _ = float_input(target_arr, "target", ndim=2, dtype=logits.dtype)
        check_same_shape(logits, probs, "logits", "target")
        _check_unit_interval(probs, "target")
        labels = np.empty(1, dtype=np.int64)
        use_labels = False
    grad = np.empty_like(logits)
    scale = t(1.0 / n) if reduction == "mean" else t(1.0)
    loss = K.softmax_cross_entropy(logits, labels, probs, use_labels, grad, scale, t(smoothing))
    return float(loss), restore(grad, out_dtype)
