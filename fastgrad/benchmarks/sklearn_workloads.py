"""The ``fastgrad bench sklearn`` rows: ``fastgrad.sklearn.MLPClassifier`` against scikit-learn's.

Issue 14's workload: scikit-learn's 8x8 digits scaled to [0, 1], a stratified 75/25 split
(``random_state=0``), ``MLPClassifier(hidden_layer_sizes=(128, 64), solver="adam", max_iter=50,
random_state=0)`` with ``tol=0`` so that both run all 50 epochs (with the default ``tol`` both do
on digits; ``tol=0`` keeps the work equal if one of them would stop earlier). fastgrad's
estimator uses the row's dtype (float32); scikit-learn's computes in X's dtype, the same.

(The keys leave out "adam": ``fastgrad bench --filter adam`` selects the optimizer rows.)

* ``MLPClassifier.fit digits ...``: one whole ``fit`` on the 1,347 training rows (each call a
  fresh estimator, so its optimizer and initialisation are part of it). scikit-learn's fit
  takes seconds: it is timed once per process (``single_shot``).
* ``MLPClassifier.predict digits ...``: ``predict`` on the 450 test rows of an estimator fitted
  (for one epoch: the trained values do not change the cost) while the row is built.

* ``MLPClassifier.fit synthetic 100000x50 ...`` and ``... predict synthetic ...``: the same
  estimator for 10 epochs on 90,000 rows of ``fastgrad.datasets.make_classification(100_000,
  50, 10, seed=0)`` (a stratified 90/10 split), and predict on the 10,000 test rows. These
  rows are ``opt_in`` (measured by ``fastgrad bench --filter sklearn`` or ``--filter synthetic``,
  not by a plain ``fastgrad bench``: scikit-learn's fit takes tens of seconds here), and skip
  scikit-learn under ``--quick`` (``slow``).

All rows share one compile-time measurement (``compile_key``): the first ``fit`` in a fresh
process, with an empty kernel cache ("cold") and with the cache it wrote ("warm").

scikit-learn's MLP is these rows' ``reference`` competitor (the table's "reference" column;
elsewhere fastgrad's NumPy twin): a NumPy implementation of the same network and objective,
the float64 oracle of tests/test_sklearn.py. So the speed-up column reads scikit-learn /
fastgrad. The test accuracy of each is printed by ``bench/sklearn_vs_fastgrad.py`` (which also
runs the 100,000 x 50 synthetic data set) and ``bench/bench_sklearn.py``; the bench table has
no accuracy column. Without scikit-learn the rows report "unavailable".
"""
from __future__ import annotations

import math
import warnings

import numpy as np

PARAMS = dict(hidden_layer_sizes=(128, 64), solver="adam", max_iter=50, random_state=0, tol=0.0)
TINY_PARAMS = dict(hidden_layer_sizes=(8,), solver="adam", max_iter=2, random_state=0, tol=0.0)
SYNTHETIC_ROWS, SYNTHETIC_FEATURES, SYNTHETIC_EPOCHS = 100_000, 50, 10
# Class centres this close overlap: a nearest-centroid rule scores about 0.70, so accuracies
# compare (with the default separation both libraries scored 1.0000, which showed nothing).
SYNTHETIC_CLASS_SEP = 0.3


def digits_split(dtype, rows=None):
    """(X_train, X_test, y_train, y_test): digits / 16 in ``dtype``, stratified 75/25, seed 0;
    ``rows``: only the first rows (the tiny table)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(dtype)
    if rows is not None:
        X, y = X[:rows], y[:rows]
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def synthetic_split(dtype, rows=SYNTHETIC_ROWS):
    """(X_train, X_test, y_train, y_test): ``make_classification(rows, 50, 10, class_sep=0.3,
    seed=0)`` in ``dtype``, stratified 90/10, seed 0 (also bench/sklearn_vs_fastgrad.py's)."""
    from sklearn.model_selection import train_test_split

    from fastgrad.datasets import make_classification
    X, y = make_classification(rows, SYNTHETIC_FEATURES, 10, class_sep=SYNTHETIC_CLASS_SEP, seed=0, dtype=dtype)
    return train_test_split(X, y, test_size=0.1, stratify=y, random_state=0)


def _inputs(rows, split=digits_split):
    def make(dtype):
        X_train, X_test, y_train, y_test = split(dtype, rows)
        return {"X_train": X_train, "X_test": X_test, "y_train": y_train, "y_test": y_test}
    return make


def estimator(competitor, dtype, params):
    """fastgrad's MLPClassifier (``competitor == "fastgrad"``, in ``dtype``) or scikit-learn's."""
    if competitor == "fastgrad":
        from fastgrad.sklearn import MLPClassifier
        return MLPClassifier(dtype=np.dtype(dtype).name, **params)
    from sklearn.neural_network import MLPClassifier
    return MLPClassifier(**params)


def _fit(competitor, params, X, y):
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator(competitor, X.dtype, params).fit(X, y)


def _fit_factory(competitor, params):
    def factory(d):
        X, y = d["X_train"], d["y_train"]
        return lambda: _fit(competitor, params, X, y)
    return factory


def _predict_factory(competitor, params):
    def factory(d):
        est = _fit(competitor, dict(params, max_iter=1), d["X_train"], d["y_train"])
        X = d["X_test"]
        return lambda: est.predict(X)
    return factory


def workloads(tiny=False):
    """The rows of the ``sklearn`` family (``tiny``: 120 digits and 400 synthetic rows, an 8-unit
    network, 2 epochs)."""
    from fastgrad.benchmarks.workloads import Workload
    params, rows = (TINY_PARAMS, 120) if tiny else (PARAMS, None)
    units = ",".join(map(str, params["hidden_layer_sizes"]))
    n_test = math.ceil(0.25 * (1797 if rows is None else rows))  # train_test_split's test rows
    fit = Workload(f"MLPClassifier.fit digits ({units}) {params['max_iter']} epochs", "sklearn", "float32",
                   _inputs(rows), {"fastgrad": _fit_factory("fastgrad", params),
                                   "reference": _fit_factory("scikit-learn", params)},
                   compile_key="sklearn-float32", single_shot=frozenset({"reference"}))
    predict = Workload(f"MLPClassifier.predict digits ({units}) {n_test} rows", "sklearn", "float32",
                       _inputs(rows), {"fastgrad": _predict_factory("fastgrad", params),
                                       "reference": _predict_factory("scikit-learn", params)},
                       compile_key="sklearn-float32")
    return [fit, predict] + _synthetic(tiny)


def _synthetic(tiny):
    from fastgrad.benchmarks.workloads import Workload
    params = dict(TINY_PARAMS) if tiny else dict(PARAMS, max_iter=SYNTHETIC_EPOCHS)
    rows = 400 if tiny else SYNTHETIC_ROWS
    units = ",".join(map(str, params["hidden_layer_sizes"]))
    size = f"{rows}x{SYNTHETIC_FEATURES}"
    n_test = math.ceil(0.1 * rows)
    common = dict(compile_key="sklearn-float32", slow=frozenset({"reference"}), opt_in=True)
    fit = Workload(f"MLPClassifier.fit synthetic {size} ({units}) {params['max_iter']} epochs", "sklearn",
                   "float32", _inputs(rows, synthetic_split),
                   {"fastgrad": _fit_factory("fastgrad", params), "reference": _fit_factory("scikit-learn", params)},
                   single_shot=frozenset({"reference"}), **common)
    predict = Workload(f"MLPClassifier.predict synthetic {size} ({units}) {n_test} rows", "sklearn", "float32",
                       _inputs(rows, synthetic_split), {"fastgrad": _predict_factory("fastgrad", params),
                                                        "reference": _predict_factory("scikit-learn", params)},
                       **common)
    return [fit, predict]
