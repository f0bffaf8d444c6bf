"""The data side of a :class:`~fastgrad.Sequential`: checking inputs, targets and weights
against the model before they reach its trusting kernels, and the loss's codes and accuracy
convention. A mixin: the model supplies ``n_in``, ``n_out``, ``dtype``, ``loss`` and
``huber_delta``.
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_float_array, kernel_array
from fastgrad._names import CLASSIFICATION, LOSSES


class ModelData:
    """Validation of X, y and weights, and the loss's kernel codes, for Sequential."""

    def _inputs(self, X, name="X"):
        X = as_float_array(X, name, ndim=2, dtype=self.dtype)
        if X.shape[1] != self.n_in:
            raise ValueError(f"{name} must have {self.n_in} columns (the first layer's n_in), got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError(f"{name} must be finite, found NaN or inf")
        return X

    def _targets(self, y, n, name="y"):
        """(yf (n, k) floats or a (1, k) dummy, yl (n,) int64 labels or a (1,) dummy, use_labels)."""
        k = self.n_out
        arr = np.asarray(y)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        if arr.shape[:1] != (n,):
            raise ValueError(f"{name} must have {n} rows to match X, got shape {arr.shape}")
        dummy_f = np.zeros((1, k), self.dtype)
        if self.loss == "softmax_cross_entropy" and arr.ndim == 1:
            if arr.dtype.kind not in "iu":
                raise TypeError(f"{name} must be integer class labels (n,) or probabilities (n, {k}), "
                                f"got dtype {arr.dtype} with shape {arr.shape}")
            if arr.min() < 0 or arr.max() >= k:
                raise ValueError(f"{name} labels must lie in [0, {k}), got values in [{arr.min()}, {arr.max()}]")
            return dummy_f, kernel_array(arr, np.int64), True
        if arr.ndim == 1 and k == 1:
            arr = arr.reshape(n, 1)
        if arr.shape != (n, k):
            raise ValueError(f"{name} must have shape ({n}, {k}) for loss {self.loss!r} and {k} outputs"
                             + (f" (or integer labels ({n},))" if self.loss == "softmax_cross_entropy" else "")
                             + f", got {np.asarray(y).shape}")
        yf = as_float_array(arr, name, dtype=self.dtype)
        if not np.all(np.isfinite(yf)):
            raise ValueError(f"{name} must be finite, found NaN or inf")
        if self.loss in CLASSIFICATION and (yf.min() < 0 or yf.max() > 1):
            raise ValueError(f"{name} must lie in [0, 1] for loss {self.loss!r}, got values in [{yf.min()}, {yf.max()}]")
        return yf, np.zeros(1, np.int64), False

    def _data(self, X, y):
        X = self._inputs(X)
        return X, *self._targets(y, X.shape[0])

    def _weights(self, sample_weight, class_weight, yf, yl, use_labels, n, name="sample_weight"):
        """Validated weights (n,) in the model's dtype, or None (unweighted; see fastgrad._weights)."""
        from fastgrad._weights import combined_weights
        return combined_weights(self, sample_weight, class_weight, yf, yl, use_labels, n, name)

    def _kernel_weights(self, w):
        """What the kernels take: the weights, or an empty array for the unweighted path."""
        return np.empty(0, self.dtype) if w is None else w

    @property
    def _loss_code(self):
        from fastgrad.custom import Loss
        if isinstance(self.loss, Loss):
            from fastgrad.kernels.program import CUSTOM_LOSS
            return CUSTOM_LOSS
        return LOSSES[self.loss]

    @property
    def _loss_param(self):
        return self.dtype.type(self.huber_delta)

    def _accuracy(self, correct, n):
        if self.loss == "softmax_cross_entropy":
            return float(correct / n)
        if self.loss == "binary_cross_entropy":
            return float(correct / (n * self.n_out))
        return None
