"""A training recipe as Keras and PyTorch users write it, on real data (the UCI digits).

1. An imbalanced training set: digits 5-9 are kept at one in five, as rare classes often are.
2. ``fastgrad.lr_find`` sweeps the learning rate on the model (restored afterwards) and suggests one.
3. ``fit`` with a per-step warm-up + cosine schedule (``interval="step"``) at that rate,
   ``class_weight="balanced"`` (scikit-learn's formula), metrics AUC and macro recall, and a
   validation set; the same fit without the weights for comparison.
4. The test set (balanced) scores both: the weights trade a little accuracy on the common
   classes for recall on the rare ones.

The model uses Keras's spellings: ``Dense(10, activation="softmax")`` with
``loss="sparse_categorical_crossentropy"`` and ``optimizer="adam"``.

Run: ``python examples/training_recipe.py [--quick] [--plot]``
"""
from __future__ import annotations

import argparse

import numpy as np

import fastgrad
from _plot import pyplot, save
from fastgrad import Dense, Dropout, Sequential, datasets
from fastgrad.optim import LinearWarmupCosine


def data(seed=0):
    X, y = datasets.load_digits(np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    test, train = order[:450], order[450:]
    rare = (y[train] >= 5) & (rng.random(train.size) > 0.2)   # drop 4 in 5 of digits 5-9
    train = train[~rare]
    return X[train], y[train], X[test], y[test]


def build(seed):
    return Sequential([Dense(64, 64, "relu"), Dropout(0.1), Dense(10, activation="softmax")],
                      loss="sparse_categorical_crossentropy", optimizer="adam", seed=seed,
                      metrics=["accuracy", "auc", "recall"])


def train(X, y, X_val, y_val, lr, epochs, class_weight, seed=0, verbose=0):
    model = build(seed)
    steps = epochs * int(np.ceil(len(X) / 32))
    model.optimizer.lr = lr
    schedule = LinearWarmupCosine(model.optimizer, warmup_steps=steps // 10, total_steps=steps, interval="step")
    history = model.fit(X, y, epochs=epochs, batch_size=32, validation_data=(X_val, y_val),
                        class_weight=class_weight, callbacks=[schedule], verbose=verbose)
    return model, history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--plot", action="store_true", help="save the lr sweep and the training curves")
    args = parser.parse_args(argv)
    epochs = 8 if args.quick else 30
    X, y, X_test, y_test = data()
    counts = np.bincount(y, minlength=10)
    print(f"training rows per digit: {counts.tolist()} (digits 5-9 kept at one in five)")

    sweep = fastgrad.lr_find(build(0), X, y, start=1e-5, end=10.0, num=100)
    lr = float(np.clip(sweep.suggestion, 1e-4, 3e-2))
    print(f"lr_find: {sweep.lrs.size} batches, stopped: {sweep.stopped}; suggested lr {sweep.suggestion:.3g}, "
          f"used {lr:.3g}")

    results = {}
    for name, weights in (("balanced weights", "balanced"), ("no weights", None)):
        model, history = train(X, y, X_test, y_test, lr, epochs, weights)
        scores = model.evaluate(X_test, y_test)
        rare = np.isin(y_test, np.arange(5, 10))
        rare_recall = float(np.mean(model.predict(X_test[rare]).argmax(axis=1) == y_test[rare]))
        results[name] = (scores, rare_recall, history)
        print(f"{name:>16}: test accuracy {scores['accuracy']:.4f}, AUC {scores['auc']:.4f}, "
              f"macro recall {scores['recall']:.4f}, recall on digits 5-9 {rare_recall:.4f}")
    history = results["balanced weights"][2]
    print("per-step schedule: lr at the start of each epoch "
          + ", ".join(f"{v:.3g}" for v in history.history["lr"]))
    plt = pyplot(args.plot)
    if plt is not None:
        from fastgrad import plot
        save(plt, plot.lr_find(sweep), __file__, "lr_find.png")
        save(plt, history.plot(), __file__, "history.png")
    return results


if __name__ == "__main__":
    main()
