"""Linear regression with a single Dense(1, 1) layer: learning y = 2x + 1 from noisy samples.

A :class:`fastgrad.Sequential` of one linear unit with the mean squared error and plain
SGD (lr 0.1) recovers the slope and the intercept. The script prints the loss every few
epochs and the learned w and b next to the true 2 and 1 (and the least-squares fit of the
same noisy data, which is the best any method can do).

Run: ``python examples/linear_regression.py [--epochs N] [--plot]``
"""
from __future__ import annotations

import argparse

import numpy as np

from _plot import pyplot, save
from fastgrad import Dense, Sequential
from fastgrad.optim import SGD


def make_data(n=256, noise=0.1, seed=0):
    """x uniform in [-1, 1], y = 2x + 1 + Gaussian noise; shapes (n, 1) and (n, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 1))
    y = 2.0 * x + 1.0 + noise * rng.standard_normal((n, 1))
    return x.astype(np.float32), y.astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="fewer epochs (for tests)")
    parser.add_argument("--plot", action="store_true", help="save linear_regression.png (needs matplotlib)")
    args = parser.parse_args(argv)
    epochs = min(args.epochs, 20) if args.quick else args.epochs

    x, y = make_data()
    model = Sequential([Dense(1, 1)], loss="mse", optimizer=SGD(lr=0.1), seed=0)
    print(f"start: w = {model.layers[0].W[0, 0]:+.4f}, b = {model.layers[0].b[0]:+.4f}")
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    for epoch in sorted({0, 1, 4, 9, epochs - 1}):
        if epoch < epochs:
            print(f"epoch {epoch + 1:>3}: mse = {history.history['loss'][epoch]:.5f}")

    w, b = float(model.layers[0].W[0, 0]), float(model.layers[0].b[0])
    slope, intercept = np.polyfit(x[:, 0].astype(np.float64), y[:, 0].astype(np.float64), 1)
    print(f"learned:       w = {w:.4f}, b = {b:.4f}")
    print(f"least squares: w = {slope:.4f}, b = {intercept:.4f}   (true: w = 2, b = 1; noise std 0.1)")

    plt = pyplot(args.plot)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.scatter(x[:, 0], y[:, 0], s=6, alpha=0.5, label="data")
        grid = np.linspace(-1, 1, 2)
        ax.plot(grid, w * grid + b, "r", label=f"learned: {w:.3f} x + {b:.3f}")
        ax.legend()
        save(plt, fig, __file__, "linear_regression.png")
    return {"w": w, "b": b, "final_mse": history.history["loss"][-1]}


if __name__ == "__main__":
    main()
