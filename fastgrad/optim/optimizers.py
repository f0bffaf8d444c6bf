"""The optimizer classes: PyTorch's names, defaults and update equations on flat buffers.

Every class validates its hyperparameters whenever they are set (each is a
:class:`~fastgrad.optim._validate.Hyperparameter`), builds the ``hyper`` vector of
:mod:`fastgrad.kernels.optim` and calls the one fused kernel ``optimizer_step``.
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import _describe, as_float_array, check_in_dtype, check_same_shape
from fastgrad.kernels import optim as K
from fastgrad.kernels.grad_utils import count_nonfinite
from fastgrad.optim._validate import (Hyperparameter, beta_pair, check_no_aliasing,
                                      check_state_dict, count, flag, nonnegative, positive, unit_interval)


def _layout(arrays):
    """What can change on an existing array object: shape, dtype, strides, writeability."""
    return [(a.shape, a.dtype, a.strides, a.flags.writeable) for a in arrays]


def _names(base, n, listed):
    return [f"{base}[{i}]" for i in range(n)] if listed else [base]


def _as_param_list(params):
    """``params`` as a list of writeable C-contiguous float arrays (a flat buffer is a list of one)."""
    listed = isinstance(params, (list, tuple))
    items = list(params) if listed else [params]
    if not items:
        raise ValueError("params must not be an empty list")
    for p, name in zip(items, _names("params", len(items), listed)):
        if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
            got = f"dtype {p.dtype}" if isinstance(p, np.ndarray) else type(p).__name__
            raise ValueError(f"{name} must be a float32 or float64 numpy array, got {got}")
        if not p.flags.writeable:
            raise ValueError(f"{name} must be writeable (it is updated in place), got a read-only array")
        if not p.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (it is updated in place), got strides {p.strides}")
        if p.size == 0:
            raise ValueError(f"{name} must not be empty")
    return items


def _as_grad_list(grads, params_list, listed):
    items = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    if len(items) != len(params_list) or isinstance(grads, (list, tuple)) != listed:
        raise ValueError(f"grads must match params: {len(params_list)} "
                         f"{'arrays in a list' if listed else 'array'}, got {len(items)}")
    out = []
    for p, g, p_name, name in zip(params_list, items, _names("params", len(items), listed),
                                  _names("grads", len(items), listed)):
        g = as_float_array(g, name, dtype=p.dtype)
        check_same_shape(p, g, p_name, name)
        out.append(g)
    return out


class Optimizer:
    """Base class: state, the step count, ``state_dict`` and the kernel protocol.

    Subclasses set ``_code``, declare their hyperparameters as :class:`Hyperparameter`
    attributes and implement ``_fill_hyper(h)`` and ``hyperparameters()``; they may extend
    ``_check_consistency()`` (relations between attributes) and ``_dtype_quantities()``.
    """

    _code: int

    lr = Hyperparameter(nonnegative)  # schedules set it; the kernel reads it every step
    weight_decay = Hyperparameter(nonnegative)
    maximize = Hyperparameter(flag)
    skip_nonfinite = Hyperparameter(flag)

    def __init__(self, lr, weight_decay, maximize, skip_nonfinite):
        self.lr = lr
        self.weight_decay = weight_decay
        self.maximize = maximize
        self.skip_nonfinite = skip_nonfinite
        self.step_count = 0
        self.n_skipped = 0
        self.state = None
        self._hyper = np.zeros(K.N_HYPER)

    @property
    def step_count(self) -> int:
        """Updates made so far (int >= 0); the next update is step ``step_count + 1``."""
        return self._step_count

    @step_count.setter
    def step_count(self, value):
        self._step_count = count(value, "step_count")

    @property
    def n_skipped(self) -> int:
        """Steps skipped for a non-finite gradient (``skip_nonfinite=True``)."""
        return self._n_skipped

    @n_skipped.setter
    def n_skipped(self, value):
        self._n_skipped = count(value, "n_skipped")

    def _check_consistency(self) -> None:
        """Relations between hyperparameters; runs after every assignment (``ValueError``)."""

    def _dtype_quantities(self) -> list:
        """``(label, value, must_be_positive)`` for every scalar the kernel rounds to the params' dtype."""
        return [("lr", self.lr, False), ("weight_decay", self.weight_decay, False)]

    def hyperparameters(self) -> dict:
        """The constructor's keyword arguments, as now set."""
        raise NotImplementedError

    def _fill_hyper(self, h):
        raise NotImplementedError

    def _hyper_vector(self) -> np.ndarray:
        """The kernel's ``hyper`` vector (float64, ``N_HYPER``), refilled in place: no allocation."""
        h = self._hyper
        h[:] = 0.0
        h[K.LR] = self.lr
        h[K.WEIGHT_DECAY] = self.weight_decay
        h[K.MAXIMIZE] = float(self.maximize)
        self._fill_hyper(h)
        return h

    def kernel_spec(self):
        """``(code, hyper, n_slots)``: what compiled code needs to run this optimizer's update
        (``hyper`` is a fresh copy: the caller may write the rate into it)."""
        cached = self.__dict__.get("_spec")
        if cached is None or cached[0] != self._hp_version:
            h = self._hyper_vector().copy()
            cached = self._spec = (self._hp_version, h, K.n_state_slots(self._code, h))
        return self._code, cached[1].copy(), cached[2]

    @property
    def slot_names(self) -> tuple:
        """Names of the rows of each state array, in order."""
        return K.state_slot_names(self._code, self._hyper_vector())

    def _ensure_state(self, params_list, hyper):
        """The state arrays for ``params_list``: allocated on the first step, checked after.

        Also checks that the hyperparameters are representable in the params' dtype
        (``ValueError``), since compiled loops call this before running the kernel. A call
        with the same params and state arrays (the same objects, shapes, dtypes and flags)
        and no hyperparameter set since the last call that passed skips the checks: they
        cost more than a small model's compiled step.
        """
        if self._verified_for(params_list):
            return self.state
        quantities = self._dtype_quantities()
        for dtype in {p.dtype for p in params_list}:
            check_in_dtype(quantities, dtype)
        if self.state is None:
            self.state = [K.new_state(self._code, hyper, p.size, p.dtype) for p in params_list]
            return self.state
        n_slots = K.n_state_slots(self._code, hyper)
        if not isinstance(self.state, list) or len(self.state) != len(params_list):
            raise ValueError(f"params has {len(params_list)} arrays but the optimizer state holds "
                             f"{_describe(self.state)}; call reset() to start afresh")
        for i, (p, s) in enumerate(zip(params_list, self.state)):
            if (not isinstance(s, np.ndarray) or s.shape != (n_slots, p.size) or s.dtype != p.dtype
                    or not s.flags.c_contiguous or not s.flags.writeable):
                raise ValueError(f"params[{i}] (size {p.size}, {p.dtype}) does not match its saved state "
                                 f"({_describe(s)}; these settings need a writeable C-contiguous "
                                 f"({n_slots}, {p.size}) array of {p.dtype}); call reset() to start afresh")
        check_no_aliasing(params_list + self.state, [],
                          [f"params[{i}]" for i in range(len(params_list))]
                          + [f"state[{i}]" for i in range(len(self.state))], [])
        self._verified = (self._hp_version, self.state, tuple(params_list), tuple(self.state),
                          _layout(params_list + self.state))
        return self.state

    def _verified_for(self, params_list) -> bool:
        """Whether :meth:`_ensure_state` already passed for exactly these arrays and settings."""
        v = self.__dict__.get("_verified")
        return (v is not None and v[0] == self._hp_version and v[1] is self.state
                and isinstance(self.state, list) and len(params_list) == len(v[2])
                and len(self.state) == len(v[3])
                and all(a is b for a, b in zip(params_list, v[2]))
                and all(a is b for a, b in zip(self.state, v[3]))
                and _layout(params_list + self.state) == v[4])

    def step(self, params, grads) -> None:
        """Update ``params`` in place from ``grads``; returns None.

        ``params``: a 1-D float32/float64 array (a flat buffer) or a list of arrays;
        ``grads``: the same structure and shapes (cast to the params' dtype). With
        ``skip_nonfinite=True`` a step whose gradient holds NaN/inf changes nothing (and
        counts in ``n_skipped``). Raises ``ValueError`` on mismatched, read-only or
        overlapping arrays (a params array sharing memory with another or with a gradient),
        and on hyperparameters that overflow the params' dtype (``Adam(lr=1e39)`` on float32).
        """
        listed = isinstance(params, (list, tuple))
        params_list = _as_param_list(params)
        grads_list = _as_grad_list(grads, params_list, listed)
        check_no_aliasing(params_list, grads_list, _names("params", len(params_list), listed),
                          _names("grads", len(params_list), listed))
        if self.skip_nonfinite and any(count_nonfinite(g.reshape(-1)) for g in grads_list):
            self.n_skipped += 1
            return
        hyper = self._hyper_vector()
        state = self._ensure_state(params_list, hyper)
        t = self.step_count + 1
        for p, g, s in zip(params_list, grads_list, state):
            K.optimizer_step(self._code, p.reshape(-1), g.reshape(-1), s, hyper, t)
        self.step_count = t

    def reset(self) -> None:
        """Forget the state and the step count (the next step is a first step)."""
        self.state = None
        self.step_count = 0
        self.n_skipped = 0

    def state_dict(self) -> dict:
        """A copy of everything needed to resume: step count, state arrays, hyperparameters."""
        return {"step": self.step_count, "n_skipped": self.n_skipped,
                "slots": self.slot_names, "hyperparameters": self.hyperparameters(),
                "state": None if self.state is None else [s.copy() for s in self.state]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned (arrays are copied).

        Everything is checked before anything changes: ``TypeError``/``ValueError`` naming the
        bad key for a malformed structure, unknown or invalid hyperparameters, a negative step,
        or state arrays of the wrong type, dtype or shape (rows = the slots these settings need).
        """
        checked, step, n_skipped, state = check_state_dict(state_dict, type(self))
        for name in checked.hyperparameters():
            setattr(self, name, getattr(checked, name))
        self.state = state
        self.step_count = step
        self.n_skipped = n_skipped

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening and Nesterov momentum.

    ``g = grad + wd p`` (``-grad`` if maximize); with momentum ``mu``:
    ``b = g`` on the first step, then ``b = mu b + (1 - dampening) g``;
    ``d = g + mu b`` (nesterov) or ``b``; ``p = p - lr d``.
    State: ``momentum_buffer`` when momentum != 0.
    Raises (at construction and on every assignment) ``ValueError`` for lr, momentum,
    weight_decay < 0 or not finite, dampening outside [0, 1], or ``nesterov`` without momentum
    or with dampening; ``TypeError`` for flags that are not booleans.
    """

    _code = K.SGD
    momentum = Hyperparameter(nonnegative)
    dampening = Hyperparameter(unit_interval)
    nesterov = Hyperparameter(flag)

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                 maximize=False, *, skip_nonfinite=False):
        super().__init__(lr, weight_decay, maximize, skip_nonfinite)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov

    def _check_consistency(self):
        h = self.__dict__
        if h.get("_hp_nesterov") and (h.get("_hp_momentum", 1.0) <= 0 or h.get("_hp_dampening", 0.0) != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={h.get('_hp_momentum')}, dampening={h.get('_hp_dampening')} "
                             "(set nesterov=False first to change them)")

    def _dtype_quantities(self):
        return super()._dtype_quantities() + [("momentum", self.momentum, False)]

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay, "maximize": self.maximize}

    def _fill_hyper(self, h):
        h[K.MOMENTUM] = self.momentum
        h[K.DAMPENING] = self.dampening
        h[K.NESTEROV] = float(self.nesterov)


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum.

    ``v = alpha v + (1 - alpha) g^2``; centered: ``ga = ga + (1 - alpha)(g - ga)``,
    ``avg = sqrt(v - ga^2) + eps``, else ``avg = sqrt(v) + eps``; with momentum
    ``b = mu b + g / avg``, ``p = p - lr b``, else ``p = p - lr g / avg``.
    State: ``square_avg``, ``grad_avg`` (centered), ``momentum_buffer`` (momentum > 0).
    Raises (at construction and on every assignment) ``ValueError`` for lr, momentum,
    weight_decay < 0, eps <= 0, alpha outside [0, 1]; ``TypeError`` for non-boolean flags.
    """

    _code = K.RMSPROP
    alpha = Hyperparameter(unit_interval)
    eps = Hyperparameter(positive)
    momentum = Hyperparameter(nonnegative)
    centered = Hyperparameter(flag)

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 maximize=False, *, skip_nonfinite=False):
        super().__init__(lr, weight_decay, maximize, skip_nonfinite)
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        self.centered = centered

    def _dtype_quantities(self):
        return super()._dtype_quantities() + [("eps", self.eps, True), ("momentum", self.momentum, False)]

    def hyperparameters(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered, "maximize": self.maximize}

    def _fill_hyper(self, h):
        h[K.EPS] = self.eps
        h[K.ALPHA] = self.alpha
        h[K.MOMENTUM] = self.momentum
        h[K.CENTERED] = float(self.centered)


class Adagrad(Optimizer):
    """Adagrad: ``clr = lr / (1 + (t - 1) lr_decay)``, ``s = s + g^2``, ``p = p - clr g / (sqrt(s) + eps)``.

    State: ``sum``, starting at ``initial_accumulator_value``.
    Raises (at construction and on every assignment) ``ValueError`` for lr, lr_decay,
    weight_decay, initial_accumulator_value < 0, eps <= 0; ``TypeError`` for a non-boolean maximize.
    """

    _code = K.ADAGRAD
    lr_decay = Hyperparameter(nonnegative)
    initial_accumulator_value = Hyperparameter(nonnegative)
    eps = Hyperparameter(positive)

    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 maximize=False, *, skip_nonfinite=False):
        super().__init__(lr, weight_decay, maximize, skip_nonfinite)
        self.lr_decay = lr_decay
        self.initial_accumulator_value = initial_accumulator_value
        self.eps = eps

    def _dtype_quantities(self):
        return super()._dtype_quantities() + [("eps", self.eps, True),
                                              ("initial_accumulator_value", self.initial_accumulator_value, False)]

    def hyperparameters(self):
        return {"lr": self.lr, "lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps,
                "maximize": self.maximize}

    def _fill_hyper(self, h):
        h[K.EPS] = self.eps
        h[K.LR_DECAY] = self.lr_decay
        h[K.INITIAL_ACCUMULATOR_VALUE] = self.initial_accumulator_value


class Adam(Optimizer):
    """Adam (optionally AMSGrad), with L2 weight decay added to the gradient.

    ``g = grad + wd p``; ``m = m + (1 - beta1)(g - m)``; ``v = beta2 v + (1 - beta2) g^2``;
    amsgrad: ``vmax = max(vmax, v)``; ``p = p - lr / (1 - beta1^t) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps)``.
    State: ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).
    Raises (at construction and on every assignment) ``ValueError`` for lr, weight_decay < 0,
    betas outside [0, 1), eps <= 0; ``TypeError`` for non-boolean flags. At a step,
    ``ValueError`` if ``lr / (1 - beta1)`` overflows the params' dtype.
    """

    _code = K.ADAM
    betas = Hyperparameter(beta_pair)
    eps = Hyperparameter(positive)
    amsgrad = Hyperparameter(flag)

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
                 *, skip_nonfinite=False):
        super().__init__(lr, weight_decay, maximize, skip_nonfinite)
        self.betas = betas
        self.eps = eps
        self.amsgrad = amsgrad

    def _dtype_quantities(self):
        # The largest step size is the first, lr / (1 - beta1^1).
        return super()._dtype_quantities() + [
            ("eps", self.eps, True),
            ("lr / (1 - betas[0]) (the first step size)", self.lr / (1.0 - self.betas[0]), False)]

    def hyperparameters(self):
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay,
                "amsgrad": self.amsgrad, "maximize": self.maximize}

    def _fill_hyper(self, h):
        h[K.EPS] = self.eps
        h[K.BETA1], h[K.BETA2] = self.betas
        h[K.AMSGRAD] = float(self.amsgrad)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, ``p = p (1 - lr wd)`` before the Adam update
    (the gradient gets no L2 term). Same state and errors as :class:`Adam`.
    """

    _code = K.ADAMW

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False, *, skip_nonfinite=False):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, maximize, skip_nonfinite=skip_nonfinite)

    def _dtype_quantities(self):
        return super()._dtype_quantities() + [("lr * weight_decay", self.lr * self.weight_decay, False)]
