"""Handwritten digits with a small MLP, and what fastgrad's compiled training loop costs per epoch.

A 64-128-64-10 ReLU network (softmax cross-entropy, Adam lr 1e-3, batches of 32, float32,
seed 0) learns the UCI 8x8 digits shipped with fastgrad (1797 images, 80/20 split) to about
98% test accuracy in 40 epochs.

It then prints the time per epoch of the same training:

* fastgrad, compiled (the whole epoch runs in one Numba call),
* fastgrad, ``backend="reference"`` (the same math in NumPy, a batch per Python iteration;
  trained for a couple of epochs only, to time it),
* scikit-learn's ``MLPClassifier`` (same layers, solver adam, no L2), from ``fit``'s time
  divided by ``n_iter_``,
* PyTorch (the same net with ``torch.optim.Adam``, a plain loop over shuffled batches), with
  its default thread count and with one thread,

the last two when they are installed ("not installed" otherwise), each in a fresh Python
process of its own: two libraries' thread pools in one process slow each other down (by
10-50x on 2 cores, DESIGN.md). Timings are wall-clock on this machine and vary with its load;
the first epoch of each is left out.

Run: ``python examples/digits.py [--epochs N] [--seed S] [--quick]``
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

import fastgrad
from fastgrad import Dense, Sequential
from fastgrad.callbacks import Callback
from fastgrad.datasets import load_digits_or_synthetic, train_test_split
from fastgrad.optim import Adam

HIDDEN = (128, 64)
LR, BATCH, SEED = 1e-3, 32, 0


class EpochTimer(Callback):
    """Records the wall-clock seconds of every epoch of ``fit``."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def per_epoch(seconds):
    """Median seconds per epoch, leaving out the first epoch (compilation, caches) when there are more."""
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def build(n_in, n_out, seed=SEED, backend="compiled"):
    layers = [Dense(n_in, HIDDEN[0], "relu"), Dense(HIDDEN[0], HIDDEN[1], "relu"), Dense(HIDDEN[1], n_out)]
    return Sequential(layers, loss="softmax_cross_entropy", optimizer=Adam(lr=LR), dtype="float32", seed=seed,
                      backend=backend)


def time_fastgrad(data, epochs, seed=SEED, backend="compiled"):
    X_train, X_test, y_train, y_test = data
    model = build(X_train.shape[1], 10, seed, backend)
    timer = EpochTimer()
    model.fit(X_train, y_train, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
    return per_epoch(timer.seconds), model.evaluate(X_test, y_test)["accuracy"]


def time_sklearn(data, epochs, seed=SEED):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    X_train, X_test, y_train, y_test = data
    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam", alpha=0.0, batch_size=BATCH,
                        learning_rate_init=LR, max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # it warns that max_iter was reached, as asked
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return seconds / clf.n_iter_, clf.score(X_test, y_test)


def time_torch(data, epochs, threads=None, seed=SEED):
    """(seconds per epoch, test accuracy, threads used); ``threads`` sets torch's intra-op threads for the run."""
    import torch
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        return _train_torch(torch, data, epochs, seed) + (torch.get_num_threads(),)
    finally:
        torch.set_num_threads(default_threads)


def _train_torch(torch, data, epochs, seed):
    X_train, X_test, y_train, y_test = data
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(X_train.shape[1], HIDDEN[0]), torch.nn.ReLU(),
                              torch.nn.Linear(HIDDEN[0], HIDDEN[1]), torch.nn.ReLU(), torch.nn.Linear(HIDDEN[1], 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, y = torch.from_numpy(X_train), torch.from_numpy(y_train)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in torch.randperm(len(X)).split(BATCH):
            optimizer.zero_grad()
            loss_fn(net(X[idx]), y[idx]).backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        accuracy = (net(torch.from_numpy(X_test)).argmax(1).numpy() == y_test).mean()
    return per_epoch(seconds), float(accuracy)


def time_peer(peer, epochs, seed, threads=None):
    """(seconds per epoch, test accuracy, threads used) of ``peer`` ("sklearn" or "torch"), timed
    by this script run with ``--peer`` in a fresh Python process."""
    command = [sys.executable, os.path.abspath(__file__), "--peer", peer, "--epochs", str(epochs),
               "--seed", str(seed), "--threads", str(threads or 0)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def _peer_main(args):
    """The ``--peer`` mode: one peer's timing on the same split, printed as a JSON list."""
    X, y, _ = load_digits_or_synthetic(seed=0, dtype=np.float32)
    data = train_test_split(X, y, test_fraction=0.2, seed=0)
    if args.peer == "sklearn":
        result = time_sklearn(data, args.epochs, args.seed) + (1,)
    else:
        result = time_torch(data, args.epochs, args.threads or None, args.seed)
    print(json.dumps([float(v) for v in result]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40, help="training epochs (default 40)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the weights and the batch order "
                        "(the train/test split always uses seed 0)")
    parser.add_argument("--quick", action="store_true", help="3 epochs, and 1-2 for the comparisons (for tests)")
    parser.add_argument("--peer", choices=("sklearn", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        return _peer_main(args)
    epochs = min(args.epochs, 3) if args.quick else args.epochs
    compare_epochs = 2 if args.quick else min(epochs, 10)

    X, y, source = load_digits_or_synthetic(seed=0, dtype=np.float32)
    data = train_test_split(X, y, test_fraction=0.2, seed=0)
    print(f"data: {source}, {len(data[0])} training and {len(data[1])} test images of {X.shape[1]} pixels")
    print(f"model: {X.shape[1]}-{HIDDEN[0]}-{HIDDEN[1]}-10 relu, Adam lr {LR:g}, batch {BATCH}, float32, "
          f"seed {args.seed}")

    compiled_s, accuracy = time_fastgrad(data, epochs, args.seed)
    print(f"\nfastgrad test accuracy after {epochs} epochs: {accuracy:.4f}")

    print(f"\ntime per epoch ({len(data[0])} images, {-(-len(data[0]) // BATCH)} batches; "
          f"{fastgrad.describe_threads()}):")
    rows = [("fastgrad (compiled)", compiled_s, f"accuracy {accuracy:.4f} after {epochs} epochs")]
    ref_epochs = 1 if args.quick else 2
    ref_s, _ = time_fastgrad(data, ref_epochs, args.seed, backend="reference")
    rows.append(("fastgrad (reference NumPy)", ref_s, f"timed over {ref_epochs} epoch(s)"))
    if importlib.util.find_spec("sklearn") is not None:
        sk_s, sk_acc, _ = time_peer("sklearn", compare_epochs, args.seed)
        rows.append(("scikit-learn MLPClassifier", sk_s, f"accuracy {sk_acc:.4f} after {compare_epochs} epochs"))
    else:
        rows.append(("scikit-learn MLPClassifier", None, "not installed"))
    if importlib.util.find_spec("torch") is not None:
        # Its default thread count, then one thread (each in a fresh process): on small layers and
        # a busy machine the threads' synchronisation can cost more than they save.
        for threads in (None, 1):
            torch_s, torch_acc, used = time_peer("torch", compare_epochs, args.seed, threads)
            used = int(used)
            rows.append((f"PyTorch ({used} thread{'s' if used > 1 else ''})", torch_s,
                         f"accuracy {torch_acc:.4f} after {compare_epochs} epochs"))
    else:
        rows.append(("PyTorch", None, "not installed"))
    for name, seconds, note in rows:
        if seconds is None:
            print(f"  {name:<28}{'not installed':>12}")
        else:
            print(f"  {name:<28}{seconds * 1e3:>9.2f} ms  {seconds / compiled_s:>7.1f}x fastgrad   ({note})")
    return {"accuracy": accuracy, "source": source, "epochs": epochs,
            "seconds_per_epoch": {name: seconds for name, seconds, _ in rows}}


if __name__ == "__main__":
    main()
