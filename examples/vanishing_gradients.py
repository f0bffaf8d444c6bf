"""Vanishing gradients: per-layer gradient norms of a deep sigmoid network vs a deep ReLU network.

Backpropagation multiplies the error signal by each layer's weights and by the derivative
of its activation. The sigmoid's derivative is at most 1/4, so through 10 sigmoid layers
(Xavier initialisation) the signal shrinks layer after layer, and the first layers get
gradients orders of magnitude smaller than the last ones: they barely learn. ReLU's
derivative is 1 where the unit is active and He initialisation keeps the signal's scale,
so its gradient norms stay of the same order through the depth.

Both networks have 10 Dense layers of width 32 (9 hidden + the output) and a softmax
cross-entropy loss on a 10-class synthetic problem. The script prints, per layer,

1. the L2 norm of dL/dW at initialisation, from ``model.loss_and_grad`` on the whole data
   set and ``fastgrad.optim.grad_stats(layer.grad_W)``;
2. the mean per-batch gradient norm during a few epochs of training, from
   ``fit(..., diagnostics=True)`` -> ``history.diagnostics["grad_norm"]``.

Run: ``python examples/vanishing_gradients.py [--epochs N] [--quick] [--plot]``
"""
from __future__ import annotations

import argparse

import numpy as np

from _plot import pyplot, save
from fastgrad import Dense, Sequential
from fastgrad.datasets import make_classification
from fastgrad.optim import Adam, grad_stats

DEPTH, WIDTH, N_CLASSES = 10, 32, 10


def build(activation, seed=0):
    """DEPTH Dense layers of WIDTH units with ``activation``, then logits for N_CLASSES classes."""
    layers = [Dense(WIDTH, WIDTH, activation) for _ in range(DEPTH - 1)] + [Dense(WIDTH, N_CLASSES)]
    return Sequential(layers, loss="softmax_cross_entropy", optimizer=Adam(lr=1e-3), seed=seed)


def print_table(title, columns):
    print(title)
    print(f"{'layer':>6}" + "".join(f"{name:>14}" for name in columns) + f"{'ratio':>12}")
    names = list(columns)
    for i in range(DEPTH):
        a, b = columns[names[0]][i], columns[names[1]][i]
        print(f"{i + 1:>6}" + f"{a:>14.3e}{b:>14.3e}" + f"{a / b:>12.2e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 epochs (for tests)")
    parser.add_argument("--plot", action="store_true", help="save vanishing_gradients.png (needs matplotlib)")
    args = parser.parse_args(argv)
    epochs = min(args.epochs, 2) if args.quick else args.epochs

    X, y = make_classification(n_samples=1024, n_features=WIDTH, n_classes=N_CLASSES, seed=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    at_init, during_fit, accuracy = {}, {}, {}
    for activation in ("sigmoid", "relu"):
        model = build(activation)
        model.loss_and_grad(X, y)  # fills model.grads; each layer.grad_W is a view into it
        at_init[activation] = [grad_stats(layer.grad_W)["l2_norm"] for layer in model.layers]
        history = model.fit(X, y, epochs=epochs, batch_size=64, verbose=0, diagnostics=True)
        during_fit[activation] = np.mean(history.diagnostics["grad_norm"], axis=0)
        accuracy[activation] = history.history["accuracy"][-1]

    print_table("||dL/dW|| per layer at initialisation (loss_and_grad + grad_stats), layer 1 = input side:",
                at_init)
    print()
    print_table(f"mean per-batch ||grad|| per layer over {epochs} epochs of fit(diagnostics=True):", during_fit)
    for name, norms in at_init.items():
        print(f"\n{name}: the first layer's gradient is {norms[0] / norms[-1]:.1e} times the last layer's; "
              f"training accuracy after {epochs} epochs {accuracy[name]:.3f}", end="")
    print(f"\nfirst-layer gradient, sigmoid / relu: {at_init['sigmoid'][0] / at_init['relu'][0]:.1e}")

    plt = pyplot(args.plot)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        for name, norms in at_init.items():
            ax.semilogy(range(1, DEPTH + 1), norms, "o-", label=name)
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel("||dL/dW|| at initialisation")
        ax.legend()
        save(plt, fig, __file__, "vanishing_gradients.png")
    return {"at_init": at_init, "during_fit": {k: list(v) for k, v in during_fit.items()}, "accuracy": accuracy}


if __name__ == "__main__":
    main()
