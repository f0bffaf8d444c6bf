"""Article "Calculus for ML: Gradients, Optimization and the Chain rule": its worked examples, checked.

The article's examples: the MSE of y = w x against the data y = 2x as a function of the
weight (lowest at w = 2); a two-input sigmoid neuron (x = (2, 3), y = 1, w = (0.5, -0.3),
b = 0.1) with its binary cross-entropy loss and the chain-rule gradients dL/dw_i = (y_hat - y) x_i,
dL/db = y_hat - y; ten gradient-descent steps (lr 0.5, from zero) on that single point; and
the ROC AUC of ten scores as the area under the ROC curve.

fastgrad API: ``fastgrad.F.mse``, ``fastgrad.diff.derivative``, ``fastgrad.minimize``,
``Sequential([Dense(2, 1)], loss="binary_cross_entropy")`` with ``loss_and_grad``, ``predict``
and ``train_step`` under ``fastgrad.optim.SGD``, ``fastgrad.F.dense_forward``/``dense_backward``;
with ``--torch``, the article's PyTorch autograd block on the same neuron.
The AUC is the trapezoidal rule in NumPy (fastgrad has no metrics), checked against the
fraction of correctly ranked (positive, negative) pairs and scikit-learn when installed.

Run: ``python examples/articles/chain_rule_neuron.py [--quick] [--plot] [--torch]``
"""
from __future__ import annotations

import math

import numpy as np

import fastgrad
from fastgrad import F, Dense, Sequential, diff
from fastgrad.optim import SGD
from _compare import check, finish, note, parser, pyplot, save, section

X_LINE = np.arange(1.0, 6.0)
Y_LINE = 2.0 * X_LINE
X_POINT, Y_POINT = np.array([2.0, 3.0]), 1.0


def line_loss(w):
    """MSE of the prediction w x (no bias) on the article's five points, through fastgrad.F.mse."""
    return F.mse(float(w) * X_LINE, Y_LINE)[0]


def loss_against_weight():
    section("loss(w) = mean((2x - w x)^2) over x = 1..5 = 11 (w - 2)^2, lowest at w = 2")
    check("loss at w = 0", None, line_loss(0.0), 44.0, tol=1e-12)
    check("dloss/dw at w = 2", None, diff.derivative(line_loss, 2.0), 0.0, tol=1e-6)
    result = fastgrad.minimize(lambda w: line_loss(w[0]), np.array([0.0]), method="gd", lr=0.01, tol=1e-9)
    check("argmin of loss(w), minimize(method='gd')", "2", result.x[0], tol=1e-9)


def model_at(w, b):
    """A float64 Dense(2, 1) whose logit is fused with the sigmoid inside the BCE loss."""
    model = Sequential([Dense(2, 1)], loss="binary_cross_entropy", dtype="float64", optimizer=SGD(lr=0.5))
    model.layers[0].W[:, 0] = w
    model.layers[0].b[0] = b
    return model


def two_input_neuron():
    section("two-input neuron: z = w1 x1 + w2 x2 + b, y_hat = sigmoid(z), BCE; dL/dw_i = (y_hat - y) x_i")
    w, b = np.array([0.5, -0.3]), 0.1
    z = float(w @ X_POINT + b)
    y_hat = 1 / (1 + math.exp(-z))
    exact = {"y_hat": y_hat, "loss": -math.log(y_hat), "dL/dw1": (y_hat - 1) * 2.0, "dL/dw2": (y_hat - 1) * 3.0,
             "dL/db": y_hat - 1}
    model = model_at(w, b)
    loss, grad = model.loss_and_grad(X_POINT[None, :], np.array([Y_POINT]))
    got = {"y_hat": model.predict(X_POINT[None, :])[0, 0], "loss": loss, "dL/dw1": grad[0], "dL/dw2": grad[1],
           "dL/db": grad[2]}
    for key in exact:
        check(f"{key} (Sequential.loss_and_grad)", None, got[key], exact[key], tol=1e-12)
    # the same backward pass through the functional kernels: dL/dz = y_hat - y, then dense_backward
    zs = F.dense_forward(X_POINT[None, :], w[:, None], np.array([b]))
    _, grad_z = F.binary_cross_entropy_with_logits(zs, np.array([[Y_POINT]]))
    _, grad_W, grad_b = F.dense_backward(X_POINT[None, :], w[:, None], zs, grad_z)
    check("dL/dw1 (F.dense_backward)", None, grad_W[0, 0], exact["dL/dw1"], tol=1e-12)
    check("dL/db (F.dense_backward)", None, grad_b[0], exact["dL/db"], tol=1e-12)
    note(f"dL/dw1 < 0: increase w1 (by lr x {abs(exact['dL/dw1']):.4f}), as the article reads it")
    return got


def torch_autograd(got):
    """The article's PyTorch block: autograd's gradients (float64) as the exact values for fastgrad's."""
    import torch
    section("PyTorch autograd on the same neuron (--torch)")
    w1, w2, b = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.5, -0.3, 0.1))
    y_hat = torch.sigmoid(w1 * 2.0 + w2 * 3.0 + b)
    loss = -(Y_POINT * torch.log(y_hat) + (1 - Y_POINT) * torch.log(1 - y_hat))
    loss.backward()
    for name, tensor in (("dL/dw1", w1), ("dL/dw2", w2), ("dL/db", b)):
        check(f"{name}: fastgrad vs torch autograd", None, got[name], tensor.grad.item(), tol=1e-12)


def descent_by_hand(steps, lr=0.5):
    """The article's loop in plain Python: rows (w1, w2, b after the step, y_hat and loss before it)."""
    w1 = w2 = b = 0.0
    rows = []
    for _ in range(steps):
        y_hat = 1 / (1 + math.exp(-(w1 * 2.0 + w2 * 3.0 + b)))
        error = y_hat - Y_POINT
        w1, w2, b = w1 - lr * error * 2.0, w2 - lr * error * 3.0, b - lr * error
        rows.append((w1, w2, b, y_hat, -math.log(y_hat)))
    return np.array(rows)


def one_point_descent():
    section("gradient descent on the one point, lr 0.5 from w = b = 0 (y_hat and loss before each step)")
    model = model_at(np.zeros(2), 0.0)
    rows = []
    print(f"{'step':>4} {'w1':>9} {'w2':>9} {'b':>9} {'y_hat':>9} {'loss':>9}")
    for step in range(10):
        y_hat = model.predict(X_POINT[None, :])[0, 0]
        loss = model.train_step(X_POINT[None, :], np.array([Y_POINT]))  # the loss before the update
        w1, w2 = model.layers[0].W[:, 0]
        rows.append((w1, w2, model.layers[0].b[0], y_hat, loss))
        print(f"{step:>4} " + " ".join(f"{v:>9.4f}" for v in rows[-1]))
    rows, exact = np.array(rows), descent_by_hand(10)
    check("largest |fastgrad - by hand| over the table", None, np.max(np.abs(rows - exact)), 0.0, tol=1e-12)
    for j, name in enumerate(("w1", "w2", "b", "y_hat", "loss")):
        check(f"{name} at step 9", None, rows[-1, j], exact[-1, j], tol=1e-12)
    note("the article adds 1e-15 inside its log; fastgrad's BCE on the logit needs no guard (no log(0))")


def roc_auc():
    section("ROC AUC of ten scores: the area under the ROC curve by the trapezoidal rule (NumPy)")
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
    s = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9, 0.2, 0.6, 0.85, 0.15])
    thresholds = np.concatenate([[np.inf], np.unique(s)[::-1]])
    tpr = np.array([np.mean(s[y == 1] >= t) for t in thresholds])
    fpr = np.array([np.mean(s[y == 0] >= t) for t in thresholds])
    area = np.trapezoid(tpr, fpr)
    pos, neg = s[y == 1], s[y == 0]
    ranked = np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))
    check("AUC, trapezoid of (fpr, tpr) (NumPy)", None, area, ranked, tol=1e-12)
    note(f"AUC = P(score of a positive > score of a negative) = {ranked:g}: every positive (>= 0.6) "
         "outscores every negative (<= 0.3)")
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        print("(scikit-learn not installed: no comparison with roc_auc_score)")
    else:
        check("AUC, sklearn.metrics.roc_auc_score", None, roc_auc_score(y, s), area, tol=1e-12)
    return fpr, tpr, area


def main(argv=None):
    cli = parser(__doc__)
    cli.add_argument("--torch", action="store_true", help="also compute the gradients with PyTorch autograd")
    args = cli.parse_args(argv)
    print(__doc__.split("\n\n")[0])
    loss_against_weight()
    got = two_input_neuron()
    if args.torch:
        torch_autograd(got)
    one_point_descent()
    fpr, tpr, area = roc_auc()
    plt = pyplot(args)
    if plt is not None:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        weights = np.linspace(0.0, 4.0, 100)
        ax1.plot(weights, [line_loss(w) for w in weights], "b-")
        ax1.axvline(2.0, color="r", ls="--", label="w = 2")
        ax1.set(xlabel="weight w", ylabel="MSE loss", title="loss against weight")
        ax1.legend()
        ax2.plot(fpr, tpr, "b-", label=f"ROC (AUC = {area:.3f})")
        ax2.plot([0, 1], [0, 1], "r--", label="chance")
        ax2.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
        ax2.legend()
        save(plt, fig, args, "chain_rule_neuron.png")
    finish()


if __name__ == "__main__":
    main()
