"""fastgrad's MLPClassifier inside a scikit-learn Pipeline and GridSearchCV, against scikit-learn's MLP.

On scikit-learn's bundled 8x8 digits (1797 images, a stratified 75/25 split), the pipeline
``StandardScaler -> MLPClassifier(solver="adam")`` is tuned over ``alpha`` and
``hidden_layer_sizes`` by a 3-fold grid search, then refit and scored on the held-out
quarter. The same search runs with ``sklearn.neural_network.MLPClassifier`` and prints
both test accuracies and wall-clock times (the very first fastgrad fit in a fresh cache
compiles the kernels; that time is printed separately and left out of the search time).
Needs scikit-learn: ``pip install "fastgrad[sklearn]"``.

Run: ``python examples/sklearn_pipeline.py [--max-iter N] [--n-jobs J] [--quick]`` (``--quick``: the
grid over ``alpha`` alone, 10 epochs; seconds).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def search(estimator, grid, X_train, y_train, X_test, y_test, n_jobs):
    """(test accuracy, best parameters, seconds) of a 3-fold grid search over ``grid``, refit included."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    pipe = make_pipeline(StandardScaler(), estimator)
    grid = {f"mlpclassifier__{k}": v for k, v in grid.items()}
    gs = GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gs.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    best = {k.split("__", 1)[1]: v for k, v in gs.best_params_.items()}
    return gs.score(X_test, y_test), best, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-iter", type=int, default=50, help="epochs per fit (default 50)")
    parser.add_argument("--n-jobs", type=int, default=1, help="GridSearchCV processes (default 1)")
    parser.add_argument("--quick", action="store_true", help="a 2-point grid and 10 epochs (seconds)")
    args = parser.parse_args(argv)
    np.set_printoptions(precision=4)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastgrad.sklearn import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    max_iter = 10 if args.quick else args.max_iter
    grid = {"alpha": [1e-4, 1e-2]} if args.quick else {"alpha": [1e-4, 1e-2],
                                                          "hidden_layer_sizes": [(64,), (128, 64)]}
    params = dict(solver="adam", max_iter=max_iter, random_state=0)
    from sklearn.exceptions import ConvergenceWarning
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch, on purpose
        MLPClassifier((8,), max_iter=1, random_state=0).fit(X_train[:50], y_train[:50])
    print(f"first fastgrad fit (kernel compile or cache load): {time.perf_counter() - start:.2f} s")
    print(f"digits: {len(X_train)} train / {len(X_test)} test; grid {grid}; max_iter={max_iter}")
    results = {}
    for name, est in (("fastgrad", MLPClassifier(**params)), ("scikit-learn", SkMLP(**params))):
        accuracy, best, seconds = search(est, grid, X_train, y_train, X_test, y_test, args.n_jobs)
        results[name] = {"accuracy": accuracy, "seconds": seconds, "best": best}
        print(f"{name:>13}: test accuracy {accuracy:.4f}, grid search {seconds:6.2f} s, best {best}")
    ratio = results["scikit-learn"]["seconds"] / results["fastgrad"]["seconds"]
    diff = 100 * (results["fastgrad"]["accuracy"] - results["scikit-learn"]["accuracy"])
    print(f"time ratio scikit-learn / fastgrad: {ratio:.1f}x; accuracy difference fastgrad - scikit-learn: "
          f"{diff:+.2f} points")
    return results


if __name__ == "__main__":
    main()
