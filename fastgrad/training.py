"""The training loop of :class:`~fastgrad.Sequential`: Python per epoch, compiled code per batch."""
from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass

import numpy as np

from fastgrad._checks import as_int, as_scalar
from fastgrad._compile_jobs import compile_for_fit
from fastgrad._threads import blas_phase
from fastgrad.callbacks import CallbackList, History, TerminateOnNaN, format_logs
from fastgrad.kernels.program import Data, Record, Update


@dataclass
class BatchRun:
    losses: np.ndarray    # per-batch loss
    correct: np.ndarray   # per-batch correct predictions
    sizes: np.ndarray     # per-batch row count
    weights: np.ndarray   # per-batch sum of sample weights (the row counts when unweighted)
    done: int             # batches whose update was applied
    failed: int | None    # index of the batch that failed (see kernels.train.train_epoch)
    reason: int = 0       # kernels.train's FAIL_LOSS, FAIL_UPDATE or FAIL_PARAMS

    def failure(self, where: str) -> str:
        """The message of the FloatingPointError for the failed batch, ``where`` naming it."""
        from fastgrad.kernels.train import FAIL_PARAMS, FAIL_UPDATE
        if self.reason == FAIL_PARAMS:
            return (f"the parameters hold NaN or inf before {where}; nothing was trained "
                    "(set finite values, e.g. from a saved model)")
        if self.reason == FAIL_UPDATE:
            return (f"the optimizer update at {where} made a parameter NaN or inf (loss before it "
                    f"{self.losses[self.failed]}); the parameters before that update were restored "
                    "(try a smaller learning rate or clip_norm)")
        return (f"non-finite loss, gradient or running statistics at {where} (loss={self.losses[self.failed]}); "
                "the model keeps the parameters of the last finite update")


def run_batches(model, X, yf, yl, use_labels, perm, batch_size, clip_norm, diagnostics, diag=None,
                progress=None, n_chunks=1, weights=None, lrs=None, before_chunk=None):
    """Run every mini-batch of ``perm`` through the backend's ``train_epoch``.

    ``weights``: validated sample weights (n,) in the model's dtype (gathered with the rows),
    or None for the unweighted path.

    One compiled call per chunk: a single call unless a progress bar wants to advance (or
    ``before_chunk(first_batch)``, called before each chunk, sets something per batch).
    The optimizer's step count advances by the updates applied; the learning rate of batch i
    is ``lrs[i]`` (float64, one per batch: a per-step schedule's rates), else ``optimizer.lr``.
    """
    n = X.shape[0]
    n_batches = math.ceil(n / batch_size)
    last_size = n - batch_size * (n_batches - 1)
    model._check_batch_stats((min(batch_size, n), last_size), f"training in batches of {batch_size} of {n} rows")
    losses = np.zeros(n_batches)
    correct = np.zeros(n_batches, dtype=np.int64)
    lrs = np.full(n_batches, float(model.optimizer.lr)) if lrs is None else np.ascontiguousarray(lrs, np.float64)
    status = np.zeros(3, np.int64)
    diag = np.zeros((model.program.shape[0], 3)) if diag is None else diag
    clip = 0.0 if clip_norm is None else as_scalar(clip_norm, "clip_norm", low=0.0, low_open=True)
    n_chunks = min(n_chunks, n_batches)
    bounds = [n_batches * i // n_chunks for i in range(n_chunks + 1)]
    failed = None
    done = 0
    data = Data(X, yf, yl, use_labels, model._kernel_weights(weights))
    record = Record(losses, correct, bool(diagnostics), diag, status, _diagnostics_address(model, diagnostics))
    for first, last in zip(bounds[:-1], bounds[1:]):
        if before_chunk is not None:
            before_chunk(first)
        stop = train_range(model, data, perm, batch_size, first, last, record, lrs, clip)
        done = int(stop)
        if progress is not None:
            progress.update(int(stop - first))
            if stop > first:
                progress.set_postfix(loss=f"{np.mean(losses[first:stop]):.4f}")
        if stop < last:
            failed = int(stop)
            break
    reason = int(status[0])
    sizes = np.full(n_batches, batch_size)
    sizes[-1] = n - batch_size * (n_batches - 1)
    batch_weights = sizes if weights is None else np.add.reduceat(
        weights[perm].astype(np.float64), np.arange(0, n, batch_size))
    return BatchRun(losses, correct, sizes, batch_weights, done, failed, reason if failed is not None else 0)


def _diagnostics_address(model, diagnostics) -> int:
    """The compiled diagnostics' address when asked for (kernels/dispatch.py), else 0."""
    if not diagnostics or model.backend != "compiled":
        return 0
    from fastgrad.kernels.dispatch import diagnostics_address
    return diagnostics_address(model.dtype)


def _update(model, code, state, hyper, lrs, clip) -> Update:
    """The optimizer's part of a ``train_epoch`` call, with the addresses of its compiled update
    and, when ``clip`` > 0, of the clipping (kernels/dispatch.py; 0 for the NumPy twin)."""
    clip = float(clip)
    clip_fn = 0
    if clip > 0 and model.backend == "compiled":
        from fastgrad.kernels.dispatch import clip_address
        clip_fn = clip_address(clip, model.dtype)
    return Update(code, state, hyper, lrs, clip, model.optimizer.step_count, _optimizer_address(model, code), clip_fn)


def _optimizer_address(model, code) -> int:
    """The compiled update's address (kernels/dispatch.py; 0 for the NumPy twin)."""
    if model.backend != "compiled":
        return 0
    held = _STEP_FNS.get((code, model.dtype))
    if held is None:
        from fastgrad.kernels.dispatch import optimizer_address
        held = _STEP_FNS[(code, model.dtype)] = optimizer_address(code, model.dtype)
    return held


_STEP_FNS = {}  # (optimizer code, dtype) -> its compiled update's address, per process


def train_range(model, data, perm, batch_size, first, last, record, lrs, clip, objective=None):
    """Batches ``first .. last - 1`` of ``perm`` through the backend's ``train_epoch`` (one
    compiled call); advances the optimizer's step count by the updates applied and returns
    the kernel's stop index. ``data``/``record``: :mod:`fastgrad.kernels.program` tuples;
    ``objective``: the model's unless given (scikit-learn's per-batch penalty scaling)."""
    opt = model.optimizer
    code, hyper, _ = opt.kernel_spec()
    state = opt._ensure_state([model.params], hyper)[0]
    objective = model._objective() if objective is None else objective
    # BatchNorm1d's running statistics change in each batch's forward, before its loss is known
    # finite: to give them back as they were after the last good batch, keep where the call began
    start = (model.params.copy(), state.copy(), model.state.copy(), opt.step_count) if model.state.size else None
    update = _update(model, code, state, hyper, lrs, clip)
    stop = _train_batches(model, data, objective, update, record, perm, batch_size, first, last)
    if start is not None and stop < last:
        _running_statistics_before(model, data, objective, code, state, hyper, lrs, clip, record, perm, batch_size,
                                   first, stop, start)
    return stop


def _train_batches(model, data, objective, update, record, perm, batch_size, first, last):
    """One compiled ``train_epoch`` call; advances the optimizer's step count by the updates applied."""
    opt = model.optimizer
    work, _ = model._work(batch_size)
    try:
        with blas_phase():
            stop = model._train.train_epoch(model.params, model.grads, model._net(), data, objective, update, work,
                                            record, perm, batch_size, int(first), int(last))
    except BaseException:  # a user's loss or activation raised: keep the updates made before, as PyTorch does
        status = record.status
        if status[2]:
            model.params[...] = work.spare
        opt.step_count += int(status[1])
        raise
    opt.step_count += int(stop - first)
    return int(stop)


def _running_statistics_before(model, data, objective, code, state, hyper, lrs, clip, record, perm, batch_size,
                               first, stop, start):
    """After batch ``stop`` failed: the model's running statistics as they were after batch
    ``stop - 1``, by replaying batches ``first .. stop - 1`` from ``start`` (params, optimizer
    state, running statistics and step count when the call began; the same keys and data, so
    the same bits). Everything else stays as the failure left it (parameters of the last good
    update, the optimizer state of the last update tried, the record of the failure)."""
    opt = model.optimizer
    after = (model.params.copy(), state.copy(), opt.step_count, record.diag.copy(), record.status.copy(),
             record.loss.copy(), record.correct.copy())
    model.params[...], state[...], model.state[...], opt.step_count = start
    if stop > first:
        update = _update(model, code, state, hyper, lrs, clip)
        _train_batches(model, data, objective, update, record, perm, batch_size, first, stop)
    model.params[...], state[...], opt.step_count = after[:3]
    record.diag[...], record.status[...], record.loss[...], record.correct[...] = after[3:]


def _split(model, X, y, validation_data, validation_split, sample_weight=None, class_weight=None):
    """(X, yf, yl, use_labels, weights or None, validation (X_val, y_val, w_val or None) or None)."""
    split = as_scalar(validation_split, "validation_split", low=0.0, high=1.0, high_open=True)
    if validation_data is not None and split:
        raise ValueError("give validation_data or validation_split, not both")
    Xa, yf, yl, use_labels = model._data(X, y)
    w = model._weights(sample_weight, class_weight, yf, yl, use_labels, Xa.shape[0])
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, "
                             f"sample_weight_val), got {type(validation_data).__name__}"
                             + (f" of length {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else ""))
        val = tuple(validation_data) + (None,) * (3 - len(validation_data))
    elif split:
        n_val = int(Xa.shape[0] * split)  # the last rows, before shuffling, as Keras does
        if n_val < 1 or n_val >= Xa.shape[0]:
            raise ValueError(f"validation_split={split} leaves {n_val} validation rows of {Xa.shape[0]}")
        cut = Xa.shape[0] - n_val
        val = (Xa[cut:], np.asarray(y)[cut:], None if w is None else w[cut:])
        Xa, yf = Xa[:cut], (yf if use_labels else yf[:cut])
        yl = yl[:cut] if use_labels else yl
        if w is not None:
            w = w[:cut]
            if not np.any(w > 0):
                raise ValueError("sample_weight (with class_weight) is zero on every training row left by "
                                 f"validation_split={split}")
            if np.all(w == 1):
                w = None
    return Xa, yf, yl, use_labels, w, val


def fit(model, X, y, epochs=1, batch_size=32, validation_data=None, validation_split=0.0, shuffle=True,
        clip_norm=None, callbacks=None, verbose=1, diagnostics=False, sample_weight=None, class_weight=None):
    """Train ``model`` on (X, y) for ``epochs`` epochs of mini-batches of ``batch_size`` rows.

    Each epoch: a permutation from the model's seeded RNG (``shuffle``), then forward,
    loss, backward, penalties, clipping (``clip_norm``: max gradient L2 norm) and the
    optimizer update for every batch in compiled code. Logs per epoch: ``loss`` (mean
    of the batch losses weighted by batch size), ``accuracy`` (classification losses),
    ``val_loss``/``val_accuracy`` with validation data, ``lr``. ``verbose``: 0 silent,
    1 a tqdm bar per epoch on a terminal (stderr) or in Jupyter (tqdm's notebook bar), ending
    with the epoch's loss, metrics and validation figures, else one line per epoch (as Keras
    writes into a log file), 2 one line per epoch.
    ``diagnostics=True`` records per layer and epoch the mean gradient L2 norm, the
    update-to-weight ratio ||dW||/||W|| and the fraction of dead ReLU units in
    ``history.diagnostics``.

    Weights: ``sample_weight`` (n,) (float or int, finite, >= 0, not all zero; converted
    to the model's dtype) and ``class_weight`` (a dict ``{class: weight}``, classes not
    named weigh 1, or ``"balanced"``: ``n_samples / (n_classes * bincount(y))``,
    scikit-learn's formula; only for softmax_cross_entropy with integer labels and
    binary_cross_entropy with one output and 0/1 targets) multiply per row. Each batch's
    loss is then ``sum_i w_i l_i / sum_i w_i``, ``l_i`` row i's loss averaged over its
    outputs -- PyTorch's convention for ``cross_entropy(weight=...)`` -- computed inside
    the fused loss kernel, the weights gathered with the shuffled rows; a batch whose
    weights sum to 0 has loss 0 and gradient 0 (the penalty aside). The logged ``loss``
    is the weighted mean over the epoch; ``accuracy`` stays unweighted.
    ``validation_data=(X_val, y_val, w_val)`` weights ``val_loss`` the same way. All-ones
    weights take the unweighted path: the same trajectory and logs, bit for bit; integer
    weights equal duplicated rows in a full-batch step (to round-off).

    A non-finite loss, gradient or BatchNorm1d running statistic (they are given back as after
    the last good batch), an update that makes a parameter NaN or inf (it is
    undone: the parameters before it are restored), or non-finite parameters before
    training stop it with ``FloatingPointError`` naming the epoch and batch; the model
    keeps its last finite parameters (with a :class:`~fastgrad.callbacks.TerminateOnNaN`
    callback training stops without raising). The optimizer's state (moments) is that
    of the last update tried.
    """
    epochs = as_int(epochs, "epochs", low=1)
    batch_size = as_int(batch_size, "batch_size", low=1)
    verbose = as_int(int(verbose) if isinstance(verbose, bool) else verbose, "verbose", low=0)  # True is 1
    _announce_compile(model, verbose)
    Xa, yf, yl, use_labels, w, val = _split(model, X, y, validation_data, validation_split, sample_weight,
                                            class_weight)
    if val is not None:
        X_val = model._inputs(val[0], "X_val")
        targets = model._targets(val[1], X_val.shape[0], "y_val")
        w_val = None if val[2] is None else model._weights(val[2], None, *targets, X_val.shape[0],
                                                           "validation_data's sample weights")
        val = (X_val, val[1], w_val)
        model._eval_batch(1024, X_val.shape[0], "validation_data")  # before any training, not after an epoch
    batch_size = min(batch_size, Xa.shape[0])
    history = History(len(model._diag_ops()))
    cbs = CallbackList(callbacks, model, history)
    model.stop_training = False
    logged = (["loss"] + (["accuracy"] if model._accuracy(0, 1) is not None else [])
              + [m for m in model.metrics if m != "accuracy"])
    cbs.on_train_begin({"log_names": logged + ([f"val_{k}" for k in logged] if val is not None else []) + ["lr"]})
    from fastgrad.optim import LBFGS
    if isinstance(model.optimizer, LBFGS):
        if clip_norm is not None or diagnostics or cbs.per_step_schedule() is not None:
            raise ValueError("with LBFGS, fit takes no clip_norm, diagnostics or per-step schedule (one "
                             "full-batch L-BFGS step per epoch)")
        model._check_lbfgs_l1_mode()
        compile_for_fit(model, validation=val is not None, announce=verbose >= 1)
        return _fit_lbfgs(model, Xa, yf, yl, use_labels, w, val, epochs, cbs, history, verbose)
    clip = 0.0 if clip_norm is None else as_scalar(clip_norm, "clip_norm", low=0.0, low_open=True)
    compile_for_fit(model, clip, diagnostics, validation=val is not None,  # a cold first fit: in two processes
                    announce=verbose >= 1)
    n = Xa.shape[0]
    n_batches = math.ceil(n / batch_size)
    for epoch in range(model.epochs_done, model.epochs_done + epochs):
        cbs.on_epoch_begin(epoch)
        perm = model.rng.permutation(n) if shuffle else np.arange(n)
        diag = np.zeros((model.program.shape[0], 3))
        bar = _progress_bar(verbose, epoch, n_batches)
        lr = float(model.optimizer.lr)
        per_step = cbs.per_step_schedule()
        chunks, lrs, set_momentum = (20 if bar is not None else 1), None, None
        if per_step is not None:
            first_step = per_step.last_epoch
            try:
                lrs = per_step.rates(n_batches)
                per_step.lr_at(first_step + n_batches)  # the step after the epoch must exist too
            except ValueError as exc:
                raise ValueError(f"epoch {epoch + 1} has {n_batches} batches, steps {first_step} to "
                                 f"{first_step + n_batches - 1} of the per-step schedule: {exc}") from None
            if per_step.momentum_at(per_step.last_epoch) is not None:  # one call per batch: momentum moves
                chunks = n_batches
                set_momentum = functools.partial(_momentum_before_batch, per_step)
        run = run_batches(model, Xa, yf, yl, use_labels, perm, batch_size, clip_norm, diagnostics, diag,
                          progress=bar, n_chunks=chunks, weights=w, lrs=lrs, before_chunk=set_momentum)
        if per_step is not None:
            per_step.advance(run.done)
        if run.failed is not None:
            if bar is not None:
                bar.close()
            message = run.failure(f"epoch {epoch + 1}, batch {run.failed + 1} of {n_batches}")
            if any(isinstance(cb, TerminateOnNaN) for cb in cbs.callbacks):
                print(message, file=sys.stderr)
                model.stop_training = True
                break
            raise FloatingPointError(message)
        logs = {"loss": float(np.add.reduce(run.losses * run.weights) / np.add.reduce(run.weights))}  # np.sum's sums
        accuracy = model._accuracy(int(run.correct.sum()), n)
        if accuracy is not None:
            logs["accuracy"] = accuracy
        logs.update(model._metric_logs(Xa, yf, yl, use_labels))  # end-of-epoch model, evaluation mode
        _validation_and_lr(model, logs, val, lr)
        if bar is not None:  # the epoch's figures on its bar, as Keras's progress bar ends
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
            bar.close()
        if _end_epoch(model, cbs, history, epoch, logs, diag[model._diag_ops()] / n_batches if diagnostics else None,
                      verbose == 2 or (verbose == 1 and bar is None)):
            break
    cbs.on_train_end()
    return history


def _validation_and_lr(model, logs, val, lr):
    """Add the validation figures (``val_*``) and the epoch's rate to ``logs``."""
    if val is not None:
        logs.update({f"val_{k}": v for k, v in model.evaluate(val[0], val[1], sample_weight=val[2]).items()})
    logs["lr"] = lr


def _end_epoch(model, cbs, history, epoch, logs, diag, print_line) -> bool:
    """Count the epoch, record its logs (and per-layer diagnostics), print its line when asked,
    run the callbacks; True when a callback asked training to stop."""
    model.epochs_done = epoch + 1
    history.record(epoch, logs, diag)
    if print_line:
        print(f"epoch {epoch + 1}: {format_logs(logs)}")
    cbs.on_epoch_end(epoch, logs)
    return model.stop_training


def _momentum_before_batch(schedule, first):
    """Set the optimizer's momentum for batch ``first`` of the epoch (a momentum-cycling schedule)."""
    schedule._set_momentum(schedule.last_epoch + first)


def _fit_lbfgs(model, X, yf, yl, use_labels, w, val, epochs, cbs, history, verbose):
    """``fit`` with :class:`~fastgrad.optim.LBFGS`: each epoch is one ``LBFGS.step`` (up to
    ``max_iter`` iterations, PyTorch's semantics) on the whole training set, whose closure is the
    compiled full-batch loss and gradient (the model's mode; weights as in mini-batch fit).
    Logs the loss after the step (penalty included), accuracy and metrics, ``val_*``, ``lr``. An
    epoch that leaves a parameter NaN or inf is undone and raises ``FloatingPointError`` (with
    a TerminateOnNaN callback training stops quietly)."""
    from fastgrad.metrics import compute
    opt = model.optimizer

    def closure():
        loss, grads = model._batch_loss_grad(X, yf, yl, use_labels, w=w)
        model.grads[...] = grads
        return loss

    for epoch in range(model.epochs_done, model.epochs_done + epochs):
        cbs.on_epoch_begin(epoch)
        lr = float(opt.lr)
        before = model.params.copy()
        try:
            opt.step(closure, model.params, model.grads)
        except BaseException:  # a user's loss or activation raised inside the line search
            model.params[...] = before
            raise
        loss = closure()
        if not (np.all(np.isfinite(model.params)) and np.isfinite(loss)):
            model.params[...] = before
            message = (f"the L-BFGS step of epoch {epoch + 1} made the loss or a parameter NaN or inf; the "
                       "parameters before that epoch were restored (lower lr, or line_search_fn='strong_wolfe')")
            if any(isinstance(cb, TerminateOnNaN) for cb in cbs.callbacks):
                print(message, file=sys.stderr)
                break
            raise FloatingPointError(message)
        logs = {"loss": float(loss)}
        names = (["accuracy"] if model._accuracy(0, 1) is not None else []) + \
            [m for m in model.metrics if m != "accuracy"]
        if names:
            logs.update(compute(names, model.predict(X), yf, yl, use_labels, model.loss))
        _validation_and_lr(model, logs, val, lr)
        if _end_epoch(model, cbs, history, epoch, logs, None, verbose in (1, 2)):
            break
    cbs.on_train_end()
    return history


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (whose stderr is not a terminal but shows widgets)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def _progress_bar(verbose, epoch, n_batches):
    """A tqdm bar for the epoch when ``verbose == 1`` on a terminal or in Jupyter (tqdm.auto picks
    the notebook widget there), else None (fit then prints one line per epoch)."""
    if verbose != 1 or not (sys.stderr.isatty() or _in_notebook()):
        return None
    from tqdm.auto import tqdm
    return tqdm(total=n_batches, desc=f"epoch {epoch + 1}", unit="batch", leave=True)


def _announce_compile(model, verbose):
    """Say so before a fit waits on Numba for a user's loss or activation (compiled once per
    process, seconds); the built-in kernels' notice is :func:`compile_for_fit`'s, from the jobs
    of this very model."""
    from fastgrad.kernels import train
    if verbose < 1 or model.backend != "compiled" or model._train is train:
        return
    user = [model._train.custom_loss] + list(model._train.custom_activation or ())  # fastgrad/custom.py
    if not all(any(model.dtype.name in str(sig) for sig in f.signatures) for f in user if f is not None):
        print(f"compiling your loss or activation for fastgrad's {model.dtype.name} training loop, once "
              "per process (seconds)", file=sys.stderr, flush=True)
