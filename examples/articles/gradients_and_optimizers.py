"""Article "Calculus for Optimization: Derivatives and Gradients": its worked examples, checked.

The article's examples: its table of activation and loss derivatives (sigmoid, tanh, ReLU,
leaky ReLU, softmax, MSE, cross-entropy after softmax); one sigmoid neuron (x = 2, y = 1,
w = 0.5, b = -0.1) whose BCE gradient simplifies to dL/dz = y_hat - y; momentum and Adam
written out by hand; a Jacobian and a Hessian with their eigenvalues and condition number;
four learning-rate schedules; gradient clipping by the global norm; He initialisation; a
training loop with AdamW.

fastgrad API: ``fastgrad.F`` (activations, losses and their backward passes),
``Sequential``/``Dense`` (``loss_and_grad``, ``train_step``), ``fastgrad.optim.SGD``/``Adam``/
``AdamW``, ``fastgrad.diff.jacobian``/``hessian``, ``fastgrad.curvature``,
``fastgrad.optim.StepLR``/``CosineAnnealingLR``/``ReduceLROnPlateau``/``LinearWarmupCosine``,
``fastgrad.optim.clip_grad_norm``, ``fastgrad.init.he_normal``.

Run: ``python examples/articles/gradients_and_optimizers.py [--quick] [--plot]``
"""
from __future__ import annotations

import math

import numpy as np

import fastgrad
from fastgrad import F, Dense, Sequential, diff
from fastgrad import optim
from _compare import check, finish, note, parser, pyplot, save, section


def derivative_table():
    section("derivatives of the activations and losses, at z = 0.5 (and -1.5 for the piecewise ones)")
    z = np.array([0.5, -1.5])
    ones = np.ones(2)
    s, t = 1 / (1 + np.exp(-z)), np.tanh(z)
    check("sigmoid' = s(1 - s) at 0.5", None, F.sigmoid_backward(z, ones)[0], s[0] * (1 - s[0]), tol=1e-15)
    check("sigmoid' at 0 (its maximum)", "0.25", F.sigmoid_backward(np.zeros(1), np.ones(1))[0], tol=1e-15)
    check("tanh' = 1 - tanh^2 at 0.5", None, F.tanh_backward(z, ones)[0], 1 - t[0] ** 2, tol=1e-15)
    check("ReLU' at 0.5", "1", F.relu_backward(z, ones)[0])
    check("ReLU' at -1.5", "0", F.relu_backward(z, ones)[1])
    check("leaky ReLU' at -1.5, alpha 0.01", None, F.leaky_relu_backward(z, ones, alpha=0.01)[1], 0.01, tol=1e-15)
    logits = np.array([[1.0, 2.0, 0.5]])
    p = F.softmax(logits)[0]
    J = diff.jacobian(lambda v: F.softmax(v[None, :])[0], logits[0])
    closed = np.diag(p) - np.outer(p, p)  # s_i (delta_ij - s_j)
    check("softmax Jacobian, max |FD - s_i(d_ij - s_j)|", None, np.max(np.abs(J - closed)), 0.0, tol=1e-9)
    pred, target = np.array([0.2, 0.9, 0.4]), np.array([0.0, 1.0, 1.0])
    _, grad = F.mse(pred, target)
    check("MSE grad, max |F.mse - (2/n)(y_hat - y)|", None, np.max(np.abs(grad - 2 / 3 * (pred - target))), 0.0,
          tol=1e-15)
    _, grad = F.softmax_cross_entropy(logits, np.array([1]))
    check("CE after softmax: max |grad - (p - y)|", None, np.max(np.abs(grad[0] - (p - [0, 1, 0]))), 0.0, tol=1e-15)


def neuron():
    section("one neuron, x = 2, y = 1, w = 0.5, b = -0.1: dL/dz = y_hat - y")
    model = Sequential([Dense(1, 1)], loss="binary_cross_entropy", dtype="float64")
    model.layers[0].W[...] = 0.5
    model.layers[0].b[...] = -0.1
    X, y = np.array([[2.0]]), np.array([1.0])
    loss, grad = model.loss_and_grad(X, y)
    z = model.forward(X)[0, 0]
    y_hat = 1 / (1 + math.exp(-0.9))
    check("z = w x + b", "0.9", z, tol=1e-15)
    check("y_hat = sigmoid(0.9)", "0.7109", model.predict(X)[0, 0], y_hat, tol=1e-15)
    check("BCE loss", "0.3412", loss, -math.log(y_hat), tol=1e-15)
    check("dL/dw = (y_hat - y) x", None, grad[0], (y_hat - 1) * 2, tol=1e-15)
    check("dL/db = y_hat - y", None, grad[1], y_hat - 1, tol=1e-15)


class HandMomentum:
    """The article's form: v = beta v - lr g; p = p + v."""

    def __init__(self, lr, beta):
        self.lr, self.beta, self.v = lr, beta, 0.0

    def step(self, p, g):
        self.v = self.beta * self.v - self.lr * g
        return p + self.v


class HandAdam:
    """The article's code: bias-corrected moments, eps outside the square root."""

    def __init__(self, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.m, self.v, self.t = lr, b1, b2, eps, 0.0, 0.0, 0

    def step(self, p, g):
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        m_hat, v_hat = self.m / (1 - self.b1 ** self.t), self.v / (1 - self.b2 ** self.t)
        return p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def optimizers_by_hand(steps=100):
    section(f"momentum and Adam by hand vs fastgrad.optim, {steps} steps on sum(c_i p_i^2), c = (1, 10, 100)")
    c = np.array([1.0, 10.0, 100.0])
    for name, hand, fused in (("SGD momentum 0.9, lr 0.001", HandMomentum(1e-3, 0.9), optim.SGD(lr=1e-3, momentum=0.9)),
                              ("Adam, lr 0.01", HandAdam(1e-2), optim.Adam(lr=1e-2))):
        p_hand, p = np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0])
        worst = 0.0
        for _ in range(steps):
            p_hand = hand.step(p_hand, 2 * c * p_hand)
            fused.step(p, 2 * c * p)  # in place, one fused kernel
            worst = max(worst, float(np.max(np.abs(p - p_hand))))
        check(f"{name}: max |fastgrad - hand|", None, worst, 0.0, tol=1e-12)
    note("PyTorch's momentum b = mu b + g, p -= lr b is the article's v = beta v - lr g with v = -lr b")
    g = np.full(1, 1e-4)
    code = HandAdam(1.0).step(np.zeros(1), g)[0]
    table = -g[0] / math.sqrt(g[0] ** 2 + 1e-8)  # first bias-corrected step, eps inside the root
    fused = np.zeros(1)
    optim.Adam(lr=1.0).step(fused, g)
    check("first Adam step, g = 1e-4, lr 1 (eps outside)", None, fused[0], code, tol=1e-15)
    note(f"the article's summary table writes m_hat / sqrt(v_hat + eps): that first step would be {table:.4f}, "
         f"not {code:.4f}; its code, PyTorch and fastgrad put eps outside the root")


def jacobian_and_hessian():
    section("Jacobian of [x0^2, x1 x2, x0 + x1 + x2] at (1, 2, 3); Hessian of w0^2 + 2 w1^2 + w0 w1 + 3 w2^2")
    J = diff.jacobian(lambda x: np.array([x[0] ** 2, x[1] * x[2], x.sum()]), np.array([1.0, 2.0, 3.0]))
    for (i, j), stated in np.ndenumerate(np.array([["2", "0", "0"], ["0", "3", "2"], ["1", "1", "1"]])):
        check(f"J[{i},{j}]", stated, J[i, j], tol=1e-8)
    H = diff.hessian(lambda w: w[0] ** 2 + 2 * w[1] ** 2 + w[0] * w[1] + 3 * w[2] ** 2, np.ones(3))
    for (i, j), stated in np.ndenumerate(np.array([["2", "1", "0"], ["1", "4", "0"], ["0", "0", "6"]])):
        check(f"H[{i},{j}]", stated, H[i, j], tol=1e-6)
    result = fastgrad.curvature(H)
    exact = (3 - math.sqrt(2), 3 + math.sqrt(2), 6.0)  # [[2, 1], [1, 4]] has eigenvalues 3 -+ sqrt(2)
    for k in range(3):
        check(f"Hessian eigenvalue {k}", None, result.eigenvalues[k], exact[k], tol=1e-6)
    check("condition number 6 / (3 - sqrt 2)", None, result.condition_number, exact[2] / exact[0], tol=1e-5)
    print(f"curvature(H).kind = {result.kind!r} (the article: all positive, strictly convex)")


def schedules():
    section("learning-rate schedules, base lr 1e-3")
    opt = optim.Adam(lr=1e-3)
    step = optim.StepLR(opt, step_size=30, gamma=0.1)
    for t in (0, 29, 30, 60, 99):
        check(f"StepLR(30, 0.1) lr at epoch {t}", None, step.lr_at(t), 1e-3 * 0.1 ** (t // 30), tol=1e-18)
    opt = optim.Adam(lr=1e-3)
    cosine = optim.CosineAnnealingLR(opt, T_max=100, eta_min=1e-6)
    for epoch in range(100):
        cosine.step()  # as the article: the lr printed at epoch e is the one after e + 1 steps
        if epoch % 20 == 0:
            t = epoch + 1
            exact = 1e-6 + (1e-3 - 1e-6) * (1 + math.cos(math.pi * t / 100)) / 2
            check(f"CosineAnnealingLR(100, 1e-6) at epoch {epoch}", None, opt.lr, exact, tol=1e-18)
    opt = optim.Adam(lr=1e-3)
    plateau = optim.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=10)
    for _ in range(25):
        plateau.step(1.0)  # a flat validation loss: halve after 11 steps without improvement
    check("ReduceLROnPlateau(0.5, 10): lr after 25 flat epochs", None, opt.lr, 2.5e-4, tol=1e-18)
    warm = optim.LinearWarmupCosine(optim.Adam(lr=1e-3), warmup_steps=1000, total_steps=10000)
    for t, factor in ((0, 0.0), (500, 0.5), (1000, 1.0), (5500, 0.5), (10000, 0.0)):
        check(f"warm-up + cosine (1000, 10000) at step {t}", None, warm.lr_at(t), 1e-3 * factor, tol=1e-15)


def clipping():
    section("gradient clipping by the global L2 norm: g <- g c / ||g|| when ||g|| > c")
    grads = [np.array([3.0, 0.0]), np.array([0.0, 4.0])]
    norm = optim.clip_grad_norm(grads, max_norm=1.0)
    check("norm before clipping", None, norm, 5.0, tol=1e-15)
    check("clipped g[0]", None, grads[0][0], 0.6, tol=1e-6)
    check("clipped g[1]", None, grads[1][1], 0.8, tol=1e-6)
    note("fastgrad, like torch.nn.utils.clip_grad_norm_, scales by c / (||g|| + 1e-6): 0.6 - 1.2e-7")


def initialisation():
    section("He (Kaiming) normal initialisation for ReLU: std sqrt(2 / fan_in); biases start at 0")
    W = fastgrad.init.he_normal((128, 64), rng=0)  # fastgrad's W is (n_in, n_out): fan_in = 128
    tol = 5 * 0.125 / math.sqrt(2 * W.size)  # five standard errors of a sample standard deviation
    check("std of he_normal((128, 64)) (8192 draws)", None, W.std(), math.sqrt(2 / 128), tol=tol)
    model = Sequential([Dense(128, 64, "relu")], loss="mse", dtype="float64", seed=1)
    check("Dense(128, 64, 'relu') init='auto': W std", None, model.layers[0].W.std(), math.sqrt(2 / 128), tol=tol)
    check("Dense bias at initialisation, max |b|", None, np.abs(model.layers[0].b).max(), 0.0, tol=0)


def adamw_loop(epochs):
    section(f"the training loop: 10-64-1 ReLU network, BCE, AdamW(1e-3, weight decay 0.01), {epochs} random batches")
    rng = np.random.default_rng(0)
    model = Sequential([Dense(10, 64, "relu"), Dense(64, 1)], loss="binary_cross_entropy",
                       optimizer=optim.AdamW(lr=1e-3, weight_decay=0.01), seed=0, dtype="float64")
    losses = []
    for epoch in range(epochs):
        X, y = rng.standard_normal((32, 10)), rng.integers(0, 2, 32).astype(float)
        losses.append(model.train_step(X, y))
        if epoch % 20 == 0:
            print(f"epoch {epoch:3d} | loss {losses[-1]:.4f}")
    print(f"the labels are random, so nothing generalises: the best a model can expect on new batches is "
          f"ln 2 = {math.log(2):.4f}; mean batch loss over the run {np.mean(losses):.4f}")
    return losses


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    print(__doc__.split("\n\n")[0])
    derivative_table()
    neuron()
    optimizers_by_hand()
    jacobian_and_hessian()
    schedules()
    clipping()
    initialisation()
    adamw_loop(epochs=20 if args.quick else 100)  # an illustration: nothing checked depends on its length
    plt = pyplot(args)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        t = np.arange(100)
        for sched in (optim.StepLR(optim.Adam(lr=1e-3), 30, 0.1),
                      optim.CosineAnnealingLR(optim.Adam(lr=1e-3), 100, 1e-6),
                      optim.LinearWarmupCosine(optim.Adam(lr=1e-3), 10, 100)):
            ax.plot(t, [sched.lr_at(k) for k in t], label=type(sched).__name__)
        ax.set(xlabel="epoch", ylabel="learning rate", yscale="log", title="learning-rate schedules")
        ax.legend()
        save(plt, fig, args, "gradients_and_optimizers_schedules.png")
    finish()


if __name__ == "__main__":
    main()
