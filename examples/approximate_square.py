"""A small sigmoid network approximating y = x^2 on [-1, 1].

A 1-16-16-1 network (two sigmoid hidden layers, a linear output) trained with Adam on
the mean squared error learns the parabola from 256 samples, as the universal
approximation theorem promises. The script prints the training MSE as it falls, the final
MSE on a fine grid, and a few predictions next to the true x^2.

Run: ``python examples/approximate_square.py [--epochs N] [--quick] [--plot]``
"""
from __future__ import annotations

import argparse

import numpy as np

from _plot import pyplot, save
from fastgrad import Dense, Sequential
from fastgrad.optim import Adam


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="fewer epochs (for tests)")
    parser.add_argument("--plot", action="store_true", help="save approximate_square.png (needs matplotlib)")
    args = parser.parse_args(argv)
    epochs = min(args.epochs, 150) if args.quick else args.epochs

    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, size=(256, 1)).astype(np.float32)
    y = x ** 2
    model = Sequential([Dense(1, 16, "sigmoid"), Dense(16, 16, "sigmoid"), Dense(16, 1)],
                       loss="mse", optimizer=Adam(lr=0.01), seed=0)
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    losses = history.history["loss"]
    for epoch in sorted({0, epochs // 10, epochs // 4, epochs // 2, epochs - 1}):
        print(f"epoch {epoch + 1:>4}: training mse = {losses[epoch]:.2e}")

    grid = np.linspace(-1.0, 1.0, 201, dtype=np.float32).reshape(-1, 1)
    mse = model.evaluate(grid, grid ** 2)["loss"]
    print(f"final mse on 201 points of [-1, 1]: {mse:.2e}  (the variance of x^2 there is {np.var(grid ** 2):.3f})")
    print(f"{'x':>6} {'x^2':>8} {'network':>8}")
    probe = np.array([[-1.0], [-0.5], [0.0], [0.3], [0.7], [1.0]], dtype=np.float32)
    for xi, pred in zip(probe[:, 0], model.predict(probe)[:, 0]):
        print(f"{xi:>6.2f} {xi * xi:>8.4f} {pred:>8.4f}")

    plt = pyplot(args.plot)
    if plt is not None:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
        ax1.plot(grid[:, 0], grid[:, 0] ** 2, "k", label="x^2")
        ax1.plot(grid[:, 0], model.predict(grid)[:, 0], "r--", label="network")
        ax1.legend()
        ax2.semilogy(losses)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("training mse")
        save(plt, fig, __file__, "approximate_square.png")
    return {"mse": mse, "epochs": epochs}


if __name__ == "__main__":
    main()
