"""Fused optimizer updates on flat buffers: one compiled entry point for every optimizer.

``optimizer_step(code, params, grads, state, hyper, step)`` updates ``params`` (and
``state``) in place in ONE pass over the buffer, parallel over blocks, allocating
nothing. It is callable from Python and from other compiled code (the epoch loop).

* ``code``: one of the integer codes ``SGD, RMSPROP, ADAGRAD, ADAM, ADAMW``.
* ``params``, ``grads``: 1-D C-contiguous arrays of one float dtype, same length ``n``.
* ``state``: 2-D C-contiguous ``(n_slots, n)`` array of that dtype (see the slot table).
* ``hyper``: 1-D float64 array of length ``N_HYPER`` (see the index table); flags are 0.0/1.0.
* ``step``: the 1-based count of this update (bias correction, Adagrad's lr decay,
  SGD's first-step momentum buffer ``buf = g`` as in PyTorch).

Hyperparameter indices (shared: ``LR, WEIGHT_DECAY, EPS, MAXIMIZE``; ``EPS`` unused by SGD):

=========  ==============  ==============  ==========================  ==============
index      SGD             RMSPROP         ADAGRAD                     ADAM / ADAMW
=========  ==============  ==============  ==========================  ==============
4          MOMENTUM        MOMENTUM        LR_DECAY                    BETA1
5          DAMPENING       ALPHA           INITIAL_ACCUMULATOR_VALUE   BETA2
6          NESTEROV        CENTERED        (unused)                    AMSGRAD
=========  ==============  ==============  ==========================  ==============

State slots (rows of ``state``), see :func:`state_slot_names`:

* SGD: ``momentum_buffer`` if momentum != 0, else no slot;
* RMSPROP: ``square_avg``, then ``grad_avg`` if centered, then ``momentum_buffer`` if momentum > 0;
* ADAGRAD: ``sum`` (starts at ``initial_accumulator_value``, see :func:`new_state`);
* ADAM/ADAMW: ``exp_avg``, ``exp_avg_sq``, then ``max_exp_avg_sq`` if amsgrad.

The update equations (PyTorch's algorithm boxes) are written out in
:mod:`fastgrad.reference.optim`, the readable twin of this file.
"""
import math

import numpy as np

from fastgrad._jit import block_bounds, inline, kernel, like, n_blocks, prange

SGD, RMSPROP, ADAGRAD, ADAM, ADAMW = 0, 1, 2, 3, 4
CODES = {"sgd": SGD, "rmsprop": RMSPROP, "adagrad": ADAGRAD, "adam": ADAM, "adamw": ADAMW}

LR, WEIGHT_DECAY, EPS, MAXIMIZE = 0, 1, 2, 3
MOMENTUM, DAMPENING, NESTEROV = 4, 5, 6
ALPHA, CENTERED = 5, 6
LR_DECAY, INITIAL_ACCUMULATOR_VALUE = 4, 5
BETA1, BETA2, AMSGRAD = 4, 5, 6
N_HYPER = 7


def state_slot_names(code, hyper):
    """Names of the rows of ``state`` for optimizer ``code`` with the flags in ``hyper``."""
    if code == SGD:
        return ("momentum_buffer",) if hyper[MOMENTUM] != 0.0 else ()
    if code == RMSPROP:
        return (("square_avg",) + (("grad_avg",) if hyper[CENTERED] else ())
                + (("momentum_buffer",) if hyper[MOMENTUM] > 0.0 else ()))
    if code == ADAGRAD:
        return ("sum",)
    if code in (ADAM, ADAMW):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if hyper[AMSGRAD] else ())
    raise ValueError(f"unknown optimizer code {code!r}")


def n_state_slots(code, hyper):
    """How many rows ``state`` needs for optimizer ``code`` with the flags in ``hyper``."""
    return len(state_slot_names(code, hyper))


def new_state(code, hyper, n, dtype):
    """A fresh ``(n_slots, n)`` state array: zeros, Adagrad's sum at its initial value."""
    state = np.zeros((n_state_slots(code, hyper), n), dtype=dtype)
    if code == ADAGRAD:
        state[0] = hyper[INITIAL_ACCUMULATOR_VALUE]
    return state


@inline
def _sgd_range(params, grads, state, hyper, first, lo, hi):
    params = params[lo:hi]
    grads = grads[lo:hi]
    lr = like(params, hyper[LR])
    wd = like(params, hyper[WEIGHT_DECAY])
    sign = like(params, -1.0 if hyper[MAXIMIZE] else 1.0)
    momentum = like(params, hyper[MOMENTUM])
    damp1 = like(params, 1.0 - hyper[DAMPENING])
    if hyper[MOMENTUM] == 0.0:
        for i in range(params.size):
            params[i] = params[i] - lr * (sign * grads[i] + wd * params[i])
        return
    buf = state[0][lo:hi]
    nesterov = hyper[NESTEROV] != 0.0
    for i in range(params.size):
        g = sign * grads[i] + wd * params[i]
        b = g if first else momentum * buf[i] + damp1 * g
        buf[i] = b
        params[i] = params[i] - lr * (g + momentum * b if nesterov else b)


@inline
def _rms_avg(g, square_avg, grad_avg, i, alpha, w, eps, centered):
    """Update ``square_avg[i]`` (and ``grad_avg[i]`` if centered); return ``sqrt(v - ga^2) + eps``."""
    v = alpha * square_avg[i] + w * g * g
    square_avg[i] = v
    if centered:
        ga = grad_avg[i] + w * (g - grad_avg[i])
        grad_avg[i] = ga
        return math.sqrt(v - ga * ga) + eps
    return math.sqrt(v) + eps


@inline
def _rmsprop_range(params, grads, state, hyper, lo, hi):
    params = params[lo:hi]
    grads = grads[lo:hi]
    lr = like(params, hyper[LR])
    wd = like(params, hyper[WEIGHT_DECAY])
    eps = like(params, hyper[EPS])
    sign = like(params, -1.0 if hyper[MAXIMIZE] else 1.0)
    alpha = like(params, hyper[ALPHA])
    w = like(params, 1.0 - hyper[ALPHA])
    momentum = like(params, hyper[MOMENTUM])
    square_avg = state[0][lo:hi]
    # The flags select one of four loops: a flag tested inside the loop stops it vectorizing.
    if hyper[CENTERED] != 0.0:
        grad_avg = state[1][lo:hi]
        if hyper[MOMENTUM] > 0.0:
            buf = state[2][lo:hi]
            for i in range(params.size):
                g = sign * grads[i] + wd * params[i]
                b = momentum * buf[i] + g / _rms_avg(g, square_avg, grad_avg, i, alpha, w, eps, True)
                buf[i] = b
                params[i] = params[i] - lr * b
        else:
            for i in range(params.size):
                g = sign * grads[i] + wd * params[i]
                params[i] = params[i] - lr * (g / _rms_avg(g, square_avg, grad_avg, i, alpha, w, eps, True))
    elif hyper[MOMENTUM] > 0.0:
        buf = state[1][lo:hi]
        for i in range(params.size):
            g = sign * grads[i] + wd * params[i]
            b = momentum * buf[i] + g / _rms_avg(g, square_avg, square_avg, i, alpha, w, eps, False)
            buf[i] = b
            params[i] = params[i] - lr * b
    else:
        for i in range(params.size):
            g = sign * grads[i] + wd * params[i]
            params[i] = params[i] - lr * (g / _rms_avg(g, square_avg, square_avg, i, alpha, w, eps, False))


@inline
def _adagrad_range(params, grads, state, hyper, clr64, lo, hi):
    params = params[lo:hi]
    grads = grads[lo:hi]
    clr = like(params, clr64)
    wd = like(params, hyper[WEIGHT_DECAY])
    eps = like(params, hyper[EPS])
    sign = like(params, -1.0 if hyper[MAXIMIZE] else 1.0)
    state_sum = state[0][lo:hi]
    for i in range(params.size):
        g = sign * grads[i] + wd * params[i]
        s = state_sum[i] + g * g
        state_sum[i] = s
        params[i] = params[i] - clr * (g / (math.sqrt(s) + eps))


@inline
def _adam_range(params, grads, state, hyper, decoupled, step_size64, bc2_sqrt64, lo, hi):
    params = params[lo:hi]
    grads = grads[lo:hi]
    # AdamW decays the weights (p *= 1 - lr*wd) instead of adding wd*p to the gradient;
    # with the unused term set to 0 (or the factor to 1) both run the same branch-free loop.
    wd = hyper[WEIGHT_DECAY]
    l2 = like(params, 0.0 if decoupled else wd)
    decay = like(params, 1.0 - hyper[LR] * wd if decoupled else 1.0)
    eps = like(params, hyper[EPS])
    sign = like(params, -1.0 if hyper[MAXIMIZE] else 1.0)
    w1 = like(params, 1.0 - hyper[BETA1])
    beta2 = like(params, hyper[BETA2])
    w2 = like(params, 1.0 - hyper[BETA2])
    step_size = like(params, step_size64)
    bc2_sqrt = like(params, bc2_sqrt64)
    exp_avg = state[0][lo:hi]
    exp_avg_sq = state[1][lo:hi]
    if hyper[AMSGRAD]:
        max_sq = state[2][lo:hi]
        for i in range(params.size):
            p = params[i]
            g = sign * grads[i] + l2 * p
            m = exp_avg[i] + w1 * (g - exp_avg[i])
            v = beta2 * exp_avg_sq[i] + w2 * g * g
            vmax = max(max_sq[i], v)
            exp_avg[i] = m
            exp_avg_sq[i] = v
            max_sq[i] = vmax
            params[i] = p * decay - step_size * (m / (math.sqrt(vmax) / bc2_sqrt + eps))
    else:
        for i in range(params.size):
            p = params[i]
            g = sign * grads[i] + l2 * p
            m = exp_avg[i] + w1 * (g - exp_avg[i])
            v = beta2 * exp_avg_sq[i] + w2 * g * g
            exp_avg[i] = m
            exp_avg_sq[i] = v
            params[i] = p * decay - step_size * (m / (math.sqrt(v) / bc2_sqrt + eps))


@inline
def _step_range(code, params, grads, state, hyper, step, s0, s1, lo, hi):
    if code == SGD:
        _sgd_range(params, grads, state, hyper, step == 1, lo, hi)
    elif code == RMSPROP:
        _rmsprop_range(params, grads, state, hyper, lo, hi)
    elif code == ADAGRAD:
        _adagrad_range(params, grads, state, hyper, s0, lo, hi)
    else:
        _adam_range(params, grads, state, hyper, code == ADAMW, s0, s1, lo, hi)


@kernel(parallel=True)
def optimizer_step(code, params, grads, state, hyper, step):
    """One in-place update of ``params`` and ``state`` by optimizer ``code`` (see module doc).

    Step-dependent scalars are computed once here in float64, as PyTorch does in
    Python: Adagrad's ``clr = lr / (1 + (step - 1) lr_decay)``, Adam's
    ``step_size = lr / (1 - beta1^step)`` and ``sqrt(1 - beta2^step)``.
    """
    s0 = 0.0
    s1 = 1.0
    t = np.float64(step)
    if code == ADAGRAD:
        s0 = hyper[LR] / (1.0 + (t - 1.0) * hyper[LR_DECAY])
    elif code == ADAM or code == ADAMW:
        s0 = hyper[LR] / (1.0 - hyper[BETA1] ** t)
        s1 = math.sqrt(1.0 - hyper[BETA2] ** t)
    n = params.size
    nb = n_blocks(n)
    if nb == 1:
        _step_range(code, params, grads, state, hyper, step, s0, s1, 0, n)
    else:
        for b in prange(nb):
            lo, hi = block_bounds(b, nb, n)
            _step_range(code, params, grads, state, hyper, step, s0, s1, lo, hi)
