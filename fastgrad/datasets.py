"""Small data sets for examples and the demo, made on the spot (nothing is downloaded)."""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_int, as_scalar


def make_classification(n_samples=2000, n_features=64, n_classes=10, class_sep=1.5, noise=1.0, seed=0,
                        dtype=np.float32):
    """A seeded Gaussian-blob classification set: X (n_samples, n_features) and integer labels
    y (n_samples,) in [0, n_classes); each class is a normal cloud around its own random
    centre (scaled by ``class_sep``) with per-feature noise ``noise``."""
    n_samples = as_int(n_samples, "n_samples", low=2)
    n_features = as_int(n_features, "n_features", low=1)
    n_classes = as_int(n_classes, "n_classes", low=2)
    class_sep = as_scalar(class_sep, "class_sep", low=0.0)
    noise = as_scalar(noise, "noise", low=0.0)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, n_features)) * class_sep
    y = rng.integers(0, n_classes, n_samples)
    X = centres[y] + noise * rng.standard_normal((n_samples, n_features))
    return X.astype(dtype), y.astype(np.int64)


def load_digits_or_synthetic(seed=0, dtype=np.float32):
    """scikit-learn's bundled 8x8 digits (1797 x 64, scaled to [0, 1]) when scikit-learn is
    installed, else :func:`make_classification` of the same shape. Returns (X, y, name)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        X, y = make_classification(1797, 64, 10, seed=seed, dtype=dtype)
        return X, y, "synthetic (scikit-learn not installed)"
    digits = load_digits()
    return (digits.data / 16.0).astype(dtype), digits.target.astype(np.int64), "scikit-learn digits"


def train_test_split(X, y, test_fraction=0.2, seed=0):
    """Shuffle with ``seed`` and split into (X_train, X_test, y_train, y_test)."""
    test_fraction = as_scalar(test_fraction, "test_fraction", low=0.0, low_open=True, high=1.0, high_open=True)
    n = len(X)
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
