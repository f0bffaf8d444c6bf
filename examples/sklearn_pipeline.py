"""fastgrad's MLPClassifier inside a scikit-learn Pipeline and GridSearchCV, against scikit-learn's MLP.

On scikit-learn's bundled 8x8 digits (1797 images, a stratified 75/25 split), the pipeline
``StandardScaler -> MLPClassifier(solver="adam")`` is tuned over ``alpha`` and
``hidden_layer_sizes`` by a 3-fold grid search, then refit and scored on the held-out
quarter. The same search runs with ``sklearn.neural_network.MLPClassifier`` and prints
both test accuracies and wall-clock times (the very first fastgrad fit in a fresh cache
compiles the kernels; that time is printed separately and left out of the search time).
Each library's search runs in a fresh Python process of its own: two libraries' thread pools
in one process slow each other down (DESIGN.md).
Needs scikit-learn: ``pip install "fastgrad[sklearn]"``.

Run: ``python examples/sklearn_pipeline.py [--max-iter N] [--n-jobs J] [--quick]`` (``--quick``: the
grid over ``alpha`` alone, 10 epochs; seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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


def _split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def _grid(quick):
    return {"alpha": [1e-4, 1e-2]} if quick else {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(64,), (128, 64)]}


def _library_main(args):
    """The ``--library`` mode: one library's first fit (fastgrad) and grid search, as JSON."""
    from sklearn.exceptions import ConvergenceWarning
    X_train, X_test, y_train, y_test = _split()
    params = dict(solver="adam", max_iter=10 if args.quick else args.max_iter, random_state=0)
    first = None
    if args.library == "fastgrad":
        from fastgrad.sklearn import MLPClassifier
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch, on purpose
            MLPClassifier((8,), max_iter=1, random_state=0).fit(X_train[:50], y_train[:50])
        first = time.perf_counter() - start
    else:
        from sklearn.neural_network import MLPClassifier
    accuracy, best, seconds = search(MLPClassifier(**params), _grid(args.quick), X_train, y_train, X_test, y_test,
                                     args.n_jobs)
    print(json.dumps({"accuracy": float(accuracy), "best": best, "seconds": seconds, "first": first}))


def _in_fresh_process(library, args):
    command = [sys.executable, os.path.abspath(__file__), "--library", library, "--max-iter", str(args.max_iter),
               "--n-jobs", str(args.n_jobs)] + (["--quick"] if args.quick else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["best"] = {k: tuple(v) if isinstance(v, list) else v for k, v in result["best"].items()}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-iter", type=int, default=50, help="epochs per fit (default 50)")
    parser.add_argument("--n-jobs", type=int, default=1, help="GridSearchCV processes (default 1)")
    parser.add_argument("--quick", action="store_true", help="a 2-point grid and 10 epochs (seconds)")
    parser.add_argument("--library", choices=("fastgrad", "scikit-learn"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.library:
        return _library_main(args)
    np.set_printoptions(precision=4)
    X_train, X_test, _, _ = _split()
    max_iter = 10 if args.quick else args.max_iter
    print(f"digits: {len(X_train)} train / {len(X_test)} test; grid {_grid(args.quick)}; max_iter={max_iter}")
    results = {}
    for name in ("fastgrad", "scikit-learn"):
        result = _in_fresh_process(name, args)
        first = result.pop("first")
        if first is not None:
            print(f"first fastgrad fit (kernel compile or cache load): {first:.2f} s")
        results[name] = result
        print(f"{name:>13}: test accuracy {result['accuracy']:.4f}, grid search {result['seconds']:6.2f} s, "
              f"best {result['best']}")
    ratio = results["scikit-learn"]["seconds"] / results["fastgrad"]["seconds"]
    diff = 100 * (results["fastgrad"]["accuracy"] - results["scikit-learn"]["accuracy"])
    print(f"time ratio scikit-learn / fastgrad: {ratio:.1f}x; accuracy difference fastgrad - scikit-learn: "
          f"{diff:+.2f} points")
    return results


if __name__ == "__main__":
    main()
