"""Per-step time of fit, and predict, in this process, for comparing two versions of fastgrad.

    git worktree add /tmp/old cb8ac0c
    for i in 1 2 3; do
        T1=1 PYTHONPATH=/tmp/old python bench/step_versions.py old
        T1=1 python bench/step_versions.py new
    done

Prints one JSON line (microseconds; fit = one epoch of 64 batches / 64, shuffle off; predict =
one call on up to 4096 rows), labelled by the first argument. ``T1=1`` runs with one thread
(issue 10's single-thread criterion). Alternate the versions, each in a fresh process, compare
the minimum and the median of each row, and run on a quiet machine.
"""
import json
import os
import sys
import time

import numpy as np

import fastgrad
from fastgrad import Dense, Sequential
from fastgrad.optim import Adam

WORKLOADS = (((784, 256, 128, 10), 32, "softmax_cross_entropy"), ((32, 64, 64, 1), 32, "mse"),
             ((784, 256, 128, 10), 1024, "softmax_cross_entropy"))
BATCHES = 64
SAMPLES = 15


def best_seconds(func, samples=SAMPLES):
    func()
    best = float("inf")
    for _ in range(samples):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def mlp(widths, loss):
    layers = [Dense(a, b, activation="relu") for a, b in zip(widths[:-2], widths[1:-1])]
    layers.append(Dense(widths[-2], widths[-1]))
    return Sequential(layers, loss=loss, optimizer=Adam(lr=1e-4), dtype="float32", seed=0)


def main(label):
    if os.environ.get("T1"):
        fastgrad.set_num_threads(1)
    rng = np.random.default_rng(0)
    result = {}
    for widths, batch, loss in WORKLOADS:
        model = mlp(widths, loss)
        rows = batch * BATCHES
        X = rng.standard_normal((rows, widths[0])).astype(np.float32)
        y = (rng.standard_normal((rows, 1)).astype(np.float32) if loss == "mse"
             else rng.integers(0, widths[-1], rows))
        name = "-".join(map(str, widths))
        epoch = best_seconds(lambda: model.fit(X, y, epochs=1, batch_size=batch, verbose=0, shuffle=False))
        result[f"fit step {name} b{batch}"] = round(epoch / BATCHES * 1e6, 1)
        Xp = X[:4096]
        result[f"predict {name} {len(Xp)} rows"] = round(best_seconds(lambda: model.predict(Xp)) * 1e6, 1)
    print(label, json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else fastgrad.__version__)
