"""The estimators' row weights: ``sample_weight`` and the classifier's ``class_weight``.

scikit-learn's semantics (``sklearn.utils.class_weight.compute_class_weight``, as
``LogisticRegression`` uses it): ``class_weight`` is a dict ``{label: weight}`` (labels not
named weigh 1) or ``"balanced"``, ``w_c = sum(w) / (n_classes * sum of w over rows of class c)``
(``n_samples / (n_classes * bincount(y))`` without ``sample_weight``, King & Zeng 2001);
each row's weight is its class weight times its sample weight. fastgrad's own
validation (:func:`fastgrad._weights.check_sample_weight`) is stricter than scikit-learn's:
weights must be finite and >= 0 and not all zero, checked again after the conversion to
the network's dtype.
"""
from __future__ import annotations

import numbers

import numpy as np

from fastgrad._checks import _describe
from fastgrad._weights import check_sample_weight

BALANCED_PARTIAL_FIT = (
    "class_weight='balanced' is not supported for partial_fit (as in scikit-learn's SGDClassifier): the "
    "class frequencies of one batch are not those of the data. Compute the weights once from a large enough "
    "sample of the targets, compute_class_weight('balanced', classes=classes, y=y), and pass them as a dict "
    "class_weight={label: weight}.")


def sample_weights(sample_weight, n):
    """``sample_weight`` as float64 (n,), or None. A number is every row's weight (as scikit-learn's
    ``_check_sample_weight``); otherwise 1-D of length n, real, finite, >= 0, not all zero, else
    ``ValueError``/``TypeError`` naming ``sample_weight``. The caller's array is never modified."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n, float(sample_weight))
    return check_sample_weight(sample_weight, n, np.float64)


def check_class_weight(class_weight):
    """``ValueError``/``TypeError`` naming ``class_weight`` unless it is None, ``"balanced"``
    or a dict of finite numbers >= 0."""
    if class_weight is None or (isinstance(class_weight, str) and class_weight == "balanced"):
        return
    if not isinstance(class_weight, dict):
        raise (ValueError if isinstance(class_weight, str) else TypeError)(
            f'class_weight must be None, "balanced" or a dict {{label: weight}}, got {_describe(class_weight)}')
    for label, value in class_weight.items():
        if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value)
                or value < 0):
            raise ValueError(f"class_weight[{label!r}] must be a finite number >= 0, got {value!r}")


def class_weighted(class_weight, classes, y, sample_weight, incremental):
    """The row weights float64 (n,): ``class_weight`` of each row's label in ``y`` (labels among the
    sorted ``classes``) times ``sample_weight`` (float64 (n,) or None); None when
    ``class_weight`` is None. ``"balanced"`` counts the rows of each class weighted by
    ``sample_weight``; with ``incremental`` (partial_fit) it raises ``ValueError``."""
    from sklearn.utils.class_weight import compute_class_weight
    if class_weight is None:
        return sample_weight
    if incremental and isinstance(class_weight, str):
        raise ValueError(BALANCED_PARTIAL_FIT)
    # "balanced" with a class whose rows all weigh 0 gives it an infinite weight: its rows stay 0
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = compute_class_weight(class_weight, classes=np.asarray(classes), y=y,
                                         sample_weight=sample_weight)
        rows = np.asarray(per_class, dtype=np.float64)[np.searchsorted(classes, y)]
        if sample_weight is not None:
            rows = np.where(sample_weight == 0, 0.0, rows * sample_weight)
    if not np.any(rows > 0):
        raise ValueError("class_weight (times sample_weight) gives every row a weight of zero; at least one "
                         "row needs a weight > 0")
    return rows


def kernel_weights(w, dtype, name="sample_weight"):
    """Row weights float64 (n,) or None as the training kernels take them: in ``dtype``,
    checked again after the conversion (a weight beyond float32's range, or all weights
    rounding to 0, raise ``ValueError`` naming ``name``), or None when every weight is
    exactly 1 (the unweighted path gives the same numbers, bit for bit)."""
    if w is None:
        return None
    with np.errstate(over="ignore"):  # a weight beyond the dtype's range becomes inf, which raises
        w = np.array(check_sample_weight(w, w.shape[0], dtype, name), order="C")  # a writeable copy of its own
    return None if np.all(w == 1) else w
