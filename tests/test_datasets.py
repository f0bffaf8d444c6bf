"""The shipped data sets: real digits without scikit-learn, the seeded synthetic generator."""
import numpy as np
import pytest

from fastgrad import datasets


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_digits_are_shipped_and_scaled(dtype):
    X, y = datasets.load_digits(dtype)
    assert X.shape == (1797, 64) and X.dtype == dtype
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.array_equal(np.bincount(y), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    # pixel counts are multiples of 1/16
    assert np.array_equal(X * 16, np.round(X * 16))


def test_digits_equal_scikit_learns_copy():
    sk = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(np.float64)
    ref = sk.load_digits()
    assert np.array_equal(X, ref.data / 16.0)
    assert np.array_equal(y, ref.target)


def test_digits_reject_other_dtypes():
    with pytest.raises(TypeError, match="dtype"):
        datasets.load_digits(np.int32)


def test_demo_data_is_real_without_scikit_learn(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    X, y, name = datasets.load_digits_or_synthetic()
    assert "digits" in name and X.shape == (1797, 64)
    assert np.array_equal(y, datasets.load_digits()[1])
