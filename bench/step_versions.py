"""import sys, time, json, numpy as np, fastgrad, numba
from fastgrad import Dense, Sequential
from fastgrad.optim import Adam
import os
if os.environ.get("T1"): fastgrad.set_num_threads(1)
rng = np.random.default_rng(0)
res = {}
for widths, b, loss in (((784, 256, 128, 10), 32, "softmax_cross_entropy"), ((32, 64, 64, 1), 32, "mse"), ((784, 256, 128, 10), 1024, "softmax_cross_entropy")):
    layers = [Dense(a, c, activation="relu") for a, c in zip(widths[:-2], widths[1:-1])] + [Dense(widths[-2], widths[-1])]
    m = Sequential(layers, loss=loss, optimizer=Adam(lr=1e-4), dtype="float32", seed=0)
    rows = b * 64
    X = rng.standard_normal((rows, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], rows) if loss != "mse" else rng.standard_normal((rows, 1)).astype(np.float32)
    m.fit(X, y, epochs=1, batch_size=b, verbose=0, shuffle=False)
    best = 1e9
    for _ in range(15):
        t0 = time.perf_counter(); m.fit(X, y, epochs=1, batch_size=b, verbose=0, shuffle=False); best = min(best, time.perf_counter() - t0)
    res[f"{'-'.join(map(str,widths))} b{b}"] = round(best / 64 * 1e6, 1)
    Xp = X[:4096] if rows >= 4096 else X
    m.predict(Xp); best = 1e9
    for _ in range(15):
        t0 = time.perf_counter(); m.predict(Xp); best = min(best, time.perf_counter() - t0)
    res[f"predict {'-'.join(map(str,widths))} {len(Xp)} rows"] = round(best * 1e6, 1)
print(sys.argv[1], json.dumps(res))
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
