"""Metrics a model logs besides its loss (``Sequential(..., metrics=[...])``), in NumPy.

Each takes the model's outputs as ``predict`` returns them -- class probabilities for
``softmax_cross_entropy``, per-output probabilities for ``binary_cross_entropy``, raw outputs
otherwise -- and the targets, and returns a float. Definitions follow scikit-learn's
(``sklearn.metrics``), the reference the tests compare with:

* ``accuracy``: the fraction of rows whose argmax is the label (softmax), or of entries whose
  ``p > 0.5`` equals the 0/1 target (binary; Keras's threshold);
* ``auc``: the area under the ROC curve, by the trapezoidal rule over every distinct score
  (tied scores form one step, as ``roc_auc_score``); softmax: one-vs-rest, the macro average
  over the classes present in the labels (``multi_class="ovr"``); binary with several outputs:
  the macro average over outputs. NaN where only one class is present (scikit-learn raises);
* ``precision``, ``recall``: binary (one output): of the positive class at ``p > 0.5``;
  softmax: the macro average over the labels present in the targets or the predictions
  (``average="macro"``); binary with several outputs: the macro average over outputs; a class
  never predicted (never present) counts 0 (``zero_division=0``);
* ``r2``: ``1 - SS_res / SS_tot`` per output, averaged (a constant target column: 1 if
  predicted exactly, else 0, as ``r2_score``); ``mae``, ``mse``: mean absolute (squared)
  error over every entry.

Classification metrics need a classification loss and regression metrics a regression loss:
:func:`check_metrics` raises ``ValueError`` otherwise.
"""
from __future__ import annotations

import numpy as np

CLASSIFICATION_METRICS = ("accuracy", "auc", "precision", "recall")
REGRESSION_METRICS = ("r2", "mae", "mse")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS

__all__ = ("METRICS", "check_metrics", "roc_auc", "accuracy", "auc", "precision", "recall", "r2", "mae", "mse",
           "compute")


def check_metrics(metrics, loss: str) -> tuple:
    """``metrics`` (None or a list of names) as a tuple of distinct names, checked against ``loss``."""
    from fastgrad.model import CLASSIFICATION
    if metrics is None:
        return ()
    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics must be a list of names, got {type(metrics).__name__}")
    names = []
    for name in metrics:
        if not isinstance(name, str) or name not in METRICS:
            raise ValueError(f"metrics must be names among {', '.join(map(repr, METRICS))}; got {name!r}")
        allowed = CLASSIFICATION_METRICS if loss in CLASSIFICATION else REGRESSION_METRICS
        if name not in allowed:
            kind = "a classification" if loss in CLASSIFICATION else "a regression"
            raise ValueError(f"metric {name!r} does not apply to {kind} loss ({loss!r}); use {', '.join(allowed)}")
        if name not in names:
            names.append(name)
    return tuple(names)


def roc_auc(y, score) -> float:
    """Area under the ROC curve of 0/1 targets ``y`` (n,) ranked by ``score`` (n,); NaN when
    only one class is present. Ties in ``score`` form one step of the curve."""
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    s, y = np.asarray(score)[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # the last row of each group of tied scores
    tps = np.r_[0.0, np.cumsum(y)[last]]
    fps = np.r_[0.0, 1.0 + last - tps[1:]]
    if tps[-1] == 0 or fps[-1] == 0:
        return float("nan")
    tpr, fpr = tps / tps[-1], fps / fps[-1]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def _labels(yf, yl, use_labels):
    return yl if use_labels else np.argmax(yf, axis=1)


def accuracy(out, yf, yl, use_labels, loss) -> float:
    if loss == "softmax_cross_entropy":
        return float(np.mean(np.argmax(out, axis=1) == _labels(yf, yl, use_labels)))
    return float(np.mean((out > 0.5) == (yf > 0.5)))


def auc(out, yf, yl, use_labels, loss) -> float:
    if loss == "softmax_cross_entropy":
        labels = _labels(yf, yl, use_labels)
        return float(np.mean([roc_auc(labels == c, out[:, c]) for c in np.unique(labels)]))
    return float(np.mean([roc_auc(yf[:, j] > 0.5, out[:, j]) for j in range(out.shape[1])]))


def _binary_counts(pred, true):
    tp = np.sum(pred & true)
    return tp, np.sum(pred), np.sum(true)


def _precision_recall(out, yf, yl, use_labels, loss, which):
    if loss == "softmax_cross_entropy":
        labels, pred = _labels(yf, yl, use_labels), np.argmax(out, axis=1)
        pairs = [(pred == c, labels == c) for c in np.union1d(labels, pred)]
    else:
        pairs = [(out[:, j] > 0.5, yf[:, j] > 0.5) for j in range(out.shape[1])]
    values = []
    for pred_c, true_c in pairs:
        tp, predicted, present = _binary_counts(pred_c, true_c)
        denominator = predicted if which == "precision" else present
        values.append(tp / denominator if denominator else 0.0)
    return float(np.mean(values))


def precision(out, yf, yl, use_labels, loss) -> float:
    return _precision_recall(out, yf, yl, use_labels, loss, "precision")


def recall(out, yf, yl, use_labels, loss) -> float:
    return _precision_recall(out, yf, yl, use_labels, loss, "recall")


def r2(out, yf, yl, use_labels, loss) -> float:
    y, p = yf.astype(np.float64), out.astype(np.float64)
    ss_res = np.sum((y - p) ** 2, axis=0)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                          np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(scores))


def mae(out, yf, yl, use_labels, loss) -> float:
    return float(np.mean(np.abs(yf.astype(np.float64) - out)))


def mse(out, yf, yl, use_labels, loss) -> float:
    return float(np.mean((yf.astype(np.float64) - out) ** 2))


_FUNCTIONS = {"accuracy": accuracy, "auc": auc, "precision": precision, "recall": recall, "r2": r2, "mae": mae,
              "mse": mse}


def compute(names, out, yf, yl, use_labels, loss) -> dict:
    """{name: value} for ``names`` on outputs ``out`` (n, k) as ``predict`` returns them and the
    model's validated targets (``yf`` (n, k) float, ``yl`` (n,) labels, ``use_labels``)."""
    return {name: _FUNCTIONS[name](out, yf, yl, use_labels, loss) for name in names}
