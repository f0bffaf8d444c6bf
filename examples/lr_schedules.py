"""Learning-rate schedules: the rate each one gives, epoch by epoch, and one inside ``fit``.

fastgrad's schedules follow PyTorch's ``lr_scheduler``: a schedule wraps an optimizer,
counts its construction as step 0 (lr = the optimizer's lr), and each ``step()`` sets
``optimizer.lr`` for the next epoch. The script prints the lr per epoch of

* StepLR(step_size=3, gamma=0.5): halve every 3 epochs;
* ExponentialLR(gamma=0.8): multiply by 0.8 every epoch;
* CosineAnnealingLR(T_max=10): half a cosine from lr down to 0 over 10 epochs;
* LinearWarmupCosine(warmup_steps=3, total_steps=12): linear ramp up, then cosine down;

then ReduceLROnPlateau(factor=0.5, patience=2) fed a validation loss that stops
improving (it cuts lr after patience + 1 epochs without improvement), and finally a short
``model.fit`` with a schedule in ``callbacks``, where ``history.history["lr"]`` records the
lr each epoch trained with.

Run: ``python examples/lr_schedules.py``
"""
from __future__ import annotations

import argparse

import numpy as np

from _plot import pyplot, save
from fastgrad import Dense, Sequential
from fastgrad.optim import SGD
from fastgrad.schedules import (CosineAnnealingLR, ExponentialLR, LinearWarmupCosine, ReduceLROnPlateau,
                                StepLR)

EPOCHS = 12
BASE_LR = 0.1


def schedule_table():
    makers = {
        "StepLR": lambda opt: StepLR(opt, step_size=3, gamma=0.5),
        "ExponentialLR": lambda opt: ExponentialLR(opt, gamma=0.8),
        "CosineAnnealing": lambda opt: CosineAnnealingLR(opt, T_max=10),
        "WarmupCosine": lambda opt: LinearWarmupCosine(opt, warmup_steps=3, total_steps=12),
    }
    lrs = {}
    for name, make in makers.items():
        optimizer = SGD(lr=BASE_LR)
        schedule = make(optimizer)
        lrs[name] = []
        for _ in range(EPOCHS):
            lrs[name].append(optimizer.lr)  # the lr this epoch trains with
            schedule.step()                 # once per epoch, after training it
    print(f"lr per epoch, base lr {BASE_LR}:")
    print(f"{'epoch':>5}" + "".join(f"{name:>17}" for name in lrs))
    for epoch in range(EPOCHS):
        print(f"{epoch:>5}" + "".join(f"{lrs[name][epoch]:>17.5f}" for name in lrs))
    print("(past T_max the cosine rises again, as PyTorch's CosineAnnealingLR does; past total_steps\n"
          " LinearWarmupCosine stays at min_lr)")
    return lrs


def plateau_demo():
    val_loss = [1.00, 0.70, 0.55, 0.50, 0.50, 0.51, 0.50, 0.49, 0.49, 0.495, 0.49, 0.49]
    optimizer = SGD(lr=BASE_LR)
    schedule = ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    print("\nReduceLROnPlateau(factor=0.5, patience=2) fed a validation loss that levels off:")
    print(f"{'epoch':>5}{'val_loss':>10}{'lr after step':>15}")
    lrs = []
    for epoch, loss in enumerate(val_loss):
        schedule.step(loss)
        lrs.append(optimizer.lr)
        print(f"{epoch:>5}{loss:>10.3f}{optimizer.lr:>15.5f}")
    return lrs


def fit_demo(epochs):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3
    optimizer = SGD(lr=0.1, momentum=0.9)
    model = Sequential([Dense(3, 8, "tanh"), Dense(8, 1)], loss="mse", optimizer=optimizer, seed=0)
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0,
                        callbacks=[StepLR(optimizer, step_size=2, gamma=0.5)])
    print("\nmodel.fit(..., callbacks=[StepLR(optimizer, step_size=2, gamma=0.5)]) on a small regression:")
    print(f"{'epoch':>5}{'lr':>10}{'loss':>12}")
    for epoch, (lr, loss) in enumerate(zip(history.history["lr"], history.history["loss"])):
        print(f"{epoch:>5}{lr:>10.4f}{loss:>12.5f}")
    return history.history["lr"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the fit demo")
    parser.add_argument("--plot", action="store_true", help="save lr_schedules.png (needs matplotlib)")
    args = parser.parse_args(argv)
    table = schedule_table()
    plateau = plateau_demo()
    fit_lrs = fit_demo(args.epochs)

    plt = pyplot(args.plot)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name, lrs in {**table, "ReduceLROnPlateau": plateau}.items():
            ax.step(range(len(lrs)), lrs, where="post", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("lr")
        ax.legend(fontsize=8)
        save(plt, fig, __file__, "lr_schedules.png")
    return {"schedules": table, "plateau": plateau, "fit_lr": fit_lrs}


if __name__ == "__main__":
    main()
