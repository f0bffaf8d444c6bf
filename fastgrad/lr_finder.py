"""``lr_find``: the learning-rate range test (Smith, "Cyclical Learning Rates for Training
Neural Networks", 2017; fastai's and PyTorch Lightning's ``lr_find``), in one compiled call.

The model trains for ``num`` mini-batches while the rate grows geometrically from ``start`` to
``end``; the rates go to the compiled epoch loop as one per-batch array (as a per-step
schedule's do). The sweep's losses are smoothed by an exponential moving average with bias
correction (``beta``); the sweep ends at the first batch whose smoothed loss exceeds
``diverge`` times the best so far, or whose loss or update is not finite (the compiled loop
stops there). Afterwards the model is restored exactly: parameters, gradients, running statistics,
optimizer (state, step count, rate), RNG, mode and epoch count -- a ``fit`` after
``lr_find`` is bit-identical to one without it.

The suggestion is the rate where the smoothed loss falls fastest against ``log(lr)`` (the
steepest negative slope, fastai's "steep" rule, leaving out the first 10 and last 5 points as
fastai's plot does, and everything past the smoothed minimum): a heuristic, usually a few times below the
rate at the minimum; look at the curve (``fastgrad.plot.lr_find``) before trusting it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastgrad._checks import as_int, as_scalar

__all__ = ("lr_find", "LRFinderResult")


@dataclass
class LRFinderResult:
    """What :func:`lr_find` returns: the rates tried (float64 (m,), m <= num), the batch losses
    at them, their smoothed values, the suggested rate (None when fewer than 3 points) and why
    the sweep ended ("end", "diverged" or "non-finite")."""
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float | None
    stopped: str


def _smooth(losses, beta):
    out = np.empty_like(losses)
    avg = 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def _snapshot(model):
    opt = model.optimizer
    return (model.params.copy(), model.state.copy(), model.grads.copy(), opt.state_dict(), float(opt.lr),
            model.rng.bit_generator.state, model.training, model.epochs_done)


def _restore(model, snap):
    params, state, grads, opt_state, lr, rng_state, training, epochs_done = snap
    model.params[...] = params
    model.state[...] = state
    model.grads[...] = grads
    model.optimizer.load_state_dict(opt_state)
    model.optimizer.lr = lr
    model.rng.bit_generator.state = rng_state
    model.training, model.epochs_done = training, epochs_done


def lr_find(model, X, y, start=1e-7, end=10.0, num=100, batch_size=32, beta=0.98, diverge=4.0):
    """Sweep the learning rate from ``start`` to ``end`` (geometric, ``num`` batches of
    ``batch_size`` rows of (X, y), reshuffled each time the data runs out) on ``model``, then
    restore the model; returns an :class:`LRFinderResult`. See the module doc.

    Raises ``ValueError``/``TypeError`` naming a bad argument (``0 < start < end``, ``num >= 2``,
    ``0 <= beta < 1``, ``diverge > 1``) or bad data, as ``fit`` does.
    """
    from fastgrad.training import run_batches
    model._check_minibatch_optimizer("lr_find")
    start = as_scalar(start, "start", low=0.0, low_open=True)
    end = as_scalar(end, "end", low=start, low_open=True)
    num = as_int(num, "num", low=2)
    batch_size = as_int(batch_size, "batch_size", low=1)
    beta = as_scalar(beta, "beta", low=0.0, high=1.0, high_open=True)
    diverge = as_scalar(diverge, "diverge", low=1.0, low_open=True)
    X, yf, yl, use_labels = model._data(X, y)
    n = X.shape[0]
    batch_size = min(batch_size, n)
    per_pass = n // batch_size   # whole batches per pass over the data
    snap = _snapshot(model)
    rows = np.concatenate([model.rng.permutation(n)[:per_pass * batch_size]
                           for _ in range(math.ceil(num / per_pass))])[:num * batch_size]
    lrs = start * (end / start) ** (np.arange(num) / (num - 1))
    try:
        with model.training_lock():
            run = run_batches(model, X[rows], yf[rows] if yf.shape[0] == n else yf, yl[rows] if use_labels else yl,
                              use_labels, np.arange(rows.size), batch_size, None, False, lrs=lrs)
    finally:
        _restore(model, snap)
    stopped = "non-finite" if run.failed is not None else "end"
    losses = run.losses[:run.done] if run.failed is not None else run.losses
    smoothed = _smooth(losses, beta)
    best = np.minimum.accumulate(smoothed)
    over = np.flatnonzero(smoothed > diverge * best)
    if over.size:
        losses, smoothed, stopped = losses[:over[0] + 1], smoothed[:over[0] + 1], "diverged"
    tried = lrs[:losses.size]
    suggestion = None
    if losses.size >= 3:
        # fastai's window: the first 10 and last 5 points are left out (the moving average is
        # still settling at the start, and the end is the blow-up).
        # Only before the smoothed minimum: past it the curve is the blow-up, whose moving
        # average can fall again as it lags.
        m = losses.size
        lo, hi = min(10, m // 3), min(m - min(5, m // 3), int(np.argmin(smoothed)) + 1)
        if hi - lo < 2:
            lo, hi = 0, max(int(np.argmin(smoothed)) + 1, 2)
        slope = np.gradient(smoothed, np.log(tried))[lo:hi]
        suggestion = float(tried[lo + int(np.argmin(slope))])
    return LRFinderResult(tried, losses, smoothed, suggestion, stopped)
