"""Where a training step's time goes: a per-op breakdown of fastgrad's compiled ``train_step``.

    python bench/profile_step.py                       # the four workloads of issue 12
    python bench/profile_step.py --layers 784-256-128-10 --batch 32 --threads 1
    python bench/profile_step.py --repeats 3 --min-time 0.01   # smoke

Run it alone on a quiet machine (it prints the load and warns otherwise). For each workload
(float32, Adam, ReLU, softmax cross-entropy or MSE) it times, in this process:

* ``train_step`` -- one public call (validation, Python, the compiled batch);
* the compiled step -- one batch of ``fit(shuffle=False)`` over many batches (the per-epoch Python
  cost divided among them), so ``train_step`` minus this is the per-call Python overhead;
* each op of the step on its own, at the step's shapes: the gather of the batch rows, every
  matrix product (forward ``a W``, backward ``a^T delta`` and ``delta W^T``) as the model runs it
  (kernels/gemm.py: pieces on Numba's threads, preallocated outputs), the dense layers'
  elementwise work (bias, activation and its derivative, the bias gradient), the loss and its
  gradient, the gradient norm pass and the optimizer pass over every parameter; fastgrad's
  compiled ops run inside ``blas_phase()`` as the model runs them;
* the GEMM floor: the same products on NumPy's BLAS (its own threads), preallocated outputs.

Ops timed alone run with warm caches, so their sum can fall short of the compiled step: the
difference is reported as "unaccounted" (cache misses between ops, call overhead inside the
compiled loop, the correct-count pass). Times are medians of ``--repeats`` samples.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout's package

import fastgrad  # noqa: E402
from fastgrad import Dense, Sequential, blas_phase  # noqa: E402
from fastgrad import functional as F  # noqa: E402
from fastgrad.kernels import dense as KD, gemm as KG  # noqa: E402
from fastgrad.kernels.activations import IDENTITY, RELU  # noqa: E402
from fastgrad.optim import Adam  # noqa: E402

WORKLOADS = (((784, 256, 128, 10), 32, "softmax_cross_entropy"), ((784, 256, 128, 10), 128, "softmax_cross_entropy"),
             ((784, 256, 128, 10), 1024, "softmax_cross_entropy"), ((32, 64, 64, 1), 32, "mse"))


def median_time(func, repeats, min_time):
    """Median seconds per call over ``repeats`` samples, each looping ``func`` for >= ``min_time``."""
    func()
    start = time.perf_counter()
    func()
    one = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(min_time / one))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            func()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def _model(layers, loss):
    dense = [Dense(layers[i], layers[i + 1], "relu" if i + 2 < len(layers) else "identity")
             for i in range(len(layers) - 1)]
    return Sequential(dense, loss=loss, optimizer=Adam(lr=1e-3), dtype="float32", seed=0)


def _data(layers, batch, loss, rows):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, layers[0])).astype(np.float32)
    if loss == "mse":
        return X, rng.standard_normal((rows, layers[-1])).astype(np.float32)
    return X, rng.integers(0, layers[-1], rows)


def profile(layers, batch, loss, repeats=7, min_time=0.05, batches=64):
    """[(op, calls per step, seconds per step)] for one workload, with "train_step" and
    "compiled step" first."""
    t = lambda f: median_time(f, repeats, min_time)  # noqa: E731
    X_all, y_all = _data(layers, batch, loss, batch * batches)
    X, y = X_all[:batch], y_all[:batch]
    model = _model(layers, loss)
    rows = [("train_step (public call)", 1, t(lambda: model.train_step(X, y)))]
    fit_model = _model(layers, loss)
    fit = lambda: fit_model.fit(X_all, y_all, epochs=1, batch_size=batch, shuffle=False, verbose=0)  # noqa: E731
    rows.append(("compiled step (fit, per batch)", 1, t(fit) / batches))

    perm = np.random.default_rng(1).permutation(X_all.shape[0])[:batch]
    xbuf = np.empty_like(X)
    rows.append(("gather batch rows (np.take)", 1, t(lambda: np.take(X_all, perm, axis=0, out=xbuf))))

    rng = np.random.default_rng(2)
    Ws = [(0.05 * rng.standard_normal((a, b))).astype(np.float32) for a, b in zip(layers[:-1], layers[1:])]
    bs = [np.zeros(b, np.float32) for b in layers[1:]]
    acts = [X]
    for i, W in enumerate(Ws):
        acts.append(np.maximum(acts[i] @ W + bs[i], 0))
    deltas = [(0.01 * rng.standard_normal(a.shape)).astype(np.float32) for a in acts]
    # (name, A, ta, B, tb, m, n, k): C (m, n) = op(A) @ op(B), the step's products in its order
    specs = [(f"product fwd layer {i + 1}", acts[i], False, W, False, batch, W.shape[1], W.shape[0])
             for i, W in enumerate(Ws)]
    for i in range(len(Ws) - 1, -1, -1):
        W = Ws[i]
        specs.append((f"product grad_W layer {i + 1}", acts[i], True, deltas[i + 1], False,
                      W.shape[0], W.shape[1], batch))
        if i:
            specs.append((f"product grad_x layer {i + 1}", deltas[i + 1], False, W, True, batch, W.shape[0], W.shape[1]))
    # fastgrad's products first, then NumPy's: alternating the two pools would make them fight
    with blas_phase():
        for name, A, ta, B, tb, m, n, k in specs:
            a, b, c = A.reshape(-1), B.reshape(-1), np.empty(m * n, np.float32)
            pieces = KG.product_pieces(m, n, k, KG.MACHINE_CORES)
            rows.append((f"{name}: ({m}x{k}) @ ({k}x{n}), {pieces} piece(s)", 1,
                         t(lambda: KG.matmul_into(a, ta, b, tb, c, m, n, k, KG.MACHINE_CORES))))
    gemm_total = 0.0
    for name, A, ta, B, tb, m, n, k in specs:
        Am, Bm, out = (A.T if ta else A), (B.T if tb else B), np.empty((m, n), np.float32)
        gemm_total += t(lambda: np.dot(Am, Bm, out))

    fwd_elem = bwd_elem = 0.0
    with blas_phase():
        for i, W in enumerate(Ws):
            code = RELU if i + 1 < len(Ws) else IDENTITY
            z = acts[i] @ W
            y_out, grad_b, delta = np.empty_like(z), np.empty(W.shape[1], np.float32), np.empty_like(z)
            one = np.float32(0)
            fwd_elem += t(lambda: KD.forward_after_product(z, bs[i], y_out, code, one, one))
            bwd_elem += t(lambda: KD.backward_before_products(z, deltas[i + 1], code, one, one, delta, grad_b))
        out = acts[-1]
        if loss == "mse":
            rows.append(("loss + its gradient (mse)", 1, t(lambda: F.mse(out, y))))
        else:
            rows.append(("loss + its gradient (softmax_cross_entropy)", 1, t(lambda: F.softmax_cross_entropy(out, y))))
        n_params = model.params.size
        params = model.params.copy()
        grads = (0.01 * rng.standard_normal(n_params)).astype(np.float32)
        from fastgrad.kernels.grad_utils import grad_norm
        rows.append((f"gradient norm pass ({n_params} parameters)", 1, t(lambda: grad_norm(grads, 2.0))))
        opt = Adam(lr=1e-3)
        rows.append((f"optimizer pass: Adam over {n_params} parameters", 1, t(lambda: opt.step(params, grads))))
    rows.append(("dense elementwise (bias, activation)", len(Ws), fwd_elem))
    rows.append(("dense elementwise (activation derivative, bias gradient)", len(Ws), bwd_elem))
    rows.append(("[GEMM floor: the same products on NumPy's BLAS]", 0, gemm_total))
    return rows


def report(layers, batch, loss, rows) -> list:
    step = rows[1][2]
    ops = [r for r in rows[2:] if r[1] > 0]
    lines = [f"## {'-'.join(map(str, layers))} {loss} b{batch}, float32, Adam",
             f"{'op':62s} {'us/step':>10s} {'% of step':>10s}"]
    for name, _, s in rows[:2]:
        lines.append(f"{name:62s} {1e6 * s:10.1f} {100 * s / step:9.0f}%")
    for name, _, s in ops:
        lines.append(f"  {name:60s} {1e6 * s:10.1f} {100 * s / step:9.0f}%")
    accounted = sum(s for _, _, s in ops)
    lines.append(f"  {'unaccounted (compiled step - sum of ops)':60s} {1e6 * (step - accounted):10.1f} "
                 f"{100 * (step - accounted) / step:9.0f}%")
    floor = rows[-1][2]
    lines.append(f"{rows[-1][0]:62s} {1e6 * floor:10.1f} {100 * floor / step:9.0f}%  "
                 f"(step / floor = {step / floor:.2f}x)")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", help="e.g. 784-256-128-10 (default: the four workloads of issue 12)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--loss", default=None, help="softmax_cross_entropy or mse (default: by the last width)")
    parser.add_argument("--threads", type=int, help="fastgrad.set_num_threads(N) first")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per sample")
    parser.add_argument("--batches", type=int, default=64, help="batches in the fit epoch")
    args = parser.parse_args(argv)
    if args.threads:
        fastgrad.set_num_threads(args.threads)
    from fastgrad.benchmarks.load import load_summary
    from fastgrad.benchmarks.report import describe_load
    start = load_summary()
    print(f"# {fastgrad.describe_threads()}")
    print(f"# machine load: {describe_load(start)}" + ("" if start["quiet"] else "  -- NOT quiet: unreliable"))
    if args.layers:
        layers = tuple(int(w) for w in args.layers.split("-"))
        loss = args.loss or ("mse" if layers[-1] == 1 else "softmax_cross_entropy")
        chosen = [(layers, args.batch, loss)]
    else:
        chosen = WORKLOADS
    for layers, batch, loss in chosen:
        rows = profile(layers, batch, loss, args.repeats, args.min_time, args.batches)
        print("\n".join(report(layers, batch, loss, rows)) + "\n", flush=True)
    end = load_summary(after_own_work=True)  # the run's own minute still counts in the load average
    print(f"# machine load at the end: {describe_load(end)}" + ("" if end["quiet"] else "  -- NOT quiet: unreliable"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
