"""Learning-rate schedules: PyTorch's ``lr_scheduler`` semantics on fastgrad optimizers.

A schedule changes ``optimizer.lr``; the optimizer's kernel reads it at every step.
As in PyTorch, constructing a schedule counts as its step 0 (``last_epoch = 0``,
``lr = base_lr``, the optimizer's lr at construction), and each ``step()`` advances
``last_epoch`` by one and sets ``lr``. ``get_last_lr()`` returns ``[lr]``, a list as in
PyTorch (fastgrad optimizers have one parameter group).

The step-indexed schedules are closed forms of ``last_epoch`` (:meth:`lr_at`), which
PyTorch's chainable forms equal up to round-off; a model's compiled epoch loop can
thus take a whole epoch of per-batch rates at once, ``[s.lr_at(t) for t in ...]``.
Unlike PyTorch's chainable form, an lr set by hand is overwritten at the next step.

``interval``: passed to ``fit(callbacks=[schedule])``, a schedule steps once per epoch
(``"epoch"``, PyTorch's usual loop) or once per optimizer step (``"step"``, PyTorch's
per-iteration use: ``scheduler.step()`` after every ``optimizer.step()``). Per step, batch j
of an epoch uses ``lr_at(last_epoch + j)``: the rates go to the compiled epoch loop as one
array, and ``last_epoch`` advances by the batches applied. :class:`OneCycleLR` steps per
optimizer step by default.
"""
from __future__ import annotations

import math

from fastgrad._checks import as_int, as_scalar, check_choice
from fastgrad.optim._validate import flag

__all__ = ("StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmupCosine", "OneCycleLR", "ReduceLROnPlateau")

INTERVALS = ("epoch", "step")


def _check_optimizer(optimizer):
    if not hasattr(optimizer, "lr"):
        raise TypeError(f"optimizer must have an lr attribute (a fastgrad optimizer), "
                        f"got {type(optimizer).__name__}")
    return optimizer


class _Schedule:
    """Base: ``base_lr``, ``last_epoch``, ``interval``, ``step()``, ``get_last_lr()``, ``state_dict()``."""

    def __init__(self, optimizer, interval="epoch"):
        self.optimizer = _check_optimizer(optimizer)
        self.interval = check_choice(interval, "interval", INTERVALS)
        if not hasattr(self, "base_lr"):
            self.base_lr = float(optimizer.lr)
        self.last_epoch = -1
        self.step()

    def lr_at(self, t: int) -> float:
        """The learning rate at step ``t`` (``t = 0`` is construction)."""
        raise NotImplementedError

    def momentum_at(self, t: int):
        """The momentum (SGD, RMSprop) or beta1 (Adam, AdamW) at step ``t``; None: left alone."""
        return None

    def step(self) -> None:
        """Advance one step and set ``optimizer.lr`` (and the momentum of a cycling schedule)."""
        self.advance(1)

    def advance(self, n: int) -> None:
        """Advance ``n`` steps at once (what ``fit`` does after an epoch of per-step rates)."""
        self.last_epoch += int(n)
        self._set_momentum(self.last_epoch)
        self.optimizer.lr = self.lr_at(self.last_epoch)
        self._last_lr = [self.optimizer.lr]

    def rates(self, n: int):
        """The learning rates of the next ``n`` optimizer steps, float64 (n,):
        ``lr_at(last_epoch + j)``, ``j = 0 .. n - 1``; the compiled epoch loop takes them."""
        import numpy as np
        return np.array([self.lr_at(self.last_epoch + j) for j in range(int(n))], dtype=np.float64)

    def _set_momentum(self, t):
        momentum = self.momentum_at(t)
        if momentum is None:
            return
        if hasattr(self.optimizer, "betas"):
            self.optimizer.betas = (momentum, self.optimizer.betas[1])
        else:
            self.optimizer.momentum = momentum

    def get_last_lr(self) -> list:
        """``[lr]`` as set by the last step (PyTorch returns one entry per parameter group)."""
        return self._last_lr

    def state_dict(self) -> dict:
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``base_lr`` and ``last_epoch`` and set the optimizer's lr to match."""
        self.base_lr = as_scalar(state_dict["base_lr"], "base_lr", low=0.0)
        self.last_epoch = as_int(state_dict["last_epoch"], "last_epoch", low=0)
        self.optimizer.lr = self.lr_at(self.last_epoch)
        self._last_lr = [self.optimizer.lr]


class StepLR(_Schedule):
    """``lr = base_lr * gamma ** (t // step_size)``. ``ValueError`` for step_size < 1, gamma <= 0."""

    def __init__(self, optimizer, step_size, gamma=0.1, interval="epoch"):
        self.step_size = as_int(step_size, "step_size", low=1)
        self.gamma = as_scalar(gamma, "gamma", low=0.0, low_open=True)
        super().__init__(optimizer, interval)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(_Schedule):
    """``lr = base_lr * gamma ** t``. ``ValueError`` for gamma <= 0."""

    def __init__(self, optimizer, gamma, interval="epoch"):
        self.gamma = as_scalar(gamma, "gamma", low=0.0, low_open=True)
        super().__init__(optimizer, interval)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** t


class CosineAnnealingLR(_Schedule):
    """``lr = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2`` (periodic past T_max, as
    in PyTorch). ``ValueError`` for T_max < 1, eta_min < 0.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, interval="epoch"):
        self.T_max = as_int(T_max, "T_max", low=1)
        self.eta_min = as_scalar(eta_min, "eta_min", low=0.0)
        super().__init__(optimizer, interval)

    def lr_at(self, t):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearWarmupCosine(_Schedule):
    """Linear warm-up then cosine decay to ``min_lr``.

    ``lr = base_lr t / warmup_steps`` for ``t < warmup_steps``; then
    ``min_lr + (base_lr - min_lr) (1 + cos(pi (t - warmup_steps) / (total_steps - warmup_steps))) / 2``
    up to ``total_steps``; ``min_lr`` after. ``ValueError`` unless
    ``0 <= warmup_steps < total_steps`` and ``min_lr >= 0``.
    """

    def __init__(self, optimizer, warmup_steps, total_steps, min_lr=0.0, interval="epoch"):
        self.warmup_steps = as_int(warmup_steps, "warmup_steps", low=0)
        self.total_steps = as_int(total_steps, "total_steps", low=self.warmup_steps + 1)
        self.min_lr = as_scalar(min_lr, "min_lr", low=0.0)
        super().__init__(optimizer, interval)

    def lr_at(self, t):
        if t < self.warmup_steps:
            return self.base_lr * t / self.warmup_steps
        if t > self.total_steps:
            return self.min_lr
        frac = (t - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * frac)) / 2


def _anneal(start, end, pct, strategy):
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


class OneCycleLR(_Schedule):
    """The 1cycle policy (Smith and Topin, "Super-Convergence", 2017), as ``torch.optim.lr_scheduler.OneCycleLR``
    with its defaults: the rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps``, then falls to ``max_lr / div_factor / final_div_factor``
    (``three_phase``: back to the initial rate first, then down); ``anneal_strategy`` "cos" or
    "linear". With ``cycle_momentum``, the momentum (SGD, RMSprop) or beta1 (Adam, AdamW) moves
    the opposite way between ``max_momentum`` and ``base_momentum``. ``total_steps``, or
    ``epochs`` and ``steps_per_epoch`` (their product). Steps per optimizer step
    (``interval="step"``) by default; stepping past ``total_steps`` raises ``ValueError``, as
    PyTorch. ``ValueError`` for bad values, an optimizer without momentum when cycling it.
    One difference: at step ``total_steps`` itself (after the last batch; no batch trains at it)
    the rate is the final one, where PyTorch extrapolates past the last phase (with linear
    annealing, to a negative rate).
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, interval="step"):
        _check_optimizer(optimizer)
        if total_steps is not None:
            self.total_steps = as_int(total_steps, "total_steps", low=1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = as_int(epochs, "epochs", low=1) * as_int(steps_per_epoch, "steps_per_epoch", low=1)
        else:
            raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
        self.max_lr = as_scalar(max_lr, "max_lr", low=0.0)
        self.pct_start = as_scalar(pct_start, "pct_start", low=0.0, high=1.0, low_open=True)
        self.anneal_strategy = check_choice(anneal_strategy, "anneal_strategy", ("cos", "linear"))
        self.div_factor = as_scalar(div_factor, "div_factor", low=0.0, low_open=True)
        self.final_div_factor = as_scalar(final_div_factor, "final_div_factor", low=0.0, low_open=True)
        self.cycle_momentum = flag(cycle_momentum, "cycle_momentum")
        self.base_momentum = as_scalar(base_momentum, "base_momentum", low=0.0, high=1.0)
        self.max_momentum = as_scalar(max_momentum, "max_momentum", low=0.0, high=1.0)
        if self.cycle_momentum and not (hasattr(optimizer, "betas") or hasattr(optimizer, "momentum")):
            raise ValueError(f"cycle_momentum=True needs an optimizer with momentum or betas, got "
                             f"{type(optimizer).__name__}; pass cycle_momentum=False")
        if self.cycle_momentum and not hasattr(optimizer, "betas") and optimizer.momentum == 0:
            # fastgrad's SGD/RMSprop lay out their state by whether momentum is 0; PyTorch would
            # start a momentum buffer mid-run, a different update.
            raise ValueError(f"cycle_momentum=True needs {type(optimizer).__name__}(momentum > 0) (its momentum "
                             "buffer exists from the first step), or pass cycle_momentum=False")
        self.initial_lr = self.max_lr / self.div_factor
        self.min_lr = self.initial_lr / self.final_div_factor
        self.base_lr = self.initial_lr
        up = float(self.pct_start * self.total_steps) - 1
        if flag(three_phase, "three_phase"):
            self.phases = ((up, self.initial_lr, self.max_lr, self.max_momentum, self.base_momentum),
                           (float(2 * self.pct_start * self.total_steps) - 2, self.max_lr, self.initial_lr,
                            self.base_momentum, self.max_momentum),
                           (self.total_steps - 1, self.initial_lr, self.min_lr, self.max_momentum, self.max_momentum))
        else:
            self.phases = ((up, self.initial_lr, self.max_lr, self.max_momentum, self.base_momentum),
                           (self.total_steps - 1, self.max_lr, self.min_lr, self.base_momentum, self.max_momentum))
        super().__init__(optimizer, interval)

    def _at(self, t, which):
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR has no step {t}: its total_steps is {self.total_steps} (as PyTorch, it "
                             "cannot step past them; give total_steps = epochs * batches per epoch)")
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
            if t <= end or i == len(self.phases) - 1:
                pct = min((t - start) / (end - start), 1.0)
                return _anneal(*((lr0, lr1) if which == "lr" else (m0, m1)), pct, self.anneal_strategy)
            start = end
        raise AssertionError("unreachable")

    def lr_at(self, t):
        return self._at(t, "lr")

    def momentum_at(self, t):
        return self._at(t, "momentum") if self.cycle_momentum else None


class ReduceLROnPlateau:
    """Multiply lr by ``factor`` when a metric has stopped improving for more than ``patience`` steps.

    ``step(metric)``: improvement means ``metric < best - |best| threshold`` (mode "min",
    threshold_mode "rel"), ``< best - threshold`` ("abs"), ``> best + |best| threshold`` /
    ``> best + threshold`` in mode "max". After ``patience`` + 1 bad steps in a row,
    ``lr = max(lr factor, min_lr)`` -- applied only if it lowers lr by more than ``eps`` --
    then ``cooldown`` steps during which bad steps are not counted. As PyTorch's, except
    that the relative threshold uses ``|best|``: PyTorch's ``best (1 - threshold)`` lies
    *above* a negative best, so a constant negative metric counts as an improvement at
    every step and the rate is never lowered (see docs/optim.md).
    ``ValueError`` for factor outside [0, 1), negative patience/cooldown/threshold/min_lr/eps,
    or an unknown mode.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0.0, eps=1e-8):
        self.optimizer = _check_optimizer(optimizer)
        self.mode = check_choice(mode, "mode", ("min", "max"))
        self.threshold_mode = check_choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.factor = as_scalar(factor, "factor", low=0.0, high=1.0, high_open=True)
        self.patience = as_int(patience, "patience", low=0)
        self.threshold = as_scalar(threshold, "threshold", low=0.0)
        self.cooldown = as_int(cooldown, "cooldown", low=0)
        self.min_lr = as_scalar(min_lr, "min_lr", low=0.0)
        self.eps = as_scalar(eps, "eps", low=0.0)
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = [self.optimizer.lr]

    def is_better(self, a: float, best: float) -> bool:
        """Whether metric ``a`` improves on ``best`` under the mode and threshold."""
        if self.threshold_mode == "rel":
            # |best| so that the margin points the right way for negative metrics; an
            # infinite best (the start) keeps its own value (inf - inf would be NaN).
            margin = abs(best) * self.threshold if math.isfinite(best) else 0.0
        else:
            margin = self.threshold
        if self.mode == "min":
            return a < best - margin
        return a > best + margin

    def step(self, metric) -> None:
        """Record ``metric`` for one step (usually an epoch) and lower lr on a plateau."""
        current = float(metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old_lr = float(self.optimizer.lr)
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [self.optimizer.lr]

    def get_last_lr(self) -> list:
        """``[lr]`` after the last step."""
        return self._last_lr

    _STATE = ("last_epoch", "best", "num_bad_epochs", "cooldown_counter")

    def state_dict(self) -> dict:
        return {name: getattr(self, name) for name in self._STATE}

    def load_state_dict(self, state_dict: dict) -> None:
        for name in self._STATE:
            setattr(self, name, state_dict[name])
