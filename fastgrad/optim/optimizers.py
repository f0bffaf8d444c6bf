"""The optimizer classes: PyTorch's names, defaults and update equations on flat buffers.

Every class validates its hyperparameters, builds the ``hyper`` vector of
:mod:`fastgrad.kernels.optim` and calls the one fused kernel ``optimizer_step``.
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_float_array, as_int, as_scalar, check_same_shape
from fastgrad.kernels import optim as K
from fastgrad.kernels.grad_utils import count_nonfinite


def _as_param_list(params):
    """``params`` as a list of writeable C-contiguous float arrays (a flat buffer is a list of one)."""
    items = list(params) if isinstance(params, (list, tuple)) else [params]
    if not items:
        raise ValueError("params must not be an empty list")
    for i, p in enumerate(items):
        name = "params" if len(items) == 1 and not isinstance(params, (list, tuple)) else f"params[{i}]"
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
    for i, (p, g) in enumerate(zip(params_list, items)):
        name = f"grads[{i}]" if listed else "grads"
        g = as_float_array(g, name, dtype=p.dtype)
        check_same_shape(p, g, "params" if not listed else f"params[{i}]", name)
        out.append(g)
    return out


class Optimizer:
    """Base class: state, the step count, ``state_dict`` and the kernel protocol.

    Subclasses set ``_code`` and implement ``_fill_hyper(h)`` and ``hyperparameters()``.
    """

    _code: int

    def __init__(self, lr, weight_decay, maximize, skip_nonfinite):
        self.lr = lr
        self.weight_decay = as_scalar(weight_decay, "weight_decay", low=0.0)
        self.maximize = bool(maximize)
        self.skip_nonfinite = bool(skip_nonfinite)
        self.step_count = 0
        self.n_skipped = 0
        self.state = None
        self._hyper = np.zeros(K.N_HYPER)

    @property
    def lr(self) -> float:
        """The learning rate (>= 0); schedules set it, the kernel reads it every step."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = as_scalar(value, "lr", low=0.0)

    def hyperparameters(self) -> dict:
        """The constructor's keyword arguments, as now set."""
        raise NotImplementedError

    def _fill_hyper(self, h):
        raise NotImplementedError

    def _hyper_vector(self) -> np.ndarray:
        """The kernel's ``hyper`` vector (float64, ``N_HYPER``), refilled in place: no allocation."""
        h = self._hyper
        h[:] = 0.0
        h[K.LR] = self._lr
        h[K.WEIGHT_DECAY] = self.weight_decay
        h[K.MAXIMIZE] = float(self.maximize)
        self._fill_hyper(h)
        return h

    def kernel_spec(self):
        """``(code, hyper, n_slots)``: what compiled code needs to run this optimizer's update."""
        h = self._hyper_vector().copy()
        return self._code, h, K.n_state_slots(self._code, h)

    @property
    def slot_names(self) -> tuple:
        """Names of the rows of each state array, in order."""
        return K.state_slot_names(self._code, self._hyper_vector())

    def _ensure_state(self, params_list, hyper):
        """The state arrays for ``params_list``: allocated on the first step, checked after."""
        if self.state is None:
            self.state = [K.new_state(self._code, hyper, p.size, p.dtype) for p in params_list]
            return self.state
        n_slots = K.n_state_slots(self._code, hyper)
        if len(self.state) != len(params_list):
            raise ValueError(f"params has {len(params_list)} arrays but the optimizer state was "
                             f"made for {len(self.state)}; call reset() to start afresh")
        for i, (p, s) in enumerate(zip(params_list, self.state)):
            if s.shape != (n_slots, p.size) or s.dtype != p.dtype:
                raise ValueError(f"params[{i}] (size {p.size}, {p.dtype}) does not match its saved state "
                                 f"(shape {s.shape}, {s.dtype}; these settings need {n_slots} slots); "
                                 "call reset() to start afresh")
        return self.state

    def step(self, params, grads) -> None:
        """Update ``params`` in place from ``grads``; returns None.

        ``params``: a 1-D float32/float64 array (a flat buffer) or a list of arrays;
        ``grads``: the same structure and shapes (cast to the params' dtype). With
        ``skip_nonfinite=True`` a step whose gradient holds NaN/inf changes nothing (and
        counts in ``n_skipped``). Raises ``ValueError`` on mismatched or read-only input.
        """
        listed = isinstance(params, (list, tuple))
        params_list = _as_param_list(params)
        grads_list = _as_grad_list(grads, params_list, listed)
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
        """Restore what :meth:`state_dict` returned (arrays are copied); ``ValueError`` if malformed."""
        missing = {"step", "state", "hyperparameters"} - set(state_dict)
        if missing:
            raise ValueError(f"state_dict lacks {sorted(missing)}")
        checked = type(self)(**state_dict["hyperparameters"])
        for name in checked.hyperparameters():
            setattr(self, name, getattr(checked, name))
        step = as_int(state_dict["step"], "state_dict['step']", low=0)
        saved = state_dict["state"]
        if saved is not None:
            n_slots = K.n_state_slots(self._code, self._hyper_vector())
            saved = [np.array(s, copy=True, order="C") for s in saved]
            for i, s in enumerate(saved):
                if s.ndim != 2 or s.shape[0] != n_slots or s.dtype not in (np.float32, np.float64):
                    raise ValueError(f"state_dict['state'][{i}] must be a float array of {n_slots} rows "
                                     f"for these settings, got {s.dtype} of shape {s.shape}")
        self.state = saved
        self.step_count = step
        self.n_skipped = int(state_dict.get("n_skipped", 0))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening and Nesterov momentum.

    ``g = grad + wd p`` (``-grad`` if maximize); with momentum ``mu``:
    ``b = g`` on the first step, then ``b = mu b + (1 - dampening) g``;
    ``d = g + mu b`` (nesterov) or ``b``; ``p = p - lr d``.
    State: ``momentum_buffer`` when momentum != 0.
    Raises ``ValueError`` for lr, momentum, weight_decay < 0, dampening outside [0, 1],
    or ``nesterov`` without momentum or with dampening.
    """

    _code = K.SGD

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                 maximize=False, *, skip_nonfinite=False):
        super().__init__(lr, weight_decay, maximize, skip_nonfinite)
        self.momentum = as_scalar(momentum, "momentum", low=0.0)
        self.dampening = as_scalar(dampening, "dampening", low=0.0, high=1.0)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0, "
                             f"got momentum={self.momentum}, dampening={self.dampening}")

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
    Raises ``ValueError`` for lr, momentum, weight_decay < 0, eps <= 0, alpha outside [0, 1].
    """

    _code = K.RMSPROP

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 maximize=False, *, skip_nonfinite=False):
        super().__init__(lr, weight_decay, maximize, skip_nonfinite)
        self.alpha = as_scalar(alpha, "alpha", low=0.0, high=1.0)
        self.eps = as_scalar(eps, "eps", low=0.0, low_open=True)
        self.momentum = as_scalar(momentum, "momentum", low=0.0)
        self.centered = bool(centered)

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
    Raises ``ValueError`` for lr, lr_decay, weight_decay, initial_accumulator_value < 0, eps <= 0.
    """

    _code = K.ADAGRAD

    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 maximize=False, *, skip_nonfinite=False):
        super().__init__(lr, weight_decay, maximize, skip_nonfinite)
        self.lr_decay = as_scalar(lr_decay, "lr_decay", low=0.0)
        self.initial_accumulator_value = as_scalar(initial_accumulator_value, "initial_accumulator_value",
                                                   low=0.0)
        self.eps = as_scalar(eps, "eps", low=0.0, low_open=True)

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
    Raises ``ValueError`` for lr, weight_decay < 0, betas outside [0, 1), eps <= 0.
    """

    _code = K.ADAM

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
                 *, skip_nonfinite=False):
        super().__init__(lr, weight_decay, maximize, skip_nonfinite)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(as_scalar(b, f"betas[{i}]", low=0.0, high=1.0, high_open=True)
                           for i, b in enumerate(betas))
        self.eps = as_scalar(eps, "eps", low=0.0, low_open=True)
        self.amsgrad = bool(amsgrad)

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
