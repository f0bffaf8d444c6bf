"""Callbacks for :meth:`Sequential.fit`, with Keras's names and semantics, and the History they fill."""
from __future__ import annotations

import math
import os
import string


from fastgrad._checks import as_int, as_scalar, check_choice


def format_logs(logs) -> str:
    """``"loss=0.1234, accuracy=0.9"``: an epoch's (or an evaluation's) figures on one line."""
    return ", ".join(f"{k}={v:.4g}" for k, v in logs.items())


class History:
    """What ``fit`` returns: ``history.history[name]`` is a list with one value per epoch
    (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``), ``history.epoch`` the
    epoch indices, and with ``diagnostics=True`` ``history.diagnostics[name]`` a list per
    epoch of per-layer values for ``grad_norm``, ``update_ratio`` and ``dead_relu``."""

    DIAGNOSTICS = ("grad_norm", "update_ratio", "dead_relu")

    def __init__(self, n_layers):
        self.history = {}
        self.epoch = []
        self.diagnostics = {name: [] for name in self.DIAGNOSTICS}
        self._n_layers = n_layers

    def record(self, epoch, logs, diag):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if diag is not None:
            for j, name in enumerate(self.DIAGNOSTICS):
                self.diagnostics[name].append(diag[:, j].tolist())

    def plot(self, ax=None):
        """The curves per epoch (loss, metrics, ``val_`` dashed, lr on a second axis); returns the
        matplotlib figure. See :func:`fastgrad.plot.history` (needs ``fastgrad[plot]``)."""
        from fastgrad.plot import history
        return history(self, ax)

    def __repr__(self):
        last = {k: round(v[-1], 5) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


class Callback:
    """Base class: override any of the hooks; ``self.model`` is set by ``fit``."""

    model = None

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


def _monitored(logs, monitor):
    if monitor not in logs:
        raise ValueError(f"monitor {monitor!r} is not among the logged values {sorted(logs)}; "
                         "val_* values need validation data")
    return float(logs[monitor])


class _Improvement:
    """Tracks the best value of a monitored quantity (mode min/max, with a min_delta)."""

    def __init__(self, monitor, mode, min_delta):
        self.monitor = monitor
        check_choice(mode, "mode", ("auto", "min", "max"))
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta = as_scalar(min_delta, "min_delta", low=0.0)
        self.best = math.inf

    def improved(self, value):
        score = self.sign * value
        if score < self.best - self.min_delta:
            self.best = score
            return True
        return False


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs
    (Keras's count: ``patience=1`` stops at the first epoch without improvement);
    with ``restore_best_weights`` the model ends with the parameters (and running statistics) of its best epoch."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False):
        self.patience = as_int(patience, "patience", low=0)
        self.restore_best_weights = bool(restore_best_weights)
        self._tracker = _Improvement(monitor, mode, min_delta)
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self._tracker.best = math.inf
        self.wait = 0
        self.best_params = None
        self.best_epoch = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if self._tracker.improved(_monitored(logs, self._tracker.monitor)):
            self.wait = 0
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_params = self.model.params.copy()
                self.best_state = self.model.state.copy()  # BatchNorm1d's running statistics too
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_params is not None:
            self.model.params[:] = self.best_params
            self.model.state[:] = self.best_state


class ModelCheckpoint(Callback):
    """Save the model to ``path`` after every epoch, or only when ``monitor`` improved.

    ``path`` may hold ``{epoch}`` (1-based) and the names ``fit`` logs, with format specs,
    e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``. The placeholders are checked when
    training begins against the names ``fit`` will log (``val_*`` only with validation
    data): an unknown name raises ``ValueError`` naming it then, not after an epoch.
    Raises ``TypeError`` for a ``path`` that is not a string or path, ``ValueError`` for a
    malformed template.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a string or path, got {type(path).__name__}")
        self.path = os.fspath(path)
        if isinstance(self.path, bytes):
            raise TypeError("path must be a text path, got bytes")
        self._fields = _template_fields(self.path)
        self.save_best_only = bool(save_best_only)
        self._tracker = _Improvement(monitor, mode, 0.0)
        self.saved = []

    def on_train_begin(self, logs=None):
        names = (logs or {}).get("log_names")
        if names is None:
            return
        available = {"epoch", *names}
        for field in self._fields:
            if field not in available:
                raise ValueError(f"ModelCheckpoint path {self.path!r} uses the placeholder {{{field}}}, which fit "
                                 f"does not log in this run (available: {', '.join(sorted(available))}; "
                                 "val_* names need validation data)")
        if self.save_best_only and self._tracker.monitor not in names:
            raise ValueError(f"ModelCheckpoint monitor {self._tracker.monitor!r} is not logged in this run "
                             f"(logged: {', '.join(sorted(names))}; val_* names need validation data)")
        try:
            self.path.format(epoch=1, **{name: 0.5 for name in names})
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} cannot be formatted: {exc}") from None

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only and not self._tracker.improved(_monitored(logs, self._tracker.monitor)):
            return
        path = self.path.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        self.saved.append(path)


def _template_fields(path):
    """The placeholder names of a ``str.format`` template; ``ValueError`` for positional or
    indexed fields (``{}``, ``{0}``, ``{loss[0]}``) and malformed braces."""
    try:
        parsed = list(string.Formatter().parse(path))
    except ValueError as exc:
        raise ValueError(f"path {path!r} is not a valid template: {exc}") from None
    fields = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise ValueError(f"path {path!r} has the placeholder {{{field}}}; placeholders must be names "
                             "such as {epoch} or {val_loss}")
        fields.append(field)
    return tuple(fields)


class LearningRateScheduler(Callback):
    """At the start of each epoch set ``optimizer.lr = schedule(epoch, lr)`` (Keras's form)."""

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError("schedule must be a function (epoch, lr) -> lr")
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        lr = as_scalar(self.schedule(epoch, float(self.model.optimizer.lr)), "schedule(epoch, lr)", low=0.0)
        self.model.optimizer.lr = lr


class TerminateOnNaN(Callback):
    """With this callback a non-finite loss stops training quietly instead of raising
    ``FloatingPointError``; the model keeps the parameters of its last finite update."""


class _ScheduleCallback(Callback):
    """A schedule of :mod:`fastgrad.schedules` stepped once per epoch, as in PyTorch's loop;
    ReduceLROnPlateau is given ``val_loss`` when present, else ``loss``."""

    def __init__(self, schedule):
        self.schedule = schedule

    def on_epoch_end(self, epoch, logs=None):
        from fastgrad.schedules import ReduceLROnPlateau
        if isinstance(self.schedule, ReduceLROnPlateau):
            self.schedule.step(logs.get("val_loss", logs["loss"]))
        elif self.schedule.interval == "epoch":  # a per-step schedule is advanced by fit's batches
            self.schedule.step()


class CallbackList:
    """Calls each hook on every callback in order; accepts schedules directly."""

    def __init__(self, callbacks, model, history):
        from fastgrad.schedules import ReduceLROnPlateau, _Schedule
        self.callbacks = []
        if isinstance(callbacks, (Callback, _Schedule, ReduceLROnPlateau)):  # one alone, as Keras takes it
            callbacks = [callbacks]
        elif callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be a list of fastgrad.callbacks.Callback objects or schedules, got "
                            f"{type(callbacks).__name__}")
        for cb in callbacks or []:
            if isinstance(cb, (_Schedule, ReduceLROnPlateau)):
                if cb.optimizer is not model.optimizer:
                    raise ValueError("a schedule passed to fit must be built on the model's optimizer")
                cb = _ScheduleCallback(cb)
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastgrad.callbacks.Callback objects or schedules, got "
                                f"{type(cb).__name__}")
            cb.model = model
            self.callbacks.append(cb)
        self.history = history
        per_step = [cb.schedule for cb in self.callbacks if isinstance(cb, _ScheduleCallback)
                    and getattr(cb.schedule, "interval", "epoch") == "step"]
        if len(per_step) > 1:
            raise ValueError("fit takes at most one schedule with interval='step' (each would set the rate of "
                             "every batch)")
        others = [type(getattr(cb, "schedule", cb)).__name__ for cb in self.callbacks
                  if isinstance(cb, LearningRateScheduler) or (isinstance(cb, _ScheduleCallback)
                                                                and cb.schedule not in per_step)]
        if per_step and others:
            raise ValueError(f"a schedule with interval='step' sets the rate of every batch; {others[0]} would "
                             "set it too (once per epoch, then overwritten): use one of them")
        self._per_step = per_step[0] if per_step else None

    def per_step_schedule(self):
        """The schedule stepped per optimizer step (``interval="step"``), or None."""
        return self._per_step

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(dict(logs or {}))

    def on_epoch_begin(self, epoch):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, {})

    def on_epoch_end(self, epoch, logs):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self):
        for cb in self.callbacks:
            cb.on_train_end({})
