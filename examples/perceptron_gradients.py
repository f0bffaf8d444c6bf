"""One sigmoid neuron, three ways to its gradient: by hand, by fastgrad, by finite differences.

The neuron is y_hat = sigmoid(w x + b) with binary cross-entropy L = -log(y_hat) for the
target y = 1, at x = 2, w = 0.5, b = -0.1. The chain rule gives

    dL/dw = dL/dy_hat * dy_hat/dz * dz/dw = (y_hat - y) x,     dL/db = y_hat - y,

because for BCE after a sigmoid the two middle factors collapse to y_hat - y. The script
prints these hand-computed numbers next to

* fastgrad's functional kernels (``F.dense_forward``, ``F.binary_cross_entropy_with_logits``,
  ``F.dense_backward``: the forward pass, the loss with its gradient, the backward pass),
* a one-layer :class:`fastgrad.Sequential` (``model.loss_and_grad``), and
* central finite differences of the loss (``fastgrad.diff.gradient``, checked with
  ``fastgrad.check_grad``),

and shows that all of them agree to about 1e-10 in float64.

Run: ``python examples/perceptron_gradients.py``
"""
from __future__ import annotations

import argparse
import math

import numpy as np

import fastgrad
from fastgrad import F, Dense, Sequential

X_IN, Y_TRUE, W0, B0 = 2.0, 1.0, 0.5, -0.1


def by_hand():
    """The chain rule written out with math.exp and math.log."""
    z = W0 * X_IN + B0
    y_hat = 1.0 / (1.0 + math.exp(-z))
    loss = -(Y_TRUE * math.log(y_hat) + (1.0 - Y_TRUE) * math.log(1.0 - y_hat))
    return {"y_hat": y_hat, "loss": loss, "dL/dw": (y_hat - Y_TRUE) * X_IN, "dL/db": y_hat - Y_TRUE}


def by_functional():
    """The same forward and backward pass with fastgrad's functional kernels (1x1 matrices)."""
    x = np.array([[X_IN]])
    W = np.array([[W0]])
    b = np.array([B0])
    y_hat, z = F.dense_forward(x, W, b, activation="sigmoid", return_preactivation=True)
    # The loss is fused with the sigmoid: it takes the logit z and returns dL/dz = y_hat - y,
    # so the backward pass goes through the identity (the sigmoid's derivative is already in it).
    loss, grad_z = F.binary_cross_entropy_with_logits(z, np.array([[Y_TRUE]]))
    _, grad_W, grad_b = F.dense_backward(x, W, z, grad_z)
    return {"y_hat": float(y_hat[0, 0]), "loss": loss, "dL/dw": float(grad_W[0, 0]), "dL/db": float(grad_b[0])}


def by_model():
    """A Sequential of one Dense(1, 1) with the BCE loss (fused with the sigmoid), in float64."""
    model = Sequential([Dense(1, 1)], loss="binary_cross_entropy", dtype="float64")
    model.layers[0].W[...] = W0
    model.layers[0].b[...] = B0
    loss, grad = model.loss_and_grad(np.array([[X_IN]]), np.array([Y_TRUE]))
    y_hat = model.predict(np.array([[X_IN]]))  # the sigmoid of the output logit
    # grad is the flat buffer: W (row-major) then b, so [dL/dw, dL/db].
    return {"y_hat": float(y_hat[0, 0]), "loss": loss, "dL/dw": float(grad[0]), "dL/db": float(grad[1])}


def loss_of(params):
    """L(w, b) as a plain function of the parameter vector, for finite differences."""
    w, b = params
    y_hat = 1.0 / (1.0 + math.exp(-(w * X_IN + b)))
    return -(Y_TRUE * math.log(y_hat) + (1.0 - Y_TRUE) * math.log(1.0 - y_hat))


def by_finite_differences():
    """Central differences of L at (w, b)."""
    p = np.array([W0, B0])
    g = fastgrad.diff.gradient(loss_of, p)
    y_hat = 1.0 / (1.0 + math.exp(-(W0 * X_IN + B0)))
    return {"y_hat": y_hat, "loss": loss_of(p), "dL/dw": float(g[0]), "dL/db": float(g[1])}


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    print(__doc__.split("\n\n")[0])
    print(f"x = {X_IN}, y = {Y_TRUE}, w = {W0}, b = {B0}:  z = w x + b = {W0 * X_IN + B0:.4f}\n")
    columns = {"by hand": by_hand(), "fastgrad.F": by_functional(), "Sequential": by_model(),
               "finite diff": by_finite_differences()}
    print(f"{'quantity':<10}" + "".join(f"{name:>16}" for name in columns))
    for key in ("y_hat", "loss", "dL/dw", "dL/db"):
        print(f"{key:<10}" + "".join(f"{col[key]:>16.10f}" for col in columns.values()))
    hand = columns["by hand"]
    worst = max(abs(col[k] - hand[k]) for col in columns.values() for k in hand)
    print(f"\nlargest difference from the hand computation: {worst:.2e}")

    def analytic_grad(params):
        w, b = params
        y_hat = 1.0 / (1.0 + math.exp(-(w * X_IN + b)))
        return np.array([(y_hat - Y_TRUE) * X_IN, y_hat - Y_TRUE])

    print(fastgrad.check_grad(loss_of, analytic_grad, np.array([W0, B0]), rtol=1e-9, atol=1e-12))
    return columns


if __name__ == "__main__":
    main()
