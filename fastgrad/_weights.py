"""Sample and class weights: validation, ``class_weight`` (a dict or "balanced") and their product.

The training and evaluation kernels take the weights as one array (n,) in the model's dtype,
or an EMPTY array for the unweighted path. A batch's loss is the weighted mean
``sum_i w_i l_i / sum_i w_i`` (``l_i``: row i's loss averaged over its outputs), PyTorch's
convention for ``cross_entropy(weight=...)`` with ``reduction="mean"``
(https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html).
"""
from __future__ import annotations

import numbers

import numpy as np

from fastgrad._checks import _describe, kernel_array


def check_sample_weight(sample_weight, n, dtype, name="sample_weight"):
    """``sample_weight`` as a C-contiguous array (n,) of ``dtype``; ``ValueError``/``TypeError``
    naming ``name`` unless it is 1-D of length n, real, finite, >= 0 and not all zero."""
    arr = np.asarray(sample_weight)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (float or int), got {_describe(sample_weight)}")
    if arr.shape != (n,):
        raise ValueError(f"{name} must be 1-D with one weight per row ({n},), got shape {arr.shape}")
    with np.errstate(over="ignore"):  # a finite weight beyond float32's range: the message below, no warning
        w = kernel_array(arr, dtype)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} must be finite, found NaN or inf (after conversion to {np.dtype(dtype).name})")
    if np.any(w < 0):
        raise ValueError(f"{name} must be >= 0, got a minimum of {w.min()}")
    if not np.any(w > 0):
        raise ValueError(f"{name} must not be all zero (the weighted mean divides by the sum of the weights)")
    return w


def class_labels(loss, yf, yl, use_labels, name="y"):
    """Each row's class for ``class_weight``: softmax cross-entropy with integer labels, or binary
    cross-entropy with one output and 0/1 targets; ``ValueError`` for anything else."""
    if loss == "softmax_cross_entropy" and use_labels:
        return yl
    if loss == "binary_cross_entropy" and not use_labels and yf.shape[1] == 1 and np.all((yf == 0) | (yf == 1)):
        return yf[:, 0].astype(np.int64)
    raise ValueError("class_weight needs a classification loss with class targets: softmax_cross_entropy with "
                     "integer labels (n,), or binary_cross_entropy with one output and 0/1 targets; got loss "
                     f"{loss!r} with {name} of shape {yl.shape if use_labels else yf.shape}"
                     + ("" if use_labels or loss != "binary_cross_entropy" else " (targets must be exactly 0 or 1)"))


def class_weight_rows(class_weight, labels, n_classes):
    """The per-row weight (float64, (n,)) that ``class_weight`` gives rows of class ``labels``.

    ``"balanced"``: ``n_samples / (n_present_classes * bincount(labels))``, scikit-learn's
    ``compute_class_weight("balanced", ...)`` formula (King & Zeng, 2001), over the classes
    present in ``labels``. A dict ``{class: weight}``: classes not named weigh 1 (as in
    scikit-learn and Keras); keys must be classes in ``[0, n_classes)``, weights finite, >= 0.
    """
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f'class_weight must be a dict {{class: weight}} or "balanced", got {class_weight!r}')
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        present = counts > 0
        per_class = np.zeros(n_classes)
        per_class[present] = labels.size / (np.count_nonzero(present) * counts[present])
        return per_class[labels]
    if not isinstance(class_weight, dict):
        raise TypeError(f'class_weight must be a dict {{class: weight}} or "balanced", got {_describe(class_weight)}')
    per_class = np.ones(n_classes)
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, numbers.Integral) or not 0 <= int(key) < n_classes:
            raise ValueError(f"class_weight keys must be classes, integers in [0, {n_classes}), got {key!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"class_weight[{key!r}] must be a finite number >= 0, got {value!r}")
        per_class[int(key)] = float(value)
    return per_class[labels]


def combined_weights(model, sample_weight, class_weight, yf, yl, use_labels, n, name="sample_weight"):
    """The weights (n,) in ``model.dtype`` for training or evaluation, or ``None`` for the
    unweighted path: when neither is given, or when every weight is exactly 1 (the unweighted
    path then gives the same numbers bit for bit, logged losses included)."""
    w = None
    if (sample_weight is not None or class_weight is not None) and not isinstance(model.loss, str):
        raise ValueError(f"sample and class weights need a built-in loss; the custom {model.loss!r} gets the batch "
                         "(out, target) only: weight the rows inside its value and gradient instead")
    if sample_weight is not None:
        w = check_sample_weight(sample_weight, n, np.float64 if class_weight is not None else model.dtype, name)
    if class_weight is not None:
        n_classes = model.n_out if model.loss == "softmax_cross_entropy" else 2
        rows = class_weight_rows(class_weight, class_labels(model.loss, yf, yl, use_labels), n_classes)
        w = check_sample_weight(rows if w is None else rows * w, n, model.dtype,
                                "sample_weight * class_weight" if w is not None else "class_weight (per row)")
    if w is None or np.all(w == 1):
        return None
    return w
