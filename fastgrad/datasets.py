"""Small data sets for examples and the demo: one real set shipped inside the package, and a
seeded synthetic generator (nothing is ever downloaded)."""
from __future__ import annotations

import os

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


DIGITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "digits.npz")
DIGITS_CITATION = ("E. Alpaydin and C. Kaynak, Optical Recognition of Handwritten Digits, UCI Machine "
                   "Learning Repository, 1998, doi:10.24432/C50P49 (CC BY 4.0); the 1797-image test set, "
                   "as also bundled by scikit-learn.")


def load_digits(dtype=np.float32):
    """The UCI optical-recognition handwritten digits, shipped with fastgrad (no download, no
    scikit-learn needed): X (1797, 64) of 8x8 pixel counts scaled from 0..16 to [0, 1] in
    ``dtype``, and integer labels y (1797,) in 0..9 (int64). Source: :data:`DIGITS_CITATION`.

    The same images and order as ``sklearn.datasets.load_digits()``.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    with np.load(DIGITS_FILE, allow_pickle=False) as data:
        pixels, labels = data["X"], data["y"]
    return (pixels / np.float64(16.0)).astype(dtype), labels.astype(np.int64)


def load_digits_or_synthetic(seed=0, dtype=np.float32):
    """The shipped UCI digits (see :func:`load_digits`) as (X, y, name). Kept for scripts written
    when the real set needed scikit-learn; ``seed`` is unused (the data set is fixed)."""
    X, y = load_digits(dtype)
    return X, y, "UCI optical digits (shipped with fastgrad)"


def train_test_split(X, y, test_fraction=0.2, seed=0):
    """Shuffle with ``seed`` and split into (X_train, X_test, y_train, y_test)."""
    test_fraction = as_scalar(test_fraction, "test_fraction", low=0.0, low_open=True, high=1.0, high_open=True)
    n = len(X)
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
