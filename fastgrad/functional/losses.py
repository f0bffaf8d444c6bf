"""Losses fused with their gradients (the public, validating wrappers).

Each function returns ``(loss, grad)``: ``loss`` a Python float, ``grad`` = d loss / d
input, of the input's shape and dtype. ``reduction`` follows PyTorch's losses:

* ``"mean"`` (default) divides by the number of elements (MSE, MAE, Huber, BCE), by the
  batch size (softmax cross-entropy), or -- with integer labels -- by the number of rows not
  ignored, each counted with its class weight (``sum_r w[y_r]``, torch's ``cross_entropy``);
* ``"sum"`` does not divide;
* ``"none"`` returns the per-sample losses instead of a float: an array of the input's
  shape for the elementwise losses, of shape ``(n,)`` (one per row) for softmax
  cross-entropy, in the input's dtype (float16 for float16 input); ``grad`` is then the
  gradient of their sum (what ``loss.sum().backward()`` gives in PyTorch).

Shapes must match exactly (no broadcasting, except the BCE losses' ``weight`` and
``pos_weight``); 0-d inputs give a 0-d gradient; float16 is computed in float32 and its
results returned as float16; pandas nullable columns become floats with NaN for
missing values. Empty inputs, complex/object dtypes, out-of-range targets and invalid
options raise ``ValueError``/``TypeError`` naming the argument. NaN in the inputs
propagates to the loss as NaN and to the gradient at the same position (the kinks of mae
and huber included).
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_int, as_scalar, check_choice, check_same_shape, in_dtype, kernel_array
from fastgrad.functional._inputs import float_input, restore
from fastgrad.kernels import losses as K

_REDUCTIONS = ("mean", "sum", "none")
# What the kernels take for an absent option (weight, pos_weight, per-sample losses).
_ABSENT = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}
_INT64 = np.iinfo(np.int64)


def _pair(pred, target, pred_name):
    """(pred, target, out_dtype): both as float arrays of pred's computing dtype."""
    pred, out_dtype = float_input(pred, pred_name)
    target, _ = float_input(target, "target", dtype=pred.dtype)
    check_same_shape(pred, target, pred_name, "target")
    return pred, target, out_dtype


def _elementwise(code, pred, target, reduction, p1=0.0, p1_name=None):
    check_choice(reduction, "reduction", _REDUCTIONS)
    return _elementwise_checked(code, *_pair(pred, target, "pred"), reduction, p1, p1_name=p1_name)


def _elementwise_checked(code, pred, target, out_dtype, reduction, p1, weight=None, pos_weight=None, p1_name=None):
    """The kernel call on arrays that passed :func:`_pair` (``weight``/``pos_weight``: flat
    arrays from :func:`_broadcast_weight`, or None); ``p1_name`` names the loss's option
    ``p1`` (huber's delta, BCE's eps), checked in pred's dtype (``_checks.check_in_dtype``)."""
    check_choice(reduction, "reduction", _REDUCTIONS)
    absent = _ABSENT[pred.dtype]
    grad = np.empty_like(pred)
    losses = np.empty_like(pred) if reduction == "none" else absent
    t = pred.dtype.type
    scale = t(1.0 / pred.size) if reduction == "mean" else t(1.0)
    p1 = in_dtype(p1, p1_name, pred.dtype, "pred's dtype") if p1_name else t(p1)
    loss = K.elementwise_loss(code, pred.reshape(-1), target.reshape(-1),
                              absent if weight is None else weight, absent if pos_weight is None else pos_weight,
                              grad.reshape(-1), losses.reshape(-1), scale, p1)
    if reduction == "none":
        return restore(losses, out_dtype), restore(grad, out_dtype)
    return float(loss), restore(grad, out_dtype)


def _check_weight_values(w, name):
    """``ValueError`` unless every entry of ``w`` is finite and >= 0."""
    if not np.isfinite(w).all():
        raise ValueError(f"{name} must be finite, got {w[~np.isfinite(w)][0]}")
    if (w < 0).any():
        raise ValueError(f"{name} must be >= 0, got a minimum of {w.min()}")


def _broadcast_weight(weight, name, pred, pred_name):
    """``weight`` (any shape that broadcasts to pred's) as a flat C-contiguous array of pred's
    size and dtype, finite and >= 0; None stays None."""
    if weight is None:
        return None
    w, _ = float_input(weight, name, dtype=pred.dtype)
    try:
        full = np.broadcast_to(w, pred.shape)
    except ValueError:
        raise ValueError(f"{name} must broadcast to the shape of {pred_name} {pred.shape}, "
                         f"got shape {w.shape}") from None
    _check_weight_values(w, name)
    return np.ascontiguousarray(full).reshape(-1)


def mse(pred, target, reduction="mean"):
    """Mean squared error (PyTorch's MSELoss): l_i = (pred_i - target_i)^2, grad = 2 (pred - target) / N.

    ``pred`` and ``target`` of one shape, float32 or float64 (integers become float64, float16
    is computed in float32). Returns ``(loss, grad)``: ``loss`` = mean (``"sum"``: sum) of l_i as
    a float, or the array of l_i for ``reduction="none"`` (then grad = d sum_i l_i / d pred);
    ``grad`` of pred's shape and dtype. Raises ``ValueError``/``TypeError`` for mismatched
    shapes, empty or non-real input and an unknown ``reduction``.
    """
    return _elementwise(K.MSE, pred, target, reduction)


def mae(pred, target, reduction="mean"):
    """Mean absolute error (PyTorch's L1Loss): l_i = |pred_i - target_i|, grad = sign(pred - target) / N
    (0 at a tie). Inputs, returns and errors as :func:`mse`."""
    return _elementwise(K.MAE, pred, target, reduction)


def huber(pred, target, delta=1.0, reduction="mean"):
    """Huber loss (PyTorch's HuberLoss): l_i = 0.5 d^2 where |d| < delta, else delta (|d| - delta/2),
    d = pred - target; grad = d, or delta sign(d), over N. ``delta`` > 0 (``ValueError``).
    Inputs, returns and errors as :func:`mse`."""
    delta = as_scalar(delta, "delta", low=0.0, low_open=True)
    return _elementwise(K.HUBER, pred, target, reduction, delta, "delta")


def _check_unit_interval(x, name):
    finite = x[np.isfinite(x)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1], got values in [{finite.min()}, {finite.max()}]")
    if np.isinf(x).any():
        raise ValueError(f"{name} must lie in [0, 1], got an infinite value")


def binary_cross_entropy(prob, target, eps=1e-12, reduction="mean", *, weight=None):
    """BCE on probabilities (PyTorch's ``binary_cross_entropy``):
    l_i = -w_i (t_i log p_i + (1 - t_i) log(1 - p_i)), both log arguments clamped to >= ``eps``;
    grad = w (p - t) / max(p (1 - p), eps) / N (PyTorch's form).

    ``prob`` and ``target`` of one shape must lie in [0, 1] (``ValueError`` otherwise; NaN
    propagates). ``weight`` (torch's rescaling weight): any shape that broadcasts to prob's
    (per element, e.g. ``(n, 1)`` per row or ``(k,)`` per column), finite and >= 0; ``"mean"``
    still divides by N, the number of elements, as torch does. Returns ``(loss, grad)`` as
    :func:`mse` (``reduction="none"``: the array of l_i). Prefer
    :func:`binary_cross_entropy_with_logits`, which is exact for any logit.
    """
    eps = as_scalar(eps, "eps", low=0.0, low_open=True, high=0.5)
    prob_arr, target_arr, out_dtype = _pair(prob, target, "prob")
    _check_unit_interval(prob_arr, "prob")
    _check_unit_interval(target_arr, "target")
    weight = _broadcast_weight(weight, "weight", prob_arr, "prob")
    return _elementwise_checked(K.BCE, prob_arr, target_arr, out_dtype, reduction, eps, weight, p1_name="eps")


def binary_cross_entropy_with_logits(logits, target, reduction="mean", *, weight=None, pos_weight=None):
    """BCE fused with the sigmoid (PyTorch's ``binary_cross_entropy_with_logits``), in the
    stable form l_i = w_i (max(x, 0) - x t + log(1 + exp(-|x|))), grad = w (sigmoid(x) - t) / N.

    With ``pos_weight`` (torch's, weighing the positive term; broadcast to the logits' shape,
    typically ``(k,)``, one per column): l_i = w_i (pw_i t_i softplus(-x_i) + (1 - t_i) softplus(x_i)),
    i.e. torch's (1 - t) x - (1 + (pw - 1) t) log sigmoid(x), and
    grad = w ((1 - t) sigmoid(x) - pw t sigmoid(-x)) / N. ``weight`` as in
    :func:`binary_cross_entropy`; both finite and >= 0. ``target`` of the logits' shape
    in [0, 1]. Finite for x = +-inf wherever the true loss is (e.g. x = +inf, t = 1 gives 0,
    where torch gives NaN with pos_weight). Returns ``(loss, grad)`` as :func:`mse`.
    """
    logits_arr, target_arr, out_dtype = _pair(logits, target, "logits")
    _check_unit_interval(target_arr, "target")
    weight = _broadcast_weight(weight, "weight", logits_arr, "logits")
    pos_weight = _broadcast_weight(pos_weight, "pos_weight", logits_arr, "logits")
    return _elementwise_checked(K.BCE_LOGITS, logits_arr, target_arr, out_dtype, reduction, 0.0,
                                weight, pos_weight)


def _labels(target, n, k, ignore_index):
    if target.dtype.kind not in "iu":
        raise TypeError(f"integer class labels must have an integer dtype, got {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"target labels must have shape ({n},) to match logits, got {target.shape}")
    if n and (target.min() < 0 or target.max() >= k):
        bad = target[((target < 0) | (target >= k)) & (target != ignore_index)]
        if bad.size:
            raise ValueError(f"target labels must lie in [0, {k}) or equal ignore_index ({ignore_index}), "
                             f"got values in [{bad.min()}, {bad.max()}]")
    return kernel_array(target, np.int64)


def _ignore_index(value):
    value = as_int(value, "ignore_index")
    if not _INT64.min <= value <= _INT64.max:
        raise ValueError(f"ignore_index must fit in int64, got {value}")
    return value


def _class_weight(weight, k, dtype):
    """``weight`` as a (k,) array of the logits' dtype, finite and >= 0."""
    w, _ = float_input(weight, "weight", ndim=1, dtype=dtype)
    if w.shape != (k,):
        raise ValueError(f"weight must have shape ({k},), one per class of logits, got {w.shape}")
    _check_weight_values(w, "weight")
    return w


def _mean_denominator(labels, use_labels, weight, ignore_index, n):
    """What ``reduction="mean"`` divides by (torch's cross_entropy): n for probabilities, else
    the rows not ignored, each counted as its class weight."""
    if not use_labels:
        return n
    kept = labels != ignore_index
    if weight is None:
        return np.count_nonzero(kept)
    return float(np.sum(weight[labels[kept]], dtype=np.float64))


def softmax_cross_entropy(logits, target, label_smoothing=0.0, reduction="mean", *, weight=None,
                          ignore_index=-100):
    """Softmax fused with cross-entropy over logits (n, k), PyTorch's ``cross_entropy``.

    ``target`` is integer labels (n,) in [0, k) (or equal to ``ignore_index``) or class
    probabilities (n, k) in [0, 1]. q = (1 - label_smoothing) * onehot(target) +
    label_smoothing / k (or the same mixing of the probabilities); with per-class weights
    ``weight`` (k,) (finite, >= 0; default all 1) c_rj = w_j q_rj, which for labels is
    torch's (1 - ls) w[y_r] [j = y_r] + ls w_j / k. Row r's loss is
    l_r = -sum_j c_rj log softmax(z_r)_j; rows labelled ``ignore_index`` (default -100,
    torch's) have l_r = 0 and a zero gradient.

    ``reduction="mean"`` divides sum_r l_r by the number of rows, or, with labels, by the
    sum of w[y_r] over the rows not ignored (the row count without ``weight``), as torch
    does -- NaN when that is 0 (every row ignored, or the rows kept weigh 0), with the
    gradient of ignored rows 0;
    ``"sum"`` does not divide; ``"none"`` returns the row losses l (n,) in the logits' dtype
    and the gradient of their sum. grad = ((sum_j q_rj) softmax(z_r) - q_r) / n without
    ``weight`` (softmax(z) - q for rows that sum to 1, labels always), else
    ((sum_j c_rj) softmax(z_r) - c_r) / denominator; one pass writes the gradient (and the
    row losses). Finite for +-inf logits wherever the true loss is.

    Returns ``(loss, grad)``: a float (an (n,) array for ``"none"``) and an array of the
    logits' shape and dtype. Raises ``ValueError``/``TypeError`` for a logits array that is
    not 2-D or is empty, labels outside [0, k) other than ``ignore_index``, probabilities of
    another shape or outside [0, 1], a ``weight`` that is not (k,), finite and >= 0, an
    ``ignore_index`` that is not an integer (or is >= 0 with probability targets, which
    torch refuses too), ``label_smoothing`` outside [0, 1] and an unknown ``reduction``.
    """
    check_choice(reduction, "reduction", _REDUCTIONS)
    smoothing = as_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    ignore_index = _ignore_index(ignore_index)
    logits, out_dtype = float_input(logits, "logits", ndim=2)
    n, k = logits.shape
    t = logits.dtype.type
    target_arr = np.asarray(target)
    if target_arr.ndim == 1:
        labels = _labels(target_arr, n, k, ignore_index)
        probs = np.empty((1, 1), dtype=logits.dtype)
        use_labels = True
    else:
        if ignore_index >= 0:
            raise ValueError(f"ignore_index applies to integer labels only (torch refuses it too); "
                             f"got ignore_index={ignore_index} with probability targets of shape {target_arr.shape}")
        probs, _ = float_input(target_arr, "target", ndim=2, dtype=logits.dtype)
        check_same_shape(logits, probs, "logits", "target")
        _check_unit_interval(probs, "target")
        labels = np.empty(1, dtype=np.int64)
        use_labels = False
    weight = None if weight is None else _class_weight(weight, k, logits.dtype)
    absent = _ABSENT[logits.dtype]
    grad = np.empty_like(logits)
    losses = np.empty(n, dtype=logits.dtype) if reduction == "none" else absent
    scale = t(1.0)
    if reduction == "mean":
        denominator = _mean_denominator(labels, use_labels, weight, ignore_index, n)
        scale = t(1.0 / denominator) if denominator > 0 else t(np.nan)
    loss = K.softmax_cross_entropy(logits, labels, probs, use_labels, absent if weight is None else weight,
                                   np.int64(ignore_index), grad, losses, scale, t(smoothing))
    if reduction == "none":
        return restore(losses, out_dtype), restore(grad, out_dtype)
    return float(loss), restore(grad, out_dtype)
