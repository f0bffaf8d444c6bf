"""fit and predict of fastgrad.sklearn.MLPClassifier vs scikit-learn's MLPClassifier (same process).

    pytest bench/bench_sklearn.py --benchmark-group-by=group -s
    pytest bench/bench_sklearn.py --benchmark-disable          # smoke: each case once

Digits (scaled to [0, 1], the stratified 75/25 split of ``fastgrad bench``'s sklearn rows) with
hidden_layer_sizes=(128, 64), solver="adam", random_state=0, float32 for fastgrad; ``max_iter``
is 10 here to keep a timed run short, and the test accuracy is printed (``-s``).
bench/sklearn_vs_fastgrad.py and ``fastgrad bench sklearn`` run the issue's 50 epochs, each
library in its own process, which is the figure to quote: libraries in one process distort
each other (DESIGN.md).
"""
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLP  # noqa: E402

from fastgrad.benchmarks.sklearn_workloads import digits_split  # noqa: E402
from fastgrad.sklearn import MLPClassifier  # noqa: E402

PARAMS = dict(hidden_layer_sizes=(128, 64), solver="adam", max_iter=10, random_state=0, tol=0.0)
IMPLS = {"fastgrad": lambda: MLPClassifier(**PARAMS), "scikit-learn": lambda: SkMLP(**PARAMS)}


@pytest.fixture(scope="module")
def digits():
    return digits_split(np.float32)


def _fit(make, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make().fit(X, y)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_fit(benchmark, impl, digits):
    X, X_test, y, y_test = digits
    benchmark.group = "MLPClassifier.fit digits (128, 64) 10 epochs"
    _fit(IMPLS[impl], X[:100], y[:100])  # compile / warm up
    est = benchmark(_fit, IMPLS[impl], X, y)
    accuracy = est.score(X_test, y_test)
    print(f"\n{impl}: test accuracy {accuracy:.4f} after {est.n_iter_} epochs")
    assert accuracy > 0.8


@pytest.mark.parametrize("impl", list(IMPLS))
def test_predict(benchmark, impl, digits):
    X, X_test, y, y_test = digits
    benchmark.group = "MLPClassifier.predict digits 450 rows"
    est = _fit(IMPLS[impl], X, y)
    est.predict(X_test)
    pred = benchmark(est.predict, X_test)
    assert pred.shape == y_test.shape
